//! One participant's session: its str0m `Rtc` plus rtcd's signalling state machine around it.
//!
//! The session owns what only concerns itself: the first-offer wait, buffered remote candidates,
//! the data channel, the signalling lock shared by server offers and the client's DC Lock/Unlock,
//! the queue of track actions (one renegotiation at a time), and its outgoing m-lines. Anything
//! that crosses sessions (new published tracks, forwarded packets, keyframe requests, closing) is
//! returned to the core as a [`Step`] from [`Session::poll`].
//!
//! Somewhat over 600 lines: the lock, the first-offer wait and the negotiation queue share state
//! and are clearer read together than split.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::bwe::BweKind;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Transmit};
use str0m::rtp::{RtpPacket, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, Output as RtcOutput, Rtc};

use super::event::{ErrorKind, HistMetric, SfuEvent};
use super::signal::{ConnId, RtcMessage, RtcType, SessionProps, SignalOut};
use super::track::{SourceId, TrackType, is_audio};
use crate::proto::rtcd::{
    DcMessage, IceCandidateInit, MediaMap, SdpType, ServerCandidate, SessionDescription, TrackInfo,
};

/// Time allowed for the first offer after join.
pub const FIRST_OFFER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server offer waits for the answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server track action waits for the signalling lock.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// Remote candidates buffered before the first offer (rtcd's ICE-in channel size).
pub const CANDIDATE_BUFFER: usize = 40;

/// Index of a session in the core's session table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionIdx(pub u32);

/// Identity of a session, as echoed in every outgoing `rtc` message.
#[derive(Debug, Clone)]
pub struct SessionIds {
    pub group_id: String,
    pub call_id: String,
    pub user_id: String,
    pub session_id: String,
}

/// Who holds the per-session signalling lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    Free,
    Server(Instant),
    Client(Instant),
}

/// One renegotiation the server has to make with this client.
#[derive(Debug, Clone)]
pub enum TrackAction {
    Add {
        source: SourceId,
        kind: TrackType,
        sender_id: String,
        track_id: String,
    },
    Remove {
        mid: Mid,
    },
}

/// An outgoing m-line: a forwarded track this client receives (or is negotiating).
#[derive(Debug, Clone)]
struct OutTrack {
    mid: Mid,
    source: SourceId,
    kind: TrackType,
    sender_id: String,
    open: bool,
}

/// Server offer in flight.
#[derive(Debug)]
struct PendingOffer {
    pending: SdpPendingOffer,
    deadline: Instant,
    action: TrackAction,
    /// Mid of an added m-line, so the answer can bind it.
    added: Option<Mid>,
}

/// Something the core has to act on, produced by [`Session::poll`].
// Steps are moved straight out of `poll`; boxing the RTP packet would allocate per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Step {
    Transmit(Transmit),
    Signal(ConnId, SignalOut),
    Event(SfuEvent),
    /// An incoming RTP packet to forward.
    Rtp(RtpPacket),
    /// The client started publishing an m-line.
    MediaAdded {
        mid: Mid,
        kind: MediaKind,
        stream_id: String,
        rids: Vec<Rid>,
    },
    /// The client's data channel opened: it may now receive tracks.
    DcOpen,
    /// A receiver sent a PLI on an outgoing m-line.
    KeyframeRequest {
        mid: Mid,
    },
    /// An added m-line was negotiated; forwarding may start.
    Bound {
        source: SourceId,
        mid: Mid,
    },
    /// A new egress bandwidth estimate (bps) towards this client.
    Estimate(f64),
    /// The session must be closed (no offer in time, ICE failed).
    Close,
    /// Nothing until this instant.
    Timeout(Instant),
}

/// A participant's session. Driving contract: after any `handle_*` call, call [`Session::poll`]
/// until it returns [`Step::Timeout`].
#[derive(Debug)]
pub struct Session {
    pub ids: SessionIds,
    /// Where outgoing signalling goes; repointed by `reconnect`.
    pub conn: ConnId,
    /// Where `close` goes (rtcd quirk: the join-time connection).
    pub join_conn: ConnId,
    pub rtc: Rtc,
    pub av1_support: bool,
    pub dc_signaling: bool,
    pub props: SessionProps,
    pub joined_at: Instant,
    /// Remote addresses this session was seen from (for the core's demux map).
    pub addrs: Vec<(Protocol, SocketAddr)>,
    pub screen_stream_id: Option<String>,
    pub video_stream_id: Option<String>,
    /// Sources this session publishes, by incoming mid.
    pub published: Vec<(Mid, SourceId)>,
    /// Heap deadline the core has scheduled for this session.
    pub scheduled: Option<Instant>,
    /// Whether the core has this session in its to-drain list.
    pub queued: bool,
    /// Incoming SSRC → (source, rid), cached so forwarding needs no str0m lookup per packet.
    pub rx_ssrcs: Vec<(Ssrc, SourceId, Option<Rid>)>,
    /// Latest egress bandwidth estimate towards this client (bps), for simulcast layers.
    pub estimate: Option<f64>,
    first_offer_deadline: Option<Instant>,
    first_answer_at: Option<Instant>,
    first_mid: Option<String>,
    candidates: Vec<Candidate>,
    local_candidates: Vec<Candidate>,
    dc: Option<ChannelId>,
    lock: Lock,
    lock_wait_since: Option<Instant>,
    pending: Option<PendingOffer>,
    actions: VecDeque<TrackAction>,
    out_tracks: Vec<OutTrack>,
    steps: VecDeque<Step>,
    closed: bool,
}

impl Session {
    /// A session that has just joined; it waits [`FIRST_OFFER_TIMEOUT`] for the client's offer.
    pub fn new(
        ids: SessionIds,
        conn: ConnId,
        mut rtc: Rtc,
        local_candidates: Vec<Candidate>,
        props: SessionProps,
        now: Instant,
    ) -> Session {
        for c in &local_candidates {
            rtc.add_local_candidate(c.clone());
        }
        Session {
            ids,
            conn,
            join_conn: conn,
            rtc,
            av1_support: props.av1_support.unwrap_or(false),
            dc_signaling: props.dc_signaling.unwrap_or(false),
            props,
            joined_at: now,
            addrs: Vec::new(),
            screen_stream_id: None,
            video_stream_id: None,
            published: Vec::new(),
            scheduled: None,
            queued: false,
            rx_ssrcs: Vec::new(),
            estimate: None,
            first_offer_deadline: Some(now + FIRST_OFFER_TIMEOUT),
            first_answer_at: None,
            first_mid: None,
            candidates: Vec::new(),
            local_candidates,
            dc: None,
            lock: Lock::Free,
            lock_wait_since: None,
            pending: None,
            actions: VecDeque::new(),
            out_tracks: Vec::new(),
            steps: VecDeque::new(),
            closed: false,
        }
    }

    pub fn dc_open(&self) -> bool {
        self.dc.is_some()
    }

    fn rtc_out(&self, msg_type: RtcType, data: Vec<u8>) -> RtcMessage {
        RtcMessage {
            group_id: self.ids.group_id.clone(),
            user_id: self.ids.user_id.clone(),
            session_id: self.ids.session_id.clone(),
            call_id: self.ids.call_id.clone(),
            msg_type,
            data,
        }
    }

    fn error(&mut self, kind: ErrorKind) {
        let group = self.ids.group_id.clone();
        self.steps
            .push_back(Step::Event(SfuEvent::Error { group, kind }));
    }

    fn observe(&mut self, metric: HistMetric, value: f64) {
        let group = self.ids.group_id.clone();
        self.steps.push_back(Step::Event(SfuEvent::Observe {
            group,
            metric,
            value,
        }));
    }

    /// Emits a `vad` message towards the plugin.
    pub fn send_vad(&mut self, on: bool) {
        let t = if on {
            RtcType::VoiceOn
        } else {
            RtcType::VoiceOff
        };
        let msg = self.rtc_out(t, Vec::new());
        self.steps
            .push_back(Step::Signal(self.conn, SignalOut::Vad(msg)));
    }

    /// A trickled candidate from the client (rtc type 1).
    pub fn handle_candidate(&mut self, data: &[u8]) {
        let Ok(c) = serde_json::from_slice::<IceCandidateInit>(data) else {
            self.error(ErrorKind::Ice);
            return;
        };
        if c.candidate.is_empty() {
            return;
        }
        let Ok(cand) = Candidate::from_sdp_string(&c.candidate) else {
            self.error(ErrorKind::Ice);
            return;
        };
        if self.first_offer_deadline.is_some() {
            // Before the first offer there is no remote description to attach it to.
            if self.candidates.len() < CANDIDATE_BUFFER {
                self.candidates.push(cand);
            }
        } else {
            self.rtc.add_remote_candidate(cand);
        }
    }

    /// An SDP from the client (rtc type 2 over WS, or DC `SDP`); replies go back on the same path.
    pub fn handle_sdp(&mut self, data: &[u8], via_dc: bool, now: Instant) {
        match SessionDescription::from_json(data) {
            Ok(sdp) => self.handle_description(sdp, via_dc, now),
            Err(_) => self.error(ErrorKind::Signaling),
        }
    }

    fn handle_description(&mut self, sdp: SessionDescription, via_dc: bool, now: Instant) {
        match sdp.sdp_type {
            SdpType::Offer => self.handle_offer(&sdp.sdp, via_dc, now),
            SdpType::Answer => self.handle_answer(&sdp.sdp, now),
            SdpType::Pranswer | SdpType::Rollback => self.error(ErrorKind::Signaling),
        }
    }

    fn handle_offer(&mut self, sdp: &str, via_dc: bool, now: Instant) {
        if self.pending.is_some() {
            // Impolite peer: our own offer wins the glare.
            return;
        }
        let Ok(offer) = SdpOffer::from_sdp_string(sdp) else {
            self.error(ErrorKind::Signaling);
            return;
        };
        let first = self.first_offer_deadline.take().is_some();
        if first {
            self.first_mid = sdp
                .lines()
                .find_map(|l| l.strip_prefix("a=mid:"))
                .map(|m| m.trim().to_string());
        }
        let answer = match self.rtc.sdp_api().accept_offer(offer) {
            Ok(a) => a,
            Err(_) => {
                self.error(ErrorKind::Signaling);
                return;
            }
        };
        let desc = SessionDescription::answer(answer.to_sdp_string());
        if via_dc {
            self.send_dc(&DcMessage::Sdp(desc));
        } else {
            let msg = self.rtc_out(RtcType::Sdp, desc.to_json());
            self.steps
                .push_back(Step::Signal(self.conn, SignalOut::Rtc(msg)));
        }
        if first {
            self.first_answer_at = Some(now);
            for c in std::mem::take(&mut self.local_candidates) {
                let data = candidate_json(&c, self.first_mid.as_deref());
                let msg = self.rtc_out(RtcType::Ice, data);
                self.steps
                    .push_back(Step::Signal(self.conn, SignalOut::Rtc(msg)));
            }
            for c in std::mem::take(&mut self.candidates) {
                self.rtc.add_remote_candidate(c);
            }
        }
    }

    fn handle_answer(&mut self, sdp: &str, now: Instant) {
        let Some(p) = self.pending.take() else {
            self.error(ErrorKind::Signaling);
            return;
        };
        let Ok(answer) = SdpAnswer::from_sdp_string(sdp) else {
            self.error(ErrorKind::Signaling);
            self.release_server_lock(now);
            return;
        };
        if self.rtc.sdp_api().accept_answer(p.pending, answer).is_err() {
            self.error(ErrorKind::Signaling);
            self.release_server_lock(now);
            return;
        }
        match p.action {
            TrackAction::Add { source, .. } => {
                if let Some(mid) = p.added {
                    if let Some(t) = self.out_tracks.iter_mut().find(|t| t.mid == mid) {
                        t.open = true;
                    }
                    self.steps.push_back(Step::Bound { source, mid });
                }
            }
            TrackAction::Remove { mid } => self.out_tracks.retain(|t| t.mid != mid),
        }
        self.release_server_lock(now);
    }

    fn release_server_lock(&mut self, now: Instant) {
        if let Lock::Server(since) = self.lock {
            self.lock = Lock::Free;
            self.observe(HistMetric::LockLockedTime, secs(now - since));
        }
    }

    /// Queues a server-initiated renegotiation.
    pub fn queue_action(&mut self, action: TrackAction) {
        self.actions.push_back(action);
    }

    /// Stops forwarding an outgoing m-line and queues its renegotiated removal. Returns whether
    /// the session had it.
    pub fn remove_out_track(&mut self, source: SourceId) {
        // Not yet offered: drop the queued add instead of negotiating twice.
        self.actions
            .retain(|a| !matches!(a, TrackAction::Add { source: s, .. } if *s == source));
        let mids: Vec<Mid> = self
            .out_tracks
            .iter()
            .filter(|t| t.source == source)
            .map(|t| t.mid)
            .collect();
        for mid in mids {
            self.actions.push_back(TrackAction::Remove { mid });
        }
    }

    /// The forwarded tracks this client has, for the core's cleanup on close.
    pub fn out_sources(&self) -> impl Iterator<Item = (SourceId, Mid)> + '_ {
        self.out_tracks.iter().map(|t| (t.source, t.mid))
    }

    /// The source an outgoing m-line forwards.
    pub fn out_source(&self, mid: Mid) -> Option<SourceId> {
        self.out_tracks
            .iter()
            .find(|t| t.mid == mid)
            .map(|t| t.source)
    }

    fn send_dc(&mut self, msg: &DcMessage) {
        let Some(id) = self.dc else { return };
        let bytes = msg.encode();
        if let Some(mut ch) = self.rtc.channel(id)
            && ch.write(true, &bytes).is_err()
        {
            self.error(ErrorKind::Signaling);
        }
    }

    fn handle_dc(&mut self, binary: bool, data: &[u8], now: Instant) {
        if !binary {
            if data == b"ping"
                && let Some(mut ch) = self.dc.and_then(|id| self.rtc.channel(id))
            {
                let _ = ch.write(false, b"pong");
            }
            return;
        }
        let Ok(msg) = DcMessage::decode(data) else {
            self.error(ErrorKind::Signaling);
            return;
        };
        match msg {
            DcMessage::Ping => self.send_dc(&DcMessage::Pong),
            DcMessage::Pong | DcMessage::MediaMap(_) | DcMessage::LockResponse(_) => {}
            DcMessage::Sdp(desc) => self.handle_description(desc, true, now),
            DcMessage::LossRate(v) => self.observe(HistMetric::ClientLossRate, v),
            DcMessage::RoundTripTime(v) => self.observe(HistMetric::ClientRtt, v),
            DcMessage::Jitter(v) => self.observe(HistMetric::ClientJitter, v),
            DcMessage::LockRequest => {
                let granted = self.lock == Lock::Free;
                if granted {
                    self.lock = Lock::Client(now);
                }
                self.send_dc(&DcMessage::LockResponse(granted));
            }
            DcMessage::Unlock => {
                if let Lock::Client(since) = self.lock {
                    self.lock = Lock::Free;
                    self.observe(HistMetric::LockLockedTime, secs(now - since));
                }
            }
        }
    }

    /// Starts the next queued track action if the lock can be had. Returns true if it offered.
    fn drive_negotiation(&mut self, now: Instant) {
        if self.dc.is_none() || self.pending.is_some() || self.actions.is_empty() {
            return;
        }
        match self.lock {
            Lock::Free => {
                let waited = self.lock_wait_since.take().map_or(0.0, |s| secs(now - s));
                self.lock = Lock::Server(now);
                self.observe(HistMetric::LockGrabTime, waited);
            }
            Lock::Server(_) => {}
            Lock::Client(_) => {
                let since = *self.lock_wait_since.get_or_insert(now);
                if now >= since + LOCK_TIMEOUT {
                    // rtcd skips the action and counts the timeout.
                    self.lock_wait_since = None;
                    self.actions.pop_front();
                    self.error(ErrorKind::SignalingLockTimeout);
                }
                return;
            }
        }
        while let Some(action) = self.actions.pop_front() {
            let mut api = self.rtc.sdp_api();
            let mut added = None;
            match &action {
                TrackAction::Add {
                    source,
                    kind,
                    sender_id,
                    track_id,
                } => {
                    let media = if is_audio(*kind) {
                        MediaKind::Audio
                    } else {
                        MediaKind::Video
                    };
                    let mid = api.add_media(
                        media,
                        Direction::SendOnly,
                        Some(sender_id.clone()),
                        Some(track_id.clone()),
                        None,
                    );
                    added = Some(mid);
                    self.out_tracks.push(OutTrack {
                        mid,
                        source: *source,
                        kind: *kind,
                        sender_id: sender_id.clone(),
                        open: false,
                    });
                }
                TrackAction::Remove { mid } => api.stop_media(*mid),
            }
            let Some((offer, pending)) = api.apply() else {
                // Nothing to negotiate (e.g. the m-line is already gone); try the next action.
                if let TrackAction::Remove { mid } = action {
                    self.out_tracks.retain(|t| t.mid != mid);
                }
                continue;
            };
            let map: MediaMap = self
                .out_tracks
                .iter()
                .map(|t| {
                    let info = TrackInfo {
                        kind: t.kind,
                        sender_id: t.sender_id.clone(),
                    };
                    (t.mid.to_string(), info)
                })
                .collect();
            self.send_dc(&DcMessage::MediaMap(map));
            let desc = SessionDescription::offer(offer.to_sdp_string());
            if self.dc_signaling {
                self.send_dc(&DcMessage::Sdp(desc));
            } else {
                let msg = self.rtc_out(RtcType::Sdp, desc.to_json());
                self.steps
                    .push_back(Step::Signal(self.conn, SignalOut::Rtc(msg)));
            }
            self.pending = Some(PendingOffer {
                pending,
                deadline: now + ANSWER_TIMEOUT,
                action,
                added,
            });
            return;
        }
        self.release_server_lock(now);
    }

    /// Feeds time to the session's own timers and to str0m.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.first_offer_deadline.is_some_and(|d| now >= d) {
            self.first_offer_deadline = None;
            // rtcd counts the missed first offer as a signalling error before closing.
            self.error(ErrorKind::Signaling);
            self.closed = true;
            return;
        }
        if self.pending.as_ref().is_some_and(|p| now >= p.deadline) {
            if let Some(p) = self.pending.take()
                && let Some(mid) = p.added
            {
                self.out_tracks.retain(|t| t.mid != mid);
            }
            self.error(ErrorKind::Signaling);
            self.release_server_lock(now);
        }
        if self.rtc.handle_input(str0m::Input::Timeout(now)).is_err() {
            self.closed = true;
        }
    }

    /// Next thing to act on. Call until [`Step::Timeout`].
    pub fn poll(&mut self, now: Instant) -> Step {
        loop {
            if let Some(s) = self.steps.pop_front() {
                return s;
            }
            if self.closed {
                self.closed = false;
                return Step::Close;
            }
            self.drive_negotiation(now);
            if !self.steps.is_empty() {
                continue;
            }
            let out = match self.rtc.poll_output() {
                Ok(o) => o,
                Err(_) => return Step::Close,
            };
            match out {
                RtcOutput::Transmit(t) => return Step::Transmit(t),
                RtcOutput::Timeout(t) => return Step::Timeout(self.deadline(t, now)),
                RtcOutput::Event(e) => {
                    if let Some(step) = self.handle_event(e, now) {
                        return step;
                    }
                }
            }
        }
    }

    fn deadline(&self, rtc: Instant, now: Instant) -> Instant {
        let mut t = rtc;
        for d in [
            self.first_offer_deadline,
            self.pending.as_ref().map(|p| p.deadline),
            self.lock_wait_since
                .filter(|_| !self.actions.is_empty())
                .map(|s| s + LOCK_TIMEOUT),
        ]
        .into_iter()
        .flatten()
        {
            t = t.min(d);
        }
        // A deadline on a client lock we keep polling: re-check at least every 50 ms.
        if matches!(self.lock, Lock::Client(_)) && !self.actions.is_empty() {
            t = t.min(now + Duration::from_millis(50));
        }
        t
    }

    fn handle_event(&mut self, e: Event, now: Instant) -> Option<Step> {
        match e {
            Event::RtpPacket(p) => Some(Step::Rtp(p)),
            Event::Connected => {
                self.steps
                    .push_back(Step::Event(SfuEvent::ConnState("connected")));
                let t = secs(now - self.joined_at);
                self.observe(HistMetric::ConnectionTime, t);
                None
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.steps
                    .push_back(Step::Event(SfuEvent::ConnState("disconnected")));
                self.closed = true;
                None
            }
            Event::MediaAdded(m) => {
                let media = self.rtc.media(m.mid)?;
                if matches!(media.direction(), Direction::SendOnly | Direction::Inactive) {
                    return None;
                }
                let rids = m
                    .simulcast
                    .map(|s| s.recv.iter().map(|l| l.rid).collect())
                    .unwrap_or_default();
                Some(Step::MediaAdded {
                    mid: m.mid,
                    kind: m.kind,
                    stream_id: media.stream_id().to_string(),
                    rids,
                })
            }
            Event::ChannelOpen(id, _) => {
                if self.dc.is_some() {
                    return None;
                }
                self.dc = Some(id);
                if let Some(at) = self.first_answer_at {
                    self.observe(HistMetric::DcOpenTime, secs(now - at));
                }
                Some(Step::DcOpen)
            }
            Event::ChannelData(d) => {
                if Some(d.id) == self.dc {
                    self.handle_dc(d.binary, &d.data, now);
                }
                None
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                let bps = estimate.as_f64();
                self.estimate = Some(bps);
                Some(Step::Estimate(bps))
            }
            // rtcd forwards a viewer's PLI only; FIR (and REMB) stop at the SFU (rtcd §3.3).
            Event::KeyframeRequest(r) if r.kind == KeyframeRequestKind::Pli => {
                Some(Step::KeyframeRequest { mid: r.mid })
            }
            _ => None,
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn candidate_json(c: &Candidate, mid: Option<&str>) -> Vec<u8> {
    ServerCandidate::wrap(IceCandidateInit {
        candidate: c.to_sdp_string(),
        sdp_mid: Some(mid.unwrap_or_default().to_string()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    })
    .to_json()
}
