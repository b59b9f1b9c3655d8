//! rtcd's wire formats (rtcd.md §1.3–1.4, §2.1–2.6): HTTP bodies, the plugin ⇄ rtcd WebSocket frames,
//! the `rtc` message payloads, the data-channel messages and the id formats.
//!
//! Shared by the harness (which plays the Calls plugin and the end users) and the reference SFU (which
//! plays rtcd). Every decoder takes untrusted bytes and returns a typed error from [`error`]; none
//! panics, none allocates from an untrusted length prefix. Encoders are infallible and canonical:
//! they write what rtcd writes, except where Go's output is itself random (map key order).
//!
//! The `Authorization` header lives in [`super::auth`], shared with the offloader.

pub mod dc;
pub mod error;
pub mod http;
pub mod ids;
mod msgpack;
pub mod rtc;
pub mod ws;

pub use dc::{DcMessage, LegacyText, MediaMap, TrackInfo};
pub use error::{DcDecodeError, IdError, MsgpackError, PayloadError, TrackIdError, WsDecodeError};
pub use ids::{TrackId, TrackKind};
pub use rtc::{
    IceCandidateInit, RtcMessage, RtcType, SdpType, ServerCandidate, SessionDescription,
    StreamIdPayload,
};
pub use ws::{JoinData, WsMessage};
