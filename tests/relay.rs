//! Clients on a second link reach in.dhcpd through ISC dhcrelay.

mod common;

use common::*;

#[test]
fn every_client_gets_its_address_through_dhcrelay() {
    let mut net = Net::new(true);
    let conf = net.config("basic.conf");
    let (_, log) = net.start_standalone(&conf, &[]);
    net.start_dhcrelay();
    all_clients_get(&mut net, "cli2", "cli2", "10.78.0.50");
    let text = read(&log);
    assert!(
        text.contains("DHCPDISCOVER from 02:78:00:00:00:10 via 10.78.0.1"),
        "{text}"
    );
    assert!(
        text.contains("DHCPACK on 10.78.0.50 to 02:78:00:00:00:10"),
        "{text}"
    );
}

#[test]
fn relayed_reply_echoes_option_82_and_names_the_relay_subnet() {
    // Pose as a relay from 10.77.0.2: giaddr 10.78.0.1, option 82 with
    // sub-options out of order, which must come back byte for byte.
    let mut net = Net::new(true);
    let conf = net.config("basic.conf");
    net.start_standalone(&conf, &[]);
    let rly = net.ns("rly");
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &rly,
            "/usr/bin/python3",
            &tool("relay-probe.py"),
        ])
        .args(["10.77.0.1", "10.78.0.1", CLI2_MAC, "020201bb0102aaaa"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"yiaddr\": \"10.78.0.50\""), "{text}");
    assert!(text.contains("\"82\": \"020201bb0102aaaa\""), "{text}");
    assert!(
        text.contains("\"3\": \"0a4e0001\""),
        "router of 10.78.0.0/24: {text}"
    );
}
