//! An administrator's first day: pinned addresses never given to another
//! client, dhcpd.conf checked against in.aasd's pools, start order that
//! does not matter, logs that go somewhere, one server per port.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;

const SECS5: Duration = Duration::from_secs(5);

/// dhcpd.conf for the server link, talking to this test's in.aasd;
/// `server` and `rest` are added to [server] and after the subnet.
fn dhcpd_conf(net: &Net, server: &str, subnet: &str, rest: &str) -> String {
    let conf = net.path("dhcpd.conf");
    let text = format!(
        "[server]\naas_socket = {}\n{server}\n[global]\nlease_time = 1h\n\
         [subnet 10.77.0.0/24]\n{subnet}\n{rest}",
        net.path("aasd.sock")
    );
    fs::write(&conf, text).unwrap();
    conf
}

/// `in.dhcpd -C` on `conf`: (exit status, stdout + stderr).
fn check(net: &Net, conf: &str) -> (i32, String) {
    let out = net.run(&net.ns("srv"), &[server_bin(), "-C", "-c", conf], &[]);
    status_and_text(&out)
}

/// Item 1: a client's pinned ip_address inside a pool is held back in
/// in.aasd from the first packet: the dynamic client gets the other one.
#[test]
fn a_pinned_address_inside_a_pool_is_never_given_to_another_client() {
    let mut net = Net::new(false);
    // .105 is the pool's first never-used address: a dynamic client would
    // get it first.
    // idle_timeout = 1: in.aasd closes the idle connection, and in.dhcpd's
    // next one greets it again.
    let aconf = net.aasd_conf(
        "idle_timeout = 1",
        "[pool Near]\nrange = 10.77.0.105-10.77.0.107\n",
    );
    net.start_aasd("srv", &aconf);
    let conf = dhcpd_conf(
        &net,
        "",
        "pool = Near",
        "[client 02:77:00:00:00:99]\nip_address = 10.77.0.105\n",
    );
    let (code, text) = check(&net, &conf);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(
            "warning: [client 1:02:77:00:00:00:99]: ip_address 10.77.0.105 is in pool Near"
        ),
        "{text}"
    );
    let (_, log) = net.start_standalone(&conf, &[]);
    for c in [Client::Udhcpc, Client::Dhclient] {
        let lease = get_lease(&mut net, c, "cli", "cli0")
            .unwrap_or_else(|| panic!("{c:?}: no lease: {}", read(&log)));
        // udhcpc (01+MAC) and dhclient (the MAC) are one client.
        assert_eq!(lease.ip, "10.77.0.106", "{c:?}");
    }
    let (code, listed) = net.aasadmin(&["list", "state=reserved"]);
    assert_eq!(code, 0, "{listed}");
    assert!(
        listed.lines().any(|l| l.starts_with("10.77.0.105")
            && l.contains("reserved")
            && l.contains("fixed/1/02:77:00:00:00:99")),
        "{listed}"
    );
    let (_, stats) = net.aasadmin(&["stats"]);
    assert!(stats.contains("RESERVED"), "{stats}");
    // The pinned client itself still gets its address.
    let r = net
        .probe(
            &net.ns("cli"),
            &["cli0", "--mac", "02:77:00:00:00:99", "--broadcast"],
        )
        .expect("an offer for the pinned client");
    assert_eq!(field(&r, "yiaddr"), "10.77.0.105", "{r}");
}

/// Item 1: an address pinned while another client holds it: an error
/// line, a -C warning, and the holder's renewal is refused (NAK).
#[test]
fn a_pinned_address_leased_to_another_client_is_reported_and_not_renewed() {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf("", "[pool Near]\nrange = 10.77.0.100-10.77.0.120\n");
    net.start_aasd("srv", &aconf);
    let holder = format!("10.77.0.0/1/{CLI_MAC}");
    let got = ask(
        &net,
        &[&format!("ALLOC Near dhcp {holder} 3600 exact=10.77.0.105")],
    );
    assert!(got[0].starts_with("OK 10.77.0.105"), "{got:?}");
    // First without the pin: the lease is renewed.
    let conf = dhcpd_conf(&net, "", "pool = Near", "");
    let (pid, log) = net.start_standalone(&conf, &[]);
    let cli = net.ns("cli");
    // A bound client renewing: the answer comes to its address.
    add_address(&cli, "cli0", "10.77.0.105/24");
    let renew = [
        "cli0",
        "--type",
        "request",
        "--ciaddr",
        "10.77.0.105",
        "--broadcast",
    ];
    let r = net.probe(&cli, &renew).expect("an answer");
    assert_eq!(field(&r, "type"), "ack", "{r}");
    // Pinned to another client by a reload: reported at once.
    let conf = dhcpd_conf(
        &net,
        "",
        "pool = Near",
        "[client 02:77:00:00:00:99]\nip_address = 10.77.0.105\n",
    );
    kill(pid);
    // Port 67 is bound alone: the next server starts once this one is gone.
    assert!(until(|| !alive(pid)), "in.dhcpd did not stop");
    let (code, text) = check(&net, &conf);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!(
            "ip_address 10.77.0.105 (fixed/1/02:77:00:00:00:99) is leased to {holder} until"
        )),
        "{text}"
    );
    let log2 = net.path("server2.log");
    let srv = net.ns("srv");
    net.spawn(
        &srv,
        &[server_bin(), "-s", "-f", "-D", "0", "-c", &conf],
        &[],
        Path::new(&log2),
    );
    assert!(
        wait_for(
            &log2,
            &format!("ip_address 10.77.0.105 (fixed/1/02:77:00:00:00:99) is leased to another client, {holder}, until"),
            SECS5
        ),
        "{}\n{}",
        read(&log2),
        read(&log)
    );
    let r = net.probe(&cli, &renew).expect("an answer");
    assert_eq!(field(&r, "type"), "nak", "{r}");
    let aasd_log = read(&net.path("aasd.log"));
    assert!(
        aasd_log.contains("10.77.0.105 is reserved for dhcp"),
        "{aasd_log}"
    );
}

/// Item 4: a pool in.aasd lacks, a router and the network address in a
/// pool, pool addresses off the subnet: -C says so, in.dhcpd at the
/// default level says so at start, and the unserved client is logged.
#[test]
fn dhcpd_conf_is_checked_against_the_pools_of_in_aasd() {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf(
        "",
        "[pool Near]\nrange = 10.77.0.0-10.77.0.20\n[pool Wide]\nrange = 10.77.0.250-10.77.1.5\n",
    );
    let conf = dhcpd_conf(
        &net,
        "",
        "pool = Nera\nrouters = 10.77.0.1",
        "[subnet 10.79.0.0/24]\npool = Wide\n",
    );
    // Without in.aasd: a note, and the file is fine.
    let (code, text) = check(&net, &conf);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("not checked against in.aasd"), "{text}");
    net.start_aasd("srv", &aconf);
    let (code, text) = check(&net, &conf);
    assert_eq!(code, 1, "{text}");
    for want in [
        "error: [subnet 10.77.0.0/24]: pool Nera is not a pool of in.aasd (it has: Near, Wide)",
        "warning: [subnet 10.79.0.0/24]: pool Wide has 12 address(es) outside the subnet",
    ] {
        assert!(text.contains(want), "{want}\n{text}");
    }
    let conf = dhcpd_conf(
        &net,
        "",
        "pool = Near\nrouters = 10.77.0.1",
        "[subnet 10.79.0.0/24]\npool = Nera\n",
    );
    let (code, text) = check(&net, &conf);
    assert_eq!(code, 1, "{text}");
    for want in [
        "warning: [subnet 10.77.0.0/24]: pool Near holds the subnet's network address 10.77.0.0",
        "warning: [subnet 10.77.0.0/24]: router 10.77.0.1 is in pool Near",
        "error: [subnet 10.79.0.0/24]: pool Nera is not a pool of in.aasd",
    ] {
        assert!(text.contains(want), "{want}\n{text}");
    }
    // The server at the default level: the same at start.
    let conf = dhcpd_conf(&net, "", "pool = Nera", "");
    let log = net.path("server.log");
    let srv = net.ns("srv");
    net.spawn(
        &srv,
        &[server_bin(), "-s", "-f", "-c", &conf],
        &[],
        Path::new(&log),
    );
    assert!(
        wait_for(&log, "pool Nera is not a pool of in.aasd", SECS5),
        "{}",
        read(&log)
    );
    // A client it cannot serve: one line at the default level.
    assert!(get_lease(&mut net, Client::Udhcpc, "cli", "cli0").is_none());
    let text = read(&log);
    let unserved: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("no pool named Nera"))
        .collect();
    assert_eq!(unserved.len(), 1, "once a minute:\n{text}");
    assert!(unserved[0].contains(CLI_MAC), "{text}");
}

/// Whether in.aasd answers PING at `sock`.
fn answers(sock: &str) -> bool {
    use std::io::{BufRead, BufReader, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    s.write_all(b"PING\n").is_ok()
        && BufReader::new(s).read_line(&mut line).is_ok()
        && line.starts_with("OK")
}

/// Wait, at most 5 s, for `cond`.
fn until(mut cond: impl FnMut() -> bool) -> bool {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < SECS5 {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The supplementary groups of a process.
fn groups(pid: u32) -> Vec<u32> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .unwrap_or("")
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect()
}

/// The PID of the in.dhcpd (or in.aasd) that `wrapper` (nsrun.sh) became.
fn exe_pid(net: &Net, ns: &str, exe: &str) -> u32 {
    let mut found = None;
    assert!(
        until(|| {
            found = net.pids(ns).into_iter().find(|p| {
                fs::read_link(format!("/proc/{p}/exe"))
                    .is_ok_and(|e| e.to_string_lossy().ends_with(exe))
            });
            found.is_some()
        }),
        "no {exe} in {ns}"
    );
    found.unwrap()
}

/// A private /etc/group with the package's group `aasd` (gid 64990), for
/// nsrun.sh to bind over the real one.
const AASD_GID: u32 = 64990;
fn group_file_with_aasd(net: &Net) -> String {
    let path = net.path("group");
    let mut text = fs::read_to_string("/etc/group").unwrap();
    text.push_str(&format!("aasd:x:{AASD_GID}:\n"));
    fs::write(&path, text).unwrap();
    format!("{path}:/etc/group")
}

/// Item 2: in.dhcpd started first, as nobody, keeps the package's group
/// `aasd` (never 0); in.aasd started later (as another user) gives its
/// socket that group; the client is served, and again after in.aasd
/// restarts, with the pinned address reserved again.
#[test]
fn in_dhcpd_started_before_in_aasd_serves_once_it_comes_up() {
    let mut net = Net::new(false);
    let bind = group_file_with_aasd(&net);
    let sock = net.path("aasd.sock");
    let aconf = net.path("aasd.conf");
    fs::write(
        &aconf,
        format!(
            "database_dir = {}\nsocket = {sock}\n[pool Near]\nrange = 10.77.0.100-10.77.0.110\n",
            net.path("aasdb")
        ),
    )
    .unwrap();
    let conf = dhcpd_conf(
        &net,
        "",
        "pool = Near",
        "[client 02:77:00:00:00:99]\nip_address = 10.77.0.100\n",
    );
    let srv = net.ns("srv");
    let nsrun = tool("nsrun.sh");
    let log = net.path("server.log");
    let env = [("NSRUN_BIND", bind.as_str())];
    net.spawn_cmd(
        &[&nsrun, &srv, server_bin(), "-s", "-D", "3", "-c", &conf],
        &env,
        Path::new(&log),
    );
    assert!(wait_for(&log, "running as nobody", SECS5), "{}", read(&log));
    let dhcpd = exe_pid(&net, &srv, "in-dhcpd");
    let g = groups(dhcpd);
    assert!(g.contains(&AASD_GID) && !g.contains(&0), "groups {g:?}");
    // Nobody answers yet: the dynamic client gets nothing.
    assert!(get_lease(&mut net, Client::Udhcpc, "cli", "cli0").is_none());
    let alog = net.path("aasd.log");
    let start_aasd = |net: &mut Net| {
        net.spawn_cmd(
            &[
                &nsrun,
                &srv,
                aasd_bin(),
                "-D",
                "3",
                "-u",
                "daemon",
                "-c",
                &aconf,
            ],
            &env,
            Path::new(&alog),
        );
        assert!(until(|| answers(&sock)), "{}", read(&alog));
    };
    start_aasd(&mut net);
    let lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0")
        .unwrap_or_else(|| panic!("no lease once in.aasd is up: {}", read(&log)));
    assert!(lease.ip.starts_with("10.77.0.10"), "{lease:?}");
    assert_ne!(lease.ip, "10.77.0.100", "the pinned address");
    // in.aasd restarted: in.dhcpd reconnects, tells it the pin again.
    kill9(exe_pid(&net, &srv, "in-aasd"));
    start_aasd(&mut net);
    let lease = get_lease(&mut net, Client::Dhclient, "cli", "cli0")
        .unwrap_or_else(|| panic!("no lease after in.aasd restarted: {}", read(&log)));
    assert_ne!(lease.ip, "10.77.0.100");
    let (_, listed) = net.aasadmin(&["list", "state=reserved"]);
    assert!(listed.contains("10.77.0.100"), "{listed}");
    assert!(!read(&log).contains("permission denied"), "{}", read(&log));
}

/// Item 2: a socket path the dropped user cannot reach stops the start,
/// saying what to change; so does a socket of a group it does not keep.
#[test]
fn an_aas_socket_nobody_can_reach_is_a_start_up_error() {
    use std::os::unix::fs::PermissionsExt;
    let mut net = Net::new(false);
    let private = net.path("private");
    fs::create_dir(&private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let conf = net.path("dhcpd.conf");
    let text =
        format!("[server]\naas_socket = {private}/aasd.sock\n[subnet 10.77.0.0/24]\npool = Near\n");
    fs::write(&conf, text).unwrap();
    let srv = net.ns("srv");
    let run = |net: &Net, conf: &str| {
        // Bounded: a server that starts anyway would serve for ever.
        let out = net.run(
            &srv,
            &["timeout", "10", server_bin(), "-s", "-f", "-c", conf],
            &[],
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&net, &conf);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "user nobody cannot search the directory {private}"
        )) && err.contains(&format!("chmod o+x {private}")),
        "{err}"
    );
    // in.aasd's socket of group root (mode 0660): never kept.
    let aconf = net.path("aasd.conf");
    fs::write(
        &aconf,
        format!(
            "database_dir = {}\nsocket = {}\n[pool Near]\nrange = 10.77.0.100-10.77.0.110\n",
            net.path("aasdb"),
            net.path("aasd.sock")
        ),
    )
    .unwrap();
    net.start_aasd("srv", &aconf);
    let conf = dhcpd_conf(&net, "", "pool = Near", "");
    let (code, err) = run(&net, &conf);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("(root:root mode 0660): user nobody may not connect")
            && err.contains("socket_group in aasd.conf"),
        "{err}"
    );
}

/// Item 2: in.aasd says READY=1 on $NOTIFY_SOCKET (a path, or an abstract
/// name) once it answers, as Type=notify wants.
#[test]
fn in_aasd_tells_systemd_when_its_socket_answers() {
    use std::os::unix::net::UnixDatagram;
    let mut net = Net::new(false);
    let aconf = net.aasd_conf("", "[pool Near]\nrange = 10.77.0.100-10.77.0.110\n");
    let sock = net.path("aasd.sock");
    let abstract_name = format!("{}-notify", net.ns("x"));
    for name in [net.path("notify"), format!("@{abstract_name}")] {
        let listener = match name.strip_prefix('@') {
            Some(a) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(a).unwrap();
                UnixDatagram::bind_addr(&addr).unwrap()
            }
            None => UnixDatagram::bind(&name).unwrap(),
        };
        listener.set_read_timeout(Some(SECS5)).unwrap();
        let log = net.path("aasd-notify.log");
        // In this namespace: abstract names belong to one.
        let pid = net.spawn_cmd(
            &[aasd_bin(), "-f", "-c", &aconf],
            &[("NOTIFY_SOCKET", &name)],
            Path::new(&log),
        );
        let mut buf = [0u8; 64];
        let n = listener
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{name}: no READY=1 ({e}): {}", read(&log)));
        assert_eq!(&buf[..n], b"READY=1", "{name}");
        assert!(answers(&sock), "{name}: ready, and answering");
        kill(pid);
        assert!(until(|| !alive(pid)), "in.aasd did not stop");
    }
}

/// NSRUN_BIND value that hides the host's syslog socket, if it has one
/// (nsrun.sh already gives /run, where journald's lives, a private tmpfs).
fn no_syslog(net: &Net) -> String {
    if !Path::new("/dev/log").exists() {
        return String::new();
    }
    let empty = net.path("not-a-socket");
    fs::write(&empty, "").unwrap();
    format!("{empty}:/dev/log")
}

/// Item 5: with no syslog, detached in.dhcpd and in.aasd log to the
/// stderr they were started with, say so once; in.dhcpd names what it
/// serves at the default level, in.aasd writes lease ends as UTC.
#[test]
fn without_syslog_detached_daemons_log_to_stderr_and_say_what_they_serve() {
    let mut net = Net::new(false);
    let srv = net.ns("srv");
    // A second network on the link with no [subnet] for it.
    add_address(&srv, "srv0", "10.99.0.1/24");
    let aconf = net.aasd_conf("", "[pool Near]\nrange = 10.77.0.100-10.77.0.110\n");
    let conf = dhcpd_conf(
        &net,
        "",
        "pool = Near",
        "[subnet 10.78.0.0/24]\nrouters = 10.78.0.1\n",
    );
    let bind = no_syslog(&net);
    let env = [("NSRUN_BIND", bind.as_str())];
    let nsrun = tool("nsrun.sh");
    let alog = net.path("aasd.log");
    // -D 2: lease lines; no -f: both detach.
    net.spawn_cmd(
        &[&nsrun, &srv, aasd_bin(), "-D", "2", "-c", &aconf],
        &env,
        Path::new(&alog),
    );
    let sock = net.path("aasd.sock");
    assert!(until(|| answers(&sock)), "{}", read(&alog));
    let log = net.path("server.log");
    net.spawn_cmd(
        &[&nsrun, &srv, server_bin(), "-s", "-c", &conf],
        &env,
        Path::new(&log),
    );
    let summary = "serving srv0 10.77.0.1/24 [subnet 10.77.0.0/24]; relayed: 10.78.0.0/24; \
                   no [subnet] for srv0 10.99.0.1/24 (not answered there)";
    assert!(wait_for(&log, summary, SECS5), "{}", read(&log));
    let lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0")
        .unwrap_or_else(|| panic!("no lease: {}\n{}", read(&log), read(&alog)));
    assert!(
        wait_for(&alog, &format!("leased {}", lease.ip), SECS5),
        "{}",
        read(&alog)
    );
    for (path, name) in [(&log, "in.dhcpd"), (&alog, "in.aasd")] {
        let text = read(path);
        let said = text
            .lines()
            .filter(|l| l.starts_with(&format!("{name}: syslog cannot be reached")))
            .count();
        assert_eq!(said, 1, "{text}");
    }
    let text = read(&alog);
    let line = text
        .lines()
        .find(|l| l.contains(&format!("leased {}", lease.ip)))
        .unwrap();
    let until_text = line.split(" until ").nth(1).unwrap_or("");
    assert!(
        until_text.len() == 23 && until_text.ends_with(" UTC") && until_text.starts_with("20"),
        "{line}"
    );
    // Both detached: the processes live on, though nsrun.sh is gone.
    exe_pid(&net, &srv, "in-dhcpd");
    exe_pid(&net, &srv, "in-aasd");
}

/// Item 6: a second standalone server on the port is refused, clearly.
#[test]
fn a_second_standalone_server_on_port_67_is_refused() {
    let mut net = Net::new(false);
    let conf = net.path("dhcpd.conf");
    fs::write(
        &conf,
        format!("[subnet 10.77.0.0/24]\n[client {CLI_MAC}]\nip_address = 10.77.0.50\n"),
    )
    .unwrap();
    let (first, _) = net.start_standalone(&conf, &[]);
    let out = net.run(
        &net.ns("srv"),
        &["timeout", "10", server_bin(), "-s", "-f", "-c", &conf],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bind 0.0.0.0:67: Address already in use: another DHCP server")
            && err.contains("already listens on UDP port 67"),
        "{err}"
    );
    // The first one serves on, alone.
    let lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0").expect("a lease");
    assert_eq!(lease.ip, "10.77.0.50");
    assert!(alive(first));
}

/// Item 6: `interfaces =` limits the links served; a reload changes them.
#[test]
fn interfaces_in_server_limits_the_links_served() {
    let mut net = Net::new(false);
    let conf = net.path("dhcpd.conf");
    let write = |ifaces: &str| {
        let text = format!(
            "[server]\ninterfaces = {ifaces}\n[subnet 10.77.0.0/24]\n\
             [client {CLI_MAC}]\nip_address = 10.77.0.50\n"
        );
        // A new inode: the reload is seen whatever the clock's grain.
        let tmp = format!("{conf}.new");
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, &conf).unwrap();
    };
    write("lo");
    let (_, log) = net.start_standalone(&conf, &[]);
    // The start-up line follows "started" once the interfaces are read.
    assert!(
        wait_for(&log, "serving no local subnet", SECS5),
        "{}",
        read(&log)
    );
    assert!(get_lease(&mut net, Client::Udhcpc, "cli", "cli0").is_none());
    assert!(
        read(&log).contains("on srv0: not one of interfaces ="),
        "{}",
        read(&log)
    );
    write("srv0, eth7");
    let lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0")
        .unwrap_or_else(|| panic!("no lease on srv0: {}", read(&log)));
    assert_eq!(lease.ip, "10.77.0.50");
}

/// Item 6: a [client] whose hardware address cannot be one (five bytes
/// of Ethernet) is an error at its line, and the server does not start.
#[test]
fn a_five_byte_ethernet_address_is_an_error_at_its_line() {
    let net = Net::new(false);
    let conf = net.path("dhcpd.conf");
    fs::write(
        &conf,
        "[subnet 10.77.0.0/24]\n[client 02:77:00:00:10]\nip_address = 10.77.0.50\n\
         [client 1:02:77:00:00:10]\nip_address = 10.77.0.51\n",
    )
    .unwrap();
    let (code, text) = check(&net, &conf);
    assert_eq!(code, 1, "{text}");
    for want in [
        format!("{conf}:2: [client 02:77:00:00:10]: a hardware type 2"),
        format!("{conf}:4: [client 1:02:77:00:00:10]: a hardware type 1 (Ethernet) address has 6 byte(s), not 5"),
    ] {
        assert!(text.contains(&want), "{want}\n{text}");
    }
    let out = net.run(
        &net.ns("srv"),
        &["timeout", "10", server_bin(), "-s", "-f", "-c", &conf],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
}

/// Item 2 under systemd-socket-activate: the first DISCOVER starts
/// in.dhcpd while in.aasd is down; it runs as nobody with the group aasd,
/// and serves the client once in.aasd comes up.
#[test]
fn socket_activated_in_dhcpd_before_in_aasd_serves_once_it_is_up() {
    let mut net = Net::new(false);
    let bind = group_file_with_aasd(&net);
    let env = [("NSRUN_BIND", bind.as_str())];
    let sock = net.path("aasd.sock");
    let aconf = net.path("aasd.conf");
    fs::write(
        &aconf,
        format!(
            "database_dir = {}\nsocket = {sock}\n[pool Near]\nrange = 10.77.0.100-10.77.0.110\n",
            net.path("aasdb")
        ),
    )
    .unwrap();
    let conf = dhcpd_conf(&net, "", "pool = Near", "");
    let srv = net.ns("srv");
    let nsrun = tool("nsrun.sh");
    let log = net.path("server.log");
    net.spawn_cmd(
        &[
            &nsrun,
            &srv,
            "systemd-socket-activate",
            "--datagram",
            "-l",
            "0.0.0.0:67",
            server_bin(),
            "-D",
            "3",
            "-c",
            &conf,
        ],
        &env,
        Path::new(&log),
    );
    assert!(wait_for(&log, "Listening on", SECS5), "{}", read(&log));
    assert!(get_lease(&mut net, Client::Udhcpc, "cli", "cli0").is_none());
    assert!(
        read(&log).contains("(systemd socket activation) serving"),
        "{}",
        read(&log)
    );
    let dhcpd = exe_pid(&net, &srv, "in-dhcpd");
    let g = groups(dhcpd);
    assert!(g.contains(&AASD_GID) && !g.contains(&0), "groups {g:?}");
    let alog = net.path("aasd.log");
    net.spawn_cmd(
        &[
            &nsrun,
            &srv,
            aasd_bin(),
            "-D",
            "3",
            "-u",
            "daemon",
            "-c",
            &aconf,
        ],
        &env,
        Path::new(&alog),
    );
    assert!(until(|| answers(&sock)), "{}", read(&alog));
    let lease = get_lease(&mut net, Client::Dhclient, "cli", "cli0")
        .unwrap_or_else(|| panic!("no lease once in.aasd is up: {}", read(&log)));
    assert!(lease.ip.starts_with("10.77.0.1"), "{lease:?}");
    assert_eq!(exe_pid(&net, &srv, "in-dhcpd"), dhcpd, "the same process");
}

/// Item 3: a PXE firmware (no option 61) and the iPXE or OS it loads
/// (option 61 = 01 + MAC) are one client: one address, one lease; and the
/// firmware at the next boot gets that address again.
#[test]
fn a_pxe_firmware_and_the_stage_it_loads_share_one_address() {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf("", "[pool Near]\nrange = 10.77.0.100-10.77.0.110\n");
    net.start_aasd("srv", &aconf);
    let conf = dhcpd_conf(&net, "", "pool = Near", "");
    let (_, log) = net.start_standalone(&conf, &[]);
    let cli = net.ns("cli");
    let mac = "02:77:00:00:00:44";
    let id = format!("61:01{}", mac.replace(':', ""));
    // One DORA; `extra` is added to both messages.
    let dora = |net: &Net, extra: &[&str]| -> String {
        let mut discover = vec!["cli0", "--mac", mac, "--broadcast"];
        discover.extend_from_slice(extra);
        let offer = net.probe(&cli, &discover).expect("an offer");
        assert_eq!(field(&offer, "type"), "offer", "{offer}");
        let addr = field(&offer, "yiaddr").to_string();
        let mut request = vec![
            "cli0",
            "--mac",
            mac,
            "--type",
            "request",
            "--requested",
            &addr,
            "--server-id",
            SERVER,
            "--broadcast",
        ];
        request.extend_from_slice(extra);
        let ack = net.probe(&cli, &request).expect("an answer");
        assert_eq!(field(&ack, "type"), "ack", "{ack}");
        assert_eq!(field(&ack, "yiaddr"), addr);
        addr
    };
    let firmware = dora(&net, &[]);
    let ipxe = dora(&net, &["--opt", &id]);
    assert_eq!(ipxe, firmware, "{}", read(&log));
    let (_, listed) = net.aasadmin(&["list", "state=leased"]);
    let rows: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("10.77.0."))
        .collect();
    assert_eq!(rows.len(), 1, "{listed}");
    assert!(rows[0].contains("10.77.0.0/id/01027700000044"), "{listed}");
    // The next boot: the firmware again, then the loaded stage.
    assert_eq!(dora(&net, &[]), firmware);
    assert_eq!(dora(&net, &["--opt", &id]), firmware);
    let (_, listed) = net.aasadmin(&["list", "state=leased"]);
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("10.77.0.")).count(),
        1,
        "{listed}"
    );
}

/// Item 8: aasadmin finds a client by MAC across subnets and identifier
/// forms, tells a free pool address from one in no pool, releases,
/// disables and enables ranges and pools; -h on all three programs.
#[test]
fn aasadmin_as_an_administrator_uses_it() {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf(
        "",
        "[pool Near]\nrange = 10.77.0.100-10.77.0.110\n[pool Far]\nrange = 10.78.0.100-10.78.0.110\n",
    );
    net.start_aasd("srv", &aconf);
    let conf = dhcpd_conf(&net, "", "pool = Near", "");
    net.start_standalone(&conf, &[]);
    // udhcpc sends option 61 = 01+MAC; the same machine on another subnet
    // by its hardware address; and someone else.
    let lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0").expect("a lease");
    let got = ask(
        &net,
        &[
            &format!("ALLOC Far dhcp 10.78.0.0/1/{CLI_MAC} 3600"),
            "ALLOC Far dhcp 10.78.0.0/1/02:77:00:00:00:77 3600",
        ],
    );
    assert!(got.iter().all(|g| g.starts_with("OK")), "{got:?}");
    let (code, listed) = net.aasadmin(&["list", &format!("mac={}", CLI_MAC.to_uppercase())]);
    assert_eq!(code, 0, "{listed}");
    let rows: Vec<&str> = listed.lines().filter(|l| l.starts_with("10.7")).collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert!(
        rows[0].starts_with(&lease.ip) && rows[0].contains("/id/01027700000010"),
        "{listed}"
    );
    assert!(
        rows[1].contains(&format!("10.78.0.0/1/{CLI_MAC}")),
        "{listed}"
    );

    let (code, text) = net.aasadmin(&["query", "10.77.0.109"]);
    assert_eq!(
        (code, text.trim()),
        (0, "10.77.0.109: free, in pool Near, never used")
    );
    let (code, text) = net.aasadmin(&["query", "10.77.0.200"]);
    assert_eq!(
        (code, text.trim()),
        (1, "10.77.0.200: in no pool of in.aasd")
    );

    let (code, text) = net.aasadmin(&["disable", "10.77.0.103-10.77.0.105"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("disabled 3 address(es)"), "{text}");
    let (_, listed) = net.aasadmin(&["list", "state=disabled"]);
    assert_eq!(
        listed
            .lines()
            .filter(|l| l.starts_with("10.77.0.10"))
            .count(),
        3,
        "{listed}"
    );
    let (code, text) = net.aasadmin(&["enable", "Near"]);
    assert!(
        code == 0 && text.contains("enabled 3 address(es) of Near"),
        "{text}"
    );
    let (code, text) = net.aasadmin(&["release", "Far"]);
    assert!(
        code == 0 && text.contains("released 2 address(es) of Far"),
        "{text}"
    );
    let (_, listed) = net.aasadmin(&["list", "state=leased"]);
    let leased: Vec<&str> = listed.lines().filter(|l| l.starts_with("10.7")).collect();
    assert_eq!(leased.len(), 1, "only Near's lease is left: {listed}");
    let (code, text) = net.aasadmin(&["release", "NoSuchPool"]);
    assert_eq!(code, 2, "{text}");

    for bin in [server_bin(), aasd_bin(), aasadmin_bin()] {
        for flag in ["-h", "--help"] {
            let out = std::process::Command::new(bin).arg(flag).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{bin} {flag}");
            assert!(text.starts_with("usage: "), "{bin} {flag}: {text}");
        }
    }
}

/// Cold start (issue 20): an in.dhcpd that inetd starts answers its first
/// datagram before it tells in.aasd the configuration. When that answer
/// needs an address, its connection opens with the greeting, so the pinned
/// address in the pool is reserved before the allocation: the fresh
/// in.aasd, which has never heard of it, still gives the next one.
#[test]
fn a_fresh_inetd_instance_reserves_pinned_addresses_before_its_first_allocation() {
    let (net, conf) = inetd_with_a_pin_in_the_pool();
    let offer =
        broadcast_offer(&net, "02:77:00:00:00:31").expect("an OFFER for the dynamic client");
    assert_eq!(field(&offer, "yiaddr"), "10.77.0.106", "{offer}");
    assert!(reserved_within(&net, SECS5), "{conf}");
}

/// Cold start (issue 20): when the datagram that started in.dhcpd needs
/// no in.aasd (a pinned client), in.aasd is told once it is answered.
#[test]
fn a_fresh_inetd_instance_answering_a_pinned_client_tells_in_aasd_after() {
    let (net, conf) = inetd_with_a_pin_in_the_pool();
    let offer = broadcast_offer(&net, "02:77:00:00:00:99").expect("an OFFER for the pinned client");
    assert_eq!(field(&offer, "yiaddr"), "10.77.0.105", "{offer}");
    assert!(reserved_within(&net, SECS5), "{conf}");
}

/// Cold start (issue 20): the greeting asks POOLS first and reserves only
/// the pinned addresses inside in.aasd's pools before the first
/// allocation; one outside every pool (which no ALLOC can give away, and
/// which in.aasd refuses to reserve) is not sent at all, so a file of many
/// fixed clients does not hold back a pool client's OFFER.
#[test]
fn a_fresh_inetd_instance_reserves_only_the_pinned_addresses_inside_the_pools() {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf("", "[pool Near]\nrange = 10.77.0.105-10.77.0.107\n");
    net.start_aasd("srv", &aconf);
    let conf = dhcpd_conf(
        &net,
        "",
        "pool = Near",
        "[client 02:77:00:00:00:99]\nip_address = 10.77.0.105\n\
         [client 02:77:00:00:00:98]\nip_address = 10.77.0.50\n",
    );
    settle(&conf);
    net.start_inetd(&format!("-t 5s -c {conf}"));
    let offer =
        broadcast_offer(&net, "02:77:00:00:00:31").expect("an OFFER for the dynamic client");
    // The pinned address in the pool was reserved before the ALLOC.
    assert_eq!(field(&offer, "yiaddr"), "10.77.0.106", "{offer}");
    assert!(reserved_within(&net, SECS5), "{conf}");
    // in.aasd logs each refused RESERVE ("... is in no pool"); the greeting
    // was over before the OFFER, and nothing else asks in.aasd since.
    let aasd_log = read(&net.path("aasd.log"));
    assert!(aasd_log.contains("connection from"), "{aasd_log}");
    assert!(!aasd_log.contains("10.77.0.50"), "{aasd_log}");
}

/// The OFFER (as JSON) to a broadcast DISCOVER from cli0 with `mac`.
fn broadcast_offer(net: &Net, mac: &str) -> Option<String> {
    net.probe(&net.ns("cli"), &["cli0", "--mac", mac, "--broadcast"])
}

/// A fresh in.aasd with pool 10.77.0.105-107, and inetd starting in.dhcpd
/// with 10.77.0.105 pinned to 02:77:00:00:00:99.
fn inetd_with_a_pin_in_the_pool() -> (Net, String) {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf("", "[pool Near]\nrange = 10.77.0.105-10.77.0.107\n");
    net.start_aasd("srv", &aconf);
    let conf = dhcpd_conf(
        &net,
        "",
        "pool = Near",
        "[client 02:77:00:00:00:99]\nip_address = 10.77.0.105\n",
    );
    settle(&conf);
    net.start_inetd(&format!("-t 5s -c {conf}"));
    (net, conf)
}

/// Whether in.aasd lists 10.77.0.105 reserved for its client within `limit`.
fn reserved_within(net: &Net, limit: Duration) -> bool {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < limit {
        let (_, listed) = net.aasadmin(&["list", "state=reserved"]);
        if listed
            .lines()
            .any(|l| l.starts_with("10.77.0.105 ") && l.contains("fixed/1/02:77:00:00:00:99"))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
