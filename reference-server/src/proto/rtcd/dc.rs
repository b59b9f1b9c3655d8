//! Data-channel messages between an end user's peer and rtcd (rtcd.md §2.5).
//!
//! A binary DC message is the type as a msgpack unsigned int, optionally followed immediately by one
//! payload value, with no wrapper:
//!
//! | # | name | payload |
//! |---|---|---|
//! | 1 | Ping | none (client, every second) |
//! | 2 | Pong | none |
//! | 3 | SDP | bin: zlib-compressed JSON [`SessionDescription`] |
//! | 4 | LossRate | float64, a fraction |
//! | 5 | RoundTripTime | float64, seconds |
//! | 6 | Jitter | float64, seconds |
//! | 7 | Lock | request: none; response: bool (got the signalling lock or not) |
//! | 8 | Unlock | none |
//! | 9 | MediaMap | map mid → `{"type": voice\|screen\|screen-audio\|video, "sender_id": sessionID}` |
//!
//! Encoding writes the type as `cc NN` (uint8 with marker), as rtcd and the Go client do; browsers write
//! a positive fixint, and decoding accepts any integer encoding. Floats are written as float64 and read
//! from float32, float64 or any integer (browsers encode whole numbers as ints). SDP is compressed at
//! zlib's default level. Media-map entries are written in mid order, keys `type` then `sender_id`.
//!
//! Stricter than rtcd: trailing bytes, a non-bool Lock payload, an unknown track type and a missing
//! media-map key are errors, a track info must be a map (Go also reads a struct from an array), strs
//! must be UTF-8, and the inflated SDP is capped at [`MAX_SDP_INFLATED_LEN`]. Beyond those, decoding
//! agrees with rtcd's `dc.DecodeMessage` on a recorded corpus (`tests/proto_rtcd_go_corpus.rs`).
//!
//! Old mobile clients send the TEXT message `ping` and get the text `pong` back; that legacy pair is
//! [`LegacyText`]. rtcd recognises it by the bytes alone, before trying to decode a binary message.

use std::collections::BTreeMap;
use std::io::Read;

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

use super::error::DcDecodeError;
use super::ids::TrackKind;
use super::msgpack::{Reader, put_bin, put_f64, put_map_len, put_str, put_u8};
use super::rtc::SessionDescription;

/// Largest DC message accepted by [`DcMessage::decode`] (our cap; rtcd's WS uses the same figure).
pub const MAX_DC_MESSAGE_LEN: usize = 1 << 20;
/// Largest inflated SDP accepted, against zip bombs.
pub const MAX_SDP_INFLATED_LEN: usize = 1 << 20;

/// DC message type numbers.
pub mod types {
    pub const PING: u8 = 1;
    pub const PONG: u8 = 2;
    pub const SDP: u8 = 3;
    pub const LOSS_RATE: u8 = 4;
    pub const ROUND_TRIP_TIME: u8 = 5;
    pub const JITTER: u8 = 6;
    pub const LOCK: u8 = 7;
    pub const UNLOCK: u8 = 8;
    pub const MEDIA_MAP: u8 = 9;
}

/// One entry of a media map: what a transceiver (by mid) carries and who sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    pub kind: TrackKind,
    /// The sending session id.
    pub sender_id: String,
}

/// mid → track info, sent by rtcd before every server offer.
pub type MediaMap = BTreeMap<String, TrackInfo>;

/// A binary data-channel message.
#[derive(Debug, Clone, PartialEq)]
pub enum DcMessage {
    Ping,
    Pong,
    /// An offer or answer when the session signals over the DC.
    Sdp(SessionDescription),
    LossRate(f64),
    RoundTripTime(f64),
    Jitter(f64),
    /// Client → rtcd: ask for the signalling lock.
    LockRequest,
    /// rtcd → client: whether the lock was taken.
    LockResponse(bool),
    /// Client → rtcd: release the lock.
    Unlock,
    MediaMap(MediaMap),
}

impl DcMessage {
    /// The type number.
    pub fn type_number(&self) -> u8 {
        match self {
            DcMessage::Ping => types::PING,
            DcMessage::Pong => types::PONG,
            DcMessage::Sdp(_) => types::SDP,
            DcMessage::LossRate(_) => types::LOSS_RATE,
            DcMessage::RoundTripTime(_) => types::ROUND_TRIP_TIME,
            DcMessage::Jitter(_) => types::JITTER,
            DcMessage::LockRequest | DcMessage::LockResponse(_) => types::LOCK,
            DcMessage::Unlock => types::UNLOCK,
            DcMessage::MediaMap(_) => types::MEDIA_MAP,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        self.encode_into(&mut out);
        out
    }

    /// Appends the message bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        put_u8(out, self.type_number());
        match self {
            DcMessage::Ping | DcMessage::Pong | DcMessage::LockRequest | DcMessage::Unlock => {}
            DcMessage::Sdp(sdp) => put_bin(out, &compress(&sdp.to_json())),
            DcMessage::LossRate(v) | DcMessage::RoundTripTime(v) | DcMessage::Jitter(v) => {
                put_f64(out, *v)
            }
            DcMessage::LockResponse(v) => super::msgpack::put_bool(out, *v),
            DcMessage::MediaMap(map) => {
                put_map_len(out, map.len());
                for (mid, info) in map {
                    put_str(out, mid);
                    put_map_len(out, 2);
                    put_str(out, "type");
                    put_str(out, info.kind.as_str());
                    put_str(out, "sender_id");
                    put_str(out, &info.sender_id);
                }
            }
        }
    }

    /// Decodes one binary DC message; see the module docs for what is accepted.
    pub fn decode(msg: &[u8]) -> Result<Self, DcDecodeError> {
        if msg.len() > MAX_DC_MESSAGE_LEN {
            return Err(DcDecodeError::TooLarge {
                len: msg.len(),
                limit: MAX_DC_MESSAGE_LEN,
            });
        }
        let mut r = Reader::new(msg);
        let t = r.int().map_err(DcDecodeError::at("message type"))?;
        let number = u8::try_from(t).map_err(|_| DcDecodeError::UnknownType(t))?;
        let float =
            |r: &mut Reader<'_>| r.f64_lenient().map_err(DcDecodeError::at("float payload"));
        let out = match number {
            types::PING => DcMessage::Ping,
            types::PONG => DcMessage::Pong,
            types::SDP => {
                let compressed = r.bin().map_err(DcDecodeError::at("sdp payload"))?;
                let json = inflate(compressed)?;
                DcMessage::Sdp(SessionDescription::from_json(&json).map_err(DcDecodeError::Json)?)
            }
            types::LOSS_RATE => DcMessage::LossRate(float(&mut r)?),
            types::ROUND_TRIP_TIME => DcMessage::RoundTripTime(float(&mut r)?),
            types::JITTER => DcMessage::Jitter(float(&mut r)?),
            types::LOCK if r.is_at_end() => DcMessage::LockRequest,
            types::LOCK => {
                DcMessage::LockResponse(r.bool().map_err(DcDecodeError::at("lock payload"))?)
            }
            types::UNLOCK => DcMessage::Unlock,
            types::MEDIA_MAP => DcMessage::MediaMap(read_media_map(&mut r)?),
            _ => return Err(DcDecodeError::UnknownType(t)),
        };
        if !r.is_at_end() {
            return Err(DcDecodeError::TrailingBytes {
                count: r.remaining(),
            });
        }
        Ok(out)
    }
}

fn read_media_map(r: &mut Reader<'_>) -> Result<MediaMap, DcDecodeError> {
    let n = r.map_len().map_err(DcDecodeError::at("media map"))?;
    let mut map = MediaMap::new();
    for _ in 0..n {
        let mid = r
            .str()
            .map_err(DcDecodeError::at("media map mid"))?
            .to_owned();
        let fields = r.map_len().map_err(DcDecodeError::at("track info"))?;
        let (mut kind, mut sender_id) = (None, None);
        for _ in 0..fields {
            match r.str_bytes().map_err(DcDecodeError::at("track info key"))? {
                b"type" => {
                    let s = r.str().map_err(DcDecodeError::at("track type"))?;
                    kind = Some(
                        TrackKind::parse(s)
                            .ok_or_else(|| DcDecodeError::UnknownTrackKind(s.to_owned()))?,
                    );
                }
                b"sender_id" => {
                    sender_id = Some(r.str().map_err(DcDecodeError::at("sender id"))?.to_owned())
                }
                _ => r
                    .skip_value()
                    .map_err(DcDecodeError::at("track info value"))?,
            }
        }
        let kind = kind.ok_or_else(|| DcDecodeError::MissingKey {
            mid: mid.clone(),
            key: "type",
        })?;
        let sender_id = sender_id.ok_or_else(|| DcDecodeError::MissingKey {
            mid: mid.clone(),
            key: "sender_id",
        })?;
        map.insert(mid, TrackInfo { kind, sender_id });
    }
    Ok(map)
}

/// zlib at the default level, as Go's `zlib.NewWriter` and fflate's `zlibSync` write it.
pub fn compress(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = ZlibEncoder::new(
        Vec::with_capacity(data.len() / 2 + 16),
        Compression::default(),
    );
    // Invariant: writing into a Vec-backed encoder cannot fail.
    enc.write_all(data).expect("zlib into a Vec cannot fail");
    enc.finish().expect("zlib into a Vec cannot fail")
}

/// Inflates a complete zlib stream (checksum verified), refusing more than [`MAX_SDP_INFLATED_LEN`].
pub fn inflate(compressed: &[u8]) -> Result<Vec<u8>, DcDecodeError> {
    let mut out = Vec::new();
    let limit = MAX_SDP_INFLATED_LEN as u64;
    ZlibDecoder::new(compressed)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(DcDecodeError::Zlib)?;
    if out.len() as u64 > limit {
        return Err(DcDecodeError::InflatedTooLarge {
            limit: MAX_SDP_INFLATED_LEN,
        });
    }
    Ok(out)
}

/// The legacy TEXT data-channel messages: `ping` from old mobile clients, `pong` from rtcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyText {
    Ping,
    Pong,
}

impl LegacyText {
    pub fn as_str(self) -> &'static str {
        match self {
            LegacyText::Ping => "ping",
            LegacyText::Pong => "pong",
        }
    }

    /// Recognises the exact bytes `ping` or `pong`; anything else is `None` (and should go to
    /// [`DcMessage::decode`] if it arrived as binary).
    pub fn parse(data: &[u8]) -> Option<Self> {
        match data {
            b"ping" => Some(LegacyText::Ping),
            b"pong" => Some(LegacyText::Pong),
            _ => None,
        }
    }

    /// The answer rtcd gives.
    pub fn reply(self) -> Option<Self> {
        (self == LegacyText::Ping).then_some(LegacyText::Pong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflate_accepts_exactly_the_cap() {
        let at_cap = compress(&vec![b'a'; MAX_SDP_INFLATED_LEN]);
        assert_eq!(inflate(&at_cap).unwrap().len(), MAX_SDP_INFLATED_LEN);
        let over = compress(&vec![b'a'; MAX_SDP_INFLATED_LEN + 1]);
        assert!(matches!(
            inflate(&over),
            Err(DcDecodeError::InflatedTooLarge { .. })
        ));
    }

    #[test]
    fn type_is_written_as_uint8_with_marker() {
        for msg in [
            DcMessage::Ping,
            DcMessage::LockRequest,
            DcMessage::MediaMap(MediaMap::new()),
        ] {
            assert_eq!(msg.encode()[..2], [0xcc, msg.type_number()]);
        }
    }
}
