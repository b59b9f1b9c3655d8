//! Interop: `callsref sfu` with an independent WebRTC stack (webrtc-rs) as the participants, the
//! test acting as the Calls plugin over `/ws`. Speakers play the committed Opus speech sample.
//! The ICE-TCP test's client is str0m (webrtc-rs has no ICE-TCP); the speaker it hears is
//! webrtc-rs.

mod sfu_proc;
mod sfu_tcp_client;
mod sfu_webrtc;
mod webrtc_peer;

use std::sync::atomic::Ordering;
use std::time::Duration;

use callsref::proto::rtcd::{RtcType, WsMessage};
use sfu_proc::Server;
use sfu_webrtc::{Participant, Role, wait_for, wait_stable};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_rs_call_audio_mute_and_leave() {
    let srv = Server::start("interop");
    let auth = srv.register("interopplugin");
    let a = Participant::join(&srv, &auth, "call1", 0, Role::Speaker).await;
    let b = Participant::join(&srv, &auth, "call1", 1, Role::Speaker).await;
    let s = Participant::join(&srv, &auth, "call1", 2, Role::Sharer).await;
    let c = Participant::join(&srv, &auth, "call1", 3, Role::Listener).await;
    let all = [&a, &b, &s, &c];
    wait_for("data channels", Duration::from_secs(30), || {
        all.iter().all(|p| p.dc_open.load(Ordering::SeqCst))
    })
    .await;

    // Every participant hears every other speaker.
    let pairs = [(&a, &b), (&b, &a), (&c, &a), (&c, &b), (&s, &a), (&s, &b)];
    wait_for("audio at every receiver", Duration::from_secs(30), || {
        pairs.iter().all(|(rx, tx)| rx.count_from(tx) > 50)
    })
    .await;
    assert_eq!(a.count_from(&a), 0);
    // Every viewer gets the screen (low layer first) with packets flowing.
    let viewers = [&a, &b, &c];
    wait_for("screen at every viewer", Duration::from_secs(30), || {
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

    // Mute A: A's packets stop at B and C (the SFU drops them) while B keeps flowing. The spec's
    // figure is "within 200 ms"; the lag is printed, and the bound tolerates a loaded machine.
    let muted_at = Instant::now();
    a.rtc(RtcType::Mute);
    let cb = c.count_from(&b);
    let window = Duration::from_millis(600);
    let (ab, ac) = wait_stable(
        "A's packets after mute",
        window,
        Duration::from_secs(20),
        || (b.count_from(&a), c.count_from(&a)),
    )
    .await;
    let lag = [&b, &c]
        .iter()
        .filter_map(|rx| rx.last_arrival(&a, "voice"))
        .map(|t| t.saturating_duration_since(muted_at))
        .max()
        .unwrap_or_default();
    eprintln!("mute: last packet from A {lag:?} after the mute was sent");
    assert!(
        lag < Duration::from_secs(2),
        "A reached a receiver {lag:?} after mute"
    );
    assert!(ab > 0 && ac > 0);
    wait_for("B while A is muted", Duration::from_secs(20), || {
        c.count_from(&b) > cb + 15
    })
    .await;
    assert_eq!(
        (b.count_from(&a), c.count_from(&a)),
        (ab, ac),
        "A after mute"
    );
    a.rtc(RtcType::Unmute);
    wait_for("A after unmute", Duration::from_secs(20), || {
        c.count_from(&a) > ac + 15
    })
    .await;

    // screen_off removes the screen track from every viewer: its packets stop everywhere.
    s.rtc(RtcType::ScreenOff);
    wait_stable(
        "screen packets after screen_off",
        Duration::from_millis(800),
        Duration::from_secs(20),
        || {
            viewers
                .iter()
                .map(|v| v.count_kind(&s, "screen"))
                .collect::<Vec<_>>()
        },
    )
    .await;
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
    wait_for("close for every session", Duration::from_secs(20), || {
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

/// A viewer's PLIs reach the screen sharer, at most one per second (rtcd §3.3): 10 PLIs over about
/// 2 s arrive as 1 to 4 (3 when the limit holds exactly; slack for a scheduler stall).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_pli_reaches_the_sharer_rate_limited() {
    let srv = Server::start("pli");
    let auth = srv.register("pliplugin");
    let s = Participant::join(&srv, &auth, "call1", 0, Role::Sharer).await;
    let v = Participant::join(&srv, &auth, "call1", 1, Role::Listener).await;
    wait_for("screen at the viewer", Duration::from_secs(20), || {
        v.count_kind(&s, "screen") > 20
    })
    .await;
    // The viewer's own join asked for a keyframe once; let that one land first.
    wait_for("the join keyframe request", Duration::from_secs(20), || {
        s.plis.load(Ordering::SeqCst) >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = s.plis.load(Ordering::SeqCst);
    let started = Instant::now();
    for _ in 0..10 {
        assert!(v.send_pli(&s, "screen").await, "viewer has no screen ssrc");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sent_over = started.elapsed();
    wait_for("a forwarded PLI", Duration::from_secs(20), || {
        s.plis.load(Ordering::SeqCst) > before
    })
    .await;
    // Whatever is still in flight lands well within a second.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let forwarded = s.plis.load(Ordering::SeqCst) - before;
    eprintln!("10 PLIs over {sent_over:?} -> {forwarded} at the sharer");
    // At most one per started second of sending, plus one for a stall stretching the window.
    let bound = sent_over.as_secs() as usize + 2;
    assert!(
        (1..=bound.min(4)).contains(&forwarded),
        "{forwarded} PLIs forwarded for 10 sent over {sent_over:?}"
    );
}

/// ICE-TCP passive (rtcd §3.1): a client whose only candidate is `tcptype active` joins over TCP
/// (RFC 4571 framing) and hears a webrtc-rs speaker on UDP; the SFU offered its TCP candidate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_tcp_client_joins_and_hears_a_udp_speaker() {
    let srv = Server::start("icetcp");
    assert_ne!(srv.tcp_port, 0, "the server reports no tcp port");
    let auth = srv.register("tcpplugin");
    let speaker = Participant::join(&srv, &auth, "call1", 0, Role::Speaker).await;
    let tcp = sfu_tcp_client::join_tcp(&srv, &auth, "call1", "icetcp00aaaaaaaaaaaaaaaaaa").await;
    wait_for("audio over tcp", Duration::from_secs(30), || {
        tcp.audio_packets.load(Ordering::SeqCst) > 50
    })
    .await;
    let connected = tcp.connected_after.lock().unwrap().expect("connected");
    let first_audio = tcp.first_audio_after.lock().unwrap().expect("audio");
    let candidates = tcp.tcp_candidates.lock().unwrap().clone();
    eprintln!(
        "ice-tcp: connected {connected:?} and first audio {first_audio:?} after join; {} frames in",
        tcp.frames_in.load(Ordering::SeqCst)
    );
    assert!(tcp.dc_open.load(Ordering::SeqCst));
    let expected = format!("127.0.0.1 {} typ host tcptype passive", srv.tcp_port);
    assert!(
        candidates.iter().any(|c| c.ends_with(&expected)),
        "{candidates:?}"
    );
    // The speaker's session is unaffected, and the call holds both sessions.
    wait_for(
        "the speaker's data channel",
        Duration::from_secs(20),
        || speaker.dc_open.load(Ordering::SeqCst),
    )
    .await;
    let (status, body) = srv.get("/calls/call1/sessions", Some(&auth));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("icetcp00aaaaaaaaaaaaaaaaaa"), "{body}");
}
