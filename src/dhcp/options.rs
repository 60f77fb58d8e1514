//! The reply's wire form: header, options in the order chosen, option 57 and
//! overload (52) honoured, padded to 300 bytes.
//!
//! dhcproto's encoder is not used for replies: it sorts options by code (so
//! the client's parameter request list order is lost), has no size limit and
//! does not pad.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use super::packet::{code, HEADER_LEN, MAGIC_COOKIE};

/// RFC 2131 §2: every client must accept a 576-byte IP datagram.
pub const MIN_IP_DATAGRAM: usize = 576;
/// IP and UDP headers around the DHCP message.
pub const IP_UDP_HEADERS: usize = 28;
/// RFC 1542 §3.3: replies shorter than a BOOTP frame confuse old relays and clients.
pub const MIN_REPLY_LEN: usize = 300;
/// Where the vendor area (cookie and options) starts.
pub const VENDOR_AREA: usize = HEADER_LEN;
const SNAME_LEN: usize = 64;
const FILE_LEN: usize = 128;

/// Largest DHCP message for a client: option 57 (values below 576 are
/// treated as 576, RFC 2132 §9.10), capped at the interface MTU.
pub fn message_limit(max_message_size: Option<u16>, mtu: usize) -> usize {
    let mtu = mtu.max(MIN_IP_DATAGRAM);
    let ip = max_message_size.map_or(MIN_IP_DATAGRAM, |m| usize::from(m).max(MIN_IP_DATAGRAM));
    ip.min(mtu) - IP_UDP_HEADERS
}

/// Fixed header fields of a reply.
#[derive(Debug, Clone)]
pub struct Header {
    pub htype: u8,
    pub hlen: u8,
    pub xid: u32,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 16],
    /// The `file` field; when empty it may carry overloaded options.
    pub file: Vec<u8>,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            htype: 1,
            hlen: 6,
            xid: 0,
            flags: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr: [0; 16],
            file: Vec::new(),
        }
    }
}

/// One option of the reply. A `required` option goes in the main options
/// field or the reply is not sent at all (message type, server id, ...).
/// The value is borrowed where it can be (the configuration's, the
/// request's): a reply is built for every datagram.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyOption<'a> {
    pub code: u8,
    pub value: Cow<'a, [u8]>,
    pub required: bool,
}

#[derive(Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    /// Options left out for want of room, to be logged.
    pub dropped: Vec<u8>,
}

/// The required options alone exceed the size limit.
#[derive(Debug, PartialEq, Eq)]
pub struct TooBig;

/// Bytes one option takes on the wire, split in 255-byte pieces (RFC 3396).
fn wire_len(value: &[u8]) -> usize {
    let pieces = value.len().div_ceil(255).max(1);
    value.len() + 2 * pieces
}

/// The most value bytes that fit in `free` bytes of an area, 255-byte
/// pieces each costing two more.
fn room_for(free: usize) -> usize {
    free / 257 * 255 + (free % 257).saturating_sub(2)
}

fn put(out: &mut Vec<u8>, code: u8, value: &[u8]) {
    if value.is_empty() {
        out.extend_from_slice(&[code, 0]);
    }
    for piece in value.chunks(255) {
        out.push(code);
        out.push(piece.len() as u8);
        out.extend_from_slice(piece);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Area {
    Main,
    File,
    Sname,
}

/// Where one option's value goes: (area, bytes) parts in value order; none
/// when it fits nowhere. At most one part per area, so no allocation.
#[derive(Clone, Copy)]
struct Placement {
    parts: [(Area, usize); 3],
    len: usize,
}

impl Placement {
    const NOWHERE: Placement = Placement {
        parts: [(Area::Main, 0); 3],
        len: 0,
    };

    fn whole(area: Area, len: usize) -> Placement {
        let mut p = Placement::NOWHERE;
        p.push(area, len);
        p
    }

    fn push(&mut self, area: Area, len: usize) {
        self.parts[self.len] = (area, len);
        self.len += 1;
    }

    fn parts(&self) -> &[(Area, usize)] {
        &self.parts[..self.len]
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Encode a BOOTREPLY. Options keep the given order within each area; those
/// that fit nowhere are reported in `dropped`. With `overload`, the file
/// (when unused) and sname fields take what the options field cannot.
pub fn encode(
    h: &Header,
    options: &[ReplyOption],
    limit: usize,
    overload: bool,
) -> Result<Encoded, TooBig> {
    // END takes one byte in every area used.
    let main_room = limit.saturating_sub(HEADER_LEN + MAGIC_COOKIE.len() + 1);
    let required: usize = options
        .iter()
        .filter(|o| o.required)
        .map(|o| wire_len(&o.value))
        .sum();
    if required > main_room {
        return Err(TooBig);
    }
    let mut areas = place(options, main_room, required, None);
    let spilled = areas.iter().any(Placement::is_empty);
    // Option 52 itself costs three bytes of the options field.
    if overload && spilled && required + 3 <= main_room {
        areas = place(options, main_room - 3, required, Some(h.file.is_empty()));
    }
    let uses = |area: Area| {
        areas
            .iter()
            .flat_map(Placement::parts)
            .any(|(a, _)| *a == area)
    };
    let use_file = uses(Area::File);
    let use_sname = uses(Area::Sname);

    let mut b = Vec::with_capacity(limit.max(MIN_REPLY_LEN));
    b.push(2); // BOOTREPLY
    b.push(h.htype);
    b.push(h.hlen);
    b.push(0); // hops
    b.extend_from_slice(&h.xid.to_be_bytes());
    b.extend_from_slice(&[0, 0]); // secs
    b.extend_from_slice(&h.flags.to_be_bytes());
    for a in [h.ciaddr, h.yiaddr, h.siaddr, h.giaddr] {
        b.extend_from_slice(&a.octets());
    }
    b.extend_from_slice(&h.chaddr);
    // The parts of each option placed in `area`, in option order, onto `out`.
    let put_area = |area: Area, out: &mut Vec<u8>| {
        for (opt, placed) in options.iter().zip(&areas) {
            let mut from = 0;
            for &(a, n) in placed.parts() {
                if a == area {
                    put(out, opt.code, &opt.value[from..from + n]);
                }
                from += n;
            }
        }
    };
    let start = b.len();
    if use_sname {
        put_area(Area::Sname, &mut b);
        b.push(code::END);
    }
    b.resize(start + SNAME_LEN, 0);
    if use_file {
        put_area(Area::File, &mut b);
        b.push(code::END);
    } else {
        b.extend(h.file.iter().copied().take(FILE_LEN - 1));
    }
    b.resize(start + SNAME_LEN + FILE_LEN, 0);
    b.extend_from_slice(&MAGIC_COOKIE);
    if use_file || use_sname {
        let which = u8::from(use_file) | (u8::from(use_sname) << 1);
        b.extend_from_slice(&[code::OVERLOAD, 1, which]);
    }
    put_area(Area::Main, &mut b);
    b.push(code::END);
    if b.len() < MIN_REPLY_LEN {
        b.resize(MIN_REPLY_LEN, 0);
    }
    let dropped = options
        .iter()
        .zip(&areas)
        .filter(|(_, a)| a.is_empty())
        .map(|(o, _)| o.code)
        .collect();
    Ok(Encoded { bytes: b, dropped })
}

/// Decide where each option goes. `required` bytes of the main area are
/// kept for the required options whatever their position in the list.
/// `overflow` is `None` without overload, else whether `file` is free.
/// With overload an option that fits no area whole is split across them
/// (RFC 3396): the options field first, then file, then sname, the order
/// a client joins the parts in.
fn place(
    options: &[ReplyOption],
    main_room: usize,
    required: usize,
    overflow: Option<bool>,
) -> Vec<Placement> {
    let file_room = match overflow {
        Some(true) => FILE_LEN - 1,
        _ => 0,
    };
    let sname_room = if overflow.is_some() { SNAME_LEN - 1 } else { 0 };
    let mut free = [
        (Area::Main, main_room - required),
        (Area::File, file_room),
        (Area::Sname, sname_room),
    ];
    options
        .iter()
        .map(|o| {
            let len = o.value.len();
            if o.required {
                return Placement::whole(Area::Main, len);
            }
            let n = wire_len(&o.value);
            if let Some((area, f)) = free.iter_mut().find(|(_, f)| n <= *f) {
                *f -= n;
                return Placement::whole(*area, len);
            }
            let room: usize = free.iter().map(|(_, f)| room_for(*f)).sum();
            if overflow.is_none() || len == 0 || room < len {
                return Placement::NOWHERE;
            }
            let mut parts = Placement::NOWHERE;
            let mut left = len;
            for (area, f) in free.iter_mut() {
                let take = room_for(*f).min(left);
                if take > 0 {
                    *f -= wire_len(&o.value[..take]);
                    parts.push(*area, take);
                    left -= take;
                }
            }
            parts
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(code: u8, len: usize, required: bool) -> ReplyOption<'static> {
        ReplyOption {
            code,
            value: vec![code; len].into(),
            required,
        }
    }

    /// The options of an encoded reply, as (code, value) in wire order.
    fn main_options(b: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 240;
        while b[at] != 255 {
            if b[at] == 0 {
                at += 1;
                continue;
            }
            let len = b[at + 1] as usize;
            out.push((b[at], b[at + 2..at + 2 + len].to_vec()));
            at += 2 + len;
        }
        out
    }

    #[test]
    fn limit_from_option_57() {
        assert_eq!(message_limit(None, 1500), 548);
        for small in [0, 1, 100, 575] {
            assert_eq!(message_limit(Some(small), 1500), 548);
        }
        assert_eq!(message_limit(Some(1000), 1500), 972);
        assert_eq!(message_limit(Some(9000), 1500), 1472);
    }

    #[test]
    fn padded_to_300_and_ordered() {
        let opts = [opt(53, 1, true), opt(6, 4, false), opt(3, 4, false)];
        let e = encode(&Header::default(), &opts, 548, false).unwrap();
        assert_eq!(e.bytes.len(), 300);
        assert_eq!(&e.bytes[236..240], &MAGIC_COOKIE);
        let codes: Vec<u8> = main_options(&e.bytes).iter().map(|o| o.0).collect();
        assert_eq!(codes, [53, 6, 3]);
        assert!(e.dropped.is_empty());
    }

    #[test]
    fn long_values_split() {
        let opts = [opt(53, 1, true), opt(119, 300, false)];
        let e = encode(&Header::default(), &opts, 1472, false).unwrap();
        let got = main_options(&e.bytes);
        assert_eq!(got[1], (119, vec![119; 255]));
        assert_eq!(got[2], (119, vec![119; 45]));
    }

    #[test]
    fn overflow_dropped_and_reported() {
        // 308 bytes of room, 9 kept for 53 and 54: 100 fits, 101 does not,
        // the smaller 102 after it still does.
        let opts = [
            opt(53, 1, true),
            opt(100, 198, false),
            opt(101, 100, false),
            opt(102, 10, false),
            opt(54, 4, true),
        ];
        let e = encode(&Header::default(), &opts, 548, false).unwrap();
        assert!(e.bytes.len() <= 548);
        assert_eq!(e.dropped, [101]);
        let codes: Vec<u8> = main_options(&e.bytes).iter().map(|o| o.0).collect();
        assert_eq!(codes, [53, 100, 102, 54], "required 54 kept, 101 lost");
    }

    #[test]
    fn required_too_big() {
        let opts = [opt(61, 600, true)];
        assert_eq!(
            encode(&Header::default(), &opts, 548, false).unwrap_err(),
            TooBig
        );
    }

    #[test]
    fn overload_into_file_and_sname() {
        let opts = [
            opt(53, 1, true),
            opt(100, 290, false),
            opt(101, 100, false),
            opt(102, 50, false),
        ];
        let e = encode(&Header::default(), &opts, 548, true).unwrap();
        assert!(e.dropped.is_empty());
        let main = main_options(&e.bytes);
        assert_eq!(main[0], (52, vec![3]));
        assert_eq!(e.bytes[108], 101, "file carries option 101");
        assert_eq!(e.bytes[108 + 102], 255);
        assert_eq!(e.bytes[44], 102, "sname carries option 102");
        assert_eq!(e.bytes.len(), 548.min(e.bytes.len()));
    }

    /// The value of `code` joined from its parts: options field, then
    /// file and sname as option 52 says (RFC 3396 §7).
    fn joined(b: &[u8], code: u8) -> Vec<u8> {
        let walk = |from: usize, to: usize, out: &mut Vec<u8>| {
            let mut at = from;
            while at < to && b[at] != 255 {
                if b[at] == 0 {
                    at += 1;
                    continue;
                }
                let len = b[at + 1] as usize;
                if b[at] == code {
                    out.extend_from_slice(&b[at + 2..at + 2 + len]);
                }
                at += 2 + len;
            }
        };
        let mut out = Vec::new();
        walk(240, b.len(), &mut out);
        let overload = main_options(b)
            .iter()
            .find(|o| o.0 == 52)
            .map_or(0, |o| o.1[0]);
        if overload & 1 != 0 {
            walk(108, 236, &mut out);
        }
        if overload & 2 != 0 {
            walk(44, 108, &mut out);
        }
        out
    }

    #[test]
    fn long_option_split_across_areas() {
        // 295 bytes of options field left after 52, 53 and 54; 100 takes
        // 202, so a 217-byte 121 fits no area whole: it is split, the
        // options field first, then file, then sname.
        let mut routes = opt(121, 217, false);
        routes.value = (0..217).map(|i| i as u8).collect();
        let opts = [
            opt(53, 1, true),
            opt(54, 4, true),
            opt(100, 200, false),
            routes.clone(),
        ];
        let e = encode(&Header::default(), &opts, 548, true).unwrap();
        assert!(e.dropped.is_empty(), "{:?}", e.dropped);
        assert!(e.bytes.len() <= 548);
        assert_eq!(joined(&e.bytes, 121), *routes.value);
        assert_eq!(main_options(&e.bytes)[0], (52, vec![3]));
        let in_main: Vec<_> = main_options(&e.bytes)
            .into_iter()
            .filter(|o| o.0 == 121)
            .collect();
        assert_eq!(in_main.len(), 1);
        assert_eq!(in_main[0].1, routes.value[..91]);
        assert_eq!(&e.bytes[108..110], &[121, 125], "file: the next 125 bytes");
        assert_eq!(&e.bytes[44..47], &[121, 1, 216], "sname: the last byte");
        // Without overload it is left out, as before.
        let e = encode(&Header::default(), &opts, 548, false).unwrap();
        assert_eq!(e.dropped, [121]);
    }

    #[test]
    fn option_over_255_bytes_split_across_areas() {
        let mut big = opt(120, 400, false);
        big.value = (0..400).map(|i| (i % 251) as u8).collect();
        let opts = [opt(53, 1, true), big.clone()];
        let e = encode(&Header::default(), &opts, 548, true).unwrap();
        assert!(e.dropped.is_empty());
        assert_eq!(joined(&e.bytes, 120), *big.value);
        // More than all three areas hold: dropped whole, never cut short.
        let huge = opt(120, 500, false);
        let e = encode(&Header::default(), &[opt(53, 1, true), huge], 548, true).unwrap();
        assert_eq!(e.dropped, [120]);
    }

    #[test]
    fn boot_file_kept_when_not_overloaded() {
        let h = Header {
            file: b"pxelinux.0".to_vec(),
            ..Header::default()
        };
        let e = encode(&h, &[opt(53, 1, true)], 548, true).unwrap();
        assert_eq!(&e.bytes[108..118], b"pxelinux.0");
        assert_eq!(e.bytes[118], 0);
    }
}
