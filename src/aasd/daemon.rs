//! The in.aasd serve loop: one thread, poll(2) over the listeners and every
//! requester's connection.
//!
//! Each round reads every request that has arrived, applies it, and
//! appends its changes to the log; then one fsync covers them all (group
//! commit) and only then do the answers go out. So no requester hears of a
//! change the log might not hold.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::{access, AccessFlags, User};

use super::config::StoreKind;
use super::config::{self, AasConfig};
use super::http;
use super::logstore::LogStore;
use super::metrics::Metrics;
use super::ops;
use super::pg::PgStore;
use super::store::Leases;
use crate::aas::lease::{Filter, Time};
use crate::aas::proto::{self, Code, Reply, Request, AUTH_FAILURE_DELAY, MAX_LINE};
use crate::aas::stream::Stream;
use crate::log::Level;
use crate::privilege::chown_no_follow;
use crate::{log_debug, log_detail, log_error, log_info, log_limited, signals};

/// More Unix-socket connections than this are refused (closed at once).
/// TCP ones have their own cap (`max_tcp_connections`), so remote
/// requesters cannot lock out the local in.dhcpd.
pub const MAX_UNIX_CONNECTIONS: usize = 256;

/// A requester's answers not yet read (made, or waiting for the round's
/// fsync) beyond this stop answering its further requests, and reading
/// them: they wait in the socket, so its input is bounded as well.
pub const MAX_OUTPUT: usize = 128 << 10;

/// Unread answers of all requesters together beyond this: only a requester
/// with nothing unread gets an answer, one at a time. With the number of
/// connections capped, in.aasd's memory is bounded whatever they do.
pub const MAX_TOTAL_OUTPUT: usize = 8 << 20;

/// Request bytes read ahead of what is answered, per connection. A round
/// answers what was read, under one fsync: this is room for the largest
/// batch in.dhcpd sends (about 1,000 ALLOCs, up to 150 bytes each), so a
/// slow disk costs one fsync per batch, not one per 16 KiB of it.
const MAX_INPUT: usize = 160 << 10;

/// `LEASE` rows a `QUERY` answer is made of per step: a long listing is
/// made as its requester reads it, not all at once.
const QUERY_PAGE: usize = 64;

/// Connections not yet authenticated from one peer address: beyond this
/// its new one is closed at once. in.dhcpd authenticates as it connects.
pub const MAX_UNAUTHED_PER_PEER: usize = 4;

pub fn now() -> Time {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A `QUERY` answered a page at a time.
struct Listing {
    /// Its filter, the range starting where the next page does.
    filter: Filter,
    /// Rows sent so far, for `END n`.
    rows: usize,
}

struct Conn {
    stream: Stream,
    peer: String,
    /// The peer's address, for TCP.
    ip: Option<IpAddr>,
    /// TCP requesters must send AUTH first; Unix ones are trusted by the
    /// socket's permissions.
    authed: bool,
    /// With admin credentials (or on the Unix socket): any request. A TCP
    /// requester with requester credentials only allocates and gives back.
    admin: bool,
    input: Vec<u8>,
    /// The requester sent all it will (EOF): answer what was read, then close.
    eof: bool,
    /// Answers waiting for this round's fsync: (text, needs the log on disk).
    pending: Vec<(String, bool)>,
    /// Bytes of `pending`, newlines included.
    pending_bytes: usize,
    output: Vec<u8>,
    /// A QUERY still being answered; later requests wait for it.
    listing: Option<Listing>,
    /// Close once the output is sent.
    closing: bool,
    /// The last complete request line, or the connection.
    active: Instant,
    /// Send nothing before this (a failed AUTH).
    hold_until: Option<Instant>,
}

impl Conn {
    fn is_tcp(&self) -> bool {
        matches!(self.stream, Stream::Tcp(_))
    }

    fn held(&self, now: Instant) -> bool {
        self.hold_until.is_some_and(|t| now < t)
    }

    /// Answer bytes made for this requester and not yet taken by it.
    fn unread(&self) -> usize {
        self.pending_bytes + self.output.len()
    }

    fn answer(&mut self, text: String, durable: bool) {
        self.pending_bytes += text.len() + 1;
        self.pending.push((text, durable));
    }

    /// May another answer be made for it, with `total` unread answer bytes
    /// of all requesters?
    fn may_answer(&self, total: usize, now: Instant) -> bool {
        let unread = self.unread();
        !self.closing
            && !self.held(now)
            && unread < MAX_OUTPUT
            && (total < MAX_TOTAL_OUTPUT || unread == 0)
    }

    /// A request line, or a listing, waits to be answered and may be.
    fn has_work(&self, total: usize, now: Instant) -> bool {
        self.may_answer(total, now) && (self.listing.is_some() || self.input.contains(&b'\n'))
    }

    /// When this connection is closed for idleness.
    fn idle_deadline(&self, cfg: &AasConfig) -> Instant {
        let secs = if self.authed {
            cfg.idle_timeout
        } else {
            cfg.auth_timeout
        };
        self.active + Duration::from_secs(secs)
    }
}

pub struct Daemon {
    cfg: AasConfig,
    config_path: PathBuf,
    store: Box<dyn Leases>,
    unix: UnixListener,
    tcp: Option<TcpListener>,
    conns: Vec<Conn>,
    next_checkpoint: Instant,
    /// Counters, and the metrics listener when aasd.conf asks for one.
    metrics: Metrics,
    /// Where [`Daemon::read_from`] reads into.
    read_buf: Box<[u8]>,
}

/// What a start opens after the Unix socket: the TCP listener, the store,
/// the metrics listener.
type Opened = (Option<TcpListener>, Box<dyn Leases>, Option<http::Listener>);

/// Bind the Unix socket, refusing to take it from a running in.aasd.
fn bind_unix(path: &PathBuf) -> io::Result<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{}: another in.aasd is answering there", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// What requester credentials allow: allocate and renew, and give back
/// (release, decline, unhold) what the client named holds; the database
/// checks it holds it. Admin work, and reading every lease, is refused.
fn requester_may(r: &Request) -> bool {
    match r {
        // RESERVE and POOLS are in.dhcpd's own: its pinned addresses, and
        // the pools it checks its configuration against.
        Request::Auth(_)
        | Request::Ping
        | Request::Alloc(_)
        | Request::Unhold { .. }
        | Request::Reserve { .. }
        | Request::Unreserve(_)
        | Request::Pools => true,
        Request::Release { by, .. } | Request::Decline { by, .. } => by.is_some(),
        Request::Disable(_)
        | Request::Enable(_)
        | Request::Query(_)
        | Request::Stats(_)
        | Request::Checkpoint
        | Request::Reload => false,
    }
}

/// Compare without leaking where the first difference is.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// An `ERR` answer line.
fn failed(code: Code, text: String) -> String {
    Reply::Err { code, text }.to_string()
}

fn err(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// Hand the socket and the database directories to `user`, then become
/// it, so that nothing after this runs as root and every file written is
/// the user's. Directories that exist are left as they are, but must be
/// writable by the user.
fn drop_root(user: &User, cfg: &AasConfig) -> io::Result<()> {
    let me = nix::unistd::geteuid();
    if !me.is_root() {
        return if me == user.uid {
            Ok(())
        } else {
            Err(err(format!(
                "user {}: only root can change user",
                user.name
            )))
        };
    }
    let name = &user.name;
    let group = crate::privilege::aas_socket_group(cfg.socket_group.as_deref())?;
    chown_no_follow(&cfg.socket, user.uid, group.unwrap_or(user.gid))
        .map_err(|e| err(format!("{}: chown to {name}: {e}", cfg.socket.display())))?;
    // The log's directories; PostgreSQL needs none.
    let dirs = match cfg.store_kind {
        StoreKind::Log => vec![
            ("database_dir", &cfg.store.database_dir),
            ("checkpoint_dir", &cfg.store.checkpoint_dir),
        ],
        StoreKind::Postgresql => Vec::new(),
    };
    for &(_, dir) in &dirs {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
            chown_no_follow(dir, user.uid, user.gid)
                .map_err(|e| err(format!("{}: chown to {name}: {e}", dir.display())))?;
        }
    }
    crate::privilege::become_user(user, &[], &[])?;
    for (key, dir) in dirs {
        if access(dir, AccessFlags::W_OK | AccessFlags::X_OK).is_err() {
            return Err(err(format!(
                "{key} {} is not writable by user {name}: make it theirs (chown {name} {}) \
                 or choose another",
                dir.display(),
                dir.display()
            )));
        }
    }
    log_detail!("running as user {name}");
    Ok(())
}

impl Daemon {
    /// Bind the sockets (as root, if started so), become `user` if given,
    /// then open the database.
    pub fn new(cfg: AasConfig, config_path: PathBuf, user: Option<&User>) -> io::Result<Daemon> {
        let unix = bind_unix(&cfg.socket)?;
        // Whatever stops the start from here on, the socket just made must
        // not stay behind looking like a running in.aasd.
        let opened = crate::privilege::give_socket_group(&cfg.socket, cfg.socket_group.as_deref())
            .and_then(|_| Self::open_rest(&cfg, user));
        if opened.is_err() {
            let _ = std::fs::remove_file(&cfg.socket);
        }
        let (tcp, store, metrics) = opened?;
        Ok(Daemon {
            metrics: Metrics::new(metrics, now()),
            read_buf: vec![0; 16384].into_boxed_slice(),
            next_checkpoint: Instant::now() + Duration::from_secs(cfg.checkpoint_intvl),
            cfg,
            config_path,
            store,
            unix,
            tcp,
            conns: Vec::new(),
        })
    }

    /// The TCP listeners (requesters, metrics), the change of user and the
    /// database.
    fn open_rest(cfg: &AasConfig, user: Option<&User>) -> io::Result<Opened> {
        let tcp = match &cfg.listen {
            Some(l) => {
                let addr = crate::sys::tcp_address(l)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let t = TcpListener::bind(addr)?;
                t.set_nonblocking(true)?;
                Some(t)
            }
            None => None,
        };
        let metrics = cfg.metrics_listen.as_deref().map(http::Listener::bind);
        let metrics = metrics.transpose()?;
        if let Some(u) = user {
            drop_root(u, cfg)?;
        }
        let store: Box<dyn Leases> = match cfg.store_kind {
            StoreKind::Log => Box::new(LogStore::open(cfg.store.clone(), cfg.pools.clone())?),
            StoreKind::Postgresql => Box::new(PgStore::configured(cfg)?),
        };
        Ok((tcp, store, metrics))
    }

    pub fn store(&self) -> &dyn Leases {
        self.store.as_ref()
    }

    /// Serve until SIGTERM.
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            if signals::terminated() {
                return self.shutdown();
            }
            if signals::take_hangup() {
                log_detail!("SIGHUP: rereading {}", self.config_path.display());
                let _ = self.reload();
            }
            if Instant::now() >= self.next_checkpoint {
                let _ = self.checkpoint(false);
            }
            let wait = self
                .next_deadline()
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1));
            let ready = self.wait(wait)?;
            for i in ready.2 {
                self.read_from(i);
            }
            self.metrics.serve(self.store.as_mut(), now());
            let mut total = self.unread_total();
            for i in 0..self.conns.len() {
                self.serve(i, &mut total);
            }
            // After the AUTHs that came are taken: a new connection that
            // makes room closes one that is still unauthenticated.
            self.accept(ready.0, ready.1);
            self.close_idle();
            self.commit_round();
            self.write_out();
            self.conns.retain(|c| !(c.closing && c.output.is_empty()));
            self.store.tidy();
        }
    }

    fn shutdown(&mut self) -> io::Result<()> {
        log_detail!("exiting on signal");
        let _ = std::fs::remove_file(&self.cfg.socket);
        self.store.close()
    }

    /// The soonest checkpoint, held answer or idle timeout.
    fn next_deadline(&self) -> Instant {
        let mut t = self.next_checkpoint;
        for c in &self.conns {
            t = t.min(c.hold_until.unwrap_or_else(|| c.idle_deadline(&self.cfg)));
        }
        t
    }

    /// Close connections that made no progress for too long (no complete
    /// request read, no answer bytes taken): a forgotten or hung
    /// requester, one sending a byte now and then (slowloris), or one
    /// that does not read its answers. in.dhcpd reconnects by itself when
    /// it finds its connection closed.
    fn close_idle(&mut self) {
        let now = Instant::now();
        for c in &mut self.conns {
            if c.hold_until.is_some() || c.idle_deadline(&self.cfg) > now {
                continue;
            }
            if !c.closing {
                let secs = (now - c.active).as_secs();
                if c.authed {
                    log_debug!("{}: no complete request for {secs} s: closing", c.peer);
                } else {
                    log_error!("{}: no AUTH for {secs} s: closing", c.peer);
                }
            }
            c.closing = true;
            c.input.clear();
            c.output.clear();
            c.listing = None;
        }
    }

    fn unread_total(&self) -> usize {
        self.conns.iter().map(Conn::unread).sum()
    }

    /// poll(2): (unix listener ready, tcp listener ready, readable conns).
    /// A connection whose answer is held is left out: the loop must not
    /// spin on what it will not read yet.
    fn wait(&mut self, timeout: Duration) -> io::Result<(bool, bool, Vec<usize>)> {
        let mut fds = vec![PollFd::new(self.unix.as_fd(), PollFlags::POLLIN)];
        if let Some(t) = &self.tcp {
            fds.push(PollFd::new(t.as_fd(), PollFlags::POLLIN));
        }
        let first_conn = fds.len();
        let now = Instant::now();
        let total = self.unread_total();
        let mut timeout = timeout;
        let mut polled = Vec::new();
        for (i, c) in self.conns.iter().enumerate() {
            if c.held(now) {
                continue;
            }
            // Requests read are answered without waiting for more.
            if c.has_work(total, now) {
                timeout = Duration::ZERO;
            }
            // No reading from a closing connection, nor from one that may
            // not be answered now: its requests wait in the socket.
            let mut ev = PollFlags::empty();
            if !c.eof && c.may_answer(total, now) && c.input.len() < MAX_INPUT {
                ev |= PollFlags::POLLIN;
            }
            if !c.output.is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.stream.fd(), ev));
            polled.push(i);
        }
        let first_metrics = fds.len();
        fds.extend(self.metrics.poll_fds());
        let ms = PollTimeout::try_from(timeout.as_millis().min(60_000) as i32)
            .unwrap_or(PollTimeout::NONE);
        match poll(&mut fds, ms) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok((false, false, Vec::new())),
            Err(e) => return Err(e.into()),
        }
        let hit = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        let unix = hit(&fds[0]);
        let tcp = self.tcp.is_some() && hit(&fds[1]);
        let conns = (first_conn..first_metrics)
            .filter(|&i| hit(&fds[i]))
            .map(|i| polled[i - first_conn])
            .collect();
        let metrics = fds[first_metrics..].iter().map(hit).collect();
        self.metrics.polled(metrics);
        Ok((unix, tcp, conns))
    }

    fn accept(&mut self, unix: bool, tcp: bool) {
        while let Some(l) = Some(&self.unix).filter(|_| unix) {
            match l.accept() {
                Ok((s, _)) => self.add(Stream::Unix(s), "unix".into(), None),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log_error!("accept on {}: {e}", self.cfg.socket.display());
                    break;
                }
            }
        }
        while let Some(l) = self.tcp.as_ref().filter(|_| tcp) {
            match l.accept() {
                Ok((s, peer)) => self.add(Stream::Tcp(s), peer.to_string(), Some(peer.ip())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log_error!("accept on TCP: {e}");
                    break;
                }
            }
        }
    }

    /// Log a refused connection, at most once a minute.
    fn refused(&mut self, why: &str) {
        log_limited!(
            Level::Error,
            "connection refused",
            1,
            "{why}: refused (logged at most once a minute)"
        );
    }

    /// Room for a new TCP connection from `ip`. Unauthenticated ones are
    /// limited per peer and to three quarters of the table, the rest kept
    /// for authenticated requesters; past either limit, or with the table
    /// full, the oldest unauthenticated connection still waiting for its
    /// AUTH is closed rather than the new one refused, so squatters that
    /// reopen what is closed cannot lock a real requester out. One whose
    /// failed AUTH is held is never closed early: that would tell its
    /// answer before the delay.
    fn make_room(&mut self, ip: IpAddr, peer: &str) -> bool {
        let now = Instant::now();
        let cap = self.cfg.max_tcp_connections;
        // A connection closing now is gone at the end of the round; one whose
        // failed AUTH is held still counts.
        let counted = |c: &&Conn| c.is_tcp() && (!c.closing || c.held(now));
        let unauthed = |c: &&Conn| counted(c) && !c.authed;
        let from_peer = self
            .conns
            .iter()
            .filter(unauthed)
            .filter(|c| c.ip == Some(ip))
            .count();
        if from_peer >= MAX_UNAUTHED_PER_PEER {
            self.refused(&format!(
                "{peer}: {MAX_UNAUTHED_PER_PEER} connections from {ip} not authenticated yet"
            ));
            return false;
        }
        let open = self.conns.iter().filter(counted).count();
        let waiting = self.conns.iter().filter(unauthed).count();
        if open < cap && waiting < (cap * 3 / 4).max(1) {
            return true;
        }
        let oldest = self
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| unauthed(c) && !c.closing)
            .min_by_key(|(_, c)| c.active)
            .map(|(i, _)| i);
        let Some(i) = oldest else {
            self.refused(&format!("{peer}: {cap} TCP connections open already"));
            return false;
        };
        let c = &mut self.conns[i];
        log_limited!(
            Level::Error,
            "connection evicted",
            1,
            "{}: closed, unauthenticated for {} s, to make room for {peer} \
             (logged at most once a minute)",
            c.peer,
            (now - c.active).as_secs()
        );
        c.closing = true;
        c.input.clear();
        c.output.clear();
        true
    }

    fn add(&mut self, stream: Stream, peer: String, ip: Option<IpAddr>) {
        let tcp = matches!(stream, Stream::Tcp(_));
        if let Some(ip) = ip {
            if !self.make_room(ip, &peer) {
                return;
            }
        } else if self.conns.iter().filter(|c| !c.is_tcp()).count() >= MAX_UNIX_CONNECTIONS {
            self.refused(&format!(
                "{peer}: {MAX_UNIX_CONNECTIONS} Unix-socket connections open already"
            ));
            return;
        }
        let nonblocking = match &stream {
            Stream::Unix(s) => s.set_nonblocking(true),
            Stream::Tcp(s) => s.set_nonblocking(true).and_then(|_| s.set_nodelay(true)),
        };
        if let Err(e) = nonblocking {
            log_error!("{peer}: {e}");
            return;
        }
        log_debug!("connection from {peer}");
        self.conns.push(Conn {
            stream,
            peer,
            ip,
            authed: !tcp,
            admin: !tcp,
            input: Vec::new(),
            eof: false,
            pending: Vec::new(),
            pending_bytes: 0,
            output: Vec::new(),
            listing: None,
            closing: false,
            active: Instant::now(),
            hold_until: None,
        });
    }

    /// Read what has arrived, up to [`MAX_INPUT`] ahead of the answers.
    fn read_from(&mut self, i: usize) {
        // Kept from one read to the next: zeroing 16 kB for every read of
        // a few request lines cost more than the lines themselves.
        let buf = &mut self.read_buf[..];
        let c = &mut self.conns[i];
        while !c.closing && !c.eof && c.input.len() < MAX_INPUT {
            match c.stream.read(buf) {
                Ok(0) => c.eof = true,
                Ok(n) => {
                    c.input.extend_from_slice(&buf[..n]);
                    // A short read took all there was: poll(2) says when
                    // there is more, without a read that finds nothing.
                    if n < buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log_debug!("{}: {e}", c.peer);
                    c.closing = true;
                    c.output.clear();
                }
            }
        }
    }

    /// Answer the request lines read from connection `i`, one at a time,
    /// while its unread answers and everyone's (`total`, kept up to date)
    /// stay within bounds; the rest wait for a later round. Answer bytes
    /// are counted as they are made, so no answer set grows past a bound.
    fn serve(&mut self, i: usize, total: &mut usize) {
        let now = Instant::now();
        let mut start = 0;
        while self.conns[i].may_answer(*total, now) {
            let before = self.conns[i].unread();
            if self.conns[i].listing.is_some() {
                self.list_page(i);
            } else {
                let c = &mut self.conns[i];
                let Some(nl) = c.input[start..].iter().position(|&b| b == b'\n') else {
                    break;
                };
                let line = c.input[start..start + nl].to_vec();
                start += nl + 1;
                c.active = now;
                self.request(i, &line);
            }
            *total += self.conns[i].unread().saturating_sub(before);
        }
        let c = &mut self.conns[i];
        c.input.drain(..start.min(c.input.len()));
        let whole_line = c.input.contains(&b'\n');
        if !whole_line && c.input.len() > MAX_LINE {
            log_error!("{}: request line over {MAX_LINE} bytes: closing", c.peer);
            c.closing = true;
            c.input.clear();
        }
        if c.eof && !whole_line && c.listing.is_none() {
            c.closing = true;
        }
    }

    /// The next page of connection `i`'s QUERY answer; `END n` after the last.
    fn list_page(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let Some(l) = c.listing.as_mut() else { return };
        let page = match self.store.rows(&l.filter, now(), QUERY_PAGE) {
            Ok(page) => page,
            Err(r) => {
                c.answer(ops::refusal(&r).to_string(), false);
                c.listing = None;
                return;
            }
        };
        l.rows += page.rows.len();
        let text = match page.next {
            Some(from) => {
                let hi = l.filter.range.map_or(u32::MAX, |(_, hi)| hi);
                l.filter.range = Some((from, hi));
                ops::page_text(&page.rows, None)
            }
            None => {
                let text = ops::page_text(&page.rows, Some(l.rows));
                c.listing = None;
                text
            }
        };
        if !text.is_empty() {
            c.answer(text, false);
        }
    }

    fn request(&mut self, i: usize, raw: &[u8]) {
        if raw.len() > MAX_LINE {
            let c = &mut self.conns[i];
            log_error!("{}: request line over {MAX_LINE} bytes: closing", c.peer);
            c.closing = true;
            return;
        }
        // Valid UTF-8 (every line a requester sends) is read in place.
        let lossy;
        let line = match std::str::from_utf8(raw) {
            Ok(text) => text,
            Err(_) => {
                lossy = String::from_utf8_lossy(raw);
                &lossy
            }
        };
        let line = line.trim_end_matches('\r');
        let parsed = proto::parse(line);
        let c = &mut self.conns[i];
        // Unix requesters are trusted by the socket's permissions; on TCP
        // every AUTH is checked, also a repeated one.
        let auth = match &parsed {
            Ok(Request::Auth(pw)) if c.is_tcp() => Some(pw),
            _ => None,
        };
        if !c.authed || auth.is_some() {
            let known = |list: &[String]| {
                auth.is_some_and(|pw| {
                    list.iter()
                        .any(|p| same_secret(p.as_bytes(), pw.as_bytes()))
                })
            };
            let admin = known(&self.cfg.passwords);
            if admin || known(&self.cfg.requester_passwords) {
                c.authed = true;
                c.admin = admin;
                c.answer(Reply::Ok.to_string(), false);
            } else {
                let why = if auth.is_some() {
                    "authentication failed (wrong password)"
                } else {
                    "request before AUTH"
                };
                log_error!("{}: {why}: closing", c.peer);
                c.answer(failed(Code::Auth, "authentication failed".into()), false);
                c.authed = false;
                c.admin = false;
                c.closing = true;
                c.hold_until = Some(Instant::now() + AUTH_FAILURE_DELAY);
            }
            return;
        }
        if let Ok(r) = &parsed {
            if !c.admin && !requester_may(r) {
                let what = r.word();
                log_info!("{}: {what} refused: requester credentials", c.peer);
                let why = format!(
                    "{what} needs admin credentials; requester ones allow \
                     ALLOC, UNHOLD, and RELEASE and DECLINE naming the client"
                );
                c.answer(failed(Code::Denied, why), false);
                return;
            }
        }
        let answer = match parsed {
            Ok(Request::Query(filter)) => {
                c.listing = Some(Listing { filter, rows: 0 });
                return;
            }
            Ok(r) => self.apply(r),
            Err(e) => {
                log_debug!("{}: bad request: {e}", self.conns[i].peer);
                (failed(Code::Syntax, e.to_string()), false)
            }
        };
        self.conns[i].answer(answer.0, answer.1);
    }

    /// Carry out one request: the answer, and whether it must wait for
    /// the log to reach the disk.
    fn apply(&mut self, r: Request) -> (String, bool) {
        match r {
            Request::Auth(_) => (Reply::Ok.to_string(), false),
            Request::Ping => {
                let pong = Reply::Pong(format!("in.aasd {}", env!("CARGO_PKG_VERSION")));
                (pong.to_string(), false)
            }
            Request::Checkpoint => match self.checkpoint(true) {
                Ok(Some(p)) => (
                    Reply::Checkpoint(p.display().to_string()).to_string(),
                    false,
                ),
                Ok(None) => (failed(Code::Io, "no checkpoint written".into()), false),
                Err(e) => (failed(Code::Io, e.to_string()), false),
            },
            Request::Reload => match self.reload() {
                Ok(()) => (Reply::Ok.to_string(), false),
                Err(e) => (failed(Code::Reload, e), false),
            },
            r => {
                let asked = Metrics::asked(&r);
                let out = ops::apply(self.store.as_mut(), r, now());
                self.metrics.answered(asked, &out);
                (out.text, out.wrote)
            }
        }
    }

    /// A failure is logged, except that a store without checkpoints of its
    /// own (PostgreSQL) is no failure: CHECKPOINT is told why, nothing else.
    fn checkpoint(&mut self, force: bool) -> io::Result<Option<PathBuf>> {
        self.next_checkpoint = Instant::now() + Duration::from_secs(self.cfg.checkpoint_intvl);
        let written = self.store.checkpoint(force);
        if let Err(e) = &written {
            if e.kind() != io::ErrorKind::Unsupported {
                log_error!("{e}");
            }
        }
        written
    }

    /// Reread the pools. Refused, with the old pools kept, when the file has
    /// errors or would leave a held address outside every pool.
    fn reload(&mut self) -> Result<(), String> {
        let cfg = match config::load(&self.config_path) {
            Ok(c) => c,
            Err(errors) => {
                for e in &errors {
                    log_error!("{e}");
                }
                let msg = format!(
                    "{}: {} error(s): keeping the previous configuration",
                    self.config_path.display(),
                    errors.len()
                );
                log_error!("{msg}");
                return Err(msg);
            }
        };
        let lost = self.store.held_outside(&cfg.pools, now());
        if !lost.is_empty() {
            let list: Vec<String> = lost
                .iter()
                .map(|a| Ipv4Addr::from(*a).to_string())
                .collect();
            let msg = format!(
                "reload refused: {} held and in no pool of the new configuration: {}",
                if lost.len() == 1 {
                    "an address is"
                } else {
                    "addresses are"
                },
                list.join(", ")
            );
            log_error!("{msg}");
            return Err(msg);
        }
        if cfg.store != self.cfg.store
            || cfg.store_kind != self.cfg.store_kind
            || cfg.postgresql != self.cfg.postgresql
            || cfg.socket != self.cfg.socket
            || cfg.listen != self.cfg.listen
            || cfg.user != self.cfg.user
        {
            log_info!(
                "reload: database, socket, listen and user changes take effect at the next start"
            );
        }
        if cfg.metrics_listen != self.cfg.metrics_listen {
            log_info!("reload: a metrics_listen change takes effect at the next start");
        }
        self.store.set_pools(cfg.pools.clone());
        self.cfg.pools = cfg.pools;
        self.cfg.passwords = cfg.passwords;
        self.cfg.requester_passwords = cfg.requester_passwords;
        self.cfg.checkpoint_intvl = cfg.checkpoint_intvl;
        self.cfg.idle_timeout = cfg.idle_timeout;
        self.cfg.auth_timeout = cfg.auth_timeout;
        self.cfg.max_tcp_connections = cfg.max_tcp_connections;
        log_detail!("reloaded {}", self.config_path.display());
        Ok(())
    }

    /// One write and one fsync for every change of this round, then
    /// release the answers.
    fn commit_round(&mut self) {
        if !self.conns.iter().any(|c| !c.pending.is_empty()) {
            return;
        }
        let changes = self.store.uncommitted();
        let synced = self.store.commit();
        self.metrics.committed(synced.is_ok(), changes);
        for c in &mut self.conns {
            c.pending_bytes = 0;
            for (text, durable) in c.pending.drain(..) {
                match &synced {
                    Err(e) if durable => {
                        c.output
                            .extend_from_slice((failed(Code::Io, e.to_string()) + "\n").as_bytes());
                    }
                    _ => {
                        c.output.extend_from_slice(text.as_bytes());
                        c.output.push(b'\n');
                    }
                }
            }
        }
    }

    fn write_out(&mut self) {
        let now = Instant::now();
        for c in &mut self.conns {
            if c.held(now) {
                continue;
            }
            while !c.output.is_empty() {
                match c.stream.write(&c.output) {
                    Ok(n) => {
                        c.output.drain(..n);
                        c.active = Instant::now();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        log_debug!("{}: {e}", c.peer);
                        c.output.clear();
                        c.closing = true;
                    }
                }
            }
        }
    }
}
