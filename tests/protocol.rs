//! The exchanges beyond a first lease: renewal, INIT-REBOOT, NAK, INFORM,
//! RELEASE, unknown clients, and configuration changes without a restart.

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::*;

#[test]
fn renewing_and_init_reboot_are_acked_wrong_address_is_naked() {
    let mut net = Net::new(false);
    let conf = net.config("basic.conf");
    let (_, log) = net.start_standalone(&conf, &[]);
    let cli = net.ns("cli");

    // INIT-REBOOT (no server id, no ciaddr): ours -> ACK.
    let ack = net
        .probe(
            &cli,
            &[
                "cli0",
                "--type",
                "request",
                "--requested",
                "10.77.0.50",
                "--broadcast",
            ],
        )
        .expect("ACK for INIT-REBOOT");
    assert_eq!(field(&ack, "type"), "ack");
    assert_eq!(field(&ack, "yiaddr"), "10.77.0.50");

    // INIT-REBOOT for an address that is not the client's -> NAK, broadcast
    // (the probe has no address, so it hears only broadcasts).
    let nak = net
        .probe(
            &cli,
            &["cli0", "--type", "request", "--requested", "10.77.0.99"],
        )
        .expect("NAK for a wrong address");
    assert_eq!(field(&nak, "type"), "nak");
    assert_eq!(field(&nak, "yiaddr"), "0.0.0.0");
    assert_eq!(option(&nak, 54), Some("0a4d0001"));
    assert!(read(&log).contains("DHCPNAK on 10.77.0.99 to 02:77:00:00:00:10"));

    // RENEWING: the client has its address and unicasts with ciaddr set.
    sh(&[
        "ip",
        "-n",
        &cli,
        "addr",
        "add",
        "10.77.0.50/24",
        "dev",
        "cli0",
    ]);
    let renew = net
        .probe(
            &cli,
            &[
                "cli0",
                "--type",
                "request",
                "--ciaddr",
                "10.77.0.50",
                "--dst",
                SERVER,
            ],
        )
        .expect("ACK for RENEWING");
    assert_eq!(field(&renew, "type"), "ack");
    assert_eq!(field(&renew, "ciaddr"), "10.77.0.50");
    assert_eq!(
        option(&renew, 51),
        Some("ffffffff"),
        "pinned: infinite lease"
    );
}

#[test]
fn a_restarted_dhclient_reboots_into_the_same_lease() {
    let mut net = Net::new(false);
    let conf = net.config("basic.conf");
    let (_, log) = net.start_standalone(&conf, &[]);
    let lf = net.path("dhclient.leases");
    let hook_log = net.path("dhclient.hook");
    for event in ["BOUND", "REBOOT"] {
        let ip = net.dhclient_round("cli", &lf, &hook_log, event, &log);
        assert_eq!(ip, "10.77.0.50", "{event}");
    }
    let lease = last_lease(&hook_log).unwrap();
    assert_eq!(
        (lease.event.as_str(), lease.ip.as_str()),
        ("REBOOT", "10.77.0.50")
    );
    assert!(read(&log).contains("DHCPREQUEST for 10.77.0.50 from 02:77:00:00:00:10 (InitReboot)"));
}

#[test]
fn inform_gets_options_and_no_lease() {
    let mut net = Net::new(false);
    let conf = net.config("basic.conf");
    net.start_standalone(&conf, &[]);
    let cli = net.ns("cli");
    sh(&[
        "ip",
        "-n",
        &cli,
        "addr",
        "add",
        "10.77.0.77/24",
        "dev",
        "cli0",
    ]);
    let ack = net
        .probe(
            &cli,
            &[
                "cli0",
                "--type",
                "inform",
                "--mac",
                "02:77:00:00:00:99",
                "--ciaddr",
                "10.77.0.77",
                "--dst",
                SERVER,
                "--prl",
                "15,6,3",
            ],
        )
        .expect("ACK for INFORM");
    assert_eq!(field(&ack, "type"), "ack");
    assert_eq!(field(&ack, "yiaddr"), "0.0.0.0");
    assert_eq!(option(&ack, 51), None);
    assert_eq!(option(&ack, 15), Some(&*hex(b"example.test")));
    assert_eq!(option(&ack, 3), Some("0a4d0001"));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn udhcpc_release_is_logged() {
    let mut net = Net::new(false);
    let conf = net.config("basic.conf");
    let (_, log) = net.start_standalone(&conf, &[]);
    let (pid, _, _) = net.start_udhcpc();
    kill(pid);
    assert!(
        wait_for(
            &log,
            "DHCPRELEASE of 10.77.0.50 from 02:77:00:00:00:10",
            Duration::from_secs(5)
        ),
        "{}",
        read(&log)
    );
}

#[test]
fn client_without_entry_gets_nothing() {
    let mut net = Net::new(false);
    let conf = net.config("basic.conf");
    let (_, log) = net.start_standalone(&conf, &[]);
    let cli = net.ns("cli");
    let r = net.probe(
        &cli,
        &[
            "cli0",
            "--mac",
            "02:77:00:00:00:99",
            "--broadcast",
            "--timeout",
            "1",
        ],
    );
    assert_eq!(r, None);
    assert!(
        read(&log).contains("no fixed address for 02:77:00:00:00:99"),
        "{}",
        read(&log)
    );
}

#[test]
fn config_edits_apply_without_restart_and_broken_edits_keep_the_old() {
    let mut net = Net::new(false);
    let conf = net.config("basic.conf");
    let (pid, log) = net.start_standalone(&conf, &[]);
    let cli = net.ns("cli");
    let discover = |net: &Net| {
        net.probe(&cli, &["cli0", "--broadcast", "--prl", "1,15"])
            .expect("an OFFER")
    };
    let offer = discover(&net);
    assert_eq!(field(&offer, "yiaddr"), "10.77.0.50");

    let edited = read(&conf)
        .replace("ip_address = 10.77.0.50", "ip_address = 10.77.0.51")
        .replace("example.test", "changed.test");
    std::fs::write(&conf, edited).unwrap();
    settle(&conf);
    let offer = discover(&net);
    assert_eq!(field(&offer, "yiaddr"), "10.77.0.51");
    assert_eq!(option(&offer, 15), Some(&*hex(b"changed.test")));
    assert!(read(&log).contains("reloaded"));

    let broken = read(&conf).replace("ip_address = 10.77.0.51", "ip_address = 10.77.0.300");
    std::fs::write(&conf, broken).unwrap();
    settle(&conf);
    let offer = discover(&net);
    assert_eq!(
        field(&offer, "yiaddr"),
        "10.77.0.51",
        "the old configuration still serves"
    );
    let text = read(&log);
    assert!(
        text.contains(":15: ip_address: \"10.77.0.300\" is not an IPv4 address"),
        "{text}"
    );
    assert!(
        text.contains("keeping the previous configuration"),
        "{text}"
    );

    // SIGHUP rereads too: a fixed file is picked up.
    let fixed = read(&conf).replace("10.77.0.300", "10.77.0.52");
    std::fs::write(&conf, fixed).unwrap();
    settle(&conf);
    // SAFETY-free: kill(2) by PID on the server we started.
    sh(&["kill", "-HUP", &pid.to_string()]);
    sleep(Duration::from_millis(200));
    assert_eq!(field(&discover(&net), "yiaddr"), "10.77.0.52");
    assert!(alive(pid));
}

#[test]
fn reload_from_empty_binary_half_written_or_unreadable_files_keeps_the_old() {
    let mut net = Net::new(false);
    let conf = net.path("dhcpd.conf");
    let good = read(&config("basic.conf"));
    std::fs::write(&conf, &good).unwrap();
    let (pid, log) = net.start_standalone(&conf, &[]);
    let cli = net.ns("cli");
    let half = &good[..good.find("ip_address = 10.77.0.50").unwrap() + 17];
    let edits: [(&str, &[u8]); 4] = [
        ("empty", b""),
        ("binary", b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00\x00"),
        ("half-written", half.as_bytes()),
        ("unreadable", good.as_bytes()),
    ];
    for (n, (what, bytes)) in edits.iter().enumerate() {
        std::fs::write(&conf, bytes).unwrap();
        settle(&conf);
        if *what == "unreadable" {
            // in.dhcpd runs as nobody: mode 000 keeps it out.
            sh(&["chmod", "000", &conf]);
        }
        for _ in 0..2 {
            let offer = net
                .probe(&cli, &["cli0", "--broadcast"])
                .unwrap_or_else(|| panic!("{what}: no OFFER: {}", read(&log)));
            assert_eq!(field(&offer, "yiaddr"), "10.77.0.50", "{what}");
        }
        let text = read(&log);
        let kept = text.matches("keeping the previous configuration").count();
        assert_eq!(kept, n + 1, "{what}: logged once per edit:\n{text}");
    }
    assert!(alive(pid));
}
