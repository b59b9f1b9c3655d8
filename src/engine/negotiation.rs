//! Who may change the session next: the client side of rtcd's signalling lock (rtcd.md §2.3 step 9).
//!
//! Every renegotiation the participant starts (unmute adding the mic, screen share, video, their
//! removal) is serialised through rtcd's one-slot lock: DC `Lock`, retry every 50 ms while refused,
//! give up after 5 s; offer once granted; DC `Unlock` after applying the answer. Server offers need no
//! action here: rtcd holds the lock while it offers, so a refused lock simply means "an offer is
//! coming". This module holds only the bookkeeping (no str0m, no clock); the participant applies it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use str0m::change::SdpPendingOffer;

/// Retry interval after a refused lock, as the browser client does.
pub const LOCK_RETRY: Duration = Duration::from_millis(50);
/// How long the participant keeps asking for the lock before giving up on a change.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// A change the participant wants to negotiate on its own initiative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalChange {
    /// Add the microphone track (first unmute).
    AddMic,
    /// Add the screen track (simulcast `l`/`h` when configured).
    AddScreen,
    /// Add the camera track.
    AddVideo,
    /// Stop sending the screen track.
    RemoveScreen,
    /// Stop sending the camera track.
    RemoveVideo,
}

/// Where the participant stands in the offer/answer exchange.
#[derive(Debug, Default)]
pub enum Phase {
    /// Nothing in flight.
    #[default]
    Stable,
    /// The first offer (no lock needed) is out; waiting for rtcd's answer.
    Initial {
        pending: SdpPendingOffer,
        sent: Instant,
    },
    /// `Lock` sent for `change`; `retry_at` is set while waiting to ask again after a refusal.
    Locking {
        change: LocalChange,
        started: Instant,
        retry_at: Option<Instant>,
    },
    /// Holding the lock, own offer out for `change`; waiting for the answer.
    Offering {
        change: LocalChange,
        pending: SdpPendingOffer,
        sent: Instant,
    },
}

/// What the participant must do after a lock reply.
#[derive(Debug, PartialEq, Eq)]
pub enum LockStep {
    /// Granted: create and send the offer for this change.
    Offer(LocalChange),
    /// Refused: ask again at this instant.
    RetryAt(Instant),
    /// Refused for too long: the change is dropped.
    GaveUp(LocalChange),
    /// A reply nobody asked for (late or duplicate); nothing to do.
    Ignore,
}

/// The participant's negotiation state and its queue of wanted changes.
#[derive(Debug, Default)]
pub struct Negotiation {
    pub phase: Phase,
    queue: VecDeque<LocalChange>,
}

impl Negotiation {
    /// Queues a change to negotiate when the session is next stable.
    pub fn want(&mut self, change: LocalChange) {
        self.queue.push_back(change);
    }

    /// Puts a change back at the head of the queue (its offer was rolled back by a server offer).
    pub fn retry_first(&mut self, change: LocalChange) {
        self.queue.push_front(change);
    }

    /// Changes still waiting.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn is_stable(&self) -> bool {
        matches!(self.phase, Phase::Stable)
    }

    /// If stable and something is queued, moves to `Locking` and returns the change: the caller
    /// sends DC `Lock`.
    pub fn start_next(&mut self, now: Instant) -> Option<LocalChange> {
        if !self.is_stable() {
            return None;
        }
        let change = self.queue.pop_front()?;
        self.phase = Phase::Locking {
            change,
            started: now,
            retry_at: None,
        };
        Some(change)
    }

    /// Handles rtcd's `Lock(granted)` reply.
    pub fn on_lock_reply(&mut self, granted: bool, now: Instant) -> LockStep {
        let Phase::Locking {
            change, started, ..
        } = &mut self.phase
        else {
            return LockStep::Ignore;
        };
        let (change, started) = (*change, *started);
        if granted {
            // The caller moves the phase to `Offering` once the offer exists.
            return LockStep::Offer(change);
        }
        if now.saturating_duration_since(started) + LOCK_RETRY > LOCK_TIMEOUT {
            self.phase = Phase::Stable;
            return LockStep::GaveUp(change);
        }
        let at = now + LOCK_RETRY;
        self.phase = Phase::Locking {
            change,
            started,
            retry_at: Some(at),
        };
        LockStep::RetryAt(at)
    }

    /// A due retry: returns true when the caller must send `Lock` again now.
    pub fn take_due_retry(&mut self, now: Instant) -> bool {
        if let Phase::Locking { retry_at, .. } = &mut self.phase
            && retry_at.is_some_and(|at| at <= now)
        {
            *retry_at = None;
            return true;
        }
        false
    }

    /// A lock request that got no reply at all within [`LOCK_TIMEOUT`] is abandoned.
    pub fn take_expired(&mut self, now: Instant) -> Option<LocalChange> {
        if let Phase::Locking {
            change, started, ..
        } = self.phase
            && now.saturating_duration_since(started) >= LOCK_TIMEOUT
        {
            self.phase = Phase::Stable;
            return Some(change);
        }
        None
    }

    /// The earliest instant this state needs attention (a retry or the give-up deadline).
    pub fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Locking {
                started, retry_at, ..
            } => Some(retry_at.map_or(*started + LOCK_TIMEOUT, |r| r.min(*started + LOCK_TIMEOUT))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_lock_retries_every_50ms_then_gives_up_after_5s() {
        let t0 = Instant::now();
        let mut n = Negotiation::default();
        n.want(LocalChange::AddMic);
        assert_eq!(n.start_next(t0), Some(LocalChange::AddMic));
        assert_eq!(n.start_next(t0), None, "one change at a time");
        let mut now = t0;
        let mut retries = 0;
        loop {
            match n.on_lock_reply(false, now) {
                LockStep::RetryAt(at) => {
                    assert_eq!(at - now, LOCK_RETRY);
                    assert!(!n.take_due_retry(at - Duration::from_millis(1)));
                    assert!(n.take_due_retry(at));
                    now = at;
                    retries += 1;
                }
                LockStep::GaveUp(c) => {
                    assert_eq!(c, LocalChange::AddMic);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(retries, 100, "asks at 0, then every 50 ms up to 5 s");
        assert!(n.is_stable());
    }

    #[test]
    fn granted_lock_offers_and_stray_reply_is_ignored() {
        let t0 = Instant::now();
        let mut n = Negotiation::default();
        assert_eq!(n.on_lock_reply(true, t0), LockStep::Ignore);
        n.want(LocalChange::AddScreen);
        n.start_next(t0);
        assert_eq!(
            n.on_lock_reply(true, t0),
            LockStep::Offer(LocalChange::AddScreen)
        );
    }

    #[test]
    fn unanswered_lock_expires() {
        let t0 = Instant::now();
        let mut n = Negotiation::default();
        n.want(LocalChange::AddVideo);
        n.start_next(t0);
        assert_eq!(n.deadline(), Some(t0 + LOCK_TIMEOUT));
        assert_eq!(n.take_expired(t0 + Duration::from_secs(4)), None);
        assert_eq!(
            n.take_expired(t0 + LOCK_TIMEOUT),
            Some(LocalChange::AddVideo)
        );
    }
}
