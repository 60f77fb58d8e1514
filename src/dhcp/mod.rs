//! The DHCP protocol core: a request in, a reply (or nothing) out. No I/O
//! here apart from log lines; sockets and clocks stay in the caller.

mod bootp;
mod fqdn;
pub mod options;
pub mod packet;
pub mod route;

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;

use dhcproto::v4::MessageType;

use crate::aas::client::Requester;
use crate::aas::lease::{Alloc, Time, Want, FOREVER};
use crate::aas::pipeline::{self, Asker};
use crate::aas::proto::{self, Code, Reply as AasAnswer};
use crate::config::{Client, ClientKey, Config, LeaseTime, Params, Subnet};
use crate::{log_debug, log_detail, log_error, log_info};
use options::{Header, ReplyOption};
use packet::{code, hex, Request};
pub use route::Destination;

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
        params: RefCell::new(None),
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
        at.ifname.to_string()
    } else {
        req.giaddr.to_string()
    }
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

/// What to answer, before it is turned into bytes.
struct Answer {
    kind: MessageType,
    yiaddr: Ipv4Addr,
    lease: Option<LeaseTime>,
    /// Option 56 text, for NAKs.
    message: Option<String>,
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
    /// [`Exchange::params`] of the subnet with this network.
    params: RefCell<Option<(Ipv4Addr, Rc<Params>)>>,
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

/// An address a client may have on the subnet: inside it, and not its
/// network or broadcast address (for prefixes that have them).
fn host_address(subnet: &Subnet, a: Ipv4Addr) -> bool {
    subnet.contains(a)
        && (subnet.prefix_len >= 31 || (a != subnet.network && a != subnet.broadcast()))
}

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
    async fn ask(&self, request: &proto::Request) -> Option<AasAnswer> {
        self.aas.ask(request).await.ok()
    }

    /// An ALLOC of `pool` for this client, with its host name; the
    /// caller says which address and how.
    fn alloc(&self, pool: &str, key: &str, lease: Time) -> Alloc {
        Alloc {
            pool: pool.to_string(),
            service: SERVICE.to_string(),
            client: key.to_string(),
            lease,
            want: Want::Any,
            previous: false,
            hold: false,
            mine: false,
            known: false,
            keep: 0,
            host: self.host(),
            alias: None,
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
            Some(id) => format!("{}/id/{}", subnet.network, hex(id, "")),
            None if req.hw_addr().is_empty() => {
                drop_line(req, self.at, "no client identifier and no hardware address");
                return None;
            }
            None => format!(
                "{}/{}/{}",
                subnet.network,
                req.htype,
                hex(req.hw_addr(), ":")
            ),
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
        let by_hw = || format!("{}/{}/{}", subnet.network, req.htype, hex(hw, ":"));
        match req.client_id() {
            Some(id) if id.len() == hw.len() + 1 && id[0] == req.htype && &id[1..] == hw => {
                Some(by_hw())
            }
            Some(_) => None,
            None => Some(format!(
                "{}/id/{:02x}{}",
                subnet.network,
                req.htype,
                hex(hw, "")
            )),
        }
    }

    /// The lease to give: the one the client asked for (option 51) up to
    /// max_lease_time, else lease_time.
    fn lease_for(&self, params: &Params) -> LeaseTime {
        let default = params.lease_time.unwrap_or(LeaseTime::Secs(86_400));
        let max = params.max_lease_time.unwrap_or(LeaseTime::Secs(7 * 86_400));
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
        let lease = self.lease_for(&self.params(subnet));
        let Some(mut offer) = self.reply(
            subnet,
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
                AasAnswer::Allocated(a) => Some(a.addr),
                AasAnswer::Err {
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
                AasAnswer::Err {
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
                AasAnswer::Err { text, .. } => {
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
        pool: &str,
        wanted: Ipv4Addr,
        state: RequestState,
    ) -> Option<Reply> {
        if !host_address(subnet, wanted) {
            return self.nak(subnet, wanted, "not a host address of this network");
        }
        let key = self.client_key(subnet)?;
        let lease = self.lease_for(&self.params(subnet));
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
            AasAnswer::Allocated(_) => self.reply(
                subnet,
                Answer {
                    kind: MessageType::Ack,
                    yiaddr: wanted,
                    lease: Some(lease),
                    message: None,
                },
            ),
            AasAnswer::Err {
                code: Code::Unknown,
                ..
            } => self.no_record(subnet, wanted),
            AasAnswer::Err { code, text } if NAK_REFUSALS.contains(&code) => {
                self.nak(subnet, wanted, &text)
            }
            AasAnswer::Err { text, .. } => {
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
        if let Some(AasAnswer::Err { text, .. }) = self.ask(&release).await {
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
        if let Some(AasAnswer::Err { text, .. }) = self.ask(&decline).await {
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
                log_detail!("DHCPREQUEST from {}: server {sid} is not us", req.mac());
                let link = self.subnet().map(|s| self.cfg.link(s)).unwrap_or_default();
                for (pool, key) in link.into_iter().filter_map(|s| self.dynamic(s)) {
                    let unhold = proto::Request::Unhold {
                        pool: pool.to_string(),
                        service: SERVICE.to_string(),
                        client: key,
                    };
                    self.ask(&unhold).await;
                }
                return None;
            }
        }
        let subnet = self.cfg.on_link(self.subnet()?, wanted);
        if !subnet.contains(wanted) {
            // RFC 2131 §4.3.2: INIT-REBOOT on the wrong network -> NAK. For
            // renewals the subnet came from ciaddr, so this cannot happen.
            return self.nak(subnet, wanted, "address is not on this network");
        }
        let fixed = self.client.and_then(|c| c.ip_address);
        match fixed {
            Some(ip) if ip == wanted => self.reply(
                subnet,
                Answer {
                    kind: MessageType::Ack,
                    yiaddr: ip,
                    lease: Some(LeaseTime::Infinite),
                    message: None,
                },
            ),
            Some(ip) => self.nak(subnet, wanted, &format!("the client's address is {ip}")),
            None if subnet.pool.is_some() => {
                self.dynamic_ack(subnet, subnet.pool.as_deref()?, wanted, state)
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
            Answer {
                kind: MessageType::Ack,
                yiaddr: Ipv4Addr::UNSPECIFIED,
                lease: None,
                message: None,
            },
        )
    }

    fn nak(&self, subnet: &Subnet, wanted: Ipv4Addr, why: &str) -> Option<Reply> {
        log_info!("DHCPNAK on {wanted} to {}: {why}", self.req.mac());
        self.reply(
            subnet,
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

    /// Whether ciaddr is the client's address here. RFC 2131 Table 5: a
    /// DHCPDISCOVER and a SELECTING or INIT-REBOOT DHCPREQUEST carry 0
    /// there, and whatever they carry instead must not choose the subnet;
    /// RENEWING, REBINDING, DHCPINFORM (and BOOTP) use it.
    fn ciaddr_in_use(&self) -> bool {
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
    fn subnet(&self) -> Option<&Subnet> {
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

    /// The address the client should answer to: on the arrival interface
    /// within the client's subnet when it is directly attached, else the
    /// address the datagram reached.
    fn server_id(&self, subnet: &Subnet) -> Ipv4Addr {
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
    fn ours(&self, sid: Ipv4Addr) -> bool {
        self.at.own_addrs.contains(&sid) || Some(sid) == self.server_id_override()
    }

    /// RFC 5107: a relay that asks for it is named as the server (option 54),
    /// so that renewals go through it.
    fn server_id_override(&self) -> Option<Ipv4Addr> {
        self.req
            .agent_address(code::AGENT_SERVER_ID_OVERRIDE)
            .filter(|a| !a.is_unspecified() && !a.is_broadcast())
    }

    /// Global < subnet < vendor class < user class < client.
    /// The parameters for `subnet`, merged once per exchange: the offer's
    /// lease and the reply's options both need them.
    fn params(&self, subnet: &Subnet) -> Rc<Params> {
        let mut cache = self.params.borrow_mut();
        match &*cache {
            Some((network, p)) if *network == subnet.network => p.clone(),
            _ => {
                let p = Rc::new(self.merge_params(subnet));
                *cache = Some((subnet.network, p.clone()));
                p
            }
        }
    }

    fn merge_params(&self, subnet: &Subnet) -> Params {
        let vendor = self
            .req
            .option(code::VENDOR_CLASS)
            .and_then(|v| self.cfg.vendor_class(v));
        let user = self
            .req
            .option(code::USER_CLASS)
            .and_then(|v| self.cfg.user_class(v));
        let mut merged = self.cfg.global.clone();
        let sets = [
            Some(&subnet.params),
            vendor.map(|c| &c.params),
            user.map(|c| &c.params),
            self.client.map(|c| &c.params),
        ];
        for set in sets.into_iter().flatten() {
            overlay(&mut merged, set);
        }
        merged
    }

    fn reply(&self, subnet: &Subnet, answer: Answer) -> Option<Reply> {
        let req = self.req;
        let nak = answer.kind == MessageType::Nak;
        let params = self.params(subnet);
        let server_id = self.server_id(subnet);
        let mut opts = vec![
            required(code::MESSAGE_TYPE, vec![u8::from(answer.kind)]),
            required(
                code::SERVER_ID,
                self.server_id_override()
                    .unwrap_or(server_id)
                    .octets()
                    .to_vec(),
            ),
        ];
        if let Some(lease) = answer.lease {
            opts.extend(lease_options(lease, &params));
        }
        if let Some(text) = &answer.message {
            opts.push(optional(code::MESSAGE, text.as_bytes().to_vec()));
        }
        if !nak {
            opts.extend(parameter_options(req, subnet, &params));
        }
        if answer.lease.is_some() {
            if let Some(sent) = req.option(code::CLIENT_FQDN) {
                let conf = |c: u8| params.options.get(&c).map(Vec::as_slice);
                match fqdn::reply(sent, conf(code::DOMAIN_NAME), conf(code::HOST_NAME)) {
                    Some(v) => {
                        opts.retain(|o| o.code != code::CLIENT_FQDN);
                        opts.push(optional(code::CLIENT_FQDN, v));
                    }
                    None => log_debug!(
                        "client FQDN (option 81) from {} is malformed: not answered",
                        req.mac()
                    ),
                }
            }
        }
        // RFC 6842: the client identifier goes back unchanged.
        if let Some(id) = req.client_id() {
            opts.push(required(code::CLIENT_ID, id.to_vec()));
        }
        // RFC 3046 §2.2: echo option 82, byte for byte, last; only a relay's.
        if !req.giaddr.is_unspecified() {
            if let Some(info) = req.option(code::RELAY_AGENT_INFO) {
                opts.push(required(code::RELAY_AGENT_INFO, info.to_vec()));
            }
        }
        let mut flags = req.flags;
        if nak && !req.giaddr.is_unspecified() {
            flags |= 0x8000; // RFC 2131 §4.3.2: a relayed NAK is broadcast
        }
        let ack_of_bound =
            answer.kind == MessageType::Ack && !req.ciaddr.is_unspecified() && self.ciaddr_in_use();
        let header = Header {
            htype: req.htype,
            hlen: req.hlen,
            xid: req.xid,
            flags,
            ciaddr: if ack_of_bound {
                req.ciaddr
            } else {
                Ipv4Addr::UNSPECIFIED
            },
            yiaddr: answer.yiaddr,
            siaddr: match (nak, params.next_server) {
                (false, Some(a)) => a,
                _ => Ipv4Addr::UNSPECIFIED,
            },
            giaddr: req.giaddr,
            chaddr: req.chaddr,
            file: match (nak, &params.boot_file) {
                (false, Some(f)) => f.as_bytes().to_vec(),
                _ => Vec::new(),
            },
        };
        let limit = options::message_limit(req.max_message_size(), self.at.mtu);
        let overload = self.cfg.server.option_overload;
        let encoded = match options::encode(&header, &opts, limit, overload) {
            Ok(e) => e,
            Err(options::TooBig) => {
                drop_line(
                    req,
                    self.at,
                    &format!("required options exceed {limit} bytes"),
                );
                return None;
            }
        };
        for c in &encoded.dropped {
            log_info!("Option code {c} did not fit in packet");
        }
        if !nak {
            log_info!(
                "DHCP{} on {} to {}",
                kind_name(answer.kind),
                if answer.yiaddr.is_unspecified() {
                    req.ciaddr
                } else {
                    answer.yiaddr
                },
                req.mac()
            );
        }
        let to = match (answer.kind, req.ciaddr.is_unspecified()) {
            // RFC 2131 §4.3.5: INFORM answers go to ciaddr; some clients leave
            // it empty, so fall back to the datagram's source.
            (MessageType::Ack, true) if answer.lease.is_none() && req.giaddr.is_unspecified() => {
                if self.at.src.ip().is_unspecified() {
                    Destination::Broadcast
                } else {
                    Destination::Unicast(*self.at.src.ip())
                }
            }
            _ => route::destination(req, answer.yiaddr, nak),
        };
        Some(Reply {
            bytes: encoded.bytes,
            to,
            server_id,
            probe: None,
        })
    }
}

fn kind_name(kind: MessageType) -> &'static str {
    match kind {
        MessageType::Offer => "OFFER",
        MessageType::Ack => "ACK",
        MessageType::Nak => "NAK",
        _ => "REPLY",
    }
}

fn required(code: u8, value: Vec<u8>) -> ReplyOption {
    ReplyOption {
        code,
        value,
        required: true,
    }
}

fn optional(code: u8, value: Vec<u8>) -> ReplyOption {
    ReplyOption {
        code,
        value,
        required: false,
    }
}

/// A more specific set overrides a less specific one, field by field and
/// option by option.
fn overlay(base: &mut Params, over: &Params) {
    for (c, v) in &over.options {
        base.options.insert(*c, v.clone());
    }
    for (c, v) in &over.vendor_options {
        base.vendor_options.insert(*c, v.clone());
    }
    macro_rules! take {
        ($($field:ident),*) => { $( if over.$field.is_some() { base.$field = over.$field.clone(); } )* };
    }
    take!(
        lease_time,
        max_lease_time,
        renewal_percent,
        rebind_percent,
        next_server,
        boot_file
    );
}

/// Option 51, and T1/T2 (58/59) for a finite lease (RFC 2131 §4.4.5).
fn lease_options(lease: LeaseTime, params: &Params) -> Vec<ReplyOption> {
    let secs = match lease {
        LeaseTime::Infinite => return vec![required(code::LEASE_TIME, vec![0xff; 4])],
        LeaseTime::Secs(s) => s,
    };
    let part = |pct: Option<f64>, default: f64| {
        let t = (f64::from(secs) * pct.unwrap_or(default) / 100.0) as u32;
        t.to_be_bytes().to_vec()
    };
    vec![
        required(code::LEASE_TIME, secs.to_be_bytes().to_vec()),
        required(code::RENEWAL_TIME, part(params.renewal_percent, 50.0)),
        required(code::REBINDING_TIME, part(params.rebind_percent, 87.5)),
    ]
}

/// Codes the server sets itself; a request list naming them changes nothing.
const PROTOCOL_CODES: [u8; 12] = [
    code::PAD,
    code::REQUESTED_ADDRESS,
    code::LEASE_TIME,
    code::OVERLOAD,
    code::MESSAGE_TYPE,
    code::SERVER_ID,
    code::PARAMETER_REQUEST_LIST,
    code::MAX_MESSAGE_SIZE,
    code::RENEWAL_TIME,
    code::REBINDING_TIME,
    code::CLIENT_ID,
    code::END,
];

/// The configured options the client gets: with a parameter request list,
/// those it asked for in its order (RFC 2131 §4.3.1), each once; without
/// one, all of them. The subnet mask is always sent.
fn parameter_options(req: &Request, subnet: &Subnet, params: &Params) -> Vec<ReplyOption> {
    let mask = subnet.mask().octets().to_vec();
    let vendor = (!params.vendor_options.is_empty()).then(|| encapsulate(&params.vendor_options));
    let value = |c: u8| -> Option<Vec<u8>> {
        match c {
            code::SUBNET_MASK => Some(mask.clone()),
            code::VENDOR_SPECIFIC if vendor.is_some() => vendor.clone(),
            code::RELAY_AGENT_INFO => None,
            _ => params.options.get(&c).cloned(),
        }
    };
    let mut out: Vec<ReplyOption> = Vec::new();
    let add = |c: u8, out: &mut Vec<ReplyOption>| {
        if PROTOCOL_CODES.contains(&c) || out.iter().any(|o| o.code == c) {
            return;
        }
        if let Some(v) = value(c) {
            out.push(ReplyOption {
                code: c,
                value: v,
                required: c == code::SUBNET_MASK,
            });
        }
    };
    match req.option(code::PARAMETER_REQUEST_LIST) {
        Some(list) => {
            for &c in list {
                add(c, &mut out);
            }
            add(code::SUBNET_MASK, &mut out);
        }
        None => {
            add(code::SUBNET_MASK, &mut out);
            let mut all: Vec<u8> = params.options.keys().copied().collect();
            if vendor.is_some() {
                all.push(code::VENDOR_SPECIFIC);
            }
            all.sort_unstable();
            for c in all {
                add(c, &mut out);
            }
        }
    }
    out
}

/// `vendor_option_N` values as option 43 sub-options (RFC 2132 §8.4).
fn encapsulate(subs: &std::collections::BTreeMap<u8, Vec<u8>>) -> Vec<u8> {
    let mut v = Vec::new();
    for (c, data) in subs {
        // The config caps values; a sub-option holds at most 255 bytes.
        let data = &data[..data.len().min(255)];
        v.push(*c);
        v.push(data.len() as u8);
        v.extend_from_slice(data);
    }
    v
}

#[cfg(test)]
mod catalogue;
#[cfg(test)]
mod tests;
