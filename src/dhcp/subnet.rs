//! Which subnet a request belongs to: from the relay's link, the client's
//! address, or the arrival interface; and which addresses of a subnet a
//! client may have.

use std::net::Ipv4Addr;

use dhcproto::v4::MessageType;

use super::{via, Exchange};
use crate::config::Subnet;
use crate::log_detail;

/// An address a client may have on the subnet: inside it, and not its
/// network or broadcast address (for prefixes that have them).
pub(super) fn host_address(subnet: &Subnet, a: Ipv4Addr) -> bool {
    subnet.contains(a)
        && (subnet.prefix_len >= 31 || (a != subnet.network && a != subnet.broadcast()))
}

impl Exchange<'_, '_> {
    /// Whether ciaddr is the client's address here. RFC 2131 Table 5: a
    /// DHCPDISCOVER and a SELECTING or INIT-REBOOT DHCPREQUEST carry 0
    /// there, and whatever they carry instead must not choose the subnet;
    /// RENEWING, REBINDING, DHCPINFORM (and BOOTP) use it.
    pub(super) fn ciaddr_in_use(&self) -> bool {
        match self.req.message_type {
            Some(MessageType::Discover) => false,
            Some(MessageType::Request) => self.req.server_id().is_none(),
            _ => true,
        }
    }

    /// The client's subnet: from the link address when relayed (giaddr, or
    /// the relay's link selection, or option 118), from ciaddr when the
    /// client has an address (a renewal may be routed from another link),
    /// else the subnet bound to the arrival interface by name, else from
    /// the arrival interface's addresses.
    pub(super) fn subnet(&self) -> Option<&Subnet> {
        let req = self.req;
        let link = req.link_address();
        let found = if !link.is_unspecified() {
            self.cfg.subnet_containing(link)
        } else if !req.ciaddr.is_unspecified() && self.ciaddr_in_use() {
            self.cfg.subnet_containing(req.ciaddr)
        } else if let Some(s) = self.cfg.subnet_on_interface(self.at.ifname) {
            Some(s)
        } else if self.at.local.is_unspecified() && self.at.iface_addrs.is_empty() {
            self.subnet_without_arrival()
        } else {
            std::iter::once(&self.at.local)
                .chain(self.at.iface_addrs)
                .find_map(|a| self.cfg.subnet_containing(*a))
        };
        if found.is_none() {
            log_detail!(
                "no subnet for {} via {} (ciaddr {})",
                req.mac(),
                via(req, self.at),
                req.ciaddr
            );
            // A missing [subnet] is the administrator's to fix: said at the
            // default level too, once a minute per link.
            let via = via(req, self.at);
            crate::log::limited(
                crate::log::Level::Error,
                &format!("no subnet via {via}"),
                1,
                format_args!(
                    "no [subnet] in dhcpd.conf for {} via {via} (ciaddr {}): not answered",
                    req.mac(),
                    req.ciaddr
                ),
            );
        }
        found
    }

    /// A datagram queued before IP_PKTINFO was turned on (the one that woke
    /// an inetd or systemd server) carries no arrival interface. As CMU
    /// bootpd does, take the subnet of the client's fixed address if we have
    /// an address on it, else the only configured subnet we have one on.
    fn subnet_without_arrival(&self) -> Option<&Subnet> {
        let attached = |s: &&Subnet| self.at.own_addrs.iter().any(|a| s.contains(*a));
        let fixed = self.client.and_then(|c| c.ip_address);
        if let Some(s) = fixed.and_then(|ip| self.cfg.subnet_containing(ip)) {
            if attached(&s) {
                return Some(s);
            }
        }
        let mut local = self.cfg.subnets.iter().filter(attached);
        match (local.next(), local.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }
}
