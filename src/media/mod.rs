//! Media for simulated participants: pinned, measured samples (`scenarios/media/`), their readers
//! (Ogg/Opus, IVF/VP8), and sans-IO paced sources that loop them as endless RTP streams.
//!
//! - [`wire`]: the on-wire header overheads (one documented place).
//! - [`opus`], [`ivf`]: file readers; [`vp8`]: RFC 7741 packetization.
//! - [`sample`]: samples loaded once and shared by `Arc` ([`load`], [`SampleCache`]).
//! - [`source`]: [`AudioSource`], [`VideoSource`] (keyframe on PLI), [`SimulcastSource`].
//! - [`inspect`]: measurements matching the manifest; `callsbench media inspect`.

pub mod inspect;
pub mod ivf;
pub mod opus;
pub mod sample;
pub mod source;
pub mod vp8;
pub mod wire;

use std::path::PathBuf;

pub use inspect::{FileEntry, Manifest, inspect};
pub use sample::{AudioSample, Sample, SampleCache, VideoSample, builtin_dir, load};
pub use source::{AudioSource, OutPacket, Rid, SimulcastSource, StreamStart, VideoSource};

/// Why a sample file could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an Ogg or IVF file")]
    UnknownFormat { path: PathBuf },
    #[error("bad ogg stream: {0}")]
    Ogg(String),
    #[error("not an ogg/opus stream: {0}")]
    NotOpus(&'static str),
    #[error("not an ivf file: {0}")]
    NotIvf(&'static str),
    #[error("unsupported ivf codec {0:?}: only VP80 is played")]
    UnsupportedCodec(String),
    #[error("frame {index} is truncated")]
    Truncated { index: usize },
    #[error("frame {index} is empty")]
    EmptyFrame { index: usize },
    #[error("opus packet {index} lasts {micros} µs; only 20 ms packets are sent")]
    UnsupportedFrameDuration { index: usize, micros: u32 },
    #[error("the file holds no media frames")]
    NoFrames,
    #[error("the video has no keyframe, so no receiver could ever decode it")]
    NoKeyframe,
    #[error(
        "audio level sidecar {path} is missing; make it with `scenarios/media/make-media.sh levels IN.wav FILE.ogg`"
    )]
    MissingLevels { path: PathBuf },
    #[error("audio level sidecar has {levels} entries for {frames} opus packets")]
    LevelsMismatch { levels: usize, frames: usize },
    #[error("audio level {index} is above 127")]
    LevelOutOfRange { index: usize },
    #[error("{path} holds the wrong kind of media: expected {expected}")]
    WrongKind {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("bad manifest {path}: {message}")]
    Manifest { path: PathBuf, message: String },
}
