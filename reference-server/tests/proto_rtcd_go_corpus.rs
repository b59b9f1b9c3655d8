//! Differential test against rtcd v1.2.6's own decoders (msgpack v5.4.1, Go 1.24).
//!
//! `fixtures/rtcd_go_decode.tsv` records, for 2 254 inputs, what rtcd does with them: WS frames through
//! `service.ClientMessage.Unpack` (plus the handler's type assertion and `SessionConfig.FromMap` for
//! joins) and DC messages through `dc.DecodeMessage`. Inputs are frames encoded by rtcd's own
//! encoders (`NewPackedClientMessage`, `dc.EncodeMessage`) plus 150 seeded mutations of each.
//! Columns: kind, hex(input), `ok`/`err`/`panic`, then for ok WS frames the bytes left after the data
//! value and a normalised decode, for ok DC messages `type|payload`. See `fixtures/README.md`.
//!
//! The rules, per input:
//! - we accept ⇒ rtcd accepts and decodes the same values (never accept what rtcd rejects);
//! - rtcd acts on it but we reject ⇒ only for a documented strictness (trailing bytes with the same
//!   count, a missing key, bin/nil where a str is required, ...); anything else fails the test.

use callsref::proto::rtcd::error::{DcDecodeError, MsgpackError, WsDecodeError};
use callsref::proto::rtcd::{DcMessage, SessionDescription, WsMessage};

const CORPUS: &str = include_str!("fixtures/rtcd_go_decode.tsv");

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: impl AsRef<[u8]>) -> String {
    b.as_ref().iter().map(|x| format!("{x:02x}")).collect()
}

fn opt_str(v: &Option<String>) -> Vec<&'static str> {
    // Our `None` covers rtcd's absent ("-") and wrong-typed ("x") values.
    match v {
        Some(_) => vec![],
        None => vec!["-", "x"],
    }
}

/// Whether rtcd's normalised decode `go` equals our message.
fn same_ws(go: &str, ours: &WsMessage) -> bool {
    let f: Vec<&str> = go.split('|').collect();
    match ours {
        WsMessage::Join(j) => {
            let ch_ok = match &j.channel_id {
                Some(c) => f[4] == format!("s{}", hex(c)),
                None => opt_str(&j.channel_id).contains(&f[4]),
            };
            let b = |v: Option<bool>, g: &str| match v {
                Some(x) => g == x.to_string(),
                None => g == "-" || g == "x",
            };
            f[0] == "join"
                && f[1] == hex(&j.call_id)
                && f[2] == hex(&j.user_id)
                && f[3] == hex(&j.session_id)
                && ch_ok
                && b(j.av1_support, f[5])
                && b(j.dc_signaling, f[6])
        }
        WsMessage::Leave { session_id }
        | WsMessage::Reconnect { session_id }
        | WsMessage::Close { session_id } => {
            f[0] == ours.type_str() && f[1] == format!("s{}", hex(session_id))
        }
        WsMessage::Hello { client_id, conn_id } => {
            f[0] == "hello"
                && f[1] == format!("s{}", hex(client_id))
                && f[2] == format!("s{}", hex(conn_id))
        }
        WsMessage::Rtc(m) | WsMessage::Vad(m) => {
            f[0] == ours.type_str()
                && f[1] == hex(&m.group_id)
                && f[2] == hex(&m.user_id)
                && f[3] == hex(&m.session_id)
                && f[4] == hex(&m.call_id)
                && f[5] == m.msg_type.as_u8().to_string()
                && f.get(6).copied().unwrap_or("") == hex(&m.data)
        }
    }
}

/// Whether rtcd would act on a frame it decoded: its handlers reject other shapes and types.
fn rtcd_acts_on(go: &str) -> bool {
    let kind = go.split('|').next().unwrap_or("");
    if kind.ends_with("-shape") || kind == "other" {
        return false;
    }
    if kind == "rtc" || kind == "vad" {
        let t: i64 = go.split('|').nth(5).unwrap().parse().unwrap();
        return (1..=10).contains(&t);
    }
    true
}

fn lenient_type(source: &MsgpackError) -> bool {
    // Go's msgpack reads bin as a string and nil as "" or an empty value, and Go strings hold any
    // bytes where ours must be UTF-8.
    matches!(
        source,
        MsgpackError::WrongType {
            found: "bin" | "nil",
            ..
        } | MsgpackError::InvalidUtf8
    )
}

#[test]
fn ws_frames_agree_with_rtcd() {
    let (mut agree_ok, mut agree_err, mut stricter) =
        (0, 0, std::collections::BTreeMap::<String, usize>::new());
    let mut failures = Vec::new();
    for line in CORPUS.lines().filter(|l| l.starts_with("ws\t")) {
        let cols: Vec<&str> = line.split('\t').collect();
        let input = unhex(cols[1]);
        let ours = WsMessage::decode(&input);
        match (cols[2], &ours) {
            ("ok", Ok(msg)) => {
                if cols[3] == "0" && rtcd_acts_on(cols[4]) && same_ws(cols[4], msg) {
                    agree_ok += 1;
                } else {
                    failures.push(format!("we accept {msg:?}, rtcd: {}", cols[2..].join(" ")));
                }
            }
            ("ok", Err(e)) if !rtcd_acts_on(cols[4]) => {
                let _ = e;
                agree_err += 1;
            }
            ("ok", Err(e)) => {
                let trailing: usize = cols[3].parse().unwrap();
                let allowed = match e {
                    WsDecodeError::TrailingBytes { count } => *count == trailing,
                    WsDecodeError::MissingKey { key } => cols[4].contains("|-") || *key == "type",
                    WsDecodeError::Msgpack { source, .. } => lenient_type(source),
                    _ => false,
                };
                if allowed {
                    let key = format!("{e:?}")
                        .split([' ', '(', '{'])
                        .next()
                        .unwrap()
                        .to_string();
                    *stricter.entry(key).or_default() += 1;
                } else {
                    failures.push(format!(
                        "we reject with {e:?}, rtcd acts on {}: {}",
                        cols[4], cols[1]
                    ));
                }
            }
            (_, Ok(msg)) => failures.push(format!(
                "we accept {msg:?}, rtcd says {}: {}",
                cols[2], cols[1]
            )),
            (_, Err(_)) => agree_err += 1,
        }
    }
    eprintln!(
        "ws: {agree_ok} accepted alike, {agree_err} rejected alike, stricter than rtcd: {stricter:?}"
    );
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The corpus exercises both sides.
    assert!(
        agree_ok > 150 && agree_err > 1000,
        "{agree_ok} / {agree_err}"
    );
}

/// rtcd's `type|payload` for one of our DC messages.
fn go_form(msg: &DcMessage) -> String {
    let t = msg.type_number();
    let payload = match msg {
        DcMessage::Ping | DcMessage::Pong | DcMessage::LockRequest | DcMessage::Unlock => {
            "-".to_string()
        }
        DcMessage::Sdp(_) => unreachable!("compared separately"),
        DcMessage::LossRate(v) | DcMessage::RoundTripTime(v) | DcMessage::Jitter(v) => {
            format!("f{:016x}", v.to_bits())
        }
        DcMessage::LockResponse(b) => b.to_string(),
        DcMessage::MediaMap(m) => {
            let mut entries: Vec<String> = m
                .iter()
                .map(|(mid, ti)| {
                    format!(
                        "{}:{}:{}",
                        hex(mid),
                        hex(ti.kind.as_str()),
                        hex(&ti.sender_id)
                    )
                })
                .collect();
            entries.sort();
            format!("m{}", entries.join(","))
        }
    };
    format!("{t}|{payload}")
}

#[test]
fn dc_messages_agree_with_rtcd() {
    let (mut agree_ok, mut agree_err, mut stricter) =
        (0, 0, std::collections::BTreeMap::<String, usize>::new());
    let mut failures = Vec::new();
    for line in CORPUS.lines().filter(|l| l.starts_with("dc\t")) {
        let cols: Vec<&str> = line.split('\t').collect();
        let input = unhex(cols[1]);
        match (cols[2], DcMessage::decode(&input)) {
            ("ok", Ok(DcMessage::Sdp(sdp))) => {
                // rtcd hands the inflated JSON on; compare what it parses to.
                let json = cols[3].strip_prefix("3|b").map(unhex);
                let theirs = json.and_then(|j| SessionDescription::from_json(&j).ok());
                if theirs.as_ref() == Some(&sdp) {
                    agree_ok += 1;
                } else {
                    failures.push(format!("sdp {sdp:?} vs rtcd {}", cols[3]));
                }
            }
            ("ok", Ok(msg)) => {
                if go_form(&msg) == cols[3] {
                    agree_ok += 1;
                } else {
                    failures.push(format!("we decode {msg:?}, rtcd {}: {}", cols[3], cols[1]));
                }
            }
            ("ok", Err(e)) => {
                let allowed = match &e {
                    // rtcd ignores bytes after the payload, treats a non-bool lock payload as a
                    // request, hands SDP on without parsing it, and takes media-map entries as is.
                    DcDecodeError::TrailingBytes { .. }
                    | DcDecodeError::Json(_)
                    | DcDecodeError::MissingKey { .. }
                    | DcDecodeError::UnknownTrackKind(_) => true,
                    DcDecodeError::Msgpack {
                        field: "lock payload",
                        ..
                    } => cols[3] == "7|-",
                    // Go's msgpack also decodes a struct from an array.
                    DcDecodeError::Msgpack {
                        field: "track info",
                        source: MsgpackError::WrongType { found: "array", .. },
                    } => true,
                    DcDecodeError::Msgpack { source, .. } => lenient_type(source),
                    _ => false,
                };
                if allowed {
                    let key = format!("{e:?}")
                        .split([' ', '(', '{'])
                        .next()
                        .unwrap()
                        .to_string();
                    *stricter.entry(key).or_default() += 1;
                } else {
                    failures.push(format!(
                        "we reject with {e:?}, rtcd decodes {}: {}",
                        cols[3], cols[1]
                    ));
                }
            }
            (_, Ok(msg)) => failures.push(format!(
                "we accept {msg:?}, rtcd says {}: {}",
                cols[2], cols[1]
            )),
            (_, Err(_)) => agree_err += 1,
        }
    }
    eprintln!(
        "dc: {agree_ok} accepted alike, {agree_err} rejected alike, stricter than rtcd: {stricter:?}"
    );
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(agree_ok > 40 && agree_err > 600, "{agree_ok} / {agree_err}");
}

#[test]
fn frames_that_crash_rtcd_are_rejected() {
    // rtcd's typed-map decoder panics on a nil map key (reflect.TypeOf(nil)); the corpus has one.
    let panics: Vec<&str> = CORPUS
        .lines()
        .filter(|l| l.split('\t').nth(2) == Some("panic"))
        .collect();
    assert!(!panics.is_empty());
    for line in panics {
        let input = unhex(line.split('\t').nth(1).unwrap());
        assert!(
            WsMessage::decode(&input).is_err() && DcMessage::decode(&input).is_err(),
            "{line}"
        );
    }
}

#[test]
fn our_encoder_writes_what_rtcd_writes() {
    // The corpus starts with the frames rtcd's own encoders produced (10 WS, then 9 DC of which two
    // are hand-made browser forms). Where Go's output is deterministic our bytes must equal it: maps
    // with more than one key (join, hello) come out in Go's random map order, and Go's zlib writer
    // differs from ours (it ends with an empty sync block), so those compare by decoded value.
    let goldens: Vec<(&str, Vec<u8>)> = CORPUS
        .lines()
        .take(19)
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols[0], unhex(cols[1]))
        })
        .collect();
    let mut compared = 0;
    for (kind, bytes) in &goldens {
        if *kind == "ws" {
            let msg = WsMessage::decode(bytes).unwrap();
            if !matches!(msg, WsMessage::Join(_) | WsMessage::Hello { .. }) {
                assert_eq!(&msg.encode(), bytes, "{msg:?}");
                compared += 1;
            }
        } else {
            let msg = DcMessage::decode(bytes).unwrap();
            let browser_form = bytes[0] != 0xcc;
            if !browser_form && !matches!(msg, DcMessage::Sdp(_)) {
                assert_eq!(&msg.encode(), bytes, "{msg:?}");
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 8 + 6);
}
