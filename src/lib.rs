//! in.dhcpd: a DHCPv4 server in the tradition of SCO UnixWare's in.dhcpd.
//!
//! The binaries in `src/bin` only wire these modules together.

pub mod aas;
pub mod activation;
pub mod cli;
pub mod config;
pub mod dhcp;
pub mod forward;
pub mod fuzz;
pub mod limits;
pub mod log;
pub mod net;
pub mod notify;
pub mod privilege;
pub mod probe;
pub mod server;
pub mod signals;
pub mod startup;
pub mod sys;
