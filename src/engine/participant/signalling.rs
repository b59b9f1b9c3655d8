//! The participant's signalling: join and the first offer, trickle, server offers and answers over
//! WS or DC, and its own locked offers (rtcd.md §2.3 steps 2–5, 8–9).

use callsref::proto::rtcd::dc::DcMessage;
use callsref::proto::rtcd::rtc::{
    IceCandidateInit, RtcMessage, RtcType, SdpType, SessionDescription,
};
use callsref::proto::rtcd::ws::{JoinData, WsMessage};
use str0m::Candidate;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind, Simulcast, SimulcastLayer};

use super::super::negotiation::{LocalChange, Phase};
use super::super::publish::Role;
use super::super::signal::{self, Via};
use super::{DC_LABEL, Event, Life, Output, Participant, ParticipantError, set_mid};

impl Participant {
    pub(super) fn join(&mut self) -> Result<(), ParticipantError> {
        if self.life != Life::Created {
            return Err(ParticipantError::NotNow("join"));
        }
        self.life = Life::Joined;
        self.out.push_back(Output::Signal(WsMessage::Join(JoinData {
            call_id: self.cfg.call_id.clone(),
            user_id: self.cfg.user_id.clone(),
            session_id: self.cfg.session_id.clone(),
            channel_id: Some(self.cfg.channel_id.clone()),
            av1_support: Some(false),
            dc_signaling: Some(self.cfg.dc_signaling),
        })));
        self.out.push_back(Output::Event(Event::JoinSent));
        let mut api = self.rtc.sdp_api();
        self.channel = Some(api.add_channel(DC_LABEL.to_string()));
        // Invariant: the change set holds the new data channel, so apply() has an offer.
        let (offer, pending) = api
            .apply()
            .expect("a new data channel always needs an offer");
        self.nego.phase = Phase::Initial {
            pending,
            sent: self.now,
        };
        let sdp = offer.to_sdp_string();
        // The candidate belongs to the first (and only, BUNDLE) m-line: the data channel's.
        let first_mid = sdp
            .lines()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .map(|m| m.trim().to_string());
        self.send_sdp(SessionDescription::offer(sdp), Via::Ws);
        self.out.push_back(Output::Event(Event::OfferSent));
        // Trickle: like a browser, the offer carries no candidates; the host candidate follows.
        let cand = Candidate::host(self.cfg.local_addr, "udp")
            .map_err(|e| ParticipantError::Rtc(str0m::RtcError::Ice(e)))?;
        if let Some(c) = self.rtc.add_local_candidate(cand) {
            let init = IceCandidateInit {
                candidate: c.to_sdp_string(),
                sdp_mid: first_mid,
                sdp_mline_index: Some(0),
                username_fragment: Some(self.rtc.direct_api().local_ice_credentials().ufrag),
            };
            self.signal(RtcMessage::ice(&self.cfg.session_id, &init));
        }
        Ok(())
    }

    pub(super) fn send_sdp(&mut self, sdp: SessionDescription, via: Via) {
        match via {
            Via::Ws => self.signal(RtcMessage::sdp(&self.cfg.session_id, &sdp)),
            Via::Dc => self.dc_out.push_back(DcMessage::Sdp(sdp)),
        }
    }

    pub(super) fn on_signal(&mut self, msg: WsMessage) -> Result<(), ParticipantError> {
        match msg {
            WsMessage::Rtc(m) => match m.msg_type {
                RtcType::Sdp => {
                    self.on_sdp(m.parse_sdp().map_err(signal::SignalError::from)?, Via::Ws)
                }
                RtcType::Ice => {
                    let init = m
                        .parse_server_candidate()
                        .map_err(signal::SignalError::from)?;
                    self.on_candidate(&init)
                }
                _ => Ok(()),
            },
            WsMessage::Vad(m) => {
                let on = m.msg_type == RtcType::VoiceOn;
                let onset = if on {
                    self.pubs
                        .iter_mut()
                        .find(|p| p.role == Role::Voice)
                        .and_then(|p| p.voice_onset.take())
                } else {
                    None
                };
                self.out.push_back(Output::Event(Event::VoiceActivity {
                    on,
                    onset,
                    at: self.input_at,
                }));
                Ok(())
            }
            WsMessage::Close { .. } => {
                self.close();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub(super) fn on_candidate(&mut self, init: &IceCandidateInit) -> Result<(), ParticipantError> {
        if init.candidate.is_empty() {
            return Ok(());
        }
        let c = signal::parse_candidate(&init.candidate)?;
        if self.answered {
            self.ready_candidates.push_back(c);
        } else {
            self.early_candidates.push(c);
        }
        Ok(())
    }

    pub(super) fn on_sdp(
        &mut self,
        sdp: SessionDescription,
        via: Via,
    ) -> Result<(), ParticipantError> {
        match sdp.sdp_type {
            SdpType::Offer => self.on_server_offer(&sdp.sdp, via),
            SdpType::Answer => self.on_answer(&sdp.sdp),
            _ => Ok(()),
        }
    }

    pub(super) fn on_server_offer(&mut self, sdp: &str, via: Via) -> Result<(), ParticipantError> {
        let offer = SdpOffer::from_sdp_string(sdp).map_err(signal::SignalError::from)?;
        // rtcd is the impolite peer and we are polite: a server offer rolls back our own one (the
        // lock makes this rare); the change is retried afterwards.
        match std::mem::take(&mut self.nego.phase) {
            Phase::Offering { change, .. } | Phase::Locking { change, .. } => {
                self.nego.retry_first(change);
                self.dc_out.push_back(DcMessage::Unlock);
            }
            Phase::Initial { .. } => {
                return Err(ParticipantError::NotNow(
                    "a server offer before the first answer",
                ));
            }
            Phase::Stable => {}
        }
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        self.mark_answered();
        self.send_sdp(SessionDescription::answer(answer.to_sdp_string()), via);
        self.out
            .push_back(Output::Event(Event::ServerOfferAnswered {
                received: self.input_at,
            }));
        Ok(())
    }

    pub(super) fn on_answer(&mut self, sdp: &str) -> Result<(), ParticipantError> {
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(signal::SignalError::from)?;
        match std::mem::take(&mut self.nego.phase) {
            Phase::Initial { pending, sent } => {
                self.rtc.sdp_api().accept_answer(pending, answer)?;
                self.mark_answered();
                self.out.push_back(Output::Event(Event::Negotiated {
                    change: None,
                    took: self.now.saturating_duration_since(sent),
                }));
            }
            Phase::Offering {
                change,
                pending,
                sent,
            } => {
                self.rtc.sdp_api().accept_answer(pending, answer)?;
                self.dc_out.push_back(DcMessage::Unlock);
                self.after_own_change(change);
                self.out.push_back(Output::Event(Event::Negotiated {
                    change: Some(change),
                    took: self.now.saturating_duration_since(sent),
                }));
            }
            other => {
                self.nego.phase = other;
                return Err(ParticipantError::NotNow("an answer without an offer"));
            }
        }
        Ok(())
    }

    pub(super) fn mark_answered(&mut self) {
        if !self.answered {
            self.answered = true;
            self.ready_candidates
                .extend(self.early_candidates.drain(..));
        }
    }

    /// The lock was granted: make the offer for `change` and send it.
    pub(super) fn offer_change(&mut self, change: LocalChange) -> Result<(), ParticipantError> {
        let mut api = self.rtc.sdp_api();
        match change {
            LocalChange::AddMic => {
                let mid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
                set_mid(&mut self.pubs, Role::Voice, mid);
            }
            LocalChange::AddScreen => {
                let simulcast = self
                    .pubs
                    .iter()
                    .any(|p| p.role == Role::Screen && p.rid.is_some())
                    .then(|| {
                        let mut s = Simulcast::new();
                        s.add_send_layer(SimulcastLayer::new("l"));
                        s.add_send_layer(SimulcastLayer::new("h"));
                        s
                    });
                let stream = Some(self.screen_stream_id.clone());
                let mid = api.add_media(
                    MediaKind::Video,
                    Direction::SendOnly,
                    stream,
                    None,
                    simulcast,
                );
                set_mid(&mut self.pubs, Role::Screen, mid);
            }
            LocalChange::AddVideo => {
                let stream = Some(self.video_stream_id.clone());
                let mid = api.add_media(MediaKind::Video, Direction::SendOnly, stream, None, None);
                set_mid(&mut self.pubs, Role::Video, mid);
            }
            LocalChange::RemoveScreen | LocalChange::RemoveVideo => {
                let role = if change == LocalChange::RemoveScreen {
                    Role::Screen
                } else {
                    Role::Video
                };
                if let Some(mid) = self
                    .pubs
                    .iter()
                    .find(|p| p.role == role)
                    .and_then(|p| p.mid)
                {
                    api.set_direction(mid, Direction::Inactive);
                }
            }
        }
        let Some((offer, pending)) = api.apply() else {
            // Nothing to negotiate after all (e.g. removing a track never added).
            self.after_own_change(change);
            self.dc_out.push_back(DcMessage::Unlock);
            self.nego.phase = Phase::Stable;
            return Ok(());
        };
        self.nego.phase = Phase::Offering {
            change,
            pending,
            sent: self.now,
        };
        let via = if self.cfg.dc_signaling {
            Via::Dc
        } else {
            Via::Ws
        };
        self.send_sdp(SessionDescription::offer(offer.to_sdp_string()), via);
        Ok(())
    }

    pub(super) fn after_own_change(&mut self, change: LocalChange) {
        let now = self.now;
        match change {
            LocalChange::AddMic | LocalChange::AddScreen | LocalChange::AddVideo => {
                let role = match change {
                    LocalChange::AddMic => Role::Voice,
                    LocalChange::AddScreen => Role::Screen,
                    _ => Role::Video,
                };
                for p in self.pubs.iter_mut().filter(|p| p.role == role) {
                    p.negotiated(&self.rtc, now);
                }
                if role == Role::Voice {
                    self.signal(RtcMessage::signal(&self.cfg.session_id, RtcType::Unmute));
                }
            }
            LocalChange::RemoveScreen => self.pubs.retain(|p| p.role != Role::Screen),
            LocalChange::RemoveVideo => self.pubs.retain(|p| p.role != Role::Video),
        }
    }
}
