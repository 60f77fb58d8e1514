//! Test worlds of their own: network namespaces joined only to each other,
//! real clients and daemons started in them, and everything stopped by PID
//! and removed when the guard drops (leftovers of the same name first).
//!
//! ```text
//! P-srv [srv0 10.77.0.1/24]--+
//! P-cli [cli0 no address  ]--+-- bridge in P-sw
//! P-rly [rly0 10.77.0.2/24]--+   (with relay)
//! P-rly [rly1 10.78.0.1/24]---- veth ---- [cli2 no address] P-cli2
//! ```
#![allow(dead_code)]

pub mod pg;

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use indhcpd::aas::client::{Link, Target};
use indhcpd::aas::lease::{Alloc, Filter};
use indhcpd::aas::proto::{LeaseRow, Reply, Request};

pub const SERVER: &str = "10.77.0.1";
pub const CLI_MAC: &str = "02:77:00:00:00:10";
pub const CLI2_MAC: &str = "02:78:00:00:00:10";

/// The group of in.aasd's socket in tests (`socket_group`): `daemon`, in
/// every Debian base system. in.dhcpd, running as nobody, keeps the
/// socket's group (never group 0).
pub const TEST_SOCKET_GROUP: &str = "daemon";
pub const TEST_SOCKET_GID: u32 = 1;

pub fn server_bin() -> &'static str {
    env!("CARGO_BIN_EXE_in-dhcpd")
}

pub fn aasd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_in-aasd")
}

pub fn aasadmin_bin() -> &'static str {
    env!("CARGO_BIN_EXE_aasadmin")
}

/// A Python tool of tests/tools, to run in namespace `ns` (Debian's
/// python3, which has scapy).
pub fn tool_in(ns: &str, name: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, "/usr/bin/python3", &tool(name)]);
    c
}

pub fn tool(name: &str) -> String {
    format!("{}/tests/tools/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn config(name: &str) -> String {
    format!("{}/tests/configs/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Run a command and insist it succeeds.
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn try_sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Net {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
    /// Scratch directory for this test: configs, logs, lease files.
    pub dir: PathBuf,
}

impl Net {
    pub fn new(relay: bool) -> Net {
        assert!(
            nix_is_root(),
            "integration tests need root: they create network namespaces"
        );
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("idt{}x{n}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(&prefix);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // Of the sockets' group, as /run/aasd would be: an in.dhcpd started
        // before in.aasd keeps that group.
        std::os::unix::fs::chown(&dir, None, Some(TEST_SOCKET_GID)).unwrap();
        let mut net = Net {
            prefix,
            namespaces: Vec::new(),
            children: Vec::new(),
            dir,
        };
        net.build(relay);
        net
    }

    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    pub fn add_ns(&mut self, role: &str) -> String {
        let ns = self.ns(role);
        let _ = try_sh(&["ip", "netns", "del", &ns]); // leftover of a failed run
        sh(&["ip", "netns", "add", &ns]);
        sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        let _ = try_sh(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
        ]);
        self.namespaces.push(ns.clone());
        ns
    }

    /// A veth from the bridge namespace into `ns`, named `ifname` there.
    pub fn port(&self, ns: &str, ifname: &str, mac: &str, addr: Option<&str>) {
        let sw = self.ns("sw");
        let peer = format!("p{ifname}");
        sh(&[
            "ip", "-n", &sw, "link", "add", &peer, "type", "veth", "peer", "name", ifname, "netns",
            ns,
        ]);
        sh(&["ip", "-n", ns, "link", "set", ifname, "address", mac]);
        sh(&["ip", "-n", &sw, "link", "set", &peer, "master", "br0", "up"]);
        if let Some(a) = addr {
            sh(&["ip", "-n", ns, "addr", "add", a, "brd", "+", "dev", ifname]);
        }
        sh(&["ip", "-n", ns, "link", "set", ifname, "up"]);
        no_offload(&sw, &peer);
        no_offload(ns, ifname);
    }

    fn build(&mut self, relay: bool) {
        let sw = self.add_ns("sw");
        sh(&[
            "ip",
            "-n",
            &sw,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
        ]);
        sh(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        let srv = self.add_ns("srv");
        self.port(&srv, "srv0", "02:77:00:00:00:01", Some("10.77.0.1/24"));
        let cli = self.add_ns("cli");
        self.port(&cli, "cli0", CLI_MAC, None);
        if relay {
            let rly = self.add_ns("rly");
            self.port(&rly, "rly0", "02:77:00:00:00:02", Some("10.77.0.2/24"));
            self.relayed_link(1);
        }
    }

    /// Relayed link `n` behind the relay namespace: rly<n> with 10.78.0.1/24
    /// (n = 1, client namespace cli2) or 10.80.0.1/24 (n = 2, cli3), routed
    /// from the server through 10.77.0.2.
    pub fn relayed_link(&mut self, n: u8) {
        let rly = self.ns("rly");
        let net = if n == 1 { 78 } else { 80 };
        let role = format!("cli{}", n + 1);
        let cli = self.add_ns(&role);
        let rly_if = format!("rly{n}");
        let rly_mac = format!("02:{net}:00:00:00:01");
        let cli_mac = format!("02:{net}:00:00:00:10");
        sh(&[
            "ip", "-n", &rly, "link", "add", &rly_if, "address", &rly_mac, "type", "veth", "peer",
            "name", &role, "address", &cli_mac, "netns", &cli,
        ]);
        let addr = format!("10.{net}.0.1/24");
        sh(&[
            "ip", "-n", &rly, "addr", "add", &addr, "brd", "+", "dev", &rly_if,
        ]);
        sh(&["ip", "-n", &rly, "link", "set", &rly_if, "up"]);
        sh(&["ip", "-n", &cli, "link", "set", &role, "up"]);
        no_offload(&rly, &rly_if);
        no_offload(&cli, &role);
        sh(&[
            "ip",
            "netns",
            "exec",
            &rly,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        let srv = self.ns("srv");
        let subnet = format!("10.{net}.0.0/24");
        sh(&[
            "ip",
            "-n",
            &srv,
            "route",
            "add",
            &subnet,
            "via",
            "10.77.0.2",
        ]);
    }

    /// Start a long-running program in `ns`; output goes to `log`.
    pub fn spawn(&mut self, ns: &str, args: &[&str], env: &[(&str, &str)], log: &Path) -> u32 {
        let mut argv = vec!["ip", "netns", "exec", ns];
        argv.extend_from_slice(args);
        self.spawn_cmd(&argv, env, log)
    }

    /// Start a long-running command line as given.
    pub fn spawn_cmd(&mut self, args: &[&str], env: &[(&str, &str)], log: &Path) -> u32 {
        let out = fs::File::create(log).unwrap();
        let child = Command::new(args[0])
            .args(&args[1..])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Run a program in `ns` to completion (with private /run etc.).
    pub fn run(&self, ns: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(tool("nsrun.sh"))
            .arg(ns)
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Copy a config from tests/configs into the scratch directory.
    pub fn config(&self, name: &str) -> String {
        let to = self.path(name);
        fs::copy(config(name), &to).unwrap();
        to
    }

    /// Server standalone in the server namespace, logging to a file.
    pub fn start_standalone(&mut self, conf: &str, extra: &[&str]) -> (u32, String) {
        let log = self.path("server.log");
        let srv = self.ns("srv");
        let mut args = vec![server_bin(), "-s", "-D", "3", "-c", conf];
        args.extend_from_slice(extra);
        let pid = self.spawn(&srv, &args, &[], Path::new(&log));
        // The start-up line comes once the interfaces are read and the
        // options of the command line taken (-b's relay socket): then the
        // server is ready, and what it said of them is in the log.
        assert!(
            wait_for(&log, " serving ", Duration::from_secs(5)),
            "server did not start: {}",
            read(&log)
        );
        (pid, log)
    }

    /// ISC dhcrelay in the relay namespace, relaying cli2's link to the
    /// server; returns once it listens.
    pub fn start_dhcrelay(&mut self) {
        self.start_dhcrelay_on(&["rly1"]);
    }

    /// dhcrelay relaying each of the `downstream` links.
    pub fn start_dhcrelay_on(&mut self, downstream: &[&str]) {
        let rly = self.ns("rly");
        let log = self.path("dhcrelay.log");
        let mut args = vec!["dhcrelay", "-4", "-d", "--no-pid"];
        for d in downstream {
            args.extend_from_slice(&["-id", d]);
        }
        args.extend_from_slice(&["-iu", "rly0", SERVER]);
        self.spawn(&rly, &args, &[], Path::new(&log));
        assert!(
            wait_for(&log, "Sending on   Socket", Duration::from_secs(5)),
            "{}",
            read(&log)
        );
    }

    /// openbsd-inetd in the server namespace with one bootps line running
    /// in.dhcpd with `args`; returns inetd's log once the service is added.
    pub fn start_inetd(&mut self, args: &str) -> String {
        let line = format!(
            "bootps\tdgram\tudp4\twait\troot\t{}\tin.dhcpd {args}\n",
            server_bin()
        );
        self.start_inetd_conf(&line, &[])
    }

    /// openbsd-inetd in the server namespace with this inetd.conf, under
    /// `services` entries added to /etc/services (a private copy).
    pub fn start_inetd_conf(&mut self, lines: &str, services: &[&str]) -> String {
        let inetd_conf = self.path("inetd.conf");
        fs::write(&inetd_conf, lines).unwrap();
        let srv = self.ns("srv");
        let log = self.path("inetd.log");
        let bind = self.services(services);
        self.spawn_cmd(
            &[&tool("nsrun.sh"), &srv, "inetd", "-d", "-E", &inetd_conf],
            &[("NSRUN_BIND", &bind)],
            Path::new(&log),
        );
        let first = lines.split_whitespace().next().unwrap_or("bootps");
        assert!(
            wait_for(&log, &format!("ADD: {first}"), Duration::from_secs(5)),
            "{}",
            read(&log)
        );
        log
    }

    /// A copy of /etc/services with `extra` lines, as an NSRUN_BIND value
    /// ("" when there is nothing to add). A line naming a service already
    /// there replaces it.
    pub fn services(&self, extra: &[&str]) -> String {
        if extra.is_empty() {
            return String::new();
        }
        let names: Vec<&str> = extra
            .iter()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let mut text: String = fs::read_to_string("/etc/services")
            .unwrap()
            .lines()
            .filter(|l| {
                !l.split_whitespace()
                    .next()
                    .is_some_and(|n| names.contains(&n))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        for l in extra {
            text.push_str(l);
            text.push('\n');
        }
        let path = self.path("services");
        fs::write(&path, text).unwrap();
        format!("{path}:/etc/services")
    }

    /// tests/tools/bootp-probe.py on cli0 of `role`: the reply as JSON.
    pub fn bootp_probe(&self, role: &str, args: &[&str]) -> Option<String> {
        let out = tool_in(&self.ns(role), "bootp-probe.py")
            .arg("cli0")
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && text.starts_with('{')).then_some(text)
    }

    /// busybox udhcpc left running on cli0 (no -q), releasing on SIGTERM
    /// (-R); returns (pid, hook log, output) once it is bound.
    pub fn start_udhcpc(&mut self) -> (u32, String, String) {
        self.start_udhcpc_on("cli", "cli0")
    }

    /// The same on interface `ifname` of namespace `role`.
    pub fn start_udhcpc_on(&mut self, role: &str, ifname: &str) -> (u32, String, String) {
        let cli = self.ns(role);
        let hook_log = self.path(&format!("udhcpc-{ifname}.hook"));
        let out = self.path(&format!("udhcpc-{ifname}.out"));
        let pid = self.spawn(
            &cli,
            &[
                "udhcpc",
                "-i",
                ifname,
                "-f",
                "-n",
                "-R",
                "-t",
                "5",
                "-T",
                "2",
                "-s",
                &tool("hook.sh"),
            ],
            &[
                ("HOOK_LOG", &hook_log),
                ("HOOK_APPLY", "1"),
                ("IFACE", ifname),
            ],
            Path::new(&out),
        );
        assert!(
            wait_for(&hook_log, "event=bound", Duration::from_secs(15)),
            "{}",
            read(&out)
        );
        (pid, hook_log, out)
    }

    /// Write aasd.conf into the scratch directory: database, checkpoints
    /// and socket there too, `extra` keys on top, then `pools` sections.
    pub fn aasd_conf(&self, extra: &str, pools: &str) -> String {
        let conf = self.path("aasd.conf");
        let text = format!(
            "database_dir = {db}\nsocket = {sock}\nsocket_group = {TEST_SOCKET_GROUP}\n\
             {extra}\n{pools}",
            db = self.path("aasdb"),
            sock = self.path("aasd.sock"),
        );
        fs::write(&conf, text).unwrap();
        conf
    }

    /// in.aasd in the foreground (-D 3: log on stderr, to aasd.log), in
    /// namespace `role` (it matters only for TCP). Returns its PID once
    /// the socket answers.
    pub fn start_aasd(&mut self, role: &str, conf: &str) -> u32 {
        self.start_aasd_with(role, conf, &[])
    }

    /// The same with more arguments.
    pub fn start_aasd_with(&mut self, role: &str, conf: &str, extra: &[&str]) -> u32 {
        let log = self.path("aasd.log");
        let ns = self.ns(role);
        // Append, so restarts keep the earlier lines.
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, aasd_bin(), "-D", "3", "-c", conf])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        let sock = self.path("aasd.sock");
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            // The socket is bound before the database is read: wait for an
            // answer, which comes once the serve loop runs.
            if ping(&sock) {
                return pid;
            }
            sleep(Duration::from_millis(10));
        }
        panic!("in.aasd did not start: {}", read(&log));
    }

    /// aasadmin against this test's in.aasd; (exit status, stdout+stderr).
    pub fn aasadmin(&self, args: &[&str]) -> (i32, String) {
        self.aasadmin_at(Path::new(&self.path("aasd.sock")), args)
    }

    /// aasadmin against the socket at `sock`.
    pub fn aasadmin_at(&self, sock: &Path, args: &[&str]) -> (i32, String) {
        let out = Command::new(aasadmin_bin())
            .arg("-s")
            .arg(sock)
            .args(args)
            .output()
            .unwrap();
        status_and_text(&out)
    }

    /// Process IDs in a namespace.
    pub fn pids(&self, ns: &str) -> Vec<u32> {
        let out = Command::new("ip")
            .args(["netns", "pids", ns])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// PIDs of in.dhcpd processes in the server namespace.
    pub fn server_pids(&self) -> Vec<u32> {
        self.pids(&self.ns("srv"))
            .into_iter()
            .filter(|p| {
                fs::read_link(format!("/proc/{p}/exe"))
                    .is_ok_and(|e| e.to_string_lossy().ends_with("in-dhcpd"))
            })
            .collect()
    }

    /// Send raw bytes (hex) from the client port of `ns` to the server port.
    pub fn probe_raw(&self, ns: &str, hex: &str) -> bool {
        tool_in(ns, "dhcp-probe.py")
            .args(["cli0", "--raw", hex])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// One run of ISC dhclient in `role` that keeps its lease file `lf`
    /// between runs (so a second run starts with INIT-REBOOT), recording to
    /// `hook_log`; waits for `event` there and for the lease in `lf`, then
    /// stops it. Returns the address; on a timeout, panics with its output
    /// and `server_log`.
    pub fn dhclient_round(
        &mut self,
        role: &str,
        lf: &str,
        hook_log: &str,
        event: &str,
        server_log: &str,
    ) -> String {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pf = self.path(&format!("dhclient{n}.pid"));
        let out = self.path(&format!("dhclient{n}.out"));
        let env_hook = format!("HOOK_LOG={hook_log}");
        let ns = self.ns(role);
        let pid = self.spawn_cmd(
            &[
                &tool("nsrun.sh"),
                &ns,
                "dhclient",
                "-4",
                "-1",
                "-d",
                "-v",
                "-lf",
                lf,
                "-pf",
                &pf,
                "-sf",
                &tool("hook.sh"),
                "-e",
                &env_hook,
                "cli0",
            ],
            &[],
            Path::new(&out),
        );
        assert!(
            wait_for(hook_log, &format!("event={event}"), Duration::from_secs(20)),
            "{}\n{}",
            read(&out),
            read(server_log)
        );
        let ip = last_lease(hook_log).unwrap().ip;
        // dhclient writes its lease file after the hook: stopped before
        // that (a loaded machine), it would have nothing to reboot from.
        assert!(
            wait_for(lf, &format!("fixed-address {ip}"), Duration::from_secs(10)),
            "{}",
            read(&out)
        );
        nix_kill(pid, 15);
        sleep(Duration::from_millis(200));
        ip
    }

    /// Send one message with tests/tools/dhcp-probe.py from `ns`.
    pub fn probe(&self, ns: &str, args: &[&str]) -> Option<String> {
        let out = tool_in(ns, "dhcp-probe.py").args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && text.starts_with('{')).then_some(text)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = nix_kill(c.id(), 15);
        }
        sleep(Duration::from_millis(100));
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Whatever else still runs in our namespaces (inetd children, dhcpcd
        // helpers) goes by PID too.
        for ns in &self.namespaces {
            for p in self.pids(ns) {
                let _ = nix_kill(p, 9);
            }
        }
        sleep(Duration::from_millis(50));
        for ns in &self.namespaces {
            let _ = try_sh(&["ip", "netns", "del", ns]);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn ping(sock: &str) -> bool {
    use std::io::{BufRead, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    s.write_all(b"PING\n").is_ok()
        && std::io::BufReader::new(s).read_line(&mut line).is_ok()
        && line.starts_with("OK")
}

fn no_offload(ns: &str, ifname: &str) {
    // A kernel UDP sender on veth leaves the checksum to the "hardware";
    // raw-socket readers (dhclient, udhcpc) then drop the packet.
    let _ = try_sh(&[
        "ip", "netns", "exec", ns, "ethtool", "-K", ifname, "tx", "off",
    ]);
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn nix_kill(pid: u32, sig: i32) -> bool {
    // SAFETY: kill has no memory preconditions; the PID is one we started.
    unsafe { libc::kill(pid as i32, sig) == 0 }
}

/// Requests to the in.aasd of `net` on its Unix socket, in one batch: the
/// reply to each. One that does not come, or does not read, fails the test.
pub fn ask_aas(net: &Net, requests: &[Request]) -> Vec<Reply> {
    let target = Target::Unix(net.path("aasd.sock").into());
    let mut link = Link::new(target, Duration::from_secs(10)).without_logging();
    let replies = link.ask_many(requests, &mut || {});
    replies
        .into_iter()
        .map(|r| r.unwrap_or_else(|d| panic!("{d}")))
        .collect()
}

/// An ALLOC of any address of `pool`, for `lease` seconds.
pub fn alloc_request(pool: &str, service: &str, client: &str, lease: u64) -> Request {
    Request::Alloc(alloc_of(pool, service, client, lease))
}

/// What [`alloc_request`] asks, to change a field of.
pub fn alloc_of(pool: &str, service: &str, client: &str, lease: u64) -> Alloc {
    Alloc::new(pool, service, client, lease)
}

/// The address an ALLOC was given, or the reply that gave none.
pub fn allocated(reply: Reply) -> Result<Ipv4Addr, Reply> {
    match reply {
        Reply::Allocated(a) => Ok(a.addr),
        other => Err(other),
    }
}

/// in.aasd's row of `addr`, which must have one.
pub fn lease_row(net: &Net, addr: Ipv4Addr) -> LeaseRow {
    let query = Request::Query(Filter {
        range: Some((u32::from(addr), u32::from(addr))),
        ..Filter::default()
    });
    match ask_aas(net, &[query]).remove(0) {
        Reply::Leases(mut rows) if rows.len() == 1 => rows.remove(0),
        other => panic!("QUERY address={addr}: {other}"),
    }
}

/// CHECKPOINT: the file written, or the reply that names none.
pub fn checkpoint(net: &Net) -> Result<PathBuf, Reply> {
    match ask_aas(net, &[Request::Checkpoint]).remove(0) {
        Reply::Checkpoint(path) => Ok(PathBuf::from(path)),
        other => Err(other),
    }
}

/// Send protocol lines straight to in.aasd, as a person typing on its socket would;
/// the answer line of each.
pub fn ask(net: &Net, lines: &[&str]) -> Vec<String> {
    use std::io::{BufRead, BufReader, Write};
    let s = std::os::unix::net::UnixStream::connect(net.path("aasd.sock")).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    lines
        .iter()
        .map(|l| {
            writeln!(w, "{l}").unwrap();
            let mut a = String::new();
            r.read_line(&mut a).unwrap();
            a.trim_end().to_string()
        })
        .collect()
}

pub fn kill(pid: u32) {
    nix_kill(pid, 15);
}

/// SIGKILL, and wait until the process is gone.
pub fn kill9(pid: u32) {
    nix_kill(pid, 9);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for its parent (the test) to reap it.
        if stat.is_empty() || stat.contains(") Z ") {
            return;
        }
        sleep(Duration::from_millis(5));
    }
}

pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

pub fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// A finished command's exit status (-1 for a signal) and its stdout
/// followed by its stderr.
pub fn status_and_text(out: &Output) -> (i32, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// `ip -n NS addr add CIDR dev IFNAME`: an address on a test interface.
pub fn add_address(ns: &str, ifname: &str, cidr: &str) {
    sh(&["ip", "-n", ns, "addr", "add", cidr, "dev", ifname]);
}

/// Date a file two seconds back, as an edit finished a while ago:
/// in.dhcpd takes a new dhcpd.conf only once it has stood still a second.
pub fn settle(path: &str) {
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(2))
        .unwrap();
}

/// Wait until `needle` appears in the file.
pub fn wait_for(path: &str, needle: &str, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if read(path).contains(needle) {
            return true;
        }
        sleep(Duration::from_millis(50));
    }
    false
}

/// What a client's hook recorded last: (event, ip, server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub event: String,
    pub ip: String,
    pub server: String,
    pub domain: String,
    /// Subnet mask, routers and option 121 as the hook recorded them.
    pub mask: String,
    pub routers: String,
    pub routes121: String,
}

pub fn last_lease(hook_log: &str) -> Option<Lease> {
    let text = read(hook_log);
    let line = text.lines().rev().find(|l| {
        ["BOUND", "REBOOT", "RENEW", "bound", "renew"]
            .iter()
            .any(|e| l.starts_with(&format!("event={e} ")))
    })?;
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap_or("")
            .to_string()
    };
    Some(Lease {
        event: field("event"),
        ip: field("ip"),
        server: field("server"),
        domain: field("domain"),
        mask: field("mask"),
        routers: field("routers"),
        routes121: field("routes121"),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Dhclient,
    Udhcpc,
    Dhcpcd,
}

pub const CLIENTS: [Client; 3] = [Client::Dhclient, Client::Udhcpc, Client::Dhcpcd];

/// Run a real client once on `ifname` in namespace `role`: one full exchange, the
/// address it bound or `None` after a short timeout.
pub fn get_lease(net: &mut Net, client: Client, role: &str, ifname: &str) -> Option<Lease> {
    let ns = &net.ns(role);
    let tag = format!(
        "{client:?}-{ifname}-{}",
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let hook_log = net.path(&format!("{tag}.hook"));
    let out_log = net.path(&format!("{tag}.out"));
    let hook = tool("hook.sh");
    let env_hook = format!("HOOK_LOG={hook_log}");
    match client {
        Client::Dhclient => {
            let lf = net.path(&format!("{tag}.leases"));
            let pf = net.path(&format!("{tag}.pid"));
            let nsrun = tool("nsrun.sh");
            let pid = net.spawn_cmd(
                &[
                    &nsrun, ns, "dhclient", "-4", "-1", "-d", "-v", "-lf", &lf, "-pf", &pf, "-sf",
                    &hook, "-e", &env_hook, ifname,
                ],
                &[],
                Path::new(&out_log),
            );
            let ok = wait_for(&hook_log, "event=BOUND", Duration::from_secs(15));
            kill(pid);
            ok.then(|| last_lease(&hook_log)).flatten()
        }
        Client::Udhcpc => {
            let out = Command::new("timeout")
                .args([
                    "20", "ip", "netns", "exec", ns, "udhcpc", "-i", ifname, "-f", "-q",
                ])
                .args(["-n", "-t", "5", "-T", "2", "-s", &hook])
                .env("HOOK_LOG", &hook_log)
                .output()
                .unwrap();
            let _ = fs::write(&out_log, [out.stdout, out.stderr].concat());
            last_lease(&hook_log)
        }
        Client::Dhcpcd => {
            let out = Command::new("timeout")
                .args([
                    "25",
                    &tool("nsrun.sh"),
                    ns,
                    "dhcpcd",
                    "-1",
                    "-4",
                    "-B",
                    "-A",
                    "-L",
                ])
                .args(["-d", "-t", "15", "-c", &hook, "-e", &env_hook, ifname])
                .output()
                .unwrap();
            let _ = fs::write(&out_log, [out.stdout, out.stderr].concat());
            // dhcpcd puts the address on the interface itself; take it off.
            let _ = try_sh(&["ip", "-n", ns, "addr", "flush", "dev", ifname]);
            last_lease(&hook_log)
        }
    }
}

/// Every client gets `want` from the server at 10.77.0.1.
pub fn all_clients_get(net: &mut Net, role: &str, ifname: &str, want: &str) {
    for c in CLIENTS {
        let lease = get_lease(net, c, role, ifname);
        let lease = lease.unwrap_or_else(|| panic!("{c:?} got no lease on {ifname}"));
        assert_eq!(lease.ip, want, "{c:?}");
        assert_eq!(lease.server, SERVER, "{c:?}");
    }
}

/// A field of a one-line JSON object printed by a probe tool.
pub fn field<'a>(json: &'a str, key: &str) -> &'a str {
    let start = json
        .find(&format!("\"{key}\": "))
        .unwrap_or_else(|| panic!("{key} in {json}"));
    let rest = &json[start + key.len() + 4..];
    let rest = rest.trim_start_matches('"');
    let end = rest.find(['"', ',', '}']).unwrap();
    &rest[..end]
}

/// An option's hex value in a probe tool's JSON.
pub fn option(json: &str, code: u8) -> Option<&str> {
    let key = format!("\"{code}\": \"");
    let start = json.find(&key)? + key.len();
    Some(&json[start..start + json[start..].find('"')?])
}

/// Run `f` on a thread inside network namespace `ns`: sockets it opens
/// belong to that namespace (setns(2) moves only the calling thread).
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = fs::File::open(&path).unwrap();
            // SAFETY: setns on an open namespace file; affects this thread only.
            let rc =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}");
            f()
        })
        .join()
        .unwrap()
    })
}

/// A tmpfs mounted for one test, unmounted when dropped (lazily: in.aasd
/// may still hold files in it).
pub struct Mount(PathBuf);

impl Mount {
    pub fn new(dir: &Path, size: &str) -> Mount {
        fs::create_dir_all(dir).unwrap();
        let opts = format!("size={size}");
        sh(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &opts,
            "tmpfs",
            dir.to_str().unwrap(),
        ]);
        Mount(dir.to_path_buf())
    }

    /// Fill what is left of the file system of `dir` with one file there,
    /// whose path comes back (to remove when space is to come back).
    pub fn fill(dir: &Path) -> PathBuf {
        let filler = dir.join("filler");
        let dd = Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", filler.display()))
            .arg("bs=4096")
            .output()
            .unwrap();
        assert!(!dd.status.success(), "dd should have filled the tmpfs");
        filler
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
