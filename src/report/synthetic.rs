//! A synthetic run: realistic results made without a target, for fixtures, report and merge tests.
//!
//! The generator drives the *real* measurement pipeline — per-session [`Record`]s into per-worker
//! [`Recorder`]s, packets into [`HotCounters`], one [`Aggregator`] sealing 1 s snapshots — with
//! traffic shaped like the published per-flow figures (≈97 kbps per forwarded audio stream,
//! ≈1.6 Mbps per screen viewer, calls-loadtest.md §2.6) and seeded noise. Only the numbers are
//! invented; the files are exactly what a real run writes, and the manifest says `synthetic: true`.
//!
//! `tests/fixtures/results-small/` is [`Synthetic::small`] written out; regenerate it with
//! `CALLSBENCH_REGENERATE_FIXTURES=1 cargo test --test report`.

use std::sync::Arc;
use std::time::Duration;

use super::files::RunResult;
use super::model::{
    EndReason, FORMAT_VERSION, FlowCounts, Host, Manifest, Mix, PhaseSeconds, ProbeSource,
    ScenarioInfo, ShardEntry, TargetInfo, Tool,
};
use crate::measure::{
    Aggregator, Flow, HealthLimits, HotCounters, JoinPhase, Record, Recorder, Tick, TrackKind,
    WireOverhead,
};
use crate::plan::flow::CallMix;
use crate::scenario::PhaseTimes;
use crate::scenario::seed::Rng;

/// UNIX second the synthetic runs start at (fixed so fixtures are byte-stable).
pub const START_UNIX_S: u64 = 1_763_800_000;

/// How to synthesise a run.
#[derive(Debug, Clone)]
pub struct Synthetic {
    /// Noise seed.
    pub seed: u64,
    /// Calls in the whole scenario.
    pub calls: u32,
    /// Users per call.
    pub users_per_call: u32,
    /// Speakers per call.
    pub unmuted_per_call: u32,
    /// Calls with a screen share (the first ones).
    pub screen_calls: u32,
    /// Seconds of join ramp, settle, steady and leave.
    pub ramp_s: u64,
    pub settle_s: u64,
    pub steady_s: u64,
    pub leave_s: u64,
    /// Multiplies target CPU (1.0 = baseline; 1.2 plants a 20 % regression).
    pub cpu_scale: f64,
    /// Stop after this many seconds (a partial run), if set.
    pub stop_after_s: Option<u64>,
    /// This shard of `count` takes calls `i, i+count, …`; `None` = unsharded.
    pub shard: Option<(u32, u32)>,
    /// Threshold expressions to evaluate.
    pub thresholds: Vec<String>,
    /// Recording jobs: one per call for the first `jobs` calls, over the steady window.
    pub jobs: u32,
}

impl Synthetic {
    /// The committed fixture: 4 calls × 5 users, 2 unmuted, one screen share, 50 s.
    pub fn small() -> Synthetic {
        Synthetic {
            seed: 7,
            calls: 4,
            users_per_call: 5,
            unmuted_per_call: 2,
            screen_calls: 1,
            ramp_s: 10,
            settle_s: 5,
            steady_s: 30,
            leave_s: 5,
            cpu_scale: 1.0,
            stop_after_s: None,
            shard: None,
            thresholds: vec![
                "join_time.p99 <= 3s".into(),
                "first_media.p99 <= 5s".into(),
                "latency.p99 <= 200ms".into(),
                "loss < 1%".into(),
                "join_failures <= 0%".into(),
            ],
            jobs: 0,
        }
    }

    fn phases(&self) -> PhaseTimes {
        let s = Duration::from_secs;
        PhaseTimes {
            join_end: s(self.ramp_s),
            steady_start: s(self.ramp_s + self.settle_s),
            steady_end: s(self.ramp_s + self.settle_s + self.steady_s),
            end: s(self.ramp_s + self.settle_s + self.steady_s + self.leave_s),
        }
    }

    fn my_calls(&self) -> Vec<u32> {
        match self.shard {
            None => (0..self.calls).collect(),
            Some((i, n)) => (0..self.calls).filter(|c| c % n == i).collect(),
        }
    }

    /// Runs the generator.
    pub fn generate(&self) -> RunResult {
        let mut rng = Rng::new(self.seed);
        let mut noise = move |spread: f64| {
            // Uniform in [1 − spread, 1 + spread].
            let u = rng.next_u64() as f64 / u64::MAX as f64;
            1.0 + spread * (2.0 * u - 1.0)
        };
        let phases = self.phases();
        let counters = Arc::new(HotCounters::new(WireOverhead::default()));
        let mut agg = Aggregator::new(counters.clone(), phases, HealthLimits::for_cores(2));
        let calls = self.my_calls();
        let n = self.users_per_call;
        let sessions: Vec<(u32, u32)> = calls
            .iter()
            .flat_map(|c| (0..n).map(move |p| (*c, p)))
            .collect();
        let total_sessions = u64::from(self.calls * n);
        // Join times spread evenly over the ramp (whole-run order, so shards interleave).
        let join_at = |c: u32, p: u32| {
            let idx = u64::from(c * n + p);
            Duration::from_micros(idx * self.ramp_s * 1_000_000 / total_sessions)
        };
        let leave_start = phases.steady_end;
        let leave_at = |c: u32, p: u32| {
            let idx = u64::from(c * n + p);
            leave_start + Duration::from_micros(idx * self.leave_s * 1_000_000 / total_sessions)
        };
        let end_s = self.stop_after_s.unwrap_or(phases.end.as_secs() + 1);
        let probes_server = self.shard.is_none_or(|(i, _)| i == 0);
        let mut recorders = [Recorder::new(), Recorder::new()];
        // (submitted, running, done) per recorded call, drawn once.
        let jobs: Vec<(Duration, Duration, Duration)> = calls
            .iter()
            .filter(|c| **c < self.jobs)
            .map(|c| {
                let submitted = phases.steady_start + Duration::from_millis(u64::from(*c) * 700);
                let started = submitted + Duration::from_millis((2_500.0 * noise(0.3)) as u64);
                let ended =
                    phases.steady_end + Duration::from_millis((1_500.0 * noise(0.3)) as u64);
                (submitted, started, ended)
            })
            .collect();
        for t in 0..end_s {
            let sec = Duration::from_secs(t);
            let next = sec + Duration::from_secs(1);
            for (k, (c, p)) in sessions.iter().enumerate() {
                let rec = &mut recorders[k % 2];
                let j = join_at(*c, *p);
                if j >= sec && j < next {
                    let mut at = j;
                    for (phase, ms) in [
                        (JoinPhase::Sent, 0.3),
                        (JoinPhase::Offer, 18.0),
                        (JoinPhase::Answer, 3.0),
                        (JoinPhase::IceConnected, 45.0),
                        (JoinPhase::DcOpen, 30.0),
                        (JoinPhase::FirstMedia, 60.0),
                    ] {
                        at += Duration::from_micros((ms * 1000.0 * noise(0.6)) as u64);
                        rec.record(Record::Join {
                            phase,
                            scheduled: j,
                            at,
                        });
                    }
                    rec.record(Record::SessionUp);
                }
                let l = leave_at(*c, *p);
                if l >= sec && l < next {
                    rec.record(Record::SessionDown);
                }
            }
            // Media between connected sessions of each call.
            let mut forwarded_audio = 0u64;
            let mut viewers = 0u64;
            let mut connected_total = 0u64;
            for c in &calls {
                let live: Vec<u32> = (0..n)
                    .filter(|p| join_at(*c, *p) < sec && leave_at(*c, *p) >= next)
                    .collect();
                connected_total += live.len() as u64;
                let others = live.len().saturating_sub(1) as u64;
                let speakers = live.iter().filter(|p| **p < self.unmuted_per_call).count() as u64;
                let sharer = *c < self.screen_calls && live.contains(&0);
                forwarded_audio += speakers * others;
                // Audio: 50 packets/s of ≈187 B UDP payload (Opus + RTP + SRTP) per stream.
                for _ in 0..speakers * 50 {
                    counters.sent(Flow::Media(TrackKind::Audio), 187);
                }
                for _ in 0..speakers * others * 50 {
                    counters.received(Flow::Media(TrackKind::Audio), 187);
                }
                if sharer {
                    viewers += others;
                    // Screen: ≈1.6 Mbps as 150 packets/s of ≈1290 B.
                    let pkts = (150.0 * noise(0.05)) as u64;
                    for _ in 0..pkts {
                        counters.sent(Flow::Media(TrackKind::Screen), 1290);
                    }
                    for _ in 0..pkts * others {
                        counters.received(Flow::Media(TrackKind::Screen), 1290);
                    }
                }
                // RTCP and keep-alives: ≈4 packets/s of 80 B per session each way.
                for _ in 0..live.len() * 4 {
                    counters.sent(Flow::Control, 80);
                    counters.received(Flow::Control, 80);
                }
                let rec = &mut recorders[(*c % 2) as usize];
                for s in 0..speakers * others {
                    for i in 0..50u64 {
                        let intended = sec + Duration::from_millis(i * 20);
                        let one_way = 1_500.0 + 400.0 * (s % 3) as f64;
                        rec.record(Record::Latency {
                            kind: TrackKind::Audio,
                            intended_send: intended,
                            received: intended
                                + Duration::from_micros((one_way * noise(0.5)) as u64),
                        });
                    }
                    // One stream in seven sees a little loss, the rest none.
                    let lost = if s % 7 == 3 {
                        (noise(1.0) * 1.5) as u64
                    } else {
                        0
                    };
                    rec.record(Record::StreamLoss {
                        kind: TrackKind::Audio,
                        expected: 50,
                        lost,
                    });
                    rec.record(Record::Jitter {
                        kind: TrackKind::Audio,
                        jitter: Duration::from_micros((900.0 * noise(0.7)) as u64),
                    });
                }
                if sharer {
                    for _ in 0..others {
                        for i in 0..30u64 {
                            let intended = sec + Duration::from_micros(i * 33_333);
                            rec.record(Record::Latency {
                                kind: TrackKind::Screen,
                                intended_send: intended,
                                received: intended
                                    + Duration::from_micros((4_000.0 * noise(0.6)) as u64),
                            });
                        }
                        rec.record(Record::StreamLoss {
                            kind: TrackKind::Screen,
                            expected: 150,
                            lost: (noise(1.0) * 1.2) as u64,
                        });
                        rec.record(Record::Jitter {
                            kind: TrackKind::Screen,
                            jitter: Duration::from_micros((2_500.0 * noise(0.6)) as u64),
                        });
                    }
                    if t % 17 == 9 {
                        rec.record(Record::Freeze {
                            kind: TrackKind::Screen,
                            gap: Duration::from_millis(620),
                        });
                    }
                }
                let expected = (speakers * others * 50) + if sharer { others * 150 } else { 0 };
                // ≈0.15 % loss, varying by second.
                let lost = (expected * 3 + t) / 2000;
                counters.media_quality(TrackKind::Audio, expected, lost);
            }
            for &(submitted, started, ended) in &jobs {
                let rec = &mut recorders[0];
                if started >= sec && started < next {
                    rec.record(Record::JobStarted { submitted, started });
                }
                if ended >= sec && ended < next {
                    rec.record(Record::JobEnded {
                        submitted,
                        ended,
                        succeeded: true,
                    });
                }
            }
            for (i, rec) in recorders.iter_mut().enumerate() {
                for k in 0..50u64 {
                    rec.record(Record::LoopLag {
                        lag: Duration::from_micros(((200 + 40 * k) as f64 * noise(0.5)) as u64),
                    });
                    rec.record(Record::PacingError {
                        error: Duration::from_micros(((100 + 20 * k) as f64 * noise(0.5)) as u64),
                    });
                }
                let _ = i;
                agg.absorb(rec.take());
            }
            // Target cost: per session, per inbound stream and per forwarded stream (§2.6 shape).
            let cpu = (0.03
                + 0.004 * connected_total as f64
                + 0.0011 * forwarded_audio as f64
                + 0.0009 * viewers as f64 * 16.0)
                * self.cpu_scale
                * noise(0.08);
            let rss = 48_000_000 + 900_000 * connected_total + 30_000 * t;
            agg.seal(Tick {
                t_s: t,
                unix_s: START_UNIX_S + t,
                server_cpu_cores: probes_server.then_some(cpu),
                server_rss_bytes: probes_server.then_some(rss),
                harness_cpu_cores: Some(0.05 + 0.002 * connected_total as f64 * noise(0.2)),
                ..Tick::default()
            });
        }
        let measured = agg.finish();

        let mix = CallMix::new(
            self.calls,
            self.users_per_call,
            self.unmuted_per_call,
            self.screen_calls,
            0,
        )
        .map(Mix::from)
        .unwrap_or(Mix {
            calls: self.calls,
            users_per_call: self.users_per_call,
            unmuted_per_call: self.unmuted_per_call,
            screen_calls: self.screen_calls,
            video_per_call: 0,
            uniform: false,
        });
        let mut flows = FlowCounts::default();
        for c in &calls {
            let one = CallMix::new(
                1,
                n,
                self.unmuted_per_call,
                u32::from(*c < self.screen_calls),
                0,
            )
            .map(|m| FlowCounts::from(m.flows()))
            .unwrap_or_default();
            flows = flows.plus(one);
        }
        let complete = self.stop_after_s.is_none();
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            tool: Tool::this(),
            synthetic: true,
            host: Host {
                hostname: format!("synthetic-{}", self.shard.map_or(0, |s| s.0)),
                cpu_model: "synthetic".into(),
                cores: 2,
                kernel: "synthetic".into(),
                os: "linux-x86_64".into(),
            },
            scenario: ScenarioInfo {
                name: "synthetic-small".into(),
                file: None,
                seed: self.seed,
                thresholds: self.thresholds.clone(),
                mix,
                flows,
                phases: PhaseSeconds::from(phases),
            },
            target: TargetInfo {
                kind: "embedded".into(),
                version: Some(format!("callsref {}", env!("CARGO_PKG_VERSION"))),
                address: Some("127.0.0.1".into()),
                vcpus: Some(2),
                probe: if probes_server {
                    ProbeSource::Proc
                } else {
                    ProbeSource::None
                },
            },
            wire: WireOverhead::default(),
            started_unix_ms: START_UNIX_S * 1000,
            ended_unix_ms: (START_UNIX_S + end_s) * 1000,
            complete,
            end_reason: if complete {
                EndReason::Completed
            } else {
                EndReason::Interrupted
            },
            end_detail: (!complete).then(|| "stopped by Ctrl-C".to_owned()),
            shards: self
                .shard
                .map(|(index, count)| ShardEntry {
                    index,
                    count,
                    hostname: format!("synthetic-{index}"),
                    server_probes: probes_server,
                    source: None,
                })
                .into_iter()
                .collect(),
        };
        RunResult::new(manifest, measured)
    }
}
