//! `callsref`: reference implementations of the services callsbench loads.
//!
//! - [`proto`]: the wire formats of rtcd and calls-offloader, shared by the harness (client side) and
//!   the reference servers (server side).
//!
//! This crate never depends on the harness; the arrow runs `callsbench` → `callsref`.

pub mod offloader;
pub mod proto;
pub mod runner;
pub mod sfu;
