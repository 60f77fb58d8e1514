//! The requester's side of the Address Allocation Server: the line
//! protocol and the words it carries, the connection to in.aasd, and
//! in.dhcpd's batching of requests over it. The daemon is in `aasd`.

pub mod client;
pub mod hostname;
pub mod lease;
pub mod mac;
pub mod metrics;
pub mod pipeline;
pub mod proto;
pub mod stream;
