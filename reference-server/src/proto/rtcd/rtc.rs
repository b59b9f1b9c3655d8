//! The `rtc.Message` carried by `rtc` and `vad` WebSocket frames (rtcd.md §2.2) and the JSON payloads
//! in its `data`.
//!
//! On the wire it is a msgpack map with str keys in this order: `group_id`, `user_id`, `session_id`,
//! `call_id` (strs), `type` (int, most compact form) and `data` (bin, omitted when empty). The plugin
//! fills only `session_id`, `type` and `data` (the other ids are empty strings); rtcd fills all six.
//!
//! Decoding follows Go's struct decoding where a real peer could differ: keys in any order, unknown
//! keys skipped, missing string keys read as `""`, `data` accepted as bin, str or nil, `type` as any
//! integer encoding. Stricter than Go: a missing `type` or one outside 1–10 is an error.

use serde::{Deserialize, Serialize};

use super::error::{MsgpackError, PayloadError, WsDecodeError};
use super::msgpack::{Reader, put_bin, put_map_len, put_str, put_uint};

/// `rtc.MessageType`, numbered from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RtcType {
    /// ICE candidate: bare [`IceCandidateInit`] JSON to rtcd, [`ServerCandidate`] JSON from rtcd.
    Ice = 1,
    /// SDP offer or answer: plain [`SessionDescription`] JSON, both ways.
    Sdp = 2,
    /// Mute (plugin → rtcd, no data): rtcd drops the voice packets and resets VAD.
    Mute = 3,
    /// Unmute (plugin → rtcd, no data).
    Unmute = 4,
    /// Screen share starts (plugin → rtcd): `{"screenStreamID": ...}`, sent before the track.
    ScreenOn = 5,
    /// Screen share stops (plugin → rtcd, no data).
    ScreenOff = 6,
    /// Voice activity starts (rtcd → plugin, in a `vad` frame, no data).
    VoiceOn = 7,
    /// Voice activity stops (rtcd → plugin, in a `vad` frame, no data).
    VoiceOff = 8,
    /// Camera video starts (plugin → rtcd): `{"videoStreamID": ...}`.
    VideoOn = 9,
    /// Camera video stops (plugin → rtcd, no data); rtcd ignores it.
    VideoOff = 10,
}

impl RtcType {
    pub const ALL: [RtcType; 10] = [
        RtcType::Ice,
        RtcType::Sdp,
        RtcType::Mute,
        RtcType::Unmute,
        RtcType::ScreenOn,
        RtcType::ScreenOff,
        RtcType::VoiceOn,
        RtcType::VoiceOff,
        RtcType::VideoOn,
        RtcType::VideoOff,
    ];

    pub fn from_int(value: i128) -> Option<Self> {
        RtcType::ALL.into_iter().find(|t| *t as i128 == value)
    }

    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// An `rtc.Message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcMessage {
    pub group_id: String,
    pub user_id: String,
    pub session_id: String,
    pub call_id: String,
    pub msg_type: RtcType,
    /// UTF-8 JSON for the types that carry a payload, else empty.
    pub data: Vec<u8>,
}

impl RtcMessage {
    /// A message as the plugin sends it: only `session_id`, `type` and `data` set.
    pub fn to_rtcd(session_id: impl Into<String>, msg_type: RtcType, data: Vec<u8>) -> Self {
        RtcMessage {
            group_id: String::new(),
            user_id: String::new(),
            session_id: session_id.into(),
            call_id: String::new(),
            msg_type,
            data,
        }
    }

    /// Plugin → rtcd SDP (offer or answer), plain JSON.
    pub fn sdp(session_id: impl Into<String>, sdp: &SessionDescription) -> Self {
        RtcMessage::to_rtcd(session_id, RtcType::Sdp, to_json(sdp))
    }

    /// Plugin → rtcd ICE candidate, bare ICECandidateInit JSON.
    pub fn ice(session_id: impl Into<String>, candidate: &IceCandidateInit) -> Self {
        RtcMessage::to_rtcd(session_id, RtcType::Ice, to_json(candidate))
    }

    /// Plugin → rtcd screen-on with the screen MediaStream id.
    pub fn screen_on(session_id: impl Into<String>, screen_stream_id: &str) -> Self {
        RtcMessage::to_rtcd(
            session_id,
            RtcType::ScreenOn,
            to_json(&StreamIdPayload::screen(screen_stream_id)),
        )
    }

    /// Plugin → rtcd video-on with the camera MediaStream id.
    pub fn video_on(session_id: impl Into<String>, video_stream_id: &str) -> Self {
        RtcMessage::to_rtcd(
            session_id,
            RtcType::VideoOn,
            to_json(&StreamIdPayload::video(video_stream_id)),
        )
    }

    /// A payload-less message (mute, unmute, screen-off, video-off, voice-on/off).
    pub fn signal(session_id: impl Into<String>, msg_type: RtcType) -> Self {
        RtcMessage::to_rtcd(session_id, msg_type, Vec::new())
    }

    fn expect_type(&self, t: RtcType) -> Result<(), PayloadError> {
        if self.msg_type == t {
            Ok(())
        } else {
            Err(PayloadError::WrongMessageType {
                actual: self.msg_type.as_u8(),
            })
        }
    }

    /// The session description of an SDP message.
    pub fn parse_sdp(&self) -> Result<SessionDescription, PayloadError> {
        self.expect_type(RtcType::Sdp)?;
        Ok(serde_json::from_slice(&self.data)?)
    }

    /// The bare candidate of a plugin → rtcd ICE message.
    pub fn parse_ice_candidate(&self) -> Result<IceCandidateInit, PayloadError> {
        self.expect_type(RtcType::Ice)?;
        Ok(serde_json::from_slice(&self.data)?)
    }

    /// The candidate inside an rtcd → plugin ICE message's `{"type":"candidate",...}` wrapper.
    pub fn parse_server_candidate(&self) -> Result<IceCandidateInit, PayloadError> {
        self.expect_type(RtcType::Ice)?;
        ServerCandidate::parse(&self.data)
    }

    /// The `screenStreamID` of a screen-on message (`""` when the key is absent, as in rtcd).
    pub fn parse_screen_on(&self) -> Result<String, PayloadError> {
        self.expect_type(RtcType::ScreenOn)?;
        Ok(StreamIdPayload::parse(&self.data)?
            .screen_stream_id
            .unwrap_or_default())
    }

    /// The `videoStreamID` of a video-on message (`""` when the key is absent, as in rtcd).
    pub fn parse_video_on(&self) -> Result<String, PayloadError> {
        self.expect_type(RtcType::VideoOn)?;
        Ok(StreamIdPayload::parse(&self.data)?
            .video_stream_id
            .unwrap_or_default())
    }

    /// Appends the msgpack map (see the module docs) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        put_map_len(out, if self.data.is_empty() { 5 } else { 6 });
        for (key, value) in [
            ("group_id", &self.group_id),
            ("user_id", &self.user_id),
            ("session_id", &self.session_id),
            ("call_id", &self.call_id),
        ] {
            put_str(out, key);
            put_str(out, value);
        }
        put_str(out, "type");
        put_uint(out, u64::from(self.msg_type.as_u8()));
        if !self.data.is_empty() {
            put_str(out, "data");
            put_bin(out, &self.data);
        }
    }

    /// Reads the msgpack map from `r`.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, WsDecodeError> {
        let n = r.map_len().map_err(WsDecodeError::at("rtc message"))?;
        let mut msg_type = None;
        let mut m = RtcMessage::to_rtcd("", RtcType::Ice, Vec::new());
        for _ in 0..n {
            let key = r
                .str_bytes()
                .map_err(WsDecodeError::at("rtc message key"))?;
            let target = match key {
                b"group_id" => &mut m.group_id,
                b"user_id" => &mut m.user_id,
                b"session_id" => &mut m.session_id,
                b"call_id" => &mut m.call_id,
                b"type" => {
                    let v = r.int().map_err(WsDecodeError::at("rtc message type"))?;
                    msg_type = Some(RtcType::from_int(v).ok_or(WsDecodeError::UnknownRtcType(v))?);
                    continue;
                }
                b"data" => {
                    m.data = r
                        .bytes_lenient()
                        .map_err(WsDecodeError::at("rtc message data"))?
                        .to_vec();
                    continue;
                }
                _ => {
                    r.skip_value()
                        .map_err(WsDecodeError::at("rtc message value"))?;
                    continue;
                }
            };
            *target = read_str_or_nil(r)
                .map_err(WsDecodeError::at("rtc message id"))?
                .to_owned();
        }
        m.msg_type = msg_type.ok_or(WsDecodeError::MissingKey { key: "type" })?;
        Ok(m)
    }
}

/// Go reads a nil into a string field as `""`.
fn read_str_or_nil<'a>(r: &mut Reader<'a>) -> Result<&'a str, MsgpackError> {
    if r.peek()? == rmp::Marker::Null {
        r.skip_value()?;
        return Ok("");
    }
    r.str()
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Invariant: the payload types have string keys and no floats, so serialising cannot fail.
    serde_json::to_vec(value).expect("rtc payloads always serialise")
}

/// `type` of a [`SessionDescription`]; pion accepts exactly these four strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpType {
    Offer,
    Pranswer,
    Answer,
    Rollback,
}

/// A WebRTC session description: `{"type":"offer"|"answer"|...,"sdp":"v=0..."}` (that key order).
/// A missing `sdp` reads as `""`, as in pion; `type` is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    #[serde(rename = "type")]
    pub sdp_type: SdpType,
    #[serde(default)]
    pub sdp: String,
}

impl SessionDescription {
    pub fn offer(sdp: impl Into<String>) -> Self {
        SessionDescription {
            sdp_type: SdpType::Offer,
            sdp: sdp.into(),
        }
    }

    pub fn answer(sdp: impl Into<String>) -> Self {
        SessionDescription {
            sdp_type: SdpType::Answer,
            sdp: sdp.into(),
        }
    }

    /// Parses the JSON form.
    pub fn from_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }

    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }
}

/// A JSON ICECandidateInit: `{"candidate":..., "sdpMid":..., "sdpMLineIndex":..., "usernameFragment":...}`.
/// The three optional fields are nullable and written as `null` when absent (pion never omits them);
/// absent keys read as `None`. An empty `candidate` (end of candidates) is legal and rtcd ignores it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IceCandidateInit {
    #[serde(default)]
    pub candidate: String,
    #[serde(rename = "sdpMid", default)]
    pub sdp_mid: Option<String>,
    #[serde(rename = "sdpMLineIndex", default)]
    pub sdp_mline_index: Option<u16>,
    #[serde(rename = "usernameFragment", default)]
    pub username_fragment: Option<String>,
}

/// rtcd's outgoing ICE payload `{"candidate":{ICECandidateInit},"type":"candidate"}`. Go marshals it
/// from a map, so `candidate` comes first; rtcd's candidates have `usernameFragment: null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerCandidate {
    pub candidate: IceCandidateInit,
    #[serde(rename = "type")]
    pub kind: String,
}

impl ServerCandidate {
    /// Wraps a candidate the way rtcd sends it.
    pub fn wrap(candidate: IceCandidateInit) -> Self {
        ServerCandidate {
            candidate,
            kind: "candidate".into(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }

    /// Unwraps the candidate, checking the wrapper's `type`.
    pub fn parse(json: &[u8]) -> Result<IceCandidateInit, PayloadError> {
        let wrapped: ServerCandidate = serde_json::from_slice(json)?;
        if wrapped.kind != "candidate" {
            return Err(PayloadError::NotCandidate(wrapped.kind));
        }
        Ok(wrapped.candidate)
    }
}

/// The screen-on / video-on payload. rtcd reads it as a JSON object of strings (a non-string value
/// is an error) and takes the one key it needs; exactly one is set when encoding.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamIdPayload {
    #[serde(
        rename = "screenStreamID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub screen_stream_id: Option<String>,
    #[serde(
        rename = "videoStreamID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub video_stream_id: Option<String>,
}

impl StreamIdPayload {
    pub fn screen(id: &str) -> Self {
        StreamIdPayload {
            screen_stream_id: Some(id.to_owned()),
            video_stream_id: None,
        }
    }

    pub fn video(id: &str) -> Self {
        StreamIdPayload {
            screen_stream_id: None,
            video_stream_id: Some(id.to_owned()),
        }
    }

    /// Parses with rtcd's rule: an object whose values are all strings.
    pub fn parse(json: &[u8]) -> Result<Self, serde_json::Error> {
        let map: std::collections::HashMap<String, String> = serde_json::from_slice(json)?;
        Ok(StreamIdPayload {
            screen_stream_id: map.get("screenStreamID").cloned(),
            video_stream_id: map.get("videoStreamID").cloned(),
        })
    }

    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtc_types_are_numbered_from_one() {
        assert_eq!(RtcType::from_int(0), None);
        for (i, t) in RtcType::ALL.into_iter().enumerate() {
            assert_eq!(t.as_u8() as usize, i + 1);
            assert_eq!(RtcType::from_int(i as i128 + 1), Some(t));
        }
        assert_eq!(RtcType::from_int(11), None);
    }

    #[test]
    fn candidate_nullable_fields_are_written_as_null() {
        assert_eq!(
            String::from_utf8(to_json(&IceCandidateInit::default())).unwrap(),
            r#"{"candidate":"","sdpMid":null,"sdpMLineIndex":null,"usernameFragment":null}"#
        );
    }
}
