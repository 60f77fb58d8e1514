//! The data requests of the AAS protocol applied to a database: the answer
//! text and the changes to log. in.aasd logs the changes before it sends
//! the text; tests use [`Local`] to ask a database directly.

use std::net::Ipv4Addr;

use super::db::{Change, Db, Reservation};
use crate::aas::client::{Down, Requester};
use crate::aas::lease::{Filter, Refusal, Selector, State, Time, FOREVER};
use crate::aas::proto::{self, word, Reply, Request};
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
        // `new N` when the client held no address before: N is the pool's
        // addresses held now, this one included (in.dhcpd's limits count it).
        Request::Alloc(a) => match (
            db.holds(&a.pool, &a.service, &a.client, now),
            db.alloc(&a, now),
        ) {
            (had, Ok((addr, end, changes))) => {
                log_detail!(
                    "{} {} to {} {}{} until {}",
                    if a.hold { "reserved" } else { "leased" },
                    Ipv4Addr::from(addr),
                    a.service,
                    a.client,
                    a.host.as_ref().map_or(String::new(), |h| format!(" ({h})")),
                    crate::log::utc_text(end)
                );
                let text = proto::Allocated {
                    addr: Ipv4Addr::from(addr),
                    end,
                    new: (!had).then(|| db.in_use(&a.pool)),
                }
                .to_string();
                Outcome { text, changes }
            }
            (_, Err(r)) => {
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
        Request::Query(f) => {
            let (mut out, n, _) = lease_rows(db, &f, now, usize::MAX);
            out.push_str(&format!("END {n}"));
            rows(out)
        }
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
                rows(
                    proto::Held {
                        service: s,
                        client: c,
                        end,
                    }
                    .to_string(),
                )
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
                out.push_str(&proto::stats_line(s));
                out.push('\n');
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
/// many, and the address to go on from if there may be more. A reserved
/// address that nobody holds shows as `reserved`, with its reserving
/// service and client, whether or not it was ever used.
pub fn lease_rows(
    db: &mut Db,
    f: &Filter,
    now: Time,
    limit: usize,
) -> (String, usize, Option<u32>) {
    let (lo, hi) = f.range.unwrap_or((0, u32::MAX));
    let mut found: Vec<(u32, String)> = Vec::new();
    let mut last = None;
    for (a, pool, e) in db.query_page(f, now, limit) {
        found.push((a, row_of(a, pool, e, now, f.with_host)));
        last = Some(a);
    }
    let next = match last {
        Some(a) if found.len() == limit && a < hi => Some(a + 1),
        _ => None,
    };
    // Reservations up to where this page ends: shown over a free entry,
    // and added where no entry was ever made.
    let end = next.map_or(hi, |n| n - 1);
    let reservations: Vec<(u32, Reservation)> = db
        .reservations(lo, end)
        .map(|(a, r)| (a, r.clone()))
        .collect();
    for (a, r) in reservations {
        let shown = found.iter().position(|(x, _)| *x == a);
        let free = db
            .get(a)
            .is_none_or(|e| e.state_at(now) == State::Free && !e.disabled);
        let Some(pool) = db.pool_of(a).map(|p| db.pools()[p].name.clone()) else {
            continue;
        };
        let released = db.get(a).map_or(0, |e| e.released);
        let line = with_host(
            row(
                a,
                &pool,
                Selector::Reserved,
                false,
                &r.service,
                &r.client,
                r.since,
                FOREVER,
                released,
            ),
            "",
            f.with_host,
        );
        match shown {
            Some(i) if free => found[i].1 = line,
            Some(_) => {}
            None if db.get(a).is_none() => {
                let keep = matches!(f.state, None | Some(Selector::Reserved))
                    && f.pool.as_ref().is_none_or(|p| *p == pool)
                    && f.service.as_ref().is_none_or(|s| *s == r.service)
                    && f.client.as_ref().is_none_or(|c| *c == r.client);
                if keep {
                    found.push((a, line));
                }
            }
            None => {}
        }
    }
    found.sort_by_key(|(a, _)| *a);
    let n = found.len();
    (found.into_iter().map(|(_, r)| r).collect(), n, next)
}

/// The row of an entry as it stands.
fn row_of(a: u32, pool: &str, e: &super::db::Entry, now: Time, host: bool) -> String {
    let r = row(
        a,
        pool,
        Selector::State(e.state_at(now)),
        e.disabled,
        &e.service,
        &e.client,
        e.reserved,
        e.end,
        e.released,
    );
    with_host(r, &e.host, host)
}

/// A row ended: with the host name if the QUERY said `hostname` (older
/// requesters expect rows without it).
fn with_host(mut row: String, host: &str, wanted: bool) -> String {
    if wanted {
        row.push(' ');
        row.push_str(word(host));
    }
    row.push('\n');
    row
}

#[allow(clippy::too_many_arguments)]
fn row(
    a: u32,
    pool: &str,
    state: Selector,
    disabled: bool,
    service: &str,
    client: &str,
    reserved: Time,
    end: Time,
    released: Time,
) -> String {
    proto::LeaseRow {
        addr: Ipv4Addr::from(a),
        pool: pool.to_string(),
        state,
        disabled,
        service: service.to_string(),
        client: client.to_string(),
        reserved,
        end,
        released,
        host: None,
    }
    .to_string()
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
    /// As in.aasd would: the request goes as its line, so one that would
    /// not read back the same there does not here either.
    fn ask(&mut self, request: &Request) -> Result<Reply, Down> {
        let line = request.to_string();
        self.asked.push(line.clone());
        if self.down {
            return Err(Down("test: AAS down".into()));
        }
        Ok(match proto::parse(&line) {
            Ok(r) => {
                let text = apply(&mut self.db, r, self.now).text;
                Reply::parse(request, &text.lines().collect::<Vec<_>>())
                    .map_err(|e| Down(format!("test: garbage: {e}")))?
            }
            Err(e) => Reply::Err {
                code: proto::Code::Syntax,
                text: e.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aas::lease::Pool;

    fn ask(db: &mut Db, line: &str) -> String {
        apply(db, proto::parse(line).unwrap(), 10).text
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
        // A reserved address nobody holds: its row too has the word.
        assert_eq!(ask(&mut db, "RESERVE 10.0.0.19 dhcp fixed/1/x"), "OK");
        let reserved = ask(&mut db, "QUERY address=10.0.0.19 hostname");
        assert!(
            reserved.starts_with("LEASE 10.0.0.19 P reserved no dhcp fixed/1/x ")
                && reserved.lines().next().unwrap().ends_with(" 0 -"),
            "{reserved}"
        );
    }

    #[test]
    fn alloc_says_new_and_the_pool_count_only_for_a_client_that_held_nothing() {
        let db = Db::new(vec![Pool::new("P", vec![(10, 19)])]);
        let mut aas = Local::new(db, 1_000);
        let mut ask = |l: &str| match aas.ask(&proto::parse(l).unwrap()) {
            Ok(Reply::Allocated(a)) => (
                a.addr.to_string(),
                a.new.map_or(String::new(), |n| format!("new {n}")),
            ),
            other => panic!("{other:?}"),
        };
        let (addr, new) = ask("ALLOC P dhcp a 10 previous hold");
        assert_eq!(new, "new 1");
        assert_eq!(ask("ALLOC P dhcp b 10 previous hold").1, "new 2");
        // a again (its DISCOVER repeated, then its REQUEST): not new.
        assert_eq!(ask("ALLOC P dhcp a 10 previous hold").1, "");
        let request = format!("ALLOC P dhcp a 3600 exact={addr} mine");
        assert_eq!(ask(&request).1, "");
    }
}
