//! The data requests of the AAS protocol applied to a store (store.rs):
//! the answer text, and whether it waits for the store's commit. Tests use
//! [`Local`] to ask a database in memory directly.

use std::net::Ipv4Addr;

use super::db::Db;
use super::logstore::LogStore;
use super::store::Leases;
use crate::aas::client::{Down, Requester};
use crate::aas::lease::{Refusal, Time};
use crate::aas::proto::{self, Code, End, LeaseRow, Reply, Request};
use crate::{log_debug, log_detail, log_error, log_info};

pub struct Outcome {
    /// One line, or rows ending with `END n`; no final newline.
    pub text: String,
    /// The store has changes from this request that its next commit
    /// makes durable: the answer waits for it.
    pub wrote: bool,
}

fn refused(r: Refusal) -> Outcome {
    match &r {
        // Logged by the caller, at most once a minute.
        Refusal::Exhausted(_) => log_debug!("refused: {r}"),
        _ => log_detail!("refused: {r}"),
    }
    said(refusal(&r))
}

/// The answer to a refused request.
pub fn refusal(r: &Refusal) -> Reply {
    Reply::Err {
        code: r.code(),
        text: r.to_string(),
    }
}

fn said(reply: Reply) -> Outcome {
    Outcome {
        text: reply.to_string(),
        wrote: false,
    }
}

fn done(res: Result<(), Refusal>) -> Outcome {
    match res {
        Ok(()) => said(Reply::Ok),
        Err(r) => refused(r),
    }
}

/// Apply a data request (not AUTH, PING, CHECKPOINT or RELOAD, which
/// belong to the daemon).
pub fn apply(store: &mut dyn Leases, r: Request, now: Time) -> Outcome {
    let before = store.uncommitted();
    let mut out = answer(store, r, now);
    out.wrote = store.uncommitted() > before;
    out
}

fn answer(store: &mut dyn Leases, r: Request, now: Time) -> Outcome {
    match r {
        Request::Alloc(a) => match store.alloc(&a, now) {
            Ok(g) => {
                log_detail!(
                    "{} {} to {} {}{} until {}",
                    if a.hold { "reserved" } else { "leased" },
                    Ipv4Addr::from(g.addr),
                    a.service,
                    a.client,
                    a.host.as_ref().map_or(String::new(), |h| format!(" ({h})")),
                    crate::log::utc_text(g.end)
                );
                said(Reply::Allocated(proto::Allocated {
                    addr: Ipv4Addr::from(g.addr),
                    end: g.end,
                    new: g.new,
                }))
            }
            Err(r) => {
                if let Refusal::Exhausted(p) = &r {
                    if store.exhausted_log_due(p, now) {
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
        } => done(store.unhold(&pool, &service, &client, now)),
        Request::Release { addr, by } => {
            let by = by.as_ref().map(|(s, c)| (s.as_str(), c.as_str()));
            let res = store.release(addr, by, now);
            if res == Ok(true) {
                log_detail!("released {}", Ipv4Addr::from(addr));
            }
            done(res.map(|_| ()))
        }
        Request::Decline { addr, secs, by } => {
            let by = by.as_ref().map(|(s, c)| (s.as_str(), c.as_str()));
            let res = store.decline(addr, secs, by, now);
            if let Ok(freed) = &res {
                for a in freed {
                    log_info!(
                        "{} free again: its pool has reached its max_declined",
                        Ipv4Addr::from(*a)
                    );
                }
                log_info!("{} declined: out of use for {secs} s", Ipv4Addr::from(addr));
            }
            done(res.map(|_| ()))
        }
        Request::Disable(addr) => done(store.set_disabled(addr, true, now)),
        Request::Enable(addr) => done(store.set_disabled(addr, false, now)),
        Request::Query(f) => match store.rows(&f, now, usize::MAX) {
            Ok(page) => said(Reply::Leases(page.rows)),
            Err(r) => refused(r),
        },
        Request::Reserve {
            addr,
            service,
            client,
        } => match store.reserve(addr, &service, &client, now) {
            Ok(None) => said(Reply::Ok),
            Ok(Some(held)) => {
                log_error!(
                    "{} is reserved for {service} {client} but held by {} {} until {}: \
                     it is not renewed",
                    Ipv4Addr::from(addr),
                    held.service,
                    held.client,
                    crate::log::utc_text(held.end)
                );
                said(Reply::Held(held))
            }
            Err(r) => refused(r),
        },
        Request::Unreserve(addr) => {
            store.unreserve(addr);
            said(Reply::Ok)
        }
        Request::Pools => said(Reply::Pools(
            store
                .pools()
                .iter()
                .map(|p| (p.name.clone(), p.ranges.clone()))
                .collect(),
        )),
        Request::Stats(pool) => {
            let all = match store.stats(now) {
                Ok(all) => all,
                Err(r) => return refused(r),
            };
            let found: Vec<_> = all
                .into_iter()
                .filter(|s| pool.as_ref().is_none_or(|p| *p == s.name))
                .collect();
            if let Some(p) = pool.filter(|_| found.is_empty()) {
                return refused(Refusal::NoPool(p));
            }
            said(Reply::Stats(found))
        }
        Request::Auth(_) | Request::Ping | Request::Checkpoint | Request::Reload => {
            said(Reply::Err {
                code: Code::Syntax,
                text: "not a data request".into(),
            })
        }
    }
}

/// A page of a long QUERY answer: its `LEASE` rows, each on its line, then
/// [`End`] when `end` says the answer ends here.
pub fn page_text(rows: &[LeaseRow], end: Option<usize>) -> String {
    let mut lines: Vec<String> = rows.iter().map(LeaseRow::to_string).collect();
    lines.extend(end.map(|n| End(n).to_string()));
    lines.join("\n")
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
                // The database goes through a store in memory and back, so
                // tests keep looking at it as `db`.
                let db = std::mem::replace(&mut self.db, Db::new(Vec::new()));
                let mut store = LogStore::in_memory(db);
                let text = apply(&mut store, r, self.now).text;
                self.db = store.into_db();
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
        let mut store = LogStore::in_memory(std::mem::replace(db, Db::new(Vec::new())));
        let text = apply(&mut store, proto::parse(line).unwrap(), 10).text;
        *db = store.into_db();
        text
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
