//! Latency distributions: HDR histograms of microseconds with one fixed layout for every worker, shard
//! and file, so that merging never fails on range and percentiles of merged data are exact.
//!
//! Values are whole microseconds (a `Duration` is truncated to µs, never rounded to coarser buckets);
//! the layout keeps 3 significant digits from 1 µs to 10 minutes. Values above the top are clamped to
//! it and counted in [`LatencyHistogram::clamped`]'s total so a report can say so. On disk a histogram
//! is the standard HdrHistogram V2+DEFLATE encoding, base64 in JSON.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer as SerdeDeserializer, Serialize, Serializer};

/// Smallest distinguishable value, µs.
pub const LOWEST_US: u64 = 1;
/// Largest trackable value, µs (10 minutes: longer than any join timeout).
pub const HIGHEST_US: u64 = 600_000_000;
/// Significant decimal digits kept at every magnitude.
pub const SIGFIG: u8 = 3;

/// Why a histogram could not be decoded or merged.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram is not a valid V2 HdrHistogram encoding: {0:?}")]
    Decode(hdrhistogram::serialization::DeserializeError),
    #[error(
        "histogram layout differs from 1 µs..10 min, 3 digits (highest {highest}, digits {sigfig})"
    )]
    Layout { highest: u64, sigfig: u8 },
    #[error("histograms could not be added: {0}")]
    Add(#[from] hdrhistogram::AdditionError),
}

/// A distribution of durations in µs with the fixed layout.
#[derive(Clone, PartialEq)]
pub struct LatencyHistogram {
    inner: Histogram<u64>,
    clamped: u64,
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        // Invariant: the bounds are constants that satisfy hdrhistogram's rules
        // (lowest ≥ 1, highest ≥ 2·lowest, sigfig ≤ 5), checked by `layout_is_valid` below.
        let inner = Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG)
            .expect("constant layout is valid");
        Self { inner, clamped: 0 }
    }

    /// Records one duration.
    pub fn record(&mut self, value: Duration) {
        self.record_us(u64::try_from(value.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records one value given in µs; 0 is kept as 0 (a bucket of its own).
    pub fn record_us(&mut self, us: u64) {
        if us > HIGHEST_US {
            self.clamped += 1;
        }
        self.inner.saturating_record(us.min(HIGHEST_US));
    }

    /// Records `count` occurrences of a value in µs.
    pub fn record_n_us(&mut self, us: u64, count: u64) {
        if us > HIGHEST_US {
            self.clamped += count;
        }
        // saturating_record_n does not exist; record_n cannot fail once the value is in range.
        let _ = self.inner.record_n(us.min(HIGHEST_US), count);
    }

    /// Adds every sample of `other`.
    pub fn add(&mut self, other: &LatencyHistogram) {
        // Both sides have the constant layout, so addition cannot go out of range.
        let _ = self.inner.add(&other.inner);
        self.clamped += other.clamped;
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.inner.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Samples that were above [`HIGHEST_US`] and were recorded as it (not kept across files).
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// The value at quantile `q` in `0.0..=1.0`, µs (HdrHistogram's highest-equivalent value); `None`
    /// when empty.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        (!self.is_empty()).then(|| self.inner.value_at_quantile(q.clamp(0.0, 1.0)))
    }

    /// The value at quantile `q` as a duration.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        self.quantile_us(q).map(Duration::from_micros)
    }

    /// Arithmetic mean in µs; `None` when empty.
    pub fn mean_us(&self) -> Option<f64> {
        (!self.is_empty()).then(|| self.inner.mean())
    }

    /// Largest sample, µs.
    pub fn max_us(&self) -> Option<u64> {
        (!self.is_empty()).then(|| self.inner.max())
    }

    /// Smallest sample, µs.
    pub fn min_us(&self) -> Option<u64> {
        (!self.is_empty()).then(|| self.inner.min())
    }

    /// Fraction of samples at or below `us`.
    pub fn fraction_at_or_below(&self, us: u64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let below = self.inner.count_between(0, us);
        below as f64 / self.count() as f64
    }

    /// (value µs, cumulative fraction) points of the CDF, one per distinct recorded bucket.
    pub fn cdf(&self) -> Vec<(u64, f64)> {
        let total = self.count() as f64;
        let mut points = Vec::new();
        let mut seen = 0u64;
        for v in self.inner.iter_recorded() {
            seen += v.count_at_value();
            points.push((
                self.inner.highest_equivalent(v.value_iterated_to()),
                seen as f64 / total,
            ));
        }
        points
    }

    /// The underlying histogram, for writers of standard HdrHistogram formats.
    pub fn inner(&self) -> &Histogram<u64> {
        &self.inner
    }

    /// The V2+DEFLATE encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Serialising into a Vec cannot fail for io reasons; the only other failure is a count
        // overflowing i64, which u64 counters from one run cannot reach.
        let _ = V2DeflateSerializer::new().serialize(&self.inner, &mut out);
        out
    }

    /// The V2+DEFLATE encoding in standard base64.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.encode())
    }

    /// Decodes a V2 or V2+DEFLATE histogram and checks it has the fixed layout.
    pub fn decode(bytes: &[u8]) -> Result<Self, HistogramError> {
        let inner: Histogram<u64> = Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(HistogramError::Decode)?;
        if inner.high() != HIGHEST_US || inner.sigfig() != SIGFIG || inner.low() != LOWEST_US {
            return Err(HistogramError::Layout {
                highest: inner.high(),
                sigfig: inner.sigfig(),
            });
        }
        let mut h = Self::new();
        h.inner.add(&inner)?;
        Ok(h)
    }

    /// Decodes [`Self::to_base64`] output.
    pub fn from_base64(text: &str) -> Result<Self, HistogramError> {
        Self::decode(&STANDARD.decode(text.trim())?)
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.count())
            .field("p50_us", &self.quantile_us(0.5))
            .field("p99_us", &self.quantile_us(0.99))
            .field("max_us", &self.max_us())
            .finish()
    }
}

impl Serialize for LatencyHistogram {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: SerdeDeserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::from_base64(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_valid() {
        let h = LatencyHistogram::new();
        assert_eq!(h.count(), 0);
        assert_eq!(h.quantile_us(0.5), None);
    }

    #[test]
    fn microseconds_are_kept_to_three_digits() {
        let mut h = LatencyHistogram::new();
        h.record(Duration::from_nanos(1_234_567)); // 1234 µs
        let p = h.quantile_us(0.5).unwrap();
        assert!((1234..=1235).contains(&p), "{p}");
        h.record_us(137);
        assert_eq!(h.min_us(), Some(137));
    }

    #[test]
    fn values_beyond_the_top_are_clamped_and_counted() {
        let mut h = LatencyHistogram::new();
        h.record(Duration::from_secs(3600));
        assert_eq!(h.clamped(), 1);
        assert!(h.max_us().unwrap() >= HIGHEST_US);
    }

    #[test]
    fn base64_round_trip_is_exact() {
        let mut h = LatencyHistogram::new();
        for us in [5, 50, 500, 5_000, 50_000, 500_000, 5_000_000] {
            h.record_n_us(us, us % 7 + 1);
        }
        let back = LatencyHistogram::from_base64(&h.to_base64()).unwrap();
        assert_eq!(back.count(), h.count());
        for q in [0.0, 0.25, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(back.quantile_us(q), h.quantile_us(q));
        }
    }

    #[test]
    fn bad_encodings_are_typed_errors() {
        assert!(matches!(
            LatencyHistogram::from_base64("!!!"),
            Err(HistogramError::Base64(_))
        ));
        assert!(matches!(
            LatencyHistogram::from_base64("AAAA"),
            Err(HistogramError::Decode(_))
        ));
        let other = Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&other, &mut bytes)
            .unwrap();
        assert!(matches!(
            LatencyHistogram::decode(&bytes),
            Err(HistogramError::Layout { .. })
        ));
    }

    #[test]
    fn cdf_ends_at_one() {
        let mut h = LatencyHistogram::new();
        for us in 1..=1000 {
            h.record_us(us);
        }
        let cdf = h.cdf();
        assert!((cdf.last().unwrap().1 - 1.0).abs() < 1e-12);
        assert!(cdf.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
        assert!((h.fraction_at_or_below(500) - 0.5).abs() < 0.01);
    }
}
