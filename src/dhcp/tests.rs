//! Whole exchanges through `handle`: configuration text in, request bytes
//! in, reply bytes and destination out. No sockets.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::packet::{tests::request_bytes, MAGIC_COOKIE};
use super::*;
use crate::aas::lease::{Pool, State};
use crate::aasd::db::Db;
use crate::aasd::ops::Local;
use crate::config;

pub(super) const MAC: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x10];
pub(super) const OTHER_MAC: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x99];
pub(super) const SRV: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub(super) const PINNED: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 50);

pub(super) const CONF: &str = "\
[server]
[global]
domain_name = example.test
domain_name_servers = 10.77.0.53, 10.77.0.54
ntp_servers = 10.77.0.123
[subnet 10.77.0.0/24]
routers = 10.77.0.1
[subnet 10.78.0.0/24]
routers = 10.78.0.1
[client 02:77:00:00:00:10]
ip_address = 10.77.0.50
host_name = cli0
[client 02:78:00:00:00:10]
ip_address = 10.78.0.50
";

pub(super) fn cfg(text: &str) -> Config {
    config::parse(text, "test.conf").unwrap_or_else(|e| panic!("{e:?}"))
}

pub(super) const OWN: [Ipv4Addr; 2] = [SRV, Ipv4Addr::LOCALHOST];

pub(super) fn arrival() -> Arrival<'static> {
    Arrival {
        src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        ifname: "srv0",
        local: SRV,
        iface_addrs: &OWN[..1],
        own_addrs: &OWN,
        mtu: 1500,
    }
}

/// A decoded reply: header fields and options (main area, then file and
/// sname when overloaded), each option once with its pieces joined.
pub(super) struct Decoded {
    pub(super) op: u8,
    pub(super) flags: u16,
    pub(super) ciaddr: Ipv4Addr,
    pub(super) yiaddr: Ipv4Addr,
    pub(super) siaddr: Ipv4Addr,
    pub(super) giaddr: Ipv4Addr,
    pub(super) file: Vec<u8>,
    pub(super) options: Vec<(u8, Vec<u8>)>,
    pub(super) len: usize,
}

impl Decoded {
    pub(super) fn opt(&self, code: u8) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|o| o.0 == code)
            .map(|o| o.1.as_slice())
    }
    pub(super) fn codes(&self) -> Vec<u8> {
        self.options.iter().map(|o| o.0).collect()
    }
    pub(super) fn message_type(&self) -> u8 {
        self.opt(53).unwrap()[0]
    }
}

fn walk(b: &[u8], mut at: usize, end: usize, out: &mut Vec<(u8, Vec<u8>)>) {
    while at < end && b[at] != 255 {
        if b[at] == 0 {
            at += 1;
            continue;
        }
        let len = b[at + 1] as usize;
        let v = b[at + 2..at + 2 + len].to_vec();
        match out.iter_mut().find(|o| o.0 == b[at]) {
            Some(o) => o.1.extend(v),
            None => out.push((b[at], v)),
        }
        at += 2 + len;
    }
}

pub(super) fn decode(b: &[u8]) -> Decoded {
    assert_eq!(&b[236..240], &MAGIC_COOKIE);
    let ip = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
    let mut options = Vec::new();
    walk(b, 240, b.len(), &mut options);
    let overload = options.iter().find(|o| o.0 == 52).map_or(0, |o| o.1[0]);
    if overload & 1 != 0 {
        walk(b, 108, 236, &mut options);
    }
    if overload & 2 != 0 {
        walk(b, 44, 108, &mut options);
    }
    let file_end = b[108..236].iter().position(|&c| c == 0).unwrap_or(128);
    Decoded {
        op: b[0],
        flags: u16::from_be_bytes([b[10], b[11]]),
        ciaddr: ip(12),
        yiaddr: ip(16),
        siaddr: ip(20),
        giaddr: ip(24),
        file: b[108..108 + file_end].to_vec(),
        options,
        len: b.len(),
    }
}

/// Static-only tests: an AAS that is never needed (it has no pools).
fn ask(conf: &Config, at: &Arrival, bytes: &[u8]) -> Option<(Decoded, Destination)> {
    let mut aas = Local::new(Db::new(Vec::new()), NOW);
    let r = handle(bytes, at, conf, &mut aas).map(|r| (decode(&r.bytes), r.to));
    assert!(
        aas.asked.is_empty(),
        "static clients need no AAS: {:?}",
        aas.asked
    );
    r
}

pub(super) const NOW: u64 = 1_800_000_000;

pub(super) fn discover(extra: &[u8]) -> Vec<u8> {
    let mut o = vec![53, 1, 1];
    o.extend_from_slice(extra);
    request_bytes(MAC, &o)
}

pub(super) fn request(mac: [u8; 6], extra: &[u8]) -> Vec<u8> {
    let mut o = vec![53, 1, 3];
    o.extend_from_slice(extra);
    request_bytes(mac, &o)
}

pub(super) fn set_ip(b: &mut [u8], at: usize, ip: Ipv4Addr) {
    b[at..at + 4].copy_from_slice(&ip.octets());
}

#[test]
fn discover_gets_offer_of_pinned_address() {
    let (r, to) = ask(&cfg(CONF), &arrival(), &discover(&[55, 3, 1, 3, 6])).unwrap();
    assert_eq!(r.op, 2);
    assert_eq!(r.message_type(), 2);
    assert_eq!(r.yiaddr, PINNED);
    assert_eq!(r.opt(54), Some(&SRV.octets()[..]));
    assert_eq!(r.opt(51), Some(&[0xff; 4][..]), "fixed = infinite lease");
    assert_eq!(r.opt(58), None, "no T1 for an infinite lease");
    assert_eq!(r.opt(1), Some(&[255, 255, 255, 0][..]));
    assert_eq!(r.opt(3), Some(&[10, 77, 0, 1][..]));
    assert_eq!(r.opt(6), Some(&[10, 77, 0, 53, 10, 77, 0, 54][..]));
    assert_eq!(r.opt(42), None, "ntp not requested");
    assert!(r.len >= 300);
    assert_eq!(
        to,
        Destination::UnicastNoArp {
            ip: PINNED,
            hw: MAC.to_vec()
        }
    );
}

#[test]
fn request_list_orders_and_filters() {
    let (r, _) = ask(
        &cfg(CONF),
        &arrival(),
        &discover(&[55, 6, 42, 6, 0, 255, 6, 3]),
    )
    .unwrap();
    assert_eq!(r.codes(), [53, 54, 51, 42, 6, 3, 1]);
}

#[test]
fn no_request_list_sends_everything() {
    let (r, _) = ask(&cfg(CONF), &arrival(), &discover(&[])).unwrap();
    for c in [1, 3, 6, 12, 15, 42] {
        assert!(r.opt(c).is_some(), "option {c}");
    }
    assert_eq!(r.opt(12), Some(&b"cli0"[..]));
}

#[test]
fn unknown_client_gets_nothing() {
    let b = request_bytes(OTHER_MAC, &[53, 1, 1]);
    assert!(ask(&cfg(CONF), &arrival(), &b).is_none());
}

#[test]
fn precedence_global_subnet_vendor_user_client() {
    let conf = |subnet: &str, client: &str| {
        cfg(&format!(
            "[global]\ndomain_name = g\n[subnet 10.77.0.0/24]\n{subnet}\
             [vendor_class MSFT 5.0]\ndomain_name = v\n[user_class eng]\ndomain_name = u\n\
             [client 02:77:00:00:00:10]\nip_address = 10.77.0.50\n{client}"
        ))
    };
    let domain = |c: &Config, extra: &[u8]| {
        let mut o = vec![55, 1, 15];
        o.extend_from_slice(extra);
        let (r, _) = ask(c, &arrival(), &discover(&o)).unwrap();
        String::from_utf8(r.opt(15).unwrap().to_vec()).unwrap()
    };
    let vendor = b"\x3c\x08MSFT 5.0";
    let both = b"\x3c\x08MSFT 5.0\x4d\x03eng";
    assert_eq!(domain(&conf("", ""), &[]), "g");
    assert_eq!(domain(&conf("domain_name = s\n", ""), &[]), "s");
    assert_eq!(domain(&conf("domain_name = s\n", ""), vendor), "v");
    assert_eq!(domain(&conf("domain_name = s\n", ""), both), "u");
    assert_eq!(
        domain(&conf("domain_name = s\n", "domain_name = c\n"), both),
        "c"
    );
}

#[test]
fn selecting_request_for_us_is_acked() {
    let (r, _) = ask(
        &cfg(CONF),
        &arrival(),
        &request(MAC, &[54, 4, 10, 77, 0, 1, 50, 4, 10, 77, 0, 50]),
    )
    .unwrap();
    assert_eq!(r.message_type(), 5);
    assert_eq!(r.yiaddr, PINNED);
    assert_eq!(r.ciaddr, Ipv4Addr::UNSPECIFIED);
}

#[test]
fn selecting_request_for_another_server_is_ignored() {
    let b = request(MAC, &[54, 4, 10, 77, 0, 9, 50, 4, 10, 77, 0, 50]);
    assert!(ask(&cfg(CONF), &arrival(), &b).is_none());
}

#[test]
fn init_reboot_for_wrong_address_is_naked_by_broadcast() {
    let b = request(MAC, &[50, 4, 10, 77, 0, 99]);
    let (r, to) = ask(&cfg(CONF), &arrival(), &b).unwrap();
    assert_eq!(r.message_type(), 6);
    assert_eq!(r.yiaddr, Ipv4Addr::UNSPECIFIED);
    assert_eq!(r.opt(51), None);
    assert_eq!(r.opt(54), Some(&SRV.octets()[..]));
    assert_eq!(to, Destination::Broadcast);
}

#[test]
fn init_reboot_on_wrong_network_is_naked() {
    let b = request(MAC, &[50, 4, 10, 78, 0, 50]);
    let (r, _) = ask(&cfg(CONF), &arrival(), &b).unwrap();
    assert_eq!(r.message_type(), 6);
}

#[test]
fn init_reboot_from_unknown_client_is_silent() {
    let b = request(OTHER_MAC, &[50, 4, 10, 77, 0, 60]);
    assert!(ask(&cfg(CONF), &arrival(), &b).is_none());
}

#[test]
fn renewal_is_acked_to_ciaddr() {
    let mut b = request(MAC, &[]);
    set_ip(&mut b, 12, PINNED);
    let mut at = arrival();
    at.src = SocketAddrV4::new(PINNED, 68);
    let (r, to) = ask(&cfg(CONF), &at, &b).unwrap();
    assert_eq!(r.message_type(), 5);
    assert_eq!(r.ciaddr, PINNED);
    assert_eq!(r.yiaddr, PINNED);
    assert_eq!(to, Destination::Unicast(PINNED));
}

#[test]
fn renewal_routed_from_another_link_uses_ciaddr_subnet() {
    // Harness pitfall 8: a unicast renewal from behind a relay arrives with
    // giaddr 0 on srv0; the subnet comes from ciaddr.
    let mut b = request_bytes([0x02, 0x78, 0, 0, 0, 0x10], &[53, 1, 3]);
    let ip = Ipv4Addr::new(10, 78, 0, 50);
    set_ip(&mut b, 12, ip);
    let (r, to) = ask(&cfg(CONF), &arrival(), &b).unwrap();
    assert_eq!(r.message_type(), 5);
    assert_eq!(r.opt(1), Some(&[255, 255, 255, 0][..]));
    assert_eq!(r.opt(3), Some(&[10, 78, 0, 1][..]));
    assert_eq!(to, Destination::Unicast(ip));
}

#[test]
fn inform_gets_options_without_lease() {
    let other = Ipv4Addr::new(10, 77, 0, 77);
    let mut b = request_bytes(OTHER_MAC, &[53, 1, 8, 55, 2, 6, 15]);
    set_ip(&mut b, 12, other);
    let (r, to) = ask(&cfg(CONF), &arrival(), &b).unwrap();
    assert_eq!(r.message_type(), 5);
    assert_eq!(r.yiaddr, Ipv4Addr::UNSPECIFIED);
    assert_eq!(r.ciaddr, other);
    assert_eq!(r.opt(51), None);
    assert_eq!(r.opt(15), Some(&b"example.test"[..]));
    assert_eq!(to, Destination::Unicast(other));
}

#[test]
fn inform_from_nowhere_with_no_ciaddr_is_dropped() {
    let b = request_bytes(OTHER_MAC, &[53, 1, 8, 55, 2, 6, 15]);
    assert!(ask(&cfg(CONF), &arrival(), &b).is_none());
    // From an address, with ciaddr 0: answered to the sender.
    let mut at = arrival();
    let from = Ipv4Addr::new(10, 77, 0, 77);
    at.src = SocketAddrV4::new(from, 68);
    let (r, to) = ask(&cfg(CONF), &at, &b).unwrap();
    assert_eq!(r.message_type(), 5);
    assert_eq!(to, Destination::Unicast(from));
}

#[test]
fn ciaddr_does_not_choose_the_subnet_of_a_discover_or_selecting_request() {
    // RFC 2131 Table 5: ciaddr is 0 in these; 255.255.255.255 or an
    // address of another subnet must not stop the answer.
    let mut aas = pool_aas();
    for ciaddr in [Ipv4Addr::BROADCAST, Ipv4Addr::new(10, 78, 0, 7)] {
        let mut d = request_bytes(DYN_MAC, &[53, 1, 1]);
        set_ip(&mut d, 12, ciaddr);
        let r = dyn_ask(&mut aas, &d).unwrap_or_else(|| panic!("no OFFER, ciaddr {ciaddr}"));
        assert_eq!(
            (r.message_type(), r.yiaddr, r.ciaddr),
            (2, FIRST, Ipv4Addr::UNSPECIFIED)
        );
        let mut q = selecting(DYN_MAC, FIRST);
        set_ip(&mut q, 12, ciaddr);
        let r = dyn_ask(&mut aas, &q).unwrap_or_else(|| panic!("no ACK, ciaddr {ciaddr}"));
        assert_eq!(
            (r.message_type(), r.yiaddr, r.ciaddr),
            (5, FIRST, Ipv4Addr::UNSPECIFIED)
        );
    }
    // The OFFER is broadcast, not sent to 255.255.255.255 as if unicast.
    let mut d = request_bytes(OTHER_MAC, &[53, 1, 1]);
    set_ip(&mut d, 12, Ipv4Addr::BROADCAST);
    d[10] = 0x80;
    let reply = handle(&d, &arrival(), &cfg(DYN_CONF), &mut aas).unwrap();
    assert_eq!(reply.to, Destination::Broadcast);
}

#[test]
fn client_fqdn_comes_back_qualified_with_flags_of_a_server_that_updates_no_dns() {
    // RFC 4702: S asked, wire format, a partial name.
    let fqdn = [81, 8, 0x05, 0, 0, 4, b'h', b'o', b's', b't'];
    let want = b"\x0e\xff\xff\x04host\x07example\x04test\x00";
    let (offer, _) = ask(&cfg(CONF), &arrival(), &discover(&fqdn)).unwrap();
    assert_eq!(offer.opt(81), Some(&want[..]));
    let mut req = vec![54, 4, 10, 77, 0, 1, 50, 4, 10, 77, 0, 50];
    req.extend_from_slice(&fqdn);
    let (ack, _) = ask(&cfg(CONF), &arrival(), &request(MAC, &req)).unwrap();
    assert_eq!((ack.message_type(), ack.opt(81)), (5, Some(&want[..])));
    // Not for a NAK, nor for a client that did not send one.
    let mut wrong = vec![50, 4, 10, 77, 0, 99];
    wrong.extend_from_slice(&fqdn);
    let (nak, _) = ask(&cfg(CONF), &arrival(), &request(MAC, &wrong)).unwrap();
    assert_eq!((nak.message_type(), nak.opt(81)), (6, None));
    let (plain, _) = ask(&cfg(CONF), &arrival(), &discover(&[])).unwrap();
    assert_eq!(plain.opt(81), None);
    // A malformed one is left out; the client is still served.
    let (r, _) = ask(&cfg(CONF), &arrival(), &discover(&[81, 4, 5, 0, 0, 9])).unwrap();
    assert_eq!((r.message_type(), r.opt(81)), (2, None));
}

#[test]
fn release_and_decline_get_no_answer() {
    let mut b = request_bytes(MAC, &[53, 1, 7, 54, 4, 10, 77, 0, 1]);
    set_ip(&mut b, 12, PINNED);
    assert!(ask(&cfg(CONF), &arrival(), &b).is_none());
    let b = request_bytes(MAC, &[53, 1, 4, 50, 4, 10, 77, 0, 50, 54, 4, 10, 77, 0, 1]);
    assert!(ask(&cfg(CONF), &arrival(), &b).is_none());
}

#[test]
fn relayed_discover_goes_to_relay_with_82_echoed_byte_for_byte() {
    // Sub-options out of order and repeated: dhcproto would re-sort them.
    let agent = [82, 10, 2, 2, 0xbb, 0xbb, 1, 2, 0xaa, 0xaa, 2, 0];
    let mut opts = vec![53, 1, 1];
    opts.extend_from_slice(&agent);
    let mut b = request_bytes([0x02, 0x78, 0, 0, 0, 0x10], &opts);
    set_ip(&mut b, 24, Ipv4Addr::new(10, 78, 0, 1));
    b[3] = 1;
    let mut at = arrival();
    at.src = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 2), 67);
    let (r, to) = ask(&cfg(CONF), &at, &b).unwrap();
    assert_eq!(r.yiaddr, Ipv4Addr::new(10, 78, 0, 50));
    assert_eq!(r.giaddr, Ipv4Addr::new(10, 78, 0, 1));
    assert_eq!(r.opt(82), Some(&agent[2..]));
    assert_eq!(*r.codes().last().unwrap(), 82, "82 comes last");
    assert_eq!(r.opt(54), Some(&SRV.octets()[..]));
    assert_eq!(to, Destination::Relay(Ipv4Addr::new(10, 78, 0, 1)));
}

#[test]
fn relayed_nak_sets_broadcast_flag() {
    let mut b = request_bytes(
        [0x02, 0x78, 0, 0, 0, 0x10],
        &[53, 1, 3, 50, 4, 10, 78, 0, 99],
    );
    set_ip(&mut b, 24, Ipv4Addr::new(10, 78, 0, 1));
    let (r, to) = ask(&cfg(CONF), &arrival(), &b).unwrap();
    assert_eq!(r.message_type(), 6);
    assert_eq!(r.flags & 0x8000, 0x8000);
    assert_eq!(to, Destination::Relay(Ipv4Addr::new(10, 78, 0, 1)));
}

#[test]
fn option_82_from_a_client_is_not_echoed() {
    let (r, _) = ask(
        &cfg(CONF),
        &arrival(),
        &discover(&[82, 4, 1, 2, 0xaa, 0xbb]),
    )
    .unwrap();
    assert_eq!(r.opt(82), None);
}

#[test]
fn client_identifier_echoed() {
    let id = [61, 7, 1, 0x02, 0x77, 0, 0, 0, 0x10];
    let (r, _) = ask(&cfg(CONF), &arrival(), &discover(&id)).unwrap();
    assert_eq!(r.opt(61), Some(&id[2..]));
}

#[test]
fn client_matched_by_identifier() {
    let conf = "[subnet 10.77.0.0/24]\n[client id:01:aa:bb]\nip_address = 10.77.0.60\n";
    let b = request_bytes(OTHER_MAC, &[53, 1, 1, 61, 3, 1, 0xaa, 0xbb]);
    let (r, _) = ask(&cfg(conf), &arrival(), &b).unwrap();
    assert_eq!(r.yiaddr, Ipv4Addr::new(10, 77, 0, 60));
}

#[test]
fn options_that_do_not_fit_are_dropped() {
    // A 250-byte root path and another 250-byte option cannot both fit in
    // a 576-byte message.
    let long = "x".repeat(250);
    let conf = format!("{CONF}[global]\n").replace(
        "ntp_servers = 10.77.0.123\n",
        &format!("ntp_servers = 10.77.0.123\nroot_path = {long}\nmerit_dump = {long}\n"),
    );
    let conf = conf.trim_end_matches("[global]\n");
    let (r, _) = ask(&cfg(conf), &arrival(), &discover(&[55, 3, 17, 14, 1])).unwrap();
    assert!(r.opt(17).is_some());
    assert!(r.opt(14).is_none(), "merit dump did not fit");
    assert!(r.len <= 548);
    // A client that accepts 1500 bytes gets both.
    let (r, _) = ask(
        &cfg(conf),
        &arrival(),
        &discover(&[57, 2, 0x05, 0xdc, 55, 3, 17, 14, 1]),
    )
    .unwrap();
    assert!(r.opt(14).is_some() && r.opt(17).is_some());
}

#[test]
fn overload_puts_options_in_file_and_sname() {
    let long = "x".repeat(250);
    let conf = CONF.replace(
        "[server]\n",
        &format!(
            "[server]\noption_overload = yes\n[global]\nroot_path = {long}\nmerit_dump = {}\n",
            "y".repeat(100)
        ),
    );
    let conf = conf.replacen("[global]\ndomain_name", "domain_name", 1);
    let (r, _) = ask(&cfg(&conf), &arrival(), &discover(&[55, 3, 17, 14, 1])).unwrap();
    assert_eq!(r.opt(52), Some(&[1][..]));
    assert_eq!(r.opt(14).map(<[u8]>::len), Some(100));
    assert_eq!(r.opt(17).map(<[u8]>::len), Some(250));
}

#[test]
fn boot_fields_and_vendor_options() {
    let conf = "[subnet 10.77.0.0/24]\nnext_server = 10.77.0.9\nboot_file = pxelinux.0\n\
                [vendor_class PXEClient]\nvendor_option_6 = 08\n\
                [client 02:77:00:00:00:10]\nip_address = 10.77.0.50\n";
    let mut o = vec![55, 1, 43, 60, 9];
    o.extend_from_slice(b"PXEClient");
    let (r, _) = ask(&cfg(conf), &arrival(), &discover(&o)).unwrap();
    assert_eq!(r.siaddr, Ipv4Addr::new(10, 77, 0, 9));
    assert_eq!(r.file, b"pxelinux.0");
    assert_eq!(r.opt(43), Some(&[6, 1, 8][..]));
}

#[test]
fn relay_loop_and_malformed_are_dropped() {
    let mut b = discover(&[]);
    set_ip(&mut b, 24, SRV);
    assert!(ask(&cfg(CONF), &arrival(), &b).is_none());
    for bad in [vec![], vec![1; 239], discover(&[53, 0])] {
        assert!(ask(&cfg(CONF), &arrival(), &bad).is_none());
    }
}

/// A 300-byte BOOTREQUEST: the cookie and END, or an all-zero RFC 951
/// vendor area.
pub(super) fn bootp_request(mac: [u8; 6], cookie: bool) -> Vec<u8> {
    let mut b = request_bytes(mac, &[]);
    if !cookie {
        b[236..].fill(0);
    }
    b.resize(300, 0);
    b
}

#[test]
fn bootp_client_entry_gets_its_address_and_rfc1497_options() {
    let (r, to) = ask(&cfg(CONF), &arrival(), &bootp_request(MAC, true)).unwrap();
    assert_eq!(r.op, 2);
    assert_eq!(r.yiaddr, PINNED);
    assert_eq!(r.len, 300);
    assert_eq!(r.opt(1), Some(&[255, 255, 255, 0][..]));
    assert_eq!(r.opt(3), Some(&[10, 77, 0, 1][..]));
    assert_eq!(r.opt(12), Some(&b"cli0"[..]));
    for dhcp_only in [51, 53, 54, 58, 59] {
        assert_eq!(
            r.opt(dhcp_only),
            None,
            "option {dhcp_only} in a BOOTP reply"
        );
    }
    assert_eq!(
        to,
        Destination::UnicastNoArp {
            ip: PINNED,
            hw: MAC.to_vec()
        }
    );
}

#[test]
fn rfc951_bootp_client_gets_no_vendor_area() {
    let conf = cfg(CONF);
    let mut aas = Local::new(Db::new(Vec::new()), NOW);
    let r = handle(&bootp_request(MAC, false), &arrival(), &conf, &mut aas).unwrap();
    assert_eq!(r.bytes.len(), 300);
    assert_eq!(&r.bytes[16..20], &PINNED.octets());
    assert!(
        r.bytes[236..].iter().all(|&b| b == 0),
        "vendor area left empty"
    );
}

#[test]
fn bootp_unknown_client_gets_nothing() {
    assert!(ask(&cfg(CONF), &arrival(), &bootp_request(OTHER_MAC, true)).is_none());
}

// Dynamic addresses: the same handler with an in-process AAS database.

pub(super) const DYN_CONF: &str = "\
[server]
lease_res_time = 10
pad_lease = 10
decline_time = 600
[global]
lease_time = 1000
max_lease_time = 5000
[subnet 10.77.0.0/24]
pool = Dyn
routers = 10.77.0.1
[client 02:77:00:00:00:10]
ip_address = 10.77.0.50
";

pub(super) fn pool_aas() -> Local {
    let lo = u32::from(Ipv4Addr::new(10, 77, 0, 100));
    Local::new(Db::new(vec![Pool::new("Dyn", vec![(lo, lo + 2)])]), NOW)
}

pub(super) fn dyn_ask(aas: &mut Local, bytes: &[u8]) -> Option<Decoded> {
    handle(bytes, &arrival(), &cfg(DYN_CONF), aas).map(|r| decode(&r.bytes))
}

pub(super) const DYN_MAC: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x21];
pub(super) const DYN_KEY: &str = "10.77.0.0/1/02:77:00:00:00:21";
/// The same client by the client identifier its next boot stage sends.
const DYN_ALIAS: &str = "10.77.0.0/id/01027700000021";
pub(super) const FIRST: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);

pub(super) fn state_of(aas: &Local, ip: Ipv4Addr) -> Option<(State, String, u64)> {
    aas.db
        .get(u32::from(ip))
        .map(|e| (e.state_at(NOW), e.client.clone(), e.end))
}

pub(super) fn selecting(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let o = ip.octets();
    request_bytes(
        mac,
        &[53, 1, 3, 50, 4, o[0], o[1], o[2], o[3], 54, 4, 10, 77, 0, 1],
    )
}

#[test]
fn dynamic_discover_reserves_and_offers_the_lease() {
    let mut aas = pool_aas();
    let r = dyn_ask(&mut aas, &request_bytes(DYN_MAC, &[53, 1, 1])).unwrap();
    assert_eq!(r.message_type(), 2);
    assert_eq!(r.yiaddr, FIRST);
    assert_eq!(r.opt(51), Some(&1000u32.to_be_bytes()[..]));
    assert_eq!(r.opt(58), Some(&500u32.to_be_bytes()[..]));
    assert_eq!(r.opt(59), Some(&875u32.to_be_bytes()[..]));
    assert_eq!(
        aas.asked,
        [format!(
            "ALLOC Dyn dhcp {DYN_KEY} 10 previous alias={DYN_ALIAS} hold"
        )]
    );
    assert_eq!(
        state_of(&aas, FIRST),
        Some((State::Offered, DYN_KEY.into(), NOW + 10))
    );
}

#[test]
fn the_host_name_a_client_sends_goes_to_the_aas_with_each_allocation() {
    let mut aas = pool_aas();
    // Option 12, with a C string's NUL and a blank.
    dyn_ask(
        &mut aas,
        &request_bytes(DYN_MAC, &[53, 1, 1, 12, 6, b'm', b'y', b' ', b'p', b'c', 0]),
    )
    .unwrap();
    let ip = FIRST.octets();
    let req = [
        53, 1, 3, 50, 4, ip[0], ip[1], ip[2], ip[3], 54, 4, 10, 77, 0, 1,
    ];
    // Option 81 alone (ASCII form): the name in it.
    let fqdn = [81, 7, 0, 0, 0, b'p', b'c', b'.', b'x'];
    let r = dyn_ask(
        &mut aas,
        &request_bytes(DYN_MAC, &[&req[..], &fqdn].concat()),
    )
    .unwrap();
    assert_eq!(r.message_type(), 5);
    // With the alias in.dhcpd gives: the same client by its 01+MAC identifier.
    let alias = "alias=10.77.0.0/id/01027700000021";
    assert_eq!(
        aas.asked,
        [
            format!("ALLOC Dyn dhcp {DYN_KEY} 10 previous {alias} hold host=my%20pc"),
            format!("ALLOC Dyn dhcp {DYN_KEY} 1100 exact={FIRST} mine keep=1000 {alias} host=pc.x"),
        ]
    );
    assert_eq!(aas.db.get(u32::from(FIRST)).unwrap().host, "pc.x");
    // Both: option 12 wins.
    let both = [&req[..], &fqdn, &[12, 2, b'h', b'1']].concat();
    dyn_ask(&mut aas, &request_bytes(DYN_MAC, &both)).unwrap();
    assert!(aas.asked[2].ends_with(" host=h1"), "{:?}", aas.asked[2]);
}

#[test]
fn dynamic_request_leases_padded_and_acks_unpadded() {
    let mut aas = pool_aas();
    dyn_ask(&mut aas, &request_bytes(DYN_MAC, &[53, 1, 1])).unwrap();
    let r = dyn_ask(&mut aas, &selecting(DYN_MAC, FIRST)).unwrap();
    assert_eq!(r.message_type(), 5);
    assert_eq!(r.yiaddr, FIRST);
    assert_eq!(r.opt(51), Some(&1000u32.to_be_bytes()[..]));
    assert_eq!(
        aas.asked[1],
        format!("ALLOC Dyn dhcp {DYN_KEY} 1100 exact={FIRST} mine keep=1000 alias={DYN_ALIAS}")
    );
    assert_eq!(
        state_of(&aas, FIRST),
        Some((State::Leased, DYN_KEY.into(), NOW + 1100))
    );
}

#[test]
fn requested_lease_is_capped_by_max_lease_time() {
    let mut aas = pool_aas();
    let r = dyn_ask(
        &mut aas,
        &request_bytes(DYN_MAC, &[53, 1, 1, 51, 4, 0, 1, 0, 0]),
    )
    .unwrap();
    assert_eq!(r.opt(51), Some(&5000u32.to_be_bytes()[..]));
    let r = dyn_ask(
        &mut aas,
        &request_bytes(DYN_MAC, &[53, 1, 1, 51, 4, 0, 0, 0, 60]),
    )
    .unwrap();
    assert_eq!(r.opt(51), Some(&60u32.to_be_bytes()[..]));
}

#[test]
fn returning_client_gets_its_previous_address() {
    let mut aas = pool_aas();
    let other = [0x02, 0x77, 0, 0, 0, 0x22];
    dyn_ask(&mut aas, &request_bytes(DYN_MAC, &[53, 1, 1])).unwrap();
    dyn_ask(&mut aas, &selecting(DYN_MAC, FIRST)).unwrap();
    let mut rel = request_bytes(DYN_MAC, &[53, 1, 7, 54, 4, 10, 77, 0, 1]);
    set_ip(&mut rel, 12, FIRST);
    assert!(dyn_ask(&mut aas, &rel).is_none());
    assert_eq!(state_of(&aas, FIRST).unwrap().0, State::Free);
    // Another client takes the next never-used address, not this one.
    let r = dyn_ask(&mut aas, &request_bytes(other, &[53, 1, 1])).unwrap();
    assert_eq!(r.yiaddr, Ipv4Addr::new(10, 77, 0, 101));
    let r = dyn_ask(&mut aas, &request_bytes(DYN_MAC, &[53, 1, 1])).unwrap();
    assert_eq!(r.yiaddr, FIRST);
}

#[test]
fn requested_address_is_offered_when_free() {
    let mut aas = pool_aas();
    let r = dyn_ask(
        &mut aas,
        &request_bytes(DYN_MAC, &[53, 1, 1, 50, 4, 10, 77, 0, 102]),
    )
    .unwrap();
    assert_eq!(r.yiaddr, Ipv4Addr::new(10, 77, 0, 102));
}

#[test]
fn renewal_renews_and_a_taken_address_is_naked() {
    let mut aas = pool_aas();
    dyn_ask(&mut aas, &request_bytes(DYN_MAC, &[53, 1, 1])).unwrap();
    dyn_ask(&mut aas, &selecting(DYN_MAC, FIRST)).unwrap();
    aas.now += 500;
    let mut renew = request_bytes(DYN_MAC, &[53, 1, 3]);
    set_ip(&mut renew, 12, FIRST);
    let r = dyn_ask(&mut aas, &renew).unwrap();
    assert_eq!(r.message_type(), 5);
    assert_eq!(state_of(&aas, FIRST).unwrap().2, NOW + 500 + 1100);
    // INIT-REBOOT by a client with another lease for this address: NAK.
    let thief = [0x02, 0x77, 0, 0, 0, 0x23];
    let thief_addr = dyn_ask(&mut aas, &request_bytes(thief, &[53, 1, 1]))
        .unwrap()
        .yiaddr;
    dyn_ask(&mut aas, &selecting(thief, thief_addr)).unwrap();
    let o = FIRST.octets();
    let r = dyn_ask(
        &mut aas,
        &request_bytes(thief, &[53, 1, 3, 50, 4, o[0], o[1], o[2], o[3]]),
    )
    .unwrap();
    assert_eq!(r.message_type(), 6);
    assert_eq!(
        state_of(&aas, FIRST).unwrap().1,
        DYN_KEY,
        "still the owner's"
    );
}

#[test]
fn address_outside_the_pool_or_network_is_naked() {
    let mut aas = pool_aas();
    dyn_ask(&mut aas, &request_bytes(DYN_MAC, &[53, 1, 1])).unwrap();
    dyn_ask(&mut aas, &selecting(DYN_MAC, FIRST)).unwrap();
    let r = dyn_ask(
        &mut aas,
        &request_bytes(DYN_MAC, &[53, 1, 3, 50, 4, 10, 77, 0, 200]),
    )
    .unwrap();
    assert_eq!(r.message_type(), 6, "not in the pool");
    let r = dyn_ask(
        &mut aas,
        &request_bytes(DYN_MAC, &[53, 1, 3, 50, 4, 10, 77, 0, 255]),
    )
    .unwrap();
    assert_eq!(r.message_type(), 6, "broadcast address");
}

/// An INIT-REBOOT REQUEST: option 50, no server id, no ciaddr.
fn init_reboot(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let o = ip.octets();
    request_bytes(mac, &[53, 1, 3, 50, 4, o[0], o[1], o[2], o[3]])
}

#[test]
fn init_reboot_acks_only_the_clients_own_binding() {
    // RFC 2131 §4.3.2.
    let second = Ipv4Addr::new(10, 77, 0, 101);
    let mut aas = pool_aas();
    // No record of the client: silence, and nothing leased.
    assert!(dyn_ask(&mut aas, &init_reboot(DYN_MAC, second)).is_none());
    assert_eq!(
        aas.asked,
        [format!(
            "ALLOC Dyn dhcp {DYN_KEY} 1100 exact={second} known keep=1000 alias={DYN_ALIAS}"
        )]
    );
    assert!(state_of(&aas, second).is_none());
    // Its own binding: ACK.
    dyn_ask(&mut aas, &request_bytes(DYN_MAC, &[53, 1, 1])).unwrap();
    dyn_ask(&mut aas, &selecting(DYN_MAC, FIRST)).unwrap();
    let r = dyn_ask(&mut aas, &init_reboot(DYN_MAC, FIRST)).unwrap();
    assert_eq!((r.message_type(), r.yiaddr), (5, FIRST));
    // Another address than its binding, free as it is: NAK, and it keeps FIRST.
    let r = dyn_ask(&mut aas, &init_reboot(DYN_MAC, second)).unwrap();
    assert_eq!((r.message_type(), r.yiaddr), (6, Ipv4Addr::UNSPECIFIED));
    assert!(state_of(&aas, second).is_none());
    assert_eq!(state_of(&aas, FIRST).unwrap().1, DYN_KEY);
    // Its lease ended, the address still free: still its binding.
    aas.now += 5000;
    let r = dyn_ask(&mut aas, &init_reboot(DYN_MAC, FIRST)).unwrap();
    assert_eq!(r.message_type(), 5);
}

#[test]
fn init_reboot_from_an_unknown_client_is_naked_when_authoritative() {
    let conf = |server: &str, subnet: &str| {
        DYN_CONF
            .replace("[server]\n", &format!("[server]\n{server}"))
            .replace("pool = Dyn\n", &format!("pool = Dyn\n{subnet}"))
    };
    let second = Ipv4Addr::new(10, 77, 0, 101);
    for (server, subnet, nak) in [
        ("", "", false),
        ("authoritative = no\n", "", false),
        ("authoritative = yes\n", "", true),
        ("", "authoritative = yes\n", true),
        ("authoritative = yes\n", "authoritative = no\n", false),
    ] {
        let c = cfg(&conf(server, subnet));
        let mut aas = pool_aas();
        let r = handle(&init_reboot(DYN_MAC, second), &arrival(), &c, &mut aas);
        let kind = r.map(|r| decode(&r.bytes).message_type());
        assert_eq!(kind, nak.then_some(6), "{server:?} {subnet:?}");
        assert!(state_of(&aas, second).is_none());
        // A subnet without a pool knows no dynamic client either.
        let c = cfg(&conf(server, subnet).replace("pool = Dyn\n", ""));
        let r = handle(&init_reboot(DYN_MAC, second), &arrival(), &c, &mut aas);
        let kind = r.map(|r| decode(&r.bytes).message_type());
        assert_eq!(kind, nak.then_some(6), "no pool: {server:?} {subnet:?}");
    }
}

#[test]
fn aas_down_means_no_offer_and_no_nak_but_static_clients_served() {
    let mut aas = pool_aas();
    aas.down = true;
    assert!(dyn_ask(&mut aas, &request_bytes(DYN_MAC, &[53, 1, 1])).is_none());
    let mut renew = request_bytes(DYN_MAC, &[53, 1, 3]);
    set_ip(&mut renew, 12, FIRST);
    assert!(
        dyn_ask(&mut aas, &renew).is_none(),
        "never a NAK when the AAS is down"
    );
    let r = dyn_ask(&mut aas, &request_bytes(MAC, &[53, 1, 1])).unwrap();
    assert_eq!(r.yiaddr, PINNED);
}

#[test]
fn exhausted_pool_gets_no_offer() {
    let mut aas = pool_aas();
    for last in 0x30..0x33 {
        let r = dyn_ask(
            &mut aas,
            &request_bytes([2, 0x77, 0, 0, 0, last], &[53, 1, 1]),
        );
        assert!(r.is_some());
    }
    assert!(dyn_ask(&mut aas, &request_bytes(DYN_MAC, &[53, 1, 1])).is_none());
}

#[test]
fn decline_takes_the_address_out_of_use() {
    let mut aas = pool_aas();
    dyn_ask(&mut aas, &request_bytes(DYN_MAC, &[53, 1, 1])).unwrap();
    dyn_ask(&mut aas, &selecting(DYN_MAC, FIRST)).unwrap();
    let o = FIRST.octets();
    let d = request_bytes(
        DYN_MAC,
        &[53, 1, 4, 50, 4, o[0], o[1], o[2], o[3], 54, 4, 10, 77, 0, 1],
    );
    assert!(dyn_ask(&mut aas, &d).is_none());
    assert_eq!(
        state_of(&aas, FIRST),
        Some((State::Declined, String::new(), NOW + 600))
    );
    let r = dyn_ask(&mut aas, &request_bytes(DYN_MAC, &[53, 1, 1])).unwrap();
    assert_ne!(r.yiaddr, FIRST);
}

#[test]
fn client_identifier_is_the_aas_identity() {
    let mut aas = pool_aas();
    let id = [61, 3, 0xff, 0x01, 0x02];
    let mut o = vec![53, 1, 1];
    o.extend_from_slice(&id);
    dyn_ask(&mut aas, &request_bytes(DYN_MAC, &o)).unwrap();
    assert_eq!(
        aas.asked[0],
        "ALLOC Dyn dhcp 10.77.0.0/id/ff0102 10 previous hold"
    );
    // The same identifier from another MAC is the same client.
    let r = dyn_ask(&mut aas, &request_bytes(OTHER_MAC, &o)).unwrap();
    assert_eq!(r.yiaddr, FIRST);
}

#[test]
fn choosing_another_server_frees_the_reservation() {
    let mut aas = pool_aas();
    dyn_ask(&mut aas, &request_bytes(DYN_MAC, &[53, 1, 1])).unwrap();
    let o = FIRST.octets();
    let b = request_bytes(
        DYN_MAC,
        &[53, 1, 3, 50, 4, o[0], o[1], o[2], o[3], 54, 4, 10, 77, 0, 9],
    );
    assert!(dyn_ask(&mut aas, &b).is_none());
    assert_eq!(state_of(&aas, FIRST).unwrap().0, State::Free);
}

// Relays: link selection (RFC 3527), subnet selection (RFC 3011), server
// identifier override (RFC 5107).

const RELAYED_MAC: [u8; 6] = [0x02, 0x78, 0, 0, 0, 0x10];
const RELAYED_FIXED: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 50);

/// A request relayed by an agent at `giaddr` with option 82 `agent`.
pub(super) fn relayed(kind: u8, giaddr: Ipv4Addr, extra: &[u8]) -> Vec<u8> {
    let mut o = vec![53, 1, kind];
    o.extend_from_slice(extra);
    let mut b = request_bytes(RELAYED_MAC, &o);
    set_ip(&mut b, 24, giaddr);
    b[3] = 1;
    b
}

const UNKNOWN_LINK: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

#[test]
fn link_selection_suboption_chooses_the_subnet() {
    let conf = cfg(CONF);
    // giaddr on no configured subnet: nothing without a selection.
    assert!(ask(&conf, &arrival(), &relayed(1, UNKNOWN_LINK, &[])).is_none());
    let agent = [82, 10, 1, 2, 0xaa, 0xbb, 5, 4, 10, 78, 0, 0];
    let (r, to) = ask(&conf, &arrival(), &relayed(1, UNKNOWN_LINK, &agent)).unwrap();
    assert_eq!(r.yiaddr, RELAYED_FIXED);
    assert_eq!(r.opt(82), Some(&agent[2..]), "82 echoed unchanged");
    assert_eq!(
        to,
        Destination::Relay(UNKNOWN_LINK),
        "reply still to giaddr"
    );
}

#[test]
fn subnet_selection_option_chooses_the_subnet() {
    let conf = cfg(CONF);
    let sel = [118, 4, 10, 78, 0, 0];
    let (r, _) = ask(&conf, &arrival(), &relayed(1, UNKNOWN_LINK, &sel)).unwrap();
    assert_eq!(r.yiaddr, RELAYED_FIXED);
    // Link selection wins over option 118 when both are given.
    let both = [118, 4, 10, 99, 0, 0, 82, 6, 5, 4, 10, 78, 0, 0];
    let (r, _) = ask(&conf, &arrival(), &relayed(1, UNKNOWN_LINK, &both)).unwrap();
    assert_eq!(r.yiaddr, RELAYED_FIXED);
    // A truncated sub-option is not trusted: back to giaddr, which is unknown.
    let cut = [82, 5, 5, 4, 10, 78, 0];
    assert!(ask(&conf, &arrival(), &relayed(1, UNKNOWN_LINK, &cut)).is_none());
}

#[test]
fn server_identifier_override_names_the_relay() {
    let conf = cfg(CONF);
    let relay = Ipv4Addr::new(10, 78, 0, 1);
    let agent = [82, 6, 11, 4, 10, 78, 0, 1];
    let (r, _) = ask(&conf, &arrival(), &relayed(1, relay, &agent)).unwrap();
    assert_eq!(r.opt(54), Some(&relay.octets()[..]));
    // The client then selects the relay's address as server: that is us.
    let mut o = vec![50, 4, 10, 78, 0, 50, 54, 4, 10, 78, 0, 1];
    o.extend_from_slice(&agent);
    let (r, _) = ask(&conf, &arrival(), &relayed(3, relay, &o)).unwrap();
    assert_eq!(r.message_type(), 5);
    assert_eq!(r.opt(54), Some(&relay.octets()[..]));
    // Without the override that server id is someone else's.
    assert!(ask(&conf, &arrival(), &relayed(3, relay, &o[..12])).is_none());
}

#[test]
fn seventeen_hops_are_dropped() {
    let mut b = relayed(1, Ipv4Addr::new(10, 78, 0, 1), &[]);
    b[3] = 16;
    assert!(ask(&cfg(CONF), &arrival(), &b).is_some());
    b[3] = 17;
    assert!(ask(&cfg(CONF), &arrival(), &b).is_none());
}

#[test]
fn dynamic_bootp_only_when_enabled_and_then_forever() {
    let mut aas = pool_aas();
    let off = cfg(DYN_CONF);
    assert!(handle(&bootp_request(DYN_MAC, true), &arrival(), &off, &mut aas).is_none());
    assert!(
        aas.asked.is_empty(),
        "bootp_dynamic off: the AAS is not asked"
    );
    let on = cfg(&DYN_CONF.replace("[server]\n", "[server]\nbootp_dynamic = yes\n"));
    let r = handle(&bootp_request(DYN_MAC, true), &arrival(), &on, &mut aas).unwrap();
    let r = decode(&r.bytes);
    assert_eq!((r.op, r.yiaddr, r.opt(51)), (2, FIRST, None));
    let (state, client, end) = state_of(&aas, FIRST).unwrap();
    assert_eq!((state, client.as_str()), (State::Leased, DYN_KEY));
    assert_eq!(end, crate::aas::lease::FOREVER);
    // The client boots again: the same address.
    let r = handle(&bootp_request(DYN_MAC, true), &arrival(), &on, &mut aas).unwrap();
    assert_eq!(decode(&r.bytes).yiaddr, FIRST);
}
