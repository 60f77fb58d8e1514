//! The lease database of in.aasd: its pools, the state of every address
//! that was ever used, and the indexes that make allocation O(log n).
//!
//! An address with no entry has never been used and is free. So memory and
//! start-up grow with the addresses in use, not with the pool size: a /8
//! pool costs a few ranges until its addresses are handed out.
//!
//! Time is passed in (unix seconds), never read here, so tests control it.

mod clients;
mod entries;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use clients::Clients;
use entries::Entries;
pub use entries::Records;

use crate::aas::lease::{
    Alloc, Filter, Pool, Refusal, Selector, State, Stats, Time, Want, FOREVER,
};

/// What the database knows about one address. An `Entry` owns its names;
/// an `Entry<&str>` borrows them, from the database or from a log's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<S = String> {
    pub state: State,
    /// Never allocated; a lease held when disabled is not renewed.
    pub disabled: bool,
    /// The requester that holds or last held it (`dhcp`, `ppp`, ...).
    pub service: S,
    /// The client that holds or last held it, as the requester names it.
    pub client: S,
    /// That client's host name, as the requester sent it (`host=`; empty
    /// if none).
    pub host: S,
    /// When the current holder got it.
    pub reserved: Time,
    /// When the reservation, lease or decline ends ([`FOREVER`] = never).
    pub end: Time,
    /// When it last became free (0 = never held).
    pub released: Time,
    /// Order of the change that made this entry; the newest wins on recovery.
    pub seq: u64,
}

impl Entry {
    /// An address never used: free, nobody's.
    pub fn fresh() -> Entry {
        Entry {
            state: State::Free,
            disabled: false,
            service: String::new(),
            client: String::new(),
            host: String::new(),
            reserved: 0,
            end: 0,
            released: 0,
            seq: 0,
        }
    }
}

impl<S: AsRef<str>> Entry<S> {
    /// The state at `now`: a reservation, lease or decline past its end is free.
    pub fn state_at(&self, now: Time) -> State {
        if self.state != State::Free && self.end <= now {
            State::Free
        } else {
            self.state
        }
    }

    fn held_by(&self, service: &str, client: &str, now: Time) -> bool {
        matches!(self.state_at(now), State::Offered | State::Leased) && self.names(service, client)
    }

    /// Whether it is the entry of this client of this service.
    fn names(&self, service: &str, client: &str) -> bool {
        self.service.as_ref() == service && self.client.as_ref() == client
    }

    /// The same entry, its names borrowed.
    pub fn view(&self) -> Entry<&str> {
        Entry {
            state: self.state,
            disabled: self.disabled,
            service: self.service.as_ref(),
            client: self.client.as_ref(),
            host: self.host.as_ref(),
            reserved: self.reserved,
            end: self.end,
            released: self.released,
            seq: self.seq,
        }
    }

    /// The same entry with names of its own.
    pub fn owned(&self) -> Entry {
        Entry {
            state: self.state,
            disabled: self.disabled,
            service: self.service.as_ref().to_string(),
            client: self.client.as_ref().to_string(),
            host: self.host.as_ref().to_string(),
            reserved: self.reserved,
            end: self.end,
            released: self.released,
            seq: self.seq,
        }
    }
}

/// One address changed: what to write to the log, and how to undo it if
/// the write fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub addr: u32,
    pub before: Option<Entry>,
    pub after: Entry,
}

/// Who an address is reserved for: a requester's client with that address
/// pinned (`ip_address` in dhcpd.conf).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub service: String,
    pub client: String,
    /// When the requester reserved it.
    pub since: Time,
}

#[derive(Default)]
struct PoolIndex {
    /// Used addresses that are free now, oldest release first: the LRU order.
    free: BTreeSet<(Time, u32)>,
    /// Held or declined addresses with a finite end, soonest first.
    timed: BTreeSet<(Time, u32)>,
    /// Declined addresses, oldest decline first: the first to free when
    /// the pool's cap is reached.
    declines: BTreeSet<(Time, u32)>,
    /// When "pool exhausted" was last logged.
    exhausted_logged: Option<Time>,
    /// Addresses before this position in the pool were used at some time,
    /// so the never-used ones are found without a scan.
    cursor: u64,
    offered: u64,
    leased: u64,
    declined: u64,
    disabled: u64,
    /// Free entries (used before, not disabled); the free count is derived.
    used_free: u64,
}

pub struct Db {
    pools: Vec<Pool>,
    /// (range start, range end, pool index), by start.
    owner: Vec<(u32, u32, usize)>,
    entries: Entries,
    index: Vec<PoolIndex>,
    /// (pool, service, client) -> the address the client holds or last
    /// held: the last entry put with those names, while it has them.
    by_client: Clients,
    seq: u64,
    /// Addresses never allocated to anyone but their reserving client.
    /// Kept in memory only, not in the log: requesters send theirs again
    /// on every connection, before any other request.
    reserved: BTreeMap<u32, Reservation>,
}

impl Db {
    /// Pools must not overlap (the configuration checks it).
    pub fn new(pools: Vec<Pool>) -> Db {
        let mut owner: Vec<_> = (pools.iter().enumerate())
            .flat_map(|(i, p)| p.ranges.iter().map(move |&(a, b)| (a, b, i)))
            .collect();
        owner.sort_unstable();
        let index = pools.iter().map(|_| PoolIndex::default()).collect();
        Db {
            pools,
            owner,
            entries: Entries::default(),
            index,
            by_client: Clients::default(),
            seq: 0,
            reserved: BTreeMap::new(),
        }
    }

    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Number no later change at or below `seq`: a checkpoint was named
    /// after it, though no entry may carry it (an undone change, a dropped
    /// pool).
    pub fn raise_seq(&mut self, seq: u64) {
        self.seq = self.seq.max(seq);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, in address order: what compaction and checkpoints write.
    pub fn entries(&self) -> impl Iterator<Item = (u32, Entry<&str>)> {
        self.entries.iter()
    }

    /// A copy of the entry of `addr`.
    pub fn get(&self, addr: u32) -> Option<Entry> {
        self.entries.get(addr).map(|e| e.owned())
    }

    /// The entry of `addr`, its names borrowed.
    pub fn view(&self, addr: u32) -> Option<Entry<&str>> {
        self.entries.get(addr)
    }

    /// The entry of `addr`, which the indexes name.
    fn at(&self, addr: u32) -> Entry<&str> {
        self.entries.get(addr).expect("an entry the indexes name")
    }

    pub fn pool_of(&self, addr: u32) -> Option<usize> {
        pool_in(&self.owner, addr)
    }

    fn pool_named(&self, name: &str) -> Result<usize, Refusal> {
        self.pools
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| Refusal::NoPool(name.to_string()))
    }

    /// The address at position `i` of pool `p`.
    fn nth(&self, p: usize, mut i: u64) -> u32 {
        for &(a, b) in &self.pools[p].ranges {
            let n = u64::from(b - a) + 1;
            if i < n {
                return a + i as u32;
            }
            i -= n;
        }
        unreachable!("position beyond the pool")
    }

    /// Load an entry read from the log or a checkpoint. Addresses that are
    /// in no pool any more are skipped (returns false).
    pub fn restore(&mut self, addr: u32, e: Entry) -> bool {
        if self.pool_of(addr).is_none() {
            return false;
        }
        self.seq = self.seq.max(e.seq);
        self.put(addr, Some(&e));
        true
    }

    /// Load many records at once (start-up): of each address the newest
    /// (highest seq; the later one of equal seqs) wins over the entries
    /// held already and earlier records. Records of addresses in no pool
    /// are dropped; returns how many. The maps are built sorted in one
    /// pass, several times faster than [`Db::restore`] one by one.
    pub fn load<S: AsRef<str>>(&mut self, records: Vec<(u32, Entry<S>)>) -> usize {
        let mut r = Records::default();
        for (a, e) in &records {
            r.push(*a, e);
        }
        self.load_records(r)
    }

    /// As [`Db::load`], the records as a log or checkpoint was read.
    pub fn load_records(&mut self, records: Records) -> usize {
        if !self.entries.is_empty() {
            // The entries held first, so a record wins a tie.
            let held = std::mem::take(&mut self.entries);
            let mut all = Records::default();
            for (a, e) in held.iter().chain(records.iter()) {
                all.push(a, &e);
            }
            return self.load_records(all);
        }
        let owner = &self.owner;
        let (entries, dropped, seq) =
            Entries::from_records(records, |a| pool_in(owner, a).is_some());
        self.entries = entries;
        self.seq = self.seq.max(seq);
        self.reindex();
        dropped
    }

    /// Rebuild every index from the entries.
    fn reindex(&mut self) {
        let n = self.pools.len();
        let mut free: Vec<Vec<(Time, u32)>> = vec![Vec::new(); n];
        let mut timed: Vec<Vec<(Time, u32)>> = vec![Vec::new(); n];
        let mut declines: Vec<Vec<(Time, u32)>> = vec![Vec::new(); n];
        let mut index: Vec<PoolIndex> = (0..n).map(|_| PoolIndex::default()).collect();
        let mut by_client = Clients::with_capacity(self.entries.len());
        for (addr, e) in self.entries.iter() {
            let p = self.pool_of(addr).expect("entries lie in pools");
            *count(&mut index[p], &e) += 1;
            if e.state == State::Free {
                if !e.disabled {
                    free[p].push((e.released, addr));
                }
            } else if e.end != FOREVER {
                timed[p].push((e.end, addr));
            }
            if e.state == State::Declined {
                declines[p].push((e.reserved, addr));
            }
            if !e.client.is_empty() {
                // The client's newest address, as put() in log order leaves it.
                let hash = clients::hash(p, e.service, e.client);
                let is_key = |a| self.has_key(a, p, e.service, e.client);
                if by_client
                    .get(hash, is_key)
                    .is_none_or(|a| self.at(a).seq < e.seq)
                {
                    by_client.set(hash, addr, is_key);
                }
            }
        }
        for (p, ix) in index.iter_mut().enumerate() {
            ix.free = std::mem::take(&mut free[p]).into_iter().collect();
            ix.timed = std::mem::take(&mut timed[p]).into_iter().collect();
            ix.declines = std::mem::take(&mut declines[p]).into_iter().collect();
            ix.exhausted_logged = self.index[p].exhausted_logged;
        }
        self.index = index;
        self.by_client = by_client;
    }

    /// Whether the entry of `addr` is one of this client's in pool `p`.
    fn has_key(&self, addr: u32, p: usize, service: &str, client: &str) -> bool {
        has_key(&self.owner, &self.entries, addr, p, service, client)
    }

    /// The only way entries change, so the indexes always agree with them.
    fn put<S: AsRef<str>>(&mut self, addr: u32, new: Option<&Entry<S>>) {
        let p = self.pool_of(addr).expect("entries lie in pools");
        if let Some(old) = self.entries.get(addr) {
            let ix = &mut self.index[p];
            ix.free.remove(&(old.released, addr));
            ix.timed.remove(&(old.end, addr));
            ix.declines.remove(&(old.reserved, addr));
            *count(ix, &old) -= 1;
            if !old.client.is_empty() {
                self.by_client
                    .remove(clients::hash(p, old.service, old.client), addr);
            }
        }
        let Some(e) = new else {
            self.entries.remove(addr);
            return;
        };
        let ix = &mut self.index[p];
        *count(ix, e) += 1;
        if e.state == State::Free {
            if !e.disabled {
                ix.free.insert((e.released, addr));
            }
        } else if e.end != FOREVER {
            ix.timed.insert((e.end, addr));
        }
        if e.state == State::Declined {
            ix.declines.insert((e.reserved, addr));
        }
        self.entries.insert(addr, e);
        let (service, client) = (e.service.as_ref(), e.client.as_ref());
        if !client.is_empty() {
            let (owner, entries) = (&self.owner, &self.entries);
            self.by_client
                .set(clients::hash(p, service, client), addr, |a| {
                    has_key(owner, entries, a, p, service, client)
                });
        }
    }

    /// Change an entry and record the change.
    fn change(&mut self, addr: u32, mut after: Entry, out: &mut Vec<Change>) {
        self.seq += 1;
        after.seq = self.seq;
        let before = self.get(addr);
        self.put(addr, Some(&after));
        out.push(Change {
            addr,
            before,
            after,
        });
    }

    /// Put back what `changes` replaced, newest first (a failed log write).
    pub fn undo(&mut self, changes: &[Change]) {
        for c in changes.iter().rev() {
            self.put(c.addr, c.before.as_ref());
        }
    }

    /// Reservations, leases and declines past their end become free. Not
    /// logged: the entry's end already says so, and replay sees the same.
    pub fn expire(&mut self, now: Time) {
        for p in 0..self.pools.len() {
            while let Some(&(end, addr)) = self.index[p].timed.first() {
                if end > now {
                    break;
                }
                let mut e = self.at(addr).owned();
                e.state = State::Free;
                e.released = end;
                if e.client.is_empty() {
                    e.service.clear();
                }
                self.put(addr, Some(&e));
            }
        }
    }

    /// The address this client holds now in pool `p`, if any.
    fn held(&self, p: usize, service: &str, client: &str, now: Time) -> Option<u32> {
        let addr = self.recorded(p, service, client)?;
        self.at(addr).held_by(service, client, now).then_some(addr)
    }

    /// The address this client holds, or held last if nobody has had it
    /// since (its entry still names the client).
    fn recorded(&self, p: usize, service: &str, client: &str) -> Option<u32> {
        self.by_client.get(clients::hash(p, service, client), |a| {
            self.has_key(a, p, service, client)
        })
    }

    /// The address this client held last, if it is free and usable now.
    fn previous(&self, p: usize, service: &str, client: &str) -> Option<u32> {
        let addr = self.recorded(p, service, client)?;
        let e = self.at(addr);
        (e.state == State::Free && !e.disabled && !self.reserved.contains_key(&addr))
            .then_some(addr)
    }

    fn usable(&self, addr: u32, now: Time) -> bool {
        if self.reserved.contains_key(&addr) {
            return false;
        }
        match self.entries.get(addr) {
            None => true,
            Some(e) => !e.disabled && e.state_at(now) == State::Free,
        }
    }

    /// Least recently used free address of pool `p`: never-used ones first,
    /// then the one released longest ago.
    fn least_recently_used(&mut self, p: usize) -> Option<u32> {
        let size = self.pools[p].size();
        while self.index[p].cursor < size {
            let addr = self.nth(p, self.index[p].cursor);
            // A reserved one is passed for good: unreserve() puts it among
            // the free ones.
            if !self.entries.contains(addr) && !self.reserved.contains_key(&addr) {
                return Some(addr);
            }
            self.index[p].cursor += 1;
        }
        self.index[p]
            .free
            .iter()
            .map(|&(_, a)| a)
            .find(|a| !self.reserved.contains_key(a))
    }

    /// As [`Self::least_recently_used`], within `lo..=hi`. Walks the range:
    /// a requester that limits itself to a range pays for its length.
    fn least_recently_used_in(&self, p: usize, lo: u32, hi: u32) -> Option<u32> {
        let mut best: Option<(Time, u32)> = None;
        // Only the part of the range inside the pool: a range of a
        // billion addresses around a small pool costs the pool's size.
        let inside = self.pools[p]
            .ranges
            .iter()
            .map(|&(a, b)| a.max(lo)..=b.min(hi)); // empty where they miss
        for addr in inside.flatten() {
            if self.pool_of(addr) != Some(p) || self.reserved.contains_key(&addr) {
                continue;
            }
            match self.entries.get(addr) {
                None => return Some(addr),
                Some(e)
                    if e.state == State::Free
                        && !e.disabled
                        && best.is_none_or(|b| (e.released, addr) < b) =>
                {
                    best = Some((e.released, addr));
                }
                _ => {}
            }
        }
        best.map(|(_, a)| a)
    }

    /// Allocate, renew or reserve an address. A client holds at most one
    /// address per pool: getting another frees the one it had. A client
    /// known by nothing under its name takes over what it holds, or held
    /// last, under `alias`, which is renamed to it.
    pub fn alloc(&mut self, req: &Alloc, now: Time) -> Result<(u32, Time, Vec<Change>), Refusal> {
        self.expire(now);
        let p = self.pool_named(&req.pool)?;
        let mut renamed = Vec::new();
        let alias = req.alias.as_deref().filter(|a| *a != req.client);
        if let Some(alias) = alias {
            let own = self.held(p, &req.service, &req.client, now).is_some()
                || self.previous(p, &req.service, &req.client).is_some();
            let theirs = self
                .held(p, &req.service, alias, now)
                .or_else(|| self.previous(p, &req.service, alias));
            if let Some(a) = theirs.filter(|_| !own) {
                let mut e = self.at(a).owned();
                e.client = req.client.clone();
                self.change(a, e, &mut renamed);
            }
        }
        match self.alloc_in(p, req, now) {
            Ok((addr, end, changes)) => {
                renamed.extend(changes);
                Ok((addr, end, renamed))
            }
            Err(r) => {
                // Nothing is logged for a refusal: nothing may stay changed.
                self.undo(&renamed);
                Err(r)
            }
        }
    }

    fn alloc_in(
        &mut self,
        p: usize,
        req: &Alloc,
        now: Time,
    ) -> Result<(u32, Time, Vec<Change>), Refusal> {
        let held = self.held(p, &req.service, &req.client, now);
        let addr = match req.want {
            Want::Exact(a) => {
                if req.known {
                    match self.recorded(p, &req.service, &req.client) {
                        None => return Err(Refusal::Unknown(req.client.clone())),
                        Some(r) if r != a => return Err(Refusal::NotHeld(Ipv4Addr::from(a))),
                        Some(_) => {}
                    }
                }
                if self.pool_of(a) != Some(p) {
                    return Err(Refusal::NotInPool(Ipv4Addr::from(a)));
                }
                let e = self.entries.get(a);
                if e.is_some_and(|e| e.disabled) {
                    return Err(Refusal::Disabled(Ipv4Addr::from(a)));
                }
                // Also a renewal: a lease given before the reservation
                // came runs out and is not renewed.
                if self.reserved_for_other(a, &req.service, &req.client) {
                    return Err(Refusal::Reserved(Ipv4Addr::from(a)));
                }
                if req.mine && held != Some(a) {
                    return Err(Refusal::NotHeld(Ipv4Addr::from(a)));
                }
                if held != Some(a) && !self.usable(a, now) {
                    return Err(Refusal::Taken(Ipv4Addr::from(a)));
                }
                a
            }
            want => {
                let current =
                    held.filter(|&a| !self.at(a).disabled && !self.reserved.contains_key(&a));
                let previous = || self.previous(p, &req.service, &req.client);
                let in_range = |a: &u32| match want {
                    Want::Range(lo, hi) => (lo..=hi).contains(a),
                    _ => true,
                };
                let choice = if req.previous {
                    current.or_else(previous).filter(in_range)
                } else {
                    None
                };
                let choice = choice.or(match want {
                    // The client's own address counts as free to it.
                    Want::Prefer(a) if current == Some(a) => Some(a),
                    Want::Prefer(a) if self.pool_of(a) == Some(p) && self.usable(a, now) => Some(a),
                    _ => None,
                });
                let choice = match (choice, want) {
                    (Some(a), _) => Some(a),
                    (None, Want::Range(lo, hi)) => self.least_recently_used_in(p, lo, hi),
                    (None, _) => self.least_recently_used(p),
                };
                // A declined address stays out of use until its end even
                // when nothing else is free (RFC 2131 §4.3.3); max_declined
                // bounds how much of the pool that can take.
                choice.ok_or_else(|| Refusal::Exhausted(req.pool.clone()))?
            }
        };
        let mut changes = Vec::new();
        if let Some(old) = held.filter(|&h| h != addr) {
            let e = self.freed(old, now);
            self.change(old, e, &mut changes);
        }
        let renewal = held == Some(addr);
        let prior = self.get(addr);
        let mut e = prior.unwrap_or_else(Entry::fresh);
        let end = now.saturating_add(req.lease);
        let end = if req.lease == FOREVER { FOREVER } else { end };
        let keeps = req.keep > 0 && e.end != FOREVER && e.end.saturating_sub(now) >= req.keep;
        let same_host = req.host.as_ref().is_none_or(|h| *h == e.host);
        if renewal && !req.hold && e.state == State::Leased && keeps && same_host {
            return Ok((addr, e.end, changes));
        }
        if renewal && req.hold && e.state == State::Leased {
            // A bound client asking again (a DISCOVER) keeps its lease.
            e.end = e.end.max(end);
        } else {
            e.state = if req.hold {
                State::Offered
            } else {
                State::Leased
            };
            e.end = end;
        }
        if !renewal {
            e.reserved = now;
        }
        let same_client = e.service == req.service && e.client == req.client;
        match &req.host {
            Some(h) => e.host = h.clone(),
            None if !same_client => e.host.clear(),
            None => {}
        }
        e.service = req.service.clone();
        e.client = req.client.clone();
        let end = e.end;
        self.change(addr, e, &mut changes);
        Ok((addr, end, changes))
    }

    fn freed(&self, addr: u32, now: Time) -> Entry {
        let mut e = self.at(addr).owned();
        e.state = State::Free;
        e.end = now;
        e.released = now;
        e
    }

    fn in_pool(&self, addr: u32) -> Result<(), Refusal> {
        match self.pool_of(addr) {
            Some(_) => Ok(()),
            None => Err(Refusal::NotInPool(Ipv4Addr::from(addr))),
        }
    }

    /// Free an address. `by` = (service, client): only if that client holds
    /// it; `None`: an administrator's release, whoever holds it.
    pub fn release(
        &mut self,
        addr: u32,
        by: Option<(&str, &str)>,
        now: Time,
    ) -> Result<Vec<Change>, Refusal> {
        self.expire(now);
        self.in_pool(addr)?;
        let mut changes = Vec::new();
        let Some(e) = self.entries.get(addr) else {
            return match by {
                None => Ok(changes),
                Some(_) => Err(Refusal::NotHeld(Ipv4Addr::from(addr))),
            };
        };
        match by {
            Some((s, c)) if !e.held_by(s, c, now) => {
                return Err(Refusal::NotHeld(Ipv4Addr::from(addr)))
            }
            None if e.state == State::Free => return Ok(changes),
            _ => {}
        }
        let e = self.freed(addr, now);
        self.change(addr, e, &mut changes);
        Ok(changes)
    }

    /// Free the client's reservation (not a lease) in a pool: it chose
    /// another server.
    pub fn unhold(
        &mut self,
        pool: &str,
        service: &str,
        client: &str,
        now: Time,
    ) -> Result<Vec<Change>, Refusal> {
        self.unhold_if(pool, service, client, now, |_| true)
    }

    /// As [`Self::unhold`], only if `ours` says the address held is one to
    /// free (a store shared by several in.aasd frees only its own holds).
    pub fn unhold_if(
        &mut self,
        pool: &str,
        service: &str,
        client: &str,
        now: Time,
        ours: impl Fn(u32) -> bool,
    ) -> Result<Vec<Change>, Refusal> {
        self.expire(now);
        let p = self.pool_named(pool)?;
        let mut changes = Vec::new();
        if let Some(a) = self.held(p, service, client, now) {
            if self.at(a).state == State::Offered && ours(a) {
                let e = self.freed(a, now);
                self.change(a, e, &mut changes);
            }
        }
        Ok(changes)
    }

    /// Take an address out of use for `secs`. `by`: only the client that
    /// holds it may decline it.
    pub fn decline(
        &mut self,
        addr: u32,
        secs: Time,
        by: Option<(&str, &str)>,
        now: Time,
    ) -> Result<Vec<Change>, Refusal> {
        self.expire(now);
        self.in_pool(addr)?;
        if let Some((s, c)) = by {
            if !self.entries.get(addr).is_some_and(|e| e.held_by(s, c, now)) {
                return Err(Refusal::NotHeld(Ipv4Addr::from(addr)));
            }
        }
        let mut changes = Vec::new();
        let p = self.pool_of(addr).expect("checked above");
        let already = self.entries.get(addr).map(|e| e.state) == Some(State::Declined);
        if !already {
            // Over the cap: the oldest decline ends now.
            while self.index[p].declined >= self.pools[p].max_declined {
                let Some(&(_, old)) = self.index[p].declines.first() else {
                    break;
                };
                let e = self.freed(old, now);
                self.change(old, e, &mut changes);
            }
        }
        let mut e = self.get(addr).unwrap_or_else(Entry::fresh);
        e.state = State::Declined;
        e.reserved = now;
        e.end = now.saturating_add(secs);
        // Nobody's previous address: the one who declined it must not get it back.
        e.service.clear();
        e.client.clear();
        e.host.clear();
        self.change(addr, e, &mut changes);
        Ok(changes)
    }

    /// Disable (never allocate; a held lease is not renewed) or enable.
    pub fn set_disabled(
        &mut self,
        addr: u32,
        disabled: bool,
        now: Time,
    ) -> Result<Vec<Change>, Refusal> {
        self.expire(now);
        self.in_pool(addr)?;
        let mut e = self.get(addr).unwrap_or_else(Entry::fresh);
        let mut changes = Vec::new();
        if e.disabled != disabled {
            e.disabled = disabled;
            self.change(addr, e, &mut changes);
        }
        Ok(changes)
    }

    /// Hold `addr` back for (service, client): never allocated to anyone
    /// else from now on. Returns who holds it now if that is someone
    /// else (their lease runs out and is not renewed).
    pub fn reserve(
        &mut self,
        addr: u32,
        service: &str,
        client: &str,
        now: Time,
    ) -> Result<Option<(String, String, Time)>, Refusal> {
        self.expire(now);
        self.in_pool(addr)?;
        let same = |r: &Reservation| r.service == service && r.client == client;
        if !self.reserved.get(&addr).is_some_and(same) {
            self.reserved.insert(
                addr,
                Reservation {
                    service: service.to_string(),
                    client: client.to_string(),
                    since: now,
                },
            );
        }
        let holder = self.entries.get(addr).filter(|e| {
            matches!(e.state_at(now), State::Offered | State::Leased)
                && !(e.service == service && e.client == client)
        });
        Ok(holder.map(|e| (e.service.to_string(), e.client.to_string(), e.end)))
    }

    /// Let `addr` be allocated again.
    pub fn unreserve(&mut self, addr: u32) {
        if self.reserved.remove(&addr).is_some()
            && !self.entries.contains(addr)
            && self.pool_of(addr).is_some()
        {
            // The never-used walk may have passed it: list it as free, in
            // memory only (a free entry with nothing to log).
            self.put(addr, Some(&Entry::fresh()));
        }
    }

    pub fn reservation(&self, addr: u32) -> Option<&Reservation> {
        self.reserved.get(&addr)
    }

    /// Reserved addresses in `lo..=hi`, in address order.
    pub fn reservations(&self, lo: u32, hi: u32) -> impl Iterator<Item = (u32, &Reservation)> {
        self.reserved.range(lo..=hi).map(|(a, r)| (*a, r))
    }

    fn reserved_for_other(&self, addr: u32, service: &str, client: &str) -> bool {
        self.reserved
            .get(&addr)
            .is_some_and(|r| r.service != service || r.client != client)
    }

    /// Reserved and nobody's now: counted as reserved, not free.
    fn reserved_idle(&self, addr: u32, now: Time) -> bool {
        self.reserved.contains_key(&addr)
            && self
                .entries
                .get(addr)
                .is_none_or(|e| !e.disabled && e.state_at(now) == State::Free)
    }

    /// Whether to log that `pool` is exhausted: at most once a minute, so
    /// a flood of requests does not flood the log too.
    pub fn exhausted_log_due(&mut self, pool: &str, now: Time) -> bool {
        let Ok(p) = self.pool_named(pool) else {
            return true;
        };
        let ix = &mut self.index[p];
        if ix
            .exhausted_logged
            .is_some_and(|t| now < t.saturating_add(60))
        {
            return false;
        }
        ix.exhausted_logged = Some(now);
        true
    }

    pub fn stats(&mut self, now: Time) -> Vec<Stats> {
        self.expire(now);
        let mut reserved = vec![0u64; self.pools.len()];
        for &a in self.reserved.keys() {
            if let Some(p) = self.pool_of(a).filter(|_| self.reserved_idle(a, now)) {
                reserved[p] += 1;
            }
        }
        self.pools
            .iter()
            .zip(&self.index)
            .zip(reserved)
            .map(|((p, ix), reserved)| {
                let size = p.size();
                Stats {
                    reserved,
                    name: p.name.clone(),
                    size,
                    leased: ix.leased,
                    offered: ix.offered,
                    declined: ix.declined,
                    disabled: ix.disabled,
                    free: size - ix.leased - ix.offered - ix.declined - ix.disabled - reserved,
                }
            })
            .collect()
    }

    /// Whether `client` of `service` holds an address of `pool` now
    /// (offered or leased).
    pub fn holds(&self, pool: &str, service: &str, client: &str, now: Time) -> bool {
        self.pool_named(pool)
            .is_ok_and(|p| self.held(p, service, client, now).is_some())
    }

    /// Addresses of `pool` offered or leased, as of the last expiry (every
    /// request runs one first).
    pub fn in_use(&self, pool: &str) -> u64 {
        self.pool_named(pool)
            .map_or(0, |p| self.index[p].leased + self.index[p].offered)
    }

    /// Entries matching `f`, in address order, with their pool's name.
    pub fn query(&mut self, f: &Filter, now: Time) -> Vec<(u32, &str, Entry<&str>)> {
        self.query_page(f, now, usize::MAX)
    }

    /// The first `limit` of them: a listing made a page at a time, so its
    /// size in memory stays bounded however many entries match.
    pub fn query_page(
        &mut self,
        f: &Filter,
        now: Time,
        limit: usize,
    ) -> Vec<(u32, &str, Entry<&str>)> {
        self.expire(now);
        let (lo, hi) = f.range.unwrap_or((0, u32::MAX));
        let mut out = Vec::new();
        for (a, e) in self.entries.range(lo..=hi) {
            if out.len() == limit {
                break;
            }
            let pool = &self.pools[self.pool_of(a).expect("in a pool")].name;
            let keep = f.pool.as_ref().is_none_or(|p| p == pool)
                && f.service.as_ref().is_none_or(|s| *s == e.service)
                && f.client.as_ref().is_none_or(|c| *c == e.client)
                && f.state.is_none_or(|s| match s {
                    Selector::Disabled => e.disabled,
                    Selector::Reserved => self.reserved_idle(a, now),
                    Selector::State(st) => e.state == st,
                });
            if keep {
                out.push((a, pool.as_str(), e));
            }
        }
        out
    }

    /// Addresses held now that are in none of `pools`: a reload that drops
    /// them would lose leases, so it is refused.
    pub fn held_outside(&self, pools: &[Pool], now: Time) -> Vec<u32> {
        let other = Db::new(pools.to_vec());
        self.entries
            .iter()
            .filter(|(a, e)| {
                matches!(e.state_at(now), State::Offered | State::Leased)
                    && other.pool_of(*a).is_none()
            })
            .map(|(a, _)| a)
            .collect()
    }

    /// The same entries under new pools (a reload); those left outside
    /// every pool are dropped.
    pub fn with_pools(&self, pools: Vec<Pool>) -> Db {
        let mut db = Db::new(pools);
        db.load(self.entries().collect());
        db.seq = db.seq.max(self.seq);
        for (&a, r) in &self.reserved {
            if db.pool_of(a).is_some() {
                db.reserved.insert(a, r.clone());
            }
        }
        db
    }
}

/// The pool of `addr` by the ranges' owners.
fn pool_in(owner: &[(u32, u32, usize)], addr: u32) -> Option<usize> {
    let i = owner.partition_point(|&(start, _, _)| start <= addr);
    let &(_, end, pool) = owner.get(i.checked_sub(1)?)?;
    (addr <= end).then_some(pool)
}

/// Whether the entry of `addr` is one of this client's in pool `p`.
fn has_key(
    owner: &[(u32, u32, usize)],
    entries: &Entries,
    addr: u32,
    p: usize,
    service: &str,
    client: &str,
) -> bool {
    pool_in(owner, addr) == Some(p) && entries.get(addr).is_some_and(|e| e.names(service, client))
}

/// The counter an entry adds to.
fn count<'a, S>(ix: &'a mut PoolIndex, e: &Entry<S>) -> &'a mut u64 {
    match (e.state, e.disabled) {
        (State::Offered, _) => &mut ix.offered,
        (State::Leased, _) => &mut ix.leased,
        (State::Declined, _) => &mut ix.declined,
        (State::Free, true) => &mut ix.disabled,
        (State::Free, false) => &mut ix.used_free,
    }
}

#[cfg(test)]
mod tests;
