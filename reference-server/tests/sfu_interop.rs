//! Interop: `callsref sfu` with an independent WebRTC stack (webrtc-rs) as the participants, the
//! test acting as the Calls plugin over `/ws`. Speakers play the committed Opus speech sample.

mod sfu_proc;
mod webrtc_peer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callsref::proto::rtcd::{
    IceCandidateInit, JoinData, RtcMessage, RtcType, SessionDescription, WsMessage,
};
use futures_util::{SinkExt, StreamExt};
use sfu_proc::{Server, Ws, ws_connect, ws_next};
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
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpHeaderExtensionCapability, RTPCodecType,
};
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

/// Per (sender session id, track kind): packets received and when the last one arrived.
type Received = Arc<Mutex<HashMap<(String, String), (usize, Instant)>>>;

/// What a participant publishes.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Listener,
    Speaker,
    /// Screen share with simulcast layers `l` and `h`.
    Sharer,
}

struct Participant {
    session_id: String,
    pc: Arc<RTCPeerConnection>,
    out: mpsc::UnboundedSender<WsMessage>,
    received: Received,
    dc_open: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    track_ids: Arc<Mutex<Vec<String>>>,
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
    async fn join(srv: &Server, auth: &str, call: &str, n: usize, role: Role) -> Participant {
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
        let track_ids: Arc<Mutex<Vec<String>>> = Arc::default();
        let (rec, ids) = (received.clone(), track_ids.clone());
        pc.on_track(Box::new(move |track, _, _| {
            ids.lock().unwrap().push(track.id());
            let rec = rec.clone();
            tokio::spawn(async move {
                let key = (
                    track.stream_id(),
                    track.id().split('_').next().unwrap_or_default().to_string(),
                );
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
            dc_open,
            closed,
            track_ids,
        }
    }

    fn rtc(&self, t: RtcType) {
        self.out
            .send(WsMessage::Rtc(RtcMessage::signal(
                self.session_id.clone(),
                t,
            )))
            .unwrap();
    }

    fn count_from(&self, sender: &Participant) -> usize {
        self.count_kind(sender, "voice")
    }

    fn count_kind(&self, sender: &Participant, kind: &str) -> usize {
        let key = (sender.session_id.clone(), kind.to_string());
        self.received.lock().unwrap().get(&key).map_or(0, |e| e.0)
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

async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_rs_call_audio_mute_and_leave() {
    let srv = Server::start("interop");
    let auth = srv.register("interopplugin");
    let a = Participant::join(&srv, &auth, "call1", 0, Role::Speaker).await;
    let b = Participant::join(&srv, &auth, "call1", 1, Role::Speaker).await;
    let s = Participant::join(&srv, &auth, "call1", 2, Role::Sharer).await;
    let c = Participant::join(&srv, &auth, "call1", 3, Role::Listener).await;
    let all = [&a, &b, &s, &c];
    wait_for("data channels", Duration::from_secs(10), || {
        all.iter().all(|p| p.dc_open.load(Ordering::SeqCst))
    })
    .await;

    // Every participant hears every other speaker.
    let pairs = [(&a, &b), (&b, &a), (&c, &a), (&c, &b), (&s, &a), (&s, &b)];
    wait_for("audio at every receiver", Duration::from_secs(10), || {
        pairs.iter().all(|(rx, tx)| rx.count_from(tx) > 50)
    })
    .await;
    assert_eq!(a.count_from(&a), 0);
    // Every viewer gets the screen (low layer first) with packets flowing.
    let viewers = [&a, &b, &c];
    wait_for("screen at every viewer", Duration::from_secs(10), || {
        viewers.iter().all(|v| v.count_kind(&s, "screen") > 20)
    })
    .await;
    assert_eq!(s.count_kind(&s, "screen"), 0);
    for id in c.track_ids.lock().unwrap().iter() {
        let parsed = callsref::proto::rtcd::TrackId::parse(id).unwrap();
        let expected = if parsed.session_id == s.session_id {
            callsref::proto::rtcd::TrackKind::Screen
        } else {
            callsref::proto::rtcd::TrackKind::Voice
        };
        assert_eq!(parsed.kind, expected, "{id}");
    }

    // Mute A: within 200 ms no more A packets reach B or C; B keeps flowing.
    a.rtc(RtcType::Mute);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (ab, ac, cb) = (b.count_from(&a), c.count_from(&a), c.count_from(&b));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(b.count_from(&a), ab, "A still reaches B after mute");
    assert_eq!(c.count_from(&a), ac, "A still reaches C after mute");
    assert!(c.count_from(&b) > cb + 15, "B stopped too");
    a.rtc(RtcType::Unmute);
    wait_for("A after unmute", Duration::from_secs(2), || {
        c.count_from(&a) > ac + 15
    })
    .await;

    // screen_off removes the screen track from every viewer: its packets stop everywhere.
    s.rtc(RtcType::ScreenOff);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before: Vec<usize> = viewers.iter().map(|v| v.count_kind(&s, "screen")).collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after: Vec<usize> = viewers.iter().map(|v| v.count_kind(&s, "screen")).collect();
    assert_eq!(before, after, "screen packets after screen_off");
    // Every forwarded voice and screen packet's fan-out was timed, in rtcd's buckets.
    for t in ["voice", "screen"] {
        let labels = format!("groupID=\"interopplugin\",type=\"{t}\"");
        let count = srv
            .metric(&format!(
                "rtcd_rtc_rtp_tracks_writes_time_count{{{labels}}}"
            ))
            .unwrap_or(0.0);
        assert!(count > 50.0, "{t} writes timed: {count}");
        let fast = srv
            .metric(&format!(
                "rtcd_rtc_rtp_tracks_writes_time_bucket{{{labels},le=\"0.1\"}}"
            ))
            .unwrap_or(0.0);
        assert!(
            fast > 0.9 * count,
            "{t}: {fast} of {count} writes under 100 ms"
        );
    }
    assert_eq!(
        srv.metric("rtcd_rtc_rtp_tracks_total{direction=\"out\",groupID=\"interopplugin\",type=\"video/VP8\"}"),
        Some(0.0)
    );

    // Everyone leaves: close for each, no sessions, the call is gone.
    for p in all {
        p.out
            .send(WsMessage::Leave {
                session_id: p.session_id.clone(),
            })
            .unwrap();
    }
    wait_for("close for every session", Duration::from_secs(5), || {
        all.iter().all(|p| p.closed.load(Ordering::SeqCst))
    })
    .await;
    assert_eq!(
        srv.metric("rtcd_rtc_sessions_total{groupID=\"interopplugin\"}"),
        Some(0.0)
    );
    let (s, body) = srv.get("/calls/call1/sessions", Some(&auth));
    assert_eq!(s, 404, "{body}");
    for p in all {
        let _ = p.pc.close().await;
    }
}
