//! A cheap hash for the maps that find duplicates while dhcpd.conf is
//! read (headers, client keys, pinned addresses). The file is the
//! administrator's, so nothing hostile is hashed and SipHash's guard
//! against chosen collisions buys nothing; its cost does show in every
//! start under inetd with thousands of clients.

use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate over 8-byte words, as rustc's own maps hash.
#[derive(Default)]
pub struct WordHasher(u64);

/// A `BuildHasher` for `HashMap::with_hasher` and friends.
pub type Fast = BuildHasherDefault<WordHasher>;

/// An odd constant with well-mixed bits (from the golden ratio).
const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let mut last = [0u8; 8];
        let tail = chunks.remainder();
        last[..tail.len()].copy_from_slice(tail);
        // The length too, so that "a" and "a\0" differ.
        self.add(u64::from_le_bytes(last) ^ (tail.len() as u64) << 59);
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // A product's low bits depend on its factors' low bits only, and
        // the map takes its buckets from the low bits: fold the high in.
        self.0 ^ self.0 >> 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn equal_inputs_hash_alike_and_near_ones_apart() {
        let h = |s: &str| Fast::default().hash_one(s);
        assert_eq!(h("client 02:00:00:00:03:de"), h("client 02:00:00:00:03:de"));
        let all: std::collections::HashSet<u64> = [
            "a",
            "a\0",
            "b",
            "client 02:00:00:00:03:de",
            "client 02:00:00:00:03:df",
            "",
        ]
        .iter()
        .map(|s| h(s))
        .collect();
        assert_eq!(all.len(), 6);
    }
}
