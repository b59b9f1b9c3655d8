//! How many receive-only participants one harness core carries: one call against the embedded
//! reference SFU with two unmuted speakers and N listeners, measured over a steady window.
//!
//! Ignored by default (it is a measurement, not a check, and wants release builds):
//!
//! ```text
//! cargo build --release -p callsref --bin callsref
//! CALLSBENCH_LISTENERS=1000 cargo test --release -p callsbench --test engine_load -- --ignored --nocapture
//! ```
//!
//! Figures: the CPU of the engine threads (`/proc/self/task/*/stat`, threads named `engine-*`) and
//! of the whole harness process (engine + the plugin `/ws` link) over a 5 s window after every
//! listener hears both speakers, the voice packets delivered against the 100 packets/s per listener
//! the speakers send, and the SFU child's CPU. Participants per core = participants / engine
//! CPU (cores) at the delivery achieved. `CALLSBENCH_SILENT=1` keeps both speakers muted, which
//! measures the fixed cost of a connected participant (timers, DC pings, ICE keepalives); the
//! difference to a normal run is the cost of the packets. A listener that never hears the
//! speakers is reported with the last join milestone it reached. It fails only when fewer than
//! 95 % of the listeners connect or delivery collapses (the SFU shares the two cores).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use callsbench::engine::driver::{Driver, DriverConfig, EventSink};
use callsbench::engine::participant::{Command, Event, ParticipantConfig};
use callsbench::engine::source::{Clip, ClipFrame, ClipSource, MediaSource};
use callsbench::target::RtcdTarget;
use callsbench::target::embedded::{EmbeddedSfu, default_program};
use callsbench::target::rtcd::{ClientCredentials, MIN_VERSION};
use callsref::proto::rtcd::ids::{TrackKind, new_id};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Voice packets per participant, and a bit per milestone reached, shared with the test thread
/// without a lock.
#[derive(Clone)]
struct Counts(Arc<Vec<AtomicU64>>, Arc<Vec<AtomicU64>>);

/// Milestone bits, for telling where a participant that hears nothing got stuck.
const MILESTONES: [&str; 7] = [
    "join sent",
    "ICE connected",
    "DTLS connected",
    "DC open",
    "negotiated",
    "track added",
    "closed",
];

impl EventSink for Counts {
    fn on_event(&mut self, participant: usize, _now: Instant, event: &Event) {
        let bit = match event {
            Event::Rtp(r) if r.kind == Some(TrackKind::Voice) => {
                self.0[participant].fetch_add(1, Ordering::Relaxed);
                return;
            }
            Event::JoinSent => 0,
            Event::IceConnected => 1,
            Event::DtlsConnected => 2,
            Event::DcOpen => 3,
            Event::Negotiated { .. } => 4,
            Event::TrackAdded(_) => 5,
            Event::Closed { .. } => 6,
            _ => return,
        };
        self.1[participant].fetch_or(1 << bit, Ordering::Relaxed);
    }
}

fn voice() -> Box<dyn MediaSource> {
    let frames = (0..100u8)
        .map(|i| ClipFrame {
            // A typical Opus packet: ~80 bytes of payload.
            payloads: vec![Arc::from(vec![0xfc ^ i; 80])],
            keyframe: false,
            audio_level: Some(if (i / 5) % 2 == 0 { 10 } else { 70 }),
        })
        .collect();
    let clip = Arc::new(Clip {
        frames,
        interval: Duration::from_millis(20),
        clock_rate: 48_000,
    });
    Box::new(ClipSource::new(clip, 1, 0))
}

/// utime + stime in clock ticks (100 Hz) of a `/proc/.../stat` file.
fn ticks(path: &str) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_string();
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    Some((
        name,
        f[11].parse::<u64>().ok()? + f[12].parse::<u64>().ok()?,
    ))
}

/// CPU ticks of this process's engine threads.
fn engine_ticks() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| ticks(&format!("{}/stat", e.ok()?.path().display())))
        .filter(|(name, _)| name.starts_with("engine-"))
        .map(|(_, t)| t)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "a measurement: run in release with CALLSBENCH_LISTENERS"]
async fn receive_only_participants_per_harness_core() {
    let listeners: usize = std::env::var("CALLSBENCH_LISTENERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let n = listeners + 2;
    // Silent: nobody unmutes, which measures the fixed cost of a connected participant (timers,
    // pings, keepalives); the difference to a normal run is the cost of the packets.
    let silent = std::env::var_os("CALLSBENCH_SILENT").is_some();
    let dir = std::env::temp_dir().join(format!("callsbench-engine-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sfu = EmbeddedSfu::spawn(&default_program(), &dir).expect("callsref binary");
    let sfu_stat = format!("/proc/{}/stat", sfu.pid());
    let mut rng = StdRng::seed_from_u64(9);
    let mut target = RtcdTarget::connect(
        vec![sfu.host()],
        ClientCredentials::generate(&mut rng),
        MIN_VERSION,
        1,
    )
    .await
    .unwrap();
    let call_id = new_id(&mut rng);
    let host = target.place(&call_id, Duration::ZERO).await.unwrap();
    let host = target.hosts()[host].clone();
    let counts = Counts(
        Arc::new((0..n).map(|_| AtomicU64::new(0)).collect()),
        Arc::new((0..n).map(|_| AtomicU64::new(0)).collect()),
    );
    let cfg = DriverConfig {
        threads: 1,
        local_ip: "127.0.0.1".parse().unwrap(),
    };
    let mut driver = Driver::start(cfg, |_| counts.clone()).unwrap();
    let mut sessions = Vec::new();
    let started = Instant::now();
    for i in 0..n {
        let cfg = ParticipantConfig {
            call_id: call_id.clone(),
            user_id: new_id(&mut rng),
            session_id: new_id(&mut rng),
            channel_id: "channel".into(),
            dc_signaling: false,
            local_addr: "127.0.0.1:0".parse().unwrap(),
            seed: i as u64,
        };
        let session_id = cfg.session_id.clone();
        host.add_participant(&mut driver, cfg).unwrap();
        driver.command(&session_id, Command::Join).unwrap();
        sessions.push(session_id);
        if i == 1 && !silent {
            driver
                .command(&sessions[0], Command::Unmute(Some(voice())))
                .unwrap();
            driver
                .command(&sessions[1], Command::Unmute(Some(voice())))
                .unwrap();
        }
        // A ramp of 200 joins/s, as a scenario would pace them.
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Ready: hears both speakers (over 100 voice packets), or, silent, has its data channel open.
    let ok = |p: usize| {
        if silent {
            counts.1[p].load(Ordering::Relaxed) & (1 << 3) != 0
        } else {
            counts.0[p].load(Ordering::Relaxed) > 100
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60 + n as u64 / 20);
    while !(2..n).all(ok) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let settled = started.elapsed();
    let hearing = (2..n).filter(|&p| ok(p)).count();
    eprintln!("{hearing} of {listeners} listeners hear both speakers after {settled:.1?}");
    let mut stuck: std::collections::BTreeMap<String, usize> = Default::default();
    for p in (2..n).filter(|&p| !ok(p)) {
        let bits = counts.1[p].load(Ordering::Relaxed);
        let reached: Vec<&str> = (0..MILESTONES.len())
            .filter(|b| bits & (1 << b) != 0)
            .map(|b| MILESTONES[b])
            .collect();
        *stuck.entry(reached.join(", ")).or_default() += 1;
    }
    if !stuck.is_empty() {
        eprintln!("not hearing, by milestones reached: {stuck:?}");
    }
    // Measure anyway: the figure is CPU per participant; a few stragglers barely change it.
    assert!(
        hearing * 100 >= listeners * 95,
        "only {hearing} of {listeners} listeners hear both speakers"
    );
    let total = || -> u64 { counts.0.iter().map(|c| c.load(Ordering::Relaxed)).sum() };
    let sample = || {
        (
            total(),
            engine_ticks(),
            ticks("/proc/self/stat").map(|t| t.1).unwrap_or(0),
            ticks(&sfu_stat).map(|t| t.1).unwrap_or(0),
            Instant::now(),
        )
    };
    let (p0, e0, h0, s0, t0) = sample();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (p1, e1, h1, s1, t1) = sample();
    let secs = (t1 - t0).as_secs_f64();
    let core = |t0: u64, t1: u64| (t1 - t0) as f64 / 100.0 / secs;
    let (engine, harness, server) = (core(e0, e1), core(h0, h1), core(s0, s1));
    let pps = (p1 - p0) as f64 / secs;
    let expected = if silent { 0.0 } else { 100.0 * hearing as f64 };
    eprintln!(
        "{listeners} listeners + 2 speakers: all hearing after {settled:.1?}; delivered {pps:.0} of \
         {expected:.0} voice packets/s ({:.1} %)\n\
         engine threads {:.1} % of a core ({:.1} µs per participant-second, {:.2} µs per packet) \
         => {:.0} participants per engine core; whole harness process {:.1} % => {:.0} per core; \
         SFU {:.1} % of a core",
        pps / expected.max(1.0) * 100.0,
        engine * 100.0,
        engine * 1e6 / n as f64,
        engine * 1e6 / pps.max(1.0),
        n as f64 / engine.max(1e-3),
        harness * 100.0,
        n as f64 / harness.max(1e-3),
        server * 100.0,
    );
    for s in &sessions {
        driver.command(s, Command::Leave).unwrap();
    }
    let shards = driver.stop();
    let c = shards[0].1;
    eprintln!(
        "shard counters: {c:?}; {:.1} datagrams in per wakeup",
        c.datagrams_in as f64 / c.wakeups.max(1) as f64
    );
    drop(sfu);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(pps >= 0.5 * expected, "{pps} packets/s delivered");
}
