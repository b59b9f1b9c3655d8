//! Test double of rtcd's session logic for the simulation (a mock: the reference SFU core is not on
//! main yet). It is a real str0m answerer per session that follows rtcd's observable behaviour
//! closely enough to exercise every participant path: answers the first offer over WS and trickles its
//! candidate, grants and releases the DC lock, answers pings, forwards each published audio/video
//! track to every other session with a server offer (media map on the DC first), and answers `leave`
//! with `close`. It does no VAD, simulcast switching or rate limiting.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use callsref::proto::rtcd::dc::{DcMessage, MediaMap, TrackInfo};
use callsref::proto::rtcd::ids::TrackKind;
use callsref::proto::rtcd::rtc::{
    IceCandidateInit, RtcMessage, RtcType, SdpType, ServerCandidate, SessionDescription,
};
use callsref::proto::rtcd::ws::WsMessage;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::sim::{ServerOutput, SimServer};

struct Forward {
    kind: TrackKind,
    sender: String,
    media: MediaKind,
}

struct Session {
    id: String,
    rtc: Rtc,
    dc: Option<ChannelId>,
    dc_open: bool,
    /// Client holds the lock.
    client_locked: bool,
    /// Our own offer in flight.
    pending: Option<SdpPendingOffer>,
    /// Tracks (source session, source mid) still to add for this receiver.
    to_add: VecDeque<(String, Mid)>,
    /// (source session, source mid) → our sending mid.
    sending: HashMap<(String, Mid), Mid>,
    dc_out: VecDeque<DcMessage>,
    trickle: Option<Candidate>,
    deadline: Instant,
}

/// The mock SFU: one str0m `Rtc` per session on one UDP address.
pub struct MockSfu {
    addr: SocketAddr,
    sessions: Vec<Session>,
    /// Published tracks: (session, mid) → what it is.
    tracks: HashMap<(String, Mid), Forward>,
    out: VecDeque<ServerOutput>,
    now: Instant,
    /// Server offers answered by clients (for assertions).
    pub server_offers_answered: usize,
    /// Lock requests refused (the server held the lock).
    pub locks_refused: usize,
    /// DC stats messages per session: (LossRate, RoundTripTime, Jitter) values in arrival order.
    pub dc_stats: HashMap<String, Vec<DcMessage>>,
    /// NACKs received per (receiving session, sending mid), cumulative (from str0m egress stats).
    pub nacks: HashMap<(String, Mid), u64>,
    /// RTP packets received per simulcast rid (`-` for none).
    pub packets_by_rid: HashMap<String, u64>,
}

impl MockSfu {
    pub fn new(addr: SocketAddr, now: Instant) -> Self {
        MockSfu {
            addr,
            sessions: Vec::new(),
            tracks: HashMap::new(),
            out: VecDeque::new(),
            now,
            server_offers_answered: 0,
            locks_refused: 0,
            dc_stats: HashMap::new(),
            nacks: HashMap::new(),
            packets_by_rid: HashMap::new(),
        }
    }

    fn session(&mut self, id: &str) -> Option<usize> {
        self.sessions.iter().position(|s| s.id == id)
    }

    fn send_rtc(&mut self, session: &str, msg_type: RtcType, data: Vec<u8>) {
        let mut m = RtcMessage::to_rtcd(session, msg_type, data);
        m.group_id = "mock".into();
        self.out.push_back(ServerOutput::Signal(WsMessage::Rtc(m)));
    }

    fn on_offer(&mut self, i: usize, sdp: &str, via_dc: bool) {
        let s = &mut self.sessions[i];
        if s.pending.is_some() {
            return; // impolite: ignore the client's offer while our own is out
        }
        let offer = SdpOffer::from_sdp_string(sdp).expect("mock: client offers valid SDP");
        let answer = s
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .expect("mock: accept offer");
        let desc = SessionDescription::answer(answer.to_sdp_string());
        if via_dc {
            s.dc_out.push_back(DcMessage::Sdp(desc));
        } else {
            let id = s.id.clone();
            self.send_rtc(&id, RtcType::Sdp, desc.to_json());
        }
        // Trickle our candidate after the answer, as pion does when gathering completes.
        if let Some(c) = self.sessions[i].trickle.take()
            && let Some(c) = self.sessions[i].rtc.add_local_candidate(c)
        {
            let init = IceCandidateInit {
                candidate: c.to_sdp_string(),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
                username_fragment: None,
            };
            let id = self.sessions[i].id.clone();
            self.send_rtc(&id, RtcType::Ice, ServerCandidate::wrap(init).to_json());
        }
    }

    fn on_answer(&mut self, i: usize, sdp: &str) {
        let s = &mut self.sessions[i];
        let Some(pending) = s.pending.take() else {
            return;
        };
        let answer = SdpAnswer::from_sdp_string(sdp).expect("mock: client answers valid SDP");
        s.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("mock: accept answer");
        self.server_offers_answered += 1;
    }

    /// Starts the next server offer for session `i` if it is idle.
    fn maybe_offer(&mut self, i: usize) {
        let s = &mut self.sessions[i];
        if !s.dc_open || s.client_locked || s.pending.is_some() {
            return;
        }
        let Some(key) = s.to_add.pop_front() else {
            return;
        };
        let Some(fwd) = self.tracks.get(&key) else {
            return;
        };
        let track_id = format!("{}_{}_{}", fwd.kind.as_str(), fwd.sender, "abcdefgh");
        let mut api = s.rtc.sdp_api();
        let mid = api.add_media(
            fwd.media,
            Direction::SendOnly,
            Some(fwd.sender.clone()),
            Some(track_id),
            None,
        );
        let Some((offer, pending)) = api.apply() else {
            return;
        };
        s.pending = Some(pending);
        s.sending.insert(key, mid);
        let mut map = MediaMap::new();
        map.insert(
            mid.to_string(),
            TrackInfo {
                kind: fwd.kind,
                sender_id: fwd.sender.clone(),
            },
        );
        s.dc_out.push_back(DcMessage::MediaMap(map));
        let id = s.id.clone();
        self.send_rtc(
            &id,
            RtcType::Sdp,
            SessionDescription::offer(offer.to_sdp_string()).to_json(),
        );
    }

    fn drain(&mut self, i: usize) {
        loop {
            if let Some(msg) = self.sessions[i].dc_out.pop_front() {
                let s = &mut self.sessions[i];
                if let Some(mut ch) = s.dc.and_then(|id| s.rtc.channel(id)) {
                    let _ = ch.write(true, &msg.encode());
                }
                continue;
            }
            let out = match self.sessions[i].rtc.poll_output() {
                Ok(o) => o,
                Err(_) => return,
            };
            match out {
                Output::Timeout(t) => {
                    self.sessions[i].deadline = t;
                    return;
                }
                Output::Transmit(t) => self.out.push_back(ServerOutput::Transmit {
                    destination: t.destination,
                    contents: t.contents.to_vec(),
                }),
                Output::Event(e) => self.on_event(i, e),
            }
        }
    }

    fn on_event(&mut self, i: usize, e: Event) {
        match e {
            Event::ChannelOpen(id, _) => {
                let s = &mut self.sessions[i];
                s.dc = Some(id);
                s.dc_open = true;
                // As rtcd's handleTracks: queue every published track of the others.
                let me = s.id.clone();
                let keys: Vec<_> = self
                    .tracks
                    .keys()
                    .filter(|(p, _)| *p != me)
                    .cloned()
                    .collect();
                self.sessions[i].to_add.extend(keys);
                self.maybe_offer(i);
            }
            Event::ChannelData(d) => match DcMessage::decode(&d.data) {
                Ok(DcMessage::Ping) => self.sessions[i].dc_out.push_back(DcMessage::Pong),
                Ok(
                    m @ (DcMessage::LossRate(_)
                    | DcMessage::RoundTripTime(_)
                    | DcMessage::Jitter(_)),
                ) => {
                    let id = self.sessions[i].id.clone();
                    self.dc_stats.entry(id).or_default().push(m);
                }
                Ok(DcMessage::LockRequest) => {
                    let s = &mut self.sessions[i];
                    let granted = s.pending.is_none() && !s.client_locked;
                    s.client_locked |= granted;
                    if !granted {
                        self.locks_refused += 1;
                    }
                    s.dc_out.push_back(DcMessage::LockResponse(granted));
                }
                Ok(DcMessage::Unlock) => {
                    self.sessions[i].client_locked = false;
                    self.maybe_offer(i);
                }
                Ok(DcMessage::Sdp(sdp)) => match sdp.sdp_type {
                    SdpType::Offer => self.on_offer(i, &sdp.sdp, true),
                    SdpType::Answer => {
                        self.on_answer(i, &sdp.sdp);
                        self.maybe_offer(i);
                    }
                    _ => {}
                },
                _ => {}
            },
            Event::MediaAdded(m) if m.direction == Direction::RecvOnly => {
                let sender = self.sessions[i].id.clone();
                let kind = if m.kind == MediaKind::Audio {
                    TrackKind::Voice
                } else {
                    TrackKind::Screen
                };
                let key = (sender.clone(), m.mid);
                self.tracks.insert(
                    key.clone(),
                    Forward {
                        kind,
                        sender: sender.clone(),
                        media: m.kind,
                    },
                );
                for j in 0..self.sessions.len() {
                    if j != i && self.sessions[j].dc_open {
                        self.sessions[j].to_add.push_back(key.clone());
                        self.maybe_offer(j);
                    }
                }
            }
            Event::RtpPacket(p) => {
                let rid = p.header.ext_vals.rid.map(|r| r.to_string());
                *self
                    .packets_by_rid
                    .entry(rid.unwrap_or_else(|| "-".into()))
                    .or_default() += 1;
                let sender = self.sessions[i].id.clone();
                let Some(src_mid) = self.sessions[i]
                    .rtc
                    .direct_api()
                    .stream_rx(&p.header.ssrc)
                    .map(|rx| rx.mid())
                else {
                    return;
                };
                let key = (sender, src_mid);
                for j in 0..self.sessions.len() {
                    let Some(&mid) = self.sessions[j].sending.get(&key) else {
                        continue;
                    };
                    let rtc = &mut self.sessions[j].rtc;
                    let Some(pt) = rtc.media(mid).and_then(|m| m.remote_pts().first().copied())
                    else {
                        continue;
                    };
                    let mut api = rtc.direct_api();
                    let Some(tx) = api.stream_tx_by_mid(mid, None) else {
                        continue;
                    };
                    tx.write_rtp(
                        RtpWrite::new(
                            pt,
                            SeqNo::from(*p.seq_no),
                            p.header.timestamp,
                            self.now,
                            p.payload.clone(),
                        )
                        .marker(p.header.marker)
                        .ext_vals(p.header.ext_vals.clone())
                        .nackable(true),
                    );
                    self.drain(j);
                }
            }
            Event::MediaEgressStats(st) => {
                let id = self.sessions[i].id.clone();
                self.nacks.insert((id, st.mid), st.nacks);
            }
            Event::KeyframeRequest(r) => {
                // Forward a viewer's PLI to every publisher of that track (no rate limit here).
                let key = self.sessions[i]
                    .sending
                    .iter()
                    .find(|(_, m)| **m == r.mid)
                    .map(|(k, _)| k.clone());
                if let Some((src, src_mid)) = key
                    && let Some(j) = self.session(&src)
                {
                    if let Some(rx) = self.sessions[j]
                        .rtc
                        .direct_api()
                        .stream_rx_by_mid(src_mid, None)
                    {
                        rx.request_keyframe(r.kind);
                    }
                    self.drain(j);
                }
            }
            _ => {}
        }
    }
}

impl SimServer for MockSfu {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn handle_signal(&mut self, now: Instant, msg: WsMessage) {
        self.now = now;
        match msg {
            WsMessage::Join(j) => {
                let mut rtc = Rtc::builder()
                    .set_ice_lite(true)
                    .clear_codecs()
                    .enable_opus(true, false)
                    .enable_vp8(true)
                    .set_rtp_mode(true)
                    .set_stats_interval(Some(std::time::Duration::from_secs(1)))
                    .build(now);
                let _ = &mut rtc;
                self.sessions.push(Session {
                    id: j.session_id,
                    rtc,
                    dc: None,
                    dc_open: false,
                    client_locked: false,
                    pending: None,
                    to_add: VecDeque::new(),
                    sending: HashMap::new(),
                    dc_out: VecDeque::new(),
                    trickle: Candidate::host(self.addr, "udp").ok(),
                    deadline: now,
                });
            }
            WsMessage::Rtc(m) => {
                let Some(i) = self.session(&m.session_id) else {
                    return;
                };
                match m.msg_type {
                    RtcType::Sdp => {
                        let Ok(sdp) = m.parse_sdp() else { return };
                        match sdp.sdp_type {
                            SdpType::Offer => self.on_offer(i, &sdp.sdp, false),
                            SdpType::Answer => {
                                self.on_answer(i, &sdp.sdp);
                                self.maybe_offer(i);
                            }
                            _ => {}
                        }
                    }
                    RtcType::Ice => {
                        if let Ok(init) = m.parse_ice_candidate()
                            && let Ok(c) = Candidate::from_sdp_string(&init.candidate)
                        {
                            self.sessions[i].rtc.add_remote_candidate(c);
                        }
                    }
                    _ => {}
                }
                self.drain(i);
            }
            WsMessage::Leave { session_id } => {
                if let Some(i) = self.session(&session_id) {
                    let mut s = self.sessions.remove(i);
                    s.rtc.disconnect();
                    self.tracks.retain(|(p, _), _| *p != session_id);
                }
                self.out
                    .push_back(ServerOutput::Signal(WsMessage::Close { session_id }));
            }
            _ => {}
        }
    }

    fn handle_datagram(&mut self, now: Instant, source: SocketAddr, contents: &[u8]) {
        self.now = now;
        let Ok(r) = Receive::new(Protocol::Udp, source, self.addr, contents) else {
            return;
        };
        let input = Input::Receive(now, r);
        let Some(i) = self.sessions.iter().position(|s| s.rtc.accepts(&input)) else {
            return;
        };
        let _ = self.sessions[i].rtc.handle_input(input);
        self.drain(i);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        for i in 0..self.sessions.len() {
            if self.sessions[i].deadline <= now {
                let _ = self.sessions[i].rtc.handle_input(Input::Timeout(now));
                self.drain(i);
            }
        }
    }

    fn poll_output(&mut self) -> ServerOutput {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        let t = self
            .sessions
            .iter()
            .map(|s| s.deadline)
            .min()
            .unwrap_or(self.now + std::time::Duration::from_secs(3600));
        ServerOutput::Timeout(t.max(self.now))
    }
}
