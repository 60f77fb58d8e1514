//! The server's UDP socket: datagrams in with their arrival interface
//! (IP_PKTINFO), replies out through a chosen interface and source address.

use std::collections::HashMap;
use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    recvmmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    MultiHeaders, RecvMsg, SockaddrIn,
};

/// Largest UDP payload over IPv4: reads never truncate a legal datagram.
pub const MAX_DATAGRAM: usize = 65_507;

/// One received datagram, described; its bytes are in the caller's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Datagram {
    pub len: usize,
    pub src: SocketAddrV4,
    pub ifindex: u32,
    /// The local address it reached (`ipi_spec_dst`): for a broadcast, the
    /// arrival interface's primary address.
    pub local: Ipv4Addr,
    pub truncated: bool,
}

/// Datagrams read with one recvmmsg(2): fewer system calls when requests
/// come faster than they are answered.
pub struct Batch {
    /// One buffer of `MAX_DATAGRAM` bytes per datagram, end to end: one
    /// allocation, so large that it is mapped zeroed, never cleared (each
    /// buffer alone would be memset, at every start under inetd).
    bufs: Vec<u8>,
    headers: MultiHeaders<SockaddrIn>,
    got: Vec<Datagram>,
}

/// Bytes of queued datagrams the server socket may hold.
const RECEIVE_BUFFER: usize = 4 << 20;

/// Most datagrams read at once.
pub const BATCH: usize = 32;

impl Batch {
    pub fn new(size: usize) -> Batch {
        Batch {
            // Untouched pages of it cost no memory.
            bufs: vec![0u8; size * MAX_DATAGRAM],
            headers: MultiHeaders::preallocate(size, Some(nix::cmsg_space!(libc::in_pktinfo))),
            got: Vec::with_capacity(size),
        }
    }

    /// The datagrams of the last read, with their bytes.
    pub fn datagrams(&self) -> impl Iterator<Item = (&[u8], &Datagram)> {
        self.got
            .iter()
            .zip(self.bufs.chunks(MAX_DATAGRAM))
            .map(|(d, b)| (&b[..d.len.min(b.len())], d))
    }

    pub fn len(&self) -> usize {
        self.got.len()
    }

    pub fn is_empty(&self) -> bool {
        self.got.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.bufs.len() / MAX_DATAGRAM
    }
}

/// What the kernel said of one received datagram.
fn describe(msg: &RecvMsg<'_, '_, SockaddrIn>) -> io::Result<Datagram> {
    let src = msg
        .address
        .map(|a| SocketAddrV4::new(a.ip(), a.port()))
        .unwrap_or_else(|| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
    let mut d = Datagram {
        len: msg.bytes,
        src,
        ifindex: 0,
        local: Ipv4Addr::UNSPECIFIED,
        truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
    };
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::Ipv4PacketInfo(info) = c {
            d.ifindex = info.ipi_ifindex as u32;
            d.local = Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr));
        }
    }
    Ok(d)
}

pub struct Socket {
    fd: OwnedFd,
}

impl Socket {
    /// Take an inherited or freshly bound socket and turn on what the server
    /// needs: arrival interface per datagram, broadcast replies, no blocking.
    pub fn new(fd: OwnedFd) -> io::Result<Socket> {
        setsockopt(&fd, sockopt::Ipv4PacketInfo, &true)?;
        setsockopt(&fd, sockopt::Broadcast, &true)?;
        // Room for the requests that come while in.aasd compacts its log
        // or syncs: the default (about 200 datagrams) overflows in a few
        // milliseconds of a burst. Beyond rmem_max only with CAP_NET_ADMIN.
        if setsockopt(&fd, sockopt::RcvBufForce, &RECEIVE_BUFFER).is_err() {
            let _ = setsockopt(&fd, sockopt::RcvBuf, &RECEIVE_BUFFER);
        }
        let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
        let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
        Ok(Socket { fd })
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// The port the socket is bound to.
    pub fn local_port(&self) -> io::Result<u16> {
        let addr: SockaddrIn = nix::sys::socket::getsockname(self.fd.as_raw_fd())?;
        Ok(addr.port())
    }

    /// Read the datagrams queued, up to the batch's capacity; none when
    /// nothing is queued.
    pub fn recv_batch(&self, batch: &mut Batch) -> io::Result<()> {
        batch.got.clear();
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = batch
            .bufs
            .chunks_mut(MAX_DATAGRAM)
            .map(|b| [IoSliceMut::new(b)])
            .collect();
        let msgs = match recvmmsg(
            self.fd.as_raw_fd(),
            &mut batch.headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(m) => m,
            Err(Errno::EAGAIN) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for msg in msgs {
            batch.got.push(describe(&msg)?);
        }
        Ok(())
    }

    /// Send out of interface `ifindex` with source address `src` (IP_PKTINFO),
    /// so broadcasts leave by the interface the request came in on even
    /// without a default route.
    pub fn send(
        &self,
        bytes: &[u8],
        to: SocketAddrV4,
        ifindex: u32,
        src: Ipv4Addr,
    ) -> io::Result<()> {
        let info = libc::in_pktinfo {
            ipi_ifindex: ifindex as i32,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(src).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
        let dest = SockaddrIn::from(to);
        sendmsg(
            self.fd.as_raw_fd(),
            &[IoSlice::new(bytes)],
            &cmsg,
            MsgFlags::empty(),
            Some(&dest),
        )?;
        Ok(())
    }
}

/// Wait until one of `fds` is readable. Returns which are; all false when
/// the timeout passed; `Err(Interrupted)` when a signal arrived. `None`
/// entries are never ready.
pub fn wait(fds: &[Option<BorrowedFd<'_>>], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let ms = match timeout {
        None => PollTimeout::NONE,
        // Round up, so a deadline is never polled for 0 ms again and again.
        Some(t) => PollTimeout::try_from(t.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX),
    };
    let mut polled: Vec<PollFd> = fds
        .iter()
        .flatten()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    match poll(&mut polled, ms) {
        Ok(_) => {}
        Err(Errno::EINTR) => return Err(io::Error::from(io::ErrorKind::Interrupted)),
        Err(e) => return Err(e.into()),
    }
    let mut ready = polled.iter().map(|p| {
        p.revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR))
    });
    Ok(fds
        .iter()
        .map(|fd| fd.is_some() && ready.next().unwrap_or(false))
        .collect())
}

/// One network interface as the server sees it.
#[derive(Debug, Clone, Default)]
pub struct Interface {
    pub name: String,
    pub addrs: Vec<Ipv4Addr>,
    /// Prefix length of each of `addrs`, in the same order.
    pub prefixes: Vec<u8>,
    pub mtu: usize,
}

/// The host's interfaces, read with getifaddrs and kept for a while: an
/// interface unknown to the table, or a table older than `MAX_AGE`, causes a
/// fresh read, so addresses added later are seen.
pub struct Interfaces {
    by_index: HashMap<u32, Interface>,
    all: Vec<Ipv4Addr>,
    read_at: Instant,
}

const MAX_AGE: Duration = Duration::from_secs(60);

impl Interfaces {
    pub fn read() -> io::Result<Interfaces> {
        let mut by_index: HashMap<u32, Interface> = HashMap::new();
        for ifa in nix::ifaddrs::getifaddrs()? {
            let Ok(index) = nix::net::if_::if_nametoindex(ifa.interface_name.as_str()) else {
                continue;
            };
            let entry = by_index.entry(index).or_insert_with(|| Interface {
                mtu: read_mtu(&ifa.interface_name),
                name: ifa.interface_name.clone(),
                addrs: Vec::new(),
                prefixes: Vec::new(),
            });
            if let Some(sin) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
                entry.addrs.push(sin.ip());
                let mask = ifa.netmask.as_ref().and_then(|m| m.as_sockaddr_in());
                entry
                    .prefixes
                    .push(mask.map_or(32, |m| u32::from(m.ip()).leading_ones() as u8));
            }
        }
        let all = by_index.values().flat_map(|i| i.addrs.clone()).collect();
        Ok(Interfaces {
            by_index,
            all,
            read_at: Instant::now(),
        })
    }

    /// The interface with this index, rereading the table when needed.
    /// Index 0 is no interface (a datagram without IP_PKTINFO, such as
    /// the one that woke an activated server): no reason to reread.
    pub fn get(&mut self, index: u32) -> Option<&Interface> {
        let unknown = index != 0 && !self.by_index.contains_key(&index);
        if unknown || self.read_at.elapsed() > MAX_AGE {
            if let Ok(fresh) = Interfaces::read() {
                *self = fresh;
            }
        }
        self.by_index.get(&index)
    }

    /// The interface with this index as last read (an empty one when
    /// unknown), for when [`Interfaces::get`] has refreshed the table.
    pub fn known(&self, index: u32) -> &Interface {
        static UNKNOWN: Interface = Interface {
            name: String::new(),
            addrs: Vec::new(),
            prefixes: Vec::new(),
            mtu: 0,
        };
        self.by_index.get(&index).unwrap_or(&UNKNOWN)
    }

    /// The interface that has `addr`, with its index.
    pub fn owner_of(&self, addr: Ipv4Addr) -> Option<(u32, &Interface)> {
        self.by_index
            .iter()
            .find(|(_, i)| i.addrs.contains(&addr))
            .map(|(n, i)| (*n, i))
    }

    /// Every IPv4 address of this host.
    pub fn all_addrs(&self) -> &[Ipv4Addr] {
        &self.all
    }

    /// Every interface with an IPv4 address, by name.
    pub fn with_addresses(&self) -> Vec<&Interface> {
        let mut v: Vec<&Interface> = self
            .by_index
            .values()
            .filter(|i| !i.addrs.is_empty())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

/// The MTU from sysfs; 1500 when it cannot be read.
fn read_mtu(name: &str) -> usize {
    std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1500)
}
