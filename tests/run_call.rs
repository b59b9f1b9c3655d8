//! `callsbench run` end to end: the real binary, the embedded reference SFU as a child process,
//! real WebRTC participants sending the pinned samples over loopback.
//!
//! Each test writes a small scenario into its own temporary directory (media from
//! `scenarios/media`) and reads the results directory the run wrote.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callsbench::media::wire::{VIDEO_OVERHEAD, audio_packet_on_wire};
use callsbench::media::{Sample, load};
use callsbench::report::{EndReason, RunResult};

fn media_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/media")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callsbench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 2 calls × 4 participants, 2 unmuted each, one (single-layer) screen share.
fn scenario(dir: &Path, steady: &str) -> PathBuf {
    let file = dir.join("two-calls.toml");
    std::fs::write(
        &file,
        format!(
            r#"
name = "two-calls"
seed = 7
thresholds = ["loss <= 1%"]

[phases]
join = "2s"
settle = "1s"
steady = "{steady}"
leave = "1s"

[media]
dir = {media:?}

[[calls]]
count = 2
participants = 4
unmuted = 2
screen_sharing = 1
"#,
            media = media_dir().display().to_string()
        ),
    )
    .unwrap();
    file
}

fn callsbench(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callsbench"));
    c.args(args);
    c
}

/// Wire bit rate of a sample as a sender puts it on the wire: every packet's payload plus the
/// documented per-packet overhead (`media::wire`), over the sample's duration.
fn wire_bps(file: &str) -> f64 {
    match load(&media_dir().join(file)).unwrap() {
        Sample::Audio(a) => {
            let bytes: usize = a
                .frames
                .iter()
                .map(|f| audio_packet_on_wire(f.payload.len()))
                .sum();
            bytes as f64 * 8.0 / a.duration().as_secs_f64()
        }
        Sample::Video(v) => {
            let bytes: usize = v
                .frames
                .iter()
                .flat_map(|f| f.packets.iter())
                .map(|p| p.len() + VIDEO_OVERHEAD)
                .sum();
            bytes as f64 * 8.0 / v.duration().as_secs_f64()
        }
    }
}

#[test]
fn two_calls_against_the_embedded_sfu() {
    let dir = scratch("run-call");
    let file = scenario(&dir, "8s");
    let out = dir.join("out");
    let output = callsbench(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-report",
        "--quiet",
    ])
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("Benchmark row"), "{stdout}");

    let r = RunResult::read(&out).unwrap();
    let s = &r.summary;
    assert!(s.complete && s.passed, "{s:?}");
    // Every participant connected and received the first packet of every track it expected.
    assert_eq!(s.qoe.joins, 8, "{:?}", s.qoe);
    assert_eq!(s.qoe.join_failures, 0);
    assert_eq!(r.counts["sessions_up"], 8);
    // Tracks: in each call the sharer/speaker hears 1, the other speaker 2 (audio + screen) and
    // each listener 3; the call without a share: 1 + 1 + 2 + 2.
    assert_eq!(r.counts["tracks.expected"], 15);
    assert_eq!(r.counts["tracks.received"], 15);
    // Nothing lost on loopback while everyone is in the call.
    let steady: Vec<_> = r
        .series
        .iter()
        .filter(|row| (s.steady.start_s..s.steady.end_s).contains(&row.t_s))
        .collect();
    assert!(steady.len() >= 3, "{} steady rows", steady.len());
    let (expected, lost) = steady
        .iter()
        .fold((0, 0), |(e, l), row| (e + row.expected, l + row.lost));
    assert!(expected > 2_000, "{expected} packets expected");
    assert_eq!(lost, 0, "packets lost in the steady window");

    // Bandwidth out: each forwarded stream at its sample's wire rate (payload + the per-packet
    // overhead of `media::wire`). The screen sample has a keyframe every 2 s, so the window
    // (about 6 s here) averages whole keyframe periods give or take one second.
    let f = &r.manifest.scenario.flows;
    assert_eq!((f.forwarded_audio, f.screen_viewers), (12, 3));
    let audio = (wire_bps("speech-97.ogg") + wire_bps("conversation.ogg")) / 2.0;
    let predicted =
        f.forwarded_audio as f64 * audio + f.screen_viewers as f64 * wire_bps("screen.ivf");
    let measured = s.benchmark.bandwidth_out_bps.unwrap();
    let media: f64 = steady
        .iter()
        .map(|row| row.audio_out_bps + row.screen_out_bps + row.video_out_bps)
        .sum::<f64>()
        / steady.len() as f64;
    eprintln!(
        "bandwidth out: measured {:.0} kbit/s in all, {:.0} kbit/s media ({:+.1} %), predicted {:.0} kbit/s",
        measured / 1e3,
        media / 1e3,
        (media / predicted - 1.0) * 100.0,
        predicted / 1e3,
    );
    // The prediction covers the forwarded media; RTCP, STUN, DTLS and the DC are measured
    // apart (they are in `measured`, about 1 % here).
    assert!(
        (media / predicted - 1.0).abs() <= 0.05,
        "media out {media:.0} bit/s vs predicted {predicted:.0} bit/s"
    );
    assert!(
        measured > media && measured < media * 1.05,
        "{measured} vs {media}"
    );
    // Self-health: the engine's timer lateness was sampled, and the harness kept up.
    assert!(
        s.self_health.loop_lag_p99_us.is_some(),
        "{:?}",
        s.self_health
    );
    assert!(!s.self_health.saturated, "{:?}", s.self_health);
    // Pacing error was measured on the speakers' and the sharer's packets; the busiest engine
    // thread and the drops at the harness's own sockets were sampled.
    assert!(
        s.self_health.pacing_error_p99_us.is_some()
            && s.self_health.engine_thread_cpu_max_cores.is_some()
            && s.self_health.harness_udp_drops.is_some(),
        "{:?}",
        s.self_health
    );
    assert!(r.histograms["health.pacing_error"].count() > 1_000);
    // Every join phase was reached by every session, in order: a session passes them one after
    // the other, so their medians cannot go backwards.
    let phases: Vec<_> = s.qoe.join_phases.iter().map(|p| p.phase.as_str()).collect();
    assert_eq!(
        phases,
        [
            "sent",
            "offer",
            "answer",
            "ice_connected",
            "dc_open",
            "first_media"
        ]
    );
    for p in &s.qoe.join_phases {
        assert_eq!(p.count, 8, "{p:?}");
    }
    let medians: Vec<u64> = s
        .qoe
        .join_phases
        .iter()
        .map(|p| p.p50_us.unwrap())
        .collect();
    assert!(medians.is_sorted(), "join phase medians {medians:?}");
    eprintln!("join phase medians (µs): {medians:?}");
    // Signalling: the four mics and the screen were own renegotiations; every session answered
    // the SFU's offers of the others' tracks.
    assert!(s.qoe.renegotiations >= 5, "{:?}", s.qoe);
    assert!(s.qoe.server_offers >= 8, "{:?}", s.qoe);
    // VAD: the SFU's `vad` on for the speakers, matched to the packet that turned voice on by
    // rtcd's rule; on loopback it arrives within milliseconds (bounded loosely for a loaded
    // host: a second would mean the match is wrong, not slow).
    assert!(s.qoe.vad_events >= 1, "{:?}", s.qoe);
    let vad = s.qoe.vad_p50_us.unwrap();
    eprintln!(
        "VAD latency p50 {vad} µs over {} events; pacing error p99 {:?} µs",
        s.qoe.vad_events, s.self_health.pacing_error_p99_us
    );
    assert!(vad < 1_000_000, "VAD latency p50 {vad} µs");
    // Every voice packet was timed (speakers and receivers in this one process).
    assert_eq!(s.qoe.latency_coverage, Some(1.0), "{:?}", s.qoe);
    // The summary a real run writes (new optional fields filled) follows the committed schema.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema/summary.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let errors = callsbench::report::schema::validate(&schema, &written);
    assert!(errors.is_empty(), "{errors:#?}");
    // The SFU holds no session of the run afterwards.
    assert_eq!(r.counts["target.sessions_after_run"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_impaired_group_sees_its_injected_loss_and_delay() {
    let dir = scratch("run-impair");
    let file = scenario(&dir, "8s");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text += r#"
[[impairment]]
name = "lossy"
share = "50%"
loss = "5%"
delay = "50ms"
direction = "down"
"#;
    std::fs::write(&file, text).unwrap();
    let out = dir.join("out");
    let output = callsbench(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-report",
        "--quiet",
    ])
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Impairment groups"), "{stdout}");
    let r = RunResult::read(&out).unwrap();
    let groups = &r.summary.impairment_groups;
    let group = |name: &str| groups.iter().find(|g| g.name == name).unwrap();
    let (lossy, clean) = (group("lossy"), group("unimpaired"));
    eprintln!("{lossy:?}\n{clean:?}");
    // Half of each call's participants, loss drawn per received datagram.
    assert!(lossy.expected > 2_000, "{lossy:?}");
    let loss = lossy.loss.unwrap();
    assert!((0.04..=0.06).contains(&loss), "lossy group loss {loss}");
    // The others lose nothing to the harness; a loaded host may still drop the odd datagram in
    // a full socket buffer (five runs of this file share two cores), hence not exactly 0.
    assert!(clean.loss.unwrap() < 0.005, "{clean:?}");
    // One-way latency of what the group receives: 50 ms more than the others'.
    let rise = lossy.latency_p50_us.unwrap() as f64 - clean.latency_p50_us.unwrap() as f64;
    assert!(
        (47_000.0..=53_000.0).contains(&rise),
        "latency rose by {rise} µs"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigint_writes_partial_results() {
    let dir = scratch("run-sigint");
    let file = scenario(&dir, "60s");
    let out = dir.join("out");
    let mut child = callsbench(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-report",
        "--quiet",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Poll the series the run appends each second until sessions are connected.
    let deadline = Instant::now() + Duration::from_secs(30);
    let connected = |out: &Path| {
        std::fs::read_to_string(out.join("series.csv")).is_ok_and(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| l.split(',').nth(3)?.parse::<u64>().ok())
                .any(|sessions| sessions >= 4)
        })
    };
    while !connected(&out) {
        assert!(
            Instant::now() < deadline,
            "no sessions connected within 30 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    let interrupted_at = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -INT {}", child.id()))
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait_for(&mut child, Duration::from_secs(20)).expect("the run did not end");
    let took = interrupted_at.elapsed();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?} to stop");

    let r = RunResult::read(&out).unwrap();
    assert!(!r.summary.complete);
    assert_eq!(r.summary.end_reason, EndReason::Interrupted);
    assert!(r.summary.qoe.joins >= 4, "{:?}", r.summary.qoe);
    assert!(!r.series.is_empty());
    // Well before the planned end (2 + 2 + 60 + 1 s).
    assert!(r.series.len() < 40, "{} rows", r.series.len());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The children of process `pid` (all its threads').
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

#[test]
fn a_dying_target_ends_the_run_with_partial_results() {
    let dir = scratch("run-died");
    let file = scenario(&dir, "60s");
    let out = dir.join("out");
    let mut child = callsbench(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-report",
        "--quiet",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(out.join("series.csv")).is_ok_and(|t| t.lines().count() > 3) {
        assert!(
            Instant::now() < deadline,
            "the run did not start within 30 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The embedded SFU is the run's only child process.
    let sfu = children(child.id());
    assert_eq!(sfu.len(), 1, "children: {sfu:?}");
    let killed = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -KILL {}", sfu[0]))
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_for(&mut child, Duration::from_secs(20)).expect("the run did not end");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("target process died"), "{stderr}");
    let r = RunResult::read(&out).unwrap();
    assert!(!r.summary.complete);
    assert_eq!(r.summary.end_reason, EndReason::TargetDied);
    assert!(r.series.len() < 40, "{} rows", r.series.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_scenario_exits_2_with_its_location() {
    let dir = scratch("run-bad");
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "name = \"x\"\n[[calls]]\ncount = 1\nparticipants = 0\n",
    )
    .unwrap();
    let output = callsbench(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        dir.join("o").to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.toml:4:"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
