//! rtcd WebSocket frames and HTTP bodies held to the spec (rtcd.md §1.4, §2.2) by golden bytes written
//! by hand: every WS message type, `rtc` with every payload kind, non-canonical forms a Go or browser
//! peer may send, and one failing input per error variant.
//!
//! Golden notation: hex bytes, with `"text"` standing for the ASCII bytes of text, e.g. a `hello` frame
//! is `a5 "hello" 82 a8 "clientID" ...` (fixstr marker 0xa0|len, fixmap 0x80|entries). JSON text, which
//! contains double quotes, is written between single quotes.

use callsref::proto::rtcd::error::{MsgpackError, WsDecodeError};
use callsref::proto::rtcd::http::{
    self, AuthReply, SessionConfig, SessionProps, SystemInfo, to_go_body,
};
use callsref::proto::rtcd::{
    IceCandidateInit, JoinData, PayloadError, RtcMessage, RtcType, SdpType, ServerCandidate,
    SessionDescription, WsMessage,
};

/// Golden bytes from the notation above.
fn g(spec: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = spec.trim();
    while !rest.is_empty() {
        if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let quoted = &rest[1..];
            let end = quoted.find(q).expect("closing quote");
            out.extend_from_slice(&quoted.as_bytes()[..end]);
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(u8::from_str_radix(&rest[..end], 16).expect("hex byte"));
            rest = rest[end..].trim_start();
        }
    }
    out
}

fn rtc(group: &str, user: &str, session: &str, call: &str, t: RtcType, data: &[u8]) -> RtcMessage {
    RtcMessage {
        group_id: group.into(),
        user_id: user.into(),
        session_id: session.into(),
        call_id: call.into(),
        msg_type: t,
        data: data.to_vec(),
    }
}

/// Decodes `golden` to `want`, encodes `want` back to exactly `golden`, and round-trips.
fn assert_canonical(golden: &[u8], want: WsMessage) {
    assert_eq!(
        WsMessage::decode(golden).unwrap(),
        want,
        "decode of {golden:02x?}"
    );
    assert_eq!(want.encode(), golden, "encode of {want:?}");
    let mut buf = vec![0xEE];
    want.encode_into(&mut buf);
    assert_eq!(&buf[1..], golden, "encode_into appends");
}

// The plugin's half of an rtc map: only session_id, type and data are set.
const PLUGIN_IDS: &str =
    r#"a8 "group_id" a0 a7 "user_id" a0 aa "session_id" a8 "session1" a7 "call_id" a0"#;
// rtcd's half: every id set.
const RTCD_IDS: &str = r#"a8 "group_id" a7 "client1" a7 "user_id" a5 "user1" aa "session_id" a8 "session1" a7 "call_id" a5 "call1""#;

#[test]
fn hello_frame() {
    let golden = g(
        r#"a5 "hello" 82 a8 "clientID" a7 "client1" a6 "connID" ba "m7dm7f8mxtyzxkxhmk1nru3ywo""#,
    );
    assert_canonical(
        &golden,
        WsMessage::Hello {
            client_id: "client1".into(),
            conn_id: "m7dm7f8mxtyzxkxhmk1nru3ywo".into(),
        },
    );
    // Go writes map keys in random order; both orders decode.
    let swapped = g(r#"a5 "hello" 82 a6 "connID" a2 "c2" a8 "clientID" a2 "c1""#);
    assert_eq!(
        WsMessage::decode(&swapped).unwrap(),
        WsMessage::Hello {
            client_id: "c1".into(),
            conn_id: "c2".into()
        }
    );
}

#[test]
fn join_frame() {
    let golden = g(
        r#"a4 "join" 86 a6 "callID" a5 "call1" a6 "userID" a5 "user1" a9 "sessionID" a8 "session1"
        a9 "channelID" a5 "chan1" aa "av1Support" c2 ab "dcSignaling" c3"#,
    );
    let join = JoinData {
        call_id: "call1".into(),
        user_id: "user1".into(),
        session_id: "session1".into(),
        channel_id: Some("chan1".into()),
        av1_support: Some(false),
        dc_signaling: Some(true),
    };
    assert_canonical(&golden, WsMessage::Join(join.clone()));
    assert_eq!(join.missing_id(), None);
}

#[test]
fn join_reads_like_rtcd_from_map() {
    // groupID and unknown keys (with nested values) ignored; channelID of the wrong type and a missing
    // dcSignaling read as absent; userID missing reads as empty.
    let frame = g(
        r#"a4 "join" 86 a7 "groupID" a5 "other" a6 "callID" a1 "c" a9 "sessionID" a1 "s"
        a9 "channelID" 2a a5 "extra" 92 c0 81 a1 "k" 93 01 02 03 aa "av1Support" c3"#,
    );
    let WsMessage::Join(join) = WsMessage::decode(&frame).unwrap() else {
        panic!("not a join")
    };
    assert_eq!(
        join,
        JoinData {
            call_id: "c".into(),
            user_id: String::new(),
            session_id: "s".into(),
            channel_id: None,
            av1_support: Some(true),
            dc_signaling: None,
        }
    );
    assert_eq!(join.missing_id(), Some("userID"));
    // The session config it becomes: group is the connection's client id, props null when absent.
    let cfg = join.session_config("client1");
    assert_eq!(
        String::from_utf8(to_go_body(&cfg)).unwrap(),
        "{\"GroupID\":\"client1\",\"CallID\":\"c\",\"UserID\":\"\",\"SessionID\":\"s\",\
         \"Props\":{\"av1Support\":true,\"channelID\":null,\"dcSignaling\":null}}\n"
    );
}

#[test]
fn leave_reconnect_close_frames() {
    let leave = g(r#"a5 "leave" 81 a9 "sessionID" a8 "session1""#);
    assert_canonical(
        &leave,
        WsMessage::Leave {
            session_id: "session1".into(),
        },
    );
    let reconnect = g(r#"a9 "reconnect" 81 a9 "sessionID" a8 "session1""#);
    assert_canonical(
        &reconnect,
        WsMessage::Reconnect {
            session_id: "session1".into(),
        },
    );
    let close = g(r#"a5 "close" 81 a9 "sessionID" a8 "session1""#);
    assert_canonical(
        &close,
        WsMessage::Close {
            session_id: "session1".into(),
        },
    );
    // Extra str→str keys are ignored.
    let extra = g(r#"a5 "leave" 82 a1 "x" a1 "y" a9 "sessionID" a1 "s""#);
    assert_eq!(
        WsMessage::decode(&extra).unwrap(),
        WsMessage::Leave {
            session_id: "s".into()
        }
    );
}

#[test]
fn rtc_sdp_offer_from_plugin_and_answer_from_rtcd() {
    let offer = g(&format!(
        r#"a3 "rtc" 86 {PLUGIN_IDS} a4 "type" 02 a4 "data" c4 1c '{{"type":"offer","sdp":"v=0"}}'"#
    ));
    let msg = RtcMessage::sdp("session1", &SessionDescription::offer("v=0"));
    assert_canonical(&offer, WsMessage::Rtc(msg.clone()));
    assert_eq!(
        msg.parse_sdp().unwrap(),
        SessionDescription {
            sdp_type: SdpType::Offer,
            sdp: "v=0".into()
        }
    );

    let answer = g(&format!(
        r#"a3 "rtc" 86 {RTCD_IDS} a4 "type" 02 a4 "data" c4 1d '{{"type":"answer","sdp":"v=0"}}'"#
    ));
    let msg = rtc(
        "client1",
        "user1",
        "session1",
        "call1",
        RtcType::Sdp,
        br#"{"type":"answer","sdp":"v=0"}"#,
    );
    assert_canonical(&answer, WsMessage::Rtc(msg.clone()));
    assert_eq!(msg.parse_sdp().unwrap(), SessionDescription::answer("v=0"));
}

#[test]
fn rtc_ice_candidate_both_directions() {
    // Plugin → rtcd: a bare ICECandidateInit (124 bytes of JSON).
    let json = r#"{"candidate":"candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}"#;
    let frame = g(&format!(
        r#"a3 "rtc" 86 {PLUGIN_IDS} a4 "type" 01 a4 "data" c4 7c '{}'"#,
        json
    ));
    let cand = IceCandidateInit {
        candidate: "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: Some("abcd".into()),
    };
    let msg = RtcMessage::ice("session1", &cand);
    assert_canonical(&frame, WsMessage::Rtc(msg.clone()));
    assert_eq!(msg.parse_ice_candidate().unwrap(), cand);

    // rtcd → plugin: wrapped, `candidate` first (Go sorts map keys), usernameFragment null (156 bytes).
    let json = r#"{"candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 8443 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":null},"type":"candidate"}"#;
    let frame = g(&format!(
        r#"a3 "rtc" 86 {RTCD_IDS} a4 "type" 01 a4 "data" c4 9c '{}'"#,
        json
    ));
    let cand = IceCandidateInit {
        candidate: "candidate:1 1 udp 2130706431 127.0.0.1 8443 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    };
    let data = ServerCandidate::wrap(cand.clone()).to_json();
    let msg = rtc("client1", "user1", "session1", "call1", RtcType::Ice, &data);
    assert_canonical(&frame, WsMessage::Rtc(msg.clone()));
    assert_eq!(msg.parse_server_candidate().unwrap(), cand);

    // End of candidates: empty candidate, other keys absent → None.
    let eoc = IceCandidateInit::default();
    assert_eq!(
        RtcMessage::to_rtcd("s", RtcType::Ice, br#"{"candidate":""}"#.to_vec())
            .parse_ice_candidate()
            .unwrap(),
        eoc
    );
}

#[test]
fn rtc_payloadless_and_stream_id_types() {
    for (t, byte) in [
        (RtcType::Mute, "03"),
        (RtcType::Unmute, "04"),
        (RtcType::ScreenOff, "06"),
        (RtcType::VideoOff, "0a"),
    ] {
        // Empty data is omitted: a 5-entry map.
        let frame = g(&format!(r#"a3 "rtc" 85 {PLUGIN_IDS} a4 "type" {byte}"#));
        assert_canonical(&frame, WsMessage::Rtc(RtcMessage::signal("session1", t)));
    }
    let screen = g(&format!(
        r#"a3 "rtc" 86 {PLUGIN_IDS} a4 "type" 05 a4 "data" c4 1c '{{"screenStreamID":"stream1"}}'"#
    ));
    let msg = RtcMessage::screen_on("session1", "stream1");
    assert_canonical(&screen, WsMessage::Rtc(msg.clone()));
    assert_eq!(msg.parse_screen_on().unwrap(), "stream1");

    let video = g(&format!(
        r#"a3 "rtc" 86 {PLUGIN_IDS} a4 "type" 09 a4 "data" c4 1b '{{"videoStreamID":"stream2"}}'"#
    ));
    let msg = RtcMessage::video_on("session1", "stream2");
    assert_canonical(&video, WsMessage::Rtc(msg.clone()));
    assert_eq!(msg.parse_video_on().unwrap(), "stream2");
}

#[test]
fn vad_frames() {
    for (t, byte) in [(RtcType::VoiceOn, "07"), (RtcType::VoiceOff, "08")] {
        let frame = g(&format!(r#"a3 "vad" 85 {RTCD_IDS} a4 "type" {byte}"#));
        assert_canonical(
            &frame,
            WsMessage::Vad(rtc("client1", "user1", "session1", "call1", t, &[])),
        );
    }
}

#[test]
fn rtc_map_accepts_what_go_accepts() {
    let want = WsMessage::Rtc(rtc("", "", "s", "", RtcType::Sdp, b"x"));
    // Any int width for type; keys in any order; unknown keys skipped; data as str or bin; nil ids.
    for frame in [
        r#"a3 "rtc" 83 aa "session_id" a1 "s" a4 "type" cc 02 a4 "data" c4 01 "x""#,
        r#"a3 "rtc" 83 a4 "type" d3 00 00 00 00 00 00 00 02 a4 "data" a1 "x" aa "session_id" a1 "s""#,
        r#"a3 "rtc" 85 a5 "extra" 81 a1 "k" c0 aa "session_id" a1 "s" a4 "type" d0 02 a4 "data" c5 00 01 "x" a7 "user_id" c0"#,
    ] {
        assert_eq!(WsMessage::decode(&g(frame)).unwrap(), want, "{frame}");
    }
}

#[test]
fn ws_errors_are_typed() {
    use MsgpackError::{InvalidUtf8, Truncated, WrongType};
    let cases: Vec<(Vec<u8>, WsDecodeError)> = vec![
        (
            vec![0xc0; (1 << 20) + 1],
            WsDecodeError::FrameTooLarge {
                len: (1 << 20) + 1,
                limit: 1 << 20,
            },
        ),
        (
            vec![],
            WsDecodeError::Msgpack {
                field: "message type",
                source: Truncated,
            },
        ),
        (
            g(r#"a5 "hel""#),
            WsDecodeError::Msgpack {
                field: "message type",
                source: Truncated,
            },
        ),
        (
            g(r#"a5 "hello" 82 a8 "clientID" a7 "cli""#),
            WsDecodeError::Msgpack {
                field: "map value",
                source: Truncated,
            },
        ),
        (
            g("01 80"),
            WsDecodeError::Msgpack {
                field: "message type",
                source: WrongType {
                    expected: "str",
                    found: "int",
                },
            },
        ),
        (
            g("a2 ff fe c0"),
            WsDecodeError::Msgpack {
                field: "message type",
                source: InvalidUtf8,
            },
        ),
        (
            g(r#"a3 "rtc" 90"#),
            WsDecodeError::Msgpack {
                field: "rtc message",
                source: WrongType {
                    expected: "map",
                    found: "array",
                },
            },
        ),
        (
            g(r#"a3 "rtc" 81 a4 "type" a1 "2""#),
            WsDecodeError::Msgpack {
                field: "rtc message type",
                source: WrongType {
                    expected: "int",
                    found: "str",
                },
            },
        ),
        (
            g(r#"a4 "join" c0"#),
            WsDecodeError::Msgpack {
                field: "join data",
                source: WrongType {
                    expected: "map",
                    found: "nil",
                },
            },
        ),
        (
            g(r#"a5 "close" 81 a9 "sessionID" a1 "s" c0"#),
            WsDecodeError::TrailingBytes { count: 1 },
        ),
        (
            g(r#"a5 "leave" 81 a9 "sessionID" 05"#),
            WsDecodeError::NonStringValue {
                key: "sessionID".into(),
            },
        ),
        (
            g(r#"a9 "reconnect" 81 a9 "sessionID" c4 01 "s""#),
            WsDecodeError::NonStringValue {
                key: "sessionID".into(),
            },
        ),
        (
            g(r#"a5 "leave" 80"#),
            WsDecodeError::MissingKey { key: "sessionID" },
        ),
        (
            g(r#"a5 "hello" 81 a8 "clientID" a1 "c""#),
            WsDecodeError::MissingKey { key: "connID" },
        ),
        (
            g(r#"a3 "rtc" 81 aa "session_id" a1 "s""#),
            WsDecodeError::MissingKey { key: "type" },
        ),
        (
            g(r#"a3 "foo" c0"#),
            WsDecodeError::UnknownType("foo".into()),
        ),
        (
            g(r#"a3 "vad" 81 a4 "type" 0b"#),
            WsDecodeError::UnknownRtcType(11),
        ),
        (
            g(r#"a3 "rtc" 81 a4 "type" 00"#),
            WsDecodeError::UnknownRtcType(0),
        ),
    ];
    for (frame, want) in cases {
        let got = WsMessage::decode(&frame);
        assert_eq!(
            got,
            Err(want.clone()),
            "frame {:02x?}",
            &frame[..frame.len().min(40)]
        );
        // Messages are lower-case and name the problem.
        let text = want.to_string();
        assert!(
            text.chars().next().is_some_and(|c| !c.is_uppercase()),
            "{text}"
        );
    }
}

#[test]
fn rtc_payload_errors_are_typed() {
    let ice = RtcMessage::to_rtcd("s", RtcType::Ice, b"{}".to_vec());
    assert!(matches!(
        ice.parse_sdp(),
        Err(PayloadError::WrongMessageType { actual: 1 })
    ));
    let bad = RtcMessage::to_rtcd("s", RtcType::Sdp, br#"{"type":"bogus","sdp":""}"#.to_vec());
    assert!(matches!(bad.parse_sdp(), Err(PayloadError::Json(_))));
    let not_json = RtcMessage::to_rtcd("s", RtcType::Sdp, b"v=0".to_vec());
    assert!(matches!(not_json.parse_sdp(), Err(PayloadError::Json(_))));
    let wrapped = RtcMessage::to_rtcd(
        "s",
        RtcType::Ice,
        br#"{"candidate":{"candidate":"c"},"type":"other"}"#.to_vec(),
    );
    assert!(
        matches!(wrapped.parse_server_candidate(), Err(PayloadError::NotCandidate(t)) if t == "other")
    );
    // rtcd reads screen-on as str→str JSON: a number is an error, a missing key is "".
    let num = RtcMessage::to_rtcd("s", RtcType::ScreenOn, br#"{"screenStreamID":5}"#.to_vec());
    assert!(matches!(num.parse_screen_on(), Err(PayloadError::Json(_))));
    let other = RtcMessage::to_rtcd("s", RtcType::ScreenOn, br#"{"x":"y"}"#.to_vec());
    assert_eq!(other.parse_screen_on().unwrap(), "");
}

#[test]
fn http_bodies_match_rtcd_bytes() {
    let body = |v: &AuthReply| String::from_utf8(to_go_body(v)).unwrap();
    assert_eq!(
        body(&AuthReply::error(400, http::errors::REGISTER_KEY_TOO_SHORT)),
        "{\"code\":\"400\",\"error\":\"registration failed: key not long enough\"}\n"
    );
    assert_eq!(
        body(&AuthReply::registered("c1")),
        "{\"clientID\":\"c1\",\"code\":\"201\"}\n"
    );
    assert_eq!(
        body(&AuthReply::logged_in("tok")),
        "{\"bearerToken\":\"tok\",\"code\":\"200\"}\n"
    );
    assert_eq!(body(&AuthReply::unregistered()), "{\"code\":\"200\"}\n");

    let reply: AuthReply =
        serde_json::from_str("{\"code\":\"401\",\"error\":\"authentication failed\"}").unwrap();
    assert_eq!(reply.status(), Some(401));
    assert_eq!(reply.error.as_deref(), Some(http::errors::AUTH_FAILED));

    assert_eq!(
        String::from_utf8(to_go_body(&SystemInfo { cpu_load: 0.25 })).unwrap(),
        "{\"cpu_load\":0.25}\n"
    );

    let sessions = vec![SessionConfig {
        group_id: "g".into(),
        call_id: "c".into(),
        user_id: "u".into(),
        session_id: "s".into(),
        props: SessionProps {
            av1_support: Some(false),
            channel_id: Some("ch".into()),
            dc_signaling: None,
        },
    }];
    let json = "[{\"GroupID\":\"g\",\"CallID\":\"c\",\"UserID\":\"u\",\"SessionID\":\"s\",\
                \"Props\":{\"av1Support\":false,\"channelID\":\"ch\",\"dcSignaling\":null}}]\n";
    assert_eq!(String::from_utf8(to_go_body(&sessions)).unwrap(), json);
    assert_eq!(
        serde_json::from_str::<Vec<SessionConfig>>(json).unwrap(),
        sessions
    );

    assert_eq!(
        http::text::session_configs_not_found(http::text::NO_SESSIONS_FOUND),
        "failed to get session configs: no sessions found"
    );
}
