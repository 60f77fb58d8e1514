//! Real clients get their pinned address from in.dhcpd started each way:
//! by openbsd-inetd (wait mode), by systemd-socket-activate, by hand.

mod common;

use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use common::*;

#[test]
fn standalone_serves_every_client() {
    let mut net = Net::new(false);
    let conf = net.config("basic.conf");
    let (pid, log) = net.start_standalone(&conf, &[]);
    all_clients_get(&mut net, "cli", "cli0", "10.77.0.50");
    assert!(alive(pid));
    let text = read(&log);
    assert!(
        text.contains("DHCPACK on 10.77.0.50 to 02:77:00:00:00:10"),
        "{text}"
    );
}

#[test]
fn inetd_wait_mode_serves_then_exits_idle_and_respawns() {
    let mut net = Net::new(false);
    let conf = net.config("basic.conf");
    let dlog = net.path("dhcpd.log");
    let log = net.start_inetd(&format!("-t 2s -D 1 -L {dlog} -c {conf}"));
    assert!(
        net.server_pids().is_empty(),
        "nothing runs before the first request"
    );

    all_clients_get(&mut net, "cli", "cli0", "10.77.0.50");
    let first = net.server_pids();
    assert_eq!(first.len(), 1, "one in.dhcpd serves all three clients");
    // Each DISCOVER says where it came from, the one inetd started
    // in.dhcpd for too (its arrival interface is not known).
    let text = read(&dlog);
    let discovers: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("DHCPDISCOVER from"))
        .collect();
    assert!(!discovers.is_empty(), "{text}");
    assert!(
        discovers.iter().all(|l| !l.trim_end().ends_with(" via")),
        "{text}"
    );

    // After 2 s without a request it exits; inetd reaps it.
    assert!(
        exits_within(first[0], Duration::from_secs(20)),
        "in.dhcpd {} did not exit when idle",
        first[0]
    );
    // inetd logs the reaping a moment after the exit.
    assert!(
        wait_for(
            &log,
            &format!("{} reaped, status 0", first[0]),
            Duration::from_secs(10)
        ),
        "{}",
        read(&log)
    );

    // The next DISCOVER makes inetd start a fresh one, which answers it.
    let lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0").expect("lease after respawn");
    assert_eq!(lease.ip, "10.77.0.50");
    let second = net.server_pids();
    assert_eq!(second.len(), 1);
    assert_ne!(second[0], first[0]);
}

/// in.dhcpd behind systemd-socket-activate, which execs it once for the
/// first datagram and never again (systemd itself would start a new one).
fn socket_activated(net: &mut Net, idle: &str) -> (u32, String) {
    let conf = net.config("basic.conf");
    let srv = net.ns("srv");
    let log = net.path("activate.log");
    let pid = net.spawn_cmd(
        &[
            &tool("nsrun.sh"),
            &srv,
            "systemd-socket-activate",
            "--datagram",
            "-l",
            "0.0.0.0:67",
            server_bin(),
            "-t",
            idle,
            "-c",
            &conf,
        ],
        &[],
        Path::new(&log),
    );
    assert!(
        wait_for(&log, "Listening on", Duration::from_secs(5)),
        "{}",
        read(&log)
    );
    (pid, log)
}

/// Whether `pid` is gone within `limit`.
fn exits_within(pid: u32, limit: Duration) -> bool {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < limit {
        if !alive(pid) {
            return true;
        }
        sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn systemd_socket_activation_serves_every_client() {
    // No idle exit here: nothing would start in.dhcpd again if it left
    // between two clients of a slow machine.
    let mut net = Net::new(false);
    let (pid, log) = socket_activated(&mut net, "0");
    all_clients_get(&mut net, "cli", "cli0", "10.77.0.50");
    assert!(read(&log).contains("Execing"), "{}", read(&log));
    assert!(alive(pid), "in.dhcpd exited with -t 0");
}

#[test]
fn systemd_socket_activation_exits_idle() {
    let mut net = Net::new(false);
    let (pid, log) = socket_activated(&mut net, "3s");
    let lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0").expect("a lease");
    assert_eq!(lease.ip, "10.77.0.50");
    assert!(read(&log).contains("Execing"), "{}", read(&log));
    assert!(
        exits_within(pid, Duration::from_secs(20)),
        "in.dhcpd did not exit when idle"
    );
}

#[test]
fn inetd_socket_of_the_wrong_kind_is_refused() {
    // fd 0 a TCP socket: exit 2 with a clear message (here on stderr, since
    // this is not inetd's datagram socket).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = std::process::Command::new(server_bin())
        .args(["-c", "/nonexistent"])
        .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            listener,
        )))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dgram udp wait"));
}
