//! The entries of the database, kept small: a /8 pool with its leases in
//! memory costs a few tens of bytes an address in use. An entry's three
//! names (service, client, host) are one stretch of a string shared by all
//! entries, and its times take 32 bits each where they fit.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;

use super::Entry;
use crate::aas::lease::{State, Time, FOREVER};

/// A stored time standing for [`FOREVER`].
const NEVER: u32 = u32::MAX;
/// The slot's times did not fit in 32 bits: all three are kept aside, in
/// `Entries::wide` by address, in `Records::wide` at the index after it.
const WIDE: u32 = u32::MAX - 1;
/// Replaced names are rewritten out once there are this many bytes of
/// them, and more of them than of names in use.
const COMPACT_AT: usize = 64 * 1024;

/// One entry as it is stored.
#[derive(Clone, Copy)]
struct Slot {
    seq: u64,
    /// Reserved, end, released, as [`narrow`] writes them.
    times: [u32; 3],
    /// Where the service, client and host names lie in `Entries::names`,
    /// one after the other, and their lengths.
    names: u32,
    lens: [u16; 3],
    state: State,
    disabled: bool,
}

impl Slot {
    /// The slot of an entry whose names are at `names`; `None` if its
    /// times do not fit.
    fn of<S>(e: &Entry<S>, (names, lens): (u32, [u16; 3])) -> Option<Slot> {
        Some(Slot {
            seq: e.seq,
            times: [narrow(e.reserved)?, narrow(e.end)?, narrow(e.released)?],
            names,
            lens,
            state: e.state,
            disabled: e.disabled,
        })
    }

    /// The slot of an entry whose times are kept elsewhere, under `at`.
    fn wide<S>(e: &Entry<S>, (names, lens): (u32, [u16; 3]), at: u32) -> Slot {
        Slot {
            seq: e.seq,
            times: [WIDE, at, 0],
            names,
            lens,
            state: e.state,
            disabled: e.disabled,
        }
    }

    fn widened(&self) -> [Time; 3] {
        let [r, e, f] = self.times;
        [widen(r), widen(e), widen(f)]
    }

    fn names_len(&self) -> usize {
        self.lens.iter().map(|&l| usize::from(l)).sum()
    }

    fn names_in<'a>(&self, names: &'a str) -> [&'a str; 3] {
        let a = self.names as usize;
        let b = a + usize::from(self.lens[0]);
        let c = b + usize::from(self.lens[1]);
        let d = c + usize::from(self.lens[2]);
        [&names[a..b], &names[b..c], &names[c..d]]
    }

    fn view<'a>(&self, names: &'a str, [reserved, end, released]: [Time; 3]) -> Entry<&'a str> {
        let [service, client, host] = self.names_in(names);
        Entry {
            state: self.state,
            disabled: self.disabled,
            service,
            client,
            host,
            reserved,
            end,
            released,
            seq: self.seq,
        }
    }
}

/// Records read from a log or a checkpoint, in the file's order, each
/// kept as an entry is: start-up copies a record's names only once.
#[derive(Default)]
pub struct Records {
    slots: Vec<(u32, Slot)>,
    /// The records' names one after the other, each valid UTF-8, so the
    /// whole is too: it is checked as text once, not name by name.
    names: Vec<u8>,
    /// The times of slots marked [`WIDE`], at the index in their times.
    wide: Vec<[Time; 3]>,
}

impl Records {
    /// Room for `records` records with `names` bytes of names in all, so
    /// that none is copied as they are pushed; room never touched costs no
    /// memory.
    pub fn with_room(records: usize, names: usize) -> Records {
        Records {
            slots: Vec::with_capacity(records),
            names: Vec::with_capacity(names),
            wide: Vec::new(),
        }
    }

    pub fn push<S: AsRef<str>>(&mut self, addr: u32, e: &Entry<S>) {
        let names = [&e.service, &e.client, &e.host].map(|n| cut(n.as_ref()).as_bytes());
        self.push_names(addr, e, names);
    }

    /// Push a record whose names are each valid UTF-8 of at most
    /// u16::MAX bytes, as the log's decoder gives them.
    pub fn push_checked(&mut self, addr: u32, e: &Entry<&[u8]>) {
        self.push_names(addr, e, [e.service, e.client, e.host]);
    }

    fn push_names<S>(&mut self, addr: u32, e: &Entry<S>, names: [&[u8]; 3]) {
        let at = u32::try_from(self.names.len()).expect("names of entries beyond 4 GiB");
        let mut lens = [0; 3];
        for (len, name) in lens.iter_mut().zip(names) {
            self.names.extend_from_slice(name);
            *len = name.len() as u16;
        }
        let slot = Slot::of(e, (at, lens)).unwrap_or_else(|| {
            self.wide.push([e.reserved, e.end, e.released]);
            Slot::wide(e, (at, lens), (self.wide.len() - 1) as u32)
        });
        self.slots.push((addr, slot));
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// How many records are of a change after `seq`.
    pub fn newer_than(&self, seq: u64) -> usize {
        self.slots.iter().filter(|(_, s)| s.seq > seq).count()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, Entry<&str>)> {
        let names = std::str::from_utf8(&self.names).expect("names are pushed as text");
        self.slots.iter().map(move |(a, s)| {
            let times = match s.times[0] {
                WIDE => self.wide[s.times[1] as usize],
                _ => s.widened(),
            };
            (*a, s.view(names, times))
        })
    }
}

/// Append an entry's names: where they start, and their lengths.
fn push_names<S: AsRef<str>>(to: &mut String, e: &Entry<S>) -> (u32, [u16; 3]) {
    let at = u32::try_from(to.len()).expect("names of entries beyond 4 GiB");
    let mut lens = [0; 3];
    for (len, name) in lens.iter_mut().zip([&e.service, &e.client, &e.host]) {
        let name = cut(name.as_ref());
        to.push_str(name);
        *len = name.len() as u16;
    }
    (at, lens)
}

/// Entries by address, in address order.
#[derive(Default)]
pub struct Entries {
    slots: BTreeMap<u32, Slot>,
    /// Every slot's names; `dead` bytes of it are names since replaced.
    names: String,
    dead: usize,
    /// The times of slots marked [`WIDE`] (a time past 2106, or a test's).
    wide: HashMap<u32, [Time; 3]>,
}

/// A time in 32 bits, if it fits.
fn narrow(t: Time) -> Option<u32> {
    match t {
        FOREVER => Some(NEVER),
        t => u32::try_from(t).ok().filter(|&n| n < WIDE),
    }
}

fn widen(n: u32) -> Time {
    match n {
        NEVER => FOREVER,
        n => Time::from(n),
    }
}

/// At most u16::MAX bytes, cut at a character boundary (the protocol and
/// the log allow 255, so nothing is cut in practice).
fn cut(s: &str) -> &str {
    let mut n = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

impl Entries {
    /// The newest record of each address (highest seq; the later one of
    /// equal seqs) for which `keep` holds: the entries, how many addresses
    /// were not kept, and the highest seq kept. The records' names become
    /// the entries' names, their slots the map's.
    pub fn from_records(r: Records, keep: impl Fn(u32) -> bool) -> (Entries, usize, u64) {
        let Records {
            mut slots,
            names,
            wide: wide_times,
        } = r;
        let mut names = String::from_utf8(names).expect("names are pushed as text");
        // A file written in address order (a compacted log, a checkpoint)
        // has one record an address, in order: nothing to sort.
        if !slots.windows(2).all(|w| w[0].0 < w[1].0) {
            // Newest first within each address (the later of equal seqs, by
            // reversing before a stable sort), then keep each address's first.
            slots.reverse();
            slots.sort_by_key(|(a, s)| (*a, std::cmp::Reverse(s.seq)));
            slots.dedup_by_key(|(a, _)| *a);
        }
        let before = slots.len();
        slots.retain(|(a, _)| keep(*a));
        let (mut live, mut seq) = (0, 0);
        let mut wide = HashMap::new();
        for (a, s) in &slots {
            live += s.names_len();
            seq = seq.max(s.seq);
            if s.times[0] == WIDE {
                wide.insert(*a, wide_times[s.times[1] as usize]);
            }
        }
        names.shrink_to_fit();
        let mut t = Entries {
            dead: names.len() - live,
            names,
            wide,
            slots: slots.into_iter().collect(),
        };
        if t.dead >= COMPACT_AT && t.dead * 2 > t.names.len() {
            t.compact_names();
        }
        let dropped = before - t.len();
        (t, dropped, seq)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn contains(&self, addr: u32) -> bool {
        self.slots.contains_key(&addr)
    }

    pub fn get(&self, addr: u32) -> Option<Entry<&str>> {
        self.slots.get(&addr).map(|s| self.view(addr, s))
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, Entry<&str>)> {
        self.slots.iter().map(|(&a, s)| (a, self.view(a, s)))
    }

    pub fn range(&self, r: RangeInclusive<u32>) -> impl Iterator<Item = (u32, Entry<&str>)> {
        self.slots.range(r).map(|(&a, s)| (a, self.view(a, s)))
    }

    /// Set the entry of `addr`, replacing any it had.
    pub fn insert<S: AsRef<str>>(&mut self, addr: u32, e: &Entry<S>) {
        let old = self.slots.get(&addr).copied();
        let names = match old {
            // A renewal keeps its names: nothing is written.
            Some(o)
                if self.names_of(&o)
                    == [
                        cut(e.service.as_ref()),
                        cut(e.client.as_ref()),
                        cut(e.host.as_ref()),
                    ] =>
            {
                (o.names, o.lens)
            }
            _ => {
                self.dead += old.map_or(0, |o| o.names_len());
                self.push_names(e)
            }
        };
        if old.is_some_and(|o| o.times[0] == WIDE) {
            self.wide.remove(&addr);
        }
        let slot = self.slot(addr, e, names);
        self.slots.insert(addr, slot);
        if self.dead >= COMPACT_AT && self.dead * 2 > self.names.len() {
            self.compact_names();
        }
    }

    pub fn remove(&mut self, addr: u32) {
        if let Some(old) = self.slots.remove(&addr) {
            self.dead += old.names_len();
            if old.times[0] == WIDE {
                self.wide.remove(&addr);
            }
        }
    }

    fn view(&self, addr: u32, s: &Slot) -> Entry<&str> {
        let times = match s.times[0] {
            WIDE => self.wide[&addr],
            _ => s.widened(),
        };
        s.view(&self.names, times)
    }

    fn names_of(&self, s: &Slot) -> [&str; 3] {
        s.names_in(&self.names)
    }

    fn push_names<S: AsRef<str>>(&mut self, e: &Entry<S>) -> (u32, [u16; 3]) {
        push_names(&mut self.names, e)
    }

    fn slot<S>(&mut self, addr: u32, e: &Entry<S>, names: (u32, [u16; 3])) -> Slot {
        Slot::of(e, names).unwrap_or_else(|| {
            self.wide.insert(addr, [e.reserved, e.end, e.released]);
            Slot::wide(e, names, 0)
        })
    }

    /// Write the names in use to a new string, dropping replaced ones.
    fn compact_names(&mut self) {
        let mut names = String::with_capacity(self.names.len() - self.dead);
        for s in self.slots.values_mut() {
            let at = s.names as usize;
            let len = s.names_len();
            s.names = names.len() as u32;
            names.push_str(&self.names[at..at + len]);
        }
        self.names = names;
        self.dead = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(client: &str, host: &str, end: Time) -> Entry {
        Entry {
            state: State::Leased,
            disabled: false,
            service: "dhcp".into(),
            client: client.into(),
            host: host.into(),
            reserved: 100,
            end,
            released: 50,
            seq: 7,
        }
    }

    #[test]
    fn entries_read_back_as_they_were_put() {
        let mut t = Entries::default();
        let wide = Entry {
            reserved: u64::from(u32::MAX),
            released: u64::MAX - 1,
            ..entry("é", "", FOREVER - 1)
        };
        t.insert(1, &entry("a", "pc", 200));
        t.insert(2, &entry("b", "", FOREVER));
        t.insert(3, &wide);
        assert_eq!(t.get(1).map(|e| e.owned()), Some(entry("a", "pc", 200)));
        assert_eq!(t.get(2).map(|e| e.owned()), Some(entry("b", "", FOREVER)));
        assert_eq!(t.get(3).map(|e| e.owned()), Some(wide.clone()));
        // Narrow again: the wide times go.
        t.insert(3, &entry("c", "", 300));
        assert!(t.wide.is_empty());
        assert_eq!(t.get(3).map(|e| e.owned()), Some(entry("c", "", 300)));
        t.insert(4, &wide);
        t.remove(4);
        assert!(t.wide.is_empty() && t.get(4).is_none());
        let all: Vec<u32> = t.iter().map(|(a, _)| a).collect();
        assert_eq!(all, [1, 2, 3]);
        assert_eq!(t.range(2..=9).count(), 2);
    }

    #[test]
    fn a_renewal_writes_no_names_and_replaced_ones_are_dropped_in_time() {
        let mut t = Entries::default();
        t.insert(1, &entry("a", "pc", 200));
        let size = t.names.len();
        t.insert(1, &entry("a", "pc", 400));
        assert_eq!(t.names.len(), size, "same names, same place");
        // Every address changes hands many times: the string stays within
        // twice the names in use, and every entry reads back.
        for round in 0..2_000u32 {
            for a in 0..50u32 {
                t.insert(a, &entry(&format!("client-{round}-{a}"), "host", 200));
            }
            assert!(
                t.names.len() <= 2 * COMPACT_AT + 50 * 40,
                "{}",
                t.names.len()
            );
        }
        for a in 0..50u32 {
            assert_eq!(t.get(a).unwrap().client, format!("client-1999-{a}"));
        }
    }

    #[test]
    fn from_records_equals_insert_one_by_one() {
        let records: Vec<(u32, Entry)> = (0..100)
            .map(|a| (a * 3, entry(&format!("c{a}"), "", 200 + u64::from(a))))
            .collect();
        let mut r = Records::default();
        for (a, e) in &records {
            r.push(*a, e);
        }
        let (bulk, dropped, seq) = Entries::from_records(r, |_| true);
        assert_eq!((dropped, seq), (0, 7));
        let mut one = Entries::default();
        for (a, e) in &records {
            one.insert(*a, e);
        }
        let all = |t: &Entries| t.iter().map(|(a, e)| (a, e.owned())).collect::<Vec<_>>();
        assert_eq!(all(&bulk), records);
        assert_eq!(all(&one), records);
        assert_eq!(bulk.names.len(), bulk.names.capacity(), "sized to fit");
    }
}
