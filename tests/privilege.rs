//! Least privilege: in.dhcpd gives up root once its sockets are open and
//! keeps only CAP_NET_ADMIN (SIOCSARP) and CAP_NET_RAW (probes), yet still
//! reaches in.aasd's socket and answers clients with unicast replies.

mod common;

use std::fs;

use common::*;

/// A line of /proc/PID/status: "Uid:", "CapEff:" and so on.
fn status(pid: u32, key: &str) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .trim()
        .to_string()
}

const NET_ADMIN_AND_RAW: &str = "0000000000003000";

#[test]
fn in_dhcpd_runs_as_nobody_with_two_capabilities_and_still_serves() {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf("", "[pool Near]\nrange = 10.77.0.100-10.77.0.120\n");
    net.start_aasd("srv", &aconf);
    let text = fs::read_to_string(config("dynamic.conf")).unwrap();
    let conf = net.path("dhcpd.conf");
    fs::write(&conf, text.replace("AAS_SOCKET", &net.path("aasd.sock"))).unwrap();
    let (pid, log) = net.start_standalone(&conf, &[]);
    assert!(
        wait_for(&log, "running as nobody", std::time::Duration::from_secs(5)),
        "{}",
        read(&log)
    );
    let uid = status(pid, "Uid:");
    assert!(
        uid.split_whitespace().all(|u| u == "65534"),
        "real, effective, saved and fs uid: {uid}"
    );
    // The socket's group is kept, never group 0 (in.aasd runs as root here).
    let groups = status(pid, "Groups:");
    let groups: Vec<&str> = groups.split_whitespace().collect();
    assert!(
        groups.contains(&TEST_SOCKET_GID.to_string().as_str()) && !groups.contains(&"0"),
        "{groups:?}"
    );
    assert_eq!(status(pid, "CapEff:"), NET_ADMIN_AND_RAW);
    assert_eq!(status(pid, "CapPrm:"), NET_ADMIN_AND_RAW);
    // udhcpc asks for unicast replies: the OFFER needs an ARP entry
    // (CAP_NET_ADMIN), the address comes from in.aasd over its socket.
    let (_, hook_log, _) = net.start_udhcpc();
    let lease = last_lease(&hook_log).expect("a lease");
    assert!(lease.ip.starts_with("10.77.0.1"), "{}", lease.ip);
    let text = read(&log);
    assert!(!text.contains("SIOCSARP"), "{text}");
    assert!(text.contains("DHCPACK"), "{text}");
    assert!(alive(pid));
}

#[test]
fn u_root_keeps_root_and_an_unknown_user_is_an_error() {
    let mut net = Net::new(false);
    let conf = net.config("basic.conf");
    let (pid, _) = net.start_standalone(&conf, &["-u", "root"]);
    assert!(status(pid, "Uid:").starts_with("0\t"));
    kill(pid);
    // Port 67 is bound alone (no SO_REUSEADDR): wait for it to be free.
    let t0 = std::time::Instant::now();
    while alive(pid) && t0.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!alive(pid), "in.dhcpd did not stop");
    let srv = net.ns("srv");
    let out = net.run(
        &srv,
        &[
            server_bin(),
            "-s",
            "-f",
            "-c",
            &conf,
            "-u",
            "no-such-user-here",
            "-D",
            "3",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-u no-such-user-here: no user"), "{err}");
}
