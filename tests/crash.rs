//! No ACKed lease is lost when either daemon dies by SIGKILL. A load client
//! does DORAs through in.dhcpd while one daemon is killed at random moments
//! and restarted; afterwards every address the client saw ACKed is still
//! leased to that same client, and no address went to two clients.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use common::*;

const POOL: &str = "[pool Near]\nrange = 10.77.0.100-10.77.0.250\n";
const CLIENTS_WANTED: usize = 120;

/// A small xorshift generator: random moments without a crate.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng(t | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

enum Victim {
    Aasd,
    Dhcpd,
}

fn dhcpd_conf(net: &Net) -> String {
    let text = fs::read_to_string(config("dynamic.conf"))
        .unwrap()
        .replace("AAS_SOCKET", &net.path("aasd.sock"));
    let path = net.path("dhcpd.conf");
    fs::write(&path, text).unwrap();
    path
}

fn run(victim: Victim, sync: &str) {
    let mut net = Net::new(true);
    let aconf = net.aasd_conf(&format!("sync = {sync}\n"), POOL);
    let mut aasd = net.start_aasd("srv", &aconf);
    let conf = dhcpd_conf(&net);
    let (mut dhcpd, _) = net.start_standalone(&conf, &[]);

    let load_out = net.path("load.out");
    let rly = net.ns("rly");
    let load = net.spawn(
        &rly,
        &[
            "/usr/bin/python3",
            &tool("dora-load.py"),
            SERVER,
            "10.77.0.2",
            "--count",
            &CLIENTS_WANTED.to_string(),
            "--seconds",
            "90",
            "--pause",
            "0.03",
        ],
        &[],
        Path::new(&load_out),
    );
    let mut rng = Rng::new();
    let mut kills = 0;
    let t0 = Instant::now();
    while alive_not_zombie(load) && t0.elapsed() < Duration::from_secs(120) {
        sleep(Duration::from_millis(20 + rng.below(150)));
        if !alive_not_zombie(load) {
            break;
        }
        match victim {
            Victim::Aasd => {
                kill9(aasd);
                sleep(Duration::from_millis(rng.below(100)));
                aasd = net.start_aasd("srv", &aconf);
            }
            Victim::Dhcpd => {
                kill9(dhcpd);
                sleep(Duration::from_millis(rng.below(100)));
                dhcpd = net.start_standalone(&conf, &[]).0;
            }
        }
        kills += 1;
    }
    let acks: Vec<(String, String)> = read(&load_out)
        .lines()
        .filter_map(|l| {
            let mac = l.split("\"mac\": \"").nth(1)?.split('"').next()?;
            let ip = l.split("\"ip\": \"").nth(1)?.split('"').next()?;
            Some((mac.to_string(), ip.to_string()))
        })
        .collect();
    assert!(
        kills >= 5,
        "only {kills} kills: the load ended too soon: {}",
        read(&load_out)
    );
    assert!(
        acks.len() >= CLIENTS_WANTED / 2,
        "only {} ACKs in {kills} kills: {}",
        acks.len(),
        read(&net.path("aasd.log"))
    );

    // No address ACKed to two clients.
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for (mac, ip) in &acks {
        if let Some(other) = owner.insert(ip, mac) {
            assert_eq!(other, mac, "{ip} ACKed to {other} and {mac}");
        }
    }
    // Every ACKed address is leased, to the client that saw the ACK. A
    // final in.aasd restart proves it is on disk, not only in memory.
    kill9(aasd);
    net.start_aasd("srv", &aconf);
    let (code, listing) = net.aasadmin(&["list", "state=leased"]);
    assert_eq!(code, 0, "{listing}");
    for (mac, ip) in &acks {
        let row = listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some(ip))
            .unwrap_or_else(|| panic!("ACKed {ip} ({mac}) is not leased:\n{listing}"));
        assert!(
            row.contains(&format!("10.77.0.0/1/{mac}")),
            "{ip} ACKed to {mac} but leased as: {row}"
        );
    }
    eprintln!("{} ACKs, {kills} kills, all leases intact", acks.len());
}

fn alive_not_zombie(pid: u32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z ")
}

#[test]
fn aasd_killed_at_random_loses_no_acked_lease_sync_never() {
    run(Victim::Aasd, "never");
}

#[test]
fn aasd_killed_at_random_loses_no_acked_lease_sync_always() {
    run(Victim::Aasd, "always");
}

#[test]
fn dhcpd_killed_at_random_loses_no_acked_lease() {
    run(Victim::Dhcpd, "always");
}
