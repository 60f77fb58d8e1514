//! Where a reply goes: RFC 2131 §4.1, "Constructing and sending DHCP messages".

use std::net::Ipv4Addr;

use super::packet::Request;

/// The destination of a reply. Ports are chosen by the sender: the server
/// port for a relay, the client port otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// giaddr, to the server port (the relay agent listens there).
    Relay(Ipv4Addr),
    /// A client that already has this address (ciaddr) and answers ARP itself.
    Unicast(Ipv4Addr),
    /// A client that has no address yet: an ARP entry for `ip` -> `hw` must
    /// be set first (SIOCSARP, as bootpd does); broadcast if that fails.
    UnicastNoArp { ip: Ipv4Addr, hw: Vec<u8> },
    /// 255.255.255.255 out of the arrival interface.
    Broadcast,
}

/// RFC 2131 §4.1, in the order the RFC gives:
/// giaddr set -> the relay; a NAK -> broadcast; ciaddr set -> ciaddr;
/// broadcast bit -> broadcast; else unicast to yiaddr and chaddr.
pub fn destination(req: &Request, yiaddr: Ipv4Addr, nak: bool) -> Destination {
    if !req.giaddr.is_unspecified() {
        return Destination::Relay(req.giaddr);
    }
    if nak {
        return Destination::Broadcast;
    }
    // Only an address a host can have: a DISCOVER with ciaddr
    // 255.255.255.255 (RFC 2131 Table 5 wants 0 there) is answered as one
    // with ciaddr 0.
    let c = req.ciaddr;
    if !(c.is_unspecified() || c.is_broadcast() || c.is_multicast() || c.is_loopback()) {
        return Destination::Unicast(c);
    }
    // Unicast without ARP needs a hardware address the kernel can put in an
    // ARP entry: Ethernet (htype 1, 6 bytes). Anything else is broadcast.
    if req.broadcast_flag() || yiaddr.is_unspecified() || req.htype != 1 || req.hlen != 6 {
        return Destination::Broadcast;
    }
    Destination::UnicastNoArp {
        ip: yiaddr,
        hw: req.hw_addr().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::packet::{parse, tests::request_bytes};

    const MAC: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x10];
    const YI: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 50);

    fn req(edit: impl Fn(&mut Vec<u8>)) -> Request {
        let mut b = request_bytes(MAC, &[53, 1, 1]);
        edit(&mut b);
        parse(&b).unwrap()
    }

    #[test]
    fn relayed_goes_to_giaddr_even_for_nak() {
        let r = req(|b| b[24..28].copy_from_slice(&[10, 78, 0, 1]));
        let relay = Destination::Relay(Ipv4Addr::new(10, 78, 0, 1));
        assert_eq!(destination(&r, YI, false), relay);
        assert_eq!(destination(&r, YI, true), relay);
    }

    #[test]
    fn nak_is_broadcast() {
        let r = req(|b| b[12..16].copy_from_slice(&[10, 77, 0, 50]));
        assert_eq!(destination(&r, YI, true), Destination::Broadcast);
    }

    #[test]
    fn ciaddr_is_unicast() {
        let r = req(|b| b[12..16].copy_from_slice(&[10, 77, 0, 50]));
        assert_eq!(destination(&r, YI, false), Destination::Unicast(YI));
    }

    #[test]
    fn a_ciaddr_no_host_can_have_is_not_a_destination() {
        for bad in [[255, 255, 255, 255], [224, 0, 0, 1], [127, 0, 0, 1]] {
            let r = req(|b| {
                b[12..16].copy_from_slice(&bad);
                b[10] = 0x80;
            });
            assert_eq!(destination(&r, YI, false), Destination::Broadcast);
        }
    }

    #[test]
    fn broadcast_flag() {
        let r = req(|b| b[10] = 0x80);
        assert_eq!(destination(&r, YI, false), Destination::Broadcast);
    }

    #[test]
    fn unicast_to_yiaddr_with_arp() {
        let r = req(|_| {});
        assert_eq!(
            destination(&r, YI, false),
            Destination::UnicastNoArp {
                ip: YI,
                hw: MAC.to_vec()
            }
        );
    }

    #[test]
    fn non_ethernet_is_broadcast() {
        let r = req(|b| b[1] = 6);
        assert_eq!(destination(&r, YI, false), Destination::Broadcast);
    }
}
