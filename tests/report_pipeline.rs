//! The whole results pipeline wired the way the `run` command wires it, on a real scenario file and a
//! real child process as the "target": worker threads with their own recorders, an aggregator fed
//! over a channel, the sampler, the manifest from the plan, the files, and the report.
//!
//! No media flows here (the engine is not part of this test), so the traffic is counted by the
//! workers themselves; what is checked is that every figure arrives where the report reads it.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use callsbench::measure::{
    Aggregator, Flow, HealthLimits, HotCounters, Interval, JoinPhase, ProcProbe, Record, Recorder,
    Sampler, ServerSource, TrackKind, WireOverhead,
};
use callsbench::report::{
    EndReason, FORMAT_VERSION, Host, Manifest, ProbeSource, RunResult, ScenarioInfo, SeriesWriter,
    TargetInfo, Tool,
};
use callsbench::scenario::{MediaCheck, Plan, PlanConfig, Scenario};

#[test]
fn a_run_shaped_pipeline_produces_a_readable_results_directory() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/smoke.toml");
    // The media samples are not needed: no media is sent in this test.
    let text = std::fs::read_to_string(&file).unwrap();
    let scenario = Scenario::from_toml(&text, &file, MediaCheck::Skip).unwrap();
    let plan = Plan::expand(&scenario, &PlanConfig::default());
    let info = ScenarioInfo::of_plan(&scenario, &plan, Some(&file));
    // smoke: 2 calls × 4, 2 speakers each, one screen sharer, one camera.
    assert_eq!((info.flows.sessions, info.flows.forwarded_audio), (8, 12));
    assert_eq!(
        (info.flows.screen_viewers, info.flows.forwarded_video),
        (3, 3)
    );
    assert_eq!(
        (info.mix.calls, info.mix.screen_calls, info.mix.uniform),
        (2, 1, false)
    );

    let mut target = Command::new("sleep").arg("60").spawn().unwrap();
    let counters = Arc::new(HotCounters::new(WireOverhead::default()));
    let phases = plan.phases();
    let mut agg = Aggregator::new(counters.clone(), phases, HealthLimits::for_this_host());
    let mut sampler = Sampler::new(ServerSource::Proc(ProcProbe::pid(target.id())));
    let dir = std::env::temp_dir().join(format!("callsbench-pipeline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut series = SeriesWriter::create(&dir).unwrap();

    // Simulated seconds: each worker thread records its sessions' joins and media for one second
    // and sends the interval to the aggregator; the probes are read once per second.
    let seconds = 12u64;
    for t in 0..seconds {
        let (tx, rx) = mpsc::channel::<Interval>();
        std::thread::scope(|s| {
            for worker in 0..2u32 {
                let tx = tx.clone();
                let counters = counters.clone();
                let plan = &plan;
                s.spawn(move || {
                    let mut rec = Recorder::new();
                    let sec = Duration::from_secs(t);
                    for call in plan.calls().iter().filter(|c| c.index() % 2 == worker) {
                        for session in call.sessions() {
                            let join = session.join_at();
                            if join >= sec && join < sec + Duration::from_secs(1) {
                                rec.record(Record::Join {
                                    phase: JoinPhase::IceConnected,
                                    scheduled: join,
                                    at: join + Duration::from_millis(40),
                                });
                                rec.record(Record::Join {
                                    phase: JoinPhase::FirstMedia,
                                    scheduled: join,
                                    at: join + Duration::from_millis(90),
                                });
                                rec.record(Record::SessionUp);
                            }
                            if join < sec && session.roles().speaker {
                                for i in 0..50u64 {
                                    let intended = sec + Duration::from_millis(20 * i);
                                    counters.sent(Flow::Media(TrackKind::Audio), 180);
                                    rec.record(Record::Latency {
                                        kind: TrackKind::Audio,
                                        intended_send: intended,
                                        received: intended + Duration::from_micros(1_500),
                                    });
                                }
                            }
                        }
                    }
                    tx.send(rec.take()).unwrap();
                });
            }
        });
        drop(tx);
        for interval in rx {
            agg.absorb(interval);
        }
        let (readings, err) = sampler.sample(Duration::from_secs(t));
        assert!(err.is_none(), "{err:?}");
        let row = agg.seal(readings.tick(t, 1_800_000_000 + t));
        series.append(row).unwrap();
    }
    target.kill().unwrap();
    target.wait().unwrap();
    // The target is gone: the sampler says so, and the run ends with partial results.
    let (_, err) = sampler.sample(Duration::from_secs(seconds));
    assert!(err.is_some());

    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        tool: Tool::this(),
        synthetic: false,
        host: Host::this_machine(),
        scenario: info,
        target: TargetInfo {
            kind: "embedded".into(),
            version: None,
            address: Some("127.0.0.1".into()),
            vcpus: Some(Host::this_machine().cores),
            probe: ProbeSource::Proc,
        },
        wire: WireOverhead::default(),
        started_unix_ms: 1_800_000_000_000,
        ended_unix_ms: (1_800_000_000 + seconds) * 1000,
        complete: false,
        end_reason: EndReason::TargetDied,
        end_detail: Some("the target process exited".into()),
        shards: Vec::new(),
    };
    let result = RunResult::new(manifest, agg.finish());
    result.write(&dir).unwrap();
    let back = RunResult::read(&dir).unwrap();
    let s = &back.summary;
    assert_eq!(back.series.len() as u64, seconds);
    assert_eq!(s.qoe.joins, 8);
    assert_eq!(s.qoe.connect_p99_us.map(|us| us / 1000), Some(40));
    assert!(!s.complete && s.end_reason == EndReason::TargetDied);
    assert_eq!(back.exit_code(), 2);
    // Steady window: 5 s join + 2 s settle, cut at the 12 recorded seconds.
    assert_eq!((s.steady.start_s, s.steady.end_s), (7, 12));
    // Every speaker sent 50 × (180 + 42) B each steady second: 4 speakers → 355.2 kbit/s in.
    let bw_in = s.benchmark.bandwidth_in_bps.unwrap();
    assert!((bw_in - 4.0 * 50.0 * 222.0 * 8.0).abs() < 1e-6, "{bw_in}");
    // A sleeping process uses (almost) no CPU, and has some resident memory.
    assert!(s.benchmark.cpu_avg_cores.unwrap() < 0.05);
    assert!(s.benchmark.memory_avg_bytes.unwrap() > 0);
    assert_eq!(s.thresholds.len(), 3);
    assert!(s.thresholds[0].passed, "{:?}", s.thresholds[0]);
}
