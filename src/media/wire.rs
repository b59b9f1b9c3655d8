//! On-the-wire sizes of one media packet: the single documented place for the header overheads that
//! the samples were sized with and that the harness and reports use to turn payload bytes into
//! link bandwidth.
//!
//! What a browser-like sender puts on the wire toward rtcd (specs/rtcd.md §3.2):
//! - **Audio** negotiates `urn:ietf:params:rtp-hdrext:ssrc-audio-level` and transport-wide-cc only
//!   (rtcd registers `sdes:mid` for video, not audio; it registers no abs-send-time). In the RFC 8285
//!   one-byte form that is 2 B (audio level) + 3 B (transport-cc) = 5 B of elements, padded to 8, plus
//!   the 4 B `0xBEDE` block header: **12 B**. Adding `mid` (2 B) would still fit in 12 B; adding
//!   abs-send-time (4 B) would make it 16 B.
//! - **Video** carries `sdes:mid` (2 B with a one-character mid), `sdes:rtp-stream-id` (2 B, rid `l`
//!   or `h`) and transport-cc (3 B): 7 B padded to 8, plus 4: **12 B** (rtcd strips them on forward).
//! - SRTP with `AES_CM_128_HMAC_SHA1_80` appends a **10 B** authentication tag.
//! - UDP 8 B, IPv4 20 B without options, Ethernet II 14 B (no preamble, FCS or VLAN tag; what
//!   interface counters and cloud bandwidth metrics count).
//!
//! So every audio packet costs its Opus payload + 76 B; at 50 packets/s that is
//! (payload + 76) × 400 bit/s, e.g. 147 B → 89.2 kbps and 167 B → 97.2 kbps, the per-stream figures
//! derived from the published tables (specs/calls-loadtest.md §2.5, §2.6).

use std::time::Duration;

/// Fixed RTP header (RFC 3550), no CSRCs.
pub const RTP_HEADER: usize = 12;
/// RFC 8285 one-byte header-extension block header (`0xBEDE` + length in 32-bit words).
pub const EXTENSION_BLOCK_HEADER: usize = 4;
/// ssrc-audio-level element: 1 B id/len + 1 B level (RFC 6464).
pub const EXT_AUDIO_LEVEL: usize = 2;
/// transport-wide-cc element: 1 B id/len + 2 B sequence number.
pub const EXT_TRANSPORT_CC: usize = 3;
/// sdes:mid element with a one-character mid.
pub const EXT_MID: usize = 2;
/// sdes:rtp-stream-id element with a one-character rid (`l`, `h`).
pub const EXT_RID: usize = 2;
/// SRTP authentication tag of `AES_CM_128_HMAC_SHA1_80`.
pub const SRTP_AUTH_TAG: usize = 10;
/// UDP header.
pub const UDP_HEADER: usize = 8;
/// IPv4 header without options.
pub const IPV4_HEADER: usize = 20;
/// Ethernet II header (destination, source, ethertype).
pub const ETHERNET_HEADER: usize = 14;

/// Size of a one-byte-form header-extension block holding elements of the given total size:
/// the block header plus the elements padded to a multiple of 4 B; 0 when there are none.
pub const fn extension_block(elements: usize) -> usize {
    if elements == 0 {
        0
    } else {
        EXTENSION_BLOCK_HEADER + elements.div_ceil(4) * 4
    }
}

/// Header extensions on an audio packet: audio level + transport-cc (12 B).
pub const AUDIO_HEADER_EXTENSIONS: usize = extension_block(EXT_AUDIO_LEVEL + EXT_TRANSPORT_CC);
/// Header extensions on a video packet from the sender: mid + rid + transport-cc (12 B).
pub const VIDEO_HEADER_EXTENSIONS: usize = extension_block(EXT_MID + EXT_RID + EXT_TRANSPORT_CC);

/// Everything below the RTP header on the wire: SRTP tag, UDP, IPv4, Ethernet (52 B).
pub const TRANSPORT_OVERHEAD: usize = SRTP_AUTH_TAG + UDP_HEADER + IPV4_HEADER + ETHERNET_HEADER;
/// Bytes an audio packet adds to its Opus payload on the wire (76 B).
pub const AUDIO_OVERHEAD: usize = RTP_HEADER + AUDIO_HEADER_EXTENSIONS + TRANSPORT_OVERHEAD;
/// Bytes a video packet adds to its RTP payload (VP8 descriptor included in the payload) (76 B).
pub const VIDEO_OVERHEAD: usize = RTP_HEADER + VIDEO_HEADER_EXTENSIONS + TRANSPORT_OVERHEAD;

/// Largest RTP packet (header + extensions + payload, before SRTP) the video packetizer makes; the
/// 1200 B the official load-test tool and browsers use, which keeps SRTP + UDP + IP under any MTU.
pub const RTP_MTU: usize = 1200;
/// Largest RTP payload (VP8 payload descriptor + VP8 data) of a video packet.
pub const VIDEO_MAX_RTP_PAYLOAD: usize = RTP_MTU - RTP_HEADER - VIDEO_HEADER_EXTENSIONS;

/// On-wire size of an audio packet with `payload` bytes of Opus.
pub const fn audio_packet_on_wire(payload: usize) -> usize {
    payload + AUDIO_OVERHEAD
}

/// On-wire size of a video packet with `payload` bytes of RTP payload.
pub const fn video_packet_on_wire(payload: usize) -> usize {
    payload + VIDEO_OVERHEAD
}

/// Bit rate in kbit/s (1 kbit = 1000 bit) of `bytes` sent over `over`; 0 for an empty interval.
pub fn kbps(bytes: u64, over: Duration) -> f64 {
    let secs = over.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    bytes as f64 * 8.0 / secs / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overheads_add_up_as_documented() {
        assert_eq!(AUDIO_HEADER_EXTENSIONS, 12);
        assert_eq!(VIDEO_HEADER_EXTENSIONS, 12);
        assert_eq!(
            extension_block(EXT_AUDIO_LEVEL + EXT_TRANSPORT_CC + EXT_MID),
            12
        );
        assert_eq!(extension_block(EXT_AUDIO_LEVEL + EXT_TRANSPORT_CC + 4), 16);
        assert_eq!(extension_block(0), 0);
        assert_eq!(AUDIO_OVERHEAD, 76);
        assert_eq!(VIDEO_OVERHEAD, 76);
        assert_eq!(VIDEO_MAX_RTP_PAYLOAD, 1176);
    }

    #[test]
    fn audio_sizes_hit_the_table_rates() {
        let per_second = |payload: usize| audio_packet_on_wire(payload) as u64 * 50;
        let k89 = kbps(per_second(147), Duration::from_secs(1));
        let k97 = kbps(per_second(167), Duration::from_secs(1));
        assert!((k89 - 89.2).abs() < 1e-9, "{k89}");
        assert!((k97 - 97.2).abs() < 1e-9, "{k97}");
        assert_eq!(kbps(100, Duration::ZERO), 0.0);
    }
}
