//! How the server got its socket: systemd socket activation (fd 3), inetd
//! (fd 0), or standalone (bind it ourselves). Detected, never configured.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    bind, getsockname, getsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
    SockaddrLike, SockaddrStorage,
};
use nix::sys::stat::{fstat, SFlag};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Systemd,
    Inetd,
    Standalone,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Systemd => "systemd socket activation",
            Mode::Inetd => "inetd",
            Mode::Standalone => "standalone",
        })
    }
}

/// Why no socket could be had. `exit_code` says how the process ends.
#[derive(Debug)]
pub enum Error {
    /// An inherited socket that is not an AF_INET datagram socket.
    WrongSocket {
        fd: RawFd,
        what: String,
    },
    /// `-i` given but fd 0 is no socket.
    NotInetd,
    Bind(SocketAddrV4, nix::Error),
    Sys(&'static str, nix::Error),
}

impl Error {
    /// 2 for a setup the administrator must change, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::WrongSocket { .. } | Error::NotInetd => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WrongSocket { fd, what } => write!(
                f,
                "fd {fd} is {what}, not an AF_INET datagram socket: use `dgram udp wait` in inetd.conf"
            ),
            Error::NotInetd => write!(f, "-i given but fd 0 is not a socket"),
            Error::Bind(addr, nix::Error::EADDRINUSE) => write!(
                f,
                "bind {addr}: {}: another DHCP server (in.dhcpd, dnsmasq, ISC dhcpd, Kea, or \
                 inetd or systemd holding the port) already listens on UDP port {} here; \
                 stop it first",
                nix::Error::EADDRINUSE.desc(),
                addr.port()
            ),
            Error::Bind(addr, e) => write!(f, "bind {addr}: {}", e.desc()),
            Error::Sys(what, e) => write!(f, "{what}: {}", e.desc()),
        }
    }
}

impl std::error::Error for Error {}

/// systemd's first passed descriptor (sd_listen_fds(3)).
const SD_LISTEN_FDS_START: RawFd = 3;

/// Find or make the server's socket. `force` is `-i` or `-s`.
pub fn activate(force: Option<Mode>, bootps: u16) -> Result<(Mode, OwnedFd), Error> {
    if force != Some(Mode::Standalone) {
        if force.is_none() && listen_fds() > 0 {
            check_inherited(SD_LISTEN_FDS_START)?;
            // SAFETY: systemd passed fd 3 to this very process (LISTEN_PID)
            // and nothing else in the program owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(SD_LISTEN_FDS_START) };
            return Ok((Mode::Systemd, fd));
        }
        if is_socket(0) {
            check_inherited(0)?;
            // SAFETY: fd 0 is a socket inherited from inetd; we own it now.
            let fd = unsafe { OwnedFd::from_raw_fd(0) };
            return Ok((Mode::Inetd, fd));
        }
        if force == Some(Mode::Inetd) {
            return Err(Error::NotInetd);
        }
    }
    Ok((Mode::Standalone, bind_standalone(bootps)?))
}

/// LISTEN_FDS when LISTEN_PID names us; the variables are removed so
/// children do not inherit them.
fn listen_fds() -> i32 {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    if pid_ok {
        n
    } else {
        0
    }
}

fn is_socket(fd: RawFd) -> bool {
    fstat(fd)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK)
}

/// An inherited descriptor must be an AF_INET datagram socket.
fn check_inherited(fd: RawFd) -> Result<(), Error> {
    if !is_socket(fd) {
        return Err(Error::WrongSocket {
            fd,
            what: "not a socket".into(),
        });
    }
    // SAFETY: fd is open (fstat succeeded) for the duration of this call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let ty = getsockopt(&borrowed, sockopt::SockType).map_err(|e| Error::Sys("SO_TYPE", e))?;
    let addr: SockaddrStorage = getsockname(fd).map_err(|e| Error::Sys("getsockname", e))?;
    let family = addr.family();
    if ty != SockType::Datagram || family != Some(AddressFamily::Inet) {
        return Err(Error::WrongSocket {
            fd,
            what: format!("a {ty:?} socket of family {family:?}"),
        });
    }
    Ok(())
}

fn bind_standalone(port: u16) -> Result<OwnedFd, Error> {
    let addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::Sys("socket", e))?;
    // No SO_REUSEADDR: with it a second server could bind the same port
    // beside us, and both would answer every DISCOVER.
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(addr),
    )
    .map_err(|e| Error::Bind(addr, e))?;
    Ok(fd)
}
