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
    hung_aasd(Hang::Stopped);
}

/// The same with in.aasd reached over TCP (the kernel still accepts the
/// connection of a stopped process; the AUTH answer is what never comes).
#[test]
fn a_stopped_remote_aasd_holds_back_no_static_client() {
    hung_aasd(Hang::StoppedTcp);
}

/// And with the remote AAS's host gone (nothing answers at its address,
/// so the TCP connection is never made).
#[test]
fn an_unreachable_remote_aas_holds_back_no_static_client() {
    hung_aasd(Hang::Unreachable);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hang {
    Stopped,
    StoppedTcp,
    Unreachable,
}

fn hung_aasd(how: Hang) {
    let mut net = Net::new(true);
    let tcp = "listen = 10.77.0.2:15310\npassword = right-one\n";
    let server = match how {
        Hang::Stopped => "[server]\n",
        Hang::StoppedTcp => "[server]\naas_address = 10.77.0.2:15310\naas_password = right-one\n",
        // No host has 10.77.0.9: its ARP request goes unanswered.
        Hang::Unreachable => "[server]\naas_address = 10.77.0.9:15310\naas_password = right-one\n",
    };
    let aasd = match how {
        Hang::Stopped => Some(net.start_aasd("srv", &net.aasd_conf("", NEAR_POOL))),
        Hang::StoppedTcp => Some(net.start_aasd("rly", &net.aasd_conf(tcp, NEAR_POOL))),
        Hang::Unreachable => None,
    };
    let statics: Vec<(String, String)> = (0..4)
        .map(|i| (format!("02:77:00:00:00:2{i}"), format!("10.77.0.6{i}")))
        .collect();
    let mut extra = String::new();
    for (mac, ip) in &statics {
        extra.push_str(&format!("\n[client {mac}]\nip_address = {ip}\n"));
    }
    let conf = dynamic_conf(&net, &extra);
    fs::write(&conf, read(&conf).replacen("[server]\n", server, 1)).unwrap();
    let (dhcpd, log) = net.start_standalone(&conf, &[]);
    let cli = net.ns("cli");
    let offer_to = |net: &Net, mac: &str| {
        net.probe(
            &cli,
            &["cli0", "--mac", mac, "--broadcast", "--timeout", "2"],
        )
    };
    if let Some(aasd) = aasd {
        assert!(
            offer_to(&net, "02:77:00:00:00:31").is_some(),
            "a dynamic offer first"
        );
        signal(aasd, "STOP");
    }
    let (flood, _) = start_flood(&mut net, &["--rate", "100", "--seconds", "60"]);
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

    // The flood stops (at 100 new clients a second, each holding an offer
    // for 10 s, it would take the 20 addresses itself), and in.aasd goes on.
    kill(flood);
    let Some(aasd) = aasd else {
        return;
    };
    signal(aasd, "CONT");
    let t1 = Instant::now();
    let mut lease = None;
    while lease.is_none() && t1.elapsed() < Duration::from_secs(30) {
        lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0");
    }
    let lease = lease.unwrap_or_else(|| panic!("no dynamic service after SIGCONT: {}", read(&log)));
    assert!(lease.ip.starts_with("10.77.0.1"), "{lease:?}");
    assert!(read(&log).contains("answers again"), "{}", read(&log));
    assert!(alive(dhcpd));
}

/// One run of busybox udhcpc on cli0 of `role` as a client with `mac`:
/// the address it got, if any, within a few seconds.
fn udhcpc_once(net: &Net, role: &str, mac: &str) -> Option<String> {
    let ns = net.ns(role);
    sh(&["ip", "-n", &ns, "link", "set", "cli0", "address", mac]);
    let hook_log = net.path(&format!("once-{}.hook", mac.replace(':', "")));
    let out = std::process::Command::new("timeout")
        .args(["10", "ip", "netns", "exec", &ns, "udhcpc", "-i", "cli0"])
        .args([
            "-f",
            "-q",
            "-n",
            "-t",
            "3",
            "-T",
            "1",
            "-s",
            &tool("hook.sh"),
        ])
        .env("HOOK_LOG", &hook_log)
        .output()
        .unwrap();
    let _ = out;
    last_lease(&hook_log).map(|l| l.ip)
}

/// What a starvation flood leaves for legitimate clients: a flood of full
/// DORAs from random MACs through a relay circuit against a 20-address
/// pool, while a bound client (udhcpc) renews and four new legitimate
/// clients (udhcpc, one MAC each) ask for addresses. Returns how many of
/// the four were served, the flood's ACKs and whether the bound client's
/// renewals were answered.
fn starvation(limits: &str) -> (usize, String, bool) {
    let mut net = Net::new(true);
    let aconf = net.aasd_conf("", NEAR_POOL);
    net.start_aasd("srv", &aconf);
    let conf = dynamic_conf(&net, "");
    let text = read(&conf).replace(
        "[subnet 10.77.0.0/24]\n",
        &format!("[subnet 10.77.0.0/24]\n{limits}"),
    );
    fs::write(&conf, text).unwrap();
    let (dhcpd, log) = net.start_standalone(&conf, &[]);
    // The bound client, on a port of its own.
    let cli3 = net.add_ns("cli3");
    net.port(&cli3, "cli3", "02:77:00:00:00:13", None);
    let (bound, hook, _) = net.start_udhcpc_on("cli3", "cli3");

    let (flood, flood_out) = start_flood(
        &mut net,
        &[
            "--dora",
            "--rate",
            "50",
            "--seconds",
            "30",
            "--circuit",
            "port-7",
        ],
    );
    // The flood has done what it can: the pool is gone, or the limit bites.
    let sign = if limits.is_empty() {
        "pool Near exhausted"
    } else {
        "new client 10.77.0.0/"
    };
    assert!(
        wait_for(&log, sign, Duration::from_secs(15)),
        "{}",
        read(&log)
    );
    let served = (0..4)
        .filter_map(|i| udhcpc_once(&net, "cli", &format!("02:77:00:00:01:0{i}")))
        .count();
    signal(bound, "USR1");
    let renewed = wait_for(&hook, "event=renew", Duration::from_secs(10));
    assert!(
        wait_for(&flood_out, "acks", Duration::from_secs(40)),
        "{}",
        read(&flood_out)
    );
    assert!(alive(dhcpd));
    kill(flood);
    (served, read(&flood_out).trim().to_string(), renewed)
}

/// Issue 18 item 8: with per-circuit limits the legitimate clients are
/// served during the flood; without, the flood takes the pool. A client
/// that holds its lease renews either way (it is not new).
#[test]
fn a_starvation_flood_is_bounded_per_circuit() {
    let (without, flood_without, renewed_without) = starvation("");
    let (with, flood_with, renewed_with) =
        starvation("new_clients_per_minute_per_circuit = 5\nmax_leases_per_circuit = 3\n");
    eprintln!("without limits: {without}/4 legitimate clients served, flood {flood_without}");
    eprintln!("with limits:    {with}/4 legitimate clients served, flood {flood_with}");
    assert!(renewed_without && renewed_with);
    assert_eq!(with, 4, "every legitimate client is served under the limit");
    assert!(without < 4, "the flood starves the pool without limits");
    // Three leases held on the circuit; an offer it never took could let
    // one more in, within the five a minute.
    let acks: u32 = field(&flood_with, "acks").parse().unwrap();
    assert!((3..=5).contains(&acks), "{flood_with}");
}

/// `max_leases` counts what in.aasd holds for the subnet's pool, so a new
/// in.dhcpd (inetd starts one after each idle exit) still knows the
/// leases an earlier one gave: a second flood gets nothing.
#[test]
fn leases_held_per_subnet_are_counted_by_the_aas_across_inetd_restarts() {
    let mut net = Net::new(true);
    let aconf = net.aasd_conf("", NEAR_POOL);
    net.start_aasd("srv", &aconf);
    let conf = dynamic_conf(&net, "");
    let text = read(&conf).replace(
        "[subnet 10.77.0.0/24]\n",
        "[subnet 10.77.0.0/24]\nmax_leases = 6\n",
    );
    fs::write(&conf, text).unwrap();
    net.start_inetd(&format!("-t 1s -c {conf}"));
    let rly = net.ns("rly");
    let mut acks = Vec::new();
    for round in 0..2 {
        let t0 = Instant::now();
        while !net.server_pids().is_empty() && t0.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(100));
        }
        assert!(
            net.server_pids().is_empty(),
            "round {round}: a fresh in.dhcpd"
        );
        let out = tool_in(&rly, "flood.py")
            .args([
                SERVER,
                "10.77.0.2",
                "--dora",
                "--rate",
                "50",
                "--seconds",
                "3",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        acks.push(field(&text, "acks").to_string());
    }
    assert_eq!(acks, ["6", "0"]);
    let (_, rows) = net.aasadmin(&["list", "state=leased"]);
    assert_eq!(
        rows.lines().filter(|l| l.contains("10.77.0.1")).count(),
        6,
        "{rows}"
    );
}

/// The same flood bounded per relay (the flood's giaddr); the legitimate
/// clients are on the server's own link.
#[test]
fn a_starvation_flood_is_bounded_per_relay() {
    let (with, flood_with, renewed) =
        starvation("new_clients_per_minute_per_relay = 5\nmax_leases_per_relay = 3\n");
    eprintln!("per-relay limits: {with}/4 legitimate clients served, flood {flood_with}");
    assert!(renewed);
    assert_eq!(with, 4, "every legitimate client is served under the limit");
    let acks: u32 = field(&flood_with, "acks").parse().unwrap();
    assert!((3..=5).contains(&acks), "{flood_with}");
}
