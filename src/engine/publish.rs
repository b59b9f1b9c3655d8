//! What a participant sends: its published tracks (mic, screen `l`/`h`, camera), each fed by a
//! [`MediaSource`] and written to str0m in RTP mode.
//!
//! A publication is created when the user turns the medium on, gets its mid when the participant's
//! own offer is created, and starts sending only once rtcd's answer is applied (packets before that
//! would be dropped by str0m anyway).

use std::sync::Arc;
use std::time::Instant;

use str0m::Rtc;
use str0m::media::{Mid, Pt, Rid};
use str0m::rtp::{ExtensionValues, RtpWrite, SeqNo, Ssrc, Vp8Descriptor};

use callsref::sfu::vad::Vad;

use super::sendlog::SendRing;
use super::source::{MediaPacket, MediaSource};

/// The role of a published track, as rtcd classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Microphone (Opus).
    Voice,
    /// Screen share (VP8), possibly one of two simulcast layers.
    Screen,
    /// Camera (VP8).
    Video,
}

/// One published stream (a track, or one simulcast layer of it).
#[derive(Debug)]
pub struct Publication {
    pub role: Role,
    /// Simulcast layer (`l` or `h`), `None` for a plain track.
    pub rid: Option<Rid>,
    pub source: Box<dyn MediaSource>,
    /// Set when the participant's offer adds the m-line.
    pub mid: Option<Mid>,
    /// Set once the answer is applied and the payload type is known.
    pub pt: Option<Pt>,
    /// Whether packets are currently sent (negotiated, not muted, not removed).
    pub sending: bool,
    /// Packets written so far.
    pub packets: u64,
    /// The SSRC str0m sends this stream with, known once a packet was written (lets a driver tell
    /// its outgoing datagrams apart per role for bandwidth accounting).
    pub ssrc: Option<Ssrc>,
    /// Where send instants are recorded for receivers' one-way latency (voice only).
    pub ring: Option<Arc<SendRing>>,
    /// rtcd's VAD rule (rtcd.md §3.5, the reference SFU's implementation) run on the levels this
    /// mic sends, so the packet that turns voice on at the SFU is known by its send instant
    /// (voice only).
    pub vad: Option<Vad>,
    /// Send instant of the packet that turned the replica's voice on, until rtcd's `vad` on
    /// arrives for it (VAD event latency).
    pub voice_onset: Option<Instant>,
}

impl Publication {
    pub fn new(role: Role, rid: Option<&str>, source: Box<dyn MediaSource>) -> Self {
        Publication {
            role,
            rid: rid.map(Rid::from),
            source,
            mid: None,
            pt: None,
            sending: false,
            packets: 0,
            ssrc: None,
            ring: None,
            vad: (role == Role::Voice).then(Vad::default),
            voice_onset: None,
        }
    }

    /// Restarts the VAD replica, as rtcd resets its monitor on `mute` and `unmute`.
    pub fn reset_vad(&mut self) {
        if let Some(vad) = &mut self.vad {
            vad.reset();
        }
        self.voice_onset = None;
    }

    /// The next instant this publication has a packet due, if it is sending.
    pub fn due(&self) -> Option<Instant> {
        if self.sending && self.pt.is_some() {
            self.source.next_at()
        } else {
            None
        }
    }

    /// Marks the publication negotiated: finds its payload type and starts the source.
    pub fn negotiated(&mut self, rtc: &Rtc, now: Instant) {
        let Some(mid) = self.mid else { return };
        // rtcd answers with the PT we offered (Opus 111, VP8 96 in its media engine); the first
        // remote PT of the m-line is the agreed primary codec.
        self.pt = rtc.media(mid).and_then(|m| m.remote_pts().first().copied());
        if self.pt.is_some() {
            self.source.start(now);
            self.sending = true;
        }
    }

    /// Writes one due packet, if any. Returns whether a packet was written (a str0m mutation, so the
    /// caller must drain `poll_output` before the next one).
    pub fn write_due(&mut self, rtc: &mut Rtc, now: Instant) -> bool {
        let (Some(mid), Some(pt)) = (self.mid, self.pt) else {
            return false;
        };
        let Some(packet) = self.source.poll(now) else {
            return false;
        };
        let MediaPacket {
            payload,
            timestamp,
            seq,
            marker,
            audio_level,
            picture_id,
            ..
        } = packet;
        let mut ext = ExtensionValues::default();
        if let Some(level) = audio_level {
            // str0m writes the audio-level extension only when voice activity is set too, and
            // takes the level as negative dBov.
            let level = level.clamp(0, 127);
            ext.audio_level = Some(-level);
            ext.voice_activity = Some(level < 127);
        }
        let mut api = rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, self.rid) else {
            return false;
        };
        self.ssrc = Some(tx.ssrc());
        // The PictureID is patched as str0m serialises the packet, so the shared payload is never
        // copied; a payload without a VP8 descriptor is sent unpatched.
        let patch = picture_id.and_then(|pid| {
            Vp8Descriptor::parse(&payload)
                .ok()
                .and_then(|d| d.patch().picture_id(pid).build().ok())
        });
        let mut write = RtpWrite::new(pt, SeqNo::from(seq), timestamp, now, payload)
            .marker(marker)
            .ext_vals(ext)
            // Video is NACK-able. str0m answers NACKs only through an RTX stream, and rtcd
            // registers no RTX codec, so against rtcd its NACKs to a publisher go unanswered;
            // against a peer that negotiates RTX they are served from str0m's cache.
            .nackable(self.role != Role::Voice);
        if let Some(patch) = patch {
            write = write.vp8_patch(patch);
        }
        tx.write_rtp(write);
        if let Some(ring) = &self.ring {
            // The low 16 bits are the wire sequence number the receiver sees.
            ring.record(seq as u16, now);
        }
        if let (Some(vad), Some(level)) = (&mut self.vad, audio_level)
            && vad.push(level.clamp(0, 127) as u8, now) == Some(true)
        {
            self.voice_onset = Some(now);
        }
        self.packets += 1;
        true
    }
}
