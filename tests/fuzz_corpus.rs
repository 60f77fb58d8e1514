//! The fuzz targets' inputs replayed on stable Rust, without libFuzzer:
//! every seed (fuzz/seeds/<target>/) and every minimized finding
//! (tests/corpus/<target>/) goes through the same checks as in `make fuzz`
//! (src/fuzz.rs). Then seeded random mutations of the seed packets, so
//! that each `cargo test` explores a little too.

use std::fs;
use std::path::{Path, PathBuf};

use indhcpd::fuzz;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 6] = [
    ("dhcp_handle", fuzz::dhcp_handle),
    ("packet_validate", fuzz::packet_validate),
    ("dhcpd_conf", fuzz::dhcpd_conf),
    ("aasd_conf", fuzz::aasd_conf),
    ("aas_protocol", fuzz::aas_protocol),
    ("journal_replay", fuzz::journal_replay),
];

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_seed_and_finding_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, target) in TARGETS {
        let seeds = inputs(&root.join("fuzz/seeds").join(name));
        assert!(!seeds.is_empty(), "no seeds for {name}");
        for file in seeds
            .iter()
            .chain(&inputs(&root.join("tests/corpus").join(name)))
        {
            let data = fs::read(file).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", file.display());
        }
    }
}

/// xorshift64*: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One of: flip a bit, set a byte to a boundary value, cut the packet,
/// or rewrite an option length byte.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    let at = rng.below(data.len());
    match rng.below(4) {
        0 => data[at] ^= 1 << rng.below(8),
        1 => data[at] = [0, 1, 2, 3, 4, 0x7f, 0x80, 0xfe, 0xff][rng.below(9)],
        2 => data.truncate(at),
        _ => {
            if at > 240 {
                data[at] = rng.below(256) as u8;
            }
        }
    }
}

#[test]
fn a_hundred_thousand_mutated_packets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds: Vec<Vec<u8>> = inputs(&root.join("fuzz/seeds/dhcp_handle"))
        .iter()
        .map(|f| fs::read(f).unwrap())
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for n in 0..100_000 {
        let mut data = seeds[n % seeds.len()].clone();
        for _ in 0..1 + rng.below(4) {
            if !data.is_empty() {
                mutate(&mut rng, &mut data);
            }
        }
        let outcome = std::panic::catch_unwind(|| fuzz::dhcp_handle(&data));
        assert!(outcome.is_ok(), "mutation {n} fails: {data:02x?}");
    }
}
