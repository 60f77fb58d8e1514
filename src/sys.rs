//! The few libc calls nix does not wrap, each with its SAFETY note.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

/// Add a complete ARP entry `ip` -> `hw` on interface `ifname` (SIOCSARP),
/// so a unicast reply reaches a client that has no address yet and so cannot
/// answer ARP (RFC 2131 §4.1). Needs CAP_NET_ADMIN.
pub fn set_arp(sock: &OwnedFd, ifname: &str, ip: Ipv4Addr, hw: &[u8]) -> io::Result<()> {
    // SAFETY: arpreq is plain old data; all-zero is a valid value.
    let mut req: libc::arpreq = unsafe { std::mem::zeroed() };
    let pa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in (16 bytes) fits in sockaddr (16 bytes); both are POD.
    req.arp_pa = unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(pa) };
    req.arp_ha.sa_family = libc::ARPHRD_ETHER;
    let n = hw.len().min(req.arp_ha.sa_data.len());
    for (dst, src) in req.arp_ha.sa_data.iter_mut().zip(&hw[..n]) {
        *dst = *src as libc::c_char;
    }
    req.arp_flags = libc::ATF_COM;
    let name = ifname.as_bytes();
    if name.len() >= req.arp_dev.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    for (dst, src) in req.arp_dev.iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCSARP reads one arpreq, which lives for the whole call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSARP, &req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// getservbyname(3) for UDP: the port of a service in /etc/services.
pub fn udp_service_port(name: &str) -> Option<u16> {
    service_port(name, c"udp")
}

/// getservbyname(3) for TCP.
pub fn tcp_service_port(name: &str) -> Option<u16> {
    service_port(name, c"tcp")
}

fn service_port(name: &str, proto: &std::ffi::CStr) -> Option<u16> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: both arguments are NUL-terminated strings that outlive the
    // call; the result points to static storage that we read at once. Our
    // programs are single-threaded, so nothing else overwrites it meanwhile.
    let ent = unsafe { libc::getservbyname(name.as_ptr(), proto.as_ptr()) };
    if ent.is_null() {
        return None;
    }
    // SAFETY: ent is non-null and points to a valid servent.
    let port = unsafe { (*ent).s_port };
    Some(u16::from_be(port as u16))
}

/// A service name or a number, as `-b` takes it.
pub fn port_from_arg(arg: &str) -> Option<u16> {
    match arg.parse::<u16>() {
        Ok(0) => None,
        Ok(n) => Some(n),
        Err(_) => udp_service_port(arg),
    }
}

/// `bootps` and `bootpc`, defaulting to 67 and 68 as CMU bootpd does.
pub fn dhcp_ports() -> (u16, u16) {
    (
        udp_service_port("bootps").unwrap_or(67),
        udp_service_port("bootpc").unwrap_or(68),
    )
}

/// Why `host:port` text names no IPv4 socket address.
#[derive(Debug)]
pub enum AddressError {
    NotHostPort(String),
    UnknownService(String),
    Lookup { host: String, error: io::Error },
    NoIpv4(String),
}

impl std::fmt::Display for AddressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddressError::NotHostPort(text) => write!(f, "\"{text}\" is not host:port"),
            AddressError::UnknownService(port) => write!(
                f,
                "\"{port}\" is not a port number or a TCP service in /etc/services"
            ),
            AddressError::Lookup { host, error } => write!(f, "{host}: {error}"),
            AddressError::NoIpv4(host) => write!(f, "{host}: no IPv4 address"),
        }
    }
}

impl std::error::Error for AddressError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AddressError::Lookup { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// As an io::Error of kind InvalidInput (a setting to change, not a
/// fault of the moment), printing as the AddressError does.
impl From<AddressError> for io::Error {
    fn from(e: AddressError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// `host:port` or `host:service` (TCP) to a socket address. The error is
/// an [`AddressError`] carried in an io::Error, as its callers handle those.
pub fn tcp_address(text: &str) -> io::Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| AddressError::NotHostPort(text.to_string()))?;
    let port = match port.parse::<u16>() {
        Ok(n) => n,
        Err(_) => {
            tcp_service_port(port).ok_or_else(|| AddressError::UnknownService(port.to_string()))?
        }
    };
    let lookup = |error| AddressError::Lookup {
        host: host.to_string(),
        error,
    };
    let found = (host, port)
        .to_socket_addrs()
        .map_err(lookup)?
        .find(|a| a.is_ipv4());
    Ok(found.ok_or_else(|| AddressError::NoIpv4(host.to_string()))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(port_from_arg("950"), Some(950));
        assert_eq!(port_from_arg("0"), None);
        assert_eq!(port_from_arg("no-such-service-here"), None);
        // /etc/services on Debian has bootps; the fallback covers hosts without it.
        assert_eq!(dhcp_ports(), (67, 68));
    }

    #[test]
    fn addresses_and_their_errors() {
        assert_eq!(
            tcp_address("127.0.0.1:5310").unwrap(),
            "127.0.0.1:5310".parse().unwrap()
        );
        let text = |a: &str| {
            let e = tcp_address(a).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{a}");
            assert!(e.get_ref().unwrap().is::<AddressError>(), "{a}");
            e.to_string()
        };
        assert_eq!(text("nowhere"), "\"nowhere\" is not host:port");
        assert_eq!(
            text("127.0.0.1:no-such-service-here"),
            "\"no-such-service-here\" is not a port number or a TCP service in /etc/services"
        );
        // (A failed lookup is not tried: it could ask a name server.)
        assert_eq!(text("::1:1"), "::1: no IPv4 address");
    }
}
