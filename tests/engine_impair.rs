//! Impairment in the harness's own packet path, against the embedded reference SFU (a real
//! `callsref sfu` child process on loopback): injected loss shows up as the receivers' measured
//! loss, injected delay as the measured one-way latency (the receiver looks up the send instant of
//! the same source packet in the driver's send log).
//!
//! Needs the `callsref` binary beside the test binary (`cargo build -p callsref` or a workspace
//! test run builds it).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callsbench::engine::driver::{Driver, DriverConfig, EventSink, ShardCounters};
use callsbench::engine::impair::Link;
use callsbench::engine::participant::{Command, Event, ParticipantConfig};
use callsbench::engine::source::{Clip, ClipFrame, ClipSource, MediaSource};
use callsbench::scenario::Direction;
use callsbench::target::RtcdTarget;
use callsbench::target::embedded::{EmbeddedSfu, default_program};
use callsbench::target::rtcd::{ClientCredentials, MIN_VERSION};
use callsref::proto::rtcd::ids::{TrackKind, new_id};
use rand::SeedableRng;
use rand::rngs::StdRng;
use str0m::media::Mid;

/// One received voice packet: receiver, mid, extended seq, one-way latency.
type Packet = (usize, Mid, u64, Option<Duration>);

#[derive(Clone, Default)]
struct Rec {
    dc_open: Arc<Mutex<BTreeSet<usize>>>,
    /// (receiver, mid) → sending session.
    senders: Arc<Mutex<HashMap<(usize, Mid), String>>>,
    packets: Arc<Mutex<Vec<Packet>>>,
}

impl EventSink for Rec {
    fn on_event(&mut self, participant: usize, _now: Instant, event: &Event) {
        match event {
            Event::DcOpen => {
                self.dc_open.lock().unwrap().insert(participant);
            }
            Event::TrackAdded(t) => {
                if let Some(s) = &t.sender {
                    self.senders
                        .lock()
                        .unwrap()
                        .insert((participant, t.mid), s.clone());
                }
            }
            Event::Rtp(r) if r.kind == Some(TrackKind::Voice) => {
                if let Some(mid) = r.mid {
                    self.packets
                        .lock()
                        .unwrap()
                        .push((participant, mid, r.seq, r.one_way()));
                }
            }
            _ => {}
        }
    }
}

/// 50 packets/s of opaque Opus-like payloads; the sequence numbers start near the 16-bit wrap so
/// the send-log lookup is exercised across it.
fn voice() -> Box<dyn MediaSource> {
    let frames = (0..50u8)
        .map(|i| ClipFrame {
            payloads: vec![Arc::from(vec![0xfc, i, 0xff, 0xfe])],
            keyframe: false,
            audio_level: Some(30),
        })
        .collect();
    let clip = Arc::new(Clip {
        frames,
        interval: Duration::from_millis(20),
        clock_rate: 48_000,
    });
    Box::new(ClipSource::new(clip, 65_500, 0))
}

struct Call {
    _sfu: EmbeddedSfu,
    dir: std::path::PathBuf,
    driver: Driver<Rec>,
    rec: Rec,
    sessions: Vec<String>,
}

/// Spawns the SFU, adds `n` participants to one call (impairing those in `links` right after
/// `add`), joins them and waits until every data channel is open.
async fn call(name: &str, n: usize, links: &HashMap<usize, Link>) -> Call {
    let dir = std::env::temp_dir().join(format!(
        "callsbench-engine-impair-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let sfu = EmbeddedSfu::spawn(&default_program(), &dir)
        .expect("the callsref binary (cargo build -p callsref)");
    let mut rng = StdRng::seed_from_u64(5);
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
    let rec = Rec::default();
    let cfg = DriverConfig {
        threads: 1,
        local_ip: "127.0.0.1".parse().unwrap(),
    };
    let mut driver = Driver::start(cfg, |_| rec.clone()).unwrap();
    let mut sessions = Vec::new();
    for i in 0..n {
        let cfg = ParticipantConfig {
            call_id: call_id.clone(),
            user_id: new_id(&mut rng),
            session_id: new_id(&mut rng),
            channel_id: "channel".into(),
            dc_signaling: false,
            local_addr: "127.0.0.1:0".parse().unwrap(),
            seed: 1000 + i as u64,
        };
        let session_id = cfg.session_id.clone();
        host.add_participant(&mut driver, cfg).unwrap();
        if let Some(link) = links.get(&i) {
            driver.impair(&session_id, *link).unwrap();
        }
        driver.command(&session_id, Command::Join).unwrap();
        sessions.push(session_id);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while rec.dc_open.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        rec.dc_open.lock().unwrap().len(),
        n,
        "every data channel open"
    );
    Call {
        _sfu: sfu,
        dir,
        driver,
        rec,
        sessions,
    }
}

impl Call {
    fn unmute(&self, speakers: &[usize]) {
        for &s in speakers {
            self.driver
                .command(&self.sessions[s], Command::Unmute(Some(voice())))
                .unwrap();
        }
    }

    /// Waits until every receiver in `receivers` has `count` voice packets from each of `from`
    /// senders (by session), polling with a deadline.
    async fn wait_heard(&self, receivers: &[usize], from: usize, count: usize) {
        let enough = || {
            let p = self.rec.packets.lock().unwrap();
            let senders = self.rec.senders.lock().unwrap();
            receivers.iter().all(|&r| {
                let mut per: HashMap<&str, usize> = HashMap::new();
                for (rx, mid, _, _) in p.iter().filter(|x| x.0 == r) {
                    if let Some(s) = senders.get(&(*rx, *mid)) {
                        *per.entry(s.as_str()).or_default() += 1;
                    }
                }
                per.len() == from && per.values().all(|&c| c >= count)
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !enough() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(enough(), "receivers {receivers:?} hear {from} speakers");
    }

    fn stop(self) -> (Rec, Vec<ShardCounters>, Vec<String>) {
        let Call {
            _sfu: sfu,
            dir,
            driver,
            rec,
            sessions,
        } = self;
        let counters = driver.stop().into_iter().map(|(_, c)| c).collect();
        drop(sfu);
        let _ = std::fs::remove_dir_all(&dir);
        (rec, counters, sessions)
    }
}

/// Packets received and expected (from the span of extended sequence numbers) per (receiver, mid).
fn loss_of(packets: &[Packet], receivers: &[usize]) -> (u64, u64) {
    let mut seqs: HashMap<(usize, Mid), BTreeSet<u64>> = HashMap::new();
    for (rx, mid, seq, _) in packets.iter().filter(|p| receivers.contains(&p.0)) {
        seqs.entry((*rx, *mid)).or_default().insert(*seq);
    }
    seqs.values().fold((0, 0), |(got, want), s| {
        let span = s.last().unwrap() - s.first().unwrap() + 1;
        (got + s.len() as u64, want + span)
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    assert!(!v.is_empty());
    v.sort_unstable();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_down_loss_is_measured_as_five_percent() {
    // Two speakers, twelve receivers with 5 % loss on what they receive, one clean receiver.
    // 12 × 2 × 50 packets/s × 6 s ≈ 7200 packets: binomial σ ≈ 0.26 %, so ±1 % is ~4 σ.
    let lossy: Vec<usize> = (2..14).collect();
    let clean = 14;
    let link = Link {
        loss: 0.05,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        direction: Direction::Down,
    };
    let links: HashMap<usize, Link> = lossy.iter().map(|&i| (i, link)).collect();
    let c = call("loss", 15, &links).await;
    c.unmute(&[0, 1]);
    c.wait_heard(&[clean], 2, 10).await;
    // Only the steady window counts: forget what came before it.
    c.rec.packets.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (rec, counters, _) = c.stop();
    let packets = rec.packets.lock().unwrap();

    let (got, want) = loss_of(&packets, &lossy);
    let loss = 1.0 - got as f64 / want as f64;
    let (cgot, cwant) = loss_of(&packets, &[clean]);
    let clean_loss = 1.0 - cgot as f64 / cwant as f64;
    eprintln!(
        "lossy group: {got}/{want} received, loss {:.2} %; clean receiver: {cgot}/{cwant}, \
         loss {:.2} %; driver: {counters:?}",
        loss * 100.0,
        clean_loss * 100.0
    );
    assert!(want > 6000, "{want} packets expected in the window");
    assert!((0.04..=0.06).contains(&loss), "measured loss {loss}");
    assert!(clean_loss < 0.005, "clean receiver loss {clean_loss}");
    assert!(counters[0].impaired_dropped > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_ms_delay_raises_one_way_latency_by_fifty_ms() {
    // Speaker 0 has 50 ms on what it sends, speaker 1 none; receiver 2 is clean, receiver 3 has
    // 50 ms on what it receives.
    let delay = Link {
        loss: 0.0,
        delay: Duration::from_millis(50),
        jitter: Duration::ZERO,
        direction: Direction::Up,
    };
    let links = HashMap::from([
        (0, delay),
        (
            3,
            Link {
                direction: Direction::Down,
                ..delay
            },
        ),
    ]);
    let c = call("delay", 4, &links).await;
    c.unmute(&[0, 1]);
    c.wait_heard(&[2, 3], 2, 10).await;
    c.rec.packets.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (rec, counters, sessions) = c.stop();
    let packets = rec.packets.lock().unwrap();
    let senders = rec.senders.lock().unwrap();

    let latencies = |rx: usize, tx: usize| -> Vec<Duration> {
        packets
            .iter()
            .filter(|p| p.0 == rx && senders.get(&(rx, p.1)) == Some(&sessions[tx]))
            .filter_map(|p| p.3)
            .collect()
    };
    // Every received voice packet found its send instant.
    let found = packets.iter().filter(|p| p.3.is_some()).count();
    assert!(
        found * 100 >= packets.len() * 99,
        "{found} of {} packets matched",
        packets.len()
    );
    let clean_clean = median(latencies(2, 1));
    let up_delayed = median(latencies(2, 0));
    let down_delayed = median(latencies(3, 1));
    let both = median(latencies(3, 0));
    eprintln!(
        "median one-way latency: clean→clean {:.2} ms, up-delayed speaker→clean {:.2} ms, \
         clean→down-delayed {:.2} ms, up→down {:.2} ms; driver: {counters:?}",
        ms(clean_clean),
        ms(up_delayed),
        ms(down_delayed),
        ms(both)
    );
    let rise_up = ms(up_delayed) - ms(clean_clean);
    let rise_down = ms(down_delayed) - ms(clean_clean);
    let rise_both = ms(both) - ms(clean_clean);
    assert!((47.0..=53.0).contains(&rise_up), "up rise {rise_up} ms");
    assert!(
        (47.0..=53.0).contains(&rise_down),
        "down rise {rise_down} ms"
    );
    assert!(
        (97.0..=103.0).contains(&rise_both),
        "both rise {rise_both} ms"
    );
    assert!(counters[0].impaired_delayed > 0);
    assert_eq!(counters[0].impaired_dropped, 0);
}
