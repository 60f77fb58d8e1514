//! dhcpd.conf held against what in.aasd has: the pools its subnets name,
//! and the addresses its clients have pinned. in.dhcpd runs these checks at
//! start, at each reload and in `-C`, whenever in.aasd answers; a file that
//! reads well can still name a pool in.aasd does not have.

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

use super::{ClientKey, Config, Subnet};
use crate::aas::client;
use crate::aas::proto::{self, PoolRanges, Reply, Request};

/// The routers option (RFC 2132 §3.5).
const ROUTERS: u8 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Clients go unserved.
    Error,
    /// Works, but likely not as meant.
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{word}: {}", self.message)
    }
}

/// `[client ...]` as written in the file.
pub fn client_header(key: &ClientKey) -> String {
    match key {
        ClientKey::Hardware { htype, addr } => format!("[client {htype}:{}]", hex(addr, ":")),
        ClientKey::Id(id) => format!("[client id:{}]", hex(id, ":")),
        ClientKey::Opaque(name) => format!("[client opaque {name}]"),
        ClientKey::Circuit(id) => format!("[client circuit:{}]", hex(id, ":")),
        ClientKey::Remote(id) => format!("[client remote:{}]", hex(id, ":")),
    }
}

/// The name in.aasd holds a pinned address under: one word, `fixed/` and
/// the client's key.
/// Built by hand, not with format!: a file of thousands of clients names
/// them all at every start under inetd.
pub fn pinned_name(key: &ClientKey) -> String {
    let htype;
    let (kind, bytes, sep): (&str, &[u8], &str) = match key {
        ClientKey::Hardware { htype: t, addr } => {
            htype = t.to_string();
            (&htype, addr, ":")
        }
        ClientKey::Id(id) => ("id", id, ""),
        ClientKey::Opaque(name) => ("opaque", name.as_bytes(), ""),
        ClientKey::Circuit(id) => ("circuit", id, ""),
        ClientKey::Remote(id) => ("remote", id, ""),
    };
    let mut name = String::with_capacity(7 + kind.len() + 3 * bytes.len());
    name.push_str("fixed/");
    name.push_str(kind);
    name.push('/');
    push_hex(&mut name, bytes, sep);
    // All ASCII: 255 bytes are 255 characters.
    name.truncate(255);
    name
}

fn hex(bytes: &[u8], sep: &str) -> String {
    let mut out = String::with_capacity(bytes.len() * (2 + sep.len()));
    push_hex(&mut out, bytes, sep);
    out
}

/// Each byte as two lower-case hex digits, `sep` between them.
fn push_hex(out: &mut String, bytes: &[u8], sep: &str) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

/// Every pinned address with the name of its client.
pub fn pinned(cfg: &Config) -> Vec<(Ipv4Addr, String)> {
    cfg.clients
        .iter()
        .filter_map(|c| Some((c.ip_address?, pinned_name(&c.key))))
        .collect()
}

/// POOLS, to check the subnets' pools against, and RESERVE for each
/// pinned address: what in.aasd is told at start and after each reload.
pub fn greeting(pins: &[(Ipv4Addr, String)]) -> Vec<Request> {
    let mut requests = vec![Request::Pools];
    requests.extend(pins.iter().map(reserve));
    requests
}

fn reserve((addr, name): &(Ipv4Addr, String)) -> Request {
    Request::Reserve {
        addr: u32::from(*addr),
        service: crate::dhcp::SERVICE.to_string(),
        client: name.clone(),
    }
}

/// What in.aasd hears first on every connection, before any ALLOC: POOLS,
/// then RESERVE for each pinned address inside one of the pools it named.
/// in.aasd refuses to reserve an address outside its pools (and no ALLOC
/// can give such an address away), so a file of a thousand fixed clients
/// outside the pools costs one round trip, not a thousand requests, before
/// a cold start's first allocation. When POOLS is refused, all are sent.
pub struct Greeting(pub Arc<[(Ipv4Addr, String)]>);

impl client::Greeting for Greeting {
    fn first(&self) -> Vec<Request> {
        vec![Request::Pools]
    }

    fn then(&self, answers: &[(Request, Reply)]) -> Vec<Request> {
        let pools = answers.iter().find_map(|(_, a)| match a {
            Reply::Pools(p) => Some(p),
            _ => None,
        });
        let in_pools = |addr: &Ipv4Addr| {
            let a = u32::from(*addr);
            pools.is_none_or(|p| {
                p.iter()
                    .any(|(_, ranges)| ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&a)))
            })
        };
        self.0
            .iter()
            .filter(|(addr, _)| in_pools(addr))
            .map(reserve)
            .collect()
    }
}

/// What in.aasd's replies to the greeting say: the findings of
/// [`check`] for POOLS, and an error for each pinned address another
/// client holds (in.aasd does not renew it, but until the lease ends two
/// hosts may use the address).
pub fn review(cfg: &Config, answers: &[(Request, Reply)]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (request, answer) in answers {
        match (request, answer) {
            (Request::Pools, Reply::Pools(pools)) => out.extend(check(cfg, pools)),
            (Request::Pools, Reply::Err { text, .. }) => out.push(Finding {
                severity: Severity::Warning,
                message: format!("in.aasd does not answer POOLS ({text}): pools not checked"),
            }),
            (
                Request::Reserve {
                    addr, client: name, ..
                },
                Reply::Held(held),
            ) => {
                let addr = Ipv4Addr::from(*addr);
                let holder = proto::word(&held.client);
                let end = held.end;
                out.push(Finding {
                    severity: Severity::Error,
                    message: format!(
                        "ip_address {addr} ({name}) is leased to another client, {holder}, \
                         until {}: in.aasd will not renew it to that client, and until then \
                         two hosts may use {addr}",
                        crate::log::utc_text(end)
                    ),
                });
            }
            _ => {}
        }
    }
    out
}

fn subnet_name(s: &Subnet) -> String {
    format!("[subnet {}/{}]", s.network, s.prefix_len)
}

fn in_ranges(ranges: &[(u32, u32)], a: Ipv4Addr) -> bool {
    let a = u32::from(a);
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&a))
}

/// Problems of `cfg` given in.aasd's pools.
pub fn check(cfg: &Config, pools: &[PoolRanges]) -> Vec<Finding> {
    let mut out = Vec::new();
    let error = |message| Finding {
        severity: Severity::Error,
        message,
    };
    let warning = |message| Finding {
        severity: Severity::Warning,
        message,
    };
    for s in &cfg.subnets {
        let Some(name) = &s.pool else { continue };
        let Some((_, ranges)) = pools.iter().find(|(n, _)| n == name) else {
            let known: Vec<&str> = pools.iter().map(|(n, _)| n.as_str()).collect();
            out.push(error(format!(
                "{}: pool {name} is not a pool of in.aasd (it has: {}): dynamic clients of \
                 this subnet get no address; add [pool {name}] to aasd.conf or correct pool =",
                subnet_name(s),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
            continue;
        };
        let (first, last) = (u32::from(s.network), u32::from(s.broadcast()));
        let outside: u64 = ranges
            .iter()
            .map(|&(lo, hi)| {
                let inside = u64::from(hi.min(last)).saturating_sub(u64::from(lo.max(first)));
                let inside = if lo.max(first) <= hi.min(last) {
                    inside + 1
                } else {
                    0
                };
                u64::from(hi - lo) + 1 - inside
            })
            .sum();
        if outside > 0 {
            out.push(warning(format!(
                "{}: pool {name} has {outside} address(es) outside the subnet, which are \
                 never given out here",
                subnet_name(s)
            )));
        }
        if s.prefix_len < 31 {
            for (what, a) in [("network", s.network), ("broadcast", s.broadcast())] {
                if in_ranges(ranges, a) {
                    out.push(warning(format!(
                        "{}: pool {name} holds the subnet's {what} address {a} (in.dhcpd \
                         disables it in in.aasd when it is handed out)",
                        subnet_name(s)
                    )));
                }
            }
        }
        let routers = s
            .params
            .options
            .get(&ROUTERS)
            .or_else(|| cfg.global.options.get(&ROUTERS));
        for r in routers.into_iter().flat_map(|v| v.chunks_exact(4)) {
            let r = Ipv4Addr::new(r[0], r[1], r[2], r[3]);
            if in_ranges(ranges, r) {
                out.push(warning(format!(
                    "{}: router {r} is in pool {name}: take it out of the pool",
                    subnet_name(s)
                )));
            }
        }
    }
    for c in &cfg.clients {
        let Some(ip) = c.ip_address else { continue };
        if let Some((pool, _)) = pools.iter().find(|(_, r)| in_ranges(r, ip)) {
            out.push(warning(format!(
                "{}: ip_address {ip} is in pool {pool}: in.aasd holds it reserved for this \
                 client, but it is clearer outside every pool",
                client_header(&c.key)
            )));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    #[test]
    fn every_kind_of_finding() {
        let cfg = crate::config::parse(
            "[subnet 10.0.0.0/24]\npool = Near\nrouters = 10.0.0.100\n\
             [subnet 10.1.0.0/24]\npool = Gone\n\
             [client 02:00:00:00:00:01]\nip_address = 10.0.0.105\n\
             [client 02:00:00:00:00:02]\nip_address = 10.0.0.5\n",
            "t.conf",
        )
        .unwrap();
        let pools = vec![(
            "Near".to_string(),
            vec![
                (ip("10.0.0.0"), ip("10.0.0.0")),
                (ip("10.0.0.100"), ip("10.0.1.1")),
            ],
        )];
        let found: Vec<String> = check(&cfg, &pools).iter().map(|f| f.to_string()).collect();
        let expect = [
            "warning: [subnet 10.0.0.0/24]: pool Near has 2 address(es) outside the subnet",
            "warning: [subnet 10.0.0.0/24]: pool Near holds the subnet's network address 10.0.0.0",
            "warning: [subnet 10.0.0.0/24]: pool Near holds the subnet's broadcast address",
            "warning: [subnet 10.0.0.0/24]: router 10.0.0.100 is in pool Near",
            "error: [subnet 10.1.0.0/24]: pool Gone is not a pool of in.aasd (it has: Near)",
            "warning: [client 1:02:00:00:00:00:01]: ip_address 10.0.0.105 is in pool Near",
        ];
        assert_eq!(found.len(), expect.len(), "{found:#?}");
        for (f, e) in found.iter().zip(expect) {
            assert!(f.starts_with(e), "{f}\n  does not start with\n{e}");
        }
        let greeted = greeting(&pinned(&cfg));
        let answers: Vec<(Request, Reply)> = greeted
            .iter()
            .cloned()
            .zip([
                Reply::Pools(vec![("Near".into(), vec![])]),
                Reply::Held(proto::Held {
                    service: "dhcp".into(),
                    client: "someone".into(),
                    end: 86400,
                }),
                Reply::Err {
                    code: proto::Code::NotInPool,
                    text: "10.0.0.5 is in no pool".into(),
                },
            ])
            .collect();
        assert_eq!(
            greeted[1].to_string(),
            "RESERVE 10.0.0.105 dhcp fixed/1/02:00:00:00:00:01"
        );
        let found: Vec<String> = review(&cfg, &answers)
            .iter()
            .map(|f| f.to_string())
            .collect();
        assert!(
            found[0].starts_with("error: [subnet 10.1.0.0/24]: pool Gone"),
            "{found:?}"
        );
        assert_eq!(
            found.last().unwrap(),
            "error: ip_address 10.0.0.105 (fixed/1/02:00:00:00:00:01) is leased to another \
             client, someone, until 1970-01-02 00:00:00 UTC: in.aasd will not renew it to that \
             client, and until then two hosts may use 10.0.0.105"
        );
        assert_eq!(
            pinned(&cfg),
            vec![
                (
                    "10.0.0.105".parse().unwrap(),
                    "fixed/1/02:00:00:00:00:01".into()
                ),
                (
                    "10.0.0.5".parse().unwrap(),
                    "fixed/1/02:00:00:00:00:02".into()
                )
            ]
        );
    }

    #[test]
    fn the_greeting_reserves_the_pins_inside_the_pools_or_all_when_pools_is_refused() {
        use crate::aas::client::Greeting as _;
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let pins: Arc<[_]> = vec![
            (a("10.0.0.5"), "fixed/1/02:00:00:00:00:05".to_string()),
            (a("10.0.0.105"), "fixed/1/02:00:00:00:00:69".to_string()),
        ]
        .into();
        let g = Greeting(pins);
        assert_eq!(g.first(), [Request::Pools]);
        let near = vec![(
            "Near".to_string(),
            vec![(u32::from(a("10.0.0.100")), u32::from(a("10.0.0.110")))],
        )];
        let answered = [(Request::Pools, Reply::Pools(near))];
        let reserved: Vec<u32> = g
            .then(&answered)
            .iter()
            .map(|r| match r {
                Request::Reserve { addr, .. } => *addr,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(reserved, [u32::from(a("10.0.0.105"))]);
        let refused = [(
            Request::Pools,
            Reply::Err {
                code: proto::Code::Unknown,
                text: "unknown request".into(),
            },
        )];
        assert_eq!(g.then(&refused).len(), 2);
    }
}
