//! Limits on new clients, so that a starvation flood (DORAs from random
//! MACs) cannot take a whole pool: per subnet, per relay (giaddr) and per
//! relay circuit (option 82 sub-option 1), a number of new clients a
//! minute and a number of leases held. dhcpd.conf(5) names the keys; all
//! are off by default.
//!
//! Only a client that held no address is limited, never one renewing or
//! asking again for what it holds: in.aasd's ALLOC answer says so (`new N`,
//! N being the pool's addresses held now, this one included). An
//! allocation over a limit is given back at once (UNHOLD, or RELEASE of a
//! lease) and the client gets no answer.
//!
//! Where the counts come from: the leases of a subnet are in.aasd's count
//! of its pool, exact across in.dhcpd restarts (inetd starts a new process
//! after each idle exit) and shared by every server of the pool. Rates,
//! and the leases of a relay or circuit, which in.aasd does not record,
//! are kept by this process: a rate spans one minute, less than the idle
//! exit (15 minutes by default), so a new process loses nothing of it;
//! leases per relay or circuit are relearned from the renewals that pass
//! through, so after a restart they count only clients that have renewed
//! since, and the subnet's limit is the bound that always holds.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::aas::client::Down;
use crate::aas::pipeline::Pipeline;
use crate::aas::proto::{Reply, Request};
use crate::config::{Config, Subnet};
use crate::dhcp::packet::{self, code};

/// The limits of one scope; `None` = no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bound {
    /// New clients admitted in any 60 seconds.
    pub per_minute: Option<u32>,
    /// Addresses held (offered or leased) at once.
    pub leases: Option<u32>,
}

impl Bound {
    fn any(&self) -> bool {
        self.per_minute.is_some() || self.leases.is_some()
    }
}

/// A subnet's limits: for the whole subnet, for each relay, for each
/// circuit of a relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub subnet: Bound,
    pub relay: Bound,
    pub circuit: Bound,
}

impl Limits {
    pub fn any(&self) -> bool {
        self.subnet.any() || self.relay.any() || self.circuit.any()
    }
}

/// Where a request came from, as far as limits go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// giaddr of a relayed request.
    relay: Option<Ipv4Addr>,
    /// The relay's circuit id (RFC 3046 §2.1.1).
    circuit: Option<Vec<u8>>,
}

impl Origin {
    pub fn of(req: &packet::Request) -> Origin {
        let relay = Some(req.giaddr).filter(|a| !a.is_unspecified());
        Origin {
            relay,
            circuit: req
                .agent_suboption(code::AGENT_CIRCUIT_ID)
                .map(<[u8]>::to_vec),
        }
    }
}

/// What one count is kept for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Group {
    Subnet(Ipv4Addr),
    Relay(Ipv4Addr, Ipv4Addr),
    Circuit(Ipv4Addr, Ipv4Addr, Vec<u8>),
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Group::Subnet(n) => write!(f, "subnet {n}"),
            Group::Relay(n, r) => write!(f, "relay {r} on subnet {n}"),
            Group::Circuit(n, r, c) => write!(
                f,
                "circuit {} of relay {r} on subnet {n}",
                crate::log::escape(c)
            ),
        }
    }
}

#[derive(Default)]
struct Tally {
    /// When the new clients of the last minute were admitted.
    admitted: VecDeque<Instant>,
    /// Clients holding an address, with the unix time it ends (relays and
    /// circuits only: a subnet's count is in.aasd's).
    holders: HashMap<String, u64>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl Tally {
    /// Forget admissions more than a minute old and leases that have ended.
    fn age(&mut self, now: Instant, unix_now: u64) {
        while self.admitted.front().is_some_and(|at| now - *at >= MINUTE) {
            self.admitted.pop_front();
        }
        self.holders.retain(|_, until| *until > unix_now);
    }
}

/// At most this many relays and circuits counted; past it, empty counts
/// are dropped, and a new client from yet another one is refused (a
/// relay making up a circuit per request must not grow memory).
const MAX_GROUPS: usize = 4096;

/// The counts of this process.
#[derive(Default)]
pub struct Gate {
    tallies: HashMap<Group, Tally>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Gate {
    /// Decide on an allocation in.aasd made: `in_use` is `Some` for a new
    /// client (the pool's addresses held now), `None` for one that held an
    /// address, which is only noted. `Err` says which limit refuses it.
    fn judge(
        &mut self,
        subnet: &Subnet,
        origin: &Origin,
        client: &str,
        end: u64,
        in_use: Option<u64>,
        now: Instant,
    ) -> Result<(), String> {
        let groups = groups(subnet, origin);
        let (today, held_until) = (unix_now(), end);
        let Some(in_use) = in_use else {
            for (g, b) in &groups {
                if b.leases.is_some() && !matches!(g, Group::Subnet(_)) {
                    if let Some(t) = self.tallies.get_mut(g) {
                        t.holders.insert(client.to_string(), held_until);
                    } else if self.tallies.len() < MAX_GROUPS {
                        let t = self.tallies.entry(g.clone()).or_default();
                        t.holders.insert(client.to_string(), held_until);
                    }
                }
            }
            return Ok(());
        };
        if self.tallies.len() >= MAX_GROUPS {
            self.tallies.retain(|_, t| {
                t.age(now, today);
                !t.admitted.is_empty() || !t.holders.is_empty()
            });
        }
        for (g, b) in &groups {
            if !self.tallies.contains_key(g) && self.tallies.len() >= MAX_GROUPS {
                return Err(format!("{MAX_GROUPS} relays and circuits counted already"));
            }
            let t = self.tallies.entry(g.clone()).or_default();
            t.age(now, today);
            t.holders.remove(client);
            if let Some(max) = b.per_minute {
                if t.admitted.len() >= max as usize {
                    return Err(format!("{g}: {max} new clients in the last minute"));
                }
            }
            let held = match g {
                Group::Subnet(_) => in_use.saturating_sub(1),
                _ => t.holders.len() as u64,
            };
            if let Some(max) = b.leases {
                if held >= u64::from(max) {
                    return Err(format!("{g}: {max} leases held"));
                }
            }
        }
        for (g, b) in &groups {
            let t = self.tallies.get_mut(g).expect("made above");
            if b.per_minute.is_some() {
                t.admitted.push_back(now);
            }
            if b.leases.is_some() && !matches!(g, Group::Subnet(_)) {
                t.holders.insert(client.to_string(), held_until);
            }
        }
        Ok(())
    }

    /// The client gave its address back (RELEASE, DECLINE, or another
    /// server chosen).
    fn forget(&mut self, subnet: &Subnet, origin: &Origin, client: &str) {
        for (g, _) in groups(subnet, origin) {
            if let Some(t) = self.tallies.get_mut(&g) {
                t.holders.remove(client);
            }
        }
    }
}

/// The groups a request counts in, with their limits (only those set).
fn groups(subnet: &Subnet, origin: &Origin) -> Vec<(Group, Bound)> {
    let net = subnet.network;
    let l = &subnet.limits;
    let mut v = vec![(Group::Subnet(net), l.subnet)];
    if let Some(r) = origin.relay {
        v.push((Group::Relay(net, r), l.relay));
        if let Some(c) = &origin.circuit {
            v.push((Group::Circuit(net, r, c.clone()), l.circuit));
        }
    }
    v.retain(|(_, b)| b.any());
    v
}

/// One handler's AAS requests, with the limits applied to their answers.
pub struct Admission<'a> {
    pub gate: &'a RefCell<Gate>,
    pub config: &'a Config,
    pub origin: Origin,
}

impl Admission<'_> {
    /// The subnet of an AAS client key (`network/...`), if it has limits.
    fn limited_subnet(&self, client: &str) -> Option<&Subnet> {
        let net: Ipv4Addr = client.split('/').next()?.parse().ok()?;
        self.config
            .subnets
            .iter()
            .find(|s| s.network == net && s.limits.any())
    }

    pub async fn ask(&self, queue: &Pipeline, request: Request) -> Result<Reply, Down> {
        let answer = queue.enqueue(request.clone()).await?;
        let alloc = match request {
            Request::Alloc(a) => a,
            Request::Release {
                by: Some((_, client)),
                ..
            }
            | Request::Decline {
                by: Some((_, client)),
                ..
            }
            | Request::Unhold { client, .. } => {
                if let Some(subnet) = self.limited_subnet(&client) {
                    self.gate.borrow_mut().forget(subnet, &self.origin, &client);
                }
                return Ok(answer);
            }
            _ => return Ok(answer),
        };
        let (Some(subnet), Reply::Allocated(allocated)) =
            (self.limited_subnet(&alloc.client), &answer)
        else {
            return Ok(answer);
        };
        let verdict = self.gate.borrow_mut().judge(
            subnet,
            &self.origin,
            &alloc.client,
            allocated.end,
            allocated.new,
            Instant::now(),
        );
        let Err(why) = verdict else {
            return Ok(answer);
        };
        let undo = if alloc.hold {
            Request::Unhold {
                pool: alloc.pool,
                service: alloc.service,
                client: alloc.client.clone(),
            }
        } else {
            Request::Release {
                addr: u32::from(allocated.addr),
                by: Some((alloc.service, alloc.client.clone())),
            }
        };
        let _ = queue.enqueue(undo).await;
        crate::log::limited(
            crate::log::Level::Info,
            "new client limit",
            10,
            format_args!("new client {} refused: {why}", alloc.client),
        );
        Err(Down(why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(limits: Limits) -> Subnet {
        Subnet {
            network: Ipv4Addr::new(10, 0, 0, 0),
            prefix_len: 24,
            pool: Some("P".into()),
            comment: None,
            authoritative: None,
            shared_network: None,
            interface: None,
            params: Default::default(),
            limits,
        }
    }

    fn via(circuit: &str) -> Origin {
        Origin {
            relay: Some(Ipv4Addr::new(10, 0, 0, 2)),
            circuit: Some(circuit.as_bytes().to_vec()),
        }
    }

    const FOREVER: u64 = u64::MAX;

    #[test]
    fn the_keys_are_read_per_subnet_and_a_bad_value_names_its_line() {
        let text = "[subnet 10.0.0.0/24]\npool = P\nnew_clients_per_minute_per_circuit = 5\n\
                    max_leases = 100\n";
        let cfg = crate::config::parse(text, "f").unwrap();
        let want = Limits {
            subnet: Bound {
                per_minute: None,
                leases: Some(100),
            },
            circuit: Bound {
                per_minute: Some(5),
                leases: None,
            },
            ..Limits::default()
        };
        assert_eq!(cfg.subnets[0].limits, want);
        let bad = "[subnet 10.0.0.0/24]\nmax_leases_per_relay = many\n";
        let errors = crate::config::parse(bad, "f").unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "f:2: max_leases_per_relay: \"many\" is not a whole number from 0 to 1000000"
        );
    }

    #[test]
    fn a_rate_per_circuit_admits_so_many_a_minute_and_spares_other_circuits() {
        let s = subnet(Limits {
            circuit: Bound {
                per_minute: Some(2),
                leases: None,
            },
            ..Limits::default()
        });
        let mut g = Gate::default();
        let t0 = Instant::now();
        for (i, c) in ["a", "b"].iter().enumerate() {
            assert_eq!(
                g.judge(&s, &via("evil"), c, FOREVER, Some(i as u64), t0),
                Ok(())
            );
        }
        let refused = g.judge(&s, &via("evil"), "c", FOREVER, Some(3), t0);
        assert!(refused.unwrap_err().contains("circuit evil"));
        // Another circuit, an old client, and the next minute are unaffected.
        assert_eq!(g.judge(&s, &via("good"), "d", FOREVER, Some(3), t0), Ok(()));
        assert_eq!(g.judge(&s, &via("evil"), "a", FOREVER, None, t0), Ok(()));
        assert_eq!(
            g.judge(&s, &via("evil"), "c", FOREVER, Some(3), t0 + MINUTE),
            Ok(())
        );
    }

    #[test]
    fn made_up_circuits_cannot_grow_the_counts_past_their_bound() {
        let s = subnet(Limits {
            circuit: Bound {
                per_minute: Some(1),
                leases: None,
            },
            ..Limits::default()
        });
        let mut g = Gate::default();
        let t0 = Instant::now();
        for i in 0..MAX_GROUPS {
            let c = format!("c{i}");
            assert_eq!(g.judge(&s, &via(&c), &c, FOREVER, Some(1), t0), Ok(()));
        }
        assert!(g
            .judge(&s, &via("one-more"), "x", FOREVER, Some(1), t0)
            .is_err());
        assert_eq!(g.tallies.len(), MAX_GROUPS);
        // A minute on, the old counts are empty and make room.
        let later = t0 + MINUTE;
        assert_eq!(
            g.judge(&s, &via("one-more"), "x", FOREVER, Some(1), later),
            Ok(())
        );
        assert_eq!(g.tallies.len(), 1);
    }

    #[test]
    fn leases_per_subnet_come_from_the_aas_and_per_relay_from_what_passed() {
        let s = subnet(Limits {
            subnet: Bound {
                per_minute: None,
                leases: Some(10),
            },
            relay: Bound {
                per_minute: None,
                leases: Some(1),
            },
            ..Limits::default()
        });
        let mut g = Gate::default();
        let t0 = Instant::now();
        let direct = Origin::default();
        assert_eq!(g.judge(&s, &direct, "a", FOREVER, Some(10), t0), Ok(()));
        assert!(g.judge(&s, &direct, "b", FOREVER, Some(11), t0).is_err());
        // One lease per relay: a renewal through it counts, a release frees it.
        assert_eq!(g.judge(&s, &via("x"), "c", FOREVER, None, t0), Ok(()));
        assert!(g.judge(&s, &via("x"), "d", FOREVER, Some(5), t0).is_err());
        g.forget(&s, &via("x"), "c");
        assert_eq!(g.judge(&s, &via("x"), "d", FOREVER, Some(5), t0), Ok(()));
        // A lease that has ended no longer counts.
        let mut g = Gate::default();
        assert_eq!(g.judge(&s, &via("x"), "e", 1, None, t0), Ok(()));
        assert_eq!(g.judge(&s, &via("x"), "f", FOREVER, Some(5), t0), Ok(()));
    }
}
