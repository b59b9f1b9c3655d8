//! The signalling vocabulary of the SFU core: what the WS layer feeds in and what it sends out.
//!
//! These are domain values, not frames. The I/O layer turns the plugin's msgpack frames into
//! [`SignalIn`] and [`SignalOut`] back into frames, so the core never sees msgpack framing.

pub use crate::proto::rtcd::http::SessionProps;
pub use crate::proto::rtcd::{RtcMessage, RtcType};

/// Identifies one plugin WebSocket connection (rtcd's `connID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A `join` from the plugin. `group_id` is the authenticated clientID of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    pub group_id: String,
    pub call_id: String,
    pub user_id: String,
    pub session_id: String,
    /// The join props as received, echoed by `GET /calls/{callID}/sessions`.
    pub props: SessionProps,
}

/// Signalling input from a plugin connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalIn {
    Join(Join),
    Leave {
        session_id: String,
    },
    Reconnect {
        session_id: String,
    },
    /// An `rtc` message; rtcd routes it by `session_id` alone.
    Rtc {
        session_id: String,
        msg_type: u64,
        data: Vec<u8>,
    },
}

/// A message for one plugin connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalOut {
    /// `"rtc"`: ICE (type 1) or SDP (type 2).
    Rtc(RtcMessage),
    /// `"vad"`: VoiceOn (7) / VoiceOff (8), no data.
    Vad(RtcMessage),
    /// `"close"`: the session is gone.
    Close { session_id: String },
}
