//! aasd.conf: keys at the top, then `[pool NAME]` sections, with the same
//! lexical rules as dhcpd.conf. Every error names file and line.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::journal::StoreConfig;
use crate::aas::lease::Pool;
use crate::config::source::{lex_with_top, Entry, Section};
use crate::config::{read_text, value, ConfigError};

pub const DEFAULT_CONFIG: &str = "/etc/aasd.conf";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AasConfig {
    pub store: StoreConfig,
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

/// The package's group for the socket, used when aasd.conf names none.
pub const DEFAULT_SOCKET_GROUP: &str = "aasd";

const TOP_KEYS: &str = "database_dir, max_db_size, checkpoint_dir, checkpoint_intvl, \
                        num_checkpoints, password, requester_password, socket, listen, sync, \
                        idle_timeout, auth_timeout, max_tcp_connections, user, socket_group, \
                        metrics_listen";

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

    fn value<T>(&mut self, e: &Entry, f: impl Fn(&str) -> Result<T, String>) -> Option<T> {
        match f(&e.value) {
            Ok(v) => Some(v),
            Err(m) => {
                self.err(e.line, format!("{}: {m}", e.key));
                None
            }
        }
    }

    fn absolute(&mut self, e: &Entry) -> Option<PathBuf> {
        let p = PathBuf::from(&e.value);
        if p.is_absolute() {
            Some(p)
        } else {
            self.err(
                e.line,
                format!("{}: \"{}\" is not an absolute path", e.key, e.value),
            );
            None
        }
    }
}

/// `1m`, `512k`, `100000`: bytes, with k = 1024 and m = 1048576.
fn size(v: &str) -> Result<u64, String> {
    let (num, mult) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1024),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 1024 * 1024),
        _ => (v, 1),
    };
    match num.parse::<u64>() {
        Ok(n) if n > 0 => n
            .checked_mul(mult)
            .ok_or_else(|| format!("\"{v}\" is too large")),
        _ => Err(format!(
            "\"{v}\" is not a size (a positive number, optionally with k or m)"
        )),
    }
}

/// `host:port` with a port number, or `host:service`.
fn host_port(v: &str) -> Result<(), String> {
    match v.rsplit_once(':') {
        Some((h, port))
            if !h.is_empty() && !port.is_empty() && !h.contains(char::is_whitespace) =>
        {
            if port.bytes().all(|b| b.is_ascii_digit()) && !port.parse::<u16>().is_ok_and(|n| n > 0)
            {
                Err(format!("\"{v}\": {port} is not a port (1-65535)"))
            } else {
                Ok(())
            }
        }
        _ => Err(format!("\"{v}\" is not host:port")),
    }
}

/// `A.B.C.D-E.F.G.H` or one address.
fn range(v: &str) -> Result<(u32, u32), String> {
    let (a, b) = match v.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (v, v),
    };
    let ip = |s: &str| {
        s.parse::<Ipv4Addr>()
            .map(u32::from)
            .map_err(|_| format!("\"{s}\" is not an IPv4 address"))
    };
    let (a, b) = (ip(a)?, ip(b)?);
    if a > b {
        return Err(format!("range {v} runs backwards"));
    }
    Ok((a, b))
}

pub fn parse(text: &str, file: &str) -> Result<AasConfig, Vec<ConfigError>> {
    let mut p = Parser {
        file,
        errors: Vec::new(),
    };
    let sections = lex_with_top(text, file, &mut p.errors);
    let mut cfg = AasConfig {
        store: StoreConfig {
            database_dir: PathBuf::from("/var/lib/aasd"),
            checkpoint_dir: PathBuf::new(),
            num_checkpoints: 3,
            max_db_size: 1024 * 1024,
            sync: true,
        },
        checkpoint_intvl: 3600,
        passwords: Vec::new(),
        requester_passwords: Vec::new(),
        socket: PathBuf::from("/run/aasd.sock"),
        listen: None,
        idle_timeout: 60,
        auth_timeout: 10,
        max_tcp_connections: 64,
        user: None,
        socket_group: None,
        pools: Vec::new(),
        metrics_listen: None,
    };
    let mut checkpoint_dir = None;
    // (range, pool name, line) for the overlap check.
    let mut owned: Vec<(u32, u32, String, usize)> = Vec::new();
    for s in &sections {
        if s.header.is_empty() {
            top(&mut p, s, &mut cfg, &mut checkpoint_dir);
        } else if let Some(name) = s.header.strip_prefix("pool ") {
            pool(&mut p, s, name.trim(), &mut cfg, &mut owned);
        } else {
            p.err(
                s.line,
                format!("unknown section [{}]: expected [pool NAME]", s.header),
            );
        }
    }
    cfg.store.checkpoint_dir =
        checkpoint_dir.unwrap_or_else(|| cfg.store.database_dir.join("checkpoints"));
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

fn top(p: &mut Parser, s: &Section, cfg: &mut AasConfig, ckpt: &mut Option<PathBuf>) {
    let mut seen: Vec<&str> = Vec::new();
    for e in &s.entries {
        if e.key != "password" && e.key != "requester_password" {
            if seen.contains(&e.key.as_str()) {
                p.err(e.line, format!("{} is given twice", e.key));
                continue;
            }
            seen.push(&e.key);
        }
        match e.key.as_str() {
            "database_dir" => {
                if let Some(d) = p.absolute(e) {
                    cfg.store.database_dir = d;
                }
            }
            "checkpoint_dir" => *ckpt = p.absolute(e).or(ckpt.take()),
            "max_db_size" => {
                if let Some(n) = p.value(e, size) {
                    cfg.store.max_db_size = n;
                }
            }
            "checkpoint_intvl" => {
                if let Some(n) = p.value(e, |v| value::uint(v, 366 * 86400)) {
                    if n == 0 {
                        p.err(e.line, "checkpoint_intvl: must be at least 1 second".into());
                    }
                    cfg.checkpoint_intvl = n.max(1);
                }
            }
            "num_checkpoints" => {
                if let Some(n) = p.value(e, |v| value::uint(v, 1000)) {
                    if n == 0 {
                        p.err(e.line, "num_checkpoints: must be at least 1".into());
                    }
                    cfg.store.num_checkpoints = n as usize;
                }
            }
            "password" | "requester_password" => {
                let (list, other) = if e.key == "password" {
                    (&mut cfg.passwords, &cfg.requester_passwords)
                } else {
                    (&mut cfg.requester_passwords, &cfg.passwords)
                };
                if e.value.is_empty() || e.value.contains(char::is_whitespace) {
                    p.err(
                        e.line,
                        format!("{}: expected one word without blanks", e.key),
                    );
                } else if other.contains(&e.value) {
                    p.err(
                        e.line,
                        format!(
                            "{}: the same word is an admin password and a requester \
                             password: it would be admin",
                            e.key
                        ),
                    );
                } else {
                    list.push(e.value.clone());
                }
            }
            "socket" => {
                if let Some(d) = p.absolute(e) {
                    cfg.socket = d;
                }
            }
            "listen" => {
                if e.value
                    .rsplit_once(':')
                    .is_some_and(|(h, port)| !h.is_empty() && !port.is_empty())
                {
                    cfg.listen = Some(e.value.clone());
                } else {
                    p.err(e.line, format!("listen: \"{}\" is not host:port", e.value));
                }
            }
            "metrics_listen" => match host_port(&e.value) {
                Ok(()) => cfg.metrics_listen = Some(e.value.clone()),
                Err(m) => p.err(e.line, format!("metrics_listen: {m}")),
            },
            "idle_timeout" | "auth_timeout" => {
                if let Some(n) = p.value(e, |v| value::uint(v, 86400)) {
                    if n == 0 {
                        p.err(e.line, format!("{}: must be at least 1 second", e.key));
                    } else if e.key == "idle_timeout" {
                        cfg.idle_timeout = n;
                    } else {
                        cfg.auth_timeout = n;
                    }
                }
            }
            "max_tcp_connections" => {
                if let Some(n) = p.value(e, |v| value::uint(v, 4096)) {
                    if n == 0 {
                        p.err(e.line, "max_tcp_connections: must be at least 1".into());
                    }
                    cfg.max_tcp_connections = n.max(1) as usize;
                }
            }
            "user" => {
                if e.value.is_empty() || e.value.contains(char::is_whitespace) {
                    p.err(e.line, "user: expected a user name".into());
                } else {
                    cfg.user = Some(e.value.clone());
                }
            }
            "socket_group" => {
                if e.value.is_empty() || e.value.contains(char::is_whitespace) {
                    p.err(e.line, "socket_group: expected a group name".into());
                } else {
                    cfg.socket_group = Some(e.value.clone());
                }
            }
            "sync" => match e.value.as_str() {
                "always" => cfg.store.sync = true,
                "never" => cfg.store.sync = false,
                v => p.err(e.line, format!("sync: \"{v}\" is not always or never")),
            },
            k => p.err(
                e.line,
                format!("unknown key \"{k}\": expected one of {TOP_KEYS} or a [pool NAME]"),
            ),
        }
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
        match e.key.as_str() {
            "max_declined" => match p.value(e, |v| value::uint(v, u64::from(u32::MAX))) {
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
                                Err(format!("\"{v}\" is not one address (use range =)"))
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
}
