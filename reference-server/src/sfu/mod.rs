//! The rtcd-compatible SFU.
//!
//! - [`core`]: the sans-IO state machine (groups → calls → sessions, forwarding, renegotiation).
//! - [`session`], [`call`], [`track`]: its parts; [`vad`]: server-side voice activity.
//! - [`server`]: `callsref sfu` — [`config`], [`auth`], [`api`] (HTTP + `/ws`), [`driver`] (the
//!   RTC thread owning the UDP socket), [`tcp`] (ICE-TCP passive, RFC 4571 framing),
//!   [`metrics`].
//! - [`signal`]: the signalling values the WS layer exchanges with the core; [`event`]:
//!   observations for metrics. Wire formats (WS frames, DC messages, ids) are `proto::rtcd`'s.

pub mod api;
pub mod auth;
pub mod call;
pub mod config;
pub mod core;
pub mod driver;
pub mod event;
pub mod metrics;
pub mod server;
pub mod session;
pub mod signal;
pub mod simulcast;
pub mod tcp;
pub mod track;
pub mod vad;

pub use self::core::{Input, Output, Sfu, SfuConfig, SignalError};
pub use self::signal::{ConnId, Join, RtcMessage, RtcType, SignalIn, SignalOut};
