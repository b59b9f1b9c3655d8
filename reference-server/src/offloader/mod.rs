//! `callsref offloader`: a calls-offloader-compatible job service (offloader.md §1–5, §9.2).
//!
//! - [`config`]: TOML keys, env names, defaults and validation of the Go service.
//! - [`store`]: redb-backed client hashes and job records.
//! - [`clients`]: Basic/admin/bearer authentication, registration, sessions, credential cache.
//! - [`backend`]: Docker (bollard) and local-process job backends.
//! - [`jobs`]: the job lifecycle: limit, monitor, settle, retention, reconciliation.
//! - [`http`]: the routes, with gorilla/mux routing and the Go response envelopes.
//! - [`server`]: wiring and the `callsref offloader` entry point.
//!
//! Not implemented (the service refuses to start rather than pretend): `api.http.tls.enable`, the
//! `kubernetes` api_type. Accepted but inert: the `logger.*` file keys (logs go to stderr only).
//! The Go server's 30/60/30 s read/write/idle timeouts are not reproduced.

pub mod backend;
pub mod clients;
pub mod config;
pub mod http;
pub mod jobs;
pub mod seccomp;
pub mod server;
pub mod store;

pub use server::{Running, StartError, run, start};
