//! The serve loop: wait for datagrams, keep the configuration current,
//! answer, and exit when idle or told to.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::aas::client::{Link, Target};
use crate::aas::pipeline::{self, Asker, Pipeline, Task};
use crate::aas::proto::Answer;
use crate::config::crosscheck::{self, Severity};
use crate::config::{self, Config};
use crate::dhcp::{self, packet, route, Arrival, Destination, Reply};
use crate::forward::{Forwarder, Received};
use crate::net::{self, Batch, Datagram, Interfaces, Socket, BATCH, MAX_DATAGRAM};
use crate::probe::{Prober, Waiting};
use crate::signals;
use crate::{log_debug, log_detail, log_error, log_info, log_notice, log_warning};

/// What identifies one version of the file: a rewrite or a rename changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &PathBuf) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
    })
}

pub struct Server {
    socket: Socket,
    config: Config,
    config_path: PathBuf,
    /// The stamp of the file last tried, good or bad, so a broken file is
    /// reported once, not once per packet.
    config_stamp: Option<Stamp>,
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
    /// The pinned addresses in.aasd was told to reserve, with their
    /// clients' AAS names.
    pins: Vec<(Ipv4Addr, String)>,
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
        config_path: PathBuf,
        ports: (u16, u16),
        idle: Option<Duration>,
        bootpd_port: Option<u16>,
    ) -> io::Result<Server> {
        let forwarder = bootpd_port.map(Forwarder::new).transpose()?;
        let mut server = Server {
            forwarder,
            prober: None,
            aas: Link::new(aas_target(&config), AAS_TIMEOUT),
            socket,
            config_stamp: stamp(&config_path),
            config,
            config_path,
            interfaces: Interfaces::read()?,
            server_port: ports.0,
            client_port: ports.1,
            idle,
            pins: Vec::new(),
            reported: Vec::new(),
        };
        server.open_prober();
        Ok(server)
    }

    /// Once root is given up (so the AAS connection is the served user's):
    /// the start-up line, then in.aasd told and checked.
    pub fn start(&mut self, how: &str) {
        self.announce(how);
        self.tell_aas();
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
        let old = std::mem::replace(&mut self.pins, crosscheck::pinned(&self.config));
        // Said again for each configuration read.
        self.reported.clear();
        self.aas.set_greeting(crosscheck::greeting(&self.pins));
        if !self.config.subnets.iter().any(|s| s.pool.is_some()) && self.pins.is_empty() {
            return; // nothing in.aasd needs to know, nothing to check
        }
        let mut lines: Vec<String> = old
            .iter()
            .filter(|(a, _)| !self.pins.iter().any(|(b, _)| a == b))
            .map(|(a, _)| format!("UNRESERVE {a}"))
            .collect();
        lines.extend(crosscheck::greeting(&self.pins));
        let answers = self.aas.ask_many(&lines);
        // A fresh connection greeted in.aasd first: the same lines again.
        let _ = self.aas.take_greeted();
        if answers.iter().all(Result::is_err) {
            log_detail!(
                "in.aasd not reachable: its pools are checked and the pinned addresses \
                 reserved once it is"
            );
            return;
        }
        let answered = lines
            .into_iter()
            .zip(answers)
            .filter_map(|(l, a)| Some((l, a.ok()?)))
            .collect();
        self.review(answered);
    }

    /// What in.aasd's answers to a greeting say about the configuration,
    /// logged when it differs from what was logged last.
    fn review(&mut self, answers: Vec<(String, Answer)>) {
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
        let mut last = Instant::now();
        loop {
            if signals::terminated() {
                log_detail!("exiting on signal");
                return Ok(());
            }
            if signals::take_hangup() {
                log_detail!("SIGHUP: rereading {}", self.config_path.display());
                self.reload(stamp(&self.config_path));
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
            let ready = match net::wait(&fds, timeout) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if ready[0] {
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

    /// Serve the datagrams queued on the server socket, a batch at a time.
    fn drain(&mut self, batch: &mut Batch) {
        loop {
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
            if batch.len() < batch.capacity() || signals::terminated() {
                return;
            }
        }
    }

    /// Reload when the file changed since it was last read (SPEC §2: before
    /// serving each packet).
    fn check_config(&mut self) {
        let now = stamp(&self.config_path);
        if now != self.config_stamp {
            self.reload(now);
        }
    }

    fn reload(&mut self, now: Option<Stamp>) {
        self.config_stamp = now;
        match config::load(&self.config_path) {
            Ok(c) => {
                if aas_target(&c) != *self.aas.target() {
                    self.aas = Link::new(aas_target(&c), AAS_TIMEOUT);
                }
                self.config = c;
                self.open_prober();
                log_detail!("reloaded {}", self.config_path.display());
                self.tell_aas();
            }
            Err(errors) => {
                for e in &errors {
                    log_error!("{e}");
                }
                log_error!(
                    "{}: {} error(s): keeping the previous configuration",
                    self.config_path.display(),
                    errors.len()
                );
            }
        }
    }

    /// Answer a batch of datagrams (SPEC §2's reload check is made once for
    /// the batch: every datagram in it had arrived before).
    fn serve_batch(&mut self, batch: &Batch) {
        self.check_config();
        let mut work = Vec::with_capacity(batch.len());
        for (bytes, d) in batch.datagrams() {
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
        let replies = self.answer(&work);
        for ((bytes, d), reply) in work.into_iter().zip(replies) {
            if let Some(reply) = reply {
                self.dispatch(reply, bytes, d, 0);
            }
        }
    }

    /// The handlers' replies to some datagrams: each runs until it needs
    /// the AAS, their requests go to in.aasd together, and the answers let
    /// them finish. A handler that panics gets no reply and a log line: a
    /// bug on one packet must not take the service down (under inetd a
    /// crash on every spawn would keep it down).
    fn answer(&mut self, work: &[(&[u8], &Datagram)]) -> Vec<Option<Reply>> {
        for (_, d) in work {
            self.interfaces.get(d.ifindex);
        }
        let own_addrs = self.interfaces.all_addrs();
        let arrivals: Vec<Arrival> = work
            .iter()
            .map(|(_, d)| {
                let iface = self.interfaces.known(d.ifindex);
                Arrival {
                    src: d.src,
                    ifname: &iface.name,
                    local: d.local,
                    iface_addrs: &iface.addrs,
                    own_addrs,
                    mtu: iface.mtu.max(576),
                }
            })
            .collect();
        let queue = Pipeline::default();
        let asker = Asker::Queued(&queue);
        let config = &self.config;
        let tasks = work
            .iter()
            .zip(&arrivals)
            .map(|((bytes, _), at)| Box::pin(dhcp::answer(bytes, at, config, &asker)) as Task<_>)
            .collect();
        let link = &mut self.aas;
        let results = pipeline::run(&queue, tasks, |lines| link.ask_many(lines));
        if let Some(greeted) = self.aas.take_greeted() {
            self.review(greeted);
        }
        work.iter()
            .zip(results)
            .map(|((_, d), result)| {
                if result.is_none() {
                    log_error!("internal error on a datagram from {}: dropped", d.src);
                }
                result.flatten()
            })
            .collect()
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
            if let Err(e) = prober.echo(addr) {
                log_error!("probe of {addr}: {e}: offering it unprobed");
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
            let reply = self.answer(&[(&w.request, &w.arrival)]).pop().flatten();
            if let Some(reply) = reply {
                self.dispatch(reply, &w.request, &w.arrival, w.conflicts + 1);
            }
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
            let yiaddr = packet::addr(&bytes, 16);
            log_info!("BOOTREPLY from bootpd on {yiaddr} to {}", req.mac());
            let server_id = self.local_address(&pending.arrival, yiaddr);
            let mut bytes = bytes;
            // bootpd names the interface facing giaddr, loopback here, as the
            // boot server when bootptab gives none: ours is the right one.
            if packet::addr(&bytes, 20).is_loopback() {
                bytes[20..24].copy_from_slice(&server_id.octets());
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

    fn send(&mut self, reply: &Reply, d: &Datagram) {
        // Without IP_PKTINFO on the datagram, the interface is the one that
        // holds the server identifier the handler chose.
        let (ifindex, ifname) = if d.ifindex != 0 {
            let name = self.interfaces.get(d.ifindex).map(|i| i.name.clone());
            (d.ifindex, name.unwrap_or_default())
        } else {
            self.interfaces
                .owner_of(reply.server_id)
                .map(|(i, iface)| (i, iface.name.clone()))
                .unwrap_or_default()
        };
        let ifname = ifname.as_str();
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
