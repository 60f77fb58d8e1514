//! A PostgreSQL cluster of a test's own: Debian's initdb and postgres run
//! in a fresh temporary directory, as `nobody` when the test runs as root
//! (PostgreSQL refuses root), in a network namespace of their own, and
//! listening on a Unix socket in that directory only. Dropping it stops
//! the server by the PID started and removes the directory.
//!
//! One file for both kinds of test: tests/common/mod.rs has it as `pg`,
//! and the library's unit tests include it by path (src/aasd/mod.rs).
//! Only std and libc, which both have.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The port only names the socket file (`.s.PGSQL.5432`): no TCP.
pub const PORT: u16 = 5432;
/// The superuser initdb makes; it may connect without a password.
pub const SUPERUSER: &str = "postgres";

/// The newest PostgreSQL of /usr/lib/postgresql/*/bin.
pub fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .expect("/usr/lib/postgresql: install Debian's postgresql (tests/install-deps.sh)")
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .expect("no initdb under /usr/lib/postgresql/*/bin")
        .1
}

/// uid and gid for the server: nobody's when root, else our own.
fn server_ids() -> (u32, u32) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // SAFETY: neither has preconditions.
        return unsafe { (libc::geteuid(), libc::getegid()) };
    }
    let name = c"nobody";
    // SAFETY: a NUL-terminated name; the result is read at once, before
    // any other getpw* call of this thread.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!pw.is_null(), "no user nobody to run PostgreSQL as");
    // SAFETY: checked non-null above; a passwd record from libc.
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

pub struct Cluster {
    /// The data directory's parent: data/, the socket, the log.
    pub dir: PathBuf,
    pub data: PathBuf,
    bin: PathBuf,
    ids: (u32, u32),
    server: Option<Child>,
}

impl Cluster {
    /// A new cluster, started and accepting connections.
    pub fn start() -> Cluster {
        let mut c = Cluster::new_dir();
        let data = c.data.display().to_string();
        c.run_as_server(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--auth=trust",
            ],
        );
        // The superuser needs no password; every other role its own.
        c.write_as_server(
            "data/pg_hba.conf",
            &format!(
                "local all {SUPERUSER} trust\nlocal replication {SUPERUSER} trust\n\
                 local all all scram-sha-256\n"
            ),
        );
        c.start_server();
        c
    }

    /// A standby streaming from `primary`: a base backup of it, started.
    pub fn standby_of(primary: &Cluster) -> Cluster {
        let mut c = Cluster::new_dir();
        let data = c.data.display().to_string();
        let host = primary.dir.display().to_string();
        c.run_as_server(
            "pg_basebackup",
            &[
                "-D",
                &data,
                "-h",
                &host,
                "-p",
                &PORT.to_string(),
                "-U",
                SUPERUSER,
                "-R",
                "-X",
                "stream",
                // Not a spread checkpoint of minutes first.
                "--checkpoint=fast",
                "--no-sync",
            ],
        );
        c.start_server();
        c
    }

    /// A fresh directory for a cluster, owned by the server's user.
    fn new_dir() -> Cluster {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "aasd-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        let ids = server_ids();
        std::os::unix::fs::chown(&dir, Some(ids.0), Some(ids.1)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        Cluster {
            data: dir.join("data"),
            dir,
            bin: bin_dir(),
            ids,
            server: None,
        }
    }

    /// A command of PostgreSQL's, as the server's user, in a network
    /// namespace of its own when we may make one.
    fn server_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(&self.dir).env("LC_ALL", "C");
        let (uid, gid) = self.ids;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let root = libc::geteuid() == 0;
                if root
                    && (libc::unshare(libc::CLONE_NEWNET) != 0
                        || libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0)
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    fn run_as_server(&self, program: &str, args: &[&str]) -> Output {
        let out = self
            .server_command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A file under the cluster's directory, owned by the server's user.
    pub fn write_as_server(&self, name: &str, text: &str) {
        let path = self.dir.join(name);
        fs::write(&path, text).unwrap();
        std::os::unix::fs::chown(&path, Some(self.ids.0), Some(self.ids.1)).unwrap();
    }

    /// Start the server again (after [`Cluster::stop`]), and wait until
    /// it accepts connections.
    pub fn start_server(&mut self) {
        assert!(self.server.is_none(), "the server runs already");
        let log = fs::File::create(self.log_path()).unwrap();
        std::os::unix::fs::chown(self.log_path(), Some(self.ids.0), Some(self.ids.1)).unwrap();
        let child = self
            .server_command("postgres")
            .arg("-D")
            .arg(&self.data)
            .args(["-c", "listen_addresses="])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.display()))
            .args(["-c", &format!("port={PORT}")])
            .args(["-c", "dynamic_shared_memory_type=mmap"])
            .args(["-c", "fsync=off", "-c", "max_connections=40"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("postgres");
        self.server = Some(child);
        self.wait_ready();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Poll until a connection gets in (the startup packet is answered),
    /// for at most 60 s.
    fn wait_ready(&mut self) {
        let t0 = Instant::now();
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .arg("-q")
                .arg("-h")
                .arg(&self.dir)
                .args(["-p", &PORT.to_string(), "-U", SUPERUSER, "-t", "5"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            if let Some(status) = self
                .server
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "postgres ended ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "postgres not ready after 60 s:\n{}",
                self.log()
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Stop the server (a fast shutdown: sessions are ended) and wait
    /// until it is gone. The data stay.
    pub fn stop(&mut self) {
        let Some(mut child) = self.server.take() else {
            return;
        };
        // SAFETY: kill has no memory preconditions; the PID is our child's.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The PID of the postmaster, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(|c| c.id())
    }

    /// Run SQL as the superuser in `db`; psql's unaligned output.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = self.psql(SUPERUSER, db, sql);
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// psql as `user`, its result as it is (the password, if any, from
    /// PGPASSWORD of the caller).
    pub fn psql(&self, user: &str, db: &str, sql: &str) -> Output {
        Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-w"])
            .arg("-h")
            .arg(&self.dir)
            .args(["-p", &PORT.to_string(), "-U", user, "-d", db, "-c", sql])
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .expect("psql")
    }

    /// A login role with a password, and a database it owns.
    pub fn create_user_db(&self, user: &str, password: &str, db: &str) {
        self.sql(
            "postgres",
            &format!("CREATE ROLE {user} LOGIN PASSWORD '{password}'"),
        );
        self.sql("postgres", &format!("CREATE DATABASE {db} OWNER {user}"));
    }

    /// A libpq connection string to `db` as `user`, by the socket.
    pub fn conninfo(&self, user: &str, db: &str) -> String {
        format!(
            "host={} port={PORT} user={user} dbname={db}",
            self.dir.display()
        )
    }

    /// A passfile (mode 0600, in a directory of its own beside the
    /// cluster's) with `user`'s password for every database of this
    /// cluster's socket.
    pub fn passfile(&self, user: &str, password: &str) -> PathBuf {
        let path = self.dir.with_extension("pgpass");
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        let host = self.dir.display().to_string().replace(':', "\\:");
        writeln!(f, "{host}:{PORT}:*:{user}:{password}").unwrap();
        path
    }

    /// Make a standby the primary, and wait until it takes writes.
    pub fn promote(&self) {
        self.run_as_server(
            "pg_ctl",
            &[
                "promote",
                "-w",
                "-t",
                "60",
                "-D",
                &self.data.display().to_string(),
            ],
        );
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(self.dir.with_extension("pgpass"));
    }
}
