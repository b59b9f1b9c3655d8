//! The flow model: from a call mix (calls, users per call, unmuted, screen sharers, video) to the media
//! flows an SFU carries, exactly as calls-loadtest.md §2.5 and §2.6 derive them.
//!
//! lt's roles (calls-loadtest.md §1.6): in every call the first U users are unmuted and the first V send
//! video; user 0 of the first S calls shares its screen (so S counts calls, at most one sharer per call).
//! Every sent stream is forwarded to the other N−1 participants of its call.

use serde::Serialize;

/// Why a call mix is impossible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    #[error("calls must be at least 1")]
    NoCalls,
    #[error("users per call must be at least 1")]
    NoUsers,
    #[error("unmuted per call ({unmuted}) exceeds users per call ({users})")]
    TooManyUnmuted { unmuted: u32, users: u32 },
    #[error("video senders per call ({video}) exceed users per call ({users})")]
    TooManyVideo { video: u32, users: u32 },
    #[error("calls with a screen share ({screen}) exceed calls ({calls})")]
    TooManyScreens { screen: u32, calls: u32 },
}

/// A validated call mix: C calls of N users, U unmuted and V on video per call, S calls with a sharer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CallMix {
    calls: u32,
    users_per_call: u32,
    unmuted_per_call: u32,
    screen_calls: u32,
    video_per_call: u32,
}

impl CallMix {
    /// Checks the mix is one lt could run.
    pub fn new(
        calls: u32,
        users_per_call: u32,
        unmuted_per_call: u32,
        screen_calls: u32,
        video_per_call: u32,
    ) -> Result<Self, MixError> {
        if calls == 0 {
            return Err(MixError::NoCalls);
        }
        if users_per_call == 0 {
            return Err(MixError::NoUsers);
        }
        if unmuted_per_call > users_per_call {
            return Err(MixError::TooManyUnmuted {
                unmuted: unmuted_per_call,
                users: users_per_call,
            });
        }
        if video_per_call > users_per_call {
            return Err(MixError::TooManyVideo {
                video: video_per_call,
                users: users_per_call,
            });
        }
        if screen_calls > calls {
            return Err(MixError::TooManyScreens {
                screen: screen_calls,
                calls,
            });
        }
        Ok(Self {
            calls,
            users_per_call,
            unmuted_per_call,
            screen_calls,
            video_per_call,
        })
    }

    pub fn calls(&self) -> u32 {
        self.calls
    }

    pub fn users_per_call(&self) -> u32 {
        self.users_per_call
    }

    pub fn unmuted_per_call(&self) -> u32 {
        self.unmuted_per_call
    }

    pub fn screen_calls(&self) -> u32 {
        self.screen_calls
    }

    pub fn video_per_call(&self) -> u32 {
        self.video_per_call
    }

    /// The media flows this mix puts through one SFU.
    pub fn flows(&self) -> Flows {
        let c = u64::from(self.calls);
        let n = u64::from(self.users_per_call);
        let u = u64::from(self.unmuted_per_call);
        let s = u64::from(self.screen_calls);
        let v = u64::from(self.video_per_call);
        let others = n - 1;
        let audio_sources = c * u;
        let video_sources = c * v;
        Flows {
            sessions: c * n,
            audio_sources,
            screen_sharers: s,
            video_sources,
            inbound_streams: audio_sources + s + video_sources,
            forwarded_audio: audio_sources * others,
            screen_viewers: s * others,
            forwarded_video: video_sources * others,
        }
    }
}

/// Media flows through one SFU, counted per stream (a simulcast sharer still counts as one sharer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Flows {
    /// S = C·N: WebRTC sessions (peer connections).
    pub sessions: u64,
    /// A = C·U: inbound audio streams.
    pub audio_sources: u64,
    /// Calls with a sharer: inbound screen streams.
    pub screen_sharers: u64,
    /// C·V: inbound camera streams.
    pub video_sources: u64,
    /// Every stream the SFU receives: audio sources + screen sharers + video sources.
    pub inbound_streams: u64,
    /// F = C·U·(N−1): audio streams the SFU sends.
    pub forwarded_audio: u64,
    /// (calls with a sharer)·(N−1): screen streams the SFU sends.
    pub screen_viewers: u64,
    /// C·V·(N−1): camera streams the SFU sends.
    pub forwarded_video: u64,
}

impl Flows {
    /// Every stream the SFU sends.
    pub fn outbound_streams(&self) -> u64 {
        self.forwarded_audio + self.screen_viewers + self.forwarded_video
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c6i_row_1_matches_section_2_5() {
        // 100 calls × 8 users, 2 unmuted, no screen: F = 100·2·7 = 1,400; A = 200; S = 800.
        let f = CallMix::new(100, 8, 2, 0, 0).unwrap().flows();
        assert_eq!(f.forwarded_audio, 1_400);
        assert_eq!(f.audio_sources, 200);
        assert_eq!(f.sessions, 800);
        assert_eq!(f.screen_viewers, 0);
        assert_eq!(f.inbound_streams, 200);
    }

    #[test]
    fn screen_viewers_are_counted_per_sharing_call() {
        // 10 × 50 with a sharer in every call: V = 10·49 = 490 (calls-loadtest.md §2.5, row 6).
        let f = CallMix::new(10, 50, 2, 10, 0).unwrap().flows();
        assert_eq!(f.screen_viewers, 490);
        assert_eq!(f.inbound_streams, 30);
        assert_eq!(f.outbound_streams(), 980 + 490);
    }

    #[test]
    fn video_is_forwarded_to_every_other_participant() {
        let f = CallMix::new(3, 4, 1, 0, 2).unwrap().flows();
        assert_eq!(f.video_sources, 6);
        assert_eq!(f.forwarded_video, 18);
        assert_eq!(f.inbound_streams, 3 + 6);
    }

    #[test]
    fn impossible_mixes_are_rejected() {
        assert_eq!(CallMix::new(0, 8, 2, 0, 0), Err(MixError::NoCalls));
        assert_eq!(CallMix::new(1, 0, 0, 0, 0), Err(MixError::NoUsers));
        assert_eq!(
            CallMix::new(1, 2, 3, 0, 0),
            Err(MixError::TooManyUnmuted {
                unmuted: 3,
                users: 2
            })
        );
        assert_eq!(
            CallMix::new(2, 2, 1, 3, 0),
            Err(MixError::TooManyScreens {
                screen: 3,
                calls: 2
            })
        );
        assert_eq!(
            CallMix::new(2, 2, 1, 0, 3),
            Err(MixError::TooManyVideo { video: 3, users: 2 })
        );
    }
}
