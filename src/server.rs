//! The serve loop: wait for datagrams, keep the configuration current,
//! answer, and exit when idle or told to.

use std::cell::RefCell;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aas::client::{Link, Meanwhile, Target};
use crate::aas::pipeline::{self, Asker, Pipeline, Task};
use crate::aas::proto::{self, Request};
use crate::config::crosscheck::{self, Severity};
use crate::config::watch::{self, Watch};
use crate::config::Config;
use crate::dhcp::{self, packet, route, Arrival, Destination, Reply};
use crate::forward::{Forwarder, Received};
use crate::limits::{Admission, Gate, Origin};
use crate::net::{self, Batch, Datagram, Interfaces, Socket, BATCH, MAX_DATAGRAM};
use crate::probe::{Prober, Waiting};
use crate::signals;
use crate::{log_debug, log_detail, log_error, log_info, log_notice, log_warning};

mod lane;
use lane::Lane;

pub struct Server {
    socket: Socket,
    config: Config,
    /// dhcpd.conf: reread when it changed and has settled.
    watch: Watch,
    interfaces: Interfaces,
    /// bootps: where relays listen.
    server_port: u16,
    /// bootpc: where clients listen.
    client_port: u16,
    /// Exit after this long without a datagram; `None` = never.
    idle: Option<Duration>,
    /// The connection to in.aasd, opened at the first dynamic client.
    aas: Link,
    /// `-b`: BOOTP requests go to a local bootpd.
    forwarder: Option<Forwarder>,
    /// `probe = yes`: offers wait for an ICMP echo to go unanswered.
    prober: Option<Prober>,
    /// Answers that need no AAS, while a batch waits on it.
    lane: Lane,
    /// The counts behind the limits on new clients.
    gate: RefCell<Gate>,
    /// The pinned addresses in.aasd was told to reserve, with their
    /// clients' AAS names; `None` until in.aasd is first asked (see
    /// [`prepare_greeting`]).
    pins: Option<Arc<[(Ipv4Addr, String)]>>,
    /// The findings last logged from in.aasd's answers: a reconnection
    /// (in.aasd closes idle connections) that finds the same says nothing.
    reported: Vec<crosscheck::Finding>,
}

/// A DISCOVER whose offered addresses keep answering pings gets no offer
/// after this many.
const MAX_CONFLICTS: u8 = 3;

/// How long in.aasd may take to answer before it counts as down.
const AAS_TIMEOUT: Duration = Duration::from_secs(1);

/// `[server] aas_address` + `aas_password` (TCP), else `aas_socket`.
pub fn aas_target(cfg: &Config) -> Target {
    match &cfg.server.aas_address {
        Some(address) => Target::Tcp {
            address: address.clone(),
            password: cfg.server.aas_password.clone().unwrap_or_default(),
        },
        None => Target::Unix(cfg.server.aas_socket.clone()),
    }
}

impl Server {
    pub fn new(
        socket: Socket,
        config: Config,
        watch: Watch,
        ports: (u16, u16),
        idle: Option<Duration>,
        bootpd_port: Option<u16>,
    ) -> io::Result<Server> {
        let forwarder = bootpd_port.map(Forwarder::new).transpose()?;
        let mut server = Server {
            forwarder,
            prober: None,
            lane: Lane::default(),
            gate: RefCell::default(),
            aas: Link::new(aas_target(&config), AAS_TIMEOUT),
            socket,
            config,
            watch,
            interfaces: Interfaces::read()?,
            server_port: ports.0,
            client_port: ports.1,
            idle,
            pins: None,
            reported: Vec::new(),
        };
        server.open_prober();
        Ok(server)
    }

    /// Once root is given up (so the AAS connection is the served user's):
    /// the start-up line. in.aasd is told and checked in [`Server::run`],
    /// once the datagrams already queued are answered; the greeting every
    /// connection to it opens with is made when it is first asked.
    pub fn start(&mut self, how: &str) {
        self.announce(how);
    }

    /// The start-up line, at every `-D` level (see [`crate::startup`]).
    fn announce(&mut self, how: &str) {
        let ifaces = self.interfaces.with_addresses();
        log_notice!("{}", crate::startup::line(&ifaces, &self.config, how));
    }

    /// Whether `interfaces =` lets datagrams from this interface in.
    fn serves(&self, ifname: &str) -> bool {
        let only = &self.config.server.interfaces;
        only.is_empty() || only.iter().any(|n| n == ifname)
    }

    /// Tell in.aasd the pinned addresses of the configuration now in use
    /// (and release those no longer pinned), and check its pools. At start
    /// and after each reload; a connection opened later (in.aasd started
    /// after us, or restarted) does the same through the greeting.
    fn tell_aas(&mut self) {
        let pins: Arc<[_]> = crosscheck::pinned(&self.config).into();
        // Said again for each configuration read.
        self.reported.clear();
        self.aas
            .set_greeting(Box::new(crosscheck::Greeting(pins.clone())));
        let old = self.pins.replace(pins);
        let old = old.as_deref().unwrap_or_default();
        let pins = self.pins.as_deref().unwrap_or_default();
        if !self.config.subnets.iter().any(|s| s.pool.is_some()) && pins.is_empty() {
            return; // nothing in.aasd needs to know, nothing to check
        }
        let mut requests: Vec<Request> = old
            .iter()
            .filter(|(a, _)| !pins.iter().any(|(b, _)| a == b))
            .map(|(a, _)| Request::Unreserve(u32::from(*a)))
            .collect();
        requests.extend(crosscheck::greeting(pins));
        // Served meanwhile, as in a batch: a slow or unreachable in.aasd
        // must not hold back the answers that need none.
        let outlet = Outlet {
            socket: &self.socket,
            interfaces: &self.interfaces,
            server_port: self.server_port,
            client_port: self.client_port,
        };
        let mut meanwhile = LaneWork {
            lane: &mut self.lane,
            outlet: &outlet,
            config: &self.config,
            bootp_forwarded: self.forwarder.is_some(),
        };
        let answers = self.aas.ask_many(&requests, &mut meanwhile);
        // A fresh connection greeted in.aasd first: the same requests again.
        let _ = self.aas.take_greeted();
        if answers.iter().all(Result::is_err) {
            log_detail!(
                "in.aasd not reachable: its pools are checked and the pinned addresses \
                 reserved once it is"
            );
            return;
        }
        let answered = requests
            .into_iter()
            .zip(answers)
            .filter_map(|(l, a)| Some((l, a.ok()?)))
            .collect();
        self.review(answered);
    }

    /// What in.aasd's answers to a greeting say about the configuration,
    /// logged when it differs from what was logged last.
    fn review(&mut self, answers: Vec<(Request, proto::Reply)>) {
        let found = crosscheck::review(&self.config, &answers);
        if found == self.reported {
            return;
        }
        for f in &found {
            match f.severity {
                Severity::Error => log_error!("{}", f.message),
                Severity::Warning => log_warning!("{}", f.message),
            }
        }
        self.reported = found;
    }

    /// The ICMP socket, when the configuration asks for probes and it is
    /// not open yet. Without it offers go out unprobed, after one error line.
    fn open_prober(&mut self) {
        if !self.config.server.probe || self.prober.is_some() {
            return;
        }
        match Prober::new() {
            Ok(p) => self.prober = Some(p),
            Err(e) => log_error!("probe = yes, but no ICMP socket ({e}): offering without probes"),
        }
    }

    /// Serve until idle or terminated. Returns normally for a clean exit.
    pub fn run(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut batch = Batch::new(BATCH);
        // The datagram inetd or systemd started us for is answered before
        // in.aasd is told the configuration: an answer that needs in.aasd
        // opens its connection with the greeting, whose RESERVEs in.aasd
        // handles before the ALLOC, so no pinned address is given out.
        // That greeting told in.aasd all; otherwise it is told now.
        self.drain(&mut batch);
        if !self.aas.connected() {
            self.tell_aas();
        }
        let mut last = Instant::now();
        loop {
            if signals::terminated() {
                log_detail!("exiting on signal");
                return Ok(());
            }
            if signals::take_hangup() {
                log_detail!("SIGHUP: rereading {}", self.watch.path().display());
                self.reload();
            }
            let left = self.idle.map(|d| d.saturating_sub(last.elapsed()));
            if left == Some(Duration::ZERO) {
                log_detail!(
                    "no request for {:?}: exiting",
                    self.idle.unwrap_or_default()
                );
                return Ok(());
            }
            let now = Instant::now();
            let probe_due = self.prober.as_ref().and_then(|p| p.next_deadline());
            let timeout = match (left, probe_due.map(|d| d.saturating_duration_since(now))) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let fds = [
                Some(self.socket.fd().as_fd()),
                self.forwarder.as_ref().and_then(|f| f.fd()),
                self.prober.as_ref().map(|p| p.fd()),
            ];
            // Datagrams set aside while the probe path waited on in.aasd
            // are served without waiting for another to arrive.
            let set_aside = self.lane.has_deferred();
            let timeout = if set_aside {
                Some(Duration::ZERO)
            } else {
                timeout
            };
            let ready = match net::wait(&fds, timeout) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if ready[0] || set_aside {
                last = Instant::now();
                self.drain(&mut batch);
            }
            if ready[1] {
                self.relay_bootpd_replies(&mut buf);
            }
            if ready[2] {
                self.probes_answered(&mut buf);
            }
            self.send_unanswered_probes();
        }
    }

    /// Serve the datagrams queued on the server socket, a batch at a time,
    /// and those the lane set aside while a batch waited on in.aasd.
    fn drain(&mut self, batch: &mut Batch) {
        loop {
            while self.lane.has_deferred() && !signals::terminated() {
                let deferred = self.lane.take_deferred();
                let work: Vec<(&[u8], &Datagram)> =
                    deferred.iter().map(|(b, d)| (b.as_slice(), d)).collect();
                self.serve(&work);
            }
            if let Err(e) = self.socket.recv_batch(batch) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log_error!("recvmmsg: {e}");
                }
                return;
            }
            if batch.is_empty() {
                return;
            }
            self.serve_batch(batch);
            // A short batch emptied the queue: back to poll(2), not one more
            // read that would find nothing.
            if (batch.len() < batch.capacity() && !self.lane.has_deferred())
                || signals::terminated()
            {
                return;
            }
        }
    }

    /// Reload when the file changed since it was last read (checked before
    /// serving each packet).
    fn check_config(&mut self) {
        if self.watch.changed() {
            self.reload();
        }
    }

    /// Take the file on disk, unless it is still being written: then the
    /// next batch tries again, and the previous configuration serves.
    fn reload(&mut self) {
        let result = match self.watch.load() {
            Some(r) => r,
            None => {
                crate::log::limited(
                    crate::log::Level::Debug,
                    "config unsettled",
                    1,
                    format_args!(
                        "{} changed less than {:?} ago or while read: not taken yet",
                        self.watch.path().display(),
                        watch::SETTLE
                    ),
                );
                return;
            }
        };
        match result {
            Ok(c) => {
                if aas_target(&c) != *self.aas.target() {
                    self.aas = Link::new(aas_target(&c), AAS_TIMEOUT);
                }
                self.config = c;
                self.open_prober();
                log_detail!("reloaded {}", self.watch.path().display());
                self.tell_aas();
            }
            Err(errors) => {
                for e in &errors {
                    log_error!("{e}");
                }
                log_error!(
                    "{}: {} error(s): keeping the previous configuration",
                    self.watch.path().display(),
                    errors.len()
                );
            }
        }
    }

    /// Answer a batch of datagrams (the reload check is made once for the
    /// batch: every datagram in it had arrived before).
    fn serve_batch(&mut self, batch: &Batch) {
        let work: Vec<(&[u8], &Datagram)> = batch.datagrams().collect();
        self.serve(&work);
    }

    fn serve(&mut self, datagrams: &[(&[u8], &Datagram)]) {
        self.check_config();
        let mut work = Vec::with_capacity(datagrams.len());
        for &(bytes, d) in datagrams {
            // No interface known (the datagram that woke an activated
            // server): served, as it must be answered.
            let ifname = match d.ifindex {
                0 => None,
                _ if self.config.server.interfaces.is_empty() => None,
                i => self.interfaces.get(i).map(|iface| iface.name.clone()),
            };
            if let Some(name) = ifname.filter(|n| !self.serves(n)) {
                log_debug!("drop from {} on {name}: not one of interfaces =", d.src);
            } else if d.truncated {
                log_debug!("drop from {}: datagram truncated", d.src);
            } else if !self.forwarded_to_bootpd(bytes, d) {
                work.push((bytes, d));
            }
        }
        self.answer(&work, 0);
    }

    /// Answer some datagrams: each handler runs until it needs the AAS,
    /// their requests go to in.aasd together, and the answers let them
    /// finish. A reply goes out as soon as its handler ends, so answers
    /// that need no AAS never wait for it; while in.aasd is awaited, the
    /// lane serves newly arrived datagrams that need none. A reply to
    /// probe first is dispatched once all are done. A handler that panics
    /// gets no reply and a log line: a bug on one packet must not take the
    /// service down (under inetd a crash on every spawn would keep it down).
    fn answer(&mut self, work: &[(&[u8], &Datagram)], conflicts: u8) {
        for (_, d) in work {
            self.interfaces.get(d.ifindex);
        }
        let own_addrs = self.interfaces.all_addrs();
        let arrivals: Vec<Arrival> = work
            .iter()
            .map(|(_, d)| arrival(&self.interfaces, d, own_addrs))
            .collect();
        let queue = Pipeline::default();
        let config = &self.config;
        let limited = config.subnets.iter().any(|s| s.limits.any());
        // Limits need the relay and circuit of each request: parsed here
        // once more, only when some subnet has limits.
        let askers: Vec<Asker> = work
            .iter()
            .map(|(bytes, _)| match limited.then(|| packet::parse(bytes)) {
                Some(Ok(req)) => Asker::Limited(
                    &queue,
                    Admission {
                        gate: &self.gate,
                        config,
                        origin: Origin::of(&req),
                    },
                ),
                _ => Asker::Queued(&queue),
            })
            .collect();
        let tasks = work
            .iter()
            .zip(&arrivals)
            .zip(&askers)
            .map(|(((bytes, _), at), asker)| {
                Box::pin(dhcp::answer(bytes, at, config, asker)) as Task<_>
            })
            .collect();
        // Built field by field: the link and the lane are borrowed apart.
        let outlet = Outlet {
            socket: &self.socket,
            interfaces: &self.interfaces,
            server_port: self.server_port,
            client_port: self.client_port,
        };
        let (link, lane, pins) = (&mut self.aas, &mut self.lane, &mut self.pins);
        let bootp_forwarded = self.forwarder.is_some();
        let mut to_probe = Vec::new();
        pipeline::run(
            &queue,
            tasks,
            |requests| {
                prepare_greeting(link, pins, config);
                let mut meanwhile = LaneWork {
                    lane,
                    outlet: &outlet,
                    config,
                    bootp_forwarded,
                };
                link.ask_many(requests, &mut meanwhile)
            },
            |i, result: Option<Option<Reply>>| {
                let d = work[i].1;
                match result {
                    None => log_error!("internal error on a datagram from {}: dropped", d.src),
                    Some(Some(reply)) if reply.probe.is_some() => to_probe.push((i, reply)),
                    Some(Some(reply)) => outlet.send(&reply, d),
                    Some(None) => {}
                }
            },
        );
        if let Some(greeted) = self.aas.take_greeted() {
            self.review(greeted);
        }
        for (i, reply) in to_probe {
            let (bytes, d) = work[i];
            self.dispatch(reply, bytes, d, conflicts);
        }
    }

    /// With `-b`, a BOOTP request (valid, no option 53) is bootpd's;
    /// anything malformed is left to the handler, which logs the drop.
    fn forwarded_to_bootpd(&mut self, bytes: &[u8], d: &Datagram) -> bool {
        let Some(forwarder) = &mut self.forwarder else {
            return false;
        };
        match packet::parse(bytes) {
            Ok(req)
                if req.message_type.is_none()
                    && !self.interfaces.all_addrs().contains(&req.giaddr) =>
            {
                forwarder.forward(bytes, &req, d);
                true
            }
            _ => false,
        }
    }

    /// Send a reply now, or, for an offer to probe, once the probe times out.
    fn dispatch(&mut self, reply: Reply, request: &[u8], d: &Datagram, conflicts: u8) {
        let timeout = Duration::from_millis(u64::from(self.config.server.probe_timeout));
        if let (Some(probe), Some(prober)) = (&reply.probe, &mut self.prober) {
            let addr = probe.addr;
            if !prober.echo(addr) {
                self.send(&reply, d);
                return;
            }
            prober.hold(Waiting {
                addr,
                deadline: Instant::now() + timeout,
                offer: reply,
                request: request.to_vec(),
                arrival: *d,
                conflicts,
            });
            return;
        }
        self.send(&reply, d);
    }

    /// An address answered its ping: take it out of use and offer another.
    fn probes_answered(&mut self, buf: &mut [u8]) {
        let Some(prober) = &mut self.prober else {
            return;
        };
        for w in prober.answered(buf) {
            let Some(probe) = &w.offer.probe else {
                continue;
            };
            log_error!(
                "{} answers ping: in use by a host the AAS does not know; declined for {} s",
                probe.addr,
                self.config.server.decline_time
            );
            prepare_greeting(&mut self.aas, &mut self.pins, &self.config);
            if let Err(e) = self.aas.ask(&probe.decline) {
                log_detail!("declining {}: {}", probe.addr, e.0);
            }
            if w.conflicts + 1 >= MAX_CONFLICTS {
                log_error!(
                    "{} addresses in a row answered pings: no offer for this DISCOVER",
                    MAX_CONFLICTS
                );
                continue;
            }
            self.answer(&[(&w.request, &w.arrival)], w.conflicts + 1);
        }
    }

    /// Offers whose probe went unanswered go out now.
    fn send_unanswered_probes(&mut self) {
        let Some(prober) = &mut self.prober else {
            return;
        };
        for w in prober.expired(Instant::now()) {
            self.send(&w.offer, &w.arrival);
        }
    }

    /// bootpd's replies, sent on to their clients from the server port.
    fn relay_bootpd_replies(&mut self, buf: &mut [u8]) {
        loop {
            let Some(forwarder) = &mut self.forwarder else {
                return;
            };
            let (bytes, pending) = match forwarder.receive(buf) {
                Ok(Received::Reply(bytes, pending)) => (bytes, pending),
                Ok(Received::Dropped) => continue,
                Ok(Received::Empty) => return,
                Err(e) => {
                    log_error!("reading bootpd's reply: {e}");
                    return;
                }
            };
            let req = &pending.request;
            let yiaddr = packet::addr(&bytes, packet::offset::YIADDR);
            log_info!("BOOTREPLY from bootpd on {yiaddr} to {}", req.mac());
            let server_id = self.local_address(&pending.arrival, yiaddr);
            let mut bytes = bytes;
            // bootpd names the interface facing giaddr, loopback here, as the
            // boot server when bootptab gives none: ours is the right one.
            if packet::addr(&bytes, packet::offset::SIADDR).is_loopback() {
                packet::set_addr(&mut bytes, packet::offset::SIADDR, server_id);
            }
            let reply = Reply {
                to: route::destination(req, yiaddr, false),
                bytes,
                server_id,
                probe: None,
            };
            self.send(&reply, &pending.arrival);
        }
    }

    /// Our address on the way a datagram came: where it arrived, else an
    /// address of its interface, else (the datagram that woke an activated
    /// server has neither) ours on the subnet of `client`.
    fn local_address(&mut self, d: &Datagram, client: Ipv4Addr) -> Ipv4Addr {
        if !d.local.is_unspecified() {
            return d.local;
        }
        if let Some(a) = self.interfaces.get(d.ifindex).and_then(|i| i.addrs.first()) {
            return *a;
        }
        let subnet = self.config.subnet_containing(client);
        let own = self.interfaces.all_addrs();
        subnet
            .and_then(|s| own.iter().find(|a| s.contains(**a)))
            .copied()
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    fn send(&self, reply: &Reply, d: &Datagram) {
        self.outlet().send(reply, d);
    }

    fn outlet(&self) -> Outlet<'_> {
        Outlet {
            socket: &self.socket,
            interfaces: &self.interfaces,
            server_port: self.server_port,
            client_port: self.client_port,
        }
    }
}

/// The greeting, made before in.aasd is first asked for this
/// configuration: a start under inetd whose first answer needs no AAS (a
/// fixed address) does not name every pinned client before it.
fn prepare_greeting(
    link: &mut Link,
    pins: &mut Option<Arc<[(Ipv4Addr, String)]>>,
    config: &Config,
) {
    if pins.is_none() {
        let made: Arc<[_]> = crosscheck::pinned(config).into();
        link.set_greeting(Box::new(crosscheck::Greeting(made.clone())));
        *pins = Some(made);
    }
}

/// How a datagram arrived, as the handler sees it.
fn arrival<'a>(interfaces: &'a Interfaces, d: &Datagram, own_addrs: &'a [Ipv4Addr]) -> Arrival<'a> {
    let iface = interfaces.known(d.ifindex);
    Arrival {
        src: d.src,
        ifname: &iface.name,
        local: d.local,
        iface_addrs: &iface.addrs,
        own_addrs,
        mtu: iface.mtu.max(576),
    }
}

/// The lane's work while a batch waits on in.aasd: taking in what arrives
/// on the server socket, as soon as it arrives.
struct LaneWork<'a, 'b> {
    lane: &'a mut Lane,
    outlet: &'a Outlet<'b>,
    config: &'a Config,
    bootp_forwarded: bool,
}

impl Meanwhile for LaneWork<'_, '_> {
    fn run(&mut self) {
        self.lane
            .serve(self.outlet, self.config, self.bootp_forwarded);
    }

    fn wake(&self) -> Option<BorrowedFd<'_>> {
        self.lane
            .has_room()
            .then(|| self.outlet.socket.fd().as_fd())
    }
}

/// What sending a reply needs, borrowed apart from the rest of the
/// server, so replies can go out while a batch waits on in.aasd.
pub(crate) struct Outlet<'a> {
    socket: &'a Socket,
    interfaces: &'a Interfaces,
    /// bootps: where relays listen.
    server_port: u16,
    /// bootpc: where clients listen.
    client_port: u16,
}

impl Outlet<'_> {
    fn send(&self, reply: &Reply, d: &Datagram) {
        // Without IP_PKTINFO on the datagram, the interface is the one that
        // holds the server identifier the handler chose.
        let (ifindex, ifname) = if d.ifindex != 0 {
            (d.ifindex, self.interfaces.known(d.ifindex).name.as_str())
        } else {
            self.interfaces
                .owner_of(reply.server_id)
                .map(|(i, iface)| (i, iface.name.as_str()))
                .unwrap_or_default()
        };
        let broadcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, self.client_port);
        let (to, ifindex) = match &reply.to {
            Destination::Relay(giaddr) => (SocketAddrV4::new(*giaddr, self.server_port), 0),
            Destination::Unicast(ip) => (SocketAddrV4::new(*ip, self.client_port), 0),
            Destination::Broadcast => (broadcast, ifindex),
            Destination::UnicastNoArp { ip, hw } => {
                match crate::sys::set_arp(self.socket.fd(), ifname, *ip, hw) {
                    Ok(()) => (SocketAddrV4::new(*ip, self.client_port), ifindex),
                    Err(e) => {
                        log_debug!("SIOCSARP {ip} on {ifname}: {e}: broadcasting instead");
                        (broadcast, ifindex)
                    }
                }
            }
        };
        if let Err(e) = self.socket.send(&reply.bytes, to, ifindex, reply.server_id) {
            log_error!("sendmsg to {to}: {e}");
        }
    }
}
