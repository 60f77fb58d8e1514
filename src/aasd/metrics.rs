//! in.aasd's metrics: counters of what it did, with the store's pool
//! gauges, as one page in the Prometheus text format, served by the
//! metrics listener (http.rs) when aasd.conf has `metrics_listen`.
//!
//! The counters live in memory: they count from in.aasd's start and are 0
//! again after a restart, which Prometheus takes as a counter reset. An
//! allocation counts once the commit that keeps it succeeded; a failed
//! commit counts as a store error instead.

use std::collections::BTreeMap;

use nix::poll::PollFd;

use super::http::{self, Listener};
use super::ops::Outcome;
use super::store::Leases;
use crate::aas::lease::Time;
use crate::aas::metrics::{pool_gauges, Kind, Page};
use crate::aas::proto::{Code, Request};

/// Why a data request can be refused: the words of `Refusal::code`.
const REASONS: [Code; 8] = [
    Code::NoPool,
    Code::NotInPool,
    Code::Taken,
    Code::Disabled,
    Code::Exhausted,
    Code::NotHeld,
    Code::Unknown,
    Code::Reserved,
];

/// The kinds of allocation, indexes of [`Counts::allocations`].
const KINDS: [&str; 2] = ["offer", "lease"];

#[derive(Debug, Default)]
struct Counts {
    /// Unix time of the start: the counters count from then.
    started: Time,
    /// ALLOCs granted and kept, by pool: offers (`hold`), leases.
    allocations: BTreeMap<String, [u64; 2]>,
    /// Granted this round, each (pool, kind): counted when committed.
    uncommitted: Vec<(String, usize)>,
    /// By reason, as [`REASONS`].
    refusals: [u64; REASONS.len()],
    /// Commits that failed.
    store_errors: u64,
    /// Rounds with changes that were committed: one sync of the log, or one
    /// PostgreSQL transaction, each.
    commits: u64,
}

pub struct Metrics {
    counts: Counts,
    listener: Option<Listener>,
}

/// What a request may count as, taken before it is applied: an ALLOC's
/// pool and kind.
pub struct Asked(Option<(String, usize)>);

impl Metrics {
    pub fn new(listener: Option<Listener>, now: Time) -> Metrics {
        Metrics {
            counts: Counts {
                started: now,
                ..Counts::default()
            },
            listener,
        }
    }

    pub fn asked(r: &Request) -> Asked {
        Asked(match r {
            Request::Alloc(a) => Some((a.pool.clone(), usize::from(!a.hold))),
            _ => None,
        })
    }

    /// Count a data request's outcome.
    pub fn answered(&mut self, asked: Asked, out: &Outcome) {
        let c = &mut self.counts;
        if let Some(code) = out.refused {
            if let Some(i) = REASONS.iter().position(|r| *r == code) {
                c.refusals[i] += 1;
            }
        } else if let Some((pool, kind)) = asked.0 {
            if out.wrote {
                c.uncommitted.push((pool, kind));
            } else {
                // A renewal that changed nothing: granted already.
                c.allocations.entry(pool).or_default()[kind] += 1;
            }
        }
    }

    /// The round's commit: its allocations kept, or a store error.
    /// A round ended; `changes` is what the store had to make durable.
    pub fn committed(&mut self, ok: bool, changes: usize) {
        let c = &mut self.counts;
        if ok && changes > 0 {
            c.commits += 1;
        }
        if ok {
            for (pool, kind) in c.uncommitted.drain(..) {
                c.allocations.entry(pool).or_default()[kind] += 1;
            }
        } else {
            c.uncommitted.clear();
            c.store_errors += 1;
        }
    }

    /// What poll(2) watches for the listener, if there is one.
    pub fn poll_fds(&self) -> Vec<PollFd<'_>> {
        self.listener
            .as_ref()
            .map_or(Vec::new(), Listener::poll_fds)
    }

    /// Which of [`Metrics::poll_fds`] poll(2) found ready.
    pub fn polled(&mut self, ready: Vec<bool>) {
        if let Some(l) = &mut self.listener {
            l.polled(ready);
        }
    }

    /// The listener's round: scrapes answered with the page of now.
    pub fn serve(&mut self, store: &mut dyn Leases, now: Time) {
        let counts = &self.counts;
        if let Some(l) = &mut self.listener {
            l.serve(&mut || counts.page(store, now));
        }
    }

    #[cfg(test)]
    fn page(&self, store: &mut dyn Leases, now: Time) -> http::Page {
        self.counts.page(store, now)
    }
}

impl Counts {
    fn page(&self, store: &mut dyn Leases, now: Time) -> http::Page {
        let stats = store.stats(now).map_err(|r| r.to_string())?;
        let mut page = Page::new();
        pool_gauges(&mut page, &stats);
        page.family(
            "aasd_allocations_total",
            Kind::Counter,
            "ALLOC requests granted (renewals included) since in.aasd started, by pool and \
             kind: offer (a reservation, for a DHCPOFFER) or lease. Kept in memory: 0 again \
             after a restart.",
        );
        // Every pool configured, with 0 until it has allocations.
        let mut by_pool = self.allocations.clone();
        for p in store.pools() {
            by_pool.entry(p.name.clone()).or_default();
        }
        for (pool, counts) in &by_pool {
            for (kind, n) in KINDS.iter().zip(counts) {
                page.sample(&[("pool", pool), ("kind", kind)], *n);
            }
        }
        page.family(
            "aasd_refusals_total",
            Kind::Counter,
            "Data requests refused since in.aasd started, by reason (the word of the ERR \
             answer). Kept in memory: 0 again after a restart.",
        );
        for (code, n) in REASONS.iter().zip(self.refusals) {
            page.sample(&[("reason", code.as_str())], n);
        }
        page.family(
            "aasd_store_errors_total",
            Kind::Counter,
            "Commits that failed since in.aasd started: the changes of that round were not \
             kept and their requesters were answered ERR io. Kept in memory: 0 again after a \
             restart.",
        );
        page.sample(&[], self.store_errors);
        page.family(
            "aasd_store_commits_total",
            Kind::Counter,
            "Rounds whose changes were committed since in.aasd started: one write and sync of \
             the log (with sync = always), or one PostgreSQL transaction, for all the requests \
             answered in that round. Kept in memory: 0 again after a restart.",
        );
        page.sample(&[], self.commits);
        page.family(
            "aasd_start_time_seconds",
            Kind::Gauge,
            "When in.aasd started, in seconds since the Unix epoch: the counters count from then.",
        );
        page.sample(&[], self.started);
        Ok(page.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aas::lease::Pool;
    use crate::aas::proto;
    use crate::aasd::journal::StoreConfig;
    use crate::aasd::logstore::LogStore;
    use crate::aasd::ops;

    fn ask(m: &mut Metrics, store: &mut LogStore, line: &str) {
        let r = proto::parse(line).unwrap();
        let asked = Metrics::asked(&r);
        let out = ops::apply(store, r, 100);
        m.answered(asked, &out);
    }

    fn has(page: &str, line: &str) -> bool {
        page.lines().any(|l| l == line)
    }

    #[test]
    fn allocations_refusals_and_store_errors() {
        let pools = vec![
            Pool::new("P", vec![(10, 11)]),
            Pool::new("Q", vec![(20, 20)]),
        ];
        let dir = std::env::temp_dir().join(format!("indhcpd-metrics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = StoreConfig {
            database_dir: dir.clone(),
            checkpoint_dir: dir.join("checkpoints"),
            num_checkpoints: 1,
            max_db_size: 1 << 20,
            sync: false,
        };
        let mut store = LogStore::open(cfg, pools).unwrap();
        let mut m = Metrics::new(None, 7);
        ask(&mut m, &mut store, "ALLOC P dhcp a 60 hold");
        ask(&mut m, &mut store, "ALLOC P dhcp b 60");
        ask(&mut m, &mut store, "ALLOC P dhcp c 60");
        ask(&mut m, &mut store, "ALLOC Nope dhcp c 60");
        ask(&mut m, &mut store, "RELEASE 0.0.0.99");
        let before = m.page(&mut store, 100).unwrap();
        assert!(
            has(
                &before,
                "aasd_allocations_total{pool=\"P\",kind=\"offer\"} 0"
            ),
            "nothing counted before the commit:\n{before}"
        );
        let changes = store.uncommitted();
        m.committed(store.commit().is_ok(), changes);
        let page = m.page(&mut store, 100).unwrap();
        for line in [
            "aasd_allocations_total{pool=\"P\",kind=\"offer\"} 1",
            "aasd_allocations_total{pool=\"P\",kind=\"lease\"} 1",
            "aasd_allocations_total{pool=\"Q\",kind=\"lease\"} 0",
            "aasd_refusals_total{reason=\"exhausted\"} 1",
            "aasd_refusals_total{reason=\"nopool\"} 1",
            "aasd_refusals_total{reason=\"notinpool\"} 1",
            "aasd_refusals_total{reason=\"taken\"} 0",
            "aasd_store_errors_total 0",
            "aasd_store_commits_total 1",
            "aasd_start_time_seconds 7",
            "aasd_pool_leased{pool=\"P\"} 1",
            "aasd_pool_offered{pool=\"P\"} 1",
            "aasd_pool_free{pool=\"Q\"} 1",
        ] {
            assert!(has(&page, line), "{line} in\n{page}");
        }
        // A failed commit: what it would have kept is not counted.
        ask(&mut m, &mut store, "ALLOC Q dhcp d 60");
        m.committed(false, 1);
        let page = m.page(&mut store, 100).unwrap();
        assert!(has(&page, "aasd_store_errors_total 1"), "{page}");
        assert!(has(&page, "aasd_store_commits_total 1"), "{page}");
        assert!(has(
            &page,
            "aasd_allocations_total{pool=\"Q\",kind=\"lease\"} 0"
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
