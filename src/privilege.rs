//! Giving up root once the sockets are open: in.dhcpd keeps only the
//! capabilities it still uses (SIOCSARP needs CAP_NET_ADMIN, ICMP probes
//! need CAP_NET_RAW when `probe` is turned on by a reload).

use std::io;
use std::path::Path;

use nix::unistd::{setgid, setgroups, setuid, Gid, Group, Uid, User};

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
/// `caps` permitted and effective and nothing else. Both programs drop
/// root with this; in.aasd keeps no capability.
pub fn become_user(user: &User, extra_groups: &[Gid], caps: &[u32]) -> io::Result<()> {
    let failed = |what: String| move |e| io::Error::other(format!("{what}: {e}"));
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut groups = vec![user.gid];
    groups.extend(extra_groups.iter().filter(|g| **g != user.gid));
    // Supplementary groups first: after setuid there is no changing them.
    setgroups(&groups).map_err(failed("setgroups".into()))?;
    setgid(user.gid).map_err(failed(format!("setgid {}", user.gid)))?;
    setuid(user.uid).map_err(failed(format!("setuid {}", user.uid)))?;
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

/// The group the AAS socket is meant for: `name` (aasd.conf's
/// `socket_group`, dhcpd.conf's `aas_group`), else the package's group
/// `aasd` when it exists. Never group 0: whoever keeps it could read
/// root-group files such as aasd.conf with its passwords.
pub fn aas_socket_group(name: Option<&str>) -> io::Result<Option<Gid>> {
    let (name, named) = match name {
        Some(n) => (n, true),
        None => (crate::aasd::config::DEFAULT_SOCKET_GROUP, false),
    };
    match Group::from_name(name)? {
        Some(g) if g.gid.as_raw() == 0 => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("group {name} is gid 0, which is never given to the AAS socket's users"),
        )),
        Some(g) => Ok(Some(g.gid)),
        None if named => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no group \"{name}\""),
        )),
        None => Ok(None),
    }
}

/// in.aasd, as root, just after binding: hand the socket to its group.
pub fn give_socket_group(path: &Path, name: Option<&str>) -> io::Result<()> {
    if !Uid::effective().is_root() {
        return Ok(());
    }
    match aas_socket_group(name) {
        Ok(Some(gid)) => nix::unistd::chown(path, None, Some(gid))
            .map_err(|e| io::Error::other(format!("{}: chgrp {gid}: {e}", path.display()))),
        Ok(None) => Ok(()),
        Err(e) => Err(io::Error::other(format!("socket_group: {e}"))),
    }
}

/// The group in.dhcpd keeps to reach the AAS socket: `aas_group`, else
/// `aasd` when it exists, else the group of the socket as it is now (an
/// in.aasd run with -u and no group of its own), else that of a directory
/// of its own (such as /run/aasd). Never 0.
pub fn socket_group(path: &Path, aas_group: Option<&str>) -> io::Result<Option<Gid>> {
    use std::os::unix::fs::MetadataExt;
    if let Some(g) = aas_socket_group(aas_group)? {
        return Ok(Some(g));
    }
    let group_of = |p: &Path| std::fs::metadata(p).ok().map(|m| Gid::from_raw(m.gid()));
    let found = group_of(path)
        .filter(|g| g.as_raw() != 0)
        .or_else(|| path.parent().and_then(group_of));
    Ok(found.filter(|g| g.as_raw() != 0))
}

/// After the drop: can this process reach the AAS socket? Every existing
/// directory on the way must be searchable, and the socket, once there,
/// writable. The error says what to change.
pub fn check_socket_reachable(path: &Path, user: &str) -> io::Result<()> {
    use nix::unistd::{access, AccessFlags};
    use std::os::unix::fs::MetadataExt;
    let describe = |p: &Path| {
        std::fs::metadata(p).map_or(String::new(), |m| {
            let owner = User::from_uid(Uid::from_raw(m.uid())).ok().flatten();
            let group = Group::from_gid(Gid::from_raw(m.gid())).ok().flatten();
            format!(
                " ({}:{} mode {:04o})",
                owner.map_or(m.uid().to_string(), |u| u.name),
                group.map_or(m.gid().to_string(), |g| g.name),
                m.mode() & 0o7777
            )
        })
    };
    for dir in path.ancestors().skip(1).filter(|d| d.is_dir()) {
        if access(dir, AccessFlags::X_OK).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "aas_socket {}: user {user} cannot search the directory {}{}: \
                     let it through (chmod o+x {}, or a group it keeps) or put the \
                     socket elsewhere (socket in aasd.conf, aas_socket in dhcpd.conf)",
                    path.display(),
                    dir.display(),
                    describe(dir),
                    dir.display()
                ),
            ));
        }
    }
    if path.exists() && access(path, AccessFlags::W_OK).is_err() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "aas_socket {}{}: user {user} may not connect: give the socket the group \
                 in.dhcpd keeps (socket_group in aasd.conf, the same as aas_group in \
                 dhcpd.conf; both default to aasd)",
                path.display(),
                describe(path)
            ),
        ));
    }
    Ok(())
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
