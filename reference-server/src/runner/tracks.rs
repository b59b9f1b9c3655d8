//! The files a recording writes, one per received track, with the media exactly as it arrived (no
//! transcoding): Opus packets into Ogg (RFC 7845, through the `ogg` crate) and VP8 frames into IVF.
//!
//! Timestamps come from RTP: an Ogg granule position is the 48 kHz sample count since the track's
//! first packet (so silence suppressed by DTX keeps its length), an IVF frame's timestamp is its
//! 90 kHz RTP time since the first frame written.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

/// Samples in one 20 ms Opus packet at 48 kHz, the length assumed for a packet's end.
const OPUS_PACKET_SAMPLES: u64 = 960;
/// Pages are closed every this many packets (about a second of 20 ms packets).
const PACKETS_PER_PAGE: u64 = 50;

/// Why a track file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct TrackError {
    pub path: PathBuf,
    pub source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> TrackError + '_ {
    move |source| TrackError {
        path: path.to_owned(),
        source,
    }
}

/// `OpusHead` (RFC 7845 §5.1): version 1, 2 channels (what WebRTC negotiates), 312 samples
/// pre-skip (libopus' encoder delay), 48 kHz, no gain, mapping family 0.
fn opus_head() -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(2);
    h.extend_from_slice(&312u16.to_le_bytes());
    h.extend_from_slice(&48_000u32.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(0);
    h
}

/// `OpusTags` (RFC 7845 §5.2) with a vendor string and no comments.
fn opus_tags() -> Vec<u8> {
    let vendor = b"callsref runner";
    let mut t = b"OpusTags".to_vec();
    t.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    t.extend_from_slice(vendor);
    t.extend_from_slice(&0u32.to_le_bytes());
    t
}

/// An Ogg/Opus file being written.
pub struct OggOpus {
    path: PathBuf,
    writer: PacketWriter<'static, BufWriter<File>>,
    serial: u32,
    first_ts: Option<u64>,
    /// The newest packet, held back so the last one can end the stream.
    held: Option<(Vec<u8>, u64)>,
    packets: u64,
}

impl std::fmt::Debug for OggOpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OggOpus")
            .field("path", &self.path)
            .field("packets", &self.packets)
            .finish()
    }
}

impl OggOpus {
    /// Creates the file and writes the two header pages.
    pub fn create(path: &Path, serial: u32) -> Result<OggOpus, TrackError> {
        let file = File::create(path).map_err(at(path))?;
        let mut writer = PacketWriter::new(BufWriter::new(file));
        writer
            .write_packet(opus_head(), serial, PacketWriteEndInfo::EndPage, 0)
            .map_err(at(path))?;
        writer
            .write_packet(opus_tags(), serial, PacketWriteEndInfo::EndPage, 0)
            .map_err(at(path))?;
        Ok(OggOpus {
            path: path.to_owned(),
            writer,
            serial,
            first_ts: None,
            held: None,
            packets: 0,
        })
    }

    /// Appends one Opus packet with its 48 kHz RTP timestamp (already unwrapped to 64 bits).
    pub fn write(&mut self, rtp_ts: u64, packet: &[u8]) -> Result<(), TrackError> {
        let first = *self.first_ts.get_or_insert(rtp_ts);
        let granule = rtp_ts.saturating_sub(first) + OPUS_PACKET_SAMPLES;
        if let Some((data, g)) = self.held.replace((packet.to_vec(), granule)) {
            self.packets += 1;
            let end = if self.packets.is_multiple_of(PACKETS_PER_PAGE) {
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            self.writer
                .write_packet(data, self.serial, end, g)
                .map_err(at(&self.path))?;
        }
        Ok(())
    }

    /// Ends the stream and flushes the file; returns the audio packets written.
    pub fn finish(mut self) -> Result<u64, TrackError> {
        if let Some((data, g)) = self.held.take() {
            self.packets += 1;
            self.writer
                .write_packet(data, self.serial, PacketWriteEndInfo::EndStream, g)
                .map_err(at(&self.path))?;
        }
        self.writer.inner_mut().flush().map_err(at(&self.path))?;
        Ok(self.packets)
    }
}

/// Width and height from a VP8 key frame's header (RFC 6386 §9.1), `None` for an inter frame.
pub fn vp8_keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    // Frame tag bit 0 is 0 for a key frame, followed by the start code 9d 01 2a.
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((w, h))
}

/// An IVF file of VP8 frames being written. Frames before the first key frame are dropped (a
/// decoder could not use them); the header's size comes from that key frame.
#[derive(Debug)]
pub struct IvfVp8 {
    path: PathBuf,
    file: BufWriter<File>,
    first_ts: Option<u64>,
    frames: u32,
}

impl IvfVp8 {
    /// Creates the (still empty) file.
    pub fn create(path: &Path) -> Result<IvfVp8, TrackError> {
        let file = File::create(path).map_err(at(path))?;
        Ok(IvfVp8 {
            path: path.to_owned(),
            file: BufWriter::new(file),
            first_ts: None,
            frames: 0,
        })
    }

    /// Whether a key frame has started the file.
    pub fn started(&self) -> bool {
        self.first_ts.is_some()
    }

    /// Appends one VP8 frame with its 90 kHz RTP timestamp (unwrapped).
    pub fn write(&mut self, rtp_ts: u64, frame: &[u8]) -> Result<(), TrackError> {
        let first = match self.first_ts {
            Some(f) => f,
            None => {
                let Some((w, h)) = vp8_keyframe_size(frame) else {
                    return Ok(());
                };
                self.header(w, h)?;
                *self.first_ts.insert(rtp_ts)
            }
        };
        let mut head = [0u8; 12];
        head[..4].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        head[4..].copy_from_slice(&rtp_ts.saturating_sub(first).to_le_bytes());
        self.file.write_all(&head).map_err(at(&self.path))?;
        self.file.write_all(frame).map_err(at(&self.path))?;
        self.frames += 1;
        Ok(())
    }

    fn header(&mut self, w: u16, h: u16) -> Result<(), TrackError> {
        let mut hdr = Vec::with_capacity(32);
        hdr.extend_from_slice(b"DKIF");
        hdr.extend_from_slice(&0u16.to_le_bytes()); // version
        hdr.extend_from_slice(&32u16.to_le_bytes()); // header length
        hdr.extend_from_slice(b"VP80");
        hdr.extend_from_slice(&w.to_le_bytes());
        hdr.extend_from_slice(&h.to_le_bytes());
        // Time base 1/90000: frame timestamps are RTP ticks.
        hdr.extend_from_slice(&90_000u32.to_le_bytes());
        hdr.extend_from_slice(&1u32.to_le_bytes());
        hdr.extend_from_slice(&0u32.to_le_bytes()); // frame count, patched by finish()
        hdr.extend_from_slice(&0u32.to_le_bytes());
        self.file.write_all(&hdr).map_err(at(&self.path))
    }

    /// Patches the frame count into the header and flushes; returns the frames written.
    pub fn finish(mut self) -> Result<u32, TrackError> {
        if self.started() {
            let path = self.path.clone();
            self.file.seek(SeekFrom::Start(24)).map_err(at(&path))?;
            self.file
                .write_all(&self.frames.to_le_bytes())
                .map_err(at(&path))?;
        }
        self.file.flush().map_err(at(&self.path))?;
        Ok(self.frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("callsref-tracks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn ogg_holds_headers_then_every_packet_with_rtp_granules() {
        let path = temp("a.ogg");
        let mut ogg = OggOpus::create(&path, 7).unwrap();
        for i in 0..120u64 {
            // A 200 ms DTX gap after packet 59: its granule jumps accordingly.
            let ts = 5_000 + i * 960 + if i >= 60 { 9_600 } else { 0 };
            ogg.write(ts, &[i as u8; 3]).unwrap();
        }
        assert_eq!(ogg.finish().unwrap(), 120);
        let mut r = ogg::reading::PacketReader::new(File::open(&path).unwrap());
        let head = r.read_packet_expected().unwrap();
        assert!(head.data.starts_with(b"OpusHead") && head.data.len() == 19);
        assert!(
            r.read_packet_expected()
                .unwrap()
                .data
                .starts_with(b"OpusTags")
        );
        let mut n = 0u64;
        let mut last = None;
        while let Some(p) = r.read_packet().unwrap() {
            assert_eq!(p.data, [n as u8; 3]);
            n += 1;
            last = Some(p);
        }
        assert_eq!(n, 120);
        let last = last.unwrap();
        assert!(last.last_in_stream());
        assert_eq!(last.absgp_page(), 119 * 960 + 9_600 + 960);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn ivf_starts_at_a_key_frame_and_counts_frames() {
        let path = temp("v.ivf");
        let mut ivf = IvfVp8::create(&path).unwrap();
        let inter = [0x01u8, 0, 0, 1, 2, 3];
        // Key frame tag, start code, 640x360.
        let key = [0x00u8, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 9, 9];
        ivf.write(100, &inter).unwrap();
        assert!(!ivf.started());
        ivf.write(3_100, &key).unwrap();
        ivf.write(6_100, &inter).unwrap();
        assert_eq!(ivf.finish().unwrap(), 2);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], b"DKIF");
        assert_eq!(&bytes[8..12], b"VP80");
        assert_eq!(u16::from_le_bytes([bytes[12], bytes[13]]), 640);
        assert_eq!(u16::from_le_bytes([bytes[14], bytes[15]]), 360);
        assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 2);
        // Second frame: 12-byte header after the first (12 + 12 bytes), timestamp 3000 ticks.
        let second = 32 + 12 + key.len();
        let ts = u64::from_le_bytes(bytes[second + 4..second + 12].try_into().unwrap());
        assert_eq!(ts, 3_000);
        assert_eq!(bytes.len(), second + 12 + inter.len());
        std::fs::remove_file(path).unwrap();
    }
}
