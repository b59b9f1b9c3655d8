//! The forwarding hot path and keyframe requests: packets from a publisher to every bound
//! receiver, and the bindings that connect them once a receiver has negotiated a track.

use super::{Output, Sfu};
use crate::sfu::event::{SfuEvent, TrackDirection};
use crate::sfu::session::{Session, SessionIdx, TrackAction};
use crate::sfu::simulcast::{
    HIGH_RATE, Layer, LayerChoice, RateMonitor, av1_keyframe_start, vp8_keyframe_start,
};
use crate::sfu::track::{Binding, Source, SourceId, TrackCodec, TrackType, is_audio};
use std::time::Instant;
use str0m::bwe::Bitrate;
use str0m::media::Rid;
use str0m::media::{KeyframeRequestKind, Mid};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};

/// rtcd's GCC maximum: 1.5 × the nominal rate of `h`.
const BWE_CEILING: u64 = (1.5 * HIGH_RATE) as u64;

/// Moves a binding to its pending layer at that layer's keyframe, continuing the receiver's
/// sequence numbers and timeline so the switch is invisible but for the picture.
fn switch_layer(b: &mut Binding, seq: u64, ts: u32, now: Instant) {
    b.rid = b.pending.take();
    if let Some((last_seq, last_ts, at)) = b.last {
        b.seq_offset = Some((last_seq + 1).wrapping_sub(seq));
        // Video clock: 90 kHz; at least one tick so the timeline never stalls.
        let ticks = ((now - at).as_secs_f64() * 90_000.0) as u32;
        b.ts_offset = last_ts.wrapping_add(ticks.max(1)).wrapping_sub(ts);
    }
}

/// The measured rate of `h` among a source's layer monitors, if known yet.
fn layer_rate(rates: &[(Rid, RateMonitor)], now: Instant) -> Option<f64> {
    let high = Rid::from(Layer::High.rid());
    rates
        .iter()
        .find(|(r, _)| *r == high)
        .and_then(|(_, m)| m.rate(now))
}

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
        if source.keyframes.due(rid, now) {
            // A held keyframe request may go now (or its stream has just appeared). The publisher
            // is the session being drained, so the PLI leaves with this drain.
            send_pli(publisher, source, rid, now);
        }
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
        let keyframe = match source.codec {
            TrackCodec::Vp8 => vp8_keyframe_start(&pkt.payload),
            TrackCodec::Av1 => av1_keyframe_start(&pkt.payload),
            TrackCodec::Opus => false,
        };
        if let Some(r) = rid
            && let Some((_, m)) = source.rates.iter_mut().find(|(x, _)| *x == r)
        {
            m.push(now, pkt.payload.len());
        }
        let mut want_keyframe: Option<Rid> = None;
        let (kind, mut wrote) = (source.kind, false);
        for b in source.bindings.iter_mut() {
            if let Some(c) = b.choice.as_mut()
                && c.due(now)
                && let Some(bps) = self
                    .sessions
                    .get(b.session.0 as usize)
                    .and_then(|s| s.as_ref())
                    .and_then(|s| s.estimate)
                && let Some(layer) = c.on_estimate(now, bps, layer_rate(&source.rates, now))
            {
                let to = Rid::from(layer.rid());
                b.pending = (b.rid != Some(to)).then_some(to);
                want_keyframe = b.pending.or(want_keyframe);
            }
            if keyframe && b.pending.is_some() && b.pending == rid {
                switch_layer(b, seq, pkt.header.timestamp, now);
            }
            if b.rid.is_some() && b.rid != rid {
                continue;
            }
            // Keep the publisher's low 16 bits: the receiver's rollover counter starts at 0.
            let offset = *b.seq_offset.get_or_insert(0u64.wrapping_sub(seq & !0xffff));
            let out_seq = seq.wrapping_add(offset);
            if out_seq >= 1 << 48 {
                // From before the first forwarded packet's rollover epoch: nothing to map it to.
                continue;
            }
            let out_ts = pkt.header.timestamp.wrapping_add(b.ts_offset);
            if b.last.is_none_or(|(s, _, _)| out_seq > s) {
                b.last = Some((out_seq, out_ts, now));
            }
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
                out_ts,
                pkt.timestamp,
                // An `Arc<[u8]>`: receivers (and str0m's NACK history) share one buffer.
                pkt.payload.clone(),
            )
            .marker(pkt.header.marker)
            .ext_vals(ext.clone())
            .nackable(!audio);
            tx.write_rtp(w);
            wrote = true;
            if !rx.queued {
                rx.queued = true;
                self.dirty.push(b.session);
            }
        }
        if wrote {
            self.forwarded = Some((idx, kind));
        }
        if let Some(to) = want_keyframe {
            // A viewer waits to switch to this layer at its next keyframe.
            self.request_keyframe(sid, Some(to), now);
        }
    }

    /// Asks a source's publisher for a keyframe on one layer, within the 1/s limit; a request
    /// that cannot go now is held by the source and sent from [`Sfu::forward`] when it can.
    pub(super) fn request_keyframe(&mut self, sid: SourceId, rid: Option<Rid>, now: Instant) {
        let Some(src) = self.sources.get_mut(&sid) else {
            return;
        };
        if !src.keyframes.request(rid, now) {
            return;
        }
        let owner = src.owner;
        let Some(p) = self
            .sessions
            .get_mut(owner.0 as usize)
            .and_then(|s| s.as_mut())
        else {
            return;
        };
        send_pli(p, src, rid, now);
        if !p.queued {
            p.queued = true;
            self.dirty.push(owner);
        }
    }

    pub(super) fn bind(&mut self, rx: SessionIdx, sid: SourceId, mid: Mid, now: Instant) {
        let estimate = self.session(rx).and_then(|s| s.estimate);
        let Some(src) = self.sources.get_mut(&sid) else {
            // The source left while we negotiated: take the m-line down again.
            if let Some(s) = self.session_mut(rx) {
                s.queue_action(TrackAction::Remove { mid });
            }
            self.mark(rx);
            return;
        };
        let choice = src.switchable().then(|| LayerChoice::new(estimate, now));
        let rid = src.initial_rid(choice.as_ref());
        let switchable = choice.is_some();
        src.bindings.push(Binding {
            session: rx,
            mid,
            rid,
            seq_offset: None,
            ts_offset: 0,
            last: None,
            choice,
            pending: None,
        });
        let mime = src.codec.mime();
        let is_audio = is_audio(src.kind);
        if switchable && let Some(s) = self.session_mut(rx) {
            // Probe towards what `h` needs (rtcd's GCC ceiling is 1.5 × 2.5 Mbps).
            s.rtc
                .bwe()
                .set_bitrate(Bitrate::kbps(0), Bitrate::bps(BWE_CEILING));
        }
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
            self.request_keyframe(sid, rid, now);
        }
    }

    /// A viewer's PLI on an outgoing m-line: rtcd forwards it to the publisher as a fresh PLI for
    /// the layer this viewer gets, at most once per second.
    pub(super) fn keyframe_request(&mut self, idx: SessionIdx, mid: Mid, now: Instant) {
        let Some(sid) = self.session(idx).and_then(|s| s.out_source(mid)) else {
            return;
        };
        let Some(src) = self.sources.get(&sid) else {
            return;
        };
        let rid = src
            .bindings
            .iter()
            .find(|b| b.session == idx)
            .and_then(|b| b.rid);
        self.request_keyframe(sid, rid, now);
    }
}

/// Sends a PLI for one layer of `src` from its publisher's session, if that incoming stream
/// exists yet; marks the request sent.
fn send_pli(publisher: &mut Session, src: &mut Source, rid: Option<Rid>, now: Instant) {
    if let Some(rx) = publisher.rtc.direct_api().stream_rx_by_mid(src.mid, rid) {
        rx.request_keyframe(KeyframeRequestKind::Pli);
        src.keyframes.sent(rid, now);
    }
}

impl Sfu {
    /// A receiver's new bandwidth estimate: re-choose the layer of every simulcast source it
    /// views; a change waits for the new layer's keyframe, which is requested now.
    pub(super) fn estimate(&mut self, idx: SessionIdx, bps: f64, now: Instant) {
        let mut requests = Vec::new();
        for (id, src) in self.sources.iter_mut().filter(|(_, s)| s.switchable()) {
            let high = layer_rate(&src.rates, now);
            for b in src.bindings.iter_mut().filter(|b| b.session == idx) {
                let Some(layer) = b
                    .choice
                    .as_mut()
                    .and_then(|c| c.on_estimate(now, bps, high))
                else {
                    continue;
                };
                let rid = Rid::from(layer.rid());
                if b.rid == Some(rid) {
                    b.pending = None;
                } else {
                    b.pending = Some(rid);
                    requests.push((*id, rid));
                }
            }
        }
        for (sid, rid) in requests {
            self.request_keyframe(sid, Some(rid), now);
        }
    }
}
