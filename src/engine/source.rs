//! The narrow interface between a participant and the media it publishes.
//!
//! A [`MediaSource`] yields pre-packetised RTP payloads on its own schedule; the participant only asks
//! when the next packet is due, takes the due packets and writes them to its send stream, and forwards
//! keyframe requests (PLI/FIR) back. Payloads are `Arc<[u8]>` so every participant sending the same clip
//! shares one copy of it and the send path allocates nothing of its own per packet.
//!
//! The paced file readers (Ogg/Opus, IVF/VP8) live in `crate::media`; [`ClipSource`] here is the
//! smallest source that loops over a shared packet list, used by the simulation and tests.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One RTP payload as a source hands it to the participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPacket {
    /// RTP payload (codec payload descriptor included), shared between all senders of the clip.
    pub payload: Arc<[u8]>,
    /// RTP timestamp in the codec's clock (48 kHz audio, 90 kHz video).
    pub timestamp: u32,
    /// Extended sequence number; only the low 16 bits go on the wire.
    pub seq: u64,
    /// RTP marker bit (last packet of a video frame).
    pub marker: bool,
    /// `ssrc-audio-level` value, 0 (loud) to 127 (silence) dBov, for audio.
    pub audio_level: Option<i8>,
    /// Whether this packet belongs to a keyframe (video).
    pub keyframe: bool,
    /// VP8 PictureID to write into the payload descriptor as the packet is sent (a looping sample
    /// must not repeat picture ids); `None` sends the descriptor as it is.
    pub picture_id: Option<u16>,
}

/// A paced source of RTP packets for one published track (or one simulcast layer).
///
/// Contract: the participant calls [`start`](MediaSource::start) once the track is negotiated, then
/// repeatedly [`next_at`](MediaSource::next_at) to learn the next deadline and
/// [`poll`](MediaSource::poll) with the current time to take every packet due by then.
pub trait MediaSource: fmt::Debug + Send {
    /// Anchors the schedule: the first packet is due at `now`.
    fn start(&mut self, now: Instant);
    /// When the next packet is due; `None` before `start` or when the source has ended.
    fn next_at(&self) -> Option<Instant>;
    /// The next packet if it is due at `now`, else `None`.
    fn poll(&mut self, now: Instant) -> Option<MediaPacket>;
    /// A receiver lost the picture: continue from the next keyframe as soon as possible.
    fn request_keyframe(&mut self);
    /// Keyframe requests served so far.
    fn keyframes_requested(&self) -> u64;
}

/// One frame of a pre-packetised clip: its packets and its duration.
#[derive(Debug, Clone)]
pub struct ClipFrame {
    /// The frame's RTP payloads in order; the last one carries the marker bit.
    pub payloads: Vec<Arc<[u8]>>,
    /// Whether the frame is a keyframe (always false for audio).
    pub keyframe: bool,
    /// Audio level for every packet of the frame (audio only).
    pub audio_level: Option<i8>,
}

/// A shared, immutable clip: frames at a fixed interval, looped forever.
#[derive(Debug)]
pub struct Clip {
    /// The frames in play order.
    pub frames: Vec<ClipFrame>,
    /// Time between frames.
    pub interval: Duration,
    /// RTP clock rate (48 000 or 90 000).
    pub clock_rate: u32,
}

/// Loops a shared [`Clip`] in real (or virtual) time; on a keyframe request it jumps to the next
/// keyframe of the clip at the next frame boundary.
#[derive(Debug)]
pub struct ClipSource {
    clip: Arc<Clip>,
    frame: usize,
    packet: usize,
    next: Option<Instant>,
    seq: u64,
    first_seq: u64,
    timestamp: u32,
    keyframe_wanted: bool,
    keyframes_requested: u64,
}

impl ClipSource {
    /// A source over `clip`, starting its sequence numbers and timestamps at the given values (real
    /// senders randomise both; pass values from the participant's seeded RNG).
    pub fn new(clip: Arc<Clip>, first_seq: u16, first_timestamp: u32) -> Self {
        ClipSource {
            clip,
            frame: 0,
            packet: 0,
            next: None,
            seq: u64::from(first_seq),
            first_seq: u64::from(first_seq),
            timestamp: first_timestamp,
            keyframe_wanted: false,
            keyframes_requested: 0,
        }
    }

    fn ticks_per_frame(&self) -> u32 {
        let ticks = self.clip.interval.as_micros() * u128::from(self.clip.clock_rate) / 1_000_000;
        u32::try_from(ticks).unwrap_or(u32::MAX)
    }

    fn advance_frame(&mut self) {
        self.packet = 0;
        self.timestamp = self.timestamp.wrapping_add(self.ticks_per_frame());
        let n = self.clip.frames.len();
        self.frame = (self.frame + 1) % n;
        if self.keyframe_wanted {
            // Jump to the next keyframe of the clip, if it has one; the timestamp keeps advancing by
            // one frame, as an encoder forced to emit a keyframe would.
            if let Some(k) = (0..n)
                .map(|i| (self.frame + i) % n)
                .find(|&i| self.clip.frames[i].keyframe)
            {
                self.frame = k;
            }
            self.keyframe_wanted = false;
        }
    }
}

impl MediaSource for ClipSource {
    fn start(&mut self, now: Instant) {
        if self.next.is_none() && !self.clip.frames.is_empty() {
            self.next = Some(now);
        }
    }

    fn next_at(&self) -> Option<Instant> {
        self.next
    }

    fn poll(&mut self, now: Instant) -> Option<MediaPacket> {
        let due = self.next?;
        if due > now {
            return None;
        }
        let frame = &self.clip.frames[self.frame];
        let Some(payload) = frame.payloads.get(self.packet) else {
            // An empty frame: skip it.
            self.advance_frame();
            self.next = Some(due + self.clip.interval);
            return None;
        };
        let last = self.packet + 1 == frame.payloads.len();
        // Video marks the last packet of a frame; audio (48 kHz clock) only the start of a talk
        // spurt, which for an endless loop is the first packet.
        let marker = if self.clip.clock_rate == 48_000 {
            self.seq == self.first_seq
        } else {
            last
        };
        let packet = MediaPacket {
            payload: Arc::clone(payload),
            timestamp: self.timestamp,
            seq: self.seq,
            marker,
            audio_level: frame.audio_level,
            keyframe: frame.keyframe,
            picture_id: None,
        };
        self.seq += 1;
        self.packet += 1;
        if last {
            self.advance_frame();
            self.next = Some(due + self.clip.interval);
        }
        Some(packet)
    }

    fn request_keyframe(&mut self) {
        self.keyframe_wanted = true;
        self.keyframes_requested += 1;
    }

    fn keyframes_requested(&self) -> u64 {
        self.keyframes_requested
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip() -> Arc<Clip> {
        let frame = |tag: u8, keyframe: bool, n: usize| ClipFrame {
            payloads: (0..n).map(|i| Arc::from(vec![tag, i as u8])).collect(),
            keyframe,
            audio_level: None,
        };
        Arc::new(Clip {
            frames: vec![
                frame(0, true, 2),
                frame(1, false, 1),
                frame(2, false, 1),
                frame(3, true, 1),
            ],
            interval: Duration::from_millis(50),
            clock_rate: 90_000,
        })
    }

    #[test]
    fn paces_frames_and_marks_last_packet() {
        let t0 = Instant::now();
        let mut s = ClipSource::new(clip(), 65_535, 0);
        assert_eq!(s.next_at(), None);
        s.start(t0);
        let a = s.poll(t0).unwrap();
        let b = s.poll(t0).unwrap();
        assert!(!a.marker && b.marker);
        assert_eq!((a.seq, b.seq), (65_535, 65_536));
        assert!(s.poll(t0).is_none());
        assert_eq!(s.next_at(), Some(t0 + Duration::from_millis(50)));
        let c = s.poll(t0 + Duration::from_millis(50)).unwrap();
        assert_eq!(c.timestamp, 4_500);
        assert_eq!(&c.payload[..], &[1, 0]);
    }

    #[test]
    fn keyframe_request_jumps_to_next_keyframe() {
        let t0 = Instant::now();
        let mut s = ClipSource::new(clip(), 0, 0);
        s.start(t0);
        s.poll(t0);
        s.request_keyframe();
        // The current frame finishes, then the source skips frames 1 and 2.
        let p = s.poll(t0).unwrap();
        assert!(p.marker);
        let next = s.poll(t0 + Duration::from_millis(50)).unwrap();
        assert!(next.keyframe);
        assert_eq!(&next.payload[..], &[3, 0]);
        assert_eq!(s.keyframes_requested(), 1);
    }
}
