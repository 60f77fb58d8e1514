//! The Address Allocation Server (in.aasd): pools, leases, the transaction
//! log, the line protocol, and the requester's side of it.

pub mod client;
pub mod config;
pub mod daemon;
pub mod db;
pub mod hostname;
pub mod journal;
pub mod mac;
pub mod ops;
pub mod pipeline;
pub mod proto;
pub mod stream;
