//! A requester's side of the AAS protocol: one persistent connection over
//! the Unix socket or TCP (with AUTH), reopened when it breaks, with
//! timeouts so a hung in.aasd cannot hang its requester.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::proto::{self, Answer};
use crate::log_error;

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

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Longest answer line believed; anything longer is garbage.
const MAX_ANSWER: usize = 64 * 1024;

/// Anything that answers AAS requests: in.aasd over a [`Link`], or a
/// database in-process in tests.
pub trait Requester {
    /// One request line, one answer line. `Err` when the AAS is down or
    /// answers garbage; a refusal is an `Ok(Answer::Err)`.
    fn ask(&mut self, line: &str) -> Result<Answer, Down>;
}

impl Requester for Link {
    fn ask(&mut self, line: &str) -> Result<Answer, Down> {
        Link::ask(self, line)
    }
}

pub struct Link {
    target: Target,
    timeout: Duration,
    conn: Option<BufReader<Stream>>,
    /// Log "cannot reach" at most once a minute (SPEC §2).
    last_complaint: Option<Instant>,
    /// Whether to log at all (aasadmin prints the error itself).
    logging: bool,
    /// Sent first on every new connection (after AUTH), before any other
    /// request: what in.aasd must know first (in.dhcpd's pinned addresses).
    greeting: Vec<String>,
    /// The greeting's answers on the newest connection, until taken.
    greeted: Option<Vec<(String, Answer)>>,
}

impl Link {
    pub fn new(target: Target, timeout: Duration) -> Link {
        Link {
            target,
            timeout,
            conn: None,
            last_complaint: None,
            logging: true,
            greeting: Vec::new(),
            greeted: None,
        }
    }

    /// Lines to send first on every connection from now on.
    pub fn set_greeting(&mut self, lines: Vec<String>) {
        self.greeting = lines;
    }

    /// Each greeting line with its answer, once per new connection.
    pub fn take_greeted(&mut self) -> Option<Vec<(String, Answer)>> {
        self.greeted.take()
    }

    /// Whether a connection is open (as far as we know).
    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The greeting on a fresh connection, its answers kept.
    fn greet(&mut self, conn: &mut BufReader<Stream>) -> Result<(), String> {
        if self.greeting.is_empty() {
            return Ok(());
        }
        let mut msg = Vec::new();
        for l in &self.greeting {
            msg.extend_from_slice(l.as_bytes());
            msg.push(b'\n');
        }
        let mut answers = Vec::with_capacity(self.greeting.len());
        send_and_read(conn, &msg, self.greeting.len(), &mut answers)?;
        let answers = answers.into_iter().filter_map(Result::ok);
        self.greeted = Some(self.greeting.iter().cloned().zip(answers).collect());
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

    fn connect(&self) -> Result<BufReader<Stream>, String> {
        let stream = match &self.target {
            Target::Unix(path) => {
                // Named plainly: the usual cause is a user outside the
                // socket's group, not a stopped in.aasd.
                let s = UnixStream::connect(path).map_err(|e| match e.kind() {
                    io::ErrorKind::PermissionDenied => format!(
                        "{}: permission denied (this process is not in the socket's group: \
                         aas_group in dhcpd.conf and socket_group in aasd.conf name it)",
                        path.display()
                    ),
                    _ => e.to_string(),
                })?;
                s.set_read_timeout(Some(self.timeout))
                    .map_err(|e| e.to_string())?;
                s.set_write_timeout(Some(self.timeout))
                    .map_err(|e| e.to_string())?;
                Stream::Unix(s)
            }
            Target::Tcp { address, .. } => {
                let addr = crate::sys::tcp_address(address)?;
                let s =
                    TcpStream::connect_timeout(&addr, self.timeout).map_err(|e| e.to_string())?;
                s.set_read_timeout(Some(self.timeout))
                    .map_err(|e| e.to_string())?;
                s.set_write_timeout(Some(self.timeout))
                    .map_err(|e| e.to_string())?;
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }
        };
        let mut conn = BufReader::new(stream);
        if let Target::Tcp { password, .. } = &self.target {
            let line = exchange(&mut conn, &format!("AUTH {password}"))?;
            if line != "OK" {
                return Err(format!("authentication refused: {line}"));
            }
        }
        Ok(conn)
    }

    /// Run `exchange` on the connection, opened first if need be. When it
    /// fails on a connection kept from an earlier request (in.aasd
    /// restarted since) and nothing was answered yet, reconnect and run it
    /// again: every request of ours may be repeated, as an ALLOC for an
    /// address the client holds is a renewal. A fresh connection that fails
    /// is not tried again, so a hung in.aasd costs one timeout, not two.
    /// `exchange` says with its error whether anything was answered.
    fn on_connection<T>(
        &mut self,
        mut exchange: impl FnMut(&mut BufReader<Stream>) -> Result<T, (String, bool)>,
    ) -> Result<T, Down> {
        let last = loop {
            let fresh = self.conn.is_none();
            if fresh {
                match self.connect() {
                    Ok(mut c) => match self.greet(&mut c) {
                        Ok(()) => self.conn = Some(c),
                        Err(e) => break e,
                    },
                    Err(e) => break e,
                }
            }
            let conn = self.conn.as_mut().expect("connected above");
            match exchange(conn) {
                Ok(t) => return Ok(t),
                Err((e, answered)) => {
                    // Never read a late answer as the next request's.
                    self.conn = None;
                    if fresh || answered {
                        break e;
                    }
                }
            }
        };
        let why = format!("cannot reach the AAS at {}: {last}", self.target);
        self.complain(&why);
        Err(Down(why))
    }

    fn ask_lines(&mut self, line: &str, multi: bool) -> Result<Vec<String>, Down> {
        self.on_connection(|conn| talk(conn, line, multi).map_err(|e| (e, false)))
    }

    /// One request, one answer line. `Err` when in.aasd is down or answers
    /// garbage; an `ERR` answer is an `Ok(Answer::Err)`.
    pub fn ask(&mut self, line: &str) -> Result<Answer, Down> {
        let lines = self.ask_lines(line, false)?;
        match proto::answer(&lines[0]) {
            Some(a) => Ok(a),
            None => {
                self.conn = None;
                let why = format!("the AAS at {} answered garbage", self.target);
                self.complain(&why);
                Err(Down(why))
            }
        }
    }

    /// Several requests at once: every line in one write, then one answer
    /// line each, in order (in.aasd answers a connection's requests in the
    /// order they came, after one fsync for all). As in `ask`, a kept
    /// connection found broken before any answer is reopened once; requests
    /// left unanswered are `Down`.
    pub fn ask_many(&mut self, lines: &[String]) -> Vec<Result<Answer, Down>> {
        let mut msg = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for l in lines {
            msg.extend_from_slice(l.as_bytes());
            msg.push(b'\n');
        }
        let mut answers = Vec::with_capacity(lines.len());
        let sent = self.on_connection(|conn| {
            send_and_read(conn, &msg, lines.len(), &mut answers)
                .map_err(|e| (e, !answers.is_empty()))
        });
        if let Err(Down(why)) = sent {
            answers.resize(lines.len(), Err(Down(why)));
        }
        answers
    }

    /// A request answered by rows and `END n` (QUERY, STATS), or one `ERR`.
    pub fn ask_rows(&mut self, line: &str) -> Result<Result<Vec<String>, Answer>, Down> {
        let mut lines = self.ask_lines(line, true)?;
        let last = lines.pop().unwrap_or_default();
        if last.starts_with("END") {
            Ok(Ok(lines))
        } else {
            match proto::answer(&last) {
                Some(a) => Ok(Err(a)),
                None => {
                    self.conn = None;
                    let why = format!("the AAS at {} answered garbage", self.target);
                    self.complain(&why);
                    Err(Down(why))
                }
            }
        }
    }

    fn complain(&mut self, why: &str) {
        let due = self
            .last_complaint
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
        if due && self.logging {
            log_error!("{why}; dynamic clients get no answer until it can be reached");
            self.last_complaint = Some(Instant::now());
        }
    }
}

fn read_line(conn: &mut BufReader<Stream>) -> Result<String, String> {
    let mut buf = Vec::new();
    let n = conn
        .by_ref()
        .take(MAX_ANSWER as u64)
        .read_until(b'\n', &mut buf)
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("connection closed".into());
    }
    if buf.last() != Some(&b'\n') {
        return Err("answer line too long or cut short".into());
    }
    buf.pop();
    String::from_utf8(buf).map_err(|_| "answer is not text".into())
}

/// Write `msg` (`count` request lines), then read `count` answers.
fn send_and_read(
    conn: &mut BufReader<Stream>,
    msg: &[u8],
    count: usize,
    answers: &mut Vec<Result<Answer, Down>>,
) -> Result<(), String> {
    conn.get_mut().write_all(msg).map_err(|e| e.to_string())?;
    while answers.len() < count {
        let line = read_line(conn)?;
        let answer = proto::answer(&line).ok_or("it answered garbage")?;
        answers.push(Ok(answer));
    }
    Ok(())
}

fn exchange(conn: &mut BufReader<Stream>, line: &str) -> Result<String, String> {
    Ok(talk(conn, line, false)?.remove(0))
}

/// Send a line; read one answer line, or rows up to `END` (or an `ERR`).
fn talk(conn: &mut BufReader<Stream>, line: &str, multi: bool) -> Result<Vec<String>, String> {
    let mut msg = Vec::with_capacity(line.len() + 1);
    msg.extend_from_slice(line.as_bytes());
    msg.push(b'\n');
    conn.get_mut().write_all(&msg).map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    loop {
        let l = read_line(conn)?;
        let done = !multi || l.starts_with("END") || l.starts_with("ERR");
        lines.push(l);
        if done {
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
            assert!(l.ask("PING").is_err(), "{name}");
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
        let (path, serve) = fake_batch(
            "batch",
            3,
            b"OK 10.0.0.1\nERR taken 10.0.0.2 is taken\nOK 10.0.0.3\n",
        );
        let mut l = link(&path);
        let lines = ["ALLOC a".to_string(), "ALLOC b".into(), "ALLOC c".into()];
        let got = l.ask_many(&lines);
        assert_eq!(serve.join().unwrap(), lines);
        assert_eq!(
            got,
            [
                Ok(Answer::Ok(vec!["10.0.0.1".into()])),
                Ok(Answer::Err {
                    code: "taken".into(),
                    text: "10.0.0.2 is taken".into()
                }),
                Ok(Answer::Ok(vec!["10.0.0.3".into()])),
            ]
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_batch_cut_short_keeps_the_answers_given_and_sends_nothing_twice() {
        // One answer, then in.aasd is gone: the first request has its
        // answer, the second is down, and nothing is asked again.
        let (path, serve) = fake_batch("cut", 2, b"OK 10.0.0.1\n");
        let mut l = link(&path);
        let got = l.ask_many(&["ALLOC a".to_string(), "ALLOC b".into()]);
        assert_eq!(serve.join().unwrap().len(), 2);
        assert_eq!(got[0], Ok(Answer::Ok(vec!["10.0.0.1".into()])));
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
        assert!(l.ask("PING").is_ok());
        std::fs::remove_file(&path).unwrap();
        let fresh = fake("stale", b"OK in.aasd\n", Duration::ZERO);
        assert_eq!(fresh, path);
        // The old one reads the request and closes without an answer: the
        // link reconnects to the new one and asks again.
        assert!(matches!(l.ask("PING"), Ok(Answer::Ok(_))));
        serve.join().unwrap();
        let _ = std::fs::remove_file(&path);
    }
}
