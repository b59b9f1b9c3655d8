//! The signalling vocabulary of the SFU core: what the WS layer feeds in and what it sends out.
//!
//! These are domain values, not frames. The I/O layer turns the plugin's msgpack frames into
//! [`SignalIn`] and [`SignalOut`] back into frames, so the core never sees msgpack framing.

/// Identifies one plugin WebSocket connection (rtcd's `connID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// rtc message types (rtcd `rtc.MessageType`, numbered from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RtcType {
    Ice = 1,
    Sdp = 2,
    Mute = 3,
    Unmute = 4,
    ScreenOn = 5,
    ScreenOff = 6,
    VoiceOn = 7,
    VoiceOff = 8,
    VideoOn = 9,
    VideoOff = 10,
}

impl RtcType {
    /// The type for a wire number; `None` for numbers rtcd does not define.
    pub fn from_number(n: u64) -> Option<RtcType> {
        Some(match n {
            1 => RtcType::Ice,
            2 => RtcType::Sdp,
            3 => RtcType::Mute,
            4 => RtcType::Unmute,
            5 => RtcType::ScreenOn,
            6 => RtcType::ScreenOff,
            7 => RtcType::VoiceOn,
            8 => RtcType::VoiceOff,
            9 => RtcType::VideoOn,
            10 => RtcType::VideoOff,
            _ => return None,
        })
    }

    pub fn number(self) -> u8 {
        self as u8
    }
}

/// A `join` from the plugin. `group_id` is the authenticated clientID of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    pub group_id: String,
    pub call_id: String,
    pub user_id: String,
    pub session_id: String,
    pub channel_id: String,
    pub av1_support: bool,
    pub dc_signaling: bool,
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

/// An `rtc` (or `vad`) message towards the plugin, with all six fields populated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcOut {
    pub group_id: String,
    pub user_id: String,
    pub session_id: String,
    pub call_id: String,
    pub msg_type: RtcType,
    /// UTF-8 JSON; empty for VAD messages.
    pub data: Vec<u8>,
}

/// A message for one plugin connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalOut {
    /// `"rtc"`: ICE (type 1) or SDP (type 2).
    Rtc(RtcOut),
    /// `"vad"`: VoiceOn (7) / VoiceOff (8), no data.
    Vad(RtcOut),
    /// `"close"`: the session is gone.
    Close { session_id: String },
}
