//! The SFU core: groups → calls → sessions, as a sans-IO state machine.
//!
//! Driving contract (as str0m's `Rtc`): feed one [`Input`] with [`Sfu::handle_input`], then call
//! [`Sfu::poll_output`] until it returns [`Output::Timeout`]; feed [`Input::Timeout`] at that
//! instant at the latest. The core never reads the clock, opens sockets or draws from a global
//! RNG: time comes with every input and randomness from [`SfuConfig::seed`].
//!
//! Forwarding happens inside `handle_input`: an incoming RTP packet is written to every bound
//! receiver's `Rtc` and their transmits are queued, with no task, lock or allocation of ours per
//! packet (str0m allocates the encrypted datagram).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use str0m::format::Codec;
use str0m::media::{Frequency, KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::net::{Receive, Transmit};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};
use str0m::{Candidate, Rtc};

use super::call::{Call, CallKey};
use super::event::{ErrorKind, SfuEvent, TrackDirection};
use super::session::{Session, SessionIds, SessionIdx, Step, TrackAction};
use super::signal::{ConnId, Join, RtcType, SignalIn, SignalOut};
use super::track::{Binding, Source, SourceId, TrackCodec, TrackType, is_audio, new_track_id};
use super::vad::Vad;
use crate::proto::rtcd::StreamIdPayload;
use crate::proto::rtcd::http::{SessionConfig, text};

/// What the core needs to know about its environment.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Host candidates advertised to every session (the shared UDP socket, after overrides).
    pub host_candidates: Vec<SocketAddr>,
    /// Master seed for track ids.
    pub seed: u64,
}

/// Input to the core. Every variant carries the current instant.
// Inputs live on the stack for one call; boxing the datagram would allocate per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input<'a> {
    Timeout(Instant),
    /// A datagram from the shared UDP socket.
    Receive(Instant, Receive<'a>),
    /// A signalling message from a plugin connection.
    Signal(Instant, ConnId, SignalIn),
}

/// Output of the core.
#[derive(Debug)]
pub enum Output {
    Transmit(Transmit),
    Signal(ConnId, SignalOut),
    Event(SfuEvent),
    Timeout(Instant),
}

/// Why a signalling input was refused. rtcd never answers with an error; the I/O layer logs it.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("invalid join: empty {0}")]
    EmptyField(&'static str),
    #[error("user session already exists")]
    DuplicateSession,
    #[error("session not found")]
    SessionNotFound,
    #[error("unknown rtc message type {0}")]
    UnknownType(u64),
    #[error("invalid rtc payload: {0}")]
    Payload(String),
}

/// The SFU core.
#[derive(Debug)]
pub struct Sfu {
    config: SfuConfig,
    crypto: Arc<str0m::crypto::CryptoProvider>,
    sessions: Vec<Option<Session>>,
    free: Vec<u32>,
    by_id: HashMap<String, SessionIdx>,
    calls: HashMap<CallKey, Call>,
    sources: HashMap<SourceId, Source>,
    next_source: u64,
    addrs: HashMap<SocketAddr, SessionIdx>,
    out: VecDeque<Output>,
    dirty: Vec<SessionIdx>,
    timers: BinaryHeap<Reverse<(Instant, u32)>>,
    rng: StdRng,
    /// The latest instant seen in an input.
    last_now: Instant,
}

/// How many already-due timeouts one drain feeds before leaving the rest to the driver.
const MAX_DUE_ROUNDS: u32 = 4;

/// Deadline reported when no session needs time.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

impl Sfu {
    pub fn new(config: SfuConfig, now: Instant) -> Sfu {
        let rng = StdRng::seed_from_u64(config.seed);
        Sfu {
            config,
            crypto: Arc::new(str0m::crypto::from_feature_flags()),
            sessions: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            calls: HashMap::new(),
            sources: HashMap::new(),
            next_source: 0,
            addrs: HashMap::new(),
            out: VecDeque::new(),
            dirty: Vec::new(),
            timers: BinaryHeap::new(),
            rng,
            last_now: now,
        }
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.by_id.len()
    }

    /// Session ids of a call, or `None` when the call does not exist.
    pub fn call_sessions(&self, group_id: &str, call_id: &str) -> Option<Vec<&Session>> {
        let call = self
            .calls
            .get(&(group_id.to_string(), call_id.to_string()))?;
        Some(
            call.sessions
                .iter()
                .filter_map(|i| self.session(*i))
                .collect(),
        )
    }

    /// Whether any call of the group exists.
    pub fn has_group(&self, group_id: &str) -> bool {
        self.calls.keys().any(|(g, _)| g == group_id)
    }

    /// Configs of a call's sessions, as `GET /calls/{callID}/sessions` lists them; the error is
    /// rtcd's reason (`group not found`, `call not found`, `no sessions found`).
    pub fn session_configs(
        &self,
        group_id: &str,
        call_id: &str,
    ) -> Result<Vec<SessionConfig>, &'static str> {
        if !self.has_group(group_id) {
            return Err(text::GROUP_NOT_FOUND);
        }
        let sessions = self
            .call_sessions(group_id, call_id)
            .ok_or(text::CALL_NOT_FOUND)?;
        if sessions.is_empty() {
            return Err(text::NO_SESSIONS_FOUND);
        }
        Ok(sessions.into_iter().map(session_config).collect())
    }

    /// One session's config, for `GET /calls/{callID}/sessions/{sessionID}`.
    pub fn session_config(
        &self,
        group_id: &str,
        call_id: &str,
        session_id: &str,
    ) -> Result<SessionConfig, &'static str> {
        if !self.has_group(group_id) {
            return Err(text::GROUP_NOT_FOUND);
        }
        let sessions = self
            .call_sessions(group_id, call_id)
            .ok_or(text::CALL_NOT_FOUND)?;
        sessions
            .into_iter()
            .find(|s| s.ids.session_id == session_id)
            .map(session_config)
            .ok_or(text::SESSION_NOT_FOUND)
    }

    fn session(&self, idx: SessionIdx) -> Option<&Session> {
        self.sessions.get(idx.0 as usize)?.as_ref()
    }

    fn session_mut(&mut self, idx: SessionIdx) -> Option<&mut Session> {
        self.sessions.get_mut(idx.0 as usize)?.as_mut()
    }

    /// Feeds one input. Signalling inputs that rtcd would only log return an error.
    pub fn handle_input(&mut self, input: Input) -> Result<(), SignalError> {
        let now = match &input {
            Input::Timeout(t) | Input::Receive(t, _) | Input::Signal(t, _, _) => *t,
        };
        self.last_now = self.last_now.max(now);

        match input {
            Input::Timeout(now) => {
                self.handle_timeout(now);
                Ok(())
            }
            Input::Receive(now, r) => {
                self.handle_receive(now, r);
                Ok(())
            }
            Input::Signal(now, conn, msg) => self.handle_signal(now, conn, msg),
        }
    }

    /// Next output; [`Output::Timeout`] when there is nothing more until then.
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        while let Some(Reverse((t, idx))) = self.timers.peek().copied() {
            let live = self
                .sessions
                .get(idx as usize)
                .and_then(|s| s.as_ref())
                .is_some_and(|s| s.scheduled == Some(t));
            if live {
                return Output::Timeout(t);
            }
            self.timers.pop();
        }
        // No session: nothing will happen without input. A far deadline keeps drivers simple.
        Output::Timeout(self.last_now + IDLE_TIMEOUT)
    }

    fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((t, idx))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let idx = SessionIdx(idx);
            let Some(s) = self.session_mut(idx) else {
                continue;
            };
            if s.scheduled != Some(t) {
                continue;
            }
            s.scheduled = None;
            s.handle_timeout(now);
            self.mark(idx);
        }
        self.flush(now);
    }

    fn handle_receive(&mut self, now: Instant, r: Receive) {
        let source = r.source;
        let input = str0m::Input::Receive(now, r);
        let idx = match self.addrs.get(&source) {
            Some(i) => *i,
            None => {
                let found = self.sessions.iter().enumerate().find_map(|(i, s)| {
                    s.as_ref()
                        .filter(|s| s.rtc.accepts(&input))
                        .map(|_| SessionIdx(i as u32))
                });
                let Some(idx) = found else { return };
                self.addrs.insert(source, idx);
                if let Some(s) = self.session_mut(idx) {
                    s.addrs.push(source);
                }
                idx
            }
        };
        let Some(s) = self.session_mut(idx) else {
            return;
        };
        if s.rtc.handle_input(input).is_err() {
            let group = s.ids.group_id.clone();
            self.out.push_back(Output::Event(SfuEvent::Error {
                group,
                kind: ErrorKind::Rtp,
            }));
        }
        self.mark(idx);
        self.flush(now);
    }

    fn handle_signal(
        &mut self,
        now: Instant,
        conn: ConnId,
        msg: SignalIn,
    ) -> Result<(), SignalError> {
        let res = match msg {
            SignalIn::Join(j) => self.join(now, conn, j),
            SignalIn::Leave { session_id } => {
                let idx = *self
                    .by_id
                    .get(&session_id)
                    .ok_or(SignalError::SessionNotFound)?;
                self.close_session(idx);
                Ok(())
            }
            SignalIn::Reconnect { session_id } => {
                let idx = *self
                    .by_id
                    .get(&session_id)
                    .ok_or(SignalError::SessionNotFound)?;
                if let Some(s) = self.session_mut(idx) {
                    s.conn = conn;
                }
                Ok(())
            }
            SignalIn::Rtc {
                session_id,
                msg_type,
                data,
            } => {
                let idx = *self
                    .by_id
                    .get(&session_id)
                    .ok_or(SignalError::SessionNotFound)?;
                let res = self.rtc_message(now, idx, msg_type, &data);
                self.mark(idx);
                res
            }
        };
        self.flush(now);
        res
    }

    fn join(&mut self, now: Instant, conn: ConnId, j: Join) -> Result<(), SignalError> {
        for (name, v) in [
            ("groupID", &j.group_id),
            ("callID", &j.call_id),
            ("userID", &j.user_id),
            ("sessionID", &j.session_id),
        ] {
            if v.is_empty() {
                return Err(SignalError::EmptyField(name));
            }
        }
        if self.by_id.contains_key(&j.session_id) {
            return Err(SignalError::DuplicateSession);
        }
        let rtc = self.build_rtc(now);
        let cands = self
            .config
            .host_candidates
            .iter()
            .filter_map(|a| Candidate::host(*a, "udp").ok())
            .collect();
        let ids = SessionIds {
            group_id: j.group_id.clone(),
            call_id: j.call_id.clone(),
            user_id: j.user_id,
            session_id: j.session_id.clone(),
        };
        let session = Session::new(ids, conn, rtc, cands, j.props, now);
        let idx = match self.free.pop() {
            Some(i) => {
                self.sessions[i as usize] = Some(session);
                SessionIdx(i)
            }
            None => {
                self.sessions.push(Some(session));
                SessionIdx(self.sessions.len() as u32 - 1)
            }
        };
        self.by_id.insert(j.session_id, idx);
        self.calls
            .entry((j.group_id.clone(), j.call_id))
            .or_default()
            .sessions
            .push(idx);
        self.out
            .push_back(Output::Event(SfuEvent::SessionOpened { group: j.group_id }));
        self.mark(idx);
        Ok(())
    }

    fn build_rtc(&self, now: Instant) -> Rtc {
        let mut cfg = Rtc::builder()
            .set_crypto_provider(self.crypto.clone())
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs();
        let codecs = cfg.codec_config();
        for (codec, freq, ch, fmtp) in [
            (TrackCodec::Opus, Frequency::FORTY_EIGHT_KHZ, Some(2), true),
            (TrackCodec::Vp8, Frequency::NINETY_KHZ, None, false),
            (TrackCodec::Av1, Frequency::NINETY_KHZ, None, false),
        ] {
            let c = match codec {
                TrackCodec::Opus => Codec::Opus,
                TrackCodec::Vp8 => Codec::Vp8,
                TrackCodec::Av1 => Codec::Av1,
            };
            let params = str0m::format::FormatParams {
                min_p_time: fmtp.then_some(10),
                use_inband_fec: fmtp.then_some(true),
                ..Default::default()
            };
            codecs.add_config(codec.pt(), None, c, freq, ch, params);
        }
        cfg.build(now)
    }

    fn rtc_message(
        &mut self,
        now: Instant,
        idx: SessionIdx,
        t: u64,
        data: &[u8],
    ) -> Result<(), SignalError> {
        let t = RtcType::from_int(t as i128).ok_or(SignalError::UnknownType(t))?;
        let Some(s) = self.session_mut(idx) else {
            return Err(SignalError::SessionNotFound);
        };
        match t {
            RtcType::Ice => s.handle_candidate(data),
            RtcType::Sdp => s.handle_sdp(data, false, now),
            RtcType::Mute | RtcType::Unmute => {
                let mute = t == RtcType::Mute;
                let voice: Vec<SourceId> = s.published.iter().map(|(_, id)| *id).collect();
                let mut had_voice = false;
                for id in voice {
                    if let Some(src) = self
                        .sources
                        .get_mut(&id)
                        .filter(|s| s.kind == TrackType::Voice)
                    {
                        src.enabled = !mute;
                        src.vad.reset();
                        had_voice = true;
                    }
                }
                if mute
                    && had_voice
                    && let Some(s) = self.session_mut(idx)
                {
                    s.send_vad(false);
                }
            }
            RtcType::ScreenOn => {
                let id = StreamIdPayload::parse(data)
                    .ok()
                    .and_then(|p| p.screen_stream_id)
                    .ok_or_else(|| SignalError::Payload("missing screenStreamID".into()))?;
                let key = (s.ids.group_id.clone(), s.ids.call_id.clone());
                let call = self.calls.entry(key).or_default();
                if call.screen_sharer.is_some_and(|o| o != idx) {
                    return Err(SignalError::Payload(
                        "call already has a screen sharer".into(),
                    ));
                }
                call.screen_sharer = Some(idx);
                if let Some(s) = self.session_mut(idx) {
                    s.screen_stream_id = Some(id);
                }
            }
            RtcType::ScreenOff => {
                let key = (s.ids.group_id.clone(), s.ids.call_id.clone());
                s.screen_stream_id = None;
                let screen: Vec<SourceId> = s.published.iter().map(|(_, id)| *id).collect();
                if let Some(call) = self.calls.get_mut(&key)
                    && call.screen_sharer == Some(idx)
                {
                    call.screen_sharer = None;
                }
                for id in screen {
                    let is_screen = self.sources.get(&id).is_some_and(|s| {
                        matches!(s.kind, TrackType::Screen | TrackType::ScreenAudio)
                    });
                    if is_screen {
                        self.remove_source(id);
                    }
                }
            }
            RtcType::VideoOn => {
                let id = StreamIdPayload::parse(data)
                    .ok()
                    .and_then(|p| p.video_stream_id)
                    .ok_or_else(|| SignalError::Payload("missing videoStreamID".into()))?;
                s.video_stream_id = Some(id);
            }
            // rtcd does nothing on VideoOff; VoiceOn/Off only flow towards the plugin.
            RtcType::VideoOff | RtcType::VoiceOn | RtcType::VoiceOff => {}
        }
        Ok(())
    }

    /// Queues a session to be drained by [`Sfu::flush`].
    fn mark(&mut self, idx: SessionIdx) {
        if let Some(s) = self.session_mut(idx)
            && !s.queued
        {
            s.queued = true;
            self.dirty.push(idx);
        }
    }

    /// Drains every marked session until none is left.
    fn flush(&mut self, now: Instant) {
        while let Some(idx) = self.dirty.pop() {
            if let Some(s) = self.session_mut(idx) {
                s.queued = false;
            }
            self.drain(idx, now);
        }
    }

    fn drain(&mut self, idx: SessionIdx, now: Instant) {
        let mut due_rounds = 0;
        loop {
            let Some(s) = self.session_mut(idx) else {
                return;
            };
            match s.poll(now) {
                Step::Transmit(t) => self.out.push_back(Output::Transmit(t)),
                Step::Signal(c, m) => self.out.push_back(Output::Signal(c, m)),
                Step::Event(e) => self.out.push_back(Output::Event(e)),
                Step::Rtp(p) => self.forward(idx, p, now),
                Step::MediaAdded {
                    mid,
                    kind,
                    stream_id,
                    rids,
                } => self.media_added(idx, mid, kind, &stream_id, rids),
                Step::DcOpen => self.dc_open(idx),
                Step::KeyframeRequest { mid, kind } => self.keyframe_request(idx, mid, kind, now),
                Step::Bound { source, mid } => self.bind(idx, source, mid),
                Step::Close => {
                    self.close_session(idx);
                    return;
                }
                Step::Timeout(t) if t <= now && due_rounds < MAX_DUE_ROUNDS => {
                    // Already due (e.g. str0m releasing a just-written packet): feed the time now
                    // rather than making the driver come back for it.
                    due_rounds += 1;
                    s.handle_timeout(now);
                }
                Step::Timeout(t) => {
                    if s.scheduled.is_none_or(|cur| t < cur) {
                        s.scheduled = Some(t);
                        self.timers.push(Reverse((t, idx.0)));
                    }
                    return;
                }
            }
        }
    }

    /// The hot path: one incoming packet to every bound receiver.
    fn forward(&mut self, idx: SessionIdx, pkt: RtpPacket, now: Instant) {
        let Some(publisher) = self
            .sessions
            .get_mut(idx.0 as usize)
            .and_then(|s| s.as_mut())
        else {
            return;
        };
        let ssrc = pkt.header.ssrc;
        let (sid, rid) = match publisher.rx_ssrcs.iter().find(|(s, _, _)| *s == ssrc) {
            Some((_, sid, rid)) => (*sid, *rid),
            None => {
                let mut api = publisher.rtc.direct_api();
                let Some(rx) = api.stream_rx(&ssrc) else {
                    return;
                };
                let (mid, rid) = (rx.mid(), rx.rid());
                let Some((_, sid)) = publisher.published.iter().find(|(m, _)| *m == mid) else {
                    return;
                };
                publisher.rx_ssrcs.push((ssrc, *sid, rid));
                (*sid, rid)
            }
        };
        let Some(source) = self.sources.get_mut(&sid) else {
            return;
        };
        if !source.enabled {
            return;
        }
        let audio = is_audio(source.kind);
        if source.kind == TrackType::Voice
            && let Some(level) = pkt.header.ext_vals.audio_level
        {
            let dbov = level.unsigned_abs();
            if let Some(on) = source.vad.push(dbov, now) {
                publisher.send_vad(on);
            }
        }
        let ext = if audio {
            ExtensionValues {
                audio_level: pkt.header.ext_vals.audio_level,
                voice_activity: pkt.header.ext_vals.voice_activity,
                ..Default::default()
            }
        } else {
            ExtensionValues::default()
        };
        let pt = source.codec.pt();
        let seq = *pkt.seq_no;
        for b in source.bindings.iter_mut() {
            if b.rid.is_some() && b.rid != rid {
                continue;
            }
            let base = *b.seq_base.get_or_insert(seq & !0xffff);
            let Some(out_seq) = seq.checked_sub(base) else {
                continue;
            };
            let Some(rx) = self
                .sessions
                .get_mut(b.session.0 as usize)
                .and_then(|s| s.as_mut())
            else {
                continue;
            };
            let mut api = rx.rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(b.mid, None) else {
                continue;
            };
            let w = RtpWrite::new(
                pt,
                out_seq.into(),
                pkt.header.timestamp,
                pkt.timestamp,
                pkt.payload.clone(),
            )
            .marker(pkt.header.marker)
            .ext_vals(ext.clone())
            .nackable(!audio);
            tx.write_rtp(w);
            if !rx.queued {
                rx.queued = true;
                self.dirty.push(b.session);
            }
        }
    }

    fn media_added(
        &mut self,
        idx: SessionIdx,
        mid: Mid,
        kind: MediaKind,
        stream_id: &str,
        rids: Vec<Rid>,
    ) {
        let Some(s) = self.session(idx) else { return };
        let screen = s.screen_stream_id.as_deref() == Some(stream_id);
        let track = match kind {
            MediaKind::Audio if screen => TrackType::ScreenAudio,
            MediaKind::Audio => TrackType::Voice,
            MediaKind::Video if screen => TrackType::Screen,
            MediaKind::Video if s.video_stream_id.as_deref() == Some(stream_id) => TrackType::Video,
            MediaKind::Video => {
                // rtcd rejects video that matches neither announced stream.
                let group = s.ids.group_id.clone();
                self.out.push_back(Output::Event(SfuEvent::Error {
                    group,
                    kind: ErrorKind::Track,
                }));
                return;
            }
        };
        let codec = match kind {
            MediaKind::Audio => TrackCodec::Opus,
            MediaKind::Video => video_codec(&s.rtc, mid),
        };
        let key = (s.ids.group_id.clone(), s.ids.call_id.clone());
        let owner_session_id = s.ids.session_id.clone();
        let group = s.ids.group_id.clone();
        let sid = SourceId(self.next_source);
        self.next_source += 1;
        let source = Source {
            owner: idx,
            track_id: new_track_id(track, &owner_session_id, &mut self.rng),
            owner_session_id,
            mid,
            kind: track,
            codec,
            rids,
            enabled: true,
            bindings: Vec::new(),
            last_pli: None,
            vad: Vad::default(),
        };
        self.out.push_back(Output::Event(SfuEvent::Tracks {
            group,
            direction: TrackDirection::In,
            mime: codec.mime(),
            delta: 1,
        }));
        self.sources.insert(sid, source);
        if let Some(s) = self.session_mut(idx) {
            s.published.push((mid, sid));
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.sources.push(sid);
        let members = call.sessions.clone();
        for rx in members {
            if rx != idx && self.session(rx).is_some_and(|s| s.dc_open()) {
                self.offer_source(rx, sid);
            }
        }
    }

    /// Queues `source` to receiver `rx` if the codec suits it (AV1 only to AV1-capable receivers).
    fn offer_source(&mut self, rx: SessionIdx, sid: SourceId) {
        let Some(src) = self.sources.get(&sid) else {
            return;
        };
        let Some(r) = self.session(rx) else { return };
        let sender_av1 = self.session(src.owner).is_some_and(|s| s.av1_support);
        if src.codec == TrackCodec::Av1 && !r.av1_support {
            return;
        }
        if src.codec == TrackCodec::Vp8
            && src.kind == TrackType::Screen
            && sender_av1
            && r.av1_support
        {
            return;
        }
        let action = TrackAction::Add {
            source: sid,
            kind: src.kind,
            sender_id: src.owner_session_id.clone(),
            track_id: src.track_id.clone(),
        };
        if let Some(r) = self.session_mut(rx) {
            r.queue_action(action);
        }
        self.mark(rx);
    }

    fn dc_open(&mut self, idx: SessionIdx) {
        let Some(s) = self.session(idx) else { return };
        let key = (s.ids.group_id.clone(), s.ids.call_id.clone());
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let mut sources: Vec<(TrackType, SourceId)> = call
            .sources
            .iter()
            .filter_map(|id| {
                self.sources
                    .get(id)
                    .filter(|s| s.owner != idx)
                    .map(|s| (s.kind, *id))
            })
            .collect();
        let order = |t: TrackType| match t {
            TrackType::Voice => 0,
            TrackType::Screen => 1,
            TrackType::ScreenAudio => 2,
            TrackType::Video => 3,
        };
        sources.sort_by_key(|(k, id)| (order(*k), *id));
        for (_, sid) in sources {
            self.offer_source(idx, sid);
        }
    }

    fn bind(&mut self, rx: SessionIdx, sid: SourceId, mid: Mid) {
        let Some(src) = self.sources.get_mut(&sid) else {
            // The source left while we negotiated: take the m-line down again.
            if let Some(s) = self.session_mut(rx) {
                s.queue_action(TrackAction::Remove { mid });
            }
            self.mark(rx);
            return;
        };
        src.bindings.push(Binding {
            session: rx,
            mid,
            rid: src.initial_rid(),
            seq_base: None,
        });
        let mime = src.codec.mime();
        let owner = src.owner;
        let (is_audio, m, rid) = (is_audio(src.kind), src.mid, src.initial_rid());
        if let Some(g) = self.session(rx).map(|s| s.ids.group_id.clone()) {
            self.out.push_back(Output::Event(SfuEvent::Tracks {
                group: g,
                direction: TrackDirection::Out,
                mime,
                delta: 1,
            }));
        }
        // A new viewer of video needs a keyframe to start decoding.
        if !is_audio {
            if let Some(p) = self.session_mut(owner)
                && let Some(rx) = p.rtc.direct_api().stream_rx_by_mid(m, rid)
            {
                rx.request_keyframe(KeyframeRequestKind::Pli);
            }
            self.mark(owner);
        }
    }

    fn keyframe_request(
        &mut self,
        idx: SessionIdx,
        mid: Mid,
        kind: KeyframeRequestKind,
        now: Instant,
    ) {
        let Some(sid) = self.session(idx).and_then(|s| s.out_source(mid)) else {
            return;
        };
        let Some(src) = self.sources.get_mut(&sid) else {
            return;
        };
        if src
            .last_pli
            .is_some_and(|t| now < t + std::time::Duration::from_secs(1))
        {
            return;
        }
        src.last_pli = Some(now);
        let rid = src
            .bindings
            .iter()
            .find(|b| b.session == idx)
            .and_then(|b| b.rid);
        let (owner, m) = (src.owner, src.mid);
        if let Some(p) = self.session_mut(owner)
            && let Some(rx) = p.rtc.direct_api().stream_rx_by_mid(m, rid)
        {
            rx.request_keyframe(kind);
        }
        self.mark(owner);
    }

    /// Stops forwarding a source everywhere and queues its removal at every viewer.
    fn remove_source(&mut self, sid: SourceId) {
        let Some(src) = self.sources.remove(&sid) else {
            return;
        };
        let group = self
            .session(src.owner)
            .map(|s| s.ids.group_id.clone())
            .unwrap_or_default();
        self.out.push_back(Output::Event(SfuEvent::Tracks {
            group: group.clone(),
            direction: TrackDirection::In,
            mime: src.codec.mime(),
            delta: -1,
        }));
        if let Some(s) = self.session_mut(src.owner) {
            s.published.retain(|(_, id)| *id != sid);
            s.rx_ssrcs.retain(|(_, id, _)| *id != sid);
        }
        for b in &src.bindings {
            self.out.push_back(Output::Event(SfuEvent::Tracks {
                group: group.clone(),
                direction: TrackDirection::Out,
                mime: src.codec.mime(),
                delta: -1,
            }));
            let _ = b;
        }
        let key = self
            .session(src.owner)
            .map(|s| (s.ids.group_id.clone(), s.ids.call_id.clone()));
        let members = key
            .and_then(|k| self.calls.get_mut(&k))
            .map(|c| {
                c.sources.retain(|id| *id != sid);
                c.sessions.clone()
            })
            .unwrap_or_default();
        for rx in members {
            if rx == src.owner {
                continue;
            }
            if let Some(s) = self.session_mut(rx) {
                s.remove_out_track(sid);
            }
            self.mark(rx);
        }
    }

    fn close_session(&mut self, idx: SessionIdx) {
        let Some(s) = self.session(idx) else { return };
        let published: Vec<SourceId> = s.published.iter().map(|(_, id)| *id).collect();
        let receiving: Vec<SourceId> = s.out_sources().map(|(id, _)| id).collect();
        for sid in published {
            self.remove_source(sid);
        }
        for sid in receiving {
            if let Some(src) = self.sources.get_mut(&sid) {
                let before = src.bindings.len();
                src.bindings.retain(|b| b.session != idx);
                let mime = src.codec.mime();
                if src.bindings.len() < before
                    && let Some(g) = self.session(idx).map(|s| s.ids.group_id.clone())
                {
                    self.out.push_back(Output::Event(SfuEvent::Tracks {
                        group: g,
                        direction: TrackDirection::Out,
                        mime,
                        delta: -1,
                    }));
                }
            }
        }
        let Some(mut s) = self.sessions.get_mut(idx.0 as usize).and_then(|s| s.take()) else {
            return;
        };
        s.rtc.disconnect();
        self.free.push(idx.0);
        self.by_id.remove(&s.ids.session_id);
        for a in &s.addrs {
            self.addrs.remove(a);
        }
        let key = (s.ids.group_id.clone(), s.ids.call_id.clone());
        if let Some(call) = self.calls.get_mut(&key) {
            call.sessions.retain(|i| *i != idx);
            if call.screen_sharer == Some(idx) {
                call.screen_sharer = None;
            }
            if call.sessions.is_empty() {
                self.calls.remove(&key);
            }
        }
        self.out
            .push_back(Output::Event(SfuEvent::ConnState("closed")));
        self.out.push_back(Output::Event(SfuEvent::SessionClosed {
            group: s.ids.group_id.clone(),
        }));
        self.out.push_back(Output::Signal(
            s.join_conn,
            SignalOut::Close {
                session_id: s.ids.session_id,
            },
        ));
    }
}

fn session_config(s: &Session) -> SessionConfig {
    SessionConfig {
        group_id: s.ids.group_id.clone(),
        call_id: s.ids.call_id.clone(),
        user_id: s.ids.user_id.clone(),
        session_id: s.ids.session_id.clone(),
        props: s.props.clone(),
    }
}

/// The video codec of a published m-line, from the payload types the client offered.
fn video_codec(rtc: &Rtc, mid: Mid) -> TrackCodec {
    let Some(media) = rtc.media(mid) else {
        return TrackCodec::Vp8;
    };
    for pt in media.remote_pts() {
        let found = rtc
            .codec_config()
            .find(|p| p.pt() == *pt)
            .map(|p| p.spec().codec);
        match found {
            Some(Codec::Av1) => return TrackCodec::Av1,
            Some(Codec::Vp8) => return TrackCodec::Vp8,
            _ => {}
        }
    }
    TrackCodec::Vp8
}
