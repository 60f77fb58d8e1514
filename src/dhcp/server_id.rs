//! The server identifier (option 54): which of our addresses a reply
//! names, and whether one a client sends names us.

use std::net::Ipv4Addr;

use super::packet::code;
use super::Exchange;
use crate::config::Subnet;

impl Exchange<'_, '_> {
    /// The address the client should answer to: on the arrival interface
    /// within the client's subnet when it is directly attached, else the
    /// address the datagram reached.
    pub(super) fn server_id(&self, subnet: &Subnet) -> Ipv4Addr {
        if self.req.giaddr.is_unspecified() {
            if let Some(a) = self.at.iface_addrs.iter().find(|a| subnet.contains(**a)) {
                return *a;
            }
        }
        if self.at.local.is_unspecified() {
            let on_subnet = self.at.own_addrs.iter().find(|a| subnet.contains(**a));
            return on_subnet.copied().unwrap_or(self.at.local);
        }
        self.at.local
    }

    /// A server identifier naming us: one of our addresses, or the relay
    /// that asked to stand in for us (RFC 5107).
    pub(super) fn ours(&self, sid: Ipv4Addr) -> bool {
        self.at.own_addrs.contains(&sid) || Some(sid) == self.server_id_override()
    }

    /// RFC 5107: a relay that asks for it is named as the server (option 54),
    /// so that renewals go through it.
    pub(super) fn server_id_override(&self) -> Option<Ipv4Addr> {
        self.req
            .agent_address(code::AGENT_SERVER_ID_OVERRIDE)
            .filter(|a| !a.is_unspecified() && !a.is_broadcast())
    }
}
