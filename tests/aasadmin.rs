//! aasadmin as an administrator uses it: a client found by its MAC under
//! whatever key in.dhcpd stored it, with the host name it sent; a free
//! pool address told from one in no pool; ranges and pools released,
//! disabled and enabled at once; `-h` on every program; a log written
//! before host names were kept still loads.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use indhcpd::aas::proto::Request;

const POOLS: &str = "[pool Near]\nrange = 10.77.0.100-10.77.0.120\n\
                     [pool Far]\nrange = 10.78.0.100-10.78.0.120\n";

fn dhcpd_conf(net: &Net) -> String {
    let text = fs::read_to_string(config("dynamic.conf"))
        .unwrap()
        .replace("AAS_SOCKET", &net.path("aasd.sock"));
    let path = net.path("dhcpd.conf");
    fs::write(&path, text).unwrap();
    settle(&path);
    path
}

/// udhcpc once on `ifname` of `role`, sending host name `name` (-x
/// hostname:); the address it bound.
fn udhcpc_named(net: &Net, role: &str, ifname: &str, name: &str) -> String {
    let hook_log = net.path(&format!("udhcpc-{role}.hook"));
    let out = Command::new("timeout")
        .args(["20", "ip", "netns", "exec", &net.ns(role), "udhcpc"])
        .args(["-i", ifname, "-f", "-q", "-n", "-t", "5", "-T", "2"])
        .args(["-x", &format!("hostname:{name}"), "-s", &tool("hook.sh")])
        .env("HOOK_LOG", &hook_log)
        .output()
        .unwrap();
    last_lease(&hook_log)
        .unwrap_or_else(|| {
            panic!(
                "udhcpc got no lease: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .ip
}

/// ISC dhclient once on cli0 with `send host-name` in its dhclient.conf.
fn dhclient_named(net: &mut Net, name: &str) -> String {
    let conf = net.path("dhclient.conf");
    fs::write(&conf, format!("send host-name \"{name}\";\n")).unwrap();
    let hook_log = net.path("dhclient.hook");
    let env_hook = format!("HOOK_LOG={hook_log}");
    let (lf, pf) = (net.path("dhclient.leases"), net.path("dhclient.pid"));
    let nsrun = tool("nsrun.sh");
    let hook = tool("hook.sh");
    let cli = net.ns("cli");
    let pid = net.spawn_cmd(
        &[
            &nsrun, &cli, "dhclient", "-4", "-1", "-d", "-v", "-cf", &conf, "-lf", &lf, "-pf", &pf,
            "-sf", &hook, "-e", &env_hook, "cli0",
        ],
        &[],
        Path::new(&net.path("dhclient.out")),
    );
    let bound = wait_for(&hook_log, "event=BOUND", Duration::from_secs(15));
    kill(pid);
    assert!(bound, "dhclient: {}", read(&net.path("dhclient.out")));
    last_lease(&hook_log).unwrap().ip
}

/// dhcpcd once on cli0, sending host name `name` (-h); its client
/// identifier is 255 + IAID + a DUID holding the MAC (RFC 4361).
fn dhcpcd_named(net: &Net, name: &str) -> String {
    let hook_log = net.path("dhcpcd.hook");
    let env_hook = format!("HOOK_LOG={hook_log}");
    let out = Command::new("timeout")
        .args([
            "25",
            &tool("nsrun.sh"),
            &net.ns("cli"),
            "dhcpcd",
            "-1",
            "-4",
            "-B",
            "-A",
            "-L",
        ])
        .args([
            "-d",
            "-t",
            "15",
            "-h",
            name,
            "-c",
            &tool("hook.sh"),
            "-e",
            &env_hook,
            "cli0",
        ])
        .output()
        .unwrap();
    // dhcpcd puts the address on the interface itself; take it off.
    sh(&["ip", "-n", &net.ns("cli"), "addr", "flush", "dev", "cli0"]);
    last_lease(&hook_log)
        .unwrap_or_else(|| {
            panic!(
                "dhcpcd got no lease: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .ip
}

/// `aasadmin --json list ...` rows as (address, pool, client, host).
fn rows(net: &Net, filters: &[&str]) -> Vec<[String; 4]> {
    let mut args = vec!["--json", "list"];
    args.extend_from_slice(filters);
    let (code, text) = net.aasadmin(&args);
    assert_eq!(code, 0, "{text}");
    text.split('{')
        .skip(1)
        .map(|row| ["address", "pool", "client", "host"].map(|k| field(row, k).to_string()))
        .collect()
}

#[test]
fn a_client_is_found_by_its_mac_across_subnets_and_key_forms_with_its_host_name() {
    let mut net = Net::new(true);
    let aconf = net.aasd_conf("", POOLS);
    net.start_aasd("srv", &aconf);
    let (_, log) = net.start_standalone(&dhcpd_conf(&net), &[]);
    // The same MAC on the relayed link too: the machine moved.
    let cli2 = net.ns("cli2");
    sh(&["ip", "-n", &cli2, "link", "set", "cli2", "address", CLI_MAC]);
    net.start_dhcrelay();

    // dhclient sends no client identifier: keyed subnet/1/MAC; dhcpcd an
    // RFC 4361 one; udhcpc, through the relay, 01+MAC.
    let by_dhclient = dhclient_named(&mut net, "dhc-one");
    let by_dhcpcd = dhcpcd_named(&net, "dcd-two");
    let far = udhcpc_named(&net, "cli2", "cli2", "laptop7-far");
    assert!(far.starts_with("10.78.0."), "{far}: {}", read(&log));
    // A client with another MAC is not found.
    let other = net.add_ns("other");
    net.port(&other, "oth0", "02:77:00:00:00:99", None);
    let stranger = udhcpc_named(&net, "other", "oth0", "stranger");

    let mut found = rows(&net, &[&format!("mac={CLI_MAC}")]);
    found.sort();
    let want =
        |ip: &str, pool: &str, key: &str, host: &str| [ip, pool, key, host].map(String::from);
    // dhcpcd's key holds a DUID made now: its address and name are known.
    let dhcpcd_key = found
        .iter()
        .find(|r| r[0] == by_dhcpcd)
        .map(|r| r[2].clone())
        .unwrap_or_else(|| panic!("{by_dhcpcd} not found: {found:?}"));
    assert!(dhcpcd_key.starts_with("10.77.0.0/id/ff"), "{dhcpcd_key}");
    let mut expected = vec![
        want(
            &by_dhclient,
            "Near",
            "10.77.0.0/1/02:77:00:00:00:10",
            "dhc-one",
        ),
        want(&by_dhcpcd, "Near", &dhcpcd_key, "dcd-two"),
        want(&far, "Far", "10.78.0.0/id/01027700000010", "laptop7-far"),
    ];
    expected.sort();
    assert_eq!(found, expected, "{}", read(&log));
    assert!(!found.iter().any(|r| r[0] == stranger));
    // Typed with dashes, or in capitals, it is the same address.
    assert_eq!(rows(&net, &["mac=02-77-00-00-00-10"]).len(), 3);
    assert_eq!(rows(&net, &["mac=02:77:00:00:00:99"])[0][3], "stranger");

    // The table shows the name, and `query` an address's.
    let (code, text) = net.aasadmin(&["list", &format!("mac={CLI_MAC}"), "pool=Near"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("HOST") && text.contains(" dcd-two "),
        "{text}"
    );
    assert!(text.contains("2 address(es)"), "{text}");
    let (code, text) = net.aasadmin(&["query", &by_dhclient]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("dhc-one"), "{text}");
    let (code, text) = net.aasadmin(&["list", "mac=02:77:zz"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("not a MAC address"), "{text}");
}

#[test]
fn a_range_or_a_pool_is_released_disabled_and_enabled_and_query_tells_free_from_no_pool() {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf(
        "",
        "[pool P]\nrange = 10.0.0.10-10.0.0.29\n[pool Q]\naddress = 10.0.1.1\n",
    );
    net.start_aasd("srv", &aconf);
    let allocs: Vec<Request> = (0..12)
        .map(|i| alloc_request("P", "ppp", &format!("line{i}"), 3600))
        .collect();
    for a in ask_aas(&net, &allocs) {
        let a = allocated(a).unwrap();
        assert_eq!(a.octets()[..3], [10, 0, 0], "{a}");
    }
    let leased = |net: &Net| -> Vec<String> {
        rows(net, &["state=leased"])
            .into_iter()
            .map(|r| r[0].clone())
            .collect()
    };
    assert_eq!(leased(&net).len(), 12);

    // A pool address never used is free; one outside every pool is not.
    let (code, text) = net.aasadmin(&["query", "10.0.0.29"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("10.0.0.29: free, in pool P"), "{text}");
    let (code, text) = net.aasadmin(&["query", "10.0.0.30"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("10.0.0.30: in no pool"), "{text}");

    let (code, text) = net.aasadmin(&["release", "10.0.0.12-10.0.0.15"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("released 4 address(es) of 10.0.0.12-10.0.0.15"),
        "{text}"
    );
    let after = leased(&net);
    let want: Vec<String> = [10, 11, 16, 17, 18, 19, 20, 21]
        .iter()
        .map(|n| format!("10.0.0.{n}"))
        .collect();
    assert_eq!(after, want, "exactly .12 to .15 freed");

    // A range across pools and the gap between them; then a whole pool.
    let (code, text) = net.aasadmin(&["disable", "range=10.0.0.28-10.0.1.1"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("disabled 3 address(es)"), "{text}");
    let (code, text) = net.aasadmin(&["--json", "disable", "pool=P"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\"disabled\": 20"), "{text}");
    let (_, text) = net.aasadmin(&["--json", "stats", "P"]);
    assert!(
        text.contains("\"leased\": 8, \"offered\": 0, \"free\": 0, \"disabled\": 12"),
        "{text}"
    );
    let (code, text) = net.aasadmin(&["enable", "pool=P"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("enabled 20 address(es) of pool=P"), "{text}");
    assert_eq!(net.aasadmin(&["release", "pool=P"]).0, 0);
    assert!(leased(&net).is_empty());

    // Refusals: no such pool, a range in no pool, a backwards range.
    let (code, text) = net.aasadmin(&["release", "pool=Nope"]);
    assert_eq!(code, 2);
    assert!(
        text.contains("not an address, a range A-B or a pool"),
        "{text}"
    );
    let (code, text) = net.aasadmin(&["enable", "10.9.0.1-10.9.0.9"]);
    assert_eq!(code, 1);
    assert!(text.contains("in no pool"), "{text}");
    let (code, text) = net.aasadmin(&["disable", "10.0.0.20-10.0.0.10"]);
    assert_eq!(code, 2);
    assert!(text.contains("runs backwards"), "{text}");
}

#[test]
fn every_program_prints_its_usage_on_h_and_exits_0() {
    for (bin, name) in [
        (server_bin(), "in.dhcpd"),
        (aasd_bin(), "in.aasd"),
        (aasadmin_bin(), "aasadmin"),
    ] {
        for flag in ["-h", "--help"] {
            let out = Command::new(bin).arg(flag).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{name} {flag}: {text}");
            assert!(
                text.starts_with(&format!("usage: {name} ")),
                "{name} {flag}: {text}"
            );
            assert!(out.stderr.is_empty(), "{name} {flag}");
        }
    }
}

/// A record as in.aasd wrote them before host names (journal.rs's format
/// without the last field).
fn old_record(seq: u64, addr: [u8; 4], client: &str) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&u32::from_be_bytes(addr).to_le_bytes());
    p.extend_from_slice(&[2, 0]); // leased, not disabled
    p.extend_from_slice(&1_000u64.to_le_bytes());
    p.extend_from_slice(&u64::MAX.to_le_bytes()); // infinite
    p.extend_from_slice(&0u64.to_le_bytes());
    p.push(4);
    p.extend_from_slice(b"dhcp");
    p.push(client.len() as u8);
    p.extend_from_slice(client.as_bytes());
    let mut rec = vec![0xA5];
    rec.extend_from_slice(&(p.len() as u16).to_le_bytes());
    rec.extend_from_slice(&p);
    rec.extend_from_slice(&indhcpd::aasd::journal::crc32(&p).to_le_bytes());
    rec
}

#[test]
fn a_log_from_before_host_names_loads_and_takes_new_ones() {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf("", POOLS);
    let db = net.path("aasdb");
    fs::create_dir_all(&db).unwrap();
    let mut log = b"AASDLOG1".to_vec();
    log.extend(old_record(
        1,
        [10, 77, 0, 100],
        "10.77.0.0/1/02:77:00:00:00:10",
    ));
    log.extend(old_record(
        2,
        [10, 77, 0, 101],
        "10.77.0.0/id/01027700000011",
    ));
    fs::write(Path::new(&db).join("aasd.log"), &log).unwrap();
    let pid = net.start_aasd("srv", &aconf);
    assert!(
        !read(&net.path("aasd.log")).contains("damaged"),
        "{}",
        read(&net.path("aasd.log"))
    );
    let mut found = rows(&net, &[]);
    found.sort();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0][0], "10.77.0.100");
    assert_eq!(found[0][3], "", "no name in an old record");
    assert_eq!(rows(&net, &["mac=02:77:00:00:00:11"])[0][0], "10.77.0.101");
    // A new lease with a name, and both survive a restart.
    let a = ask(
        &net,
        &["ALLOC Near dhcp 10.77.0.0/1/02:77:00:00:00:12 3600 host=pc12"],
    );
    assert!(a[0].starts_with("OK 10.77.0.102 "), "{a:?}");
    kill9(pid);
    net.start_aasd("srv", &aconf);
    let found = rows(&net, &["mac=02:77:00:00:00:12"]);
    assert_eq!(found[0][3], "pc12");
    assert_eq!(rows(&net, &[]).len(), 3);
}

#[test]
fn against_an_in_aasd_from_before_host_names_list_still_works() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;
    // What such an in.aasd answers, word for word: it refuses the
    // `hostname` word and sends rows of nine words.
    let dir = std::env::temp_dir().join(format!("aasadmin-old-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("aasd.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let serve = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut asked = Vec::new();
        for _ in 0..2 {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let line = line.trim_end().to_string();
            let answer = if line.ends_with(" hostname") {
                "ERR syntax \"hostname\": expected key=value\n"
            } else {
                "LEASE 10.0.0.10 P leased no ppp line1 1000 infinite 0\nEND 1\n"
            };
            w.write_all(answer.as_bytes()).unwrap();
            asked.push(line);
        }
        asked
    });
    let out = Command::new(aasadmin_bin())
        .arg("-s")
        .arg(&sock)
        .args(["--json", "list", "pool=P"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("\"client\": \"line1\", \"host\": \"\""),
        "{text}"
    );
    assert_eq!(
        serve.join().unwrap(),
        ["QUERY pool=P hostname", "QUERY pool=P"]
    );
    let _ = fs::remove_dir_all(&dir);
}

/// A stand-in for in.aasd on a Unix socket in a fresh directory: it
/// answers each line it reads with `answer(line)` until the requester
/// hangs up, and gives back the lines it read. It waits at most 10 s for
/// a requester; none coming is no lines.
fn fake_aasd(
    tag: &str,
    answer: fn(&str) -> String,
) -> (std::path::PathBuf, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;
    let dir = std::env::temp_dir().join(format!("aasadmin-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("aasd.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let serve = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let s = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => return Vec::new(),
            }
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut asked = Vec::new();
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            let _ = w.write_all(answer(line.trim_end()).as_bytes());
            asked.push(line.trim_end().to_string());
            line.clear();
        }
        asked
    });
    (sock, serve)
}

#[test]
fn stats_refuses_a_pool_name_that_would_send_a_second_request() {
    let (sock, serve) = fake_aasd("stats", |line| {
        if line.starts_with("STATS") {
            "ERR nopool no pool named P\n".into()
        } else {
            "OK\n".into()
        }
    });
    let out = Command::new(aasadmin_bin())
        .arg("-s")
        .arg(&sock)
        .args(["stats", "P\nRELOAD"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not a pool name"), "{err}");
    // Nothing reached in.aasd: not the STATS, not a RELOAD.
    assert_eq!(serve.join().unwrap(), Vec::<String>::new());
    let _ = fs::remove_dir_all(sock.parent().unwrap());
}

#[test]
fn a_lease_row_with_a_word_missing_is_an_error_not_left_out() {
    let (sock, serve) = fake_aasd("short-row", |_| {
        "LEASE 10.0.0.10 P leased no ppp line1 1000 infinite 0 pc1\n\
         LEASE 10.0.0.11 P leased no ppp line2 1000 infinite pc2\nEND 2\n"
            .into()
    });
    let out = Command::new(aasadmin_bin())
        .arg("-s")
        .arg(&sock)
        .args(["list", "pool=P"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("a row aasadmin cannot read"), "{err}");
    assert!(err.contains("10.0.0.11"), "{err}");
    assert_eq!(serve.join().unwrap(), ["QUERY pool=P hostname"]);
    let _ = fs::remove_dir_all(sock.parent().unwrap());
}
