//! The serve loop: wait for datagrams, keep the configuration current,
//! answer, and exit when idle or told to.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::aas::client::{Link, Target};
use crate::config::{self, Config};
use crate::dhcp::{self, Arrival, Destination, Reply};
use crate::net::{Datagram, Interfaces, Socket, MAX_DATAGRAM};
use crate::signals;
use crate::{log_debug, log_detail, log_error};

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
}

/// How long in.aasd may take to answer before it counts as down.
const AAS_TIMEOUT: Duration = Duration::from_secs(1);

/// `[server] aas_address` + `aas_password` (TCP), else `aas_socket`.
fn aas_target(cfg: &Config) -> Target {
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
    ) -> io::Result<Server> {
        Ok(Server {
            aas: Link::new(aas_target(&config), AAS_TIMEOUT),
            socket,
            config_stamp: stamp(&config_path),
            config,
            config_path,
            interfaces: Interfaces::read()?,
            server_port: ports.0,
            client_port: ports.1,
            idle,
        })
    }

    /// Serve until idle or terminated. Returns normally for a clean exit.
    pub fn run(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
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
            match self.socket.wait(left) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            // Drain what is queued; each datagram restarts the idle timer.
            loop {
                let d = match self.socket.recv(&mut buf) {
                    Ok(Some(d)) => d,
                    Ok(None) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => break,
                    Err(e) => {
                        log_error!("recvmsg: {e}");
                        break;
                    }
                };
                last = Instant::now();
                self.serve(&buf[..d.len.min(buf.len())], &d);
                if signals::terminated() {
                    break;
                }
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
                log_detail!("reloaded {}", self.config_path.display());
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

    fn serve(&mut self, bytes: &[u8], d: &Datagram) {
        self.check_config();
        if d.truncated {
            log_debug!("drop from {}: datagram truncated", d.src);
            return;
        }
        let iface = self.interfaces.get(d.ifindex).cloned().unwrap_or_default();
        let arrival = Arrival {
            src: d.src,
            ifname: &iface.name,
            local: d.local,
            iface_addrs: &iface.addrs,
            own_addrs: self.interfaces.all_addrs(),
            mtu: iface.mtu.max(576),
        };
        let config = &self.config;
        let aas = &mut self.aas;
        // A last guard: a bug on one packet must not take the service down
        // (under inetd a crash on every spawn would keep it down).
        let reply = match catch_unwind(AssertUnwindSafe(|| {
            dhcp::handle(bytes, &arrival, config, aas)
        })) {
            Ok(r) => r,
            Err(_) => {
                log_error!("internal error on a datagram from {}: dropped", d.src);
                return;
            }
        };
        if let Some(reply) = reply {
            self.send(&reply, d);
        }
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
