//! The SFU core: groups → calls → sessions, as a sans-IO state machine.
//!
//! Driving contract (as str0m's `Rtc`): feed one [`Input`] with [`Sfu::handle_input`], then call
//! [`Sfu::poll_output`] until it returns [`Output::Timeout`]; feed [`Input::Timeout`] at that
//! instant at the latest. The core never reads the clock, opens sockets or draws from a global
//! RNG: time comes with every input and randomness from [`SfuConfig::seed`].
//!
//! Forwarding happens inside `handle_input`: an incoming RTP packet is written to every bound
//! receiver's `Rtc` and their transmits are queued, with no task, lock or allocation of ours per
//! packet (str0m allocates the encrypted datagram). The hot path is in `forward.rs`; track
//! lifecycle across a call (publish, offer, remove, close) in `tracks.rs`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use str0m::format::Codec;
use str0m::media::Frequency;
use str0m::net::{Protocol, Receive, TcpType, Transmit};
use str0m::{Candidate, Rtc};

use super::call::{Call, CallKey};
use super::event::{ErrorKind, SfuEvent};
use super::session::{Session, SessionIds, SessionIdx, Step};
use super::signal::{ConnId, Join, RtcType, SignalIn, SignalOut};
use super::track::{Source, SourceId, TrackCodec, TrackType};
use crate::proto::rtcd::StreamIdPayload;
use crate::proto::rtcd::http::{SessionConfig, text};

mod forward;
mod tracks;

/// What the core needs to know about its environment.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Host candidates advertised to every session (the shared UDP socket, after overrides).
    pub host_candidates: Vec<SocketAddr>,
    /// Master seed for track ids.
    pub seed: u64,
    /// Packets of history each outgoing video stream keeps to answer NACKs
    /// (`rtc.nack_buffer_size`; rtcd's default is 256).
    pub nack_buffer_size: usize,
    /// Run a send-side bandwidth estimator per session (as rtcd's GCC) so simulcast viewers can
    /// move to `h`; off, every simulcast viewer stays on `l`. The forwarding bench compares both
    /// (`forward_audio` and `forward_audio_no_bwe`).
    pub bwe: bool,
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
    /// Remote transport address → session; UDP and TCP ports are separate spaces.
    addrs: HashMap<(Protocol, SocketAddr), SessionIdx>,
    /// Passive ICE-TCP host candidates advertised next to the UDP ones (see [`Sfu::with_tcp`]).
    tcp_candidates: Vec<SocketAddr>,
    out: VecDeque<Output>,
    dirty: Vec<SessionIdx>,
    timers: BinaryHeap<Reverse<(Instant, u32)>>,
    rng: StdRng,
    /// The latest instant seen in an input.
    last_now: Instant,
    /// Publisher and track type of the last packet forwarded to at least one receiver, for the
    /// driver's `rtcd_rtc_rtp_tracks_writes_time` (the core has no clock to time it itself).
    forwarded: Option<(SessionIdx, TrackType)>,
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
            tcp_candidates: Vec::new(),
            out: VecDeque::new(),
            dirty: Vec::new(),
            timers: BinaryHeap::new(),
            rng,
            last_now: now,
            forwarded: None,
        }
    }

    /// Also offers a passive ICE-TCP host candidate at each address (RFC 6544, `tcptype
    /// passive`); clients reach it with RFC 4571-framed TCP, fed in as `Protocol::Tcp` receives,
    /// and the matching transmits come out with `Protocol::Tcp`.
    pub fn with_tcp(mut self, candidates: Vec<SocketAddr>) -> Sfu {
        self.tcp_candidates = candidates;
        self
    }

    /// The group and track type of the packet forwarded since the last call, if any; clears it.
    pub fn take_forwarded(&mut self) -> Option<(&str, TrackType)> {
        let (idx, kind) = self.forwarded.take()?;
        Some((self.session(idx)?.ids.group_id.as_str(), kind))
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
        let source = (r.proto, r.source);
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
        let udp = self.config.host_candidates.iter();
        let udp = udp.filter_map(|a| Candidate::host(*a, "udp").ok());
        let tcp = self.tcp_candidates.iter().filter_map(|a| {
            let c = Candidate::builder().tcp().host(*a);
            c.tcptype(TcpType::Passive).build().ok()
        });
        let cands = udp.chain(tcp).collect();
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
        let builder = Rtc::builder();
        // rtcd's GCC: start at 250 kbps; the estimate only picks simulcast layers.
        let builder = if self.config.bwe {
            builder.enable_bwe(Some(str0m::bwe::Bitrate::kbps(250)))
        } else {
            builder
        };
        let mut cfg = builder
            .set_crypto_provider(self.crypto.clone())
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .set_extension_map(rtcd_extensions())
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
            codecs.add_config(codec.pt(), codec.rtx_pt(), c, freq, ch, params);
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
                Step::KeyframeRequest { mid } => self.keyframe_request(idx, mid, now),
                Step::Bound { source, mid } => self.bind(idx, source, mid, now),
                Step::Estimate(bps) => self.estimate(idx, bps, now),
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

/// The RTP header extensions rtcd registers (rtcd.md §3.2): audio level and transport-wide CC on
/// every track, mid/rid/repaired-rid for simulcast video. str0m's standard set would add
/// abs-send-time and video orientation, 4 more bytes on every forwarded packet than rtcd sends,
/// which the bandwidth figures would show as a difference from rtcd that is not the SFU's work.
fn rtcd_extensions() -> str0m::rtp::ExtensionMap {
    use str0m::rtp::Extension;
    let mut exts = str0m::rtp::ExtensionMap::empty();
    exts.set(1, Extension::AudioLevel);
    exts.set(3, Extension::TransportSequenceNumber);
    exts.set(4, Extension::RtpMid);
    exts.set(10, Extension::RtpStreamId);
    exts.set(11, Extension::RepairedRtpStreamId);
    exts
}
