//! Plugin ⇄ rtcd WebSocket frames (rtcd.md §2.1–2.2).
//!
//! Each binary frame is a msgpack str (the message type) immediately followed by one msgpack value (the
//! data): two concatenated values, no array or map around them. The data's shape depends on the type:
//!
//! | type | direction | data |
//! |---|---|---|
//! | `join` | plugin → rtcd | map: `callID`, `userID`, `sessionID`, `channelID` (str), `av1Support`, `dcSignaling` (bool) |
//! | `leave` | plugin → rtcd | str→str map `{"sessionID"}` |
//! | `reconnect` | plugin → rtcd | str→str map `{"sessionID"}` (the original connection id) |
//! | `rtc` | both | [`RtcMessage`] map |
//! | `hello` | rtcd → plugin | str→str map `{"clientID", "connID"}` |
//! | `close` | rtcd → plugin | str→str map `{"sessionID"}` |
//! | `vad` | rtcd → plugin | [`RtcMessage`] map, type 7 or 8, no data |
//!
//! rtcd decodes the str→str maps as Go typed maps, so every key and value must be a msgpack str; other
//! keys are ignored. `join` is a generic map read leniently as rtcd's `SessionConfig.FromMap` does:
//! missing keys and values of the wrong type read as empty/absent, `groupID` and unknown keys are
//! ignored. Stricter than rtcd: frames over 1 MiB, trailing bytes, unknown types and missing required
//! keys are errors (rtcd logs most of these and drops the message).
//!
//! Go strings may hold any bytes; ours are UTF-8, so a wanted value that is not UTF-8 is an error
//! (keys are compared as bytes, so a non-UTF-8 unknown key is still ignored). Go's msgpack also reads
//! a bin or nil where a str is expected; we do not, except nil for the ids of an `rtc` message.
//! `tests/proto_rtcd_go_corpus.rs` checks all of
//! this against rtcd's own decoder: we never accept a frame rtcd rejects, and agree on every value.
//!
//! Encoding writes map keys in the order of the table (Go's own map order is random).

use super::error::WsDecodeError;
use super::http::{SessionConfig, SessionProps};
use super::msgpack::{Reader, family, put_bool, put_map_len, put_str};
use super::rtc::RtcMessage;

/// rtcd's WebSocket read limit per message.
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// The seven type strings.
pub mod types {
    pub const JOIN: &str = "join";
    pub const LEAVE: &str = "leave";
    pub const RECONNECT: &str = "reconnect";
    pub const RTC: &str = "rtc";
    pub const HELLO: &str = "hello";
    pub const CLOSE: &str = "close";
    pub const VAD: &str = "vad";
}

/// One WebSocket message between the plugin and rtcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// Plugin → rtcd: create a session.
    Join(JoinData),
    /// Plugin → rtcd: end a session; rtcd answers with `close`.
    Leave { session_id: String },
    /// Plugin → rtcd: route this session's messages to the sending connection from now on.
    Reconnect { session_id: String },
    /// Signalling, both ways.
    Rtc(RtcMessage),
    /// rtcd → plugin, first frame on a new connection.
    Hello { client_id: String, conn_id: String },
    /// rtcd → plugin: the session ended.
    Close { session_id: String },
    /// rtcd → plugin: voice activity (type 7 on, 8 off).
    Vad(RtcMessage),
}

/// The data of a `join`. `None` props were absent (or of another type) in the frame; the plugin always
/// sends all six keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinData {
    pub call_id: String,
    pub user_id: String,
    pub session_id: String,
    pub channel_id: Option<String>,
    pub av1_support: Option<bool>,
    pub dc_signaling: Option<bool>,
}

impl JoinData {
    /// The session config rtcd keeps for this join; `group_id` is the connection's client id.
    pub fn session_config(&self, group_id: impl Into<String>) -> SessionConfig {
        SessionConfig {
            group_id: group_id.into(),
            call_id: self.call_id.clone(),
            user_id: self.user_id.clone(),
            session_id: self.session_id.clone(),
            props: SessionProps {
                av1_support: self.av1_support,
                channel_id: self.channel_id.clone(),
                dc_signaling: self.dc_signaling,
            },
        }
    }

    /// The first of call, user and session id that is empty (rtcd refuses such a join), if any.
    pub fn missing_id(&self) -> Option<&'static str> {
        [
            ("callID", &self.call_id),
            ("userID", &self.user_id),
            ("sessionID", &self.session_id),
        ]
        .into_iter()
        .find(|(_, v)| v.is_empty())
        .map(|(k, _)| k)
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        let n = 3
            + usize::from(self.channel_id.is_some())
            + usize::from(self.av1_support.is_some())
            + usize::from(self.dc_signaling.is_some());
        put_map_len(out, n);
        for (key, value) in [
            ("callID", &self.call_id),
            ("userID", &self.user_id),
            ("sessionID", &self.session_id),
        ] {
            put_str(out, key);
            put_str(out, value);
        }
        if let Some(channel_id) = &self.channel_id {
            put_str(out, "channelID");
            put_str(out, channel_id);
        }
        for (key, value) in [
            ("av1Support", self.av1_support),
            ("dcSignaling", self.dc_signaling),
        ] {
            if let Some(v) = value {
                put_str(out, key);
                put_bool(out, v);
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WsDecodeError> {
        let n = r.map_len().map_err(WsDecodeError::at("join data"))?;
        let mut join = JoinData::default();
        for _ in 0..n {
            // Keys are matched on raw bytes: an unknown non-UTF-8 key is ignored, as in rtcd.
            let key = r.str_bytes().map_err(WsDecodeError::at("join key"))?;
            let key = std::str::from_utf8(key).unwrap_or("");
            let marker = r.peek().map_err(WsDecodeError::at("join value"))?;
            let value_err = WsDecodeError::at("join value");
            match (key, family(marker)) {
                ("callID" | "userID" | "sessionID" | "channelID", "str") => {
                    let value = r.str().map_err(value_err)?.to_owned();
                    match key {
                        "callID" => join.call_id = value,
                        "userID" => join.user_id = value,
                        "sessionID" => join.session_id = value,
                        _ => join.channel_id = Some(value),
                    }
                }
                ("av1Support" | "dcSignaling", "bool") => {
                    let value = Some(r.bool().map_err(value_err)?);
                    if key == "av1Support" {
                        join.av1_support = value;
                    } else {
                        join.dc_signaling = value;
                    }
                }
                _ => {
                    // A known key with a wrong-typed value counts as absent, as in rtcd (a later
                    // duplicate key overrides an earlier one); unknown keys, `groupID` included, are ignored.
                    match key {
                        "callID" => join.call_id.clear(),
                        "userID" => join.user_id.clear(),
                        "sessionID" => join.session_id.clear(),
                        "channelID" => join.channel_id = None,
                        "av1Support" => join.av1_support = None,
                        "dcSignaling" => join.dc_signaling = None,
                        _ => {}
                    }
                    r.skip_value().map_err(value_err)?;
                }
            }
        }
        Ok(join)
    }
}

impl WsMessage {
    /// The type string of this message.
    pub fn type_str(&self) -> &'static str {
        match self {
            WsMessage::Join(_) => types::JOIN,
            WsMessage::Leave { .. } => types::LEAVE,
            WsMessage::Reconnect { .. } => types::RECONNECT,
            WsMessage::Rtc(_) => types::RTC,
            WsMessage::Hello { .. } => types::HELLO,
            WsMessage::Close { .. } => types::CLOSE,
            WsMessage::Vad(_) => types::VAD,
        }
    }

    /// The frame bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(&mut out);
        out
    }

    /// Appends the frame bytes to `out` (reuse one buffer on hot paths).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        put_str(out, self.type_str());
        match self {
            WsMessage::Join(join) => join.encode_into(out),
            WsMessage::Leave { session_id }
            | WsMessage::Reconnect { session_id }
            | WsMessage::Close { session_id } => put_str_map(out, &[("sessionID", session_id)]),
            WsMessage::Hello { client_id, conn_id } => {
                put_str_map(out, &[("clientID", client_id), ("connID", conn_id)])
            }
            WsMessage::Rtc(msg) | WsMessage::Vad(msg) => msg.encode_into(out),
        }
    }

    /// Decodes one frame; see the module docs for what is accepted.
    pub fn decode(frame: &[u8]) -> Result<Self, WsDecodeError> {
        if frame.len() > MAX_FRAME_LEN {
            return Err(WsDecodeError::FrameTooLarge {
                len: frame.len(),
                limit: MAX_FRAME_LEN,
            });
        }
        let mut r = Reader::new(frame);
        let msg_type = r.str().map_err(WsDecodeError::at("message type"))?;
        let msg = match msg_type {
            types::JOIN => WsMessage::Join(JoinData::read(&mut r)?),
            types::LEAVE => {
                let [session_id] = read_str_map(&mut r, ["sessionID"])?;
                WsMessage::Leave { session_id }
            }
            types::RECONNECT => {
                let [session_id] = read_str_map(&mut r, ["sessionID"])?;
                WsMessage::Reconnect { session_id }
            }
            types::CLOSE => {
                let [session_id] = read_str_map(&mut r, ["sessionID"])?;
                WsMessage::Close { session_id }
            }
            types::HELLO => {
                let [client_id, conn_id] = read_str_map(&mut r, ["clientID", "connID"])?;
                WsMessage::Hello { client_id, conn_id }
            }
            types::RTC => WsMessage::Rtc(RtcMessage::read(&mut r)?),
            types::VAD => WsMessage::Vad(RtcMessage::read(&mut r)?),
            other => return Err(WsDecodeError::UnknownType(other.to_owned())),
        };
        if !r.is_at_end() {
            return Err(WsDecodeError::TrailingBytes {
                count: r.remaining(),
            });
        }
        Ok(msg)
    }
}

fn put_str_map(out: &mut Vec<u8>, entries: &[(&str, &String)]) {
    put_map_len(out, entries.len());
    for (k, v) in entries {
        put_str(out, k);
        put_str(out, v);
    }
}

/// Reads a str→str map and returns the values of the wanted keys, all required. Every key and value
/// must be a str; other keys are ignored.
fn read_str_map<const N: usize>(
    r: &mut Reader<'_>,
    wanted: [&'static str; N],
) -> Result<[String; N], WsDecodeError> {
    let n = r.map_len().map_err(WsDecodeError::at("message data"))?;
    let mut found: [Option<String>; N] = std::array::from_fn(|_| None);
    for _ in 0..n {
        let key = r.str_bytes().map_err(WsDecodeError::at("map key"))?;
        if family(r.peek().map_err(WsDecodeError::at("map value"))?) != "str" {
            let key = String::from_utf8_lossy(key).into_owned();
            return Err(WsDecodeError::NonStringValue { key });
        }
        // Other keys' values may hold any bytes (Go strings do); the wanted ones must be UTF-8.
        match wanted.iter().position(|w| w.as_bytes() == key) {
            Some(i) => found[i] = Some(r.str().map_err(WsDecodeError::at("map value"))?.to_owned()),
            None => {
                r.str_bytes().map_err(WsDecodeError::at("map value"))?;
            }
        }
    }
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (i, slot) in found.into_iter().enumerate() {
        out[i] = slot.ok_or(WsDecodeError::MissingKey { key: wanted[i] })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_duplicate_join_key_wins_even_when_wrong_typed() {
        // {"sessionID": "a", "sessionID": 1}: the second value is not a str, so the id reads as empty.
        let mut frame = Vec::new();
        put_str(&mut frame, "join");
        put_map_len(&mut frame, 2);
        put_str(&mut frame, "sessionID");
        put_str(&mut frame, "a");
        put_str(&mut frame, "sessionID");
        frame.push(0x01);
        let WsMessage::Join(join) = WsMessage::decode(&frame).unwrap() else {
            panic!("not a join")
        };
        assert_eq!(join.session_id, "");
        assert_eq!(join.missing_id(), Some("callID"));
    }

    #[test]
    fn frame_of_exactly_the_limit_is_read() {
        // A hello padded with an ignored key up to exactly 1 MiB passes the size check.
        let mut frame = Vec::new();
        put_str(&mut frame, "hello");
        put_map_len(&mut frame, 3);
        for (k, v) in [("clientID", "c"), ("connID", "d")] {
            put_str(&mut frame, k);
            put_str(&mut frame, v);
        }
        put_str(&mut frame, "pad");
        let pad = MAX_FRAME_LEN - frame.len() - 5; // str32 header is 5 bytes
        put_str(&mut frame, &"x".repeat(pad));
        assert_eq!(frame.len(), MAX_FRAME_LEN);
        assert!(WsMessage::decode(&frame).is_ok());
        frame.push(0xc0);
        assert!(matches!(
            WsMessage::decode(&frame),
            Err(WsDecodeError::FrameTooLarge { .. })
        ));
    }
}
