//! BOOTP clients (a BOOTREQUEST without option 53), answered from
//! dhcpd.conf: a client entry's fixed address, or with `bootp_dynamic` a pool
//! address leased forever. (With `-b` the server hands them to bootpd
//! instead, before they reach this module.)

use std::net::Ipv4Addr;

use super::options::{self, Header, ReplyOption};
use super::packet::code;
use super::reply::{parameter_options, required};
use super::{route, Exchange, Reply};
use crate::config::{Params, Subnet};
use crate::{log_detail, log_info};

/// RFC 2132 §9: the DHCP extensions. A BOOTP client gets none of them.
const DHCP_ONLY: std::ops::RangeInclusive<u8> = 50..=61;

impl Exchange<'_, '_> {
    pub(super) async fn bootp(&self) -> Option<Reply> {
        let mac = self.req.mac();
        log_info!(
            "BOOTREQUEST from {mac} via {}",
            super::via(self.req, self.at)
        );
        let mut subnet = self.subnet()?;
        let ip = match self.client.and_then(|c| c.ip_address) {
            Some(ip) => {
                subnet = self.cfg.on_link(subnet, ip);
                self.fixed_address(subnet)?
            }
            None => match subnet.pool.as_deref() {
                Some(pool) if self.cfg.server.bootp_dynamic => {
                    self.bootp_address(subnet, pool).await?
                }
                Some(_) => {
                    log_detail!(
                        "BOOTREQUEST from {mac}: no client entry, and bootp_dynamic is off"
                    );
                    return None;
                }
                None => {
                    log_detail!("BOOTREQUEST from {mac}: no client entry");
                    return None;
                }
            },
        };
        self.bootp_reply(subnet, &self.params(subnet), ip)
    }

    /// A pool address for a BOOTP client, leased forever: BOOTP has no
    /// renewal, so the client could never extend a finite lease. `previous`
    /// gives a rebooting client its address again.
    async fn bootp_address(&self, subnet: &Subnet, pool: &str) -> Option<Ipv4Addr> {
        let key = self.client_key(subnet)?;
        let mut alloc = self.alloc(pool, &key, crate::aas::lease::FOREVER);
        alloc.previous = true;
        // Without `hold` the allocation is the lease: nothing else in BOOTP
        // confirms it.
        self.allocate(subnet, pool, alloc, "BOOTREQUEST", None)
            .await
            .ok()
    }

    /// The BOOTREPLY: RFC 1497 vendor extensions when the client sent the
    /// cookie, none for a pure RFC 951 client; as long as the request and at
    /// least 300 bytes, as CMU bootpd answers.
    fn bootp_reply(&self, subnet: &Subnet, params: &Params, ip: Ipv4Addr) -> Option<Reply> {
        let req = self.req;
        // A pure RFC 951 client sent no cookie: its vendor area is not ours
        // to fill.
        let mut opts: Vec<ReplyOption> = Vec::new();
        if req.cookie {
            opts.extend(
                parameter_options(req, subnet, params)
                    .into_iter()
                    .filter(|o| !DHCP_ONLY.contains(&o.code)),
            );
            if !req.giaddr.is_unspecified() {
                if let Some(info) = req.option(code::RELAY_AGENT_INFO) {
                    opts.push(required(code::RELAY_AGENT_INFO, info));
                }
            }
        }
        let header = Header {
            htype: req.htype,
            hlen: req.hlen,
            xid: req.xid,
            flags: req.flags,
            ciaddr: req.ciaddr,
            yiaddr: ip,
            siaddr: params.next_server.unwrap_or(Ipv4Addr::UNSPECIFIED),
            giaddr: req.giaddr,
            chaddr: req.chaddr,
            file: params.boot_file.clone().unwrap_or_default().into_bytes(),
        };
        let limit = self.request_len.clamp(
            options::MIN_REPLY_LEN,
            self.at.mtu - options::IP_UDP_HEADERS,
        );
        let mut encoded = match options::encode(&header, &opts, limit, false) {
            Ok(e) => e,
            Err(options::TooBig) => {
                super::drop_line(req, self.at, "relay agent information exceeds the reply");
                return None;
            }
        };
        for c in &encoded.dropped {
            log_info!("Option code {c} did not fit in packet");
        }
        if !req.cookie {
            encoded.bytes[options::VENDOR_AREA..].fill(0);
        }
        log_info!("BOOTREPLY on {ip} to {}", req.mac());
        Some(Reply {
            bytes: encoded.bytes,
            to: route::destination(req, ip, false),
            server_id: self.server_id(subnet),
            probe: None,
        })
    }
}
