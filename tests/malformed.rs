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
