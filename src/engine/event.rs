//! What a participant reports for measurement: connection milestones, negotiations, remote tracks and
//! one small record per received RTP packet.
//!
//! [`RtpInfo`] is `Copy` and holds no allocation, so reporting a packet costs nothing beyond the event
//! itself; the payload fingerprint lets a measurement match a received packet to the one a publisher
//! in the same agent sent (the SFU rewrites the SSRC, for video also sequence and timestamp, never the payload bytes),
//! and for voice the participant fills in the send instant of the same packet (`sent`), from which
//! one-way latency follows.

use std::time::{Duration, Instant};

use callsref::proto::rtcd::ids::{TrackId, TrackKind};
use str0m::media::{MediaKind, Mid, Rid};
use str0m::rtp::{RtpPacket, Ssrc};

use super::negotiation::LocalChange;
use super::publish::Role;

/// A remote track as the participant learned it from rtcd's offer and media map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTrack {
    pub mid: Mid,
    pub media: MediaKind,
    /// From the DC media map, or else from the track id.
    pub kind: Option<TrackKind>,
    /// Sending session id.
    pub sender: Option<String>,
    /// The parsed `<type>_<sessionID>_<suffix>` track id, when the msid carried one.
    pub track_id: Option<TrackId>,
    /// RTP packets received on it so far.
    pub packets: u64,
}

/// Header facts of one received RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpInfo {
    pub mid: Option<Mid>,
    pub kind: Option<TrackKind>,
    pub ssrc: Ssrc,
    /// Extended sequence number.
    pub seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub payload_len: usize,
    /// FNV-1a over the payload length and its first 32 bytes.
    pub fingerprint: u64,
    /// `ssrc-audio-level` (negative dBov) when present; rtcd keeps audio extensions.
    pub audio_level: Option<i8>,
    /// When the datagram carrying it was handed to the participant.
    pub arrival: Instant,
    /// When the publisher in this harness sent the same source packet (voice only; found by the
    /// sender's session and the RTP sequence number, see [`super::sendlog`]). `None` for video,
    /// for a publisher outside this process, or before the track's sender is known.
    pub sent: Option<Instant>,
}

impl RtpInfo {
    pub fn new(p: &RtpPacket, mid: Option<Mid>, kind: Option<TrackKind>) -> Self {
        RtpInfo {
            mid,
            kind,
            ssrc: p.header.ssrc,
            seq: *p.seq_no,
            timestamp: p.header.timestamp,
            marker: p.header.marker,
            payload_len: p.payload.len(),
            fingerprint: fingerprint(&p.payload),
            audio_level: p.header.ext_vals.audio_level,
            arrival: p.timestamp,
            sent: None,
        }
    }

    /// One-way latency: sent by the publisher → handed to this receiver (both in this harness, so
    /// on one clock). `None` when the send instant is unknown.
    pub fn one_way(&self) -> Option<Duration> {
        self.sent.map(|s| self.arrival.saturating_duration_since(s))
    }
}

/// A stable key of a payload: its length and first 32 bytes, FNV-1a hashed.
pub fn fingerprint(payload: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut h = OFFSET;
    for b in (payload.len() as u64)
        .to_le_bytes()
        .iter()
        .chain(payload.iter().take(32))
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// A measurable moment in a participant's life.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `join` was handed to the plugin connection (the start of join latency).
    JoinSent,
    /// The first SDP offer (with the data channel) was handed to the plugin connection, right
    /// after `join`: rtcd never offers first, the client's offer opens the session (rtcd.md §2.3
    /// step 3).
    OfferSent,
    IceConnected,
    IceDisconnected,
    /// ICE and DTLS are up.
    DtlsConnected,
    /// The `calls-dc` data channel opened; rtcd starts sending tracks only now.
    DcOpen,
    /// An offer/answer round trip finished: the first one (`change: None`) or an own change.
    Negotiated {
        change: Option<LocalChange>,
        took: Duration,
    },
    /// A server offer was answered; `received` is when the offer was read off the plugin
    /// connection (or the data channel's datagram arrived); the driver's instant at dispatch minus
    /// it is the harness's share of the round trip.
    ServerOfferAnswered {
        received: Instant,
    },
    /// rtcd added a track for this participant.
    TrackAdded(RemoteTrack),
    Rtp(RtpInfo),
    /// A receiver asked for a keyframe of a published track; the source was told.
    KeyframeRequested {
        role: Option<Role>,
        rid: Option<Rid>,
    },
    /// DC pong for the last ping.
    Pong {
        rtt: Duration,
    },
    /// rtcd's VAD for this session changed. For `on`, `onset` is the send instant of this
    /// speaker's packet that turned voice on by rtcd's rule (None when the speaker's replica of
    /// the rule saw no onset, e.g. after packet loss changed the SFU's window).
    /// `at`: when the message was read off the plugin connection.
    VoiceActivity {
        on: bool,
        onset: Option<Instant>,
        at: Instant,
    },
    /// The lock for this change was refused (or unanswered) for 5 s; the change was dropped.
    LockTimeout(LocalChange),
    /// The session is over: rtcd sent `close` (`by_server` unless we left), the connection closed,
    /// or the leave timeout passed.
    Closed {
        by_server: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_depends_on_length_and_prefix_only() {
        let a = [7u8; 40];
        let mut b = a;
        b[39] = 0;
        assert_eq!(
            fingerprint(&a),
            fingerprint(&b),
            "bytes after 32 are ignored"
        );
        assert_ne!(fingerprint(&a), fingerprint(&a[..39]));
        b[0] = 1;
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }
}
