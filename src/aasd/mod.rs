//! The Address Allocation Server, in.aasd: its configuration, the serve
//! loop, the operations of the protocol, the lease database and the store
//! that keeps it (the transaction log and its checkpoints).

pub mod config;
pub mod daemon;
pub mod db;
pub mod http;
pub mod journal;
pub mod logstore;
pub mod metrics;
pub mod ops;
pub mod pg;
pub mod store;
#[cfg(test)]
mod store_suite;

/// The test harness's own PostgreSQL clusters, shared with tests/.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../tests/common/pg.rs"]
pub(crate) mod test_pg;
