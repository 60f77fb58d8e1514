//! The data requests of the AAS protocol applied to a database: the answer
//! text and the changes to log. in.aasd logs the changes before it sends
//! the text; tests use [`Local`] to ask a database directly.

use std::net::Ipv4Addr;

use super::client::{Down, Requester};
use super::db::{Change, Db, Entry, Filter, Refusal, Selector, State, Time};
use super::proto::{self, time_text, word, Answer, Request};
use crate::{log_debug, log_detail, log_error, log_info};

pub struct Outcome {
    /// One line, or rows ending with `END n`; no final newline.
    pub text: String,
    pub changes: Vec<Change>,
}

fn refused(r: Refusal) -> Outcome {
    match &r {
        // Logged by the caller, at most once a minute.
        Refusal::Exhausted(_) => log_debug!("refused: {r}"),
        _ => log_detail!("refused: {r}"),
    }
    Outcome {
        text: format!("ERR {} {r}", r.code()),
        changes: Vec::new(),
    }
}

fn done(res: Result<Vec<Change>, Refusal>) -> Outcome {
    match res {
        Ok(changes) => Outcome {
            text: "OK".into(),
            changes,
        },
        Err(r) => refused(r),
    }
}

fn rows(text: String) -> Outcome {
    Outcome {
        text,
        changes: Vec::new(),
    }
}

/// Apply a data request (not AUTH, PING, CHECKPOINT or RELOAD, which
/// belong to the daemon).
pub fn apply(db: &mut Db, r: Request, now: Time) -> Outcome {
    match r {
        Request::Alloc(a) => match db.alloc(&a, now) {
            Ok((addr, end, changes)) => {
                log_detail!(
                    "{} {} to {} {}{} until {}",
                    if a.hold { "reserved" } else { "leased" },
                    Ipv4Addr::from(addr),
                    a.service,
                    a.client,
                    a.host.as_ref().map_or(String::new(), |h| format!(" ({h})")),
                    time_text(end)
                );
                Outcome {
                    text: format!("OK {} {}", Ipv4Addr::from(addr), time_text(end)),
                    changes,
                }
            }
            Err(r) => {
                if let Refusal::Exhausted(p) = &r {
                    if db.exhausted_log_due(p, now) {
                        log_error!("pool {p} exhausted (logged at most once a minute)");
                    }
                }
                refused(r)
            }
        },
        Request::Unhold {
            pool,
            service,
            client,
        } => done(db.unhold(&pool, &service, &client, now)),
        Request::Release { addr, by } => {
            let by = by.as_ref().map(|(s, c)| (s.as_str(), c.as_str()));
            let res = db.release(addr, by, now);
            if res.as_ref().is_ok_and(|c| !c.is_empty()) {
                log_detail!("released {}", Ipv4Addr::from(addr));
            }
            done(res)
        }
        Request::Decline { addr, secs, by } => {
            let by = by.as_ref().map(|(s, c)| (s.as_str(), c.as_str()));
            let res = db.decline(addr, secs, by, now);
            if let Ok(changes) = &res {
                for c in changes.iter().filter(|c| c.addr != addr) {
                    log_info!(
                        "{} free again: its pool has reached its max_declined",
                        Ipv4Addr::from(c.addr)
                    );
                }
                log_info!("{} declined: out of use for {secs} s", Ipv4Addr::from(addr));
            }
            done(res)
        }
        Request::Disable(addr) => done(db.set_disabled(addr, true, now)),
        Request::Enable(addr) => done(db.set_disabled(addr, false, now)),
        Request::Span(action, span) => match super::span::apply(db, action, &span, now) {
            Ok(changes) => {
                log_detail!("{} {span}: {} addresses", action.word(), changes.len());
                Outcome {
                    text: format!("OK {}", changes.len()),
                    changes,
                }
            }
            Err(r) => refused(r),
        },
        Request::Query(f) => {
            let (mut out, n, _) = lease_rows(db, &f, now, usize::MAX);
            out.push_str(&format!("END {n}"));
            rows(out)
        }
        Request::Stats(pool) => {
            let all = db.stats(now);
            let found: Vec<_> = all
                .iter()
                .filter(|s| pool.as_ref().is_none_or(|p| *p == s.name))
                .collect();
            if let Some(p) = pool.filter(|_| found.is_empty()) {
                return refused(Refusal::NoPool(p));
            }
            let mut out = String::new();
            for s in &found {
                out.push_str(&format!(
                    "POOL {} {} {} {} {} {} {}\n",
                    s.name, s.size, s.leased, s.offered, s.free, s.disabled, s.declined
                ));
            }
            out.push_str(&format!("END {}", found.len()));
            rows(out)
        }
        Request::Auth(_) | Request::Ping | Request::Checkpoint | Request::Reload => Outcome {
            text: "ERR syntax not a data request".into(),
            changes: Vec::new(),
        },
    }
}

/// Up to `limit` `LEASE` rows of a `QUERY`, each ending in a newline, how
/// many, and the address to go on from if there may be more.
pub fn lease_rows(
    db: &mut Db,
    f: &Filter,
    now: Time,
    limit: usize,
) -> (String, usize, Option<u32>) {
    if let Some((a, pool)) = never_used(db, f) {
        return (
            lease_row(a, &pool, &Entry::fresh(), f.with_host, now),
            1,
            None,
        );
    }
    let found = db.query_page(f, now, limit);
    let mut out = String::new();
    for (a, pool, e) in &found {
        out.push_str(&lease_row(*a, pool, e, f.with_host, now));
    }
    let hi = f.range.map_or(u32::MAX, |(_, hi)| hi);
    let next = match found.last() {
        Some(&(last, _, _)) if found.len() == limit && last < hi => Some(last + 1),
        _ => None,
    };
    (out, found.len(), next)
}

fn lease_row(a: u32, pool: &str, e: &Entry, with_host: bool, now: Time) -> String {
    let mut row = format!(
        "LEASE {} {pool} {} {} {} {} {} {} {}",
        Ipv4Addr::from(a),
        e.state_at(now).name(),
        if e.disabled { "yes" } else { "no" },
        word(&e.service),
        word(&e.client),
        e.reserved,
        time_text(e.end),
        e.released
    );
    if with_host {
        row.push(' ');
        row.push_str(word(&e.host));
    }
    row.push('\n');
    row
}

/// A QUERY of one pool address that was never used (it has no entry):
/// its address and pool, so the row says it is free, not in no pool.
fn never_used(db: &Db, f: &Filter) -> Option<(u32, String)> {
    let (a, b) = f.range?;
    let by_holder = f.service.is_some() || f.client.is_some() || f.mac.is_some();
    let state_fits = f.state.is_none_or(|s| s == Selector::State(State::Free));
    if a != b || by_holder || !state_fits || db.get(a).is_some() {
        return None;
    }
    let pool = &db.pools()[db.pool_of(a)?].name;
    f.pool
        .as_ref()
        .is_none_or(|p| p == pool)
        .then(|| (a, pool.clone()))
}

/// A database asked in-process, at a time the caller sets: what unit tests
/// of in.dhcpd use instead of a running in.aasd. `down` makes it behave as
/// an unreachable one.
pub struct Local {
    pub db: Db,
    pub now: Time,
    pub down: bool,
    /// Every request line, for tests to look at.
    pub asked: Vec<String>,
}

impl Local {
    pub fn new(db: Db, now: Time) -> Local {
        Local {
            db,
            now,
            down: false,
            asked: Vec::new(),
        }
    }
}

impl Requester for Local {
    fn ask(&mut self, line: &str) -> Result<Answer, Down> {
        self.asked.push(line.to_string());
        if self.down {
            return Err(Down("test: AAS down".into()));
        }
        let text = match proto::parse(line) {
            Ok(r) => apply(&mut self.db, r, self.now).text,
            Err(e) => format!("ERR syntax {e}"),
        };
        proto::answer(text.lines().last().unwrap_or("")).ok_or(Down("garbage".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aas::db::Pool;

    fn ask(db: &mut Db, line: &str) -> String {
        apply(db, proto::parse(line).unwrap(), 10).text
    }

    #[test]
    fn a_free_pool_address_is_told_from_one_in_no_pool() {
        let mut db = Db::new(vec![Pool::new("P", vec![(0x0a00_000a, 0x0a00_0013)])]);
        assert_eq!(
            ask(&mut db, "QUERY address=10.0.0.12"),
            "LEASE 10.0.0.12 P free no - - 0 0 0\nEND 1"
        );
        assert_eq!(ask(&mut db, "QUERY address=10.0.0.99"), "END 0");
        // Filters that a never-used address cannot match.
        for q in [
            "pool=Q",
            "state=leased",
            "client=c",
            "mac=02:00:00:00:00:01",
        ] {
            assert_eq!(
                ask(&mut db, &format!("QUERY address=10.0.0.12 {q}")),
                "END 0",
                "{q}"
            );
        }
        assert!(ask(&mut db, "QUERY range=10.0.0.10-10.0.0.19").ends_with("END 0"));
    }

    #[test]
    fn rows_end_with_the_host_name_when_asked() {
        let mut db = Db::new(vec![Pool::new("P", vec![(0x0a00_000a, 0x0a00_0013)])]);
        assert!(ask(&mut db, "ALLOC P dhcp c1 60 host=pc1").starts_with("OK 10.0.0.10 "));
        ask(&mut db, "ALLOC P dhcp c2 60");
        let rows = ask(&mut db, "QUERY hostname");
        let rows: Vec<&str> = rows.lines().collect();
        assert!(
            rows[0].starts_with("LEASE 10.0.0.10 P leased no dhcp c1 10 70 0 pc1"),
            "{rows:?}"
        );
        assert!(rows[1].ends_with(" -"), "{rows:?}");
        let plain = ask(&mut db, "QUERY");
        assert_eq!(
            plain.lines().next().unwrap().split(' ').count(),
            10,
            "{plain}"
        );
        assert_eq!(ask(&mut db, "RELEASE range=10.0.0.1-10.0.0.10"), "OK 1");
        assert_eq!(ask(&mut db, "DISABLE pool=P"), "OK 10");
    }
}
