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
use indhcpd::aas::proto::Answer;

const USAGE: &str =
    "usage: aasadmin [--json] [-c aasd.conf] [-s socket | -a host:port [-p password]] command
commands:
  list [pool=P] [range=A-B] [mac=M] [service=S] [client=C] [state=free|offered|leased|declined|disabled]
  query ADDRESS
  release | disable | enable ADDRESS | A-B | pool=P
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
                self.leases(&format!("QUERY {}", filters.join(" ")))
                    .status()
            }
            ("query", [a]) => {
                let a = address(a);
                match self.leases(&format!("QUERY address={a}")) {
                    Shown::Rows(0) => {
                        eprintln!("aasadmin: {a} is in no pool");
                        1
                    }
                    Shown::Rows(_) => 0,
                    Shown::Failed(code) => code,
                }
            }
            ("release" | "disable" | "enable", [a]) => {
                let request = cmd.to_ascii_uppercase();
                match span(a) {
                    None => {
                        let a = address(a);
                        self.simple(&format!("{request} {a}"), &format!("{cmd}d {a}"))
                    }
                    Some(span) => self.many(&format!("{request} {span}"), cmd, &span),
                }
            }
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
                printable(&code),
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

    /// A RELEASE, DISABLE or ENABLE of a span, answered `OK count`.
    fn many(&mut self, line: &str, cmd: &str, span: &str) -> i32 {
        match self.link.ask(line) {
            Err(d) => self.unreachable(d),
            Ok(Answer::Ok(words)) => {
                let n = words.first().map_or("0", String::as_str);
                if self.json {
                    println!(
                        "{{\"ok\": true, \"changed\": {}}}",
                        n.parse::<u64>().unwrap_or(0)
                    );
                } else {
                    let what = match span.strip_prefix("pool=") {
                        Some(p) => format!("pool {p}"),
                        None => span.trim_start_matches("range=").to_string(),
                    };
                    println!(
                        "{cmd}d {} address(es) of {}",
                        printable(n),
                        printable(&what)
                    );
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

    /// `query` (a QUERY line without `hostname`) with rows ending in the
    /// host name: address pool state disabled service client reserved end
    /// released host. An in.aasd from before host names refuses the word;
    /// it is asked again without it, and no row has a name.
    fn leases(&mut self, query: &str) -> Shown {
        let mut answer = self.link.ask_rows(&format!("{query} hostname"));
        let old = matches!(&answer, Ok(Err(Answer::Err { code, text }))
            if code == "syntax" && text.contains("\"hostname\""));
        if old {
            answer = self.link.ask_rows(query);
        }
        let rows = match self.words(answer) {
            Ok(r) => r,
            Err(code) => return Shown::Failed(code),
        };
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|mut r| {
                if old && r.len() == 9 {
                    r.push("-".into());
                }
                r
            })
            .filter(|r| r.len() == 10)
            .collect();
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
            return Shown::Rows(rows.len());
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
                (_, t) => t.parse().map(utc).unwrap_or_else(|_| t.to_string()),
            };
            table.push(
                [&r[0], &r[1], &state, &r[4], &r[5], &r[9], &ends]
                    .map(|cell| printable(cell))
                    .to_vec(),
            );
        }
        print_table(&table);
        println!("{} address(es)", rows.len());
        Shown::Rows(rows.len())
    }

    /// Rows: name size leased offered free disabled declined.
    fn stats(&mut self, line: &str) -> i32 {
        let rows = match self.rows(line) {
            Ok(r) => r,
            Err(code) => return code,
        };
        let rows: Vec<Vec<String>> = rows.into_iter().filter(|r| r.len() == 7).collect();
        let heads = [
            "pool", "size", "leased", "offered", "free", "disabled", "declined",
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

/// What a listing came to.
enum Shown {
    Rows(usize),
    /// The exit status of a failure already reported.
    Failed(i32),
}

impl Shown {
    fn status(self) -> i32 {
        match self {
            Shown::Rows(_) => 0,
            Shown::Failed(code) => code,
        }
    }
}

/// `A-B`, `range=A-B` or `pool=P` as the protocol's word; `None` for a
/// single address.
fn span(arg: &str) -> Option<String> {
    if let Some(p) = arg.strip_prefix("pool=") {
        if p.is_empty() || p.contains(char::is_whitespace) {
            usage(&format!("\"{arg}\": pool=NAME"));
        }
        return Some(arg.to_string());
    }
    let (a, b) = arg.strip_prefix("range=").unwrap_or(arg).split_once('-')?;
    let (a, b) = (address(a), address(b));
    if a > b {
        usage(&format!("range {a}-{b} runs backwards"));
    }
    Some(format!("range={a}-{b}"))
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

/// Unix time as `YYYY-MM-DD HH:MM:SS` (UTC), without a date crate.
fn utc(t: u64) -> String {
    let days = (t / 86400) as i64;
    let secs = t % 86400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
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
