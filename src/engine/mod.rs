//! Simulated participants: sans-IO state machines ([`participant`]) and what drives them.
//!
//! - [`participant`]: one Calls end user around a str0m `Rtc` (join, negotiate, publish, receive).
//! - [`negotiation`]: the client side of rtcd's signalling lock.
//! - [`publish`], [`source`]: published tracks and the media sources that feed them.
//! - [`event`]: what participants report for measurement.
//! - [`driver`]: the event-loop threads that own sockets and timers for many participants.
//! - [`sim`]: participants and a server over an in-memory network in virtual time.

pub mod driver;
pub mod event;
#[cfg(test)]
mod mock_sfu;
pub mod negotiation;
pub mod participant;
pub mod publish;
pub mod signal;
pub mod sim;
pub mod source;
