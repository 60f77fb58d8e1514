//! RFC 2131 conformance as ISC's forge suite judges it (issue 17): the
//! same messages, built with scapy (tests/tools/scapy-dhcp.py), sent as a
//! client on the server's link and as a relay agent for the far link, and
//! the same fields checked. Real in.dhcpd and in.aasd processes.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use indhcpd::aas::lease::{Selector, State};

const POOLS: &str = "[pool Near]\nrange = 10.77.0.100-10.77.0.120\n\
                     [pool Far]\nrange = 10.78.0.100-10.78.0.120\n";

/// The server as 10.77.0.1 in option 54.
const SID_HEX: &str = "0a4d0001";

/// in.aasd with `pools`, then in.dhcpd (-D 3) with two dynamic subnets and
/// `server` / `far` added to [server] and to [subnet 10.78.0.0/24].
fn world(server: &str, far: &str, pools: &str) -> (Net, String, String, u32) {
    let mut net = Net::new(true);
    let aconf = net.aasd_conf("", pools);
    let aasd = net.start_aasd("srv", &aconf);
    let conf = net.path("dhcpd.conf");
    let text = format!(
        "[server]\naas_socket = {}\n{server}\n[global]\nlease_time = 1h\n\
         [subnet 10.77.0.0/24]\npool = Near\nrouters = 10.77.0.1\n\
         [subnet 10.78.0.0/24]\npool = Far\nrouters = 10.78.0.1\n{far}\n",
        net.path("aasd.sock")
    );
    std::fs::write(&conf, text).unwrap();
    settle(&conf);
    let (_, log) = net.start_standalone(&conf, &[]);
    (net, log, aconf, aasd)
}

/// Where a message comes from: a client on cli0, or a relay agent with
/// this giaddr (10.78.0.1 for the far link, 10.77.0.2 on the server's).
#[derive(Clone, Copy, Debug)]
enum From {
    Client,
    Relay,
    RelayAt(&'static str),
}

/// One message with scapy; the answer's JSON, or `None` after 2 s of silence.
fn send(net: &Net, from: From, kind: &str, mac: &str, args: &[&str]) -> Option<String> {
    let mut cmd = match from {
        From::Client => tool_in(&net.ns("cli"), "scapy-dhcp.py"),
        From::Relay | From::RelayAt(_) => {
            let giaddr = match from {
                From::RelayAt(g) => g,
                _ => "10.78.0.1",
            };
            let mut c = tool_in(&net.ns("rly"), "scapy-dhcp.py");
            c.args(["--relay", giaddr, "--to", SERVER]);
            c
        }
    };
    let iface = match from {
        From::Client => "cli0",
        _ => "rly1",
    };
    let out = cmd
        .args([iface, kind, "--mac", mac])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match text.as_str() {
        "TIMEOUT" => None,
        t if t.starts_with('{') => Some(text),
        _ => panic!(
            "scapy-dhcp.py: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// DISCOVER, then a SELECTING REQUEST for the offer: the address ACKed.
fn dora(net: &Net, from: From, mac: &str) -> String {
    let offer = send(net, from, "discover", mac, &[]).expect("an OFFER");
    assert_eq!(field(&offer, "type"), "offer", "{offer}");
    let ip = field(&offer, "yiaddr").to_string();
    let ack = send(
        net,
        from,
        "request",
        mac,
        &["--requested", &ip, "--server-id", SERVER],
    )
    .expect("an ACK");
    assert_eq!(field(&ack, "type"), "ack", "{ack}");
    ip
}

/// An INIT-REBOOT REQUEST: option 50, no server identifier, ciaddr 0.
fn init_reboot(net: &Net, from: From, mac: &str, ip: &str) -> Option<String> {
    send(net, from, "request", mac, &["--requested", ip])
}

fn assert_nak(reply: Option<String>, from: From, what: &str) {
    let nak = reply.unwrap_or_else(|| panic!("{what}: no NAK ({from:?})"));
    assert_eq!(field(&nak, "type"), "nak", "{what}: {nak}");
    assert_eq!(field(&nak, "yiaddr"), "0.0.0.0", "{what}: {nak}");
    assert_eq!(option(&nak, 54), Some(SID_HEX), "{what}: {nak}");
    match from {
        // RFC 2131 §4.1: a NAK to a client on the link is broadcast, one
        // through a relay has the broadcast bit set.
        From::Client => assert_eq!(field(&nak, "to"), "255.255.255.255:68", "{nak}"),
        _ => assert_eq!(field(&nak, "flags"), "32768", "{nak}"),
    }
}

fn assert_ack(reply: Option<String>, ip: &str, what: &str) {
    let ack = reply.unwrap_or_else(|| panic!("{what}: no ACK"));
    assert_eq!(field(&ack, "type"), "ack", "{what}: {ack}");
    assert_eq!(field(&ack, "yiaddr"), ip, "{what}: {ack}");
    assert_eq!(option(&ack, 54), Some(SID_HEX), "{what}: {ack}");
}

/// in.aasd killed with SIGKILL and started again on its log.
fn restart_aasd(net: &mut Net, pid: u32, aconf: &str) -> u32 {
    kill9(pid);
    net.start_aasd("srv", aconf)
}

/// The first answer within 10 s: in.dhcpd may need a request or two to
/// find a restarted in.aasd (it answers nothing while it cannot reach it).
fn first_answer(mut ask: impl FnMut() -> Option<String>) -> Option<String> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if let Some(r) = ask() {
            return Some(r);
        }
    }
    None
}

#[test]
fn init_reboot_acks_the_own_binding_naks_another_and_is_silent_without_a_record() {
    let (mut net, log, aconf, aasd) = world("", "", POOLS);
    let paths = [
        (From::Client, "02:77:00:00:01:01", "10.77.0."),
        (From::Relay, "02:78:00:00:01:01", "10.78.0."),
    ];
    let mut bound = Vec::new();
    for (from, mac, net_prefix) in paths {
        // No record of the client: RFC 2131 §4.3.2 says remain silent.
        let other = format!("{net_prefix}110");
        assert_eq!(init_reboot(&net, from, mac, &other), None, "{from:?}");
        let text = read(&log);
        assert!(
            text.contains(&format!(
                "DHCPREQUEST for {other} from {mac}: no record of the client"
            )),
            "{text}"
        );
        let ip = dora(&net, from, mac);
        assert!(ip.starts_with(net_prefix), "{from:?} got {ip}");
        assert_ack(init_reboot(&net, from, mac, &ip), &ip, "own binding");
        // A binding to another address: NAK, and the binding stays.
        assert_nak(init_reboot(&net, from, mac, &other), from, "other address");
        assert!(!read(&log).contains(&format!("DHCPACK on {other}")));
        bound.push((from, mac, ip, other));
    }
    // The bindings are in in.aasd's log: the same answers after a restart.
    restart_aasd(&mut net, aasd, &aconf);
    for (from, mac, ip, other) in &bound {
        let ack = first_answer(|| init_reboot(&net, *from, mac, ip));
        assert_ack(ack, ip, "own binding after an in.aasd restart");
        assert_nak(
            init_reboot(&net, *from, mac, other),
            *from,
            "after the restart",
        );
    }
    let (_, rows) = net.aasadmin(&["list"]);
    for (_, _, ip, other) in &bound {
        assert!(rows.contains(ip.as_str()), "{rows}");
        assert!(!rows.contains(other.as_str()), "{rows}");
    }
}

#[test]
fn authoritative_naks_a_client_without_a_record_per_server_and_per_subnet() {
    // [server] says yes, the far subnet says no.
    let (net, log, _, _) = world("authoritative = yes", "authoritative = no", POOLS);
    let mac = "02:77:00:00:02:01";
    assert_nak(
        init_reboot(&net, From::Client, mac, "10.77.0.110"),
        From::Client,
        "authoritative subnet",
    );
    assert!(read(&log)
        .contains("DHCPNAK on 10.77.0.110 to 02:77:00:00:02:01: no record of this client"));
    let far = "02:78:00:00:02:01";
    assert_eq!(
        init_reboot(&net, From::Relay, far, "10.78.0.110"),
        None,
        "authoritative = no in the subnet wins"
    );
    // A client with a record is ACKed as before.
    let ip = dora(&net, From::Client, mac);
    assert_ack(
        init_reboot(&net, From::Client, mac, &ip),
        &ip,
        "own binding",
    );
    let (_, rows) = net.aasadmin(&["list"]);
    assert!(
        !rows.contains("10.77.0.110") && !rows.contains("10.78.0.110"),
        "{rows}"
    );
}

#[test]
fn a_declined_address_is_not_offered_again_even_with_the_pool_full() {
    // Two addresses: max_declined is 1 (a quarter, at least one).
    let pools = "[pool Near]\nrange = 10.77.0.100-10.77.0.101\n\
                 [pool Far]\nrange = 10.78.0.100-10.78.0.120\n";
    let (net, _, _, _) = world("decline_time = 3600", "", pools);
    let a = "02:77:00:00:03:01";
    let declined = dora(&net, From::Client, a);
    let decline = send(
        &net,
        From::Client,
        "decline",
        a,
        &[
            "--requested",
            &declined,
            "--server-id",
            SERVER,
            "--timeout",
            "0.5",
        ],
    );
    assert_eq!(decline, None, "a DECLINE gets no answer");
    let aas_log = net.path("aasd.log");
    assert!(
        wait_for(
            &aas_log,
            "declined: out of use for 3600 s",
            Duration::from_secs(5)
        ),
        "{}",
        read(&aas_log)
    );
    let other = dora(&net, From::Client, "02:77:00:00:03:02");
    assert_ne!(other, declined);
    // The pool is full but for the declined address: RFC 2131 §4.3.3 says
    // it stays out of use, so no OFFER (nor for the client that declined).
    for mac in ["02:77:00:00:03:03", a] {
        assert_eq!(
            send(&net, From::Client, "discover", mac, &[]),
            None,
            "{mac} was offered an address"
        );
    }
    let row = lease_row(&net, declined.parse().unwrap());
    assert_eq!(row.state, Selector::State(State::Declined), "{row}");
    assert!(!read(&aas_log).contains("reusing"), "{}", read(&aas_log));
}

#[test]
fn ciaddr_broadcast_does_not_stop_a_discover_or_selecting_request() {
    let (net, _, _, _) = world("", "", POOLS);
    for (from, mac, prefix) in [
        (From::Client, "02:77:00:00:04:01", "10.77.0."),
        (From::Relay, "02:78:00:00:04:01", "10.78.0."),
    ] {
        let ciaddr = ["--ciaddr", "255.255.255.255"];
        let offer = send(&net, from, "discover", mac, &ciaddr)
            .unwrap_or_else(|| panic!("{from:?}: no OFFER"));
        assert_eq!(field(&offer, "type"), "offer", "{offer}");
        let ip = field(&offer, "yiaddr").to_string();
        assert!(ip.starts_with(prefix), "{offer}");
        assert_eq!(field(&offer, "ciaddr"), "0.0.0.0", "{offer}");
        let mut args = vec!["--requested", &ip, "--server-id", SERVER];
        args.extend_from_slice(&ciaddr);
        let ack =
            send(&net, from, "request", mac, &args).unwrap_or_else(|| panic!("{from:?}: no ACK"));
        assert_eq!(field(&ack, "type"), "ack", "{ack}");
        assert_eq!(field(&ack, "yiaddr"), ip, "{ack}");
        if let From::Client = from {
            // Not to 255.255.255.255 as if it were the client's address:
            // to yiaddr, as for any client without one.
            assert_eq!(field(&ack, "to"), format!("{ip}:68"), "{ack}");
        }
    }
}

#[test]
fn inform_from_nowhere_without_ciaddr_is_dropped() {
    let (net, log, _, _) = world("", "", POOLS);
    let mac = "02:77:00:00:05:01";
    assert_eq!(
        send(&net, From::Client, "inform", mac, &["--opt", "55:0603"]),
        None
    );
    assert!(
        wait_for(
            &log,
            "DHCPINFORM from 0.0.0.0 with ciaddr 0.0.0.0",
            Duration::from_secs(2)
        ),
        "{}",
        read(&log)
    );
    // With its address in ciaddr, the same INFORM is answered there.
    let cli = net.ns("cli");
    add_address(&cli, "cli0", "10.77.0.77/24");
    let ack = send(
        &net,
        From::Client,
        "inform",
        mac,
        &["--src", "10.77.0.77", "--ciaddr", "10.77.0.77"],
    )
    .expect("an ACK for an INFORM with ciaddr");
    assert_eq!(field(&ack, "type"), "ack", "{ack}");
    assert_eq!(field(&ack, "to"), "10.77.0.77:68", "{ack}");
    assert_eq!(option(&ack, 51), None, "{ack}");
}

/// Values RFC 2132 forbids, each on its own line (line numbers below).
const BAD_OPTIONS: &str = "\
max_datagram_reassembly = 512
default_ip_ttl = 0
interface_mtu = 60
tcp_default_ttl = 0
static_routes = 0.0.0.0 10.77.0.1
option_21 = 0a000000ffffff
";

#[test]
fn option_values_outside_rfc_2132_are_errors_in_check_and_at_reload() {
    let mut net = Net::new(false);
    let conf = net.config("basic.conf");
    let good = read(&conf);
    // Put the bad lines first in [global]: lines 5 to 10.
    let bad = good.replacen("[global]\n", &format!("[global]\n{BAD_OPTIONS}"), 1);
    assert_eq!(bad.lines().nth(3), Some("[global]"), "{bad}");
    let want = [
        ":5: max_datagram_reassembly: option 22 is at least 576, not 512 (RFC 2132 §4.4)",
        ":6: default_ip_ttl: option 23 is 1 to 255, not 0 (RFC 2132 §4.5)",
        ":7: interface_mtu: option 26 is at least 68, not 60 (RFC 2132 §5.1)",
        ":8: tcp_default_ttl: option 37 is 1 to 255, not 0 (RFC 2132 §7.1)",
        ":9: static_routes: option 33 cannot have destination 0.0.0.0",
        ":10: option_21: option 21 holds whole address pairs",
    ];
    let checked = net.path("checked.conf");
    std::fs::write(&checked, &bad).unwrap();
    let out = std::process::Command::new(server_bin())
        .args(["-C", "-c", &checked])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for w in want {
        assert!(
            text.contains(&format!("{checked}{w}")),
            "missing {w}: {text}"
        );
    }
    // The same file as an edit of a running server's: logged with file and
    // line, and the previous configuration keeps serving.
    let (_, log) = net.start_standalone(&conf, &[]);
    std::fs::write(&conf, &bad).unwrap();
    settle(&conf);
    let offer = net
        .probe(&net.ns("cli"), &["cli0", "--broadcast"])
        .expect("an OFFER from the previous configuration");
    assert_eq!(field(&offer, "yiaddr"), "10.77.0.50");
    assert!(
        wait_for(
            &log,
            "keeping the previous configuration",
            Duration::from_secs(2)
        ),
        "{}",
        read(&log)
    );
    let text = read(&log);
    for w in want {
        assert!(text.contains(&format!("{conf}{w}")), "missing {w}: {text}");
    }
}

#[test]
fn a_restarted_dhclient_reboots_into_its_dynamic_lease_across_an_aasd_restart() {
    let (mut net, log, aconf, aasd) = world("", "", POOLS);
    let lf = net.path("dhclient.leases");
    let hook_log = net.path("dhclient.hook");
    let ip = net.dhclient_round("cli", &lf, &hook_log, "BOUND", &log);
    let _aasd = restart_aasd(&mut net, aasd, &aconf);
    assert_eq!(
        net.dhclient_round("cli", &lf, &hook_log, "REBOOT", &log),
        ip
    );
    let lease = last_lease(&hook_log).unwrap();
    assert_eq!(lease.event, "REBOOT");
    assert_eq!(lease.ip, ip);
    assert!(
        read(&log).contains(&format!("DHCPREQUEST for {ip} from {CLI_MAC} (InitReboot)")),
        "{}",
        read(&log)
    );
}

/// Option 82 with link selection (82.5) naming 10.78.0.0/24.
const LINK_FAR: &str = "82:05040a4e0000";
/// Option 82 with a server identifier override (82.11) naming 10.78.0.1.
const OVERRIDE_FAR: &str = "82:0b040a4e0001";

#[test]
fn link_selection_chooses_the_subnet_for_the_whole_exchange() {
    // RFC 3527: a relay on the server's own link (giaddr 10.77.0.2) serving
    // clients of 10.78.0.0/24, through a DISCOVER and the REQUESTs that
    // follow, each with option 50.
    let (net, _, _, _) = world("", "", POOLS);
    let relay = From::RelayAt("10.77.0.2");
    let mac = "02:77:00:00:06:01";
    let ls = ["--opt", LINK_FAR];
    let offer = send(&net, relay, "discover", mac, &ls).expect("an OFFER");
    let ip = field(&offer, "yiaddr").to_string();
    assert!(ip.starts_with("10.78.0."), "{offer}");
    assert_eq!(option(&offer, 54), Some(SID_HEX), "{offer}");
    assert_eq!(option(&offer, 3), Some("0a4e0001"), "far routers: {offer}");
    assert_eq!(option(&offer, 82), Some("05040a4e0000"), "echoed: {offer}");
    assert_eq!(field(&offer, "giaddr"), "10.77.0.2", "{offer}");
    let mut args = vec!["--requested", &ip, "--server-id", SERVER];
    args.extend_from_slice(&ls);
    let ack = send(&net, relay, "request", mac, &args).expect("an ACK");
    assert_ack(Some(ack.clone()), &ip, "SELECTING with 82.5");
    assert_eq!(option(&ack, 3), Some("0a4e0001"), "{ack}");
    assert_eq!(option(&ack, 82), Some("05040a4e0000"), "{ack}");
    let mut args = vec!["--requested", &ip];
    args.extend_from_slice(&ls);
    assert_ack(
        send(&net, relay, "request", mac, &args),
        &ip,
        "INIT-REBOOT with 82.5",
    );
    // Without the sub-option the relay's giaddr names 10.77.0.0/24: the
    // client is on the wrong network for that address.
    assert_nak(
        init_reboot(&net, relay, mac, &ip),
        relay,
        "INIT-REBOOT without 82.5",
    );
    let (_, rows) = net.aasadmin(&["list", &format!("client=10.78.0.0/1/{mac}")]);
    assert!(rows.contains(&ip) && rows.contains("leased"), "{rows}");
}

#[test]
fn a_server_identifier_override_is_named_and_honoured_in_the_request_that_follows() {
    // RFC 5107: the relay asks to be named as the server (option 54), and
    // the client's REQUEST then names the relay's address.
    let (net, _, _, _) = world("", "", POOLS);
    let far_sid = "0a4e0001";
    for (relay, extra, mac) in [
        (From::Relay, vec![OVERRIDE_FAR], "02:78:00:00:07:01"),
        // With link selection too, from a relay on the server's link.
        (
            From::RelayAt("10.77.0.2"),
            vec!["82:05040a4e00000b040a4e0001"],
            "02:78:00:00:07:02",
        ),
    ] {
        let opts: Vec<&str> = extra.iter().flat_map(|o| ["--opt", *o]).collect();
        let offer = send(&net, relay, "discover", mac, &opts).expect("an OFFER");
        let ip = field(&offer, "yiaddr").to_string();
        assert!(ip.starts_with("10.78.0."), "{offer}");
        assert_eq!(option(&offer, 54), Some(far_sid), "{offer}");
        let mut args = vec!["--requested", &ip, "--server-id", "10.78.0.1"];
        args.extend_from_slice(&opts);
        let ack = send(&net, relay, "request", mac, &args).expect("an ACK");
        assert_eq!(field(&ack, "type"), "ack", "{ack}");
        assert_eq!(field(&ack, "yiaddr"), ip, "{ack}");
        assert_eq!(option(&ack, 54), Some(far_sid), "{ack}");
        // A renewal through the relay (ciaddr set): the same.
        let mut args = vec!["--ciaddr", &ip];
        args.extend_from_slice(&opts);
        let renew = send(&net, relay, "request", mac, &args).expect("a renewal ACK");
        assert_eq!(field(&renew, "type"), "ack", "{renew}");
        assert_eq!(option(&renew, 54), Some(far_sid), "{renew}");
        let row = lease_row(&net, ip.parse().unwrap());
        assert_eq!(row.state, Selector::State(State::Leased), "{row}");
    }
    // Without the sub-option, 10.78.0.1 is another server: the client chose
    // it, so nothing is answered and our reservation is released.
    let mac = "02:78:00:00:07:03";
    let offer = send(&net, From::Relay, "discover", mac, &[]).expect("an OFFER");
    let ip = field(&offer, "yiaddr").to_string();
    assert_eq!(option(&offer, 54), Some(SID_HEX), "{offer}");
    let args = ["--requested", &ip, "--server-id", "10.78.0.1"];
    assert_eq!(send(&net, From::Relay, "request", mac, &args), None);
    let row = lease_row(&net, ip.parse().unwrap());
    assert_eq!(row.state, Selector::State(State::Free), "{row}");
}

#[test]
fn client_fqdn_comes_back_qualified_and_says_the_server_updates_no_dns() {
    // RFC 4702, for a server that does not update DNS: N set, S cleared, O
    // set because the client asked for S; E and the name as the client sent
    // it, a partial name qualified with domain_name.
    let (mut net, log, _, _) = world("", "", POOLS);
    let conf = read(&net.path("dhcpd.conf"))
        .replace("[global]\n", "[global]\ndomain_name = example.test\n");
    std::fs::write(net.path("dhcpd.conf"), conf).unwrap();
    settle(&net.path("dhcpd.conf"));
    let want = "0effff04686f7374076578616d706c65047465737400"; // host.example.test.
    for (from, mac) in [
        (From::Client, "02:77:00:00:08:01"),
        (From::Relay, "02:78:00:00:08:01"),
    ] {
        // Flags S and E, RCODEs 0, the partial name "host".
        let fqdn = "81:05000004686f7374";
        let offer = send(&net, from, "discover", mac, &["--opt", fqdn]).expect("an OFFER");
        assert_eq!(option(&offer, 81), Some(want), "{from:?} {offer}");
        let ip = field(&offer, "yiaddr").to_string();
        let ack = send(
            &net,
            from,
            "request",
            mac,
            &["--requested", &ip, "--server-id", SERVER, "--opt", fqdn],
        )
        .expect("an ACK");
        assert_eq!(option(&ack, 81), Some(want), "{from:?} {ack}");
    }
    assert!(read(&log).contains("reloaded"), "{}", read(&log));
    // dhclient sending its name, asking the server to update DNS.
    let dhclient_conf = net.path("dhclient.conf");
    std::fs::write(
        &dhclient_conf,
        "send fqdn.fqdn \"cli0\";\nsend fqdn.encoded on;\nsend fqdn.server-update on;\n",
    )
    .unwrap();
    let cli = net.ns("cli");
    let hook_log = net.path("dhclient.hook");
    let out = net.path("dhclient.out");
    let pid = net.spawn_cmd(
        &[
            &tool("nsrun.sh"),
            &cli,
            "dhclient",
            "-4",
            "-1",
            "-d",
            "-v",
            "-cf",
            &dhclient_conf,
            "-lf",
            &net.path("dhclient.leases"),
            "-pf",
            &net.path("dhclient.pid"),
            "-sf",
            &tool("hook.sh"),
            "-e",
            &format!("HOOK_LOG={hook_log}"),
            "cli0",
        ],
        &[],
        Path::new(&out),
    );
    assert!(
        wait_for(&hook_log, "event=BOUND", Duration::from_secs(20)),
        "{}",
        read(&out)
    );
    kill(pid);
    // As dhclient decodes the flags: server-update, no-client-update, encoded.
    let text = read(&hook_log);
    assert!(
        text.contains("fqdn=cli0.example.test fqdn_flags=false/true/true"),
        "{text}"
    );
}

/// The option's value as a dotted address, from a probe's hex.
fn hex_addr(hex: &str) -> String {
    (0..4)
        .map(|i| {
            u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .unwrap()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Two links, each a shared network of two subnets whose first pool has
/// one address: the server's link (10.77.0.0/24, then 10.99.0.0/25, the
/// server at 10.99.0.1 too) and the relayed one (10.78.0.0/24, then
/// 10.98.0.0/24, the relay at 10.98.0.1 too). Returns the server log.
fn shared_world() -> (Net, String) {
    let mut net = Net::new(true);
    let (srv, rly) = (net.ns("srv"), net.ns("rly"));
    sh(&[
        "ip",
        "-n",
        &srv,
        "addr",
        "add",
        "10.99.0.1/25",
        "brd",
        "+",
        "dev",
        "srv0",
    ]);
    sh(&[
        "ip",
        "-n",
        &rly,
        "addr",
        "add",
        "10.98.0.1/24",
        "brd",
        "+",
        "dev",
        "rly1",
    ]);
    sh(&[
        "ip",
        "-n",
        &srv,
        "route",
        "add",
        "10.98.0.0/24",
        "via",
        "10.77.0.2",
    ]);
    let aconf = net.aasd_conf(
        "",
        "[pool Near]\naddress = 10.77.0.100\n[pool Second]\nrange = 10.99.0.100-10.99.0.110\n\
         [pool Far]\naddress = 10.78.0.100\n[pool FarSecond]\nrange = 10.98.0.100-10.98.0.110\n",
    );
    net.start_aasd("srv", &aconf);
    let conf = net.path("dhcpd.conf");
    let text = format!(
        "[server]\naas_socket = {}\n[global]\nlease_time = 1h\n\
         [subnet 10.77.0.0/24]\nshared_network = lan\npool = Near\nrouters = 10.77.0.1\n\
         [subnet 10.78.0.0/24]\nshared_network = far\npool = Far\nrouters = 10.78.0.1\n\
         [subnet 10.99.0.0/25]\nshared_network = lan\npool = Second\nrouters = 10.99.0.1\n\
         [subnet 10.98.0.0/24]\nshared_network = far\npool = FarSecond\nrouters = 10.98.0.1\n\
         [client 02:77:00:00:09:05]\nip_address = 10.99.0.50\n",
        net.path("aasd.sock")
    );
    std::fs::write(&conf, text).unwrap();
    let (_, log) = net.start_standalone(&conf, &[]);
    (net, log)
}

#[test]
fn a_shared_network_offers_from_its_second_subnet_when_the_first_pool_is_full() {
    let (mut net, log) = shared_world();
    // Each first pool's one address taken.
    assert_eq!(dora(&net, From::Client, "02:77:00:00:09:01"), "10.77.0.100");
    assert_eq!(dora(&net, From::Relay, "02:78:00:00:09:01"), "10.78.0.100");
    let links = [
        (
            From::Client,
            "02:77:00:00:09:02",
            "10.99.0.",
            "ffffff80",
            "10.99.0.1",
        ),
        (
            From::Relay,
            "02:78:00:00:09:02",
            "10.98.0.",
            "ffffff00",
            "10.98.0.1",
        ),
    ];
    for (from, mac, prefix, mask, router) in links {
        let offer = send(&net, from, "discover", mac, &[]).expect("an OFFER");
        let ip = field(&offer, "yiaddr").to_string();
        assert!(ip.starts_with(prefix), "{from:?}: {offer}");
        // The chosen subnet's mask and routers, not the first one's.
        assert_eq!(option(&offer, 1), Some(mask), "{offer}");
        assert_eq!(option(&offer, 3).map(hex_addr).as_deref(), Some(router));
        let sid = hex_addr(option(&offer, 54).unwrap());
        let ack = send(
            &net,
            from,
            "request",
            mac,
            &["--requested", &ip, "--server-id", &sid],
        );
        let ack = ack.expect("an ACK");
        assert_eq!(field(&ack, "yiaddr"), ip, "{ack}");
        assert_eq!(option(&ack, 1), Some(mask), "{ack}");
        // The link's other subnet is the client's too: INIT-REBOOT and a
        // rebinding (ciaddr, no server id) are ACKed, not NAKed as off the
        // network the relay or the interface names.
        let reboot = send(&net, from, "request", mac, &["--requested", &ip]);
        assert_eq!(reboot.as_deref().map(|r| field(r, "type")), Some("ack"));
        if let From::Relay = from {
            let rebind = send(&net, from, "request", mac, &["--ciaddr", &ip]);
            let rebind = rebind.expect("an ACK to the rebinding");
            assert_eq!(field(&rebind, "type"), "ack", "{rebind}");
            assert_eq!(field(&rebind, "ciaddr"), ip, "{rebind}");
        }
    }
    // A fixed address on the link's second subnet, with that subnet's mask.
    let mac = "02:77:00:00:09:05";
    let offer = send(&net, From::Client, "discover", mac, &[]).expect("an OFFER");
    assert_eq!(field(&offer, "yiaddr"), "10.99.0.50", "{offer}");
    assert_eq!(option(&offer, 1), Some("ffffff80"), "{offer}");
    let ack = send(
        &net,
        From::Client,
        "request",
        mac,
        &["--requested", "10.99.0.50", "--server-id", "10.99.0.1"],
    );
    assert_eq!(
        ack.as_deref().map(|a| field(a, "yiaddr")),
        Some("10.99.0.50")
    );
    assert!(
        read(&log).contains(
            "pool Near exhausted: DHCPDISCOVER from 02:77:00:00:09:02 trying pool Second"
        ),
        "{}",
        read(&log)
    );
    // Real clients on both links, directly and through dhcrelay.
    net.start_dhcrelay();
    for c in [Client::Udhcpc, Client::Dhclient] {
        for (role, ifname, prefix, mask, router) in [
            ("cli", "cli0", "10.99.0.", "255.255.255.128", "10.99.0.1"),
            ("cli2", "cli2", "10.98.0.", "255.255.255.0", "10.98.0.1"),
        ] {
            let lease = get_lease(&mut net, c, role, ifname);
            let lease = lease.unwrap_or_else(|| panic!("{c:?} got no lease on {ifname}"));
            assert!(lease.ip.starts_with(prefix), "{c:?}: {lease:?}");
            assert_eq!(lease.mask, mask, "{c:?}: {lease:?}");
            assert_eq!(lease.routers, router, "{c:?}: {lease:?}");
        }
    }
    // A real client renewing its address on the second subnet.
    let (pid, hook_log, out) = net.start_udhcpc();
    let bound = last_lease(&hook_log).unwrap();
    assert!(bound.ip.starts_with("10.99.0."), "{bound:?}");
    // SIGUSR1: udhcpc renews at once (a unicast REQUEST from its address).
    signal(pid, "USR1");
    assert!(
        wait_for(&hook_log, "event=renew", Duration::from_secs(10)),
        "{}{}",
        read(&out),
        read(&log)
    );
    assert_eq!(last_lease(&hook_log).unwrap().ip, bound.ip);
}

/// Send signal `sig` to a process this test started.
fn signal(pid: u32, sig: &str) {
    sh(&["kill", &format!("-{sig}"), &pid.to_string()]);
}

#[test]
fn a_relay_port_named_by_circuit_or_remote_id_gets_its_pinned_address_and_options() {
    let ports = "[client circuit:00:04:00:07:00:01]\nip_address = 10.78.0.50\nhost_name = port7\n\
                 [client remote:aa:bb:cc:dd:ee:ff]\nip_address = 10.78.0.51\n\
                 [client circuit:00:04:00:08:00:01]\nip_address = 10.77.0.50\n";
    let (net, log, _, _) = world("", ports, POOLS);
    let circuit7 = "82:0106000400070001";
    let circuit8 = "82:0106000400080001";
    // Any client behind port 7 gets its address and options.
    for mac in ["02:78:00:00:0a:01", "02:78:00:00:0a:02"] {
        let offer = send(&net, From::Relay, "discover", mac, &["--opt", circuit7]);
        let offer = offer.expect("an OFFER");
        assert_eq!(field(&offer, "yiaddr"), "10.78.0.50", "{offer}");
        assert_eq!(option(&offer, 12), Some("706f727437"), "host_name port7");
        assert_eq!(option(&offer, 82), Some("0106000400070001"), "82 echoed");
        let ack = send(
            &net,
            From::Relay,
            "request",
            mac,
            &[
                "--requested",
                "10.78.0.50",
                "--server-id",
                SERVER,
                "--opt",
                circuit7,
            ],
        );
        let ack = ack.expect("an ACK");
        assert_eq!(field(&ack, "yiaddr"), "10.78.0.50", "{ack}");
        assert_eq!(option(&ack, 51), Some("ffffffff"), "pinned: infinite");
    }
    // An unknown circuit with a known remote ID: the remote entry.
    let both = "82:010200090206aabbccddeeff";
    let offer = send(
        &net,
        From::Relay,
        "discover",
        "02:78:00:00:0a:03",
        &["--opt", both],
    );
    assert_eq!(field(&offer.expect("an OFFER"), "yiaddr"), "10.78.0.51");
    // Neither known: an address of the pool.
    let other = "82:0106000400090001";
    let offer = send(
        &net,
        From::Relay,
        "discover",
        "02:78:00:00:0a:04",
        &["--opt", other],
    );
    let ip = field(&offer.expect("an OFFER"), "yiaddr").to_string();
    assert!(ip.starts_with("10.78.0.1"), "{ip}");
    // Option 82 from a client (no relay) is not trusted: no port entry.
    let offer = send(
        &net,
        From::Client,
        "discover",
        "02:77:00:00:0a:05",
        &["--opt", circuit8],
    );
    let ip = field(&offer.expect("an OFFER"), "yiaddr").to_string();
    assert!(ip.starts_with("10.77.0.1"), "{ip}");
    // Port 8 behind a relay on the server's own link; the renewal that
    // follows comes straight from the client, without option 82, and its
    // ciaddr names the port's entry.
    let mac = "02:77:00:00:0a:06";
    let offer = send(
        &net,
        From::RelayAt("10.77.0.2"),
        "discover",
        mac,
        &["--opt", circuit8],
    );
    assert_eq!(field(&offer.expect("an OFFER"), "yiaddr"), "10.77.0.50");
    add_address(&net.ns("cli"), "cli0", "10.77.0.50/24");
    let renew = send(
        &net,
        From::Client,
        "request",
        mac,
        &["--src", "10.77.0.50", "--ciaddr", "10.77.0.50"],
    );
    let renew = renew.expect("an ACK to the renewal");
    assert_eq!(field(&renew, "type"), "ack", "{renew}");
    assert_eq!(field(&renew, "yiaddr"), "10.77.0.50", "{renew}");
    assert!(!read(&log).contains("DHCPNAK"), "{}", read(&log));
}

#[test]
fn a_long_option_121_is_split_across_options_file_and_sname_and_joined_by_clients() {
    // 26 routes of 8 bytes and one of 9: 217 bytes of option 121, which
    // after a 208-byte domain name fits none of the three areas whole: in
    // three parts, options field, file, sname.
    let mut routes: Vec<String> = (0..26)
        .map(|n| format!("10.1.{n}.0/24 10.77.0.1"))
        .collect();
    routes.push("10.2.0.1/32 10.77.0.1".into());
    let mut want = String::new();
    for n in 0..26u8 {
        want.push_str(&format!("180a01{n:02x}0a4d0001"));
    }
    want.push_str("200a0200010a4d0001");
    assert_eq!(want.len(), 2 * 217);
    let (mut net, log, _, _) = world("option_overload = yes", "", POOLS);
    let conf = read(&net.path("dhcpd.conf")).replace(
        "[global]\n",
        &format!(
            "[global]\ndomain_name = {}.example\nclassless_static_routes = {}\n",
            "d".repeat(200),
            routes.join(", ")
        ),
    );
    std::fs::write(net.path("dhcpd.conf"), conf).unwrap();
    settle(&net.path("dhcpd.conf"));
    for (from, mac) in [
        (From::Client, "02:77:00:00:0b:01"),
        (From::Relay, "02:78:00:00:0b:01"),
    ] {
        let offer = send(&net, from, "discover", mac, &[]).expect("an OFFER");
        assert_eq!(option(&offer, 121), Some(want.as_str()), "{from:?} {offer}");
        assert_eq!(parts(&offer, 121), 3, "{offer}");
        assert_eq!(option(&offer, 52), Some("03"), "{offer}");
    }
    assert!(read(&log).contains("reloaded"), "{}", read(&log));
    assert!(!read(&log).contains("Option code 121 did not fit"));
    // dhclient joins the parts too (its hook gets the bytes in decimal).
    let decimal: Vec<String> = (0..want.len() / 2)
        .map(|i| {
            u8::from_str_radix(&want[2 * i..2 * i + 2], 16)
                .unwrap()
                .to_string()
        })
        .collect();
    let lease = get_lease(&mut net, Client::Dhclient, "cli", "cli0").expect("a dhclient lease");
    assert_eq!(lease.routes121, decimal.join(","), "{lease:?}");
    // udhcpc too, asked for option 121 (its hook gets "net/len router").
    let hook_log = net.path("udhcpc-121.hook");
    let out = std::process::Command::new("timeout")
        .args([
            "20",
            "ip",
            "netns",
            "exec",
            &net.ns("cli"),
            "udhcpc",
            "-i",
            "cli0",
        ])
        .args(["-f", "-q", "-n", "-t", "5", "-T", "2", "-O", "staticroutes"])
        .args(["-s", &tool("hook.sh")])
        .env("HOOK_LOG", &hook_log)
        .output()
        .unwrap();
    let lease = last_lease(&hook_log).unwrap_or_else(|| panic!("udhcpc: {out:?}"));
    let pairs: Vec<String> = routes.iter().map(|r| r.replace(' ', ",")).collect();
    assert_eq!(lease.routes121, pairs.join(","), "{lease:?}");
}

/// How many instances of `code` a probe's reply held.
fn parts(json: &str, code: u8) -> usize {
    let rest = &json[json.find("\"parts\"").unwrap()..];
    let key = format!("\"{code}\": ");
    let start = rest.find(&key).map(|i| i + key.len()).unwrap_or(0);
    let digits: String = rest[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(0)
}

#[test]
fn a_subnet_bound_to_an_interface_is_served_there_without_an_address_of_ours_in_it() {
    // srv1 (10.91.0.1/24, no subnet of the file) is the link of
    // 10.92.0.0/24, where the server has no address.
    let side = "[subnet 10.92.0.0/24]\ninterface = srv1\npool = Side\nrouters = 10.92.0.1\n";
    let pools = format!("{POOLS}[pool Side]\nrange = 10.92.0.100-10.92.0.120\n");
    let (mut net, log, _, _) = world("", side, &pools);
    let (srv, cli) = (net.ns("srv"), net.add_ns("cli4"));
    sh(&[
        "ip", "-n", &srv, "link", "add", "srv1", "type", "veth", "peer", "name", "cli0", "netns",
        &cli,
    ]);
    sh(&[
        "ip",
        "-n",
        &cli,
        "link",
        "set",
        "cli0",
        "address",
        "02:91:00:00:00:10",
    ]);
    sh(&[
        "ip",
        "-n",
        &srv,
        "addr",
        "add",
        "10.91.0.1/24",
        "brd",
        "+",
        "dev",
        "srv1",
    ]);
    for (ns, ifname) in [(&srv, "srv1"), (&cli, "cli0")] {
        sh(&["ip", "-n", ns, "link", "set", ifname, "up"]);
        sh(&[
            "ip", "netns", "exec", ns, "ethtool", "-K", ifname, "tx", "off",
        ]);
    }
    // scapy: offer and ACK from the subnet, named by srv1's own address.
    let mac = "02:91:00:00:01:01";
    let scapy = |args: &[&str]| {
        let out = tool_in(&cli, "scapy-dhcp.py")
            .args(["cli0"])
            .args(args)
            .args(["--mac", mac])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let offer = scapy(&["discover"]);
    assert!(offer.starts_with('{'), "{offer}\n{}", read(&log));
    let ip = field(&offer, "yiaddr").to_string();
    assert!(ip.starts_with("10.92.0.1"), "{offer}");
    assert_eq!(option(&offer, 54), Some("0a5b0001"), "{offer}");
    assert_eq!(option(&offer, 3), Some("0a5c0001"), "{offer}");
    let ack = scapy(&["request", "--requested", &ip, "--server-id", "10.91.0.1"]);
    assert_eq!(field(&ack, "type"), "ack", "{ack}");
    assert_eq!(field(&ack, "yiaddr"), ip, "{ack}");
    // Real clients there.
    for c in CLIENTS {
        let lease = get_lease(&mut net, c, "cli4", "cli0");
        let lease = lease.unwrap_or_else(|| panic!("{c:?} got no lease on srv1's link"));
        assert!(lease.ip.starts_with("10.92.0.1"), "{c:?}: {lease:?}");
        assert_eq!(lease.server, "10.91.0.1", "{c:?}: {lease:?}");
    }
    // The server's own link is served as before.
    let lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0").expect("a lease on srv0");
    assert!(lease.ip.starts_with("10.77.0.1"), "{lease:?}");
    assert_eq!(lease.server, SERVER);
}
