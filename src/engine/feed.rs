//! Adapters from the media module's paced sources (`crate::media::source`) to the participant's
//! [`MediaSource`]: the participant starts a source only once its track is negotiated, so the media
//! source is created at that instant from the shared sample and the stream's start values.

use std::sync::Arc;
use std::time::Instant;

use super::source::{MediaPacket, MediaSource};
use crate::media::sample::{AudioSample, VideoSample};
use crate::media::source::{AudioSource, OutPacket, StreamStart, VideoSource};

fn packet(p: OutPacket) -> MediaPacket {
    MediaPacket {
        payload: p.payload,
        timestamp: p.rtp_time,
        seq: p.seq_no,
        marker: p.marker,
        audio_level: p.audio_level.map(|l| l.min(127) as i8),
        keyframe: p.keyframe,
        picture_id: p.picture_id,
    }
}

/// An Opus sample played in a loop (the mic of an unmuted participant).
#[derive(Debug)]
pub struct AudioFeed {
    sample: Arc<AudioSample>,
    first: StreamStart,
    source: Option<AudioSource>,
}

impl AudioFeed {
    pub fn new(sample: Arc<AudioSample>, first: StreamStart) -> Self {
        AudioFeed {
            sample,
            first,
            source: None,
        }
    }
}

impl MediaSource for AudioFeed {
    fn start(&mut self, now: Instant) {
        if self.source.is_none() {
            self.source = Some(AudioSource::new(Arc::clone(&self.sample), now, self.first));
        }
    }

    fn next_at(&self) -> Option<Instant> {
        self.source.as_ref().map(AudioSource::next_deadline)
    }

    fn poll(&mut self, now: Instant) -> Option<MediaPacket> {
        self.source.as_mut()?.poll(now).map(packet)
    }

    fn request_keyframe(&mut self) {}

    fn keyframes_requested(&self) -> u64 {
        0
    }
}

/// A VP8 sample played in a loop (screen layer or camera), jumping to a keyframe on PLI.
#[derive(Debug)]
pub struct VideoFeed {
    sample: Arc<VideoSample>,
    first: StreamStart,
    source: Option<VideoSource>,
    requested: u64,
}

impl VideoFeed {
    pub fn new(sample: Arc<VideoSample>, first: StreamStart) -> Self {
        VideoFeed {
            sample,
            first,
            source: None,
            requested: 0,
        }
    }
}

impl MediaSource for VideoFeed {
    fn start(&mut self, now: Instant) {
        if self.source.is_none() {
            self.source = Some(VideoSource::new(Arc::clone(&self.sample), now, self.first));
        }
    }

    fn next_at(&self) -> Option<Instant> {
        self.source.as_ref().map(VideoSource::next_deadline)
    }

    fn poll(&mut self, now: Instant) -> Option<MediaPacket> {
        self.source.as_mut()?.poll(now).map(packet)
    }

    fn request_keyframe(&mut self) {
        self.requested += 1;
        if let Some(s) = self.source.as_mut() {
            s.request_keyframe();
        }
    }

    fn keyframes_requested(&self) -> u64 {
        self.requested
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use callsref::proto::rtcd::ids::TrackKind;

    use super::*;
    use crate::engine::mock_sfu::MockSfu;
    use crate::engine::participant::{Command, Event, ParticipantConfig};
    use crate::engine::publish::Role;
    use crate::engine::sim::{LinkConfig, Sim};
    use crate::media::sample::{AudioFrame, VideoFrame};
    use crate::media::vp8;

    fn cfg(i: usize) -> ParticipantConfig {
        ParticipantConfig {
            call_id: "call".into(),
            user_id: format!("u{i}"),
            session_id: format!("s{i}"),
            channel_id: "ch".into(),
            dc_signaling: false,
            local_addr: format!("10.2.0.{}:4000", i + 1).parse().unwrap(),
            seed: 100 + i as u64,
        }
    }

    /// Ten frames at 10 fps, the first a keyframe, packetised with real VP8 payload descriptors
    /// (the frame bytes themselves are filler: nothing in this path decodes them).
    fn video_sample() -> Arc<VideoSample> {
        let frames = (0..10u8)
            .map(|i| VideoFrame {
                keyframe: i == 0,
                packets: vp8::packetize(&vec![i; 2500], 1200).into_boxed_slice(),
                frame_bytes: 2500,
            })
            .collect();
        Arc::new(VideoSample {
            path: PathBuf::from("synthetic.ivf"),
            width: 64,
            height: 64,
            timebase_num: 1,
            timebase_den: 10,
            frames,
            keyframes: vec![0],
        })
    }

    fn audio_sample() -> Arc<AudioSample> {
        let frames = (0..50u8)
            .map(|i| AudioFrame {
                payload: Arc::from(vec![0xfc, i, 7, 7]),
                level: 40,
            })
            .collect();
        Arc::new(AudioSample {
            path: PathBuf::from("synthetic.ogg"),
            channels: 1,
            frames,
        })
    }

    #[test]
    fn mock_sfu_media_module_sources_through_the_participant() {
        let start = Instant::now();
        let server = MockSfu::new("10.0.0.1:8443".parse().unwrap(), start);
        let mut s = Sim::new(start, server, LinkConfig::default(), 3);
        for i in 0..2 {
            s.add(cfg(i));
            s.command(i, Command::Join).unwrap();
        }
        s.run_until(Duration::from_secs(5), 100_000, |s| {
            s.participant(0).is_dc_open() && s.participant(1).is_dc_open()
        })
        .unwrap();
        let first = StreamStart {
            seq_no: 1000,
            rtp_time: 0,
            picture_id: 32_760,
            frame_offset: 0,
        };
        s.command(
            0,
            Command::Unmute(Some(Box::new(AudioFeed::new(audio_sample(), first)))),
        )
        .unwrap();
        let screen = VideoFeed::new(video_sample(), first);
        s.command(
            0,
            Command::ScreenOn {
                low: Box::new(screen),
                high: None,
            },
        )
        .unwrap();
        s.run_for(Duration::from_secs(3)).unwrap();

        // Audio arrives with the sample's level; the screen (descriptors patched with the source's
        // PictureIDs, starting just below the 15-bit wrap) keeps flowing across the loop point.
        let mut levels = Vec::new();
        let mut screen_packets = 0;
        for (_, e) in s.events_of(1, |e| matches!(e, Event::Rtp(_))) {
            if let Event::Rtp(r) = e {
                match r.kind {
                    Some(TrackKind::Voice) => levels.push(r.audio_level),
                    Some(TrackKind::Screen) => screen_packets += 1,
                    _ => {}
                }
            }
        }
        assert!(levels.len() > 100, "{} voice packets", levels.len());
        assert!(levels.iter().all(|l| *l == Some(-40)));
        assert!(screen_packets > 40, "{screen_packets} screen packets");
        // The viewer's PLI on the new screen track made the VP8 source force a keyframe.
        assert!(s.participant(0).keyframes_served(Role::Screen) >= 1);
    }
}
