//! dhcp_reflector: the calibration peer of `make bench`. Not a DHCP server.
//!
//! It answers every relayed DHCPDISCOVER with a DHCPOFFER and every
//! DHCPREQUEST with a DHCPACK, keeps no state and checks nothing beyond the
//! packet's shape. Whatever rate it sustains is the most perfdhcp, the veth
//! pair and the kernel allow on the machine, so it is the ceiling against
//! which the real servers are read.
//!
//! One thread, one socket, two fixed buffers: no allocation per packet, so
//! that its cost stays the bare receive and send.
//!
//! Usage: `dhcp_reflector SERVER_IP [PORT]` (port 67 by default). The
//! address given out is 10.80.x.y, derived from chaddr.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::exit;

/// RFC 2131 3: the options field starts with this cookie.
const COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Offset of the options after the fixed BOOTP header and the cookie.
const OPTIONS: usize = 240;
/// RFC 1542 2.1: a BOOTP message is at least 300 bytes on the wire.
const MIN_REPLY: usize = 300;

const DHCPDISCOVER: u8 = 1;
const DHCPOFFER: u8 = 2;
const DHCPREQUEST: u8 = 3;
const DHCPACK: u8 = 5;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 || args.len() > 3 {
        eprintln!("usage: dhcp_reflector SERVER_IP [PORT]");
        exit(2);
    }
    let server: Ipv4Addr = args[1].parse().unwrap_or_else(|_| {
        eprintln!("dhcp_reflector: {}: not an IPv4 address", args[1]);
        exit(2)
    });
    let port: u16 = match args.get(2) {
        Some(p) => p.parse().unwrap_or_else(|_| {
            eprintln!("dhcp_reflector: {p}: not a port");
            exit(2)
        }),
        None => 67,
    };
    let sock = UdpSocket::bind(SocketAddrV4::new(server, port)).unwrap_or_else(|e| {
        eprintln!("dhcp_reflector: bind {server}:{port}: {e}");
        exit(1)
    });
    let mut req = [0u8; 1500];
    let mut reply = [0u8; 576];
    loop {
        let (n, from) = match sock.recv_from(&mut req) {
            Ok(got) => got,
            Err(_) => continue,
        };
        let Some(len) = answer(&req[..n], server, &mut reply) else {
            continue;
        };
        // RFC 2131 4.1: a relayed request is answered to giaddr, port 67.
        let giaddr = Ipv4Addr::new(req[24], req[25], req[26], req[27]);
        let to = if giaddr.is_unspecified() {
            from
        } else {
            SocketAddrV4::new(giaddr, 67).into()
        };
        // A full send buffer loses the reply, as a real server would.
        let _ = sock.send_to(&reply[..len], to);
    }
}

/// Build the reply to `req` in `out`; its length, or None to ignore `req`.
fn answer(req: &[u8], server: Ipv4Addr, out: &mut [u8; 576]) -> Option<usize> {
    if req.len() < OPTIONS || req[0] != 1 || req[236..OPTIONS] != COOKIE {
        return None;
    }
    let reply_type = match message_type(&req[OPTIONS..])? {
        DHCPDISCOVER => DHCPOFFER,
        DHCPREQUEST => DHCPACK,
        _ => return None,
    };
    out.fill(0);
    // xid, flags, giaddr and chaddr are echoed; sname and file stay empty.
    out[..236].copy_from_slice(&req[..236]);
    out[0] = 2;
    out[12..16].fill(0);
    out[16..20].copy_from_slice(&address_for(&req[28..34]).octets());
    out[236..OPTIONS].copy_from_slice(&COOKIE);
    let s = server.octets();
    let options = [
        53, 1, reply_type, // message type
        54, 4, s[0], s[1], s[2], s[3], // server identifier
        51, 4, 0, 0, 0x0e, 0x10, // lease time 3600 s
        1, 4, 255, 255, 0, 0,   // subnet mask /16
        255, // end
    ];
    out[OPTIONS..OPTIONS + options.len()].copy_from_slice(&options);
    Some(MIN_REPLY.max(OPTIONS + options.len()))
}

/// The value of option 53, walking the options without reading past them.
fn message_type(mut opts: &[u8]) -> Option<u8> {
    while let [code, rest @ ..] = opts {
        match *code {
            0 => opts = rest,
            255 => return None,
            _ => {
                let (&len, rest) = rest.split_first()?;
                let value = rest.get(..len as usize)?;
                if *code == 53 && len >= 1 {
                    return Some(value[0]);
                }
                opts = &rest[len as usize..];
            }
        }
    }
    None
}

/// 10.80.0.10 to 10.80.253.241: a fixed address per hardware address
/// (FNV-1a of the six bytes), so a client's OFFER and ACK agree.
fn address_for(mac: &[u8]) -> Ipv4Addr {
    let hash = mac.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let host = 10 + hash % 65_000;
    Ipv4Addr::new(10, 80, (host >> 8) as u8, host as u8)
}
