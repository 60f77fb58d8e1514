//! in.aasd on PostgreSQL, with real parts: a cluster of the test's own
//! (tests/common/pg.rs) and real in.aasd processes on Unix sockets in the
//! test's directory (no network: nothing here listens on TCP).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::pg::Cluster;

/// A cluster with the role `aasd` (password from a passfile) owning the
/// database `leases`.
fn cluster() -> (Cluster, PathBuf) {
    let c = Cluster::start();
    c.create_user_db("aasd", "s3cret", "leases");
    let passfile = c.passfile("aasd", "s3cret");
    (c, passfile)
}

/// A cluster, a scratch directory `name`, and the connection string of
/// `aasd` with its passfile: what most tests begin with.
fn setup(name: &str) -> (Cluster, PathBuf, String) {
    let (c, passfile) = cluster();
    let conninfo = with_passfile(&c, "aasd", &passfile);
    (c, scratch(name), conninfo)
}

/// The connection string of `user` to the test database, its password
/// in `passfile`.
fn with_passfile(c: &Cluster, user: &str, passfile: &Path) -> String {
    format!(
        "{} passfile={}",
        c.conninfo(user, "leases"),
        passfile.display()
    )
}

/// One in.aasd on `store = postgresql`, in the foreground, its log in a
/// file; killed by its PID when dropped.
struct Aasd {
    child: Child,
    dir: PathBuf,
}

impl Aasd {
    fn conf(dir: &Path, conninfo: &str, pools: &str) -> PathBuf {
        fs::create_dir_all(dir).unwrap();
        let conf = dir.join("aasd.conf");
        fs::write(
            &conf,
            format!(
                "database_dir = {d}\nsocket = {d}/aasd.sock\nstore = postgresql\n\
                 postgresql = {conninfo}\n{pools}",
                d = dir.display()
            ),
        )
        .unwrap();
        conf
    }

    fn start(dir: &Path, conninfo: &str, pools: &str) -> Aasd {
        let conf = Aasd::conf(dir, conninfo, pools);
        let log = fs::File::create(dir.join("aasd.log")).unwrap();
        let child = Command::new(common::aasd_bin())
            .args(["-D", "3", "-c"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let a = Aasd {
            child,
            dir: dir.to_path_buf(),
        };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if a.try_ask("PING").is_some_and(|l| l.starts_with("OK")) {
                return a;
            }
            sleep(Duration::from_millis(20));
        }
        panic!("in.aasd did not start: {}", a.log());
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("aasd.sock")
    }

    fn log(&self) -> String {
        common::read(&self.dir.join("aasd.log").display().to_string())
    }

    fn try_ask(&self, line: &str) -> Option<String> {
        let s = UnixStream::connect(self.sock()).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut w = s.try_clone().unwrap();
        writeln!(w, "{line}").ok()?;
        let mut answer = String::new();
        let mut r = BufReader::new(s);
        // Rows up to END, or one line.
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).ok()? == 0 {
                return None;
            }
            let done = !l.starts_with("LEASE ") && !l.starts_with("POOL ");
            answer.push_str(&l);
            if done {
                return Some(answer.trim_end().to_string());
            }
        }
    }

    /// Ask until the answer is not `ERR io` (in.aasd tries to connect
    /// again at most every 5 s), for at most 20 s.
    fn ask_until_reconnected(&self, line: &str) -> String {
        let t0 = Instant::now();
        loop {
            let answer = self.ask(line);
            if !answer.starts_with("ERR io ") || t0.elapsed() > Duration::from_secs(20) {
                return answer;
            }
            sleep(Duration::from_millis(200));
        }
    }

    fn ask(&self, line: &str) -> String {
        self.try_ask(line)
            .unwrap_or_else(|| panic!("no answer to {line}: {}", self.log()))
    }
}

impl Drop for Aasd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait until the clock is in a later second than when called.
fn next_second() {
    let secs = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let start = secs();
    let t0 = Instant::now();
    while secs() == start {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "the clock stands still"
        );
        sleep(Duration::from_millis(10));
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("aasd-pgtest-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// The harness itself: a cluster comes up, takes a role with a password
/// read from a passfile, and is gone with its directory when dropped.
#[test]
fn harness_cluster_with_passfile() {
    let (c, passfile) = cluster();
    let out = Command::new(common::pg::bin_dir().join("psql"))
        .args(["-X", "-A", "-t", "-w", "-c", "SELECT current_user"])
        .arg(c.conninfo("aasd", "leases"))
        .env("PGPASSFILE", &passfile)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "aasd");
    // Without the passfile the role is refused.
    let out = c.psql("aasd", "leases", "SELECT 1");
    assert!(!out.status.success());
    let (dir, pid) = (c.path().to_path_buf(), c.pid().unwrap());
    drop(c);
    assert!(!dir.exists());
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}

/// (e) Two in.aasd, one database, one pool of 100: eight requesters (four
/// on each) ask at once for 200 clients, five requests at a time. Exactly
/// 100 get an address, no address goes to two clients, and both in.aasd
/// then list the same 100.
#[test]
fn two_aasd_share_one_pool_without_giving_an_address_twice() {
    let (c, dir, conninfo) = setup("two");
    let pools = "[pool P]\nrange = 10.0.0.1-10.0.0.100\n";
    let a = Aasd::start(&dir.join("a"), &conninfo, pools);
    let b = Aasd::start(&dir.join("b"), &conninfo, pools);
    let socks = [a.sock(), b.sock()];
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let sock = socks[t % 2].clone();
            std::thread::spawn(move || {
                let s = UnixStream::connect(&sock).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let mut got = Vec::new();
                for burst in 0..5 {
                    let clients: Vec<String> =
                        (0..5).map(|i| format!("t{t}-c{burst}-{i}")).collect();
                    for client in &clients {
                        writeln!(w, "ALLOC P dhcp {client} 3600").unwrap();
                    }
                    for client in clients {
                        let mut l = String::new();
                        r.read_line(&mut l).unwrap();
                        got.push((client, l.trim_end().to_string()));
                    }
                }
                got
            })
        })
        .collect();
    let mut granted: BTreeMap<String, String> = BTreeMap::new();
    let mut refused = 0;
    for t in threads {
        for (client, answer) in t.join().unwrap() {
            let words: Vec<&str> = answer.split(' ').collect();
            match words.as_slice() {
                ["OK", addr, ..] => {
                    if let Some(other) = granted.insert(addr.to_string(), client.clone()) {
                        panic!("{addr} given to {other} and to {client}");
                    }
                }
                ["ERR", "exhausted", ..] => refused += 1,
                _ => panic!("{client}: {answer}\n{}\n{}", a.log(), b.log()),
            }
        }
    }
    assert_eq!((granted.len(), refused), (100, 100), "{granted:?}");
    for d in [&a, &b] {
        let rows = d.ask("QUERY state=leased");
        let listed: BTreeMap<String, String> = rows
            .lines()
            .filter(|l| l.starts_with("LEASE "))
            .map(|l| {
                let w: Vec<&str> = l.split(' ').collect();
                (w[1].to_string(), w[6].to_string())
            })
            .collect();
        assert_eq!(listed, granted, "{rows}");
    }
    let clients: BTreeSet<String> = c
        .sql(
            "leases",
            "SELECT client FROM aasd_leases WHERE state = 'leased'",
        )
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(clients.len(), 100);
    // LRU across both: released on a, highest address first, each in a
    // second of its own; b hands them out oldest release first.
    let mut addrs: Vec<std::net::Ipv4Addr> = granted.keys().map(|a| a.parse().unwrap()).collect();
    addrs.sort_unstable();
    let released: Vec<String> = addrs[..3].iter().rev().map(|a| a.to_string()).collect();
    for addr in &released {
        next_second();
        assert_eq!(a.ask(&format!("RELEASE {addr}")), "OK");
    }
    for (i, want) in released.iter().enumerate() {
        let answer = b.ask(&format!("ALLOC P dhcp late{i} 3600"));
        assert!(
            answer.starts_with(&format!("OK {want} ")),
            "{answer}, wanted {want}"
        );
    }
    drop((a, b));
    fs::remove_dir_all(&dir).unwrap();
}

/// The database gone: requests are refused with `io`, one line a minute
/// is logged however many fail; back, in.aasd reconnects by itself and
/// the lease from before is still there.
#[test]
fn unreachable_database_answers_io_then_reconnects() {
    let (mut c, dir, conninfo) = setup("down");
    let a = Aasd::start(&dir, &conninfo, "[pool P]\nrange = 10.0.0.1-10.0.0.20\n");
    assert!(a.ask("ALLOC P dhcp one 3600").starts_with("OK 10.0.0.1 "));
    c.stop();
    for client in ["two", "three", "four"] {
        let answer = a.ask(&format!("ALLOC P dhcp {client} 3600"));
        assert!(answer.starts_with("ERR io "), "{answer}");
    }
    let log = a.log();
    assert_eq!(
        log.matches("logged at most once a minute; connecting again")
            .count(),
        1,
        "{log}"
    );
    c.start_server();
    let answer = a.ask_until_reconnected("ALLOC P dhcp two 3600");
    assert!(answer.starts_with("OK 10.0.0.2 "), "{answer}\n{}", a.log());
    assert!(a
        .ask("QUERY client=one")
        .starts_with("LEASE 10.0.0.1 P leased"));
    drop(a);
    fs::remove_dir_all(&dir).unwrap();
}

/// Primary and streaming standby named in one multi-host string with
/// target_session_attrs=read-write, the standby synchronous: the primary is
/// killed outright, the standby promoted, and in.aasd follows to it with
/// every lease it acknowledged.
#[test]
fn follows_a_promoted_standby() {
    let (mut primary, passfile) = cluster();
    let standby = Cluster::standby_of(&primary);
    let passfile2 = standby.passfile("aasd", "s3cret");
    // One passfile for both hosts.
    let both = fs::read_to_string(&passfile).unwrap() + &fs::read_to_string(&passfile2).unwrap();
    fs::write(&passfile, both).unwrap();
    // A commit waits until the standby has it (synchronous_commit is on).
    primary.sql(
        "postgres",
        "ALTER SYSTEM SET synchronous_standby_names = '*'",
    );
    primary.sql("postgres", "SELECT pg_reload_conf()");
    let t0 = Instant::now();
    while primary.sql("postgres", "SELECT sync_state FROM pg_stat_replication") != "sync" {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no synchronous standby"
        );
        sleep(Duration::from_millis(50));
    }
    let dir = scratch("promote");
    let conninfo = format!(
        "host={},{} port=5432,5432 user=aasd dbname=leases target_session_attrs=read-write \
         passfile={}",
        primary.path().display(),
        standby.path().display(),
        passfile.display()
    );
    let a = Aasd::start(&dir, &conninfo, "[pool P]\nrange = 10.0.0.1-10.0.0.20\n");
    let acked: Vec<String> = (0..5)
        .map(|i| {
            let answer = a.ask(&format!("ALLOC P dhcp c{i} 3600"));
            assert!(answer.starts_with("OK 10.0.0."), "{answer}");
            answer.split(' ').nth(1).unwrap().to_string()
        })
        .collect();
    // No shutdown: the primary dies right after the last ACK.
    let pid = primary.pid().expect("the primary runs");
    // SAFETY: kill has no memory preconditions; the PID is the cluster's.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    primary.stop();
    // The standby is read-only: no host is right for now.
    let answer = a.ask("ALLOC P dhcp late 3600");
    assert!(answer.starts_with("ERR io "), "{answer}");
    standby.promote();
    let answer = a.ask_until_reconnected("ALLOC P dhcp late 3600");
    assert!(answer.starts_with("OK 10.0.0.6 "), "{answer}\n{}", a.log());
    for (i, addr) in acked.iter().enumerate() {
        let row = a.ask(&format!("QUERY client=c{i}"));
        assert!(row.starts_with(&format!("LEASE {addr} P leased")), "{row}");
    }
    drop(a);
    fs::remove_dir_all(&dir).unwrap();
}

/// `in.aasd --init-db -c conf`: (exit status, stdout+stderr).
fn init_db(conf: &Path) -> (i32, String) {
    let out = Command::new(common::aasd_bin())
        .arg("--init-db")
        .arg("-c")
        .arg(conf)
        .output()
        .unwrap();
    common::status_and_text(&out)
}

/// `--init-db` creates the schema, finds it current the next time, and
/// refuses, as the start does, a newer version or tables without one.
#[test]
fn init_db_creates_the_schema_and_refuses_newer_or_unknown_ones() {
    let (c, dir, conninfo) = setup("init");
    let conf = Aasd::conf(&dir, &conninfo, "[pool P]\nrange = 10.0.0.1-10.0.0.20\n");
    let init = || init_db(&conf);
    assert_eq!(init(), (0, "in.aasd: created schema version 1\n".into()));
    assert_eq!(c.sql("leases", "SELECT version FROM aasd_schema"), "1");
    assert_eq!(init(), (0, "in.aasd: schema version 1 is current\n".into()));
    c.sql("leases", "UPDATE aasd_schema SET version = 7");
    let (status, text) = init();
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains("schema version 7, newer than this in.aasd's 1"),
        "{text}"
    );
    // The start refuses it too, saying why.
    let out = Command::new(common::aasd_bin())
        .args(["-D", "3", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    let (status, text) = common::status_and_text(&out);
    assert_eq!(status, 1, "{text}");
    assert!(text.contains("newer than this in.aasd's 1"), "{text}");
    c.sql("leases", "DROP TABLE aasd_schema");
    let (status, text) = init();
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains("in.aasd's tables but no schema version it knows (no table aasd_schema)"),
        "{text}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

/// The rights in.aasd(8) names are enough to run once the schema is
/// made: a user with only those allocates, reserves and unreserves.
#[test]
fn runs_with_the_documented_rights_only() {
    let (c, dir, owner) = setup("rights");
    let pools = "[pool P]\nrange = 10.0.0.1-10.0.0.20\n";
    let conf = Aasd::conf(&dir.join("owner"), &owner, pools);
    let (status, text) = init_db(&conf);
    assert_eq!(status, 0, "{text}");
    c.sql("postgres", "CREATE ROLE runner LOGIN PASSWORD 'r'");
    c.sql(
        "leases",
        "GRANT SELECT ON aasd_schema TO runner; \
         GRANT SELECT, INSERT, UPDATE ON aasd_leases, aasd_reservations TO runner; \
         GRANT DELETE ON aasd_reservations TO runner; \
         GRANT USAGE ON SEQUENCE aasd_change TO runner",
    );
    let passfile = c.passfile("runner", "r");
    let runner = with_passfile(&c, "runner", &passfile);
    let a = Aasd::start(&dir.join("runner"), &runner, pools);
    assert!(a.ask("ALLOC P dhcp one 3600").starts_with("OK 10.0.0.1 "));
    assert_eq!(a.ask("RESERVE 10.0.0.5 dhcp fixed"), "OK");
    assert_eq!(a.ask("UNRESERVE 10.0.0.5"), "OK");
    assert_eq!(a.ask("DECLINE 10.0.0.1 60"), "OK");
    assert_eq!(
        c.sql("leases", "SELECT count(*) FROM aasd_reservations"),
        "0"
    );
    // Without the rights, the change is refused and not acknowledged.
    c.sql("leases", "REVOKE UPDATE ON aasd_leases FROM runner");
    let answer = a.ask("ALLOC P dhcp two 3600");
    assert!(answer.starts_with("ERR io "), "{answer}");
    drop(a);
    fs::remove_dir_all(&dir).unwrap();
}

/// An acknowledged lease is in the database before the answer: in.aasd
/// killed right after, the next one has it.
#[test]
fn an_acknowledged_lease_outlives_sigkill() {
    let (_cluster, dir, conninfo) = setup("kill");
    let pools = "[pool P]\nrange = 10.0.0.1-10.0.0.20\n";
    let mut a = Aasd::start(&dir, &conninfo, pools);
    let granted = a.ask("ALLOC P dhcp one 3600");
    assert!(granted.starts_with("OK 10.0.0.1 "), "{granted}");
    common::kill9(a.child.id());
    let _ = a.child.wait();
    let _ = fs::remove_file(a.sock());
    let b = Aasd::start(&dir, &conninfo, pools);
    let row = b.ask("QUERY client=one");
    assert!(
        row.starts_with("LEASE 10.0.0.1 P leased no dhcp one "),
        "{row}"
    );
    drop((a, b));
    fs::remove_dir_all(&dir).unwrap();
}

/// `aasadmin checkpoint` on the PostgreSQL store is refused with the
/// reason (PostgreSQL checkpoints itself; pg_dump backs up), and in.aasd
/// logs no error for it, then or at its periodic checkpoint.
#[test]
fn checkpoint_on_postgresql_is_refused_with_the_reason() {
    let (_cluster, dir, conninfo) = setup("ckpt");
    let pools = "checkpoint_intvl = 1\n[pool P]\nrange = 10.0.0.1-10.0.0.20\n";
    let a = Aasd::start(&dir, &conninfo, pools);
    assert!(a.ask("ALLOC P dhcp one 3600").starts_with("OK 10.0.0.1 "));
    let out = Command::new(common::aasadmin_bin())
        .arg("-s")
        .arg(a.sock())
        .arg("checkpoint")
        .output()
        .unwrap();
    let (status, text) = common::status_and_text(&out);
    assert_ne!(status, 0, "{text}");
    assert!(
        text.contains("PostgreSQL makes its own checkpoints"),
        "{text}"
    );
    assert!(text.contains("pg_dump"), "{text}");
    // Past a periodic checkpoint (1 s): still serving, nothing logged.
    next_second();
    next_second();
    assert!(a.ask("ALLOC P dhcp two 3600").starts_with("OK 10.0.0.2 "));
    let log = a.log();
    assert!(!log.contains("checkpoint"), "{log}");
    drop(a);
    fs::remove_dir_all(&dir).unwrap();
}
