//! The PostgreSQL store of in.aasd (`store = postgresql`).

pub mod conninfo;
