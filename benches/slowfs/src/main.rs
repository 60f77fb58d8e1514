//! slowfs: the benchmark's slow disk. Mounts a FUSE passthrough of BACKING
//! on MOUNTPOINT whose fsync, fdatasync and directory fsync each take MS
//! milliseconds more than the backing disk's (the wait follows the real
//! sync; syncs that overlap wait side by side, as on a disk with a queue).
//! Runs until SIGTERM, SIGINT or an unmount; needs root, for mount(2).

mod fs;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use fuser::{Config, MountOption, Session, SessionACL};

const USAGE: &str = "usage: slowfs [-d MS] BACKING MOUNTPOINT";

/// FUSE request threads: an fsync's wait holds one, the rest go on.
const THREADS: usize = 4;

struct Args {
    delay: Duration,
    backing: PathBuf,
    mountpoint: PathBuf,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut delay = Duration::ZERO;
    let mut paths = Vec::new();
    while let Some(a) = argv.next() {
        match a.as_str() {
            "-d" => {
                let ms = argv.next().ok_or("-d wants milliseconds")?;
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| format!("-d {ms}: not a whole number of milliseconds"))?;
                delay = Duration::from_millis(ms);
            }
            "-h" | "--help" => return Err(String::new()),
            _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ => paths.push(PathBuf::from(a)),
        }
    }
    let [backing, mountpoint] =
        <[PathBuf; 2]>::try_from(paths).map_err(|_| "wants BACKING and MOUNTPOINT".to_string())?;
    Ok(Args {
        delay,
        backing,
        mountpoint,
    })
}

/// Block the stop signals in every thread (the FUSE threads inherit the
/// mask), so that only `sigwait` below takes them.
fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset fills the set before it is read; the calls only
    // touch the set we own and this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("slowfs: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let set = stop_signals();
    let fs = match fs::SlowFs::new(&args.backing, args.delay) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("slowfs: {}: {e}", args.backing.display());
            return ExitCode::FAILURE;
        }
    };
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("slowfs".into()),
        MountOption::Subtype("slowfs".into()),
        // The kernel checks permissions as on a disk; we serve as root.
        MountOption::DefaultPermissions,
    ];
    config.acl = SessionACL::All;
    config.n_threads = Some(THREADS);
    let mut session = match Session::new(fs, &args.mountpoint, &config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("slowfs: mounting on {}: {e}", args.mountpoint.display());
            return ExitCode::FAILURE;
        }
    };
    let mut unmounter = session.unmount_callable();
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: set holds the blocked stop signals; sig is ours.
        unsafe { libc::sigwait(&set, &mut sig) };
        if let Err(e) = unmounter.unmount() {
            eprintln!("slowfs: unmount: {e}");
            std::process::exit(1);
        }
    });
    // The line the benchmark waits for: the mount answers from here on.
    eprintln!(
        "slowfs: {} mounted on {}, fsync + {} ms",
        args.backing.display(),
        args.mountpoint.display(),
        args.delay.as_millis()
    );
    match session.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slowfs: {e}");
            ExitCode::FAILURE
        }
    }
}
