//! What the fuzz targets check, as plain functions. The libFuzzer targets
//! in `fuzz/` and the corpus replay in `tests/fuzz_corpus.rs` call the same
//! code, so every input the fuzzer ever found is checked again by a plain
//! `cargo test` on stable Rust.
//!
//! Each function panics when a property fails; a panic inside the code
//! under test is a finding too.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::aas::client::Requester;
use crate::aas::lease::{Alloc, Pool, State, Want};
use crate::aas::proto::{self, Reply, Request};
use crate::aasd::db::Db;
use crate::aasd::logstore::LogStore;
use crate::aasd::ops::{self, Local};
use crate::aasd::{config as aas_config, journal};
use crate::config::{self, Config};
use crate::dhcp::{self, packet, Arrival};
use crate::log;

/// The fixed time of the in-memory AAS.
const NOW: u64 = 1_800_000_000;

/// One /8 subnet with a pool, static clients, a vendor class, overload on.
pub const DHCPD_CONF: &str = "\
[server]
lease_res_time = 30
decline_time = 600
option_overload = yes
bootp_dynamic = yes
[global]
lease_time = 3600
max_lease_time = 7200
domain_name = fuzz.example
domain_name_servers = 10.0.0.53
[subnet 10.0.0.0/8]
pool = Fuzz
routers = 10.0.0.1
[client 02:00:00:00:00:01]
ip_address = 10.0.0.50
host_name = static-one
boot_file = /boot/pxelinux.0
[client 01:02:00:00:00:00:02]
ip_address = 10.0.0.51
[vendor_class PXEClient]
boot_file = /boot/ipxe.efi
vendor_option_43 = 0601080a04000102
";

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const OWN: [Ipv4Addr; 2] = [SERVER, Ipv4Addr::LOCALHOST];
const POOL_FIRST: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const POOL_LAST: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 20);
/// Held by other clients before each input: never to be handed out.
const HELD: [(&str, Ipv4Addr); 2] = [
    ("10.0.0.0/1/02:aa:00:00:00:01", Ipv4Addr::new(10, 9, 0, 1)),
    ("10.0.0.0/1/02:aa:00:00:00:02", Ipv4Addr::new(10, 9, 0, 2)),
];

fn fixed_config() -> &'static Config {
    static CONFIG: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| config::parse(DHCPD_CONF, "fuzz.conf").unwrap_or_else(|e| panic!("{e:?}")))
}

fn fresh_aas() -> Local {
    let pool = Pool::new("Fuzz", vec![(u32::from(POOL_FIRST), u32::from(POOL_LAST))]);
    let mut aas = Local::new(Db::new(vec![pool]), NOW);
    for (client, addr) in HELD {
        let request = Request::Alloc(Alloc {
            want: Want::Exact(u32::from(addr)),
            ..Alloc::new("Fuzz", "dhcp", client, 3600)
        });
        let answer = aas.ask(&request);
        assert!(
            matches!(answer, Ok(Reply::Allocated(_))),
            "{request}: {answer:?}"
        );
    }
    aas
}

/// Log lines are one line each, of printable text: client bytes never
/// reach them raw (format strings, escapes, newlines).
fn check_log_lines(lines: &[(log::Level, String)]) {
    for (_, line) in lines {
        assert!(
            !line.chars().any(|c| c.is_control()),
            "raw control character in a log line: {line:?}"
        );
    }
}

/// Options of a DHCP message as our own walk sees them: (code, value) in
/// order, repeated codes kept apart.
fn options_of(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 240;
    while at < bytes.len() && bytes[at] != 255 {
        if bytes[at] == 0 {
            at += 1;
            continue;
        }
        let len = usize::from(*bytes.get(at + 1).expect("option length in reply"));
        let value = bytes.get(at + 2..at + 2 + len).expect("option in reply");
        out.push((bytes[at], value.to_vec()));
        at += 2 + len;
    }
    out
}

/// Target `dhcp_handle`: one datagram through the whole request handler,
/// with [`DHCPD_CONF`] and an in-memory AAS holding two leases.
pub fn dhcp_handle(data: &[u8]) {
    let cfg = fixed_config();
    let mut aas = fresh_aas();
    let arrival = Arrival {
        src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        ifname: "fuzz0",
        local: SERVER,
        iface_addrs: &OWN[..1],
        own_addrs: &OWN,
        mtu: 1500,
    };
    let (reply, lines) = log::capture(|| dhcp::handle(data, &arrival, cfg, &mut aas));
    check_log_lines(&lines);
    let Some(reply) = reply else {
        return;
    };
    let request = packet::parse(data).expect("a request we answered parses");
    let out = &reply.bytes;
    assert_eq!(out[0], 2, "op is BOOTREPLY");
    assert_eq!(&out[4..8], &data[4..8], "the request's xid");
    assert!(out.len() >= 300, "reply of {} bytes < 300", out.len());
    let cap = request
        .max_message_size()
        .map_or(576, |m| usize::from(m).max(576))
        .min(arrival.mtu);
    // A BOOTP reply is as long as its request, within the MTU.
    let cap = cap.max(data.len().min(arrival.mtu));
    assert!(out.len() <= cap, "reply of {} > {cap}", out.len());
    if request.cookie {
        assert_eq!(&out[236..240], &packet::MAGIC_COOKIE);
        let options = options_of(out);
        let one = |code: u8| -> Option<&[u8]> {
            let mut found = options.iter().filter(|o| o.0 == code);
            let first = found.next().map(|o| o.1.as_slice());
            assert!(found.next().is_none(), "option {code} twice in the reply");
            first
        };
        if request.message_type.is_some() {
            if let Some(id) = request.client_id().filter(|id| id.len() <= 255) {
                assert_eq!(one(61), Some(id), "client identifier echoed");
            }
        }
        if !request.giaddr.is_unspecified() {
            assert_eq!(
                one(82),
                request.option(82),
                "option 82 echoed byte for byte"
            );
        }
    }
    let yiaddr = packet::addr(out, packet::offset::YIADDR);
    if yiaddr.is_unspecified() {
        return;
    }
    if cfg.client_with_address(yiaddr).is_some() {
        return;
    }
    assert!(
        (POOL_FIRST..=POOL_LAST).contains(&yiaddr),
        "offered {yiaddr}, outside the pool"
    );
    let entry = aas
        .db
        .get(u32::from(yiaddr))
        .expect("offered address is held");
    assert!(
        matches!(entry.state_at(NOW), State::Offered | State::Leased),
        "offered {yiaddr} is not held for the client"
    );
    for (holder, addr) in HELD {
        assert!(
            addr != yiaddr || entry.client == holder,
            "{yiaddr}, leased to {holder}, handed to {}",
            entry.client
        );
    }
}

/// Target `packet_validate`: our validation, then every accessor the
/// handler uses.
pub fn packet_validate(data: &[u8]) {
    let (_, lines) = log::capture(|| {
        let _ = packet::identity(data);
        if let Ok(req) = packet::parse(data) {
            let _ = (req.mac(), req.client_id(), req.requested_address());
            let _ = (req.server_id(), req.max_message_size(), req.link_address());
            let _ = (req.agent_suboption(5), req.agent_address(11));
            assert!(req.hw_addr().len() <= 16);
        }
    });
    check_log_lines(&lines);
}

/// Target `dhcpd_conf`: no panic; every error names a line of the text.
pub fn dhcpd_conf(data: &[u8]) {
    check_config_errors(data, |text| config::parse(text, "fuzz.conf").err());
}

/// Target `aasd_conf`: as [`dhcpd_conf`], for aasd.conf.
pub fn aasd_conf(data: &[u8]) {
    check_config_errors(data, |text| aas_config::parse(text, "fuzz.conf").err());
}

fn check_config_errors(data: &[u8], parse: impl Fn(&str) -> Option<Vec<config::ConfigError>>) {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count().max(1);
    if let Some(errors) = parse(&text) {
        assert!(!errors.is_empty());
        for e in errors {
            assert!(e.line <= lines, "error at line {} of {lines}: {e}", e.line);
        }
    }
}

/// Target `aas_protocol`: bytes as a connection's stream, each line
/// parsed and applied to a database as in.aasd does; one answer per line,
/// which reads as the reply to it and renders back to the same text, never
/// a panic.
pub fn aas_protocol(data: &[u8]) {
    let mut store = LogStore::in_memory(fresh_aas().db);
    for raw in data.split(|&b| b == b'\n') {
        if raw.len() > proto::MAX_LINE {
            continue; // in.aasd closes the connection before parsing it
        }
        let line = String::from_utf8_lossy(raw);
        let ((request, text), lines) =
            log::capture(|| match proto::parse(line.trim_end_matches('\r')) {
                Ok(r) => {
                    // What in.aasd understood, written again, says the same.
                    assert_eq!(proto::parse(&r.to_string()).as_ref(), Ok(&r), "{line:?}");
                    let text = ops::apply(&mut store, r.clone(), NOW).text;
                    (Some(r), text)
                }
                Err(e) => {
                    let refused = Reply::Err {
                        code: proto::Code::Syntax,
                        text: e.to_string(),
                    };
                    (None, refused.to_string())
                }
            });
        check_log_lines(&lines);
        assert!(!text.contains('\r') && !text.contains('\0'), "{text:?}");
        // A line that did not parse is answered as any request's refusal.
        check_answer(request.as_ref().unwrap_or(&Request::Ping), &text);
    }
    check_db(store.db());
}

/// Target `journal_replay`: bytes as a log or checkpoint file. Replay
/// never panics, reports damage inside the file, and loading the records
/// keeps only addresses of the pools.
pub fn journal_replay(data: &[u8]) {
    let mut bytes = journal::HEADER.to_vec();
    bytes.extend_from_slice(data);
    let replay = journal::replay(&bytes).expect("our header");
    for hole in &replay.holes {
        assert!(hole.offset + hole.len <= bytes.len());
    }
    if let Some(at) = replay.torn_at {
        assert!(at < bytes.len());
    }
    assert_eq!(
        journal::replay(&bytes).as_ref(),
        Some(&replay),
        "deterministic"
    );
    let pool = Pool::new("Fuzz", vec![(u32::from(POOL_FIRST), u32::from(POOL_LAST))]);
    let mut db = Db::new(vec![pool]);
    for (addr, entry) in replay.records {
        if db.get(addr).is_some_and(|old| old.seq > entry.seq) {
            continue;
        }
        db.restore(addr, entry);
    }
    check_db(&db);
}

/// Every answer reads as the requester reads the reply to its request
/// (rows as rows, a code it knows) and renders back to the same text.
fn check_answer(request: &Request, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let reply = Reply::parse(request, &lines);
    let reply = reply.unwrap_or_else(|e| panic!("{request} got {text:?}: {e}"));
    assert_eq!(reply.to_string(), text, "{request}");
}

/// Every address the database knows is in one of its pools.
fn check_db(db: &Db) {
    for (addr, _) in db.entries() {
        assert!(db.pool_of(addr).is_some(), "{addr} in no pool");
    }
}
