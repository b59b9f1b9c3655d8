//! webrtc-rs participants for the SFU's integration tests, with the test acting as the Calls
//! plugin over `/ws`: join, publish (speech sample, simulcast screen), count what arrives per
//! sender and track kind, and send or observe keyframe requests (PLI).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callsref::proto::rtcd::{
    IceCandidateInit, JoinData, RtcMessage, RtcType, SessionDescription, WsMessage,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use webrtc::interceptor::registry::Registry;
use webrtc::media::Sample;
use webrtc::media::io::ivf_reader::IVFReader;
use webrtc::media::io::ogg_reader::OggReader;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpHeaderExtensionCapability, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

use crate::sfu_proc::{Server, Ws, ws_connect, ws_next};
use crate::webrtc_peer;

/// Per (sender session id, track kind): packets received and when the last one arrived.
pub type Received = Arc<Mutex<HashMap<(String, String), (usize, Instant)>>>;

/// What a participant publishes.
#[derive(Clone, Copy, PartialEq)]
pub enum Role {
    Listener,
    Speaker,
    /// Screen share with simulcast layers `l` and `h`.
    Sharer,
}

/// Per (sender session id, track kind): the SSRC the SFU forwards that track with.
pub type Ssrcs = Arc<Mutex<HashMap<(String, String), u32>>>;

pub struct Participant {
    pub session_id: String,
    pub pc: Arc<RTCPeerConnection>,
    pub out: mpsc::UnboundedSender<WsMessage>,
    received: Received,
    ssrcs: Ssrcs,
    pub dc_open: Arc<AtomicBool>,
    pub closed: Arc<AtomicBool>,
    pub track_ids: Arc<Mutex<Vec<String>>>,
    /// Sharers: PLIs (picture loss indications) that reached the screen sender, all layers.
    pub plis: Arc<AtomicUsize>,
}

fn speech_sample() -> PathBuf {
    // The committed sample; SFU_SPEECH_OGG points elsewhere (e.g. before the samples are merged).
    let p = std::env::var_os("SFU_SPEECH_OGG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/media/speech-89.ogg")
        });
    assert!(
        p.exists(),
        "speech sample {} missing (it comes from the media samples on main)",
        p.display()
    );
    p
}

impl Participant {
    pub async fn join(srv: &Server, auth: &str, call: &str, n: usize, role: Role) -> Participant {
        let session_id = format!("interop{n:02}aaaaaaaaaaaaaaaaaaa");
        let mut ws = ws_connect(srv.http, auth).await.unwrap();
        assert!(matches!(
            ws_next(&mut ws, Duration::from_secs(5)).await,
            Some(WsMessage::Hello { .. })
        ));
        let join = JoinData {
            call_id: call.into(),
            user_id: format!("user{n}"),
            session_id: session_id.clone(),
            channel_id: Some("channel1".into()),
            av1_support: Some(false),
            dc_signaling: Some(false),
        };
        ws.send(Message::Binary(WsMessage::Join(join).encode().into()))
            .await
            .unwrap();

        let mut m = MediaEngine::default();
        m.register_default_codecs().unwrap();
        // Simulcast needs mid and rid header extensions on the video m-line.
        for uri in [
            "urn:ietf:params:rtp-hdrext:sdes:mid",
            "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        ] {
            let ext = RTCRtpHeaderExtensionCapability {
                uri: uri.to_owned(),
            };
            m.register_header_extension(ext, RTPCodecType::Video, None)
                .unwrap();
        }
        let registry = register_default_interceptors(Registry::new(), &mut m).unwrap();
        let api = APIBuilder::new()
            .with_media_engine(m)
            .with_interceptor_registry(registry)
            .build();
        let pc = Arc::new(
            api.new_peer_connection(RTCConfiguration::default())
                .await
                .unwrap(),
        );
        let (out, out_rx) = mpsc::unbounded_channel::<WsMessage>();

        let dc = pc.create_data_channel("calls-dc", None).await.unwrap();
        let dc_open = Arc::new(AtomicBool::new(false));
        let flag = dc_open.clone();
        dc.on_open(Box::new(move || {
            flag.store(true, Ordering::SeqCst);
            Box::pin(async {})
        }));

        let plis = Arc::new(AtomicUsize::new(0));
        if role == Role::Sharer {
            // screen_on must reach the SFU before the track (rtcd §9.5).
            let stream = format!("screen-{session_id}");
            let on = RtcMessage::screen_on(session_id.clone(), &stream);
            ws.send(Message::Binary(WsMessage::Rtc(on).encode().into()))
                .await
                .unwrap();
            let vp8 = || RTCRtpCodecCapability {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90000,
                ..Default::default()
            };
            let l = Arc::new(TrackLocalStaticSample::new_with_rid(
                vp8(),
                "screen".into(),
                "l".into(),
                stream.clone(),
            ));
            let h = Arc::new(TrackLocalStaticSample::new_with_rid(
                vp8(),
                "screen".into(),
                "h".into(),
                stream,
            ));
            let sender = pc
                .add_track(l.clone() as Arc<dyn TrackLocal + Send + Sync>)
                .await
                .unwrap();
            sender
                .add_encoding(h.clone() as Arc<dyn TrackLocal + Send + Sync>)
                .await
                .unwrap();
            tokio::spawn(play_ivf(l, "screen_l.ivf"));
            tokio::spawn(play_ivf(h, "screen_h.ivf"));
            for rid in ["l", "h"] {
                tokio::spawn(count_plis(sender.clone(), rid, plis.clone()));
            }
        }
        if role == Role::Speaker {
            let track = Arc::new(TrackLocalStaticSample::new(
                RTCRtpCodecCapability {
                    mime_type: MIME_TYPE_OPUS.to_owned(),
                    ..Default::default()
                },
                "voice".into(),
                format!("mic-{session_id}"),
            ));
            pc.add_track(track.clone() as Arc<dyn TrackLocal + Send + Sync>)
                .await
                .unwrap();
            tokio::spawn(play_speech(track));
        }

        let sid = session_id.clone();
        let tx = out.clone();
        pc.on_ice_candidate(Box::new(move |c| {
            if let Some(c) = c.and_then(|c| c.to_json().ok()) {
                let init = IceCandidateInit {
                    candidate: c.candidate,
                    sdp_mid: c.sdp_mid,
                    sdp_mline_index: c.sdp_mline_index,
                    username_fragment: c.username_fragment,
                };
                let _ = tx.send(WsMessage::Rtc(RtcMessage::ice(sid.clone(), &init)));
            }
            Box::pin(async {})
        }));

        let received: Received = Arc::default();
        let ssrcs: Ssrcs = Arc::default();
        let track_ids: Arc<Mutex<Vec<String>>> = Arc::default();
        let (rec, ids, by_key) = (received.clone(), track_ids.clone(), ssrcs.clone());
        pc.on_track(Box::new(move |track, _, _| {
            ids.lock().unwrap().push(track.id());
            let rec = rec.clone();
            let key = (
                track.stream_id(),
                track.id().split('_').next().unwrap_or_default().to_string(),
            );
            by_key.lock().unwrap().insert(key.clone(), track.ssrc());
            tokio::spawn(async move {
                while let Ok((_pkt, _)) = track.read_rtp().await {
                    let mut r = rec.lock().unwrap();
                    let e = r.entry(key.clone()).or_insert((0, Instant::now()));
                    e.0 += 1;
                    e.1 = Instant::now();
                }
            });
            Box::pin(async {})
        }));

        let offer = pc.create_offer(None).await.unwrap();
        pc.set_local_description(offer.clone()).await.unwrap();
        let desc = SessionDescription::offer(offer.sdp);
        out.send(WsMessage::Rtc(RtcMessage::sdp(session_id.clone(), &desc)))
            .unwrap();

        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(plugin_loop(
            ws,
            out_rx,
            pc.clone(),
            session_id.clone(),
            out.clone(),
            closed.clone(),
        ));
        Participant {
            session_id,
            pc,
            out,
            received,
            ssrcs,
            dc_open,
            closed,
            track_ids,
            plis,
        }
    }

    pub fn rtc(&self, t: RtcType) {
        self.out
            .send(WsMessage::Rtc(RtcMessage::signal(
                self.session_id.clone(),
                t,
            )))
            .unwrap();
    }

    pub fn count_from(&self, sender: &Participant) -> usize {
        self.count_kind(sender, "voice")
    }

    /// Sends one PLI for the `kind` track this participant receives from `sender`, as a viewer
    /// that lost a picture would. Returns false while that track has not arrived yet.
    pub async fn send_pli(&self, sender: &Participant, kind: &str) -> bool {
        let key = (sender.session_id.clone(), kind.to_string());
        let Some(media_ssrc) = self.ssrcs.lock().unwrap().get(&key).copied() else {
            return false;
        };
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        self.pc.write_rtcp(&[Box::new(pli)]).await.is_ok()
    }

    pub fn count_kind(&self, sender: &Participant, kind: &str) -> usize {
        let key = (sender.session_id.clone(), kind.to_string());
        self.received.lock().unwrap().get(&key).map_or(0, |e| e.0)
    }

    /// When the last `kind` packet from `sender` arrived here.
    pub fn last_arrival(&self, sender: &Participant, kind: &str) -> Option<Instant> {
        let key = (sender.session_id.clone(), kind.to_string());
        self.received.lock().unwrap().get(&key).map(|e| e.1)
    }
}

/// Counts PLIs arriving at one simulcast layer of a sender (reading also drains its RTCP).
async fn count_plis(sender: Arc<RTCRtpSender>, rid: &'static str, plis: Arc<AtomicUsize>) {
    while let Ok((pkts, _)) = sender.read_rtcp_simulcast(rid).await {
        let n = pkts
            .iter()
            .filter(|p| p.as_any().downcast_ref::<PictureLossIndication>().is_some())
            .count();
        plis.fetch_add(n, Ordering::SeqCst);
    }
}

/// Loops the speech sample as 20 ms Opus samples in real time.
async fn play_speech(track: Arc<TrackLocalStaticSample>) {
    let bytes = std::fs::read(speech_sample()).unwrap();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        let (mut ogg, _) = OggReader::new(std::io::Cursor::new(bytes.clone()), true).unwrap();
        while let Ok((page, _)) = ogg.parse_next_page() {
            // Header pages (OpusHead/OpusTags) are not audio.
            if page.starts_with(b"OpusHead") || page.starts_with(b"OpusTags") {
                continue;
            }
            tick.tick().await;
            let sample = Sample {
                data: page.freeze(),
                duration: Duration::from_millis(20),
                ..Default::default()
            };
            if track.write_sample(&sample).await.is_err() {
                return;
            }
        }
    }
}

/// Plays a committed IVF sample in real time at its own frame rate, looping.
async fn play_ivf(track: Arc<TrackLocalStaticSample>, name: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/media")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    loop {
        let (mut ivf, header) = IVFReader::new(std::io::Cursor::new(bytes.clone())).unwrap();
        let frame = Duration::from_secs_f64(
            header.timebase_numerator as f64 / header.timebase_denominator as f64,
        );
        let mut tick = tokio::time::interval(frame);
        while let Ok((data, _)) = ivf.parse_next_frame() {
            tick.tick().await;
            let sample = Sample {
                data: data.freeze(),
                duration: frame,
                ..Default::default()
            };
            if track.write_sample(&sample).await.is_err() {
                return;
            }
        }
    }
}

/// The plugin's side of one session: forwards our frames, applies rtcd's answers, offers and candidates.
async fn plugin_loop(
    mut ws: Ws,
    mut out_rx: mpsc::UnboundedReceiver<WsMessage>,
    pc: Arc<RTCPeerConnection>,
    session_id: String,
    out: mpsc::UnboundedSender<WsMessage>,
    closed: Arc<AtomicBool>,
) {
    loop {
        tokio::select! {
            m = out_rx.recv() => {
                let Some(m) = m else { return };
                if ws.send(Message::Binary(m.encode().into())).await.is_err() {
                    return;
                }
            }
            f = ws.next() => {
                let Some(Ok(Message::Binary(b))) = f else {
                    if matches!(f, None | Some(Err(_))) { return; }
                    continue;
                };
                match WsMessage::decode(&b).unwrap() {
                    WsMessage::Close { .. } => closed.store(true, Ordering::SeqCst),
                    WsMessage::Rtc(m) => {
                        webrtc_peer::apply_server_rtc(&pc, &m, &session_id, &out).await
                    }
                    _ => {}
                }
            }
        }
    }
}

pub async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `value` has not changed for `window` (e.g. packets have stopped), polling; fails
/// after `timeout`. Returns the settled value.
pub async fn wait_stable<T: PartialEq + std::fmt::Debug>(
    what: &str,
    window: Duration,
    timeout: Duration,
    mut value: impl FnMut() -> T,
) -> T {
    let deadline = Instant::now() + timeout;
    let mut last = value();
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = value();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= window {
            return last;
        }
        assert!(Instant::now() < deadline, "{what} still changing: {last:?}");
    }
}
