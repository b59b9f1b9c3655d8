//! `callsref runner` in recording mode against `callsref sfu`: a webrtc-rs publisher (an
//! independent WebRTC stack) plays the committed speech sample into a call, the runner joins as a
//! receive-only participant for a few seconds, and the Ogg file it writes holds the publisher's
//! Opus packets — byte for byte, in order, about one per 20 ms.

mod sfu_proc;
mod webrtc_peer;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callsref::proto::rtcd::{
    IceCandidateInit, JoinData, RtcMessage, SessionDescription, WsMessage,
};
use futures_util::{SinkExt, StreamExt};
use sfu_proc::{Server, ws_connect, ws_next};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MediaEngine};
use webrtc::interceptor::registry::Registry;
use webrtc::media::Sample;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

const CLIENT: &str = "recorderplugin";
const SESSION: &str = "publisher0aaaaaaaaaaaaaaaa";
const JOB: &str = "recording0aaaaaaaaaaaaaaaa";

fn sample_packets() -> Vec<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/media/speech-89.ogg");
    let mut r = ogg::reading::PacketReader::new(std::fs::File::open(&path).unwrap());
    let mut out = Vec::new();
    while let Some(p) = r.read_packet().unwrap() {
        if !p.data.starts_with(b"OpusHead") && !p.data.starts_with(b"OpusTags") {
            out.push(p.data);
        }
    }
    out
}

/// Plays the sample's packets in a loop, one per 20 ms, as webrtc-rs samples.
async fn play(track: Arc<TrackLocalStaticSample>, packets: Vec<Vec<u8>>) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for p in packets.iter().cycle() {
        tick.tick().await;
        let s = Sample {
            data: p.clone().into(),
            duration: Duration::from_millis(20),
            ..Default::default()
        };
        if track.write_sample(&s).await.is_err() {
            return;
        }
    }
}

/// Joins `call1` as the plugin would and publishes the speech sample; returns the peer connection.
async fn publish(srv: &Server, auth: &str, packets: Vec<Vec<u8>>) -> Arc<RTCPeerConnection> {
    let mut ws = ws_connect(srv.http, auth).await.unwrap();
    assert!(matches!(
        ws_next(&mut ws, Duration::from_secs(5)).await,
        Some(WsMessage::Hello { .. })
    ));
    let join = JoinData {
        call_id: "call1".into(),
        user_id: "speaker".into(),
        session_id: SESSION.into(),
        channel_id: Some("call1".into()),
        av1_support: Some(false),
        dc_signaling: Some(false),
    };
    ws.send(Message::Binary(WsMessage::Join(join).encode().into()))
        .await
        .unwrap();
    let mut m = MediaEngine::default();
    m.register_default_codecs().unwrap();
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
    pc.create_data_channel("calls-dc", None).await.unwrap();
    let track = Arc::new(TrackLocalStaticSample::new(
        RTCRtpCodecCapability {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            ..Default::default()
        },
        "voice".into(),
        format!("mic-{SESSION}"),
    ));
    pc.add_track(track.clone() as Arc<dyn TrackLocal + Send + Sync>)
        .await
        .unwrap();
    tokio::spawn(play(track, packets));
    let (out, mut out_rx) = mpsc::unbounded_channel::<WsMessage>();
    let tx = out.clone();
    pc.on_ice_candidate(Box::new(move |c| {
        if let Some(c) = c.and_then(|c| c.to_json().ok()) {
            let init = IceCandidateInit {
                candidate: c.candidate,
                sdp_mid: c.sdp_mid,
                sdp_mline_index: c.sdp_mline_index,
                username_fragment: c.username_fragment,
            };
            let _ = tx.send(WsMessage::Rtc(RtcMessage::ice(SESSION, &init)));
        }
        Box::pin(async {})
    }));
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer.clone()).await.unwrap();
    out.send(WsMessage::Rtc(RtcMessage::sdp(
        SESSION,
        &SessionDescription::offer(offer.sdp),
    )))
    .unwrap();
    let peer = pc.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                m = out_rx.recv() => {
                    let Some(m) = m else { return };
                    if ws.send(Message::Binary(m.encode().into())).await.is_err() { return; }
                }
                f = ws.next() => {
                    let Some(Ok(Message::Binary(b))) = f else {
                        if matches!(f, None | Some(Err(_))) { return; }
                        continue;
                    };
                    if let WsMessage::Rtc(m) = WsMessage::decode(&b).unwrap() {
                        webrtc_peer::apply_server_rtc(&peer, &m, SESSION, &out).await;
                    }
                }
            }
        }
    });
    pc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_records_a_webrtc_rs_speaker_to_ogg() {
    let srv = Server::start("runner-record");
    let auth = srv.register(CLIENT);
    let key = format!("{CLIENT}-key-0123456789abcdefghijklmnopqrstuvwxyz");
    let packets = sample_packets();
    assert!(packets.len() > 100);
    let pc = publish(&srv, &auth, packets.clone()).await;
    // The publisher is in the call once rtcd lists its session.
    let deadline = Instant::now() + Duration::from_secs(10);
    while srv.get("/calls/call1/sessions", Some(&auth)).0 != 200 {
        assert!(Instant::now() < deadline, "publisher never joined");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let data = std::env::temp_dir().join(format!("callsref-runner-record-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let record_ms = 4_000u64;
    let started = Instant::now();
    let out = tokio::task::spawn_blocking({
        let (data, http) = (data.clone(), srv.http);
        move || {
            Command::new(env!("CARGO_BIN_EXE_callsref"))
                .arg("runner")
                .env_clear()
                .env("RTCD_URL", format!("http://{http}"))
                .env("RTCD_CLIENT_ID", CLIENT)
                .env("RTCD_AUTH_KEY", &key)
                .env("CALL_ID", "call1")
                .env("RECORDING_ID", JOB)
                .env("DATA_DIR", &data)
                .env("RUNNER_RUN_MS", record_ms.to_string())
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("recording track"), "{stderr}");
    assert!(took < Duration::from_millis(record_ms + 5_000), "{took:?}");

    let dir = data.join(JOB);
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let oggs: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ogg"))
        .collect();
    assert_eq!(oggs.len(), 1, "{files:?}");
    let mut r = ogg::reading::PacketReader::new(std::fs::File::open(oggs[0]).unwrap());
    assert!(
        r.read_packet_expected()
            .unwrap()
            .data
            .starts_with(b"OpusHead")
    );
    assert!(
        r.read_packet_expected()
            .unwrap()
            .data
            .starts_with(b"OpusTags")
    );
    let mut recorded = Vec::new();
    let mut last_granule = 0;
    while let Some(p) = r.read_packet().unwrap() {
        last_granule = p.absgp_page();
        recorded.push(p.data);
    }
    // About one packet per 20 ms of the recording, less the time to connect.
    let n = recorded.len() as u64;
    let most = record_ms / 20 + 5;
    assert!(
        n >= most * 6 / 10 && n <= most,
        "{n} packets in {record_ms} ms"
    );
    // Granules follow RTP time: 960 samples per packet without gaps on loopback.
    let span = last_granule / 960;
    assert!(
        span >= n && span <= n + 10,
        "granule {last_granule} for {n} packets"
    );
    // Forwarded, not transcoded: the recording is a run of the sample's packets, in order.
    // (Identical packets, e.g. silence, can repeat in the sample: take the best-aligned start.)
    let in_order = (0..packets.len())
        .filter(|&start| packets[start] == recorded[0])
        .map(|start| {
            recorded
                .iter()
                .enumerate()
                .filter(|(i, p)| **p == packets[(start + i) % packets.len()])
                .count()
        })
        .max()
        .expect("the first recorded packet is one of the sample's");
    assert!(
        in_order as u64 >= n * 95 / 100,
        "{in_order} of {n} in order"
    );
    eprintln!("recorded {n} Opus packets in {record_ms} ms, {in_order} in the sample's order");

    // The recorder left: only the publisher's session remains.
    let (_, body) = srv.get("/calls/call1/sessions", Some(&auth));
    assert!(!body.contains(JOB), "{body}");
    let _ = pc.close().await;
    std::fs::remove_dir_all(&data).unwrap();
}
