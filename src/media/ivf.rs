//! IVF/VP8 reader: frames with their timestamps and keyframe flag.
//!
//! Hand-written because no maintained crate offers an IVF *reader* alone (`ivf` is a muxer; `rtc-media`
//! drags in a WebRTC stack). The format is a 32-byte file header and a 12-byte header per frame.

use std::path::Path;

use super::MediaError;

/// One VP8 frame as stored in the file.
#[derive(Debug, Clone)]
pub struct IvfFrame {
    /// Presentation timestamp in timebase units.
    pub pts: u64,
    /// True when the VP8 frame tag marks a key frame (RFC 6386 §9.1: bit 0 of the first byte is 0).
    pub keyframe: bool,
    /// The VP8 frame.
    pub data: Vec<u8>,
}

/// An IVF file read into memory.
#[derive(Debug, Clone)]
pub struct IvfFile {
    /// FourCC, e.g. `VP80`.
    pub fourcc: [u8; 4],
    pub width: u16,
    pub height: u16,
    /// Timebase numerator (seconds per unit = `timebase_num / timebase_den`).
    pub timebase_num: u32,
    /// Timebase denominator; for files written by ffmpeg, the frame rate.
    pub timebase_den: u32,
    pub frames: Vec<IvfFrame>,
}

/// True when `frame` starts a VP8 key frame.
pub fn vp8_is_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 0x01 == 0)
}

impl IvfFile {
    /// Reads an IVF file from disk.
    pub fn open(path: &Path) -> Result<Self, MediaError> {
        let bytes = std::fs::read(path).map_err(|source| MediaError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&bytes)
    }

    /// Parses an IVF file held in memory. Only VP8 is accepted; a truncated last frame is an error
    /// rather than silently dropped, so a damaged sample is noticed.
    pub fn parse(bytes: &[u8]) -> Result<Self, MediaError> {
        if bytes.len() < 32 || &bytes[..4] != b"DKIF" {
            return Err(MediaError::NotIvf("missing DKIF signature"));
        }
        let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
        let u32_at =
            |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let header_len = usize::from(u16_at(6));
        if header_len < 32 || header_len > bytes.len() {
            return Err(MediaError::NotIvf("bad header length"));
        }
        let fourcc = [bytes[8], bytes[9], bytes[10], bytes[11]];
        if &fourcc != b"VP80" {
            return Err(MediaError::UnsupportedCodec(
                String::from_utf8_lossy(&fourcc).into_owned(),
            ));
        }
        let (width, height) = (u16_at(12), u16_at(14));
        let (timebase_den, timebase_num) = (u32_at(16), u32_at(20));
        if timebase_den == 0 || timebase_num == 0 {
            return Err(MediaError::NotIvf("zero timebase"));
        }
        let mut frames = Vec::new();
        let mut at = header_len;
        while at < bytes.len() {
            let index = frames.len();
            if bytes.len() - at < 12 {
                return Err(MediaError::Truncated { index });
            }
            let size = u32_at(at) as usize;
            let mut pts = [0u8; 8];
            pts.copy_from_slice(&bytes[at + 4..at + 12]);
            let pts = u64::from_le_bytes(pts);
            at += 12;
            if size == 0 {
                return Err(MediaError::EmptyFrame { index });
            }
            if bytes.len() - at < size {
                return Err(MediaError::Truncated { index });
            }
            let data = bytes[at..at + size].to_vec();
            at += size;
            frames.push(IvfFrame {
                pts,
                keyframe: vp8_is_keyframe(&data),
                data,
            });
        }
        if frames.is_empty() {
            return Err(MediaError::NoFrames);
        }
        Ok(Self {
            fourcc,
            width,
            height,
            timebase_num,
            timebase_den,
            frames,
        })
    }

    /// Frames per second implied by the timebase, assuming one frame per timebase unit (how ffmpeg
    /// writes constant-rate IVF, and how the official tool paces it).
    pub fn fps(&self) -> f64 {
        f64::from(self.timebase_den) / f64::from(self.timebase_num)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(frames: &[&[u8]]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"DKIF");
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&32u16.to_le_bytes());
        b.extend_from_slice(b"VP80");
        b.extend_from_slice(&640u16.to_le_bytes());
        b.extend_from_slice(&360u16.to_le_bytes());
        b.extend_from_slice(&30u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&(frames.len() as u32).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        for (i, f) in frames.iter().enumerate() {
            b.extend_from_slice(&(f.len() as u32).to_le_bytes());
            b.extend_from_slice(&(i as u64).to_le_bytes());
            b.extend_from_slice(f);
        }
        b
    }

    #[test]
    fn reads_frames_and_keyframe_flags() {
        let ivf = IvfFile::parse(&file(&[&[0x10, 1, 2], &[0x11, 3]])).unwrap();
        assert_eq!((ivf.width, ivf.height), (640, 360));
        assert_eq!(ivf.fps(), 30.0);
        assert_eq!(ivf.frames.len(), 2);
        assert!(ivf.frames[0].keyframe);
        assert!(!ivf.frames[1].keyframe);
        assert_eq!(ivf.frames[1].pts, 1);
        assert_eq!(ivf.frames[1].data, vec![0x11, 3]);
    }

    #[test]
    fn damaged_files_are_typed_errors() {
        let mut b = file(&[&[0x10, 1, 2]]);
        b.truncate(b.len() - 1);
        assert!(matches!(
            IvfFile::parse(&b),
            Err(MediaError::Truncated { index: 0 })
        ));
        assert!(matches!(
            IvfFile::parse(b"RIFF"),
            Err(MediaError::NotIvf(_))
        ));
        let mut av1 = file(&[&[0x10]]);
        av1[8..12].copy_from_slice(b"AV01");
        assert!(matches!(
            IvfFile::parse(&av1),
            Err(MediaError::UnsupportedCodec(c)) if c == "AV01"
        ));
        assert!(matches!(
            IvfFile::parse(&file(&[])),
            Err(MediaError::NoFrames)
        ));
    }
}
