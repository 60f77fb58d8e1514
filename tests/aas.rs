//! Dynamic addresses: real clients get, renew, release and get back pool
//! addresses that in.dhcpd asks in.aasd for; aasadmin sees each step.

mod common;

use std::fs;
use std::thread::sleep;
use std::time::Duration;

use common::*;

const POOLS: &str = "[pool Near]\nrange = 10.77.0.100-10.77.0.120\n\
                     [pool Far]\nrange = 10.78.0.100-10.78.0.120\n";

/// dynamic.conf with this test's AAS socket, and `server` keys replacing
/// the aas_socket line when given (a remote AAS).
fn dhcpd_conf(net: &Net, server: Option<&str>) -> String {
    let text = fs::read_to_string(config("dynamic.conf")).unwrap();
    let sock = net.path("aasd.sock");
    let text = match server {
        None => text.replace("AAS_SOCKET", &sock),
        Some(keys) => text.replace("aas_socket = AAS_SOCKET", keys),
    };
    let path = net.path("dhcpd.conf");
    fs::write(&path, text).unwrap();
    path
}

fn in_pool(ip: &str, prefix: &str) -> bool {
    ip.strip_prefix(prefix)
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (100..=120).contains(&n))
}

/// `aasadmin --json list ...` rows as (address, state, client).
fn leases(net: &Net, filters: &[&str]) -> Vec<(String, String, String)> {
    let mut args = vec!["--json", "list"];
    args.extend_from_slice(filters);
    let (code, text) = net.aasadmin(&args);
    assert_eq!(code, 0, "{text}");
    let field = |row: &str, k: &str| {
        let at = row.find(&format!("\"{k}\": \"")).map(|i| i + k.len() + 5);
        at.map(|i| row[i..].split('"').next().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    text.split('{')
        .skip(1)
        .map(|row| {
            (
                field(row, "address"),
                field(row, "state"),
                field(row, "client"),
            )
        })
        .collect()
}

#[test]
fn real_clients_get_pool_addresses_and_aasadmin_lists_them() {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf("", POOLS);
    net.start_aasd("srv", &aconf);
    let conf = dhcpd_conf(&net, None);
    let (_, log) = net.start_standalone(&conf, &[]);
    let mut got = Vec::new();
    for c in CLIENTS {
        let lease = get_lease(&mut net, c, "cli", "cli0")
            .unwrap_or_else(|| panic!("{c:?} got no lease: {}", read(&log)));
        assert!(in_pool(&lease.ip, "10.77.0."), "{c:?}: {}", lease.ip);
        assert_eq!(lease.server, SERVER);
        got.push(lease.ip);
    }
    // dhclient (the MAC) and udhcpc (01+MAC) are one client, which takes
    // its lease over from one form to the other; dhcpcd (a DUID) is
    // another: two addresses.
    assert_eq!(got[0], got[1], "{got:?}");
    assert_ne!(got[1], got[2], "{got:?}");
    let leased = leases(&net, &["state=leased"]);
    for ip in &got {
        assert!(
            leased.iter().any(|(a, _, _)| a == ip),
            "{ip} not leased: {leased:?}"
        );
    }
    assert!(
        leased
            .iter()
            .any(|(_, _, c)| c == "10.77.0.0/id/01027700000010"),
        "udhcpc's key, which took dhclient's lease over: {leased:?}"
    );
    // The same client again gets the address it holds.
    let again = get_lease(&mut net, Client::Dhclient, "cli", "cli0").unwrap();
    assert_eq!(again.ip, got[0]);
    let (code, text) = net.aasadmin(&["stats", "Near"]);
    assert_eq!(code, 0);
    assert!(text.contains("Near  21    2"), "{text}");
}

#[test]
fn udhcpc_renews_releases_and_gets_its_previous_address_back() {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf("", POOLS);
    net.start_aasd("srv", &aconf);
    let conf = dhcpd_conf(&net, None);
    let (_, log) = net.start_standalone(&conf, &[]);
    let (pid, hook_log, out) = net.start_udhcpc();
    let ip = last_lease(&hook_log).unwrap().ip;
    assert!(in_pool(&ip, "10.77.0."), "{ip}");

    // SIGUSR1: udhcpc renews (unicast REQUEST with ciaddr) and keeps it.
    let before = leases(&net, &[&format!("range={ip}-{ip}")]);
    assert_eq!(before[0].1, "leased");
    sleep(Duration::from_secs(1));
    // SAFETY-free: plain kill(1) on the PID we started.
    sh(&["kill", "-USR1", &pid.to_string()]);
    assert!(
        wait_for(&hook_log, "event=renew", Duration::from_secs(10)),
        "{}",
        read(&out)
    );
    assert_eq!(last_lease(&hook_log).unwrap().ip, ip);
    assert!(
        read(&log).contains(&format!(
            "DHCPREQUEST for {ip} from 02:77:00:00:00:10 (Renewing)"
        )),
        "{}",
        read(&log)
    );

    // SIGTERM with -R: a DHCPRELEASE, and the AAS frees the address.
    kill(pid);
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if leases(&net, &["state=free"])
            .iter()
            .any(|(a, _, _)| *a == ip)
        {
            break;
        }
        sleep(Duration::from_millis(100));
    }
    let free = leases(&net, &["state=free"]);
    assert!(
        free.iter().any(|(a, _, _)| *a == ip),
        "{ip} not freed: {free:?}"
    );

    // Back again: its previous address, although never-used ones are free.
    let lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0").unwrap();
    assert_eq!(lease.ip, ip);
}

#[test]
fn direct_and_relayed_subnets_draw_from_their_own_pools() {
    let mut net = Net::new(true);
    let aconf = net.aasd_conf("", POOLS);
    net.start_aasd("srv", &aconf);
    let conf = dhcpd_conf(&net, None);
    net.start_standalone(&conf, &[]);
    net.start_dhcrelay();
    let near = get_lease(&mut net, Client::Dhclient, "cli", "cli0").unwrap();
    let far = get_lease(&mut net, Client::Dhclient, "cli2", "cli2").unwrap();
    assert!(in_pool(&near.ip, "10.77.0."), "{}", near.ip);
    assert!(in_pool(&far.ip, "10.78.0."), "{}", far.ip);
    let rows = leases(&net, &["pool=Far"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, far.ip);
    assert_eq!(rows[0].2, "10.78.0.0/1/02:78:00:00:00:10");
}

#[test]
fn each_new_inetd_instance_knows_every_lease() {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf("", POOLS);
    net.start_aasd("srv", &aconf);
    let conf = dhcpd_conf(&net, None);
    net.start_inetd(&format!("-t 1s -c {conf}"));
    let cli = net.ns("cli");
    let mut seen = Vec::new();
    for round in 0..2 {
        // Wait for the previous in.dhcpd to exit idle: each round is served
        // by a fresh process.
        let t0 = std::time::Instant::now();
        while !net.server_pids().is_empty() && t0.elapsed() < Duration::from_secs(5) {
            sleep(Duration::from_millis(100));
        }
        assert!(net.server_pids().is_empty(), "round {round}");
        let mut pids = Vec::new();
        for mac in ["02:77:00:00:00:31", "02:77:00:00:00:32"] {
            let offer = net
                .probe(&cli, &["cli0", "--mac", mac, "--broadcast"])
                .expect("an OFFER");
            pids.extend(net.server_pids());
            let ip = offer
                .split("\"yiaddr\": \"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let ack = net
                .probe(
                    &cli,
                    &[
                        "cli0",
                        "--mac",
                        mac,
                        "--broadcast",
                        "--type",
                        "request",
                        "--requested",
                        ip,
                        "--server-id",
                        SERVER,
                    ],
                )
                .expect("an ACK");
            assert!(ack.contains("\"type\": \"ack\""), "{ack}");
            seen.push((round, mac, ip.to_string()));
        }
        assert!(!pids.is_empty());
    }
    // The second process, which never saw these clients, gave each the
    // address the first one leased it.
    assert_eq!(seen[0].2, seen[2].2, "{seen:?}");
    assert_eq!(seen[1].2, seen[3].2, "{seen:?}");
    assert_ne!(seen[0].2, seen[1].2, "{seen:?}");
}

#[test]
fn remote_aas_over_tcp_and_a_wrong_password_is_refused() {
    let mut net = Net::new(true);
    // in.aasd in the relay namespace, reached over the bridge at 10.77.0.2.
    let aconf = net.aasd_conf("listen = 10.77.0.2:15310\npassword = right-one\n", POOLS);
    net.start_aasd("rly", &aconf);
    let conf = dhcpd_conf(
        &net,
        Some("aas_address = 10.77.0.2:15310\naas_password = right-one"),
    );
    let (_, log) = net.start_standalone(&conf, &[]);
    let lease = get_lease(&mut net, Client::Dhclient, "cli", "cli0")
        .unwrap_or_else(|| panic!("no lease over TCP: {}", read(&log)));
    assert!(in_pool(&lease.ip, "10.77.0."), "{}", lease.ip);

    // The same server with a wrong password: refused, logged both sides,
    // and the client gets nothing.
    fs::write(
        &conf,
        fs::read_to_string(&conf)
            .unwrap()
            .replace("right-one", "wrong-one"),
    )
    .unwrap();
    settle(&conf);
    let cli = net.ns("cli");
    let reply = net.probe(&cli, &["cli0", "--mac", "02:77:00:00:00:41", "--broadcast"]);
    assert!(reply.is_none(), "{reply:?}");
    let aasd_log = net.path("aasd.log");
    assert!(
        wait_for(&aasd_log, "authentication failed", Duration::from_secs(3)),
        "{}",
        read(&aasd_log)
    );
    assert!(
        read(&log).contains("authentication refused"),
        "{}",
        read(&log)
    );
}

#[test]
fn probe_skips_an_address_that_answers_ping() {
    let mut net = Net::new(false);
    // A host on the client link squats on the pool's first address.
    let squatter = net.add_ns("sq");
    net.port(
        &squatter,
        "sq0",
        "02:77:00:00:00:77",
        Some("10.77.0.100/24"),
    );
    let aconf = net.aasd_conf("", POOLS);
    net.start_aasd("srv", &aconf);
    let conf = dhcpd_conf(&net, None);
    let text = read(&conf).replace("[server]\n", "[server]\nprobe = yes\nprobe_timeout = 300\n");
    fs::write(&conf, text).unwrap();
    let (_, log) = net.start_standalone(&conf, &[]);
    let (_, hook, out) = net.start_udhcpc();
    let lease = last_lease(&hook).unwrap_or_else(|| panic!("{}\n{}", read(&out), read(&log)));
    assert_eq!(lease.ip, "10.77.0.101", "{}", read(&log));
    assert!(
        read(&log).contains("10.77.0.100 answers ping: in use by a host the AAS does not know"),
        "{}",
        read(&log)
    );
    let declined = leases(&net, &["state=declined"]);
    assert_eq!(declined.len(), 1, "{declined:?}");
    assert_eq!(declined[0].0, "10.77.0.100");
}
