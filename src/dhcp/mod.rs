//! The DHCP protocol core: a request in, a reply (or nothing) out. No I/O
//! here apart from log lines; sockets and clocks stay in the caller.
//!
//! This file: dispatch by message type, the client's entry, the lease
//! length, and the dialogue with the AAS for dynamic addresses. Each
//! handler settles the client's subnet (`subnet.rs`), merges its
//! parameters once (`params.rs`) and passes both to the reply (`reply.rs`,
//! with the server identifier from `server_id.rs`).

mod bootp;
mod fqdn;
pub mod options;
pub mod packet;
mod params;
mod reply;
pub mod route;
mod server_id;
mod subnet;

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddrV4};

use dhcproto::v4::MessageType;

use crate::aas::client::Requester;
use crate::aas::lease::{Alloc, Time, Want, FOREVER};
use crate::aas::pipeline::{self, Asker};
use crate::aas::proto::{self, Code, Reply as AasReply};
use crate::config::keys::global_default;
use crate::config::{Client, ClientKey, Config, LeaseTime, Params, Subnet};
use crate::{log_debug, log_detail, log_error, log_info};
use packet::{code, push_hex, Request};
use reply::Answer;
pub use route::Destination;
use subnet::host_address;

/// What the I/O layer knows about a datagram's arrival.
#[derive(Debug, Clone)]
pub struct Arrival<'a> {
    pub src: SocketAddrV4,
    /// Name of the arrival interface, for log lines.
    pub ifname: &'a str,
    /// The local address the datagram reached (IP_PKTINFO `ipi_spec_dst`).
    pub local: Ipv4Addr,
    /// Addresses of the arrival interface.
    pub iface_addrs: &'a [Ipv4Addr],
    /// Every address of this host: server identifiers and relay loops.
    pub own_addrs: &'a [Ipv4Addr],
    /// MTU of the arrival interface: no reply is larger.
    pub mtu: usize,
}

/// A reply ready for the wire.
#[derive(Debug, Clone)]
pub struct Reply {
    pub bytes: Vec<u8>,
    pub to: Destination,
    /// Our address named in the reply: its source, and its interface when
    /// the arrival interface is unknown.
    pub server_id: Ipv4Addr,
    /// With `probe = yes`, an offer of a pool address: ping it first.
    pub probe: Option<Probe>,
}

/// An address to probe before the offer goes out, and the AAS line that
/// takes it out of use if a host answers.
#[derive(Debug, Clone)]
pub struct Probe {
    pub addr: Ipv4Addr,
    pub decline: proto::Request,
}

/// Handle one datagram, asking `aas` and waiting for each answer. Every
/// path that sends nothing logs why.
pub fn handle(buf: &[u8], at: &Arrival, cfg: &Config, aas: &mut dyn Requester) -> Option<Reply> {
    let aas = Asker::Direct(RefCell::new(aas));
    pipeline::direct(answer(buf, at, cfg, &aas))
}

/// Handle one datagram. Dynamic addresses come from `aas`; with a queued
/// asker this waits while other datagrams are handled.
pub async fn answer(buf: &[u8], at: &Arrival<'_>, cfg: &Config, aas: &Asker<'_>) -> Option<Reply> {
    let req = match packet::parse(buf) {
        Ok(req) => req,
        Err(why) => {
            let id = packet::identity(buf);
            crate::log::limited(
                crate::log::Level::Debug,
                why.kind(),
                DROP_BURST,
                format_args!(
                    "drop from {} xid {:#x} chaddr {}: {why}",
                    at.src, id.xid, id.chaddr
                ),
            );
            return None;
        }
    };
    if req.giaddr.is_unspecified() && req.option(code::RELAY_AGENT_INFO).is_some() {
        // RFC 3046 §2.1: only a relay adds option 82; from a client it is
        // not trusted (packet::agent_suboption ignores it).
        crate::log::limited(
            crate::log::Level::Debug,
            &format!("82 from {}", req.mac()),
            1,
            format_args!(
                "option 82 from client {} (no relay): not trusted, ignored",
                req.mac()
            ),
        );
    }
    if at.own_addrs.contains(&req.giaddr) {
        drop_line(
            &req,
            at,
            &format!("giaddr {} is ours (relay loop)", req.giaddr),
        );
        return None;
    }
    for bad in &req.ignored {
        log_debug!("ignoring from {} xid {:#x}: {bad}", at.src, req.xid);
    }
    let ctx = Exchange {
        client: find_client(cfg, &req),
        req: &req,
        request_len: buf.len(),
        at,
        cfg,
        aas,
    };
    let Some(kind) = req.message_type else {
        return ctx.bootp().await;
    };
    match kind {
        MessageType::Discover => ctx.discover().await,
        MessageType::Request => ctx.request().await,
        MessageType::Inform => ctx.inform(),
        MessageType::Release => ctx.release().await,
        MessageType::Decline => ctx.decline().await,
        other => {
            drop_line(
                &req,
                at,
                &format!("message type {other:?} is not for a server"),
            );
            None
        }
    }
}

/// The request's client entry: by client identifier or hardware address,
/// else by the relay's port (option 82.1, 82.2). A renewal sent straight
/// to us carries no option 82: a port's pinned address held in ciaddr
/// names its entry then.
fn find_client<'c>(cfg: &'c Config, req: &Request) -> Option<&'c Client> {
    let renewing = req.message_type == Some(MessageType::Request)
        && req.giaddr.is_unspecified()
        && req.server_id().is_none()
        && !req.ciaddr.is_unspecified();
    cfg.find_client(req.client_id(), req.htype, req.hw_addr())
        .or_else(|| {
            cfg.find_by_agent(
                req.agent_suboption(code::AGENT_CIRCUIT_ID),
                req.agent_suboption(code::AGENT_REMOTE_ID),
            )
        })
        .or_else(|| {
            let c = cfg.client_with_address(req.ciaddr)?;
            let by_port = matches!(c.key, ClientKey::Circuit(_) | ClientKey::Remote(_));
            (renewing && by_port).then_some(c)
        })
}

fn drop_line(req: &Request, at: &Arrival, why: &str) {
    log_debug!(
        "drop from {} xid {:#x} chaddr {}: {why}",
        at.src,
        req.xid,
        req.mac()
    );
}

fn via(req: &Request, at: &Arrival) -> String {
    if req.giaddr.is_unspecified() {
        match at.ifname {
            // Queued before in.dhcpd asked the kernel for the arrival
            // interface: the datagram inetd or systemd started it for.
            "" => "an interface not known (the datagram that started in.dhcpd)".to_string(),
            name => name.to_string(),
        }
    } else {
        req.giaddr.to_string()
    }
}

/// `network/`, the start of every AAS client name on `subnet`, with room
/// for the rest.
fn subnet_prefix(subnet: &Subnet) -> String {
    use std::fmt::Write;
    let mut key = String::with_capacity(64);
    // Writing to a String cannot fail.
    let _ = write!(key, "{}/", proto::Dotted(u32::from(subnet.network)));
    key
}

/// The AAS name of a client by hardware address: `network/htype/aa:bb:..`.
fn hw_key(subnet: &Subnet, htype: u8, hw: &[u8]) -> String {
    use std::fmt::Write;
    let mut key = subnet_prefix(subnet);
    let _ = write!(key, "{htype}/");
    push_hex(&mut key, hw, ":");
    key
}

/// The REQUEST states of RFC 2131 §4.3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestState {
    Selecting,
    InitReboot,
    /// Renewing (unicast) or rebinding (broadcast): handled alike.
    Renewing,
}

/// Why a pool gave no address: `Exhausted` passes a client on a shared
/// network to the next pool, anything else ends the exchange.
enum NoAddress {
    Exhausted,
    Failed,
}

/// One request being answered.
struct Exchange<'a, 'q> {
    req: &'a Request,
    /// Bytes received: a BOOTP reply is as long as its request, as in bootpd.
    request_len: usize,
    at: &'a Arrival<'a>,
    cfg: &'a Config,
    client: Option<&'a Client>,
    aas: &'a Asker<'q>,
}

/// The shortest lease a client may ask for (option 51), in seconds.
const MIN_LEASE: u32 = 60;

/// Drop lines of one kind logged in a minute before they are only counted.
const DROP_BURST: u32 = 10;

/// The AAS's name for its requester: in.dhcpd asks as `dhcp`.
pub const SERVICE: &str = "dhcp";

/// The AAS refusals that mean "not this address for this client": a NAK.
/// Others (a storage error) get silence, so the client tries again.
const NAK_REFUSALS: [Code; 6] = [
    Code::Taken,
    Code::NotInPool,
    Code::Disabled,
    Code::NoPool,
    Code::NotHeld,
    Code::Reserved,
];

/// `min(a, b)` where infinite is the largest.
fn shorter(a: LeaseTime, b: LeaseTime) -> LeaseTime {
    match (a, b) {
        (LeaseTime::Infinite, x) | (x, LeaseTime::Infinite) => x,
        (LeaseTime::Secs(x), LeaseTime::Secs(y)) => LeaseTime::Secs(x.min(y)),
    }
}

impl Exchange<'_, '_> {
    async fn discover(&self) -> Option<Reply> {
        let mac = self.req.mac();
        log_info!("DHCPDISCOVER from {mac} via {}", via(self.req, self.at));
        let mut subnet = self.subnet()?;
        let pooled = self.cfg.link(subnet).iter().any(|s| s.pool.is_some());
        match self.client.and_then(|c| c.ip_address) {
            None if pooled => return self.dynamic_offer(subnet).await,
            // A fixed address may be on any subnet of a shared network.
            Some(ip) => subnet = self.cfg.on_link(subnet, ip),
            None => {}
        }
        let ip = self.fixed_address(subnet)?;
        self.reply(
            subnet,
            &self.params(subnet),
            Answer {
                kind: MessageType::Offer,
                yiaddr: ip,
                lease: Some(LeaseTime::Infinite),
                message: None,
            },
        )
    }

    /// Ask the AAS; `None` when it cannot be reached (the link logs that,
    /// once a minute).
    async fn ask(&self, request: &proto::Request) -> Option<AasReply> {
        self.aas.ask(request).await.ok()
    }

    /// An ALLOC of `pool` for this client, with its host name; the
    /// caller says which address and how.
    fn alloc(&self, pool: &str, key: &str, lease: Time) -> Alloc {
        Alloc {
            host: self.host(),
            ..Alloc::new(pool, SERVICE, key, lease)
        }
    }

    /// `DECLINE addr` for this client, for decline_time.
    fn decline_of(&self, addr: Ipv4Addr, key: &str) -> proto::Request {
        proto::Request::Decline {
            addr: u32::from(addr),
            secs: Time::from(self.cfg.server.decline_time),
            by: Some((SERVICE.to_string(), key.to_string())),
        }
    }

    /// The client as the AAS knows it: subnet + hardware type + hardware
    /// address, or subnet + client identifier when one is sent.
    fn client_key(&self, subnet: &Subnet) -> Option<String> {
        let req = self.req;
        let key = match req.client_id() {
            Some(id) => {
                let mut key = subnet_prefix(subnet);
                key.push_str("id/");
                push_hex(&mut key, id, "");
                key
            }
            None if req.hw_addr().is_empty() => {
                drop_line(req, self.at, "no client identifier and no hardware address");
                return None;
            }
            None => hw_key(subnet, req.htype, req.hw_addr()),
        };
        if key.len() > 255 {
            drop_line(req, self.at, "client identifier longer than the AAS takes");
            return None;
        }
        Some(key)
    }

    /// `host=` of an ALLOC: the host name the client sent (option 12,
    /// else the name in option 81), for aasadmin to show with the lease.
    fn host(&self) -> Option<String> {
        // Some clients end option 12 with a C string's NUL.
        let sent = self
            .req
            .option(code::HOST_NAME)
            .map(|h| h.strip_suffix(&[0]).unwrap_or(h).to_vec());
        let sent = sent.or_else(|| {
            self.req
                .option(code::CLIENT_FQDN)
                .and_then(fqdn::client_name)
        });
        sent.as_deref().and_then(crate::aas::hostname::word)
    }

    /// `alias=` of an ALLOC: the client's other name when its client
    /// identifier is its hardware type and address (or it sends none). A
    /// PXE firmware sends no option 61, the iPXE or OS it loads sends
    /// 01+MAC: with the alias both stages get one address, one lease.
    fn alias(&self, subnet: &Subnet) -> Option<String> {
        let req = self.req;
        let hw = req.hw_addr();
        if hw.is_empty() {
            return None;
        }
        match req.client_id() {
            Some(id) if id.len() == hw.len() + 1 && id[0] == req.htype && &id[1..] == hw => {
                Some(hw_key(subnet, req.htype, hw))
            }
            Some(_) => None,
            None => {
                let mut key = subnet_prefix(subnet);
                key.push_str("id/");
                push_hex(&mut key, &[req.htype], "");
                push_hex(&mut key, hw, "");
                Some(key)
            }
        }
    }

    /// The lease to give: the one the client asked for (option 51) up to
    /// max_lease_time, else lease_time.
    fn lease_for(&self, params: &Params) -> LeaseTime {
        let default = params
            .lease_time
            .unwrap_or_else(|| global_default(|g| g.lease_time));
        let max = params
            .max_lease_time
            .unwrap_or_else(|| global_default(|g| g.max_lease_time));
        let asked = self
            .req
            .option(packet::code::LEASE_TIME)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(u32::from_be_bytes)
            .map(|s| {
                if s == u32::MAX {
                    LeaseTime::Infinite
                } else {
                    LeaseTime::Secs(s)
                }
            });
        match asked {
            // A lease of a second or none at all is a renewal storm.
            Some(LeaseTime::Secs(s)) if s < MIN_LEASE => shorter(LeaseTime::Secs(MIN_LEASE), max),
            Some(a) => shorter(a, max),
            None => default,
        }
    }

    /// What the AAS holds the lease for: lease × (1 + pad_lease %), so the
    /// client's lease ends before the AAS frees the address.
    fn padded(&self, lease: LeaseTime) -> Time {
        match lease {
            LeaseTime::Infinite => FOREVER,
            LeaseTime::Secs(s) => {
                let pad = f64::from(s) * (1.0 + self.cfg.server.pad_lease / 100.0);
                Time::from(pad.ceil().min(f64::from(u32::MAX - 1)) as u32)
            }
        }
    }

    /// DISCOVER from a client without a fixed address on a link of one or
    /// more subnets (a shared network): the pools in file order, the one of
    /// the address the client asks for first; a pool that is exhausted
    /// passes the client on to the next.
    async fn dynamic_offer(&self, subnet: &Subnet) -> Option<Reply> {
        let mut link: Vec<&Subnet> = self
            .cfg
            .link(subnet)
            .into_iter()
            .filter(|s| s.pool.is_some())
            .collect();
        if let Some(a) = self.req.requested_address() {
            link.sort_by_key(|s| !host_address(s, a));
        }
        for (i, s) in link.iter().enumerate() {
            let next = link.get(i + 1).and_then(|n| n.pool.as_deref());
            match self.offer_from(s, next).await {
                Err(NoAddress::Exhausted) => continue,
                Err(NoAddress::Failed) => return None,
                Ok(reply) => return reply,
            }
        }
        None
    }

    /// Reserve an address of `subnet`'s pool for lease_res_time (the
    /// client's previous address first, then the one it asked for, then
    /// the pool's least recently used), and offer it.
    async fn offer_from(
        &self,
        subnet: &Subnet,
        next: Option<&str>,
    ) -> Result<Option<Reply>, NoAddress> {
        let pool = subnet.pool.as_deref().ok_or(NoAddress::Failed)?;
        let key = self.client_key(subnet).ok_or(NoAddress::Failed)?;
        let mut alloc = self.alloc(pool, &key, Time::from(self.cfg.server.lease_res_time));
        alloc.previous = true;
        if let Some(a) = self
            .req
            .requested_address()
            .filter(|a| host_address(subnet, *a))
        {
            alloc.want = Want::Prefer(u32::from(a));
        }
        alloc.alias = self.alias(subnet);
        alloc.hold = true;
        let addr = self
            .allocate(subnet, pool, alloc, "DHCPDISCOVER", next)
            .await?;
        let params = self.params(subnet);
        let lease = self.lease_for(&params);
        let Some(mut offer) = self.reply(
            subnet,
            &params,
            Answer {
                kind: MessageType::Offer,
                yiaddr: addr,
                lease: Some(lease),
                message: None,
            },
        ) else {
            return Ok(None);
        };
        if self.cfg.server.probe {
            offer.probe = Some(Probe {
                addr,
                decline: self.decline_of(addr, &key),
            });
        }
        Ok(Some(offer))
    }

    /// Send an ALLOC and return the address given. A pool address that
    /// cannot be a host on the subnet is disabled and another one tried.
    /// `next` names the pool an exhausted one passes the client on to.
    async fn allocate(
        &self,
        subnet: &Subnet,
        pool: &str,
        alloc: Alloc,
        what: &str,
        next: Option<&str>,
    ) -> Result<Ipv4Addr, NoAddress> {
        let mac = self.req.mac();
        let request = proto::Request::Alloc(alloc);
        for _ in 0..3 {
            let addr = match self.ask(&request).await.ok_or(NoAddress::Failed)? {
                AasReply::Allocated(a) => Some(a.addr),
                AasReply::Err {
                    code: Code::Exhausted,
                    ..
                } => {
                    let then = match next {
                        Some(n) => format!("trying pool {n}"),
                        None => "gets no offer".into(),
                    };
                    crate::log::limited(
                        crate::log::Level::Error,
                        &format!("exhausted {pool}"),
                        1,
                        format_args!("pool {pool} exhausted: {what} from {mac} {then}"),
                    );
                    return Err(NoAddress::Exhausted);
                }
                AasReply::Err {
                    code: Code::NoPool,
                    text,
                } => {
                    // A configuration fault, not a client's: said at the
                    // default level, once a minute.
                    crate::log::limited(
                        crate::log::Level::Error,
                        &format!("nopool {pool}"),
                        1,
                        format_args!(
                            "{what} from {mac} on subnet {}/{}: {text}: no address; \
                             add [pool {pool}] to aasd.conf or correct pool = in dhcpd.conf",
                            subnet.network, subnet.prefix_len
                        ),
                    );
                    return Err(NoAddress::Failed);
                }
                AasReply::Err { text, .. } => {
                    log_info!("{what} from {mac}: no address: {text}");
                    return Err(NoAddress::Failed);
                }
                _ => None,
            };
            let Some(addr) = addr else {
                log_error!("the AAS answered ALLOC without an address");
                return Err(NoAddress::Failed);
            };
            if host_address(subnet, addr) {
                return Ok(addr);
            }
            log_error!(
                "pool {pool} gave {addr}, which is not a host address of subnet {}/{}: \
                 disabling it in the AAS; fix aasd.conf",
                subnet.network,
                subnet.prefix_len
            );
            self.ask(&proto::Request::Disable(u32::from(addr)))
                .await
                .ok_or(NoAddress::Failed)?;
        }
        Err(NoAddress::Failed)
    }

    /// REQUEST from a client without a fixed address: lease `wanted` in
    /// the AAS (a renewal when the client holds it), then ACK; NAK when the
    /// AAS says it is not the client's to have; silence when the AAS is down.
    /// In SELECTING the address must be the one we offered (`mine`); in
    /// INIT-REBOOT the client's own binding (`known`), and with no record
    /// of the client RFC 2131 §4.3.2 wants silence unless authoritative.
    /// A renewal may keep the AAS's end while it outlasts the lease we ACK
    /// (`keep`), so renewal storms write nothing.
    async fn dynamic_ack(
        &self,
        subnet: &Subnet,
        params: &Params,
        pool: &str,
        wanted: Ipv4Addr,
        state: RequestState,
    ) -> Option<Reply> {
        if !host_address(subnet, wanted) {
            return self.nak(subnet, wanted, "not a host address of this network");
        }
        let key = self.client_key(subnet)?;
        let lease = self.lease_for(params);
        let mut alloc = self.alloc(pool, &key, self.padded(lease));
        alloc.want = Want::Exact(u32::from(wanted));
        alloc.mine = state == RequestState::Selecting;
        alloc.known = state == RequestState::InitReboot;
        if let LeaseTime::Secs(s) = lease {
            alloc.keep = Time::from(s);
        }
        alloc.alias = self.alias(subnet);
        let Some(answer) = self.ask(&proto::Request::Alloc(alloc)).await else {
            log_detail!(
                "DHCPREQUEST from {}: the AAS is unreachable: no answer",
                self.req.mac()
            );
            return None;
        };
        match answer {
            AasReply::Allocated(_) => self.reply(
                subnet,
                params,
                Answer {
                    kind: MessageType::Ack,
                    yiaddr: wanted,
                    lease: Some(lease),
                    message: None,
                },
            ),
            AasReply::Err {
                code: Code::Unknown,
                ..
            } => self.no_record(subnet, wanted),
            AasReply::Err { code, text } if NAK_REFUSALS.contains(&code) => {
                self.nak(subnet, wanted, &text)
            }
            AasReply::Err { text, .. } => {
                log_error!(
                    "DHCPREQUEST for {wanted} from {}: the AAS failed: {text}: no answer",
                    self.req.mac()
                );
                None
            }
            _ => None,
        }
    }

    /// The pool and AAS key of a dynamic client on `subnet`, if it is one.
    fn dynamic<'s>(&self, subnet: &'s Subnet) -> Option<(&'s str, String)> {
        if self.client.and_then(|c| c.ip_address).is_some() {
            return None;
        }
        let pool = subnet.pool.as_deref()?;
        Some((pool, self.client_key(subnet)?))
    }

    async fn release(&self) -> Option<Reply> {
        let req = self.req;
        log_info!("DHCPRELEASE of {} from {}", req.ciaddr, req.mac());
        if let Some(sid) = req.server_id().filter(|s| !self.ours(*s)) {
            log_detail!(
                "DHCPRELEASE from {}: server {sid} is not us: ignored",
                req.mac()
            );
            return None;
        }
        let subnet = self.cfg.subnet_containing(req.ciaddr)?;
        let (_, key) = self.dynamic(subnet)?;
        let release = proto::Request::Release {
            addr: u32::from(req.ciaddr),
            by: Some((SERVICE.to_string(), key)),
        };
        if let Some(AasReply::Err { text, .. }) = self.ask(&release).await {
            log_detail!("DHCPRELEASE of {} from {}: {text}", req.ciaddr, req.mac());
        }
        None
    }

    async fn decline(&self) -> Option<Reply> {
        let req = self.req;
        let Some(addr) = req.requested_address() else {
            drop_line(req, self.at, "DECLINE names no address (no option 50)");
            return None;
        };
        log_info!(
            "DHCPDECLINE of {addr} from {}: the address is in use by another host",
            req.mac()
        );
        if let Some(sid) = req.server_id().filter(|s| !self.ours(*s)) {
            log_detail!(
                "DHCPDECLINE from {}: server {sid} is not us: ignored",
                req.mac()
            );
            return None;
        }
        let subnet = self.cfg.on_link(self.subnet()?, addr);
        let (_, key) = self.dynamic(subnet)?;
        let decline = self.decline_of(addr, &key);
        if let Some(AasReply::Err { text, .. }) = self.ask(&decline).await {
            log_detail!("DHCPDECLINE of {addr} from {}: {text}", req.mac());
        }
        None
    }

    async fn request(&self) -> Option<Reply> {
        let req = self.req;
        let state = if req.server_id().is_some() {
            RequestState::Selecting
        } else if req.ciaddr.is_unspecified() {
            RequestState::InitReboot
        } else {
            RequestState::Renewing
        };
        let wanted = match state {
            RequestState::Renewing => Some(req.ciaddr),
            _ => req.requested_address(),
        };
        let Some(wanted) = wanted else {
            drop_line(
                req,
                self.at,
                "REQUEST names no address (no option 50, no ciaddr)",
            );
            return None;
        };
        log_info!("DHCPREQUEST for {wanted} from {} ({state:?})", req.mac());
        if let Some(sid) = req.server_id() {
            if !self.ours(sid) {
                // RFC 2131 §4.3.2: the client chose another server; free
                // what we reserved for it.
                let link = self.subnet().map(|s| self.cfg.link(s)).unwrap_or_default();
                for (pool, key) in link.into_iter().filter_map(|s| self.dynamic(s)) {
                    let unhold = proto::Request::Unhold {
                        pool: pool.to_string(),
                        service: SERVICE.to_string(),
                        client: key,
                    };
                    self.ask(&unhold).await;
                }
                // After the UNHOLDs: a test waits for this line.
                log_detail!("DHCPREQUEST from {}: server {sid} is not us", req.mac());
                return None;
            }
        }
        let subnet = self.cfg.on_link(self.subnet()?, wanted);
        if !subnet.contains(wanted) {
            // RFC 2131 §4.3.2: INIT-REBOOT on the wrong network -> NAK. For
            // renewals the subnet came from ciaddr, so this cannot happen.
            return self.nak(subnet, wanted, "address is not on this network");
        }
        let params = self.params(subnet);
        let fixed = self.client.and_then(|c| c.ip_address);
        match fixed {
            Some(ip) if ip == wanted => self.reply(
                subnet,
                &params,
                Answer {
                    kind: MessageType::Ack,
                    yiaddr: ip,
                    lease: Some(LeaseTime::Infinite),
                    message: None,
                },
            ),
            Some(ip) => self.nak(subnet, wanted, &format!("the client's address is {ip}")),
            None if subnet.pool.is_some() => {
                self.dynamic_ack(subnet, &params, subnet.pool.as_deref()?, wanted, state)
                    .await
            }
            // We offered nothing to this client, so a REQUEST naming our
            // server id is wrong.
            None if state == RequestState::Selecting => {
                self.nak(subnet, wanted, "no address was offered to this client")
            }
            None if state == RequestState::InitReboot => self.no_record(subnet, wanted),
            None => {
                log_detail!("no fixed address for {}", req.mac());
                None
            }
        }
    }

    /// An INIT-REBOOT request from a client we have no record of: RFC 2131
    /// §4.3.2 says remain silent (another server may know it); with
    /// `authoritative = yes` we are the only server of the link, so NAK
    /// and the client starts over with a DHCPDISCOVER.
    fn no_record(&self, subnet: &Subnet, wanted: Ipv4Addr) -> Option<Reply> {
        if subnet
            .authoritative
            .unwrap_or(self.cfg.server.authoritative)
        {
            return self.nak(subnet, wanted, "no record of this client");
        }
        log_detail!(
            "DHCPREQUEST for {wanted} from {}: no record of the client: \
             not answered (authoritative = no)",
            self.req.mac()
        );
        None
    }

    fn inform(&self) -> Option<Reply> {
        let req = self.req;
        log_info!("DHCPINFORM from {} ({})", req.ciaddr, req.mac());
        // RFC 2131 §4.3.5: the answer goes to ciaddr, else to the sender;
        // from 0.0.0.0 with ciaddr 0 there is no one to answer (Kea and
        // ISC dhcpd drop it too).
        if req.giaddr.is_unspecified()
            && req.ciaddr.is_unspecified()
            && self.at.src.ip().is_unspecified()
        {
            drop_line(req, self.at, "DHCPINFORM from 0.0.0.0 with ciaddr 0.0.0.0");
            return None;
        }
        let subnet = self.subnet()?;
        self.reply(
            subnet,
            &self.params(subnet),
            Answer {
                kind: MessageType::Ack,
                yiaddr: Ipv4Addr::UNSPECIFIED,
                lease: None,
                message: None,
            },
        )
    }

    /// A NAK carries none of the configured parameters (RFC 2131 Table 3),
    /// so none are merged for it.
    fn nak(&self, subnet: &Subnet, wanted: Ipv4Addr, why: &str) -> Option<Reply> {
        log_info!("DHCPNAK on {wanted} to {}: {why}", self.req.mac());
        self.reply(
            subnet,
            &Params::default(),
            Answer {
                kind: MessageType::Nak,
                yiaddr: Ipv4Addr::UNSPECIFIED,
                lease: None,
                message: Some(why.to_string()),
            },
        )
    }

    /// The client's fixed address, if it has one on this subnet.
    fn fixed_address(&self, subnet: &Subnet) -> Option<Ipv4Addr> {
        let mac = self.req.mac();
        let Some(ip) = self.client.and_then(|c| c.ip_address) else {
            // Without a fixed address the client's address comes from the AAS.
            log_detail!("no fixed address for {mac}");
            return None;
        };
        if !subnet.contains(ip) {
            log_detail!(
                "fixed address {ip} of {mac} is not on subnet {}/{}",
                subnet.network,
                subnet.prefix_len
            );
            return None;
        }
        Some(ip)
    }
}

#[cfg(test)]
mod catalogue;
#[cfg(test)]
mod tests;
