//! Clients on a second link reach in.dhcpd through ISC dhcrelay.

mod common;

use std::thread::sleep;
use std::time::Duration;

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
    let out = tool_in(&rly, "relay-probe.py")
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

/// Pools for the direct link and both relayed links.
const POOLS: &str = "[pool Near]\nrange = 10.77.0.100-10.77.0.120\n\
                     [pool Far]\nrange = 10.78.0.100-10.78.0.120\n\
                     [pool Third]\nrange = 10.80.0.100-10.80.0.120\n";

/// tests/configs/dynamic.conf with this test's AAS, plus the third link.
fn dynamic_conf(net: &Net) -> String {
    let text = std::fs::read_to_string(config("dynamic.conf"))
        .unwrap()
        .replace("AAS_SOCKET", &net.path("aasd.sock"))
        + "\n[subnet 10.80.0.0/24]\npool = Third\nrouters = 10.80.0.1\n";
    let path = net.path("dhcpd.conf");
    std::fs::write(&path, text).unwrap();
    path
}

fn relay_probe(net: &Net, args: &[&str]) -> String {
    let out = tool_in(&net.ns("rly"), "relay-probe.py")
        .arg(SERVER)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn in_pool(ip: &str, net: u8) -> bool {
    ip.strip_prefix(&format!("10.{net}.0."))
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (100..=120).contains(&n))
}

#[test]
fn two_relayed_links_draw_from_their_pools_and_double_renewals_do_no_harm() {
    let mut net = Net::new(true);
    net.relayed_link(2);
    let aconf = net.aasd_conf("", POOLS);
    net.start_aasd("srv", &aconf);
    let conf = dynamic_conf(&net);
    let (_, log) = net.start_standalone(&conf, &[]);
    net.start_dhcrelay_on(&["rly1", "rly2"]);
    let (pid2, hook2, out2) = net.start_udhcpc_on("cli2", "cli2");
    let (_, hook3, out3) = net.start_udhcpc_on("cli3", "cli3");
    let ip2 = last_lease(&hook2)
        .unwrap_or_else(|| panic!("{}", read(&out2)))
        .ip;
    let ip3 = last_lease(&hook3)
        .unwrap_or_else(|| panic!("{}", read(&out3)))
        .ip;
    assert!(in_pool(&ip2, 78), "cli2 got {ip2}");
    assert!(in_pool(&ip3, 80), "cli3 got {ip3}");
    // The unicast renewal from cli2 is routed by the relay host and also
    // relayed by dhcrelay (harness pitfall 8): the server sees it twice.
    let requests = |text: &str| text.matches(&format!("DHCPREQUEST for {ip2}")).count();
    let before = requests(&read(&log));
    assert!(nix_kill_usr1(pid2));
    assert!(
        wait_for(&hook2, "event=renew", Duration::from_secs(10)),
        "{}",
        read(&out2)
    );
    sleep(Duration::from_millis(300));
    let text = read(&log);
    assert_eq!(
        requests(&text) - before,
        2,
        "routed and relayed copies: {text}"
    );
    assert!(!text.contains("DHCPNAK"), "{text}");
    let (_, rows) = net.aasadmin(&["list", "client=10.78.0.0/id/01027800000010"]);
    assert_eq!(
        rows.matches("leased").count(),
        1,
        "one lease, not two: {rows}"
    );
    assert!(rows.contains(&ip2), "{rows}");
}

#[test]
fn link_selection_subnet_selection_server_override_and_hops() {
    let mut net = Net::new(true);
    let aconf = net.aasd_conf("", POOLS);
    net.start_aasd("srv", &aconf);
    let conf = dynamic_conf(&net);
    let (_, log) = net.start_standalone(&conf, &[]);
    // A relay on the server's own link: giaddr names Near.
    let plain = relay_probe(&net, &["10.77.0.2", "02:00:00:00:00:01", ""]);
    assert!(in_pool(field(&plain, "yiaddr"), 77), "{plain}");
    // Link selection (82.5) names Far; 82 comes back unchanged.
    let sel = relay_probe(&net, &["10.77.0.2", "02:00:00:00:00:02", "05040a4e0000"]);
    assert!(in_pool(field(&sel, "yiaddr"), 78), "{sel}");
    assert_eq!(option(&sel, 82), Some("05040a4e0000"), "{sel}");
    // Option 118 does the same.
    let opt118 = relay_probe(
        &net,
        &[
            "10.77.0.2",
            "02:00:00:00:00:03",
            "",
            "--extra",
            "76040a4e0000",
        ],
    );
    assert!(in_pool(field(&opt118, "yiaddr"), 78), "{opt118}");
    // Server identifier override (82.11): option 54 names the relay.
    let ovr = relay_probe(&net, &["10.78.0.1", "02:00:00:00:00:04", "0b040a4e0001"]);
    assert_eq!(option(&ovr, 54), Some("0a4e0001"), "{ovr}");
    // 17 hops: dropped, with a debug line.
    let far = relay_probe(
        &net,
        &["10.78.0.1", "02:00:00:00:00:05", "", "--hops", "17"],
    );
    assert_eq!(far, "TIMEOUT");
    assert!(read(&log).contains("hops 17 > 16"), "{}", read(&log));
}

fn nix_kill_usr1(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}
