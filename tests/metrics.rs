//! in.aasd's metrics: a real in.aasd with `metrics_listen`, scraped with
//! curl, its page checked line by line against the Prometheus text format
//! and its values against what the test did; `aasadmin stats --prometheus`
//! prints the same pool gauges; a failed commit is a store error; bad,
//! oversized, slow and surplus HTTP connections are closed and logged
//! while in.aasd keeps serving.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::*;
use indhcpd::aas::lease::{Alloc, Want};
use indhcpd::aas::proto::{Code, Reply, Request};

const METRICS: &str = "127.0.0.1:9310";
const POOLS: &str = "[pool P]\nrange = 10.0.0.10-10.0.0.12\n\
                     [pool Q]\nrange = 10.0.1.10-10.0.1.19\n";

/// `curl -i` in the namespace of in.aasd: (status line, headers, body).
fn curl(net: &Net, path: &str) -> (String, String, String) {
    let url = format!("http://{METRICS}{path}");
    let out = Command::new("ip")
        .args(["netns", "exec", &net.ns("srv"), "curl", "-sS", "-i"])
        .args(["--max-time", "10", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {url}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.into(), headers.into(), body.into())
}

/// A metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (no `:` in labels).
fn name_ok(s: &str, label: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (!label && c == ':')
            || (!first && c.is_ascii_digit())
    };
    let mut cs = s.chars();
    cs.next().is_some_and(|c| ok(c, true)) && cs.all(|c| ok(c, false))
}

/// The labels of a sample, `{k="v",...}` without the braces, strictly:
/// only `\\`, `\"` and `\n` escapes in a value.
fn labels_ok(mut s: &str) -> bool {
    loop {
        let Some((k, rest)) = s.split_once("=\"") else {
            return false;
        };
        if !name_ok(k, true) {
            return false;
        }
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\' | '"' | 'n')) => {}
                    _ => return false,
                },
                Some((i, '"')) => break i,
                Some((_, '\n')) | None => return false,
                Some(_) => {}
            }
        };
        match &rest[end + 1..] {
            "" => return true,
            more => match more.strip_prefix(',') {
                Some(next) => s = next,
                None => return false,
            },
        }
    }
}

/// Read a page as the text format 0.0.4 allows it, failing on any line
/// that does not fit: each family's `# HELP` then `# TYPE` once, before
/// its samples; counters named `_total`; integer values, no timestamps.
/// The samples, series to value.
fn parse_page(page: &str) -> BTreeMap<String, u64> {
    assert!(page.ends_with('\n'), "a page ends with a newline");
    let mut seen: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut help_for = String::new();
    let mut samples = BTreeMap::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').expect(line);
            assert!(
                name_ok(name, false) && !seen.contains(&name.to_string()),
                "{line}"
            );
            assert!(
                !text.is_empty() && !text.replace("\\\\", "").replace("\\n", "").contains('\\')
            );
            help_for = name.into();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            assert_eq!(name, help_for, "TYPE after its HELP: {line}");
            assert!(
                kind == "gauge" || (kind == "counter" && name.ends_with("_total")),
                "{line}"
            );
            seen.push(name.into());
            current = name.into();
        } else {
            let (series, value) = line.rsplit_once(' ').expect(line);
            let name = series.split('{').next().unwrap();
            assert_eq!(name, current, "a sample of the family begun last: {line}");
            if let Some(labels) = series[name.len()..].strip_prefix('{') {
                let labels = labels.strip_suffix('}').expect(line);
                assert!(labels_ok(labels), "{line}");
            } else {
                assert_eq!(series, name, "{line}");
            }
            let value: u64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            assert!(
                samples.insert(series.to_string(), value).is_none(),
                "twice: {line}"
            );
        }
    }
    samples
}

fn value(samples: &BTreeMap<String, u64>, series: &str) -> u64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
}

fn scrape(net: &Net) -> BTreeMap<String, u64> {
    let (status, headers, body) = curl(net, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers
            .lines()
            .any(|h| h.starts_with("Content-Type: text/plain; version=0.0.4")),
        "{headers}"
    );
    parse_page(&body)
}

#[test]
fn a_scrape_counts_allocations_and_refusals_and_aasadmin_prints_the_same_pool_gauges() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf(&format!("metrics_listen = {METRICS}\n"), POOLS);
    net.start_aasd("srv", &conf);

    let offer = Request::Alloc(Alloc {
        hold: true,
        ..alloc_of("P", "dhcp", "b", 60)
    });
    let taken = Request::Alloc(Alloc {
        want: Want::Exact(u32::from(Ipv4Addr::new(10, 0, 0, 10))),
        ..alloc_of("P", "ppp", "e", 3600)
    });
    let replies = ask_aas(
        &net,
        &[
            alloc_request("P", "ppp", "a", 3600),
            offer,
            alloc_request("P", "ppp", "c", 3600),
            alloc_request("P", "ppp", "d", 3600),
            taken,
            alloc_request("Q", "ppp", "f", 3600),
        ],
    );
    let codes: Vec<Option<Code>> = replies
        .iter()
        .map(|r| match r {
            Reply::Err { code, .. } => Some(*code),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        [
            None,
            None,
            None,
            Some(Code::Exhausted),
            Some(Code::Taken),
            None
        ],
        "{replies:?}"
    );
    assert_eq!(net.aasadmin(&["release", "10.9.9.9"]).0, 1, "notinpool");

    let m = scrape(&net);
    for (series, want) in [
        ("aasd_pool_size{pool=\"P\"}", 3),
        ("aasd_pool_free{pool=\"P\"}", 0),
        ("aasd_pool_leased{pool=\"P\"}", 2),
        ("aasd_pool_offered{pool=\"P\"}", 1),
        ("aasd_pool_size{pool=\"Q\"}", 10),
        ("aasd_pool_free{pool=\"Q\"}", 9),
        ("aasd_allocations_total{pool=\"P\",kind=\"lease\"}", 2),
        ("aasd_allocations_total{pool=\"P\",kind=\"offer\"}", 1),
        ("aasd_allocations_total{pool=\"Q\",kind=\"lease\"}", 1),
        ("aasd_allocations_total{pool=\"Q\",kind=\"offer\"}", 0),
        ("aasd_refusals_total{reason=\"exhausted\"}", 1),
        ("aasd_refusals_total{reason=\"taken\"}", 1),
        ("aasd_refusals_total{reason=\"notinpool\"}", 1),
        ("aasd_refusals_total{reason=\"disabled\"}", 0),
        ("aasd_store_errors_total", 0),
    ] {
        assert_eq!(value(&m, series), want, "{series}");
    }
    assert!(value(&m, "aasd_start_time_seconds") > 1_700_000_000);

    // aasadmin prints exactly the pool gauges of the scrape.
    let (_, _, body) = curl(&net, "/metrics");
    let gauges: Vec<&str> = body
        .lines()
        .filter(|l| l.contains(" aasd_pool_") || l.starts_with("aasd_pool_"))
        .collect();
    let (code, text) = net.aasadmin(&["stats", "--prometheus"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.lines().collect::<Vec<_>>(), gauges);
    parse_page(&text);
    let (code, text) = net.aasadmin(&["--prometheus", "stats", "Q"]);
    assert_eq!(code, 0, "{text}");
    let samples = parse_page(&text);
    assert_eq!(value(&samples, "aasd_pool_leased{pool=\"Q\"}"), 1);
    assert!(
        samples.keys().all(|k| k.ends_with("{pool=\"Q\"}")),
        "{text}"
    );
    let (code, text) = net.aasadmin(&["--prometheus", "list"]);
    assert_eq!(code, 2, "{text}");

    // Nothing but /metrics is there.
    let (status, _, _) = curl(&net, "/");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[test]
fn a_failed_commit_is_a_store_error_and_what_it_lost_is_not_counted() {
    let mut net = Net::new(false);
    let db_dir = net.dir.join("aasdb");
    let _mount = Mount::new(&db_dir, "64k");
    let conf = net.aasd_conf(
        &format!("metrics_listen = {METRICS}\n"),
        POOLS.replace("10.0.1.19", "10.0.1.250").as_str(),
    );
    net.start_aasd("srv", &conf);
    let filler = Mount::fill(&db_dir);

    // Long client names fill the log's last page, then commits fail. Only
    // ALLOCs go to in.aasd meanwhile: every round has its answer.
    let long = "x".repeat(200);
    let (mut kept, mut failed) = (0, 0);
    for i in 0..200 {
        let client = format!("c{i}-{long}");
        match ask_aas(&net, &[alloc_request("Q", "ppp", &client, 3600)]).remove(0) {
            Reply::Allocated(_) => kept += 1,
            Reply::Err { code: Code::Io, .. } => failed += 1,
            other => panic!("{other}"),
        }
        if failed == 3 {
            break;
        }
    }
    assert_eq!(failed, 3, "writes should fail on the full disk");
    assert!(kept > 0, "some were kept before the disk was full");
    let m = scrape(&net);
    assert_eq!(value(&m, "aasd_store_errors_total"), 3);
    let leases = "aasd_allocations_total{pool=\"Q\",kind=\"lease\"}";
    assert_eq!(value(&m, leases), kept);
    assert_eq!(value(&m, "aasd_pool_leased{pool=\"Q\"}"), kept);

    // Space back: the next allocation is kept and counted.
    std::fs::remove_file(&filler).unwrap();
    let again = ask_aas(&net, &[alloc_request("Q", "ppp", "after", 3600)]).remove(0);
    assert!(matches!(again, Reply::Allocated(_)), "{again}");
    let m = scrape(&net);
    assert_eq!(value(&m, leases), kept + 1);
    assert_eq!(value(&m, "aasd_store_errors_total"), 3);
}

/// Everything the peer sent until it closed (or reset) the connection.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("still open: {e} after {got:?}"),
        }
    }
}

#[test]
fn bad_oversized_slow_and_surplus_requests_are_closed_and_logged_and_serving_goes_on() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf(&format!("metrics_listen = {METRICS}\n"), POOLS);
    let aasd = net.start_aasd("srv", &conf);
    let log = net.path("aasd.log");
    let connect = || in_ns(&net.ns("srv"), || TcpStream::connect(METRICS).unwrap());

    // Not HTTP: a 400, then closed.
    let mut s = connect();
    s.write_all(b"NOT HTTP\r\n\r\n").unwrap();
    let got = String::from_utf8(read_to_close(&mut s)).unwrap();
    assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");

    // A head past 4 KiB: closed unanswered (the write may meet the close).
    let mut s = connect();
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 8192));
    let _ = s.write_all(&big);
    assert_eq!(read_to_close(&mut s), b"");

    // A head that never ends: closed unanswered after the time allowed.
    let mut s = connect();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert_eq!(read_to_close(&mut s), b"");

    // 16 idle connections and a scrape, all made while in.aasd is stopped
    // (the kernel completes them), so it finds them at once: the oldest
    // idle one makes room and the scrape is answered.
    let signal = |sig| {
        // SAFETY: kill(2) on the in.aasd this test started.
        assert_eq!(unsafe { libc::kill(aasd as i32, sig) }, 0);
    };
    signal(libc::SIGSTOP);
    let idle: Vec<TcpStream> = (0..16).map(|_| connect()).collect();
    let mut scraper = connect();
    scraper.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    signal(libc::SIGCONT);
    let got = String::from_utf8(read_to_close(&mut scraper)).unwrap();
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\n") && got.contains("aasd_pool_size{pool=\"P\"} 3\n"),
        "{got}"
    );
    let mut first = idle.into_iter().next().unwrap();
    assert_eq!(
        read_to_close(&mut first),
        b"",
        "the oldest idle one was closed"
    );

    for line in [
        "\"NOT HTTP\": answered 400",
        "request over 4096 bytes: closing",
        "no complete request within 2 s: closing",
        "closed without a complete request, to make room for 127.0.0.1:",
    ] {
        assert!(
            wait_for(&log, line, Duration::from_secs(10)),
            "{line} in\n{}",
            read(&log)
        );
    }
    // Still serving: scrapes and requesters.
    assert_eq!(curl(&net, "/metrics").0, "HTTP/1.1 200 OK");
    assert!(matches!(
        ask_aas(&net, &[Request::Ping]).remove(0),
        Reply::Pong(_)
    ));
}

/// A batch that is all in the socket when in.aasd reads is answered in
/// one round: one commit (one sync of the log) for 900 ALLOCs of 140
/// bytes, as in.dhcpd sends them when the disk is slow. Reading only
/// 16 KiB a round made it ten commits, ten syncs.
#[test]
fn a_batch_waiting_in_the_socket_is_answered_under_one_commit() {
    const BATCH: usize = 900;
    let mut net = Net::new(false);
    let pools = "[pool B]\nrange = 10.0.2.1-10.0.5.254\n";
    let conf = net.aasd_conf(
        &format!("metrics_listen = {METRICS}\nsync = always\n"),
        pools,
    );
    let aasd = net.start_aasd("srv", &conf);
    let before = value(&scrape(&net), "aasd_store_commits_total");
    let lines: String = (0..BATCH)
        .map(|i| format!("ALLOC B dhcp 10.0.0.0/id/{i:0>110} 3600\n"))
        .collect();
    assert!(lines.len() > 120_000, "{}", lines.len());
    let mut s = std::os::unix::net::UnixStream::connect(net.path("aasd.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Stopped, in.aasd reads nothing until all of it is in the socket.
    signal(aasd, "STOP");
    s.write_all(lines.as_bytes()).unwrap();
    signal(aasd, "CONT");
    let mut answers = String::new();
    let mut r = std::io::BufReader::new(s);
    for _ in 0..BATCH {
        let mut l = String::new();
        std::io::BufRead::read_line(&mut r, &mut l).unwrap();
        assert!(l.starts_with("OK 10.0."), "{l}");
        answers.push_str(&l);
    }
    let m = scrape(&net);
    assert_eq!(
        value(&m, "aasd_allocations_total{pool=\"B\",kind=\"lease\"}"),
        BATCH as u64
    );
    assert_eq!(value(&m, "aasd_store_commits_total"), before + 1);
}

fn signal(pid: u32, name: &str) {
    let out = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "kill -{name} {pid}");
}
