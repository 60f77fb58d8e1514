//! Malformed datagrams on the wire: each dropped with one log line, the
//! server keeps serving, and a good DISCOVER is answered afterwards.

mod common;

use common::*;

/// A DHCP request header for 02:77:00:00:00:10 with the given options.
fn request(edit: impl Fn(&mut Vec<u8>), options: &[u8]) -> String {
    let mut b = vec![0u8; 236];
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    b[28..34].copy_from_slice(&[2, 0x77, 0, 0, 0, 0x10]);
    b.extend_from_slice(&[99, 130, 83, 99]);
    b.extend_from_slice(options);
    b.push(255);
    edit(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn malformed_packets_are_dropped_and_logged() {
    let mut net = Net::new(false);
    let conf = net.config("basic.conf");
    let (pid, log) = net.start_standalone(&conf, &[]);
    let cli = net.ns("cli");
    let discover = [53, 1, 1];
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "short packet (0 bytes"),
        ("01".repeat(239), "short packet (239 bytes"),
        (request(|b| b[0] = 2, &discover), "op 2 is not BOOTREQUEST"),
        (request(|b| b[2] = 200, &discover), "hlen 200 > 16"),
        (request(|b| b[3] = 17, &discover), "hops 17 > 16"),
        (request(|_| {}, &[53, 0]), "bad message type"),
        (
            request(|_| {}, &[53, 1, 1, 12, 200, 1]),
            "option 12 at offset 243 runs past the end",
        ),
        (
            request(|_| {}, &[53, 1, 3, 50, 3, 1, 2, 3]),
            "option 50 has bad length 3",
        ),
        (
            request(|b| b[24..28].copy_from_slice(&[127, 0, 0, 1]), &discover),
            "giaddr 127.0.0.1 is not a relay address",
        ),
    ];
    for (hex, _) in &cases {
        let sent = net.probe_raw(&cli, hex);
        assert!(sent, "sending {hex}");
    }
    // The largest UDP datagram (65,507 bytes, fragmented on the wire) is
    // read whole and answered.
    let mut big = request(|_| {}, &[53, 1, 1]);
    big.push_str(&"00".repeat(65_507 - big.len() / 2));
    assert!(net.probe_raw(&cli, &big), "sending 65,507 bytes");
    assert!(
        wait_for(
            &log,
            "DHCPOFFER on 10.77.0.50",
            std::time::Duration::from_secs(3)
        ),
        "{}",
        read(&log)
    );
    // The server still answers a good request, after all of the above.
    let offer = net
        .probe(&cli, &["cli0", "--broadcast"])
        .expect("an OFFER after the bad packets");
    assert!(offer.contains("\"yiaddr\": \"10.77.0.50\""), "{offer}");
    assert!(alive(pid));
    let text = read(&log);
    for (_, reason) in &cases {
        let lines = text
            .lines()
            .filter(|l| l.contains("drop from") && l.contains(reason))
            .count();
        assert_eq!(lines, 1, "one line for \"{reason}\" in:\n{text}");
    }
}

/// VmRSS in KiB and the number of open descriptors of a process.
fn footprint(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (rss, fds)
}

/// Catalogue case 28, scaled to CI: a stream of floods and malformed
/// packets leaves both daemons' memory and descriptors flat.
#[test]
fn a_long_mixed_stream_leaves_memory_and_descriptors_flat() {
    let mut net = Net::new(true);
    let aconf = net.aasd_conf(
        "sync = never",
        "[pool Near]\nrange = 10.77.0.100-10.77.0.120\n",
    );
    let aasd = net.start_aasd("srv", &aconf);
    let text = std::fs::read_to_string(config("dynamic.conf")).unwrap();
    let conf = net.path("dhcpd.conf");
    std::fs::write(&conf, text.replace("AAS_SOCKET", &net.path("aasd.sock"))).unwrap();
    let (dhcpd, _) = net.start_standalone(&conf, &[]);
    let rly = net.ns("rly");
    let blast = |count: &str, seed: &str| {
        let soak = tool("soak.py");
        let out = net.run(
            &rly,
            &["/usr/bin/python3", &soak, SERVER, count, seed, "10.77.0.2"],
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    blast("20000", "1"); // warm up: every buffer at its working size
    std::thread::sleep(std::time::Duration::from_millis(500));
    let before = (footprint(dhcpd), footprint(aasd));
    blast("200000", "2");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = (footprint(dhcpd), footprint(aasd));
    for (name, (b, a)) in [
        ("in.dhcpd", (before.0, after.0)),
        ("in.aasd", (before.1, after.1)),
    ] {
        assert!(
            a.0 <= b.0 + 1024,
            "{name} RSS grew from {} to {} KiB",
            b.0,
            a.0
        );
        assert_eq!(a.1, b.1, "{name} descriptors");
    }
    assert!(alive(dhcpd) && alive(aasd));
    // Still serving: a real client gets a lease once the flood's
    // reservations (lease_res_time = 10 s) are over.
    std::thread::sleep(std::time::Duration::from_secs(11));
    let (_, hook_log, _) = net.start_udhcpc();
    assert!(last_lease(&hook_log).is_some());
}
