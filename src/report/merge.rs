//! `callsbench merge DIR… --out DIR`: one result from the shards of a distributed run.
//!
//! * Counts are summed and histograms added (exact: every shard uses the same fixed layout).
//! * Series rows are aligned on their wall-clock second (`unix_s`); rates and counts are summed,
//!   per-second percentiles are recomputed from the merged `intervals.hlog` histograms, harness CPU
//!   is the busiest agent's, and saturation flags are united.
//! * Server CPU and memory are taken from one shard only — the first (by shard index) that probed
//!   the target — so a target is never counted once per agent.
//! * The manifest lists every shard with the directory it came from.

use std::collections::BTreeMap;
use std::path::Path;

use super::files::RunResult;
use super::model::{EndReason, ProbeSource, ShardEntry};
use crate::measure::{IntervalHistograms, LatencyHistogram, Phase, Saturation, Snapshot};

/// Why shards could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    #[error(
        "{dir} is from scenario \"{found}\" seed {found_seed}, the first shard from \"{expected}\" seed {expected_seed}"
    )]
    Mismatch {
        dir: String,
        found: String,
        found_seed: u64,
        expected: String,
        expected_seed: u64,
    },
}

/// Merges shard results (with the directories they were read from, for the manifest).
pub fn merge(shards: Vec<(String, RunResult)>) -> Result<RunResult, MergeError> {
    let mut shards = shards;
    shards.sort_by_key(|(dir, r)| {
        (
            r.manifest.shards.first().map_or(0, |s| s.index),
            dir.clone(),
        )
    });
    let (_, first) = shards.first().ok_or(MergeError::Empty)?;
    let name = first.manifest.scenario.name.clone();
    let seed = first.manifest.scenario.seed;
    for (dir, r) in &shards {
        if r.manifest.scenario.name != name || r.manifest.scenario.seed != seed {
            return Err(MergeError::Mismatch {
                dir: dir.clone(),
                found: r.manifest.scenario.name.clone(),
                found_seed: r.manifest.scenario.seed,
                expected: name,
                expected_seed: seed,
            });
        }
    }
    let prober = shards.iter().position(|(_, r)| {
        r.manifest.target.probe != ProbeSource::None
            && r.series.iter().any(|row| row.server_cpu_cores.is_some())
    });

    let mut manifest = first.manifest.clone();
    manifest.shards = Vec::new();
    manifest.scenario.flows = Default::default();
    manifest.target.probe = prober.map_or(ProbeSource::None, |i| shards[i].1.manifest.target.probe);
    manifest.started_unix_ms = u64::MAX;
    manifest.ended_unix_ms = 0;
    manifest.complete = true;
    manifest.end_reason = EndReason::Completed;
    manifest.end_detail = None;
    manifest.synthetic = false;
    for (i, (dir, r)) in shards.iter().enumerate() {
        let m = &r.manifest;
        manifest.scenario.flows = manifest.scenario.flows.plus(m.scenario.flows);
        manifest.started_unix_ms = manifest.started_unix_ms.min(m.started_unix_ms);
        manifest.ended_unix_ms = manifest.ended_unix_ms.max(m.ended_unix_ms);
        manifest.synthetic |= m.synthetic;
        if !m.complete && manifest.complete {
            manifest.complete = false;
            manifest.end_reason = m.end_reason;
            manifest.end_detail = Some(format!(
                "shard {dir}: {}",
                m.end_detail
                    .clone()
                    .unwrap_or_else(|| format!("{:?}", m.end_reason))
            ));
        }
        let own = m.shards.first();
        manifest.shards.push(ShardEntry {
            index: own.map_or(i as u32, |s| s.index),
            count: own.map_or(shards.len() as u32, |s| s.count),
            hostname: own.map_or_else(|| m.host.hostname.clone(), |s| s.hostname.clone()),
            server_probes: prober == Some(i),
            source: Some(dir.clone()),
        });
    }

    let mut histograms = first.histograms.clone();
    let mut counts = first.counts.clone();
    for (_, r) in shards.iter().skip(1) {
        for (k, h) in &r.histograms {
            histograms.entry(k.clone()).or_default().add(h);
        }
        for (k, v) in &r.counts {
            *counts.entry(k.clone()).or_default() += v;
        }
    }

    // Second 0 of the merged run: the earliest shard's.
    let base = shards
        .iter()
        .filter_map(|(_, r)| {
            r.series
                .first()
                .map(|row| row.unix_s.saturating_sub(row.t_s))
        })
        .min()
        .unwrap_or(manifest.started_unix_ms / 1000);
    let phases = manifest.scenario.phases.times();
    let mut rows: BTreeMap<u64, Snapshot> = BTreeMap::new();
    let mut intervals: BTreeMap<u64, BTreeMap<String, LatencyHistogram>> = BTreeMap::new();
    for (i, (_, r)) in shards.iter().enumerate() {
        let probes = prober == Some(i);
        for row in &r.series {
            let t_s = row.unix_s.saturating_sub(base);
            let m = rows.entry(row.unix_s).or_insert_with(|| {
                Snapshot::empty(
                    t_s,
                    row.unix_s,
                    Phase::at(std::time::Duration::from_secs(t_s), &phases),
                )
            });
            add_row(m, row, probes);
        }
        let unix_of: BTreeMap<u64, u64> =
            r.series.iter().map(|row| (row.t_s, row.unix_s)).collect();
        for iv in &r.intervals {
            let Some(unix) = unix_of.get(&iv.t_s) else {
                continue;
            };
            let slot = intervals.entry(*unix).or_default();
            for (tag, h) in &iv.histograms {
                slot.entry(tag.clone()).or_default().add(h);
            }
        }
    }
    for (unix, tags) in &intervals {
        if let Some(row) = rows.get_mut(unix) {
            let q = |tag: &str, q: f64| tags.get(tag).and_then(|h| h.quantile_us(q));
            row.latency_p50_us = q("latency", 0.5);
            row.latency_p99_us = q("latency", 0.99);
            row.jitter_p50_us = q("jitter", 0.5);
            row.jitter_p99_us = q("jitter", 0.99);
            row.loop_lag_p99_us = q("loop_lag", 0.99).or(row.loop_lag_p99_us);
            row.pacing_error_p99_us = q("pacing_error", 0.99).or(row.pacing_error_p99_us);
        }
    }
    let intervals = intervals
        .into_iter()
        .map(|(unix_s, histograms)| IntervalHistograms {
            t_s: unix_s.saturating_sub(base),
            unix_s,
            histograms,
        })
        .collect();

    let mut merged = RunResult {
        summary: first.summary.clone(),
        manifest,
        series: rows.into_values().collect(),
        histograms,
        counts,
        intervals,
    };
    merged.resummarise();
    Ok(merged)
}

fn add_row(m: &mut Snapshot, r: &Snapshot, probes: bool) {
    m.sessions += r.sessions;
    m.joins += r.joins;
    m.join_failures += r.join_failures;
    m.jobs_running += r.jobs_running;
    m.jobs_created += r.jobs_created;
    m.jobs_rejected += r.jobs_rejected;
    m.jobs_finished += r.jobs_finished;
    m.containers_running = match (m.containers_running, r.containers_running) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    if probes {
        m.server_cpu_cores = r.server_cpu_cores;
        m.server_rss_bytes = r.server_rss_bytes;
    }
    m.bw_in_bps += r.bw_in_bps;
    m.bw_out_bps += r.bw_out_bps;
    m.audio_in_bps += r.audio_in_bps;
    m.screen_in_bps += r.screen_in_bps;
    m.video_in_bps += r.video_in_bps;
    m.audio_out_bps += r.audio_out_bps;
    m.screen_out_bps += r.screen_out_bps;
    m.video_out_bps += r.video_out_bps;
    m.packets_in += r.packets_in;
    m.packets_out += r.packets_out;
    m.expected += r.expected;
    m.lost += r.lost;
    m.freezes += r.freezes;
    // Without interval histograms the best available is an upper bound: the worst shard's.
    let max = |a: Option<u64>, b: Option<u64>| a.max(b);
    m.latency_p50_us = max(m.latency_p50_us, r.latency_p50_us);
    m.latency_p99_us = max(m.latency_p99_us, r.latency_p99_us);
    m.jitter_p50_us = max(m.jitter_p50_us, r.jitter_p50_us);
    m.jitter_p99_us = max(m.jitter_p99_us, r.jitter_p99_us);
    m.loop_lag_p99_us = max(m.loop_lag_p99_us, r.loop_lag_p99_us);
    m.pacing_error_p99_us = max(m.pacing_error_p99_us, r.pacing_error_p99_us);
    m.harness_cpu_cores = match (m.harness_cpu_cores, r.harness_cpu_cores) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    m.engine_thread_cpu_max_cores =
        match (m.engine_thread_cpu_max_cores, r.engine_thread_cpu_max_cores) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    // Per-process drops add up over the agents; the host-wide counter is per host, so the
    // largest is kept (shards on one host would otherwise count it twice).
    let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    m.harness_udp_drops = sum(m.harness_udp_drops, r.harness_udp_drops);
    m.target_udp_drops = sum(m.target_udp_drops, r.target_udp_drops);
    m.udp_receive_errors = max(m.udp_receive_errors, r.udp_receive_errors);
    let all = Saturation::parse(&m.saturation)
        .unwrap_or_default()
        .or(Saturation::parse(&r.saturation).unwrap_or(Saturation::all()));
    m.saturation = all.to_string();
}

/// Reads each directory and merges them.
pub fn merge_dirs(dirs: &[impl AsRef<Path>]) -> anyhow::Result<RunResult> {
    let mut shards = Vec::new();
    for d in dirs {
        let d = d.as_ref();
        shards.push((d.display().to_string(), RunResult::read(d)?));
    }
    Ok(merge(shards)?)
}
