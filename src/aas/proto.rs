//! The AAS line protocol: one request per line, words separated by blanks,
//! command words in any case. Each request gets one answer line, `OK ...`
//! or `ERR code text`; QUERY and STATS send their rows first and end with
//! `END count`. in.aasd(8) documents it for people typing at `socat`.
//!
//! ```text
//! AUTH password                       (TCP only, first)
//! PING
//! ALLOC pool service client lease [exact=A [mine] [known] | range=A-B | prefer=A] [previous] [hold] [keep=S] [alias=C] [host=H]
//!                                     -> OK address end
//! UNHOLD pool service client          -> OK
//! RELEASE address [service client]    -> OK
//! DECLINE address seconds [service client]
//! DISABLE address | ENABLE address
//! QUERY [pool=P] [range=A-B] [address=A] [service=S] [client=C] [state=S] [hostname]
//!                                     -> LEASE address pool state disabled service client reserved end released [host]
//! STATS [pool]                        -> POOL name size leased offered free disabled declined reserved
//! RESERVE address service client      -> OK | OK held service client end
//! UNRESERVE address                   -> OK
//! POOLS                               -> OK name=A-B[,A-B...] ...
//! CHECKPOINT | RELOAD
//! ```
//! `lease` and `end` are seconds and unix time, or `infinite`; `-` stands
//! for an empty service or client in rows.

use std::fmt;
use std::net::Ipv4Addr;

use crate::aas::lease::{Alloc, Filter, Selector, State, Stats, Time, Want, FOREVER};

/// Longest request line accepted; a longer one closes the connection.
pub const MAX_LINE: usize = 1024;

/// A failed AUTH is answered, and its connection closed, only after this:
/// guessing passwords goes at one a second per connection. The loop goes
/// on meanwhile; only that connection's output waits.
pub const AUTH_FAILURE_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Why a request line or a reply does not read: what was expected, with
/// the words at fault quoted as printable text. For a request, what in.aasd
/// answers after `ERR syntax`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(why: String) -> Error {
        Error(why)
    }
}

impl From<&str> for Error {
    fn from(why: &str) -> Error {
        Error(why.to_string())
    }
}

/// Text quoted in an error, whatever bytes it held, as printable text.
fn quoted(text: &str) -> String {
    crate::log::escape(text.as_bytes())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Auth(String),
    Ping,
    Alloc(Alloc),
    Unhold {
        pool: String,
        service: String,
        client: String,
    },
    Release {
        addr: u32,
        by: Option<(String, String)>,
    },
    Decline {
        addr: u32,
        secs: Time,
        by: Option<(String, String)>,
    },
    Disable(u32),
    Enable(u32),
    Query(Filter),
    Stats(Option<String>),
    /// Hold an address back for one client (a pinned address).
    Reserve {
        addr: u32,
        service: String,
        client: String,
    },
    Unreserve(u32),
    /// Every pool with its ranges, on one line.
    Pools,
    Checkpoint,
    Reload,
}

fn ip(a: u32) -> Dotted {
    Dotted(a)
}

/// An IPv4 address in dotted-quad text, written without the padding
/// machinery of `Ipv4Addr`'s `Display`: protocol lines and AAS keys are
/// made for every request.
#[derive(Clone, Copy)]
pub struct Dotted(pub u32);

impl fmt::Display for Dotted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 15];
        let mut n = 0;
        for (i, octet) in self.0.to_be_bytes().into_iter().enumerate() {
            if i > 0 {
                buf[n] = b'.';
                n += 1;
            }
            if octet >= 100 {
                buf[n] = b'0' + octet / 100;
                n += 1;
            }
            if octet >= 10 {
                buf[n] = b'0' + octet / 10 % 10;
                n += 1;
            }
            buf[n] = b'0' + octet % 10;
            n += 1;
        }
        // Only ASCII digits and dots were written.
        f.write_str(std::str::from_utf8(&buf[..n]).unwrap_or_default())
    }
}

fn selector_word(s: Selector) -> &'static str {
    match s {
        Selector::State(st) => st.name(),
        Selector::Disabled => "disabled",
        Selector::Reserved => "reserved",
    }
}

impl Request {
    /// The command word, as errors name the request.
    pub fn word(&self) -> &'static str {
        match self {
            Request::Auth(_) => "AUTH",
            Request::Ping => "PING",
            Request::Alloc(_) => "ALLOC",
            Request::Unhold { .. } => "UNHOLD",
            Request::Release { .. } => "RELEASE",
            Request::Decline { .. } => "DECLINE",
            Request::Disable(_) => "DISABLE",
            Request::Enable(_) => "ENABLE",
            Request::Query(_) => "QUERY",
            Request::Stats(_) => "STATS",
            Request::Reserve { .. } => "RESERVE",
            Request::Unreserve(_) => "UNRESERVE",
            Request::Pools => "POOLS",
            Request::Checkpoint => "CHECKPOINT",
            Request::Reload => "RELOAD",
        }
    }

    /// The request if its line says exactly it: names without blanks or
    /// control characters, so one value is one line (a pool name with a
    /// newline would otherwise send a second request).
    pub fn checked(self) -> Result<Request, Error> {
        let line = self.to_string();
        match parse(&line) {
            Ok(r) if r == self => Ok(self),
            Ok(_) => Err(format!("\"{}\": a name holds a blank", quoted(&line)).into()),
            Err(e) => Err(e),
        }
    }
}

/// The request line, without its newline, as [`parse`] reads it back.
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let holder = |f: &mut fmt::Formatter<'_>, by: &Option<(String, String)>| match by {
            Some((s, c)) => write!(f, " {s} {c}"),
            None => Ok(()),
        };
        match self {
            Request::Auth(p) => write!(f, "AUTH {p}"),
            Request::Ping => f.write_str("PING"),
            Request::Alloc(a) => alloc_line(f, a),
            Request::Unhold {
                pool,
                service,
                client,
            } => write!(f, "UNHOLD {pool} {service} {client}"),
            Request::Release { addr, by } => {
                write!(f, "RELEASE {}", ip(*addr))?;
                holder(f, by)
            }
            Request::Decline { addr, secs, by } => {
                write!(f, "DECLINE {} {secs}", ip(*addr))?;
                holder(f, by)
            }
            Request::Disable(a) => write!(f, "DISABLE {}", ip(*a)),
            Request::Enable(a) => write!(f, "ENABLE {}", ip(*a)),
            Request::Query(q) => query_line(f, q),
            Request::Stats(None) => f.write_str("STATS"),
            Request::Stats(Some(p)) => write!(f, "STATS {p}"),
            Request::Reserve {
                addr,
                service,
                client,
            } => write!(f, "RESERVE {} {service} {client}", ip(*addr)),
            Request::Unreserve(a) => write!(f, "UNRESERVE {}", ip(*a)),
            Request::Pools => f.write_str("POOLS"),
            Request::Checkpoint => f.write_str("CHECKPOINT"),
            Request::Reload => f.write_str("RELOAD"),
        }
    }
}

fn alloc_line(f: &mut fmt::Formatter<'_>, a: &Alloc) -> fmt::Result {
    write!(
        f,
        "ALLOC {} {} {} {}",
        a.pool,
        a.service,
        a.client,
        TimeText(a.lease)
    )?;
    if a.previous {
        f.write_str(" previous")?;
    }
    match a.want {
        Want::Any => {}
        Want::Exact(x) => write!(f, " exact={}", ip(x))?,
        Want::Range(lo, hi) => write!(f, " range={}-{}", ip(lo), ip(hi))?,
        Want::Prefer(x) => write!(f, " prefer={}", ip(x))?,
    }
    for (on, word) in [(a.mine, " mine"), (a.known, " known")] {
        if on {
            f.write_str(word)?;
        }
    }
    if a.keep != 0 {
        write!(f, " keep={}", a.keep)?;
    }
    if let Some(c) = &a.alias {
        write!(f, " alias={c}")?;
    }
    if a.hold {
        f.write_str(" hold")?;
    }
    match &a.host {
        Some(h) => write!(f, " host={h}"),
        None => Ok(()),
    }
}

fn query_line(f: &mut fmt::Formatter<'_>, q: &Filter) -> fmt::Result {
    f.write_str("QUERY")?;
    if let Some(p) = &q.pool {
        write!(f, " pool={p}")?;
    }
    match q.range {
        Some((a, b)) if a == b => write!(f, " address={}", ip(a))?,
        Some((a, b)) => write!(f, " range={}-{}", ip(a), ip(b))?,
        None => {}
    }
    if let Some(s) = &q.service {
        write!(f, " service={s}")?;
    }
    if let Some(c) = &q.client {
        write!(f, " client={c}")?;
    }
    if let Some(s) = q.state {
        write!(f, " state={}", selector_word(s))?;
    }
    if q.with_host {
        f.write_str(" hostname")?;
    }
    Ok(())
}

fn addr(s: &str) -> Result<u32, String> {
    s.parse::<Ipv4Addr>()
        .map(u32::from)
        .map_err(|_| format!("\"{s}\" is not an IPv4 address"))
}

fn range(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("\"{s}\" is not a range A-B"))?;
    let (a, b) = (addr(a)?, addr(b)?);
    if a > b {
        return Err(format!("range {s} runs backwards"));
    }
    Ok((a, b))
}

/// Seconds, or `infinite`.
pub fn lease(s: &str) -> Result<Time, Error> {
    lease_text(s).map_err(Error)
}

fn lease_text(s: &str) -> Result<Time, String> {
    if s.eq_ignore_ascii_case("infinite") {
        return Ok(FOREVER);
    }
    match s.parse::<u32>() {
        Ok(0) => Err("a lease of 0 seconds ends before it starts".into()),
        Ok(n) => Ok(Time::from(n)),
        Err(_) => Err(format!("\"{s}\" is not a lease (seconds or infinite)")),
    }
}

pub fn time_text(t: Time) -> String {
    TimeText(t).to_string()
}

/// [`time_text`] without the String, for lines written as they are made.
struct TimeText(Time);

impl fmt::Display for TimeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == FOREVER {
            f.write_str("infinite")
        } else {
            self.0.fmt(f)
        }
    }
}

/// Names are words without blanks, at most 255 bytes (the log's limit).
fn name(s: &str) -> Result<String, String> {
    checked_name(s).map(str::to_string)
}

/// [`name`], checked but not copied.
fn checked_name(s: &str) -> Result<&str, String> {
    if s.len() > 255 {
        return Err("a name is longer than 255 bytes".into());
    }
    // Names come back in QUERY rows and log lines: text only. (ASCII
    // names, all a requester sends, are checked byte by byte.)
    let control = if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_control())
    } else {
        s.chars().any(char::is_control)
    };
    if control {
        return Err("a name has a control character".into());
    }
    Ok(s)
}

fn exactly(words: &[&str], n: usize, usage: &str) -> Result<(), String> {
    if words.len() == n {
        Ok(())
    } else {
        Err(format!("usage: {usage}"))
    }
}

fn holder(words: &[&str], usage: &str) -> Result<Option<(String, String)>, String> {
    match words {
        [] => Ok(None),
        [s, c] => Ok(Some((name(s)?, name(c)?))),
        _ => Err(format!("usage: {usage}")),
    }
}

/// Parse one request line (without its newline).
pub fn parse(line: &str) -> Result<Request, Error> {
    // Errors quote the request; whatever bytes it held, the answer and the
    // log line stay one line of printable text.
    parse_words(line).map_err(|e| Error(quoted(&e)))
}

fn parse_words(line: &str) -> Result<Request, String> {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let Some((cmd, args)) = words.split_first() else {
        return Err("empty request".into());
    };
    // Requesters send the words in capitals: no copy made for those.
    let upper;
    let cmd = if cmd.bytes().any(|b| b.is_ascii_lowercase()) {
        upper = cmd.to_ascii_uppercase();
        upper.as_str()
    } else {
        cmd
    };
    match cmd {
        "AUTH" => {
            exactly(args, 1, "AUTH password")?;
            Ok(Request::Auth(args[0].to_string()))
        }
        "PING" => exactly(args, 0, "PING").map(|_| Request::Ping),
        "CHECKPOINT" => exactly(args, 0, "CHECKPOINT").map(|_| Request::Checkpoint),
        "RELOAD" => exactly(args, 0, "RELOAD").map(|_| Request::Reload),
        "POOLS" => exactly(args, 0, "POOLS").map(|_| Request::Pools),
        "RESERVE" => {
            exactly(args, 3, "RESERVE address service client")?;
            Ok(Request::Reserve {
                addr: addr(args[0])?,
                service: name(args[1])?,
                client: name(args[2])?,
            })
        }
        "UNRESERVE" => {
            exactly(args, 1, "UNRESERVE address")?;
            Ok(Request::Unreserve(addr(args[0])?))
        }
        "ALLOC" => alloc(args),
        "UNHOLD" => {
            exactly(args, 3, "UNHOLD pool service client")?;
            Ok(Request::Unhold {
                pool: name(args[0])?,
                service: name(args[1])?,
                client: name(args[2])?,
            })
        }
        "RELEASE" => {
            const USAGE: &str = "RELEASE address [service client]";
            let (a, rest) = args.split_first().ok_or(format!("usage: {USAGE}"))?;
            Ok(Request::Release {
                addr: addr(a)?,
                by: holder(rest, USAGE)?,
            })
        }
        "DECLINE" => {
            const USAGE: &str = "DECLINE address seconds [service client]";
            if args.len() < 2 {
                return Err(format!("usage: {USAGE}"));
            }
            let secs = args[1]
                .parse::<u32>()
                .map_err(|_| format!("\"{}\" is not a number of seconds", args[1]))?;
            Ok(Request::Decline {
                addr: addr(args[0])?,
                secs: Time::from(secs),
                by: holder(&args[2..], USAGE)?,
            })
        }
        "DISABLE" | "ENABLE" => {
            exactly(args, 1, &format!("{cmd} address"))?;
            let a = addr(args[0])?;
            Ok(if cmd == "DISABLE" {
                Request::Disable(a)
            } else {
                Request::Enable(a)
            })
        }
        "QUERY" => filter(args).map(Request::Query),
        "STATS" => match args {
            [] => Ok(Request::Stats(None)),
            [p] => Ok(Request::Stats(Some(name(p)?))),
            _ => Err("usage: STATS [pool]".into()),
        },
        _ => Err(format!("unknown request \"{cmd}\"")),
    }
}

fn alloc(args: &[&str]) -> Result<Request, String> {
    const USAGE: &str =
        "ALLOC pool service client lease [exact=A [mine] [known]|range=A-B|prefer=A] [previous] [hold] [keep=S] [alias=C]";
    if args.len() < 4 {
        return Err(format!("usage: {USAGE}"));
    }
    let mut a = Alloc::new(
        checked_name(args[0])?,
        checked_name(args[1])?,
        checked_name(args[2])?,
        lease_text(args[3])?,
    );
    for w in &args[4..] {
        let want = match w.split_once('=') {
            Some(("exact", v)) => Want::Exact(addr(v)?),
            Some(("host", v)) => {
                a.host = Some(name(v)?);
                continue;
            }
            Some(("prefer", v)) => Want::Prefer(addr(v)?),
            Some(("alias", v)) => {
                a.alias = Some(name(v)?);
                continue;
            }
            Some(("keep", v)) => {
                a.keep = v
                    .parse()
                    .map_err(|_| format!("keep={v}: not a number of seconds"))?;
                continue;
            }
            Some(("range", v)) => {
                let (lo, hi) = range(v)?;
                Want::Range(lo, hi)
            }
            None if *w == "previous" => {
                a.previous = true;
                continue;
            }
            None if *w == "hold" => {
                a.hold = true;
                continue;
            }
            None if *w == "mine" => {
                a.mine = true;
                continue;
            }
            None if *w == "known" => {
                a.known = true;
                continue;
            }
            _ => return Err(format!("unknown ALLOC argument \"{w}\"; usage: {USAGE}")),
        };
        if a.want != Want::Any {
            return Err("exact=, range= and prefer= exclude each other".into());
        }
        a.want = want;
    }
    if a.mine && !matches!(a.want, Want::Exact(_)) {
        return Err("mine needs exact=".into());
    }
    if a.known && !matches!(a.want, Want::Exact(_)) {
        return Err("known needs exact=".into());
    }
    Ok(Request::Alloc(a))
}

/// The words after `QUERY` (aasadmin's `list` filters are these).
pub fn parse_query(args: &[&str]) -> Result<Filter, Error> {
    filter(args).map_err(|e| Error(quoted(&e)))
}

fn filter(args: &[&str]) -> Result<Filter, String> {
    let mut f = Filter::default();
    for w in args {
        if *w == "hostname" {
            f.with_host = true;
            continue;
        }
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| format!("\"{w}\": expected key=value"))?;
        match k {
            "pool" => f.pool = Some(name(v)?),
            "service" => f.service = Some(name(v)?),
            "client" => f.client = Some(name(v)?),
            "range" => f.range = Some(range(v)?),
            "address" => {
                let a = addr(v)?;
                f.range = Some((a, a));
            }
            "state" => {
                f.state = Some(match v {
                    "disabled" => Selector::Disabled,
                    "reserved" => Selector::Reserved,
                    _ => Selector::State(State::from_name(v).ok_or_else(|| {
                        format!("\"{v}\" is not a state (free, offered, leased, declined, disabled, reserved)")
                    })?),
                })
            }
            _ => {
                return Err(format!(
                    "unknown QUERY key \"{k}\": expected pool, range, address, service, client or state"
                ))
            }
        }
    }
    Ok(f)
}

/// `-` for an empty word, so a row always has the same number of words.
pub fn word(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// The words of a POOLS answer: `name=A-B[,A-B...]` per pool.
pub fn pools_words(pools: &[super::lease::Pool]) -> Vec<String> {
    pools
        .iter()
        .map(|p| pool_word(&p.name, &p.ranges))
        .collect()
}

fn pool_word(name: &str, ranges: &[(u32, u32)]) -> String {
    let ranges: Vec<String> = ranges
        .iter()
        .map(|&(a, b)| format!("{}-{}", Ipv4Addr::from(a), Ipv4Addr::from(b)))
        .collect();
    format!("{name}={}", ranges.join(","))
}

/// A pool as POOLS tells it: its name and inclusive ranges.
pub type PoolRanges = (String, Vec<(u32, u32)>);

/// A POOLS answer's words back to pools; `None` for a word that is not one.
pub fn parse_pools<S: AsRef<str>>(words: &[S]) -> Option<Vec<PoolRanges>> {
    words
        .iter()
        .map(|w| {
            // Pool names may hold `=`; ranges never do.
            let (name, list) = w.as_ref().rsplit_once('=')?;
            let ranges = list
                .split(',')
                .filter(|r| !r.is_empty()) // a pool with no address
                .map(|r| range(r).ok())
                .collect::<Option<Vec<_>>>()?;
            Some((name.to_string(), ranges))
        })
        .collect()
}

/// The code word of an `ERR` answer, spelt here once for in.aasd's
/// refusals and for in.dhcpd's decisions on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    NoPool,
    NotInPool,
    Taken,
    Disabled,
    Exhausted,
    NotHeld,
    Unknown,
    Reserved,
    /// The request did not parse.
    Syntax,
    Auth,
    Denied,
    Io,
    Reload,
}

const CODES: [(Code, &str); 13] = [
    (Code::NoPool, "nopool"),
    (Code::NotInPool, "notinpool"),
    (Code::Taken, "taken"),
    (Code::Disabled, "disabled"),
    (Code::Exhausted, "exhausted"),
    (Code::NotHeld, "notheld"),
    (Code::Unknown, "unknown"),
    (Code::Reserved, "reserved"),
    (Code::Syntax, "syntax"),
    (Code::Auth, "auth"),
    (Code::Denied, "denied"),
    (Code::Io, "io"),
    (Code::Reload, "reload"),
];

impl Code {
    pub fn as_str(self) -> &'static str {
        CODES
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("", |(_, w)| w)
    }

    pub fn from_word(w: &str) -> Option<Code> {
        CODES.iter().find(|(_, s)| *s == w).map(|(c, _)| *c)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, w: &&str) -> bool {
        self.as_str() == *w
    }
}

/// in.aasd's reply to one request: one line, or for QUERY and STATS rows
/// ending with `END count`. What a line means depends on what was asked
/// (`OK` alone, `OK address end`, `OK held ...`), so [`Reply::parse`]
/// reads it against the request; `Display` writes it as in.aasd sends it,
/// lines separated by newlines, without the last newline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `OK`: done (AUTH, UNHOLD, RELEASE, DECLINE, DISABLE, ENABLE,
    /// RESERVE of an address nobody else holds, UNRESERVE, RELOAD).
    Ok,
    /// PING's `OK in.aasd version`: the words after `OK`.
    Pong(String),
    /// CHECKPOINT's `OK path`: the file written.
    Checkpoint(String),
    /// ALLOC's `OK address end [new N]`.
    Allocated(Allocated),
    /// RESERVE's `OK held service client end`: another client holds it.
    Held(Held),
    /// POOLS' `OK name=A-B[,A-B...] ...`.
    Pools(Vec<PoolRanges>),
    /// QUERY's `LEASE` rows.
    Leases(Vec<LeaseRow>),
    /// STATS' `POOL` rows.
    Stats(Vec<Stats>),
    /// `ERR code text`: refused, or failed.
    Err { code: Code, text: String },
}

/// The last line of rows, `END count`: for in.aasd, which sends a long
/// QUERY answer in pages, a [`LeaseRow`] at a time, and ends it with this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct End(pub usize);

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "END {}", self.0)
    }
}

/// The word that starts each row of the reply to `asked`, if it has rows.
fn row_word(asked: &Request) -> Option<&'static str> {
    match asked {
        Request::Query(_) => Some("LEASE"),
        Request::Stats(_) => Some("POOL"),
        _ => None,
    }
}

impl Reply {
    /// Whether `line` is the last of the reply to `asked`: rows go on, any
    /// other line (`END n`, `ERR ...`, or garbage) ends it.
    pub fn ends(asked: &Request, line: &str) -> bool {
        match row_word(asked) {
            Some(row) => line.split_ascii_whitespace().next() != Some(row),
            None => true,
        }
    }

    /// The reply to `asked` from its lines (without newlines). Lines that
    /// are not such a reply (an `ERR` code this side does not know among
    /// them) are an error that quotes the line at fault.
    pub fn parse<S: AsRef<str>>(asked: &Request, lines: &[S]) -> Result<Reply, Error> {
        let Some((last, rows)) = lines.split_last() else {
            return Err("no reply".into());
        };
        let last = last.as_ref();
        let bad = |why: &str| Error(format!("\"{}\": {why}", quoted(last)));
        let mut words = last.split_ascii_whitespace();
        let first = words.next();
        if first == Some("ERR") && rows.is_empty() {
            let code = words.next().and_then(Code::from_word);
            let code = code.ok_or_else(|| bad("not ERR and a known code"))?;
            let text = words.collect::<Vec<_>>().join(" ");
            return Ok(Reply::Err { code, text });
        }
        if let Some(row) = row_word(asked) {
            let n = match (first, words.next(), words.next()) {
                (Some("END"), Some(n), None) => n.parse::<usize>().ok(),
                _ => None,
            };
            let n = n.ok_or_else(|| bad(&format!("neither a {row} row nor END count")))?;
            if n != rows.len() {
                return Err(bad(&format!("after {} rows", rows.len())));
            }
            let rows = rows.iter().map(AsRef::as_ref);
            return Ok(match asked {
                Request::Query(_) => {
                    Reply::Leases(rows.map(LeaseRow::parse).collect::<Result<_, _>>()?)
                }
                _ => Reply::Stats(rows.map(parse_stats).collect::<Result<_, _>>()?),
            });
        }
        if first != Some("OK") || !rows.is_empty() {
            return Err(bad(&format!("not an answer to {}", asked.word())));
        }
        let words: Vec<&str> = words.collect();
        let plain = || {
            if words.is_empty() {
                Ok(Reply::Ok)
            } else {
                Err(bad(&format!("{} is answered OK alone", asked.word())))
            }
        };
        match asked {
            Request::Ping => Ok(Reply::Pong(words.join(" "))),
            Request::Checkpoint => Ok(Reply::Checkpoint(words.join(" "))),
            Request::Alloc(_) => Allocated::parse(&words).map(Reply::Allocated),
            Request::Reserve { .. } if !words.is_empty() => Held::parse(&words)
                .map(Reply::Held)
                .ok_or_else(|| bad("not OK held service client end")),
            Request::Pools => parse_pools(&words)
                .map(Reply::Pools)
                .ok_or_else(|| bad("not OK name=A-B[,A-B...] ...")),
            _ => plain(),
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ok_with = |f: &mut fmt::Formatter<'_>, text: &str| match text {
            "" => f.write_str("OK"),
            t => write!(f, "OK {t}"),
        };
        match self {
            Reply::Ok => f.write_str("OK"),
            Reply::Pong(t) | Reply::Checkpoint(t) => ok_with(f, t),
            Reply::Allocated(a) => a.fmt(f),
            Reply::Held(h) => h.fmt(f),
            Reply::Pools(pools) => {
                f.write_str("OK")?;
                for (name, ranges) in pools {
                    write!(f, " {}", pool_word(name, ranges))?;
                }
                Ok(())
            }
            Reply::Leases(rows) => {
                for r in rows {
                    writeln!(f, "{r}")?;
                }
                End(rows.len()).fmt(f)
            }
            Reply::Stats(rows) => {
                for r in rows {
                    writeln!(f, "{}", stats_line(r))?;
                }
                End(rows.len()).fmt(f)
            }
            Reply::Err { code, text: t } if t.is_empty() => write!(f, "ERR {code}"),
            Reply::Err { code, text } => write!(f, "ERR {code} {text}"),
        }
    }
}

/// The answer to an `ALLOC`: `OK address end [new N]`; `new` when the
/// client held no address of the pool before, N the pool's addresses held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocated {
    pub addr: Ipv4Addr,
    pub end: Time,
    pub new: Option<u64>,
}

impl Allocated {
    /// From the words after `OK`.
    pub fn parse<S: AsRef<str>>(words: &[S]) -> Result<Allocated, Error> {
        let bad = || {
            let words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
            format!("\"OK {}\" is not an ALLOC answer", quoted(&words.join(" ")))
        };
        let (a, end, new) = match words {
            [a, end] => (a.as_ref(), end.as_ref(), None),
            [a, end, new, n] if new.as_ref() == "new" => (
                a.as_ref(),
                end.as_ref(),
                Some(n.as_ref().parse().map_err(|_| bad())?),
            ),
            _ => return Err(bad().into()),
        };
        Ok(Allocated {
            addr: a.parse().map_err(|_| bad())?,
            end: time_word(end).ok_or_else(bad)?,
            new,
        })
    }
}

impl fmt::Display for Allocated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OK {} {}",
            Dotted(u32::from(self.addr)),
            TimeText(self.end)
        )?;
        match self.new {
            Some(n) => write!(f, " new {n}"),
            None => Ok(()),
        }
    }
}

/// RESERVE's answer when another client holds the address:
/// `OK held service client end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub service: String,
    pub client: String,
    pub end: Time,
}

impl Held {
    /// From the words after `OK`; `None` unless they are `held ...`.
    pub fn parse<S: AsRef<str>>(words: &[S]) -> Option<Held> {
        match words {
            [h, service, client, end] if h.as_ref() == "held" => Some(Held {
                service: unword(service.as_ref()),
                client: unword(client.as_ref()),
                end: time_word(end.as_ref())?,
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OK held {} {} {}",
            word(&self.service),
            word(&self.client),
            time_text(self.end)
        )
    }
}

/// A unix time or `infinite`, as rows and ALLOC answers give it.
fn time_word(w: &str) -> Option<Time> {
    if w == "infinite" {
        Some(FOREVER)
    } else {
        w.parse().ok().filter(|&t| t != FOREVER)
    }
}

/// `-` back to an empty word.
fn unword(w: &str) -> String {
    if w == "-" {
        String::new()
    } else {
        w.to_string()
    }
}

/// One `LEASE` row of a QUERY answer: what aasadmin shows of an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRow {
    pub addr: Ipv4Addr,
    pub pool: String,
    /// A state, or [`Selector::Reserved`] for a reserved address nobody holds.
    pub state: Selector,
    pub disabled: bool,
    /// Empty when nobody holds it.
    pub service: String,
    pub client: String,
    pub reserved: Time,
    pub end: Time,
    pub released: Time,
    /// Only in rows asked for with `hostname`; empty when the client sent none.
    pub host: Option<String>,
}

impl LeaseRow {
    /// Parse a row line; one with the wrong number of words is an error.
    pub fn parse(line: &str) -> Result<LeaseRow, Error> {
        let bad = |why: &str| Error(format!("\"{}\": {why}", quoted(line)));
        let w: Vec<&str> = line.split_ascii_whitespace().collect();
        let words = "not a LEASE row of 9 or 10 words";
        let (fields, host) = match w.as_slice() {
            ["LEASE", f @ ..] if f.len() == 9 => (f, None),
            ["LEASE", f @ .., h] if f.len() == 9 => (f, Some(unword(h))),
            _ => return Err(bad(words)),
        };
        let &[a, pool, state, disabled, service, client, reserved, end, released] = fields else {
            return Err(bad(words));
        };
        let num = |s: &str| s.parse::<Time>().map_err(|_| bad("a time is not a number"));
        Ok(LeaseRow {
            addr: a.parse().map_err(|_| bad("no address"))?,
            pool: pool.to_string(),
            state: match state {
                "reserved" => Selector::Reserved,
                s => Selector::State(State::from_name(s).ok_or_else(|| bad("no state"))?),
            },
            disabled: match disabled {
                "yes" => true,
                "no" => false,
                _ => return Err(bad("disabled is not yes or no")),
            },
            service: unword(service),
            client: unword(client),
            reserved: num(reserved)?,
            end: time_word(end).ok_or_else(|| bad("the end is not a time"))?,
            released: num(released)?,
            host,
        })
    }
}

impl fmt::Display for LeaseRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LEASE {} {} {} {} {} {} {} {} {}",
            self.addr,
            self.pool,
            selector_word(self.state),
            if self.disabled { "yes" } else { "no" },
            word(&self.service),
            word(&self.client),
            self.reserved,
            time_text(self.end),
            self.released
        )?;
        match &self.host {
            Some(h) => write!(f, " {}", word(h)),
            None => Ok(()),
        }
    }
}

/// One `POOL` row of a STATS answer.
pub fn stats_line(s: &Stats) -> String {
    format!(
        "POOL {} {} {} {} {} {} {} {}",
        s.name, s.size, s.leased, s.offered, s.free, s.disabled, s.declined, s.reserved
    )
}

/// A `POOL` row back to its counts; the wrong number of words is an error.
pub fn parse_stats(line: &str) -> Result<Stats, Error> {
    let bad = || Error(format!("\"{}\" is not a POOL row", quoted(line)));
    let w: Vec<&str> = line.split_ascii_whitespace().collect();
    let ["POOL", name, counts @ ..] = &w[..] else {
        return Err(bad());
    };
    let n: Vec<u64> = counts
        .iter()
        .map(|c| c.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    // An in.aasd from before reservations sends no reserved column.
    let (six, reserved) = match n.len() {
        6 => (&n[..], 0),
        7 => (&n[..6], n[6]),
        _ => return Err(bad()),
    };
    let &[size, leased, offered, free, disabled, declined] = six else {
        return Err(bad());
    };
    Ok(Stats {
        name: name.to_string(),
        size,
        leased,
        offered,
        free,
        disabled,
        declined,
        reserved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_with_every_argument() {
        let r = parse(
            "alloc Pool1 dhcp 10.0.0.0/1/02:00:00:00:00:01 3600 prefer=10.0.0.7 previous hold",
        )
        .unwrap();
        assert_eq!(
            r,
            Request::Alloc(Alloc {
                pool: "Pool1".into(),
                service: "dhcp".into(),
                client: "10.0.0.0/1/02:00:00:00:00:01".into(),
                lease: 3600,
                want: Want::Prefer(u32::from(Ipv4Addr::new(10, 0, 0, 7))),
                previous: true,
                hold: true,
                mine: false,
                known: false,
                keep: 0,
                host: None,
                alias: None,
            })
        );
        let r = parse("ALLOC p s c infinite range=10.0.0.1-10.0.0.9").unwrap();
        let Request::Alloc(a) = r else { panic!() };
        assert_eq!(a.lease, FOREVER);
        assert_eq!(a.want, Want::Range(0x0a00_0001, 0x0a00_0009));
    }

    #[test]
    fn bad_requests_say_what_was_expected() {
        for (line, want) in [
            ("", "empty request"),
            ("FROB", "unknown request \"FROB\""),
            ("ALLOC p s c", "usage: ALLOC"),
            ("ALLOC p s c 10x", "\"10x\" is not a lease"),
            (
                "ALLOC p s c 10 exact=1.2.3.4 prefer=1.2.3.5",
                "exclude each other",
            ),
            ("ALLOC p s c 10 range=10.0.0.9-10.0.0.1", "runs backwards"),
            ("RELEASE 10.0.0.1 dhcp", "usage: RELEASE"),
            ("DECLINE 10.0.0.1 soon", "not a number of seconds"),
            ("QUERY state=gone", "is not a state"),
            ("QUERY colour=red", "unknown QUERY key"),
            ("ENABLE 300.1.1.1", "not an IPv4 address"),
            ("ALLOC p s c 0", "a lease of 0 seconds"),
            ("ALLOC p s c -5", "\"-5\" is not a lease"),
            ("ALLOC p s c 4294967296", "is not a lease"),
            ("ALLOC p s c\0x 10", "a name has a control character"),
            ("ALLOC p s c 10 extra", "unknown ALLOC argument"),
            ("ALLOC p s c 10 keep=-1", "keep=-1: not a number"),
            ("ALLOC p s c 10 mine", "mine needs exact="),
            ("ALLOC p s c 10 prefer=10.0.0.1 known", "known needs exact="),
            (
                "DECLINE 10.0.0.1 99999999999999999999",
                "not a number of seconds",
            ),
            ("PING extra", "usage: PING"),
        ] {
            let e = parse(line).unwrap_err().to_string();
            assert!(e.contains(want), "{line:?}: {e}");
        }
    }

    #[test]
    fn query_filters() {
        let Request::Query(f) =
            parse("QUERY pool=A address=10.0.0.5 state=disabled client=x").unwrap()
        else {
            panic!()
        };
        assert_eq!(f.pool.as_deref(), Some("A"));
        assert_eq!(f.range, Some((0x0a00_0005, 0x0a00_0005)));
        assert_eq!(f.state, Some(Selector::Disabled));
        assert_eq!(f.client.as_deref(), Some("x"));
    }

    #[test]
    fn host_names() {
        let Request::Alloc(a) = parse("ALLOC P dhcp c 60 previous hold host=pc%201").unwrap()
        else {
            panic!()
        };
        assert_eq!(a.host.as_deref(), Some("pc%201"));
        assert!(a.previous && a.hold);
        let Request::Query(f) = parse("QUERY pool=P hostname").unwrap() else {
            panic!()
        };
        assert!(f.with_host);
        let Request::Query(f) = parse("QUERY state=leased").unwrap() else {
            panic!()
        };
        assert!(!f.with_host, "rows as before unless asked");
        // The single-address forms are as they were.
        assert_eq!(
            parse("DISABLE 10.0.0.1").unwrap(),
            Request::Disable(0x0a00_0001)
        );
        assert!(matches!(
            parse("RELEASE 10.0.0.1 dhcp c").unwrap(),
            Request::Release { by: Some(_), .. }
        ));
        let e = parse("ALLOC p s c 10 host=a\x07").unwrap_err().to_string();
        assert!(e.contains("control character"), "{e}");
    }

    #[test]
    fn reservations_and_pools() {
        assert_eq!(
            parse("reserve 10.0.0.5 dhcp fixed/1/02:00:00:00:00:01").unwrap(),
            Request::Reserve {
                addr: 0x0a00_0005,
                service: "dhcp".into(),
                client: "fixed/1/02:00:00:00:00:01".into()
            }
        );
        assert_eq!(
            parse("UNRESERVE 10.0.0.5").unwrap(),
            Request::Unreserve(0x0a00_0005)
        );
        assert!(parse("RESERVE 10.0.0.5 dhcp")
            .unwrap_err()
            .to_string()
            .contains("usage: RESERVE"));
        let pools = [
            super::super::lease::Pool::new("A=1", vec![(1, 5), (9, 9)]),
            super::super::lease::Pool::new("B", vec![(20, 30)]),
        ];
        let words = pools_words(&pools);
        assert_eq!(
            words,
            ["A=1=0.0.0.1-0.0.0.5,0.0.0.9-0.0.0.9", "B=0.0.0.20-0.0.0.30"]
        );
        assert_eq!(
            parse_pools(&words).unwrap(),
            vec![
                ("A=1".into(), vec![(1, 5), (9, 9)]),
                ("B".into(), vec![(20, 30)])
            ]
        );
        assert_eq!(parse_pools(&["junk"]), None);
    }

    #[test]
    fn answers() {
        let alloc = parse("ALLOC P dhcp c 60").unwrap();
        assert_eq!(
            Reply::parse(&alloc, &["OK 10.0.0.5 1700000000"]),
            Ok(Reply::Allocated(Allocated {
                addr: Ipv4Addr::new(10, 0, 0, 5),
                end: 1_700_000_000,
                new: None
            }))
        );
        assert_eq!(
            Reply::parse(&alloc, &["ERR taken 10.0.0.5 is held by another client"]),
            Ok(Reply::Err {
                code: Code::Taken,
                text: "10.0.0.5 is held by another client".into()
            })
        );
        assert!(Reply::parse(&alloc, &["HTTP/1.1 400"]).is_err());
        assert!(Reply::parse(&alloc, &[""]).is_err());
        assert!(Reply::parse(&alloc, &[] as &[&str]).is_err());
    }

    #[test]
    fn a_reply_reads_only_as_the_answer_to_its_request() {
        let alloc = parse("ALLOC P dhcp c 60").unwrap();
        let query = parse("QUERY").unwrap();
        let disable = Request::Disable(1);
        // Plain OK is no ALLOC answer; an address is no DISABLE answer.
        assert!(Reply::parse(&alloc, &["OK"]).is_err());
        assert!(Reply::parse(&disable, &["OK 10.0.0.5 1700000000"]).is_err());
        assert_eq!(Reply::parse(&disable, &["OK"]), Ok(Reply::Ok));
        // Rows: each must read, and END must count them.
        let row = "LEASE 10.0.0.5 P leased no dhcp c 1 1700000000 0";
        assert!(matches!(
            Reply::parse(&query, &[row, "END 1"]),
            Ok(Reply::Leases(r)) if r.len() == 1
        ));
        for bad in [
            &[row, "END 2"][..],
            &[row][..],
            &[row, "OK"][..],
            &["LEASE 10.0.0.5 P", "END 1"][..],
            &[row, "ERR io disk"][..],
            &["END"][..],
        ] {
            assert!(Reply::parse(&query, bad).is_err(), "{bad:?}");
        }
        assert_eq!(Reply::parse(&query, &["END 0"]), Ok(Reply::Leases(vec![])));
        let e = Reply::parse(&Request::Stats(None), &["POOL P 1 2", "END 1"]).unwrap_err();
        assert!(
            e.to_string().contains("\"POOL P 1 2\" is not a POOL row"),
            "{e}"
        );
        // Where a reply ends.
        assert!(!Reply::ends(&query, row));
        assert!(Reply::ends(&query, "END 1"));
        assert!(Reply::ends(&query, "garbage"));
        assert!(Reply::ends(&Request::Stats(None), row));
        assert!(Reply::ends(&alloc, row));
    }

    #[test]
    fn replies_render_as_the_manual_spells_them() {
        let held = Reply::Held(Held {
            service: "dhcp".into(),
            client: String::new(),
            end: FOREVER,
        });
        assert_eq!(held.to_string(), "OK held dhcp - infinite");
        let pools = Reply::Pools(vec![("A".into(), vec![(1, 2)]), ("E".into(), vec![])]);
        assert_eq!(pools.to_string(), "OK A=0.0.0.1-0.0.0.2 E=");
        assert_eq!(Reply::Pools(vec![]).to_string(), "OK");
        let stats = Reply::Stats(vec![Stats {
            name: "P".into(),
            size: 10,
            leased: 1,
            ..Stats::default()
        }]);
        assert_eq!(stats.to_string(), "POOL P 10 1 0 0 0 0 0\nEND 1");
        assert_eq!(Reply::Leases(vec![]).to_string(), "END 0");
        assert_eq!(End(12).to_string(), "END 12");
        assert_eq!(
            Reply::Pong("in.aasd 0.1.0".into()).to_string(),
            "OK in.aasd 0.1.0"
        );
        let refused = Reply::Err {
            code: Code::Syntax,
            text: "empty request".into(),
        };
        assert_eq!(refused.to_string(), "ERR syntax empty request");
        let allocated = Reply::Allocated(Allocated {
            addr: Ipv4Addr::new(10, 0, 0, 5),
            end: 1_700_000_000,
            new: Some(3),
        });
        assert_eq!(allocated.to_string(), "OK 10.0.0.5 1700000000 new 3");
    }

    /// A small seeded generator (xorshift), so failures repeat.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn flip(&mut self) -> bool {
            self.below(2) == 0
        }
        fn addr(&mut self) -> u32 {
            self.next() as u32
        }
        fn range(&mut self) -> (u32, u32) {
            let (a, b) = (self.addr(), self.addr());
            (a.min(b), a.max(b))
        }
        /// A name as the wire allows it: printable, no blanks, never `-`.
        fn name(&mut self) -> String {
            const CHARS: &[u8] = b"abcXYZ019./:%=_-\xc3\xa9";
            let len = 1 + self.below(12) as usize;
            let mut s: String = (0..len)
                .map(|_| char::from(CHARS[self.below(CHARS.len() as u64 - 2) as usize]))
                .collect();
            if self.below(8) == 0 {
                s.push('\u{e9}');
            }
            if s == "-" {
                s.push('x');
            }
            s
        }
        fn opt_name(&mut self) -> Option<String> {
            self.flip().then(|| self.name())
        }
        fn time(&mut self) -> Time {
            if self.below(5) == 0 {
                FOREVER
            } else {
                1 + self.below(u64::from(u32::MAX))
            }
        }
        fn state(&mut self) -> Selector {
            match self.below(6) {
                0 => Selector::Disabled,
                1 => Selector::Reserved,
                n => Selector::State(
                    [State::Free, State::Offered, State::Leased, State::Declined][n as usize - 2],
                ),
            }
        }
        fn holder(&mut self) -> Option<(String, String)> {
            self.flip().then(|| (self.name(), self.name()))
        }
        fn alloc(&mut self) -> Alloc {
            let want = match self.below(4) {
                0 => Want::Any,
                1 => Want::Exact(self.addr()),
                2 => {
                    let (a, b) = self.range();
                    Want::Range(a, b)
                }
                _ => Want::Prefer(self.addr()),
            };
            let exact = matches!(want, Want::Exact(_));
            Alloc {
                pool: self.name(),
                service: self.name(),
                client: self.name(),
                lease: self.time(),
                want,
                previous: self.flip(),
                hold: self.flip(),
                mine: exact && self.flip(),
                known: exact && self.flip(),
                keep: if self.flip() { 0 } else { self.below(1 << 40) },
                host: self.opt_name(),
                alias: self.opt_name(),
            }
        }
        fn request(&mut self) -> Request {
            match self.below(15) {
                0 => Request::Auth(self.name()),
                1 => Request::Ping,
                2 => Request::Alloc(self.alloc()),
                3 => Request::Unhold {
                    pool: self.name(),
                    service: self.name(),
                    client: self.name(),
                },
                4 => Request::Release {
                    addr: self.addr(),
                    by: self.holder(),
                },
                5 => Request::Decline {
                    addr: self.addr(),
                    secs: self.below(u64::from(u32::MAX) + 1),
                    by: self.holder(),
                },
                6 => Request::Disable(self.addr()),
                7 => Request::Enable(self.addr()),
                8 => Request::Query(Filter {
                    pool: self.opt_name(),
                    range: self.flip().then(|| self.range()),
                    service: self.opt_name(),
                    client: self.opt_name(),
                    state: self.flip().then(|| self.state()),
                    with_host: self.flip(),
                }),
                9 => Request::Stats(self.opt_name()),
                10 => Request::Reserve {
                    addr: self.addr(),
                    service: self.name(),
                    client: self.name(),
                },
                11 => Request::Unreserve(self.addr()),
                12 => Request::Pools,
                13 => Request::Checkpoint,
                _ => Request::Reload,
            }
        }
    }

    #[test]
    fn requests_read_back_as_written() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let r = g.request();
            let line = r.to_string();
            assert_eq!(parse(&line).as_ref(), Ok(&r), "{line}");
            assert_eq!(r.clone().checked(), Ok(r));
        }
    }

    /// Replies of every kind, each for a request it answers.
    impl Gen {
        fn allocated(&mut self) -> Allocated {
            Allocated {
                addr: Ipv4Addr::from(self.addr()),
                end: self.time(),
                new: self.flip().then(|| self.next()),
            }
        }
        fn lease_row(&mut self) -> LeaseRow {
            LeaseRow {
                addr: Ipv4Addr::from(self.addr()),
                pool: self.name(),
                state: match self.state() {
                    Selector::Disabled => Selector::Reserved,
                    s => s,
                },
                disabled: self.flip(),
                service: self.opt_name().unwrap_or_default(),
                client: self.opt_name().unwrap_or_default(),
                reserved: self.next(),
                end: self.time(),
                released: self.next(),
                host: self.flip().then(|| self.opt_name().unwrap_or_default()),
            }
        }
        fn stats(&mut self) -> Stats {
            Stats {
                name: self.name(),
                size: self.next(),
                leased: self.next(),
                offered: self.next(),
                free: self.next(),
                disabled: self.next(),
                declined: self.next(),
                reserved: self.next(),
            }
        }
        /// Words separated by single blanks, maybe none.
        fn text(&mut self) -> String {
            let n = self.below(4);
            (0..n).map(|_| self.name()).collect::<Vec<_>>().join(" ")
        }
        fn rows<T>(&mut self, mut row: impl FnMut(&mut Gen) -> T) -> Vec<T> {
            let n = self.below(4);
            (0..n).map(|_| row(self)).collect()
        }
        fn reply(&mut self, asked: &Request) -> Reply {
            if self.below(4) == 0 {
                let code = CODES[self.below(CODES.len() as u64) as usize].0;
                let text = self.text();
                return Reply::Err { code, text };
            }
            match asked {
                Request::Ping => Reply::Pong(self.text()),
                Request::Checkpoint => Reply::Checkpoint(self.text()),
                Request::Alloc(_) => Reply::Allocated(self.allocated()),
                Request::Reserve { .. } if self.flip() => Reply::Held(Held {
                    service: self.opt_name().unwrap_or_default(),
                    client: self.opt_name().unwrap_or_default(),
                    end: self.time(),
                }),
                Request::Pools => Reply::Pools(self.rows(|g| {
                    let ranges = g.rows(Gen::range);
                    (g.name(), ranges)
                })),
                Request::Query(_) => Reply::Leases(self.rows(Gen::lease_row)),
                Request::Stats(_) => Reply::Stats(self.rows(Gen::stats)),
                _ => Reply::Ok,
            }
        }
    }

    #[test]
    fn answers_read_back_as_written() {
        let mut g = Gen(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let asked = g.request();
            let reply = g.reply(&asked);
            let text = reply.to_string();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(Reply::parse(&asked, &lines), Ok(reply), "{asked}: {text}");
            // The reader stops at the last line and no sooner.
            let ends: Vec<bool> = lines.iter().map(|l| Reply::ends(&asked, l)).collect();
            assert_eq!(
                ends.iter().position(|&e| e),
                Some(lines.len() - 1),
                "{text}"
            );
        }
        for _ in 0..5_000 {
            let row = g.lease_row();
            assert_eq!(LeaseRow::parse(&row.to_string()), Ok(row));
            let stats = g.stats();
            assert_eq!(parse_stats(&stats_line(&stats)), Ok(stats));
        }
    }

    #[test]
    fn requests_render_as_the_manual_spells_them() {
        let a = Alloc {
            pool: "Dyn".into(),
            service: "dhcp".into(),
            client: "k".into(),
            lease: 1100,
            want: Want::Exact(0x0a00_0005),
            previous: false,
            hold: false,
            mine: true,
            known: false,
            keep: 1000,
            host: Some("pc.x".into()),
            alias: Some("a".into()),
        };
        assert_eq!(
            Request::Alloc(a.clone()).to_string(),
            "ALLOC Dyn dhcp k 1100 exact=10.0.0.5 mine keep=1000 alias=a host=pc.x"
        );
        let offer = Alloc {
            lease: 10,
            want: Want::Prefer(0x0a00_0005),
            previous: true,
            hold: true,
            mine: false,
            keep: 0,
            ..a
        };
        assert_eq!(
            Request::Alloc(offer).to_string(),
            "ALLOC Dyn dhcp k 10 previous prefer=10.0.0.5 alias=a hold host=pc.x"
        );
        let q = Filter {
            range: Some((1, 1)),
            with_host: true,
            ..Filter::default()
        };
        assert_eq!(
            Request::Query(q).to_string(),
            "QUERY address=0.0.0.1 hostname"
        );
    }

    #[test]
    fn names_that_would_split_the_line_are_refused() {
        for bad in ["P\nPOOLS", "two words", "", "tab\there", "bell\x07"] {
            let r = Request::Stats(Some(bad.into()));
            assert!(r.checked().is_err(), "{bad:?}");
        }
        assert!(Request::Stats(Some("P".into())).checked().is_ok());
    }

    #[test]
    fn rows_with_the_wrong_number_of_words_are_errors() {
        let row = "LEASE 10.0.0.5 P leased no dhcp c 1 1700000000 0";
        assert_eq!(LeaseRow::parse(row).unwrap().host, None);
        assert_eq!(
            LeaseRow::parse(&format!("{row} -"))
                .unwrap()
                .host
                .as_deref(),
            Some("")
        );
        for bad in [
            "LEASE 10.0.0.5 P leased no dhcp c 1 1700000000",
            "LEASE 10.0.0.5 P leased no dhcp c 1 1700000000 0 h extra",
            "LEASE 10.0.0.5 P gone no dhcp c 1 1700000000 0",
            "POOL P 1 2 3",
        ] {
            assert!(LeaseRow::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_stats("POOL P 1 2 3 4 5").is_err());
        assert_eq!(parse_stats("POOL P 1 2 3 4 5 6").unwrap().reserved, 0);
        assert!(parse_stats("POOL P 1 2 3 4 5 6 7 8").is_err());
        assert!(parse_stats("POOL P 1 2 3 4 5 6 7").is_ok());
        assert!(Reply::parse(&Request::Ping, &["ERR nosuchcode text"]).is_err());
    }
}
