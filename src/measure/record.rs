//! Typed measurement records: what the participant engine reports, one value per event.
//!
//! Every time is an offset from the run's start on the run clock (the engine converts its `Instant`s
//! once), and every latency is measured from the *intended* time of the thing measured: the scheduled
//! join time for join phases, the paced send time for media packets. A harness that falls behind
//! therefore shows up as latency instead of silently stretching its schedule (coordinated omission).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The kind of media track a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// Opus voice.
    Audio,
    /// VP8 screen share (any simulcast layer).
    Screen,
    /// VP8 camera video.
    Video,
}

impl TrackKind {
    /// Every kind, in index order.
    pub const ALL: [TrackKind; 3] = [TrackKind::Audio, TrackKind::Screen, TrackKind::Video];

    /// Dense index for per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Name used in files (`audio`, `screen`, `video`).
    pub fn name(self) -> &'static str {
        match self {
            TrackKind::Audio => "audio",
            TrackKind::Screen => "screen",
            TrackKind::Video => "video",
        }
    }
}

/// A step of joining a call, in the order a session passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinPhase {
    /// The join message was handed to the plugin connection.
    Sent,
    /// The session's first SDP offer (with the data channel) was handed to the plugin connection.
    /// rtcd never offers first: the client's offer opens the session and rtcd answers it
    /// (rtcd.md §2.3 steps 3–4), so this follows `sent` by the time the harness takes to build
    /// the offer; the SFU's own offers come later, one per track it adds.
    Offer,
    /// The SFU's SDP answer to that offer arrived and was applied.
    Answer,
    /// ICE reached connected (DTLS follows on the same path).
    IceConnected,
    /// The data channel opened.
    DcOpen,
    /// The first packet of every track the session expects has arrived.
    FirstMedia,
}

impl JoinPhase {
    /// Every phase, in order.
    pub const ALL: [JoinPhase; 6] = [
        JoinPhase::Sent,
        JoinPhase::Offer,
        JoinPhase::Answer,
        JoinPhase::IceConnected,
        JoinPhase::DcOpen,
        JoinPhase::FirstMedia,
    ];

    /// Dense index for per-phase arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Name used in files (`sent`, `offer`, `answer`, `ice_connected`, `dc_open`, `first_media`).
    pub fn name(self) -> &'static str {
        match self {
            JoinPhase::Sent => "sent",
            JoinPhase::Offer => "offer",
            JoinPhase::Answer => "answer",
            JoinPhase::IceConnected => "ice_connected",
            JoinPhase::DcOpen => "dc_open",
            JoinPhase::FirstMedia => "first_media",
        }
    }
}

/// One measurement event. Cheap to build (no allocation); a worker hands it to its own
/// [`Recorder`](super::Recorder), never across threads per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// A session reached `phase`; the latency is `at − scheduled` (scheduled = the plan's join time).
    Join {
        phase: JoinPhase,
        scheduled: Duration,
        at: Duration,
    },
    /// A session gave up while waiting for `phase` (the first phase it never reached).
    JoinFailed { phase: JoinPhase },
    /// A session is connected (counts toward the live-session gauge).
    SessionUp,
    /// A connected session left (planned or not).
    SessionDown,
    /// A session dropped out without a planned leave.
    Disconnect,
    /// One received media packet whose sender stamped its *intended* (paced) send time.
    Latency {
        kind: TrackKind,
        intended_send: Duration,
        received: Duration,
    },
    /// A stream's current RFC 3550 interarrival jitter, sampled once a second per received stream.
    Jitter { kind: TrackKind, jitter: Duration },
    /// One received stream's loss over the last second (or its lifetime): `lost` of `expected`
    /// packets. Feeds the per-stream loss distribution; run-wide totals come from
    /// [`HotCounters::media_quality`](super::HotCounters::media_quality).
    StreamLoss {
        kind: TrackKind,
        expected: u64,
        lost: u64,
    },
    /// A video freeze: no frame for `gap` (> 500 ms) on a received video or screen stream.
    Freeze { kind: TrackKind, gap: Duration },
    /// A renegotiation (new offer → answer applied) took `completed − started`.
    Renegotiation {
        started: Duration,
        completed: Duration,
    },
    /// A server offer arrived at `received` and the harness handed its answer to the plugin
    /// connection at `answered` (the harness's share of a server-initiated renegotiation).
    ServerOffer {
        received: Duration,
        answered: Duration,
    },
    /// A voice-activity event for a speaker arrived `observed − intended` after the speech started
    /// (`intended`: the send instant of the speaker's packet that turned voice on).
    Vad {
        intended: Duration,
        observed: Duration,
    },
    /// A recording or transcription job went from submitted to running.
    JobStarted {
        submitted: Duration,
        started: Duration,
    },
    /// A job that had started ended (`succeeded: false` for a failed or lost job).
    JobEnded {
        submitted: Duration,
        ended: Duration,
        succeeded: bool,
    },
    /// How late an event-loop wakeup was versus its deadline (self-health).
    LoopLag { lag: Duration },
    /// How far a paced packet's actual send time was from its intended send time (self-health).
    PacingError { error: Duration },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_dense_and_names_unique() {
        for (i, k) in TrackKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        for (i, p) in JoinPhase::ALL.iter().enumerate() {
            assert_eq!(p.index(), i);
        }
        let mut names: Vec<_> = JoinPhase::ALL.iter().map(|p| p.name()).collect();
        names.dedup();
        assert_eq!(names.len(), JoinPhase::ALL.len());
    }
}
