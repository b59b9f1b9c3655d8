//! `callsbench merge`: exact histogram merges, series aligned on wall-clock seconds, server probes
//! from one shard, and a merged directory that renders and compares like any other.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use callsbench::measure::{
    Aggregator, Flow, HealthLimits, HotCounters, LatencyHistogram, Record, Recorder, Tick,
    TrackKind,
};
use callsbench::report::merge::merge;
use callsbench::report::synthetic::Synthetic;
use callsbench::report::{ProbeSource, RunResult, ShardEntry};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callsbench-merge-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn run_cli(args: &[&str]) -> ExitCode {
    use clap::Parser;
    callsbench::cli::run(callsbench::cli::Cli::try_parse_from(args).unwrap()).unwrap()
}

/// A shard whose latency samples are known: `samples(shard, second)` µs values each second, starting
/// `offset_s` seconds after the common start.
fn shard(
    index: u32,
    offset_s: u64,
    seconds: u64,
    samples: &dyn Fn(u32, u64) -> Vec<u64>,
) -> RunResult {
    let base = Synthetic::small().generate();
    let counters = Arc::new(HotCounters::default());
    let phases = base.manifest.scenario.phases.times();
    let mut agg = Aggregator::new(counters.clone(), phases, HealthLimits::for_cores(2));
    let mut rec = Recorder::new();
    for t in 0..seconds {
        for us in samples(index, t) {
            rec.record(Record::Latency {
                kind: TrackKind::Audio,
                intended_send: Duration::ZERO,
                received: Duration::from_micros(us),
            });
        }
        for _ in 0..100 {
            counters.received(Flow::Media(TrackKind::Audio), 158); // 200 B on the wire
        }
        agg.absorb(rec.take());
        agg.seal(Tick {
            t_s: t + offset_s,
            unix_s: 1_700_000_000 + t + offset_s,
            server_cpu_cores: Some(1.0 + index as f64),
            server_rss_bytes: Some(1_000_000),
            harness_cpu_cores: Some(0.1 * (index + 1) as f64),
            ..Tick::default()
        });
    }
    let mut manifest = base.manifest.clone();
    manifest.shards = vec![ShardEntry {
        index,
        count: 2,
        hostname: format!("agent-{index}"),
        server_probes: true,
        source: None,
    }];
    manifest.target.probe = ProbeSource::Prometheus;
    RunResult::new(manifest, agg.finish())
}

fn samples(shard: u32, t: u64) -> Vec<u64> {
    // Different shapes per shard so a merge that averaged percentiles would be visibly wrong.
    (0..200u64)
        .map(|i| {
            if shard == 0 {
                500 + i * 13 + t
            } else {
                20_000 + i * i * 7 + t * 3
            }
        })
        .collect()
}

#[test]
fn histograms_merge_exactly_and_series_align_on_wall_clock_seconds() {
    let a = shard(0, 0, 20, &samples);
    let b = shard(1, 2, 20, &samples); // started 2 s later
    let merged = merge(vec![("a".into(), a.clone()), ("b".into(), b.clone())]).unwrap();

    // Totals are the sum of the shards, and percentiles equal those of all samples together.
    let mut all = LatencyHistogram::new();
    for s in 0..2 {
        for t in 0..20 {
            for us in samples(s, t) {
                all.record_us(us);
            }
        }
    }
    let m = &merged.histograms["latency.audio"];
    assert_eq!(
        m.count(),
        a.histograms["latency.audio"].count() + b.histograms["latency.audio"].count()
    );
    assert_eq!(m.count(), all.count());
    for q in [0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
        assert_eq!(m.quantile_us(q), all.quantile_us(q), "q={q}");
    }
    for (k, v) in &merged.counts {
        assert_eq!(*v, a.counts[k] + b.counts[k], "{k}");
    }

    // Seconds 0..22 exist; 2..20 have both shards.
    assert_eq!(merged.series.len(), 22);
    let row = |unix: u64| merged.series.iter().find(|r| r.unix_s == unix).unwrap();
    assert_eq!(row(1_700_000_000).bw_out_bps, 100.0 * 200.0 * 8.0);
    assert_eq!(row(1_700_000_005).bw_out_bps, 2.0 * 100.0 * 200.0 * 8.0);
    assert_eq!(row(1_700_000_021).bw_out_bps, 100.0 * 200.0 * 8.0);
    assert_eq!(row(1_700_000_005).t_s, 5);
    // Per-second percentiles are recomputed from both shards' samples of that wall-clock second.
    let mut second = LatencyHistogram::new();
    for us in samples(0, 5).into_iter().chain(samples(1, 3)) {
        second.record_us(us);
    }
    assert_eq!(row(1_700_000_005).latency_p99_us, second.quantile_us(0.99));
    assert_eq!(row(1_700_000_005).latency_p50_us, second.quantile_us(0.5));
    // Harness CPU: the busiest agent's.
    assert_eq!(row(1_700_000_005).harness_cpu_cores, Some(0.2));
}

#[test]
fn server_probes_come_from_one_shard_only() {
    let a = shard(0, 0, 10, &samples);
    let b = shard(1, 0, 10, &samples);
    let merged = merge(vec![("b".into(), b), ("a".into(), a)]).unwrap();
    // Shard 0 reads 1.0 core, shard 1 2.0: the target is counted once (shard 0), not 3.0.
    assert!(
        merged
            .series
            .iter()
            .all(|r| r.server_cpu_cores == Some(1.0))
    );
    let probes: Vec<_> = merged
        .manifest
        .shards
        .iter()
        .filter(|s| s.server_probes)
        .collect();
    assert_eq!(probes.len(), 1);
    assert_eq!(probes[0].index, 0);
    assert_eq!(probes[0].source.as_deref(), Some("a"));
    assert_eq!(merged.manifest.shards.len(), 2);
}

#[test]
fn synthetic_shards_merge_into_the_whole_run_and_render_and_compare() {
    let dirs: Vec<PathBuf> = (0..2)
        .map(|i| {
            let mut spec = Synthetic::small();
            spec.shard = Some((i, 2));
            let dir = temp_dir(&format!("shard{i}"));
            spec.generate().write(&dir).unwrap();
            dir
        })
        .collect();
    let out = temp_dir("merged");
    let code = run_cli(&[
        "callsbench",
        "merge",
        dirs[0].to_str().unwrap(),
        dirs[1].to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    let merged = RunResult::read(&out).unwrap();
    let whole = Synthetic::small().generate();
    // Flow counts and traffic add up to the unsharded run's.
    assert_eq!(
        merged.manifest.scenario.flows,
        whole.manifest.scenario.flows
    );
    assert_eq!(merged.summary.qoe.joins, whole.summary.qoe.joins);
    let per = merged.summary.per_flow.kbps_per_forwarded_audio.unwrap();
    assert!((per - 91.6).abs() < 0.01, "{per}");
    assert_eq!(merged.series.len(), whole.series.len());
    assert!(merged.summary.complete);
    // Only shard 0 probed the server.
    assert_eq!(merged.manifest.target.probe, ProbeSource::Proc);
    // Renders and compares like any other results directory.
    let code = run_cli(&["callsbench", "report", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(out.join("report.html").is_file());
    let o = out.to_str().unwrap();
    assert_eq!(run_cli(&["callsbench", "compare", o, o]), ExitCode::SUCCESS);
}

#[test]
fn shards_of_different_runs_are_refused() {
    let a = Synthetic::small().generate();
    let mut spec = Synthetic::small();
    spec.seed = 8;
    let b = spec.generate();
    let err = merge(vec![("a".into(), a), ("b".into(), b)]).unwrap_err();
    assert!(err.to_string().contains("seed 8"), "{err}");
    assert!(merge(Vec::new()).is_err());
}
