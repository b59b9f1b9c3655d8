//! Send instants of published voice packets, so a receiver in the same harness can measure one-way
//! latency: it looks up when the *same source packet* was sent.
//!
//! rtcd (and the reference SFU) forward audio with the publisher's RTP sequence numbers and
//! timestamps (only the SSRC and payload type change), so a receiver finds the packet by the
//! sending session (from the track id) and the 16-bit sequence number. Video is left out: the SFU
//! rewrites video sequence numbers when it switches simulcast layers.
//!
//! Each publishing session has a [`SendRing`]: a fixed ring of relaxed atomics, one per sequence
//! number modulo its size, holding `seq << 48 | µs since the log's epoch`. The publisher writes
//! it as it sends and receivers on other event-loop threads read it, with no lock and no allocation
//! on either side; a slot overwritten by a packet 1024 sequence numbers later (20 s of voice) no
//! longer matches and yields `None`. The map from session to ring takes a lock only when a track
//! is added.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Slots per ring: 1024 voice packets is 20 s at 50 packets/s, far beyond any one-way latency.
const SLOTS: usize = 1024;
const TIME_BITS: u32 = 48;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;

/// One publisher's recent send instants by RTP sequence number.
#[derive(Debug)]
pub struct SendRing {
    epoch: Instant,
    slots: Box<[AtomicU64]>,
}

impl SendRing {
    fn new(epoch: Instant) -> Self {
        SendRing {
            epoch,
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Records that the packet with sequence number `seq` was sent at `at`.
    pub fn record(&self, seq: u16, at: Instant) {
        // +1 so that an empty slot (0) never matches seq 0 at the epoch. 48 bits of µs is 8.9
        // years, beyond any run.
        let micros = u64::try_from(at.saturating_duration_since(self.epoch).as_micros())
            .unwrap_or(TIME_MASK)
            .saturating_add(1)
            & TIME_MASK;
        let v = (u64::from(seq) << TIME_BITS) | micros;
        self.slots[usize::from(seq) % SLOTS].store(v, Ordering::Relaxed);
    }

    /// When the packet with sequence number `seq` was sent, if it is still in the ring.
    pub fn sent_at(&self, seq: u16) -> Option<Instant> {
        let v = self.slots[usize::from(seq) % SLOTS].load(Ordering::Relaxed);
        let micros = v & TIME_MASK;
        if micros == 0 || (v >> TIME_BITS) as u16 != seq {
            return None;
        }
        Some(self.epoch + Duration::from_micros(micros - 1))
    }
}

/// The rings of every publishing session of one harness process (shared by all its threads).
#[derive(Debug)]
pub struct SendLog {
    epoch: Instant,
    rings: RwLock<HashMap<String, Arc<SendRing>>>,
}

impl SendLog {
    /// A log whose times are kept relative to `epoch` (the start of the driver or simulation; an
    /// instant before it is recorded as the epoch).
    pub fn new(epoch: Instant) -> Self {
        SendLog {
            epoch,
            rings: RwLock::new(HashMap::new()),
        }
    }

    /// The voice ring of `session_id`, created on first use by either the publisher or a receiver
    /// (whichever learns of the track first).
    pub fn voice(&self, session_id: &str) -> Arc<SendRing> {
        if let Ok(r) = self.rings.read()
            && let Some(ring) = r.get(session_id)
        {
            return Arc::clone(ring);
        }
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        let mut w = self.rings.write().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            w.entry(session_id.to_string())
                .or_insert_with(|| Arc::new(SendRing::new(self.epoch))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_finds_by_sequence_number() {
        let epoch = Instant::now();
        let log = SendLog::new(epoch);
        let ring = log.voice("a");
        assert!(Arc::ptr_eq(&ring, &log.voice("a")), "one ring per session");
        assert!(!Arc::ptr_eq(&ring, &log.voice("b")));
        assert_eq!(ring.sent_at(5), None, "nothing recorded yet");
        ring.record(0, epoch);
        assert_eq!(ring.sent_at(0), Some(epoch));
        let t = epoch + Duration::from_micros(123_456);
        ring.record(65_535, t);
        assert_eq!(ring.sent_at(65_535), Some(t));
        // The slot of 65535 is reused 1024 sequence numbers later; the old one no longer matches.
        let later = 65_535u16.wrapping_add(SLOTS as u16);
        ring.record(later, t + Duration::from_secs(20));
        assert_eq!(ring.sent_at(65_535), None);
        assert_eq!(ring.sent_at(later), Some(t + Duration::from_secs(20)));
        // Before the epoch is clamped to it.
        ring.record(
            7,
            epoch.checked_sub(Duration::from_secs(1)).unwrap_or(epoch),
        );
        assert_eq!(ring.sent_at(7), Some(epoch));
    }

    #[test]
    fn readers_on_other_threads_see_the_writes() {
        let epoch = Instant::now();
        let log = Arc::new(SendLog::new(epoch));
        let writer = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let ring = log.voice("s");
                for seq in 0..500u16 {
                    ring.record(seq, epoch + Duration::from_millis(20 * u64::from(seq)));
                }
            })
        };
        writer.join().unwrap();
        let ring = log.voice("s");
        for seq in 0..500u16 {
            assert_eq!(
                ring.sent_at(seq),
                Some(epoch + Duration::from_millis(20 * u64::from(seq)))
            );
        }
    }
}
