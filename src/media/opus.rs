//! Ogg/Opus reader: the `OpusHead` facts and one Opus packet per 20 ms frame, in file order.
//!
//! The Ogg framing is the `ogg` crate's; this module checks the Opus side (RFC 7845 header, RFC 6716
//! TOC byte) and refuses what the paced audio source cannot send at a fixed 20 ms cadence.

use std::io::Cursor;
use std::path::Path;

use super::MediaError;

/// Opus always runs its RTP clock at 48 kHz (RFC 7587), whatever the input rate was.
pub const OPUS_CLOCK_RATE: u32 = 48_000;
/// The only frame duration the sources send: 20 ms, as browsers and the official tool do.
pub const FRAME_MICROS: u32 = 20_000;
/// Samples per 20 ms frame at 48 kHz: the RTP timestamp step.
pub const FRAME_SAMPLES: u32 = OPUS_CLOCK_RATE / 1000 * FRAME_MICROS / 1000;

/// An Ogg/Opus file read into memory.
#[derive(Debug, Clone)]
pub struct OpusFile {
    /// Channel count from `OpusHead`.
    pub channels: u8,
    /// Input sample rate from `OpusHead` (informational; Opus decodes at 48 kHz).
    pub input_sample_rate: u32,
    /// Pre-skip from `OpusHead`, in 48 kHz samples.
    pub pre_skip: u16,
    /// The audio packets, one per 20 ms frame (headers excluded).
    pub packets: Vec<Vec<u8>>,
}

/// Duration in microseconds of one Opus packet, from its TOC byte (RFC 6716 §3.1); `None` when the
/// packet is empty or a code-3 packet has no frame-count byte.
pub fn packet_duration_micros(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // Frame sizes in µs per configuration range: SILK 10/20/40/60, hybrid 10/20, CELT 2.5/5/10/20.
    let frame = match config {
        0..=11 => [10_000, 20_000, 40_000, 60_000][usize::from(config % 4)],
        12..=15 => [10_000, 20_000][usize::from(config % 2)],
        _ => [2_500, 5_000, 10_000, 20_000][usize::from(config % 4)],
    };
    let frames = match toc & 0x3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    Some(frame * frames)
}

impl OpusFile {
    /// Reads an Ogg/Opus file from disk.
    pub fn open(path: &Path) -> Result<Self, MediaError> {
        let bytes = std::fs::read(path).map_err(|source| MediaError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&bytes)
    }

    /// Parses an Ogg/Opus file held in memory: the first logical stream only.
    pub fn parse(bytes: &[u8]) -> Result<Self, MediaError> {
        let mut reader = ogg::reading::PacketReader::new(Cursor::new(bytes));
        let mut serial = None;
        let mut head = None;
        let mut seen_tags = false;
        let mut packets = Vec::new();
        loop {
            let packet = match reader.read_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => return Err(MediaError::Ogg(e.to_string())),
            };
            match serial {
                None => serial = Some(packet.stream_serial()),
                Some(s) if s != packet.stream_serial() => continue,
                Some(_) => {}
            }
            if head.is_none() {
                head = Some(parse_head(&packet.data)?);
            } else if !seen_tags {
                if !packet.data.starts_with(b"OpusTags") {
                    return Err(MediaError::NotOpus("second packet is not OpusTags"));
                }
                seen_tags = true;
            } else {
                let index = packets.len();
                match packet_duration_micros(&packet.data) {
                    None => return Err(MediaError::EmptyFrame { index }),
                    Some(FRAME_MICROS) => packets.push(packet.data),
                    Some(micros) => {
                        return Err(MediaError::UnsupportedFrameDuration { index, micros });
                    }
                }
            }
        }
        let (channels, pre_skip, input_sample_rate) =
            head.ok_or(MediaError::NotOpus("no OpusHead packet"))?;
        if packets.is_empty() {
            return Err(MediaError::NoFrames);
        }
        Ok(Self {
            channels,
            input_sample_rate,
            pre_skip,
            packets,
        })
    }
}

/// `OpusHead` (RFC 7845 §5.1) → (channels, pre-skip, input sample rate).
fn parse_head(data: &[u8]) -> Result<(u8, u16, u32), MediaError> {
    if data.len() < 19 || !data.starts_with(b"OpusHead") {
        return Err(MediaError::NotOpus("first packet is not OpusHead"));
    }
    if data[8] >> 4 != 0 {
        return Err(MediaError::NotOpus("unsupported OpusHead major version"));
    }
    let channels = data[9];
    let pre_skip = u16::from_le_bytes([data[10], data[11]]);
    let rate = u32::from_le_bytes([data[12], data[13], data[14], data[15]]);
    if channels == 0 {
        return Err(MediaError::NotOpus("OpusHead declares zero channels"));
    }
    Ok((channels, pre_skip, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toc_durations() {
        // CELT FB 20 ms, one frame (config 31, code 0): what the samples hold.
        assert_eq!(packet_duration_micros(&[31 << 3]), Some(20_000));
        // SILK WB 20 ms (config 9), code 0.
        assert_eq!(packet_duration_micros(&[9 << 3]), Some(20_000));
        // CELT 10 ms × 2 frames (config 30, code 1) = 20 ms.
        assert_eq!(packet_duration_micros(&[(30 << 3) | 1]), Some(20_000));
        // Code 3 with 3 frames of 20 ms = 60 ms.
        assert_eq!(packet_duration_micros(&[(31 << 3) | 3, 3]), Some(60_000));
        // Hybrid 10 ms.
        assert_eq!(packet_duration_micros(&[12 << 3]), Some(10_000));
        assert_eq!(packet_duration_micros(&[]), None);
        assert_eq!(packet_duration_micros(&[(31 << 3) | 3]), None);
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert!(OpusFile::parse(b"definitely not ogg").is_err());
        assert!(matches!(
            parse_head(b"OpusHea"),
            Err(MediaError::NotOpus(_))
        ));
    }
}
