//! The passthrough: every node the kernel knows is an O_PATH descriptor of
//! the backing file, so renames and unlinks need no path bookkeeping, and
//! a backing inode cannot be reused while the kernel still refers to it.
//! Locks (flock, fcntl) are left to the kernel, which keeps them per mount
//! when the filesystem does not ask for them.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, FileExt, FileTypeExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};

/// How long the kernel may keep names and attributes: everything changes
/// through this mount, which keeps the kernel's copy current.
const TTL: Duration = Duration::from_secs(1);

type Res<T> = Result<T, Errno>;

fn last_err() -> Errno {
    Errno::from(io::Error::last_os_error())
}

fn check(ret: libc::c_int) -> Res<libc::c_int> {
    if ret < 0 {
        Err(last_err())
    } else {
        Ok(ret)
    }
}

fn c_name(name: &OsStr) -> Res<CString> {
    CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)
}

/// The magic link that reopens a descriptor, O_PATH ones included.
fn proc_path(fd: RawFd) -> CString {
    CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL in a number")
}

fn stat_fd(fd: RawFd) -> Res<libc::stat> {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open, "" is a C string, st is ours.
    check(unsafe {
        libc::fstatat(
            fd,
            c"".as_ptr(),
            &mut st,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(st)
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn kind(mode: libc::mode_t) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

fn attr(ino: u64, st: &libc::stat) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        atime: time(st.st_atime, st.st_atime_nsec),
        mtime: time(st.st_mtime, st.st_mtime_nsec),
        ctime: time(st.st_ctime, st.st_ctime_nsec),
        crtime: time(st.st_ctime, st.st_ctime_nsec),
        kind: kind(st.st_mode),
        perm: (st.st_mode & 0o7777) as u16,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev as u32,
        blksize: st.st_blksize as u32,
        flags: 0,
    }
}

fn timespec(t: Option<TimeOrNow>) -> libc::timespec {
    let (tv_sec, tv_nsec) = match t {
        None => (0, libc::UTIME_OMIT),
        Some(TimeOrNow::Now) => (0, libc::UTIME_NOW),
        Some(TimeOrNow::SpecificTime(t)) => {
            let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            (
                d.as_secs() as libc::time_t,
                d.subsec_nanos() as libc::c_long,
            )
        }
    };
    libc::timespec { tv_sec, tv_nsec }
}

struct Node {
    fd: Arc<OwnedFd>,
    key: (u64, u64),
    lookups: u64,
}

#[derive(Default)]
struct Nodes {
    by_id: HashMap<u64, Node>,
    by_key: HashMap<(u64, u64), u64>,
    next: u64,
}

/// An open directory: its entries as read at opendir, and a descriptor to
/// fsync.
struct Dir {
    file: File,
    /// Name, backing inode number (d_ino), type.
    entries: Vec<(OsString, u64, FileType)>,
}

pub struct SlowFs {
    delay: Duration,
    nodes: Mutex<Nodes>,
    files: Mutex<HashMap<u64, Arc<File>>>,
    dirs: Mutex<HashMap<u64, Arc<Dir>>>,
    next_fh: AtomicU64,
}

impl SlowFs {
    /// Mirror `backing`; fsync, fdatasync and fsyncdir wait `delay` after
    /// the backing disk's own sync.
    pub fn new(backing: &Path, delay: Duration) -> io::Result<SlowFs> {
        let path = CString::new(backing.as_os_str().as_bytes())?;
        // SAFETY: path is a C string; the descriptor returned is ours.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let st = stat_fd(fd.as_raw_fd()).map_err(|e| io::Error::from_raw_os_error(e.code()))?;
        let mut nodes = Nodes {
            next: 2,
            ..Nodes::default()
        };
        let key = (st.st_dev, st.st_ino);
        // The root is never forgotten: its count never reaches zero.
        let root = Node {
            fd: Arc::new(fd),
            key,
            lookups: u64::MAX / 2,
        };
        nodes.by_id.insert(INodeNo::ROOT.0, root);
        nodes.by_key.insert(key, INodeNo::ROOT.0);
        Ok(SlowFs {
            delay,
            nodes: Mutex::new(nodes),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        })
    }

    fn fd(&self, ino: INodeNo) -> Res<Arc<OwnedFd>> {
        let nodes = self.nodes.lock().unwrap();
        nodes
            .by_id
            .get(&ino.0)
            .map(|n| n.fd.clone())
            .ok_or(Errno::ESTALE)
    }

    fn file(&self, fh: FileHandle) -> Res<Arc<File>> {
        self.files
            .lock()
            .unwrap()
            .get(&fh.0)
            .cloned()
            .ok_or(Errno::EBADF)
    }

    fn new_fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    /// Find `name` in `parent` and count one kernel reference to it.
    fn look_up(&self, parent: INodeNo, name: &OsStr) -> Res<FileAttr> {
        let dir = self.fd(parent)?;
        let name = c_name(name)?;
        // SAFETY: dir is open, name is a C string; the result is ours.
        let fd = check(unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: fd was just opened and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let st = stat_fd(fd.as_raw_fd())?;
        let key = (st.st_dev, st.st_ino);
        let mut nodes = self.nodes.lock().unwrap();
        let id = match nodes.by_key.get(&key) {
            Some(&id) => id,
            None => {
                let id = nodes.next;
                nodes.next += 1;
                nodes.by_key.insert(key, id);
                let fd = Arc::new(fd);
                nodes.by_id.insert(
                    id,
                    Node {
                        fd,
                        key,
                        lookups: 0,
                    },
                );
                id
            }
        };
        nodes
            .by_id
            .get_mut(&id)
            .expect("just found or made")
            .lookups += 1;
        Ok(attr(id, &st))
    }

    fn entry(&self, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.look_up(parent, name) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    /// New files and directories belong to the caller, as on a disk.
    fn give_to(&self, req: &Request, dir: RawFd, name: &CString) {
        // SAFETY: dir is open and name a C string.
        unsafe {
            libc::fchownat(
                dir,
                name.as_ptr(),
                req.uid(),
                req.gid(),
                libc::AT_SYMLINK_NOFOLLOW,
            );
        }
    }

    fn set_attr(
        &self,
        ino: INodeNo,
        fh: Option<FileHandle>,
        mode: Option<u32>,
        owner: (Option<u32>, Option<u32>),
        size: Option<u64>,
        times: (Option<TimeOrNow>, Option<TimeOrNow>),
    ) -> Res<FileAttr> {
        let node = self.fd(ino)?;
        let path = proc_path(node.as_raw_fd());
        if let Some(mode) = mode {
            // SAFETY: path is a C string.
            check(unsafe { libc::chmod(path.as_ptr(), mode & 0o7777) })?;
        }
        if owner.0.is_some() || owner.1.is_some() {
            let keep = u32::MAX; // -1: leave as it is
                                 // SAFETY: node is open; "" with AT_EMPTY_PATH names it.
            check(unsafe {
                libc::fchownat(
                    node.as_raw_fd(),
                    c"".as_ptr(),
                    owner.0.unwrap_or(keep),
                    owner.1.unwrap_or(keep),
                    libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
                )
            })?;
        }
        if let Some(size) = size {
            match fh.map(|fh| self.file(fh)) {
                Some(Ok(f)) => f.set_len(size).map_err(Errno::from)?,
                _ => {
                    // SAFETY: path is a C string.
                    check(unsafe { libc::truncate(path.as_ptr(), size as libc::off_t) })?;
                }
            }
        }
        if times.0.is_some() || times.1.is_some() {
            let ts = [timespec(times.0), timespec(times.1)];
            // SAFETY: path is a C string, ts two timespecs.
            check(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), ts.as_ptr(), 0) })?;
        }
        Ok(attr(ino.0, &stat_fd(node.as_raw_fd())?))
    }

    /// The slow disk: the real sync, then the wait.
    fn sync(&self, f: &File, datasync: bool) -> Res<()> {
        if datasync {
            f.sync_data()
        } else {
            f.sync_all()
        }
        .map_err(Errno::from)?;
        std::thread::sleep(self.delay);
        Ok(())
    }

    fn read_dir(&self, ino: INodeNo) -> Res<Dir> {
        let node = self.fd(ino)?;
        let path = proc_path(node.as_raw_fd());
        let path = Path::new(OsStr::from_bytes(path.as_bytes()));
        let file = File::open(path).map_err(Errno::from)?;
        let mut entries = vec![
            (OsString::from("."), 0, FileType::Directory),
            (OsString::from(".."), 0, FileType::Directory),
        ];
        for e in std::fs::read_dir(path).map_err(Errno::from)? {
            let e = e.map_err(Errno::from)?;
            let t = e.file_type().map_err(Errno::from)?;
            let kind = if t.is_dir() {
                FileType::Directory
            } else if t.is_symlink() {
                FileType::Symlink
            } else if t.is_fifo() {
                FileType::NamedPipe
            } else if t.is_socket() {
                FileType::Socket
            } else {
                FileType::RegularFile
            };
            entries.push((e.file_name(), e.ino(), kind));
        }
        Ok(Dir { file, entries })
    }

    fn open_path(&self, ino: INodeNo, flags: i32) -> Res<File> {
        let node = self.fd(ino)?;
        let path = proc_path(node.as_raw_fd());
        let flags = flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY) | libc::O_CLOEXEC;
        // SAFETY: path is a C string; the result is ours.
        let fd = check(unsafe { libc::open(path.as_ptr(), flags) })?;
        // SAFETY: fd was just opened and is owned by nothing else.
        Ok(unsafe { File::from_raw_fd(fd) })
    }
}

fn empty(reply: ReplyEmpty, r: Res<libc::c_int>) {
    match r {
        Ok(_) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for SlowFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.entry(parent, name, reply);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let mut nodes = self.nodes.lock().unwrap();
        let Some(node) = nodes.by_id.get_mut(&ino.0) else {
            return;
        };
        node.lookups = node.lookups.saturating_sub(nlookup);
        if node.lookups == 0 {
            let key = node.key;
            nodes.by_id.remove(&ino.0);
            nodes.by_key.remove(&key);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let st = match fh.map(|fh| self.file(fh)) {
            Some(Ok(f)) => stat_fd(f.as_raw_fd()),
            _ => self.fd(ino).and_then(|n| stat_fd(n.as_raw_fd())),
        };
        match st {
            Ok(st) => reply.attr(&TTL, &attr(ino.0, &st)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        match self.set_attr(ino, fh, mode, (uid, gid), size, (atime, mtime)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let node = match self.fd(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        // SAFETY: node is open; buf has the length given.
        let n = unsafe {
            libc::readlinkat(
                node.as_raw_fd(),
                c"".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return reply.error(last_err());
        }
        reply.data(&buf[..n as usize]);
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let made = self.fd(parent).and_then(|dir| {
            let c = c_name(name)?;
            // SAFETY: dir is open and c a C string.
            check(unsafe {
                libc::mknodat(
                    dir.as_raw_fd(),
                    c.as_ptr(),
                    mode & !umask,
                    libc::dev_t::from(rdev),
                )
            })?;
            self.give_to(req, dir.as_raw_fd(), &c);
            Ok(())
        });
        match made {
            Ok(()) => self.entry(parent, name, reply),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let made = self.fd(parent).and_then(|dir| {
            let c = c_name(name)?;
            // SAFETY: dir is open and c a C string.
            check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode & !umask) })?;
            self.give_to(req, dir.as_raw_fd(), &c);
            Ok(())
        });
        match made {
            Ok(()) => self.entry(parent, name, reply),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            reply,
            self.fd(parent).and_then(|dir| {
                let c = c_name(name)?;
                // SAFETY: dir is open and c a C string.
                check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) })
            }),
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            reply,
            self.fd(parent).and_then(|dir| {
                let c = c_name(name)?;
                // SAFETY: dir is open and c a C string.
                check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) })
            }),
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let made = self.fd(parent).and_then(|dir| {
            let c = c_name(link_name)?;
            let t = c_name(target.as_os_str())?;
            // SAFETY: dir is open; c and t are C strings.
            check(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), c.as_ptr()) })?;
            self.give_to(req, dir.as_raw_fd(), &c);
            Ok(())
        });
        match made {
            Ok(()) => self.entry(parent, link_name, reply),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let renamed = (|| {
            let (from, to) = (self.fd(parent)?, self.fd(newparent)?);
            let (a, b) = (c_name(name)?, c_name(newname)?);
            // SAFETY: both directories are open; a and b are C strings.
            check(unsafe {
                libc::renameat2(
                    from.as_raw_fd(),
                    a.as_ptr(),
                    to.as_raw_fd(),
                    b.as_ptr(),
                    flags.bits(),
                )
            })
        })();
        empty(reply, renamed);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let linked = (|| {
            let (node, dir) = (self.fd(ino)?, self.fd(newparent)?);
            let c = c_name(newname)?;
            let from = proc_path(node.as_raw_fd());
            // SAFETY: from and c are C strings, dir is open.
            check(unsafe {
                libc::linkat(
                    libc::AT_FDCWD,
                    from.as_ptr(),
                    dir.as_raw_fd(),
                    c.as_ptr(),
                    libc::AT_SYMLINK_FOLLOW,
                )
            })
        })();
        match linked {
            Ok(_) => self.entry(newparent, newname, reply),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.open_path(ino, flags.0) {
            Ok(f) => {
                let fh = self.new_fh();
                self.files.lock().unwrap().insert(fh, Arc::new(f));
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let f = match self.file(fh) {
            Ok(f) => f,
            Err(e) => return reply.error(e),
        };
        let mut buf = vec![0u8; size as usize];
        let mut got = 0;
        // A short read means the end of the file to the kernel: fill it.
        while got < buf.len() {
            match f.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return reply.error(e.into()),
            }
        }
        reply.data(&buf[..got]);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        match self
            .file(fh)
            .and_then(|f| f.write_all_at(data, offset).map_err(Errno::from))
        {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.files.lock().unwrap().remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.file(fh).and_then(|f| self.sync(&f, datasync)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.read_dir(ino) {
            Ok(d) => {
                let fh = self.new_fh();
                self.dirs.lock().unwrap().insert(fh, Arc::new(d));
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(dir) = self.dirs.lock().unwrap().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        // d_ino is passed on as it is; the node number comes with lookup.
        for (i, (name, d_ino, kind)) in dir.entries.iter().enumerate().skip(offset as usize) {
            let d_ino = if *d_ino == 0 { ino.0 } else { *d_ino };
            if reply.add(INodeNo(d_ino), i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.dirs.lock().unwrap().remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let Some(dir) = self.dirs.lock().unwrap().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        match self.sync(&dir.file, datasync) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let root = match self.fd(INodeNo::ROOT) {
            Ok(r) => r,
            Err(e) => return reply.error(e),
        };
        // SAFETY: an all-zero statvfs is a valid value to be overwritten.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: root is open (O_PATH is enough for fstatvfs); s is ours.
        if unsafe { libc::fstatvfs(root.as_raw_fd(), &mut s) } < 0 {
            return reply.error(last_err());
        }
        reply.statfs(
            s.f_blocks,
            s.f_bfree,
            s.f_bavail,
            s.f_files,
            s.f_ffree,
            s.f_bsize as u32,
            s.f_namemax as u32,
            s.f_frsize as u32,
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let made = self.fd(parent).and_then(|dir| {
            let c = c_name(name)?;
            // SAFETY: dir is open and c a C string; the result is ours.
            let fd = check(unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    c.as_ptr(),
                    (flags & !libc::O_NOCTTY) | libc::O_CREAT | libc::O_CLOEXEC,
                    mode & !umask,
                )
            })?;
            // SAFETY: fd was just opened and is owned by nothing else.
            let f = unsafe { File::from_raw_fd(fd) };
            self.give_to(req, dir.as_raw_fd(), &c);
            let a = self.look_up(parent, name)?;
            Ok((f, a))
        });
        match made {
            Ok((f, a)) => {
                let fh = self.new_fh();
                self.files.lock().unwrap().insert(fh, Arc::new(f));
                reply.created(&TTL, &a, Generation(0), FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            self.file(fh).and_then(|f| {
                // SAFETY: f is open.
                check(unsafe {
                    libc::fallocate(
                        f.as_raw_fd(),
                        mode,
                        offset as libc::off_t,
                        length as libc::off_t,
                    )
                })
            }),
        );
    }
}
