//! Server-side voice activity detection from `ssrc-audio-level` (rtcd §3.5).
//!
//! The last 50 levels (0–127 dBov) form a window; its sample standard deviation, rounded to an
//! integer, switches voice on above 10 and off below 4, off only 2 s after switching on.

use std::time::{Duration, Instant};

const WINDOW: usize = 50;
const ON_THRESHOLD: u32 = 10;
const OFF_THRESHOLD: u32 = 4;
const MIN_ON: Duration = Duration::from_secs(2);

/// A VAD monitor for one voice source. Fixed-size ring; no allocation per packet.
#[derive(Debug, Clone)]
pub struct Vad {
    levels: [u8; WINDOW],
    len: usize,
    next: usize,
    on_since: Option<Instant>,
}

impl Default for Vad {
    fn default() -> Self {
        Vad {
            levels: [0; WINDOW],
            len: 0,
            next: 0,
            on_since: None,
        }
    }
}

impl Vad {
    /// Feeds one level; returns `Some(on)` when the state changes.
    pub fn push(&mut self, level: u8, now: Instant) -> Option<bool> {
        self.levels[self.next] = level.min(127);
        self.next = (self.next + 1) % WINDOW;
        self.len = (self.len + 1).min(WINDOW);
        if self.len < WINDOW {
            return None;
        }
        let sd = self.std_dev();
        match self.on_since {
            None if sd > ON_THRESHOLD => {
                self.on_since = Some(now);
                Some(true)
            }
            Some(since) if sd < OFF_THRESHOLD && now >= since + MIN_ON => {
                self.on_since = None;
                Some(false)
            }
            _ => None,
        }
    }

    /// Clears the window and the voice state (on mute).
    pub fn reset(&mut self) {
        *self = Vad::default();
    }

    fn std_dev(&self) -> u32 {
        let n = self.len as f64;
        let mean = self.levels[..self.len]
            .iter()
            .map(|&l| l as f64)
            .sum::<f64>()
            / n;
        let var = self.levels[..self.len]
            .iter()
            .map(|&l| (l as f64 - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        var.sqrt().round() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_turns_on_and_silence_turns_off_after_two_seconds() {
        let t0 = Instant::now();
        let mut vad = Vad::default();
        let mut changes = vec![];
        // 1 s of speech-like levels alternating 30/60 dBov: std-dev ≈ 15.
        for i in 0..50u32 {
            let t = t0 + Duration::from_millis(20 * i as u64);
            if let Some(c) = vad.push(if i % 2 == 0 { 30 } else { 60 }, t) {
                changes.push((i, c));
            }
        }
        assert_eq!(changes, vec![(49, true)]);
        // Constant silence: the std-dev decays below 4 once the window flushes, but not before 2 s.
        for i in 50..200u32 {
            let t = t0 + Duration::from_millis(20 * i as u64);
            if let Some(c) = vad.push(127, t) {
                changes.push((i, c));
            }
        }
        assert_eq!(changes.len(), 2);
        let (i, on) = changes[1];
        assert!(!on);
        assert!(i >= 49 + 100, "off at packet {i}, before 2 s of voice");
    }
}
