//! Two hosts, one database (issue 21): host A and host B are network
//! namespaces on one client link, each with its own in.aasd (`store =
//! postgresql`, both on one test cluster) serving its own in.dhcpd; real
//! clients on the link.
//!
//! ```text
//! P-srv  [srv0  10.77.0.1/24]--+   host A: in.aasd + in.dhcpd
//! P-srvb [srvb0 10.77.0.3/24]--+   host B: in.aasd + in.dhcpd
//! P-cli  [cli0  no address  ]--+-- bridge in P-sw   (dhclient, scapy)
//! P-clu  [clu0  no address  ]--+                    (udhcpc)
//! P-clp  [clp0  no address  ]--+                    (dhcpcd)
//! ```
//!
//! The cluster listens on a Unix socket in the file system, which both
//! hosts' namespaces reach (network namespaces do not separate files):
//! the harness's clusters have no TCP address, and what is tested here is
//! two in.aasd sharing rows, which the transport does not change.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::pg::Cluster;
use common::*;

const A_IP: &str = "10.77.0.1";
const B_IP: &str = "10.77.0.3";
const A_MAC: &str = "02:77:00:00:00:01";
const B_MAC: &str = "02:77:00:00:00:03";

/// One host: the namespace, its in.aasd and in.dhcpd.
struct Host {
    ns: String,
    dir: String,
    aasd: u32,
    dhcpd: Option<u32>,
}

impl Host {
    fn sock(&self) -> String {
        format!("{}/aasd.sock", self.dir)
    }

    fn log(&self, which: &str) -> String {
        read(&format!("{}/{which}.log", self.dir))
    }

    fn logs(&self) -> String {
        format!(
            "--- {}: in.aasd ---\n{}\n--- in.dhcpd ---\n{}",
            self.ns,
            self.log("aasd"),
            self.log("dhcpd")
        )
    }
}

/// The link with both hosts' in.aasd running on one database, and the
/// client namespaces; in.dhcpd is started by [`World::start_dhcpd`].
struct World {
    net: Net,
    hosts: [Host; 2],
    // Dropped after the daemons (fields drop in order): they hold
    // connections to it.
    _cluster: Cluster,
}

impl World {
    /// `lease`: the lease fields of dhcpd.conf's [global].
    fn new(lease: &str) -> World {
        let mut net = Net::new(false);
        let srvb = net.add_ns("srvb");
        net.port(&srvb, "srvb0", B_MAC, Some(&format!("{B_IP}/24")));
        for (role, ifname, mac) in [
            ("clu", "clu0", "02:77:00:00:00:11"),
            ("clp", "clp0", "02:77:00:00:00:12"),
        ] {
            let ns = net.add_ns(role);
            net.port(&ns, ifname, mac, None);
        }
        let cluster = Cluster::start();
        cluster.create_user_db("aasd", "s3cret", "leases");
        let conninfo = format!(
            "{} passfile={}",
            cluster.conninfo("aasd", "leases"),
            cluster.passfile("aasd", "s3cret").display()
        );
        let hosts = [("a", net.ns("srv")), ("b", srvb)].map(|(name, ns)| {
            let dir = net.path(name);
            fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::chown(&dir, None, Some(TEST_SOCKET_GID)).unwrap();
            write_confs(&dir, &conninfo, lease);
            let aasd = net.spawn(
                &ns,
                &[aasd_bin(), "-D", "3", "-c", &format!("{dir}/aasd.conf")],
                &[],
                Path::new(&format!("{dir}/aasd.log")),
            );
            let host = Host {
                ns,
                dir,
                aasd,
                dhcpd: None,
            };
            assert!(
                wait_true(Duration::from_secs(20), || ping(&host.sock())),
                "in.aasd did not start: {}",
                host.logs()
            );
            host
        });
        World {
            net,
            hosts,
            _cluster: cluster,
        }
    }

    /// in.dhcpd standalone on host `i` (0 = A, 1 = B), once it serves.
    fn start_dhcpd(&mut self, i: usize) {
        let h = &self.hosts[i];
        let log = format!("{}/dhcpd.log", h.dir);
        let conf = format!("{}/dhcpd.conf", h.dir);
        let pid = self.net.spawn(
            &h.ns,
            &[server_bin(), "-s", "-D", "3", "-c", &conf],
            &[],
            Path::new(&log),
        );
        assert!(
            wait_for(&log, "started", Duration::from_secs(5)),
            "{}",
            read(&log)
        );
        self.hosts[i].dhcpd = Some(pid);
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.hosts[0].logs(), self.hosts[1].logs())
    }

    /// `aasadmin --json list` against host `i`'s in.aasd: (address, state).
    fn list(&self, i: usize) -> Vec<(String, String)> {
        let (code, text) = self
            .net
            .aasadmin_at(Path::new(&self.hosts[i].sock()), &["--json", "list"]);
        assert_eq!(code, 0, "{text}");
        text.split('{')
            .skip(1)
            .map(|row| (json_text(row, "address"), json_text(row, "state")))
            .collect()
    }

    /// scapy-dhcp.py from cli0 with `mac`, its broadcast delivered to one
    /// server's MAC only: the reply as JSON, or None (no answer in 5 s;
    /// `--timeout` in `args` replaces that).
    fn to_one_server(&self, server_mac: &str, mac: &str, args: &[&str]) -> Option<String> {
        let out = tool_in(&self.net.ns("cli"), "scapy-dhcp.py")
            .arg("cli0")
            .args(["--timeout", "5"])
            .args(args)
            .args(["--mac", mac, "--ether-dst", server_mac])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && text.starts_with('{')).then_some(text)
    }
}

/// aasd.conf and dhcpd.conf of one host in `dir`: one pool on the link,
/// the same on both hosts.
fn write_confs(dir: &str, conninfo: &str, lease: &str) {
    fs::write(
        format!("{dir}/aasd.conf"),
        format!(
            "database_dir = {dir}/aasdb\nsocket = {dir}/aasd.sock\n\
             socket_group = {TEST_SOCKET_GROUP}\nstore = postgresql\n\
             postgresql = {conninfo}\n\
             [pool Link]\nrange = 10.77.0.100-10.77.0.120\n"
        ),
    )
    .unwrap();
    fs::write(
        format!("{dir}/dhcpd.conf"),
        format!(
            "[server]\naas_socket = {dir}/aasd.sock\nlease_res_time = 10\n\
             [global]\n{lease}\n\
             [subnet 10.77.0.0/24]\npool = Link\n"
        ),
    )
    .unwrap();
}

fn json_text(row: &str, key: &str) -> String {
    let at = row
        .find(&format!("\"{key}\": \""))
        .map(|i| i + key.len() + 5);
    at.map(|i| row[i..].split('"').next().unwrap_or("").to_string())
        .unwrap_or_default()
}

fn ping(sock: &str) -> bool {
    let Ok(s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut w = s.try_clone().unwrap();
    let mut line = String::new();
    writeln!(w, "PING").is_ok()
        && BufReader::new(s).read_line(&mut line).is_ok()
        && line.starts_with("OK")
}

/// Poll `f` until it gives something, at most `limit`.
fn wait_until<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t0.elapsed() > limit {
            return None;
        }
        sleep(Duration::from_millis(100));
    }
}

fn wait_true(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    wait_until(limit, || f().then_some(())).is_some()
}

/// (b) dhclient, udhcpc and dhcpcd on a link served by two in.dhcpd, each
/// with its own in.aasd on one database, get three distinct addresses;
/// aasadmin against either in.aasd lists all three as leased.
#[test]
fn two_hosts_serve_one_link_from_one_database() {
    let mut w = World::new("lease_time = 1h");
    w.start_dhcpd(0);
    w.start_dhcpd(1);
    let mut got = Vec::new();
    for (client, role, ifname) in [
        (Client::Dhclient, "cli", "cli0"),
        (Client::Udhcpc, "clu", "clu0"),
        (Client::Dhcpcd, "clp", "clp0"),
    ] {
        let lease = get_lease(&mut w.net, client, role, ifname)
            .unwrap_or_else(|| panic!("{client:?} got no lease\n{}", w.logs()));
        assert!(
            [A_IP, B_IP].contains(&lease.server.as_str()),
            "{client:?}: {lease:?}"
        );
        got.push(lease.ip);
    }
    let mut distinct = got.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "addresses: {got:?}\n{}", w.logs());
    for i in 0..2 {
        let rows = w.list(i);
        for ip in &got {
            assert!(
                rows.contains(&(ip.clone(), "leased".to_string())),
                "{ip} not leased in host {i}'s list: {rows:?}"
            );
        }
    }
}

/// The race: both servers offer one client (both holds are one row, the
/// client's address). The client's REQUEST naming A reaches B first, which
/// sends UNHOLD; then A must still ACK the address it offered (before the
/// fix, B's UNHOLD freed A's hold and A NAKed). A hold B placed alone is
/// still freed by its UNHOLD.
#[test]
fn the_server_not_chosen_does_not_free_the_chosen_offer() {
    let mut w = World::new("lease_time = 1h");
    w.start_dhcpd(0);
    w.start_dhcpd(1);
    let mac = "02:77:00:00:00:21";
    let offer_a = w
        .to_one_server(A_MAC, mac, &["discover"])
        .unwrap_or_else(|| panic!("no OFFER from A\n{}", w.logs()));
    let offer_b = w
        .to_one_server(B_MAC, mac, &["discover"])
        .unwrap_or_else(|| panic!("no OFFER from B\n{}", w.logs()));
    let x = field(&offer_a, "yiaddr").to_string();
    assert_eq!(field(&offer_a, "type"), "offer", "{offer_a}");
    assert_eq!(field(&offer_b, "type"), "offer", "{offer_b}");
    // One store: B offers the address the client holds already.
    assert_eq!(field(&offer_b, "yiaddr"), x, "{offer_b}");
    let request = ["request", "--requested", &x, "--server-id", A_IP];
    let quiet = [&request[..], &["--timeout", "1"]].concat();
    assert_eq!(w.to_one_server(B_MAC, mac, &quiet), None, "B answered");
    let b_log = format!("{}/dhcpd.log", w.hosts[1].dir);
    assert!(
        wait_for(
            &b_log,
            &format!("server {A_IP} is not us"),
            Duration::from_secs(10)
        ),
        "{}",
        w.logs()
    );
    let ack = w
        .to_one_server(A_MAC, mac, &request)
        .unwrap_or_else(|| panic!("no answer from A\n{}", w.logs()));
    assert_eq!(field(&ack, "type"), "ack", "{ack}\n{}", w.logs());
    assert_eq!(field(&ack, "yiaddr"), x, "{ack}");
    for i in 0..2 {
        assert!(
            w.list(i).contains(&(x.clone(), "leased".to_string())),
            "{x} in host {i}: {:?}",
            w.list(i)
        );
    }

    // B's own hold, for a client that then takes another server's offer:
    // freed by B's UNHOLD at once.
    let mac2 = "02:77:00:00:00:22";
    let offer = w
        .to_one_server(B_MAC, mac2, &["discover"])
        .unwrap_or_else(|| panic!("no OFFER from B\n{}", w.logs()));
    let y = field(&offer, "yiaddr").to_string();
    assert_ne!(y, x);
    assert!(w.list(1).contains(&(y.clone(), "offered".to_string())));
    let other = "10.77.0.99";
    let request = [
        "request",
        "--requested",
        &y,
        "--server-id",
        other,
        "--timeout",
        "1",
    ];
    assert_eq!(w.to_one_server(B_MAC, mac2, &request), None, "B answered");
    assert!(
        wait_for(
            &b_log,
            &format!("server {other} is not us"),
            Duration::from_secs(10)
        ),
        "{}",
        w.logs()
    );
    for i in 0..2 {
        let rows = w.list(i);
        assert!(
            rows.contains(&(y.clone(), "free".to_string())),
            "{y} in host {i}: {rows:?}"
        );
    }
}

/// (c) Clients bound through host A; then both daemons of A are killed
/// with SIGKILL: a new client is served by B at once, and every bound
/// client renews or rebinds through B and keeps its address, with no
/// other event in between. 30 s leases, T1 at 12 s, T2 at 18 s: the
/// clients rebind well before the end (udhcpc goes by its own times).
#[test]
fn clients_of_a_killed_host_keep_their_addresses_through_the_other() {
    let mut w = World::new("lease_time = 30s\nrenewal_percent = 40\nrebind_percent = 60");
    let cln = w.net.add_ns("cln");
    w.net.port(&cln, "cln0", "02:77:00:00:00:13", None);
    // Only A serves while the clients bind, so each is A's.
    w.start_dhcpd(0);
    let hook = tool("hook.sh");
    let dhclient_log = w.net.path("dhclient.hook");
    let env = format!("HOOK_LOG={dhclient_log}");
    let (lf, pf) = (w.net.path("dhclient.leases"), w.net.path("dhclient.pid"));
    // dhclient's retransmissions start at 10 s and grow to 2 min: one
    // RENEW to dead A could run past T2 up to the lease's end (seen: it
    // expired). Every 1-5 s instead.
    let cf = w.net.path("dhclient.conf");
    fs::write(&cf, "initial-interval 2;\nbackoff-cutoff 4;\n").unwrap();
    let cli = w.net.ns("cli");
    w.net.spawn_cmd(
        &[
            &tool("nsrun.sh"),
            &cli,
            "dhclient",
            "-4",
            "-d",
            "-v",
            "-cf",
            &cf,
            "-lf",
            &lf,
            "-pf",
            &pf,
            "-sf",
            &hook,
            "-e",
            &env,
            "-e",
            "HOOK_APPLY=1",
            "cli0",
        ],
        &[],
        Path::new(&w.net.path("dhclient.out")),
    );
    let (_, udhcpc_log, _) = w.net.start_udhcpc_on("clu", "clu0");
    let dhcpcd_log = w.net.path("dhcpcd.hook");
    let env = format!("HOOK_LOG={dhcpcd_log}");
    let clp = w.net.ns("clp");
    w.net.spawn_cmd(
        &[
            &tool("nsrun.sh"),
            &clp,
            "dhcpcd",
            "-4",
            "-B",
            "-A",
            "-L",
            "-d",
            "-c",
            &hook,
            "-e",
            &env,
            "-e",
            "HOOK_APPLY=1",
            "clp0",
        ],
        &[],
        Path::new(&w.net.path("dhcpcd.out")),
    );
    let mut bound = Vec::new();
    for (log, event) in [
        (&dhclient_log, "event=BOUND"),
        (&udhcpc_log, "event=bound"),
        (&dhcpcd_log, "event=BOUND"),
    ] {
        assert!(
            wait_for(log, event, Duration::from_secs(20)),
            "{log}: {}\n{}",
            read(log),
            w.logs()
        );
        let lease = last_lease(log).unwrap();
        assert_eq!(lease.server, A_IP, "{lease:?}");
        bound.push((log.clone(), lease, read(log).lines().count()));
    }
    w.start_dhcpd(1);
    kill9(w.hosts[0].dhcpd.take().unwrap());
    kill9(w.hosts[0].aasd);

    let new = get_lease(&mut w.net, Client::Udhcpc, "cln", "cln0")
        .unwrap_or_else(|| panic!("no lease for a new client\n{}", w.logs()));
    assert_eq!(new.server, B_IP, "{new:?}");
    assert!(bound.iter().all(|(_, l, _)| l.ip != new.ip), "{new:?}");

    for (log, lease, before) in &bound {
        // What each client's script saw since the kill: renewals only.
        let since = || -> Vec<String> {
            read(log)
                .lines()
                .skip(*before)
                .map(str::to_string)
                .collect()
        };
        let kept = |l: &String| {
            ["RENEW", "REBIND", "renew"]
                .iter()
                .any(|e| l.starts_with(&format!("event={e} ip={} ", lease.ip)))
        };
        let through_b = format!("server={B_IP} ");
        let done = wait_true(Duration::from_secs(60), || {
            let lines = since();
            lines.iter().any(|l| kept(l) && l.contains(&through_b))
                || lines.iter().any(|l| !kept(l))
        });
        let lines = since();
        assert!(
            done && lines.iter().all(kept),
            "{log}: {lines:#?}\n{}",
            w.logs()
        );
    }
}
