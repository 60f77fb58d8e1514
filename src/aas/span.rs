//! An administrator's RELEASE, DISABLE or ENABLE of many addresses at
//! once: a range (`range=A-B`) or a whole pool (`pool=P`). Addresses of the
//! range outside every pool are passed over; a span with none in a pool is
//! refused, as a single address in no pool is.

use std::net::Ipv4Addr;

use super::db::{Change, Db, Filter, Refusal, Time};

/// Which addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Span {
    Range(u32, u32),
    Pool(String),
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Span::Range(lo, hi) => write!(f, "{}-{}", Ipv4Addr::from(*lo), Ipv4Addr::from(*hi)),
            Span::Pool(p) => write!(f, "pool {p}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Release,
    Disable,
    Enable,
}

impl Action {
    pub fn word(self) -> &'static str {
        match self {
            Action::Release => "RELEASE",
            Action::Disable => "DISABLE",
            Action::Enable => "ENABLE",
        }
    }
}

/// At most this many addresses disabled by one request: each becomes an
/// entry, and a pool of millions must not become millions at a stroke.
pub const MAX_DISABLE: u64 = 65_536;

/// The parts of pools inside the span, as inclusive ranges.
fn pieces(db: &Db, span: &Span) -> Result<Vec<(u32, u32)>, Refusal> {
    let pieces: Vec<(u32, u32)> = match span {
        Span::Pool(name) => db
            .pools()
            .iter()
            .find(|p| p.name == *name)
            .ok_or_else(|| Refusal::NoPool(name.clone()))?
            .ranges
            .clone(),
        &Span::Range(lo, hi) => db
            .pools()
            .iter()
            .flat_map(|p| p.ranges.iter())
            .filter(|&&(a, b)| a <= hi && lo <= b)
            .map(|&(a, b)| (a.max(lo), b.min(hi)))
            .collect(),
    };
    match (span, pieces.is_empty()) {
        (&Span::Range(lo, _), true) => Err(Refusal::NotInPool(Ipv4Addr::from(lo))),
        _ => Ok(pieces),
    }
}

/// Carry out `action` on every address of `span`: the changes, one per
/// address whose state changed.
pub fn apply(db: &mut Db, action: Action, span: &Span, now: Time) -> Result<Vec<Change>, Refusal> {
    let pieces = pieces(db, span)?;
    let mut changes = Vec::new();
    let mut targets = Vec::new();
    if action == Action::Disable {
        let n: u64 = pieces.iter().map(|(a, b)| u64::from(b - a) + 1).sum();
        if n > MAX_DISABLE {
            return Err(Refusal::TooMany(n, MAX_DISABLE));
        }
        targets.extend(pieces.iter().flat_map(|&(a, b)| a..=b));
    } else {
        // Only addresses with an entry can be held or disabled.
        for &(a, b) in &pieces {
            let f = Filter {
                range: Some((a, b)),
                ..Filter::default()
            };
            targets.extend(db.query(&f, now).iter().map(|(addr, _, _)| *addr));
        }
    }
    for addr in targets {
        let done = match action {
            Action::Release => db.release(addr, None, now),
            Action::Disable => db.set_disabled(addr, true, now),
            Action::Enable => db.set_disabled(addr, false, now),
        };
        changes.extend(done?);
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aas::db::{Alloc, Pool, State, Want};

    fn n(last: u8) -> u32 {
        u32::from(Ipv4Addr::new(10, 0, 0, last))
    }

    fn lease(db: &mut Db, client: &str, a: u32) {
        let req = Alloc {
            pool: if a < n(100) { "P" } else { "Q" }.into(),
            service: "dhcp".into(),
            client: client.into(),
            lease: 3600,
            want: Want::Exact(a),
            previous: false,
            hold: false,
            mine: false,
            known: false,
            keep: 0,
            host: None,
        };
        db.alloc(&req, 0).unwrap();
    }

    fn state(db: &mut Db, a: u32) -> (State, bool) {
        let f = Filter {
            range: Some((a, a)),
            ..Filter::default()
        };
        db.query(&f, 1)
            .first()
            .map_or((State::Free, false), |(_, _, e)| (e.state, e.disabled))
    }

    fn db() -> Db {
        Db::new(vec![
            Pool::new("P", vec![(n(10), n(19))]),
            Pool::new("Q", vec![(n(100), n(101))]),
        ])
    }

    #[test]
    fn a_range_releases_exactly_its_addresses() {
        let mut db = db();
        for (i, a) in [n(10), n(12), n(15), n(19)].into_iter().enumerate() {
            lease(&mut db, &format!("c{i}"), a);
        }
        let ch = apply(&mut db, Action::Release, &Span::Range(n(11), n(15)), 1).unwrap();
        assert_eq!(
            ch.iter().map(|c| c.addr).collect::<Vec<_>>(),
            [n(12), n(15)]
        );
        assert_eq!(state(&mut db, n(10)).0, State::Leased);
        assert_eq!(state(&mut db, n(12)).0, State::Free);
        assert_eq!(state(&mut db, n(15)).0, State::Free);
        assert_eq!(state(&mut db, n(19)).0, State::Leased);
        // Nothing held there any more: nothing changes.
        let again = apply(&mut db, Action::Release, &Span::Range(n(11), n(15)), 1).unwrap();
        assert!(again.is_empty());
    }

    #[test]
    fn a_pool_or_a_range_across_pools_is_disabled_and_enabled() {
        let mut db = db();
        lease(&mut db, "a", n(100));
        let ch = apply(&mut db, Action::Disable, &Span::Pool("Q".into()), 1).unwrap();
        assert_eq!(ch.len(), 2);
        assert_eq!(state(&mut db, n(100)), (State::Leased, true));
        assert_eq!(state(&mut db, n(101)), (State::Free, true));
        // 10.0.0.18-10.0.0.100: two of P, one of Q (disabled already), the
        // addresses between the pools passed over.
        let ch = apply(&mut db, Action::Disable, &Span::Range(n(18), n(100)), 1).unwrap();
        assert_eq!(
            ch.iter().map(|c| c.addr).collect::<Vec<_>>(),
            [n(18), n(19)]
        );
        let ch = apply(&mut db, Action::Enable, &Span::Range(n(0), n(255)), 1).unwrap();
        assert_eq!(ch.len(), 4);
        assert_eq!(state(&mut db, n(101)), (State::Free, false));
    }

    #[test]
    fn spans_outside_every_pool_and_huge_disables_are_refused() {
        let mut db = db();
        assert_eq!(
            apply(&mut db, Action::Release, &Span::Range(n(30), n(40)), 1),
            Err(Refusal::NotInPool(Ipv4Addr::from(n(30))))
        );
        assert_eq!(
            apply(&mut db, Action::Enable, &Span::Pool("R".into()), 1),
            Err(Refusal::NoPool("R".into()))
        );
        let mut big = Db::new(vec![Pool::new("Big", vec![(0x0a00_0000, 0x0aff_ffff)])]);
        assert!(matches!(
            apply(&mut big, Action::Disable, &Span::Pool("Big".into()), 1),
            Err(Refusal::TooMany(16_777_216, MAX_DISABLE))
        ));
        assert!(big.is_empty());
    }
}
