//! The media a run sends: the scenario's samples loaded once and shared, a seeded stream start per
//! published track, and the sender clocks that let a receiver in the same harness turn an audio
//! packet back into its intended send instant (one-way latency).
//!
//! An SFU rewrites SSRC, sequence number and timestamp but never the payload, so the receiver
//! recognises a packet by its payload fingerprint ([`crate::engine::event::fingerprint`]). The
//! sample's frames are indexed by fingerprint once; a sender publishes only the instant its source
//! started and the frame it started from. Packet `k` of a stream is frame
//! `(offset + k) mod N`, due at `start + k × 20 ms`, so the latest `k` of that frame not after the
//! arrival gives the intended send time. Frames whose payload repeats elsewhere in the sample are
//! left out (ambiguous).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::engine::event::fingerprint;
use crate::engine::feed::{AudioFeed, VideoFeed};
use crate::engine::source::{MediaPacket, MediaSource};
use crate::media::MediaError;
use crate::media::sample::{AudioSample, SampleCache, VideoSample};
use crate::media::source::StreamStart;
use crate::scenario::{Plan, ScreenMode, Session};

/// Opus frame interval of the samples.
const AUDIO_FRAME: Duration = Duration::from_millis(20);

/// Fingerprint → frame index of one audio sample (unambiguous frames only).
#[derive(Debug)]
pub struct AudioIndex {
    frames: u64,
    by_print: HashMap<u64, u64>,
}

impl AudioIndex {
    pub fn new(sample: &AudioSample) -> Self {
        let mut by_print: HashMap<u64, Option<u64>> = HashMap::new();
        for (i, f) in sample.frames.iter().enumerate() {
            by_print
                .entry(fingerprint(&f.payload))
                .and_modify(|v| *v = None)
                .or_insert(Some(i as u64));
        }
        AudioIndex {
            frames: sample.frames.len() as u64,
            by_print: by_print
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .collect(),
        }
    }
}

/// When and where one audio sender's stream started.
#[derive(Debug)]
pub struct SenderClock {
    index: Arc<AudioIndex>,
    offset: u64,
    start: OnceLock<Instant>,
}

impl SenderClock {
    /// The intended send instant of the packet with payload `print` that arrived at `arrival`.
    pub fn intended(&self, print: u64, arrival: Instant) -> Option<Instant> {
        let start = *self.start.get()?;
        let frame = *self.index.by_print.get(&print)?;
        let n = self.index.frames;
        let k0 = (frame + n - self.offset % n) % n;
        let elapsed = arrival.checked_duration_since(start)?;
        let sent_so_far = (elapsed.as_micros() / AUDIO_FRAME.as_micros()) as u64;
        if sent_so_far < k0 {
            return None;
        }
        let k = k0 + (sent_so_far - k0) / n * n;
        Some(start + AUDIO_FRAME * u32::try_from(k).ok()?)
    }
}

/// A source that records the instant it started in a [`SenderClock`].
#[derive(Debug)]
struct Clocked {
    inner: AudioFeed,
    clock: Arc<SenderClock>,
}

impl MediaSource for Clocked {
    fn start(&mut self, now: Instant) {
        self.inner.start(now);
        let _ = self.clock.start.set(now);
    }
    fn next_at(&self) -> Option<Instant> {
        self.inner.next_at()
    }
    fn poll(&mut self, now: Instant) -> Option<MediaPacket> {
        self.inner.poll(now)
    }
    fn request_keyframe(&mut self) {
        self.inner.request_keyframe();
    }
    fn keyframes_requested(&self) -> u64 {
        self.inner.keyframes_requested()
    }
}

/// Every sample a plan uses, loaded once.
#[derive(Debug)]
pub struct RunMedia {
    speech: Vec<(Arc<AudioSample>, Arc<AudioIndex>)>,
    screen: Arc<VideoSample>,
    screen_low: Arc<VideoSample>,
    screen_high: Arc<VideoSample>,
    camera: Arc<VideoSample>,
}

impl RunMedia {
    /// Loads the plan's samples.
    pub fn load(plan: &Plan) -> Result<RunMedia, MediaError> {
        let mut cache = SampleCache::new();
        let m = plan.media();
        let speech = m
            .speech()
            .iter()
            .map(|p| {
                let a = cache.audio(p)?;
                let index = Arc::new(AudioIndex::new(&a));
                Ok((a, index))
            })
            .collect::<Result<Vec<_>, MediaError>>()?;
        // The scenario checked that every file exists; the video samples are a few MB in all.
        Ok(RunMedia {
            speech,
            screen: cache.video(m.screen())?,
            screen_low: cache.video(m.screen_low())?,
            screen_high: cache.video(m.screen_high())?,
            camera: cache.video(m.camera())?,
        })
    }

    fn start(rng: &mut StdRng, frames: usize) -> StreamStart {
        StreamStart {
            // Below 2^15 so the first packets never wrap the 16-bit sequence number early.
            seq_no: u64::from(rng.random_range(0..32_768u32)),
            rtp_time: rng.random(),
            picture_id: rng.random_range(0..32_768),
            frame_offset: rng.random_range(0..frames.max(1)),
        }
    }

    /// The mic of a speaker and its clock, seeded from the session (and the `nth` time it is made).
    pub fn mic(
        &self,
        session: &Session,
        nth: u64,
    ) -> Option<(Box<dyn MediaSource>, Arc<SenderClock>)> {
        let (sample, index) = self.speech.get(session.speech()? as usize)?;
        let mut rng = StdRng::seed_from_u64(session.rng_seed() ^ nth.wrapping_mul(0x9e37) ^ 1);
        let first = Self::start(&mut rng, sample.frames.len());
        let clock = Arc::new(SenderClock {
            index: Arc::clone(index),
            offset: first.frame_offset as u64,
            start: OnceLock::new(),
        });
        let feed = Clocked {
            inner: AudioFeed::new(Arc::clone(sample), first),
            clock: Arc::clone(&clock),
        };
        Some((Box::new(feed), clock))
    }

    fn video(&self, sample: &Arc<VideoSample>, seed: u64) -> Box<dyn MediaSource> {
        let mut rng = StdRng::seed_from_u64(seed);
        // Video starts at a keyframe: a viewer could decode nothing before the first one.
        let mut first = Self::start(&mut rng, sample.frames.len());
        first.frame_offset = sample
            .keyframes
            .get(rng.random_range(0..sample.keyframes.len().max(1)))
            .copied()
            .unwrap_or(0);
        Box::new(VideoFeed::new(Arc::clone(sample), first))
    }

    /// The screen share sources (`low`, `high`) for a sharer of a call in `mode`.
    pub fn screen(
        &self,
        session: &Session,
        mode: ScreenMode,
        nth: u64,
    ) -> (Box<dyn MediaSource>, Option<Box<dyn MediaSource>>) {
        let seed = session.rng_seed() ^ nth.wrapping_mul(0x9e37) ^ 2;
        match mode {
            ScreenMode::Single => (self.video(&self.screen, seed), None),
            ScreenMode::Simulcast => (
                self.video(&self.screen_low, seed),
                Some(self.video(&self.screen_high, seed ^ 4)),
            ),
        }
    }

    /// The camera source of a video sender.
    pub fn camera(&self, session: &Session, nth: u64) -> Box<dyn MediaSource> {
        self.video(
            &self.camera,
            session.rng_seed() ^ nth.wrapping_mul(0x9e37) ^ 3,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::media::sample::AudioFrame;

    fn sample(payloads: &[u8]) -> AudioSample {
        AudioSample {
            path: PathBuf::from("t.ogg"),
            channels: 1,
            frames: payloads
                .iter()
                .map(|b| AudioFrame {
                    payload: Arc::from(vec![*b; 40]),
                    level: 30,
                })
                .collect(),
        }
    }

    #[test]
    fn a_packet_maps_back_to_its_intended_send_instant() {
        // Ten frames, frame 3 and 7 identical (ambiguous), stream starting at frame 8.
        let s = sample(&[0, 1, 2, 3, 4, 5, 6, 3, 8, 9]);
        let clock = SenderClock {
            index: Arc::new(AudioIndex::new(&s)),
            offset: 8,
            start: OnceLock::new(),
        };
        let t0 = Instant::now();
        let print = |b: u8| fingerprint(&[b; 40]);
        assert_eq!(clock.intended(print(9), t0), None, "not started");
        clock.start.set(t0).unwrap();
        // Packet k=1 is frame 9, due at 20 ms; it arrives 3 ms late.
        let at = t0 + Duration::from_millis(23);
        assert_eq!(clock.intended(print(9), at), Some(t0 + AUDIO_FRAME));
        // Frame 0 is k=2 (40 ms) and k=12 (240 ms): an arrival at 250 ms is the second one.
        let at = t0 + Duration::from_millis(250);
        assert_eq!(clock.intended(print(0), at), Some(t0 + AUDIO_FRAME * 12));
        // Before its first due time a frame cannot have been sent.
        assert_eq!(clock.intended(print(5), t0 + AUDIO_FRAME * 2), None);
        assert_eq!(clock.intended(print(3), at), None, "ambiguous payload");
    }
}
