//! Track lifecycle across a call: publishing (classifying a new m-line), offering sources to
//! receivers, removing them on screen_off or leave, and closing sessions.

use super::{Output, Sfu};
use crate::sfu::event::{ErrorKind, SfuEvent, TrackDirection};
use crate::sfu::session::{SessionIdx, TrackAction};
use crate::sfu::signal::SignalOut;
use crate::sfu::simulcast::{Layer, RateMonitor};
use crate::sfu::track::{Source, SourceId, TrackCodec, TrackType, new_track_id};
use crate::sfu::vad::Vad;
use str0m::Rtc;
use str0m::format::Codec;
use str0m::media::{MediaKind, Mid, Rid};

impl Sfu {
    pub(super) fn media_added(
        &mut self,
        idx: SessionIdx,
        mid: Mid,
        kind: MediaKind,
        stream_id: &str,
        rids: Vec<Rid>,
    ) {
        let Some(s) = self.session(idx) else { return };
        let screen = s.screen_stream_id.as_deref() == Some(stream_id);
        let track = match kind {
            MediaKind::Audio if screen => TrackType::ScreenAudio,
            MediaKind::Audio => TrackType::Voice,
            MediaKind::Video if screen => TrackType::Screen,
            MediaKind::Video if s.video_stream_id.as_deref() == Some(stream_id) => TrackType::Video,
            MediaKind::Video => {
                // rtcd rejects video that matches neither announced stream.
                let group = s.ids.group_id.clone();
                self.out.push_back(Output::Event(SfuEvent::Error {
                    group,
                    kind: ErrorKind::Track,
                }));
                return;
            }
        };
        let codec = match kind {
            MediaKind::Audio => TrackCodec::Opus,
            MediaKind::Video => video_codec(&s.rtc, mid),
        };
        let key = (s.ids.group_id.clone(), s.ids.call_id.clone());
        let owner_session_id = s.ids.session_id.clone();
        let group = s.ids.group_id.clone();
        let sid = SourceId(self.next_source);
        self.next_source += 1;
        let source = Source {
            owner: idx,
            track_id: new_track_id(track, &owner_session_id, &mut self.rng),
            owner_session_id,
            mid,
            kind: track,
            codec,
            rates: rids
                .iter()
                .map(|r| {
                    let layer = if *r == Rid::from("h") {
                        Layer::High
                    } else {
                        Layer::Low
                    };
                    (*r, RateMonitor::new(layer.window()))
                })
                .collect(),
            rids,
            enabled: true,
            bindings: Vec::new(),
            keyframes: Default::default(),
            vad: Vad::default(),
        };
        self.out.push_back(Output::Event(SfuEvent::Tracks {
            group,
            direction: TrackDirection::In,
            mime: codec.mime(),
            delta: 1,
        }));
        self.sources.insert(sid, source);
        if let Some(s) = self.session_mut(idx) {
            s.published.push((mid, sid));
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.sources.push(sid);
        let members = call.sessions.clone();
        for rx in members {
            if rx != idx && self.session(rx).is_some_and(|s| s.dc_open()) {
                self.offer_source(rx, sid);
            }
        }
    }

    /// Queues `source` to receiver `rx` if the codec suits it (AV1 only to AV1-capable receivers).
    pub(super) fn offer_source(&mut self, rx: SessionIdx, sid: SourceId) {
        let Some(src) = self.sources.get(&sid) else {
            return;
        };
        let Some(r) = self.session(rx) else { return };
        let sender_av1 = self.session(src.owner).is_some_and(|s| s.av1_support);
        if src.codec == TrackCodec::Av1 && !r.av1_support {
            return;
        }
        if src.codec == TrackCodec::Vp8
            && src.kind == TrackType::Screen
            && sender_av1
            && r.av1_support
        {
            return;
        }
        let action = TrackAction::Add {
            source: sid,
            kind: src.kind,
            sender_id: src.owner_session_id.clone(),
            track_id: src.track_id.clone(),
        };
        if let Some(r) = self.session_mut(rx) {
            r.queue_action(action);
        }
        self.mark(rx);
    }

    pub(super) fn dc_open(&mut self, idx: SessionIdx) {
        let Some(s) = self.session(idx) else { return };
        let key = (s.ids.group_id.clone(), s.ids.call_id.clone());
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let mut sources: Vec<(TrackType, SourceId)> = call
            .sources
            .iter()
            .filter_map(|id| {
                self.sources
                    .get(id)
                    .filter(|s| s.owner != idx)
                    .map(|s| (s.kind, *id))
            })
            .collect();
        let order = |t: TrackType| match t {
            TrackType::Voice => 0,
            TrackType::Screen => 1,
            TrackType::ScreenAudio => 2,
            TrackType::Video => 3,
        };
        sources.sort_by_key(|(k, id)| (order(*k), *id));
        for (_, sid) in sources {
            self.offer_source(idx, sid);
        }
    }

    /// Stops forwarding a source everywhere and queues its removal at every viewer.
    pub(super) fn remove_source(&mut self, sid: SourceId) {
        let Some(src) = self.sources.remove(&sid) else {
            return;
        };
        let group = self
            .session(src.owner)
            .map(|s| s.ids.group_id.clone())
            .unwrap_or_default();
        self.out.push_back(Output::Event(SfuEvent::Tracks {
            group: group.clone(),
            direction: TrackDirection::In,
            mime: src.codec.mime(),
            delta: -1,
        }));
        if let Some(s) = self.session_mut(src.owner) {
            s.published.retain(|(_, id)| *id != sid);
            s.rx_ssrcs.retain(|(_, id, _)| *id != sid);
        }
        for b in &src.bindings {
            self.out.push_back(Output::Event(SfuEvent::Tracks {
                group: group.clone(),
                direction: TrackDirection::Out,
                mime: src.codec.mime(),
                delta: -1,
            }));
            let _ = b;
        }
        let key = self
            .session(src.owner)
            .map(|s| (s.ids.group_id.clone(), s.ids.call_id.clone()));
        let members = key
            .and_then(|k| self.calls.get_mut(&k))
            .map(|c| {
                c.sources.retain(|id| *id != sid);
                c.sessions.clone()
            })
            .unwrap_or_default();
        for rx in members {
            if rx == src.owner {
                continue;
            }
            if let Some(s) = self.session_mut(rx) {
                s.remove_out_track(sid);
            }
            self.mark(rx);
        }
    }

    pub(super) fn close_session(&mut self, idx: SessionIdx) {
        let Some(s) = self.session(idx) else { return };
        let published: Vec<SourceId> = s.published.iter().map(|(_, id)| *id).collect();
        let receiving: Vec<SourceId> = s.out_sources().map(|(id, _)| id).collect();
        for sid in published {
            self.remove_source(sid);
        }
        for sid in receiving {
            if let Some(src) = self.sources.get_mut(&sid) {
                let before = src.bindings.len();
                src.bindings.retain(|b| b.session != idx);
                let mime = src.codec.mime();
                if src.bindings.len() < before
                    && let Some(g) = self.session(idx).map(|s| s.ids.group_id.clone())
                {
                    self.out.push_back(Output::Event(SfuEvent::Tracks {
                        group: g,
                        direction: TrackDirection::Out,
                        mime,
                        delta: -1,
                    }));
                }
            }
        }
        let Some(mut s) = self.sessions.get_mut(idx.0 as usize).and_then(|s| s.take()) else {
            return;
        };
        s.rtc.disconnect();
        self.free.push(idx.0);
        self.by_id.remove(&s.ids.session_id);
        for a in &s.addrs {
            self.addrs.remove(a);
        }
        let key = (s.ids.group_id.clone(), s.ids.call_id.clone());
        if let Some(call) = self.calls.get_mut(&key) {
            call.sessions.retain(|i| *i != idx);
            if call.screen_sharer == Some(idx) {
                call.screen_sharer = None;
            }
            if call.sessions.is_empty() {
                self.calls.remove(&key);
            }
        }
        self.out
            .push_back(Output::Event(SfuEvent::ConnState("closed")));
        self.out.push_back(Output::Event(SfuEvent::SessionClosed {
            group: s.ids.group_id.clone(),
        }));
        self.out.push_back(Output::Signal(
            s.join_conn,
            SignalOut::Close {
                session_id: s.ids.session_id,
            },
        ));
    }
}

/// The video codec of a published m-line, from the payload types the client offered.
fn video_codec(rtc: &Rtc, mid: Mid) -> TrackCodec {
    let Some(media) = rtc.media(mid) else {
        return TrackCodec::Vp8;
    };
    for pt in media.remote_pts() {
        let found = rtc
            .codec_config()
            .find(|p| p.pt() == *pt)
            .map(|p| p.spec().codec);
        match found {
            Some(Codec::Av1) => return TrackCodec::Av1,
            Some(Codec::Vp8) => return TrackCodec::Vp8,
            _ => {}
        }
    }
    TrackCodec::Vp8
}
