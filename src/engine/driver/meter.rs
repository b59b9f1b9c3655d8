//! Wire metering for the driver: every datagram a participant sends or receives is counted in the
//! run's [`HotCounters`] per flow — audio, screen or video by the stream's SSRC (the RTP header is
//! in the clear under SRTP), everything else (RTCP, STUN, DTLS, SCTP) as control — so bandwidth is
//! measured where the bytes leave and arrive, as a NIC would count them.
//!
//! Sent streams are recognised by the participant's own publications ([`Participant::sent_role`]);
//! received ones by the SSRCs its RTP events named ([`RxKinds::learn`]), so a stream's kind is
//! known from its first packet on (a datagram is classified after the participant saw it).

use std::sync::Arc;

use callsref::proto::rtcd::ids::TrackKind as WireKind;

use crate::engine::participant::{Event, Participant};
use crate::engine::publish::Role;
use crate::measure::{Flow, HotCounters, TrackKind};

/// The SSRC of an RTP datagram; `None` for RTCP (PT 192..=223), STUN, DTLS and anything else.
pub fn rtp_ssrc(d: &[u8]) -> Option<u32> {
    if d.len() < 12 || !(128..=191).contains(&d[0]) || (192..=223).contains(&d[1]) {
        return None;
    }
    Some(u32::from_be_bytes([d[8], d[9], d[10], d[11]]))
}

fn role_kind(role: Role) -> TrackKind {
    match role {
        Role::Voice => TrackKind::Audio,
        Role::Screen => TrackKind::Screen,
        Role::Video => TrackKind::Video,
    }
}

fn wire_kind(kind: WireKind) -> TrackKind {
    match kind {
        WireKind::Voice | WireKind::ScreenAudio => TrackKind::Audio,
        WireKind::Screen => TrackKind::Screen,
        WireKind::Video => TrackKind::Video,
    }
}

/// The received media streams of one participant and their kind (a handful per participant).
#[derive(Debug, Default)]
pub struct RxKinds(Vec<(u32, TrackKind)>);

impl RxKinds {
    /// Learns a stream's kind from the participant's RTP event.
    pub fn learn(&mut self, event: &Event) {
        if let Event::Rtp(r) = event
            && let Some(kind) = r.kind
        {
            let ssrc = *r.ssrc;
            if !self.0.iter().any(|(s, _)| *s == ssrc) {
                self.0.push((ssrc, wire_kind(kind)));
            }
        }
    }

    fn kind(&self, ssrc: u32) -> Option<TrackKind> {
        self.0.iter().find(|(s, _)| *s == ssrc).map(|(_, k)| *k)
    }
}

/// Counts datagrams into the shared counters.
#[derive(Debug, Clone)]
pub struct Meter(pub Arc<HotCounters>);

impl Meter {
    /// `p` sent `contents` to the target.
    pub fn sent(&self, p: &Participant, contents: &[u8]) {
        let kind = rtp_ssrc(contents)
            .and_then(|ssrc| p.sent_role(ssrc.into()))
            .map(role_kind);
        self.0
            .sent(kind.map_or(Flow::Control, Flow::Media), contents.len());
    }

    /// A participant with the received streams `rx` got `contents` from the target.
    pub fn received(&self, rx: &RxKinds, contents: &[u8]) {
        let kind = rtp_ssrc(contents).and_then(|ssrc| rx.kind(ssrc));
        self.0
            .received(kind.map_or(Flow::Control, Flow::Media), contents.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_are_told_apart_by_their_first_bytes() {
        let mut rtp = vec![0x90, 111, 0, 1, 0, 0, 0, 9, 0xde, 0xad, 0xbe, 0xef, 1, 2];
        assert_eq!(rtp_ssrc(&rtp), Some(0xdead_beef));
        rtp[1] = 0x80 | 96; // marker bit set, VP8
        assert_eq!(rtp_ssrc(&rtp), Some(0xdead_beef));
        rtp[1] = 200; // RTCP sender report
        assert_eq!(rtp_ssrc(&rtp), None);
        assert_eq!(
            rtp_ssrc(&[0, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0]),
            None
        ); // STUN
        assert_eq!(rtp_ssrc(&[23, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None); // DTLS
        assert_eq!(rtp_ssrc(&[0x80, 111, 0]), None);
    }

    #[test]
    fn unknown_streams_count_as_control() {
        let counters = Arc::new(HotCounters::default());
        let meter = Meter(Arc::clone(&counters));
        let rtp = [0x80, 111, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7, 1, 2, 3];
        meter.received(&RxKinds::default(), &rtp);
        let rx = RxKinds(vec![(7, TrackKind::Audio)]);
        meter.received(&rx, &rtp);
        let v = counters.values();
        assert_eq!(v.packets_out, [1, 0, 0, 1]);
        // 15 B of UDP payload + 42 B of IPv4, UDP and Ethernet headers each.
        assert_eq!(v.bytes_out, [57, 0, 0, 57]);
    }
}
