//! The memory in.aasd's lease database takes (issue 20): 100,000 leases,
//! named as in.dhcpd names its clients, read from the transaction log as
//! at start-up, hold at most 120 bytes of heap each. The heap is counted
//! by this test binary's allocator, so the figure is exact and the same on
//! every run; it has this one test, so nothing else allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};

use indhcpd::aas::lease::{Pool, State};
use indhcpd::aasd::db::{Db, Entry};
use indhcpd::aasd::journal::{encode, Store, StoreConfig, HEADER, LOG_NAME};

/// Bytes allocated and not yet freed.
static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: every call goes to the system allocator as it came; only the
// count is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

const LEASES: u32 = 100_000;
const NOW: u64 = 1_780_000_000;

/// The n-th client of the benchmark's fill (benches/probe.py aasd-fill).
fn client(n: u32) -> String {
    let b = n.to_be_bytes();
    format!(
        "10.0.0.0/1/02:00:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3]
    )
}

fn lease(n: u32) -> Entry {
    Entry {
        state: State::Leased,
        disabled: false,
        service: "dhcp".into(),
        client: client(n),
        host: String::new(),
        reserved: NOW + u64::from(n / 1000),
        end: NOW + 365 * 86_400 + u64::from(n / 1000),
        released: 0,
        seq: u64::from(n) + 1,
    }
}

#[test]
fn a_lease_read_from_the_log_holds_at_most_120_bytes() {
    let dir = std::env::temp_dir().join(format!("indhcpd-aasd-memory-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let first = u32::from(std::net::Ipv4Addr::new(10, 0, 0, 1));
    let mut log = HEADER.to_vec();
    for n in 0..LEASES {
        encode(first + n, &lease(n), &mut log);
    }
    fs::write(dir.join(LOG_NAME), &log).unwrap();
    drop(log);
    let cfg = StoreConfig {
        database_dir: dir.clone(),
        checkpoint_dir: dir.join("checkpoints"),
        num_checkpoints: 2,
        max_db_size: 1 << 30,
        sync: false,
    };
    let pool = Pool::new(
        "Bench",
        vec![(first, u32::from(std::net::Ipv4Addr::new(10, 255, 255, 254)))],
    );

    let before = LIVE.load(Ordering::Relaxed);
    let mut db = Db::new(vec![pool]);
    let store = Store::open(cfg, &mut db).unwrap();
    let held = LIVE.load(Ordering::Relaxed) - before;

    assert_eq!(db.len(), LEASES as usize);
    let e = db.get(first + 4242).expect("a lease");
    assert_eq!(
        (e.client.as_str(), e.end),
        (client(4242).as_str(), lease(4242).end)
    );
    let per_lease = held / LEASES as usize;
    println!("{held} bytes of heap for {LEASES} leases: {per_lease} a lease");
    assert!(per_lease <= 120, "{per_lease} bytes of heap a lease");
    drop(store);
    fs::remove_dir_all(&dir).unwrap();
}
