//! The bad-input catalogue (the table in DEVELOPING.md), case by case,
//! through the whole handler: what is answered or dropped, the log
//! lines (captured at every level, as `-D 3`), and what reached the AAS.
//! DEVELOPING.md maps each case to its tests; cases that need a socket, a
//! daemon or a file system are tested in tests/.

use std::net::Ipv4Addr;

use super::packet::hex;
use super::packet::tests::request_bytes;
use super::tests::*;
use super::*;
use crate::aas::lease::State;
use crate::aasd::db::Db;
use crate::aasd::ops::Local;
use crate::log::{self, Level};

/// What one datagram did.
struct Outcome {
    reply: Option<Reply>,
    lines: Vec<(Level, String)>,
}

impl Outcome {
    fn decoded(&self) -> Decoded {
        let reply = self.reply.as_ref();
        decode(
            &reply
                .unwrap_or_else(|| panic!("no reply: {:?}", self.lines))
                .bytes,
        )
    }
    fn count(&self, needle: &str) -> usize {
        self.lines
            .iter()
            .filter(|(_, l)| l.contains(needle))
            .count()
    }
}

fn run_with(conf: &str, aas: &mut Local, bytes: &[u8]) -> Outcome {
    let conf = cfg(conf);
    let at = arrival();
    let (reply, lines) = log::capture(|| handle(bytes, &at, &conf, aas));
    for (_, l) in &lines {
        assert!(!l.chars().any(char::is_control), "raw bytes logged: {l:?}");
    }
    Outcome { reply, lines }
}

/// The static configuration, with an AAS that has no pools.
fn run(bytes: &[u8]) -> Outcome {
    let mut aas = Local::new(Db::new(Vec::new()), NOW);
    let out = run_with(CONF, &mut aas, bytes);
    assert!(aas.asked.is_empty(), "{:?}", aas.asked);
    out
}

/// Dropped: no reply, exactly one debug line naming the source, the xid,
/// the chaddr and `reason`, and nothing asked of the AAS (pools exist).
fn assert_dropped(bytes: &[u8], reason: &str) {
    let mut aas = pool_aas();
    let out = run_with(DYN_CONF, &mut aas, bytes);
    assert!(out.reply.is_none(), "{reason}: answered");
    assert_eq!(out.lines.len(), 1, "{reason}: {:?}", out.lines);
    let (level, line) = &out.lines[0];
    assert_eq!(*level, Level::Debug, "{line}");
    assert!(line.starts_with("drop from 0.0.0.0:68 xid 0x"), "{line}");
    assert!(line.contains(reason), "want {reason:?} in {line:?}");
    assert!(aas.asked.is_empty(), "{reason}: asked {:?}", aas.asked);
}

fn dyn_discover(mac: [u8; 6], extra: &[u8]) -> Vec<u8> {
    let mut o = vec![53, 1, 1];
    o.extend_from_slice(extra);
    request_bytes(mac, &o)
}

fn offered(aas: &mut Local, bytes: &[u8]) -> Option<Ipv4Addr> {
    let out = run_with(DYN_CONF, aas, bytes);
    out.reply
        .map(|r| decode(&r.bytes))
        .and_then(|d| (d.message_type() == 2 || d.message_type() == 5).then_some(d.yiaddr))
}

// Framing

#[test]
fn case_01_short_long_and_cookie_only_datagrams() {
    for n in [0, 1, 235, 239] {
        assert_dropped(&vec![1u8; n], &format!("short packet ({n} bytes"));
    }
    // 240 bytes: the cookie and nothing else is BOOTP, served for an entry.
    let mut b = request_bytes(MAC, &[]);
    b.truncate(240);
    let out = run(&b);
    assert_eq!(out.decoded().yiaddr, PINNED);
    // The largest UDP payload: answered, and the reply stays within 576.
    let mut big = discover(&[55, 2, 1, 3]);
    big.resize(65_507, 0);
    let r = run(&big).decoded();
    assert_eq!(r.message_type(), 2);
    assert!(r.len <= 576, "{}", r.len);
}

#[test]
fn case_02_rfc951_bootp_frames_are_never_parsed_as_options() {
    // A zero cookie followed by bytes that look like DISCOVER options.
    let mut b = bootp_request(MAC, false);
    b[240..243].copy_from_slice(&[53, 1, 1]);
    let r = run(&b).decoded_bootp();
    assert_eq!(r, PINNED, "served as BOOTP, not as a DISCOVER");
    // A wrong cookie: the same.
    let mut b = bootp_request(MAC, false);
    b[236..243].copy_from_slice(&[1, 2, 3, 4, 53, 1, 1]);
    let out = run(&b);
    assert_eq!(&out.reply.as_ref().unwrap().bytes[16..20], &PINNED.octets());
    // Unknown BOOTP clients get nothing without bootp_dynamic.
    assert!(run(&bootp_request(OTHER_MAC, false)).reply.is_none());
}

impl Outcome {
    /// yiaddr of a reply that need not carry a cookie.
    fn decoded_bootp(&self) -> Ipv4Addr {
        packet::addr(&self.reply.as_ref().expect("a reply").bytes, 16)
    }
}

#[test]
fn case_03_and_27_replies_and_unknown_ops_on_the_server_port() {
    for op in [2, 0, 7] {
        let mut b = discover(&[]);
        b[0] = op;
        assert_dropped(&b, &format!("op {op} is not BOOTREQUEST"));
    }
    // A rogue server's OFFER and ACK: dropped, never learned.
    for kind in [2, 5] {
        let mut b = request_bytes(MAC, &[53, 1, kind, 54, 4, 10, 77, 0, 9]);
        b[0] = 2;
        assert_dropped(&b, "op 2 is not BOOTREQUEST");
    }
}

#[test]
fn case_04_hardware_address_fields() {
    let mut b = discover(&[]);
    b[2] = 200;
    assert_dropped(&b, "hlen 200 > 16");
    let mut b = discover(&[]);
    b[2] = 0;
    assert_dropped(&b, "hlen 0 and no client identifier");
    // An unknown htype with hlen <= 16 is served, keyed by htype + chaddr.
    let mut aas = pool_aas();
    let mut b = dyn_discover(DYN_MAC, &[]);
    b[1] = 99;
    assert_eq!(offered(&mut aas, &b), Some(FIRST));
    assert!(
        aas.asked[0].contains(" 10.77.0.0/99/02:77:00:00:00:21 "),
        "{:?}",
        aas.asked
    );
}

#[test]
fn case_05_hops_and_giaddr() {
    let mut b = discover(&[]);
    b[3] = 17;
    assert_dropped(&b, "hops 17 > 16");
    for g in ["255.255.255.255", "0.1.2.3", "127.0.0.1"] {
        let mut b = discover(&[]);
        set_ip(&mut b, 24, g.parse().unwrap());
        assert_dropped(&b, &format!("giaddr {g} is not a relay address"));
    }
    let mut b = discover(&[]);
    set_ip(&mut b, 24, SRV);
    assert_dropped(&b, "giaddr 10.77.0.1 is ours (relay loop)");
}

#[test]
fn case_06_option_walks() {
    // A length past the end: dropped.
    assert_dropped(
        &request_bytes(MAC, &[53, 1, 1, 12, 200, 1]),
        "option 12 at offset 243 runs past the end",
    );
    // No END: served.
    let mut b = discover(&[]);
    b.pop();
    assert_eq!(run(&b).decoded().message_type(), 2);
    // Bytes after END are not options (a second 53 there is no repeat).
    let mut b = discover(&[]);
    b.extend_from_slice(&[53, 1, 3, 61, 0]);
    assert_eq!(run(&b).decoded().message_type(), 2);
    // 2,000 PADs, then the options.
    let mut o = vec![0u8; 2000];
    o.extend_from_slice(&[53, 1, 1]);
    assert_eq!(run(&request_bytes(MAC, &o)).decoded().message_type(), 2);
    // END inside sname, with overload: the walk stops there.
    let mut b = discover(&[52, 1, 2]);
    b[44] = 255;
    b[45..48].copy_from_slice(&[53, 1, 3]);
    assert_eq!(run(&b).decoded().message_type(), 2);
}

#[test]
fn case_07_overloaded_fields() {
    // 52 = 3: file, then sname. Option 60 split across them matches the
    // vendor class joined ("PXE" in file + "Client" in sname).
    let conf = format!("{CONF}[vendor_class PXEClient]\nboot_file = /pxe.0\n");
    let mut b = discover(&[52, 1, 3]);
    b[108..113].copy_from_slice(&[60, 3, b'P', b'X', b'E']);
    b[113] = 255;
    b[44..52].copy_from_slice(&[60, 6, b'C', b'l', b'i', b'e', b'n', b't']);
    b[52] = 255;
    let mut aas = Local::new(Db::new(Vec::new()), NOW);
    let out = run_with(&conf, &mut aas, &b);
    assert_eq!(out.decoded().file, b"/pxe.0");
    // A 52 inside file is not followed (no recursion): sname stays unread.
    let mut b = discover(&[52, 1, 1]);
    b[108..111].copy_from_slice(&[52, 1, 2]);
    b[111] = 255;
    b[44..47].copy_from_slice(&[53, 1, 3]);
    assert_eq!(run(&b).decoded().message_type(), 2);
    // 52 with a bad length or value: ignored, fields not walked.
    for o in [&[52u8, 2, 1, 1][..], &[52, 1, 9]] {
        let mut b = discover(o);
        b[108..111].copy_from_slice(&[53, 1, 3]);
        assert_eq!(run(&b).decoded().message_type(), 2, "{o:?}");
    }
}

// Options

#[test]
fn case_08_a_bad_option_does_not_hide_later_ones() {
    // A host name that is not UTF-8 before the client identifier.
    let id = [61, 7, 1, 2, 0x77, 0, 0, 0, 0x10];
    let mut o = vec![12, 3, 0xff, 0xfe, 0x00];
    o.extend_from_slice(&id);
    let r = run(&discover(&o)).decoded();
    assert_eq!(r.opt(61), Some(&id[2..]));
    // A bad 50 before 54 is case 10: the packet is dropped, never served
    // without its server identifier.
    assert_dropped(
        &request(MAC, &[50, 3, 10, 77, 0, 54, 4, 10, 77, 0, 1]),
        "option 50 has bad length 3",
    );
    // A bad option before the relay's 82: 82 still echoed.
    let agent = [82, 4, 1, 2, 0xaa, 0xbb];
    let mut o = vec![57, 1, 9];
    o.extend_from_slice(&agent);
    let mut b = relayed(1, Ipv4Addr::new(10, 78, 0, 1), &o);
    b[3] = 1;
    let r = run(&b).decoded();
    assert_eq!(r.opt(82), Some(&agent[2..]));
}

#[test]
fn case_09_message_type() {
    for o in [
        &[53u8, 0][..],
        &[53, 2, 1, 1],
        &[53, 1, 1, 53, 1, 1],
        &[53, 1, 0],
        &[53, 1, 19],
        &[53, 1, 200],
    ] {
        assert_dropped(&request_bytes(DYN_MAC, o), "bad message type");
    }
    // No 53 at all is BOOTP: with bootp_dynamic off, no address.
    let mut aas = pool_aas();
    assert!(offered(&mut aas, &bootp_request(DYN_MAC, true)).is_none());
    assert!(aas.asked.is_empty());
}

#[test]
fn case_10_fixed_size_options_of_the_wrong_length() {
    assert_dropped(
        &request(MAC, &[50, 5, 10, 77, 0, 50, 1]),
        "option 50 has bad length 5",
    );
    assert_dropped(
        &request(MAC, &[54, 2, 10, 77]),
        "option 54 has bad length 2",
    );
    // The others: that option alone is ignored, with a line, and the
    // request is answered.
    for o in [
        &[51u8, 2, 0, 1][..],
        &[57, 1, 9],
        &[52, 2, 1, 1],
        &[1, 3, 255, 255, 0],
        &[118, 3, 10, 77, 0],
    ] {
        let out = run(&discover(o));
        assert_eq!(out.decoded().message_type(), 2, "{o:?}");
        let why = format!("option {} has bad length {}", o[0], o[1]);
        assert_eq!(out.count(&why), 1, "{why}: {:?}", out.lines);
    }
}

#[test]
fn case_11_client_identifier_lengths() {
    assert_dropped(&discover(&[61, 0]), "option 61 has bad length 0");
    assert_dropped(&discover(&[61, 1, 1]), "option 61 has bad length 1");
    // 255 bytes, and 300 bytes in two instances (RFC 3396): matched byte
    // for byte against a client entry, and echoed unchanged (300 bytes
    // only fit a client that takes more than 576, option 57).
    for len in [255usize, 300] {
        let id: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut o = vec![53, 1, 1, 57, 2, 5, 220];
        for piece in id.chunks(255) {
            o.extend_from_slice(&[61, piece.len() as u8]);
            o.extend_from_slice(piece);
        }
        let conf = format!(
            "[subnet 10.77.0.0/24]\n[client id:{}]\nip_address = 10.77.0.60\n",
            hex(&id, ":")
        );
        let mut aas = Local::new(Db::new(Vec::new()), NOW);
        let r = run_with(&conf, &mut aas, &request_bytes(OTHER_MAC, &o)).decoded();
        assert_eq!(r.yiaddr, Ipv4Addr::new(10, 77, 0, 60), "{len}");
        assert_eq!(r.opt(61), Some(&id[..]), "{len}");
    }
    // A dynamic client's identifier is one hex word on the AAS line.
    let id = [1u8, 0xde, 0xad, 0x0a, 0x25];
    let mut o = vec![61, 5];
    o.extend_from_slice(&id);
    let mut aas = pool_aas();
    run_with(DYN_CONF, &mut aas, &dyn_discover(DYN_MAC, &o)).decoded();
    assert!(
        aas.asked[0].contains(" 10.77.0.0/id/01dead0a25 "),
        "{:?}",
        aas.asked
    );
    // An identifier too long for an AAS key (over 120 bytes): one line,
    // nothing allocated.
    let mut o = vec![61, 200];
    o.extend_from_slice(&[7; 200]);
    let mut aas = pool_aas();
    let out = run_with(DYN_CONF, &mut aas, &dyn_discover(DYN_MAC, &o));
    assert!(out.reply.is_none());
    assert_eq!(out.count("client identifier longer than the AAS takes"), 1);
    assert!(aas.asked.is_empty());
}

#[test]
fn case_12_repeated_options() {
    // 61 in two pieces matches the entry for the whole identifier.
    let conf = "[subnet 10.77.0.0/24]\n[client id:01:aa:bb:cc]\nip_address = 10.77.0.60\n";
    let b = request_bytes(OTHER_MAC, &[53, 1, 1, 61, 2, 1, 0xaa, 61, 2, 0xbb, 0xcc]);
    let mut aas = Local::new(Db::new(Vec::new()), NOW);
    let r = run_with(conf, &mut aas, &b).decoded();
    assert_eq!(r.yiaddr, Ipv4Addr::new(10, 77, 0, 60));
    assert_eq!(r.opt(61), Some(&[1, 0xaa, 0xbb, 0xcc][..]));
    // 77 in two pieces matches the user class joined.
    let conf = format!("{CONF}[user_class lab]\nboot_file = /lab.0\n");
    let b = discover(&[77, 2, b'l', b'a', 77, 1, b'b']);
    let mut aas = Local::new(Db::new(Vec::new()), NOW);
    assert_eq!(run_with(&conf, &mut aas, &b).decoded().file, b"/lab.0");
    // 54 or 50 twice: dropped.
    assert_dropped(
        &request(MAC, &[54, 4, 10, 77, 0, 1, 54, 4, 10, 77, 0, 1]),
        "option 54 appears twice",
    );
    assert_dropped(
        &request(MAC, &[50, 4, 10, 77, 0, 50, 50, 4, 10, 77, 0, 50]),
        "option 50 appears twice",
    );
}

/// A configuration whose options fill far more than 576 bytes.
fn bulky_conf() -> String {
    let long = "x".repeat(250);
    CONF.replace(
        "ntp_servers = 10.77.0.123\n",
        &format!("ntp_servers = 10.77.0.123\nroot_path = {long}\nmerit_dump = {long}\nextensions_path = {long}\n"),
    )
}

#[test]
fn case_13_maximum_message_size() {
    let conf = bulky_conf();
    let ask_size = |size: u16, mtu: usize| {
        let [hi, lo] = size.to_be_bytes();
        let b = discover(&[57, 2, hi, lo, 55, 4, 1, 17, 14, 18]);
        let mut aas = Local::new(Db::new(Vec::new()), NOW);
        let conf = cfg(&conf);
        let mut at = arrival();
        at.mtu = mtu;
        log::capture(|| handle(&b, &at, &conf, &mut aas))
    };
    for size in [0, 1, 100, 575] {
        let (reply, lines) = ask_size(size, 1500);
        let bytes = reply.expect("an offer").bytes;
        assert!(bytes.len() <= 576, "57 = {size}: {} bytes", bytes.len());
        assert!(
            lines
                .iter()
                .any(|(_, l)| l.contains("did not fit in packet")),
            "{lines:?}"
        );
    }
    let (reply, _) = ask_size(9000, 1000);
    assert!(reply.unwrap().bytes.len() <= 1000, "capped at the MTU");
}

#[test]
fn case_14_parameter_request_lists() {
    let r = run(&discover(&[55, 0])).decoded();
    assert_eq!(r.message_type(), 2);
    let mut list: Vec<u8> = (0..=255).collect();
    list.truncate(200);
    list.extend_from_slice(&[3, 3, 1, 255, 0, 6, 1]);
    let mut o = vec![55, list.len() as u8];
    o.extend_from_slice(&list);
    let conf = bulky_conf();
    let mut aas = Local::new(Db::new(Vec::new()), NOW);
    let out = run_with(&conf, &mut aas, &discover(&o));
    let r = out.decoded();
    let codes = r.codes();
    let mut seen = codes.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), codes.len(), "each option once: {codes:?}");
    assert!(!codes.contains(&0) && !codes.contains(&255));
    assert!((300..=576).contains(&r.len), "{}", r.len);
    // Requested options come in the requested order (1 before 3 before 6).
    let pos = |c| codes.iter().position(|&x| x == c).unwrap();
    assert!(pos(1) < pos(3) && pos(3) < pos(6), "{codes:?}");
}

/// DISCOVER then REQUEST, both asking for `secs` (option 51): the
/// lease in the ACK and the AAS line that leased it.
fn ask_lease(conf: &str, secs: u32) -> (Option<u32>, String) {
    let mut aas = pool_aas();
    let mut o = vec![51, 4];
    o.extend_from_slice(&secs.to_be_bytes());
    let offer = run_with(conf, &mut aas, &dyn_discover(DYN_MAC, &o)).decoded();
    let mut sel = selecting(DYN_MAC, offer.yiaddr);
    sel.pop();
    sel.extend_from_slice(&o);
    sel.push(255);
    let ack = run_with(conf, &mut aas, &sel).decoded();
    let lease = ack
        .opt(51)
        .map(|v| u32::from_be_bytes(v.try_into().unwrap()));
    (lease, aas.asked.last().unwrap().clone())
}

#[test]
fn case_15_lease_times_are_capped_without_overflow() {
    // max_lease_time = 5000, pad_lease = 10 %.
    assert_eq!(ask_lease(DYN_CONF, u32::MAX).0, Some(5000));
    assert_eq!(ask_lease(DYN_CONF, 6000).0, Some(5000));
    let (lease, line) = ask_lease(DYN_CONF, 4000);
    assert_eq!(lease, Some(4000));
    assert!(line.contains(" 4400 exact="), "{line}");
    // 0 and 1 second are raised to the floor of a minute.
    assert_eq!(ask_lease(DYN_CONF, 0).0, Some(60));
    assert_eq!(ask_lease(DYN_CONF, 1).0, Some(60));
    // An infinite maximum keeps an infinite lease infinite, padding too.
    let conf = DYN_CONF.replace("max_lease_time = 5000", "max_lease_time = infinite");
    let (lease, line) = ask_lease(&conf, u32::MAX);
    assert_eq!(lease, Some(u32::MAX));
    assert!(line.contains(" infinite exact="), "{line}");
    // A lease just short of infinite, padded, saturates below "infinite".
    let (lease, line) = ask_lease(&conf, u32::MAX - 1);
    assert_eq!(lease, Some(u32::MAX - 1));
    assert!(line.contains(" 4294967294 exact="), "{line}");
}

#[test]
fn case_16_hostile_text_options_are_escaped_not_fatal() {
    let nasty: &[&[u8]] = &[
        b"a\0b",
        b"line\nbreak",
        b"%s%n%x",
        b"\x1b[31mred",
        &[0xff, 0xfe, 0x80],
        &[0x41; 255],
    ];
    for text in nasty {
        for code in [12u8, 60, 77] {
            let mut o = vec![code, text.len() as u8];
            o.extend_from_slice(text);
            let mut aas = pool_aas();
            let out = run_with(DYN_CONF, &mut aas, &dyn_discover(DYN_MAC, &o));
            assert_eq!(out.decoded().yiaddr, FIRST, "{code}: {text:?}");
            for line in &aas.asked {
                assert!(!line.chars().any(char::is_control), "{line:?}");
            }
        }
    }
    // FQDN (81): an empty label, a label over 63 bytes: the packet is served.
    let mut long = vec![81, 0, 1, 0, 0, 64];
    long.extend_from_slice(&[b'a'; 64]);
    long.push(0);
    long[1] = (long.len() - 2) as u8;
    for o in [&[81u8, 6, 1, 0, 0, 0, 0, 0][..], &long] {
        let mut aas = pool_aas();
        let out = run_with(DYN_CONF, &mut aas, &dyn_discover(DYN_MAC, o));
        assert_eq!(out.decoded().yiaddr, FIRST);
    }
}

#[test]
fn case_17_requested_addresses_that_are_never_leased() {
    let bad = [
        "0.0.0.0",
        "255.255.255.255",
        "10.77.0.0",
        "10.77.0.255",
        "10.77.0.1",
        "10.77.0.50",
        "10.99.0.5",
    ];
    for a in bad {
        let ip: Ipv4Addr = a.parse().unwrap();
        let o = ip.octets();
        // DISCOVER: the hint is ignored, a pool address offered.
        let mut aas = pool_aas();
        let hint = [50, 4, o[0], o[1], o[2], o[3]];
        assert_eq!(
            offered(&mut aas, &dyn_discover(DYN_MAC, &hint)),
            Some(FIRST),
            "{a}"
        );
        // REQUEST (INIT-REBOOT) from a client with a lease: NAK, and
        // nothing leased (RFC 2131 §4.3.2: a wrong network or a wrong
        // notion of its address).
        let mut aas = pool_aas();
        dyn_ask(&mut aas, &request_bytes(DYN_MAC, &[53, 1, 1])).unwrap();
        dyn_ask(&mut aas, &selecting(DYN_MAC, FIRST)).unwrap();
        let out = run_with(DYN_CONF, &mut aas, &request(DYN_MAC, &hint));
        assert_eq!(out.decoded().message_type(), 6, "{a}");
        assert!(state_of(&aas, ip).is_none(), "{a} leased");
        assert_eq!(state_of(&aas, FIRST).unwrap().1, DYN_KEY, "{a}");
    }
}

#[test]
fn case_18_option_82_from_a_client_is_not_trusted() {
    // Link selection naming 10.78.0.0, where this client has its entry,
    // from a client on 10.77.0.0/24: not used, so no answer.
    let b = {
        let mut b = relayed(1, Ipv4Addr::UNSPECIFIED, &[82, 6, 5, 4, 10, 78, 0, 1]);
        b[3] = 0;
        b
    };
    let mut aas = Local::new(Db::new(Vec::new()), NOW);
    let first = run_with(CONF, &mut aas, &b);
    assert!(first.reply.is_none());
    assert_eq!(first.count("option 82 from client"), 1, "{:?}", first.lines);
    // The same client again within the minute: not logged again.
    let conf = cfg(CONF);
    let at = arrival();
    let (_, lines) = log::capture(|| {
        handle(&b, &at, &conf, &mut aas);
        handle(&b, &at, &conf, &mut aas)
    });
    let again = lines
        .iter()
        .filter(|(_, l)| l.contains("option 82 from client"));
    assert_eq!(again.count(), 0, "{lines:?}");
}

#[test]
fn case_19_option_82_is_echoed_byte_for_byte() {
    let agents: [&[u8]; 4] = [
        &[82, 5, 1, 9, b'a', b'b', b'c'], // a sub-option that overruns
        &[82, 4, 2, 0, 1, 0],             // zero-length sub-options
        &[82, 9, 2, 1, b'x', 1, 1, b'y', 1, 1, b'z'], // unordered, repeated
        &[82, 5, 5, 3, 10, 78, 0],        // 82.5 of length 3
    ];
    for agent in agents {
        let mut agent = agent.to_vec();
        agent[1] = (agent.len() - 2) as u8;
        let b = relayed(1, Ipv4Addr::new(10, 78, 0, 1), &agent);
        let r = run(&b).decoded();
        assert_eq!(r.opt(82), Some(&agent[2..]), "{agent:?}");
        assert_eq!(r.giaddr, Ipv4Addr::new(10, 78, 0, 1));
    }
}

#[test]
fn case_20_no_subnet_for_the_request() {
    let unserved = [10, 99, 0, 1];
    let mut link = vec![82, 6, 5, 4];
    link.extend_from_slice(&unserved);
    let mut sel = vec![118, 4];
    sel.extend_from_slice(&unserved);
    for o in [link, sel] {
        let out = run(&relayed(1, Ipv4Addr::new(10, 78, 0, 1), &o));
        assert!(out.reply.is_none());
        assert_eq!(out.count("no subnet for"), 1, "{:?}", out.lines);
    }
    for kind in [3u8, 8] {
        let mut b = request_bytes(OTHER_MAC, &[53, 1, kind]);
        set_ip(&mut b, 12, Ipv4Addr::new(10, 99, 0, 7));
        let out = run(&b);
        assert!(out.reply.is_none(), "{kind}");
        assert_eq!(out.count("no subnet for"), 1, "{:?}", out.lines);
    }
}

#[test]
fn case_21_vendor_suboptions_are_not_interpreted() {
    let r = run(&discover(&[43, 4, 1, 200, 2, 9, 125, 3, 0, 0, 9])).decoded();
    assert_eq!(r.message_type(), 2);
}

// Protocol misuse and attacks

#[test]
fn case_22_requests_naming_servers() {
    // Our identifier with an address never offered to this client: NAK.
    let mut aas = pool_aas();
    let out = run_with(DYN_CONF, &mut aas, &selecting(DYN_MAC, FIRST));
    assert_eq!(out.decoded().message_type(), 6);
    assert!(state_of(&aas, FIRST).is_none(), "nothing leased");
    // Another server's identifier: our reservation is released, no NAK.
    let mut aas = pool_aas();
    assert_eq!(offered(&mut aas, &dyn_discover(DYN_MAC, &[])), Some(FIRST));
    let other = request_bytes(
        DYN_MAC,
        &[53, 1, 3, 50, 4, 10, 77, 0, 100, 54, 4, 10, 77, 0, 9],
    );
    assert!(run_with(DYN_CONF, &mut aas, &other).reply.is_none());
    assert_eq!(state_of(&aas, FIRST).map(|s| s.0), Some(State::Free));
}

#[test]
fn case_23_spoofed_release_and_decline_leave_the_lease() {
    let mut aas = pool_aas();
    offered(&mut aas, &dyn_discover(DYN_MAC, &[])).unwrap();
    run_with(DYN_CONF, &mut aas, &selecting(DYN_MAC, FIRST)).decoded();
    let held = state_of(&aas, FIRST);
    assert_eq!(held.as_ref().map(|s| s.0), Some(State::Leased));
    let spoofer = [0x02, 0x77, 0, 0, 0, 0x66];
    // RELEASE of someone else's address (ciaddr).
    let mut rel = request_bytes(spoofer, &[53, 1, 7, 54, 4, 10, 77, 0, 1]);
    set_ip(&mut rel, 12, FIRST);
    let out = run_with(DYN_CONF, &mut aas, &rel);
    assert!(out.reply.is_none());
    assert_eq!(
        out.count("DHCPRELEASE of 10.77.0.100 from 02:77:00:00:00:66: 10.77.0.100 is not held"),
        1,
        "{:?}",
        out.lines
    );
    // DECLINE of it.
    let o = FIRST.octets();
    let dec = request_bytes(spoofer, &[53, 1, 4, 50, 4, o[0], o[1], o[2], o[3]]);
    let out = run_with(DYN_CONF, &mut aas, &dec);
    assert!(out.reply.is_none());
    assert_eq!(
        out.count("DHCPDECLINE of 10.77.0.100 from 02:77:00:00:00:66: 10.77.0.100 is not held"),
        1,
        "{:?}",
        out.lines
    );
    // RELEASE by the holder naming another server: not ours to act on.
    let mut rel = request_bytes(DYN_MAC, &[53, 1, 7, 54, 4, 10, 77, 0, 9]);
    set_ip(&mut rel, 12, FIRST);
    run_with(DYN_CONF, &mut aas, &rel);
    assert_eq!(state_of(&aas, FIRST), held, "the lease is untouched");
}

#[test]
fn case_24_a_discover_flood_holds_addresses_only_for_lease_res_time() {
    let mut aas = pool_aas();
    // The pool has three addresses; a holder first.
    offered(&mut aas, &dyn_discover(DYN_MAC, &[])).unwrap();
    run_with(DYN_CONF, &mut aas, &selecting(DYN_MAC, FIRST)).decoded();
    let mut offers = 0;
    let mut lines = Vec::new();
    for n in 0..1000u32 {
        let mac = [0x02, 0x66, 0, (n >> 16) as u8, (n >> 8) as u8, n as u8];
        let out = run_with(DYN_CONF, &mut aas, &dyn_discover(mac, &[]));
        offers += usize::from(out.reply.is_some());
        lines.extend(out.lines);
    }
    assert_eq!(offers, 2, "the two free addresses, then none");
    let warnings = lines
        .iter()
        .filter(|(_, l)| l.contains("pool Dyn exhausted: DHCPDISCOVER"));
    assert_eq!(warnings.count(), 1, "one warning a minute");
    // The holder still renews.
    let mut renew = request_bytes(DYN_MAC, &[53, 1, 3]);
    set_ip(&mut renew, 12, FIRST);
    assert_eq!(
        run_with(DYN_CONF, &mut aas, &renew)
            .decoded()
            .message_type(),
        5
    );
    // lease_res_time (10 s) later the reservations are over.
    aas.now += 11;
    assert!(offered(&mut aas, &dyn_discover([0x02, 0x55, 0, 0, 0, 1], &[])).is_some());
}

#[test]
fn case_26_a_renewal_storm_does_not_grow_the_journal() {
    let mut aas = pool_aas();
    offered(&mut aas, &dyn_discover(DYN_MAC, &[])).unwrap();
    run_with(DYN_CONF, &mut aas, &selecting(DYN_MAC, FIRST)).decoded();
    let seq = aas.db.seq();
    let mut renew = request_bytes(DYN_MAC, &[53, 1, 3]);
    set_ip(&mut renew, 12, FIRST);
    for _ in 0..1000 {
        assert_eq!(
            run_with(DYN_CONF, &mut aas, &renew)
                .decoded()
                .message_type(),
            5
        );
    }
    assert!(aas.db.seq() - seq <= 1, "{} records", aas.db.seq() - seq);
}

#[test]
fn case_29_everything_above_logs_printable_lines_at_debug_level() {
    // run_with checks every captured line (captured at every level, as
    // -D 3) for raw control characters; this adds a packet printer sweep:
    // every single-byte option value for the options we read.
    for code in [1u8, 12, 50, 51, 52, 53, 54, 55, 57, 60, 61, 77, 81, 82, 118] {
        for v in [0u8, 1, 0x0a, 0x1b, 0x7f, 0xff] {
            let _ = run_with(
                DYN_CONF,
                &mut pool_aas(),
                &dyn_discover(DYN_MAC, &[code, 1, v]),
            );
        }
    }
}
