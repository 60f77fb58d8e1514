//! Validation of a received datagram before anything else looks at it.
//!
//! All bounds checks on request bytes live here (the udhcp lesson: one
//! accessor validates, call sites never index raw bytes). We walk the options
//! ourselves instead of trusting dhcproto's decoder, which stops silently at the
//! first bad option, accepts any magic cookie, panics in `chaddr()` when
//! hlen > 16 and re-sorts option 82's sub-options.

use std::fmt;
use std::net::Ipv4Addr;

use dhcproto::v4::MessageType;

/// RFC 2131 §3: the four octets that start the options field.
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Fixed BOOTP header (RFC 951) without the vendor area.
pub const HEADER_LEN: usize = 236;
/// The `op` field (offset 0) of a request and of a reply.
pub const BOOTREQUEST: u8 = 1;
pub const BOOTREPLY: u8 = 2;
/// Offsets of the header fields we use (RFC 951); nothing outside this
/// file reads or writes the header by position.
pub mod offset {
    pub const OP: usize = 0;
    pub const XID: usize = 4;
    pub const CIADDR: usize = 12;
    pub const YIADDR: usize = 16;
    pub const SIADDR: usize = 20;
    pub const GIADDR: usize = 24;
    pub const CHADDR: std::ops::Range<usize> = 28..44;
}
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;
/// RFC 1542 §4.1.1: a relay discards a request with hops > 16; so do we.
pub const MAX_HOPS: u8 = 16;

pub mod code {
    //! Option codes the server itself interprets (RFC 2132 unless noted).
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const HOST_NAME: u8 = 12;
    pub const DOMAIN_NAME: u8 = 15;
    pub const VENDOR_SPECIFIC: u8 = 43;
    pub const REQUESTED_ADDRESS: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const OVERLOAD: u8 = 52;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    pub const MESSAGE: u8 = 56;
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    pub const RENEWAL_TIME: u8 = 58;
    pub const REBINDING_TIME: u8 = 59;
    pub const VENDOR_CLASS: u8 = 60;
    pub const CLIENT_ID: u8 = 61;
    pub const USER_CLASS: u8 = 77;
    /// RFC 4702.
    pub const CLIENT_FQDN: u8 = 81;
    /// RFC 3046.
    pub const RELAY_AGENT_INFO: u8 = 82;
    /// RFC 3011.
    pub const SUBNET_SELECTION: u8 = 118;
    /// Sub-options of option 82: RFC 3046 circuit and remote ID, RFC 3527
    /// link selection, RFC 5107 server identifier override.
    pub const AGENT_CIRCUIT_ID: u8 = 1;
    pub const AGENT_REMOTE_ID: u8 = 2;
    pub const AGENT_LINK_SELECTION: u8 = 5;
    pub const AGENT_SERVER_ID_OVERRIDE: u8 = 11;
    pub const END: u8 = 255;
}

/// Why a datagram was dropped. Printed after `drop from ...: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Malformed {
    Short(usize),
    NotRequest(u8),
    HlenTooLong(u8),
    NoIdentity,
    TooManyHops(u8),
    BadGiaddr(Ipv4Addr),
    OptionOverrun { code: u8, offset: usize },
    BadMessageType,
    Repeated(u8),
    BadLength { code: u8, len: usize },
}

impl Malformed {
    /// The kind of problem, without its numbers: the key for rate-limiting
    /// the log during a flood.
    pub fn kind(&self) -> &'static str {
        match self {
            Malformed::Short(_) => "short",
            Malformed::NotRequest(_) => "op",
            Malformed::HlenTooLong(_) => "hlen",
            Malformed::NoIdentity => "identity",
            Malformed::TooManyHops(_) => "hops",
            Malformed::BadGiaddr(_) => "giaddr",
            Malformed::OptionOverrun { .. } => "overrun",
            Malformed::BadMessageType => "message type",
            Malformed::Repeated(_) => "repeated",
            Malformed::BadLength { .. } => "length",
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Short(n) => write!(f, "short packet ({n} bytes, need 240)"),
            Malformed::NotRequest(op) => write!(f, "op {op} is not BOOTREQUEST"),
            Malformed::HlenTooLong(n) => write!(f, "hlen {n} > 16"),
            Malformed::NoIdentity => write!(f, "hlen 0 and no client identifier"),
            Malformed::TooManyHops(n) => write!(f, "hops {n} > {MAX_HOPS}"),
            Malformed::BadGiaddr(a) => write!(f, "giaddr {a} is not a relay address"),
            Malformed::OptionOverrun { code, offset } => {
                write!(f, "option {code} at offset {offset} runs past the end")
            }
            Malformed::BadMessageType => write!(f, "bad message type"),
            Malformed::Repeated(c) => write!(f, "option {c} appears twice"),
            Malformed::BadLength { code, len } => write!(f, "option {code} has bad length {len}"),
        }
    }
}

impl std::error::Error for Malformed {}

/// A request that passed validation. Option values are owned so the request
/// outlives the receive buffer.
#[derive(Debug, Clone)]
pub struct Request {
    pub htype: u8,
    pub hlen: u8,
    pub hops: u8,
    pub xid: u32,
    pub secs: u16,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 16],
    /// `None` for BOOTP (no option 53).
    pub message_type: Option<MessageType>,
    /// The vendor area starts with the magic cookie (RFC 1497); a pure
    /// RFC 951 BOOTP request has none, and gets no options back.
    pub cookie: bool,
    /// Options in order of first appearance; repeated ones joined (RFC 3396).
    pub options: Vec<(u8, Vec<u8>)>,
    /// Options ignored because of a wrong length; the handler logs them.
    pub ignored: Vec<Malformed>,
}

impl Request {
    pub fn option(&self, code: u8) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }

    /// The hardware address, `hlen` bytes of chaddr (hlen <= 16 was checked).
    pub fn hw_addr(&self) -> &[u8] {
        &self.chaddr[..usize::from(self.hlen)]
    }

    /// The hardware address as log lines show it, written out only when
    /// a line is.
    pub fn mac(&self) -> Mac<'_> {
        Mac(self.hw_addr())
    }

    pub fn client_id(&self) -> Option<&[u8]> {
        self.option(code::CLIENT_ID)
    }

    pub fn requested_address(&self) -> Option<Ipv4Addr> {
        self.option(code::REQUESTED_ADDRESS).and_then(ipv4)
    }

    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.option(code::SERVER_ID).and_then(ipv4)
    }

    /// Option 57, as sent (the reply builder applies the RFC minimum).
    pub fn max_message_size(&self) -> Option<u16> {
        match self.option(code::MAX_MESSAGE_SIZE)? {
            [a, b] => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }

    pub fn broadcast_flag(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    /// A sub-option of the relay agent information (option 82), from a
    /// relayed request only. A walk that overruns stops there: what came
    /// before it is still good, nothing after it is trusted.
    pub fn agent_suboption(&self, sub: u8) -> Option<&[u8]> {
        if self.giaddr.is_unspecified() {
            return None;
        }
        let info = self.option(code::RELAY_AGENT_INFO)?;
        let mut at = 0;
        while at + 2 <= info.len() {
            let (c, len) = (info[at], usize::from(info[at + 1]));
            let value = info.get(at + 2..at + 2 + len)?;
            if c == sub {
                return Some(value);
            }
            at += 2 + len;
        }
        None
    }

    /// An address sub-option of option 82 (4 bytes), if well formed.
    pub fn agent_address(&self, sub: u8) -> Option<Ipv4Addr> {
        self.agent_suboption(sub).and_then(ipv4)
    }

    /// The address that names the client's link: option 82 link selection
    /// (RFC 3527), else option 118 subnet selection (RFC 3011), else giaddr.
    /// Unspecified for a client on one of our own links.
    pub fn link_address(&self) -> Ipv4Addr {
        self.agent_address(code::AGENT_LINK_SELECTION)
            .or_else(|| self.option(code::SUBNET_SELECTION).and_then(ipv4))
            .unwrap_or(self.giaddr)
    }
}

fn ipv4(bytes: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(bytes).ok().map(Ipv4Addr::from)
}

/// A hardware address, displayed as `02:00:00:00:00:01`.
pub struct Mac<'a>(pub &'a [u8]);

impl std::fmt::Display for Mac<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex(self.0, ":"))
    }
}

pub fn hex_colon(bytes: &[u8]) -> String {
    hex(bytes, ":")
}

/// Bytes as lowercase hex digits with `sep` between bytes: MAC addresses
/// and client identifiers, in log lines and AAS keys.
pub fn hex(bytes: &[u8], sep: &str) -> String {
    let mut s = String::with_capacity(bytes.len() * (2 + sep.len()));
    push_hex(&mut s, bytes, sep);
    s
}

/// [`hex`], appended to `s`.
pub fn push_hex(s: &mut String, bytes: &[u8], sep: &str) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push_str(sep);
        }
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

/// The header fields a drop line names, read without trusting anything.
pub struct Identity {
    pub xid: u32,
    pub chaddr: String,
}

/// Best-effort xid and chaddr of any datagram, for the drop log line.
pub fn identity(buf: &[u8]) -> Identity {
    let xid = buf
        .get(4..8)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    let hlen = buf.get(2).map_or(0, |h| usize::from(*h).min(16));
    let chaddr = buf.get(28..28 + hlen).map(hex_colon).unwrap_or_default();
    Identity { xid, chaddr }
}

/// The big-endian u32 at `at`; the caller has checked the length.
pub fn be32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// The IPv4 address at `at`; the caller has checked the length.
pub fn addr(buf: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::from(be32(buf, at))
}

/// Write `ip` at `at`; the caller has checked the length.
pub fn set_addr(buf: &mut [u8], at: usize, ip: Ipv4Addr) {
    buf[at..at + 4].copy_from_slice(&ip.octets());
}

/// Validate a datagram and walk its options. Nothing reads request bytes
/// except through the `Request` this returns.
pub fn parse(buf: &[u8]) -> Result<Request, Malformed> {
    // A 236-byte RFC 951 header needs at least the cookie for DHCP; a BOOTP
    // frame without a cookie still has a 64-byte vendor area (300 bytes).
    if buf.len() < HEADER_LEN + 4 {
        return Err(Malformed::Short(buf.len()));
    }
    if buf[offset::OP] != BOOTREQUEST {
        return Err(Malformed::NotRequest(buf[offset::OP]));
    }
    let hlen = buf[2];
    if hlen > 16 {
        return Err(Malformed::HlenTooLong(hlen));
    }
    let hops = buf[3];
    if hops > MAX_HOPS {
        return Err(Malformed::TooManyHops(hops));
    }
    let giaddr = addr(buf, offset::GIADDR);
    let [g0, ..] = giaddr.octets();
    if giaddr.is_broadcast() || g0 == 0 && !giaddr.is_unspecified() || g0 == 127 {
        return Err(Malformed::BadGiaddr(giaddr));
    }
    let mut chaddr = [0u8; 16];
    chaddr.copy_from_slice(&buf[offset::CHADDR]);
    let mut req = Request {
        htype: buf[1],
        hlen,
        hops,
        xid: be32(buf, offset::XID),
        secs: u16::from_be_bytes([buf[8], buf[9]]),
        flags: u16::from_be_bytes([buf[10], buf[11]]),
        ciaddr: addr(buf, offset::CIADDR),
        giaddr,
        chaddr,
        message_type: None,
        cookie: buf[HEADER_LEN..HEADER_LEN + 4] == MAGIC_COOKIE,
        options: Vec::with_capacity(16),
        ignored: Vec::new(),
    };
    // Without the cookie the vendor area is not options (RFC 951 BOOTP).
    if req.cookie {
        walk_all(buf, &mut req.options)?;
        check_options(&mut req)?;
    }
    if hlen == 0 && req.client_id().is_none() {
        return Err(Malformed::NoIdentity);
    }
    Ok(req)
}

/// Walk the options field, then file and sname when option 52 says so
/// (RFC 2131 §4.1: file first, then sname). Overload inside those fields is
/// not followed again, so every walk is bounded by the packet length.
fn walk_all(buf: &[u8], out: &mut Vec<(u8, Vec<u8>)>) -> Result<(), Malformed> {
    // Codes met so far, for the SINGLE check.
    let mut seen = [false; 256];
    walk(buf, HEADER_LEN + 4, buf.len(), out, &mut seen)?;
    let overload = match out.iter().find(|(c, _)| *c == code::OVERLOAD) {
        Some((_, v)) if v.len() == 1 && (1..=3).contains(&v[0]) => v[0],
        _ => 0,
    };
    if overload & 1 != 0 {
        walk(buf, FILE.start, FILE.end, out, &mut seen)?;
    }
    if overload & 2 != 0 {
        walk(buf, SNAME.start, SNAME.end, out, &mut seen)?;
    }
    Ok(())
}

/// Codes that must appear once: a second copy makes the packet ambiguous.
const SINGLE: [u8; 3] = [code::MESSAGE_TYPE, code::SERVER_ID, code::REQUESTED_ADDRESS];

fn walk(
    buf: &[u8],
    start: usize,
    end: usize,
    out: &mut Vec<(u8, Vec<u8>)>,
    seen: &mut [bool; 256],
) -> Result<(), Malformed> {
    let mut at = start;
    while at < end {
        let c = buf[at];
        if c == code::END {
            break;
        }
        if c == code::PAD {
            at += 1;
            continue;
        }
        let len = match buf.get(at + 1) {
            Some(&l) if at + 1 < end => usize::from(l),
            _ => {
                return Err(Malformed::OptionOverrun {
                    code: c,
                    offset: at,
                })
            }
        };
        let value = at + 2..at + 2 + len;
        if value.end > end {
            return Err(Malformed::OptionOverrun {
                code: c,
                offset: at,
            });
        }
        // RFC 3396: instances of one option are concatenated. Only adjacent
        // appearances in one field count as one instance for the SINGLE check.
        if SINGLE.contains(&c) && seen[usize::from(c)] {
            return Err(if c == code::MESSAGE_TYPE {
                Malformed::BadMessageType
            } else {
                Malformed::Repeated(c)
            });
        }
        if c == code::OVERLOAD && start != HEADER_LEN + 4 {
            // RFC 2131: option 52 only in the options field; never recurse.
        } else if let Some((_, v)) = out.iter_mut().find(|(k, _)| *k == c) {
            v.extend_from_slice(&buf[value.clone()]);
        } else {
            out.push((c, buf[value.clone()].to_vec()));
        }
        seen[usize::from(c)] = true;
        at = value.end;
    }
    Ok(())
}

/// Fixed-size options of the wrong length: the identity-bearing ones drop the
/// packet; the others are ignored alone (catalogue case 10).
fn check_options(req: &mut Request) -> Result<(), Malformed> {
    let mut i = 0;
    while i < req.options.len() {
        let (c, len) = (req.options[i].0, req.options[i].1.len());
        let want = match c {
            code::SUBNET_MASK
            | code::REQUESTED_ADDRESS
            | code::LEASE_TIME
            | code::SERVER_ID
            | code::SUBNET_SELECTION => Some(4),
            code::MAX_MESSAGE_SIZE => Some(2),
            code::OVERLOAD | code::MESSAGE_TYPE => Some(1),
            _ => None,
        };
        let bad = match (c, want) {
            (code::CLIENT_ID, _) => len < 2, // RFC 2132 §9.14: at least 2 octets
            (_, Some(w)) => len != w,
            _ => false,
        };
        if bad {
            let err = Malformed::BadLength { code: c, len };
            match c {
                code::MESSAGE_TYPE => return Err(Malformed::BadMessageType),
                code::REQUESTED_ADDRESS | code::SERVER_ID | code::CLIENT_ID => return Err(err),
                _ => {
                    req.ignored.push(err);
                    req.options.remove(i);
                    continue;
                }
            }
        }
        i += 1;
    }
    if let Some(v) = req.option(code::MESSAGE_TYPE) {
        // RFC 2132 §9.6 and RFC 6926 define 1..=18; anything else is garbage.
        req.message_type = match v[0] {
            1..=18 => Some(MessageType::from(v[0])),
            _ => return Err(Malformed::BadMessageType),
        };
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A minimal DHCP request: header, cookie, the given raw options, END.
    pub fn request_bytes(mac: [u8; 6], options: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0] = 1;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        b[28..34].copy_from_slice(&mac);
        b.extend_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(options);
        b.push(code::END);
        b
    }

    const MAC: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x10];

    #[test]
    fn discover_parses() {
        let r = parse(&request_bytes(MAC, &[53, 1, 1, 55, 2, 1, 3])).unwrap();
        assert_eq!(r.message_type, Some(MessageType::Discover));
        assert_eq!(r.mac().to_string(), "02:77:00:00:00:10");
        assert_eq!(r.xid, 0x1234_5678);
        assert_eq!(r.option(55), Some(&[1u8, 3][..]));
    }

    #[test]
    fn short_packets_dropped() {
        for n in [0, 1, 235, 239] {
            assert_eq!(parse(&vec![1u8; n]).unwrap_err(), Malformed::Short(n));
        }
    }

    #[test]
    fn header_checks() {
        let mut b = request_bytes(MAC, &[53, 1, 1]);
        b[0] = 2;
        assert_eq!(parse(&b).unwrap_err(), Malformed::NotRequest(2));
        let mut b = request_bytes(MAC, &[53, 1, 1]);
        b[2] = 200;
        assert_eq!(parse(&b).unwrap_err(), Malformed::HlenTooLong(200));
        let mut b = request_bytes(MAC, &[53, 1, 1]);
        b[3] = 17;
        assert_eq!(parse(&b).unwrap_err(), Malformed::TooManyHops(17));
        let mut b = request_bytes(MAC, &[53, 1, 1]);
        b[2] = 0;
        assert_eq!(parse(&b).unwrap_err(), Malformed::NoIdentity);
        for g in [[255, 255, 255, 255], [127, 0, 0, 1], [0, 1, 2, 3]] {
            let mut b = request_bytes(MAC, &[53, 1, 1]);
            b[24..28].copy_from_slice(&g);
            assert_eq!(parse(&b).unwrap_err(), Malformed::BadGiaddr(g.into()));
        }
    }

    #[test]
    fn no_cookie_is_bootp_without_options() {
        let mut b = request_bytes(MAC, &[53, 1, 1]);
        b[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&[0, 0, 0, 0]);
        let r = parse(&b).unwrap();
        assert_eq!(r.message_type, None);
        assert!(r.options.is_empty());
    }

    #[test]
    fn option_overrun_and_missing_end() {
        let mut b = request_bytes(MAC, &[53, 1, 1, 12, 40, b'a']);
        b.pop(); // no END: the 12 runs past the end
        assert!(matches!(
            parse(&b),
            Err(Malformed::OptionOverrun { code: 12, .. })
        ));
        let mut b = request_bytes(MAC, &[53, 1, 1]);
        b.pop();
        assert!(parse(&b).is_ok(), "a missing END alone is tolerated");
        let mut b = request_bytes(MAC, &[53, 1, 1]);
        b.push(12); // a lone code byte after END is ignored
        assert!(parse(&b).is_ok());
        let mut b = request_bytes(MAC, &[53, 1, 1]);
        b.pop();
        b.push(12); // a lone code byte without length
        assert!(parse(&b).is_err());
    }

    #[test]
    fn thousands_of_pads() {
        let mut opts = vec![0u8; 2000];
        opts.extend_from_slice(&[53, 1, 1]);
        assert!(parse(&request_bytes(MAC, &opts)).is_ok());
    }

    #[test]
    fn message_type_checks() {
        for opts in [
            &[53, 0][..],
            &[53, 2, 1, 1],
            &[53, 1, 0],
            &[53, 1, 19],
            &[53, 1, 200],
        ] {
            assert_eq!(
                parse(&request_bytes(MAC, opts)).unwrap_err(),
                Malformed::BadMessageType,
                "{opts:?}"
            );
        }
        assert_eq!(
            parse(&request_bytes(MAC, &[53, 1, 1, 53, 1, 3])).unwrap_err(),
            Malformed::BadMessageType
        );
    }

    #[test]
    fn bad_lengths() {
        let r = parse(&request_bytes(
            MAC,
            &[53, 1, 1, 57, 1, 5, 51, 2, 0, 0, 61, 2, 1, 2],
        ))
        .unwrap();
        assert_eq!(r.option(57), None);
        assert_eq!(r.option(51), None);
        assert_eq!(r.client_id(), Some(&[1u8, 2][..]));
        assert_eq!(r.ignored.len(), 2);
        for opts in [
            &[53, 1, 3, 50, 3, 1, 2, 3][..],
            &[53, 1, 3, 54, 2, 1, 2],
            &[53, 1, 1, 61, 1, 7],
            &[53, 1, 1, 61, 0],
        ] {
            assert!(matches!(
                parse(&request_bytes(MAC, opts)),
                Err(Malformed::BadLength { .. })
            ));
        }
        assert_eq!(
            parse(&request_bytes(
                MAC,
                &[53, 1, 3, 54, 4, 1, 2, 3, 4, 54, 4, 1, 2, 3, 4]
            ))
            .unwrap_err(),
            Malformed::Repeated(54)
        );
    }

    #[test]
    fn a_bad_option_does_not_hide_later_ones() {
        // dhcproto would lose 61 after a bad 12; our walk keeps it.
        let r = parse(&request_bytes(
            MAC,
            &[53, 1, 1, 12, 1, 0xff, 61, 3, 1, 2, 3],
        ))
        .unwrap();
        assert_eq!(r.client_id(), Some(&[1u8, 2, 3][..]));
    }

    #[test]
    fn repeated_options_concatenate() {
        let r = parse(&request_bytes(
            MAC,
            &[
                53, 1, 1, 12, 3, b'a', b'b', b'c', 60, 1, b'x', 12, 3, b'd', b'e', b'f',
            ],
        ))
        .unwrap();
        assert_eq!(r.option(12), Some(&b"abcdef"[..]));
    }

    #[test]
    fn overload_fields_walked_once() {
        let mut b = request_bytes(MAC, &[53, 1, 1, 52, 1, 3]);
        // file: a host name and an option 52 that must not recurse
        b[108..116].copy_from_slice(&[12, 2, b'h', b'i', 52, 1, 1, 255]);
        b[44..48].copy_from_slice(&[60, 1, b'v', 255]);
        let r = parse(&b).unwrap();
        assert_eq!(r.option(12), Some(&b"hi"[..]));
        assert_eq!(r.option(60), Some(&b"v"[..]));
        assert_eq!(r.option(52), Some(&[3u8][..]));
    }

    #[test]
    fn full_size_datagram() {
        let mut opts = Vec::new();
        while opts.len() < 66_000 {
            opts.extend_from_slice(&[224, 255]);
            opts.extend(std::iter::repeat_n(7u8, 255));
        }
        let mut b = request_bytes(MAC, &[53, 1, 1]);
        b.pop();
        b.extend_from_slice(&opts);
        b.truncate(65_507);
        // the last option is cut off, so the packet is dropped, in time
        assert!(parse(&b).is_err());
    }
}
