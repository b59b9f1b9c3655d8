//! `summary.json`: the figures a person reads, computed from the manifest, the 1 s series and the
//! run-wide histograms and counts. A pure function of those inputs, so merged shards and re-read
//! directories recompute exactly the same summary.
//!
//! Averages (CPU, memory, bandwidth, per-flow rates) are over the steady-state window only; join and
//! media distributions are over the whole run. The shape is fixed by the committed
//! `reports/schema/summary.schema.json`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::model::{EndReason, Manifest};
use crate::measure::{Counts, Histograms, JoinPhase, LatencyHistogram, Saturation, Snapshot};
use crate::scenario::{Limit, Metric, Percent, Stat, Threshold};

/// The seconds averages are taken over.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SteadyWindow {
    /// First second of the window (inclusive), from the run start.
    pub start_s: u64,
    /// End of the window (exclusive).
    pub end_s: u64,
    /// Series rows inside it.
    pub seconds: u64,
}

/// The published benchmark table's columns for this run (calls-loadtest.md §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkRow {
    /// Calls.
    pub calls: u32,
    /// Users per call.
    pub users_per_call: u32,
    /// Unmuted per call.
    pub unmuted_per_call: u32,
    /// Calls with a screen share.
    pub screen_sharing: u32,
    /// Average target CPU in cores over the steady window.
    pub cpu_avg_cores: Option<f64>,
    /// The same as a percentage of the target's vCPUs (how the tables state it).
    pub cpu_avg_percent: Option<f64>,
    /// Average target resident memory, bytes.
    pub memory_avg_bytes: Option<u64>,
    /// Average target ingress, wire bits/s.
    pub bandwidth_in_bps: Option<f64>,
    /// Average target egress, wire bits/s.
    pub bandwidth_out_bps: Option<f64>,
}

/// Quality of experience, as the participants saw it. Durations are whole microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Qoe {
    /// Sessions that completed their join (first media on every expected track).
    pub joins: u64,
    /// Median scheduled-join → first media, µs.
    pub join_p50_us: Option<u64>,
    /// 99th percentile scheduled-join → first media, µs.
    pub join_p99_us: Option<u64>,
    /// Median scheduled-join → ICE connected, µs.
    pub connect_p50_us: Option<u64>,
    /// 99th percentile scheduled-join → ICE connected, µs.
    pub connect_p99_us: Option<u64>,
    /// Sessions that gave up joining.
    pub join_failures: u64,
    /// Failures by the phase never reached (`offer`, `ice_connected`, …).
    pub join_failures_by_phase: BTreeMap<String, u64>,
    /// Lost ÷ expected media packets over the run.
    pub loss: Option<f64>,
    /// Median RFC 3550 jitter, µs.
    pub jitter_p50_us: Option<u64>,
    /// 99th percentile RFC 3550 jitter, µs.
    pub jitter_p99_us: Option<u64>,
    /// Median one-way latency (intended send → receive), µs.
    pub latency_p50_us: Option<u64>,
    /// 99th percentile one-way latency, µs.
    pub latency_p99_us: Option<u64>,
    /// Video and screen freezes (> 500 ms without a frame).
    pub freezes: u64,
    /// Median renegotiation round trip, µs.
    pub renegotiation_p50_us: Option<u64>,
    /// Median VAD event latency, µs.
    pub vad_p50_us: Option<u64>,
    /// Sessions that dropped without a planned leave.
    pub disconnects: u64,
    /// Every join phase in order (`sent`, `offer`, `answer`, `ice_connected`, `dc_open`,
    /// `first_media`), each from the session's scheduled join. Absent in older files.
    #[serde(default)]
    pub join_phases: Vec<PhaseFigures>,
    /// Own renegotiations (our offer → rtcd's answer applied) measured.
    #[serde(default)]
    pub renegotiations: u64,
    /// 99th percentile own renegotiation round trip, µs.
    #[serde(default)]
    pub renegotiation_p99_us: Option<u64>,
    /// Server offers answered (server-initiated renegotiations).
    #[serde(default)]
    pub server_offers: u64,
    /// Median server offer arrived → our answer handed to the plugin connection, µs.
    #[serde(default)]
    pub server_offer_answer_p50_us: Option<u64>,
    /// 99th percentile of the same, µs.
    #[serde(default)]
    pub server_offer_answer_p99_us: Option<u64>,
    /// VAD `on` events matched to the speaker's packet that turned voice on.
    #[serde(default)]
    pub vad_events: u64,
    /// 99th percentile VAD event latency, µs.
    #[serde(default)]
    pub vad_p99_us: Option<u64>,
    /// Share of the received voice packets whose send instant was known, so whose one-way
    /// latency is in the figures: 1 for a whole run; below 1 when a sharded run split a call's
    /// speakers and receivers over harness processes (send instants are per process).
    #[serde(default)]
    pub latency_coverage: Option<f64>,
    /// Says what the latency figures cover when `latency_coverage` is below 1.
    #[serde(default)]
    pub latency_note: Option<String>,
}

/// One join phase: sessions that reached it and how long after their scheduled join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseFigures {
    /// Phase name (`sent`, `offer`, …).
    pub phase: String,
    /// Sessions that reached the phase.
    pub count: u64,
    /// Median scheduled join → phase, µs.
    pub p50_us: Option<u64>,
    /// 99th percentile scheduled join → phase, µs.
    pub p99_us: Option<u64>,
}

/// Per-flow figures, comparable with calls-loadtest.md §2.5–2.6.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PerFlow {
    /// Sessions.
    pub sessions: u64,
    /// Audio streams the target forwards.
    pub forwarded_audio: u64,
    /// Screen streams the target forwards.
    pub screen_viewers: u64,
    /// Egress kbps per forwarded audio stream (wire, steady window).
    pub kbps_per_forwarded_audio: Option<f64>,
    /// Egress Mbps per screen viewer.
    pub mbps_per_screen_viewer: Option<f64>,
    /// Ingress kbps per audio source.
    pub kbps_per_audio_source: Option<f64>,
    /// Ingress Mbps per screen sharer.
    pub mbps_per_screen_sharer: Option<f64>,
}

/// Recording and transcription jobs (all zero and null for a run without jobs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Jobs {
    /// Jobs that started running.
    pub started: u64,
    /// Jobs that ended successfully.
    pub completed: u64,
    /// Jobs that failed or were lost.
    pub failed: u64,
    /// Median submit → running, µs.
    pub start_p50_us: Option<u64>,
    /// 99th percentile submit → running, µs.
    pub start_p99_us: Option<u64>,
    /// Median submit → done, successful jobs, µs.
    pub total_p50_us: Option<u64>,
    /// 99th percentile submit → done, µs.
    pub total_p99_us: Option<u64>,
}

/// Whether the harness kept up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfHealth {
    /// True when more seconds of the steady window broke a self-health limit than an isolated
    /// stall explains: more than one, or more than a twentieth of the window's seconds.
    pub saturated: bool,
    /// Seconds of the steady window that broke a limit.
    pub saturated_seconds: u64,
    /// Limits those seconds broke (`cpu`, `loop_lag`, `pacing`, `thread_cpu`, `udp_drops`),
    /// listed even when too few seconds broke them to call the run saturated.
    pub reasons: Vec<String>,
    /// Highest harness CPU in a second, cores.
    pub harness_cpu_max_cores: Option<f64>,
    /// Run-wide p99 event-loop lag, µs.
    pub loop_lag_p99_us: Option<u64>,
    /// Run-wide p99 pacing error, µs.
    pub pacing_error_p99_us: Option<u64>,
    /// Figures a saturated harness makes unreliable (empty when healthy).
    pub affected: Vec<String>,
    /// Highest CPU of one engine event-loop thread in a second, cores (absent in older files).
    #[serde(default)]
    pub engine_thread_cpu_max_cores: Option<f64>,
    /// Datagrams dropped on receive at the harness's own sockets over the run (its own lateness;
    /// a reason for `udp_drops`).
    #[serde(default)]
    pub harness_udp_drops: Option<u64>,
    /// Datagrams dropped on receive at the embedded target's sockets over the run (the target
    /// did not keep up; not the harness's saturation).
    #[serde(default)]
    pub target_udp_drops: Option<u64>,
    /// Host-wide UDP receive errors over the run (`/proc/net/snmp` `Udp: InErrors`, every
    /// process in the network namespace).
    #[serde(default)]
    pub host_udp_receive_errors: Option<u64>,
}

/// One scenario threshold and how the run did against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// As written (`"join_time.p99 <= 3s"`).
    pub threshold: String,
    /// The measured value in the threshold's unit, or `None` when nothing was measured.
    pub measured: Option<String>,
    /// Whether it held (never true without a measurement).
    pub passed: bool,
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Results format version.
    pub format_version: u32,
    /// Scenario name.
    pub scenario: String,
    /// True for generated (fixture) results.
    pub synthetic: bool,
    /// False when the run ended early; every figure is then partial.
    pub complete: bool,
    /// Why the run ended.
    pub end_reason: EndReason,
    /// Wall-clock duration, seconds.
    pub duration_s: f64,
    /// The averaging window.
    pub steady: SteadyWindow,
    /// The benchmark-table row.
    pub benchmark: BenchmarkRow,
    /// Quality of experience.
    pub qoe: Qoe,
    /// Per-flow figures.
    pub per_flow: PerFlow,
    /// Jobs.
    pub jobs: Jobs,
    /// Harness self-health.
    pub self_health: SelfHealth,
    /// Scenario thresholds.
    pub thresholds: Vec<ThresholdResult>,
    /// Complete, healthy and every threshold held.
    pub passed: bool,
    /// Job loads only (absent for call runs): what a run of recording jobs against an offloader
    /// measured. A failed job load fails the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_load: Option<super::jobload::JobLoadSummary>,
    /// One row per rtcd host when calls were placed over hosts (absent for the embedded target).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<super::hosts::HostRow>,
    /// Sessions the target still held for the run's calls after the last leave (0 is clean;
    /// counted from `GET /calls/{id}/sessions`); null when not checked.
    #[serde(default)]
    pub target_sessions_after: Option<u64>,
    /// Per impairment group (and `unimpaired`): loss and one-way latency of the streams the
    /// group's sessions received; empty for a scenario without `[[impairment]]`.
    #[serde(default)]
    pub impairment_groups: Vec<GroupFigures>,
}

/// What the sessions of one impairment group received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupFigures {
    /// Group name (`unimpaired` for the sessions in no group).
    pub name: String,
    /// Voice packets expected on the group's received streams (video is left out: what the
    /// network dropped is resent on NACK, so its residual loss is not the network's loss).
    pub expected: u64,
    /// Of those, lost.
    pub lost: u64,
    /// lost / expected.
    pub loss: Option<f64>,
    /// One-way audio latency of the group's received packets.
    pub latency_p50_us: Option<u64>,
    pub latency_p99_us: Option<u64>,
}

/// The impairment groups recorded as `group.<name>.expected|lost` counts and
/// `group.<name>.latency` histograms, by name.
fn impairment_groups(histograms: &Histograms, counts: &Counts) -> Vec<GroupFigures> {
    counts
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("group.")?.strip_suffix(".expected")?, *v)))
        .map(|(name, expected)| {
            let lost = counts
                .get(&format!("group.{name}.lost"))
                .copied()
                .unwrap_or(0);
            let latency = histograms.get(&format!("group.{name}.latency"));
            GroupFigures {
                name: name.to_owned(),
                expected,
                lost,
                loss: (expected > 0).then(|| lost as f64 / expected as f64),
                latency_p50_us: latency.and_then(|h| h.quantile_us(0.5)),
                latency_p99_us: latency.and_then(|h| h.quantile_us(0.99)),
            }
        })
        .collect()
}

/// The steady window: from the plan's steady start (last planned join + settle) to its first leave,
/// clipped to the recorded seconds. When sessions were still joining (or failing to) in a second
/// after the one holding the last planned join, the window starts `settle` after that second
/// instead: averages must not include a ramp that ran late.
pub fn steady_window(manifest: &Manifest, series: &[Snapshot]) -> SteadyWindow {
    let p = &manifest.scenario.phases;
    let plan_start = p.steady_start_s.max(0.0).ceil() as u64;
    let plan_end = p.steady_end_s.max(0.0).floor() as u64;
    let last_planned_join_second = p.join_end_s.max(0.0).floor() as u64;
    let late_join_end = series
        .iter()
        .filter(|r| r.joins > 0 || r.join_failures > 0)
        .filter(|r| r.t_s > last_planned_join_second && (r.t_s as f64) < p.steady_end_s)
        .map(|r| r.t_s + 1)
        .max();
    let start = match late_join_end {
        Some(end) => plan_start.max(end + p.settle_s().ceil() as u64),
        None => plan_start,
    };
    let recorded_end = series.iter().map(|r| r.t_s + 1).max().unwrap_or(0);
    let end = plan_end.min(recorded_end).max(start);
    let seconds = series
        .iter()
        .filter(|r| (start..end).contains(&r.t_s))
        .count() as u64;
    SteadyWindow {
        start_s: start,
        end_s: end,
        seconds,
    }
}

/// Sum of a column over the rows that have it; `None` when no row does.
fn sum_of(series: &[Snapshot], column: impl Fn(&Snapshot) -> Option<u64>) -> Option<u64> {
    series
        .iter()
        .filter_map(column)
        .fold(None, |s, v| Some(s.unwrap_or(0) + v))
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Sum of the named histograms that exist.
pub fn merged(histograms: &Histograms, prefix: &str) -> LatencyHistogram {
    let mut all = LatencyHistogram::new();
    for (name, h) in histograms {
        if name == prefix
            || name
                .strip_prefix(prefix)
                .is_some_and(|r| r.starts_with('.'))
        {
            all.add(h);
        }
    }
    all
}

fn count(counts: &Counts, prefix: &str) -> u64 {
    counts
        .iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(_, v)| *v)
        .sum()
}

impl Summary {
    /// Computes the summary of a run.
    pub fn compute(
        manifest: &Manifest,
        series: &[Snapshot],
        histograms: &Histograms,
        counts: &Counts,
    ) -> Summary {
        let steady = steady_window(manifest, series);
        let rows: Vec<&Snapshot> = series
            .iter()
            .filter(|r| (steady.start_s..steady.end_s).contains(&r.t_s))
            .collect();
        let avg = |f: &dyn Fn(&Snapshot) -> Option<f64>| mean(rows.iter().filter_map(|r| f(r)));

        let cpu = avg(&|r| r.server_cpu_cores);
        let bw_in = avg(&|r| Some(r.bw_in_bps));
        let bw_out = avg(&|r| Some(r.bw_out_bps));
        let mix = manifest.scenario.mix;
        let benchmark = BenchmarkRow {
            calls: mix.calls,
            users_per_call: mix.users_per_call,
            unmuted_per_call: mix.unmuted_per_call,
            screen_sharing: mix.screen_calls,
            cpu_avg_cores: cpu,
            cpu_avg_percent: cpu
                .zip(manifest.target.vcpus.filter(|v| *v > 0))
                .map(|(c, v)| 100.0 * c / f64::from(v)),
            memory_avg_bytes: avg(&|r| r.server_rss_bytes.map(|b| b as f64)).map(|b| b as u64),
            bandwidth_in_bps: bw_in,
            bandwidth_out_bps: bw_out,
        };

        let flows = manifest.scenario.flows;
        let per = |rate: Option<f64>, n: u64, unit: f64| {
            rate.filter(|r| *r > 0.0 && n > 0)
                .map(|r| r / n as f64 / unit)
        };
        let per_flow = PerFlow {
            sessions: flows.sessions,
            forwarded_audio: flows.forwarded_audio,
            screen_viewers: flows.screen_viewers,
            kbps_per_forwarded_audio: per(
                avg(&|r| Some(r.audio_out_bps)),
                flows.forwarded_audio,
                1e3,
            ),
            mbps_per_screen_viewer: per(
                avg(&|r| Some(r.screen_out_bps)),
                flows.screen_viewers,
                1e6,
            ),
            kbps_per_audio_source: per(avg(&|r| Some(r.audio_in_bps)), flows.audio_sources, 1e3),
            mbps_per_screen_sharer: per(avg(&|r| Some(r.screen_in_bps)), flows.screen_sharers, 1e6),
        };

        let join = histograms
            .get(&format!("join.{}", JoinPhase::FirstMedia.name()))
            .cloned()
            .unwrap_or_default();
        let connect = histograms
            .get(&format!("join.{}", JoinPhase::IceConnected.name()))
            .cloned()
            .unwrap_or_default();
        let latency = merged(histograms, "latency");
        let jitter = merged(histograms, "jitter");
        let expected = count(counts, "media.expected.");
        let lost = count(counts, "media.lost.");
        let join_failures_by_phase: BTreeMap<String, u64> = counts
            .iter()
            .filter_map(|(n, v)| Some((n.strip_prefix("join_failed.")?.to_owned(), *v)))
            .filter(|(_, v)| *v > 0)
            .collect();
        let matched = counts.get("latency.voice_matched").copied();
        let unmatched = counts.get("latency.voice_unmatched").copied().unwrap_or(0);
        let latency_coverage = matched
            .filter(|m| m + unmatched > 0)
            .map(|m| m as f64 / (m + unmatched) as f64);
        let qoe = Qoe {
            joins: join.count(),
            join_p50_us: join.quantile_us(0.5),
            join_p99_us: join.quantile_us(0.99),
            connect_p50_us: connect.quantile_us(0.5),
            connect_p99_us: connect.quantile_us(0.99),
            join_failures: join_failures_by_phase.values().sum(),
            join_failures_by_phase,
            loss: (expected > 0).then(|| lost as f64 / expected as f64),
            jitter_p50_us: jitter.quantile_us(0.5),
            jitter_p99_us: jitter.quantile_us(0.99),
            latency_p50_us: latency.quantile_us(0.5),
            latency_p99_us: latency.quantile_us(0.99),
            freezes: merged(histograms, "freeze").count(),
            renegotiation_p50_us: histograms
                .get("renegotiation")
                .and_then(|h| h.quantile_us(0.5)),
            vad_p50_us: histograms.get("vad").and_then(|h| h.quantile_us(0.5)),
            disconnects: counts.get("disconnects").copied().unwrap_or(0),
            join_phases: JoinPhase::ALL
                .iter()
                .map(|p| {
                    let h = histograms.get(&format!("join.{}", p.name()));
                    PhaseFigures {
                        phase: p.name().to_owned(),
                        count: h.map_or(0, LatencyHistogram::count),
                        p50_us: h.and_then(|h| h.quantile_us(0.5)),
                        p99_us: h.and_then(|h| h.quantile_us(0.99)),
                    }
                })
                .collect(),
            renegotiations: histograms
                .get("renegotiation")
                .map_or(0, LatencyHistogram::count),
            renegotiation_p99_us: histograms
                .get("renegotiation")
                .and_then(|h| h.quantile_us(0.99)),
            server_offers: histograms
                .get("renegotiation.server_offer")
                .map_or(0, LatencyHistogram::count),
            server_offer_answer_p50_us: histograms
                .get("renegotiation.server_offer")
                .and_then(|h| h.quantile_us(0.5)),
            server_offer_answer_p99_us: histograms
                .get("renegotiation.server_offer")
                .and_then(|h| h.quantile_us(0.99)),
            latency_coverage,
            latency_note: latency_coverage.filter(|c| *c < 1.0).map(|c| {
                format!(
                    "one-way latency covers {:.1} % of the received voice packets: only those whose \
                     speaker ran in the same harness process have a send instant to look up{}",
                    c * 100.0,
                    if manifest.shards.is_empty() {
                        ""
                    } else {
                        " (a sharded run splits large calls over processes)"
                    }
                )
            }),
            vad_events: histograms.get("vad").map_or(0, LatencyHistogram::count),
            vad_p99_us: histograms.get("vad").and_then(|h| h.quantile_us(0.99)),
        };

        let h = |name: &str, q: f64| histograms.get(name).and_then(|h| h.quantile_us(q));
        let failed = counts.get("jobs.failed").copied().unwrap_or(0);
        let jobs = Jobs {
            started: counts.get("jobs.started").copied().unwrap_or(0),
            completed: counts
                .get("jobs.ended")
                .copied()
                .unwrap_or(0)
                .saturating_sub(failed),
            failed,
            start_p50_us: h("job.start", 0.5),
            start_p99_us: h("job.start", 0.99),
            total_p50_us: h("job.total", 0.5),
            total_p99_us: h("job.total", 0.99),
        };

        let mut verdict = Saturation::default();
        let mut saturated_seconds = 0;
        for r in &rows {
            // An unreadable flag counts as saturated: better a false alarm than a false figure.
            let s = Saturation::parse(&r.saturation).unwrap_or(Saturation::all());
            if s.any() {
                saturated_seconds += 1;
            }
            verdict = verdict.or(s);
        }
        // One second over a limit in a window of up to 40 (a twentieth of a longer one) is an
        // isolated stall, e.g. the OS scheduling something else on a busy host: it barely moves
        // figures averaged over the window, and failing a run for it would make every run on a
        // shared host a coin toss. More than that is a harness that does not keep up.
        let tolerated = (steady.seconds / 20).max(1);
        let saturated = saturated_seconds > tolerated;
        let self_health = SelfHealth {
            saturated,
            saturated_seconds,
            reasons: verdict.reasons().into_iter().map(String::from).collect(),
            harness_cpu_max_cores: series
                .iter()
                .filter_map(|r| r.harness_cpu_cores)
                .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c)))),
            loop_lag_p99_us: histograms
                .get("health.loop_lag")
                .and_then(|h| h.quantile_us(0.99)),
            pacing_error_p99_us: histograms
                .get("health.pacing_error")
                .and_then(|h| h.quantile_us(0.99)),
            engine_thread_cpu_max_cores: series
                .iter()
                .filter_map(|r| r.engine_thread_cpu_max_cores)
                .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c)))),
            harness_udp_drops: sum_of(series, |r| r.harness_udp_drops),
            target_udp_drops: sum_of(series, |r| r.target_udp_drops),
            host_udp_receive_errors: sum_of(series, |r| r.udp_receive_errors),
            affected: if saturated {
                ["bandwidth", "latency", "jitter", "loss", "join"]
                    .map(String::from)
                    .to_vec()
            } else {
                Vec::new()
            },
        };

        let thresholds: Vec<ThresholdResult> = manifest
            .scenario
            .thresholds
            .iter()
            .map(|text| {
                evaluate(
                    text,
                    &join,
                    &connect,
                    &latency,
                    &jitter,
                    &qoe,
                    flows.sessions,
                )
            })
            .collect();
        let job_load = super::jobload::JobLoadSummary::compute(series, histograms, counts);
        let passed = manifest.complete
            && !saturated
            && thresholds.iter().all(|t| t.passed)
            && job_load.as_ref().is_none_or(|j| j.passed);
        let duration_ms = manifest
            .ended_unix_ms
            .saturating_sub(manifest.started_unix_ms);
        Summary {
            format_version: super::model::FORMAT_VERSION,
            scenario: manifest.scenario.name.clone(),
            synthetic: manifest.synthetic,
            complete: manifest.complete,
            end_reason: manifest.end_reason,
            duration_s: duration_ms as f64 / 1000.0,
            steady,
            benchmark,
            qoe,
            per_flow,
            jobs,
            self_health,
            thresholds,
            passed,
            job_load,
            hosts: super::hosts::rows(counts),
            target_sessions_after: counts.get("target.sessions_after_run").copied(),
            impairment_groups: impairment_groups(histograms, counts),
        }
    }
}

fn stat_of(h: &LatencyHistogram, stat: Stat) -> Option<Duration> {
    match stat.quantile() {
        Some(q) => h.quantile(q),
        None => h
            .mean_us()
            .map(|us| Duration::from_nanos((us * 1000.0) as u64)),
    }
}

fn percent(fraction: f64) -> Option<Limit> {
    let millionths = (fraction.clamp(0.0, 1.0) * f64::from(Percent::WHOLE)).ceil() as u32;
    Percent::from_millionths(millionths).map(Limit::Percent)
}

fn evaluate(
    text: &str,
    join: &LatencyHistogram,
    connect: &LatencyHistogram,
    latency: &LatencyHistogram,
    jitter: &LatencyHistogram,
    qoe: &Qoe,
    sessions: u64,
) -> ThresholdResult {
    let Ok(threshold) = text.parse::<Threshold>() else {
        return ThresholdResult {
            threshold: text.to_owned(),
            measured: None,
            passed: false,
        };
    };
    let measured = match threshold.metric() {
        Metric::JoinTime(s) => stat_of(connect, s).map(Limit::Duration),
        Metric::FirstMedia(s) => stat_of(join, s).map(Limit::Duration),
        Metric::Latency(s) => stat_of(latency, s).map(Limit::Duration),
        Metric::Jitter(s) => stat_of(jitter, s).map(Limit::Duration),
        // Loss is rounded *up* to a millionth so a threshold can never pass on rounding.
        Metric::Loss => qoe.loss.and_then(percent),
        Metric::JoinFailures => (sessions > 0)
            .then(|| percent(qoe.join_failures as f64 / sessions as f64))
            .flatten(),
        Metric::Disconnects => Some(Limit::Count(qoe.disconnects)),
    };
    ThresholdResult {
        threshold: threshold.to_string(),
        measured: measured.map(|m| match m {
            // Durations read as milliseconds ("77.823 ms"), not in the scenario-file spelling
            // ("77ms823us") that `Limit`'s Display round-trips.
            Limit::Duration(d) => format!("{:.3} ms", d.as_secs_f64() * 1e3),
            other => other.to_string(),
        }),
        passed: measured.is_some_and(|m| threshold.passes(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::synthetic::Synthetic;

    #[test]
    fn impairment_groups_and_target_sessions_come_from_the_counts() {
        let mut r = Synthetic::small().generate();
        assert!(r.summary.impairment_groups.is_empty());
        assert_eq!(r.summary.target_sessions_after, None);
        r.counts.insert("group.lossy.expected".into(), 2_000);
        r.counts.insert("group.lossy.lost".into(), 100);
        r.counts.insert("group.unimpaired.expected".into(), 500);
        r.counts.insert("target.sessions_after_run".into(), 0);
        let mut h = LatencyHistogram::new();
        h.record_us(51_000);
        r.histograms.insert("group.lossy.latency".into(), h);
        r.resummarise();
        let g = &r.summary.impairment_groups;
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].name.as_str(), g[0].loss), ("lossy", Some(0.05)));
        assert!(
            g[0].latency_p50_us
                .is_some_and(|us| us.abs_diff(51_000) < 100)
        );
        assert_eq!(
            (g[1].name.as_str(), g[1].lost, g[1].latency_p50_us),
            ("unimpaired", 0, None)
        );
        assert_eq!(r.summary.target_sessions_after, Some(0));
    }

    #[test]
    fn one_stalled_second_is_tolerated_two_are_not() {
        let mut r = Synthetic::small().generate();
        assert_eq!(r.summary.steady.seconds, 30);
        r.series[20].saturation = "loop_lag|pacing".into();
        r.resummarise();
        let h = &r.summary.self_health;
        assert!(!h.saturated && r.summary.passed, "{h:?}");
        assert_eq!((h.saturated_seconds, h.reasons.len()), (1, 2));
        assert!(h.affected.is_empty());
        r.series[30].saturation = "udp_drops".into();
        r.resummarise();
        let h = &r.summary.self_health;
        assert!(h.saturated && !r.summary.passed, "{h:?}");
        assert_eq!(h.reasons, ["loop_lag", "pacing", "udp_drops"]);
    }

    #[test]
    fn latency_coverage_says_what_the_latency_figures_cover() {
        let mut r = Synthetic::small().generate();
        assert_eq!(r.summary.qoe.latency_coverage, None);
        r.counts.insert("latency.voice_matched".into(), 1_000);
        r.counts.insert("latency.voice_unmatched".into(), 0);
        r.resummarise();
        assert_eq!(r.summary.qoe.latency_coverage, Some(1.0));
        assert_eq!(r.summary.qoe.latency_note, None);
        // A shard whose receivers heard another shard's speakers for three quarters of the voice.
        r.counts.insert("latency.voice_unmatched".into(), 3_000);
        r.manifest.shards = vec![crate::report::ShardEntry {
            index: 1,
            count: 2,
            hostname: "agent".into(),
            server_probes: false,
            source: None,
        }];
        r.resummarise();
        assert_eq!(r.summary.qoe.latency_coverage, Some(0.25));
        let note = r.summary.qoe.latency_note.as_deref().unwrap();
        assert!(
            note.contains("25.0 %") && note.contains("sharded"),
            "{note}"
        );
    }

    #[test]
    fn late_joins_push_the_steady_window_back() {
        let r = Synthetic::small().generate();
        let w = steady_window(&r.manifest, &r.series);
        assert_eq!((w.start_s, w.end_s, w.seconds), (15, 45, 30));
        let mut series = r.series.clone();
        // A session that only managed to join in second 17.
        series[17].joins = 1;
        let w = steady_window(&r.manifest, &series);
        assert_eq!((w.start_s, w.end_s), (18 + 5, 45));
        // Join activity in the second of the last planned join is on time.
        let mut series = r.series.clone();
        series[10].join_failures = 1;
        assert_eq!(steady_window(&r.manifest, &series).start_s, 15);
    }
}
