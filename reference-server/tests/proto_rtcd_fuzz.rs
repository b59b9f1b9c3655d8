//! Robustness of every rtcd decoder against hostile input, in three layers:
//!
//! 1. proptest: arbitrary bytes into every decoder (no panic, typed error), and arbitrary messages of
//!    every type through encode → decode (exact round trip).
//! 2. A deterministic seeded sweep: 100 000 random byte strings into EACH decoder.
//! 3. Mutation: golden frames with bit flips, truncations, byte insertions and interesting-byte
//!    substitutions, so decoding gets past the first byte into the deeper paths. Whatever decodes must
//!    be stable: re-encoding it and decoding again gives the same message.
//!
//! A panic anywhere fails the test; so does an accepted input that does not round-trip.

use callsref::proto::auth::Authorization;
use callsref::proto::rtcd::http::{Credentials, parse_go_request};
use callsref::proto::rtcd::ids::decode_id;
use callsref::proto::rtcd::rtc::StreamIdPayload;
use callsref::proto::rtcd::{
    DcMessage, IceCandidateInit, JoinData, LegacyText, MediaMap, RtcMessage, RtcType,
    ServerCandidate, SessionDescription, TrackId, TrackInfo, TrackKind, WsMessage,
};
use proptest::prelude::*;
use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, RngCore, SeedableRng};

const SWEEP: usize = 100_000;

// ---------------------------------------------------------------------------------------------
// Decoders under test, each wrapped to check the stability property where it has an encoder.

fn ws(bytes: &[u8]) -> bool {
    match WsMessage::decode(bytes) {
        Ok(msg) => {
            let again = WsMessage::decode(&msg.encode()).expect("re-encoded frame decodes");
            assert_eq!(again, msg, "unstable decode of {bytes:02x?}");
            true
        }
        Err(err) => {
            // Typed and printable.
            assert!(!err.to_string().is_empty());
            false
        }
    }
}

fn dc(bytes: &[u8]) -> bool {
    match DcMessage::decode(bytes) {
        Ok(msg) => {
            let again = DcMessage::decode(&msg.encode()).expect("re-encoded message decodes");
            // NaN floats never compare equal; compare their encodings instead.
            assert_eq!(
                again.encode(),
                msg.encode(),
                "unstable decode of {bytes:02x?}"
            );
            true
        }
        Err(err) => {
            assert!(!err.to_string().is_empty());
            false
        }
    }
}

/// The JSON payload parsers, indexed like [`json_seeds`].
const JSON_PARSERS: [fn(&[u8]); 5] = [
    |bytes| {
        if let Ok(sdp) = SessionDescription::from_json(bytes) {
            assert_eq!(SessionDescription::from_json(&sdp.to_json()).unwrap(), sdp);
        }
    },
    |bytes| {
        let ice = RtcMessage::to_rtcd("s", RtcType::Ice, bytes.to_vec());
        if let Ok(c) = ice.parse_ice_candidate() {
            assert_eq!(RtcMessage::ice("s", &c).parse_ice_candidate().unwrap(), c);
        }
    },
    |bytes| {
        if let Ok(c) = ServerCandidate::parse(bytes) {
            assert_eq!(
                ServerCandidate::parse(&ServerCandidate::wrap(c.clone()).to_json()).unwrap(),
                c
            );
        }
    },
    |bytes| {
        if let Ok(p) = StreamIdPayload::parse(bytes) {
            // Only the two known keys survive; re-parsing the canonical form keeps them.
            assert_eq!(StreamIdPayload::parse(&p.to_json()).unwrap(), p);
        }
    },
    |bytes| {
        if let Ok(c) = parse_go_request::<Credentials>(bytes) {
            assert_eq!(
                parse_go_request::<Credentials>(&serde_json::to_vec(&c).unwrap()).unwrap(),
                c
            );
        }
    },
];

fn json_payloads(bytes: &[u8]) {
    for parse in JSON_PARSERS {
        parse(bytes);
    }
}

fn text_parsers(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(id) = TrackId::parse(&text) {
        assert_eq!(TrackId::parse(&id.to_string()).unwrap(), id);
    }
    if let Ok(raw) = decode_id(&text) {
        assert_eq!(callsref::proto::rtcd::ids::encode_id(&raw), text);
    }
    if let Ok(auth) = Authorization::parse(Some(&text)) {
        // Basic credentials re-encode canonically; compare the parsed values.
        assert_eq!(
            Authorization::parse(Some(&auth.to_header_value())).unwrap(),
            auth
        );
    }
    let _ = LegacyText::parse(bytes);
}

// ---------------------------------------------------------------------------------------------
// Goldens to mutate: one frame of every type (kept short so the sweep stays fast in debug builds).

fn ws_seeds() -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(1);
    let sid = callsref::proto::rtcd::ids::new_id(&mut rng);
    let full = |t, data: &[u8]| RtcMessage {
        group_id: "g".into(),
        user_id: "u".into(),
        session_id: sid.clone(),
        call_id: "c".into(),
        msg_type: t,
        data: data.to_vec(),
    };
    let cand = IceCandidateInit {
        candidate: "candidate:1 1 udp 1 127.0.0.1 8443 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    };
    let mut frames: Vec<Vec<u8>> = [
        WsMessage::Join(JoinData {
            call_id: "c".into(),
            user_id: "u".into(),
            session_id: sid.clone(),
            channel_id: Some("ch".into()),
            av1_support: Some(true),
            dc_signaling: Some(false),
        }),
        WsMessage::Leave {
            session_id: sid.clone(),
        },
        WsMessage::Reconnect {
            session_id: sid.clone(),
        },
        WsMessage::Hello {
            client_id: "client".into(),
            conn_id: sid.clone(),
        },
        WsMessage::Close {
            session_id: sid.clone(),
        },
        WsMessage::Rtc(RtcMessage::sdp(&sid, &SessionDescription::offer("v=0"))),
        WsMessage::Rtc(RtcMessage::ice(&sid, &cand)),
        WsMessage::Rtc(full(
            RtcType::Ice,
            &ServerCandidate::wrap(cand.clone()).to_json(),
        )),
        WsMessage::Rtc(RtcMessage::screen_on(&sid, "st")),
        WsMessage::Rtc(RtcMessage::video_on(&sid, "st")),
        WsMessage::Rtc(RtcMessage::signal(&sid, RtcType::Mute)),
        WsMessage::Vad(full(RtcType::VoiceOn, &[])),
    ]
    .iter()
    .map(WsMessage::encode)
    .collect();
    // A non-canonical one too (wide int, unknown key).
    frames.push(b"\xa3rtc\x82\xa4type\xd3\0\0\0\0\0\0\0\x02\xa1x\x92\xc0\xc3".to_vec());
    frames
}

fn dc_seeds() -> Vec<Vec<u8>> {
    let map: MediaMap = [(
        "0".to_string(),
        TrackInfo {
            kind: TrackKind::ScreenAudio,
            sender_id: "s".into(),
        },
    )]
    .into_iter()
    .collect();
    let mut seeds: Vec<Vec<u8>> = [
        DcMessage::Ping,
        DcMessage::Pong,
        DcMessage::Sdp(SessionDescription::answer("v=0")),
        DcMessage::LossRate(0.1),
        DcMessage::RoundTripTime(0.5),
        DcMessage::Jitter(0.01),
        DcMessage::LockRequest,
        DcMessage::LockResponse(true),
        DcMessage::Unlock,
        DcMessage::MediaMap(map),
    ]
    .iter()
    .map(DcMessage::encode)
    .collect();
    seeds.push(vec![0x07]); // browser lock request
    seeds
}

fn json_seeds() -> Vec<&'static [u8]> {
    vec![
        br#"{"type":"offer","sdp":"v=0"}"#,
        br#"{"candidate":"candidate:1","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"u"}"#,
        br#"{"candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":1,"usernameFragment":null},"type":"candidate"}"#,
        br#"{"screenStreamID":"s"}"#,
        br#"{"clientID":"c","authKey":"k"}"#,
    ]
}

fn text_seeds() -> Vec<&'static [u8]> {
    vec![
        b"screen-audio_m7dm7f8mxtyzxkxhmk1nru3ywo_ab3defgh",
        b"voice_s_x",
        b"yyyoryarywdyqnyjbefoadeqbh",
        b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        b"Bearer tok",
        b"ping",
    ]
}

/// One random mutation of `seed`.
fn mutate(rng: &mut SmallRng, seed: &[u8]) -> Vec<u8> {
    const INTERESTING: [u8; 14] = [
        0x00, 0x7f, 0x80, 0x8f, 0x90, 0xa0, 0xbf, 0xc0, 0xc1, 0xc4, 0xcc, 0xdb, 0xdf, 0xff,
    ];
    let mut out = seed.to_vec();
    for _ in 0..rng.random_range(1..=3) {
        match rng.random_range(0..5) {
            0 if !out.is_empty() => {
                let i = rng.random_range(0..out.len());
                out[i] ^= 1 << rng.random_range(0..8);
            }
            1 => out.truncate(rng.random_range(0..=out.len())),
            2 => {
                let i = rng.random_range(0..=out.len());
                out.insert(i, rng.random());
            }
            3 if !out.is_empty() => {
                let i = rng.random_range(0..out.len());
                out[i] = INTERESTING[rng.random_range(0..INTERESTING.len())];
            }
            _ if !out.is_empty() => {
                let i = rng.random_range(0..out.len());
                out.remove(i);
            }
            _ => {}
        }
    }
    out
}

fn random_bytes(rng: &mut SmallRng) -> Vec<u8> {
    let mut v = vec![0u8; rng.random_range(0..48)];
    rng.fill_bytes(&mut v);
    v
}

// ---------------------------------------------------------------------------------------------

#[test]
fn seeded_random_bytes_into_every_decoder() {
    // SmallRng: fast in debug builds and deterministic for a given build, which is all a sweep needs.
    let mut rng = SmallRng::seed_from_u64(0x5eed_0001);
    let (mut ws_ok, mut dc_ok) = (0, 0);
    for _ in 0..SWEEP {
        ws_ok += usize::from(ws(&random_bytes(&mut rng)));
        dc_ok += usize::from(dc(&random_bytes(&mut rng)));
        json_payloads(&random_bytes(&mut rng));
        text_parsers(&random_bytes(&mut rng));
    }
    // Random bytes do decode as DC messages now and then (a lone 01..08 byte is valid); a few WS hits
    // would be a surprise but are legal. The count shows the sweep ran the whole loop.
    assert!(dc_ok > 0, "no random DC message decoded");
    eprintln!("random sweep: {ws_ok} ws and {dc_ok} dc inputs of {SWEEP} decoded");
}

#[test]
fn seeded_mutations_of_golden_frames() {
    let mut rng = SmallRng::seed_from_u64(0x5eed_0002);
    let (ws_seeds, dc_seeds, json_seeds, text_seeds) =
        (ws_seeds(), dc_seeds(), json_seeds(), text_seeds());
    for seed in &ws_seeds {
        assert!(ws(seed), "golden ws frame must decode: {seed:02x?}");
    }
    for seed in &dc_seeds {
        assert!(dc(seed), "golden dc message must decode: {seed:02x?}");
    }
    let (mut ws_ok, mut dc_ok) = (0usize, 0usize);
    for i in 0..SWEEP {
        ws_ok += usize::from(ws(&mutate(&mut rng, &ws_seeds[i % ws_seeds.len()])));
        dc_ok += usize::from(dc(&mutate(&mut rng, &dc_seeds[i % dc_seeds.len()])));
        // Each mutated JSON seed goes to its own parser (the others would reject it at once).
        let j = i % json_seeds.len();
        JSON_PARSERS[j](&mutate(&mut rng, json_seeds[j]));
        text_parsers(&mutate(&mut rng, text_seeds[i % text_seeds.len()]));
    }
    // Mutations reach past the first byte: a share of them still decode (and round-tripped above),
    // the rest were rejected with typed errors deep inside the frame.
    assert!(ws_ok > SWEEP / 100 && ws_ok < SWEEP, "ws accepted {ws_ok}");
    assert!(dc_ok > SWEEP / 100 && dc_ok < SWEEP, "dc accepted {dc_ok}");
}

// ---------------------------------------------------------------------------------------------
// proptest

fn id() -> impl Strategy<Value = String> {
    "[a-z0-9]{0,30}"
}

fn rtc_message() -> impl Strategy<Value = RtcMessage> {
    (
        id(),
        id(),
        id(),
        id(),
        prop::sample::select(RtcType::ALL.to_vec()),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(
            |(group_id, user_id, session_id, call_id, msg_type, data)| RtcMessage {
                group_id,
                user_id,
                session_id,
                call_id,
                msg_type,
                data,
            },
        )
}

fn ws_message() -> impl Strategy<Value = WsMessage> {
    let join = (
        id(),
        id(),
        id(),
        prop::option::of(id()),
        any::<Option<bool>>(),
        any::<Option<bool>>(),
    )
        .prop_map(
            |(call_id, user_id, session_id, channel_id, av1_support, dc_signaling)| {
                WsMessage::Join(JoinData {
                    call_id,
                    user_id,
                    session_id,
                    channel_id,
                    av1_support,
                    dc_signaling,
                })
            },
        );
    prop_oneof![
        join,
        id().prop_map(|session_id| WsMessage::Leave { session_id }),
        id().prop_map(|session_id| WsMessage::Reconnect { session_id }),
        id().prop_map(|session_id| WsMessage::Close { session_id }),
        (id(), id()).prop_map(|(client_id, conn_id)| WsMessage::Hello { client_id, conn_id }),
        rtc_message().prop_map(WsMessage::Rtc),
        rtc_message().prop_map(WsMessage::Vad),
    ]
}

fn dc_message() -> impl Strategy<Value = DcMessage> {
    let finite = prop::num::f64::NORMAL | prop::num::f64::ZERO | prop::num::f64::SUBNORMAL;
    let kind = prop::sample::select(TrackKind::ALL.to_vec());
    let map = prop::collection::btree_map(id(), (kind, id()), 0..5).prop_map(|m| {
        DcMessage::MediaMap(
            m.into_iter()
                .map(|(mid, (kind, sender_id))| (mid, TrackInfo { kind, sender_id }))
                .collect(),
        )
    });
    let sdp = (prop::bool::ANY, ".{0,200}").prop_map(|(offer, s)| {
        DcMessage::Sdp(if offer {
            SessionDescription::offer(s)
        } else {
            SessionDescription::answer(s)
        })
    });
    prop_oneof![
        Just(DcMessage::Ping),
        Just(DcMessage::Pong),
        sdp,
        finite.prop_map(DcMessage::LossRate),
        finite.prop_map(DcMessage::RoundTripTime),
        finite.prop_map(DcMessage::Jitter),
        Just(DcMessage::LockRequest),
        any::<bool>().prop_map(DcMessage::LockResponse),
        Just(DcMessage::Unlock),
        map,
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        ws(&bytes);
        dc(&bytes);
        json_payloads(&bytes);
        text_parsers(&bytes);
    }

    #[test]
    fn ws_round_trip(msg in ws_message()) {
        prop_assert_eq!(WsMessage::decode(&msg.encode()).unwrap(), msg);
    }

    #[test]
    fn dc_round_trip(msg in dc_message()) {
        prop_assert_eq!(DcMessage::decode(&msg.encode()).unwrap(), msg);
    }

    #[test]
    fn track_id_round_trip(kind in prop::sample::select(TrackKind::ALL.to_vec()), session in "[a-z0-9]{1,30}", seed in any::<u64>()) {
        let id = TrackId::generate(kind, session, &mut StdRng::seed_from_u64(seed));
        prop_assert_eq!(TrackId::parse(&id.to_string()).unwrap(), id);
    }

    #[test]
    fn id_round_trip(bytes in any::<[u8; 16]>()) {
        let text = callsref::proto::rtcd::ids::encode_id(&bytes);
        prop_assert_eq!(decode_id(&text).unwrap(), bytes);
    }
}
