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

use std::net::Ipv4Addr;

use super::db::{Alloc, Filter, Selector, State, Time, Want, FOREVER};

/// Longest request line accepted; a longer one closes the connection.
pub const MAX_LINE: usize = 1024;

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
pub fn lease(s: &str) -> Result<Time, String> {
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
    if t == FOREVER {
        "infinite".into()
    } else {
        t.to_string()
    }
}

/// Names are words without blanks, at most 255 bytes (the log's limit).
fn name(s: &str) -> Result<String, String> {
    if s.len() > 255 {
        return Err("a name is longer than 255 bytes".into());
    }
    // Names come back in QUERY rows and log lines: text only.
    if s.chars().any(char::is_control) {
        return Err("a name has a control character".into());
    }
    Ok(s.to_string())
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
pub fn parse(line: &str) -> Result<Request, String> {
    // Errors quote the request; whatever bytes it held, the answer and the
    // log line stay one line of printable text.
    parse_words(line).map_err(|e| crate::log::escape(e.as_bytes()))
}

fn parse_words(line: &str) -> Result<Request, String> {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let Some((cmd, args)) = words.split_first() else {
        return Err("empty request".into());
    };
    let cmd = cmd.to_ascii_uppercase();
    match cmd.as_str() {
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
        "QUERY" => query(args),
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
    let mut a = Alloc {
        pool: name(args[0])?,
        service: name(args[1])?,
        client: name(args[2])?,
        lease: lease(args[3])?,
        want: Want::Any,
        previous: false,
        hold: false,
        mine: false,
        known: false,
        keep: 0,
        host: None,
        alias: None,
    };
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

fn query(args: &[&str]) -> Result<Request, String> {
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
    Ok(Request::Query(f))
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
pub fn pools_words(pools: &[super::db::Pool]) -> Vec<String> {
    pools
        .iter()
        .map(|p| {
            let ranges: Vec<String> = p
                .ranges
                .iter()
                .map(|&(a, b)| format!("{}-{}", Ipv4Addr::from(a), Ipv4Addr::from(b)))
                .collect();
            format!("{}={}", p.name, ranges.join(","))
        })
        .collect()
}

/// A pool as POOLS tells it: its name and inclusive ranges.
pub type PoolRanges = (String, Vec<(u32, u32)>);

/// A POOLS answer's words back to pools; `None` for a word that is not one.
pub fn parse_pools(words: &[String]) -> Option<Vec<PoolRanges>> {
    words
        .iter()
        .map(|w| {
            // Pool names may hold `=`; ranges never do.
            let (name, list) = w.rsplit_once('=')?;
            let ranges = list
                .split(',')
                .filter(|r| !r.is_empty()) // a pool with no address
                .map(|r| range(r).ok())
                .collect::<Option<Vec<_>>>()?;
            Some((name.to_string(), ranges))
        })
        .collect()
}

/// An answer line as a requester sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Ok(Vec<String>),
    Err { code: String, text: String },
}

/// Parse an answer line; `None` for anything that is not one (garbage
/// from the other end).
pub fn answer(line: &str) -> Option<Answer> {
    let mut words = line.split_ascii_whitespace();
    match words.next()? {
        "OK" => Some(Answer::Ok(words.map(str::to_string).collect())),
        "ERR" => {
            let code = words.next()?.to_string();
            Some(Answer::Err {
                code,
                text: words.collect::<Vec<_>>().join(" "),
            })
        }
        _ => None,
    }
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
            let e = parse(line).unwrap_err();
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
        let e = parse("ALLOC p s c 10 host=a\x07").unwrap_err();
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
            .contains("usage: RESERVE"));
        let pools = [
            super::super::db::Pool::new("A=1", vec![(1, 5), (9, 9)]),
            super::super::db::Pool::new("B", vec![(20, 30)]),
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
        assert_eq!(parse_pools(&["junk".into()]), None);
    }

    #[test]
    fn answers() {
        assert_eq!(
            answer("OK 10.0.0.5 1700000000"),
            Some(Answer::Ok(vec!["10.0.0.5".into(), "1700000000".into()]))
        );
        assert_eq!(
            answer("ERR taken 10.0.0.5 is held by another client"),
            Some(Answer::Err {
                code: "taken".into(),
                text: "10.0.0.5 is held by another client".into()
            })
        );
        assert_eq!(answer("HTTP/1.1 400"), None);
        assert_eq!(answer(""), None);
    }
}
