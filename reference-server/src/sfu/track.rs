//! Published tracks ("sources") and the per-receiver bindings they are forwarded through.
//!
//! A source is one m-line a participant publishes (voice, screen, screen-audio or video). Each
//! receiver that has negotiated the track holds a binding: its own m-line, the payload type to
//! write with, and the sequence-number rebase that keeps the publisher's low 16 bits on the wire.

use std::time::{Duration, Instant};

use rand::RngCore;
use str0m::media::{Mid, Pt, Rid};

use super::session::SessionIdx;
use super::simulcast::{Layer, LayerChoice, RateMonitor};
use super::vad::Vad;
use crate::proto::rtcd::TrackId;

/// What a forwarded track carries (`voice`, `screen`, `screen-audio`, `video`).
pub use crate::proto::rtcd::TrackKind as TrackType;

/// Whether a track kind is carried as audio.
pub fn is_audio(kind: TrackType) -> bool {
    matches!(kind, TrackType::Voice | TrackType::ScreenAudio)
}

/// The codecs rtcd registers, with its payload types (§3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackCodec {
    Opus,
    Vp8,
    Av1,
}

impl TrackCodec {
    /// Payload type this SFU offers for the codec; receivers' m-lines are created by our offers,
    /// so this is also the payload type every forwarded packet is written with.
    pub fn pt(self) -> Pt {
        match self {
            TrackCodec::Opus => Pt::new_with_value(111),
            TrackCodec::Vp8 => Pt::new_with_value(96),
            TrackCodec::Av1 => Pt::new_with_value(45),
        }
    }

    /// The retransmission payload type paired with a video codec. rtcd answers NACKs with pion's
    /// responder on the original SSRC; str0m resends only over RTX, so the SFU offers RTX to
    /// answer viewers' NACKs from each outgoing stream's history (a receiver that declines RTX
    /// gets no resends, as without a responder). Audio is not retransmitted.
    pub fn rtx_pt(self) -> Option<Pt> {
        match self {
            TrackCodec::Opus => None,
            TrackCodec::Vp8 => Some(Pt::new_with_value(97)),
            TrackCodec::Av1 => Some(Pt::new_with_value(46)),
        }
    }

    /// The MIME type used as the `type` label of `rtcd_rtc_rtp_tracks_total`.
    pub fn mime(self) -> &'static str {
        match self {
            TrackCodec::Opus => "audio/opus",
            TrackCodec::Vp8 => "video/VP8",
            TrackCodec::Av1 => "video/AV1",
        }
    }
}

/// Index of a source in the core's source table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub u64);

/// One forwarding target of a source.
#[derive(Debug, Clone)]
pub struct Binding {
    pub session: SessionIdx,
    pub mid: Mid,
    /// Simulcast layer this receiver gets; `None` for non-simulcast sources.
    pub rid: Option<Rid>,
    /// Added (wrapping) to the publisher's extended sequence number. Set on the first packet so
    /// the receiver's SRTP rollover counter starts at 0 while the low 16 bits stay the
    /// publisher's; reset on a layer switch so the receiver's sequence stays continuous.
    pub seq_offset: Option<u64>,
    /// Added (wrapping) to the publisher's RTP timestamp; 0 until a layer switch.
    pub ts_offset: u32,
    /// The last packet written: (sequence number, timestamp, when).
    pub last: Option<(u64, u32, Instant)>,
    /// Simulcast viewers: the layer choice from this receiver's bandwidth estimate.
    pub choice: Option<LayerChoice>,
    /// A layer to move to at its next keyframe.
    pub pending: Option<Rid>,
}

/// A track published by one session.
#[derive(Debug)]
pub struct Source {
    pub owner: SessionIdx,
    pub owner_session_id: String,
    pub mid: Mid,
    pub kind: TrackType,
    pub codec: TrackCodec,
    /// `<type>_<senderSessionID>_<8 random chars>`.
    pub track_id: String,
    /// Simulcast rids the publisher sends (empty for a single encoding).
    pub rids: Vec<Rid>,
    /// False while muted: packets are dropped at the SFU.
    pub enabled: bool,
    pub bindings: Vec<Binding>,
    /// Keyframe requests towards the publisher, at most one per second per layer.
    pub keyframes: KeyframeRequests,
    /// Voice activity from `ssrc-audio-level` (voice tracks only).
    pub vad: Vad,
    /// Measured rate of each simulcast layer (empty for a single encoding).
    pub rates: Vec<(Rid, RateMonitor)>,
}

impl Source {
    /// Whether the source sends both rtcd layers, `l` and `h`.
    pub fn switchable(&self) -> bool {
        [Layer::Low, Layer::High]
            .iter()
            .all(|l| self.rids.contains(&Rid::from(l.rid())))
    }

    /// The layer a new viewer starts on: `h` only when its estimate already carries it, else the
    /// low (or first) layer; `None` for a single encoding.
    pub fn initial_rid(&self, choice: Option<&LayerChoice>) -> Option<Rid> {
        if self.rids.is_empty() {
            return None;
        }
        if let Some(c) = choice {
            return Some(c.layer.rid().into());
        }
        let low: Rid = "l".into();
        Some(if self.rids.contains(&low) {
            low
        } else {
            self.rids[0]
        })
    }
}

/// Least time between two keyframe requests sent upstream for one layer (rtcd: 1/s per SSRC).
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);

/// Keyframe requests (PLIs) towards one publisher's layers (rid `None` for a single encoding): at
/// most one per [`KEYFRAME_REQUEST_INTERVAL`] per layer, and none lost. A request inside the
/// interval, or one that finds no incoming stream yet (the publisher's first packet on that layer
/// has not arrived), stays pending and goes out as soon as it may: the core asks
/// [`KeyframeRequests::due`] on every packet from the publisher. Viewers' PLIs, a new viewer's
/// first picture and simulcast layer switches all come through here, so a burst of them costs the
/// publisher one keyframe.
#[derive(Debug, Clone, Default)]
pub struct KeyframeRequests {
    layers: Vec<LayerRequests>,
    /// Whether any layer has a request pending: the per-packet check is this one flag.
    pending: bool,
}

#[derive(Debug, Clone)]
struct LayerRequests {
    rid: Option<Rid>,
    last_sent: Option<Instant>,
    pending: bool,
}

impl KeyframeRequests {
    /// Records a request for `rid`; returns whether to send it now (then call
    /// [`KeyframeRequests::sent`] once it is on its way).
    pub fn request(&mut self, rid: Option<Rid>, now: Instant) -> bool {
        match self.layers.iter_mut().find(|l| l.rid == rid) {
            Some(l) => l.pending = true,
            None => self.layers.push(LayerRequests {
                rid,
                last_sent: None,
                pending: true,
            }),
        }
        self.pending = true;
        self.due(rid, now)
    }

    /// Whether a request for `rid` is pending and its interval has passed.
    pub fn due(&self, rid: Option<Rid>, now: Instant) -> bool {
        self.pending
            && self.layers.iter().any(|l| {
                l.rid == rid
                    && l.pending
                    && l.last_sent
                        .is_none_or(|t| now >= t + KEYFRAME_REQUEST_INTERVAL)
            })
    }

    /// The pending request for `rid` went out at `now`.
    pub fn sent(&mut self, rid: Option<Rid>, now: Instant) {
        if let Some(l) = self.layers.iter_mut().find(|l| l.rid == rid) {
            l.pending = false;
            l.last_sent = Some(now);
        }
        self.pending = self.layers.iter().any(|l| l.pending);
    }
}

/// A fresh track id `<type>_<senderSessionID>_<8 random chars>`.
pub fn new_track_id(kind: TrackType, sender_session_id: &str, rng: &mut impl RngCore) -> String {
    TrackId::generate(kind, sender_session_id, rng).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Virtual time: a viewer's PLI every 200 ms for 2 s, with publisher packets every 50 ms,
    /// sends 3 upstream (at 0, 1 and 2 s); a request in the interval is held, not lost, and also
    /// waits while it cannot be sent; layers are limited apart.
    #[test]
    fn keyframe_requests_are_one_per_second_per_layer_and_never_lost() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let low: Option<Rid> = Some("l".into());
        let mut k = KeyframeRequests::default();
        let mut sent = Vec::new();
        for ms in (0..4000u64).step_by(50) {
            let asked = ms < 2000 && ms % 200 == 0 && k.request(low, at(ms));
            if asked || k.due(low, at(ms)) {
                k.sent(low, at(ms));
                sent.push(ms);
            }
        }
        assert_eq!(sent, [0, 1000, 2000]);
        assert!(!k.due(low, at(5000)));

        assert!(k.request(low, at(10_000)));
        k.sent(low, at(10_000));
        assert!(!k.request(low, at(10_010)));
        assert!(!k.due(low, at(10_999)));
        assert!(k.due(low, at(11_000)));
        // Not sent (no stream yet): still pending.
        assert!(k.due(low, at(11_005)));
        k.sent(low, at(11_005));
        assert!(!k.due(low, at(20_000)));

        // Another layer has its own interval.
        let high: Option<Rid> = Some("h".into());
        assert!(k.request(high, at(11_010)));
        assert!(!k.request(low, at(11_020)));
    }

    #[test]
    fn track_id_has_type_sender_and_eight_random_chars() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let id = new_track_id(TrackType::ScreenAudio, "sess1", &mut rng);
        let rest = id.strip_prefix("screen-audio_sess1_").unwrap();
        assert_eq!(rest.len(), 8);
        assert_eq!(TrackId::parse(&id).unwrap().kind, TrackType::ScreenAudio);
        let other = new_track_id(TrackType::ScreenAudio, "sess1", &mut rng);
        assert_ne!(id, other);
    }
}
