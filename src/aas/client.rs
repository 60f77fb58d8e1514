//! A requester's side of the AAS protocol: one persistent connection over
//! the Unix socket or TCP (with AUTH), reopened when it breaks, with
//! timeouts so a hung in.aasd cannot hang its requester.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::proto::{self, Reply, Request};
use super::stream::Stream;
use crate::log::Level;
use crate::{log_detail, log_limited};

/// Where in.aasd is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Unix(PathBuf),
    Tcp { address: String, password: String },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "{}", p.display()),
            Target::Tcp { address, .. } => write!(f, "{address}"),
        }
    }
}

/// in.aasd could not be asked, or answered nonsense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Down(pub String);

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Down {}

/// Longest answer line believed; anything longer is garbage.
const MAX_ANSWER: usize = 64 * 1024;

/// The first back-off after in.aasd failed to answer in time, doubled
/// after each retry that fails the same way, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// While waiting for in.aasd's answers to a batch, the caller gets control
/// back at least this often (to serve what needs no AAS).
const MEANWHILE_EVERY: Duration = Duration::from_millis(10);

/// How long in.aasd may take before what arrives on the caller's socket
/// wakes it ([`Meanwhile::wake`]): in.aasd answers most batches sooner.
const WAKE_AFTER: Duration = Duration::from_millis(1);

/// What the caller does while in.aasd is awaited.
pub trait Meanwhile {
    fn run(&mut self);

    /// A descriptor whose data is work for [`Meanwhile::run`] (in.dhcpd's
    /// DHCP socket): the wait runs it as soon as that is readable, so what
    /// arrives is taken in while in.aasd works, and the next batch grows
    /// with in.aasd's latency. `None` when it has no room for more.
    fn wake(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

impl<F: FnMut()> Meanwhile for F {
    fn run(&mut self) {
        self()
    }
}

/// Why an exchange failed; `hung` when in.aasd took longer than the
/// timeout (a stopped process, a stuck disk), as opposed to a refused
/// connection or garbage, which cost nothing to try again.
#[derive(Debug)]
struct Fault {
    why: String,
    hung: bool,
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Fault {
        let hung = matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        );
        Fault {
            why: e.to_string(),
            hung,
        }
    }
}

impl From<String> for Fault {
    fn from(why: String) -> Fault {
        Fault { why, hung: false }
    }
}

impl From<&str> for Fault {
    fn from(why: &str) -> Fault {
        Fault::from(why.to_string())
    }
}

/// A circuit breaker: after in.aasd failed to answer in time, nothing is
/// asked until `until`; then one try, which closes it or doubles `wait`.
struct Backoff {
    until: Instant,
    wait: Duration,
}

/// Anything that answers AAS requests: in.aasd over a [`Link`], or a
/// database in-process in tests.
pub trait Requester {
    /// One request, its reply. `Err` when the AAS is down or answers
    /// garbage; a refusal is an `Ok(Reply::Err)`.
    fn ask(&mut self, request: &Request) -> Result<Reply, Down>;
}

impl Requester for Link {
    fn ask(&mut self, request: &Request) -> Result<Reply, Down> {
        Link::ask(self, request)
    }
}

/// What a requester tells in.aasd first on every new connection (after
/// AUTH), before any other request, in two rounds: the second is chosen
/// from the answers to the first (in.dhcpd: POOLS, then RESERVE for its
/// pinned addresses in those pools).
pub trait Greeting {
    fn first(&self) -> Vec<Request>;
    fn then(&self, answers: &[(Request, Reply)]) -> Vec<Request>;
}

pub struct Link {
    target: Target,
    timeout: Duration,
    conn: Option<BufReader<Stream>>,
    /// Whether to log at all (aasadmin prints the error itself).
    logging: bool,
    /// Set while in.aasd is taken for hung.
    backoff: Option<Backoff>,
    /// Sent first on every new connection (after AUTH), before any other
    /// request: what in.aasd must know first (in.dhcpd's pinned addresses).
    greeting: Option<Box<dyn Greeting + Send>>,
    /// The greeting's replies on the newest connection, until taken.
    greeted: Option<Vec<(Request, Reply)>>,
}

impl Link {
    pub fn new(target: Target, timeout: Duration) -> Link {
        Link {
            target,
            timeout,
            conn: None,
            logging: true,
            backoff: None,
            greeting: None,
            greeted: None,
        }
    }

    /// What to send first on every connection from now on.
    pub fn set_greeting(&mut self, greeting: Box<dyn Greeting + Send>) {
        self.greeting = Some(greeting);
    }

    /// Each greeting request with its reply, once per new connection.
    pub fn take_greeted(&mut self) -> Option<Vec<(Request, Reply)>> {
        self.greeted.take()
    }

    /// Whether a connection is open (as far as we know).
    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The greeting on a fresh connection, its answers kept.
    fn greet(
        &mut self,
        conn: &mut BufReader<Stream>,
        meanwhile: &mut dyn Meanwhile,
    ) -> Result<(), Fault> {
        let Some(greeting) = &self.greeting else {
            return Ok(());
        };
        let mut greeted = Vec::new();
        let mut requests = greeting.first();
        for second in [false, true] {
            if requests.is_empty() {
                break;
            }
            let mut answers = Vec::with_capacity(requests.len());
            send_and_read(conn, &requests, &mut answers, self.timeout, meanwhile)?;
            let answers = answers.into_iter().filter_map(Result::ok);
            greeted.extend(requests.into_iter().zip(answers));
            requests = match second {
                false => greeting.then(&greeted),
                true => Vec::new(),
            };
        }
        self.greeted = Some(greeted);
        Ok(())
    }

    /// Report failures only through the `Down` values.
    pub fn without_logging(mut self) -> Link {
        self.logging = false;
        self
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Open the connection; over TCP, authenticate, with `meanwhile` run
    /// while the answer is awaited (a stopped in.aasd still has its
    /// connections accepted by the kernel).
    fn connect(&self, meanwhile: &mut dyn Meanwhile) -> Result<BufReader<Stream>, Fault> {
        let stream = match &self.target {
            Target::Unix(path) => {
                // Named plainly: the usual cause is a user outside the
                // socket's group, not a stopped in.aasd.
                let s = unix_connect(path).map_err(|e| match e.kind() {
                    io::ErrorKind::PermissionDenied => Fault::from(format!(
                        "{}: permission denied (this process is not in the socket's group: \
                         aas_group in dhcpd.conf and socket_group in aasd.conf name it)",
                        path.display()
                    )),
                    _ => Fault::from(e),
                })?;
                s.set_read_timeout(Some(self.timeout))?;
                s.set_write_timeout(Some(self.timeout))?;
                Stream::Unix(s)
            }
            Target::Tcp { address, .. } => {
                let addr = crate::sys::tcp_address(address)?;
                let s = tcp_connect(addr, self.timeout, meanwhile)?;
                s.set_read_timeout(Some(self.timeout))?;
                s.set_write_timeout(Some(self.timeout))?;
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }
        };
        let mut conn = BufReader::new(stream);
        if let Target::Tcp { password, .. } = &self.target {
            // in.aasd answers a wrong password only after a second: wait
            // that too, so a refusal is reported as one, not as a hang.
            let deadline = Instant::now() + self.timeout + super::proto::AUTH_FAILURE_DELAY;
            let auth = Request::Auth(password.clone());
            conn.get_mut()
                .write_all(&lines_of(std::slice::from_ref(&auth)))?;
            await_line(&conn, deadline, meanwhile)?;
            let line = read_line(&mut conn)?;
            if Reply::parse(&auth, &[&line]) != Ok(Reply::Ok) {
                return Err(format!("authentication refused: {line}").into());
            }
        }
        Ok(conn)
    }

    /// Run `exchange` on the connection, opened first if need be. When it
    /// fails on a connection kept from an earlier request (in.aasd
    /// restarted since) and nothing was answered yet, reconnect and run it
    /// again: every request of ours may be repeated, as an ALLOC for an
    /// address the client holds is a renewal. A fresh connection that fails
    /// is not tried again, so a hung in.aasd costs one timeout, not two;
    /// and after a timeout nothing is asked until the back-off has passed.
    /// `exchange` says with its error whether anything was answered; it
    /// and the connection run `meanwhile` while they wait.
    fn on_connection<T>(
        &mut self,
        meanwhile: &mut dyn Meanwhile,
        mut exchange: impl FnMut(&mut BufReader<Stream>, &mut dyn Meanwhile) -> Result<T, (Fault, bool)>,
    ) -> Result<T, Down> {
        if let Some(b) = &self.backoff {
            let left = b.until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return Err(Down(format!(
                    "no answer from {} in time: not asked for another {left:?}",
                    self.target
                )));
            }
        }
        let last = loop {
            let fresh = self.conn.is_none();
            if fresh {
                match self.connect(meanwhile) {
                    Ok(mut c) => match self.greet(&mut c, meanwhile) {
                        Ok(()) => self.conn = Some(c),
                        Err(e) => break e,
                    },
                    Err(e) => break e,
                }
            }
            let conn = self.conn.as_mut().expect("connected above");
            match exchange(conn, meanwhile) {
                Ok(t) => {
                    if self.backoff.take().is_some() && self.logging {
                        log_detail!("{} answers again: asking the AAS again", self.target);
                    }
                    return Ok(t);
                }
                Err((e, answered)) => {
                    // Never read a late answer as the next request's.
                    self.conn = None;
                    if fresh || answered || e.hung {
                        break e;
                    }
                }
            }
        };
        self.back_off(last.hung);
        let why = format!("cannot reach the AAS at {}: {}", self.target, last.why);
        self.complain(&why);
        Err(Down(why))
    }

    /// After a failure: a hung in.aasd is left alone for a while (longer
    /// each time it is still hung); one that refuses or talks garbage
    /// costs nothing to ask again.
    fn back_off(&mut self, hung: bool) {
        if !hung {
            self.backoff = None;
            return;
        }
        let wait = match &self.backoff {
            Some(b) => (b.wait * 2).min(MAX_BACKOFF),
            None => FIRST_BACKOFF,
        };
        if self.logging {
            log_detail!(
                "no answer from {} within {:?}: not asking the AAS for {wait:?}",
                self.target,
                self.timeout
            );
        }
        self.backoff = Some(Backoff {
            until: Instant::now() + wait,
            wait,
        });
    }

    /// One request, its reply. `Err` when in.aasd is down or answers
    /// garbage; an `ERR` answer is an `Ok(Reply::Err)`.
    pub fn ask(&mut self, request: &Request) -> Result<Reply, Down> {
        self.ask_read(request)?
            .map_err(|e| Down(format!("the AAS at {} answered garbage: {e}", self.target)))
    }

    /// As [`Link::ask`], but an answer that is not a reply to `request`
    /// is told apart from a failure to ask: `Ok(Err(why))` (aasadmin
    /// names the row it cannot read). The connection is dropped then, as
    /// the two ends do not speak the same protocol.
    pub fn ask_read(&mut self, request: &Request) -> Result<Result<Reply, proto::Error>, Down> {
        let lines = self.on_connection(&mut || {}, |conn, _| {
            talk(conn, request).map_err(|e| (e, false))
        })?;
        let reply = Reply::parse(request, &lines);
        if let Err(e) = &reply {
            self.conn = None;
            self.complain(&format!("the AAS at {} answered garbage: {e}", self.target));
        }
        Ok(reply)
    }

    /// Several requests at once: every line in one write, then one reply
    /// each, in order (in.aasd answers a connection's requests in the
    /// order they came, after one fsync for all). As in `ask`, a kept
    /// connection found broken before any answer is reopened once; requests
    /// left unanswered are `Down`. While the answers are awaited,
    /// `meanwhile` runs every few milliseconds, so the caller can serve
    /// what needs no AAS.
    pub fn ask_many(
        &mut self,
        requests: &[Request],
        meanwhile: &mut dyn Meanwhile,
    ) -> Vec<Result<Reply, Down>> {
        let mut answers = Vec::with_capacity(requests.len());
        let timeout = self.timeout;
        let sent = self.on_connection(meanwhile, |conn, meanwhile| {
            send_and_read(conn, requests, &mut answers, timeout, meanwhile)
                .map_err(|e| (e, !answers.is_empty()))
        });
        if let Err(Down(why)) = sent {
            answers.resize(requests.len(), Err(Down(why)));
        }
        answers
    }

    /// Log "cannot reach" at most once a minute.
    fn complain(&mut self, why: &str) {
        if self.logging {
            log_limited!(
                Level::Error,
                "aas unreachable",
                1,
                "{why}; dynamic clients get no answer until it can be reached"
            );
        }
    }
}

/// Connect to a Unix socket without blocking: a stopped in.aasd whose
/// queue of connections not yet accepted is full would otherwise hold the
/// caller for as long as it stays stopped. That counts as hung.
fn unix_connect(path: &std::path::Path) -> io::Result<UnixStream> {
    use nix::errno::Errno;
    use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    match socket::connect(fd.as_raw_fd(), &UnixAddr::new(path)?) {
        Ok(()) => {}
        // WouldBlock: a Fault made of it counts as hung.
        Err(Errno::EAGAIN) => {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "it accepts no more connections",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let s = UnixStream::from(fd);
    s.set_nonblocking(false)?;
    Ok(s)
}

/// Connect without blocking, running `meanwhile` every
/// [`MEANWHILE_EVERY`] while the handshake is under way: a host that does
/// not answer costs the timeout, and the caller serves meanwhile.
fn tcp_connect(
    addr: std::net::SocketAddr,
    timeout: Duration,
    meanwhile: &mut dyn Meanwhile,
) -> Result<TcpStream, Fault> {
    use nix::errno::Errno;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};
    use std::os::fd::AsRawFd;
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)?;
    match socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) | Err(Errno::EINPROGRESS) => {}
        Err(e) => return Err(io::Error::from(e).into()),
    }
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Fault {
                why: "connection timed out".into(),
                hung: true,
            });
        }
        let ms = left.min(MEANWHILE_EVERY).as_millis().max(1) as u16;
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(Errno::EINTR) => meanwhile.run(),
            Ok(_) => break,
            Err(e) => return Err(io::Error::from(e).into()),
        }
    }
    let err = socket::getsockopt(&fd, sockopt::SocketError).map_err(io::Error::from)?;
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err).into());
    }
    let s = TcpStream::from(fd);
    s.set_nonblocking(false)?;
    Ok(s)
}

fn read_line(conn: &mut BufReader<Stream>) -> Result<String, Fault> {
    let mut buf = Vec::new();
    let n = conn
        .by_ref()
        .take(MAX_ANSWER as u64)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err("connection closed".into());
    }
    if buf.last() != Some(&b'\n') {
        return Err("answer line too long or cut short".into());
    }
    buf.pop();
    String::from_utf8(buf).map_err(|_| "answer is not text".into())
}

/// Wait until an answer line can be read, running `meanwhile` every
/// [`MEANWHILE_EVERY`]; a fault marked hung once `deadline` has passed.
fn await_line(
    conn: &BufReader<Stream>,
    deadline: Instant,
    meanwhile: &mut dyn Meanwhile,
) -> Result<(), Fault> {
    let started = Instant::now();
    // A quick answer is read without waking `meanwhile`: what arrives in
    // the meantime is read once, by the next batch, not also by the lane.
    let wake_from = started + WAKE_AFTER;
    let mut tick = started + MEANWHILE_EVERY;
    loop {
        if conn.buffer().contains(&b'\n') {
            return Ok(());
        }
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() {
            return Err(Fault {
                why: "no answer in time".into(),
                hung: true,
            });
        }
        let wake = if now >= wake_from {
            meanwhile.wake()
        } else {
            None
        };
        let until = if wake.is_some() {
            tick
        } else {
            tick.min(wake_from.max(now))
        };
        let wait = left.min(until.saturating_duration_since(now));
        match crate::net::wait(&[Some(conn.get_ref().fd()), wake], Some(wait)) {
            Ok(ready) if ready[0] => return Ok(()),
            Ok(ready) if ready[1] => meanwhile.run(),
            Ok(_) if Instant::now() >= tick => {
                meanwhile.run();
                tick = Instant::now() + MEANWHILE_EVERY;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The request lines, each with its newline.
fn lines_of(requests: &[Request]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(requests.len() * 128);
    for r in requests {
        // Writing to a Vec cannot fail.
        let _ = writeln!(msg, "{r}");
    }
    msg
}

/// Write every request at once, then read the reply to each, all within
/// `timeout`. A reply that does not read is a fault: what follows it
/// cannot be trusted to be the next one's.
fn send_and_read(
    conn: &mut BufReader<Stream>,
    requests: &[Request],
    answers: &mut Vec<Result<Reply, Down>>,
    timeout: Duration,
    meanwhile: &mut dyn Meanwhile,
) -> Result<(), Fault> {
    let deadline = Instant::now() + timeout;
    conn.get_mut().write_all(&lines_of(requests))?;
    for request in requests {
        let mut lines = Vec::new();
        loop {
            await_line(conn, deadline, meanwhile)?;
            let line = read_line(conn)?;
            let last = Reply::ends(request, &line);
            lines.push(line);
            if last {
                break;
            }
        }
        let reply = Reply::parse(request, &lines)
            .map_err(|e| Fault::from(format!("it answered garbage: {e}")))?;
        answers.push(Ok(reply));
    }
    Ok(())
}

/// Send one request; read its reply's lines, each within the timeout.
fn talk(conn: &mut BufReader<Stream>, request: &Request) -> Result<Vec<String>, Fault> {
    conn.get_mut()
        .write_all(&lines_of(std::slice::from_ref(request)))?;
    let mut lines = Vec::new();
    loop {
        let line = read_line(conn)?;
        let last = Reply::ends(request, &line);
        lines.push(line);
        if last {
            return Ok(lines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::path::Path;
    use std::thread;

    /// A fake in.aasd at a fresh path: each connection reads one request
    /// line and gets `reply` (written raw), after `delay`; then it closes.
    fn fake(name: &str, reply: &'static [u8], delay: Duration) -> PathBuf {
        let path = std::env::temp_dir().join(format!("indhcpd-fake-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        thread::spawn(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                let _ = r.read_line(&mut line);
                thread::sleep(delay);
                let _ = s.write_all(reply);
            }
        });
        path
    }

    fn link(path: &Path) -> Link {
        Link::new(Target::Unix(path.to_path_buf()), Duration::from_millis(300)).without_logging()
    }

    #[test]
    fn garbage_a_cut_answer_and_a_late_one_are_down() {
        for (name, reply, delay) in [
            ("garbage", &b"\xff\xfe\x00junk\n"[..], Duration::ZERO),
            ("words", &b"HELLO THERE\n"[..], Duration::ZERO),
            ("cut", &b"OK 10.0.0"[..], Duration::ZERO),
            ("late", &b"OK\n"[..], Duration::from_secs(2)),
        ] {
            let path = fake(name, reply, delay);
            let mut l = link(&path);
            let t0 = Instant::now();
            assert!(l.ask(&Request::Ping).is_err(), "{name}");
            // One timeout, not one per attempt.
            assert!(
                t0.elapsed() < Duration::from_millis(550),
                "{name}: {:?}",
                t0.elapsed()
            );
            assert!(l.conn.is_none(), "{name}: the connection is dropped");
            let _ = std::fs::remove_file(&path);
        }
    }

    #[test]
    fn after_a_timeout_nothing_is_asked_until_the_back_off_has_passed() {
        let path = fake("backoff", b"OK\n", Duration::from_secs(2));
        let mut l = link(&path);
        assert!(l.ask(&Request::Ping).is_err());
        // Refused at once, without a connection: the breaker is open.
        let t0 = Instant::now();
        let again = l.ask_many(&[Request::Ping], &mut || {});
        assert!(again[0].is_err());
        assert!(
            t0.elapsed() < Duration::from_millis(50),
            "{:?}",
            t0.elapsed()
        );
        assert!(l.conn.is_none());
        // A slow answer to a batch: `meanwhile` runs while it is awaited.
        let slow = fake("meanwhile", b"OK\n", Duration::from_millis(100));
        let mut l = link(&slow);
        let mut calls = 0;
        let got = l.ask_many(&[Request::Ping], &mut || calls += 1);
        assert_eq!(got, [Ok(Reply::Pong(String::new()))]);
        assert!(calls >= 3, "{calls}");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&slow);
    }

    #[test]
    fn a_unix_socket_that_accepts_nothing_more_is_hung_not_a_hang() {
        use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
        use std::os::fd::AsRawFd;
        let path = std::env::temp_dir().join(format!("indhcpd-full-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let l = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        socket::bind(l.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
        socket::listen(&l, Backlog::new(1).unwrap()).unwrap();
        // Never accepted: the queue fills, then a connection is refused at
        // once as hung instead of waiting for a place.
        let mut kept = Vec::new();
        let fault = loop {
            match unix_connect(&path) {
                Ok(s) => kept.push(s),
                Err(e) => break Fault::from(e),
            }
            assert!(kept.len() < 100, "the queue never filled");
        };
        assert!(fault.hung, "{}", fault.why);
        drop(l);
        let _ = std::fs::remove_file(&path);
        let gone = Fault::from(unix_connect(&path).unwrap_err());
        assert!(!gone.hung, "{}", gone.why);
    }

    #[test]
    fn a_tcp_connect_succeeds_or_is_refused_without_counting_as_hung() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let s = tcp_connect(addr, Duration::from_secs(1), &mut || {}).unwrap();
        assert_eq!(s.peer_addr().unwrap(), addr);
        drop(l);
        let refused = tcp_connect(addr, Duration::from_secs(1), &mut || {}).unwrap_err();
        assert!(!refused.hung, "{}", refused.why);
    }

    /// A fake in.aasd that reads `expect` request lines on one connection,
    /// then writes `reply` and closes; it returns the lines it read.
    fn fake_batch(
        name: &str,
        expect: usize,
        reply: &'static [u8],
    ) -> (PathBuf, thread::JoinHandle<Vec<String>>) {
        let path = std::env::temp_dir().join(format!("indhcpd-fake-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        let serve = thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s);
            let mut lines = Vec::new();
            for _ in 0..expect {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                lines.push(line.trim_end().to_string());
            }
            r.get_mut().write_all(reply).unwrap();
            lines
        });
        (path, serve)
    }

    #[test]
    fn a_batch_goes_out_at_once_and_its_answers_come_back_in_order() {
        let (path, serve) = fake_batch("batch", 3, b"OK\nERR taken 10.0.0.2 is taken\nOK\n");
        let mut l = link(&path);
        let requests = [1, 2, 3].map(|a| Request::Disable(0x0a00_0000 + a));
        let got = l.ask_many(&requests, &mut || {});
        assert_eq!(
            serve.join().unwrap(),
            ["DISABLE 10.0.0.1", "DISABLE 10.0.0.2", "DISABLE 10.0.0.3"]
        );
        assert_eq!(
            got,
            [
                Ok(Reply::Ok),
                Ok(Reply::Err {
                    code: proto::Code::Taken,
                    text: "10.0.0.2 is taken".into()
                }),
                Ok(Reply::Ok),
            ]
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_batch_cut_short_keeps_the_answers_given_and_sends_nothing_twice() {
        // One answer, then in.aasd is gone: the first request has its
        // answer, the second is down, and nothing is asked again.
        let (path, serve) = fake_batch("cut", 2, b"OK\n");
        let mut l = link(&path);
        let got = l.ask_many(&[Request::Disable(1), Request::Disable(2)], &mut || {});
        assert_eq!(serve.join().unwrap().len(), 2);
        assert_eq!(got[0], Ok(Reply::Ok));
        assert!(got[1].is_err());
        assert!(l.conn.is_none());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_stale_connection_is_reopened_once() {
        let path = std::env::temp_dir().join(format!("indhcpd-fake-{}-stale", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let first = UnixListener::bind(&path).unwrap();
        let mut l = link(&path);
        // Connected, then that in.aasd goes away mid-request.
        let serve = thread::spawn(move || {
            let (s, _) = first.accept().unwrap();
            let mut r = BufReader::new(s);
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            r.get_mut().write_all(b"OK in.aasd\n").unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
        });
        assert!(l.ask(&Request::Ping).is_ok());
        std::fs::remove_file(&path).unwrap();
        let fresh = fake("stale", b"OK in.aasd\n", Duration::ZERO);
        assert_eq!(fresh, path);
        // The old one reads the request and closes without an answer: the
        // link reconnects to the new one and asks again.
        assert_eq!(l.ask(&Request::Ping), Ok(Reply::Pong("in.aasd".into())));
        serve.join().unwrap();
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn rows_come_back_typed_and_a_reply_that_fits_another_request_is_garbage() {
        use crate::aas::lease::{Filter, Selector, State};
        let rows = fake(
            "rows",
            b"LEASE 10.0.0.5 P leased no dhcp c 1 1700000000 0\nEND 1\n",
            Duration::ZERO,
        );
        let mut l = link(&rows);
        let Ok(Reply::Leases(got)) = l.ask(&Request::Query(Filter::default())) else {
            panic!("no rows")
        };
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].state, Selector::State(State::Leased));
        assert_eq!(got[0].addr, std::net::Ipv4Addr::new(10, 0, 0, 5));
        // `OK` alone answers a DISABLE, not a QUERY: garbage, told apart
        // from an unreachable in.aasd by `ask_read`, and the connection
        // dropped (what follows cannot be trusted to be the next reply).
        let plain = fake("plain", b"OK\n", Duration::ZERO);
        let mut l = link(&plain);
        let e = l.ask_read(&Request::Query(Filter::default())).unwrap();
        assert!(e.unwrap_err().to_string().contains("\"OK\""));
        assert!(l.conn.is_none());
        let down = l.ask(&Request::Stats(None)).unwrap_err();
        assert!(down.0.contains("answered garbage"), "{down}");
        assert_eq!(l.ask(&Request::Disable(1)), Ok(Reply::Ok));
        let _ = std::fs::remove_file(&rows);
        let _ = std::fs::remove_file(&plain);
    }
}
