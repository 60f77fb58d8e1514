//! The PostgreSQL store (`store = postgresql`): the leases in a database
//! that several in.aasd, on several hosts, share.
//!
//! Each in.aasd keeps the database's rows in memory as the log store does
//! (db.rs), so every operation has the same meaning with both stores. A
//! round of requests is one transaction: its first operation takes a
//! transaction-level advisory lock (one for the whole database, so rounds
//! of different in.aasd take turns) and reads the rows that other in.aasd
//! changed since (a sequence numbers every change); the round's changes
//! are written by one statement when it commits, which also ends the
//! lock. So no address goes to two clients, and the least recently used
//! free address is the same whichever in.aasd is asked: a row lock per
//! address (SKIP LOCKED) could give neither for addresses that have no
//! row yet, nor keep one LRU order, nor cap declines per pool.
//!
//! A hold (an OFFER's reservation) is freed by UNHOLD only where this
//! in.aasd placed it and no other in.aasd has changed the address since:
//! when two DHCP servers offer one client, both holds are one row (the
//! client's address), and the server the client did not choose must not
//! free what the chosen one is about to lease. Such a hold ends at its
//! time. Which holds are ours is kept in memory: after a start or a new
//! connection, none is.
//!
//! When the database cannot be reached, a round runs on what is in memory
//! and its commit fails and undoes it, as the log store's does when its
//! disk fails: every answer that told of a change becomes `ERR io`. One
//! line a minute is logged, and every round tries to connect again; after
//! a new connection (maybe to a promoted standby) everything is read
//! afresh.

pub mod conninfo;
pub mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The least time between two tries to connect.
const RETRY: Duration = Duration::from_secs(5);

use postgres::{Client, NoTls, Statement};

use self::conninfo::Conninfo;
use super::config::AasConfig;
use super::db::{Change, Db, Entry, Reservation};
use super::store::{self, Granted, Leases, Page};
use crate::aas::lease::{Alloc, Filter, Pool, Refusal, State, Stats, Time, FOREVER};
use crate::aas::proto::Held;
use crate::log::Level;
use crate::{log_info, log_limited};

/// A reservation made or ended this round: to write at commit, or to undo.
struct ReservationChange {
    addr: u32,
    before: Option<Reservation>,
    after: Option<Reservation>,
}

pub struct PgStore {
    conninfo: Conninfo,
    client: Option<Connection>,
    /// The database as of this round's start, with the round's changes.
    db: Db,
    /// A round's transaction is open, the lock taken.
    in_round: bool,
    /// This round could not start (the database unreachable): its
    /// requests run in memory only and its commit fails, undoing them, as
    /// the log store's does when the disk fails.
    doomed: Option<String>,
    /// No new connection is tried before this.
    retry_at: Option<Instant>,
    /// The newest change read or written (`aasd_leases.change`).
    seen: i64,
    /// Read everything again at the next round (new connection, failure).
    stale: bool,
    changes: Vec<Change>,
    reservations: Vec<ReservationChange>,
    /// Addresses held (offered) by this in.aasd alone: what UNHOLD frees.
    own_holds: BTreeSet<u32>,
}

/// The columns of the round's rows, one array each (for unnest).
#[derive(Default)]
struct Batch<'a> {
    addr: Vec<IpAddr>,
    state: Vec<&'a str>,
    disabled: Vec<bool>,
    service: Vec<&'a str>,
    client: Vec<&'a str>,
    host: Vec<&'a str>,
    reserved: Vec<i64>,
    end: Vec<Option<i64>>,
    released: Vec<i64>,
}

struct Connection {
    client: Client,
    upsert: Statement,
}

/// The text of an error of the postgres crate: with the server's message
/// when there is one (its Display alone says only "db error").
pub fn error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

/// Connect to the first host that takes us (and is writable, with
/// `target_session_attrs=read-write`), with the passfile's password.
pub fn connect(info: &Conninfo) -> Result<Client, postgres::Error> {
    let mut config = info.with_password();
    if config.get_connect_timeout().is_none() {
        // A host that does not answer must not stall the serve loop long.
        config.connect_timeout(Duration::from_secs(5));
    }
    if config.get_application_name().is_none() {
        config.application_name("in.aasd");
    }
    let mut client = config.connect(NoTls)?;
    // A lock wait is bounded; an in.aasd stopped inside a round loses its
    // session, and with it the lock, after a minute.
    client.batch_execute(
        "SET lock_timeout = '10s'; SET idle_in_transaction_session_timeout = '60s'",
    )?;
    Ok(client)
}

/// The connection string of aasd.conf, read (config.rs checked it).
pub fn configured_conninfo(cfg: &AasConfig) -> io::Result<Conninfo> {
    let text = cfg
        .postgresql
        .as_deref()
        .ok_or_else(|| io::Error::other("aasd.conf has no postgresql = <connection string>"))?;
    conninfo::parse(text).map_err(|e| io::Error::other(format!("postgresql: {e}")))
}

/// Connect and make the schema current (`--init-db`, and every start).
pub fn open_database(info: &Conninfo) -> Result<(Client, schema::Prepared), String> {
    let mut client = connect(info).map_err(|e| format!("connecting: {}", error_text(&e)))?;
    let done = schema::prepare(&mut client).map_err(|e| e.to_string())?;
    Ok((client, done))
}

const COLUMNS: &str = "addr, state, disabled, service, client, host, reserved, lease_end, \
                       released, change";

fn sql_time(t: Time) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn entry_of(row: &postgres::Row) -> Option<(u32, Entry)> {
    let IpAddr::V4(addr) = row.get::<_, IpAddr>(0) else {
        return None;
    };
    let end: Option<i64> = row.get(7);
    let e = Entry {
        state: State::from_name(row.get(1))?,
        disabled: row.get(2),
        service: row.get(3),
        client: row.get(4),
        host: row.get(5),
        reserved: row.get::<_, i64>(6).max(0) as Time,
        end: end.map_or(FOREVER, |t| t.max(0) as Time),
        released: row.get::<_, i64>(8).max(0) as Time,
        seq: row.get::<_, i64>(9).max(0) as u64,
    };
    Some((u32::from(addr), e))
}

impl PgStore {
    /// The store aasd.conf names (`store = postgresql`).
    pub fn configured(cfg: &AasConfig) -> io::Result<PgStore> {
        let info = configured_conninfo(cfg)?;
        PgStore::open(info, cfg.pools.clone())
            .map_err(|e| io::Error::other(format!("postgresql: {e}")))
    }

    /// Connect, make the schema current and read every row. A database
    /// that cannot be reached is an error at start.
    pub fn open(info: Conninfo, pools: Vec<Pool>) -> Result<PgStore, String> {
        let (client, done) = open_database(&info)?;
        match done {
            schema::Prepared::Created => log_info!("postgresql: created the schema"),
            schema::Prepared::Upgraded(v) => {
                log_info!("postgresql: upgraded the schema from version {v}")
            }
            schema::Prepared::Current => {}
        }
        let mut store = PgStore {
            conninfo: info,
            client: None,
            db: Db::new(pools),
            in_round: false,
            doomed: None,
            retry_at: None,
            seen: 0,
            stale: true,
            changes: Vec::new(),
            reservations: Vec::new(),
            own_holds: BTreeSet::new(),
        };
        store.client =
            Some(Connection::new(client).map_err(|e| format!("preparing: {}", error_text(&e)))?);
        store.begin();
        store.commit().map_err(|e| e.to_string())?;
        Ok(store)
    }

    /// Change the database in memory, keeping what changed for the commit.
    fn change<R>(
        &mut self,
        f: impl FnOnce(&mut Db) -> Result<(R, Vec<Change>), Refusal>,
    ) -> Result<R, Refusal> {
        self.begin();
        let (r, changes) = f(&mut self.db)?;
        for c in &changes {
            if c.after.state != State::Offered {
                self.own_holds.remove(&c.addr);
            }
        }
        self.changes.extend(changes);
        Ok(r)
    }

    /// Start the round, if not started: connect if need be, take the lock,
    /// read what others changed. If that fails, the round is doomed.
    fn begin(&mut self) {
        if self.in_round {
            return;
        }
        if let Err(e) = self.try_begin() {
            self.doomed = Some(self.lost(&e).to_string());
        }
        self.in_round = true;
    }

    fn try_begin(&mut self) -> Result<(), String> {
        if self.client.is_none() {
            // A host that does not answer costs its connect_timeout: not at
            // every round.
            if self.retry_at.is_some_and(|t| Instant::now() < t) {
                return Err("no connection (the next try is within 5 s)".into());
            }
            let client = connect(&self.conninfo).and_then(Connection::new);
            self.retry_at = Some(Instant::now() + RETRY);
            self.client = Some(client.map_err(|e| error_text(&e))?);
            self.stale = true;
            log_info!("postgresql: connected");
        }
        self.read_changes().map_err(|e| error_text(&e))
    }

    /// Take the round's lock and read what changed since the last round
    /// (everything, after a new connection).
    fn read_changes(&mut self) -> Result<(), postgres::Error> {
        let c = &mut self.client.as_mut().expect("connected above").client;
        c.batch_execute("BEGIN")?;
        c.execute("SELECT pg_advisory_xact_lock($1)", &[&schema::ROUND_LOCK])?;
        let since = if self.stale { -1 } else { self.seen };
        let rows = c.query(
            // In order of change: of two rows naming one client, the newer
            // is the one its index keeps.
            &format!("SELECT {COLUMNS} FROM aasd_leases WHERE change > $1 ORDER BY change"),
            &[&since],
        )?;
        let records: Vec<(u32, Entry)> = rows.iter().filter_map(entry_of).collect();
        let reserved = c.query(
            "SELECT addr, service, client, since FROM aasd_reservations",
            &[],
        )?;
        let reserved: BTreeMap<u32, Reservation> = reserved
            .iter()
            .filter_map(|r| match r.get::<_, IpAddr>(0) {
                IpAddr::V4(a) => Some((
                    u32::from(a),
                    Reservation {
                        service: r.get(1),
                        client: r.get(2),
                        since: r.get::<_, i64>(3).max(0) as Time,
                    },
                )),
                IpAddr::V6(_) => None,
            })
            .collect();
        let newest = records.iter().map(|(_, e)| e.seq as i64).max();
        // Rows another in.aasd changed are no longer holds of ours alone.
        if self.stale {
            self.own_holds.clear();
        } else {
            for (a, _) in &records {
                self.own_holds.remove(a);
            }
        }
        if self.stale {
            self.seen = newest.unwrap_or(0);
            self.db = Db::new(self.db.pools().to_vec());
            self.db.load(records);
        } else {
            self.seen = newest.map_or(self.seen, |n| n.max(self.seen));
            for (a, e) in records {
                self.db.restore(a, e);
            }
        }
        sync_reservations(&mut self.db, &reserved);
        self.stale = false;
        Ok(())
    }

    /// The connection failed or the database refused: say so (once a
    /// minute), and start afresh next time.
    fn lost(&mut self, e: &str) -> io::Error {
        let text = format!("postgresql: {e}");
        log_limited!(
            Level::Error,
            "postgresql",
            1,
            "{text} (logged at most once a minute; connecting again at most every 5 s)"
        );
        if self
            .client
            .as_mut()
            .is_some_and(|c| c.client.is_closed() || c.client.batch_execute("ROLLBACK").is_err())
        {
            self.client = None;
        }
        self.in_round = false;
        self.stale = true;
        io::Error::other(text)
    }

    fn write(&mut self) -> Result<(), postgres::Error> {
        let Some(c) = self.client.as_mut() else {
            unreachable!("a round runs on a connection")
        };
        // The last change of each address.
        let rows: BTreeMap<u32, &Entry> = self.changes.iter().map(|c| (c.addr, &c.after)).collect();
        if !rows.is_empty() {
            let mut b = Batch::default();
            for (&a, e) in &rows {
                b.addr.push(IpAddr::V4(Ipv4Addr::from(a)));
                b.state.push(e.state.name());
                b.disabled.push(e.disabled);
                b.service.push(&e.service);
                b.client.push(&e.client);
                b.host.push(&e.host);
                b.reserved.push(sql_time(e.reserved));
                b.end.push((e.end != FOREVER).then(|| sql_time(e.end)));
                b.released.push(sql_time(e.released));
            }
            let written = c.client.query(
                &c.upsert,
                &[
                    &b.addr,
                    &b.state,
                    &b.disabled,
                    &b.service,
                    &b.client,
                    &b.host,
                    &b.reserved,
                    &b.end,
                    &b.released,
                ],
            )?;
            if let Some(newest) = written.iter().map(|r| r.get::<_, i64>(0)).max() {
                self.seen = self.seen.max(newest);
            }
        }
        for r in &self.reservations {
            let addr = IpAddr::V4(Ipv4Addr::from(r.addr));
            match &r.after {
                Some(x) => c.client.execute(
                    "INSERT INTO aasd_reservations (addr, service, client, since) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (addr) DO UPDATE SET \
                     service = EXCLUDED.service, client = EXCLUDED.client, since = EXCLUDED.since",
                    &[&addr, &x.service, &x.client, &sql_time(x.since)],
                )?,
                None => c
                    .client
                    .execute("DELETE FROM aasd_reservations WHERE addr = $1", &[&addr])?,
            };
        }
        c.client.batch_execute("COMMIT")
    }

    /// Put back what the round changed in memory (its commit failed).
    fn undo(&mut self) {
        let changes = std::mem::take(&mut self.changes);
        let reservations = std::mem::take(&mut self.reservations);
        self.db.undo(&changes);
        for r in reservations.iter().rev() {
            self.db.unreserve(r.addr);
            if let Some(x) = &r.before {
                let _ = self.db.reserve(r.addr, &x.service, &x.client, x.since);
            }
        }
    }
}

impl Connection {
    fn new(mut client: Client) -> Result<Connection, postgres::Error> {
        // The round's rows in one statement: one round trip per commit.
        let upsert = client.prepare(
            "INSERT INTO aasd_leases \
             (addr, state, disabled, service, client, host, reserved, lease_end, released) \
             SELECT * FROM unnest($1::inet[], $2::text[], $3::boolean[], $4::text[], \
             $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[]) \
             ON CONFLICT (addr) DO UPDATE SET state = EXCLUDED.state, \
             disabled = EXCLUDED.disabled, service = EXCLUDED.service, \
             client = EXCLUDED.client, host = EXCLUDED.host, reserved = EXCLUDED.reserved, \
             lease_end = EXCLUDED.lease_end, released = EXCLUDED.released, \
             change = nextval('aasd_change') \
             RETURNING change",
        )?;
        Ok(Connection { client, upsert })
    }
}

/// Make the database's reservations those of the table.
fn sync_reservations(db: &mut Db, table: &BTreeMap<u32, Reservation>) {
    let gone: Vec<u32> = db
        .reservations(0, u32::MAX)
        .filter(|(a, r)| table.get(a) != Some(*r))
        .map(|(a, _)| a)
        .collect();
    for a in gone {
        db.unreserve(a);
    }
    for (&a, r) in table {
        if db.reservation(a) != Some(r) {
            // Addresses in no pool of ours are refused: skipped.
            let _ = db.reserve(a, &r.service, &r.client, r.since);
        }
    }
}

impl Leases for PgStore {
    fn pools(&self) -> &[Pool] {
        self.db.pools()
    }

    fn known(&self) -> usize {
        self.db.len()
    }

    fn alloc(&mut self, a: &Alloc, now: Time) -> Result<Granted, Refusal> {
        // The addresses this offers, and whether each was an offer before.
        let mut offers = Vec::new();
        let granted = self.change(|db| {
            let had = db.holds(&a.pool, &a.service, &a.client, now);
            let (addr, end, changes) = db.alloc(a, now)?;
            for c in changes.iter().filter(|c| c.after.state == State::Offered) {
                let was = c
                    .before
                    .as_ref()
                    .is_some_and(|b| b.state_at(now) == State::Offered);
                offers.push((c.addr, was));
            }
            let new = (!had).then(|| db.in_use(&a.pool));
            Ok((Granted { addr, end, new }, changes))
        })?;
        // Another in.aasd's offer held again is a hold of both: no longer
        // one to free.
        for (addr, was) in offers {
            if !was {
                self.own_holds.insert(addr);
            }
        }
        Ok(granted)
    }

    fn unhold(
        &mut self,
        pool: &str,
        service: &str,
        client: &str,
        now: Time,
    ) -> Result<(), Refusal> {
        // The set is read in the closure while change() borrows self, so
        // what it frees leaves the set here.
        let own = std::mem::take(&mut self.own_holds);
        let before = self.changes.len();
        let res = self.change(|db| {
            let changes = db.unhold_if(pool, service, client, now, |a| own.contains(&a))?;
            Ok(((), changes))
        });
        self.own_holds = own;
        for c in &self.changes[before..] {
            self.own_holds.remove(&c.addr);
        }
        res
    }

    fn release(&mut self, addr: u32, by: Option<(&str, &str)>, now: Time) -> Result<bool, Refusal> {
        self.change(|db| {
            let changes = db.release(addr, by, now)?;
            Ok((!changes.is_empty(), changes))
        })
    }

    fn decline(
        &mut self,
        addr: u32,
        secs: Time,
        by: Option<(&str, &str)>,
        now: Time,
    ) -> Result<Vec<u32>, Refusal> {
        self.change(|db| {
            let changes = db.decline(addr, secs, by, now)?;
            let freed = changes
                .iter()
                .map(|c| c.addr)
                .filter(|&a| a != addr)
                .collect();
            Ok((freed, changes))
        })
    }

    fn set_disabled(&mut self, addr: u32, disabled: bool, now: Time) -> Result<(), Refusal> {
        self.change(|db| Ok(((), db.set_disabled(addr, disabled, now)?)))
    }

    fn reserve(
        &mut self,
        addr: u32,
        service: &str,
        client: &str,
        now: Time,
    ) -> Result<Option<Held>, Refusal> {
        self.begin();
        let before = self.db.reservation(addr).cloned();
        let res = self.db.reserve(addr, service, client, now);
        let after = self.db.reservation(addr).cloned();
        if before != after {
            self.reservations.push(ReservationChange {
                addr,
                before,
                after,
            });
        }
        Ok(res?.map(|(service, client, end)| Held {
            service,
            client,
            end,
        }))
    }

    fn unreserve(&mut self, addr: u32) {
        self.begin();
        let Some(before) = self.db.reservation(addr).cloned() else {
            return;
        };
        self.db.unreserve(addr);
        self.reservations.push(ReservationChange {
            addr,
            before: Some(before),
            after: None,
        });
    }

    fn rows(&mut self, f: &Filter, now: Time, limit: usize) -> Result<Page, Refusal> {
        // Unreachable: from memory, as the log store answers with a
        // failed disk.
        self.begin();
        Ok(store::rows(&mut self.db, f, now, limit))
    }

    fn stats(&mut self, now: Time) -> Result<Vec<Stats>, Refusal> {
        self.begin();
        Ok(self.db.stats(now))
    }

    fn exhausted_log_due(&mut self, pool: &str, now: Time) -> bool {
        self.db.exhausted_log_due(pool, now)
    }

    fn uncommitted(&self) -> usize {
        self.changes.len() + self.reservations.len()
    }

    fn commit(&mut self) -> io::Result<()> {
        if !self.in_round {
            return Ok(());
        }
        self.in_round = false;
        if let Some(why) = self.doomed.take() {
            self.undo();
            return Err(io::Error::other(format!(
                "cannot reach the database: {why}"
            )));
        }
        match self.write() {
            Ok(()) => {
                self.changes.clear();
                self.reservations.clear();
                Ok(())
            }
            Err(e) => {
                self.undo();
                let e = self.lost(&error_text(&e));
                Err(io::Error::other(format!("cannot write the leases: {e}")))
            }
        }
    }

    fn held_outside(&self, pools: &[Pool], now: Time) -> Vec<u32> {
        self.db.held_outside(pools, now)
    }

    fn set_pools(&mut self, pools: Vec<Pool>) {
        self.db = self.db.with_pools(pools);
    }

    /// PostgreSQL keeps its own checkpoints; a backup is pg_dump's.
    fn checkpoint(&mut self, _force: bool) -> io::Result<Option<PathBuf>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "store = postgresql: PostgreSQL makes its own checkpoints; back up with pg_dump",
        ))
    }

    /// A round that only read (or was never committed) ends here, so the
    /// lock is never kept between rounds.
    fn tidy(&mut self) {
        if self.in_round {
            let _ = self.commit();
        }
    }

    fn close(&mut self) -> io::Result<()> {
        self.commit()
    }
}
