//! Robustness of in.dhcpd (issue 18): a dhcpd.conf caught half-written, a
//! hung in.aasd under load, and a starvation flood against a small pool.

mod common;

use std::fs;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::*;

/// A file rewritten in place (as `cp` does) and cut inside
/// `ip_address = 10.77.0.100` after `10.77.0.10` parses, and names an
/// address that belongs to someone else: it must never be taken while it
/// is being written; the finished file is taken once it settles.
#[test]
fn a_half_written_dhcpd_conf_is_never_taken() {
    let mut net = Net::new(false);
    let conf = net.path("dhcpd.conf");
    let head = format!(
        "[server]\naas_socket = {}\n\n[subnet 10.77.0.0/24]\nrouters = 10.77.0.1\n\n\
         [client {CLI_MAC}]\nip_address = ",
        net.path("no-aasd.sock")
    );
    fs::write(&conf, format!("{head}10.77.0.50\n")).unwrap();
    let (pid, log) = net.start_standalone(&conf, &[]);
    let lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0").expect("a first lease");
    assert_eq!(lease.ip, "10.77.0.50");

    // The first half, then a writer still at work: the file's time keeps
    // moving while the real client asks.
    let mut f = fs::File::options()
        .write(true)
        .truncate(true)
        .open(&conf)
        .unwrap();
    f.write_all(format!("{head}10.77.0.10").as_bytes()).unwrap();
    let writing = Arc::new(AtomicBool::new(true));
    let toucher = {
        let (writing, conf) = (writing.clone(), conf.clone());
        thread::spawn(move || {
            let f = fs::File::options().write(true).open(&conf).unwrap();
            while writing.load(Ordering::SeqCst) {
                f.set_modified(SystemTime::now()).unwrap();
                thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut during = Vec::new();
    for _ in 0..2 {
        during.push(get_lease(&mut net, Client::Udhcpc, "cli", "cli0"));
    }
    writing.store(false, Ordering::SeqCst);
    toucher.join().unwrap();
    f.write_all(b"0\n").unwrap();
    drop(f);
    for l in &during {
        let l = l
            .as_ref()
            .unwrap_or_else(|| panic!("no lease: {}", read(&log)));
        assert_eq!(l.ip, "10.77.0.50", "the half-written file was taken");
    }

    // Finished and left alone: taken within a few seconds.
    let t0 = Instant::now();
    let mut last = None;
    while t0.elapsed() < Duration::from_secs(10) {
        last = get_lease(&mut net, Client::Udhcpc, "cli", "cli0");
        if last.as_ref().is_some_and(|l| l.ip == "10.77.0.100") {
            break;
        }
    }
    assert_eq!(last.map(|l| l.ip).as_deref(), Some("10.77.0.100"));
    let text = read(&log);
    assert!(!text.contains("on 10.77.0.10 "), "{text}");
    assert!(alive(pid));
}

const NEAR_POOL: &str = "[pool Near]\nrange = 10.77.0.100-10.77.0.119\n";

/// dynamic.conf at this test's in.aasd, with `extra` appended.
fn dynamic_conf(net: &Net, extra: &str) -> String {
    let text = read(&config("dynamic.conf")).replace("AAS_SOCKET", &net.path("aasd.sock"));
    let path = net.path("dhcpd.conf");
    fs::write(&path, text + extra).unwrap();
    path
}

/// Send a signal to a process this test started.
fn signal(pid: u32, sig: &str) {
    sh(&["kill", &format!("-{sig}"), &pid.to_string()]);
}

/// tests/tools/flood.py in the relay namespace, posing as the relay at
/// 10.77.0.2 (so its requests are for 10.77.0.0/24); returns its PID and
/// output file.
fn start_flood(net: &mut Net, args: &[&str]) -> (u32, String) {
    let out = net.path("flood.out");
    let rly = net.ns("rly");
    let tool = tool("flood.py");
    let mut argv = vec!["/usr/bin/python3", tool.as_str(), SERVER, "10.77.0.2"];
    argv.extend_from_slice(args);
    let pid = net.spawn(&rly, &argv, &[], std::path::Path::new(&out));
    (pid, out)
}

/// With in.aasd stopped (SIGSTOP) under 100 DISCOVERs a second from
/// dynamic clients, every client with a fixed address is still answered
/// within 100 ms (issue 18 names the bound); in.dhcpd backs off from the
/// hung in.aasd instead of paying its timeout per batch; once in.aasd is
/// continued, dynamic clients are served again.
#[test]
fn a_stopped_aasd_holds_back_no_static_client() {
    let mut net = Net::new(true);
    let aconf = net.aasd_conf("", NEAR_POOL);
    let aasd = net.start_aasd("srv", &aconf);
    let statics: Vec<(String, String)> = (0..4)
        .map(|i| (format!("02:77:00:00:00:2{i}"), format!("10.77.0.6{i}")))
        .collect();
    let mut extra = String::new();
    for (mac, ip) in &statics {
        extra.push_str(&format!("\n[client {mac}]\nip_address = {ip}\n"));
    }
    let conf = dynamic_conf(&net, &extra);
    let (dhcpd, log) = net.start_standalone(&conf, &[]);
    let cli = net.ns("cli");
    let offer_to = |net: &Net, mac: &str| {
        net.probe(
            &cli,
            &["cli0", "--mac", mac, "--broadcast", "--timeout", "2"],
        )
    };
    assert!(
        offer_to(&net, "02:77:00:00:00:31").is_some(),
        "a dynamic offer first"
    );

    signal(aasd, "STOP");
    let (flood, flood_out) = start_flood(&mut net, &["--rate", "100", "--seconds", "60"]);
    let mut slowest = 0.0f64;
    let t0 = Instant::now();
    // About 10 s: the first timeout and the retries after it.
    while t0.elapsed() < Duration::from_secs(10) {
        for (mac, ip) in &statics {
            let r =
                offer_to(&net, mac).unwrap_or_else(|| panic!("{mac}: no answer: {}", read(&log)));
            assert_eq!(field(&r, "yiaddr"), ip, "{r}");
            let ms: f64 = field(&r, "elapsed_ms").parse().unwrap();
            assert!(ms < 100.0, "{mac} answered after {ms} ms");
            slowest = slowest.max(ms);
        }
    }
    eprintln!("slowest static answer with in.aasd stopped: {slowest} ms");
    let text = read(&log);
    let discovers = text.matches("DHCPDISCOVER from 02:").count();
    assert!(discovers > 500, "the load: {discovers} DISCOVERs");
    let backoffs = text.matches("not asking the AAS for").count();
    // A timeout costs a back-off of 1, 2, 4, then 8 s: a handful in 10 s,
    // not one per batch.
    assert!((1..=6).contains(&backoffs), "{backoffs} back-offs:\n{text}");

    signal(aasd, "CONT");
    let t1 = Instant::now();
    let mut lease = None;
    while lease.is_none() && t1.elapsed() < Duration::from_secs(30) {
        lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0");
    }
    let lease = lease.unwrap_or_else(|| panic!("no dynamic service after SIGCONT: {}", read(&log)));
    assert!(lease.ip.starts_with("10.77.0.1"), "{lease:?}");
    assert!(read(&log).contains("answers again"), "{}", read(&log));
    kill(flood);
    assert!(alive(dhcpd));
    let _ = flood_out;
}
