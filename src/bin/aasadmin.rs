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
use indhcpd::aas::config::{self, DEFAULT_CONFIG};
use indhcpd::aas::mac;
use indhcpd::aas::proto::{self, Answer};

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
            let socket = config::load(&conf)
                .map(|c| c.socket)
                .unwrap_or_else(|_| PathBuf::from("/run/aasd.sock"));
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
                let line = format!("QUERY {}", rest.join(" "));
                match macs.as_slice() {
                    [] => self.leases(&line, |_| true),
                    [m] => {
                        let mac = mac(&m["mac=".len()..]);
                        self.leases(&line, |row| mac::in_key(&row[5], &mac))
                    }
                    _ => usage("mac= given twice"),
                }
            }
            ("query", [a]) => {
                let a = address(a);
                self.leases(&format!("QUERY address={a}"), |_| true)
            }
            ("release" | "disable" | "enable", [a]) if a.parse::<Ipv4Addr>().is_ok() => {
                let a = address(a);
                self.simple(
                    &format!("{} {a}", cmd.to_ascii_uppercase()),
                    &format!("{cmd}d {a}"),
                )
            }
            ("release" | "disable" | "enable", [target]) => self.many(cmd, target),
            ("stats", []) => self.stats("STATS"),
            ("stats", [p]) => self.stats(&format!("STATS {p}")),
            ("checkpoint", []) => self.simple("CHECKPOINT", "checkpoint written"),
            ("reload", []) => self.simple("RELOAD", "reloaded"),
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

    fn refused(&self, a: Answer) -> i32 {
        match a {
            Answer::Err { code, text } => eprintln!(
                "aasadmin: refused ({}): {}",
                code.as_str(),
                printable(&text)
            ),
            Answer::Ok(_) => eprintln!("aasadmin: unexpected answer"),
        }
        1
    }

    fn simple(&mut self, line: &str, done: &str) -> i32 {
        match self.link.ask(line) {
            Err(d) => self.unreachable(d),
            Ok(Answer::Ok(words)) => {
                if self.json {
                    println!("{{\"ok\": true, \"detail\": {}}}", quote(&words.join(" ")));
                } else if words.is_empty() {
                    println!("{done}");
                } else {
                    println!("{done}: {}", printable(&words.join(" ")));
                }
                0
            }
            Ok(a) => self.refused(a),
        }
    }

    fn rows(&mut self, line: &str) -> Result<Vec<Vec<String>>, i32> {
        let answer = self.link.ask_rows(line);
        self.words(answer)
    }

    /// The words of each row after the first (the row's kind), or the
    /// exit status of a failure, reported.
    fn words(
        &self,
        answer: Result<Result<Vec<String>, Answer>, Down>,
    ) -> Result<Vec<Vec<String>>, i32> {
        match answer {
            Err(d) => Err(self.unreachable(d)),
            Ok(Err(a)) => Err(self.refused(a)),
            Ok(Ok(rows)) => Ok(rows
                .iter()
                .map(|r| {
                    r.split_ascii_whitespace()
                        .skip(1)
                        .map(String::from)
                        .collect()
                })
                .collect()),
        }
    }

    /// `release`, `disable` or `enable` of a range `A-B` or a pool (also
    /// spelt `range=A-B`, `pool=P`, as in `list`): each address it concerns
    /// (held ones to release, disabled ones to enable, all to disable; of a
    /// range only those in a pool), at most MAX_ADDRESSES, asked in batches.
    fn many(&mut self, cmd: &str, target: &str) -> i32 {
        let word = cmd.to_ascii_uppercase();
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
                (pieces, format!("range={span}"))
            }
            None => {
                let name = target.strip_prefix("pool=").unwrap_or(target);
                match self.pool_ranges(name) {
                    Ok(r) => (r, format!("pool={name}")),
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
            let state = if cmd == "enable" {
                " state=disabled"
            } else {
                ""
            };
            let rows = match self.rows(&format!("QUERY {filter}{state}")) {
                Ok(r) => r,
                Err(code) => return code,
            };
            rows.iter()
                .filter(|r| {
                    r.len() == 9
                        && (cmd == "enable" || !["free", "reserved"].contains(&r[2].as_str()))
                })
                .filter_map(|r| r[0].parse::<Ipv4Addr>().ok().map(u32::from))
                .collect()
        };
        let mut done = 0;
        let mut failed = 0;
        for chunk in addrs.chunks(1000) {
            let lines: Vec<String> = chunk
                .iter()
                .map(|a| format!("{word} {}", Ipv4Addr::from(*a)))
                .collect();
            for (a, answer) in chunk.iter().zip(self.link.ask_many(&lines, &mut || {})) {
                match answer {
                    Ok(Answer::Ok(_)) => done += 1,
                    Ok(Answer::Err { code, text }) => {
                        eprintln!("aasadmin: {}: refused ({code}): {text}", Ipv4Addr::from(*a));
                        failed += 1;
                    }
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
        match self.link.ask("POOLS") {
            Err(d) => Err(self.unreachable(d)),
            Ok(Answer::Ok(words)) => proto::parse_pools(&words).ok_or_else(|| {
                eprintln!("aasadmin: in.aasd's answer to POOLS is garbage");
                1
            }),
            Ok(a) => Err(self.refused(a)),
        }
    }

    /// Rows: address pool state disabled service client reserved end
    /// released host (asked with `hostname`; an in.aasd from before host
    /// names refuses the word, is asked again without it, and no row has a
    /// name). Only those `keep` takes; for a lone address that no row names, what
    /// the pools say of it (free, never used, or in no pool).
    fn leases(&mut self, line: &str, keep: impl Fn(&[String]) -> bool) -> i32 {
        let mut answer = self.link.ask_rows(&format!("{line} hostname"));
        let old = matches!(&answer, Ok(Err(Answer::Err { code, text }))
            if *code == proto::Code::Syntax && text.contains("\"hostname\""));
        if old {
            answer = self.link.ask_rows(line);
        }
        let rows = match self.words(answer) {
            Ok(r) => r,
            Err(code) => return code,
        };
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|mut r| {
                if old && r.len() == 9 {
                    r.push("-".into());
                }
                r
            })
            .filter(|r| r.len() == 10 && keep(r))
            .collect();
        if let (true, Some(a)) = (rows.is_empty(), line.strip_prefix("QUERY address=")) {
            return self.unused(a);
        }
        if self.json {
            let items: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        "{{\"address\": {}, \"pool\": {}, \"state\": {}, \"disabled\": {}, \
                         \"service\": {}, \"client\": {}, \"host\": {}, \"reserved\": {}, \"end\": {}, \"released\": {}}}",
                        quote(&r[0]),
                        quote(&r[1]),
                        quote(&r[2]),
                        r[3] == "yes",
                        quote(dash(&r[4])),
                        quote(dash(&r[5])),
                        quote(dash(&r[9])),
                        r[6],
                        if r[7] == "infinite" { "null" } else { &r[7] },
                        r[8]
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
            let state = if r[3] == "yes" {
                format!("{},disabled", r[2])
            } else {
                r[2].clone()
            };
            let ends = match (r[2].as_str(), r[7].as_str()) {
                ("free", _) => "-".to_string(),
                (_, "infinite") => "never".to_string(),
                (_, t) => t
                    .parse()
                    .map(indhcpd::log::utc)
                    .unwrap_or_else(|_| t.to_string()),
            };
            table.push(
                [&r[0], &r[1], &state, &r[4], &r[5], &r[9], &ends]
                    .map(|cell| printable(cell))
                    .to_vec(),
            );
        }
        print_table(&table);
        println!("{} address(es)", rows.len());
        0
    }

    /// `query` of an address in.aasd has no entry for: free (never used)
    /// in its pool, or in no pool at all.
    fn unused(&mut self, a: &str) -> i32 {
        let addr = u32::from(address(a));
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
                quote(a),
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
    fn stats(&mut self, line: &str) -> i32 {
        let rows = match self.rows(line) {
            Ok(r) => r,
            Err(code) => return code,
        };
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .filter(|r| r.len() == 7 || r.len() == 8)
            .map(|mut r| {
                r.resize(8, "0".into());
                r
            })
            .collect();
        let heads = [
            "pool", "size", "leased", "offered", "free", "disabled", "declined", "reserved",
        ];
        if self.json {
            let items: Vec<String> = rows
                .iter()
                .map(|r| {
                    let mut f = vec![format!("\"pool\": {}", quote(&r[0]))];
                    for (h, v) in heads.iter().zip(r).skip(1) {
                        f.push(format!("\"{h}\": {v}"));
                    }
                    format!("{{{}}}", f.join(", "))
                })
                .collect();
            println!("[{}]", items.join(",\n "));
            return 0;
        }
        let mut table = vec![heads.map(|h| h.to_ascii_uppercase()).to_vec()];
        table.extend(
            rows.iter()
                .map(|r| r.iter().map(|cell| printable(cell)).collect()),
        );
        print_table(&table);
        0
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

fn dash(s: &str) -> &str {
    if s == "-" {
        ""
    } else {
        s
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
