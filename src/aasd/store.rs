//! Where in.aasd keeps its leases: the interface between the operations of
//! the protocol (ops.rs) and a store. The transaction log with checkpoints
//! (logstore.rs) is one store; a database shared by several in.aasd can be
//! another, with the operations and the protocol unchanged.
//!
//! A store answers each operation at once and keeps what it changed
//! pending until [`Leases::commit`], which ends a round of requests: every
//! pending change becomes durable together (one fsync, one transaction),
//! or none does and the store is as it was before the round. Answers that
//! told of a change are sent only after their commit.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::db::{Db, Entry, Reservation};
use crate::aas::lease::{Alloc, Filter, Pool, Refusal, Selector, State, Stats, Time, FOREVER};
use crate::aas::proto::{Held, LeaseRow};

/// An address allocated to a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Granted {
    pub addr: u32,
    pub end: Time,
    /// When the client held nothing in the pool before: the pool's
    /// addresses held now, this one included (in.dhcpd's limits count it).
    pub new: Option<u64>,
}

/// A page of `QUERY` rows, in address order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub rows: Vec<LeaseRow>,
    /// Where the next page starts, when there may be more.
    pub next: Option<u32>,
}

pub trait Leases {
    /// The pools as the configuration gives them.
    fn pools(&self) -> &[Pool];

    /// How many addresses the store knows of (used at some time).
    fn known(&self) -> usize;

    fn alloc(&mut self, a: &Alloc, now: Time) -> Result<Granted, Refusal>;

    /// Give back what `client` holds in `pool` without a lease (an offer
    /// the client did not take).
    fn unhold(&mut self, pool: &str, service: &str, client: &str, now: Time)
        -> Result<(), Refusal>;

    /// Free `addr`; with `by`, only if that client holds it. True when
    /// something changed.
    fn release(&mut self, addr: u32, by: Option<(&str, &str)>, now: Time) -> Result<bool, Refusal>;

    /// Take `addr` out of use for `secs`. The addresses freed again to
    /// keep the pool's declines under its cap.
    fn decline(
        &mut self,
        addr: u32,
        secs: Time,
        by: Option<(&str, &str)>,
        now: Time,
    ) -> Result<Vec<u32>, Refusal>;

    fn set_disabled(&mut self, addr: u32, disabled: bool, now: Time) -> Result<(), Refusal>;

    /// Hold `addr` back for one client (a requester's pinned address).
    /// `Some` when another client holds it now: it keeps it until its end.
    fn reserve(
        &mut self,
        addr: u32,
        service: &str,
        client: &str,
        now: Time,
    ) -> Result<Option<Held>, Refusal>;

    fn unreserve(&mut self, addr: u32);

    /// Up to `limit` rows that `f` selects, from the start of its range.
    fn rows(&mut self, f: &Filter, now: Time, limit: usize) -> Result<Page, Refusal>;

    fn stats(&mut self, now: Time) -> Result<Vec<Stats>, Refusal>;

    /// Whether to log that `pool` is exhausted: at most once a minute.
    fn exhausted_log_due(&mut self, pool: &str, now: Time) -> bool;

    /// Changes made since the last commit.
    fn uncommitted(&self) -> usize;

    /// End the round: every pending change durable, or all of them undone.
    /// The error's text follows `ERR io ` in the answers it spoils.
    fn commit(&mut self) -> io::Result<()>;

    /// Addresses held now that no pool of `pools` contains: a reload that
    /// would leave them so is refused.
    fn held_outside(&self, pools: &[Pool], now: Time) -> Vec<u32>;

    /// Take new pools (a reload that passed `held_outside`).
    fn set_pools(&mut self, pools: Vec<Pool>);

    /// A checkpoint now (`force`) or when one is due; its file, if written.
    fn checkpoint(&mut self, force: bool) -> io::Result<Option<PathBuf>>;

    /// Housekeeping between rounds (compacting the log when it has grown).
    fn tidy(&mut self);

    /// Make everything durable before in.aasd exits.
    fn close(&mut self) -> io::Result<()>;
}

/// A page of the rows of `db` that `f` selects, as both stores list them:
/// its entries, with reserved addresses nobody holds shown over a free
/// entry, or added where no entry was made.
pub fn rows(db: &mut Db, f: &Filter, now: Time, limit: usize) -> Page {
    let (lo, hi) = f.range.unwrap_or((0, u32::MAX));
    let mut found: Vec<LeaseRow> = db
        .query_page(f, now, limit)
        .into_iter()
        .map(|(a, pool, e)| entry_row(a, pool, &e, now, f.with_host))
        .collect();
    let next = match found.last() {
        Some(r) if found.len() == limit && u32::from(r.addr) < hi => Some(u32::from(r.addr) + 1),
        _ => None,
    };
    // Reservations up to where this page ends.
    let end = next.map_or(hi, |n| n - 1);
    for (a, r) in db.reservations(lo, end) {
        let Some(pool) = db.pool_of(a).map(|p| &db.pools()[p].name) else {
            continue;
        };
        let entry = db.view(a);
        let free = entry.is_none_or(|e| e.state_at(now) == State::Free && !e.disabled);
        let shown = found.iter().position(|row| u32::from(row.addr) == a);
        match shown {
            Some(i) if free => found[i] = reserved_row(db, a, pool, r, f.with_host),
            Some(_) => {}
            None if entry.is_none() => {
                let keep = matches!(f.state, None | Some(Selector::Reserved))
                    && f.pool.as_ref().is_none_or(|p| p == pool)
                    && f.service.as_ref().is_none_or(|s| *s == r.service)
                    && f.client.as_ref().is_none_or(|c| *c == r.client);
                if keep {
                    found.push(reserved_row(db, a, pool, r, f.with_host));
                }
            }
            None => {}
        }
    }
    found.sort_by_key(|r| r.addr);
    Page { rows: found, next }
}

/// The row of an address the database has an entry for.
fn entry_row(a: u32, pool: &str, e: &Entry<&str>, now: Time, with_host: bool) -> LeaseRow {
    LeaseRow {
        addr: Ipv4Addr::from(a),
        pool: pool.to_string(),
        state: Selector::State(e.state_at(now)),
        disabled: e.disabled,
        service: e.service.to_string(),
        client: e.client.to_string(),
        reserved: e.reserved,
        end: e.end,
        released: e.released,
        host: with_host.then(|| e.host.to_string()),
    }
}

/// The row of a reserved address that nobody holds: shown with its
/// reserving service and client, whether or not it was ever used.
fn reserved_row(db: &Db, a: u32, pool: &str, r: &Reservation, with_host: bool) -> LeaseRow {
    LeaseRow {
        addr: Ipv4Addr::from(a),
        pool: pool.to_string(),
        state: Selector::Reserved,
        disabled: false,
        service: r.service.clone(),
        client: r.client.clone(),
        reserved: r.since,
        end: FOREVER,
        released: db.view(a).map_or(0, |e| e.released),
        host: with_host.then(String::new),
    }
}
