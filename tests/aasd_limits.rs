//! in.aasd under requesters that do not play fair (pipelined queries that
//! are never read, squatters on the TCP port, requester credentials used
//! for admin work), with a real in.dhcpd serving a real client meanwhile;
//! and in.dhcpd's probes when they cannot be sent.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use common::*;

const POOLS: &str = "[pool Near]\nrange = 10.77.0.100-10.77.0.120\n\
                     [pool Far]\nrange = 10.78.0.100-10.78.0.120\n\
                     [pool Line]\nrange = 10.99.0.1-10.99.0.250\n";

fn dhcpd_conf(net: &Net, server: &str) -> String {
    let text = fs::read_to_string(config("dynamic.conf"))
        .unwrap()
        .replace("aas_socket = AAS_SOCKET", server);
    let path = net.path("dhcpd.conf");
    fs::write(&path, text).unwrap();
    path
}

/// Write every line at once, then read one answer line per line.
fn pipelined(net: &Net, lines: &[String]) -> Vec<String> {
    let s = UnixStream::connect(net.path("aasd.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let writer = thread::spawn(move || w.write_all(text.as_bytes()).unwrap());
    let mut r = BufReader::new(s);
    let answers = lines
        .iter()
        .map(|_| {
            let mut a = String::new();
            r.read_line(&mut a).unwrap();
            a.trim_end().to_string()
        })
        .collect();
    writer.join().unwrap();
    answers
}

/// A kernel field of /proc/PID/status, in kB.
fn status_kb(pid: u32, key: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Sample in.aasd's peak RSS until stopped; past `limit_kb` it is killed
/// (so a test of the old code fails fast instead of eating the machine).
struct Watch {
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watch {
    fn start(pid: u32, limit_kb: u64) -> Watch {
        let peak_kb = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak_kb.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::SeqCst) && alive(pid) {
                let hwm = status_kb(pid, "VmHWM:");
                p.fetch_max(hwm, Ordering::SeqCst);
                if hwm > limit_kb {
                    kill9(pid);
                    return;
                }
                sleep(Duration::from_millis(5));
            }
        });
        Watch {
            peak_kb,
            stop,
            thread: Some(thread),
        }
    }

    fn peak_kb(&self) -> u64 {
        self.peak_kb.load(Ordering::SeqCst)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Bytes waiting to be read on a socket.
fn unread_bytes(s: &UnixStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer we pass.
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD");
    n as usize
}

const FLOODERS: usize = 100;
const LIMIT_KB: u64 = 64 * 1024;

#[test]
fn pipelined_queries_never_read_leave_memory_bounded_and_others_served() {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf("", POOLS);
    let aasd = net.start_aasd("srv", &aconf);
    assert!(
        fs::read_link(format!("/proc/{aasd}/exe"))
            .unwrap()
            .to_string_lossy()
            .ends_with("in-aasd"),
        "the PID is in.aasd's own"
    );
    // 250 leases for QUERY to list: about 25 KB an answer.
    let allocs: Vec<String> = (0..250)
        .map(|i| format!("ALLOC Line ppp line{i} 3600"))
        .collect();
    let answers = pipelined(&net, &allocs);
    assert!(answers.iter().all(|a| a.starts_with("OK ")), "{answers:?}");
    // A listing is made a page at a time; what follows it on the same
    // connection is answered after its END.
    let mut s = UnixStream::connect(net.path("aasd.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"QUERY pool=Line\nPING\n").unwrap();
    let lines: Vec<String> = BufReader::new(s)
        .lines()
        .map(Result::unwrap)
        .take(252)
        .collect();
    assert!(lines[..250].iter().all(|l| l.starts_with("LEASE 10.99.0.")));
    assert_eq!(lines[250], "END 250");
    assert!(lines[251].starts_with("OK in.aasd"), "{}", lines[251]);
    let conf = dhcpd_conf(&net, &format!("aas_socket = {}", net.path("aasd.sock")));
    let (_, dlog) = net.start_standalone(&conf, &[]);

    let watch = Watch::start(aasd, LIMIT_KB);
    // Each floods 64 KiB of QUERY lines, about 11,000 queries, and never
    // reads: without bounds, gigabytes of answers.
    let flood = "QUERY\n".repeat(64 * 1024 / 6);
    let flooders: Vec<UnixStream> = (0..FLOODERS)
        .map(|_| {
            let mut s = UnixStream::connect(net.path("aasd.sock")).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(flood.as_bytes()).unwrap();
            s
        })
        .collect();
    // in.aasd has answered every flooder as far as it will.
    let t0 = Instant::now();
    while !flooders.iter().all(|s| unread_bytes(s) > 0) {
        assert!(
            alive(aasd),
            "in.aasd killed past {LIMIT_KB} kB: {} kB",
            watch.peak_kb()
        );
        assert!(t0.elapsed() < Duration::from_secs(30), "no answers");
        sleep(Duration::from_millis(20));
    }

    // Meanwhile a real client is served through in.dhcpd, three times,
    // and aasadmin lists all 250 leases.
    let mut served = 0;
    for _ in 0..3 {
        if get_lease(&mut net, Client::Udhcpc, "cli", "cli0").is_some() {
            served += 1;
        }
    }
    let (code, text) = net.aasadmin(&["list", "pool=Line"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("250 address(es)"), "{text}");
    let peak = watch.peak_kb();
    drop(watch);
    assert!(alive(aasd), "in.aasd killed at {peak} kB");
    assert_eq!(served, 3, "{}", read(&dlog));
    assert!(peak < LIMIT_KB, "in.aasd peak RSS {peak} kB");
    // The flood still waits, unread: in.aasd made only a bounded part of it.
    assert!(flooders.iter().all(|s| unread_bytes(s) > 0));
    eprintln!("in.aasd peak RSS during the flood: {peak} kB; {served}/3 clients served");
}

#[test]
fn probes_that_cannot_be_sent_are_logged_once_and_offers_still_go_out() {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf("", POOLS);
    net.start_aasd("srv", &aconf);
    let server = format!(
        "aas_socket = {}\nprobe = yes\nprobe_timeout = 200",
        net.path("aasd.sock")
    );
    let conf = dhcpd_conf(&net, &server);
    let (_, log) = net.start_standalone(&conf, &[]);
    // Every echo to the pool fails (as ENOBUFS does under a flood): the
    // route to it refuses.
    let srv = net.ns("srv");
    sh(&[
        "ip",
        "-n",
        &srv,
        "route",
        "add",
        "prohibit",
        "10.77.0.96/27",
    ]);
    let cli = net.ns("cli");
    let discover = |i: usize| {
        let mac = format!("02:77:00:00:01:{i:02x}");
        net.probe(&cli, &["cli0", "--mac", &mac, "--broadcast"])
    };
    for i in 0..15 {
        let offer = discover(i).unwrap_or_else(|| panic!("no offer {i}: {}", read(&log)));
        assert_eq!(field(&offer, "type"), "offer", "{offer}");
        assert!(field(&offer, "yiaddr").starts_with("10.77.0.1"), "{offer}");
    }
    let text = read(&log);
    let off: Vec<&str> = text.lines().filter(|l| l.contains("probe of")).collect();
    assert_eq!(off.len(), 1, "{text}");
    assert!(
        off[0].contains("probing is off while probes fail"),
        "{text}"
    );
    // The route back: probes go out again, and the log says so once.
    sh(&[
        "ip",
        "-n",
        &srv,
        "route",
        "del",
        "prohibit",
        "10.77.0.96/27",
    ]);
    let offer = discover(15).unwrap_or_else(|| panic!("no offer: {}", read(&log)));
    assert_eq!(field(&offer, "type"), "offer", "{offer}");
    assert!(
        wait_for(
            &log,
            "probes work again (15 offers went out unprobed)",
            Duration::from_secs(5)
        ),
        "{}",
        read(&log)
    );
}

/// Run `f` on a thread inside network namespace `ns` (setns(2) moves only
/// the calling thread).
fn spawn_in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    thread::spawn(move || {
        let file = fs::File::open(&path).unwrap();
        // SAFETY: setns on an open namespace file; affects this thread only.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}");
        f()
    })
}

/// A TCP connection from `from` to `to`, never authenticated.
fn squat(from: std::net::Ipv4Addr, to: std::net::SocketAddrV4) -> Option<std::os::fd::OwnedFd> {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ok()?;
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(std::net::SocketAddrV4::new(from, 0)),
    )
    .ok()?;
    connect(fd.as_raw_fd(), &SockaddrIn::from(to)).ok()?;
    Some(fd)
}

/// The server closed this connection (or reset it).
fn gone(fd: &std::os::fd::OwnedFd) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: recv into a one-byte buffer we own.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            b.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n == 0 || (n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock)
}

#[test]
fn squatters_on_the_tcp_port_do_not_lock_out_a_remote_in_dhcpd() {
    let mut net = Net::new(false);
    // in.aasd on its own host, reached over the link at 10.77.0.5; a
    // squatter at four more addresses on it.
    let aas = net.add_ns("aas");
    net.port(&aas, "aas0", "02:77:00:00:00:05", Some("10.77.0.5/24"));
    let sq = net.add_ns("sq");
    net.port(&sq, "sq0", "02:77:00:00:00:06", Some("10.77.0.6/24"));
    for a in ["10.77.0.7/24", "10.77.0.8/24", "10.77.0.9/24"] {
        add_address(&sq, "sq0", a);
    }
    let aconf = net.aasd_conf(
        "listen = 10.77.0.5:15310\npassword = pw\nmax_tcp_connections = 8\n\
         auth_timeout = 1\nidle_timeout = 1\n",
        POOLS,
    );
    net.start_aasd("aas", &aconf);
    let conf = dhcpd_conf(&net, "aas_address = 10.77.0.5:15310\naas_password = pw");
    let (_, dlog) = net.start_standalone(&conf, &[]);

    // Six connections from each of its addresses, each reopened as soon as
    // in.aasd closes it: more than the whole table.
    let stop = Arc::new(AtomicBool::new(false));
    let connects = Arc::new(AtomicU64::new(0));
    let (s2, c2) = (stop.clone(), connects.clone());
    let squatter = spawn_in_ns(&sq, move || {
        let to = std::net::SocketAddrV4::new([10, 77, 0, 5].into(), 15310);
        let from: Vec<std::net::Ipv4Addr> = (6..10).map(|i| [10, 77, 0, i].into()).collect();
        let mut held: Vec<Option<std::os::fd::OwnedFd>> = (0..24).map(|_| None).collect();
        while !s2.load(Ordering::SeqCst) {
            for (i, slot) in held.iter_mut().enumerate() {
                if slot.as_ref().is_none_or(gone) {
                    *slot = squat(from[i % from.len()], to);
                    c2.fetch_add(1, Ordering::SeqCst);
                }
            }
            sleep(Duration::from_millis(1));
        }
    });
    let alog = net.path("aasd.log");
    let t0 = Instant::now();
    while connects.load(Ordering::SeqCst) < 48 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the squatter did not start"
        );
        sleep(Duration::from_millis(10));
    }

    // in.dhcpd's connection is closed when idle (1 s), so each lease needs
    // a new one, made during the attack.
    let idle_closes = || {
        read(&alog)
            .lines()
            .filter(|l| l.contains("10.77.0.1:") && l.contains("no complete request"))
            .count()
    };
    let mut served = 0;
    for round in 0..3 {
        if get_lease(&mut net, Client::Udhcpc, "cli", "cli0").is_some() {
            served += 1;
        }
        let t0 = Instant::now();
        while idle_closes() <= round && t0.elapsed() < Duration::from_secs(5) {
            sleep(Duration::from_millis(50));
        }
    }
    stop.store(true, Ordering::SeqCst);
    squatter.join().unwrap();
    let connects = connects.load(Ordering::SeqCst);
    assert_eq!(served, 3, "{}\n{}", read(&dlog), read(&alog));
    assert!(idle_closes() >= 3, "{}", read(&alog));
    assert!(read(&alog).contains("to make room for"), "{}", read(&alog));

    // One address may hold four unauthenticated connections: a fifth is
    // closed at once, and the four stay.
    let (first, fifth_closed) = spawn_in_ns(&sq, || {
        let to = std::net::SocketAddrV4::new([10, 77, 0, 5].into(), 15310);
        let from: std::net::Ipv4Addr = [10, 77, 0, 6].into();
        let four: Vec<_> = (0..4).map(|_| squat(from, to).unwrap()).collect();
        let fifth = squat(from, to).unwrap();
        let t0 = Instant::now();
        while !gone(&fifth) && t0.elapsed() < Duration::from_secs(3) {
            sleep(Duration::from_millis(10));
        }
        (four.iter().filter(|fd| !gone(fd)).count(), gone(&fifth))
    })
    .join()
    .unwrap();
    assert!(fifth_closed && first == 4, "{first} {fifth_closed}");
    assert!(
        wait_for(
            &alog,
            "4 connections from 10.77.0.6 not authenticated yet: refused",
            Duration::from_secs(3)
        ),
        "{}",
        read(&alog)
    );
    eprintln!("{served}/3 leases through a squatted TCP port; {connects} squatter connects");
}

/// aasadmin over TCP from the server namespace; (exit status, output).
fn aasadmin_tcp(net: &Net, password: &str, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &net.ns("srv"), aasadmin_bin()])
        .args(["-a", "10.77.0.5:15310", "-p", password])
        .args(args)
        .output()
        .unwrap();
    status_and_text(&out)
}

#[test]
fn requester_credentials_allocate_and_give_back_only_admin_ones_administer() {
    let mut net = Net::new(false);
    let aas = net.add_ns("aas");
    net.port(&aas, "aas0", "02:77:00:00:00:05", Some("10.77.0.5/24"));
    // `password` is the admin credential, as it always was.
    let aconf = net.aasd_conf(
        "listen = 10.77.0.5:15310\npassword = admin-pw\nrequester_password = dhcp-pw\n",
        POOLS,
    );
    net.start_aasd("aas", &aconf);
    let conf = dhcpd_conf(
        &net,
        "aas_address = 10.77.0.5:15310\naas_password = dhcp-pw",
    );
    let (_, dlog) = net.start_standalone(&conf, &[]);

    // in.dhcpd with the requester password: allocate, renew, release.
    let (udhcpc, _, _) = net.start_udhcpc();
    let lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0")
        .unwrap_or_else(|| panic!("no renewal: {}", read(&dlog)));
    kill(udhcpc);
    let alog = net.path("aasd.log");
    assert!(
        wait_for(
            &alog,
            &format!("released {}", lease.ip),
            Duration::from_secs(5)
        ),
        "{}",
        read(&alog)
    );
    let _ = get_lease(&mut net, Client::Udhcpc, "cli", "cli0").expect("leased again");

    // The same password, used by hand: giving back is for the client named
    // only, and admin requests are refused; the connection stays open.
    let answers = spawn_in_ns(&net.ns("srv"), move || {
        let s = std::net::TcpStream::connect("10.77.0.5:15310").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        [
            "AUTH dhcp-pw".to_string(),
            format!("RELEASE {}", lease.ip),
            format!("RELEASE {} dhcp someone-else", lease.ip),
            format!("DECLINE {} 60", lease.ip),
            format!("DISABLE {}", lease.ip),
            "ENABLE 10.77.0.101".into(),
            "QUERY".into(),
            "STATS".into(),
            "CHECKPOINT".into(),
            "RELOAD".into(),
            "PING".into(),
        ]
        .iter()
        .map(|l| {
            writeln!(w, "{l}").unwrap();
            let mut a = String::new();
            r.read_line(&mut a).unwrap();
            (l.clone(), a.trim_end().to_string())
        })
        .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    assert_eq!(answers[0].1, "OK");
    assert!(answers[2].1.starts_with("ERR notheld "), "{answers:?}");
    for (line, a) in answers[1..].iter().filter(|(l, _)| !l.contains("someone")) {
        if line == "PING" {
            assert!(a.starts_with("OK in.aasd"), "{a}");
        } else {
            let word = line.split(' ').next().unwrap();
            assert!(
                a.starts_with(&format!("ERR denied {word} needs admin credentials")),
                "{line}: {a}"
            );
        }
    }
    // Nothing of it took effect: the client's lease stands, nothing disabled.
    let (code, text) = net.aasadmin(&["list", "pool=Near"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("leased") && !text.contains("disabled"),
        "{text}"
    );

    // aasadmin over TCP: with the requester password refused, saying why;
    // with the admin password done.
    let (code, text) = aasadmin_tcp(&net, "dhcp-pw", &["disable", "10.77.0.120"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("refused (denied): DISABLE needs admin credentials"),
        "{text}"
    );
    let (code, text) = aasadmin_tcp(&net, "admin-pw", &["disable", "10.77.0.120"]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = aasadmin_tcp(&net, "admin-pw", &["list", "state=disabled"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("10.77.0.120") && text.contains("1 address(es)"),
        "{text}"
    );
}
