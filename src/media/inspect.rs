//! Measures a sample file the way `scenarios/media/MANIFEST.toml` describes it (the manifest is made
//! with ffprobe; this is the independent Rust measurement the tests compare it with, and what
//! `callsbench media inspect` prints for users' own files).
//!
//! Definitions: bit rates count codec payload only (Opus packets, VP8 frames; no container, no RTP);
//! `peak_kbps` is the highest rate over round(fps) consecutive frames (1 s); `keyframe_interval_s`
//! is the longest gap between keyframes counting the wrap round the loop; audio frames all count as
//! keyframes (every Opus packet decodes on its own).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::MediaError;
use super::ivf::IvfFile;
use super::opus::{FRAME_MICROS, OPUS_CLOCK_RATE, OpusFile};
use super::sample::LEVELS_SUFFIX;

/// One file's entry in the manifest, or what `media inspect` measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub sha256: String,
    /// `opus` or `vp8`.
    pub codec: String,
    /// `WxH` for video, `mono 48000 Hz` (or `N ch 48000 Hz`) for audio.
    pub resolution: String,
    /// Frames (Opus packets) per second.
    pub fps: f64,
    pub frames: u64,
    pub duration_s: f64,
    pub mean_kbps: f64,
    pub peak_kbps: f64,
    pub min_frame_bytes: u64,
    pub max_frame_bytes: u64,
    pub keyframes: u64,
    pub keyframe_interval_s: f64,
    /// Audio: the level sidecar's file name, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels_sha256: Option<String>,
    /// The command that made the file (manifest only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// `scenarios/media/MANIFEST.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Versions of the tools that made the samples.
    pub tools: BTreeMap<String, String>,
    pub file: Vec<FileEntry>,
}

impl Manifest {
    /// Reads and parses a manifest.
    pub fn load(path: &Path) -> Result<Self, MediaError> {
        let text = std::fs::read_to_string(path).map_err(|source| MediaError::Io {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| MediaError::Manifest {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Measures an Ogg/Opus or IVF/VP8 file (and an Ogg file's `.levels` sidecar, if present).
pub fn inspect(path: &Path) -> Result<FileEntry, MediaError> {
    let bytes = std::fs::read(path).map_err(|source| MediaError::Io {
        path: path.to_owned(),
        source,
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sha256 = sha256_hex(&bytes);
    if bytes.starts_with(b"OggS") {
        let opus = OpusFile::parse(&bytes)?;
        let sizes: Vec<u64> = opus.packets.iter().map(|p| p.len() as u64).collect();
        let fps = 1_000_000.0 / f64::from(FRAME_MICROS);
        let mut levels_path = PathBuf::from(path.as_os_str());
        levels_path.as_mut_os_string().push(LEVELS_SUFFIX);
        let levels = std::fs::read(&levels_path).ok();
        let resolution = if opus.channels == 1 {
            format!("mono {OPUS_CLOCK_RATE} Hz")
        } else {
            format!("{} ch {OPUS_CLOCK_RATE} Hz", opus.channels)
        };
        let frames = sizes.len() as u64;
        Ok(FileEntry {
            levels: levels.as_ref().map(|_| format!("{name}{LEVELS_SUFFIX}")),
            levels_sha256: levels.as_deref().map(sha256_hex),
            ..entry(name, sha256, "opus", resolution, fps, &sizes, frames, 0.02)
        })
    } else if bytes.starts_with(b"DKIF") {
        let ivf = IvfFile::parse(&bytes)?;
        let sizes: Vec<u64> = ivf.frames.iter().map(|f| f.data.len() as u64).collect();
        let fps = ivf.fps();
        let keys: Vec<usize> = (0..ivf.frames.len())
            .filter(|&i| ivf.frames[i].keyframe)
            .collect();
        let n = ivf.frames.len();
        let max_gap = match (keys.first(), keys.last()) {
            (Some(&first), Some(&last)) => keys
                .windows(2)
                .map(|w| w[1] - w[0])
                .chain(std::iter::once(n - last + first))
                .max()
                .unwrap_or(n),
            _ => n,
        };
        let resolution = format!("{}x{}", ivf.width, ivf.height);
        Ok(entry(
            name,
            sha256,
            "vp8",
            resolution,
            fps,
            &sizes,
            keys.len() as u64,
            max_gap as f64 / fps,
        ))
    } else {
        Err(MediaError::UnknownFormat {
            path: path.to_owned(),
        })
    }
}

#[allow(clippy::too_many_arguments)] // a private constructor for the one struct literal both kinds share
fn entry(
    name: String,
    sha256: String,
    codec: &str,
    resolution: String,
    fps: f64,
    sizes: &[u64],
    keyframes: u64,
    keyframe_interval_s: f64,
) -> FileEntry {
    let frames = sizes.len() as u64;
    let duration_s = frames as f64 / fps;
    let total: u64 = sizes.iter().sum();
    let window = (fps.round() as usize).clamp(1, sizes.len().max(1));
    let peak_bytes = sizes
        .windows(window)
        .map(|w| w.iter().sum::<u64>())
        .max()
        .unwrap_or(total);
    let round = |x: f64, places: i32| {
        let m = 10f64.powi(places);
        (x * m).round() / m
    };
    FileEntry {
        name,
        sha256,
        codec: codec.to_owned(),
        resolution,
        fps: round(fps, 3),
        frames,
        duration_s: round(duration_s, 3),
        mean_kbps: round(total as f64 * 8.0 / duration_s / 1000.0, 2),
        peak_kbps: round(peak_bytes as f64 * 8.0 * fps / window as f64 / 1000.0, 2),
        min_frame_bytes: sizes.iter().copied().min().unwrap_or(0),
        max_frame_bytes: sizes.iter().copied().max().unwrap_or(0),
        keyframes,
        keyframe_interval_s: round(keyframe_interval_s, 3),
        levels: None,
        levels_sha256: None,
        command: None,
    }
}

/// The entry as a TOML `[[file]]` table, the manifest's format.
pub fn to_toml(entry: &FileEntry) -> Result<String, MediaError> {
    #[derive(Serialize)]
    struct One<'a> {
        file: [&'a FileEntry; 1],
    }
    toml::to_string(&One { file: [entry] }).map_err(|e| MediaError::Manifest {
        path: PathBuf::from(&entry.name),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn rates_peaks_and_windows() {
        // 4 fps, 8 frames of 1000 B except one 3000 B frame: mean 40 kbps, peak 1 s = 48 kbps.
        let sizes = [1000, 1000, 3000, 1000, 1000, 1000, 1000, 1000];
        let e = entry(
            "x".into(),
            "0".into(),
            "vp8",
            "1x1".into(),
            4.0,
            &sizes,
            1,
            2.0,
        );
        assert_eq!(e.duration_s, 2.0);
        assert_eq!(e.mean_kbps, 40.0);
        assert_eq!(e.peak_kbps, 48.0);
        assert_eq!((e.min_frame_bytes, e.max_frame_bytes), (1000, 3000));
        let text = to_toml(&e).unwrap();
        assert!(text.contains("[[file]]"), "{text}");
        assert!(text.contains("peak_kbps = 48.0"), "{text}");
    }
}
