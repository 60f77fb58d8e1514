//! The tables of the PostgreSQL store, and their version: made in an
//! empty database (`in.aasd --init-db`, or the first start), upgraded
//! step by step from an older version, refused when newer or not ours.

use std::fmt;

use postgres::Client;

/// SQL of each version from the one before: `STEPS[0]` makes version 1
/// in an empty database, `STEPS[n]` upgrades version n to n + 1.
const STEPS: &[&str] = &[
    // 1: one row per address ever used, and the reserved addresses.
    "CREATE TABLE aasd_schema (version integer NOT NULL);
     INSERT INTO aasd_schema VALUES (0);
     -- Orders every change: each in.aasd reads what changed since it last looked.
     CREATE SEQUENCE aasd_change;
     CREATE TABLE aasd_leases (
         addr inet PRIMARY KEY CHECK (family(addr) = 4 AND masklen(addr) = 32),
         state text NOT NULL CHECK (state IN ('free', 'offered', 'leased', 'declined')),
         disabled boolean NOT NULL,
         service text NOT NULL,
         client text NOT NULL,
         host text NOT NULL,
         -- Unix seconds; lease_end NULL: never. Past lease_end, an offer,
         -- lease or decline is free whatever state says.
         reserved bigint NOT NULL,
         lease_end bigint,
         released bigint NOT NULL,
         change bigint NOT NULL DEFAULT nextval('aasd_change')
     );
     CREATE INDEX aasd_leases_change ON aasd_leases (change);
     CREATE TABLE aasd_reservations (
         addr inet PRIMARY KEY,
         service text NOT NULL,
         client text NOT NULL,
         since bigint NOT NULL
     );",
];

/// The schema version this in.aasd uses.
pub const VERSION: i32 = STEPS.len() as i32;

/// Advisory lock keys ("aasd" and 1, 2): schema changes, and rounds of
/// requests.
pub const SCHEMA_LOCK: i64 = 0x6161_7364_0000_0001;
pub const ROUND_LOCK: i64 = 0x6161_7364_0000_0002;

#[derive(Debug)]
pub enum SchemaError {
    /// Made by a later in.aasd.
    Newer(i32),
    /// aasd_ tables, but no version row: not ours, or damaged.
    Unknown(String),
    Db(postgres::Error),
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaError::Newer(v) => write!(
                f,
                "the database has schema version {v}, newer than this in.aasd's {VERSION}: \
                 run the in.aasd that made it, or a later one"
            ),
            SchemaError::Unknown(why) => write!(
                f,
                "the database has in.aasd's tables but no schema version it knows ({why}): \
                 use an empty database, or restore a backup"
            ),
            SchemaError::Db(e) => write!(f, "{}", super::error_text(e)),
        }
    }
}

impl std::error::Error for SchemaError {}

impl From<postgres::Error> for SchemaError {
    fn from(e: postgres::Error) -> Self {
        SchemaError::Db(e)
    }
}

/// What [`prepare`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prepared {
    Current,
    Created,
    Upgraded(i32),
}

/// Make the schema current: create it in a database without it, upgrade
/// an older one, refuse a newer or unknown one. Two in.aasd starting at
/// once take turns (an advisory lock).
pub fn prepare(c: &mut Client) -> Result<Prepared, SchemaError> {
    let mut t = c.transaction()?;
    t.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    let has_version: bool = t
        .query_one("SELECT to_regclass('aasd_schema') IS NOT NULL", &[])?
        .get(0);
    let found = if has_version {
        let rows = t.query("SELECT version FROM aasd_schema", &[])?;
        match rows.as_slice() {
            [row] => row.get::<_, i32>(0),
            _ => {
                return Err(SchemaError::Unknown(format!(
                    "aasd_schema has {} rows, not 1",
                    rows.len()
                )))
            }
        }
    } else {
        let ours: i64 = t
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() \
                 AND tablename LIKE 'aasd\\_%'",
                &[],
            )?
            .get(0);
        if ours > 0 {
            return Err(SchemaError::Unknown("no table aasd_schema".into()));
        }
        0
    };
    if found > VERSION {
        return Err(SchemaError::Newer(found));
    }
    if found < 0 {
        return Err(SchemaError::Unknown(format!("version {found}")));
    }
    if found == VERSION {
        // Nothing to write: a user without rights on aasd_schema may run.
        return Ok(Prepared::Current);
    }
    for step in &STEPS[found as usize..] {
        t.batch_execute(step)?;
    }
    t.execute("UPDATE aasd_schema SET version = $1", &[&VERSION])?;
    t.commit()?;
    Ok(match found {
        0 => Prepared::Created,
        v => Prepared::Upgraded(v),
    })
}
