//! `-b port`: BOOTP requests (no option 53) go to a local bootpd, and its
//! replies come back through in.dhcpd to the client.
//!
//! in.dhcpd acts as a BOOTP relay agent for bootpd (RFC 1542): it sends the
//! request to 127.0.0.1:port with giaddr set to RELAY_ADDR, so bootpd answers
//! to RELAY_ADDR:port, where a socket of ours listens. in.dhcpd then sends
//! the reply from the BOOTP server port, to the client, the real relay or
//! ciaddr as RFC 951/1542 say. Left to itself, bootpd would answer a
//! relayed client at giaddr:port (its own port, where no relay listens) and
//! a local client from port `port`, which clients that check the source
//! port ignore.
//!
//! Our socket shares the port with bootpd's, so that needs SO_REUSEADDR on
//! both: inetd and systemd set it on the socket they pass bootpd. CMU bootpd
//! started by hand binds the port alone; then in.dhcpd forwards the request
//! unchanged and bootpd answers the client itself.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType};

use crate::dhcp::packet::{self, offset, Request, BOOTREPLY, HEADER_LEN};
use crate::net::Datagram;
use crate::{log_debug, log_info};

/// Where bootpd sends its replies: a loopback address of its own, so that
/// requests to 127.0.0.1 still reach bootpd and not this socket.
pub const RELAY_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Where bootpd is asked.
const BOOTPD_ADDR: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// A reply later than this is for a client that has given up.
const PENDING_FOR: Duration = Duration::from_secs(10);
/// Requests remembered at once; the oldest is forgotten first.
const MAX_PENDING: usize = 1024;

/// A request sent to bootpd, remembered until its reply comes back.
#[derive(Debug, Clone)]
pub struct Pending {
    pub request: Request,
    /// How it arrived: the reply leaves the same way.
    pub arrival: Datagram,
    sent: Instant,
}

pub struct Forwarder {
    port: u16,
    /// Bound to RELAY_ADDR:port; `None` when bootpd holds the port alone.
    socket: Option<UdpSocket>,
    /// For the unchanged forward when `socket` is `None`.
    plain: UdpSocket,
    pending: VecDeque<Pending>,
}

impl Forwarder {
    pub fn new(port: u16) -> io::Result<Forwarder> {
        let socket = match reply_socket(port) {
            Ok(s) => Some(s),
            Err(e) => {
                log_info!(
                    "-b {port}: cannot listen on {RELAY_ADDR}:{port} for bootpd's replies ({e}); \
                     bootpd answers BOOTP clients itself, from port {port}. Start bootpd from \
                     inetd or a systemd socket so in.dhcpd can relay its replies"
                );
                None
            }
        };
        let plain = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        Ok(Forwarder {
            port,
            socket,
            plain,
            pending: VecDeque::new(),
        })
    }

    /// The socket to poll for bootpd's replies.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.socket.as_ref().map(|s| s.as_fd())
    }

    /// Hand a BOOTP request to bootpd.
    pub fn forward(&mut self, bytes: &[u8], request: &Request, arrival: &Datagram) {
        let to = SocketAddrV4::new(BOOTPD_ADDR, self.port);
        if self.socket.is_some() {
            self.remember(request, arrival);
        }
        let result = match &self.socket {
            Some(s) => {
                let mut relayed = bytes.to_vec();
                packet::set_addr(&mut relayed, offset::GIADDR, RELAY_ADDR);
                s.send_to(&relayed, to)
            }
            None => self.plain.send_to(bytes, to),
        };
        match result {
            Ok(_) => log_info!(
                "BOOTREQUEST from {} xid {:#x}: forwarded to bootpd at {to}",
                request.mac(),
                request.xid
            ),
            Err(e) => log_info!(
                "BOOTREQUEST from {}: sending to bootpd at {to}: {e}",
                request.mac()
            ),
        }
    }

    fn remember(&mut self, request: &Request, arrival: &Datagram) {
        let now = Instant::now();
        while self
            .pending
            .front()
            .is_some_and(|p| now.duration_since(p.sent) > PENDING_FOR)
            || self.pending.len() >= MAX_PENDING
        {
            self.pending.pop_front();
        }
        // A retransmission replaces the earlier copy.
        self.pending
            .retain(|p| !(p.request.xid == request.xid && p.request.chaddr == request.chaddr));
        self.pending.push_back(Pending {
            request: request.clone(),
            arrival: *arrival,
            sent: now,
        });
    }

    /// Read one datagram from bootpd. A reply comes with its request,
    /// giaddr restored; anything that does not answer a request we forwarded
    /// is dropped with a debug line.
    pub fn receive(&mut self, buf: &mut [u8]) -> io::Result<Received> {
        let Some(socket) = &self.socket else {
            return Ok(Received::Empty);
        };
        let (n, from) = match socket.recv_from(buf) {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Received::Empty),
            Err(e) => return Err(e),
        };
        let bytes = &buf[..n];
        if n < HEADER_LEN || bytes[offset::OP] != BOOTREPLY {
            log_debug!("drop from {from} on the bootpd port: not a BOOTREPLY");
            return Ok(Received::Dropped);
        }
        let xid = packet::be32(bytes, offset::XID);
        let found = self
            .pending
            .iter()
            .position(|p| p.request.xid == xid && p.request.chaddr[..] == bytes[offset::CHADDR]);
        let Some(pending) = found.and_then(|i| self.pending.remove(i)) else {
            log_debug!("drop from {from}: bootpd reply xid {xid:#x} matches no forwarded request");
            return Ok(Received::Dropped);
        };
        let mut reply = bytes.to_vec();
        packet::set_addr(&mut reply, offset::GIADDR, pending.request.giaddr);
        Ok(Received::Reply(reply, pending))
    }
}

/// What one read of the bootpd socket gave.
pub enum Received {
    /// Nothing was queued.
    Empty,
    /// A datagram that answers nothing we sent.
    Dropped,
    /// bootpd's reply, ready for the client, and the request it answers.
    Reply(Vec<u8>, Pending),
}

/// RELAY_ADDR:port with SO_REUSEADDR, non-blocking.
fn reply_socket(port: u16) -> io::Result<UdpSocket> {
    let fd: OwnedFd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    bind(
        fd.as_raw_fd(),
        &nix::sys::socket::SockaddrIn::from(SocketAddrV4::new(RELAY_ADDR, port)),
    )?;
    Ok(UdpSocket::from(fd))
}
