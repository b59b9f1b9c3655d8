//! The typed errors of the rtcd decoders, one enum per operation.
//!
//! Every decoder in [`super`] maps malformed input to one of these; none of them panics. The variants
//! name the part of the input that was wrong so a log line is enough to find it.

/// A msgpack value could not be read. `field` in the wrapping errors says which value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgpackError {
    /// The input ends inside a value, or a length prefix claims more bytes than are left.
    #[error("msgpack data ends early")]
    Truncated,
    /// A value of another msgpack family than the format requires.
    #[error("expected msgpack {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    /// A msgpack `str` that is not UTF-8.
    #[error("msgpack string is not valid utf-8")]
    InvalidUtf8,
}

/// Why a WebSocket frame (plugin ⇄ rtcd) is not a valid rtcd message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsDecodeError {
    /// Longer than rtcd's 1 MiB read limit ([`super::ws::MAX_FRAME_LEN`]).
    #[error("frame of {len} bytes exceeds the {limit} byte limit")]
    FrameTooLarge { len: usize, limit: usize },
    /// A value could not be read as the format requires.
    #[error("bad {field}: {source}")]
    Msgpack {
        field: &'static str,
        #[source]
        source: MsgpackError,
    },
    /// Bytes left over after the data value.
    #[error("{count} trailing bytes after the message")]
    TrailingBytes { count: usize },
    /// A `leave`, `reconnect`, `hello` or `close` map has a value that is not a msgpack str.
    #[error("value of key {key:?} is not a string")]
    NonStringValue { key: String },
    /// A required key is absent.
    #[error("missing key {key:?}")]
    MissingKey { key: &'static str },
    /// The type string is none of the seven rtcd message types.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// The `type` of an `rtc`/`vad` message is not 1–10.
    #[error("unknown rtc message type {0}")]
    UnknownRtcType(i128),
}

impl WsDecodeError {
    pub(crate) fn at(field: &'static str) -> impl FnOnce(MsgpackError) -> Self {
        move |source| WsDecodeError::Msgpack { field, source }
    }
}

/// Why a data-channel message is not a valid rtcd DC message.
#[derive(Debug, thiserror::Error)]
pub enum DcDecodeError {
    /// Longer than [`super::dc::MAX_DC_MESSAGE_LEN`].
    #[error("message of {len} bytes exceeds the {limit} byte limit")]
    TooLarge { len: usize, limit: usize },
    /// A value could not be read as the format requires.
    #[error("bad {field}: {source}")]
    Msgpack {
        field: &'static str,
        #[source]
        source: MsgpackError,
    },
    /// Bytes left over after the payload (or after the type, for payload-less types).
    #[error("{count} trailing bytes after the message")]
    TrailingBytes { count: usize },
    /// The type is not 1–9.
    #[error("unknown dc message type {0}")]
    UnknownType(i128),
    /// The SDP payload is not a complete, valid zlib stream.
    #[error("sdp payload is not valid zlib")]
    Zlib(#[source] std::io::Error),
    /// The SDP payload inflates to more than [`super::dc::MAX_SDP_INFLATED_LEN`].
    #[error("sdp payload inflates beyond {limit} bytes")]
    InflatedTooLarge { limit: usize },
    /// The inflated SDP payload is not a JSON session description.
    #[error("sdp payload is not a json session description")]
    Json(#[source] serde_json::Error),
    /// A media-map entry lacks a key.
    #[error("media map entry {mid:?} misses key {key:?}")]
    MissingKey { mid: String, key: &'static str },
    /// A media-map entry names a track type other than voice, screen, screen-audio, video.
    #[error("unknown track type {0:?}")]
    UnknownTrackKind(String),
}

impl DcDecodeError {
    pub(crate) fn at(field: &'static str) -> impl FnOnce(MsgpackError) -> Self {
        move |source| DcDecodeError::Msgpack { field, source }
    }
}

/// Why the JSON in an `rtc` message's `data` is not the payload its type carries.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The message type carries another payload (e.g. `parse_sdp` on an ICE message).
    #[error("rtc message of type {actual} does not carry this payload")]
    WrongMessageType { actual: u8 },
    /// Not valid JSON of the expected shape.
    #[error("payload is not the expected json")]
    Json(#[from] serde_json::Error),
    /// A server candidate whose wrapper `type` is not `"candidate"`.
    #[error("candidate wrapper has type {0:?}, expected \"candidate\"")]
    NotCandidate(String),
}

/// Why a string is not a track id `<type>_<sessionID>_<suffix>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackIdError {
    /// Not exactly three `_`-separated fields.
    #[error("track id has {count} fields, expected 3")]
    FieldCount { count: usize },
    /// The first field is not voice, screen, screen-audio or video.
    #[error("unknown track type {0:?}")]
    UnknownKind(String),
    /// The session id field is empty.
    #[error("track id has an empty session id")]
    EmptySessionId,
    /// The random suffix is empty.
    #[error("track id has an empty suffix")]
    EmptySuffix,
}

/// Why a string is not a Mattermost-style 26-character id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not 26 bytes long.
    #[error("id has {len} bytes, expected 26")]
    Length { len: usize },
    /// A character outside `ybndrfg8ejkmcpqxot1uwisza345h769`.
    #[error("id has {ch:?} at {at}, outside the id alphabet")]
    BadChar { ch: char, at: usize },
    /// The last character carries non-zero padding bits, so no 16-byte value encodes to it.
    #[error("id's last character {0:?} is not a canonical encoding")]
    NonCanonicalTail(char),
}
