//! The forwarding hot path and keyframe requests: packets from a publisher to every bound
//! receiver, and the bindings that connect them once a receiver has negotiated a track.

use super::{Output, Sfu};
use crate::sfu::event::{SfuEvent, TrackDirection};
use crate::sfu::session::{SessionIdx, TrackAction};
use crate::sfu::track::{Binding, SourceId, TrackType, is_audio};
use std::time::Instant;
use str0m::media::{KeyframeRequestKind, Mid};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};

/// Oldest packet a NACK can still recover (str0m's default; rtcd bounds by count only).
const NACK_HISTORY_AGE: std::time::Duration = std::time::Duration::from_secs(3);

impl Sfu {
    /// The hot path: one incoming packet to every bound receiver.
    pub(super) fn forward(&mut self, idx: SessionIdx, pkt: RtpPacket, now: Instant) {
        let Some(publisher) = self
            .sessions
            .get_mut(idx.0 as usize)
            .and_then(|s| s.as_mut())
        else {
            return;
        };
        let ssrc = pkt.header.ssrc;
        let (sid, rid) = match publisher.rx_ssrcs.iter().find(|(s, _, _)| *s == ssrc) {
            Some((_, sid, rid)) => (*sid, *rid),
            None => {
                let mut api = publisher.rtc.direct_api();
                let Some(rx) = api.stream_rx(&ssrc) else {
                    return;
                };
                let (mid, rid) = (rx.mid(), rx.rid());
                let Some((_, sid)) = publisher.published.iter().find(|(m, _)| *m == mid) else {
                    return;
                };
                publisher.rx_ssrcs.push((ssrc, *sid, rid));
                (*sid, rid)
            }
        };
        let Some(source) = self.sources.get_mut(&sid) else {
            return;
        };
        if !source.enabled {
            return;
        }
        let audio = is_audio(source.kind);
        if source.kind == TrackType::Voice
            && let Some(level) = pkt.header.ext_vals.audio_level
        {
            let dbov = level.unsigned_abs();
            if let Some(on) = source.vad.push(dbov, now) {
                publisher.send_vad(on);
            }
        }
        let ext = if audio {
            ExtensionValues {
                audio_level: pkt.header.ext_vals.audio_level,
                voice_activity: pkt.header.ext_vals.voice_activity,
                ..Default::default()
            }
        } else {
            ExtensionValues::default()
        };
        let pt = source.codec.pt();
        let seq = *pkt.seq_no;
        for b in source.bindings.iter_mut() {
            if b.rid.is_some() && b.rid != rid {
                continue;
            }
            let base = *b.seq_base.get_or_insert(seq & !0xffff);
            let Some(out_seq) = seq.checked_sub(base) else {
                continue;
            };
            let Some(rx) = self
                .sessions
                .get_mut(b.session.0 as usize)
                .and_then(|s| s.as_mut())
            else {
                continue;
            };
            let mut api = rx.rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(b.mid, None) else {
                continue;
            };
            let w = RtpWrite::new(
                pt,
                out_seq.into(),
                pkt.header.timestamp,
                pkt.timestamp,
                // An `Arc<[u8]>`: receivers (and str0m's NACK history) share one buffer.
                pkt.payload.clone(),
            )
            .marker(pkt.header.marker)
            .ext_vals(ext.clone())
            .nackable(!audio);
            tx.write_rtp(w);
            if !rx.queued {
                rx.queued = true;
                self.dirty.push(b.session);
            }
        }
    }

    pub(super) fn bind(&mut self, rx: SessionIdx, sid: SourceId, mid: Mid) {
        let Some(src) = self.sources.get_mut(&sid) else {
            // The source left while we negotiated: take the m-line down again.
            if let Some(s) = self.session_mut(rx) {
                s.queue_action(TrackAction::Remove { mid });
            }
            self.mark(rx);
            return;
        };
        src.bindings.push(Binding {
            session: rx,
            mid,
            rid: src.initial_rid(),
            seq_base: None,
        });
        let mime = src.codec.mime();
        let owner = src.owner;
        let (is_audio, m, rid) = (is_audio(src.kind), src.mid, src.initial_rid());
        if let Some(g) = self.session(rx).map(|s| s.ids.group_id.clone()) {
            self.out.push_back(Output::Event(SfuEvent::Tracks {
                group: g,
                direction: TrackDirection::Out,
                mime,
                delta: 1,
            }));
        }
        // A new viewer of video needs a keyframe to start decoding.
        if !is_audio {
            let history = self.config.nack_buffer_size;
            if let Some(s) = self.session_mut(rx)
                && let Some(tx) = s.rtc.direct_api().stream_tx_by_mid(mid, None)
            {
                // rtcd's responder answers every NACK its buffer can: no resend-ratio cap.
                tx.set_rtx_cache(history, NACK_HISTORY_AGE, None);
            }
            if let Some(p) = self.session_mut(owner)
                && let Some(rx) = p.rtc.direct_api().stream_rx_by_mid(m, rid)
            {
                rx.request_keyframe(KeyframeRequestKind::Pli);
            }
            self.mark(owner);
        }
    }

    pub(super) fn keyframe_request(
        &mut self,
        idx: SessionIdx,
        mid: Mid,
        kind: KeyframeRequestKind,
        now: Instant,
    ) {
        let Some(sid) = self.session(idx).and_then(|s| s.out_source(mid)) else {
            return;
        };
        let Some(src) = self.sources.get_mut(&sid) else {
            return;
        };
        if src
            .last_pli
            .is_some_and(|t| now < t + std::time::Duration::from_secs(1))
        {
            return;
        }
        src.last_pli = Some(now);
        let rid = src
            .bindings
            .iter()
            .find(|b| b.session == idx)
            .and_then(|b| b.rid);
        let (owner, m) = (src.owner, src.mid);
        if let Some(p) = self.session_mut(owner)
            && let Some(rx) = p.rtc.direct_api().stream_rx_by_mid(m, rid)
        {
            rx.request_keyframe(kind);
        }
        self.mark(owner);
    }
}
