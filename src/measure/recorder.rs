//! Per-worker recorders and the one aggregator that turns their intervals into 1 s snapshots.
//!
//! ```text
//! worker thread ── Record ──▶ Recorder (owned, no locks) ──take() each second──▶ Interval ─┐
//! I/O threads ── HotCounters (relaxed atomics, shared) ─────────────────────────────────────┤
//! probes (target /proc or /metrics, /proc/self) ── Tick ────────────────────────────────────┤
//!                                                      Aggregator::absorb / seal ◀──────────┘
//!                                                        → Snapshot (a series.csv row) per second
//!                                                        → Measurements at the end
//! ```
//!
//! Workers never share a histogram: each records into its own and hands the whole interval over
//! (by value, e.g. through an `mpsc` channel) once a second. The aggregator adds them, so run-wide
//! percentiles are exact, not averages of percentiles.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::counters::{CounterValues, HotCounters};
use super::health::HealthLimits;
use super::histogram::LatencyHistogram;
use super::record::{JoinPhase, Record, TrackKind};
use super::snapshot::{Phase, Snapshot};
use crate::scenario::PhaseTimes;

/// Named histograms (`join.first_media`, `latency.audio`, …); names are listed in
/// `reports/schema/README.md`.
pub type Histograms = BTreeMap<String, LatencyHistogram>;
/// Named run-wide counts (`join_failed.offer`, `wire.out.bytes.audio`, …).
pub type Counts = BTreeMap<String, u64>;

/// The distributions one worker collects (fixed slots, so recording never allocates).
#[derive(Debug, Clone, Default)]
struct Dists {
    join: [LatencyHistogram; 6],
    latency: [LatencyHistogram; 3],
    jitter: [LatencyHistogram; 3],
    freeze: [LatencyHistogram; 3],
    /// Per-stream loss in parts per million (not µs: the layout is only a value range).
    loss: [LatencyHistogram; 3],
    renegotiation: LatencyHistogram,
    server_offer: LatencyHistogram,
    vad: LatencyHistogram,
    loop_lag: LatencyHistogram,
    pacing: LatencyHistogram,
    job_start: LatencyHistogram,
    job_total: LatencyHistogram,
}

impl Dists {
    fn add(&mut self, o: &Dists) {
        fn add_all<const N: usize>(a: &mut [LatencyHistogram; N], b: &[LatencyHistogram; N]) {
            a.iter_mut().zip(b).for_each(|(a, b)| a.add(b));
        }
        add_all(&mut self.join, &o.join);
        add_all(&mut self.latency, &o.latency);
        add_all(&mut self.jitter, &o.jitter);
        add_all(&mut self.freeze, &o.freeze);
        add_all(&mut self.loss, &o.loss);
        self.renegotiation.add(&o.renegotiation);
        self.server_offer.add(&o.server_offer);
        self.vad.add(&o.vad);
        self.loop_lag.add(&o.loop_lag);
        self.pacing.add(&o.pacing);
        self.job_start.add(&o.job_start);
        self.job_total.add(&o.job_total);
    }

    fn named(&self) -> Histograms {
        let mut h = Histograms::new();
        for p in JoinPhase::ALL {
            h.insert(format!("join.{}", p.name()), self.join[p.index()].clone());
        }
        for k in TrackKind::ALL {
            let i = k.index();
            h.insert(format!("latency.{}", k.name()), self.latency[i].clone());
            h.insert(format!("jitter.{}", k.name()), self.jitter[i].clone());
            h.insert(format!("freeze.{}", k.name()), self.freeze[i].clone());
            h.insert(format!("loss.{}", k.name()), self.loss[i].clone());
        }
        h.insert("renegotiation".into(), self.renegotiation.clone());
        h.insert(
            "renegotiation.server_offer".into(),
            self.server_offer.clone(),
        );
        h.insert("vad".into(), self.vad.clone());
        h.insert("health.loop_lag".into(), self.loop_lag.clone());
        h.insert("health.pacing_error".into(), self.pacing.clone());
        h.insert("job.start".into(), self.job_start.clone());
        h.insert("job.total".into(), self.job_total.clone());
        h
    }

    fn merged<const N: usize>(slots: &[LatencyHistogram; N]) -> LatencyHistogram {
        let mut all = LatencyHistogram::new();
        slots.iter().for_each(|h| all.add(h));
        all
    }
}

/// Event counts one worker collects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Events {
    join_failed: [u64; 6],
    sessions_up: u64,
    sessions_down: u64,
    disconnects: u64,
    jobs_started: u64,
    jobs_ended: u64,
    jobs_failed: u64,
}

impl Events {
    fn add(&mut self, o: &Events) {
        for (a, b) in self.join_failed.iter_mut().zip(o.join_failed) {
            *a += b;
        }
        self.sessions_up += o.sessions_up;
        self.sessions_down += o.sessions_down;
        self.disconnects += o.disconnects;
        self.jobs_started += o.jobs_started;
        self.jobs_ended += o.jobs_ended;
        self.jobs_failed += o.jobs_failed;
    }
}

/// One worker's measurements. Owned by the worker's thread; `record` is cheap and never allocates.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    dists: Dists,
    events: Events,
}

/// What a recorder collected since its last [`Recorder::take`]; hand it to [`Aggregator::absorb`].
#[derive(Debug, Clone, Default)]
pub struct Interval {
    dists: Dists,
    events: Events,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one event.
    pub fn record(&mut self, record: Record) {
        let d = &mut self.dists;
        match record {
            Record::Join {
                phase,
                scheduled,
                at,
            } => d.join[phase.index()].record(at.saturating_sub(scheduled)),
            Record::JoinFailed { phase } => self.events.join_failed[phase.index()] += 1,
            Record::SessionUp => self.events.sessions_up += 1,
            Record::SessionDown => self.events.sessions_down += 1,
            Record::Disconnect => self.events.disconnects += 1,
            Record::Latency {
                kind,
                intended_send,
                received,
            } => d.latency[kind.index()].record(received.saturating_sub(intended_send)),
            Record::Jitter { kind, jitter } => d.jitter[kind.index()].record(jitter),
            Record::StreamLoss {
                kind,
                expected,
                lost,
            } => {
                if expected > 0 {
                    let ppm = u128::from(lost.min(expected)) * 1_000_000 / u128::from(expected);
                    // ppm ≤ 1 000 000 after the min above, so it fits in u64.
                    d.loss[kind.index()].record_us(ppm as u64);
                }
            }
            Record::Freeze { kind, gap } => d.freeze[kind.index()].record(gap),
            Record::Renegotiation { started, completed } => {
                d.renegotiation.record(completed.saturating_sub(started))
            }
            Record::ServerOffer { received, answered } => {
                d.server_offer.record(answered.saturating_sub(received))
            }
            Record::Vad { intended, observed } => d.vad.record(observed.saturating_sub(intended)),
            Record::JobStarted { submitted, started } => {
                d.job_start.record(started.saturating_sub(submitted));
                self.events.jobs_started += 1;
            }
            Record::JobEnded {
                submitted,
                ended,
                succeeded,
            } => {
                self.events.jobs_ended += 1;
                if succeeded {
                    d.job_total.record(ended.saturating_sub(submitted));
                } else {
                    self.events.jobs_failed += 1;
                }
            }
            Record::LoopLag { lag } => d.loop_lag.record(lag),
            Record::PacingError { error } => d.pacing.record(error),
        }
    }

    /// Hands over everything recorded since the last call and starts afresh.
    pub fn take(&mut self) -> Interval {
        Interval {
            dists: std::mem::take(&mut self.dists),
            events: std::mem::take(&mut self.events),
        }
    }
}

/// What the probes saw in one second, given to [`Aggregator::seal`]. Seal once per second of the
/// run clock: byte counts of the interval are reported as bits per second without dividing by the
/// interval's length.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tick {
    /// Seconds since the run start (the row covers `[t_s, t_s + 1)`).
    pub t_s: u64,
    /// UNIX time of the second's start.
    pub unix_s: u64,
    /// Target CPU in cores over the second, if a probe ran.
    pub server_cpu_cores: Option<f64>,
    /// Target RSS in bytes, if a probe ran.
    pub server_rss_bytes: Option<u64>,
    /// Harness CPU in cores over the second.
    pub harness_cpu_cores: Option<f64>,
    /// The busiest engine event-loop thread's CPU over the second, cores.
    pub engine_thread_cpu_max_cores: Option<f64>,
    /// Datagrams dropped at the harness's own sockets in the second.
    pub harness_udp_drops: Option<u64>,
    /// Datagrams dropped at the embedded target's sockets in the second.
    pub target_udp_drops: Option<u64>,
    /// Host-wide UDP receive errors in the second.
    pub udp_receive_errors: Option<u64>,
}

/// Per-second histograms kept for exact re-aggregation (written to `intervals.hlog`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IntervalHistograms {
    /// Seconds since the run start.
    pub t_s: u64,
    /// UNIX time of the second's start.
    pub unix_s: u64,
    /// Tag → histogram; tags are [`INTERVAL_TAGS`].
    pub histograms: BTreeMap<String, LatencyHistogram>,
}

/// The per-second histograms kept: one-way latency and jitter over all kinds, and the two
/// self-health inputs.
pub const INTERVAL_TAGS: [&str; 4] = ["latency", "jitter", "loop_lag", "pacing_error"];

/// Everything a run measured, ready for the report model.
#[derive(Debug, Clone, Default)]
pub struct Measurements {
    /// One row per second.
    pub series: Vec<Snapshot>,
    /// Run-wide histograms.
    pub histograms: Histograms,
    /// Run-wide counts.
    pub counts: Counts,
    /// Per-second histograms.
    pub intervals: Vec<IntervalHistograms>,
}

/// Merges worker intervals and probe readings into one snapshot per second.
#[derive(Debug)]
pub struct Aggregator {
    counters: Arc<HotCounters>,
    last: CounterValues,
    limits: HealthLimits,
    phases: PhaseTimes,
    current: Interval,
    total: Interval,
    live_sessions: u64,
    running_jobs: u64,
    series: Vec<Snapshot>,
    intervals: Vec<IntervalHistograms>,
}

impl Aggregator {
    /// An aggregator over `counters`, labelling seconds with `phases` and judging self-health
    /// against `limits`.
    pub fn new(counters: Arc<HotCounters>, phases: PhaseTimes, limits: HealthLimits) -> Self {
        let last = counters.values();
        Self {
            counters,
            last,
            limits,
            phases,
            current: Interval::default(),
            total: Interval::default(),
            live_sessions: 0,
            running_jobs: 0,
            series: Vec::new(),
            intervals: Vec::new(),
        }
    }

    /// Adds one worker's interval to the current second.
    pub fn absorb(&mut self, interval: Interval) {
        self.current.dists.add(&interval.dists);
        self.current.events.add(&interval.events);
    }

    /// Closes the current second: reads the hot counters, folds the second into the run totals and
    /// returns its row.
    pub fn seal(&mut self, tick: Tick) -> &Snapshot {
        let now = self.counters.values();
        let delta = now.since(&self.last);
        self.last = now;
        let cur = std::mem::take(&mut self.current);
        let phase = Phase::at(Duration::from_secs(tick.t_s), &self.phases);
        let mut row = Snapshot::empty(tick.t_s, tick.unix_s, phase);

        let e = &cur.events;
        self.live_sessions = (self.live_sessions + e.sessions_up).saturating_sub(e.sessions_down);
        row.sessions = self.live_sessions;
        self.running_jobs = (self.running_jobs + e.jobs_started).saturating_sub(e.jobs_ended);
        row.jobs_running = self.running_jobs;
        row.joins = cur.dists.join[JoinPhase::FirstMedia.index()].count();
        row.join_failures = e.join_failed.iter().sum();
        row.server_cpu_cores = tick.server_cpu_cores;
        row.server_rss_bytes = tick.server_rss_bytes;
        row.harness_cpu_cores = tick.harness_cpu_cores;
        row.engine_thread_cpu_max_cores = tick.engine_thread_cpu_max_cores;
        row.harness_udp_drops = tick.harness_udp_drops;
        row.target_udp_drops = tick.target_udp_drops;
        row.udp_receive_errors = tick.udp_receive_errors;

        let bits = |bytes: u64| bytes as f64 * 8.0;
        row.bw_in_bps = bits(delta.bytes_in.iter().sum());
        row.bw_out_bps = bits(delta.bytes_out.iter().sum());
        row.audio_in_bps = bits(delta.bytes_in[0]);
        row.screen_in_bps = bits(delta.bytes_in[1]);
        row.video_in_bps = bits(delta.bytes_in[2]);
        row.audio_out_bps = bits(delta.bytes_out[0]);
        row.screen_out_bps = bits(delta.bytes_out[1]);
        row.video_out_bps = bits(delta.bytes_out[2]);
        row.packets_in = delta.packets_in.iter().sum();
        row.packets_out = delta.packets_out.iter().sum();
        row.expected = delta.expected.iter().sum();
        row.lost = delta.lost.iter().sum();

        let latency = Dists::merged(&cur.dists.latency);
        let jitter = Dists::merged(&cur.dists.jitter);
        row.latency_p50_us = latency.quantile_us(0.5);
        row.latency_p99_us = latency.quantile_us(0.99);
        row.jitter_p50_us = jitter.quantile_us(0.5);
        row.jitter_p99_us = jitter.quantile_us(0.99);
        row.freezes = cur.dists.freeze.iter().map(LatencyHistogram::count).sum();
        row.loop_lag_p99_us = cur.dists.loop_lag.quantile_us(0.99);
        row.pacing_error_p99_us = cur.dists.pacing.quantile_us(0.99);
        row.saturation = self
            .limits
            .judge(
                self.limits
                    .judged_cpu(row.harness_cpu_cores, row.server_cpu_cores),
                cur.dists.loop_lag.quantile(0.99),
                cur.dists.pacing.quantile(0.99),
            )
            .or(self.limits.judge_host(
                row.engine_thread_cpu_max_cores,
                row.harness_udp_drops,
                row.packets_out,
            ))
            .to_string();

        let tagged = [
            latency,
            jitter,
            cur.dists.loop_lag.clone(),
            cur.dists.pacing.clone(),
        ];
        self.intervals.push(IntervalHistograms {
            t_s: tick.t_s,
            unix_s: tick.unix_s,
            histograms: INTERVAL_TAGS
                .iter()
                .zip(tagged)
                .filter(|(_, h)| !h.is_empty())
                .map(|(t, h)| ((*t).to_owned(), h))
                .collect(),
        });
        self.total.dists.add(&cur.dists);
        self.total.events.add(&cur.events);
        self.series.push(row);
        // Invariant: a row was pushed on the line above.
        self.series.last().expect("row just pushed")
    }

    /// The rows sealed so far.
    pub fn series(&self) -> &[Snapshot] {
        &self.series
    }

    /// Ends aggregation. Intervals absorbed after the last `seal` are kept in the totals.
    pub fn finish(mut self) -> Measurements {
        let rest = std::mem::take(&mut self.current);
        self.total.dists.add(&rest.dists);
        self.total.events.add(&rest.events);
        let values = self.counters.values();
        let mut counts = Counts::new();
        let e = &self.total.events;
        for p in JoinPhase::ALL {
            counts.insert(
                format!("join_failed.{}", p.name()),
                e.join_failed[p.index()],
            );
        }
        counts.insert("sessions_up".into(), e.sessions_up);
        counts.insert("sessions_down".into(), e.sessions_down);
        counts.insert("disconnects".into(), e.disconnects);
        counts.insert("jobs.started".into(), e.jobs_started);
        counts.insert("jobs.ended".into(), e.jobs_ended);
        counts.insert("jobs.failed".into(), e.jobs_failed);
        for (i, flow) in ["audio", "screen", "video", "control"].iter().enumerate() {
            counts.insert(format!("wire.in.packets.{flow}"), values.packets_in[i]);
            counts.insert(format!("wire.in.bytes.{flow}"), values.bytes_in[i]);
            counts.insert(format!("wire.out.packets.{flow}"), values.packets_out[i]);
            counts.insert(format!("wire.out.bytes.{flow}"), values.bytes_out[i]);
        }
        for k in TrackKind::ALL {
            counts.insert(
                format!("media.expected.{}", k.name()),
                values.expected[k.index()],
            );
            counts.insert(format!("media.lost.{}", k.name()), values.lost[k.index()]);
        }
        Measurements {
            series: self.series,
            histograms: self.total.dists.named(),
            counts,
            intervals: self.intervals,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::counters::Flow;

    fn phases() -> PhaseTimes {
        PhaseTimes {
            join_end: Duration::from_secs(2),
            steady_start: Duration::from_secs(3),
            steady_end: Duration::from_secs(8),
            end: Duration::from_secs(10),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn latency_is_measured_from_the_intended_send_time() {
        let mut r = Recorder::new();
        // The packet was due at 100 ms, went out late at 180 ms, and arrived at 190 ms: 90 ms.
        r.record(Record::Latency {
            kind: TrackKind::Audio,
            intended_send: ms(100),
            received: ms(190),
        });
        let counters = Arc::new(HotCounters::default());
        let mut agg = Aggregator::new(counters, phases(), HealthLimits::for_cores(4));
        agg.absorb(r.take());
        let row = agg.seal(Tick::default());
        let p50 = row.latency_p50_us.unwrap();
        assert!((90_000..=90_100).contains(&p50), "{p50}");
    }

    #[test]
    fn workers_merge_into_exact_run_wide_distributions() {
        let counters = Arc::new(HotCounters::default());
        let mut agg = Aggregator::new(counters.clone(), phases(), HealthLimits::for_cores(4));
        let mut workers = [Recorder::new(), Recorder::new(), Recorder::new()];
        let mut reference = LatencyHistogram::new();
        for second in 0..5u64 {
            for (w, rec) in workers.iter_mut().enumerate() {
                for i in 0..100u64 {
                    let us = 1_000 * (w as u64 + 1) + i * 37 + second;
                    reference.record_us(us);
                    rec.record(Record::Latency {
                        kind: TrackKind::ALL[w],
                        intended_send: Duration::ZERO,
                        received: Duration::from_micros(us),
                    });
                }
                rec.record(Record::SessionUp);
                counters.sent(Flow::Media(TrackKind::Audio), 100);
            }
            for rec in &mut workers {
                agg.absorb(rec.take());
            }
            let row = agg.seal(Tick {
                t_s: second,
                unix_s: 1_000 + second,
                ..Tick::default()
            });
            assert_eq!(row.sessions, 3 * (second + 1));
            assert_eq!(row.packets_in, 3);
            assert_eq!(row.bw_in_bps, 3.0 * 142.0 * 8.0);
        }
        let m = agg.finish();
        let mut all = LatencyHistogram::new();
        for k in TrackKind::ALL {
            all.add(&m.histograms[&format!("latency.{}", k.name())]);
        }
        assert_eq!(all.count(), 1_500);
        for q in [0.5, 0.9, 0.99, 0.999] {
            assert_eq!(all.quantile_us(q), reference.quantile_us(q));
        }
        assert_eq!(m.series.len(), 5);
        assert_eq!(m.series[3].phase, Phase::Steady);
        assert_eq!(m.counts["wire.in.packets.audio"], 15);
        assert_eq!(m.intervals.len(), 5);
        assert_eq!(m.intervals[0].histograms["latency"].count(), 300);
    }

    #[test]
    fn join_phases_and_failures_are_counted_per_phase() {
        let mut r = Recorder::new();
        r.record(Record::Join {
            phase: JoinPhase::FirstMedia,
            scheduled: ms(1_000),
            at: ms(1_450),
        });
        r.record(Record::JoinFailed {
            phase: JoinPhase::IceConnected,
        });
        let mut agg = Aggregator::new(
            Arc::new(HotCounters::default()),
            phases(),
            HealthLimits::for_cores(1),
        );
        agg.absorb(r.take());
        let row = agg.seal(Tick::default()).clone();
        assert_eq!((row.joins, row.join_failures), (1, 1));
        let m = agg.finish();
        assert_eq!(m.counts["join_failed.ice_connected"], 1);
        let p = m.histograms["join.first_media"].quantile_us(0.5).unwrap();
        assert!((450_000..=450_500).contains(&p));
    }

    #[test]
    fn stream_loss_is_kept_per_stream_in_ppm() {
        let mut r = Recorder::new();
        r.record(Record::StreamLoss {
            kind: TrackKind::Screen,
            expected: 150,
            lost: 3,
        });
        r.record(Record::StreamLoss {
            kind: TrackKind::Screen,
            expected: 0,
            lost: 0,
        });
        let mut agg = Aggregator::new(
            Arc::new(HotCounters::default()),
            phases(),
            HealthLimits::for_cores(1),
        );
        agg.absorb(r.take());
        let m = agg.finish();
        let h = &m.histograms["loss.screen"];
        assert_eq!(
            h.count(),
            1,
            "a stream with nothing expected is not a sample"
        );
        // 3 / 150 = 2 % = 20 000 ppm (3 significant digits).
        let v = h.max_us().unwrap();
        assert!((19_984..=20_031).contains(&v), "{v}");
    }

    #[test]
    fn a_saturated_second_is_marked() {
        let mut r = Recorder::new();
        for _ in 0..100 {
            r.record(Record::LoopLag { lag: ms(30) });
        }
        let mut agg = Aggregator::new(
            Arc::new(HotCounters::default()),
            phases(),
            HealthLimits::for_cores(2),
        );
        agg.absorb(r.take());
        let row = agg.seal(Tick {
            harness_cpu_cores: Some(1.95),
            ..Tick::default()
        });
        assert_eq!(row.saturation, "cpu|loop_lag");
    }
}
