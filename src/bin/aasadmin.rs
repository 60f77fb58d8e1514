//! aasadmin: look at and change what in.aasd holds. Tables for people,
//! `--json` for scripts.
//!
//! Exit status: 0 done; 1 in.aasd refused the request or cannot be reached;
//! 2 usage error.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::exit;
use std::time::Duration;

use indhcpd::aas::client::{Down, Link, Target};
use indhcpd::aas::lease::{Filter, Selector, State, Stats, FOREVER};
use indhcpd::aas::mac;
use indhcpd::aas::proto::{self, Code, LeaseRow, Reply, Request};
use indhcpd::aasd::config::{self, DEFAULT_CONFIG};

const USAGE: &str =
    "usage: aasadmin [--json] [-c aasd.conf] [-s socket | -a host:port [-p password]] command
commands:
  list [pool=P] [range=A-B] [service=S] [client=C] [mac=M] [state=free|offered|leased|declined|disabled|reserved]
  query ADDRESS
  release TARGET | disable TARGET | enable TARGET    (TARGET: ADDRESS, A-B or a pool)
  stats [POOL]
  checkpoint
  reload";

fn usage(why: &str) -> ! {
    eprintln!("aasadmin: {why}");
    eprintln!("{USAGE}");
    exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut spec = getopts::Options::new();
    spec.optflag("", "json", "JSON output");
    spec.optopt("c", "", "aasd.conf, for the socket path", "file");
    spec.optopt("s", "", "Unix socket of in.aasd", "path");
    spec.optopt("a", "", "TCP address of in.aasd", "host:port");
    spec.optopt(
        "p",
        "",
        "password for TCP (or $AASADMIN_PASSWORD)",
        "password",
    );
    spec.optflag("h", "help", "this text");
    let m = match spec.parse(&args) {
        Ok(m) => m,
        Err(e) => usage(&e.to_string()),
    };
    if m.opt_present("h") {
        println!("{USAGE}");
        exit(0);
    }
    let json = m.opt_present("json");
    let target = match (m.opt_str("a"), m.opt_str("s")) {
        (Some(_), Some(_)) => usage("-a and -s exclude each other"),
        (Some(address), None) => {
            let password = m
                .opt_str("p")
                .or_else(|| std::env::var("AASADMIN_PASSWORD").ok())
                .unwrap_or_else(|| usage("-a needs -p password or $AASADMIN_PASSWORD"));
            Target::Tcp { address, password }
        }
        (None, Some(s)) => Target::Unix(PathBuf::from(s)),
        (None, None) => {
            let conf = PathBuf::from(m.opt_str("c").unwrap_or_else(|| DEFAULT_CONFIG.into()));
            // The socket named in aasd.conf, else the default.
            let socket = config::load(&conf).map(|c| c.socket).unwrap_or_else(|_| {
                PathBuf::from(config::default_of("socket").unwrap_or_default())
            });
            Target::Unix(socket)
        }
    };
    let Some((cmd, rest)) = m.free.split_first() else {
        usage("no command given");
    };
    let link = Link::new(target, Duration::from_secs(10)).without_logging();
    let mut admin = Admin { link, json };
    exit(admin.run(cmd, rest));
}

struct Admin {
    link: Link,
    json: bool,
}

fn address(s: &str) -> Ipv4Addr {
    s.parse()
        .unwrap_or_else(|_| usage(&format!("\"{s}\" is not an IPv4 address")))
}

impl Admin {
    fn run(&mut self, cmd: &str, rest: &[String]) -> i32 {
        match (cmd, rest) {
            ("list", filters) => {
                for f in filters {
                    if !f.contains('=') || f.contains(char::is_whitespace) {
                        usage(&format!("\"{f}\": a filter is key=value"));
                    }
                }
                let (macs, rest): (Vec<&String>, Vec<&String>) =
                    filters.iter().partition(|f| f.starts_with("mac="));
                let rest: Vec<&str> = rest.iter().map(|s| s.as_str()).collect();
                let filter = match proto::parse_query(&rest).map(Request::Query) {
                    Ok(q) => match q.checked() {
                        Ok(Request::Query(f)) => f,
                        _ => usage("a filter value holds a blank"),
                    },
                    Err(e) => usage(&e.to_string()),
                };
                match macs.as_slice() {
                    [] => self.leases(filter, |_| true),
                    [m] => {
                        let mac = mac(&m["mac=".len()..]);
                        self.leases(filter, |row| mac::in_key(&row.client, &mac))
                    }
                    _ => usage("mac= given twice"),
                }
            }
            ("query", [a]) => {
                let a = u32::from(address(a));
                let filter = Filter {
                    range: Some((a, a)),
                    ..Filter::default()
                };
                self.leases(filter, |_| true)
            }
            ("release" | "disable" | "enable", [a]) if a.parse::<Ipv4Addr>().is_ok() => {
                let a = address(a);
                self.simple(&one(cmd, a), &format!("{cmd}d {a}"))
            }
            ("release" | "disable" | "enable", [target]) => self.many(cmd, target),
            ("stats", []) => self.stats(Request::Stats(None)),
            ("stats", [p]) => match Request::Stats(Some(p.clone())).checked() {
                Ok(r) => self.stats(r),
                Err(e) => usage(&format!("stats: not a pool name: {e}")),
            },
            ("checkpoint", []) => self.simple(&Request::Checkpoint, "checkpoint written"),
            ("reload", []) => self.simple(&Request::Reload, "reloaded"),
            _ => usage(&format!(
                "bad command or arguments: {cmd} {}",
                rest.join(" ")
            )),
        }
    }

    fn unreachable(&self, d: Down) -> i32 {
        let target = self.link.target();
        if d.0.contains("authentication refused") {
            eprintln!("aasadmin: in.aasd at {target} refused the password");
        } else if d.0.contains(": permission denied") {
            eprintln!(
                "aasadmin: {target}: permission denied: run aasadmin as root, as the \
                 socket's owner or as a member of its group"
            );
        } else {
            eprintln!(
                "aasadmin: in.aasd is not answering at {target}: {}",
                printable(&d.0)
            );
            eprintln!("aasadmin: is in.aasd running? (systemctl status in.aasd)");
        }
        1
    }

    fn refused(&self, a: Reply) -> i32 {
        match a {
            Reply::Err { code, text } => eprintln!(
                "aasadmin: refused ({}): {}",
                code.as_str(),
                printable(&text)
            ),
            _ => eprintln!("aasadmin: unexpected answer"),
        }
        1
    }

    /// The reply to `request`, or the exit status of a failure, reported:
    /// in.aasd unreachable, or an answer that does not read. A row that
    /// does not read is a failure too, named: in.aasd and aasadmin do not
    /// speak the same protocol.
    fn ask(&mut self, request: &Request) -> Result<Reply, i32> {
        match self.link.ask_read(request) {
            Err(d) => Err(self.unreachable(d)),
            Ok(Err(e)) => {
                let what = match request {
                    Request::Query(_) | Request::Stats(_) => "a row aasadmin cannot read",
                    _ => "what aasadmin cannot read",
                };
                eprintln!(
                    "aasadmin: in.aasd answered {what}: {}",
                    printable(&e.to_string())
                );
                Err(1)
            }
            Ok(Ok(reply)) => Ok(reply),
        }
    }

    fn simple(&mut self, request: &Request, done: &str) -> i32 {
        let detail = match self.ask(request) {
            Err(code) => return code,
            Ok(Reply::Ok) => String::new(),
            Ok(Reply::Checkpoint(path)) => path,
            Ok(a) => return self.refused(a),
        };
        if self.json {
            println!("{{\"ok\": true, \"detail\": {}}}", quote(&detail));
        } else if detail.is_empty() {
            println!("{done}");
        } else {
            println!("{done}: {}", printable(&detail));
        }
        0
    }

    /// The rows of a QUERY, or the exit status of a failure, reported.
    fn lease_rows(&mut self, filter: Filter) -> Result<Vec<LeaseRow>, i32> {
        match self.ask(&Request::Query(filter))? {
            Reply::Leases(rows) => Ok(rows),
            a => Err(self.refused(a)),
        }
    }

    /// `release`, `disable` or `enable` of a range `A-B` or a pool (also
    /// spelt `range=A-B`, `pool=P`, as in `list`): each address it concerns
    /// (held ones to release, disabled ones to enable, all to disable; of a
    /// range only those in a pool), at most MAX_ADDRESSES, asked in batches.
    fn many(&mut self, cmd: &str, target: &str) -> i32 {
        let span = target.strip_prefix("range=").unwrap_or(target);
        let (ranges, filter) = match span
            .split_once('-')
            .filter(|_| !target.starts_with("pool="))
        {
            Some((a, b)) => {
                let (a, b) = (u32::from(address(a)), u32::from(address(b)));
                if a > b {
                    usage(&format!("{target}: the range runs backwards"));
                }
                let pools = match self.pools() {
                    Ok(p) => p,
                    Err(code) => return code,
                };
                let pieces: Vec<(u32, u32)> = pools
                    .iter()
                    .flat_map(|(_, r)| r.iter())
                    .filter(|&&(lo, hi)| lo <= b && a <= hi)
                    .map(|&(lo, hi)| (lo.max(a), hi.min(b)))
                    .collect();
                if pieces.is_empty() {
                    eprintln!("aasadmin: {span}: in no pool of in.aasd");
                    return 1;
                }
                let filter = Filter {
                    range: Some((a, b)),
                    ..Filter::default()
                };
                (pieces, filter)
            }
            None => {
                let name = target.strip_prefix("pool=").unwrap_or(target);
                match self.pool_ranges(name) {
                    Ok(r) => (
                        r,
                        Filter {
                            pool: Some(name.to_string()),
                            ..Filter::default()
                        },
                    ),
                    Err(code) => return code,
                }
            }
        };
        let addrs: Vec<u32> = if cmd == "disable" {
            let size: u64 = ranges.iter().map(|&(a, b)| u64::from(b - a) + 1).sum();
            if size > MAX_ADDRESSES {
                eprintln!("aasadmin: {target} has {size} addresses: disable at most {MAX_ADDRESSES} at once");
                return 2;
            }
            ranges.iter().flat_map(|&(a, b)| a..=b).collect()
        } else {
            let filter = Filter {
                state: (cmd == "enable").then_some(Selector::Disabled),
                ..filter
            };
            let rows = match self.lease_rows(filter) {
                Ok(r) => r,
                Err(code) => return code,
            };
            let idle = [Selector::State(State::Free), Selector::Reserved];
            rows.iter()
                .filter(|r| cmd == "enable" || !idle.contains(&r.state))
                .map(|r| u32::from(r.addr))
                .collect()
        };
        let mut done = 0;
        let mut failed = 0;
        for chunk in addrs.chunks(1000) {
            let requests: Vec<Request> =
                chunk.iter().map(|a| one(cmd, Ipv4Addr::from(*a))).collect();
            for (a, answer) in chunk.iter().zip(self.link.ask_many(&requests, &mut || {})) {
                match answer {
                    Ok(Reply::Err { code, text }) => {
                        eprintln!("aasadmin: {}: refused ({code}): {text}", Ipv4Addr::from(*a));
                        failed += 1;
                    }
                    Ok(_) => done += 1,
                    Err(d) => return self.unreachable(d),
                }
            }
        }
        if self.json {
            println!(
                "{{\"ok\": {}, \"{cmd}d\": {done}, \"refused\": {failed}}}",
                failed == 0
            );
        } else {
            println!("{cmd}d {done} address(es) of {target}");
        }
        i32::from(failed > 0)
    }

    /// The ranges of the pool named, from POOLS.
    fn pool_ranges(&mut self, name: &str) -> Result<Vec<(u32, u32)>, i32> {
        let pools = self.pools()?;
        match pools.into_iter().find(|(n, _)| n == name) {
            Some((_, r)) => Ok(r),
            None => usage(&format!(
                "\"{name}\" is not an address, a range A-B or a pool of in.aasd"
            )),
        }
    }

    fn pools(&mut self) -> Result<Vec<proto::PoolRanges>, i32> {
        match self.ask(&Request::Pools)? {
            Reply::Pools(pools) => Ok(pools),
            a => Err(self.refused(a)),
        }
    }

    /// Rows: address pool state disabled service client reserved end
    /// released host (asked with `hostname`; an in.aasd from before host
    /// names refuses the word, is asked again without it, and no row has a
    /// name). Only those `keep` takes; for a lone address that no row names, what
    /// the pools say of it (free, never used, or in no pool).
    fn leases(&mut self, filter: Filter, keep: impl Fn(&LeaseRow) -> bool) -> i32 {
        let lone = match filter.range {
            Some((a, b))
                if a == b
                    && filter
                        == Filter {
                            range: filter.range,
                            ..Filter::default()
                        } =>
            {
                Some(Ipv4Addr::from(a))
            }
            _ => None,
        };
        let with_host = Filter {
            with_host: true,
            ..filter.clone()
        };
        let rows = match self.ask(&Request::Query(with_host)) {
            Ok(Reply::Err { code, text })
                if code == Code::Syntax && text.contains("\"hostname\"") =>
            {
                self.lease_rows(filter)
            }
            Ok(Reply::Leases(rows)) => Ok(rows),
            Ok(a) => Err(self.refused(a)),
            Err(code) => Err(code),
        };
        let rows = match rows {
            Ok(r) => r,
            Err(code) => return code,
        };
        let rows: Vec<LeaseRow> = rows.into_iter().filter(|r| keep(r)).collect();
        if let (true, Some(a)) = (rows.is_empty(), lone) {
            return self.unused(a);
        }
        if self.json {
            let items: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        "{{\"address\": {}, \"pool\": {}, \"state\": {}, \"disabled\": {}, \
                         \"service\": {}, \"client\": {}, \"host\": {}, \"reserved\": {}, \"end\": {}, \"released\": {}}}",
                        quote(&r.addr.to_string()),
                        quote(&r.pool),
                        quote(state_word(r.state)),
                        r.disabled,
                        quote(&r.service),
                        quote(&r.client),
                        quote(r.host.as_deref().unwrap_or("")),
                        r.reserved,
                        if r.end == FOREVER { "null".to_string() } else { r.end.to_string() },
                        r.released
                    )
                })
                .collect();
            println!("[{}]", items.join(",\n "));
            return 0;
        }
        let mut table = vec![[
            "ADDRESS",
            "POOL",
            "STATE",
            "SERVICE",
            "CLIENT",
            "HOST",
            "ENDS (UTC)",
        ]
        .map(String::from)
        .to_vec()];
        for r in &rows {
            let mut state = state_word(r.state).to_string();
            if r.disabled {
                state.push_str(",disabled");
            }
            let ends = match (r.state, r.end) {
                (Selector::State(State::Free), _) => "-".to_string(),
                (_, FOREVER) => "never".to_string(),
                (_, t) => indhcpd::log::utc(t),
            };
            let host = r.host.as_deref().unwrap_or("");
            table.push(
                [
                    &r.addr.to_string(),
                    &r.pool,
                    &state,
                    proto::word(&r.service),
                    proto::word(&r.client),
                    proto::word(host),
                    &ends,
                ]
                .map(printable)
                .to_vec(),
            );
        }
        print_table(&table);
        println!("{} address(es)", rows.len());
        0
    }

    /// `query` of an address in.aasd has no entry for: free (never used)
    /// in its pool, or in no pool at all.
    fn unused(&mut self, a: Ipv4Addr) -> i32 {
        let addr = u32::from(a);
        let pools = match self.pools() {
            Ok(p) => p,
            Err(code) => return code,
        };
        let pool = pools
            .iter()
            .find(|(_, r)| r.iter().any(|&(lo, hi)| (lo..=hi).contains(&addr)))
            .map(|(n, _)| n.as_str());
        match (pool, self.json) {
            (Some(p), true) => println!(
                "[{{\"address\": {}, \"pool\": {}, \"state\": \"free\", \"used\": false}}]",
                quote(&a.to_string()),
                quote(p)
            ),
            (Some(p), false) => println!("{a}: free, in pool {p}, never used"),
            (None, true) => println!("[]"),
            (None, false) => println!("{a}: in no pool of in.aasd"),
        }
        i32::from(pool.is_none())
    }

    /// Rows: name size leased offered free disabled declined reserved
    /// (an older in.aasd has no reserved column).
    fn stats(&mut self, request: Request) -> i32 {
        let rows = match self.ask(&request) {
            Ok(Reply::Stats(rows)) => rows,
            Ok(a) => return self.refused(a),
            Err(code) => return code,
        };
        let heads = [
            "pool", "size", "leased", "offered", "free", "disabled", "declined", "reserved",
        ];
        if self.json {
            let items: Vec<String> = rows
                .iter()
                .map(|r| {
                    let mut f = vec![format!("\"pool\": {}", quote(&r.name))];
                    for (h, v) in heads.iter().zip(counts(r)).skip(1) {
                        f.push(format!("\"{h}\": {v}"));
                    }
                    format!("{{{}}}", f.join(", "))
                })
                .collect();
            println!("[{}]", items.join(",\n "));
            return 0;
        }
        let mut table = vec![heads.map(|h| h.to_ascii_uppercase()).to_vec()];
        table.extend(rows.iter().map(|r| {
            let mut cells = vec![printable(&r.name)];
            cells.extend(counts(r).iter().skip(1).map(u64::to_string));
            cells
        }));
        print_table(&table);
        0
    }
}

/// A pool's counts in the order of the table's columns after the name
/// (a 0 first, in the name's place).
fn counts(s: &Stats) -> [u64; 8] {
    [
        0, s.size, s.leased, s.offered, s.free, s.disabled, s.declined, s.reserved,
    ]
}

/// `release`, `disable` or `enable` of one address.
fn one(cmd: &str, a: Ipv4Addr) -> Request {
    let a = u32::from(a);
    match cmd {
        "release" => Request::Release { addr: a, by: None },
        "disable" => Request::Disable(a),
        _ => Request::Enable(a),
    }
}

fn state_word(s: Selector) -> &'static str {
    match s {
        Selector::State(st) => st.name(),
        Selector::Disabled => "disabled",
        Selector::Reserved => "reserved",
    }
}

/// Most addresses one `disable` of a range or pool changes.
const MAX_ADDRESSES: u64 = 65536;

/// `mac=` value: six bytes, colons or dashes or none, any case.
fn mac(s: &str) -> Vec<u8> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect();
    match bytes {
        Some(b) if b.len() == 6 => b,
        _ => usage(&format!(
            "mac={s}: not a MAC address such as 02:00:00:00:00:01"
        )),
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || is_bidi(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Unicode's bidirectional formatting characters (UAX #9): they reorder
/// the text around them on a terminal, so a name could hide what follows.
fn is_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Text from in.aasd (requester-chosen names among it) as a terminal may
/// show it: control and bidirectional characters, and the backslash that
/// marks the escapes, written as `\xNN`, `\u{NNNN}` and `\\`.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_control() && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || is_bidi(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = width[i]))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_printed_with_control_and_bidi_characters_escaped() {
        assert_eq!(printable("plain-name:01"), "plain-name:01");
        assert_eq!(printable("a\x1b[2Jb\x07"), "a\\x1b[2Jb\\x07");
        assert_eq!(printable("x\u{202e}gpj.exe"), "x\\u{202e}gpj.exe");
        assert_eq!(
            printable("\u{2066}\u{200f}\u{9b}"),
            "\\u{2066}\\u{200f}\\x9b"
        );
        assert_eq!(printable("back\\slash"), "back\\\\slash");
        assert_eq!(printable("café"), "café");
        assert_eq!(quote("a\u{202e}\x7f\n"), "\"a\\u202e\\u007f\\u000a\"");
    }
}
