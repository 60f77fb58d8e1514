use std::net::Ipv4Addr;

use super::*;
use crate::aas::lease::{Alloc, Pool, Time, Want, FOREVER};

fn n(last: u8) -> u32 {
    u32::from(Ipv4Addr::new(10, 0, 0, last))
}

fn entry(seq: u64, state: State, client: &str) -> Entry {
    Entry {
        state,
        disabled: false,
        service: "dhcp".into(),
        client: client.into(),
        host: String::new(),
        reserved: 1_000 + seq,
        end: 2_000 + seq,
        released: 500 + seq,
        seq,
    }
}

fn encoded(records: &[(u32, Entry)]) -> (Vec<u8>, Vec<usize>) {
    let mut buf = HEADER.to_vec();
    let mut offsets = Vec::new();
    for (a, e) in records {
        offsets.push(buf.len());
        encode(*a, e, &mut buf);
    }
    (buf, offsets)
}

fn sample() -> Vec<(u32, Entry)> {
    vec![
        (n(1), entry(1, State::Leased, "a")),
        (
            n(2),
            Entry {
                end: FOREVER,
                ..entry(2, State::Offered, "b")
            },
        ),
        (
            n(3),
            Entry {
                disabled: true,
                service: String::new(),
                client: String::new(),
                ..entry(3, State::Free, "")
            },
        ),
        (
            n(4),
            Entry {
                service: "s".repeat(255),
                client: "c".repeat(255),
                ..entry(4, State::Declined, "")
            },
        ),
        (
            u32::MAX,
            Entry {
                seq: u64::MAX,
                ..entry(5, State::Leased, "é ü")
            },
        ),
    ]
}

#[test]
fn crc32_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
    assert_eq!(crc32(b"a"), 0xE8B7_BE43);
    assert_eq!(
        crc32(b"The quick brown fox jumps over the lazy dog"),
        0x414F_A339
    );
}

/// The CRC of every frame length a log holds, at every alignment, is the
/// one a bit-at-a-time CRC-32 gives: the logs of older builds still check.
#[test]
fn crc32_agrees_with_the_bitwise_definition() {
    fn bitwise(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<u8> = (0..MAX_PAYLOAD + 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    for start in 0..16 {
        for len in 0..=MAX_PAYLOAD {
            let d = &data[start..start + len];
            assert_eq!(crc32(d), bitwise(d), "{len} bytes at {start}");
        }
    }
}

#[test]
fn encode_replay_round_trip() {
    let recs = sample();
    let (buf, offsets) = encoded(&recs);
    let r = replay(&buf).expect("header");
    assert_eq!(r.records, recs);
    assert!(r.holes.is_empty());
    assert_eq!(r.torn_at, None);
    // The frame: mark, length, payload, CRC of the payload.
    let at = offsets[0];
    assert_eq!(buf[at], 0xA5);
    let len = usize::from(u16::from_le_bytes([buf[at + 1], buf[at + 2]]));
    assert_eq!(offsets[1] - at, len + 7);
    let crc = u32::from_le_bytes(buf[at + 3 + len..at + 7 + len].try_into().unwrap());
    assert_eq!(crc, crc32(&buf[at + 3..at + 3 + len]));
    // 255-byte names fit.
    let long = offsets[4] - offsets[3];
    assert_eq!(long, 7 + FIXED + 2 + 255 + 255);
}

#[test]
fn replay_of_an_empty_log() {
    let r = replay(HEADER).unwrap();
    assert_eq!(r, Replay::default());
}

#[test]
fn longer_names_are_cut_at_255_bytes() {
    let e = Entry {
        client: "x".repeat(300),
        ..entry(1, State::Leased, "")
    };
    let mut buf = HEADER.to_vec();
    encode(n(1), &e, &mut buf);
    let r = replay(&buf).unwrap();
    assert_eq!(r.records[0].1.client, "x".repeat(255));
}

#[test]
fn torn_tail_is_reported_and_earlier_records_kept() {
    let recs = sample();
    let (buf, offsets) = encoded(&recs);
    let last = *offsets.last().unwrap();
    for cut in [1, 3, 10] {
        let torn = &buf[..buf.len() - cut];
        let r = replay(torn).unwrap();
        assert_eq!(r.torn_at, Some(last), "cut {cut}");
        assert!(r.short_tail, "cut {cut}");
        assert_eq!(r.records, recs[..recs.len() - 1]);
        assert!(r.holes.is_empty());
    }
    // Cut to just the mark byte of the last record.
    let r = replay(&buf[..last + 1]).unwrap();
    assert_eq!(r.torn_at, Some(last));
    assert!(r.short_tail);
    // Garbage after the last record.
    let mut junk = buf.clone();
    junk.extend_from_slice(&[0xA5, 0xff, 0x00, 1, 2, 3]);
    let r = replay(&junk).unwrap();
    assert_eq!(r.torn_at, Some(buf.len()));
    assert_eq!(r.records, recs);
    // Zeros where a record should start are not a record cut short.
    let mut zeros = buf.clone();
    zeros.extend_from_slice(&[0; 100]);
    let r = replay(&zeros).unwrap();
    assert_eq!(r.torn_at, Some(buf.len()));
    assert!(!r.short_tail);
}

#[test]
fn flipped_byte_in_a_middle_record_is_a_hole() {
    let recs = sample();
    let (buf, offsets) = encoded(&recs);
    for flip_at in [offsets[1] + 10, offsets[1] + 3, offsets[1] + 1, offsets[1]] {
        let mut bad = buf.clone();
        bad[flip_at] ^= 0x40;
        let r = replay(&bad).unwrap();
        assert_eq!(
            r.holes,
            vec![Damage {
                offset: offsets[1],
                len: offsets[2] - offsets[1],
            }],
            "flip at {flip_at}"
        );
        assert_eq!(r.torn_at, None);
        let mut want = recs.clone();
        want.remove(1);
        assert_eq!(r.records, want);
    }
    // A flipped byte in the last record: a damaged end, not a hole, and
    // corrupt, not torn: the record is whole.
    let mut bad = buf.clone();
    let last = *offsets.last().unwrap();
    bad[last + 12] ^= 1;
    let r = replay(&bad).unwrap();
    assert!(r.holes.is_empty());
    assert_eq!(r.torn_at, Some(last));
    assert!(!r.short_tail);
    assert_eq!(r.records.len(), recs.len() - 1);
}

#[test]
fn two_holes() {
    let recs = sample();
    let (mut buf, offsets) = encoded(&recs);
    buf[offsets[0] + 20] ^= 0xff;
    buf[offsets[2] + 20] ^= 0xff;
    let r = replay(&buf).unwrap();
    assert_eq!(
        r.holes.iter().map(|h| h.offset).collect::<Vec<_>>(),
        vec![offsets[0], offsets[2]]
    );
    assert_eq!(
        r.records.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        vec![n(2), n(4), u32::MAX]
    );
}

#[test]
fn bad_header_is_none() {
    let (mut buf, _) = encoded(&sample());
    assert!(replay(&buf).is_some());
    buf[7] = b'2';
    assert_eq!(replay(&buf), None);
    assert_eq!(replay(b""), None);
    assert_eq!(replay(b"AASD"), None);
}

#[test]
fn bad_state_code_is_damage() {
    let recs = vec![
        (n(1), entry(1, State::Leased, "a")),
        (n(2), entry(2, State::Leased, "b")),
    ];
    let (buf, offsets) = encoded(&recs);
    // State 9 with a matching CRC: the frame checks, the payload does not.
    let mut bad = buf.clone();
    let at = offsets[0];
    let len = offsets[1] - at - 7;
    bad[at + 3 + 12] = 9;
    let crc = crc32(&bad[at + 3..at + 3 + len]);
    bad[at + 3 + len..at + 7 + len].copy_from_slice(&crc.to_le_bytes());
    let r = replay(&bad).unwrap();
    assert_eq!(r.records, recs[1..]);
    assert_eq!(r.holes.len(), 1);
}

// ---------------------------------------------------------------- Store

/// A fresh directory, removed when dropped.
struct Tmp(PathBuf);

impl Tmp {
    fn new(test: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("indhcpd-journal-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }

    fn cfg(&self) -> StoreConfig {
        StoreConfig {
            database_dir: self.0.join("db"),
            checkpoint_dir: self.0.join("ckpt"),
            num_checkpoints: 3,
            max_db_size: 1 << 20,
            sync: true,
        }
    }

    fn log(&self) -> PathBuf {
        self.0.join("db").join(LOG_NAME)
    }

    fn ckpt_dir(&self) -> PathBuf {
        self.0.join("ckpt")
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn new_db() -> Db {
    Db::new(vec![Pool::new("P", vec![(n(1), n(50))])])
}

fn req(client: &str) -> Alloc {
    Alloc {
        previous: true,
        ..Alloc::new("P", "dhcp", client, 3600)
    }
}

/// Allocate and log it, as in.aasd does.
fn alloc(db: &mut Db, store: &mut Store, r: &Alloc, now: Time) -> u32 {
    let (a, _, changes) = db.alloc(r, now).unwrap();
    let recs: Vec<(u32, &Entry)> = changes.iter().map(|c| (c.addr, &c.after)).collect();
    store.append(&recs, db).unwrap();
    store.flush(db).unwrap();
    a
}

fn state(db: &Db) -> Vec<(u32, Entry)> {
    db.entries().map(|(a, e)| (a, e.owned())).collect()
}

fn reopen(t: &Tmp) -> (Db, Store) {
    let mut db = new_db();
    let store = Store::open(t.cfg(), &mut db).unwrap();
    (db, store)
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).unwrap().len()
}

#[test]
fn open_on_an_empty_dir() {
    let t = Tmp::new("open_empty");
    let (db, store) = reopen(&t);
    assert!(db.is_empty());
    assert_eq!(db.seq(), 0);
    assert_eq!(fs::read(t.log()).unwrap(), HEADER);
    assert_eq!(store.log_path(), t.log());
    assert!(t.ckpt_dir().is_dir());
    assert!(checkpoints(&t.ckpt_dir()).is_empty());
    drop(store);
    let (db, _) = reopen(&t);
    assert!(db.is_empty());
}

#[test]
fn reopen_gives_the_same_entries() {
    let t = Tmp::new("reopen_same");
    let (mut db, mut store) = reopen(&t);
    for (i, c) in ["a", "b", "c", "d"].iter().enumerate() {
        alloc(&mut db, &mut store, &req(c), i as Time);
    }
    // A renewal, a move and a release: several records per address.
    alloc(&mut db, &mut store, &req("a"), 100);
    let mv = Alloc {
        want: Want::Exact(n(10)),
        ..req("b")
    };
    alloc(&mut db, &mut store, &mv, 110);
    let ch = db.release(n(3), Some(("dhcp", "c")), 120).unwrap();
    store.append(&[(ch[0].addr, &ch[0].after)], &db).unwrap();
    let ch = db.set_disabled(n(4), true, 130).unwrap();
    store.append(&[(ch[0].addr, &ch[0].after)], &db).unwrap();
    let ch = db.decline(n(20), FOREVER, None, 140).unwrap();
    store.append(&[(ch[0].addr, &ch[0].after)], &db).unwrap();
    let len = file_len(&t.log());
    let want = state(&db);
    let seq = db.seq();
    drop(store);

    let (mut db2, store2) = reopen(&t);
    assert_eq!(state(&db2), want);
    assert_eq!(db2.seq(), seq);
    // A clean log is not rewritten.
    assert_eq!(file_len(&t.log()), len);
    assert_eq!(db2.get(n(20)).unwrap().end, FOREVER);
    // The indexes work after recovery: b keeps .10, e gets .5.
    let (a, _, _) = db2.alloc(&req("b"), 150).unwrap();
    assert_eq!(a, n(10));
    let (a, _, _) = db2.alloc(&req("e"), 150).unwrap();
    assert_eq!(a, n(5));
    drop(store2);
}

#[test]
fn records_of_addresses_in_no_pool_are_dropped() {
    let t = Tmp::new("no_pool");
    let (mut db, mut store) = reopen(&t);
    alloc(&mut db, &mut store, &req("a"), 0);
    drop(store);
    let mut small = Db::new(vec![Pool::new("P", vec![(n(2), n(50))])]);
    let _store = Store::open(t.cfg(), &mut small).unwrap();
    assert!(small.is_empty());
}

#[test]
fn a_torn_tail_is_cut_on_open() {
    let t = Tmp::new("torn_tail");
    let (mut db, mut store) = reopen(&t);
    let mut lens = vec![file_len(&t.log())];
    for c in ["a", "b", "c"] {
        alloc(&mut db, &mut store, &req(c), 0);
        lens.push(file_len(&t.log()));
    }
    drop(store);
    let good = lens[2];
    let full = fs::read(t.log()).unwrap();
    fs::write(t.log(), &full[..full.len() - 4]).unwrap();

    let (db2, store2) = reopen(&t);
    assert_eq!(state(&db2), state(&db)[..2]);
    // One record per address, in address order: the good part itself.
    assert_eq!(file_len(&t.log()), good);
    assert_eq!(fs::read(t.log()).unwrap(), full[..good as usize]);
    drop(store2);
    let (db3, mut store3) = reopen(&t);
    assert_eq!(state(&db3), state(&db2));
    assert_eq!(file_len(&t.log()), good);
    // Appends go after the good part and read back.
    let mut db3 = db3;
    let a = alloc(&mut db3, &mut store3, &req("z"), 5);
    assert_eq!(a, n(3));
    drop(store3);
    let (db4, _) = reopen(&t);
    assert_eq!(state(&db4), state(&db3));
}

#[test]
fn a_lost_log_is_rebuilt_from_the_checkpoint() {
    let t = Tmp::new("lost_log");
    let (mut db, mut store) = reopen(&t);
    for c in ["a", "b", "c"] {
        alloc(&mut db, &mut store, &req(c), 0);
    }
    let path = store.checkpoint(&db, false).unwrap().expect("written");
    assert_eq!(checkpoints(&t.ckpt_dir()), vec![path.clone()]);
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        format!("aasd.{:020}.ckpt", db.seq())
    );
    drop(store);
    fs::remove_file(t.log()).unwrap();
    let (db2, store2) = reopen(&t);
    assert_eq!(state(&db2), state(&db));
    assert_eq!(db2.seq(), db.seq());
    // The log was written again from it.
    assert_eq!(
        replay(&fs::read(t.log()).unwrap()).unwrap().records,
        state(&db)
    );
    drop(store2);
    let (db3, _) = reopen(&t);
    assert_eq!(state(&db3), state(&db));
}

#[test]
fn a_log_with_a_bad_header_is_rebuilt_from_the_checkpoint() {
    let t = Tmp::new("bad_header");
    let (mut db, mut store) = reopen(&t);
    alloc(&mut db, &mut store, &req("a"), 0);
    store.checkpoint(&db, false).unwrap().unwrap();
    drop(store);
    let mut bytes = fs::read(t.log()).unwrap();
    bytes[0] = b'X';
    fs::write(t.log(), &bytes).unwrap();
    let (db2, _) = reopen(&t);
    assert_eq!(state(&db2), state(&db));
    let kept = set_aside(&t.0.join("db"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(fs::read(&kept[0]).unwrap(), bytes);
    assert!(replay(&fs::read(t.log()).unwrap()).is_some());
}

/// Files kept aside as damaged in `dir`.
fn set_aside(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".corrupt."))
        .collect();
    v.sort();
    v
}

#[test]
fn a_damaged_newest_checkpoint_falls_back_to_an_older_one() {
    let t = Tmp::new("bad_ckpt");
    let (mut db, mut store) = reopen(&t);
    alloc(&mut db, &mut store, &req("a"), 0);
    alloc(&mut db, &mut store, &req("b"), 0);
    let old = store.checkpoint(&db, false).unwrap().unwrap();
    let old_state = state(&db);
    alloc(&mut db, &mut store, &req("c"), 10);
    let newest = store.checkpoint(&db, false).unwrap().unwrap();
    assert_ne!(old, newest);
    assert_eq!(checkpoints(&t.ckpt_dir()), vec![newest.clone(), old]);
    drop(store);
    let mut bytes = fs::read(&newest).unwrap();
    let mid = bytes.len() - 30;
    bytes[mid] ^= 0x10;
    fs::write(&newest, &bytes).unwrap();
    fs::remove_file(t.log()).unwrap();
    let (db2, _) = reopen(&t);
    assert_eq!(state(&db2), old_state);
    // The damaged one is renamed aside, not deleted, and no longer counts.
    let kept = set_aside(&t.ckpt_dir());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0]
        .to_string_lossy()
        .starts_with(&*newest.to_string_lossy()));
    assert_eq!(fs::read(&kept[0]).unwrap(), bytes);
    assert_eq!(checkpoints(&t.ckpt_dir()).len(), 1);
}

#[test]
fn damage_in_the_log_is_filled_from_the_checkpoint() {
    let t = Tmp::new("damaged_log");
    let (mut db, mut store) = reopen(&t);
    for c in ["a", "b", "c"] {
        alloc(&mut db, &mut store, &req(c), 0);
    }
    store.checkpoint(&db, false).unwrap().unwrap();
    let at_checkpoint = state(&db);
    // Renew all three later: the log has newer records than the checkpoint.
    let mut offsets = Vec::new();
    for c in ["a", "b", "c"] {
        offsets.push(file_len(&t.log()) as usize);
        alloc(&mut db, &mut store, &req(c), 1000);
    }
    let after = state(&db);
    drop(store);
    // Damage b's renewal, in the middle of the log.
    let mut bytes = fs::read(t.log()).unwrap();
    bytes[offsets[1] + 20] ^= 0xff;
    fs::write(t.log(), &bytes).unwrap();
    assert_eq!(replay(&bytes).unwrap().holes.len(), 1);

    let (db2, store2) = reopen(&t);
    let got = state(&db2);
    assert_eq!(got[0], after[0]);
    assert_eq!(got[1], at_checkpoint[1]);
    assert_eq!(got[2], after[2]);
    assert_eq!(got.len(), 3);
    // The damaged log is kept aside as it was.
    let kept = set_aside(&t.0.join("db"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(fs::read(&kept[0]).unwrap(), bytes);
    // The damage is gone: the log was rewritten from the result.
    let r = replay(&fs::read(t.log()).unwrap()).unwrap();
    assert!(r.holes.is_empty());
    assert_eq!(r.records, got);
    drop(store2);
    let (db3, _) = reopen(&t);
    assert_eq!(state(&db3), got);
}

/// 20 leases, then a checkpoint, the log not synced.
fn twenty_then_checkpoint(t: &Tmp) -> Vec<(u32, Entry)> {
    let mut cfg = t.cfg();
    cfg.sync = false;
    let mut db = new_db();
    let mut store = Store::open(cfg, &mut db).unwrap();
    for i in 0..20 {
        alloc(&mut db, &mut store, &req(&format!("c{i}")), 0);
    }
    store.checkpoint(&db, false).unwrap().unwrap();
    state(&db)
}

#[test]
fn a_log_cut_before_the_newest_checkpoint_takes_the_checkpoint() {
    let t = Tmp::new("cut_third");
    let want = twenty_then_checkpoint(&t);
    // A power cut with sync = never: the log lost its last two thirds,
    // the fsynced checkpoint did not.
    let bytes = fs::read(t.log()).unwrap();
    fs::write(t.log(), &bytes[..bytes.len() / 3]).unwrap();
    let r = replay(&fs::read(t.log()).unwrap()).unwrap();
    assert!(r.short_tail && r.records.len() < 10, "{:?}", r.torn_at);
    let (db, store) = reopen(&t);
    assert_eq!(state(&db), want);
    drop(store);
    // The log was rewritten whole.
    let (db2, _) = reopen(&t);
    assert_eq!(state(&db2), want);
    // Cut exactly at a record boundary: no damage seen at all, but the
    // log still ends before the checkpoint.
    drop(db2);
    let t = Tmp::new("cut_boundary");
    let want = twenty_then_checkpoint(&t);
    let bytes = fs::read(t.log()).unwrap();
    let offsets = (0..20).fold(vec![HEADER.len()], |mut v, _| {
        let at = *v.last().unwrap();
        v.push(frame_at(&bytes, at).unwrap().2);
        v
    });
    fs::write(t.log(), &bytes[..offsets[7]]).unwrap();
    let (db, _) = reopen(&t);
    assert_eq!(state(&db), want);
}

#[test]
fn a_flipped_byte_in_the_last_record_takes_the_checkpoint() {
    let t = Tmp::new("flip_last");
    let want = twenty_then_checkpoint(&t);
    let mut bytes = fs::read(t.log()).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x01;
    fs::write(t.log(), &bytes).unwrap();
    let (db, _) = reopen(&t);
    assert_eq!(state(&db), want);
    assert_eq!(set_aside(&t.0.join("db")).len(), 1);
}

#[test]
fn a_torn_tail_after_the_checkpoint_is_only_cut() {
    let t = Tmp::new("torn_after_ckpt");
    let (mut db, mut store) = reopen(&t);
    alloc(&mut db, &mut store, &req("a"), 0);
    store.checkpoint(&db, false).unwrap().unwrap();
    // a released after the checkpoint, then b's record torn.
    let ch = db.release(n(1), Some(("dhcp", "a")), 10).unwrap();
    let recs: Vec<(u32, &Entry)> = ch.iter().map(|c| (c.addr, &c.after)).collect();
    store.append(&recs, &db).unwrap();
    let released = state(&db);
    alloc(&mut db, &mut store, &req("b"), 20);
    drop(store);
    let bytes = fs::read(t.log()).unwrap();
    fs::write(t.log(), &bytes[..bytes.len() - 5]).unwrap();
    let (db2, _) = reopen(&t);
    // The checkpoint's older lease of a does not come back.
    assert_eq!(state(&db2), released);
}

#[test]
fn a_newer_checkpoint_entry_wins_over_an_older_log_record() {
    let t = Tmp::new("ckpt_newer");
    let (mut db, mut store) = reopen(&t);
    for c in ["a", "b", "c"] {
        alloc(&mut db, &mut store, &req(c), 0);
    }
    // b renewed (seq 4) and checkpointed, then a renewed (seq 5).
    let b_renewal_at = file_len(&t.log()) as usize;
    alloc(&mut db, &mut store, &req("b"), 500);
    store.checkpoint(&db, false).unwrap().unwrap();
    alloc(&mut db, &mut store, &req("a"), 600);
    let want = state(&db);
    assert_eq!(want[1].1.seq, 4);
    drop(store);
    // Damage b's renewal: the log still has b's older record (seq 2),
    // which must not replace the checkpoint's entry (seq 4).
    let mut bytes = fs::read(t.log()).unwrap();
    bytes[b_renewal_at + 20] ^= 0xff;
    fs::write(t.log(), &bytes).unwrap();
    let r = replay(&bytes).unwrap();
    assert_eq!(r.holes.len(), 1);
    assert!(r.records.iter().any(|(a, e)| *a == n(2) && e.seq == 2));
    let (db2, _) = reopen(&t);
    assert_eq!(state(&db2), want);
}

#[test]
fn compaction_leaves_one_record_per_address() {
    let t = Tmp::new("compact");
    let mut cfg = t.cfg();
    cfg.max_db_size = 0;
    let mut db = new_db();
    let mut store = Store::open(cfg, &mut db).unwrap();
    assert!(!store.wants_compaction());
    for round in 0..20 {
        for c in ["a", "b", "c"] {
            alloc(&mut db, &mut store, &req(c), round * 100);
        }
    }
    assert!(store.wants_compaction());
    let before = file_len(&t.log());
    let want = state(&db);
    assert_eq!(want.len(), 3);
    store.compact(&db).unwrap();
    let after = file_len(&t.log());
    let (expect, _) = encoded(&want);
    assert_eq!(after, expect.len() as u64);
    assert!(after < before / 10);
    assert_eq!(fs::read(t.log()).unwrap(), expect);
    assert!(!store.wants_compaction());
    // Appends after compaction land in the new file.
    alloc(&mut db, &mut store, &req("d"), 5000);
    assert!(file_len(&t.log()) > after);
    drop(store);
    let (db2, _) = reopen(&t);
    assert_eq!(state(&db2), state(&db));
}

#[test]
fn only_the_newest_checkpoints_are_kept() {
    let t = Tmp::new("keep_n");
    let mut cfg = t.cfg();
    cfg.num_checkpoints = 2;
    let mut db = new_db();
    let mut store = Store::open(cfg, &mut db).unwrap();
    let mut written = Vec::new();
    for c in ["a", "b", "c", "d", "e"] {
        alloc(&mut db, &mut store, &req(c), 0);
        written.push(store.checkpoint(&db, false).unwrap().unwrap());
        assert!(checkpoints(&t.ckpt_dir()).len() <= 2);
    }
    assert_eq!(
        checkpoints(&t.ckpt_dir()),
        vec![written[4].clone(), written[3].clone()]
    );
    assert!(!written[0].exists());
    // No temporary files left behind.
    let names: Vec<_> = fs::read_dir(t.ckpt_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2);
}

#[test]
fn checkpoint_without_a_change() {
    let t = Tmp::new("ckpt_unchanged");
    let (mut db, mut store) = reopen(&t);
    // Nothing at all yet: the first one is written even so.
    let first = store.checkpoint(&db, false).unwrap();
    assert!(first.is_some());
    assert_eq!(store.checkpoint(&db, false).unwrap(), None);
    alloc(&mut db, &mut store, &req("a"), 0);
    let p = store.checkpoint(&db, false).unwrap().unwrap();
    assert_eq!(store.checkpoint(&db, false).unwrap(), None);
    // Forced: the newest, not a new file.
    assert_eq!(store.checkpoint(&db, true).unwrap(), Some(p.clone()));
    assert_eq!(checkpoints(&t.ckpt_dir()).len(), 2);
    drop(store);
    // After a restart, still nothing new to write.
    let (db2, mut store2) = reopen(&t);
    assert_eq!(store2.checkpoint(&db2, false).unwrap(), None);
    assert_eq!(store2.checkpoint(&db2, true).unwrap(), Some(p));
}

#[test]
fn checkpoint_names_keep_growing_after_an_undo_and_a_restart() {
    let t = Tmp::new("ckpt_undo");
    let (mut db, mut store) = reopen(&t);
    alloc(&mut db, &mut store, &req("a"), 0);
    // Three allocations whose log writes failed: undone, sequences used.
    for c in ["x", "y", "z"] {
        let (_, _, ch) = db.alloc(&req(c), 0).unwrap();
        db.undo(&ch);
    }
    store.checkpoint(&db, false).unwrap().unwrap();
    drop(store);
    let (mut db, mut store) = reopen(&t);
    alloc(&mut db, &mut store, &req("b"), 10);
    let p = store.checkpoint(&db, false).unwrap();
    assert!(p.is_some(), "a change since the last checkpoint");
    // The newest checkpoint holds b.
    let newest = &checkpoints(&t.ckpt_dir())[0];
    let r = replay(&fs::read(newest).unwrap()).unwrap();
    assert_eq!(r.records, state(&db));
    drop(store);
    fs::remove_file(t.log()).unwrap();
    let (db2, _) = reopen(&t);
    assert_eq!(state(&db2), state(&db));
}

#[test]
fn temporaries_of_interrupted_writes_are_removed_at_start() {
    let t = Tmp::new("temporaries");
    let (mut db, mut store) = reopen(&t);
    alloc(&mut db, &mut store, &req("a"), 0);
    let ckpt = store.checkpoint(&db, false).unwrap().unwrap();
    drop(store);
    // What a SIGKILL during a checkpoint and a compaction leaves.
    let half = t.ckpt_dir().join("aasd.00000000000000000009.new");
    fs::write(&half, b"AASDLOG1\xa5").unwrap();
    let log_tmp = t.0.join("db").join("aasd.new");
    fs::write(&log_tmp, b"AASDLOG1").unwrap();
    let other = t.ckpt_dir().join("aasd.notes.new");
    fs::write(&other, b"kept").unwrap();
    let (db2, _) = reopen(&t);
    assert!(!half.exists() && !log_tmp.exists());
    assert!(other.exists(), "not a name in.aasd writes");
    assert!(ckpt.exists());
    assert_eq!(state(&db2), state(&db));
}

#[test]
fn checkpoint_seq_of_names() {
    assert_eq!(
        checkpoint_seq(Path::new("/x/aasd.00000000000000000042.ckpt")),
        Some(42)
    );
    assert_eq!(checkpoint_seq(Path::new("/x/aasd.log")), None);
    assert_eq!(checkpoint_seq(Path::new("/x/aasd.new.ckpt")), None);
}

#[test]
fn an_emptied_log_is_rebuilt_from_the_checkpoint() {
    let t = Tmp::new("emptied_log");
    let (mut db, mut store) = reopen(&t);
    alloc(&mut db, &mut store, &req("a"), 0);
    store.checkpoint(&db, false).unwrap().unwrap();
    drop(store);
    fs::write(t.log(), b"").unwrap();
    let (db2, _) = reopen(&t);
    assert_eq!(state(&db2), state(&db));
}

// ---------------------------------------------------------------- faults

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let t = Tmp::new("lock");
    let (_db, store) = reopen(&t);
    let mut db2 = new_db();
    let e = Store::open(t.cfg(), &mut db2).err().expect("locked");
    assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    assert!(e.to_string().contains("another in.aasd"), "{e}");
    drop(store);
    reopen(&t);
}

#[test]
fn a_failed_append_is_cut_and_the_log_rewritten_before_the_next() {
    let t = Tmp::new("failed_append");
    let (mut db, mut store) = reopen(&t);
    alloc(&mut db, &mut store, &req("a"), 0);
    let len = file_len(&t.log());
    // A descriptor that cannot write stands in for a full disk.
    let good = std::mem::replace(&mut store.file, File::open(t.log()).unwrap());
    let (_, _, ch) = db.alloc(&req("b"), 0).unwrap();
    let recs: Vec<(u32, &Entry)> = ch.iter().map(|c| (c.addr, &c.after)).collect();
    assert!(store.append(&recs, &db).is_err());
    db.undo(&ch);
    assert!(store.suspect());
    assert_eq!(file_len(&t.log()), len);
    // Writable again (space is back): the next append rewrites the whole
    // log from memory through a fresh descriptor, never the old one.
    drop(good);
    let c = alloc(&mut db, &mut store, &req("c"), 0);
    assert!(!store.suspect());
    assert_eq!(c, n(2), "b's undone address is free again");
    drop(store);
    let (db2, _) = reopen(&t);
    assert_eq!(state(&db2), state(&db));
    assert_eq!(db2.len(), 2);
}

#[test]
fn a_failed_compaction_keeps_the_old_log() {
    let t = Tmp::new("failed_compact");
    let (mut db, mut store) = reopen(&t);
    for c in ["a", "b", "a", "b"] {
        alloc(&mut db, &mut store, &req(c), 0);
    }
    let before = fs::read(t.log()).unwrap();
    // The temporary file cannot be created.
    let tmp = t.log().with_extension("new");
    fs::create_dir(&tmp).unwrap();
    assert!(store.compact(&db).is_err());
    assert_eq!(fs::read(t.log()).unwrap(), before);
    assert!(!store.suspect(), "the old log is whole");
    fs::remove_dir(&tmp).unwrap();
    alloc(&mut db, &mut store, &req("c"), 0);
    drop(store);
    let (db2, _) = reopen(&t);
    assert_eq!(state(&db2), state(&db));
}

#[test]
fn a_checkpoint_into_a_missing_or_unusable_dir_fails_and_is_retried() {
    let t = Tmp::new("ckpt_dir_gone");
    let (mut db, mut store) = reopen(&t);
    alloc(&mut db, &mut store, &req("a"), 0);
    fs::remove_dir_all(t.ckpt_dir()).unwrap();
    assert!(store.checkpoint(&db, false).is_err());
    // A file where the directory should be.
    fs::write(t.ckpt_dir(), b"").unwrap();
    assert!(store.checkpoint(&db, false).is_err());
    // Serving goes on meanwhile.
    alloc(&mut db, &mut store, &req("b"), 0);
    fs::remove_file(t.ckpt_dir()).unwrap();
    fs::create_dir(t.ckpt_dir()).unwrap();
    let p = store.checkpoint(&db, false).unwrap().unwrap();
    let r = replay(&fs::read(p).unwrap()).unwrap();
    assert_eq!(r.records, state(&db));
    assert_eq!(
        fs::read_dir(t.ckpt_dir()).unwrap().count(),
        1,
        "no temporary left"
    );
}

#[test]
fn a_failed_fsync_is_not_retried_the_log_is_rewritten_from_memory() {
    let t = Tmp::new("failed_fsync");
    let (mut db, mut store) = reopen(&t);
    alloc(&mut db, &mut store, &req("a"), 0);
    // b's record is written, then its fsync fails (fsync of a pipe is
    // EINVAL): b is refused and undone, as the daemon does.
    let (_, _, ch) = db.alloc(&req("b"), 0).unwrap();
    let recs: Vec<(u32, &Entry)> = ch.iter().map(|c| (c.addr, &c.after)).collect();
    store.append(&recs, &db).unwrap();
    let (_r, w) = nix::unistd::pipe().unwrap();
    let real = std::mem::replace(&mut store.file, File::from(w));
    assert!(store.flush(&db).is_err());
    assert!(store.suspect());
    db.undo(&ch);
    // Not tried again as if nothing happened.
    assert!(store.flush(&db).is_ok(), "nothing left to sync");
    assert!(store.suspect());
    drop(real);
    // The next change rewrites the log from memory: b's record, which the
    // old file still holds, is gone with it.
    alloc(&mut db, &mut store, &req("c"), 0);
    assert!(!store.suspect());
    drop(store);
    let (db2, _) = reopen(&t);
    assert_eq!(state(&db2), state(&db));
    assert!(db2.entries().all(|(_, e)| e.client != "b"));
}

/// A payload in a record's frame, written out by hand: mark, length,
/// payload, CRC.
fn framed(p: &[u8]) -> Vec<u8> {
    let mut rec = vec![0xA5];
    rec.extend_from_slice(&(p.len() as u16).to_le_bytes());
    rec.extend_from_slice(p);
    rec.extend_from_slice(&crc32(p).to_le_bytes());
    rec
}

/// One record as in.aasd wrote them before host names: the payload ends
/// with the client name. Built byte by byte, not with `encode`.
fn old_record(seq: u64, addr: u32, client: &str, end: u64) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&addr.to_le_bytes());
    p.extend_from_slice(&[2, 0]); // leased, not disabled
    p.extend_from_slice(&1_000u64.to_le_bytes());
    p.extend_from_slice(&end.to_le_bytes());
    p.extend_from_slice(&0u64.to_le_bytes());
    p.push(4);
    p.extend_from_slice(b"dhcp");
    p.push(client.len() as u8);
    p.extend_from_slice(client.as_bytes());
    framed(&p)
}

#[test]
fn host_names_round_trip_and_records_without_one_stay_as_they_were() {
    let named = Entry {
        host: "printer-1".into(),
        ..entry(1, State::Leased, "10.0.0.0/1/02:00:00:00:00:01")
    };
    let long = Entry {
        service: "s".repeat(255),
        client: "c".repeat(255),
        host: "h".repeat(255),
        ..entry(2, State::Leased, "")
    };
    let (buf, offsets) = encoded(&[(n(1), named.clone()), (n(2), long.clone())]);
    let r = replay(&buf).unwrap();
    assert_eq!(r.records, [(n(1), named), (n(2), long)]);
    assert_eq!(r.torn_at, None);
    assert_eq!(buf.len() - offsets[1], 7 + FIXED + 3 + 3 * 255);
    // Without a name a record is byte for byte the old one.
    let e = Entry {
        reserved: 1_000,
        released: 0,
        ..entry(7, State::Leased, "c1")
    };
    let mut new = Vec::new();
    encode(n(3), &e, &mut new);
    assert_eq!(new, old_record(7, n(3), "c1", e.end));
}

#[test]
fn a_log_written_before_host_names_loads() {
    let t = Tmp::new("old_format");
    fs::create_dir_all(t.cfg().database_dir).unwrap();
    let mut old = HEADER.to_vec();
    old.extend(old_record(1, n(1), "10.0.0.0/1/02:00:00:00:00:01", 5_000));
    old.extend(old_record(2, n(2), "10.0.0.0/id/01020000000002", FOREVER));
    old.extend(old_record(3, n(1), "10.0.0.0/1/02:00:00:00:00:01", 9_000));
    fs::write(t.log(), &old).unwrap();
    let (mut db, mut store) = reopen(&t);
    assert_eq!(db.len(), 2);
    let e = db.get(n(1)).unwrap();
    assert_eq!(
        (e.state, e.end, e.host.as_str()),
        (State::Leased, 9_000, "")
    );
    assert_eq!(db.get(n(2)).unwrap().client, "10.0.0.0/id/01020000000002");
    // Nothing was damaged: the old log is kept as it is and appended to.
    assert_eq!(fs::read(t.log()).unwrap(), old);
    let named = Alloc {
        host: Some("pc7".into()),
        ..req("10.0.0.0/1/02:00:00:00:00:07")
    };
    let a = alloc(&mut db, &mut store, &named, 2_000);
    store.checkpoint(&db, true).unwrap();
    drop(store);
    let (db, _) = reopen(&t);
    assert_eq!(db.get(a).unwrap().host, "pc7");
    assert_eq!(db.get(n(1)).unwrap().end, 9_000);
    // The checkpoint alone gives the same.
    fs::remove_file(t.log()).unwrap();
    drop(db);
    let (db, _) = reopen(&t);
    assert_eq!(db.get(a).unwrap().host, "pc7");
    assert_eq!(db.len(), 3);
}

/// A leased record of 10.0.0.`last` whose three names are these bytes,
/// text or not, with a good CRC.
fn record_with_names(seq: u64, last: u8, names: [&[u8]; 3]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&n(last).to_le_bytes());
    p.extend_from_slice(&[2, 0]);
    for t in [1_000u64, 2_000, 500] {
        p.extend_from_slice(&t.to_le_bytes());
    }
    for name in names {
        p.push(name.len() as u8);
        p.extend_from_slice(name);
    }
    framed(&p)
}

/// Names are checked as UTF-8 each on its own: a record with a name that
/// is not, its CRC good all the same, is damage, skipped and reported,
/// both by replay and by start-up; text of any length is kept.
#[test]
fn a_name_that_is_not_utf8_is_damage_though_its_crc_is_good() {
    let long = "é".repeat(100);
    let good: [(u8, [&[u8]; 3]); 3] = [
        (1, [b"dhcp", b"a", b"pc"]),
        (2, [b"dhcp", long.as_bytes(), b""]),
        (3, [b"dhcp", b"c", "ü".as_bytes()]),
    ];
    let bad: [[&[u8]; 3]; 3] = [
        [b"dhcp", b"b\xff", b""],
        // "é" cut between two names: text together, not each alone.
        [b"dhcp\xc3", b"\xa9b", b""],
        [b"dhcp", &[b'x'; 200][..], b"\xc3"],
    ];
    for names in bad {
        let mut buf = HEADER.to_vec();
        buf.extend(record_with_names(1, good[0].0, good[0].1));
        let hole_at = buf.len();
        buf.extend(record_with_names(2, 9, names));
        let hole_len = buf.len() - hole_at;
        for (i, (last, names)) in good[1..].iter().enumerate() {
            buf.extend(record_with_names(3 + i as u64, *last, *names));
        }
        let r = replay(&buf).unwrap();
        let kept: Vec<(u32, String)> = r
            .records
            .iter()
            .map(|(a, e)| (*a, e.client.clone()))
            .collect();
        assert_eq!(
            kept,
            [
                (n(1), "a".to_string()),
                (n(2), long.clone()),
                (n(3), "c".into())
            ],
            "{names:?}"
        );
        assert_eq!(
            r.holes,
            [Damage {
                offset: hole_at,
                len: hole_len
            }]
        );
        assert_eq!(r.torn_at, None);
        assert_eq!(r.records[2].1.host, "ü");
        // Start-up reads it as replay does, and keeps the damaged log aside.
        let t = Tmp::new("not_utf8");
        fs::create_dir_all(t.log().parent().unwrap()).unwrap();
        fs::write(t.log(), &buf).unwrap();
        let (db, _store) = reopen(&t);
        assert_eq!(state(&db), r.records);
        let aside = fs::read_dir(t.log().parent().unwrap())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".corrupt.")
            })
            .count();
        assert_eq!(aside, 1, "the damaged log is kept");
    }
}

/// Start-up reads a file a stretch at a time: whatever the stretch, the
/// records, holes and tail found are those of the whole file read at once.
#[test]
fn a_file_read_in_stretches_replays_as_one_read_whole() {
    let (good, offsets) = encoded(&sample());
    let mut cases = vec![
        good.clone(),
        good[..good.len() - 3].to_vec(),
        HEADER.to_vec(),
        HEADER[..5].to_vec(),
    ];
    for &o in &offsets {
        let mut b = good.clone();
        b[o + 9] ^= 0x40;
        cases.push(b);
    }
    let mut b = good.clone();
    b.splice(offsets[2]..offsets[2], [0xA5u8; 40]);
    cases.push(b);
    let mut b = good.clone();
    b.extend([0xA5, 0x40, 0x00, 1, 2, 3]);
    cases.push(b);
    let mut b = good.clone();
    b.extend(std::iter::repeat_n(0x5A, 3 * MAX_FRAME));
    cases.push(b);
    for bytes in &cases {
        let whole = replay(bytes);
        assert!(whole.is_some() || bytes.len() < HEADER.len());
        for chunk in [1, 2, 7, 100, MAX_FRAME - 1, MAX_FRAME, MAX_FRAME + 1, 4096] {
            let mut records = Vec::new();
            let r = scan(&mut Window::new(&bytes[..], chunk), |a, e| {
                records.push((a, as_text(e).owned()))
            })
            .unwrap();
            let r = r.map(|r| Replay { records, ..r });
            assert_eq!(r, whole, "{} bytes, read {chunk} at a time", bytes.len());
        }
    }
}

/// A log longer than what start-up reads at a time, damaged where one
/// stretch ends and cut short at its end, opens as its replay says.
#[test]
fn a_log_of_many_stretches_opens_as_its_replay() {
    let t = Tmp::new("many_stretches");
    let recs: Vec<(u32, Entry)> = (1..=12_000u64)
        .map(|seq| {
            (
                n(1 + (seq % 50) as u8),
                entry(seq, State::Leased, &format!("client-{seq}")),
            )
        })
        .collect();
    let (mut bytes, _) = encoded(&recs);
    assert!(bytes.len() > 2 * CHUNK);
    bytes[CHUNK - 2] ^= 0xFF;
    bytes.truncate(bytes.len() - 5);
    let r = replay(&bytes).unwrap();
    assert_eq!(r.holes.len(), 1);
    assert!(r.short_tail);
    let mut newest: std::collections::BTreeMap<u32, Entry> = Default::default();
    for (a, e) in r.records {
        newest.insert(a, e);
    }
    fs::create_dir_all(t.log().parent().unwrap()).unwrap();
    fs::write(t.log(), &bytes).unwrap();
    let (db, _store) = reopen(&t);
    assert_eq!(state(&db), newest.into_iter().collect::<Vec<_>>());
}
