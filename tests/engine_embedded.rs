//! The participant behaves like a Calls client towards the embedded reference SFU (a real
//! `callsref sfu` child process on loopback): WS and DC signalling side by side, server offers
//! answered on either path, own offers under the DC lock, voice with the audio-level extension
//! (rtcd's VAD fires on it), a simulcast screen share reaching both viewers, DC pings
//! every second, the 4-second stats messages (seen in the SFU's client histograms), and leave.
//!
//! Needs the `callsref` binary beside the test binary (`cargo build -p callsref`).

use std::sync::{Arc, Mutex};
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

/// Every event but RTP, and per participant (voice packets, voice packets with a level, other).
#[derive(Clone, Default)]
struct Log {
    events: Arc<Mutex<Vec<(usize, Event)>>>,
    rtp: Arc<Mutex<Vec<[u64; 3]>>>,
}

impl EventSink for Log {
    fn on_event(&mut self, participant: usize, _now: Instant, event: &Event) {
        match event {
            Event::Rtp(r) => {
                let mut rtp = self.rtp.lock().unwrap();
                if rtp.len() <= participant {
                    rtp.resize(participant + 1, [0; 3]);
                }
                let c = &mut rtp[participant];
                if r.kind == Some(TrackKind::Voice) {
                    c[0] += 1;
                    c[1] += u64::from(r.audio_level.is_some());
                } else {
                    c[2] += 1;
                }
            }
            e => self.events.lock().unwrap().push((participant, e.clone())),
        }
    }
}

impl Log {
    fn count(&self, p: usize, f: impl Fn(&Event) -> bool) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(i, e)| *i == p && f(e))
            .count()
    }

    fn rtp(&self, p: usize) -> [u64; 3] {
        self.rtp.lock().unwrap().get(p).copied().unwrap_or([0; 3])
    }
}

fn speech() -> Box<dyn MediaSource> {
    // Levels swinging between loud and quiet: rtcd's VAD (std-dev of recent levels) turns on.
    let frames = (0..100u8)
        .map(|i| ClipFrame {
            payloads: vec![Arc::from(vec![0xfc, i, 0xff, 0xfe])],
            keyframe: false,
            audio_level: Some(if (i / 5) % 2 == 0 { 10 } else { 70 }),
        })
        .collect();
    let clip = Arc::new(Clip {
        frames,
        interval: Duration::from_millis(20),
        clock_rate: 48_000,
    });
    Box::new(ClipSource::new(clip, 100, 0))
}

fn screen_layer(fps: u64, packets: u8) -> Box<dyn MediaSource> {
    // VP8 payload descriptors (X, S bits, 15-bit picture id) over opaque bytes; one keyframe in ten.
    let frames = (0..10u8)
        .map(|i| ClipFrame {
            payloads: (0..packets)
                .map(|k| Arc::from(vec![if k == 0 { 0x90 } else { 0x80 }, 0x80, 0x80, i, 0, 1]))
                .collect(),
            keyframe: i == 0,
            audio_level: None,
        })
        .collect();
    let clip = Arc::new(Clip {
        frames,
        interval: Duration::from_millis(1000 / fps),
        clock_rate: 90_000,
    });
    Box::new(ClipSource::new(clip, 500, 0))
}

/// The sum over groups of one metric line family (e.g. `rtcd_rtc_client_rtt_count`).
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_client_behaviour_against_the_embedded_sfu() {
    let dir =
        std::env::temp_dir().join(format!("callsbench-engine-embedded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sfu = EmbeddedSfu::spawn(&default_program(), &dir)
        .expect("the callsref binary (cargo build -p callsref)");
    let mut rng = StdRng::seed_from_u64(3);
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
    let log = Log::default();
    let cfg = DriverConfig {
        threads: 1,
        local_ip: "127.0.0.1".parse().unwrap(),
    };
    let mut driver = Driver::start(cfg, |_| log.clone()).unwrap();
    // 0: WS signalling, speaker and simulcast sharer; 1: DC signalling, speaker; 2: DC listener.
    let mut sessions = Vec::new();
    for (i, dc) in [false, true, true].into_iter().enumerate() {
        let cfg = ParticipantConfig {
            call_id: call_id.clone(),
            user_id: new_id(&mut rng),
            session_id: new_id(&mut rng),
            channel_id: "channel".into(),
            dc_signaling: dc,
            local_addr: "127.0.0.1:0".parse().unwrap(),
            seed: 50 + i as u64,
        };
        let id = cfg.session_id.clone();
        host.add_participant(&mut driver, cfg).unwrap();
        driver.command(&id, Command::Join).unwrap();
        sessions.push(id);
    }
    // Commands before the data channel opens wait for it (they need the signalling lock).
    driver
        .command(&sessions[0], Command::Unmute(Some(speech())))
        .unwrap();
    driver
        .command(&sessions[1], Command::Unmute(Some(speech())))
        .unwrap();
    driver
        .command(
            &sessions[0],
            Command::ScreenOn {
                low: screen_layer(5, 2),
                high: Some(screen_layer(15, 4)),
            },
        )
        .unwrap();
    let dc_open_at = Instant::now();
    let ready = || {
        log.rtp(2)[0] >= 150
            && log.rtp(0)[0] >= 50
            && log.rtp(1)[2] >= 10
            && log.rtp(2)[2] >= 10
            && (0..3).all(|p| log.count(p, |e| matches!(e, Event::Pong { .. })) >= 5)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        ready(),
        "rtp per participant {:?}; events {:?}",
        log.rtp.lock().unwrap(),
        log.events.lock().unwrap()
    );
    // At least one stats round (4 s after each DC opened) has reached the SFU.
    let stats_due = dc_open_at + Duration::from_secs(5);
    tokio::time::sleep_until(stats_due.into()).await;
    let metrics = reqwest::get(format!("http://{}/metrics", sfu.ready.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    for s in &sessions {
        driver.command(s, Command::Leave).unwrap();
    }
    let closed = || (0..3).all(|p| log.count(p, |e| matches!(e, Event::Closed { .. })) == 1);
    let deadline = Instant::now() + Duration::from_secs(12);
    while !closed() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed(), "events {:?}", log.events.lock().unwrap());
    let sessions_left = host.api.sessions(&call_id).await.unwrap();
    let shards = driver.stop();
    drop(sfu);
    let _ = std::fs::remove_dir_all(&dir);

    for p in 0..3 {
        assert_eq!(log.count(p, |e| *e == Event::IceConnected), 1, "p{p}");
        assert_eq!(log.count(p, |e| *e == Event::DcOpen), 1, "p{p}");
        assert_eq!(
            log.count(p, |e| *e == Event::Closed { by_server: false }),
            1,
            "p{p} left"
        );
        // Every participant got at least one server offer (tracks of the others) and answered
        // it: participant 0 over WS, 1 and 2 over the DC.
        assert!(
            log.count(p, |e| matches!(e, Event::ServerOfferAnswered { .. })) >= 1,
            "p{p} answered no server offer"
        );
    }
    // Own offers went through the DC lock: the mic for both speakers, the screen for 0.
    let own = |p| {
        log.count(p, |e| {
            matches!(
                e,
                Event::Negotiated {
                    change: Some(_),
                    ..
                }
            )
        })
    };
    assert_eq!(own(0), 2);
    assert_eq!(own(1), 1);
    assert_eq!(log.count(0, |e| matches!(e, Event::LockTimeout(_))), 0);
    // Voice carries the audio level, and the SFU's VAD saw both speakers talk.
    let [voice, with_level, _] = log.rtp(2);
    assert_eq!(voice, with_level, "every voice packet has the audio level");
    // rtcd sends each speaking session its own VAD state.
    for p in 0..2 {
        assert!(
            log.count(p, |e| matches!(e, Event::VoiceActivity { on: true, .. })) >= 1,
            "p{p} VAD"
        );
    }
    // Keyframe on PLI is checked in the simulation (engine::sim); the reference SFU does not
    // forward a viewer's PLI to the sharer yet, so it is only reported here.
    eprintln!(
        "keyframe requests at the sharer: {}",
        log.count(0, |e| matches!(e, Event::KeyframeRequested { .. }))
    );
    // The stats messages arrived: one loss/RTT/jitter sample per session per 4 s.
    for name in [
        "rtcd_rtc_client_loss_rate_count",
        "rtcd_rtc_client_rtt_count",
        "rtcd_rtc_client_jitter_count",
    ] {
        assert!(metric_sum(&metrics, name) >= 3.0, "{name}: {metrics}");
    }
    assert_eq!(sessions_left, None, "the call is gone after everyone left");
    assert_eq!(shards[0].1.input_errors, 0);
}
