//! Which address each client holds or held last, found by its names
//! without a copy of them: an open-addressing table of addresses, each
//! beside 32 bits of its key's hash. Where those bits agree, the caller
//! tells from the address's entry whether it has the key.

/// (hash bits, address) pairs, linear probing from the hash bits; bits 0
/// mark an empty slot.
#[derive(Default)]
pub struct Clients {
    slots: Vec<(u32, u32)>,
    len: usize,
}

/// The hash of a key, (pool, service, client), eight bytes a step:
/// start-up hashes every client.
pub fn hash(pool: usize, service: &str, client: &str) -> u64 {
    let mut h = pool as u64;
    // A folded multiply: every input bit moves the high and the low half.
    let mut add = |w: u64| {
        let p = u128::from(h ^ w ^ 0x243f_6a88_85a3_08d3) * 0x9e37_79b9_7f4a_7c15;
        h = p as u64 ^ (p >> 64) as u64;
    };
    for part in [service.as_bytes(), client.as_bytes()] {
        add(part.len() as u64);
        let mut words = part.chunks_exact(8);
        for w in &mut words {
            add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let mut rest = [0u8; 8];
        rest[..words.remainder().len()].copy_from_slice(words.remainder());
        add(u64::from_le_bytes(rest));
    }
    h
}

/// The hash bits kept of a key, never 0.
fn tag(hash: u64) -> u32 {
    ((hash >> 32) as u32).max(1)
}

/// Slots for `n` keys at most 7/8 full.
fn size_for(n: usize) -> usize {
    (n + n / 7 + 1).next_power_of_two().max(16)
}

impl Clients {
    pub fn with_capacity(n: usize) -> Clients {
        Clients {
            slots: vec![(0, 0); size_for(n)],
            len: 0,
        }
    }

    /// The address of the key `hash` was made of; `is_key(addr)`: whether
    /// the entry of `addr` has the key.
    pub fn get(&self, hash: u64, is_key: impl Fn(u32) -> bool) -> Option<u32> {
        let mask = self.slots.len().checked_sub(1)?;
        let t = tag(hash);
        let mut i = t as usize & mask;
        loop {
            match self.slots[i] {
                (0, _) => return None,
                (s, a) if s == t && is_key(a) => return Some(a),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Make `addr` the key's address, in place of any other. `addr` must
    /// be in no slot.
    pub fn set(&mut self, hash: u64, addr: u32, is_key: impl Fn(u32) -> bool) {
        if self.slots.len() < size_for(self.len + 1) {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let t = tag(hash);
        let mut i = t as usize & mask;
        loop {
            match self.slots[i] {
                (0, _) => {
                    self.slots[i] = (t, addr);
                    self.len += 1;
                    return;
                }
                (s, a) if s == t && is_key(a) => {
                    self.slots[i].1 = addr;
                    return;
                }
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Take `addr` out, if it is the address of the key `hash` was made of.
    pub fn remove(&mut self, hash: u64, addr: u32) {
        let Some(mask) = self.slots.len().checked_sub(1) else {
            return;
        };
        let t = tag(hash);
        let mut hole = t as usize & mask;
        loop {
            match self.slots[hole] {
                (0, _) => return,
                (s, a) if s == t && a == addr => break,
                _ => hole = (hole + 1) & mask,
            }
        }
        // Move up each later slot of the run that may sit in the hole (its
        // own place is not between the hole and it), so no search stops short.
        let mut j = (hole + 1) & mask;
        while self.slots[j].0 != 0 {
            let home = self.slots[j].0 as usize & mask;
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.slots[hole] = (0, 0);
        self.len -= 1;
    }

    fn grow(&mut self) {
        let old = std::mem::replace(&mut self.slots, vec![(0, 0); size_for(self.len * 2 + 1)]);
        let mask = self.slots.len() - 1;
        for (t, a) in old.into_iter().filter(|s| s.0 != 0) {
            let mut i = t as usize & mask;
            while self.slots[i].0 != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = (t, a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Keys two by two of one hash, so their hash bits agree and only
    /// `is_key` tells them apart, against a map.
    #[test]
    fn set_get_remove_agree_with_a_map_through_collisions_and_growth() {
        let hash = |k: u32| u64::from(k / 2);
        let mut c = Clients::default();
        let mut model: HashMap<u32, u32> = HashMap::new();
        // key k's address is k * 10 + generation; is_key reads it back.
        let key_of = |a: u32| a / 10;
        for round in 0..3u32 {
            for k in 0..200u32 {
                let addr = k * 10 + round;
                if let Some(old) = model.get(&k) {
                    c.remove(hash(k), *old);
                }
                c.set(hash(k), addr, |a| key_of(a) == k);
                model.insert(k, addr);
            }
            for k in (0..200u32).filter(|k| k % 3 == round) {
                c.remove(hash(k), model[&k]);
                model.remove(&k);
            }
            for k in 0..220u32 {
                assert_eq!(
                    c.get(hash(k), |a| key_of(a) == k),
                    model.get(&k).copied(),
                    "key {k}"
                );
            }
        }
        assert_eq!(c.len, model.len());
        // Removing an address that is not the key's changes nothing.
        c.remove(hash(1), 12345);
        assert_eq!(c.len, model.len());
    }

    /// Names as in.dhcpd makes them differ in a few bytes only; their
    /// hash bits must differ all the same, or lookups compare names.
    #[test]
    fn client_names_that_differ_in_a_few_bytes_get_distinct_hash_bits() {
        let mut tags = std::collections::HashSet::new();
        let mut homes = std::collections::HashSet::new();
        for n in 0..100_000u32 {
            let client = format!(
                "10.0.0.0/1/02:00:00:{:02x}:{:02x}:{:02x}",
                n >> 16,
                (n >> 8) & 255,
                n & 255
            );
            let t = tag(hash(0, "dhcp", &client));
            tags.insert(t);
            homes.insert(t & 0x1_ffff);
        }
        // Random bits: 1 or 2 equal pairs among 100,000, and about 70,000
        // of the 131,072 places of a table that holds them.
        assert!(tags.len() >= 99_990, "{} distinct", tags.len());
        assert!(homes.len() >= 68_000, "{} places", homes.len());
        assert_ne!(hash(0, "dhcp", "a"), hash(1, "dhcp", "a"));
        assert_ne!(hash(0, "dhcp", "a"), hash(0, "dhc", "pa"));
    }

    #[test]
    fn an_empty_table_finds_nothing() {
        let mut c = Clients::default();
        assert_eq!(c.get(7, |_| true), None);
        c.remove(7, 1);
        c.set(7, 1, |_| false);
        assert_eq!(c.get(7, |a| a == 1), Some(1));
    }
}
