//! in.aasd on its own: aasadmin's commands, reload rules, the socket's
//! mode, configuration errors, and recovery from a torn or lost log.

mod common;

use std::fs;
use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;
use indhcpd::aas::client::{Link, Target};
use indhcpd::aas::lease::{Alloc, Want};
use indhcpd::aas::proto::{Reply, Request};

const POOL: &str = "[pool P]\nrange = 10.0.0.10-10.0.0.19\n";

#[test]
fn aasadmin_commands_checkpoints_and_reload_rules() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf("checkpoint_intvl = 1\n", POOL);
    net.start_aasd("srv", &conf);
    let mode = fs::metadata(net.path("aasd.sock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);

    let exact = Request::Alloc(Alloc {
        want: Want::Exact(u32::from(Ipv4Addr::new(10, 0, 0, 12))),
        ..alloc_of("P", "ppp", "line2", 3600)
    });
    let a = ask_aas(&net, &[alloc_request("P", "ppp", "line1", 3600), exact]);
    let a: Vec<_> = a.into_iter().map(allocated).collect();
    assert_eq!(
        a,
        [
            Ok(Ipv4Addr::new(10, 0, 0, 10)),
            Ok(Ipv4Addr::new(10, 0, 0, 12))
        ]
    );

    let (code, text) = net.aasadmin(&["query", "10.0.0.10"]);
    assert_eq!(code, 0);
    assert!(
        text.contains("10.0.0.10  P     leased  ppp      line1"),
        "{text}"
    );
    assert_eq!(net.aasadmin(&["disable", "10.0.0.11"]).0, 0);
    let (_, text) = net.aasadmin(&["list", "state=disabled"]);
    assert!(
        text.contains("10.0.0.11") && text.contains("1 address(es)"),
        "{text}"
    );
    assert_eq!(net.aasadmin(&["release", "10.0.0.10"]).0, 0);
    let (_, text) = net.aasadmin(&["--json", "stats"]);
    assert!(
        text.contains("\"pool\": \"P\", \"size\": 10, \"leased\": 1, \"offered\": 0, \"free\": 8, \"disabled\": 1, \"declined\": 0"),
        "{text}"
    );
    assert_eq!(net.aasadmin(&["enable", "10.0.0.11"]).0, 0);
    let (code, text) = net.aasadmin(&["release", "10.9.9.9"]);
    assert_eq!(code, 1);
    assert!(text.contains("refused (notinpool)"), "{text}");

    // Checkpoints: on demand, and by the timer after a change.
    let (code, text) = net.aasadmin(&["checkpoint"]);
    assert_eq!(code, 0, "{text}");
    let ckdir = net.path("aasdb/checkpoints");
    let count = || fs::read_dir(&ckdir).unwrap().count();
    assert_eq!(count(), 1);
    ask_aas(&net, &[alloc_request("P", "ppp", "line3", 3600)]);
    sleep(Duration::from_millis(2500));
    assert_eq!(count(), 2, "the timer wrote one after the change");

    // A new file without 10.0.0.12 (leased) is refused; the pools stay.
    fs::write(
        &conf,
        fs::read_to_string(&conf)
            .unwrap()
            .replace("10.0.0.19", "10.0.0.11"),
    )
    .unwrap();
    let (code, text) = net.aasadmin(&["reload"]);
    assert_eq!(code, 1);
    assert!(
        text.contains("reload refused") && text.contains("10.0.0.12"),
        "{text}"
    );
    assert!(read(&net.path("aasd.log")).contains("reload refused"));
    // A larger pool is taken.
    fs::write(
        &conf,
        fs::read_to_string(&conf)
            .unwrap()
            .replace("10.0.0.11\n", "10.0.0.29\n"),
    )
    .unwrap();
    assert_eq!(net.aasadmin(&["reload"]).0, 0);
    let (_, text) = net.aasadmin(&["stats", "P"]);
    assert!(text.contains("P     20"), "{text}");

    let (code, text) = net.aasadmin_at(Path::new("/nonexistent/aasd.sock"), &["stats"]);
    assert_eq!(code, 1);
    assert!(text.contains("is in.aasd running?"), "{text}");
}

#[test]
fn aasadmin_escapes_control_and_bidi_characters_in_names() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf("", POOL);
    net.start_aasd("srv", &conf);
    // A requester names its client so that a terminal would show it
    // reversed, and the service so that it hides what follows it.
    let alloc = alloc_request("P", "ppp\u{2067}x", "admin\u{202e}gpj.exe", 3600);
    let a = allocated(ask_aas(&net, &[alloc]).remove(0));
    assert_eq!(a, Ok(Ipv4Addr::new(10, 0, 0, 10)));
    let (code, text) = net.aasadmin(&["list"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        !text.contains('\u{202e}') && !text.contains('\u{2067}'),
        "{text:?}"
    );
    assert!(
        text.contains("ppp\\u{2067}x  admin\\u{202e}gpj.exe"),
        "{text}"
    );
    let (_, json) = net.aasadmin(&["--json", "list"]);
    assert!(
        json.contains("\"service\": \"ppp\\u2067x\", \"client\": \"admin\\u202egpj.exe\""),
        "{json}"
    );
}

#[test]
fn configuration_errors_name_file_and_line() {
    let net = Net::new(false);
    let conf = net.aasd_conf(
        "sync = sometimes\n",
        "[pool A]\nrange = 10.0.0.1-10.0.0.9\n[pool B]\naddress = 10.0.0.5\n",
    );
    let out = Command::new(aasd_bin())
        .args(["-C", "-c", &conf])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{conf}:4: sync: \"sometimes\" is not always or never"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{conf}:9: 10.0.0.5 overlaps 10.0.0.1-10.0.0.9 of pool A"
        )),
        "{err}"
    );
}

#[test]
fn torn_tail_is_cut_and_a_lost_log_comes_back_from_the_checkpoint() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf("", POOL);
    let pid = net.start_aasd("srv", &conf);
    let a = ask(
        &net,
        &[
            "ALLOC P ppp a 3600",
            "ALLOC P ppp b 3600",
            "CHECKPOINT",
            "ALLOC P ppp c 3600",
        ],
    );
    assert!(a.iter().all(|l| l.starts_with("OK")), "{a:?}");
    kill9(pid);
    // A write torn by a crash: half a record at the end.
    let log = net.path("aasdb/aasd.log");
    let good = fs::metadata(&log).unwrap().len();
    fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&[0xA5, 40, 0, 1, 2, 3])
        .unwrap();
    let pid = net.start_aasd("srv", &conf);
    assert!(
        read(&net.path("aasd.log")).contains(&format!("torn tail at offset {good}: 6 bytes cut"))
    );
    assert_eq!(fs::metadata(&log).unwrap().len(), good);
    let (_, text) = net.aasadmin(&["list", "state=leased"]);
    assert!(text.contains("3 address(es)"), "{text}");

    // The log lost: the checkpoint (a and b) is what is left.
    kill9(pid);
    fs::remove_file(&log).unwrap();
    net.start_aasd("srv", &conf);
    assert!(read(&net.path("aasd.log")).contains("recovering from checkpoint"));
    let (_, text) = net.aasadmin(&["list", "state=leased"]);
    assert!(
        text.contains("2 address(es)") && text.contains(" a ") && text.contains(" b "),
        "{text}"
    );
}

/// Run `f` on a thread inside network namespace `ns`: sockets it opens
/// belong to that namespace (setns(2) moves only the calling thread).
fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = fs::File::open(&path).unwrap();
            // SAFETY: setns on an open namespace file; affects this thread only.
            let rc =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}");
            f()
        })
        .join()
        .unwrap()
    })
}

const TCP: &str = "127.0.0.1:15310";

fn tcp(net: &Net) -> TcpStream {
    let s = in_ns(&net.ns("srv"), || TcpStream::connect(TCP).unwrap());
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    s
}

/// Send a line, read one answer line ("" when the connection is closed).
fn say(s: &mut TcpStream, line: &str) -> String {
    writeln!(s, "{line}").unwrap();
    read_line(s)
}

fn read_line(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8];
    loop {
        match s.read(&mut b) {
            Ok(1) if b[0] == b'\n' => break,
            Ok(1) => out.push(b[0]),
            // A signal to this process is no answer from in.aasd.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(_) => break,
            Err(e) => {
                eprintln!("read_line: {e} after {:?}", String::from_utf8_lossy(&out));
                break;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// The peer has closed (or reset) the connection.
fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    matches!(s.read(&mut b), Ok(0) | Err(_)) && !matches!(s.read(&mut b), Ok(n) if n > 0)
}

#[test]
fn tcp_auth_failures_are_delayed_closed_and_logged() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf(
        &format!("listen = {TCP}\npassword = right-one\nauth_timeout = 2\nidle_timeout = 3\n"),
        POOL,
    );
    let aasd = net.start_aasd("srv", &conf);
    let log = net.path("aasd.log");

    // A wrong password: answered only after the delay, then closed.
    // Meanwhile the loop serves others: a PING on the Unix socket, there
    // before in.aasd reads the wrong AUTH (it is stopped while both are
    // sent), is answered while the failure is held. No latency is
    // measured: the order is what counts, with the whole delay as margin.
    // The TCP connection is made while in.aasd is stopped too (the kernel
    // completes it), so in.aasd finds it with its AUTH already there: a
    // loaded machine that is slow between the connect and the AUTH cannot
    // make it hit auth_timeout first.
    let signal = |sig| {
        // SAFETY: kill(2) on the in.aasd this test started.
        assert_eq!(unsafe { libc::kill(aasd as i32, sig) }, 0);
    };
    signal(libc::SIGSTOP);
    let mut s = tcp(&net);
    let me = s.local_addr().unwrap();
    let t0 = Instant::now();
    writeln!(s, "AUTH guess-1").unwrap();
    let mut unix = UnixStream::connect(net.path("aasd.sock")).unwrap();
    writeln!(unix, "PING").unwrap();
    signal(libc::SIGCONT);
    unix.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut pong = String::new();
    std::io::BufReader::new(&unix).read_line(&mut pong).unwrap();
    assert!(pong.starts_with("OK in.aasd"), "{pong}");
    s.set_nonblocking(true).unwrap();
    let early = s.peek(&mut [0u8; 8]);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the failed AUTH was answered before the PING: {early:?}"
    );
    s.set_nonblocking(false).unwrap();
    let answer = read_line(&mut s);
    assert_eq!(
        answer,
        "ERR auth authentication failed",
        "after {:?}; in.aasd's log:\n{}",
        t0.elapsed(),
        read(&log)
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t0.elapsed()
    );
    assert!(closed(&mut s));
    let text = read(&log);
    assert!(
        text.contains(&format!(
            "{me}: authentication failed (wrong password): closing"
        )),
        "{text}"
    );
    assert!(!text.contains("guess-1"), "the password is never logged");

    // A request before AUTH: the same, with its own reason.
    let mut s = tcp(&net);
    let me = s.local_addr().unwrap();
    let t0 = Instant::now();
    assert_eq!(say(&mut s, "STATS"), "ERR auth authentication failed");
    assert!(t0.elapsed() >= Duration::from_millis(950));
    assert!(closed(&mut s));
    assert!(read(&log).contains(&format!("{me}: request before AUTH: closing")));

    // A second AUTH is checked too: right is OK, wrong closes.
    let mut s = tcp(&net);
    assert_eq!(say(&mut s, "AUTH right-one"), "OK");
    assert!(say(&mut s, "PING").starts_with("OK in.aasd"));
    assert_eq!(say(&mut s, "AUTH right-one"), "OK");
    assert_eq!(
        say(&mut s, "AUTH guess-2"),
        "ERR auth authentication failed"
    );
    assert!(closed(&mut s));

    // A line over 1024 bytes closes the connection, with or without its newline.
    for end in ["\n", ""] {
        let mut s = tcp(&net);
        assert_eq!(say(&mut s, "AUTH right-one"), "OK");
        write!(s, "PING {}{end}", "x".repeat(2000)).unwrap();
        assert!(closed(&mut s), "{end:?}");
    }
    assert!(read(&log).contains("request line over 1024 bytes: closing"));

    // Idle: no AUTH within auth_timeout (2 s), no request within
    // idle_timeout (3 s); a byte now and then (slowloris) does not count.
    let mut quiet = tcp(&net);
    let mut idle = tcp(&net);
    assert_eq!(say(&mut idle, "AUTH right-one"), "OK");
    let mut slow = tcp(&net);
    assert_eq!(say(&mut slow, "AUTH right-one"), "OK");
    let t0 = Instant::now();
    slow.set_nonblocking(true).unwrap();
    let mut cut = None;
    while t0.elapsed() < Duration::from_secs(6) {
        if slow.write_all(b"P").is_err() || slow.read(&mut [0u8; 8]).is_ok_and(|n| n == 0) {
            cut = Some(t0.elapsed());
            break;
        }
        sleep(Duration::from_millis(500));
    }
    let cut = cut.expect("the slow sender is cut off");
    assert!(
        cut >= Duration::from_millis(2500) && cut < Duration::from_secs(5),
        "{cut:?}"
    );
    assert!(closed(&mut quiet));
    assert!(closed(&mut idle));
    let text = read(&log);
    assert!(text.contains("no AUTH for 2 s: closing"), "{text}");
    assert!(
        text.contains("no complete request for 3 s: closing"),
        "{text}"
    );
    // Still serving.
    let mut s = tcp(&net);
    assert_eq!(say(&mut s, "AUTH right-one"), "OK");
}

#[test]
fn connection_caps_keep_the_unix_socket_for_in_dhcpd() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf(
        &format!("listen = {TCP}\npassword = pw\nmax_tcp_connections = 4\n"),
        POOL,
    );
    net.start_aasd("srv", &conf);
    let quiet = |s: &mut TcpStream| {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let r = s.read(&mut [0u8; 8]);
        matches!(r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    };
    // Three TCP idlers hold the three quarters of the table that
    // unauthenticated connections may have; a fourth closes the oldest of
    // them rather than being refused.
    let mut idlers: Vec<TcpStream> = (0..3).map(|_| tcp(&net)).collect();
    sleep(Duration::from_millis(200));
    let mut extra = tcp(&net);
    assert!(closed(&mut idlers[0]), "the oldest idler is closed");
    assert!(quiet(&mut extra), "the new one stays");
    assert!(idlers[1..].iter_mut().all(quiet), "the other two stay open");
    let oldest = idlers[0].local_addr().unwrap();
    assert!(read(&net.path("aasd.log")).contains(&format!(
        "{oldest}: closed, unauthenticated for 0 s, to make room for"
    )));
    // A table of authenticated connections is not broken into: the next
    // one is refused.
    let [_, one, two] = &mut idlers[..] else {
        unreachable!()
    };
    for s in [&mut extra, one, two] {
        assert_eq!(say(s, "AUTH pw"), "OK");
    }
    let mut fourth = tcp(&net);
    assert_eq!(say(&mut fourth, "AUTH pw"), "OK");
    let mut refused = tcp(&net);
    assert!(closed(&mut refused));
    assert!(read(&net.path("aasd.log")).contains("4 TCP connections open already: refused"));
    // A fresh in.dhcpd-style request on the Unix socket is still served.
    let hold = Request::Alloc(Alloc {
        hold: true,
        ..alloc_of("P", "dhcp", "01:02:03:04:05:06", 60)
    });
    let a = allocated(ask_aas(&net, &[hold]).remove(0));
    assert_eq!(a, Ok(Ipv4Addr::new(10, 0, 0, 10)));

    // The Unix socket's own cap: 256 open, the 257th closed.
    let sock = net.path("aasd.sock");
    let mut unix: Vec<UnixStream> = (0..256)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    sleep(Duration::from_millis(300));
    let mut extra = UnixStream::connect(&sock).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    assert_eq!(extra.read(&mut [0u8; 8]).unwrap_or(0), 0);
    // One goes away: once in.aasd has seen it close, a new one is served
    // again. (A fixed wait for that raced with a loaded machine.)
    unix.pop();
    let served = || {
        let mut s = UnixStream::connect(&sock).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        s.write_all(b"PING\n").ok()?;
        let mut answer = [0u8; 2];
        s.read_exact(&mut answer).ok()?;
        (&answer == b"OK").then_some(())
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while served().is_none() {
        assert!(
            Instant::now() < deadline,
            "no PING answered within 10 s of a close"
        );
        sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_idle_in_dhcpd_connection_is_reopened_without_losing_a_request() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf(
        &format!("listen = {TCP}\npassword = pw\nidle_timeout = 1\n"),
        POOL,
    );
    net.start_aasd("srv", &conf);
    let alloc = &Request::Alloc(Alloc {
        previous: true,
        ..alloc_of("P", "dhcp", "01:aa", 60)
    });
    let ok = |a: Result<Reply, _>| matches!(a, Ok(Reply::Allocated(a)) if a.addr == Ipv4Addr::new(10, 0, 0, 10));
    let mut link = Link::new(
        Target::Unix(net.path("aasd.sock").into()),
        Duration::from_secs(2),
    );
    assert!(ok(link.ask(alloc)));
    sleep(Duration::from_millis(2500));
    assert!(read(&net.path("aasd.log")).contains("unix: no complete request for 1 s: closing"));
    assert!(ok(link.ask(alloc)), "answered on a new connection");
    // The same over TCP, where the new connection sends AUTH again.
    in_ns(&net.ns("srv"), || {
        let mut link = Link::new(
            Target::Tcp {
                address: TCP.into(),
                password: "pw".into(),
            },
            Duration::from_secs(2),
        );
        assert!(ok(link.ask(alloc)));
        sleep(Duration::from_millis(2500));
        assert!(ok(link.ask(alloc)));
    });
    let log = read(&net.path("aasd.log"));
    assert!(
        log.lines().any(
            |l| l.contains("127.0.0.1:") && l.ends_with("no complete request for 1 s: closing")
        ),
        "{log}"
    );
    assert_eq!(
        log.matches("leased 10.0.0.10 to dhcp 01:aa").count(),
        4,
        "{log}"
    );
}

fn owner(path: &str) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (m.uid(), m.gid())
}

/// The Uid and Gid lines of /proc/PID/status: (real, effective, saved, fs).
fn ids(pid: u32, key: &str) -> String {
    read(&format!("/proc/{pid}/status"))
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

const NOBODY: (u32, u32) = (65534, 65534);

#[test]
fn runs_as_the_user_of_dash_u_and_owns_what_it_writes() {
    let mut net = Net::new(false);
    // The flag wins over the key.
    let conf = net.aasd_conf(
        "user = daemon\nlisten = 127.0.0.1:15310\npassword = pw\n",
        POOL,
    );
    let pid = net.start_aasd_with("srv", &conf, &["-u", "nobody"]);
    assert_eq!(ids(pid, "Uid"), "65534 65534 65534 65534");
    assert_eq!(ids(pid, "Gid"), "65534 65534 65534 65534");
    assert_eq!(ids(pid, "Groups"), "65534");
    let sock = net.path("aasd.sock");
    // The user's, with the group socket_group names.
    assert_eq!(owner(&sock), (NOBODY.0, TEST_SOCKET_GID));
    assert_eq!(
        fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o660
    );
    // TCP was bound (a port below 1024 would need root too) and answers.
    let mut s = tcp(&net);
    assert_eq!(say(&mut s, "AUTH pw"), "OK");

    // aasadmin works; the log and the checkpoint it writes are nobody's.
    let (code, text) = net.aasadmin(&["disable", "10.0.0.15"]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = net.aasadmin(&["checkpoint"]);
    assert_eq!(code, 0, "{text}");
    let ckpt = text.trim().rsplit(' ').next().unwrap().to_string();
    assert!(ckpt.ends_with(".ckpt"), "{text}");
    for p in [
        net.path("aasdb"),
        net.path("aasdb/aasd.log"),
        net.path("aasdb/checkpoints"),
        ckpt,
    ] {
        assert_eq!(owner(&p), NOBODY, "{p}");
    }
    let (_, text) = net.aasadmin(&["list", "state=disabled"]);
    assert!(text.contains("10.0.0.15"), "{text}");
}

#[test]
fn a_database_dir_the_user_cannot_write_stops_it_with_its_name() {
    let net = Net::new(false);
    // Made by root, mode 0755: nobody (the user key here) cannot write it.
    let db = net.path("aasdb");
    fs::create_dir(&db).unwrap();
    let conf = net.aasd_conf("user = nobody\n", POOL);
    let out = Command::new(aasd_bin())
        .args(["-D", "3", "-c", &conf])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("database_dir {db} is not writable by user nobody")),
        "{err}"
    );
    assert!(!Path::new(&format!("{db}/aasd.log")).exists());
    // A user that does not exist.
    let out = Command::new(aasd_bin())
        .args(["-D", "3", "-c", &conf, "-u", "no-such-user-x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("user no-such-user-x: no such user"));
}

#[test]
fn the_socket_refuses_a_user_outside_its_group() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf("", POOL);
    net.start_aasd("srv", &conf);
    let sock = net.path("aasd.sock");
    assert_eq!(owner(&sock), (0, TEST_SOCKET_GID));
    let before = read(&net.path("aasd.log"));
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(aasadmin_bin())
        .args(["-s", &sock, "stats"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("aasadmin: {sock}: permission denied")),
        "{err}"
    );
    assert!(!err.contains("is in.aasd running?"), "{err}");
    // in.aasd never saw it, and serves on.
    assert_eq!(read(&net.path("aasd.log")), before);
    assert_eq!(net.aasadmin(&["stats"]).0, 0);
}
