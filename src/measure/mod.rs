//! Measurement: typed records, HDR histograms in µs, hot counters, per-worker recorders merged by one
//! aggregator into 1 s snapshots, server probes and self-health.
//!
//! How the run feeds it (see [`recorder`] for the data flow):
//! 1. Create one `Arc<`[`HotCounters`]`>` (with the [`WireOverhead`] of the media path) and share it
//!    with every I/O thread; count each UDP datagram with [`HotCounters::sent`] /
//!    [`HotCounters::received`] and loss with [`HotCounters::media_quality`].
//! 2. Give each worker its own [`Recorder`]; report events as [`Record`]s with the *intended* times.
//! 3. Once a second: every worker sends `recorder.take()` to the aggregator thread, which calls
//!    [`Aggregator::absorb`] for each, takes the probe readings with a [`Sampler`] (target from
//!    `/proc/<pid>` of the embedded child or `rtcd_process_*` of any rtcd, see [`ServerSource`];
//!    harness from `/proc/self`) and calls [`Aggregator::seal`] with `readings.tick(t_s, unix_s)`.
//!    A [`ProbeError::TargetGone`] means the embedded target died: end the run with partial results.
//! 4. At the end, [`Aggregator::finish`] gives the [`Measurements`] that `report::RunResult` is built
//!    from.

pub mod counters;
pub mod health;
pub mod histogram;
pub mod host;
pub mod procfs;
pub mod prometheus;
pub mod record;
pub mod recorder;
pub mod sampler;
pub mod snapshot;

pub use counters::{
    CounterValues, DEFAULT_L2_OVERHEAD, Flow, HotCounters, IpVersion, WireOverhead,
};
pub use health::{HealthLimits, Saturation};
pub use histogram::{HistogramError, LatencyHistogram};
pub use procfs::{CpuRate, ProcError, ProcProbe, ProcSample};
pub use prometheus::ScrapeError;
pub use record::{JoinPhase, Record, TrackKind};
pub use recorder::{
    Aggregator, Counts, Histograms, INTERVAL_TAGS, Interval, IntervalHistograms, Measurements,
    Recorder, Tick,
};
pub use sampler::{ProbeError, Readings, Sampler, ServerSource};
pub use snapshot::{Phase, Snapshot};
