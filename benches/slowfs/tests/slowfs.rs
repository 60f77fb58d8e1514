//! slowfs mounted for real (needs root and /dev/fuse): what is written and
//! synced through it is in the backing directory, every kind of sync takes
//! at least the delay, and the file operations in.aasd uses work.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DELAY: Duration = Duration::from_millis(50);

/// A mounted slowfs, stopped (SIGTERM, by its PID) and waited for on drop.
struct Mounted {
    child: Child,
    top: PathBuf,
}

impl Mounted {
    fn new(name: &str) -> Mounted {
        let top = std::env::temp_dir().join(format!("slowfs-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&top);
        fs::create_dir_all(top.join("backing")).unwrap();
        fs::create_dir_all(top.join("mnt")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_slowfs"))
            .arg("-d")
            .arg(DELAY.as_millis().to_string())
            .arg(top.join("backing"))
            .arg(top.join("mnt"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Its first line comes once the mount answers, or it exits saying why.
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("mounted on"), "slowfs did not mount: {line}");
        Mounted { child, top }
    }

    fn mnt(&self) -> PathBuf {
        self.top.join("mnt")
    }

    fn backing(&self) -> PathBuf {
        self.top.join("backing")
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        // SAFETY: a signal to the child we started, by its PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let _ = fs::remove_dir_all(&self.top);
        if !std::thread::panicking() {
            assert!(status.success(), "slowfs ended with {status}");
        }
    }
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn at_least_the_delay(what: &str, took: Duration) {
    // A lower bound only: the wait follows a real sync and a round trip.
    assert!(
        took >= DELAY,
        "{what} took {took:?}, less than the {DELAY:?} delay"
    );
}

#[test]
fn written_and_synced_data_is_on_the_backing_dir_and_each_sync_takes_the_delay() {
    let m = Mounted::new("sync");
    fs::create_dir(m.mnt().join("db")).unwrap();
    let path = m.mnt().join("db/aasd.log");
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"first record\n").unwrap();
    at_least_the_delay("fdatasync", timed(|| f.sync_data().unwrap()));
    f.write_all(b"second record\n").unwrap();
    at_least_the_delay("fsync", timed(|| f.sync_all().unwrap()));
    let dir = File::open(m.mnt().join("db")).unwrap();
    at_least_the_delay("fsync of a directory", timed(|| dir.sync_all().unwrap()));
    assert_eq!(
        fs::read(m.backing().join("db/aasd.log")).unwrap(),
        b"first record\nsecond record\n"
    );
    assert_eq!(fs::read(&path).unwrap(), b"first record\nsecond record\n");
}

#[test]
fn the_file_operations_of_in_aasd_work() {
    let m = Mounted::new("ops");
    let db = m.mnt().join("db");
    fs::create_dir_all(db.join("checkpoints")).unwrap();

    // The lock file: a second exclusive flock is refused while one is held.
    let lock = |p: &Path| {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(p)
            .unwrap();
        // SAFETY: flock on a descriptor we own.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        (f, r)
    };
    let (_held, r) = lock(&db.join("lock"));
    assert_eq!(r, 0, "first flock");
    let (_second, r) = lock(&db.join("lock"));
    assert_ne!(r, 0, "a second exclusive flock was granted");

    // Write new, sync, rename over the old, sync the directory (compaction).
    fs::write(db.join("aasd.log"), b"old").unwrap();
    let mut new = File::create(db.join("aasd.new")).unwrap();
    new.write_all(b"compacted").unwrap();
    new.sync_all().unwrap();
    let old_ino = fs::metadata(db.join("aasd.log")).unwrap().ino();
    fs::rename(db.join("aasd.new"), db.join("aasd.log")).unwrap();
    File::open(&db).unwrap().sync_all().unwrap();
    assert_ne!(fs::metadata(db.join("aasd.log")).unwrap().ino(), old_ino);
    assert_eq!(
        fs::read(m.backing().join("db/aasd.log")).unwrap(),
        b"compacted"
    );
    assert!(!m.backing().join("db/aasd.new").exists());

    // Writes at an offset, truncation, a hard link kept aside, unlink.
    let f = OpenOptions::new()
        .write(true)
        .open(db.join("aasd.log"))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"XY", 4).unwrap();
    f.set_len(7).unwrap();
    assert_eq!(fs::read(db.join("aasd.log")).unwrap(), b"compXYt");
    fs::hard_link(db.join("aasd.log"), db.join("aasd.log.corrupt.1")).unwrap();
    assert_eq!(fs::metadata(db.join("aasd.log")).unwrap().nlink(), 2);
    fs::write(db.join("checkpoints/aasd.00000001.ckpt"), b"ckpt").unwrap();
    fs::remove_file(db.join("aasd.log.corrupt.1")).unwrap();

    // Directory listings, chmod and chown, as the backing dir sees them.
    let mut names: Vec<_> = fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["aasd.log", "checkpoints", "lock"]);
    fs::set_permissions(db.join("aasd.log"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(db.join("aasd.log"), Some(1), Some(1)).unwrap();
    let meta = fs::metadata(m.backing().join("db/aasd.log")).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.uid(), meta.gid()), (0o640, 1, 1));

    // A Unix socket and a file opened with an explicit mode.
    let sock = std::os::unix::net::UnixListener::bind(db.join("aasd.sock")).unwrap();
    drop(sock);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db.join("x"))
        .unwrap();
    assert_eq!(
        fs::metadata(m.backing().join("db/x")).unwrap().mode() & 0o777,
        0o600
    );
    fs::remove_dir_all(&db).unwrap();
    assert!(!m.backing().join("db").exists());
}
