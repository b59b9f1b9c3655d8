//! One simulated end user in a call: a sans-IO state machine around one str0m [`Rtc`] (client side)
//! that behaves like the Mattermost Calls client towards rtcd (rtcd.md §2.3–2.6, §8.1).
//!
//! It speaks the plugin ⇄ rtcd messages ([`WsMessage`]) directly, as a harness that plays both the
//! plugin and the end user does: the signalling the real client would send through the Mattermost
//! WebSocket and the plugin arrives here already in rtcd's form.
//!
//! # Driving contract
//!
//! The participant owns no socket, no clock and no thread; the driver passes time in every [`Input`].
//! After **every** [`Participant::handle_input`], call [`Participant::poll_output`] until it returns
//! [`Output::Timeout`]; then wait until that instant, a datagram, a signalling message or a command,
//! and feed it in. Scheduled work (media packets, DC ping, stats, lock retries) is done lazily inside
//! `poll_output`, one str0m mutation at a time, so str0m's own "mutate, then drain" rule holds.
//!
//! Over 600 lines: the user commands and the scheduled work are one state machine and read best
//! together; str0m events and signalling are already split into `media_events` and `signalling`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callsref::proto::rtcd::dc::{DcMessage, TrackInfo};
use callsref::proto::rtcd::rtc::{RtcMessage, RtcType};
use callsref::proto::rtcd::ws::WsMessage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use str0m::channel::ChannelId;
use str0m::media::{KeyframeRequestKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::Ssrc;
use str0m::{Candidate, Output as RtcOutput, Rtc};

use super::negotiation::{LocalChange, Negotiation};
use super::publish::{Publication, Role};
use super::sendlog::{SendLog, SendRing};
use super::signal;
use super::source::MediaSource;

pub use super::event::{Event, RemoteTrack, RtpInfo};

mod media_events;
mod signalling;

/// Data-channel label the Calls clients use.
pub const DC_LABEL: &str = "calls-dc";
/// DC ping interval (the browser and the Go client ping every second).
pub const PING_INTERVAL: Duration = Duration::from_secs(1);
/// Interval of the LossRate/RTT/Jitter messages (the Go client's RTC monitor runs every 4 s).
pub const STATS_INTERVAL: Duration = Duration::from_secs(4);
/// How long to wait for rtcd's `close` after `leave` before closing anyway (lt waits 10 s).
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who this participant is and how it joins.
#[derive(Debug, Clone)]
pub struct ParticipantConfig {
    pub call_id: String,
    pub user_id: String,
    /// The end user's connection id; rtcd routes by it, so it must be unique across all calls.
    pub session_id: String,
    pub channel_id: String,
    /// Send and accept offers over the data channel instead of the WebSocket once it is open.
    pub dc_signaling: bool,
    /// The local UDP address the driver receives this participant's datagrams on.
    pub local_addr: SocketAddr,
    /// Seed of this participant's RNG (stream ids, RTP start values).
    pub seed: u64,
}

/// A user action.
#[derive(Debug)]
pub enum Command {
    /// Send `join` and the first offer (with the `calls-dc` data channel).
    Join,
    /// Unmute; the first unmute must bring the mic source and adds the track (locked renegotiation).
    Unmute(Option<Box<dyn MediaSource>>),
    Mute,
    /// Start a screen share: `screen_on` first, then the track, simulcast when `high` is given.
    ScreenOn {
        low: Box<dyn MediaSource>,
        high: Option<Box<dyn MediaSource>>,
    },
    ScreenOff,
    /// Start the camera: `video_on`, then the track.
    VideoOn(Box<dyn MediaSource>),
    VideoOff,
    /// Send `leave`, wait for `close`, then close the peer connection.
    Leave,
}

/// A received datagram, borrowed from the driver's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: &'a [u8],
}

/// Everything that drives a participant, each with the instant it happens at.
#[derive(Debug)]
pub enum Input<'a> {
    /// A message rtcd sent for this session (`rtc`, `vad`, `close`).
    Signal(Instant, WsMessage),
    Datagram(Instant, Datagram<'a>),
    Timeout(Instant),
    Command(Instant, Command),
}

/// What the participant wants done.
#[derive(Debug)]
pub enum Output {
    /// Send this message to rtcd on the plugin connection of this session's call.
    Signal(WsMessage),
    /// Send this datagram.
    Transmit(str0m::net::Transmit),
    /// Something to measure.
    Event(Event),
    /// Nothing more until this instant (or the next input).
    Timeout(Instant),
}

/// Why an input could not be applied. The participant stays usable after any of these.
#[derive(Debug, thiserror::Error)]
pub enum ParticipantError {
    #[error("webrtc: {0}")]
    Rtc(#[from] str0m::RtcError),
    #[error("bad signalling message: {0}")]
    Signal(#[from] signal::SignalError),
    #[error("{0} is not possible in the current state")]
    NotNow(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Created,
    Joined,
    Leaving { deadline: Instant },
    Closed,
}

/// A simulated Calls end user. See the module docs for the driving contract.
#[derive(Debug)]
pub struct Participant {
    cfg: ParticipantConfig,
    rtc: Rtc,
    rng: StdRng,
    now: Instant,
    life: Life,
    channel: Option<ChannelId>,
    dc_open: bool,
    ice_connected: bool,
    nego: Negotiation,
    answered: bool,
    /// Candidates rtcd trickled before its answer, added once the answer is applied.
    early_candidates: Vec<Candidate>,
    /// Candidates ready to add, one str0m mutation each.
    ready_candidates: VecDeque<Candidate>,
    out: VecDeque<Output>,
    /// Commands that wait for the data channel (they need the signalling lock).
    deferred: VecDeque<Command>,
    /// DC messages waiting to be written (one str0m mutation each).
    dc_out: VecDeque<DcMessage>,
    media_map: HashMap<String, TrackInfo>,
    /// Remote tracks in the order they were added (few per receiver; scanned, not hashed).
    remote: Vec<Remote>,
    /// SSRC → index in `remote`, filled on a stream's first packet.
    ssrc_index: Vec<(Ssrc, usize)>,
    /// Video SSRCs whose NACK generation is switched on already.
    nack_on: Vec<Ssrc>,
    /// Video mids still owed a PLI on their first packet (the Go client asks for a keyframe).
    pli_owed: Vec<Mid>,
    pubs: Vec<Publication>,
    muted: bool,
    screen_stream_id: String,
    video_stream_id: String,
    ping_at: Option<Instant>,
    ping_sent: Option<Instant>,
    stats_at: Option<Instant>,
    loss: f64,
    jitter_s: f64,
    rtt_s: f64,
    /// Shared send instants of every publisher in this harness (one-way latency).
    send_log: Option<Arc<SendLog>>,
    /// Earliest scheduled instant of the media packets written since [`Participant::take_paced`].
    paced: Option<Instant>,
    /// The instant of the input being handled, as the driver gave it (for a signal: when it was
    /// read off the plugin connection), even when `now` is already later.
    input_at: Instant,
}

/// A remote track and, for voice, its publisher's send ring.
#[derive(Debug)]
struct Remote {
    track: RemoteTrack,
    ring: Option<Arc<SendRing>>,
}

impl Participant {
    /// A participant that has not joined yet; `now` is the start of its clock.
    pub fn new(cfg: ParticipantConfig, now: Instant) -> Self {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .set_rtp_mode(true)
            .set_stats_interval(Some(Duration::from_secs(1)))
            .build(now);
        let screen_stream_id = random_uuid(&mut rng);
        let video_stream_id = random_uuid(&mut rng);
        Participant {
            cfg,
            rtc,
            rng,
            now,
            life: Life::Created,
            channel: None,
            dc_open: false,
            ice_connected: false,
            nego: Negotiation::default(),
            answered: false,
            early_candidates: Vec::new(),
            ready_candidates: VecDeque::new(),
            out: VecDeque::new(),
            deferred: VecDeque::new(),
            dc_out: VecDeque::new(),
            media_map: HashMap::new(),
            remote: Vec::new(),
            ssrc_index: Vec::new(),
            nack_on: Vec::new(),
            pli_owed: Vec::new(),
            pubs: Vec::new(),
            muted: true,
            screen_stream_id,
            video_stream_id,
            ping_at: None,
            ping_sent: None,
            stats_at: None,
            loss: 0.0,
            jitter_s: 0.0,
            rtt_s: 0.0,
            send_log: None,
            paced: None,
            input_at: now,
        }
    }

    /// Shares the harness's send log: this participant records its voice packets' send instants
    /// there and looks up the send instant of every voice packet it receives
    /// ([`RtpInfo::sent`]). Set it before `Join`; without it `sent` stays `None`.
    pub fn set_send_log(&mut self, log: Arc<SendLog>) {
        self.send_log = Some(log);
    }

    pub fn config(&self) -> &ParticipantConfig {
        &self.cfg
    }

    pub fn session_id(&self) -> &str {
        &self.cfg.session_id
    }

    /// Whether the participant still needs driving (not closed).
    pub fn is_alive(&self) -> bool {
        self.life != Life::Closed
    }

    /// Whether the data channel is open (rtcd only sends media after it is).
    pub fn is_dc_open(&self) -> bool {
        self.dc_open
    }

    /// Whether the session is stable and no own change is waiting.
    pub fn is_settled(&self) -> bool {
        self.answered
            && self.nego.is_stable()
            && self.nego.queued() == 0
            && self.deferred.is_empty()
    }

    /// Remote tracks known so far, by mid.
    pub fn remote_tracks(&self) -> impl Iterator<Item = (&Mid, &RemoteTrack)> {
        self.remote.iter().map(|r| (&r.track.mid, &r.track))
    }

    /// Packets written per published role so far.
    pub fn sent_packets(&self, role: Role) -> u64 {
        self.pubs
            .iter()
            .filter(|p| p.role == role)
            .map(|p| p.packets)
            .sum()
    }

    /// The role of the published stream sent with `ssrc`, if it is one of this participant's.
    pub fn sent_role(&self, ssrc: Ssrc) -> Option<Role> {
        self.pubs
            .iter()
            .find(|p| p.ssrc == Some(ssrc))
            .map(|p| p.role)
    }

    /// Keyframe requests served by the sources of `role`.
    pub fn keyframes_served(&self, role: Role) -> u64 {
        self.pubs
            .iter()
            .filter(|p| p.role == role)
            .map(|p| p.source.keyframes_requested())
            .sum()
    }

    /// Whether str0m accepts this datagram (for drivers that demultiplex one socket by content).
    pub fn accepts(&self, now: Instant, d: &Datagram<'_>) -> bool {
        let Ok(r) = Receive::new(Protocol::Udp, d.source, d.destination, d.contents) else {
            return false;
        };
        self.rtc.accepts(&str0m::Input::Receive(now, r))
    }

    /// Applies one input. Then drain [`poll_output`](Self::poll_output) to `Timeout`.
    pub fn handle_input(&mut self, input: Input<'_>) -> Result<(), ParticipantError> {
        self.input_at = match &input {
            Input::Timeout(t)
            | Input::Datagram(t, _)
            | Input::Signal(t, _)
            | Input::Command(t, _) => *t,
        };
        match input {
            Input::Timeout(now) => {
                self.now = self.now.max(now);
                self.rtc.handle_input(str0m::Input::Timeout(self.now))?;
            }
            Input::Datagram(now, d) => {
                self.now = self.now.max(now);
                if self.life == Life::Closed {
                    return Ok(());
                }
                let r = Receive::new(Protocol::Udp, d.source, d.destination, d.contents)
                    .map_err(str0m::RtcError::from)?;
                self.rtc.handle_input(str0m::Input::Receive(self.now, r))?;
            }
            Input::Signal(now, msg) => {
                self.now = self.now.max(now);
                self.on_signal(msg)?;
            }
            Input::Command(now, cmd) => {
                self.now = self.now.max(now);
                self.on_command(cmd)?;
            }
        }
        Ok(())
    }

    /// The next thing to do. Call until it returns [`Output::Timeout`].
    pub fn poll_output(&mut self) -> Result<Output, ParticipantError> {
        loop {
            if let Some(o) = self.out.pop_front() {
                return Ok(o);
            }
            if self.life == Life::Closed {
                return Ok(Output::Timeout(self.now + Duration::from_secs(3600)));
            }
            match self.rtc.poll_output()? {
                RtcOutput::Transmit(t) => return Ok(Output::Transmit(t)),
                RtcOutput::Event(e) => self.on_rtc_event(e)?,
                RtcOutput::Timeout(t) => {
                    // str0m is drained: do at most one piece of scheduled work (a mutation), then
                    // drain again; only when nothing is due is the participant idle.
                    if self.step()? {
                        continue;
                    }
                    return Ok(Output::Timeout(self.next_deadline(t)));
                }
            }
        }
    }

    fn next_deadline(&self, rtc_timeout: Instant) -> Instant {
        let mut t = rtc_timeout;
        let mut min = |x: Option<Instant>| {
            if let Some(x) = x {
                t = t.min(x);
            }
        };
        min(self.ping_at);
        min(self.stats_at);
        min(self.nego.deadline());
        if let Life::Leaving { deadline } = self.life {
            min(Some(deadline));
        }
        for p in &self.pubs {
            min(p.due());
        }
        t.max(self.now)
    }

    /// One piece of due work; returns whether it mutated str0m (so the caller must drain again).
    fn step(&mut self) -> Result<bool, ParticipantError> {
        let now = self.now;
        if let Life::Leaving { deadline } = self.life
            && now >= deadline
        {
            self.close();
            return Ok(true);
        }
        if let Some(c) = self.ready_candidates.pop_front() {
            self.rtc.add_remote_candidate(c);
            return Ok(true);
        }
        if let Some(msg) = self.dc_out.pop_front() {
            self.write_dc(&msg);
            return Ok(true);
        }
        if let Some(mid) = self.pli_owed.pop() {
            if let Some(rx) = self.rtc.direct_api().stream_rx_by_mid(mid, None) {
                rx.request_keyframe(KeyframeRequestKind::Pli);
            }
            return Ok(true);
        }
        if self.dc_open {
            if let Some(change) = self.nego.take_expired(now) {
                self.out
                    .push_back(Output::Event(Event::LockTimeout(change)));
            }
            if self.nego.take_due_retry(now) {
                self.write_dc(&DcMessage::LockRequest);
                return Ok(true);
            }
            if self.nego.start_next(now).is_some() {
                self.write_dc(&DcMessage::LockRequest);
                return Ok(true);
            }
            if let Some(cmd) = self.take_deferred() {
                self.on_command(cmd)?;
                return Ok(true);
            }
            if self.ping_at.is_some_and(|t| t <= now) {
                self.ping_at = Some(now + PING_INTERVAL);
                self.ping_sent = Some(now);
                self.write_dc(&DcMessage::Ping);
                return Ok(true);
            }
            if self.stats_at.is_some_and(|t| t <= now) {
                self.stats_at = Some(now + STATS_INTERVAL);
                self.dc_out.push_back(DcMessage::RoundTripTime(self.rtt_s));
                self.dc_out.push_back(DcMessage::Jitter(self.jitter_s));
                self.write_dc(&DcMessage::LossRate(self.loss));
                return Ok(true);
            }
        }
        let muted = self.muted;
        for p in &mut self.pubs {
            if p.role == Role::Voice && muted {
                // Muted: the source keeps its schedule but its packets are not sent, like a
                // browser sending a disabled track (rtcd would drop them anyway).
                if p.due().is_some_and(|t| t <= now) {
                    p.source.poll(now);
                    return Ok(true);
                }
                continue;
            }
            if let Some(due) = p.due().filter(|t| *t <= now)
                && p.write_due(&mut self.rtc, now)
            {
                self.paced = Some(self.paced.map_or(due, |p| p.min(due)));
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// rtcd resets its VAD monitor on `mute` and `unmute`; so does the mic's replica.
    fn reset_vad(&mut self) {
        for p in self.pubs.iter_mut().filter(|p| p.role == Role::Voice) {
            p.reset_vad();
        }
    }

    /// The earliest scheduled send instant of the media packets written since the last call (the
    /// driver measures pacing error against it once per input, after the datagrams left).
    pub fn take_paced(&mut self) -> Option<Instant> {
        self.paced.take()
    }

    fn take_deferred(&mut self) -> Option<Command> {
        self.deferred.pop_front()
    }

    fn on_command(&mut self, cmd: Command) -> Result<(), ParticipantError> {
        match cmd {
            Command::Join => self.join(),
            Command::Leave => {
                if matches!(self.life, Life::Joined) {
                    self.out.push_back(Output::Signal(WsMessage::Leave {
                        session_id: self.cfg.session_id.clone(),
                    }));
                    self.life = Life::Leaving {
                        deadline: self.now + LEAVE_TIMEOUT,
                    };
                    for p in &mut self.pubs {
                        p.sending = false;
                    }
                } else if self.life == Life::Created {
                    self.life = Life::Closed;
                }
                Ok(())
            }
            cmd if !self.dc_open => {
                if self.life == Life::Closed {
                    return Err(ParticipantError::NotNow("a command after close"));
                }
                self.deferred.push_back(cmd);
                Ok(())
            }
            Command::Unmute(source) => {
                let has_mic = self.pubs.iter().any(|p| p.role == Role::Voice);
                self.muted = false;
                self.reset_vad();
                if has_mic {
                    self.signal(RtcMessage::signal(&self.cfg.session_id, RtcType::Unmute));
                } else if let Some(src) = source {
                    let mut mic = Publication::new(Role::Voice, None, src);
                    mic.ring = self
                        .send_log
                        .as_ref()
                        .map(|log| log.voice(&self.cfg.session_id));
                    self.pubs.push(mic);
                    // `unmute` follows once the track is negotiated.
                    self.nego.want(LocalChange::AddMic);
                } else {
                    return Err(ParticipantError::NotNow(
                        "the first unmute without a mic source",
                    ));
                }
                Ok(())
            }
            Command::Mute => {
                self.muted = true;
                self.reset_vad();
                self.signal(RtcMessage::signal(&self.cfg.session_id, RtcType::Mute));
                Ok(())
            }
            Command::ScreenOn { low, high } => {
                if self.pubs.iter().any(|p| p.role == Role::Screen) {
                    return Err(ParticipantError::NotNow("a second screen share"));
                }
                // rtcd rejects a video track whose stream id it has not been told about, so
                // `screen_on` goes out before the track is offered.
                self.signal(RtcMessage::screen_on(
                    &self.cfg.session_id,
                    &self.screen_stream_id,
                ));
                match high {
                    Some(high) => {
                        self.pubs
                            .push(Publication::new(Role::Screen, Some("l"), low));
                        self.pubs
                            .push(Publication::new(Role::Screen, Some("h"), high));
                    }
                    None => self.pubs.push(Publication::new(Role::Screen, None, low)),
                }
                self.nego.want(LocalChange::AddScreen);
                Ok(())
            }
            Command::ScreenOff => self.stop(Role::Screen, RtcType::ScreenOff),
            Command::VideoOn(src) => {
                if self.pubs.iter().any(|p| p.role == Role::Video) {
                    return Err(ParticipantError::NotNow("a second camera"));
                }
                self.signal(RtcMessage::video_on(
                    &self.cfg.session_id,
                    &self.video_stream_id,
                ));
                self.pubs.push(Publication::new(Role::Video, None, src));
                self.nego.want(LocalChange::AddVideo);
                Ok(())
            }
            Command::VideoOff => self.stop(Role::Video, RtcType::VideoOff),
        }
    }

    fn stop(&mut self, role: Role, msg: RtcType) -> Result<(), ParticipantError> {
        if !self.pubs.iter().any(|p| p.role == role) {
            return Err(ParticipantError::NotNow("stopping media that is not on"));
        }
        for p in self.pubs.iter_mut().filter(|p| p.role == role) {
            p.sending = false;
        }
        self.signal(RtcMessage::signal(&self.cfg.session_id, msg));
        self.nego.want(if role == Role::Screen {
            LocalChange::RemoveScreen
        } else {
            LocalChange::RemoveVideo
        });
        Ok(())
    }

    fn signal(&mut self, msg: RtcMessage) {
        self.out.push_back(Output::Signal(WsMessage::Rtc(msg)));
    }

    /// Ends the session. After our own `leave` rtcd tears the peer connection down (DTLS close)
    /// before its `close` message arrives; either counts as the answer to the leave.
    fn close(&mut self) {
        if self.life == Life::Closed {
            return;
        }
        let by_server = !matches!(self.life, Life::Leaving { .. });
        self.life = Life::Closed;
        self.rtc.disconnect();
        self.out
            .push_back(Output::Event(Event::Closed { by_server }));
    }

    /// A fresh random u16 from this participant's RNG (for media start values).
    pub fn random_u16(&mut self) -> u16 {
        self.rng.random()
    }
}

fn set_mid(pubs: &mut [Publication], role: Role, mid: Mid) {
    for p in pubs.iter_mut().filter(|p| p.role == role) {
        p.mid = Some(mid);
    }
}

/// A MediaStream id as a browser makes it (a UUID v4), from the participant's RNG.
fn random_uuid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
    )
}

#[cfg(test)]
mod tests {
    use callsref::proto::rtcd::rtc::{SdpType, ServerCandidate, SessionDescription};

    use super::*;

    fn participant(dc_signaling: bool) -> (Participant, Instant) {
        let now = Instant::now();
        let cfg = ParticipantConfig {
            call_id: "c".into(),
            user_id: "u".into(),
            session_id: "s".into(),
            channel_id: "ch".into(),
            dc_signaling,
            local_addr: "127.0.0.1:5000".parse().unwrap(),
            seed: 1,
        };
        (Participant::new(cfg, now), now)
    }

    fn drain(p: &mut Participant) -> Vec<Output> {
        let mut out = Vec::new();
        loop {
            match p.poll_output().unwrap() {
                Output::Timeout(_) => return out,
                o => out.push(o),
            }
        }
    }

    #[test]
    fn join_sends_join_offer_with_data_channel_then_trickles() {
        let (mut p, now) = participant(true);
        p.handle_input(Input::Command(now, Command::Join)).unwrap();
        let signals: Vec<WsMessage> = drain(&mut p)
            .into_iter()
            .filter_map(|o| match o {
                Output::Signal(m) => Some(m),
                _ => None,
            })
            .collect();
        let WsMessage::Join(join) = &signals[0] else {
            panic!("first is join: {signals:?}")
        };
        assert_eq!(join.dc_signaling, Some(true));
        assert_eq!(join.channel_id.as_deref(), Some("ch"));
        let WsMessage::Rtc(offer) = &signals[1] else {
            panic!()
        };
        let offer = offer.parse_sdp().unwrap();
        assert_eq!(offer.sdp_type, SdpType::Offer);
        assert!(offer.sdp.contains("m=application"), "{}", offer.sdp);
        assert!(
            !offer.sdp.contains("a=candidate"),
            "candidates are trickled"
        );
        let WsMessage::Rtc(ice) = &signals[2] else {
            panic!()
        };
        let init = ice.parse_ice_candidate().unwrap();
        assert!(
            init.candidate.contains("127.0.0.1 5000 typ host"),
            "{init:?}"
        );
        let mid = init.sdp_mid.unwrap();
        assert!(offer.sdp.contains(&format!("a=mid:{mid}")));
        assert!(
            offer
                .sdp
                .contains(&format!("a=ice-ufrag:{}", init.username_fragment.unwrap()))
        );
        // Joining twice is refused.
        assert!(p.handle_input(Input::Command(now, Command::Join)).is_err());
    }

    #[test]
    fn bad_signalling_is_a_typed_error_and_the_participant_goes_on() {
        let (mut p, now) = participant(false);
        p.handle_input(Input::Command(now, Command::Join)).unwrap();
        drain(&mut p);
        let garbage = RtcMessage::to_rtcd("s", RtcType::Sdp, b"{not json".to_vec());
        let err = p
            .handle_input(Input::Signal(now, WsMessage::Rtc(garbage)))
            .unwrap_err();
        assert!(matches!(err, ParticipantError::Signal(_)), "{err}");
        let bad_ice = RtcMessage::to_rtcd(
            "s",
            RtcType::Ice,
            ServerCandidate::wrap(callsref::proto::rtcd::rtc::IceCandidateInit {
                candidate: "candidate:garbage".into(),
                ..Default::default()
            })
            .to_json(),
        );
        assert!(
            p.handle_input(Input::Signal(now, WsMessage::Rtc(bad_ice)))
                .is_err()
        );
        // An answer that is not SDP is refused, and the first offer is still pending.
        let answer = RtcMessage::sdp("s", &SessionDescription::answer("v=0"));
        assert!(
            p.handle_input(Input::Signal(now, WsMessage::Rtc(answer)))
                .is_err()
        );
        assert!(!p.is_settled());
        drain(&mut p);
    }

    #[test]
    fn commands_before_the_data_channel_wait_for_it() {
        let (mut p, now) = participant(false);
        p.handle_input(Input::Command(now, Command::Join)).unwrap();
        drain(&mut p);
        p.handle_input(Input::Command(now, Command::Mute)).unwrap();
        let out = drain(&mut p);
        assert!(
            !out.iter().any(|o| matches!(o, Output::Signal(_))),
            "mute waits for the DC: {out:?}"
        );
        assert!(!p.is_settled());
    }
}
