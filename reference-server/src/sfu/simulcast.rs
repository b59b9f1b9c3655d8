//! Simulcast layer choice per viewer from the egress bandwidth estimate (rtcd §3.4).
//!
//! rtcd measures each published layer's source rate (`h` over 2 s, `l` over 5 s, reported only once
//! twice the window has been seen), starts a viewer on `h` only when the estimate already exceeds
//! 0.9 × 2.5 Mbps, and otherwise switches with a backoff: a change is ignored for 10 s after the
//! previous one, the backoff growing ×1.5 per switch, except that a viewer on `h` whose estimate
//! dropped below what `h` needs is moved down at once. Pure and clock-free: time is passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// rtcd's nominal rate of the high layer (bps), used until the layer's rate is measured.
pub const HIGH_RATE: f64 = 2_500_000.0;
/// rtcd's nominal rate of the low layer (bps).
pub const LOW_RATE: f64 = 500_000.0;
/// The estimate must exceed this share of a layer's rate to carry it.
pub const TOLERANCE: f64 = 0.9;
/// First backoff after a switch, and its growth per switch.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
pub const BACKOFF_FACTOR: f64 = 1.5;

/// How often a viewer's layer is re-evaluated against its latest estimate, besides on every new
/// estimate (str0m reports a steady estimate only once).
pub const EVAL_PERIOD: Duration = Duration::from_secs(1);

/// A simulcast layer (rids `l` and `h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Low,
    High,
}

impl Layer {
    pub fn rid(self) -> &'static str {
        match self {
            Layer::Low => "l",
            Layer::High => "h",
        }
    }

    /// Measurement window of the layer's rate monitor.
    pub fn window(self) -> Duration {
        match self {
            Layer::Low => Duration::from_secs(5),
            Layer::High => Duration::from_secs(2),
        }
    }
}

/// Bits per second of one published layer over a sliding window.
#[derive(Debug, Clone)]
pub struct RateMonitor {
    window: Duration,
    first: Option<Instant>,
    /// (arrival, bytes) within the last window.
    samples: VecDeque<(Instant, usize)>,
    bytes: usize,
}

impl RateMonitor {
    pub fn new(window: Duration) -> RateMonitor {
        RateMonitor {
            window,
            first: None,
            samples: VecDeque::new(),
            bytes: 0,
        }
    }

    pub fn push(&mut self, now: Instant, bytes: usize) {
        self.first.get_or_insert(now);
        self.samples.push_back((now, bytes));
        self.bytes += bytes;
        while let Some(&(t, b)) = self.samples.front() {
            if now.saturating_duration_since(t) <= self.window {
                break;
            }
            self.samples.pop_front();
            self.bytes -= b;
        }
    }

    /// The rate over the last window, or `None` until twice the window has been observed.
    pub fn rate(&self, now: Instant) -> Option<f64> {
        let first = self.first?;
        if now.saturating_duration_since(first) < 2 * self.window {
            return None;
        }
        let live: usize = self
            .samples
            .iter()
            .filter(|(t, _)| now.saturating_duration_since(*t) <= self.window)
            .map(|(_, b)| *b)
            .sum();
        Some(live as f64 * 8.0 / self.window.as_secs_f64())
    }
}

/// One viewer's layer and switching backoff.
#[derive(Debug, Clone)]
pub struct LayerChoice {
    pub layer: Layer,
    backoff: Duration,
    since: Instant,
    /// Next periodic re-evaluation (rtcd reacts to estimate callbacks at most 1/s).
    next_eval: Instant,
}

impl LayerChoice {
    /// The layer a new viewer starts on, given its current estimate (bps) if any.
    pub fn new(estimate: Option<f64>, now: Instant) -> LayerChoice {
        let high = estimate.is_some_and(|e| e > TOLERANCE * HIGH_RATE);
        LayerChoice {
            layer: if high { Layer::High } else { Layer::Low },
            backoff: INITIAL_BACKOFF,
            since: now,
            next_eval: now + EVAL_PERIOD,
        }
    }

    /// Whether the periodic re-evaluation is due; re-arms it.
    pub fn due(&mut self, now: Instant) -> bool {
        if now < self.next_eval {
            return false;
        }
        self.next_eval = now + EVAL_PERIOD;
        true
    }

    /// A new estimate (bps); `high_rate` is the measured rate of `h` if known. Returns the layer
    /// to move to, if any.
    pub fn on_estimate(
        &mut self,
        now: Instant,
        estimate: f64,
        high_rate: Option<f64>,
    ) -> Option<Layer> {
        let needed = TOLERANCE * high_rate.unwrap_or(HIGH_RATE);
        let want = if estimate > needed {
            Layer::High
        } else {
            Layer::Low
        };
        if want == self.layer {
            return None;
        }
        let urgent = self.layer == Layer::High;
        if !urgent && now < self.since + self.backoff {
            return None;
        }
        self.layer = want;
        self.since = now;
        self.backoff = self.backoff.mul_f64(BACKOFF_FACTOR);
        Some(want)
    }
}

/// Whether a VP8 RTP payload starts a keyframe (RFC 7741: S=1, PID=0, and P=0 in the frame tag).
pub fn vp8_keyframe_start(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let start = first & 0x10 != 0 && first & 0x07 == 0;
    if !start {
        return false;
    }
    let mut i = 1;
    if first & 0x80 != 0 {
        let Some(&x) = payload.get(1) else {
            return false;
        };
        i = 2;
        if x & 0x80 != 0 {
            // PictureID: 7 or 15 bits.
            match payload.get(i) {
                Some(p) if p & 0x80 != 0 => i += 2,
                Some(_) => i += 1,
                None => return false,
            }
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    payload.get(i).is_some_and(|tag| tag & 0x01 == 0)
}

/// Whether an AV1 RTP payload starts a new coded video sequence (the aggregation header's N bit).
pub fn av1_keyframe_start(payload: &[u8]) -> bool {
    payload.first().is_some_and(|h| h & 0x08 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    #[test]
    fn rate_reports_only_after_twice_the_window() {
        let t0 = Instant::now();
        let mut m = RateMonitor::new(Layer::High.window());
        // 250 packets/s of 1250 bytes: 2.5 Mbps.
        let mut t = t0;
        while t < t0 + s(3.9) {
            m.push(t, 1250);
            t += s(0.004);
        }
        assert_eq!(m.rate(t), None);
        while t < t0 + s(6.0) {
            m.push(t, 1250);
            t += s(0.004);
        }
        let r = m.rate(t).unwrap();
        assert!((r - 2_500_000.0).abs() < 20_000.0, "{r}");
    }

    #[test]
    fn starts_low_unless_the_estimate_already_carries_high() {
        let now = Instant::now();
        assert_eq!(LayerChoice::new(None, now).layer, Layer::Low);
        assert_eq!(LayerChoice::new(Some(2_000_000.0), now).layer, Layer::Low);
        assert_eq!(LayerChoice::new(Some(2_300_000.0), now).layer, Layer::High);
    }

    #[test]
    fn upgrade_waits_for_the_backoff_and_downgrade_is_immediate() {
        let t0 = Instant::now();
        let mut c = LayerChoice::new(None, t0);
        // Enough for h, but inside the first 10 s: ignored.
        assert_eq!(
            c.on_estimate(t0 + s(9.9), 3_000_000.0, Some(2_400_000.0)),
            None
        );
        assert_eq!(
            c.on_estimate(t0 + s(10.0), 3_000_000.0, Some(2_400_000.0)),
            Some(Layer::High)
        );
        // The drop acts at once, even within the (now 15 s) backoff.
        assert_eq!(
            c.on_estimate(t0 + s(10.5), 1_000_000.0, Some(2_400_000.0)),
            Some(Layer::Low)
        );
        // Back up only after 22.5 s (10 × 1.5 × 1.5) from the last switch.
        assert_eq!(c.on_estimate(t0 + s(32.9), 3_000_000.0, None), None);
        assert_eq!(
            c.on_estimate(t0 + s(33.0), 3_000_000.0, None),
            Some(Layer::High)
        );
        // Measured source rate decides: 0.9 × 2.4 M = 2.16 M.
        assert_eq!(
            c.on_estimate(t0 + s(34.0), 2_200_000.0, Some(2_400_000.0)),
            None
        );
        assert_eq!(
            c.on_estimate(t0 + s(34.0), 2_100_000.0, Some(2_400_000.0)),
            Some(Layer::Low)
        );
    }

    #[test]
    fn vp8_keyframes_are_recognised() {
        // S=1 PID=0, no extensions, frame tag P=0.
        assert!(vp8_keyframe_start(&[0x10, 0x00, 0x00, 0x9d]));
        // Interframe.
        assert!(!vp8_keyframe_start(&[0x10, 0x01]));
        // Not a partition start.
        assert!(!vp8_keyframe_start(&[0x00, 0x00]));
        // X=1, I=1 with a 15-bit PictureID, then a key frame tag.
        assert!(vp8_keyframe_start(&[0x90, 0x80, 0x81, 0x23, 0x00]));
        assert!(!vp8_keyframe_start(&[0x90, 0x80, 0x81, 0x23, 0x01]));
        assert!(!vp8_keyframe_start(&[]));
    }
}
