//! The media a run sends: the scenario's samples loaded once and shared by every participant that
//! plays them, and a seeded stream start (sequence number, timestamp, PictureID, first frame) per
//! published track, so participants sharing a file are not in lock-step and a run is repeatable.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::engine::feed::{AudioFeed, VideoFeed};
use crate::engine::source::MediaSource;
use crate::media::MediaError;
use crate::media::sample::{AudioSample, SampleCache, VideoSample};
use crate::media::source::StreamStart;
use crate::scenario::{Plan, ScreenMode, Session};

/// Every sample a plan uses, loaded once.
#[derive(Debug)]
pub struct RunMedia {
    speech: Vec<Arc<AudioSample>>,
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
            .map(|p| cache.audio(p))
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

    /// The mic of a speaker, seeded from the session (and the `nth` time it is made).
    pub fn mic(&self, session: &Session, nth: u64) -> Option<Box<dyn MediaSource>> {
        let sample = self.speech.get(session.speech()? as usize)?;
        let mut rng = StdRng::seed_from_u64(session.rng_seed() ^ nth.wrapping_mul(0x9e37) ^ 1);
        let first = Self::start(&mut rng, sample.frames.len());
        Some(Box::new(AudioFeed::new(Arc::clone(sample), first)))
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
    use std::time::Instant;

    use super::*;
    use crate::scenario::{MediaCheck, PlanConfig, Scenario};

    #[test]
    fn sources_are_seeded_per_session_and_video_starts_on_a_keyframe() {
        let file = crate::media::builtin_dir().join("../smoke.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        let scenario = Scenario::from_toml(&text, &file, MediaCheck::Require).unwrap();
        let plan = Plan::expand(&scenario, &PlanConfig::default());
        let media = RunMedia::load(&plan).unwrap();
        let speakers: Vec<&Session> = plan.sessions().filter(|s| s.roles().speaker).collect();
        assert!(speakers.len() >= 2);
        let listener = plan.sessions().find(|s| s.roles().is_listener()).unwrap();
        assert!(media.mic(listener, 0).is_none(), "a listener has no mic");
        let now = Instant::now();
        let first = |s: &Session| {
            let mut mic = media.mic(s, 0).unwrap();
            mic.start(now);
            mic.poll(now).unwrap()
        };
        // Same session, same packets; another session starts elsewhere in its file.
        assert_eq!(first(speakers[0]), first(speakers[0]));
        assert_ne!(first(speakers[0]).seq, first(speakers[1]).seq);
        let (mut low, high) = media.screen(speakers[0], ScreenMode::Simulcast, 0);
        assert!(high.is_some());
        low.start(now);
        assert!(low.poll(now).unwrap().keyframe);
        let mut cam = media.camera(speakers[0], 0);
        cam.start(now);
        assert!(cam.poll(now).unwrap().keyframe);
    }
}
