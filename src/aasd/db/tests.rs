use super::*;

fn ip(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from(Ipv4Addr::new(a, b, c, d))
}

/// 10.0.0.N
fn n(last: u8) -> u32 {
    ip(10, 0, 0, last)
}

/// One pool "P" of 10.0.0.1 - 10.0.0.`last`.
fn db_of(last: u8) -> Db {
    Db::new(vec![Pool::new("P", vec![(n(1), n(last))])])
}

fn req(client: &str) -> Alloc {
    Alloc::new("P", "dhcp", client, 100)
}

fn with(client: &str, f: impl FnOnce(&mut Alloc)) -> Alloc {
    let mut r = req(client);
    f(&mut r);
    r
}

fn exact(client: &str, a: u32) -> Alloc {
    with(client, |r| r.want = Want::Exact(a))
}

fn get(db: &mut Db, r: &Alloc, now: Time) -> u32 {
    db.alloc(r, now).expect("allocated").0
}

fn stats_of(db: &mut Db, now: Time) -> Stats {
    db.stats(now).into_iter().next().expect("one pool")
}

#[test]
fn lru_never_used_first_in_pool_order_then_oldest_release() {
    // Ranges given out of order: the pool sorts them.
    let mut db = Db::new(vec![Pool::new("P", vec![(n(10), n(11)), (n(1), n(2))])]);
    let got: Vec<u32> = ["a", "b", "c", "d"]
        .iter()
        .map(|c| get(&mut db, &req(c), 0))
        .collect();
    assert_eq!(got, vec![n(1), n(2), n(10), n(11)]);
    assert_eq!(db.alloc(&req("e"), 0), Err(Refusal::Exhausted("P".into())));
    db.release(n(10), None, 10).unwrap();
    db.release(n(1), None, 30).unwrap();
    db.release(n(2), None, 20).unwrap();
    assert_eq!(get(&mut db, &req("x"), 40), n(10));
    assert_eq!(get(&mut db, &req("y"), 40), n(2));
    assert_eq!(get(&mut db, &req("z"), 40), n(1));
    assert!(db.alloc(&req("w"), 40).is_err());
}

#[test]
fn never_used_addresses_come_before_released_ones() {
    let mut db = db_of(4);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    db.release(n(1), Some(("dhcp", "a")), 1).unwrap();
    // .1 was used and freed; .2 never used: .2 first.
    assert_eq!(get(&mut db, &req("b"), 2), n(2));
    assert_eq!(get(&mut db, &req("c"), 2), n(3));
    assert_eq!(get(&mut db, &req("d"), 2), n(4));
    assert_eq!(get(&mut db, &req("e"), 2), n(1));
}

#[test]
fn previous_gives_the_clients_last_address_when_free() {
    let mut db = db_of(5);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    assert_eq!(get(&mut db, &req("b"), 0), n(2));
    db.release(n(2), None, 5).unwrap();
    db.release(n(1), None, 10).unwrap();
    // Without `previous`: never-used .3.
    let r = with("a", |r| r.previous = true);
    assert_eq!(get(&mut db, &r, 20), n(1));
    // Other clients do not see a's previous as theirs: LRU (never used).
    assert_eq!(get(&mut db, &req("c"), 20), n(3));
    // b's previous .2 is still free and its own.
    let rb = with("b", |r| r.previous = true);
    assert_eq!(get(&mut db, &rb, 20), n(2));
    // Same client name under another service is another client.
    let other = with("a", |r| {
        r.previous = true;
        r.service = "ppp".into();
    });
    assert_eq!(get(&mut db, &other, 20), n(4));
}

#[test]
fn previous_not_used_when_taken_by_another() {
    let mut db = db_of(3);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    db.release(n(1), None, 1).unwrap();
    assert_eq!(get(&mut db, &exact("b", n(1)), 2), n(1));
    let r = with("a", |r| r.previous = true);
    assert_eq!(get(&mut db, &r, 3), n(2));
    assert_eq!(db.get(n(1)).unwrap().client, "b");
}

#[test]
fn without_previous_a_free_previous_address_is_not_chosen() {
    let mut db = db_of(3);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    db.release(n(1), None, 1).unwrap();
    assert_eq!(get(&mut db, &req("a"), 2), n(2));
}

#[test]
fn prefer_free_gives_it_taken_gives_lru() {
    let mut db = db_of(5);
    let p = |c: &str, a: u32| with(c, |r| r.want = Want::Prefer(a));
    assert_eq!(get(&mut db, &p("a", n(4)), 0), n(4));
    // Taken by a: b gets the LRU one.
    assert_eq!(get(&mut db, &p("b", n(4)), 0), n(1));
    // Not in the pool: LRU.
    assert_eq!(get(&mut db, &p("c", ip(192, 168, 0, 1)), 0), n(2));
    // Disabled: LRU.
    db.set_disabled(n(5), true, 0).unwrap();
    assert_eq!(get(&mut db, &p("d", n(5)), 0), n(3));
}

#[test]
fn prefer_with_previous_keeps_the_current_address() {
    let mut db = db_of(5);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    let r = with("a", |r| {
        r.want = Want::Prefer(n(3));
        r.previous = true;
    });
    assert_eq!(get(&mut db, &r, 10), n(1));
    assert_eq!(db.get(n(3)), None);
}

#[test]
fn exact_requests() {
    let mut db = db_of(4);
    assert_eq!(get(&mut db, &exact("a", n(3)), 0), n(3));
    assert_eq!(
        db.alloc(&exact("b", n(3)), 0),
        Err(Refusal::Taken(Ipv4Addr::from(n(3))))
    );
    assert_eq!(
        db.alloc(&exact("b", n(9)), 0),
        Err(Refusal::NotInPool(Ipv4Addr::from(n(9))))
    );
    db.set_disabled(n(2), true, 0).unwrap();
    assert_eq!(
        db.alloc(&exact("b", n(2)), 0),
        Err(Refusal::Disabled(Ipv4Addr::from(n(2))))
    );
    let nopool = with("b", |r| r.pool = "Q".into());
    assert_eq!(db.alloc(&nopool, 0), Err(Refusal::NoPool("Q".into())));
    assert_eq!(Refusal::Taken(Ipv4Addr::from(n(3))).code(), "taken");
    assert_eq!(Refusal::NotInPool(Ipv4Addr::from(n(3))).code(), "notinpool");
    assert_eq!(Refusal::Disabled(Ipv4Addr::from(n(3))).code(), "disabled");
    assert_eq!(Refusal::NoPool("Q".into()).code(), "nopool");
    // Refused requests changed nothing.
    assert_eq!(db.get(n(3)).unwrap().client, "a");
    assert_eq!(db.len(), 2);
    // Exact on a free, once-used address by another client.
    db.release(n(3), None, 5).unwrap();
    assert_eq!(get(&mut db, &exact("b", n(3)), 6), n(3));
    assert_eq!(db.get(n(3)).unwrap().client, "b");
}

#[test]
fn exact_on_a_declined_address_is_taken() {
    let mut db = db_of(4);
    db.decline(n(2), 100, None, 0).unwrap();
    assert_eq!(
        db.alloc(&exact("a", n(2)), 50),
        Err(Refusal::Taken(Ipv4Addr::from(n(2))))
    );
    assert_eq!(get(&mut db, &exact("a", n(2)), 100), n(2));
}

#[test]
fn range_picks_within_the_range() {
    let mut db = db_of(10);
    let r = |c: &str| with(c, |r| r.want = Want::Range(n(5), n(7)));
    assert_eq!(get(&mut db, &r("a"), 0), n(5));
    assert_eq!(get(&mut db, &r("b"), 0), n(6));
    assert_eq!(get(&mut db, &r("c"), 0), n(7));
    assert_eq!(db.alloc(&r("d"), 0), Err(Refusal::Exhausted("P".into())));
    // Addresses outside the range are untouched.
    assert_eq!(get(&mut db, &req("d"), 0), n(1));
    // Among freed ones in the range: the one released longest ago.
    db.release(n(7), None, 10).unwrap();
    db.release(n(6), None, 20).unwrap();
    assert_eq!(get(&mut db, &r("e"), 30), n(7));
    assert_eq!(get(&mut db, &r("f"), 30), n(6));
}

#[test]
fn range_partly_outside_the_pool() {
    let mut db = db_of(3);
    let r = |c: &str| with(c, |r| r.want = Want::Range(n(3), n(200)));
    assert_eq!(get(&mut db, &r("a"), 0), n(3));
    assert_eq!(db.alloc(&r("b"), 0), Err(Refusal::Exhausted("P".into())));
}

#[test]
fn exhaustion() {
    let mut db = db_of(3);
    for c in ["a", "b", "c"] {
        db.alloc(&req(c), 0).unwrap();
    }
    let err = db.alloc(&req("d"), 0).unwrap_err();
    assert_eq!(err, Refusal::Exhausted("P".into()));
    assert_eq!(err.code(), "exhausted");
    assert_eq!(err.to_string(), "No available addresses in pool P");
    assert_eq!(stats_of(&mut db, 0).free, 0);
}

#[test]
fn renewal_keeps_the_address_and_extends_the_end() {
    let mut db = db_of(4);
    let (a, end, _) = db.alloc(&req("a"), 0).unwrap();
    assert_eq!((a, end), (n(1), 100));
    let (a2, end2, changes) = db.alloc(&exact("a", n(1)), 50).unwrap();
    assert_eq!((a2, end2), (n(1), 150));
    assert_eq!(changes.len(), 1);
    let e = db.get(n(1)).unwrap();
    assert_eq!(e.state, State::Leased);
    assert_eq!(e.end, 150);
    assert_eq!(e.reserved, 0, "a renewal keeps the reservation time");
    // Renewal via previous.
    let r = with("a", |r| r.previous = true);
    assert_eq!(db.alloc(&r, 80).unwrap().0, n(1));
    assert_eq!(db.get(n(1)).unwrap().end, 180);
    assert_eq!(db.len(), 1);
}

#[test]
fn forever_lease() {
    let mut db = db_of(2);
    let r = with("a", |r| r.lease = FOREVER);
    let (a, end, _) = db.alloc(&r, 1000).unwrap();
    assert_eq!((a, end), (n(1), FOREVER));
    assert_eq!(stats_of(&mut db, u64::MAX - 1).leased, 1);
    assert_eq!(get(&mut db, &req("b"), u64::MAX - 1), n(2));
}

#[test]
fn hold_on_a_leased_address_does_not_shorten_the_lease() {
    let mut db = db_of(4);
    db.alloc(&req("a"), 0).unwrap(); // leased until 100
    let hold = with("a", |r| {
        r.previous = true;
        r.hold = true;
        r.lease = 10;
    });
    let (a, end, _) = db.alloc(&hold, 20).unwrap();
    assert_eq!((a, end), (n(1), 100));
    let e = db.get(n(1)).unwrap();
    assert_eq!(e.state, State::Leased);
    assert_eq!(e.end, 100);
    // A hold with a longer lease extends it, still leased.
    let long = with("a", |r| {
        r.previous = true;
        r.hold = true;
        r.lease = 500;
    });
    assert_eq!(db.alloc(&long, 30).unwrap().1, 530);
    assert_eq!(db.get(n(1)).unwrap().state, State::Leased);
}

#[test]
fn hold_then_lease() {
    let mut db = db_of(4);
    let hold = with("a", |r| {
        r.previous = true;
        r.hold = true;
        r.lease = 10;
    });
    let (a, end, _) = db.alloc(&hold, 0).unwrap();
    assert_eq!((a, end), (n(1), 10));
    assert_eq!(db.get(n(1)).unwrap().state, State::Offered);
    // Asked again while offered: still offered, end moved.
    let (a, end, _) = db.alloc(&hold, 4).unwrap();
    assert_eq!((a, end), (n(1), 14));
    assert_eq!(db.get(n(1)).unwrap().reserved, 0);
    let s = stats_of(&mut db, 0);
    assert_eq!((s.offered, s.leased), (1, 0));
    let lease = with("a", |r| r.previous = true);
    assert_eq!(db.alloc(&lease, 5).unwrap().0, n(1));
    let s = stats_of(&mut db, 5);
    assert_eq!((s.offered, s.leased), (0, 1));
}

#[test]
fn expired_offer_and_lease_are_free_again() {
    let mut db = db_of(2);
    let hold = with("a", |r| {
        r.hold = true;
        r.lease = 10;
    });
    assert_eq!(get(&mut db, &hold, 0), n(1));
    assert_eq!(get(&mut db, &req("b"), 0), n(2)); // leased until 100
    assert_eq!(db.alloc(&req("c"), 9), Err(Refusal::Exhausted("P".into())));
    let s = stats_of(&mut db, 9);
    assert_eq!((s.offered, s.leased, s.free), (1, 1, 0));
    // At its end the offer is free.
    let s = stats_of(&mut db, 10);
    assert_eq!((s.offered, s.leased, s.free), (0, 1, 1));
    assert_eq!(db.get(n(1)).unwrap().state_at(10), State::Free);
    assert_eq!(get(&mut db, &exact("c", n(1)), 10), n(1));
    // The lease past its end too.
    assert_eq!(get(&mut db, &req("d"), 100), n(2));
    let s = stats_of(&mut db, 100);
    assert_eq!((s.offered, s.leased, s.free), (0, 2, 0));
}

#[test]
fn expiry_sets_released_to_the_end_for_lru() {
    let mut db = db_of(3);
    let short = |c: &str, l: Time| with(c, |r| r.lease = l);
    assert_eq!(get(&mut db, &short("a", 30), 0), n(1));
    assert_eq!(get(&mut db, &short("b", 10), 0), n(2));
    assert_eq!(get(&mut db, &short("c", 20), 0), n(3));
    let s = stats_of(&mut db, 50);
    assert_eq!(s.free, 3);
    assert_eq!(db.get(n(2)).unwrap().state, State::Free);
    assert_eq!(db.get(n(2)).unwrap().released, 10);
    assert_eq!(get(&mut db, &req("x"), 50), n(2));
    assert_eq!(get(&mut db, &req("y"), 50), n(3));
    assert_eq!(get(&mut db, &req("z"), 50), n(1));
    // An expired client can get its old address back via previous.
    let mut db = db_of(3);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    let r = with("a", |r| r.previous = true);
    assert_eq!(get(&mut db, &r, 500), n(1));
}

#[test]
fn a_new_address_in_the_same_pool_frees_the_old_one() {
    let mut db = db_of(4);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    let (a, _, changes) = db.alloc(&exact("a", n(3)), 10).unwrap();
    assert_eq!(a, n(3));
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].addr, n(1));
    assert_eq!(changes[0].after.state, State::Free);
    assert_eq!(changes[1].addr, n(3));
    let old = db.get(n(1)).unwrap();
    assert_eq!(old.state, State::Free);
    assert_eq!((old.released, old.end), (10, 10));
    let s = stats_of(&mut db, 10);
    assert_eq!((s.leased, s.free), (1, 3));
    // Any without previous: a new address, old one freed again.
    assert_eq!(get(&mut db, &req("a"), 20), n(2));
    assert_eq!(db.get(n(3)).unwrap().state, State::Free);
    assert_eq!(stats_of(&mut db, 20).leased, 1);
}

#[test]
fn a_client_holds_one_address_per_pool() {
    let mut db = Db::new(vec![
        Pool::new("P", vec![(n(1), n(4))]),
        Pool::new("Q", vec![(n(10), n(14))]),
    ]);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    let q = with("a", |r| r.pool = "Q".into());
    assert_eq!(get(&mut db, &q, 0), n(10));
    // Both still leased.
    assert_eq!(db.get(n(1)).unwrap().state, State::Leased);
    assert_eq!(db.get(n(10)).unwrap().state, State::Leased);
    // Exact in Q of a P address: not in the pool.
    let qx = with("a", |r| {
        r.pool = "Q".into();
        r.want = Want::Exact(n(2));
    });
    assert_eq!(
        db.alloc(&qx, 0),
        Err(Refusal::NotInPool(Ipv4Addr::from(n(2))))
    );
}

#[test]
fn release_by_holder_other_client_and_admin() {
    let mut db = db_of(4);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    assert_eq!(
        db.release(n(1), Some(("dhcp", "b")), 5),
        Err(Refusal::NotHeld(Ipv4Addr::from(n(1))))
    );
    assert_eq!(
        db.release(n(1), Some(("ppp", "a")), 5),
        Err(Refusal::NotHeld(Ipv4Addr::from(n(1))))
    );
    assert_eq!(db.get(n(1)).unwrap().state, State::Leased);
    let changes = db.release(n(1), Some(("dhcp", "a")), 5).unwrap();
    assert_eq!(changes.len(), 1);
    let e = db.get(n(1)).unwrap();
    assert_eq!((e.state, e.released, e.end), (State::Free, 5, 5));
    // Released again by the client: it holds nothing.
    assert_eq!(
        db.release(n(1), Some(("dhcp", "a")), 6),
        Err(Refusal::NotHeld(Ipv4Addr::from(n(1))))
    );
    // Admin release of someone's lease.
    assert_eq!(get(&mut db, &req("b"), 10), n(2));
    assert_eq!(db.release(n(2), None, 11).unwrap().len(), 1);
    assert_eq!(db.get(n(2)).unwrap().state, State::Free);
    // Admin release of a free or never-used address: nothing to do.
    assert_eq!(db.release(n(2), None, 12).unwrap(), vec![]);
    assert_eq!(db.release(n(4), None, 12).unwrap(), vec![]);
    assert_eq!(db.get(n(4)), None);
    assert_eq!(
        db.release(n(4), Some(("dhcp", "a")), 12),
        Err(Refusal::NotHeld(Ipv4Addr::from(n(4))))
    );
    assert_eq!(
        db.release(n(99), None, 12),
        Err(Refusal::NotInPool(Ipv4Addr::from(n(99))))
    );
    // Admin release of a declined address ends the decline.
    db.decline(n(3), 1000, None, 20).unwrap();
    assert_eq!(db.release(n(3), None, 21).unwrap().len(), 1);
    assert_eq!(db.get(n(3)).unwrap().state, State::Free);
    assert_eq!(stats_of(&mut db, 21).free, 4);
}

#[test]
fn release_of_an_expired_lease_by_its_client_is_not_held() {
    let mut db = db_of(2);
    get(&mut db, &req("a"), 0);
    assert_eq!(
        db.release(n(1), Some(("dhcp", "a")), 100),
        Err(Refusal::NotHeld(Ipv4Addr::from(n(1))))
    );
}

#[test]
fn unhold_frees_an_offer_not_a_lease() {
    let mut db = db_of(4);
    let hold = with("a", |r| r.hold = true);
    assert_eq!(get(&mut db, &hold, 0), n(1));
    let changes = db.unhold("P", "dhcp", "a", 5).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(db.get(n(1)).unwrap().state, State::Free);
    assert_eq!(stats_of(&mut db, 5).offered, 0);

    assert_eq!(get(&mut db, &req("b"), 10), n(2));
    assert_eq!(db.unhold("P", "dhcp", "b", 11).unwrap(), vec![]);
    assert_eq!(db.get(n(2)).unwrap().state, State::Leased);
    // Unknown client, unknown pool.
    assert_eq!(db.unhold("P", "dhcp", "zz", 11).unwrap(), vec![]);
    assert_eq!(
        db.unhold("Q", "dhcp", "a", 11),
        Err(Refusal::NoPool("Q".into()))
    );
}

#[test]
fn decline_by_holder_out_of_use_until_end() {
    let mut db = db_of(3);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    assert_eq!(get(&mut db, &req("b"), 0), n(2));
    assert_eq!(
        db.decline(n(1), 50, Some(("dhcp", "b")), 10),
        Err(Refusal::NotHeld(Ipv4Addr::from(n(1))))
    );
    assert_eq!(db.get(n(1)).unwrap().state, State::Leased);
    let changes = db.decline(n(1), 50, Some(("dhcp", "a")), 10).unwrap();
    assert_eq!(changes.len(), 1);
    let e = db.get(n(1)).unwrap();
    assert_eq!((e.state, e.end), (State::Declined, 60));
    let s = stats_of(&mut db, 10);
    assert_eq!((s.declined, s.leased, s.free), (1, 1, 1));
    // Out of use while another address is free, and when none is (see
    // a_full_pool_keeps_its_declines_out_of_use_until_they_end).
    assert_eq!(get(&mut db, &req("c"), 20), n(3));
    assert_eq!(stats_of(&mut db, 20).free, 0);
    assert_eq!(
        db.alloc(&exact("d", n(1)), 59),
        Err(Refusal::Taken(Ipv4Addr::from(n(1))))
    );
    // After its end it is free.
    let s = stats_of(&mut db, 60);
    assert_eq!((s.declined, s.free), (0, 1));
    assert_eq!(get(&mut db, &req("d"), 60), n(1));
}

#[test]
fn the_decliner_does_not_get_it_back_via_previous() {
    let mut db = db_of(3);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    db.decline(n(1), 10, Some(("dhcp", "a")), 5).unwrap();
    // At 100 .1 is free again, but a's previous no longer points at it:
    // a gets the LRU address, never-used .2.
    let r = with("a", |r| r.previous = true);
    assert_eq!(get(&mut db, &r, 100), n(2));
    // Both used: .2 released at 1, .1 free since its decline ended at 15.
    let mut db = db_of(2);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    assert_eq!(get(&mut db, &req("b"), 0), n(2));
    db.release(n(2), None, 1).unwrap();
    db.decline(n(1), 10, Some(("dhcp", "a")), 5).unwrap();
    // LRU is .2; previous must not override that with .1.
    assert_eq!(get(&mut db, &r, 100), n(2));
}

#[test]
fn decline_by_admin_of_a_never_used_address() {
    let mut db = db_of(2);
    db.decline(n(1), 30, None, 0).unwrap();
    assert_eq!(get(&mut db, &req("a"), 0), n(2));
    // Nothing else free: the decline still runs, so nothing is given.
    assert_eq!(db.alloc(&req("b"), 29), Err(Refusal::Exhausted("P".into())));
    assert_eq!(get(&mut db, &req("b"), 30), n(1));
    assert_eq!(
        db.decline(n(50), 30, None, 0),
        Err(Refusal::NotInPool(Ipv4Addr::from(n(50))))
    );
}

#[test]
fn disabled_addresses_are_never_allocated() {
    let mut db = db_of(3);
    assert_eq!(db.set_disabled(n(1), true, 0).unwrap().len(), 1);
    // Disabling twice changes nothing.
    assert_eq!(db.set_disabled(n(1), true, 0).unwrap(), vec![]);
    assert_eq!(stats_of(&mut db, 0).disabled, 1);
    assert_eq!(get(&mut db, &req("a"), 0), n(2));
    assert_eq!(get(&mut db, &req("b"), 0), n(3));
    assert_eq!(db.alloc(&req("c"), 0), Err(Refusal::Exhausted("P".into())));
    let range = with("c", |r| r.want = Want::Range(n(1), n(3)));
    assert_eq!(db.alloc(&range, 0), Err(Refusal::Exhausted("P".into())));
    // Freed and disabled: still never allocated.
    db.release(n(2), None, 1).unwrap();
    db.set_disabled(n(2), true, 2).unwrap();
    assert_eq!(db.alloc(&req("c"), 3), Err(Refusal::Exhausted("P".into())));
    let s = stats_of(&mut db, 3);
    assert_eq!((s.disabled, s.leased, s.free), (2, 1, 0));
    // Enable makes it allocatable.
    assert_eq!(db.set_disabled(n(1), false, 4).unwrap().len(), 1);
    assert_eq!(get(&mut db, &req("c"), 4), n(1));
    db.set_disabled(n(2), false, 5).unwrap();
    assert_eq!(get(&mut db, &exact("d", n(2)), 5), n(2));
    assert_eq!(
        db.set_disabled(n(9), true, 5),
        Err(Refusal::NotInPool(Ipv4Addr::from(n(9))))
    );
}

#[test]
fn a_disabled_lease_is_not_renewed() {
    let mut db = db_of(3);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    db.set_disabled(n(1), true, 10).unwrap();
    // Still leased until its end.
    let s = stats_of(&mut db, 10);
    assert_eq!((s.leased, s.disabled), (1, 0));
    assert_eq!(
        db.alloc(&exact("a", n(1)), 20),
        Err(Refusal::Disabled(Ipv4Addr::from(n(1))))
    );
    assert_eq!(db.get(n(1)).unwrap().end, 100);
    // With previous: another address; the disabled one is freed.
    let r = with("a", |r| r.previous = true);
    assert_eq!(get(&mut db, &r, 30), n(2));
    let e = db.get(n(1)).unwrap();
    assert_eq!((e.state, e.disabled), (State::Free, true));
    let s = stats_of(&mut db, 30);
    assert_eq!((s.leased, s.disabled, s.free), (1, 1, 1));
    // Enabled again: allocatable.
    db.set_disabled(n(1), false, 40).unwrap();
    assert_eq!(get(&mut db, &exact("b", n(1)), 40), n(1));
}

#[test]
fn a_disabled_lease_expires_to_disabled() {
    let mut db = db_of(2);
    get(&mut db, &req("a"), 0);
    db.set_disabled(n(1), true, 10).unwrap();
    let s = stats_of(&mut db, 100);
    assert_eq!((s.leased, s.disabled, s.free), (0, 1, 1));
    let r = with("a", |r| r.previous = true);
    assert_eq!(get(&mut db, &r, 100), n(2));
}

#[test]
fn stats_numbers() {
    let mut db = Db::new(vec![
        Pool::new("P", vec![(n(1), n(5)), (n(20), n(24))]),
        Pool::new("Q", vec![(n(100), n(103))]),
    ]);
    get(&mut db, &req("a"), 0);
    get(&mut db, &req("b"), 0);
    get(&mut db, &with("c", |r| r.hold = true), 0);
    db.decline(n(20), 100, None, 0).unwrap();
    db.set_disabled(n(24), true, 0).unwrap();
    db.set_disabled(n(5), true, 0).unwrap();
    db.set_disabled(n(5), false, 0).unwrap();
    get(&mut db, &with("a", |r| r.pool = "Q".into()), 0);
    let s = db.stats(0);
    assert_eq!(
        s,
        vec![
            Stats {
                name: "P".into(),
                size: 10,
                leased: 2,
                offered: 1,
                free: 5,
                disabled: 1,
                declined: 1,
                reserved: 0,
            },
            Stats {
                name: "Q".into(),
                size: 4,
                leased: 1,
                offered: 0,
                free: 3,
                disabled: 0,
                declined: 0,
                reserved: 0,
            },
        ]
    );
    // After a release and the offer's end.
    db.release(n(1), None, 10).unwrap();
    let s = &db.stats(100)[0];
    assert_eq!(
        (s.leased, s.offered, s.free, s.disabled, s.declined),
        (0, 0, 9, 1, 0)
    );
}

#[test]
fn query_filters() {
    let mut db = Db::new(vec![
        Pool::new("P", vec![(n(1), n(5))]),
        Pool::new("Q", vec![(n(10), n(15))]),
    ]);
    get(&mut db, &req("a"), 0); // .1 leased dhcp a
    get(&mut db, &with("b", |r| r.hold = true), 0); // .2 offered
    get(&mut db, &with("a", |r| r.pool = "Q".into()), 0); // .10
    get(
        &mut db,
        &with("c", |r| {
            r.pool = "Q".into();
            r.service = "ppp".into();
            r.lease = 10;
        }),
        0,
    ); // .11 leased until 10
    db.set_disabled(n(3), true, 0).unwrap();
    let addrs =
        |v: Vec<(u32, &str, Entry<&str>)>| v.into_iter().map(|(a, _, _)| a).collect::<Vec<_>>();
    assert_eq!(
        addrs(db.query(&Filter::default(), 1)),
        vec![n(1), n(2), n(3), n(10), n(11)]
    );
    let pools: Vec<String> = db
        .query(&Filter::default(), 1)
        .iter()
        .map(|(_, p, _)| p.to_string())
        .collect();
    assert_eq!(pools, ["P", "P", "P", "Q", "Q"]);
    let f = Filter {
        pool: Some("Q".into()),
        ..Filter::default()
    };
    assert_eq!(addrs(db.query(&f, 1)), vec![n(10), n(11)]);
    let f = Filter {
        range: Some((n(2), n(10))),
        ..Filter::default()
    };
    assert_eq!(addrs(db.query(&f, 1)), vec![n(2), n(3), n(10)]);
    // A page: the first two of them; the next page starts after the last.
    assert_eq!(addrs(db.query_page(&f, 1, 2)), vec![n(2), n(3)]);
    let rest = Filter {
        range: Some((n(4), n(10))),
        ..Filter::default()
    };
    assert_eq!(addrs(db.query_page(&rest, 1, 2)), vec![n(10)]);
    let f = Filter {
        service: Some("ppp".into()),
        ..Filter::default()
    };
    assert_eq!(addrs(db.query(&f, 1)), vec![n(11)]);
    let f = Filter {
        client: Some("a".into()),
        ..Filter::default()
    };
    assert_eq!(addrs(db.query(&f, 1)), vec![n(1), n(10)]);
    let f = Filter {
        client: Some("a".into()),
        pool: Some("P".into()),
        ..Filter::default()
    };
    assert_eq!(addrs(db.query(&f, 1)), vec![n(1)]);
    let f = Filter {
        state: Some(Selector::State(State::Leased)),
        ..Filter::default()
    };
    assert_eq!(addrs(db.query(&f, 1)), vec![n(1), n(10), n(11)]);
    let f = Filter {
        state: Some(Selector::State(State::Offered)),
        ..Filter::default()
    };
    assert_eq!(addrs(db.query(&f, 1)), vec![n(2)]);
    let f = Filter {
        state: Some(Selector::Disabled),
        ..Filter::default()
    };
    assert_eq!(addrs(db.query(&f, 1)), vec![n(3)]);
    // Expired by the time of the query: .11 is free now.
    let f = Filter {
        state: Some(Selector::State(State::Leased)),
        ..Filter::default()
    };
    assert_eq!(addrs(db.query(&f, 10)), vec![n(1), n(10)]);
    let f = Filter {
        state: Some(Selector::State(State::Free)),
        ..Filter::default()
    };
    assert_eq!(addrs(db.query(&f, 10)), vec![n(3), n(11)]);
    let f = Filter {
        pool: Some("nosuch".into()),
        ..Filter::default()
    };
    assert!(db.query(&f, 10).is_empty());
}

#[test]
fn state_names_round_trip() {
    for s in [State::Free, State::Offered, State::Leased, State::Declined] {
        assert_eq!(State::from_name(s.name()), Some(s));
    }
    assert_eq!(State::from_name("disabled"), None);
}

#[test]
fn undo_of_a_fresh_allocation() {
    let mut db = db_of(4);
    let before = stats_of(&mut db, 0);
    let (a, _, changes) = db.alloc(&req("a"), 0).unwrap();
    assert_eq!(a, n(1));
    db.undo(&changes);
    assert_eq!(db.get(n(1)), None);
    assert!(db.is_empty());
    assert_eq!(stats_of(&mut db, 0), before);
    assert!(db.query(&Filter::default(), 0).is_empty());
    // The same address again, for another client and for the same one.
    let (b, _, changes) = db.alloc(&req("b"), 0).unwrap();
    assert_eq!(b, n(1));
    db.undo(&changes);
    let r = with("a", |r| r.previous = true);
    assert_eq!(get(&mut db, &r, 1), n(1));
    assert_eq!(db.get(n(1)).unwrap().client, "a");
}

#[test]
fn undo_restores_the_previous_state() {
    let mut db = db_of(4);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    assert_eq!(get(&mut db, &req("b"), 0), n(2));
    db.release(n(2), None, 5).unwrap();
    let snapshot: Vec<(u32, Entry)> = db.entries().map(|(a, e)| (a, e.owned())).collect();
    let before = stats_of(&mut db, 10);
    // a moves to .2 (Exact): two changes.
    let (_, _, changes) = db.alloc(&exact("a", n(2)), 10).unwrap();
    assert_eq!(changes.len(), 2);
    db.undo(&changes);
    let now: Vec<(u32, Entry)> = db.entries().map(|(a, e)| (a, e.owned())).collect();
    assert_eq!(now, snapshot);
    assert_eq!(stats_of(&mut db, 10), before);
    // Indexes agree: a still holds .1 (renewal via previous), .2 is the
    // LRU free used address after the never-used ones.
    let r = with("a", |r| r.previous = true);
    let (a, end, ch) = db.alloc(&r, 10).unwrap();
    assert_eq!((a, end, ch.len()), (n(1), 110, 1));
    assert_eq!(get(&mut db, &req("c"), 10), n(3));
    assert_eq!(get(&mut db, &req("d"), 10), n(4));
    assert_eq!(get(&mut db, &req("e"), 10), n(2));
    // Undo of a release and a decline.
    let ch = db.release(n(4), None, 20).unwrap();
    db.undo(&ch);
    assert_eq!(db.get(n(4)).unwrap().state, State::Leased);
    assert_eq!(db.alloc(&req("f"), 20), Err(Refusal::Exhausted("P".into())));
    let ch = db.decline(n(4), 100, Some(("dhcp", "d")), 20).unwrap();
    db.undo(&ch);
    assert_eq!(db.get(n(4)).unwrap().client, "d");
    assert_eq!(stats_of(&mut db, 20).declined, 0);
    let ch = db.set_disabled(n(4), true, 20).unwrap();
    db.undo(&ch);
    assert!(!db.get(n(4)).unwrap().disabled);
}

#[test]
fn undo_of_a_reuse_gives_the_same_address_again() {
    let mut db = db_of(2);
    get(&mut db, &req("a"), 0);
    get(&mut db, &req("b"), 0);
    db.release(n(2), None, 1).unwrap();
    db.release(n(1), None, 2).unwrap();
    let (a, _, ch) = db.alloc(&req("c"), 3).unwrap();
    assert_eq!(a, n(2));
    db.undo(&ch);
    assert_eq!(db.get(n(2)).unwrap().client, "b");
    assert_eq!(get(&mut db, &req("c"), 3), n(2));
    assert_eq!(get(&mut db, &req("d"), 3), n(1));
}

#[test]
fn a_slash_8_pool_allocates_without_a_scan() {
    let lo = ip(10, 0, 0, 0);
    let hi = ip(10, 255, 255, 255);
    let mut db = Db::new(vec![Pool::new("Big", vec![(lo, hi)])]);
    assert_eq!(db.pools()[0].size(), 1 << 24);
    assert!(db.is_empty());
    let mut last = 0;
    for i in 0..10_000u32 {
        let r = Alloc {
            previous: true,
            ..Alloc::new("Big", "dhcp", &format!("c{i}"), 3600)
        };
        let (a, _, _) = db.alloc(&r, 0).unwrap();
        assert_eq!(a, lo + i);
        last = a;
    }
    assert_eq!(last, ip(10, 0, 39, 15));
    assert_eq!(db.len(), 10_000);
    let s = &db.stats(0)[0];
    assert_eq!((s.leased, s.free), (10_000, (1 << 24) - 10_000));
}

#[test]
fn held_outside() {
    let p = Pool::new("P", vec![(n(1), n(4))]);
    let q = Pool::new("Q", vec![(n(10), n(14))]);
    let mut db = Db::new(vec![p.clone(), q.clone()]);
    get(&mut db, &req("a"), 0); // .1
    let inq = |c: &str, l: Time, hold: bool| {
        with(c, |r| {
            r.pool = "Q".into();
            r.lease = l;
            r.hold = hold;
        })
    };
    assert_eq!(get(&mut db, &inq("b", 100, true), 0), n(10));
    assert_eq!(get(&mut db, &inq("c", 10, false), 0), n(11)); // ends at 10
    assert_eq!(get(&mut db, &inq("d", 100, false), 0), n(12));
    db.release(n(12), None, 1).unwrap();
    db.decline(n(13), 100, None, 1).unwrap();
    assert_eq!(
        db.held_outside(std::slice::from_ref(&p), 5),
        vec![n(10), n(11)]
    );
    assert_eq!(db.held_outside(std::slice::from_ref(&p), 10), vec![n(10)]);
    assert_eq!(db.held_outside(&[p.clone(), q.clone()], 5), vec![]);
    // A pool that covers only part of Q.
    let q2 = Pool::new("Q", vec![(n(11), n(14))]);
    assert_eq!(db.held_outside(&[p.clone(), q2], 5), vec![n(10)]);
    assert_eq!(db.held_outside(&[q], 5), vec![n(1)]);
}

#[test]
fn with_pools_keeps_entries_inside_and_drops_the_rest() {
    let p = Pool::new("P", vec![(n(1), n(4))]);
    let q = Pool::new("Q", vec![(n(10), n(14))]);
    let mut db = Db::new(vec![p, q]);
    get(&mut db, &req("a"), 0); // .1
    get(&mut db, &req("b"), 0); // .2
    get(&mut db, &with("c", |r| r.pool = "Q".into()), 0); // .10
    db.release(n(2), None, 1).unwrap();
    let seq = db.seq();
    // P grows, Q is gone.
    let mut db2 = db.with_pools(vec![Pool::new("P", vec![(n(1), n(6))])]);
    assert_eq!(db2.seq(), seq);
    assert_eq!(db2.len(), 2);
    assert_eq!(db2.get(n(1)), db.get(n(1)));
    assert_eq!(db2.get(n(2)), db.get(n(2)));
    assert_eq!(db2.get(n(10)), None);
    assert_eq!(db2.pools().len(), 1);
    let s = &db2.stats(1)[0];
    assert_eq!((s.size, s.leased, s.free), (6, 1, 5));
    // Indexes rebuilt: a renews .1, b gets its previous .2 back, new
    // clients get never-used addresses first.
    let r = with("a", |r| r.previous = true);
    assert_eq!(get(&mut db2, &r, 2), n(1));
    assert_eq!(get(&mut db2, &req("x"), 2), n(3));
    let r = with("b", |r| r.previous = true);
    assert_eq!(get(&mut db2, &r, 2), n(2));
    assert_eq!(db2.seq(), seq + 3);
    // The original is unchanged.
    assert_eq!(db.len(), 3);
    assert_eq!(db.get(n(10)).unwrap().client, "c");
    let nopool = with("c", |r| r.pool = "Q".into());
    assert_eq!(db2.alloc(&nopool, 2), Err(Refusal::NoPool("Q".into())));
}

#[test]
fn restore_rebuilds_indexes_and_seq() {
    let mut db = db_of(4);
    let leased = Entry {
        state: State::Leased,
        disabled: false,
        service: "dhcp".into(),
        client: "a".into(),
        host: String::new(),
        reserved: 0,
        end: 100,
        released: 0,
        seq: 7,
    };
    let free = Entry {
        state: State::Free,
        client: "b".into(),
        end: 5,
        released: 5,
        seq: 3,
        ..leased.clone()
    };
    assert!(db.restore(n(2), leased));
    assert!(db.restore(n(1), free));
    assert!(!db.restore(
        n(50),
        Entry {
            seq: 99,
            ..db.get(n(2)).unwrap().clone()
        }
    ));
    assert_eq!(db.seq(), 7);
    let s = stats_of(&mut db, 10);
    assert_eq!((s.leased, s.free), (1, 3));
    assert_eq!(get(&mut db, &req("c"), 10), n(3));
    assert_eq!(get(&mut db, &req("d"), 10), n(4));
    assert_eq!(get(&mut db, &req("e"), 10), n(1));
    let (a, _, ch) = db.alloc(&with("a", |r| r.previous = true), 10).unwrap();
    assert_eq!(a, n(2));
    assert_eq!(ch[0].after.seq, db.seq());
    assert!(db.seq() > 7);
}

#[test]
fn load_keeps_the_newest_record_of_each_address_as_restore_does() {
    // A history: a gets 1, moves to 3 (1 is freed), b gets 2, then 2 is
    // released. Every record the log would hold, in log order.
    let mut live = db_of(4);
    let mut log = Vec::new();
    let mut record = |chs: Vec<Change>| log.extend(chs.into_iter().map(|c| (c.addr, c.after)));
    record(live.alloc(&req("a"), 0).unwrap().2);
    record(live.alloc(&exact("a", n(3)), 1).unwrap().2);
    record(live.alloc(&req("b"), 2).unwrap().2);
    record(live.release(n(2), Some(("dhcp", "b")), 3).unwrap());
    // A record for an address in no pool, and an older duplicate of 3
    // after the newer one: neither wins.
    let stray = (n(50), live.get(n(3)).unwrap().clone());
    let stale = (
        n(3),
        Entry {
            seq: 1,
            client: "old".into(),
            ..live.get(n(3)).unwrap().clone()
        },
    );
    log.push(stray);
    log.push(stale);
    let mut one_by_one = db_of(4);
    for (a, e) in log.clone() {
        if one_by_one.get(a).is_none_or(|old| old.seq <= e.seq) {
            one_by_one.restore(a, e);
        }
    }
    let mut bulk = db_of(4);
    assert_eq!(bulk.load(log), 1, "the address in no pool");
    let all = |db: &Db| {
        db.entries()
            .map(|(a, e)| (a, e.owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(all(&bulk), all(&one_by_one));
    assert_eq!(all(&bulk), all(&live));
    assert_eq!(bulk.seq(), live.seq());
    assert_eq!(stats_of(&mut bulk, 4), stats_of(&mut live, 4));
    // The indexes agree: a keeps 3, b gets its previous address back, a
    // new client the least recently used one.
    let a = with("a", |r| r.previous = true);
    let b = with("b", |r| r.previous = true);
    for db in [&mut bulk, &mut live] {
        assert_eq!(get(db, &a, 5), n(3));
        assert_eq!(get(db, &b, 5), n(2));
        assert_eq!(get(db, &req("c"), 5), n(4));
    }
}

#[test]
fn changes_carry_increasing_seq_and_before_after() {
    let mut db = db_of(4);
    let (_, _, c1) = db.alloc(&req("a"), 0).unwrap();
    let (_, _, c2) = db.alloc(&exact("a", n(3)), 1).unwrap();
    assert_eq!(c1[0].before, None);
    assert_eq!(c1[0].after.seq, 1);
    assert_eq!(c2[0].before.as_ref().unwrap().state, State::Leased);
    assert_eq!(c2[0].after.seq, 2);
    assert_eq!(c2[1].after.seq, 3);
    assert_eq!(db.seq(), 3);
    assert_eq!(db.get(n(3)).unwrap().seq, 3);
}

#[test]
fn prefer_of_the_address_the_client_holds_keeps_it() {
    let mut db = Db::new(vec![Pool::new("P", vec![(10, 19)])]);
    let a = Alloc::new("P", "s", "c", 100);
    let (first, _, _) = db.alloc(&a, 1000).unwrap();
    let again = Alloc {
        want: Want::Prefer(first),
        ..a.clone()
    };
    let (second, _, _) = db.alloc(&again, 1001).unwrap();
    assert_eq!(second, first);
    // With a range that excludes it, the current address is not chosen.
    let ranged = Alloc {
        want: Want::Range(15, 19),
        previous: true,
        ..a
    };
    let (third, _, _) = db.alloc(&ranged, 1002).unwrap();
    assert!((15..=19).contains(&third), "{third}");
}

#[test]
fn leases_keep_absolute_ends_when_the_clock_jumps() {
    // Catalogue case 40: ends are unix times, so a clock set back a day
    // keeps every lease and a clock set forward a day ends only those
    // whose end has passed.
    const DAY: Time = 86_400;
    let mut db = db_of(5);
    let t = 1_800_000_000;
    let short = get(&mut db, &with("a", |r| r.lease = 600), t);
    let long = get(&mut db, &with("b", |r| r.lease = 3 * DAY), t);
    db.expire(t - DAY);
    assert_eq!(db.get(short).unwrap().state_at(t - DAY), State::Leased);
    assert_eq!(db.get(long).unwrap().state_at(t - DAY), State::Leased);
    db.expire(t + DAY);
    assert_eq!(db.get(short).unwrap().state_at(t + DAY), State::Free);
    assert_eq!(db.get(long).unwrap().state_at(t + DAY), State::Leased);
    assert_eq!(db.get(long).unwrap().end, t + 3 * DAY);
}

#[test]
fn an_early_renewal_keeps_its_end_and_writes_nothing() {
    let mut db = db_of(5);
    let r = with("a", |r| {
        r.lease = 1100;
        r.keep = 1000;
    });
    let (a, end, changes) = db.alloc(&r, 1000).unwrap();
    assert_eq!((end, changes.len()), (2100, 1));
    let r = with("a", |r| {
        r.lease = 1100;
        r.keep = 1000;
        r.want = Want::Exact(a);
    });
    // 50 s later 1050 s remain, more than the 1000 to be promised: kept.
    let (_, end, changes) = db.alloc(&r, 1050).unwrap();
    assert_eq!((end, changes.len()), (2100, 0));
    // 150 s later only 950 s remain: renewed and written.
    let (_, end, changes) = db.alloc(&r, 1150).unwrap();
    assert_eq!((end, changes.len()), (2250, 1));
}

#[test]
fn mine_takes_only_the_clients_own_address() {
    let mut db = db_of(5);
    let offered = get(&mut db, &with("a", |r| r.hold = true), 10);
    let free = n(5);
    let mine = |client: &str, a: u32| {
        with(client, |r| {
            r.want = Want::Exact(a);
            r.mine = true;
        })
    };
    assert_eq!(
        db.alloc(&mine("a", free), 11).unwrap_err().code(),
        "notheld"
    );
    assert_eq!(
        db.alloc(&mine("b", offered), 11).unwrap_err().code(),
        "notheld"
    );
    assert_eq!(get(&mut db, &mine("a", offered), 11), offered);
}

#[test]
fn decline_from_another_client_leaves_the_lease_alone() {
    let mut db = db_of(4);
    assert_eq!(get(&mut db, &req("a"), 0), n(1));
    let hold = with("b", |r| r.hold = true);
    assert_eq!(get(&mut db, &hold, 0), n(2));
    let before = (db.get(n(1)), db.get(n(2)));
    for addr in [n(1), n(2)] {
        assert_eq!(
            db.decline(addr, 50, Some(("dhcp", "x")), 5),
            Err(Refusal::NotHeld(Ipv4Addr::from(addr)))
        );
        // Same client name from another service is another client.
        assert_eq!(
            db.decline(addr, 50, Some(("ppp", "a")), 5),
            Err(Refusal::NotHeld(Ipv4Addr::from(addr)))
        );
    }
    assert_eq!((db.get(n(1)), db.get(n(2))), before);
    assert_eq!(stats_of(&mut db, 5).declined, 0);
}

#[test]
fn declines_are_capped_per_pool_the_oldest_freed() {
    let mut db = db_of(8);
    assert_eq!(db.pools()[0].max_declined, 2, "a quarter of 8");
    db.decline(n(1), 1000, None, 10).unwrap();
    db.decline(n(2), 1000, None, 20).unwrap();
    // Declining one again does not count twice.
    assert_eq!(db.decline(n(2), 1000, None, 25).unwrap().len(), 1);
    let changes = db.decline(n(3), 1000, None, 30).unwrap();
    // The oldest (.1) is freed first, and both changes are logged.
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].addr, n(1));
    assert_eq!(
        changes[0].before.as_ref().map(|e| e.state),
        Some(State::Declined)
    );
    assert_eq!(changes[0].after.state, State::Free);
    assert_eq!(changes[1].addr, n(3));
    assert_eq!(db.get(n(1)).unwrap().state_at(30), State::Free);
    assert_eq!(stats_of(&mut db, 30).declined, 2);
    // Undo puts both back (a failed log write).
    db.undo(&changes);
    assert_eq!(db.get(n(1)).unwrap().state, State::Declined);
    assert!(db.get(n(3)).is_none());
    assert_eq!(stats_of(&mut db, 30).declined, 2);
}

#[test]
fn a_lower_cap_on_reload_is_applied_at_the_next_decline() {
    let mut db = Db::new(vec![Pool::new("P", vec![(n(1), n(20))])]);
    for i in 1..=4 {
        db.decline(n(i), 1000, None, u64::from(i)).unwrap();
    }
    let mut pool = Pool::new("P", vec![(n(1), n(20))]);
    pool.max_declined = 1;
    let mut db = db.with_pools(vec![pool]);
    let changes = db.decline(n(9), 1000, None, 10).unwrap();
    let freed: Vec<u32> = changes[..changes.len() - 1]
        .iter()
        .map(|c| c.addr)
        .collect();
    assert_eq!(freed, vec![n(1), n(2), n(3), n(4)]);
    assert_eq!(stats_of(&mut db, 10).declined, 1);
}

#[test]
fn a_full_pool_keeps_its_declines_out_of_use_until_they_end() {
    // RFC 2131 §4.3.3: a declined address must not be used again during
    // decline_time, even when the pool has nothing else left.
    let mut pool = Pool::new("P", vec![(n(1), n(4))]);
    pool.max_declined = 2;
    let mut db = Db::new(vec![pool]);
    let long = |c: &str| with(c, |r| r.lease = 100_000);
    db.decline(n(3), 1000, None, 2).unwrap();
    db.decline(n(1), 1000, None, 1).unwrap();
    assert_eq!(get(&mut db, &long("a"), 5), n(2));
    assert_eq!(get(&mut db, &long("b"), 5), n(4));
    for r in [
        req("c"),
        with("c", |r| r.want = Want::Range(n(1), n(4))),
        with("c", |r| r.want = Want::Prefer(n(1))),
        with("c", |r| r.hold = true),
    ] {
        assert_eq!(
            db.alloc(&r, 6),
            Err(Refusal::Exhausted("P".into())),
            "{r:?}"
        );
    }
    assert_eq!(
        db.alloc(&exact("c", n(3)), 6),
        Err(Refusal::Taken(Ipv4Addr::from(n(3))))
    );
    let s = stats_of(&mut db, 6);
    assert_eq!((s.declined, s.free), (2, 0));
    // max_declined stays the bound: a third decline frees the oldest (.1).
    let changes = db.decline(n(2), 1000, Some(("dhcp", "a")), 7).unwrap();
    assert_eq!(changes[0].addr, n(1));
    assert_eq!(get(&mut db, &long("c"), 7), n(1));
    // A decline ends at its time, and the address is free again.
    assert_eq!(
        db.alloc(&req("d"), 1001),
        Err(Refusal::Exhausted("P".into()))
    );
    assert_eq!(get(&mut db, &req("d"), 1002), n(3));
}

#[test]
fn known_gives_only_the_address_the_client_holds_or_held_last() {
    let mut db = db_of(5);
    let known = |client: &str, a: u32| {
        with(client, |r| {
            r.want = Want::Exact(a);
            r.known = true;
        })
    };
    // No record of the client: unknown, even for a free address.
    assert_eq!(
        db.alloc(&known("a", n(3)), 1),
        Err(Refusal::Unknown("a".into()))
    );
    assert_eq!(get(&mut db, &req("a"), 1), n(1));
    // Its own lease: renewed. Another address: notheld.
    assert_eq!(get(&mut db, &known("a", n(1)), 2), n(1));
    assert_eq!(
        db.alloc(&known("a", n(3)), 2),
        Err(Refusal::NotHeld(Ipv4Addr::from(n(3))))
    );
    // Expired or released, its address is still its record until someone
    // else has it.
    assert_eq!(get(&mut db, &known("a", n(1)), 500), n(1));
    db.release(n(1), Some(("dhcp", "a")), 501).unwrap();
    assert_eq!(get(&mut db, &known("a", n(1)), 502), n(1));
    db.release(n(1), Some(("dhcp", "a")), 503).unwrap();
    assert_eq!(get(&mut db, &exact("b", n(1)), 504), n(1));
    assert_eq!(
        db.alloc(&known("a", n(1)), 505),
        Err(Refusal::Unknown("a".into()))
    );
    // A declined address is nobody's record.
    assert_eq!(get(&mut db, &req("c"), 505), n(2));
    db.decline(n(2), 50, Some(("dhcp", "c")), 506).unwrap();
    assert_eq!(
        db.alloc(&known("c", n(2)), 507),
        Err(Refusal::Unknown("c".into()))
    );
    // The record survives a reload of the entries (a restart).
    let mut again = db_of(5);
    again.load(db.entries().map(|(a, e)| (a, e.owned())).collect());
    assert_eq!(get(&mut again, &known("b", n(1)), 508), n(1));
    assert_eq!(
        again.alloc(&known("b", n(4)), 508).unwrap_err().code(),
        "notheld"
    );
}

#[test]
fn a_flood_of_reservations_exhausts_the_pool_only_for_their_time() {
    let mut db = db_of(10);
    let offer = |i: u32| Alloc {
        client: format!("01:02:03:{i:06x}"),
        lease: 30,
        hold: true,
        ..req("")
    };
    let mut given = 0;
    for i in 0..1000 {
        match db.alloc(&offer(i), 100 + u64::from(i % 5)) {
            Ok(_) => given += 1,
            Err(r) => assert_eq!(r, Refusal::Exhausted("P".into())),
        }
    }
    assert_eq!(given, 10);
    assert_eq!(stats_of(&mut db, 104).offered, 10);
    // A real client is refused while the reservations run ...
    assert_eq!(
        db.alloc(&req("real"), 129),
        Err(Refusal::Exhausted("P".into()))
    );
    // ... and served once they end, 30 s after the last: nothing was leased.
    let s = stats_of(&mut db, 134);
    assert_eq!((s.offered, s.leased, s.free), (0, 0, 10));
    assert_eq!(db.alloc(&req("real"), 134).unwrap().1, 234);
}

#[test]
fn exhaustion_is_logged_at_most_once_a_minute_per_pool() {
    let mut db = Db::new(vec![
        Pool::new("P", vec![(n(1), n(1))]),
        Pool::new("Q", vec![(n(2), n(2))]),
    ]);
    assert!(db.exhausted_log_due("P", 1000));
    assert!(!db.exhausted_log_due("P", 1000));
    assert!(!db.exhausted_log_due("P", 1059));
    assert!(db.exhausted_log_due("Q", 1059), "each pool on its own");
    assert!(db.exhausted_log_due("P", 1060));
    assert!(!db.exhausted_log_due("P", 1061));
}

#[test]
fn a_host_name_stays_with_its_client_and_goes_with_it() {
    let mut db = db_of(2);
    let named = |c: &str, h: &str| with(c, |r| r.host = Some(h.into()));
    let a = get(&mut db, &named("a", "laptop"), 0);
    assert_eq!(db.get(a).unwrap().host, "laptop");
    // A renewal without a name keeps it; a renewal with another takes it,
    // even when the lease would be kept as it is.
    get(&mut db, &with("a", |r| r.previous = true), 1);
    assert_eq!(db.get(a).unwrap().host, "laptop");
    let keeping = |h: &str| {
        with("a", |r| {
            r.want = Want::Exact(a);
            r.keep = 10;
            r.host = Some(h.into());
        })
    };
    let (_, _, ch) = db.alloc(&keeping("laptop"), 2).unwrap();
    assert!(ch.is_empty(), "same name, lease kept: nothing to write");
    let (_, _, ch) = db.alloc(&keeping("laptop2"), 2).unwrap();
    assert_eq!(ch[0].after.host, "laptop2");
    // Freed, the address keeps its last holder's name; another client
    // without a name does not inherit it.
    db.release(a, None, 3).unwrap();
    assert_eq!(db.get(a).unwrap().host, "laptop2");
    get(&mut db, &req("b"), 4);
    let b = get(&mut db, &req("c"), 4);
    assert_eq!(b, a, "c gets the address released first");
    assert_eq!(db.get(b).unwrap().host, "");
    // A decline forgets the holder, name and all.
    let d = get(&mut db, &named("d", "x"), 200);
    db.decline(d, 60, None, 201).unwrap();
    assert_eq!(db.get(d).unwrap().host, "");
}

#[test]
fn a_reserved_address_goes_to_nobody_else_and_is_not_renewed() {
    let mut db = db_of(4);
    // 10.0.0.2 leased to "old" before the reservation comes.
    assert_eq!(get(&mut db, &exact("old", n(2)), 0), n(2));
    assert_eq!(db.reserve(n(1), "dhcp", "fixed", 1), Ok(None));
    let held = db.reserve(n(2), "dhcp", "fixed2", 1).unwrap();
    assert_eq!(held, Some(("dhcp".into(), "old".into(), 100)));
    assert_eq!(
        db.reserve(n(9), "dhcp", "x", 1),
        Err(Refusal::NotInPool(Ipv4Addr::from(n(9))))
    );
    // Never-used, preferred, exact, previous: none gives 1 or 2.
    assert_eq!(get(&mut db, &req("a"), 2), n(3));
    let pref = with("b", |r| r.want = Want::Prefer(n(1)));
    assert_eq!(get(&mut db, &pref, 2), n(4));
    assert_eq!(
        db.alloc(&exact("c", n(1)), 2),
        Err(Refusal::Reserved(Ipv4Addr::from(n(1))))
    );
    // The holder's renewal is refused.
    assert_eq!(
        db.alloc(&exact("old", n(2)), 3),
        Err(Refusal::Reserved(Ipv4Addr::from(n(2))))
    );
    assert_eq!(
        db.alloc(&req("old"), 3),
        Err(Refusal::Exhausted("P".into()))
    );
    let s = stats_of(&mut db, 200);
    assert_eq!((s.reserved, s.free, s.leased), (2, 2, 0));
    let f = Filter {
        state: Some(Selector::Reserved),
        ..Filter::default()
    };
    assert_eq!(
        db.query(&f, 200).iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![n(2)],
        "only the used one has an entry"
    );
    // A reload keeps them; unreserving makes them free again.
    let mut db = db.with_pools(vec![Pool::new("P", vec![(n(1), n(4))])]);
    assert_eq!(db.alloc(&req("d"), 300).map(|r| r.0), Ok(n(3)));
    db.unreserve(n(1));
    db.unreserve(n(2));
    let got: Vec<u32> = ["e", "f"]
        .iter()
        .map(|c| get(&mut db, &req(c), 300))
        .collect();
    assert!(got.contains(&n(1)) && got.contains(&n(2)), "{got:?}");
}

#[test]
fn a_client_takes_over_what_it_holds_under_its_alias() {
    let mut db = db_of(9);
    let fw = "net/1/02:00:00:00:00:01";
    let os = "net/id/010200000000001";
    assert_eq!(get(&mut db, &req(fw), 0), n(1));
    // The next stage, by its client identifier: the same address, renamed.
    let next = with(os, |r| {
        r.alias = Some(fw.into());
        r.previous = true;
    });
    let (a, _, changes) = db.alloc(&next, 10).unwrap();
    assert_eq!(a, n(1));
    assert_eq!(db.get(n(1)).unwrap().client, os);
    assert!(changes.iter().all(|c| c.addr == n(1)), "{changes:?}");
    // Asked again with the alias the other way round: nothing under the
    // firmware's name any more, so it gets no second address either.
    assert_eq!(
        get(
            &mut db,
            &with(os, |r| {
                r.alias = Some(fw.into());
                r.previous = true;
            }),
            20
        ),
        n(1)
    );
    let s = stats_of(&mut db, 20);
    assert_eq!(s.leased, 1);
    // A client with an address of its own keeps it; the alias's stays.
    assert_eq!(get(&mut db, &req("other"), 30), n(2));
    let mine = with("other", |r| {
        r.alias = Some(os.into());
        r.previous = true;
    });
    assert_eq!(get(&mut db, &mine, 30), n(2));
    assert_eq!(db.get(n(1)).unwrap().client, os);
    // A refused request leaves no rename behind.
    let refused = with("third", |r| {
        r.alias = Some("other".into());
        r.want = Want::Exact(n(1));
    });
    assert_eq!(
        db.alloc(&refused, 40),
        Err(Refusal::Taken(Ipv4Addr::from(n(1))))
    );
    assert_eq!(db.get(n(2)).unwrap().client, "other");
}
