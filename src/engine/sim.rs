//! A deterministic simulation: participants and a server side over an in-memory network with seeded
//! loss and delay, in virtual time that jumps to the earliest deadline (style.md §2).
//!
//! Nothing here sleeps or reads the clock: a ten-second call runs in milliseconds of CPU, the same
//! seed gives the same run, and [`Sim::run_until`] fails with [`SimError::Livelock`] instead of
//! spinning forever when a condition never becomes true.
//!
//! Over 600 lines because the engine's scenario tests (calls, DC signalling, lossy links, stats,
//! NACK, simulcast, PLI, leave) live at its bottom; the simulation itself is under 400.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callsref::proto::rtcd::ws::WsMessage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::participant::{
    Command, Datagram, Event, Input, Output, Participant, ParticipantConfig, ParticipantError,
};
use super::sendlog::SendLog;

/// The server side of a simulation: an SFU core (the reference SFU's, or a test double), driven with
/// the same sans-IO contract as a participant.
pub trait SimServer {
    /// The one UDP address all participants send media to.
    fn addr(&self) -> SocketAddr;
    /// A plugin → rtcd message (`join`, `rtc`, `leave`).
    fn handle_signal(&mut self, now: Instant, msg: WsMessage);
    fn handle_datagram(&mut self, now: Instant, source: SocketAddr, contents: &[u8]);
    fn handle_timeout(&mut self, now: Instant);
    /// Drain until [`ServerOutput::Timeout`].
    fn poll_output(&mut self) -> ServerOutput;
}

/// What a [`SimServer`] wants done.
#[derive(Debug)]
pub enum ServerOutput {
    /// An rtcd → plugin message (`rtc`, `vad`, `close`), routed by its session id.
    Signal(WsMessage),
    Transmit {
        destination: SocketAddr,
        contents: Vec<u8>,
    },
    Timeout(Instant),
}

/// Impairment of every link (both directions).
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// Probability that a datagram is dropped.
    pub loss: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..jitter` per datagram (may reorder).
    pub jitter: Duration,
    /// One-way delay of signalling (plugin WebSocket), never lost.
    pub signal_delay: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            loss: 0.0,
            delay: Duration::from_millis(5),
            jitter: Duration::ZERO,
            signal_delay: Duration::from_millis(2),
        }
    }
}

/// Why a simulation stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("participant {index}: {source}")]
    Participant {
        index: usize,
        #[source]
        source: ParticipantError,
    },
    #[error("condition not met after {steps} steps ({elapsed:?} of virtual time)")]
    Livelock { steps: usize, elapsed: Duration },
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    order: u64,
    from: SocketAddr,
    to: SocketAddr,
    contents: Vec<u8>,
}

#[derive(Debug)]
enum SignalTo {
    Server(WsMessage),
    Participant(usize, WsMessage),
}

/// Participants, a server and the network between them, in virtual time.
pub struct Sim<S: SimServer> {
    start: Instant,
    now: Instant,
    pub server: S,
    participants: Vec<Participant>,
    deadlines: Vec<Instant>,
    by_addr: HashMap<SocketAddr, usize>,
    by_session: HashMap<String, usize>,
    net: BinaryHeap<Reverse<InFlight>>,
    signals: VecDeque<(Instant, SignalTo)>,
    server_deadline: Instant,
    link: LinkConfig,
    rng: StdRng,
    order: u64,
    /// Every event every participant reported, with its virtual time and participant index.
    pub events: Vec<(Instant, usize, Event)>,
    /// Datagrams the link dropped.
    pub dropped: u64,
    /// Send instants of the participants' voice packets (one-way latency in virtual time).
    send_log: Arc<SendLog>,
}

impl<S: SimServer> std::fmt::Debug for Sim<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("elapsed", &(self.now - self.start))
            .field("participants", &self.participants.len())
            .finish_non_exhaustive()
    }
}

impl<S: SimServer> Sim<S> {
    /// A simulation starting at `start` with the given server, link and seed.
    pub fn new(start: Instant, server: S, link: LinkConfig, seed: u64) -> Self {
        Sim {
            start,
            now: start,
            server,
            participants: Vec::new(),
            deadlines: Vec::new(),
            by_addr: HashMap::new(),
            by_session: HashMap::new(),
            net: BinaryHeap::new(),
            signals: VecDeque::new(),
            server_deadline: start,
            link,
            rng: StdRng::seed_from_u64(seed),
            order: 0,
            events: Vec::new(),
            dropped: 0,
            send_log: Arc::new(SendLog::new(start)),
        }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Adds a participant (not joined yet); returns its index.
    pub fn add(&mut self, cfg: ParticipantConfig) -> usize {
        let i = self.participants.len();
        self.by_addr.insert(cfg.local_addr, i);
        self.by_session.insert(cfg.session_id.clone(), i);
        let mut p = Participant::new(cfg, self.now);
        p.set_send_log(Arc::clone(&self.send_log));
        self.participants.push(p);
        self.deadlines.push(self.now);
        i
    }

    pub fn participant(&self, i: usize) -> &Participant {
        &self.participants[i]
    }

    pub fn participant_mut(&mut self, i: usize) -> &mut Participant {
        &mut self.participants[i]
    }

    /// Gives participant `i` a command now.
    pub fn command(&mut self, i: usize, cmd: Command) -> Result<(), SimError> {
        let now = self.now;
        self.feed(i, Input::Command(now, cmd))
    }

    /// Events of participant `i` matching `f`.
    pub fn events_of<'a>(
        &'a self,
        i: usize,
        f: impl Fn(&Event) -> bool + 'a,
    ) -> impl Iterator<Item = (Instant, &'a Event)> + 'a {
        self.events
            .iter()
            .filter(move |(_, p, e)| *p == i && f(e))
            .map(|(t, _, e)| (*t, e))
    }

    fn feed(&mut self, i: usize, input: Input<'_>) -> Result<(), SimError> {
        let wrap = |source| SimError::Participant { index: i, source };
        self.participants[i].handle_input(input).map_err(wrap)?;
        self.drain(i)
    }

    fn drain(&mut self, i: usize) -> Result<(), SimError> {
        loop {
            let out = self.participants[i]
                .poll_output()
                .map_err(|source| SimError::Participant { index: i, source })?;
            match out {
                Output::Timeout(t) => {
                    self.deadlines[i] = t;
                    return Ok(());
                }
                Output::Transmit(t) => {
                    let (from, to) = (t.source, t.destination);
                    self.send(from, to, t.contents.to_vec());
                }
                Output::Signal(msg) => {
                    let at = self.now + self.link.signal_delay;
                    self.signals.push_back((at, SignalTo::Server(msg)));
                }
                Output::Event(e) => self.events.push((self.now, i, e)),
            }
        }
    }

    fn drain_server(&mut self) {
        loop {
            match self.server.poll_output() {
                ServerOutput::Timeout(t) => {
                    self.server_deadline = t;
                    return;
                }
                ServerOutput::Transmit {
                    destination,
                    contents,
                } => {
                    let from = self.server.addr();
                    self.send(from, destination, contents);
                }
                ServerOutput::Signal(msg) => {
                    let session = match &msg {
                        WsMessage::Rtc(m) | WsMessage::Vad(m) => Some(m.session_id.as_str()),
                        WsMessage::Close { session_id } => Some(session_id.as_str()),
                        _ => None,
                    };
                    if let Some(&i) = session.and_then(|s| self.by_session.get(s)) {
                        let at = self.now + self.link.signal_delay;
                        self.signals.push_back((at, SignalTo::Participant(i, msg)));
                    }
                }
            }
        }
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, contents: Vec<u8>) {
        if self.link.loss > 0.0 && self.rng.random_bool(self.link.loss.min(1.0)) {
            self.dropped += 1;
            return;
        }
        let jitter = if self.link.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.link.jitter.mul_f64(self.rng.random::<f64>())
        };
        self.order += 1;
        self.net.push(Reverse(InFlight {
            at: self.now + self.link.delay + jitter,
            order: self.order,
            from,
            to,
            contents,
        }));
    }

    /// Advances to the next deadline and handles everything due then. Returns the new time.
    pub fn step(&mut self) -> Result<Instant, SimError> {
        for i in 0..self.participants.len() {
            self.drain(i)?;
        }
        self.drain_server();
        let mut next = self.server_deadline;
        for &d in &self.deadlines {
            next = next.min(d);
        }
        if let Some(Reverse(f)) = self.net.peek() {
            next = next.min(f.at);
        }
        if let Some((at, _)) = self.signals.front() {
            next = next.min(*at);
        }
        self.now = self.now.max(next);
        let now = self.now;

        while self.signals.front().is_some_and(|(at, _)| *at <= now) {
            let Some((_, sig)) = self.signals.pop_front() else {
                break;
            };
            match sig {
                SignalTo::Server(msg) => {
                    self.server.handle_signal(now, msg);
                    self.drain_server();
                }
                SignalTo::Participant(i, msg) => self.feed(i, Input::Signal(now, msg))?,
            }
        }
        while self.net.peek().is_some_and(|Reverse(f)| f.at <= now) {
            let Some(Reverse(f)) = self.net.pop() else {
                break;
            };
            if f.to == self.server.addr() {
                self.server.handle_datagram(now, f.from, &f.contents);
                self.drain_server();
            } else if let Some(&i) = self.by_addr.get(&f.to) {
                let d = Datagram {
                    source: f.from,
                    destination: f.to,
                    contents: &f.contents,
                };
                self.feed(i, Input::Datagram(now, d))?;
            }
        }
        if self.server_deadline <= now {
            self.server.handle_timeout(now);
            self.drain_server();
        }
        for i in 0..self.participants.len() {
            if self.deadlines[i] <= now {
                self.feed(i, Input::Timeout(now))?;
            }
        }
        Ok(now)
    }

    /// Runs until `cond` holds, failing with [`SimError::Livelock`] after `max_steps` steps or when
    /// virtual time passes `limit`.
    pub fn run_until(
        &mut self,
        limit: Duration,
        max_steps: usize,
        mut cond: impl FnMut(&Self) -> bool,
    ) -> Result<(), SimError> {
        let end = self.now + limit;
        for steps in 0..max_steps {
            if cond(self) {
                return Ok(());
            }
            if self.now > end {
                return Err(SimError::Livelock {
                    steps,
                    elapsed: self.elapsed(),
                });
            }
            self.step()?;
        }
        Err(SimError::Livelock {
            steps: max_steps,
            elapsed: self.elapsed(),
        })
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) -> Result<(), SimError> {
        let end = self.now + d;
        while self.now < end {
            self.step()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use callsref::proto::rtcd::dc::DcMessage;
    use callsref::proto::rtcd::ids::TrackKind;

    use super::*;
    use crate::engine::mock_sfu::MockSfu;
    use crate::engine::publish::Role;
    use crate::engine::source::{Clip, ClipFrame, ClipSource, MediaSource};

    fn cfg(i: usize, dc_signaling: bool) -> ParticipantConfig {
        ParticipantConfig {
            call_id: "call".into(),
            user_id: format!("user{i}"),
            session_id: format!("session{i:02}"),
            channel_id: "channel".into(),
            dc_signaling,
            local_addr: format!("10.1.0.{}:5000", i + 1).parse().unwrap(),
            seed: i as u64,
        }
    }

    /// A 20 ms audio clip of distinct payloads (opaque bytes: nothing here decodes them), frame
    /// `i` at audio level `level(i)`, sequence numbers from `first_seq`.
    fn voice(level: impl Fn(u8) -> u8, first_seq: u16) -> Box<dyn MediaSource> {
        let frames = (0..50u8)
            .map(|i| ClipFrame {
                payloads: vec![Arc::from(vec![0xfc, i, 1, 2, 3, 4, 5, 6])],
                keyframe: false,
                audio_level: Some(level(i) as i8),
            })
            .collect();
        let clip = Arc::new(Clip {
            frames,
            interval: Duration::from_millis(20),
            clock_rate: 48_000,
        });
        Box::new(ClipSource::new(clip, first_seq, 0))
    }

    /// A steady 30 dBov: never voice by rtcd's rule.
    fn audio() -> Box<dyn MediaSource> {
        voice(|_| 30, 1000)
    }

    /// Levels swinging between 30 and 60 dBov, as speech does (a standard deviation of 15,
    /// above rtcd's VAD threshold of 10).
    fn speech() -> Box<dyn MediaSource> {
        voice(|i| if i % 2 == 0 { 30 } else { 60 }, 3000)
    }

    /// A 5 fps video clip, a keyframe every 10 frames, 3 packets a frame.
    fn video() -> Box<dyn MediaSource> {
        let frames = (0..30u8)
            .map(|i| ClipFrame {
                payloads: (0..3u8)
                    .map(|k| Arc::from(vec![0x90, 0x80, i, k, 0, 0, 0, 0]))
                    .collect(),
                keyframe: i % 10 == 0,
                audio_level: None,
            })
            .collect();
        let clip = Arc::new(Clip {
            frames,
            interval: Duration::from_millis(200),
            clock_rate: 90_000,
        });
        Box::new(ClipSource::new(clip, 2000, 0))
    }

    fn sim(n: usize, link: LinkConfig, dc_signaling: bool) -> Sim<MockSfu> {
        let start = Instant::now();
        let server = MockSfu::new("10.0.0.1:8443".parse().unwrap(), start);
        let mut sim = Sim::new(start, server, link, 7);
        for i in 0..n {
            sim.add(cfg(i, dc_signaling));
        }
        for i in 0..n {
            sim.command(i, Command::Join).unwrap();
        }
        sim
    }

    fn all_dc_open(s: &Sim<MockSfu>) -> bool {
        (0..s.participants.len()).all(|i| s.participant(i).is_dc_open())
    }

    fn voice_packets_from(s: &Sim<MockSfu>, receiver: usize, sender: usize) -> u64 {
        let sender = format!("session{sender:02}");
        s.participant(receiver)
            .remote_tracks()
            .filter(|(_, t)| {
                t.kind == Some(TrackKind::Voice) && t.sender.as_deref() == Some(&sender)
            })
            .map(|(_, t)| t.packets)
            .sum()
    }

    #[test]
    fn mock_sfu_call_joins_and_carries_two_speakers() {
        let mut s = sim(3, LinkConfig::default(), false);
        s.run_until(Duration::from_secs(5), 100_000, all_dc_open)
            .unwrap();
        let joined = s.elapsed();
        assert!(joined < Duration::from_millis(500), "join took {joined:?}");

        s.command(0, Command::Unmute(Some(audio()))).unwrap();
        s.command(1, Command::Unmute(Some(audio()))).unwrap();
        s.run_for(Duration::from_secs(3)).unwrap();

        // The third participant hears both speakers; each speaker hears the other.
        for (rx, tx) in [(2, 0), (2, 1), (0, 1), (1, 0)] {
            let got = voice_packets_from(&s, rx, tx);
            assert!(got > 100, "{rx} got {got} packets from {tx}");
        }
        assert_eq!(voice_packets_from(&s, 0, 0), 0, "no echo of own track");
        // Unmute is a locked renegotiation followed by the `unmute` message.
        let negotiated: Vec<_> = s
            .events_of(0, |e| {
                matches!(
                    e,
                    Event::Negotiated {
                        change: Some(_),
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(negotiated.len(), 1);
        assert!(s.participant(0).sent_packets(Role::Voice) > 140);
        // Pings every second are answered.
        let pongs = s.events_of(2, |e| matches!(e, Event::Pong { .. })).count();
        assert!((3..=5).contains(&pongs), "{pongs} pongs");
        // The received audio carries the audio level the source set.
        let level = s
            .events_of(
                2,
                |e| matches!(e, Event::Rtp(r) if r.kind == Some(TrackKind::Voice)),
            )
            .find_map(|(_, e)| match e {
                Event::Rtp(r) => r.audio_level,
                _ => None,
            });
        assert_eq!(level, Some(-30));
        // One-way latency from the send log: two 5 ms hops in virtual time, for every voice packet.
        let latencies: Vec<Duration> = s
            .events_of(
                2,
                |e| matches!(e, Event::Rtp(r) if r.kind == Some(TrackKind::Voice)),
            )
            .map(|(_, e)| match e {
                Event::Rtp(r) => r.one_way().expect("send instant found"),
                _ => unreachable!(),
            })
            .collect();
        assert!(latencies.len() > 200);
        assert!(
            latencies.iter().all(|d| *d == Duration::from_millis(10)),
            "{:?}",
            &latencies[..5]
        );
    }

    #[test]
    fn vad_on_is_matched_to_the_packet_that_turned_voice_on() {
        use callsref::proto::rtcd::rtc::{RtcMessage, RtcType};
        let mut s = sim(2, LinkConfig::default(), false);
        s.run_until(Duration::from_secs(5), 100_000, all_dc_open)
            .unwrap();
        s.command(0, Command::Unmute(Some(speech()))).unwrap();
        s.run_for(Duration::from_secs(2)).unwrap();
        // The listener times the speaker's packets from the send log: the first one's send
        // instant starts the VAD window.
        let first_sent = s
            .events_of(
                1,
                |e| matches!(e, Event::Rtp(r) if r.kind == Some(TrackKind::Voice)),
            )
            .find_map(|(_, e)| match e {
                Event::Rtp(r) => r.sent,
                _ => None,
            })
            .expect("a timed voice packet");
        // rtcd's `vad` on reaches the speaker (the mock SFU has no VAD, so the test plays it).
        let vad = WsMessage::Vad(RtcMessage::signal("session00", RtcType::VoiceOn));
        let now = s.now();
        s.feed(0, Input::Signal(now, vad.clone())).unwrap();
        s.feed(0, Input::Signal(now, vad)).unwrap();
        let ons: Vec<Event> = s
            .events_of(0, |e| matches!(e, Event::VoiceActivity { .. }))
            .map(|(_, e)| e.clone())
            .collect();
        // rtcd's rule needs a full window of 50 levels: voice turned on with the 50th packet,
        // 49 packet intervals after the first. A second `on` has no new onset to match.
        assert_eq!(
            ons,
            [
                Event::VoiceActivity {
                    on: true,
                    onset: Some(first_sent + Duration::from_millis(20 * 49)),
                    at: now,
                },
                Event::VoiceActivity {
                    on: true,
                    onset: None,
                    at: now,
                },
            ]
        );
    }

    #[test]
    fn mock_sfu_dc_signaling_and_lossy_link() {
        let link = LinkConfig {
            loss: 0.03,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(10),
            signal_delay: Duration::from_millis(5),
        };
        let mut s = sim(2, link, true);
        s.run_until(Duration::from_secs(10), 200_000, all_dc_open)
            .unwrap();
        s.command(0, Command::Unmute(Some(audio()))).unwrap();
        // Lost SCTP chunks can hold the locked renegotiation up by whole retransmission timeouts,
        // so measure from the moment the listener has the track.
        s.run_until(Duration::from_secs(15), 400_000, |s| {
            voice_packets_from(s, 1, 0) > 0
        })
        .unwrap();
        let before = voice_packets_from(&s, 1, 0);
        s.run_for(Duration::from_secs(3)).unwrap();
        assert!(s.dropped > 0, "the link dropped nothing");
        let got = voice_packets_from(&s, 1, 0) - before;
        // 150 packets sent in 3 s over two lossy hops of 3 % (audio is not retransmitted).
        assert!((125..=151).contains(&got), "got {got}");
        assert_eq!(s.server.server_offers_answered, 1);
    }

    #[test]
    fn mock_sfu_screen_share_answers_pli_with_keyframe() {
        let mut s = sim(2, LinkConfig::default(), false);
        s.run_until(Duration::from_secs(5), 100_000, all_dc_open)
            .unwrap();
        s.command(
            0,
            Command::ScreenOn {
                low: video(),
                high: None,
            },
        )
        .unwrap();
        s.run_for(Duration::from_secs(3)).unwrap();
        let track = s
            .participant(1)
            .remote_tracks()
            .find(|(_, t)| t.kind == Some(TrackKind::Screen))
            .map(|(_, t)| t.clone())
            .expect("viewer got the screen track");
        assert!(track.packets > 20, "{} packets", track.packets);
        // The viewer's PLI on the new screen track reached the sharer's source.
        assert!(s.participant(0).keyframes_served(Role::Screen) >= 1);
        let kf = s.events_of(0, |e| {
            matches!(
                e,
                Event::KeyframeRequested {
                    role: Some(Role::Screen),
                    ..
                }
            )
        });
        assert!(kf.count() >= 1);

        s.command(0, Command::ScreenOff).unwrap();
        s.run_for(Duration::from_secs(1)).unwrap();
        assert_eq!(
            s.participant(0).sent_packets(Role::Screen),
            0,
            "screen publication removed"
        );
        assert!(s.participant(0).is_settled());
    }

    #[test]
    fn mock_sfu_gets_dc_stats_every_four_seconds() {
        let mut s = sim(2, LinkConfig::default(), false);
        s.run_until(Duration::from_secs(5), 100_000, all_dc_open)
            .unwrap();
        // Rounds at +4 s and +8 s after the data channel opened.
        s.run_for(Duration::from_secs(9)).unwrap();
        for i in 0..2 {
            let stats = &s.server.dc_stats[&format!("session{i:02}")];
            let count = |f: fn(&DcMessage) -> bool| stats.iter().filter(|m| f(m)).count();
            assert_eq!(
                count(|m| matches!(m, DcMessage::LossRate(_))),
                2,
                "{stats:?}"
            );
            assert_eq!(count(|m| matches!(m, DcMessage::RoundTripTime(_))), 2);
            assert_eq!(count(|m| matches!(m, DcMessage::Jitter(_))), 2);
            assert!(
                stats
                    .iter()
                    .all(|m| !matches!(m, DcMessage::LossRate(l) if *l != 0.0)),
                "no loss on a clean link: {stats:?}"
            );
        }
    }

    #[test]
    fn mock_sfu_viewer_nacks_lost_video_packets() {
        let link = LinkConfig {
            loss: 0.05,
            ..LinkConfig::default()
        };
        let mut s = sim(2, link, false);
        s.run_until(Duration::from_secs(10), 200_000, all_dc_open)
            .unwrap();
        s.command(
            0,
            Command::ScreenOn {
                low: video(),
                high: None,
            },
        )
        .unwrap();
        s.run_until(Duration::from_secs(15), 400_000, |s| {
            s.participant(1)
                .remote_tracks()
                .any(|(_, t)| t.kind == Some(TrackKind::Screen) && t.packets > 0)
        })
        .unwrap();
        s.run_for(Duration::from_secs(6)).unwrap();
        // ~90 video packets over two 5 % hops: the viewer NACKs the gaps it sees.
        let nacks: u64 = s
            .server
            .nacks
            .iter()
            .filter(|((id, _), _)| id == "session01")
            .map(|(_, n)| n)
            .sum();
        assert!(nacks > 0, "viewer sent no NACK: {:?}", s.server.nacks);
    }

    #[test]
    fn mock_sfu_simulcast_screen_sends_both_layers_with_rids() {
        let mut s = sim(2, LinkConfig::default(), false);
        s.run_until(Duration::from_secs(5), 100_000, all_dc_open)
            .unwrap();
        s.command(
            0,
            Command::ScreenOn {
                low: video(),
                high: Some(video()),
            },
        )
        .unwrap();
        s.run_until(Duration::from_secs(5), 200_000, |s| {
            s.server.packets_by_rid.get("h").copied().unwrap_or(0) > 0
        })
        .unwrap();
        let (l0, h0) = (s.server.packets_by_rid["l"], s.server.packets_by_rid["h"]);
        s.run_for(Duration::from_secs(2)).unwrap();
        // Each layer is a 5 fps clip of 3 packets a frame: 30 packets in 2 s.
        let l = s.server.packets_by_rid["l"] - l0;
        let h = s.server.packets_by_rid["h"] - h0;
        assert!((28..=32).contains(&l), "low layer {l}");
        assert!((28..=32).contains(&h), "high layer {h}");
        assert_eq!(
            s.server.packets_by_rid.get("-"),
            None,
            "no packet without a rid"
        );
    }

    #[test]
    fn mock_sfu_leave_gets_close() {
        let mut s = sim(2, LinkConfig::default(), false);
        s.run_until(Duration::from_secs(5), 100_000, all_dc_open)
            .unwrap();
        s.command(1, Command::Leave).unwrap();
        s.run_until(Duration::from_secs(2), 10_000, |s| {
            !s.participant(1).is_alive()
        })
        .unwrap();
        let closed: Vec<_> = s
            .events_of(1, |e| matches!(e, Event::Closed { .. }))
            .collect();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].1, &Event::Closed { by_server: false });
    }

    #[test]
    fn bounded_run_reports_livelock() {
        let mut s = sim(1, LinkConfig::default(), false);
        let err = s
            .run_until(Duration::from_secs(1), 50, |_| false)
            .unwrap_err();
        assert!(matches!(err, SimError::Livelock { .. }), "{err}");
    }

    #[test]
    fn same_seed_same_run() {
        let run = || {
            let link = LinkConfig {
                loss: 0.05,
                ..LinkConfig::default()
            };
            let mut s = sim(2, link, false);
            s.run_for(Duration::from_secs(1)).unwrap();
            s.dropped
        };
        assert_eq!(run(), run());
    }
}
