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
/// The slot's times did not fit in 32 bits: all three are in `Entries::wide`.
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
    fn names_len(&self) -> usize {
        self.lens.iter().map(|&l| usize::from(l)).sum()
    }
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
    /// Built from entries sorted by address, one each: the names are
    /// written in one string of the size they need, the map in one pass.
    pub fn from_sorted<S: AsRef<str>>(records: &[(u32, Entry<S>)]) -> Entries {
        let size = records
            .iter()
            .map(|(_, e)| {
                e.service.as_ref().len() + e.client.as_ref().len() + e.host.as_ref().len()
            })
            .sum();
        let mut t = Entries {
            names: String::with_capacity(size),
            ..Entries::default()
        };
        let slots: Vec<(u32, Slot)> = records
            .iter()
            .map(|(a, e)| {
                let names = t.push_names(e);
                (*a, t.slot(*a, e, names))
            })
            .collect();
        t.slots = slots.into_iter().collect();
        t
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
        let [reserved, end, released] = match s.times {
            [WIDE, ..] => self.wide[&addr],
            [r, e, f] => [widen(r), widen(e), widen(f)],
        };
        let [service, client, host] = self.names_of(s);
        Entry {
            state: s.state,
            disabled: s.disabled,
            service,
            client,
            host,
            reserved,
            end,
            released,
            seq: s.seq,
        }
    }

    fn names_of(&self, s: &Slot) -> [&str; 3] {
        let a = s.names as usize;
        let b = a + usize::from(s.lens[0]);
        let c = b + usize::from(s.lens[1]);
        let d = c + usize::from(s.lens[2]);
        [&self.names[a..b], &self.names[b..c], &self.names[c..d]]
    }

    /// Append an entry's names: where they start, and their lengths.
    fn push_names<S: AsRef<str>>(&mut self, e: &Entry<S>) -> (u32, [u16; 3]) {
        let at = u32::try_from(self.names.len()).expect("names of entries beyond 4 GiB");
        let mut lens = [0; 3];
        for (len, name) in lens.iter_mut().zip([&e.service, &e.client, &e.host]) {
            let name = cut(name.as_ref());
            self.names.push_str(name);
            *len = name.len() as u16;
        }
        (at, lens)
    }

    fn slot<S>(&mut self, addr: u32, e: &Entry<S>, (names, lens): (u32, [u16; 3])) -> Slot {
        let times = match (narrow(e.reserved), narrow(e.end), narrow(e.released)) {
            (Some(r), Some(e), Some(f)) => [r, e, f],
            _ => {
                self.wide.insert(addr, [e.reserved, e.end, e.released]);
                [WIDE; 3]
            }
        };
        Slot {
            seq: e.seq,
            times,
            names,
            lens,
            state: e.state,
            disabled: e.disabled,
        }
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
    fn from_sorted_equals_insert_one_by_one() {
        let records: Vec<(u32, Entry)> = (0..100)
            .map(|a| (a * 3, entry(&format!("c{a}"), "", 200 + u64::from(a))))
            .collect();
        let bulk = Entries::from_sorted(&records);
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
