//! The metrics listener (`metrics_listen` in aasd.conf): just enough
//! HTTP/1.0 and 1.1 for a Prometheus scrape, in in.aasd's poll loop.
//!
//! `GET /metrics` (or `HEAD`) is answered with the page, any other path
//! with 404, and the connection is closed after each answer. Everything
//! is bounded: a request head larger than [`MAX_REQUEST`] bytes, or one
//! not complete within [`REQUEST_TIMEOUT`], is closed unanswered, an
//! answer not taken within the same time is dropped, and at most
//! [`MAX_CONNECTIONS`] are open at once. What a scraper does wrong
//! costs a debug line, never the serve loop.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags};

use crate::aas::metrics::CONTENT_TYPE;
use crate::log::{escape, Level};
use crate::{log_debug, log_limited};

/// Bytes of a request head (request line and header fields) at most.
pub const MAX_REQUEST: usize = 4096;

/// From the connection to the end of the request head, and from the
/// answer to its last byte taken.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Metrics connections open at once. A scraper needs one; past this the
/// oldest still without a complete request is closed for the new one, so
/// idle connections cannot lock a scraper out.
pub const MAX_CONNECTIONS: usize = 16;

/// The page, or why there is none (answered 503).
pub type Page = Result<String, String>;

pub struct Listener {
    tcp: TcpListener,
    conns: Vec<Conn>,
    /// From the last poll(2): the listener, then each connection.
    ready: Vec<bool>,
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    input: Vec<u8>,
    /// The answer, once the request is read; `sent` of it written.
    output: Option<Vec<u8>>,
    sent: usize,
    deadline: Instant,
    done: bool,
}

impl Listener {
    /// Bind `host:port` (or `host:service`).
    pub fn bind(spec: &str) -> io::Result<Listener> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("metrics_listen {spec}: {e}"));
        let tcp =
            TcpListener::bind(crate::sys::tcp_address(spec).map_err(named)?).map_err(named)?;
        tcp.set_nonblocking(true).map_err(named)?;
        Ok(Listener {
            tcp,
            conns: Vec::new(),
            ready: Vec::new(),
        })
    }

    /// What to poll: the listener, then each connection, for reading
    /// until it has its answer and for writing while the answer goes.
    pub fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let mut fds = vec![PollFd::new(self.tcp.as_fd(), PollFlags::POLLIN)];
        for c in &self.conns {
            let ev = if c.output.is_some() {
                PollFlags::POLLOUT
            } else {
                PollFlags::POLLIN
            };
            fds.push(PollFd::new(c.stream.as_fd(), ev));
        }
        fds
    }

    /// Which of [`Listener::poll_fds`] poll(2) found ready.
    pub fn polled(&mut self, ready: Vec<bool>) {
        self.ready = ready;
    }

    /// Read, answer and write what poll(2) found ready; close what is
    /// done or late; accept new connections. `page` is asked for each
    /// `GET /metrics`.
    pub fn serve(&mut self, page: &mut dyn FnMut() -> Page) {
        let ready = std::mem::take(&mut self.ready);
        let now = Instant::now();
        for (i, c) in self.conns.iter_mut().enumerate() {
            if ready.get(i + 1) == Some(&true) {
                c.step(page, now);
            }
            if !c.done && now >= c.deadline {
                let late = if c.output.is_some() {
                    "answer not taken"
                } else {
                    "no complete request"
                };
                log_debug!(
                    "metrics: {}: {late} within {} s: closing",
                    c.peer,
                    REQUEST_TIMEOUT.as_secs()
                );
                c.done = true;
            }
        }
        self.conns.retain(|c| !c.done);
        if ready.first() == Some(&true) {
            self.accept(now);
        }
    }

    /// Room for a connection from `peer`: past the cap, the oldest
    /// without a complete request goes; with none such, `peer` is refused.
    fn make_room(&mut self, peer: SocketAddr) -> bool {
        if self.conns.len() < MAX_CONNECTIONS {
            return true;
        }
        let oldest = (0..self.conns.len())
            .filter(|&i| self.conns[i].output.is_none())
            .min_by_key(|&i| self.conns[i].deadline);
        let Some(i) = oldest else {
            log_limited!(
                Level::Info,
                "metrics connection refused",
                1,
                "metrics: {peer}: {MAX_CONNECTIONS} connections answering already: \
                 refused (logged at most once a minute)"
            );
            return false;
        };
        let old = self.conns.remove(i);
        log_limited!(
            Level::Info,
            "metrics connection evicted",
            1,
            "metrics: {}: closed without a complete request, to make room for {peer} \
             ({MAX_CONNECTIONS} connections open; logged at most once a minute)",
            old.peer
        );
        true
    }

    fn accept(&mut self, now: Instant) {
        loop {
            match self.tcp.accept() {
                Ok((stream, peer)) => {
                    if !self.make_room(peer) {
                        continue;
                    }
                    if let Err(e) = stream.set_nonblocking(true) {
                        log_debug!("metrics: {peer}: {e}");
                        continue;
                    }
                    log_debug!("metrics: connection from {peer}");
                    self.conns.push(Conn {
                        stream,
                        peer,
                        input: Vec::new(),
                        output: None,
                        sent: 0,
                        deadline: now + REQUEST_TIMEOUT,
                        done: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log_debug!("metrics: accept: {e}");
                    break;
                }
            }
        }
    }
}

impl Conn {
    fn close(&mut self, why: &str) {
        log_debug!("metrics: {}: {why}: closing", self.peer);
        self.done = true;
    }

    fn step(&mut self, page: &mut dyn FnMut() -> Page, now: Instant) {
        if self.output.is_none() {
            self.read();
            if self.done {
                return;
            }
            let Some(end) = head_end(&self.input) else {
                return;
            };
            let (answer, status) = answer(&self.input[..end], page);
            if status != 200 {
                let line = self.input.split(|&b| b == b'\n').next().unwrap_or(&[]);
                log_debug!(
                    "metrics: {}: \"{}\": answered {status}",
                    self.peer,
                    escape(line.strip_suffix(b"\r").unwrap_or(line))
                );
            }
            self.output = Some(answer);
            self.deadline = now + REQUEST_TIMEOUT;
        }
        self.write();
    }

    fn read(&mut self) {
        let mut buf = [0u8; 2048];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return self.close("closed before a complete request"),
                Ok(n) => {
                    self.input.extend_from_slice(&buf[..n]);
                    if head_end(&self.input).is_some() {
                        return;
                    }
                    if self.input.len() > MAX_REQUEST {
                        return self.close(&format!("request over {MAX_REQUEST} bytes"));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.close(&e.to_string()),
            }
        }
    }

    fn write(&mut self) {
        let Some(out) = &self.output else { return };
        while self.sent < out.len() {
            match self.stream.write(&out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.close(&e.to_string()),
            }
        }
        // All sent: closed after each answer.
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        self.done = true;
    }
}

/// Where the request head ends (after its empty line), if it has. A bare
/// LF ends a line too (RFC 9112 §2.2 allows a recipient to take it).
fn head_end(input: &[u8]) -> Option<usize> {
    let head = &input[..input.len().min(MAX_REQUEST)];
    (0..head.len()).find_map(|i| {
        if head[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else if head[i..].starts_with(b"\n\r\n") {
            Some(i + 3)
        } else {
            None
        }
    })
}

/// A token of RFC 9110 §5.6.2 (a method, a field name).
fn token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The answer to a request head, and its status.
fn answer(head: &[u8], page: &mut dyn FnMut() -> Page) -> (Vec<u8>, u16) {
    let Ok(head) = std::str::from_utf8(head) else {
        return (reply(400, "text/plain", "not a request\n", true), 400);
    };
    let mut lines = head.lines();
    let parts: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
    let fields_ok = lines
        .take_while(|l| !l.is_empty())
        .all(|l| l.split_once(':').is_some_and(|(name, _)| token(name)));
    let (method, target) = match parts[..] {
        [m, t, "HTTP/1.0" | "HTTP/1.1"] if token(m) && t.starts_with('/') && fields_ok => (m, t),
        _ => return (reply(400, "text/plain", "not a request\n", true), 400),
    };
    let body = method == "GET";
    if !body && method != "HEAD" {
        return (reply(405, "text/plain", "only GET and HEAD\n", true), 405);
    }
    // A query string (Prometheus' `params`) changes nothing.
    if target.split('?').next() != Some("/metrics") {
        return (
            reply(404, "text/plain", "only /metrics is here\n", body),
            404,
        );
    }
    match page() {
        Ok(text) => (reply(200, CONTENT_TYPE, &text, body), 200),
        Err(why) => (reply(503, "text/plain", &format!("{why}\n"), body), 503),
    }
}

fn reply(status: u16, content_type: &str, text: &str, body: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        text.len()
    )
    .into_bytes();
    if body {
        out.extend_from_slice(text.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(head: &str) -> (String, u16) {
        let (out, status) = answer(head.as_bytes(), &mut || Ok("x 1\n".into()));
        (String::from_utf8(out).unwrap(), status)
    }

    #[test]
    fn heads_end_at_the_empty_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
    }

    #[test]
    fn metrics_is_answered_and_nothing_else() {
        let (text, status) = ask("GET /metrics HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n");
        assert_eq!(status, 200);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains(&format!("\r\nContent-Type: {CONTENT_TYPE}\r\n")));
        assert!(text.contains("\r\nContent-Length: 4\r\n") && text.ends_with("\r\n\r\nx 1\n"));
        assert_eq!(ask("GET /metrics?x=1 HTTP/1.0\r\n\r\n").1, 200);
        let (head, _) = ask("HEAD /metrics HTTP/1.0\r\n\r\n");
        assert!(head.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"));
        assert_eq!(ask("GET / HTTP/1.1\r\n\r\n").1, 404);
        assert_eq!(ask("GET /metrics/x HTTP/1.1\r\n\r\n").1, 404);
        let (text, status) = ask("POST /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(status, 405);
        assert!(text.contains("\r\nAllow: GET, HEAD\r\n"));
    }

    #[test]
    fn malformed_requests_get_400() {
        for head in [
            "GET /metrics\r\n\r\n",
            "GET /metrics HTTP/2.0\r\n\r\n",
            "GET  /metrics HTTP/1.1\r\n\r\n",
            "GET metrics HTTP/1.1\r\n\r\n",
            "G(T /metrics HTTP/1.1\r\n\r\n",
            "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
            "GET /metrics HTTP/1.1\r\nbad name: x\r\n\r\n",
            "\u{1}\u{2}\r\n\r\n",
        ] {
            assert_eq!(ask(head).1, 400, "{head:?}");
        }
        let (_, status) = answer(b"GET /\xff HTTP/1.1\r\n\r\n", &mut || Ok(String::new()));
        assert_eq!(status, 400);
    }

    #[test]
    fn no_page_is_503() {
        let (out, status) = answer(b"GET /metrics HTTP/1.1\r\n\r\n", &mut || {
            Err("store down".into())
        });
        assert_eq!(status, 503);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("\r\n\r\nstore down\n"));
    }
}
