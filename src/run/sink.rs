//! The run's [`EventSink`]: one per engine thread, turning participant events into measurement
//! [`Record`]s (join phases, sessions, per-stream loss, jitter, one-way latency, freezes) in the
//! thread's own [`Recorder`], handed to the aggregator once a second over a channel.
//!
//! Per received stream it keeps the RFC 3550 state (extended sequence range, received count,
//! interarrival jitter); one-way latency comes with each voice packet from the engine's send log.
//! Nothing here locks per packet: the shared session table is read once per participant.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use callsref::proto::rtcd::ids::TrackKind as WireKind;
use str0m::media::Mid;

use crate::engine::driver::EventSink;
use crate::engine::participant::Event;
use crate::measure::{
    HotCounters, Interval, JoinPhase, LatencyHistogram, Record, Recorder, TrackKind,
};

/// A gap between two frames longer than this is a freeze (issue #5: "no frame for > 500 ms").
pub const FREEZE_GAP: Duration = Duration::from_millis(500);

/// Tracks a session expects to receive when it joins: one per sender already in its call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    pub audio: u32,
    pub screen: u32,
    pub video: u32,
}

impl Expected {
    fn of(&self, kind: TrackKind) -> u32 {
        match kind {
            TrackKind::Audio => self.audio,
            TrackKind::Screen => self.screen,
            TrackKind::Video => self.video,
        }
    }
}

/// What the sink needs to know about a participant, registered before its `Join`.
#[derive(Debug)]
pub struct SessionMeta {
    pub session_id: String,
    /// The call the session belongs to (per-host outcomes, `target::placement`).
    pub call_id: String,
    /// Planned join time on the run clock (join latency is measured from it).
    pub scheduled: Duration,
    pub expected: Expected,
    /// Impairment group, if any (per-group figures).
    pub group: Option<u32>,
}

/// State shared by the orchestrator, the sinks and the progress display.
#[derive(Debug)]
pub struct Shared {
    /// Zero of the run clock.
    pub epoch: Instant,
    pub counters: Arc<HotCounters>,
    /// Participants by driver index.
    pub sessions: RwLock<HashMap<usize, Arc<SessionMeta>>>,
    /// Sessions connected now (DC open, not closed).
    pub connected: AtomicU64,
    /// Sessions that received every expected track.
    pub joined: AtomicU64,
    /// Expected tracks seen with at least one packet, and expected in total (all sessions so far).
    pub tracks_received: AtomicU64,
    pub tracks_expected: AtomicU64,
}

impl Shared {
    pub fn new(epoch: Instant, counters: Arc<HotCounters>) -> Self {
        Shared {
            epoch,
            counters,
            sessions: RwLock::default(),
            connected: AtomicU64::new(0),
            joined: AtomicU64::new(0),
            tracks_received: AtomicU64::new(0),
            tracks_expected: AtomicU64::new(0),
        }
    }

    fn clock(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.epoch)
    }
}

/// RFC 3550 receive state of one stream.
#[derive(Debug)]
struct Stream {
    kind: TrackKind,
    clock_rate: f64,
    base: u64,
    max: u64,
    received: u64,
    reported_expected: u64,
    reported_lost: u64,
    /// Interarrival jitter in RTP clock units (RFC 3550 §6.4.1).
    jitter: f64,
    last_transit: Option<f64>,
    last_frame: Option<Instant>,
}

impl Stream {
    /// Moves the loss accounting on; returns (expected, lost) since the last call.
    fn loss_delta(&mut self) -> (u64, u64) {
        let expected = self.max - self.base + 1;
        let lost = expected.saturating_sub(self.received);
        let d_expected = expected - self.reported_expected;
        let d_lost = lost.saturating_sub(self.reported_lost);
        self.reported_expected = expected;
        self.reported_lost = self.reported_lost.max(lost);
        (d_expected, d_lost)
    }

    /// [`Stream::loss_delta`], also added to the participant's group figures. Group loss is voice
    /// only: lost video is resent on NACK, so its residual loss says how well retransmission
    /// worked, not what the network dropped.
    fn loss_delta_into(&mut self, group: &mut GroupFigures) -> (u64, u64) {
        let (expected, lost) = self.loss_delta();
        if self.kind == TrackKind::Audio {
            group.expected += expected;
            group.lost += lost;
        }
        (expected, lost)
    }
}

#[derive(Debug)]
struct Part {
    meta: Arc<SessionMeta>,
    mids: HashMap<Mid, (TrackKind, Option<String>)>,
    streams: HashMap<u32, Stream>,
    /// (kind, sender) pairs with at least one packet.
    heard: HashSet<(TrackKind, String)>,
    reached: [bool; 6],
    up: bool,
    /// When the target closed the session without a planned leave (run clock).
    dropped_at: Option<Duration>,
}

/// How one session ended, for the per-host record of a multi-SFU run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOutcome {
    pub call_id: String,
    /// Planned join time on the run clock.
    pub scheduled: Duration,
    /// Completed its join (first media on every expected track).
    pub joined: bool,
    /// Closed by the target without a planned leave, at this time.
    pub dropped_at: Option<Duration>,
}

/// What the sessions of one impairment group received: packets expected and lost on their
/// received streams, and the one-way latency of their received audio.
#[derive(Debug, Clone, Default)]
pub struct GroupFigures {
    pub expected: u64,
    pub lost: u64,
    pub latency: LatencyHistogram,
}

impl GroupFigures {
    pub fn add(&mut self, o: &GroupFigures) {
        self.expected += o.expected;
        self.lost += o.lost;
        self.latency.add(&o.latency);
    }

    /// Lost / expected.
    pub fn loss(&self) -> Option<f64> {
        (self.expected > 0).then(|| self.lost as f64 / self.expected as f64)
    }
}

/// Figures per impairment group (`None`: the unimpaired sessions).
pub type Groups = HashMap<Option<u32>, GroupFigures>;

/// Per-thread sink. See the module docs.
#[derive(Debug)]
pub struct RunSink {
    shared: Arc<Shared>,
    recorder: Recorder,
    tx: mpsc::Sender<Interval>,
    next_flush: Instant,
    parts: HashMap<usize, Part>,
    groups: Groups,
    /// Received voice packets whose send instant was found in the send log, and those whose was
    /// not (see [`RunSink::latency_coverage`]).
    voice_matched: u64,
    voice_unmatched: u64,
}

fn kind_of(kind: WireKind) -> TrackKind {
    match kind {
        WireKind::Voice | WireKind::ScreenAudio => TrackKind::Audio,
        WireKind::Screen => TrackKind::Screen,
        WireKind::Video => TrackKind::Video,
    }
}

impl RunSink {
    pub fn new(shared: Arc<Shared>, tx: mpsc::Sender<Interval>) -> Self {
        let next_flush = Instant::now() + Duration::from_secs(1);
        RunSink {
            shared,
            recorder: Recorder::new(),
            tx,
            next_flush,
            parts: HashMap::new(),
            groups: Groups::new(),
            voice_matched: 0,
            voice_unmatched: 0,
        }
    }

    fn part(&mut self, index: usize) -> Option<&mut Part> {
        if !self.parts.contains_key(&index) {
            let meta = self
                .shared
                .sessions
                .read()
                .ok()
                .and_then(|m| m.get(&index).cloned())?;
            self.parts.insert(
                index,
                Part {
                    meta,
                    mids: HashMap::new(),
                    streams: HashMap::new(),
                    heard: HashSet::new(),
                    reached: [false; 6],
                    up: false,
                    dropped_at: None,
                },
            );
        }
        self.parts.get_mut(&index)
    }

    /// Per-stream loss and jitter of the last second into the counters and the recorder, then the
    /// interval to the aggregator.
    pub fn flush(&mut self) {
        for part in self.parts.values_mut() {
            let group = self.groups.entry(part.meta.group).or_default();
            for s in part.streams.values_mut() {
                let (expected, lost) = s.loss_delta_into(group);
                if expected > 0 {
                    self.shared.counters.media_quality(s.kind, expected, lost);
                    self.recorder.record(Record::StreamLoss {
                        kind: s.kind,
                        expected,
                        lost,
                    });
                    self.recorder.record(Record::Jitter {
                        kind: s.kind,
                        jitter: Duration::from_secs_f64(s.jitter / s.clock_rate),
                    });
                }
            }
        }
        // A closed channel means the aggregator is gone (end of run): nothing left to tell.
        let _ = self.tx.send(self.recorder.take());
    }

    /// How each session this thread saw ended (call before [`RunSink::finish`]); a session that
    /// did not join counts as a failed join there.
    pub fn outcomes(&self) -> Vec<SessionOutcome> {
        self.parts
            .values()
            .map(|p| SessionOutcome {
                call_id: p.meta.call_id.clone(),
                scheduled: p.meta.scheduled,
                joined: p.reached[JoinPhase::FirstMedia.index()],
                dropped_at: p.dropped_at,
            })
            .collect()
    }

    /// Received voice packets with and without a known send instant: (matched, unmatched).
    ///
    /// Send instants live in this process's send log, so a receiver can only time packets of a
    /// speaker driven by the same harness process. A sharded run (`--shard I/N`) splits a call
    /// larger than the shard limit across processes, often other machines with other clocks, and
    /// the receivers of another shard's speakers have nothing to look up: their one-way latency is
    /// not measured (none at all on a shard without speakers). Carrying send times in the packets
    /// would need a header extension rtcd does not forward. The coverage says how much of the
    /// voice the latency figures speak for.
    pub fn latency_coverage(&self) -> (u64, u64) {
        (self.voice_matched, self.voice_unmatched)
    }

    /// Ends the run for this thread: sessions that never completed their join are counted as
    /// failed at the first phase they missed; returns the last interval and the group figures.
    pub fn finish(mut self) -> (Interval, Groups) {
        for part in self.parts.values() {
            if !part.reached[JoinPhase::FirstMedia.index()]
                && let Some(phase) = JoinPhase::ALL.iter().find(|p| !part.reached[p.index()])
            {
                self.recorder.record(Record::JoinFailed { phase: *phase });
            }
        }
        for part in self.parts.values_mut() {
            let group = self.groups.entry(part.meta.group).or_default();
            for s in part.streams.values_mut() {
                let (expected, lost) = s.loss_delta_into(group);
                self.shared.counters.media_quality(s.kind, expected, lost);
            }
        }
        (self.recorder.take(), self.groups)
    }

    fn maybe_flush(&mut self, now: Instant) {
        if now >= self.next_flush {
            self.next_flush = now + Duration::from_secs(1);
            self.flush();
        }
    }

    fn reach(&mut self, index: usize, phase: JoinPhase, at: Instant) {
        let at = self.shared.clock(at);
        let Some(part) = self.part(index) else { return };
        if part.reached[phase.index()] {
            return;
        }
        part.reached[phase.index()] = true;
        let scheduled = part.meta.scheduled;
        self.recorder.record(Record::Join {
            phase,
            scheduled,
            at,
        });
        if phase == JoinPhase::FirstMedia {
            self.shared.joined.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn first_media_done(part: &Part) -> bool {
        TrackKind::ALL.iter().all(|k| {
            part.heard.iter().filter(|(hk, _)| hk == k).count() as u32 >= part.meta.expected.of(*k)
        })
    }

    fn on_rtp(&mut self, index: usize, r: &crate::engine::participant::RtpInfo) {
        let shared = Arc::clone(&self.shared);
        let Some(part) = self.part(index) else { return };
        let (kind, sender) = match r.mid.and_then(|m| part.mids.get(&m)) {
            Some((k, s)) => (*k, s.clone()),
            None => match r.kind {
                Some(k) => (kind_of(k), None),
                None => return,
            },
        };
        let ssrc = *r.ssrc;
        let stream = part.streams.entry(ssrc).or_insert_with(|| Stream {
            kind,
            clock_rate: if kind == TrackKind::Audio {
                48_000.0
            } else {
                90_000.0
            },
            base: r.seq,
            max: r.seq,
            received: 0,
            reported_expected: 0,
            reported_lost: 0,
            jitter: 0.0,
            last_transit: None,
            last_frame: None,
        });
        stream.received += 1;
        stream.base = stream.base.min(r.seq);
        stream.max = stream.max.max(r.seq);
        // Jitter: transit = arrival (in clock units) − RTP timestamp; J += (|D| − J) / 16.
        let arrival = r
            .arrival
            .saturating_duration_since(shared.epoch)
            .as_secs_f64()
            * stream.clock_rate;
        let transit = arrival - f64::from(r.timestamp);
        if let Some(last) = stream.last_transit {
            let mut d = (transit - last).abs();
            // A timestamp wrap (2^32) shows as a huge step: skip that one sample.
            if d > 2_147_483_648.0 {
                d = stream.jitter;
            }
            stream.jitter += (d - stream.jitter) / 16.0;
        }
        stream.last_transit = Some(transit);
        let mut record = None;
        if kind != TrackKind::Audio && r.marker {
            if let Some(last) = stream.last_frame {
                let gap = r.arrival.saturating_duration_since(last);
                if gap > FREEZE_GAP {
                    record = Some(Record::Freeze { kind, gap });
                }
            }
            stream.last_frame = Some(r.arrival);
        }
        // One-way latency from the engine's send log (voice: the publisher in this harness
        // recorded when it wrote the packet with this sequence number).
        if let Some(sent) = r.sent {
            record = Some(Record::Latency {
                kind,
                intended_send: shared.clock(sent),
                received: shared.clock(r.arrival),
            });
        }
        let newly_heard = sender.is_some_and(|s| part.heard.insert((kind, s)));
        let done = newly_heard
            && !part.reached[JoinPhase::FirstMedia.index()]
            && Self::first_media_done(part);
        if newly_heard {
            shared.tracks_received.fetch_add(1, Ordering::Relaxed);
        }
        let group = part.meta.group;
        if kind == TrackKind::Audio {
            if r.sent.is_some() {
                self.voice_matched += 1;
            } else {
                self.voice_unmatched += 1;
            }
        }
        if let Some(rec) = record {
            if let Record::Latency {
                intended_send,
                received,
                ..
            } = rec
            {
                self.groups
                    .entry(group)
                    .or_default()
                    .latency
                    .record(received.saturating_sub(intended_send));
            }
            self.recorder.record(rec);
        }
        if done {
            self.reach(index, JoinPhase::FirstMedia, r.arrival);
        }
    }
}

impl EventSink for RunSink {
    fn on_timer_lag(&mut self, lag: Duration) {
        self.recorder.record(Record::LoopLag { lag });
    }

    fn on_pacing_error(&mut self, error: Duration) {
        self.recorder.record(Record::PacingError { error });
    }

    fn on_event(&mut self, index: usize, now: Instant, event: &Event) {
        match event {
            Event::JoinSent => self.reach(index, JoinPhase::Sent, now),
            Event::OfferSent => self.reach(index, JoinPhase::Offer, now),
            Event::VoiceActivity {
                on: true,
                onset: Some(onset),
                at,
            } => self.recorder.record(Record::Vad {
                intended: self.shared.clock(*onset),
                observed: self.shared.clock(*at),
            }),
            Event::ServerOfferAnswered { received } => {
                self.recorder.record(Record::ServerOffer {
                    received: self.shared.clock(*received),
                    answered: self.shared.clock(now),
                });
            }
            Event::Negotiated { change: None, .. } => self.reach(index, JoinPhase::Answer, now),
            Event::Negotiated {
                change: Some(_),
                took,
            } => {
                let completed = self.shared.clock(now);
                self.recorder.record(Record::Renegotiation {
                    started: completed.saturating_sub(*took),
                    completed,
                });
            }
            Event::IceConnected => self.reach(index, JoinPhase::IceConnected, now),
            Event::DcOpen => {
                self.reach(index, JoinPhase::DcOpen, now);
                let shared = Arc::clone(&self.shared);
                let nothing_expected = match self.part(index) {
                    Some(part) if !part.up => {
                        part.up = true;
                        part.meta.expected == Expected::default()
                    }
                    _ => return self.maybe_flush(now),
                };
                shared.connected.fetch_add(1, Ordering::Relaxed);
                self.recorder.record(Record::SessionUp);
                // Nothing to wait for: the join is complete once connected.
                if nothing_expected {
                    self.reach(index, JoinPhase::FirstMedia, now);
                }
            }
            Event::TrackAdded(t) => {
                if let (Some(part), Some(kind)) = (self.part(index), t.kind) {
                    part.mids.insert(t.mid, (kind_of(kind), t.sender.clone()));
                }
            }
            Event::Rtp(r) => self.on_rtp(index, r),
            Event::Closed { by_server } => {
                let was_up = match self.part(index) {
                    Some(part) => std::mem::replace(&mut part.up, false),
                    None => false,
                };
                if was_up {
                    self.shared.connected.fetch_sub(1, Ordering::Relaxed);
                    self.recorder.record(Record::SessionDown);
                    if *by_server {
                        self.recorder.record(Record::Disconnect);
                        let at = self.shared.clock(now);
                        if let Some(part) = self.part(index) {
                            part.dropped_at = Some(at);
                        }
                    }
                }
            }
            _ => {}
        }
        self.maybe_flush(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_is_reported_once_and_never_negative() {
        let mut s = Stream {
            kind: TrackKind::Audio,
            clock_rate: 48_000.0,
            base: 100,
            max: 149,
            received: 48,
            reported_expected: 0,
            reported_lost: 0,
            jitter: 0.0,
            last_transit: None,
            last_frame: None,
        };
        assert_eq!(s.loss_delta(), (50, 2));
        // One late packet arrives and nothing new: no negative loss, nothing expected anew.
        s.received += 1;
        assert_eq!(s.loss_delta(), (0, 0));
        s.max = 199;
        s.received += 50;
        assert_eq!(s.loss_delta(), (50, 0));
        s.max = 249;
        s.received += 45;
        assert_eq!(s.loss_delta(), (50, 4));
    }
}
