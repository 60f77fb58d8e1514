//! The data requests of the AAS protocol applied to a database: the answer
//! text and the changes to log. in.aasd logs the changes before it sends
//! the text; tests use [`Local`] to ask a database directly.

use std::net::Ipv4Addr;

use super::client::{Down, Requester};
use super::db::{Change, Db, Filter, Refusal, Reservation, Selector, State, Time, FOREVER};
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
                if let Some(e) = reused_decline(&changes, addr) {
                    log_error!(
                        "pool {} has no free address: reusing {}, declined at {}",
                        a.pool,
                        Ipv4Addr::from(addr),
                        crate::log::utc_text(e)
                    );
                }
                log_detail!(
                    "{} {} to {} {} until {}",
                    if a.hold { "reserved" } else { "leased" },
                    Ipv4Addr::from(addr),
                    a.service,
                    a.client,
                    crate::log::utc_text(end)
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
        Request::Query(f) => rows(query(db, &f, now)),
        Request::Reserve {
            addr,
            service,
            client,
        } => match db.reserve(addr, &service, &client, now) {
            Ok(None) => rows("OK".into()),
            Ok(Some((s, c, end))) => {
                log_error!(
                    "{} is reserved for {service} {client} but held by {s} {c} until {}: \
                     it is not renewed",
                    Ipv4Addr::from(addr),
                    crate::log::utc_text(end)
                );
                rows(format!(
                    "OK held {} {} {}",
                    word(&s),
                    word(&c),
                    time_text(end)
                ))
            }
            Err(r) => refused(r),
        },
        Request::Unreserve(addr) => {
            db.unreserve(addr);
            rows("OK".into())
        }
        Request::Pools => {
            let words = proto::pools_words(db.pools());
            rows(format!("OK {}", words.join(" ")).trim_end().to_string())
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
                    "POOL {} {} {} {} {} {} {} {}\n",
                    s.name, s.size, s.leased, s.offered, s.free, s.disabled, s.declined, s.reserved
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

/// QUERY rows, `END n` last. A reserved address that nobody holds shows
/// as `reserved`, with its reserving service and client, whether or not
/// it was ever used.
fn query(db: &mut Db, f: &Filter, now: Time) -> String {
    let mut found: Vec<(u32, String)> = Vec::new();
    let want_reserved = matches!(f.state, None | Some(Selector::Reserved));
    let (lo, hi) = f.range.unwrap_or((0, u32::MAX));
    let reservations: std::collections::BTreeMap<u32, Reservation> = db
        .reservations(lo, hi)
        .map(|(a, r)| (a, r.clone()))
        .collect();
    // Reserved addresses never used have no entry for db.query to find.
    let unused: Vec<(u32, Reservation)> = reservations
        .iter()
        .filter(|(a, _)| db.get(**a).is_none())
        .map(|(a, r)| (*a, r.clone()))
        .collect();
    for (a, pool, e) in db.query(f, now) {
        let row = match reservations.get(&a) {
            Some(r) if e.state_at(now) == State::Free && !e.disabled => row(
                a, pool, "reserved", false, &r.service, &r.client, r.since, FOREVER, e.released,
            ),
            _ => row(
                a,
                pool,
                e.state_at(now).name(),
                e.disabled,
                &e.service,
                &e.client,
                e.reserved,
                e.end,
                e.released,
            ),
        };
        found.push((a, row));
    }
    for (a, r) in unused.into_iter().filter(|_| want_reserved) {
        let Some(pool) = db.pool_of(a).map(|p| db.pools()[p].name.clone()) else {
            continue;
        };
        let keep = f.pool.as_ref().is_none_or(|p| *p == pool)
            && f.service.as_ref().is_none_or(|s| *s == r.service)
            && f.client.as_ref().is_none_or(|c| *c == r.client);
        if keep {
            let line = row(
                a, &pool, "reserved", false, &r.service, &r.client, r.since, FOREVER, 0,
            );
            found.push((a, line));
        }
    }
    found.sort_by_key(|(a, _)| *a);
    let mut out: String = found.iter().map(|(_, r)| r.as_str()).collect();
    out.push_str(&format!("END {}", found.len()));
    out
}

#[allow(clippy::too_many_arguments)]
fn row(
    a: u32,
    pool: &str,
    state: &str,
    disabled: bool,
    service: &str,
    client: &str,
    reserved: Time,
    end: Time,
    released: Time,
) -> String {
    format!(
        "LEASE {} {pool} {state} {} {} {} {reserved} {} {released}\n",
        Ipv4Addr::from(a),
        if disabled { "yes" } else { "no" },
        word(service),
        word(client),
        time_text(end),
    )
}

/// When `addr` was declined, if this allocation took a declined address.
fn reused_decline(changes: &[Change], addr: u32) -> Option<Time> {
    let c = changes.iter().find(|c| c.addr == addr)?;
    let before = c.before.as_ref()?;
    (before.state == State::Declined).then_some(before.reserved)
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
