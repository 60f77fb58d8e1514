//! The embedded store: the lease database in memory (db.rs), every change
//! appended to the transaction log and the whole written out as
//! checkpoints (journal.rs). Without a journal it is a database in memory
//! only, which is what tests and the in-process AAS of in.dhcpd's unit
//! tests use.

use std::io;
use std::path::PathBuf;

use super::db::{Change, Db, Entry};
use super::journal::{Store as Journal, StoreConfig};
use super::store::{self, Granted, Leases, Page};
use crate::aas::lease::{Alloc, Filter, Pool, Refusal, Stats, Time};
use crate::aas::proto::Held;
use crate::log_error;

pub struct LogStore {
    db: Db,
    journal: Option<Journal>,
    /// This round's changes, in order, until the log has them on disk: to
    /// undo if it fails.
    unsynced: Vec<Change>,
}

impl LogStore {
    /// Replay the log (and the checkpoint it needs) into a database of
    /// `pools`.
    pub fn open(cfg: StoreConfig, pools: Vec<Pool>) -> io::Result<LogStore> {
        let mut db = Db::new(pools);
        let journal = Journal::open(cfg, &mut db)?;
        Ok(LogStore {
            db,
            journal: Some(journal),
            unsynced: Vec::new(),
        })
    }

    /// A store in memory only: nothing is written anywhere.
    pub fn in_memory(db: Db) -> LogStore {
        LogStore {
            db,
            journal: None,
            unsynced: Vec::new(),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn into_db(self) -> Db {
        self.db
    }

    /// Stage the changes for the round's write to the log.
    fn keep(&mut self, changes: Vec<Change>) -> usize {
        let n = changes.len();
        if let Some(j) = &mut self.journal {
            let records: Vec<(u32, &Entry)> = changes.iter().map(|c| (c.addr, &c.after)).collect();
            j.stage(&records);
            self.unsynced.extend(changes);
        }
        n
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.journal {
            Some(j) => j.flush(&self.db),
            None => Ok(()),
        }
    }
}

impl Leases for LogStore {
    fn pools(&self) -> &[Pool] {
        self.db.pools()
    }

    fn known(&self) -> usize {
        self.db.len()
    }

    fn alloc(&mut self, a: &Alloc, now: Time) -> Result<Granted, Refusal> {
        let had = self.db.holds(&a.pool, &a.service, &a.client, now);
        let (addr, end, changes) = self.db.alloc(a, now)?;
        self.keep(changes);
        Ok(Granted {
            addr,
            end,
            new: (!had).then(|| self.db.in_use(&a.pool)),
        })
    }

    fn unhold(
        &mut self,
        pool: &str,
        service: &str,
        client: &str,
        now: Time,
    ) -> Result<(), Refusal> {
        let changes = self.db.unhold(pool, service, client, now)?;
        self.keep(changes);
        Ok(())
    }

    fn release(&mut self, addr: u32, by: Option<(&str, &str)>, now: Time) -> Result<bool, Refusal> {
        let changes = self.db.release(addr, by, now)?;
        Ok(self.keep(changes) > 0)
    }

    fn decline(
        &mut self,
        addr: u32,
        secs: Time,
        by: Option<(&str, &str)>,
        now: Time,
    ) -> Result<Vec<u32>, Refusal> {
        let changes = self.db.decline(addr, secs, by, now)?;
        let freed = changes
            .iter()
            .map(|c| c.addr)
            .filter(|&a| a != addr)
            .collect();
        self.keep(changes);
        Ok(freed)
    }

    fn set_disabled(&mut self, addr: u32, disabled: bool, now: Time) -> Result<(), Refusal> {
        let changes = self.db.set_disabled(addr, disabled, now)?;
        self.keep(changes);
        Ok(())
    }

    fn reserve(
        &mut self,
        addr: u32,
        service: &str,
        client: &str,
        now: Time,
    ) -> Result<Option<Held>, Refusal> {
        let held = self.db.reserve(addr, service, client, now)?;
        Ok(held.map(|(service, client, end)| Held {
            service,
            client,
            end,
        }))
    }

    fn unreserve(&mut self, addr: u32) {
        self.db.unreserve(addr);
    }

    fn rows(&mut self, f: &Filter, now: Time, limit: usize) -> Result<Page, Refusal> {
        Ok(store::rows(&mut self.db, f, now, limit))
    }

    fn stats(&mut self, now: Time) -> Result<Vec<Stats>, Refusal> {
        Ok(self.db.stats(now))
    }

    fn exhausted_log_due(&mut self, pool: &str, now: Time) -> bool {
        self.db.exhausted_log_due(pool, now)
    }

    fn uncommitted(&self) -> usize {
        self.unsynced.len()
    }

    fn commit(&mut self) -> io::Result<()> {
        let synced = self.flush();
        if let Err(e) = &synced {
            // The requesters hear ERR, so memory must not keep the changes;
            // the log is rewritten from memory before the next answer.
            if let Some(j) = &self.journal {
                log_error!("{}: {e}", j.log_path().display());
            }
            self.db.undo(&self.unsynced);
        }
        self.unsynced.clear();
        synced
            .map_err(|e| io::Error::new(e.kind(), format!("cannot write the transaction log: {e}")))
    }

    fn held_outside(&self, pools: &[Pool], now: Time) -> Vec<u32> {
        self.db.held_outside(pools, now)
    }

    fn set_pools(&mut self, pools: Vec<Pool>) {
        self.db = self.db.with_pools(pools);
    }

    fn checkpoint(&mut self, force: bool) -> io::Result<Option<PathBuf>> {
        let Some(dir) = self
            .journal
            .as_ref()
            .map(|j| j.config().checkpoint_dir.clone())
        else {
            return Ok(None);
        };
        // Whatever the checkpoint holds must be in the log first.
        let written = self.flush().and_then(|_| match &mut self.journal {
            Some(j) => j.checkpoint(&self.db, force),
            None => Ok(None),
        });
        written
            .map_err(|e| io::Error::new(e.kind(), format!("checkpoint in {}: {e}", dir.display())))
    }

    fn tidy(&mut self) {
        let Some(j) = &mut self.journal else { return };
        if j.wants_compaction() {
            if let Err(e) = j.compact(&self.db) {
                log_error!("compacting {}: {e}", j.log_path().display());
            }
        }
    }

    fn close(&mut self) -> io::Result<()> {
        self.flush()
    }
}
