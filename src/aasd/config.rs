//! aasd.conf: keys at the top, then `[pool NAME]` sections, with the same
//! lexical rules as dhcpd.conf. Every error names file and line.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::journal::StoreConfig;
use super::pg::conninfo::{self, ConninfoError};
use crate::aas::lease::Pool;
use crate::config::source::{lex_with_top, Entry, Section};
use crate::config::{read_text, value, ConfigError};

pub const DEFAULT_CONFIG: &str = "/etc/aasd.conf";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AasConfig {
    /// Where the leases are kept (`store`).
    pub store_kind: StoreKind,
    /// The transaction log's settings (`store = log`).
    pub store: StoreConfig,
    /// The libpq connection string (`postgresql`; `store = postgresql`).
    pub postgresql: Option<String>,
    /// Seconds between checkpoints.
    pub checkpoint_intvl: u64,
    /// Admin credentials for TCP: any request. `password`, as it always was.
    pub passwords: Vec<String>,
    /// Requester credentials for TCP (`requester_password`): allocate,
    /// renew, and release, decline or unhold for the client named.
    pub requester_passwords: Vec<String>,
    pub socket: PathBuf,
    /// `host:port` (or `host:service`) for TCP requesters.
    pub listen: Option<String>,
    /// Close a connection with no complete request for this many seconds.
    pub idle_timeout: u64,
    /// The same for a TCP connection that has not sent AUTH yet.
    pub auth_timeout: u64,
    /// TCP connections open at once; the Unix socket has its own cap.
    pub max_tcp_connections: usize,
    /// Run as this user once the sockets are bound.
    pub user: Option<String>,
    /// The group of the Unix socket: requesters (in.dhcpd) keep it after
    /// dropping root. `None`: the group `aasd` when it exists.
    pub socket_group: Option<String>,
    pub pools: Vec<Pool>,
    /// `host:port` of the HTTP listener for Prometheus (`GET /metrics`).
    pub metrics_listen: Option<String>,
}

/// Where in.aasd keeps its leases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// Its own transaction log and checkpoints (the default).
    Log,
    /// A PostgreSQL database (`postgresql`): several in.aasd may share it.
    Postgresql,
}

/// The package's group for the socket, used when aasd.conf names none.
pub const DEFAULT_SOCKET_GROUP: &str = "aasd";

/// Why a value of aasd.conf is wrong; shown after `key: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueError {
    NotAbsolute(String),
    NotSize(String),
    TooLarge(String),
    NotAddress(String),
    Backwards(String),
    NotOneAddress(String),
    /// A number out of its range (the words of config::value).
    Number(String),
    AtLeast(&'static str),
    NotOneWord,
    AdminAndRequester,
    NotHostPort(String),
    NotPort(String, String),
    NoUserName,
    NoGroupName,
    NotOneOf(String, &'static str),
    Conninfo(ConninfoError),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::NotAbsolute(v) => write!(f, "\"{v}\" is not an absolute path"),
            ValueError::NotSize(v) => write!(
                f,
                "\"{v}\" is not a size (a positive number, optionally with k or m)"
            ),
            ValueError::TooLarge(v) => write!(f, "\"{v}\" is too large"),
            ValueError::NotAddress(v) => write!(f, "\"{v}\" is not an IPv4 address"),
            ValueError::Backwards(v) => write!(f, "range {v} runs backwards"),
            ValueError::NotOneAddress(v) => write!(f, "\"{v}\" is not one address (use range =)"),
            ValueError::Number(m) => f.write_str(m),
            ValueError::AtLeast(what) => write!(f, "must be at least {what}"),
            ValueError::NotOneWord => f.write_str("expected one word without blanks"),
            ValueError::AdminAndRequester => f.write_str(
                "the same word is an admin password and a requester password: it would be admin",
            ),
            ValueError::NotHostPort(v) => write!(f, "\"{v}\" is not host:port"),
            ValueError::NotPort(v, port) => write!(f, "\"{v}\": {port} is not a port (1-65535)"),
            ValueError::NoUserName => f.write_str("expected a user name"),
            ValueError::NoGroupName => f.write_str("expected a group name"),
            ValueError::NotOneOf(v, words) => write!(f, "\"{v}\" is not {words}"),
            ValueError::Conninfo(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ValueError {}

/// A key of the top of aasd.conf: its name, its default (`None`: unset
/// or derived), whether it may be given more than once, and how its value
/// goes into the configuration. The defaults go in by the same setters.
struct Key {
    name: &'static str,
    default: Option<&'static str>,
    repeats: bool,
    set: fn(&str, &mut AasConfig) -> Result<(), ValueError>,
}

const fn key(
    name: &'static str,
    default: Option<&'static str>,
    set: fn(&str, &mut AasConfig) -> Result<(), ValueError>,
) -> Key {
    Key {
        name,
        default,
        repeats: false,
        set,
    }
}

/// Every top key, in the order error messages list them.
const KEYS: &[Key] = &[
    key("database_dir", Some("/var/lib/aasd"), |v, c| {
        c.store.database_dir = absolute(v)?;
        Ok(())
    }),
    key("max_db_size", Some("1m"), |v, c| {
        c.store.max_db_size = size(v)?;
        Ok(())
    }),
    // Default: database_dir/checkpoints, set once database_dir is known.
    key("checkpoint_dir", None, |v, c| {
        c.store.checkpoint_dir = absolute(v)?;
        Ok(())
    }),
    key("checkpoint_intvl", Some("3600"), |v, c| {
        c.checkpoint_intvl = at_least_one(v, 366 * 86400, "1 second")?;
        Ok(())
    }),
    key("num_checkpoints", Some("3"), |v, c| {
        c.store.num_checkpoints = at_least_one(v, 1000, "1")? as usize;
        Ok(())
    }),
    Key {
        repeats: true,
        ..key("password", None, |v, c| {
            c.passwords.push(password(v, &c.requester_passwords)?);
            Ok(())
        })
    },
    Key {
        repeats: true,
        ..key("requester_password", None, |v, c| {
            c.requester_passwords.push(password(v, &c.passwords)?);
            Ok(())
        })
    },
    key("socket", Some("/run/aasd.sock"), |v, c| {
        c.socket = absolute(v)?;
        Ok(())
    }),
    key("listen", None, |v, c| {
        if !v
            .rsplit_once(':')
            .is_some_and(|(h, port)| !h.is_empty() && !port.is_empty())
        {
            return Err(ValueError::NotHostPort(v.to_string()));
        }
        c.listen = Some(v.to_string());
        Ok(())
    }),
    key("sync", Some("always"), |v, c| {
        c.store.sync = match v {
            "always" => true,
            "never" => false,
            _ => return Err(ValueError::NotOneOf(v.into(), "always or never")),
        };
        Ok(())
    }),
    key("idle_timeout", Some("60"), |v, c| {
        c.idle_timeout = at_least_one(v, 86400, "1 second")?;
        Ok(())
    }),
    key("auth_timeout", Some("10"), |v, c| {
        c.auth_timeout = at_least_one(v, 86400, "1 second")?;
        Ok(())
    }),
    key("max_tcp_connections", Some("64"), |v, c| {
        c.max_tcp_connections = at_least_one(v, 4096, "1")? as usize;
        Ok(())
    }),
    key("user", None, |v, c| {
        c.user = Some(one_word(v).ok_or(ValueError::NoUserName)?);
        Ok(())
    }),
    key("socket_group", None, |v, c| {
        c.socket_group = Some(one_word(v).ok_or(ValueError::NoGroupName)?);
        Ok(())
    }),
    key("store", Some("log"), |v, c| {
        c.store_kind = match v {
            "log" => StoreKind::Log,
            "postgresql" => StoreKind::Postgresql,
            _ => return Err(ValueError::NotOneOf(v.into(), "log or postgresql")),
        };
        Ok(())
    }),
    key("metrics_listen", None, |v, c| {
        host_port(v)?;
        c.metrics_listen = Some(v.to_string());
        Ok(())
    }),
    key("postgresql", None, |v, c| {
        conninfo::parse(v).map_err(ValueError::Conninfo)?;
        c.postgresql = Some(v.to_string());
        Ok(())
    }),
];

/// The default of a top key, as aasd.conf(5) gives it.
pub fn default_of(name: &str) -> Option<&'static str> {
    KEYS.iter().find(|k| k.name == name).and_then(|k| k.default)
}

fn absolute(v: &str) -> Result<PathBuf, ValueError> {
    let p = PathBuf::from(v);
    if p.is_absolute() {
        Ok(p)
    } else {
        Err(ValueError::NotAbsolute(v.to_string()))
    }
}

fn at_least_one(v: &str, max: u64, what: &'static str) -> Result<u64, ValueError> {
    match value::uint(v, max).map_err(ValueError::Number)? {
        0 => Err(ValueError::AtLeast(what)),
        n => Ok(n),
    }
}

fn one_word(v: &str) -> Option<String> {
    (!v.is_empty() && !v.contains(char::is_whitespace)).then(|| v.to_string())
}

fn password(v: &str, other: &[String]) -> Result<String, ValueError> {
    let word = one_word(v).ok_or(ValueError::NotOneWord)?;
    if other.contains(&word) {
        return Err(ValueError::AdminAndRequester);
    }
    Ok(word)
}

pub fn load(path: &Path) -> Result<AasConfig, Vec<ConfigError>> {
    let text = read_text(path).map_err(|e| vec![e])?;
    parse(&text, &path.display().to_string())
}

struct Parser<'a> {
    file: &'a str,
    errors: Vec<ConfigError>,
}

impl Parser<'_> {
    fn err(&mut self, line: usize, message: String) {
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line,
            message,
        });
    }

    fn value<T>(&mut self, e: &Entry, f: impl Fn(&str) -> Result<T, ValueError>) -> Option<T> {
        match f(e.value) {
            Ok(v) => Some(v),
            Err(m) => {
                self.err(e.line, format!("{}: {m}", e.key));
                None
            }
        }
    }
}

/// `1m`, `512k`, `100000`: bytes, with k = 1024 and m = 1048576.
fn size(v: &str) -> Result<u64, ValueError> {
    let (num, mult) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1024),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 1024 * 1024),
        _ => (v, 1),
    };
    match num.parse::<u64>() {
        Ok(n) if n > 0 => n
            .checked_mul(mult)
            .ok_or_else(|| ValueError::TooLarge(v.to_string())),
        _ => Err(ValueError::NotSize(v.to_string())),
    }
}

/// `host:port` with a port number, or `host:service`.
fn host_port(v: &str) -> Result<(), ValueError> {
    match v.rsplit_once(':') {
        Some((h, port))
            if !h.is_empty() && !port.is_empty() && !h.contains(char::is_whitespace) =>
        {
            if port.bytes().all(|b| b.is_ascii_digit()) && !port.parse::<u16>().is_ok_and(|n| n > 0)
            {
                Err(ValueError::NotPort(v.to_string(), port.to_string()))
            } else {
                Ok(())
            }
        }
        _ => Err(ValueError::NotHostPort(v.to_string())),
    }
}

/// `A.B.C.D-E.F.G.H` or one address.
fn range(v: &str) -> Result<(u32, u32), ValueError> {
    let (a, b) = match v.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (v, v),
    };
    let ip = |s: &str| {
        s.parse::<Ipv4Addr>()
            .map(u32::from)
            .map_err(|_| ValueError::NotAddress(s.to_string()))
    };
    let (a, b) = (ip(a)?, ip(b)?);
    if a > b {
        return Err(ValueError::Backwards(v.to_string()));
    }
    Ok((a, b))
}

pub fn parse(text: &str, file: &str) -> Result<AasConfig, Vec<ConfigError>> {
    let mut p = Parser {
        file,
        errors: Vec::new(),
    };
    let sections = lex_with_top(text, file, &mut p.errors);
    let mut cfg = with_defaults();
    // (range, pool name, line) for the overlap check.
    let mut owned: Vec<(u32, u32, String, usize)> = Vec::new();
    for s in &sections {
        if s.header.is_empty() {
            top(&mut p, s, &mut cfg);
        } else if let Some(name) = s.header.strip_prefix("pool ") {
            pool(&mut p, s, name.trim(), &mut cfg, &mut owned);
        } else {
            p.err(
                s.line,
                format!("unknown section [{}]: expected [pool NAME]", s.header),
            );
        }
    }
    if cfg.store.checkpoint_dir.as_os_str().is_empty() {
        cfg.store.checkpoint_dir = cfg.store.database_dir.join("checkpoints");
    }
    owned.sort_unstable_by_key(|o| (o.0, o.1));
    for w in owned.windows(2) {
        if w[1].0 <= w[0].1 {
            p.err(
                w[1].3,
                format!(
                    "{} overlaps {} of pool {} (line {}): an address belongs to one pool",
                    show(w[1].0, w[1].1),
                    show(w[0].0, w[0].1),
                    w[0].2,
                    w[0].3
                ),
            );
        }
    }
    if p.errors.is_empty() {
        Ok(cfg)
    } else {
        p.errors.sort_by_key(|e| e.line);
        Err(p.errors)
    }
}

fn show(a: u32, b: u32) -> String {
    if a == b {
        Ipv4Addr::from(a).to_string()
    } else {
        format!("{}-{}", Ipv4Addr::from(a), Ipv4Addr::from(b))
    }
}

/// A configuration of the defaults of [`KEYS`], no pools.
fn with_defaults() -> AasConfig {
    let mut cfg = AasConfig {
        store_kind: StoreKind::Log,
        store: StoreConfig {
            database_dir: PathBuf::new(),
            checkpoint_dir: PathBuf::new(),
            num_checkpoints: 0,
            max_db_size: 0,
            sync: false,
        },
        postgresql: None,
        checkpoint_intvl: 0,
        passwords: Vec::new(),
        requester_passwords: Vec::new(),
        socket: PathBuf::new(),
        listen: None,
        idle_timeout: 0,
        auth_timeout: 0,
        max_tcp_connections: 0,
        user: None,
        socket_group: None,
        pools: Vec::new(),
        metrics_listen: None,
    };
    for k in KEYS {
        if let Some(d) = k.default {
            (k.set)(d, &mut cfg).expect("the defaults are valid");
        }
    }
    cfg
}

fn top(p: &mut Parser, s: &Section, cfg: &mut AasConfig) {
    let mut seen: Vec<&str> = Vec::new();
    for e in &s.entries {
        let Some(k) = KEYS.iter().find(|k| k.name == e.key) else {
            let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
            p.err(
                e.line,
                format!(
                    "unknown key \"{}\": expected one of {} or a [pool NAME]",
                    e.key,
                    names.join(", ")
                ),
            );
            continue;
        };
        if !k.repeats {
            if seen.contains(&k.name) {
                p.err(e.line, format!("{} is given twice", e.key));
                continue;
            }
            seen.push(k.name);
        }
        if let Err(m) = (k.set)(e.value, cfg) {
            p.err(e.line, format!("{}: {m}", e.key));
        }
    }
    let line_of = |key: &str| {
        s.entries
            .iter()
            .find(|e| e.key == key)
            .map_or(0, |e| e.line)
    };
    match (&cfg.store_kind, &cfg.postgresql) {
        (StoreKind::Postgresql, None) => p.err(
            line_of("store"),
            "store: postgresql needs postgresql = <libpq connection string>".into(),
        ),
        (StoreKind::Log, Some(_)) => p.err(
            line_of("postgresql"),
            "postgresql: given, but the store is the log: add store = postgresql".into(),
        ),
        _ => {}
    }
    if cfg.listen.is_some() && cfg.passwords.is_empty() && cfg.requester_passwords.is_empty() {
        let line = s
            .entries
            .iter()
            .find(|e| e.key == "listen")
            .map_or(0, |e| e.line);
        p.err(
            line,
            "listen: TCP requesters need at least one password".into(),
        );
    }
}

fn pool(
    p: &mut Parser,
    s: &Section,
    name: &str,
    cfg: &mut AasConfig,
    owned: &mut Vec<(u32, u32, String, usize)>,
) {
    if name.is_empty() || name.contains(char::is_whitespace) || name.len() > 255 {
        p.err(s.line, format!("[pool {name}]: a pool name is one word"));
        return;
    }
    if cfg.pools.iter().any(|q| q.name == name) {
        p.err(s.line, format!("[pool {name}] appears twice"));
        return;
    }
    let mut ranges = Vec::new();
    let mut max_declined = None;
    for e in &s.entries {
        match e.key {
            "max_declined" => match p.value(e, |v| {
                value::uint(v, u64::from(u32::MAX)).map_err(ValueError::Number)
            }) {
                Some(0) => p.err(e.line, "max_declined: must be at least 1".into()),
                Some(n) => max_declined = Some(n),
                None => {}
            },
            "type" => {
                if e.value != "inet" {
                    p.err(
                        e.line,
                        format!("type: \"{}\" is not supported: only inet (IPv4)", e.value),
                    );
                }
            }
            "range" | "address" => {
                let parsed = if e.key == "range" {
                    p.value(e, range)
                } else {
                    p.value(e, |v| {
                        range(v).and_then(|(a, b)| {
                            if a == b {
                                Ok((a, b))
                            } else {
                                Err(ValueError::NotOneAddress(v.to_string()))
                            }
                        })
                    })
                };
                if let Some((a, b)) = parsed {
                    ranges.push((a, b));
                    owned.push((a, b, name.to_string(), e.line));
                }
            }
            k => p.err(
                e.line,
                format!(
                    "unknown key \"{k}\" in [pool {name}]: expected type, range, address or max_declined"
                ),
            ),
        }
    }
    if ranges.is_empty() {
        p.err(s.line, format!("[pool {name}]: no range or address"));
    }
    let mut pool = Pool::new(name, ranges);
    if let Some(n) = max_declined {
        pool.max_declined = n;
    }
    cfg.pools.push(pool);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file() {
        let c = parse(
            "database_dir = /var/lib/aasd\nmax_db_size = 2m\ncheckpoint_intvl = 60\n\
             num_checkpoints = 5\npassword = one\npassword = two\nsocket = /run/x.sock\n\
             listen = 127.0.0.1:5310\nsync = never\n\n[pool Two]\ntype = inet\n\
             range = 192.168.2.100-192.168.2.200\naddress = 192.168.2.250\n[pool Big]\nrange = 10.0.0.0-10.255.255.255\n",
            "aasd.conf",
        )
        .unwrap();
        assert_eq!(c.store.max_db_size, 2 * 1024 * 1024);
        assert_eq!(
            c.store.checkpoint_dir,
            PathBuf::from("/var/lib/aasd/checkpoints")
        );
        assert!(!c.store.sync);
        assert_eq!(c.store.num_checkpoints, 5);
        assert_eq!(c.passwords, ["one", "two"]);
        assert_eq!(c.listen.as_deref(), Some("127.0.0.1:5310"));
        assert_eq!(c.pools.len(), 2);
        assert_eq!(c.pools[0].size(), 102);
        assert_eq!(c.pools[1].size(), 1 << 24);
        assert_eq!(c.pools[0].max_declined, 25, "a quarter of 102");
    }

    #[test]
    fn max_declined() {
        let c = parse(
            "[pool A]\naddress = 10.0.0.1\n[pool B]\nrange = 10.0.1.0-10.0.1.255\nmax_declined = 3\n",
            "f",
        )
        .unwrap();
        assert_eq!(c.pools[0].max_declined, 1, "at least 1");
        assert_eq!(c.pools[1].max_declined, 3);
        let e = parse("[pool A]\naddress = 10.0.0.1\nmax_declined = 0\n", "f").unwrap_err();
        assert!(e[0]
            .to_string()
            .contains("max_declined: must be at least 1"));
    }

    #[test]
    fn defaults() {
        let c = parse("[pool P]\naddress = 10.0.0.1\n", "f").unwrap();
        assert!(c.store.sync);
        assert_eq!(c.store.max_db_size, 1 << 20);
        assert_eq!(c.checkpoint_intvl, 3600);
        assert_eq!(c.socket, PathBuf::from("/run/aasd.sock"));
        assert_eq!((c.idle_timeout, c.auth_timeout), (60, 10));
        assert_eq!(c.max_tcp_connections, 64);
        assert_eq!(c.user, None);
        let c = parse(
            "idle_timeout = 5\nauth_timeout = 2\nmax_tcp_connections = 3\nuser = aasd\n\
             [pool P]\naddress = 10.0.0.1\n",
            "f",
        )
        .unwrap();
        assert_eq!((c.idle_timeout, c.auth_timeout), (5, 2));
        assert_eq!(c.max_tcp_connections, 3);
        assert_eq!(c.user.as_deref(), Some("aasd"));
        let e = parse("idle_timeout = 0\n[pool P]\naddress = 10.0.0.1\n", "f").unwrap_err();
        assert!(e[0]
            .to_string()
            .contains("idle_timeout: must be at least 1"));
    }

    #[test]
    fn requester_passwords_apart_from_admin_ones() {
        let c = parse(
            "listen = 127.0.0.1:5310\nrequester_password = dhcp-hosts\n\
             requester_password = ppp\n[pool P]\naddress = 10.0.0.1\n",
            "f",
        )
        .unwrap();
        assert!(c.passwords.is_empty(), "no admin over TCP");
        assert_eq!(c.requester_passwords, ["dhcp-hosts", "ppp"]);
        let e = parse(
            "password = same\nrequester_password = same\nrequester_password = a b\n\
             [pool P]\naddress = 10.0.0.1\n",
            "f",
        )
        .unwrap_err();
        let text: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "f:2: requester_password: the same word is an admin password and a \
                 requester password: it would be admin",
                "f:3: requester_password: expected one word without blanks"
            ]
        );
    }

    #[test]
    fn metrics_listen_is_off_unless_given() {
        let c = parse("[pool P]\naddress = 10.0.0.1\n", "f").unwrap();
        assert_eq!(c.metrics_listen, None);
        let c = parse(
            "metrics_listen = 127.0.0.1:9310\n[pool P]\naddress = 10.0.0.1\n",
            "f",
        );
        assert_eq!(c.unwrap().metrics_listen.as_deref(), Some("127.0.0.1:9310"));
        let e = parse(
            "metrics_listen = 9310\n[pool P]\naddress = 10.0.0.1\nx = 1\n",
            "aasd.conf",
        )
        .unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "aasd.conf:1: metrics_listen: \"9310\" is not host:port"
        );
        let e = parse("metrics_listen = 0.0.0.0:70000\n", "aasd.conf").unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "aasd.conf:1: metrics_listen: \"0.0.0.0:70000\": 70000 is not a port (1-65535)"
        );
    }

    #[test]
    fn every_error_with_its_line() {
        let e = parse(
            "database_dir = relative\nmax_db_size = lots\nsync = sometimes\ncolour = red\n\
             listen = 0.0.0.0:5310\n[pool A]\ntype = inet6\nrange = 10.0.0.10-10.0.0.1\n\
             range = 10.0.0.1-10.0.0.20\n[pool B]\naddress = 10.0.0.15\n[pool C]\n[thing]\n",
            "aasd.conf",
        )
        .unwrap_err();
        let text: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        let expect = [
            "aasd.conf:1: database_dir: \"relative\" is not an absolute path",
            "aasd.conf:2: max_db_size: \"lots\" is not a size",
            "aasd.conf:3: sync: \"sometimes\" is not always or never",
            "aasd.conf:4: unknown key \"colour\"",
            "aasd.conf:5: listen: TCP requesters need at least one password",
            "aasd.conf:7: type: \"inet6\" is not supported",
            "aasd.conf:8: range: range 10.0.0.10-10.0.0.1 runs backwards",
            "aasd.conf:11: 10.0.0.15 overlaps 10.0.0.1-10.0.0.20 of pool A (line 9)",
            "aasd.conf:12: [pool C]: no range or address",
            "aasd.conf:13: unknown section [thing]",
        ];
        assert_eq!(text.len(), expect.len(), "{text:#?}");
        for (t, want) in text.iter().zip(expect) {
            assert!(t.starts_with(want), "{t}\n  wanted {want}");
        }
    }

    #[test]
    fn store_keys() {
        let c = parse("[pool P]\naddress = 10.0.0.1\n", "f").unwrap();
        assert_eq!((c.store_kind, c.postgresql), (StoreKind::Log, None));
        let c = parse(
            "store = postgresql\npostgresql = host=/run/postgresql,db2 dbname=leases \
             target_session_attrs=read-write\n[pool P]\naddress = 10.0.0.1\n",
            "f",
        )
        .unwrap();
        assert_eq!(c.store_kind, StoreKind::Postgresql);
        assert!(c.postgresql.unwrap().contains("read-write"));
        let e = parse(
            "store = sql\npostgresql = host=db password=secret\n[pool P]\naddress = 10.0.0.1\n",
            "aasd.conf",
        )
        .unwrap_err();
        let text: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "aasd.conf:1: store: \"sql\" is not log or postgresql",
                "aasd.conf:2: postgresql: a password in the connection string is refused: put \
                 it in a passfile (passfile=FILE in the string, PGPASSFILE, or ~/.pgpass)"
            ]
        );
        let e = parse("store = postgresql\n[pool P]\naddress = 10.0.0.1\n", "f").unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "f:1: store: postgresql needs postgresql = <libpq connection string>"
        );
        let e = parse(
            "\npostgresql = host=db\n[pool P]\naddress = 10.0.0.1\n",
            "f",
        )
        .unwrap_err();
        assert!(e[0]
            .to_string()
            .starts_with("f:2: postgresql: given, but the store is the log"));
        let e = parse(
            "postgresql = host=db nonsense=1\n[pool P]\naddress = 10.0.0.1\n",
            "f",
        )
        .unwrap_err();
        assert!(
            e[0].to_string()
                .starts_with("f:1: postgresql: not a libpq connection string: "),
            "{}",
            e[0]
        );
    }

    #[test]
    fn every_default_is_valid_and_listed_once() {
        let c = with_defaults();
        assert_eq!(c.store.database_dir, PathBuf::from("/var/lib/aasd"));
        assert_eq!(c.store.num_checkpoints, 3);
        assert_eq!(default_of("socket"), Some("/run/aasd.sock"));
        let mut names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KEYS.len());
    }
}
