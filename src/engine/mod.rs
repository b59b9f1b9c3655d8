//! Simulated participants: sans-IO state machines ([`participant`]) and what drives them.
//!
//! - [`participant`]: one Calls end user around a str0m `Rtc` (join, negotiate, publish, receive).
//! - [`negotiation`]: the client side of rtcd's signalling lock.
//! - [`publish`], [`source`]: published tracks and the media sources that feed them; [`feed`]
//!   adapts the media module's paced sample sources.
//! - [`event`]: what participants report for measurement; [`sendlog`] lets a receiver find the
//!   send instant of the same voice packet (one-way latency).
//! - [`impair`]: per-participant loss, delay and jitter in the driver's packet path.
//! - [`driver`]: the event-loop threads that own sockets and timers for many participants.
//! - [`sim`]: participants and a server over an in-memory network in virtual time.
//!
//! # Driving a run against rtcd
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use callsbench::engine::driver::{Driver, DriverConfig, EventSink};
//! use callsbench::engine::participant::{Command, Event, ParticipantConfig};
//! use callsbench::target::RtcdTarget;
//! use callsbench::target::rtcd::{ClientCredentials, MIN_VERSION, resolve_hosts};
//! # struct Sink;
//! # impl EventSink for Sink {
//! #     fn on_event(&mut self, _: usize, _: std::time::Instant, _: &Event) {}
//! # }
//! # let (urls, creds, seed): (Vec<String>, ClientCredentials, u64) = todo!();
//! # let cfg: ParticipantConfig = todo!();
//! // Plugin side: one /ws per host IP, self-registering if the first connect fails.
//! let mut target = RtcdTarget::connect(resolve_hosts(&urls).await?, creds, MIN_VERSION, seed).await?;
//! // Engine: one event loop per core, each with its own sink (merge the sinks after `stop`).
//! let local_ip = "127.0.0.1".parse()?;
//! let mut driver = Driver::start(DriverConfig { threads: 2, local_ip }, |_shard| Sink)?;
//! // Per call: place it, then add its participants on that host and join them on the ramp.
//! let host = target.place(&cfg.call_id, std::time::Duration::ZERO).await?;
//! let session = cfg.session_id.clone();
//! target.hosts()[host].add_participant(&mut driver, cfg)?;
//! driver.command(&session, Command::Join)?;
//! // ... Command::Unmute(Some(source)), ScreenOn { low, high }, VideoOn, Leave ...
//! let per_shard = driver.stop();
//! # Ok(()) }
//! ```

pub mod driver;
pub mod event;
pub mod feed;
pub mod impair;
#[cfg(test)]
mod mock_sfu;
pub mod negotiation;
pub mod participant;
pub mod publish;
pub mod sendlog;
pub mod signal;
pub mod sim;
pub mod source;
