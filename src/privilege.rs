//! Giving up root once the sockets are open: in.dhcpd keeps only the
//! capabilities it still uses (SIOCSARP needs CAP_NET_ADMIN, ICMP probes
//! need CAP_NET_RAW when `probe` is turned on by a reload).

use std::io;
use std::path::Path;

use nix::unistd::{setgid, setgroups, setuid, Gid, Uid, User};

pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;

/// The kernel's capability header and data (linux/capability.h, version 3:
/// two 32-bit words per set).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Become `user` (its uid, its primary group and `extra_groups`), keeping
/// `caps` permitted and effective and nothing else.
pub fn become_user(user: &User, extra_groups: &[Gid], caps: &[u32]) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut groups = vec![user.gid];
    groups.extend(extra_groups.iter().filter(|g| **g != user.gid));
    setgroups(&groups)?;
    setgid(user.gid)?;
    setuid(user.uid)?;
    let mut data = [CapData::default(); 2];
    for &cap in caps {
        let word = &mut data[(cap / 32) as usize];
        word.effective |= 1 << (cap % 32);
        word.permitted |= 1 << (cap % 32);
    }
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset reads one header and two data structs, laid out as
    // the kernel defines them, which live for the whole call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    Ok(())
}

/// The user in.dhcpd runs as: `name`, unless that is root or we are not
/// root to begin with (then there is nothing to drop).
pub fn target_user(name: &str) -> io::Result<Option<User>> {
    if !Uid::effective().is_root() || name == "root" {
        return Ok(None);
    }
    match User::from_name(name)? {
        Some(u) => Ok(Some(u)),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no user \"{name}\""),
        )),
    }
}

/// Give `path` to `uid`:`gid` through a descriptor of the file itself
/// (O_PATH | O_NOFOLLOW), never through its name: a symbolic link put in
/// its place is refused, not followed, and what was opened is what changes.
pub fn chown_no_follow(path: &Path, uid: Uid, gid: Gid) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(path)?;
    if file.metadata()?.file_type().is_symlink() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a symbolic link: not followed",
        ));
    }
    // SAFETY: fchownat on a descriptor we own, with an empty C string as
    // the path (AT_EMPTY_PATH: the descriptor's own file).
    let rc = unsafe {
        libc::fchownat(
            file.as_raw_fd(),
            c"".as_ptr(),
            uid.as_raw(),
            gid.as_raw(),
            libc::AT_EMPTY_PATH,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The group owning the AAS socket, or its directory before in.aasd has
/// made it: kept as a supplementary group so that in.dhcpd can still
/// connect (the socket is mode 0660).
pub fn socket_group(path: &Path) -> Option<Gid> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)
        .ok()
        .or_else(|| std::fs::metadata(path.parent()?).ok())?;
    Some(Gid::from_raw(meta.gid()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn chown_no_follow_changes_the_file_and_refuses_a_symlink() {
        if !Uid::effective().is_root() {
            return; // only root may give files away
        }
        let dir = std::env::temp_dir().join(format!("indhcpd-chown-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, b"root's").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let (uid, gid) = (Uid::from_raw(65534), Gid::from_raw(65534));
        let e = chown_no_follow(&link, uid, gid).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::metadata(&target).unwrap().uid(), 0, "not followed");
        chown_no_follow(&dir.join("sub"), uid, gid).unwrap();
        let m = std::fs::metadata(dir.join("sub")).unwrap();
        assert_eq!((m.uid(), m.gid()), (65534, 65534));
        // A Unix socket cannot be opened for reading, but O_PATH can.
        let sock = dir.join("s");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        chown_no_follow(&sock, uid, gid).unwrap();
        assert_eq!(std::fs::metadata(&sock).unwrap().uid(), 65534);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
