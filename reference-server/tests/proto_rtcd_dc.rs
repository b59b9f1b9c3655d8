//! rtcd data-channel messages, track ids and Mattermost ids held to the spec (rtcd.md §2.5–2.6) by
//! golden bytes written by hand: every DC type in the Go (`cc NN`) and browser (fixint) encodings, the
//! lock request and both responses, the legacy text ping/pong, and one failing input per error variant.
//!
//! Golden notation as in `proto_rtcd.rs`: hex bytes, `"text"` or `'text'` for ASCII.

use callsref::proto::rtcd::dc::{self, MAX_SDP_INFLATED_LEN};
use callsref::proto::rtcd::error::{DcDecodeError, IdError, MsgpackError, TrackIdError};
use callsref::proto::rtcd::ids::{self, decode_id, encode_id, is_valid_id, new_id};
use callsref::proto::rtcd::{
    DcMessage, LegacyText, MediaMap, SessionDescription, TrackId, TrackInfo, TrackKind,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

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

/// `golden` (rtcd's encoding) decodes to `want` and `want` encodes to exactly `golden`.
fn assert_canonical(golden: &[u8], want: DcMessage) {
    assert_eq!(
        DcMessage::decode(golden).unwrap(),
        want,
        "decode of {golden:02x?}"
    );
    assert_eq!(want.encode(), golden, "encode of {want:?}");
}

#[test]
fn payloadless_types_in_go_and_browser_encodings() {
    for (go, browser, want) in [
        ("cc 01", "01", DcMessage::Ping),
        ("cc 02", "02", DcMessage::Pong),
        ("cc 07", "07", DcMessage::LockRequest),
        ("cc 08", "08", DcMessage::Unlock),
    ] {
        assert_canonical(&g(go), want.clone());
        assert_eq!(
            DcMessage::decode(&g(browser)).unwrap(),
            want,
            "browser {browser}"
        );
    }
    // Other integer widths are accepted for the type too.
    assert_eq!(DcMessage::decode(&g("cd 00 01")).unwrap(), DcMessage::Ping);
    assert_eq!(
        DcMessage::decode(&g("d3 00 00 00 00 00 00 00 08")).unwrap(),
        DcMessage::Unlock
    );
}

#[test]
fn lock_responses() {
    assert_canonical(&g("cc 07 c3"), DcMessage::LockResponse(true));
    assert_canonical(&g("cc 07 c2"), DcMessage::LockResponse(false));
    assert_eq!(
        DcMessage::decode(&g("07 c3")).unwrap(),
        DcMessage::LockResponse(true)
    );
}

#[test]
fn float_metrics() {
    // float64 big-endian: 0.1 = 3fb999999999999a, 0.5 = 3fe0..., 0.01 = 3f847ae147ae147b.
    assert_canonical(
        &g("cc 04 cb 3f b9 99 99 99 99 99 9a"),
        DcMessage::LossRate(0.1),
    );
    assert_canonical(
        &g("cc 05 cb 3f e0 00 00 00 00 00 00"),
        DcMessage::RoundTripTime(0.5),
    );
    assert_canonical(
        &g("cc 06 cb 3f 84 7a e1 47 ae 14 7b"),
        DcMessage::Jitter(0.01),
    );
    // Browsers write whole numbers as ints and may use float32 (0.25 = 3e800000).
    assert_eq!(
        DcMessage::decode(&g("04 00")).unwrap(),
        DcMessage::LossRate(0.0)
    );
    assert_eq!(
        DcMessage::decode(&g("05 cc c8")).unwrap(),
        DcMessage::RoundTripTime(200.0)
    );
    assert_eq!(
        DcMessage::decode(&g("06 ca 3e 80 00 00")).unwrap(),
        DcMessage::Jitter(0.25)
    );
}

#[test]
fn sdp_is_zlib_json_in_bin() {
    // A zlib stream with one stored block, built by hand: header 78 01 (0x7801 % 31 == 0), block
    // 01 (final, stored), LEN 1d 00, NLEN e2 ff, the 29 JSON bytes, Adler-32 90 bd 09 25.
    let golden =
        g(r#"cc 03 c4 28 78 01 01 1d 00 e2 ff '{"type":"answer","sdp":"v=0"}' 90 bd 09 25"#);
    let want = DcMessage::Sdp(SessionDescription::answer("v=0"));
    assert_eq!(DcMessage::decode(&golden).unwrap(), want);

    // Our encoder compresses at zlib's default level (header 78 9c) into a bin; check the framing,
    // then that the payload inflates to the exact JSON.
    let offer = DcMessage::Sdp(SessionDescription::offer(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n",
    ));
    let bytes = offer.encode();
    assert_eq!(&bytes[..2], &[0xcc, 0x03]);
    assert_eq!(bytes[2], 0xc4, "bin8");
    assert_eq!(bytes[3] as usize, bytes.len() - 4);
    assert_eq!(&bytes[4..6], &[0x78, 0x9c]);
    assert_eq!(
        dc::inflate(&bytes[4..]).unwrap(),
        br#"{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}"#.to_vec()
    );
    assert_eq!(DcMessage::decode(&bytes).unwrap(), offer);
}

#[test]
fn media_map() {
    let golden = g(r#"cc 09 82
        a1 "0" 82 a4 "type" a5 "voice" a9 "sender_id" a8 "session1"
        a1 "1" 82 a4 "type" ac "screen-audio" a9 "sender_id" a8 "session2""#);
    let map: MediaMap = [
        (
            "0".to_string(),
            TrackInfo {
                kind: TrackKind::Voice,
                sender_id: "session1".into(),
            },
        ),
        (
            "1".to_string(),
            TrackInfo {
                kind: TrackKind::ScreenAudio,
                sender_id: "session2".into(),
            },
        ),
    ]
    .into_iter()
    .collect();
    assert_canonical(&golden, DcMessage::MediaMap(map.clone()));
    // Go's map order is random; keys inside an entry in any order; unknown entry keys skipped.
    let shuffled = g(r#"09 82
        a1 "1" 83 a9 "sender_id" a8 "session2" a1 "x" c0 a4 "type" ac "screen-audio"
        a1 "0" 82 a4 "type" a5 "voice" a9 "sender_id" a8 "session1""#);
    assert_eq!(
        DcMessage::decode(&shuffled).unwrap(),
        DcMessage::MediaMap(map)
    );
    // Screen and video kinds, and an empty map.
    let two = g(
        r#"cc 09 82 a1 "2" 82 a4 "type" a6 "screen" a9 "sender_id" a1 "s" a1 "3" 82 a4 "type" a5 "video" a9 "sender_id" a1 "s""#,
    );
    let DcMessage::MediaMap(m) = DcMessage::decode(&two).unwrap() else {
        panic!("not a media map")
    };
    assert_eq!(
        (m["2"].kind, m["3"].kind),
        (TrackKind::Screen, TrackKind::Video)
    );
    assert_canonical(&g("cc 09 80"), DcMessage::MediaMap(MediaMap::new()));
}

#[test]
fn legacy_text_ping_pong() {
    assert_eq!(LegacyText::parse(&g(r#""ping""#)), Some(LegacyText::Ping));
    assert_eq!(LegacyText::parse(&g("70 6f 6e 67")), Some(LegacyText::Pong));
    assert_eq!(LegacyText::Ping.reply(), Some(LegacyText::Pong));
    assert_eq!(LegacyText::Pong.reply(), None);
    assert_eq!(LegacyText::Pong.as_str().as_bytes(), b"pong");
    assert_eq!(LegacyText::parse(b"Ping"), None);
    assert_eq!(LegacyText::parse(&g("cc 01")), None);
    // The bytes "ping" are not a binary DC message (0x70 is fixint 112, then trailing bytes).
    assert!(DcMessage::decode(b"ping").is_err());
}

#[test]
fn dc_errors_are_typed() {
    use MsgpackError::{Truncated, WrongType};
    let bomb = {
        let mut m = g("cc 03");
        let z = dc::compress(&vec![b' '; MAX_SDP_INFLATED_LEN + 1]);
        m.extend_from_slice(&[0xc6]);
        m.extend_from_slice(&(z.len() as u32).to_be_bytes());
        m.extend_from_slice(&z);
        m
    };
    let not_json = {
        let z = dc::compress(b"v=0");
        let mut m = g("cc 03 c4");
        m.push(z.len() as u8);
        m.extend_from_slice(&z);
        m
    };
    let truncated_zlib = g(r#"cc 03 c4 20 78 01 01 1d 00 e2 ff '{"type":"answer","sdp":"v=0"}'"#);
    let bad_checksum =
        g(r#"cc 03 c4 28 78 01 01 1d 00 e2 ff '{"type":"answer","sdp":"v=0"}' 00 00 00 00"#);

    let check = |bytes: &[u8], ok: &dyn Fn(&DcDecodeError) -> bool| {
        let err = DcMessage::decode(bytes).expect_err("must fail");
        assert!(
            ok(&err),
            "unexpected {err:?} for {:02x?}",
            &bytes[..bytes.len().min(40)]
        );
        assert!(!err.to_string().starts_with(char::is_uppercase), "{err}");
    };
    check(&vec![0x01; (1 << 20) + 1], &|e| {
        matches!(e, DcDecodeError::TooLarge { .. })
    });
    check(&[], &|e| {
        matches!(
            e,
            DcDecodeError::Msgpack {
                field: "message type",
                source: Truncated
            }
        )
    });
    check(&g("cc"), &|e| {
        matches!(
            e,
            DcDecodeError::Msgpack {
                source: Truncated,
                ..
            }
        )
    });
    check(&g("cc 04 cb 3f b9"), &|e| {
        matches!(
            e,
            DcDecodeError::Msgpack {
                field: "float payload",
                source: Truncated
            }
        )
    });
    check(&g("cc 04"), &|e| {
        matches!(
            e,
            DcDecodeError::Msgpack {
                field: "float payload",
                source: Truncated
            }
        )
    });
    check(&g(r#"a4 "ping""#), &|e| {
        matches!(
            e,
            DcDecodeError::Msgpack {
                source: WrongType {
                    expected: "int",
                    found: "str"
                },
                ..
            }
        )
    });
    check(&g(r#"cc 04 a3 "0.1""#), &|e| {
        matches!(
            e,
            DcDecodeError::Msgpack {
                source: WrongType {
                    expected: "float",
                    found: "str"
                },
                ..
            }
        )
    });
    check(&g("cc 07 01"), &|e| {
        matches!(
            e,
            DcDecodeError::Msgpack {
                field: "lock payload",
                ..
            }
        )
    });
    check(&g(r#"cc 03 a1 "x""#), &|e| {
        matches!(
            e,
            DcDecodeError::Msgpack {
                field: "sdp payload",
                source: WrongType {
                    expected: "bin",
                    ..
                }
            }
        )
    });
    check(&g("cc 09 a1 30"), &|e| {
        matches!(
            e,
            DcDecodeError::Msgpack {
                field: "media map",
                ..
            }
        )
    });
    check(&g("cc 01 00"), &|e| {
        matches!(e, DcDecodeError::TrailingBytes { count: 1 })
    });
    check(&g("cc 07 c3 c3"), &|e| {
        matches!(e, DcDecodeError::TrailingBytes { count: 1 })
    });
    check(&g("0a"), &|e| matches!(e, DcDecodeError::UnknownType(10)));
    check(&g("00"), &|e| matches!(e, DcDecodeError::UnknownType(0)));
    check(&g("ff"), &|e| matches!(e, DcDecodeError::UnknownType(-1)));
    check(&g("cd 01 01"), &|e| {
        matches!(e, DcDecodeError::UnknownType(257))
    });
    check(&g("cc 03 c4 03 01 02 03"), &|e| {
        matches!(e, DcDecodeError::Zlib(_))
    });
    check(&truncated_zlib, &|e| matches!(e, DcDecodeError::Zlib(_)));
    check(&bad_checksum, &|e| matches!(e, DcDecodeError::Zlib(_)));
    check(&bomb, &|e| {
        matches!(
            e,
            DcDecodeError::InflatedTooLarge {
                limit: MAX_SDP_INFLATED_LEN
            }
        )
    });
    check(&not_json, &|e| matches!(e, DcDecodeError::Json(_)));
    check(&g(r#"cc 09 81 a1 "0" 81 a4 "type" a5 "voice""#), &|e| {
        matches!(
            e,
            DcDecodeError::MissingKey {
                key: "sender_id",
                ..
            }
        )
    });
    check(&g(r#"cc 09 81 a1 "0" 81 a9 "sender_id" a1 "s""#), &|e| {
        matches!(e, DcDecodeError::MissingKey { key: "type", .. })
    });
    check(
        &g(r#"cc 09 81 a1 "0" 82 a4 "type" a5 "Voice" a9 "sender_id" a1 "s""#),
        &|e| matches!(e, DcDecodeError::UnknownTrackKind(k) if k == "Voice"),
    );
}

#[test]
fn track_ids() {
    let session = "m7dm7f8mxtyzxkxhmk1nru3ywo";
    let mut rng = StdRng::seed_from_u64(42);
    for kind in TrackKind::ALL {
        let id = TrackId::generate(kind, session, &mut rng);
        let text = id.to_string();
        assert!(
            text.starts_with(&format!("{}_{session}_", kind.as_str())),
            "{text}"
        );
        assert_eq!(id.suffix.len(), 8);
        assert!(id.suffix.bytes().all(|b| ids::ID_ALPHABET.contains(&b)));
        assert_eq!(TrackId::parse(&text).unwrap(), id);
    }
    // Same seed, same ids: randomness only from the caller.
    let a = TrackId::generate(TrackKind::Voice, "s", &mut StdRng::seed_from_u64(1));
    let b = TrackId::generate(TrackKind::Voice, "s", &mut StdRng::seed_from_u64(1));
    assert_eq!(a, b);

    let parsed: TrackId = "screen-audio_m7dm7f8mxtyzxkxhmk1nru3ywo_ab3defgh"
        .parse()
        .unwrap();
    assert_eq!(
        (
            parsed.kind,
            parsed.session_id.as_str(),
            parsed.suffix.as_str()
        ),
        (TrackKind::ScreenAudio, session, "ab3defgh")
    );

    assert_eq!(
        TrackId::parse(""),
        Err(TrackIdError::FieldCount { count: 1 })
    );
    assert_eq!(
        TrackId::parse("screen_id"),
        Err(TrackIdError::FieldCount { count: 2 })
    );
    assert_eq!(
        TrackId::parse("screen_id_id_id"),
        Err(TrackIdError::FieldCount { count: 4 })
    );
    assert_eq!(
        TrackId::parse("ai_id_id"),
        Err(TrackIdError::UnknownKind("ai".into()))
    );
    assert_eq!(
        TrackId::parse("screen-video_id_id"),
        Err(TrackIdError::UnknownKind("screen-video".into()))
    );
    assert_eq!(
        TrackId::parse("voice__x"),
        Err(TrackIdError::EmptySessionId)
    );
    assert_eq!(TrackId::parse("voice_s_"), Err(TrackIdError::EmptySuffix));
}

#[test]
fn mattermost_ids() {
    // 16 bytes 00 01 .. 0f in 5-bit groups, MSB first, two zero bits appended to the last group:
    // 00000 00000 00000 10000 00100 00000 11000 00100 00000 10100 00011 00000 01110
    // 00010 00000 01001 00001 01000 00101 10000 11000 00011 01000 01110 00001 111(00)
    // = 0 0 0 16 4 0 24 4 0 20 3 0 14 2 0 9 1 8 5 16 24 3 8 14 1 28 in ybndrfg8ejkmcpqxot1uwisza345h769:
    let bytes: [u8; 16] = std::array::from_fn(|i| i as u8);
    assert_eq!(encode_id(&bytes), "yyyoryarywdyqnyjbefoadeqbh");
    assert_eq!(decode_id("yyyoryarywdyqnyjbefoadeqbh"), Ok(bytes));

    let mut rng = StdRng::seed_from_u64(9);
    let id = new_id(&mut rng);
    assert_eq!(id.len(), 26);
    assert!(is_valid_id(&id) && ids::is_mattermost_valid_id(&id));
    assert_eq!(new_id(&mut StdRng::seed_from_u64(9)), id);
    assert_eq!(decode_id("abc"), Err(IdError::Length { len: 3 }));
    assert_eq!(
        decode_id("yyyoryarywdyqnyjbefoadeqbhy"),
        Err(IdError::Length { len: 27 })
    );
    assert_eq!(
        decode_id("yyyoryarywdyqnyjbefoadeqbL"),
        Err(IdError::BadChar { ch: 'L', at: 25 })
    );
    // 'l' is not in the alphabet (nor are 0, 2, v).
    assert_eq!(
        decode_id("yyyoryarywlyqnyjbefoadeqbh"),
        Err(IdError::BadChar { ch: 'l', at: 10 })
    );
    // 'n' is 2 = 00010: a padding bit set in the last character.
    assert_eq!(
        decode_id("yyyoryarywdyqnyjbefoadeqbn"),
        Err(IdError::NonCanonicalTail('n'))
    );
    // Mattermost's own check is laxer: any 26 letters or digits.
    assert!(ids::is_mattermost_valid_id("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
    assert!(!is_valid_id("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
}
