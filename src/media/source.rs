//! Paced, looping RTP sources over shared samples: audio at one Opus frame per 20 ms, video at one
//! VP8 frame per timebase unit, with keyframe on demand and frame-aligned simulcast layers.
//!
//! Sans-IO: no clock, no socket. Driving contract: after creating a source or calling
//! [`VideoSource::request_keyframe`], call `poll(now)` until it returns `None`, then wake again at
//! `next_deadline()`. Every packet carries its scheduled send time (`at`), which is also the capture
//! time of its frame; a late poll gets the overdue packets at once, stamped with when they were due,
//! so the caller can measure its own lag. Sequence numbers, RTP time and PictureID run on across the
//! loop point as if the file were endless.
//!
//! Feeding str0m (RTP mode): `RtpWrite::new(pt, p.seq_no.into(), p.rtp_time, p.at, p.payload.clone())`
//! with `.marker(p.marker)`, `ext_vals.audio_level = p.audio_level.map(|l| -(l as i8))`, and for video
//! `.vp8_patch(Vp8Descriptor::parse(&p.payload)?.patch().picture_id(pid).build()?)`. `payload` is an
//! `Arc` shared by every participant playing the file: cloning it allocates nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::opus::{FRAME_MICROS, FRAME_SAMPLES};
use super::sample::{AudioSample, VideoSample};

/// One RTP packet to send: everything a str0m `write_rtp` caller needs.
#[derive(Debug, Clone)]
pub struct OutPacket {
    /// When the packet is due (its frame's capture time).
    pub at: Instant,
    /// Extended RTP sequence number (low 16 bits on the wire, the rest is the SRTP ROC).
    pub seq_no: u64,
    pub rtp_time: u32,
    pub marker: bool,
    /// RTP payload, shared with every participant playing the same sample.
    pub payload: Arc<[u8]>,
    /// Audio: the RFC 6464 level for the ssrc-audio-level extension, -dBov 0..=127.
    pub audio_level: Option<u8>,
    /// Video: the 15-bit PictureID to patch into the VP8 descriptor.
    pub picture_id: Option<u16>,
    /// Video: the packet belongs to a keyframe. Audio: always false.
    pub keyframe: bool,
    /// Index of the frame in the sample (for tests, logs and alignment checks).
    pub frame_index: usize,
}

/// Where a stream's counters start: the caller draws them from its seeded RNG.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStart {
    /// First extended sequence number; keep it below 65 536 unless the ROC is signalled.
    pub seq_no: u64,
    pub rtp_time: u32,
    /// First VP8 PictureID (video only).
    pub picture_id: u16,
    /// Frame of the sample to start from, so participants sharing a file are not in lock-step.
    pub frame_offset: usize,
}

/// Loops an Opus sample forever at 20 ms per packet.
#[derive(Debug, Clone)]
pub struct AudioSource {
    sample: Arc<AudioSample>,
    start: Instant,
    first: StreamStart,
    sent: u64,
}

impl AudioSource {
    /// A source whose first packet is due at `start`.
    pub fn new(sample: Arc<AudioSample>, start: Instant, first: StreamStart) -> Self {
        Self {
            sample,
            start,
            first,
            sent: 0,
        }
    }

    /// When the next packet is due.
    pub fn next_deadline(&self) -> Instant {
        self.start + Duration::from_micros(self.sent * u64::from(FRAME_MICROS))
    }

    /// Packets sent so far.
    pub fn packets_sent(&self) -> u64 {
        self.sent
    }

    /// The next packet if it is due at or before `now`.
    pub fn poll(&mut self, now: Instant) -> Option<OutPacket> {
        let at = self.next_deadline();
        if at > now {
            return None;
        }
        let n = self.sent;
        let len = self.sample.frames.len();
        let frame_index = (self.first.frame_offset % len + (n % len as u64) as usize) % len;
        let frame = &self.sample.frames[frame_index];
        self.sent += 1;
        Some(OutPacket {
            at,
            seq_no: self.first.seq_no + n,
            // RTP time is modulo 2^32: truncation is the wrap.
            rtp_time: self
                .first
                .rtp_time
                .wrapping_add((n * u64::from(FRAME_SAMPLES)) as u32),
            // RFC 3551: the marker starts a talk spurt; without DTX only the first packet does.
            marker: n == 0,
            payload: frame.payload.clone(),
            audio_level: Some(frame.level),
            picture_id: None,
            keyframe: false,
            frame_index,
        })
    }

    /// All packets due at or before `now`.
    pub fn poll_until(&mut self, now: Instant) -> impl Iterator<Item = OutPacket> + '_ {
        std::iter::from_fn(move || self.poll(now))
    }
}

/// Loops a VP8 sample forever at one frame per timebase unit, answering keyframe requests.
#[derive(Debug, Clone)]
pub struct VideoSource {
    sample: Arc<VideoSample>,
    start: Instant,
    first: StreamStart,
    /// Frames started so far (the time axis).
    frames_out: u64,
    /// Packets sent so far (the sequence-number axis).
    packets_out: u64,
    /// Frame of the sample the next frame comes from (the content axis).
    cursor: usize,
    /// Next packet within the current frame; 0 between frames.
    packet_in_frame: usize,
    keyframe_wanted: bool,
    keyframes_forced: u64,
}

impl VideoSource {
    /// A source whose first frame is due at `start`. The first frame is always a keyframe (the one
    /// nearest `first.frame_offset`), as from a fresh encoder.
    pub fn new(sample: Arc<VideoSample>, start: Instant, first: StreamStart) -> Self {
        let cursor = first.frame_offset % sample.frames.len();
        Self {
            sample,
            start,
            first,
            frames_out: 0,
            packets_out: 0,
            cursor,
            packet_in_frame: 0,
            keyframe_wanted: true,
            keyframes_forced: 0,
        }
    }

    /// A PLI or FIR arrived: the next frame to start is a keyframe, taken from the keyframe of the
    /// sample nearest the current position, and playback continues from there. It goes out at that
    /// frame's normal time, at most one frame interval away, as a real encoder's next frame would.
    pub fn request_keyframe(&mut self) {
        self.keyframe_wanted = true;
    }

    /// When the next packet is due.
    pub fn next_deadline(&self) -> Instant {
        self.start + self.sample.frame_offset(self.frames_out)
    }

    /// Frames started so far.
    pub fn frames_sent(&self) -> u64 {
        self.frames_out
    }

    /// Keyframes sent because of [`VideoSource::request_keyframe`] (jumps in the sample).
    pub fn keyframes_forced(&self) -> u64 {
        self.keyframes_forced
    }

    /// The shared sample this source plays.
    pub fn sample(&self) -> &Arc<VideoSample> {
        &self.sample
    }

    /// The next packet if it is due at or before `now`. All packets of a frame are due together;
    /// spreading them is the pacer's job.
    pub fn poll(&mut self, now: Instant) -> Option<OutPacket> {
        let at = self.next_deadline();
        if at > now {
            return None;
        }
        if self.packet_in_frame == 0 && self.keyframe_wanted {
            self.keyframe_wanted = false;
            let key = self.sample.nearest_keyframe(self.cursor);
            // A jump in the sample after the first frame is a keyframe a real encoder made on request.
            if key != self.cursor && self.frames_out > 0 {
                self.keyframes_forced += 1;
            }
            self.cursor = key;
        }
        let frame = &self.sample.frames[self.cursor];
        let i = self.packet_in_frame;
        let last = i + 1 == frame.packets.len();
        let packet = OutPacket {
            at,
            seq_no: self.first.seq_no + self.packets_out,
            rtp_time: self
                .first
                .rtp_time
                .wrapping_add(self.sample.frame_rtp_ticks(self.frames_out)),
            marker: last,
            payload: frame.packets[i].clone(),
            audio_level: None,
            // PictureID is 15 bits and wraps; truncation is the wrap.
            picture_id: Some((u64::from(self.first.picture_id) + self.frames_out) as u16 & 0x7fff),
            keyframe: frame.keyframe,
            frame_index: self.cursor,
        };
        self.packets_out += 1;
        if last {
            self.packet_in_frame = 0;
            self.frames_out += 1;
            self.cursor = (self.cursor + 1) % self.sample.frames.len();
        } else {
            self.packet_in_frame += 1;
        }
        Some(packet)
    }

    /// All packets due at or before `now`.
    pub fn poll_until(&mut self, now: Instant) -> impl Iterator<Item = OutPacket> + '_ {
        std::iter::from_fn(move || self.poll(now))
    }
}

/// A simulcast layer's RTP stream id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rid {
    /// `l`: low layer (≈ 500 kbps, 5 fps in the browser encodings).
    Low,
    /// `h`: high layer (≈ 2.5 Mbps, 20 fps).
    High,
}

impl Rid {
    /// The rid string on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Rid::Low => "l",
            Rid::High => "h",
        }
    }
}

/// Why two samples cannot be simulcast layers of one sharer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimulcastError {
    #[error("simulcast layers loop over different lengths: l {low:?}, h {high:?}")]
    LoopMismatch { low: Duration, high: Duration },
    #[error(
        "the h layer frame rate is not a whole multiple of the l layer's, so frames cannot align"
    )]
    RateMismatch,
}

/// The l and h sources of one screen sharer, started together and frame-aligned: each l frame has the
/// capture time and RTP time of an h frame, and both loops have the same length, so they stay aligned
/// across the loop point.
#[derive(Debug, Clone)]
pub struct SimulcastSource {
    pub low: VideoSource,
    pub high: VideoSource,
}

impl SimulcastSource {
    /// Both layers start at `start` from content time 0, with the same initial RTP time (one capture
    /// clock), their own sequence numbers and PictureIDs.
    pub fn new(
        low: Arc<VideoSample>,
        high: Arc<VideoSample>,
        start: Instant,
        low_first: StreamStart,
        high_first: StreamStart,
    ) -> Result<Self, SimulcastError> {
        if low.duration() != high.duration() {
            return Err(SimulcastError::LoopMismatch {
                low: low.duration(),
                high: high.duration(),
            });
        }
        // h frames per l frame = (l seconds per frame) / (h seconds per frame) must be a whole number.
        let num = u64::from(low.timebase_num) * u64::from(high.timebase_den);
        let den = u64::from(low.timebase_den) * u64::from(high.timebase_num);
        if den == 0 || num % den != 0 {
            return Err(SimulcastError::RateMismatch);
        }
        let high_first = StreamStart {
            rtp_time: low_first.rtp_time,
            frame_offset: 0,
            ..high_first
        };
        let low_first = StreamStart {
            frame_offset: 0,
            ..low_first
        };
        Ok(Self {
            low: VideoSource::new(low, start, low_first),
            high: VideoSource::new(high, start, high_first),
        })
    }

    /// When the next packet of either layer is due.
    pub fn next_deadline(&self) -> Instant {
        self.low.next_deadline().min(self.high.next_deadline())
    }

    /// The next due packet of either layer, earliest first (l before h on a tie).
    pub fn poll(&mut self, now: Instant) -> Option<(Rid, OutPacket)> {
        if self.low.next_deadline() <= self.high.next_deadline() {
            if let Some(p) = self.low.poll(now) {
                return Some((Rid::Low, p));
            }
            self.high.poll(now).map(|p| (Rid::High, p))
        } else {
            if let Some(p) = self.high.poll(now) {
                return Some((Rid::High, p));
            }
            self.low.poll(now).map(|p| (Rid::Low, p))
        }
    }

    /// All packets of both layers due at or before `now`.
    pub fn poll_until(&mut self, now: Instant) -> impl Iterator<Item = (Rid, OutPacket)> + '_ {
        std::iter::from_fn(move || self.poll(now))
    }
}
