//! Deterministic simulation of the SFU core: str0m test clients (each acting as the plugin and the
//! end user) over an in-memory network, in virtual time. Time jumps to the earliest deadline of
//! the SFU, any client, or any packet in flight; a step budget fails the test on livelock.
//! Over 600 lines because the test client (plugin + peer roles, voice/video/simulcast-screen
//! publisher) and the network (per-client downlink capacity, a targeted packet drop) live together.

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callsref::proto::rtcd::{DcMessage, SessionDescription};
use callsref::sfu::event::{HistMetric, SfuEvent};
use callsref::sfu::{ConnId, Input, Join, Output, RtcType, Sfu, SfuConfig, SignalIn, SignalOut};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::media::{
    Direction, KeyframeRequestKind, MediaKind, Mid, Pt, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpWrite};
use str0m::{Candidate, Event, Output as RtcOutput, Rtc};

pub const SFU_ADDR: &str = "10.0.0.1:8443";
pub const CONN: ConnId = ConnId(1);
const UDP_DELAY: Duration = Duration::from_millis(5);
const SIGNAL_DELAY: Duration = Duration::from_millis(10);

/// What is in flight.
#[derive(Debug)]
enum Delivery {
    ToSfu { from: SocketAddr, data: Vec<u8> },
    ToClient { client: usize, data: Vec<u8> },
    SignalToSfu(SignalIn),
    SignalToClient { client: usize, msg: SignalOut },
}

/// Behaviour knobs of a test client.
#[derive(Debug, Clone, Copy)]
pub struct ClientOpts {
    pub open_dc: bool,
    /// Publish an audio track in the first offer and send 20 ms packets.
    pub speak: bool,
    /// Send the first offer at all.
    pub offer: bool,
    /// Answer server offers (a client can withhold its answer to hold the SFU's lock).
    pub answer_server_offers: bool,
    /// Ask for SDP over the data channel (join prop `dcSignaling`).
    pub dc_signaling: bool,
    /// Publish a VP8 camera track (after `video_on`) and send a packet every 20 ms.
    pub video: bool,
    /// Share the screen with simulcast `l` (400 kbps) and `h` (2.4 Mbps), answering PLIs with
    /// keyframes on the requested layer.
    pub screen: bool,
}

impl Default for ClientOpts {
    fn default() -> Self {
        ClientOpts {
            open_dc: true,
            speak: false,
            offer: true,
            answer_server_offers: true,
            dc_signaling: false,
            video: false,
            screen: false,
        }
    }
}

/// A received server offer waiting to be answered (when answers are withheld).
#[derive(Debug)]
pub struct HeldOffer {
    pub offer: SdpOffer,
}

/// A str0m peer playing the end user, plus the plugin's WS role for its session.
#[derive(Debug)]
pub struct Client {
    pub session_id: String,
    pub addr: SocketAddr,
    pub rtc: Rtc,
    pub opts: ClientOpts,
    pub dc: Option<ChannelId>,
    pub pending: Option<SdpPendingOffer>,
    pub audio_mid: Option<Mid>,
    pub video_mid: Option<Mid>,
    /// Sequence number of the last video packet sent.
    pub video_seq: u64,
    pub screen_mid: Option<Mid>,
    /// Per layer (`l`, `h`): next sequence number and whether a keyframe is due.
    pub screen_layers: [(u64, bool); 2],
    /// RTP timestamp of the current screen frame (both layers share it, as encoders do).
    pub screen_ts: u32,
    /// VP8 packets received: (arrival, sequence, timestamp, layer byte `l`/`h`, keyframe start).
    pub video_rx: Vec<(Instant, u16, u32, u8, bool)>,
    /// Keyframe requests (PLI/FIR) that reached this publisher: (arrival, mid, rid).
    pub keyframe_requests: Vec<(Instant, Mid, Option<Rid>)>,
    /// Capacity of the SFU → client link (bps); `None` is unlimited. Packets queue behind it
    /// and are lost once the queue holds over 300 ms.
    pub down_bps: Option<f64>,
    link_free_at: Instant,
    pub rtc_timeout: Instant,
    pub next_media: Option<Instant>,
    pub next_ping: Option<Instant>,
    pub seq: u64,
    pub sent: Vec<(u16, u32)>,
    /// Received RTP per incoming mid: (seq, timestamp, arrival).
    pub received: HashMap<Mid, Vec<(u16, u32, Instant)>>,
    /// mid → (type, sender_id) from the latest MediaMap.
    pub media_map: Vec<(String, String, String)>,
    pub server_offers: Vec<Instant>,
    /// Server offers that arrived over the data channel.
    pub dc_offers: usize,
    pub held: Option<HeldOffer>,
    pub answered_by_sfu: usize,
    pub pongs: usize,
    pub lock_replies: Vec<bool>,
    pub closed_at: Option<Instant>,
    pub vad: Vec<(RtcType, Instant)>,
    pub connected: bool,
}

/// The simulation.
#[derive(Debug)]
pub struct Sim {
    pub now: Instant,
    pub sfu: Sfu,
    pub clients: Vec<Client>,
    pub events: Vec<(Instant, SfuEvent)>,
    sfu_timeout: Instant,
    net: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    in_flight: HashMap<usize, Delivery>,
    seq: u64,
    steps: u64,
    held: Vec<str0m::net::Transmit>,
    /// Drop the first VP8 packet (PT 96) with this sequence number on its way to this client.
    pub drop_video: Option<(usize, u16)>,
    /// Arrival times of the VP8 packets dropped by `drop_video`.
    pub dropped: Vec<Instant>,
}

impl Sim {
    pub fn new() -> Sim {
        Sim::with_bwe(true)
    }

    /// A simulation whose SFU runs a bandwidth estimator per session, or none.
    pub fn with_bwe(bwe: bool) -> Sim {
        let now = Instant::now();
        let cfg = SfuConfig {
            bwe,
            host_candidates: vec![SFU_ADDR.parse().unwrap()],
            seed: 42,
            nack_buffer_size: 256,
        };
        Sim {
            now,
            sfu: Sfu::new(cfg, now),
            clients: vec![],
            events: vec![],
            sfu_timeout: now,
            net: BinaryHeap::new(),
            in_flight: HashMap::new(),
            seq: 0,
            steps: 0,
            held: Vec::new(),
            drop_video: None,
            dropped: Vec::new(),
        }
    }

    fn send(&mut self, delay: Duration, d: Delivery) {
        self.seq += 1;
        let key = self.seq as usize;
        self.in_flight.insert(key, d);
        self.net.push(Reverse((self.now + delay, self.seq, key)));
    }

    /// Adds a client and sends its `join`; its first offer follows per `opts`.
    pub fn join(&mut self, call: &str, opts: ClientOpts) -> usize {
        let i = self.clients.len();
        let session_id = format!("session{i:02}aaaaaaaaaaaaaaaaaaa");
        let addr: SocketAddr = format!("10.0.0.{}:5000", i + 2).parse().unwrap();
        let mut rtc = Rtc::builder()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .set_rtp_mode(true)
            .build(self.now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        self.clients.push(Client {
            session_id: session_id.clone(),
            addr,
            rtc,
            opts,
            dc: None,
            pending: None,
            audio_mid: None,
            video_mid: None,
            video_seq: 20_000,
            screen_mid: None,
            screen_layers: [(1_000, true), (30_000, true)],
            screen_ts: 0,
            video_rx: vec![],
            keyframe_requests: vec![],
            down_bps: None,
            link_free_at: self.now,
            rtc_timeout: self.now,
            next_media: None,
            next_ping: None,
            seq: 40_000,
            sent: vec![],
            received: HashMap::new(),
            media_map: vec![],
            server_offers: vec![],
            dc_offers: 0,
            held: None,
            answered_by_sfu: 0,
            pongs: 0,
            lock_replies: vec![],
            closed_at: None,
            vad: vec![],
            connected: false,
        });
        let join = Join {
            group_id: "group1".into(),
            call_id: call.into(),
            user_id: format!("user{i}"),
            session_id,
            props: callsref::sfu::signal::SessionProps {
                channel_id: Some("channel1".into()),
                av1_support: Some(false),
                dc_signaling: Some(opts.dc_signaling),
            },
        };
        self.send(SIGNAL_DELAY, Delivery::SignalToSfu(SignalIn::Join(join)));
        let video_stream = format!("video-stream-{i}");
        if opts.video {
            // rtcd needs `video_on` before the track, or it rejects the video m-line.
            let payload = serde_json::json!({ "videoStreamID": video_stream });
            self.rtc_to_sfu(i, RtcType::VideoOn, serde_json::to_vec(&payload).unwrap());
        }
        let screen_stream = format!("screen-stream-{i}");
        if opts.screen {
            let payload = serde_json::json!({ "screenStreamID": screen_stream });
            self.rtc_to_sfu(i, RtcType::ScreenOn, serde_json::to_vec(&payload).unwrap());
        }
        if opts.offer {
            let c = &mut self.clients[i];
            let mut api = c.rtc.sdp_api();
            if opts.open_dc {
                api.add_channel("calls-dc".into());
            }
            if opts.speak {
                c.audio_mid =
                    Some(api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
            }
            if opts.video {
                c.video_mid = Some(api.add_media(
                    MediaKind::Video,
                    Direction::SendOnly,
                    Some(video_stream),
                    Some(format!("video-track-{i}")),
                    None,
                ));
            }
            if opts.screen {
                let mut sim = Simulcast::new();
                sim.add_send_layer(SimulcastLayer::new("l"));
                sim.add_send_layer(SimulcastLayer::new("h"));
                c.screen_mid = Some(api.add_media(
                    MediaKind::Video,
                    Direction::SendOnly,
                    Some(screen_stream),
                    Some(format!("screen-track-{i}")),
                    Some(sim),
                ));
            }
            let (offer, pending) = api.apply().unwrap();
            c.pending = Some(pending);
            self.signal_sdp(i, "offer", &offer.to_sdp_string());
            // Trickle our own candidate too, as browsers do.
            let cand = serde_json::json!({"candidate": format!("{}", Candidate::host(addr, "udp").unwrap()), "sdpMid": "0", "sdpMLineIndex": 0});
            self.rtc_to_sfu(i, RtcType::Ice, serde_json::to_vec(&cand).unwrap());
        }
        self.drive_client(i);
        i
    }

    pub fn rtc_to_sfu(&mut self, i: usize, t: RtcType, data: Vec<u8>) {
        let session_id = self.clients[i].session_id.clone();
        self.send(
            SIGNAL_DELAY,
            Delivery::SignalToSfu(SignalIn::Rtc {
                session_id,
                msg_type: t.as_u8() as u64,
                data,
            }),
        );
    }

    fn signal_sdp(&mut self, i: usize, kind: &str, sdp: &str) {
        let json = serde_json::to_vec(&serde_json::json!({"type": kind, "sdp": sdp})).unwrap();
        self.rtc_to_sfu(i, RtcType::Sdp, json);
    }

    pub fn leave(&mut self, i: usize) {
        let session_id = self.clients[i].session_id.clone();
        self.send(
            SIGNAL_DELAY,
            Delivery::SignalToSfu(SignalIn::Leave { session_id }),
        );
    }

    pub fn dc_send(&mut self, i: usize, msg: &DcMessage) {
        let c = &mut self.clients[i];
        let id = c.dc.expect("dc open");
        c.rtc
            .channel(id)
            .unwrap()
            .write(true, &msg.encode())
            .unwrap();
        self.drive_client(i);
    }

    /// Client-initiated renegotiation adding a send-only audio m-line (after a granted Lock).
    pub fn client_add_audio(&mut self, i: usize) {
        let c = &mut self.clients[i];
        let mut api = c.rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        c.audio_mid = Some(mid);
        c.opts.speak = true;
        c.pending = Some(pending);
        self.signal_sdp(i, "offer", &offer.to_sdp_string());
    }

    /// Viewer `i` asks for a keyframe (PLI or FIR) on the screen or video it gets from `sender`.
    pub fn request_keyframe(&mut self, i: usize, sender: usize, kind: KeyframeRequestKind) {
        let sender_id = self.clients[sender].session_id.clone();
        let mids: Vec<Mid> = self.clients[i]
            .media_map
            .iter()
            .filter(|(_, kind, s)| *s == sender_id && (kind == "screen" || kind == "video"))
            .map(|(mid, _, _)| Mid::from(mid.as_str()))
            .collect();
        assert!(!mids.is_empty(), "viewer {i} has no video from {sender}");
        for mid in mids {
            let mut api = self.clients[i].rtc.direct_api();
            let rx = api.stream_rx_by_mid(mid, None).expect("an incoming stream");
            rx.request_keyframe(kind);
        }
        self.drive_client(i);
    }

    /// Answers a withheld server offer now.
    pub fn answer_held(&mut self, i: usize) {
        let held = self.clients[i].held.take().expect("a held offer");
        let answer = self.clients[i]
            .rtc
            .sdp_api()
            .accept_offer(held.offer)
            .unwrap();
        self.signal_sdp(i, "answer", &answer.to_sdp_string());
        self.drive_client(i);
    }

    /// Runs until `self.now + d`.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(|_| false, end);
    }

    /// Runs until `cond` holds or `end`; returns whether it held.
    pub fn run_until(&mut self, mut cond: impl FnMut(&Sim) -> bool, end: Instant) -> bool {
        loop {
            if cond(self) {
                return true;
            }
            self.steps += 1;
            assert!(self.steps < 5_000_000, "livelock: step budget exhausted");
            let mut next = end.min(self.sfu_timeout);
            if let Some(Reverse((t, _, _))) = self.net.peek() {
                next = next.min(*t);
            }
            for c in self.clients.iter().filter(|c| c.closed_at.is_none()) {
                next = next.min(c.rtc_timeout);
                for t in [c.next_media, c.next_ping].into_iter().flatten() {
                    next = next.min(t);
                }
            }
            if next > end {
                return false;
            }
            self.now = self.now.max(next);
            let now = self.now;
            while let Some(Reverse((t, _, key))) = self.net.peek().copied() {
                if t > now {
                    break;
                }
                self.net.pop();
                let d = self.in_flight.remove(&key).unwrap();
                self.deliver(d);
            }
            if self.sfu_timeout <= now {
                self.sfu.handle_input(Input::Timeout(now)).unwrap();
                self.drive_sfu();
            }
            for i in 0..self.clients.len() {
                self.client_tick(i);
            }
            if now >= end && !cond(self) {
                return false;
            }
        }
    }

    fn deliver(&mut self, d: Delivery) {
        let now = self.now;
        match d {
            Delivery::ToSfu { from, data } => {
                let r =
                    Receive::new(Protocol::Udp, from, SFU_ADDR.parse().unwrap(), &data).unwrap();
                self.sfu.handle_input(Input::Receive(now, r)).unwrap();
                self.drive_sfu();
            }
            Delivery::SignalToSfu(msg) => {
                // rtcd only logs refused messages; so does the sim.
                let _ = self.sfu.handle_input(Input::Signal(now, CONN, msg));
                self.drive_sfu();
            }
            Delivery::ToClient { client, data } => {
                let c = &mut self.clients[client];
                if c.closed_at.is_some() {
                    return;
                }
                // RTP headers travel in the clear under SRTP: PT in byte 1, sequence in 2..4.
                if let Some((to, seq)) = self.drop_video
                    && to == client
                    && data.len() > 12
                    && data[1] & 0x7f == 96
                    && u16::from_be_bytes([data[2], data[3]]) == seq
                {
                    self.drop_video = None;
                    self.dropped.push(now);
                    return;
                }
                let r =
                    Receive::new(Protocol::Udp, SFU_ADDR.parse().unwrap(), c.addr, &data).unwrap();
                let _ = c.rtc.handle_input(str0m::Input::Receive(now, r));
                self.drive_client(client);
            }
            Delivery::SignalToClient { client, msg } => self.client_signal(client, msg),
        }
    }

    fn client_index(&self, session_id: &str) -> Option<usize> {
        self.clients.iter().position(|c| c.session_id == session_id)
    }

    fn drive_sfu(&mut self) {
        loop {
            match self.sfu.poll_output() {
                Output::Timeout(t) => {
                    self.sfu_timeout = t;
                    return;
                }
                Output::Transmit(t) => {
                    if let Some(client) = self.clients.iter().position(|c| c.addr == t.destination)
                    {
                        let now = self.now;
                        let c = &mut self.clients[client];
                        let mut delay = UDP_DELAY;
                        if let Some(bps) = c.down_bps {
                            let start = c.link_free_at.max(now);
                            if start - now > Duration::from_millis(300) {
                                continue; // tail drop
                            }
                            let tx = Duration::from_secs_f64(t.contents.len() as f64 * 8.0 / bps);
                            c.link_free_at = start + tx;
                            delay += c.link_free_at - now;
                        }
                        self.send(
                            delay,
                            Delivery::ToClient {
                                client,
                                data: t.contents.to_vec(),
                            },
                        );
                    }
                }
                Output::Signal(_, msg) => {
                    let sid = match &msg {
                        SignalOut::Rtc(m) | SignalOut::Vad(m) => m.session_id.clone(),
                        SignalOut::Close { session_id } => session_id.clone(),
                    };
                    if let Some(client) = self.client_index(&sid) {
                        self.send(SIGNAL_DELAY, Delivery::SignalToClient { client, msg });
                    }
                }
                Output::Event(e) => self.events.push((self.now, e)),
            }
        }
    }

    fn client_signal(&mut self, i: usize, msg: SignalOut) {
        let now = self.now;
        match msg {
            SignalOut::Close { .. } => self.clients[i].closed_at = Some(now),
            SignalOut::Vad(m) => self.clients[i].vad.push((m.msg_type, now)),
            SignalOut::Rtc(m) if m.msg_type == RtcType::Ice => {
                let v: serde_json::Value = serde_json::from_slice(&m.data).unwrap();
                assert_eq!(v["type"], "candidate");
                let s = v["candidate"]["candidate"].as_str().unwrap();
                self.clients[i]
                    .rtc
                    .add_remote_candidate(Candidate::from_sdp_string(s).unwrap());
            }
            SignalOut::Rtc(m) => {
                let v: serde_json::Value = serde_json::from_slice(&m.data).unwrap();
                let sdp = v["sdp"].as_str().unwrap().to_string();
                self.client_sdp(i, v["type"].as_str().unwrap(), &sdp, false);
            }
        }
        self.drive_client(i);
    }

    fn client_sdp(&mut self, i: usize, kind: &str, sdp: &str, via_dc: bool) {
        let now = self.now;
        let c = &mut self.clients[i];
        if kind == "answer" {
            let answer = SdpAnswer::from_sdp_string(sdp).unwrap();
            let pending = c.pending.take().expect("answer without offer");
            c.rtc.sdp_api().accept_answer(pending, answer).unwrap();
            c.answered_by_sfu += 1;
            let publishes = (c.opts.speak && c.audio_mid.is_some())
                || c.video_mid.is_some()
                || c.screen_mid.is_some();
            if publishes && c.next_media.is_none() {
                c.next_media = Some(now);
            }
            return;
        }
        c.server_offers.push(now);
        if via_dc {
            c.dc_offers += 1;
        }
        let offer = SdpOffer::from_sdp_string(sdp).unwrap();
        if !c.opts.answer_server_offers {
            c.held = Some(HeldOffer { offer });
            return;
        }
        let answer = c.rtc.sdp_api().accept_offer(offer).unwrap();
        let json = serde_json::to_vec(
            &serde_json::json!({"type": "answer", "sdp": answer.to_sdp_string()}),
        )
        .unwrap();
        if via_dc {
            self.dc_send(
                i,
                &DcMessage::Sdp(SessionDescription::answer(answer.to_sdp_string())),
            );
        } else {
            self.rtc_to_sfu(i, RtcType::Sdp, json);
        }
    }

    fn client_tick(&mut self, i: usize) {
        let now = self.now;
        let c = &mut self.clients[i];
        if c.closed_at.is_some() {
            return;
        }
        if c.rtc_timeout <= now {
            c.rtc.handle_input(str0m::Input::Timeout(now)).unwrap();
        }
        if c.next_media.is_some_and(|t| t <= now) {
            c.next_media = Some(now + Duration::from_millis(20));
            if let Some(mid) = c.audio_mid {
                c.seq += 1;
                let ts = (c.seq as u32).wrapping_mul(960);
                let level = if c.seq.is_multiple_of(2) { -30 } else { -60 };
                let ext = ExtensionValues {
                    audio_level: Some(level),
                    voice_activity: Some(true),
                    ..Default::default()
                };
                let payload = c.seq.to_be_bytes().to_vec();
                let mut api = c.rtc.direct_api();
                if let Some(tx) = api.stream_tx_by_mid(mid, None) {
                    tx.write_rtp(
                        RtpWrite::new(Pt::new_with_value(111), c.seq.into(), ts, now, payload)
                            .ext_vals(ext),
                    );
                    c.sent.push((c.seq as u16, ts));
                }
            }
            if let Some(mid) = c.screen_mid {
                // One 20 ms frame per layer: `l` one packet, `h` six, 1000 bytes each.
                c.screen_ts = c.screen_ts.wrapping_add(1800);
                for (li, (rid, packets)) in [("l", 1usize), ("h", 6)].into_iter().enumerate() {
                    let key = std::mem::replace(&mut c.screen_layers[li].1, false);
                    let ts = c.screen_ts;
                    for k in 0..packets {
                        c.screen_layers[li].0 += 1;
                        let seq = c.screen_layers[li].0;
                        let mut payload = vec![0u8; 1000];
                        // VP8 descriptor: S=1 on the first packet; frame tag P=0 on keyframes.
                        payload[0] = if k == 0 { 0x10 } else { 0x00 };
                        payload[1] = if key { 0x00 } else { 0x01 };
                        payload[2] = rid.as_bytes()[0];
                        let mut api = c.rtc.direct_api();
                        if let Some(tx) = api.stream_tx_by_mid(mid, Some(Rid::from(rid))) {
                            tx.write_rtp(
                                RtpWrite::new(Pt::new_with_value(96), seq.into(), ts, now, payload)
                                    .marker(k + 1 == packets)
                                    .nackable(true),
                            );
                        }
                    }
                }
            }
            if let Some(mid) = c.video_mid {
                c.video_seq += 1;
                let ts = (c.video_seq as u32).wrapping_mul(1800);
                // A VP8 payload descriptor (S bit, partition 0) and a body; content is opaque here.
                let mut payload = vec![0x10u8; 300];
                payload[1..9].copy_from_slice(&c.video_seq.to_be_bytes());
                let mut api = c.rtc.direct_api();
                if let Some(tx) = api.stream_tx_by_mid(mid, None) {
                    tx.write_rtp(
                        RtpWrite::new(Pt::new_with_value(96), c.video_seq.into(), ts, now, payload)
                            .marker(true)
                            .nackable(true),
                    );
                }
            }
        }
        if c.next_ping.is_some_and(|t| t <= now) {
            c.next_ping = Some(now + Duration::from_secs(1));
            self.dc_send(i, &DcMessage::Ping);
        }
        self.drive_client(i);
    }

    fn drive_client(&mut self, i: usize) {
        let now = self.now;
        loop {
            let c = &mut self.clients[i];
            if c.closed_at.is_some() {
                c.rtc_timeout = now + Duration::from_secs(3600);
                return;
            }
            match c.rtc.poll_output().unwrap() {
                RtcOutput::Timeout(t) => {
                    c.rtc_timeout = t;
                    return;
                }
                RtcOutput::Transmit(t) => {
                    let from = c.addr;
                    self.send(
                        UDP_DELAY,
                        Delivery::ToSfu {
                            from,
                            data: t.contents.to_vec(),
                        },
                    );
                }
                RtcOutput::Event(e) => match e {
                    Event::Connected => c.connected = true,
                    Event::ChannelOpen(id, _) => {
                        c.dc = Some(id);
                        c.next_ping = Some(now);
                    }
                    Event::ChannelData(d) => match DcMessage::decode(&d.data).unwrap() {
                        DcMessage::Pong => c.pongs += 1,
                        DcMessage::LockResponse(b) => c.lock_replies.push(b),
                        DcMessage::MediaMap(m) => {
                            c.media_map = m
                                .into_iter()
                                .map(|(mid, t)| (mid, t.kind.as_str().to_string(), t.sender_id))
                                .collect()
                        }
                        DcMessage::Sdp(desc) => {
                            let json = desc.to_json();
                            let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
                            let sdp = v["sdp"].as_str().unwrap().to_string();
                            self.client_sdp(i, v["type"].as_str().unwrap(), &sdp, true);
                        }
                        other => panic!("unexpected dc message {other:?}"),
                    },
                    Event::KeyframeRequest(r) if Some(r.mid) == c.video_mid => {
                        c.keyframe_requests.push((now, r.mid, r.rid));
                    }
                    Event::KeyframeRequest(r) if Some(r.mid) == c.screen_mid => {
                        c.keyframe_requests.push((now, r.mid, r.rid));
                        let li = usize::from(r.rid == Some(Rid::from("h")));
                        c.screen_layers[li].1 = true;
                    }
                    Event::RtpPacket(p) => {
                        if *p.header.payload_type == 96 && p.payload.len() > 2 {
                            let key = p.payload[0] & 0x10 != 0 && p.payload[1] & 0x01 == 0;
                            c.video_rx.push((
                                now,
                                p.header.sequence_number,
                                p.header.timestamp,
                                p.payload[2],
                                key,
                            ));
                        }
                        let mut api = c.rtc.direct_api();
                        let mid = api.stream_rx(&p.header.ssrc).map(|s| s.mid());
                        if let Some(mid) = mid {
                            c.received.entry(mid).or_default().push((
                                p.header.sequence_number,
                                p.header.timestamp,
                                now,
                            ));
                        }
                    }
                    _ => {}
                },
            }
        }
    }

    /// Makes client `i` emit `count` audio packets (20 ms apart in RTP time) and returns the
    /// encrypted datagrams without delivering them, for benchmarks that feed the SFU directly.
    pub fn capture_audio(&mut self, i: usize, count: usize) -> Vec<Vec<u8>> {
        let mid = self.clients[i].audio_mid.expect("client publishes audio");
        let mut out = Vec::with_capacity(count);
        let mut other = Vec::new();
        for _ in 0..count {
            // Advance time so str0m's send queue releases the packet.
            self.now += Duration::from_micros(100);
            let now = self.now;
            let c = &mut self.clients[i];
            c.seq += 1;
            let ts = (c.seq as u32).wrapping_mul(960);
            let ext = ExtensionValues {
                audio_level: Some(-40),
                voice_activity: Some(true),
                ..Default::default()
            };
            let payload = vec![0x78u8; 80];
            let mut api = c.rtc.direct_api();
            let tx = api.stream_tx_by_mid(mid, None).expect("negotiated audio");
            tx.write_rtp(
                RtpWrite::new(Pt::new_with_value(111), c.seq.into(), ts, now, payload)
                    .ext_vals(ext),
            );
            c.rtc.handle_input(str0m::Input::Timeout(now)).unwrap();
            loop {
                match c.rtc.poll_output().unwrap() {
                    // Only the RTP (PT 111) datagrams; RTCP reports may ride along.
                    RtcOutput::Transmit(t)
                        if t.contents.len() > 1 && t.contents[1] & 0x7f == 111 =>
                    {
                        out.push(t.contents.to_vec())
                    }
                    // STUN consent checks and RTCP still travel, or the SFU would drop the peer.
                    RtcOutput::Transmit(t) => other.push(t.contents.to_vec()),
                    RtcOutput::Timeout(_) => break,
                    RtcOutput::Event(_) => {}
                }
            }
        }
        let from = self.clients[i].addr;
        for data in other {
            self.send(UDP_DELAY, Delivery::ToSfu { from, data });
        }
        out
    }

    /// Feeds one datagram from client `i` to the SFU and drains its output; transmits are held
    /// (moved, not copied) until [`Sim::release_held`]. Returns how many datagrams the SFU sent.
    pub fn sfu_ingest(&mut self, i: usize, data: &[u8]) -> usize {
        let from = self.clients[i].addr;
        let r = Receive::new(Protocol::Udp, from, SFU_ADDR.parse().unwrap(), data).unwrap();
        self.sfu.handle_input(Input::Receive(self.now, r)).unwrap();
        let mut sent = 0;
        loop {
            match self.sfu.poll_output() {
                Output::Transmit(t) => {
                    sent += 1;
                    self.held.push(t);
                }
                Output::Timeout(t) => {
                    self.sfu_timeout = t;
                    return sent;
                }
                _ => {}
            }
        }
    }

    /// Puts the transmits held by [`Sim::sfu_ingest`] on the network, so receivers keep ICE
    /// consent and RTCP going.
    pub fn release_held(&mut self) {
        for t in std::mem::take(&mut self.held) {
            if let Some(client) = self.clients.iter().position(|c| c.addr == t.destination) {
                self.send(
                    UDP_DELAY,
                    Delivery::ToClient {
                        client,
                        data: t.contents.to_vec(),
                    },
                );
            }
        }
    }

    /// Total RTP packets client `i` received.
    pub fn received_total(&self, i: usize) -> usize {
        self.clients[i].received.values().map(|v| v.len()).sum()
    }

    /// Received packets on the m-line the MediaMap attributes to `sender`.
    pub fn received_from(&self, i: usize, sender: usize) -> Vec<(u16, u32, Instant)> {
        let sid = &self.clients[sender].session_id;
        let c = &self.clients[i];
        c.media_map
            .iter()
            .filter(|(_, _, s)| s == sid)
            .flat_map(|(mid, _, _)| {
                c.received
                    .get(&Mid::from(mid.as_str()))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }

    pub fn observations(&self, metric: HistMetric) -> Vec<(Instant, f64)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                SfuEvent::Observe {
                    metric: m, value, ..
                } if *m == metric => Some((*t, *value)),
                _ => None,
            })
            .collect()
    }
}
