//! What the participant does with str0m's events: connection milestones, remote tracks (kind and
//! sender from the track id), received RTP (NACK switched on for video, PLI for a new screen track),
//! keyframe requests for its own sources, stats for the DC reports, and the DC messages from rtcd.

use callsref::proto::rtcd::dc::DcMessage;
use callsref::proto::rtcd::ids::{TrackId, TrackKind};
use str0m::media::MediaKind;
use str0m::rtp::Ssrc;
use str0m::{Event as RtcEvent, IceConnectionState};

use super::super::negotiation::LockStep;
use super::super::signal::{self, Via};
use super::{
    Event, Output, Participant, ParticipantError, Remote, RemoteTrack, RtpInfo, STATS_INTERVAL,
};

impl Participant {
    pub(super) fn on_rtc_event(&mut self, e: RtcEvent) -> Result<(), ParticipantError> {
        let ev = match e {
            RtcEvent::IceConnectionStateChange(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) if !self.ice_connected => {
                // As the controlling agent str0m may go from Checking straight to Completed.
                self.ice_connected = true;
                Event::IceConnected
            }
            RtcEvent::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                Event::IceDisconnected
            }
            RtcEvent::Connected => Event::DtlsConnected,
            RtcEvent::ChannelOpen(id, _) if Some(id) == self.channel => {
                self.dc_open = true;
                self.ping_at = Some(self.now);
                self.stats_at = Some(self.now + STATS_INTERVAL);
                Event::DcOpen
            }
            RtcEvent::ChannelData(d) if Some(d.id) == self.channel => {
                return self.on_dc(&d.data, d.binary);
            }
            RtcEvent::MediaAdded(m) => {
                let info = self.media_map.get(&m.mid.to_string()).cloned();
                let track_id = self
                    .rtc
                    .media(m.mid)
                    .and_then(|media| TrackId::parse(media.track_id()).ok());
                // The track id (msid) is authoritative. rtcd v1.2.6 fills the media map's
                // `sender_id` with the *receiving* session's own id (checked against a real rtcd),
                // and the map travels on the DC while the offer comes over WS, so it can also
                // arrive after the track: it is only a fallback for the kind.
                let kind = track_id.as_ref().map(|t| t.kind).or(info.map(|i| i.kind));
                let sender = track_id.as_ref().map(|t| t.session_id.clone());
                let track = RemoteTrack {
                    mid: m.mid,
                    media: m.kind,
                    kind,
                    sender,
                    track_id,
                    packets: 0,
                };
                let ring = match (&self.send_log, &track.sender) {
                    (Some(log), Some(sender)) if kind == Some(TrackKind::Voice) => {
                        Some(log.voice(sender))
                    }
                    _ => None,
                };
                if m.kind == MediaKind::Video && kind == Some(TrackKind::Screen) {
                    self.pli_owed.push(m.mid);
                }
                let entry = Remote {
                    track: track.clone(),
                    ring,
                };
                // A reused mid replaces its old track in place, so cached indexes stay valid.
                match self.remote.iter_mut().find(|r| r.track.mid == m.mid) {
                    Some(old) => *old = entry,
                    None => self.remote.push(entry),
                }
                Event::TrackAdded(track)
            }
            RtcEvent::RtpPacket(p) => {
                let ssrc = p.header.ssrc;
                let remote = self.remote_index(ssrc).map(|i| &mut self.remote[i]);
                let (mid, kind, sent) = match remote {
                    Some(r) => {
                        r.track.packets += 1;
                        // The SFU keeps the publisher's low 16 bits of the sequence number for
                        // audio.
                        let sent = r.ring.as_ref().and_then(|g| g.sent_at(*p.seq_no as u16));
                        (Some(r.track.mid), r.track.kind, sent)
                    }
                    None => {
                        let mid = self.rtc.direct_api().stream_rx(&ssrc).map(|rx| rx.mid());
                        (mid, None, None)
                    }
                };
                if !self.nack_on.contains(&p.header.ssrc)
                    && matches!(kind, Some(TrackKind::Screen | TrackKind::Video))
                {
                    // str0m suppresses NACKs on streams without RTX, and rtcd negotiates none;
                    // a Calls client still NACKs (rtcd's responder resends on the same SSRC).
                    self.nack_on.push(p.header.ssrc);
                    if let Some(rx) = self.rtc.direct_api().stream_rx(&p.header.ssrc) {
                        rx.suppress_nack(false);
                    }
                }
                let mut info = RtpInfo::new(&p, mid, kind);
                info.sent = sent;
                Event::Rtp(info)
            }
            RtcEvent::KeyframeRequest(r) => {
                let role = self
                    .pubs
                    .iter_mut()
                    .find(|p| p.mid == Some(r.mid) && p.rid == r.rid)
                    .map(|p| {
                        p.source.request_keyframe();
                        p.role
                    });
                Event::KeyframeRequested { role, rid: r.rid }
            }
            RtcEvent::MediaIngressStats(s) => {
                if let Some(loss) = s.loss {
                    self.loss = f64::from(loss);
                }
                // Jitter is reported in RTP clock units; convert to seconds by the media clock.
                let clock = if self
                    .remote
                    .iter()
                    .any(|r| r.track.mid == s.mid && r.track.media == MediaKind::Audio)
                {
                    48_000.0
                } else {
                    90_000.0
                };
                self.jitter_s = f64::from(s.jitter) / clock;
                if let Some(rtt) = s.rtt {
                    self.rtt_s = rtt.as_secs_f64();
                }
                return Ok(());
            }
            RtcEvent::Closed => {
                self.close();
                return Ok(());
            }
            _ => return Ok(()),
        };
        self.out.push_back(Output::Event(ev));
        Ok(())
    }

    /// The index in `remote` of the track an SSRC belongs to, cached per SSRC: every received
    /// packet needs it, and a call's receiver has few streams, so a short scan beats hashing.
    fn remote_index(&mut self, ssrc: Ssrc) -> Option<usize> {
        if let Some(&(_, i)) = self.ssrc_index.iter().find(|(s, _)| *s == ssrc) {
            return Some(i);
        }
        let mid = self.rtc.direct_api().stream_rx(&ssrc).map(|rx| rx.mid())?;
        let i = self.remote.iter().position(|r| r.track.mid == mid)?;
        self.ssrc_index.push((ssrc, i));
        Some(i)
    }

    pub(super) fn on_dc(&mut self, data: &[u8], binary: bool) -> Result<(), ParticipantError> {
        if !binary {
            return Ok(());
        }
        let msg = DcMessage::decode(data).map_err(signal::SignalError::from)?;
        match msg {
            DcMessage::Pong => {
                if let Some(sent) = self.ping_sent.take() {
                    let rtt = self.now.saturating_duration_since(sent);
                    self.out.push_back(Output::Event(Event::Pong { rtt }));
                }
            }
            DcMessage::LockResponse(granted) => match self.nego.on_lock_reply(granted, self.now) {
                LockStep::Offer(change) => self.offer_change(change)?,
                LockStep::GaveUp(change) => {
                    self.out
                        .push_back(Output::Event(Event::LockTimeout(change)));
                }
                LockStep::RetryAt(_) | LockStep::Ignore => {}
            },
            DcMessage::MediaMap(map) => self.media_map.extend(map),
            DcMessage::Sdp(sdp) => self.on_sdp(sdp, Via::Dc)?,
            _ => {}
        }
        Ok(())
    }

    pub(super) fn write_dc(&mut self, msg: &DcMessage) {
        let Some(id) = self.channel else { return };
        let bytes = msg.encode();
        if let Some(mut ch) = self.rtc.channel(id) {
            // A full SCTP send buffer drops the message; the DC carries only small control
            // messages, so this only happens when the association is already failing.
            let _ = ch.write(true, &bytes);
        }
    }
}
