//! The in.aasd serve loop: one thread, poll(2) over the listeners and every
//! requester's connection.
//!
//! Each round reads every request that has arrived, applies it, and
//! appends its changes to the log; then one fsync covers them all (group
//! commit) and only then do the answers go out. So no requester hears of a
//! change the log might not hold.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::{access, chown, setgid, setgroups, setuid, AccessFlags, User};

use super::config::{self, AasConfig};
use super::db::{Change, Db, Time};
use super::journal::Store;
use super::ops;
use super::proto::{self, Request, MAX_LINE};
use crate::{log_debug, log_detail, log_error, log_info, signals};

/// More Unix-socket connections than this are refused (closed at once).
/// TCP ones have their own cap (`max_tcp_connections`), so remote
/// requesters cannot lock out the local in.dhcpd.
pub const MAX_UNIX_CONNECTIONS: usize = 256;

/// Answers waiting for a requester beyond this stop reading its requests.
pub const MAX_OUTPUT: usize = 1 << 20;

/// A failed AUTH is answered, and its connection closed, only after this:
/// guessing passwords goes at one a second per connection. The loop goes
/// on meanwhile; only that connection's output waits.
pub const AUTH_FAILURE_DELAY: Duration = Duration::from_secs(1);

pub fn now() -> Time {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
}

struct Conn {
    stream: Stream,
    peer: String,
    /// TCP requesters must send AUTH first; Unix ones are trusted by the
    /// socket's permissions.
    authed: bool,
    input: Vec<u8>,
    /// Answers waiting for this round's fsync: (text, needs the log on disk).
    pending: Vec<(String, bool)>,
    output: Vec<u8>,
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
    db: Db,
    store: Store,
    unix: UnixListener,
    tcp: Option<TcpListener>,
    conns: Vec<Conn>,
    next_checkpoint: Instant,
    /// When a refused connection was last logged (a flood logs once a minute).
    refusal_logged: Option<Instant>,
    /// This round's logged changes, in order, until its fsync.
    unsynced: Vec<Change>,
}

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

fn err(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// Hand the socket and the database directories to `user`, then become
/// it, so that nothing after this runs as root and every file written is
/// the user's. Directories that exist are left as they are, but must be
/// writable by the user.
fn become_user(user: &User, cfg: &AasConfig) -> io::Result<()> {
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
    chown(&cfg.socket, Some(user.uid), Some(group.unwrap_or(user.gid)))
        .map_err(|e| err(format!("{}: chown to {name}: {e}", cfg.socket.display())))?;
    let dirs = [
        ("database_dir", &cfg.store.database_dir),
        ("checkpoint_dir", &cfg.store.checkpoint_dir),
    ];
    for (_, dir) in dirs {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
            chown(dir, Some(user.uid), Some(user.gid))
                .map_err(|e| err(format!("{}: chown to {name}: {e}", dir.display())))?;
        }
    }
    // Supplementary groups first: after setuid there is no changing them.
    setgroups(&[user.gid]).map_err(|e| err(format!("setgroups: {e}")))?;
    setgid(user.gid).map_err(|e| err(format!("setgid {}: {e}", user.gid)))?;
    setuid(user.uid).map_err(|e| err(format!("setuid {}: {e}", user.uid)))?;
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
        let (tcp, db, store) = opened?;
        Ok(Daemon {
            next_checkpoint: Instant::now() + Duration::from_secs(cfg.checkpoint_intvl),
            cfg,
            config_path,
            db,
            store,
            unix,
            tcp,
            conns: Vec::new(),
            refusal_logged: None,
            unsynced: Vec::new(),
        })
    }

    /// The TCP listener, the change of user and the database.
    fn open_rest(
        cfg: &AasConfig,
        user: Option<&User>,
    ) -> io::Result<(Option<TcpListener>, Db, Store)> {
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
        if let Some(u) = user {
            become_user(u, cfg)?;
        }
        let mut db = Db::new(cfg.pools.clone());
        let store = Store::open(cfg.store.clone(), &mut db)?;
        Ok((tcp, db, store))
    }

    pub fn db(&self) -> &Db {
        &self.db
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
                self.checkpoint(false);
            }
            let wait = self
                .next_deadline()
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1));
            let ready = self.wait(wait)?;
            self.accept(ready.0, ready.1);
            for i in ready.2 {
                self.read_from(i);
            }
            self.close_idle();
            self.commit_round();
            self.write_out();
            self.conns.retain(|c| !(c.closing && c.output.is_empty()));
            if self.store.wants_compaction() {
                if let Err(e) = self.store.compact(&self.db) {
                    log_error!("compacting {}: {e}", self.store.log_path().display());
                }
            }
        }
    }

    fn shutdown(&mut self) -> io::Result<()> {
        log_detail!("exiting on signal");
        let _ = std::fs::remove_file(&self.cfg.socket);
        self.store.flush(&self.db)
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
        }
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
        let mut polled = Vec::new();
        for (i, c) in self.conns.iter().enumerate() {
            if c.held(now) {
                continue;
            }
            // No reading from a closing connection, nor from one that does
            // not take its answers (it would grow `output` without bound).
            let mut ev = PollFlags::empty();
            if !c.closing && c.output.len() < MAX_OUTPUT {
                ev |= PollFlags::POLLIN;
            }
            if !c.output.is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.stream.fd(), ev));
            polled.push(i);
        }
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
        let conns = (first_conn..fds.len())
            .filter(|&i| hit(&fds[i]))
            .map(|i| polled[i - first_conn])
            .collect();
        Ok((unix, tcp, conns))
    }

    fn accept(&mut self, unix: bool, tcp: bool) {
        while let Some(l) = Some(&self.unix).filter(|_| unix) {
            match l.accept() {
                Ok((s, _)) => self.add(Stream::Unix(s), "unix".into(), true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log_error!("accept on {}: {e}", self.cfg.socket.display());
                    break;
                }
            }
        }
        while let Some(l) = self.tcp.as_ref().filter(|_| tcp) {
            match l.accept() {
                Ok((s, peer)) => self.add(Stream::Tcp(s), peer.to_string(), false),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log_error!("accept on TCP: {e}");
                    break;
                }
            }
        }
    }

    fn add(&mut self, stream: Stream, peer: String, authed: bool) {
        let tcp = matches!(stream, Stream::Tcp(_));
        let (cap, what) = if tcp {
            (self.cfg.max_tcp_connections, "TCP")
        } else {
            (MAX_UNIX_CONNECTIONS, "Unix-socket")
        };
        if self.conns.iter().filter(|c| c.is_tcp() == tcp).count() >= cap {
            let due = self
                .refusal_logged
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
            if due {
                log_error!("{peer}: {cap} {what} connections open already: refused (logged at most once a minute)");
                self.refusal_logged = Some(Instant::now());
            }
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
            authed,
            input: Vec::new(),
            pending: Vec::new(),
            output: Vec::new(),
            closing: false,
            active: Instant::now(),
            hold_until: None,
        });
    }

    fn read_from(&mut self, i: usize) {
        let mut buf = [0u8; 16384];
        loop {
            let c = &mut self.conns[i];
            if c.closing {
                return;
            }
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    c.closing = true;
                    break;
                }
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
                    return;
                }
            }
        }
        let mut start = 0;
        while let Some(nl) = self.conns[i].input[start..]
            .iter()
            .position(|&b| b == b'\n')
        {
            let line = self.conns[i].input[start..start + nl].to_vec();
            start += nl + 1;
            self.conns[i].active = Instant::now();
            self.request(i, &line);
            if self.conns[i].closing && !self.conns[i].authed {
                break;
            }
        }
        let c = &mut self.conns[i];
        c.input.drain(..start.min(c.input.len()));
        if c.input.len() > MAX_LINE {
            log_error!("{}: request line over {MAX_LINE} bytes: closing", c.peer);
            c.closing = true;
            c.input.clear();
        }
    }

    fn request(&mut self, i: usize, raw: &[u8]) {
        if raw.len() > MAX_LINE {
            let c = &mut self.conns[i];
            log_error!("{}: request line over {MAX_LINE} bytes: closing", c.peer);
            c.closing = true;
            return;
        }
        let line = String::from_utf8_lossy(raw);
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
            let ok = auth.is_some_and(|pw| {
                self.cfg
                    .passwords
                    .iter()
                    .any(|p| same_secret(p.as_bytes(), pw.as_bytes()))
            });
            if ok {
                c.authed = true;
                c.pending.push(("OK".into(), false));
            } else {
                let why = if auth.is_some() {
                    "authentication failed (wrong password)"
                } else {
                    "request before AUTH"
                };
                log_error!("{}: {why}: closing", c.peer);
                c.pending
                    .push(("ERR auth authentication failed".into(), false));
                c.authed = false;
                c.closing = true;
                c.hold_until = Some(Instant::now() + AUTH_FAILURE_DELAY);
            }
            return;
        }
        let answer = match parsed {
            Ok(r) => self.apply(r),
            Err(e) => {
                log_debug!("{}: bad request: {e}", self.conns[i].peer);
                (format!("ERR syntax {e}"), false)
            }
        };
        self.conns[i].pending.push(answer);
    }

    /// Stage the changes for the round's write to the log; they are kept
    /// until it has reached the disk, to undo if it fails.
    fn commit(&mut self, changes: Vec<Change>) {
        let records: Vec<(u32, &_)> = changes.iter().map(|c| (c.addr, &c.after)).collect();
        self.store.stage(&records);
        self.unsynced.extend(changes);
    }

    /// Carry out one request: the answer, and whether it must wait for
    /// the log to reach the disk.
    fn apply(&mut self, r: Request) -> (String, bool) {
        match r {
            Request::Auth(_) => ("OK".into(), false),
            Request::Ping => (format!("OK in.aasd {}", env!("CARGO_PKG_VERSION")), false),
            Request::Checkpoint => match self.checkpoint(true) {
                Some(p) => (format!("OK {}", p.display()), false),
                None => ("ERR io checkpoint failed (see the log)".into(), false),
            },
            Request::Reload => match self.reload() {
                Ok(()) => ("OK".into(), false),
                Err(e) => (format!("ERR reload {e}"), false),
            },
            r => {
                let out = ops::apply(&mut self.db, r, now());
                if out.changes.is_empty() {
                    return (out.text, false);
                }
                self.commit(out.changes);
                (out.text, true)
            }
        }
    }

    fn checkpoint(&mut self, force: bool) -> Option<PathBuf> {
        self.next_checkpoint = Instant::now() + Duration::from_secs(self.cfg.checkpoint_intvl);
        // Whatever the checkpoint holds must be in the log first.
        let flushed = self.store.flush(&self.db);
        match flushed.and_then(|_| self.store.checkpoint(&self.db, force)) {
            Ok(p) => p,
            Err(e) => {
                log_error!(
                    "checkpoint in {}: {e}",
                    self.store.config().checkpoint_dir.display()
                );
                None
            }
        }
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
        let lost = self.db.held_outside(&cfg.pools, now());
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
            || cfg.socket != self.cfg.socket
            || cfg.listen != self.cfg.listen
            || cfg.user != self.cfg.user
        {
            log_info!(
                "reload: database, socket, listen and user changes take effect at the next start"
            );
        }
        self.db = self.db.with_pools(cfg.pools.clone());
        self.cfg.pools = cfg.pools;
        self.cfg.passwords = cfg.passwords;
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
        let synced = self.store.flush(&self.db);
        if let Err(e) = &synced {
            // The requesters hear ERR, so memory must not keep the changes;
            // the log is rewritten from memory before the next answer.
            log_error!("{}: {e}", self.store.log_path().display());
            self.db.undo(&self.unsynced);
        }
        self.unsynced.clear();
        for c in &mut self.conns {
            for (text, durable) in c.pending.drain(..) {
                match &synced {
                    Err(e) if durable => {
                        c.output.extend_from_slice(
                            format!("ERR io cannot write the transaction log: {e}\n").as_bytes(),
                        );
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
