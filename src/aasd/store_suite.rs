//! One suite of operations for every store (store.rs): the same requests
//! at the same times get the same answers from the log store and from
//! PostgreSQL, so an operation means the same with both. Each case is a
//! script of (time, request, answer); `REOPEN` closes the store and opens
//! it again on what it wrote. db/tests.rs tests the Db itself in depth.

use super::ops;
use super::store::Leases;
use crate::aas::lease::{Pool, Time};
use crate::aas::proto;

/// P: 10.0.0.10-19 (ten, at most 2 declined); Q: 10.0.1.0-3 (four, 1).
pub fn pools() -> Vec<Pool> {
    vec![
        Pool::new("P", vec![(0x0a00_000a, 0x0a00_0013)]),
        Pool::new("Q", vec![(0x0a00_0100, 0x0a00_0103)]),
    ]
}

/// An answer is the exact text, or a prefix ending in `*`.
type Step = (Time, &'static str, &'static str);

const REOPEN: Step = (0, "REOPEN", "");

pub const CASES: &[(&str, &[Step])] = &[
    (
        "lru_order",
        &[
            (10, "ALLOC Q dhcp a 100", "OK 10.0.1.0 110 new 1"),
            (10, "ALLOC Q dhcp b 100", "OK 10.0.1.1 110 new 2"),
            (10, "ALLOC Q dhcp c 100", "OK 10.0.1.2 110 new 3"),
            (10, "ALLOC Q dhcp d 100", "OK 10.0.1.3 110 new 4"),
            (11, "ALLOC Q dhcp e 100", "ERR exhausted*"),
            (20, "RELEASE 10.0.1.2", "OK"),
            (30, "RELEASE 10.0.1.0", "OK"),
            (40, "RELEASE 10.0.1.1", "OK"),
            // The one released longest ago first.
            (50, "ALLOC Q dhcp e 100", "OK 10.0.1.2 150 new 2"),
            (50, "ALLOC Q dhcp f 100", "OK 10.0.1.0 150 new 3"),
            REOPEN,
            (60, "ALLOC Q dhcp g 100", "OK 10.0.1.1 160 new 4"),
        ],
    ),
    (
        "previous",
        &[
            (10, "ALLOC Q dhcp a 100", "OK 10.0.1.0 110 new 1"),
            (10, "ALLOC Q dhcp b 100", "OK 10.0.1.1 110 new 2"),
            (20, "RELEASE 10.0.1.0 dhcp a", "OK"),
            (25, "RELEASE 10.0.1.1 dhcp b", "OK"),
            (30, "ALLOC Q dhcp b 100 previous", "OK 10.0.1.1 130 new 1"),
            (30, "ALLOC Q dhcp c 100", "OK 10.0.1.2 130 new 2"),
            (31, "RELEASE 10.0.1.1 dhcp a", "ERR notheld*"),
        ],
    ),
    (
        "requested",
        &[
            (
                10,
                "ALLOC P dhcp a 100 exact=10.0.0.15",
                "OK 10.0.0.15 110 new 1",
            ),
            (10, "ALLOC P dhcp b 100 exact=10.0.0.15", "ERR taken*"),
            (10, "ALLOC P dhcp b 100 exact=10.0.1.1", "ERR notinpool*"),
            (
                10,
                "ALLOC P dhcp b 100 prefer=10.0.0.15",
                "OK 10.0.0.10 110 new 2",
            ),
            (
                10,
                "ALLOC P dhcp b 100 prefer=10.0.0.17",
                "OK 10.0.0.17 110",
            ),
            (
                11,
                "ALLOC P dhcp c 100 exact=10.0.0.16 mine",
                "ERR notheld*",
            ),
            (
                12,
                "ALLOC P dhcp c 100 exact=10.0.0.16 known",
                "ERR unknown*",
            ),
            (
                13,
                "ALLOC P dhcp a 200 exact=10.0.0.15 known",
                "OK 10.0.0.15 213",
            ),
            (14, "ALLOC X dhcp a 200", "ERR nopool*"),
        ],
    ),
    (
        "range",
        &[
            (
                10,
                "ALLOC P dhcp a 100 range=10.0.0.14-10.0.0.16",
                "OK 10.0.0.14 110 new 1",
            ),
            (
                10,
                "ALLOC P dhcp b 100 range=10.0.0.14-10.0.0.16",
                "OK 10.0.0.15 110 new 2",
            ),
            (20, "RELEASE 10.0.0.14", "OK"),
            (
                30,
                "ALLOC P dhcp c 100 range=10.0.0.14-10.0.0.16",
                "OK 10.0.0.16 130 new 2",
            ),
            (
                30,
                "ALLOC P dhcp d 100 range=10.0.0.14-10.0.0.16",
                "OK 10.0.0.14 130 new 3",
            ),
            (
                30,
                "ALLOC P dhcp e 100 range=10.0.0.14-10.0.0.16",
                "ERR exhausted*",
            ),
        ],
    ),
    (
        "hold_renew_keep",
        &[
            (10, "ALLOC P dhcp a 100 hold", "OK 10.0.0.10 110 new 1"),
            (10, "STATS P", "POOL P 10 0 1 9 0 0 0\nEND 1"),
            (
                12,
                "ALLOC P dhcp a 100 exact=10.0.0.10 mine",
                "OK 10.0.0.10 112",
            ),
            (
                50,
                "ALLOC P dhcp a 100 exact=10.0.0.10 mine keep=30",
                "OK 10.0.0.10 112",
            ),
            REOPEN,
            (
                90,
                "ALLOC P dhcp a 100 exact=10.0.0.10 mine keep=30",
                "OK 10.0.0.10 190",
            ),
            (90, "STATS P", "POOL P 10 1 0 9 0 0 0\nEND 1"),
            (91, "ALLOC P dhcp b 100 hold", "OK 10.0.0.11 191 new 2"),
            (92, "UNHOLD P dhcp b", "OK"),
            (92, "UNHOLD P dhcp a", "OK"),
            (93, "STATS P", "POOL P 10 1 0 9 0 0 0\nEND 1"),
        ],
    ),
    (
        "release",
        &[
            (10, "ALLOC P dhcp a 100", "OK 10.0.0.10 110 new 1"),
            (11, "RELEASE 10.0.0.10 dhcp b", "ERR notheld*"),
            (12, "RELEASE 10.0.0.10 dhcp a", "OK"),
            REOPEN,
            (
                13,
                "QUERY address=10.0.0.10",
                "LEASE 10.0.0.10 P free no dhcp a 10 12 12\nEND 1",
            ),
            (14, "RELEASE 10.0.3.1", "ERR notinpool*"),
        ],
    ),
    (
        "decline",
        &[
            (10, "ALLOC P dhcp a 100", "OK 10.0.0.10 110 new 1"),
            (11, "DECLINE 10.0.0.10 500 dhcp a", "OK"),
            (12, "ALLOC P dhcp a 100", "OK 10.0.0.11 112 new 1"),
            (13, "DECLINE 10.0.0.11 500 dhcp a", "OK"),
            (14, "ALLOC P dhcp a 100", "OK 10.0.0.12 114 new 1"),
            (14, "DECLINE 10.0.0.12 500 dhcp b", "ERR notheld*"),
            // Over the cap of 2: the oldest decline ends.
            (15, "DECLINE 10.0.0.12 500 dhcp a", "OK"),
            (16, "STATS P", "POOL P 10 0 0 8 0 2 0\nEND 1"),
            (17, "QUERY state=declined", "LEASE 10.0.0.11 P declined*"),
            REOPEN,
            (600, "STATS P", "POOL P 10 0 0 10 0 0 0\nEND 1"),
        ],
    ),
    (
        "disable_enable",
        &[
            (10, "DISABLE 10.0.0.10", "OK"),
            (11, "ALLOC P dhcp a 100", "OK 10.0.0.11 111 new 1"),
            (12, "ALLOC P dhcp b 100 exact=10.0.0.10", "ERR disabled*"),
            REOPEN,
            (13, "STATS P", "POOL P 10 1 0 8 1 0 0\nEND 1"),
            (13, "QUERY state=disabled", "LEASE 10.0.0.10 P free yes*"),
            (14, "ENABLE 10.0.0.10", "OK"),
            (
                15,
                "ALLOC P dhcp b 100 exact=10.0.0.10",
                "OK 10.0.0.10 115 new 2",
            ),
        ],
    ),
    (
        "expiry",
        &[
            (10, "ALLOC Q dhcp a 10", "OK 10.0.1.0 20 new 1"),
            (15, "ALLOC Q dhcp b 10", "OK 10.0.1.1 25 new 2"),
            (19, "STATS Q", "POOL Q 4 2 0 2 0 0 0\nEND 1"),
            (21, "STATS Q", "POOL Q 4 1 0 3 0 0 0\nEND 1"),
            (
                22,
                "QUERY address=10.0.1.0",
                "LEASE 10.0.1.0 Q free no dhcp a 10 20 20\nEND 1",
            ),
            (22, "ALLOC Q dhcp c 10", "OK 10.0.1.2 32 new 2"),
            (22, "ALLOC Q dhcp d 10", "OK 10.0.1.3 32 new 3"),
            (22, "ALLOC Q dhcp e 10", "OK 10.0.1.0 32 new 4"),
            REOPEN,
            (26, "ALLOC Q dhcp f 10", "OK 10.0.1.1 36 new 4"),
        ],
    ),
    (
        "reservations",
        &[
            (
                10,
                "ALLOC Q dhcp old 100 exact=10.0.1.3",
                "OK 10.0.1.3 110 new 1",
            ),
            (11, "RESERVE 10.0.1.0 dhcp fixed", "OK"),
            (11, "RESERVE 10.0.1.3 dhcp fixed2", "OK held dhcp old 110"),
            // Pinned addresses are the requester's to give: nobody gets
            // them from the pool, not even the client they are pinned to.
            (12, "ALLOC Q dhcp a 100", "OK 10.0.1.1 112 new 2"),
            (12, "ALLOC Q dhcp b 100 exact=10.0.1.0", "ERR reserved*"),
            (12, "ALLOC Q dhcp fixed 100 exact=10.0.1.0", "ERR taken*"),
            (13, "ALLOC Q dhcp old 100 exact=10.0.1.3", "ERR reserved*"),
            (14, "STATS Q", "POOL Q 4 2 0 1 0 0 1\nEND 1"),
            (
                14,
                "QUERY state=reserved",
                "LEASE 10.0.1.0 Q reserved no dhcp fixed 11 *",
            ),
            (15, "UNRESERVE 10.0.1.0", "OK"),
            (
                16,
                "ALLOC Q dhcp b 100 exact=10.0.1.0",
                "OK 10.0.1.0 116 new 3",
            ),
        ],
    ),
    (
        "alias_and_host",
        &[
            (10, "ALLOC P dhcp hw 100 host=pc1", "OK 10.0.0.10 110 new 1"),
            (
                20,
                "ALLOC P dhcp id 100 alias=hw previous",
                "OK 10.0.0.10 120 new 1",
            ),
            REOPEN,
            (
                21,
                "QUERY address=10.0.0.10 hostname",
                "LEASE 10.0.0.10 P leased no dhcp id 10 120 0 pc1\nEND 1",
            ),
            (22, "QUERY client=hw", "END 0"),
        ],
    ),
];

/// Run every case on fresh stores from `open(case, again)`: `again` is
/// false for a new, empty store, true to open the same one once more.
pub fn run(store_name: &str, mut open: impl FnMut(&str, bool) -> Box<dyn Leases>) {
    for (case, steps) in CASES {
        let mut store = open(case, false);
        for (i, &(now, request, want)) in steps.iter().enumerate() {
            if request == "REOPEN" {
                store.close().unwrap();
                drop(store);
                store = open(case, true);
                continue;
            }
            let r = proto::parse(request).unwrap();
            let got = ops::apply(store.as_mut(), r, now).text;
            store.commit().unwrap();
            let ok = match want.strip_suffix('*') {
                Some(prefix) => got.starts_with(prefix),
                None => got == want,
            };
            assert!(
                ok,
                "{store_name}, case {case}, step {i}: {request}\n  got:  {got}\n  want: {want}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::aasd::journal::StoreConfig;
    use crate::aasd::logstore::LogStore;
    use crate::aasd::pg::{conninfo, PgStore};
    use crate::aasd::test_pg::Cluster;

    /// Both in one test, one after the other: a process started for
    /// PostgreSQL while a log is open would hold its lock for a moment.
    #[test]
    fn the_operation_suite_on_both_stores() {
        suite_on_the_log();
        suite_on_postgresql();
    }

    fn suite_on_the_log() {
        let root = std::env::temp_dir().join(format!("aasd-suite-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        run("log", |case, _again| {
            let dir: PathBuf = root.join(case);
            std::fs::create_dir_all(&dir).unwrap();
            let cfg = StoreConfig {
                checkpoint_dir: dir.join("checkpoints"),
                database_dir: dir,
                num_checkpoints: 2,
                max_db_size: 1 << 20,
                sync: false,
            };
            Box::new(LogStore::open(cfg, pools()).unwrap())
        });
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn suite_on_postgresql() {
        let c = Cluster::start();
        c.sql("postgres", "CREATE ROLE aasd LOGIN PASSWORD 'pw'");
        let passfile = c.passfile("aasd", "pw");
        run("postgresql", |case, again| {
            if !again {
                c.sql("postgres", &format!("CREATE DATABASE {case} OWNER aasd"));
            }
            let text = format!(
                "{} passfile={}",
                c.conninfo("aasd", case),
                passfile.display()
            );
            let info = conninfo::parse(&text).unwrap();
            Box::new(PgStore::open(info, pools()).unwrap())
        });
    }
}
