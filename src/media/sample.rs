//! Samples loaded once and shared: Opus frames with their audio levels, VP8 frames pre-packetised
//! into RTP payloads. Every participant that plays a file holds an `Arc` to the same sample; the
//! paced sources keep only a cursor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::ivf::IvfFile;
use super::opus::{FRAME_MICROS, OpusFile};
use super::{MediaError, vp8, wire};

/// RTP clock rate of video (RFC 7741).
pub const VIDEO_CLOCK_RATE: u32 = 90_000;
/// Extension of the audio-level sidecar next to an Ogg file: `<file>.levels`.
pub const LEVELS_SUFFIX: &str = ".levels";

/// One 20 ms Opus frame and its level.
#[derive(Debug, Clone)]
pub struct AudioFrame {
    /// The Opus packet, the whole RTP payload.
    pub payload: Arc<[u8]>,
    /// RFC 6464 level of the frame, -dBov 0 (loudest) ..= 127 (silence).
    pub level: u8,
}

/// An Ogg/Opus sample with its per-frame levels.
#[derive(Debug)]
pub struct AudioSample {
    pub path: PathBuf,
    pub channels: u8,
    pub frames: Vec<AudioFrame>,
}

/// One VP8 frame, pre-packetised.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    pub keyframe: bool,
    /// RTP payloads (VP8 descriptor + data), in order; the last one carries the marker bit.
    pub packets: Box<[Arc<[u8]>]>,
    /// Size of the VP8 frame itself.
    pub frame_bytes: usize,
}

/// An IVF/VP8 sample, pre-packetised, played at one frame per timebase unit.
#[derive(Debug)]
pub struct VideoSample {
    pub path: PathBuf,
    pub width: u16,
    pub height: u16,
    /// Seconds per frame = `timebase_num / timebase_den`.
    pub timebase_num: u32,
    pub timebase_den: u32,
    pub frames: Vec<VideoFrame>,
    /// Indices of the keyframes, ascending; never empty.
    pub keyframes: Vec<usize>,
}

/// A loaded sample of either kind.
#[derive(Debug, Clone)]
pub enum Sample {
    Audio(Arc<AudioSample>),
    Video(Arc<VideoSample>),
}

impl AudioSample {
    /// Loads an Ogg/Opus file and its `<file>.levels` sidecar (one level byte per Opus packet).
    /// The sidecar is required: without it the audio-level extension would not follow the speech and
    /// server-side VAD would not behave as with a real talker. `scenarios/media/make-media.sh levels`
    /// makes one for any file.
    pub fn load(path: &Path) -> Result<Self, MediaError> {
        let opus = OpusFile::open(path)?;
        let mut levels_path = path.as_os_str().to_owned();
        levels_path.push(LEVELS_SUFFIX);
        let levels_path = PathBuf::from(levels_path);
        let levels = match std::fs::read(&levels_path) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(MediaError::MissingLevels { path: levels_path });
            }
            Err(source) => {
                return Err(MediaError::Io {
                    path: levels_path,
                    source,
                });
            }
        };
        Self::from_parts(path, opus, &levels)
    }

    /// Builds a sample from a parsed file and its level bytes.
    pub fn from_parts(path: &Path, opus: OpusFile, levels: &[u8]) -> Result<Self, MediaError> {
        if levels.len() != opus.packets.len() {
            return Err(MediaError::LevelsMismatch {
                levels: levels.len(),
                frames: opus.packets.len(),
            });
        }
        if let Some(index) = levels.iter().position(|&l| l > 127) {
            return Err(MediaError::LevelOutOfRange { index });
        }
        let frames = opus
            .packets
            .into_iter()
            .zip(levels)
            .map(|(p, &level)| AudioFrame {
                payload: Arc::from(p),
                level,
            })
            .collect();
        Ok(Self {
            path: path.to_owned(),
            channels: opus.channels,
            frames,
        })
    }

    /// Length of one loop.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(u64::from(FRAME_MICROS) * self.frames.len() as u64)
    }
}

impl VideoSample {
    /// Loads an IVF/VP8 file and packetises every frame once.
    pub fn load(path: &Path) -> Result<Self, MediaError> {
        Self::from_ivf(path, IvfFile::open(path)?)
    }

    /// Packetises a parsed IVF file. A file without a keyframe cannot be joined by a receiver, so it
    /// is refused.
    pub fn from_ivf(path: &Path, ivf: IvfFile) -> Result<Self, MediaError> {
        let keyframes: Vec<usize> = ivf
            .frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.keyframe)
            .map(|(i, _)| i)
            .collect();
        if keyframes.is_empty() {
            return Err(MediaError::NoKeyframe);
        }
        let frames = ivf
            .frames
            .iter()
            .map(|f| VideoFrame {
                keyframe: f.keyframe,
                packets: vp8::packetize(&f.data, wire::VIDEO_MAX_RTP_PAYLOAD).into(),
                frame_bytes: f.data.len(),
            })
            .collect();
        Ok(Self {
            path: path.to_owned(),
            width: ivf.width,
            height: ivf.height,
            timebase_num: ivf.timebase_num,
            timebase_den: ivf.timebase_den,
            frames,
            keyframes,
        })
    }

    /// Start of output frame `n` relative to the stream start, exact (no accumulated rounding).
    pub fn frame_offset(&self, n: u64) -> Duration {
        let nanos = u128::from(n) * u128::from(self.timebase_num) * 1_000_000_000
            / u128::from(self.timebase_den);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// RTP ticks (90 kHz) from the stream start to output frame `n`, exact, wrapping like RTP time.
    pub fn frame_rtp_ticks(&self, n: u64) -> u32 {
        let ticks = u128::from(n) * u128::from(self.timebase_num) * u128::from(VIDEO_CLOCK_RATE)
            / u128::from(self.timebase_den);
        // RTP time is modulo 2^32 by definition.
        ticks as u32
    }

    /// Length of one loop.
    pub fn duration(&self) -> Duration {
        self.frame_offset(self.frames.len() as u64)
    }

    /// Frames per second.
    pub fn fps(&self) -> f64 {
        f64::from(self.timebase_den) / f64::from(self.timebase_num)
    }

    /// The keyframe closest to frame `at` going round the loop (ties go forward).
    pub fn nearest_keyframe(&self, at: usize) -> usize {
        let n = self.frames.len();
        let distance = |k: usize| {
            let d = k.abs_diff(at) % n;
            let d = d.min(n - d);
            // Prefer forward on ties: a forward candidate sorts before a backward one.
            let forward = (k + n - at) % n == d;
            (d, !forward)
        };
        self.keyframes
            .iter()
            .copied()
            .min_by_key(|&k| distance(k))
            .unwrap_or(0) // keyframes is never empty (checked in from_ivf)
    }
}

/// Loads any sample, telling Ogg from IVF by its first bytes. This is the API scenarios use to play
/// their own files.
pub fn load(path: &Path) -> Result<Sample, MediaError> {
    let mut magic = [0u8; 4];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|source| MediaError::Io {
            path: path.to_owned(),
            source,
        })?;
        f.read_exact(&mut magic)
            .map_err(|_| MediaError::UnknownFormat {
                path: path.to_owned(),
            })?;
    }
    match &magic {
        b"OggS" => Ok(Sample::Audio(Arc::new(AudioSample::load(path)?))),
        b"DKIF" => Ok(Sample::Video(Arc::new(VideoSample::load(path)?))),
        _ => Err(MediaError::UnknownFormat {
            path: path.to_owned(),
        }),
    }
}

/// Loads each file once and hands out shared handles, so N participants playing one file share one
/// copy of its frames and packets.
#[derive(Debug, Default)]
pub struct SampleCache {
    loaded: HashMap<PathBuf, Sample>,
}

impl SampleCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The sample at `path`, loaded on first use.
    pub fn get(&mut self, path: &Path) -> Result<Sample, MediaError> {
        if let Some(s) = self.loaded.get(path) {
            return Ok(s.clone());
        }
        let sample = load(path)?;
        self.loaded.insert(path.to_owned(), sample.clone());
        Ok(sample)
    }

    /// The audio sample at `path`; an error if it is video.
    pub fn audio(&mut self, path: &Path) -> Result<Arc<AudioSample>, MediaError> {
        match self.get(path)? {
            Sample::Audio(a) => Ok(a),
            Sample::Video(_) => Err(MediaError::WrongKind {
                path: path.to_owned(),
                expected: "audio (Ogg/Opus)",
            }),
        }
    }

    /// The video sample at `path`; an error if it is audio.
    pub fn video(&mut self, path: &Path) -> Result<Arc<VideoSample>, MediaError> {
        match self.get(path)? {
            Sample::Video(v) => Ok(v),
            Sample::Audio(_) => Err(MediaError::WrongKind {
                path: path.to_owned(),
                expected: "video (IVF/VP8)",
            }),
        }
    }
}

/// The folder holding the pinned samples of this checkout (`scenarios/media`).
pub fn builtin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/media")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ivf::IvfFrame;

    fn sample(keys: &[bool]) -> VideoSample {
        let ivf = IvfFile {
            fourcc: *b"VP80",
            width: 16,
            height: 16,
            timebase_num: 1,
            timebase_den: 30,
            frames: keys
                .iter()
                .enumerate()
                .map(|(i, &k)| IvfFrame {
                    pts: i as u64,
                    keyframe: k,
                    data: vec![u8::from(!k); 10],
                })
                .collect(),
        };
        VideoSample::from_ivf(Path::new("t.ivf"), ivf).unwrap()
    }

    #[test]
    fn nearest_keyframe_wraps_and_prefers_forward() {
        let mut keys = vec![false; 10];
        keys[0] = true;
        keys[6] = true;
        let s = sample(&keys);
        assert_eq!(s.nearest_keyframe(0), 0);
        assert_eq!(s.nearest_keyframe(2), 0);
        assert_eq!(s.nearest_keyframe(3), 6); // tie 3 back / 3 forward → forward
        assert_eq!(s.nearest_keyframe(5), 6);
        assert_eq!(s.nearest_keyframe(8), 0); // wraps: 2 forward vs 2 back → forward
        assert_eq!(s.nearest_keyframe(9), 0);
    }

    #[test]
    fn exact_frame_times() {
        let s = sample(&[true; 3]);
        assert_eq!(s.frame_rtp_ticks(3), 9_000);
        assert_eq!(s.frame_offset(30), Duration::from_secs(1));
        assert_eq!(s.duration(), Duration::from_millis(100));
    }

    #[test]
    fn refuses_video_without_keyframe_and_bad_levels() {
        let ivf = IvfFile {
            fourcc: *b"VP80",
            width: 1,
            height: 1,
            timebase_num: 1,
            timebase_den: 5,
            frames: vec![IvfFrame {
                pts: 0,
                keyframe: false,
                data: vec![1],
            }],
        };
        assert!(matches!(
            VideoSample::from_ivf(Path::new("x"), ivf),
            Err(MediaError::NoKeyframe)
        ));
        let opus = OpusFile {
            channels: 1,
            input_sample_rate: 48_000,
            pre_skip: 312,
            packets: vec![vec![31 << 3, 1]; 3],
        };
        assert!(matches!(
            AudioSample::from_parts(Path::new("x"), opus.clone(), &[1, 2]),
            Err(MediaError::LevelsMismatch {
                levels: 2,
                frames: 3
            })
        ));
        assert!(matches!(
            AudioSample::from_parts(Path::new("x"), opus, &[1, 200, 3]),
            Err(MediaError::LevelOutOfRange { index: 1 })
        ));
    }
}
