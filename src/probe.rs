//! `probe = yes`: one ICMP echo to an address before it is offered. An
//! answer means some host uses it without the AAS knowing; the offer is
//! held back meanwhile, while other clients are served, and sent when
//! `probe_timeout` passes in silence. When probes cannot be sent (ENOBUFS
//! under a flood), offers go out unprobed, and the log says so once.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::socket::{
    recvfrom, sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn,
};

use crate::dhcp::Reply;
use crate::log::Level;
use crate::net::Datagram;
use crate::{log_info, log_limited};

/// An offer waiting for its probe.
pub struct Waiting {
    pub addr: Ipv4Addr,
    pub deadline: Instant,
    pub offer: Reply,
    /// The DISCOVER, to be answered again if the address is in use.
    pub request: Vec<u8>,
    pub arrival: Datagram,
    /// Addresses found in use so far for this DISCOVER.
    pub conflicts: u8,
}

pub struct Prober {
    fd: OwnedFd,
    ident: u16,
    seq: u16,
    waiting: Vec<Waiting>,
    failing: Failing,
}

/// Probes that cannot be sent: one line says probing is off, one that it
/// works again, each at most once a minute, however many offers go out.
#[derive(Default)]
struct Failing {
    /// The last probe failed.
    now: bool,
    /// Offers sent unprobed since probes began to fail.
    unprobed: u64,
    /// "probing is off" was logged and "probes work again" not yet.
    said_off: bool,
}

impl Failing {
    fn failed(&mut self, addr: Ipv4Addr, e: Errno) {
        if !self.now {
            self.now = true;
            self.unprobed = 0;
        }
        self.unprobed += 1;
        if !self.said_off {
            self.said_off = log_limited!(
                Level::Error,
                "probing off",
                1,
                "probe of {addr}: {e}: probing is off while probes fail, offers go out \
                 unprobed (logged at most once a minute)"
            );
        }
    }

    fn worked(&mut self) {
        if self.now && self.said_off {
            log_info!(
                "probes work again ({} offers went out unprobed)",
                self.unprobed
            );
            self.said_off = false;
        }
        self.now = false;
    }
}

const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;
const PAYLOAD: &[u8] = b"in.dhcpd probe";

impl Prober {
    /// A raw ICMP socket: needs CAP_NET_RAW.
    pub fn new() -> io::Result<Prober> {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Raw,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            SockProtocol::Icmp,
        )?;
        Ok(Prober {
            fd,
            ident: std::process::id() as u16,
            seq: 0,
            waiting: Vec::new(),
            failing: Failing::default(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Send one echo request to `addr`; false if it could not be sent
    /// (logged here, see [`Failing`]): offer the address unprobed.
    pub fn echo(&mut self, addr: Ipv4Addr) -> bool {
        self.seq = self.seq.wrapping_add(1);
        let packet = echo_request(self.ident, self.seq);
        let to = SockaddrIn::from(std::net::SocketAddrV4::new(addr, 0));
        match sendto(self.fd.as_raw_fd(), &packet, &to, MsgFlags::empty()) {
            Ok(_) => {
                self.failing.worked();
                true
            }
            Err(e) => {
                self.failing.failed(addr, e);
                false
            }
        }
    }

    /// Hold an offer until its deadline or an answer from its address.
    pub fn hold(&mut self, w: Waiting) {
        self.waiting.push(w);
    }

    /// When the next offer is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiting.iter().map(|w| w.deadline).min()
    }

    /// Offers whose probe went unanswered: they can be sent.
    pub fn expired(&mut self, now: Instant) -> Vec<Waiting> {
        let (due, rest) = self.waiting.drain(..).partition(|w| w.deadline <= now);
        self.waiting = rest;
        due
    }

    /// Read the echo replies queued; the offers whose address answered.
    pub fn answered(&mut self, buf: &mut [u8]) -> Vec<Waiting> {
        let mut found = Vec::new();
        loop {
            let (n, from) = match recvfrom::<SockaddrIn>(self.fd.as_raw_fd(), buf) {
                Ok((n, Some(from))) => (n, from.ip()),
                Ok((_, None)) => continue,
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            };
            if !is_our_echo_reply(&buf[..n], self.ident) {
                continue;
            }
            let (hit, rest) = self.waiting.drain(..).partition(|w| w.addr == from);
            self.waiting = rest;
            found.extend::<Vec<Waiting>>(hit);
        }
        found
    }
}

/// An ICMP echo request (RFC 792) with its checksum.
fn echo_request(ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![ECHO_REQUEST, 0, 0, 0];
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(PAYLOAD);
    let sum = checksum(&p);
    p[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The Internet checksum (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A raw socket reads the IP header too: skip it, then check type and id.
fn is_our_echo_reply(packet: &[u8], ident: u16) -> bool {
    let Some(first) = packet.first() else {
        return false;
    };
    let Some(icmp) = packet.get(usize::from(first & 0x0f) * 4..) else {
        return false;
    };
    icmp.len() >= 8 && icmp[0] == ECHO_REPLY && icmp[4..6] == ident.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_checksums_to_zero() {
        let p = echo_request(0x1234, 7);
        assert_eq!(checksum(&p), 0);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
    }

    #[test]
    fn failing_probes_are_said_once_and_their_end_once() {
        let addr = Ipv4Addr::new(10, 0, 0, 1);
        let mut f = Failing::default();
        let off = |lines: &[(crate::log::Level, String)]| {
            lines
                .iter()
                .filter(|(_, l)| l.contains("probing is off"))
                .count()
        };
        let ((), lines) = crate::log::capture(|| {
            for _ in 0..1000 {
                f.failed(addr, Errno::ENOBUFS);
            }
        });
        assert!(f.now && f.said_off);
        assert_eq!(f.unprobed, 1000);
        assert_eq!(off(&lines), 1, "{lines:?}");
        f.worked();
        assert!(!f.now && !f.said_off);
        // Failing again within the minute: counted, not logged.
        let ((), lines) = crate::log::capture(|| f.failed(addr, Errno::ENOBUFS));
        assert!(f.now && !f.said_off);
        assert_eq!(off(&lines), 0, "{lines:?}");
        assert_eq!(f.unprobed, 1);
        // Nor is its end, which was never said to have begun.
        f.worked();
        assert!(!f.said_off && !f.now);
    }

    #[test]
    fn only_our_echo_replies_count() {
        let mut ip = vec![0x45];
        ip.resize(20, 0);
        let reply = |kind: u8, ident: u16| {
            let mut p = ip.clone();
            p.extend_from_slice(&[kind, 0, 0, 0]);
            p.extend_from_slice(&ident.to_be_bytes());
            p.extend_from_slice(&[0, 1]);
            p
        };
        assert!(is_our_echo_reply(&reply(ECHO_REPLY, 9), 9));
        assert!(!is_our_echo_reply(&reply(ECHO_REPLY, 8), 9));
        assert!(!is_our_echo_reply(&reply(ECHO_REQUEST, 9), 9));
        assert!(!is_our_echo_reply(&[0x4f], 9));
        assert!(!is_our_echo_reply(&[], 9));
    }
}
