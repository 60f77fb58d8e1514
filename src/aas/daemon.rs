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

use super::config::{self, AasConfig};
use super::db::{Change, Db, Time};
use super::journal::Store;
use super::ops;
use super::proto::{self, Request, MAX_LINE};
use crate::{log_debug, log_detail, log_error, log_info, signals};

/// More connections than this are refused (closed at once).
pub const MAX_CONNECTIONS: usize = 256;

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

impl Daemon {
    pub fn new(cfg: AasConfig, config_path: PathBuf) -> io::Result<Daemon> {
        let mut db = Db::new(cfg.pools.clone());
        let store = Store::open(cfg.store.clone(), &mut db)?;
        let unix = bind_unix(&cfg.socket)?;
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
        Ok(Daemon {
            next_checkpoint: Instant::now() + Duration::from_secs(cfg.checkpoint_intvl),
            cfg,
            config_path,
            db,
            store,
            unix,
            tcp,
            conns: Vec::new(),
            unsynced: Vec::new(),
        })
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
                .next_checkpoint
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1));
            let ready = self.wait(wait)?;
            self.accept(ready.0, ready.1);
            for i in ready.2 {
                self.read_from(i);
            }
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
        self.store.flush()
    }

    /// poll(2): (unix listener ready, tcp listener ready, readable conns).
    fn wait(&mut self, timeout: Duration) -> io::Result<(bool, bool, Vec<usize>)> {
        let mut fds = vec![PollFd::new(self.unix.as_fd(), PollFlags::POLLIN)];
        if let Some(t) = &self.tcp {
            fds.push(PollFd::new(t.as_fd(), PollFlags::POLLIN));
        }
        let first_conn = fds.len();
        for c in &self.conns {
            let mut ev = PollFlags::POLLIN;
            if !c.output.is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.stream.fd(), ev));
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
            .map(|i| i - first_conn)
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
        if self.conns.len() >= MAX_CONNECTIONS {
            log_error!("{peer}: more than {MAX_CONNECTIONS} connections: refused");
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
                Ok(n) => c.input.extend_from_slice(&buf[..n]),
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
        if !self.conns[i].authed {
            let c = &mut self.conns[i];
            let ok = matches!(&parsed, Ok(Request::Auth(pw))
                if self.cfg.passwords.iter().any(|p| same_secret(p.as_bytes(), pw.as_bytes())));
            if ok {
                c.authed = true;
                c.pending.push(("OK".into(), false));
            } else {
                log_error!("{}: authentication failed: closing", c.peer);
                c.pending
                    .push(("ERR auth authentication failed".into(), false));
                c.closing = true;
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

    /// Log the changes; on a failed write put the old state back.
    fn commit(&mut self, changes: Vec<Change>) -> Result<(), String> {
        if changes.is_empty() {
            return Ok(());
        }
        let records: Vec<(u32, &_)> = changes.iter().map(|c| (c.addr, &c.after)).collect();
        match self.store.append(&records, &self.db) {
            Ok(()) => {
                // Kept until the round's fsync, to undo if that fails.
                self.unsynced.extend(changes);
                Ok(())
            }
            Err(e) => {
                self.db.undo(&changes);
                log_error!("{}: {e}", self.store.log_path().display());
                Err(format!("ERR io cannot write the transaction log: {e}"))
            }
        }
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
                match self.commit(out.changes) {
                    Ok(()) => (out.text, true),
                    Err(e) => (e, false),
                }
            }
        }
    }

    fn checkpoint(&mut self, force: bool) -> Option<PathBuf> {
        self.next_checkpoint = Instant::now() + Duration::from_secs(self.cfg.checkpoint_intvl);
        // Whatever the checkpoint holds must be in the log first.
        let flushed = self.store.flush();
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
        {
            log_info!("reload: database, socket and listen changes take effect at the next start");
        }
        self.db = self.db.with_pools(cfg.pools.clone());
        self.cfg.pools = cfg.pools;
        self.cfg.passwords = cfg.passwords;
        self.cfg.checkpoint_intvl = cfg.checkpoint_intvl;
        log_detail!("reloaded {}", self.config_path.display());
        Ok(())
    }

    /// One fsync for every change of this round, then release the answers.
    fn commit_round(&mut self) {
        if !self.conns.iter().any(|c| !c.pending.is_empty()) {
            return;
        }
        let synced = self.store.flush();
        if let Err(e) = &synced {
            // The requesters hear ERR, so memory must not keep the changes;
            // the log is rewritten from memory before the next answer.
            log_error!("fsync {}: {e}", self.store.log_path().display());
            self.db.undo(&self.unsynced);
        }
        self.unsynced.clear();
        for c in &mut self.conns {
            for (text, durable) in c.pending.drain(..) {
                match &synced {
                    Err(e) if durable => {
                        c.output
                            .extend_from_slice(format!("ERR io fsync failed: {e}\n").as_bytes());
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
        for c in &mut self.conns {
            while !c.output.is_empty() {
                match c.stream.write(&c.output) {
                    Ok(n) => {
                        c.output.drain(..n);
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
