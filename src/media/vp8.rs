//! VP8 RTP packetization (RFC 7741), done once per sample so every participant shares the packets.
//!
//! str0m 0.25 keeps its VP8 packetizer crate-private; it does export `Vp8Descriptor`/`Vp8Patch`, which
//! rewrite the PictureID of a shared payload while serializing (`RtpWrite::vp8_patch`). So every packet
//! here carries the same fixed 4-byte descriptor shape browsers send, X=1, I=1, M=1 (15-bit PictureID),
//! with PictureID 0 as a placeholder that the sender patches per participant:
//!
//! ```text
//! byte 0: X=1 R N=0 S PartID=0   (S=1 on the first packet of a frame)
//! byte 1: I=1 L=0 T=0 K=0 RSV
//! byte 2: M=1 PictureID[14..8]
//! byte 3: PictureID[7..0]
//! ```

use std::sync::Arc;

/// Length of the payload descriptor on every packet.
pub const DESCRIPTOR_LEN: usize = 4;
/// Offset of the two PictureID bytes in the payload.
pub const PICTURE_ID_OFFSET: usize = 2;
/// PictureID is 15 bits.
pub const PICTURE_ID_MASK: u16 = 0x7fff;

/// Splits `frame` into RTP payloads of at most `max_payload` bytes (descriptor included), sizes
/// balanced like libwebrtc's so the last packet is not a runt. `max_payload` must exceed the
/// descriptor; an empty frame gives no packets.
pub fn packetize(frame: &[u8], max_payload: usize) -> Vec<Arc<[u8]>> {
    let room = max_payload.saturating_sub(DESCRIPTOR_LEN).max(1);
    if frame.is_empty() {
        return Vec::new();
    }
    let count = frame.len().div_ceil(room);
    let (base, extra) = (frame.len() / count, frame.len() % count);
    let mut out = Vec::with_capacity(count);
    let mut at = 0;
    for i in 0..count {
        let len = base + usize::from(i < extra);
        let mut p = Vec::with_capacity(DESCRIPTOR_LEN + len);
        let start = if i == 0 { 0x10 } else { 0x00 };
        p.extend_from_slice(&[0x80 | start, 0x80, 0x80, 0x00]);
        p.extend_from_slice(&frame[at..at + len]);
        at += len;
        out.push(Arc::from(p));
    }
    out
}

/// Writes `picture_id` (15 bits) into a payload made by [`packetize`], for callers that copy the
/// payload instead of using str0m's `Vp8Patch`.
pub fn set_picture_id(payload: &mut [u8], picture_id: u16) {
    let pid = picture_id & PICTURE_ID_MASK;
    if let Some(b) = payload.get_mut(PICTURE_ID_OFFSET..PICTURE_ID_OFFSET + 2) {
        b[0] = 0x80 | (pid >> 8) as u8;
        b[1] = (pid & 0xff) as u8;
    }
}

/// Reads the 15-bit PictureID of a payload made by [`packetize`]; `None` for another shape.
pub fn picture_id(payload: &[u8]) -> Option<u16> {
    if payload.len() < DESCRIPTOR_LEN || payload[0] & 0x80 == 0 || payload[1] & 0x80 == 0 {
        return None;
    }
    if payload[2] & 0x80 == 0 {
        return None;
    }
    Some((u16::from(payload[2] & 0x7f) << 8) | u16::from(payload[3]))
}

/// True when the payload starts a frame (S=1, partition 0).
pub fn starts_frame(payload: &[u8]) -> bool {
    payload.first().is_some_and(|b| b & 0x1f == 0x10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_evenly_and_reassembles() {
        let frame: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
        let packets = packetize(&frame, 1176);
        assert_eq!(packets.len(), 3);
        let sizes: Vec<usize> = packets.iter().map(|p| p.len() - DESCRIPTOR_LEN).collect();
        assert_eq!(sizes, vec![834, 833, 833]);
        assert!(packets.iter().all(|p| p.len() <= 1176));
        assert!(starts_frame(&packets[0]));
        assert!(!starts_frame(&packets[1]));
        let joined: Vec<u8> = packets
            .iter()
            .flat_map(|p| p[DESCRIPTOR_LEN..].to_vec())
            .collect();
        assert_eq!(joined, frame);
        assert!(packetize(&[], 1176).is_empty());
        assert_eq!(packetize(&[1, 2, 3], 1176).len(), 1);
    }

    #[test]
    fn picture_id_round_trips() {
        let mut p = packetize(&[0x10, 0, 0], 100)[0].to_vec();
        assert_eq!(picture_id(&p), Some(0));
        set_picture_id(&mut p, 0x7abc);
        assert_eq!(picture_id(&p), Some(0x7abc));
        set_picture_id(&mut p, 0xffff);
        assert_eq!(picture_id(&p), Some(0x7fff));
        assert_eq!(picture_id(&[0x10, 0, 0]), None);
    }
}
