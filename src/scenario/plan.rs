//! Deterministic expansion `Scenario → Plan`: every call and session with ids, roles, media, impairment
//! group, RNG seed, join and leave times and scheduled actions.
//!
//! The plan is a pure function of the scenario (including its seed) and the [`PlanConfig`]: the same
//! inputs give the same plan, byte for byte when serialised, on every machine and in every shard.
//! Times are offsets from the plan's start (`start_at` on the wall clock, when given).
//!
//! Role rules follow the official `lt` tool so that the published tables can be reproduced:
//! participant `p` of a call is an unmuted speaker when `p < unmuted`, shares the screen when
//! `p == 0` in one of the group's first `screen_sharing` calls, and sends camera video when
//! `p < video`. Roles may overlap (the sharer also speaks when `unmuted ≥ 1`).

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::churn::schedule_churn;
use super::model::{Impairment, JoinOrder, Media, Scenario};
use super::seed::{Id, Rng, derive};
use super::shard::ShardInfo;
use super::threshold::Threshold;

/// Run-time settings that are not part of the scenario file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanConfig {
    /// Wall-clock time at which offset 0 of the plan happens, so that all shards of a run begin the
    /// same phases together. `None`: as soon as the engine is ready.
    pub start_at: Option<SystemTime>,
}

/// Offsets of the phase boundaries from the plan's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PhaseTimes {
    /// When the last session has joined (join ramp end); the join ramp starts at 0.
    pub join_end: Duration,
    /// Start of the steady (measurement) window: `join_end + settle`.
    pub steady_start: Duration,
    /// End of the steady window, where the leave ramp starts.
    pub steady_end: Duration,
    /// When the last session has left.
    pub end: Duration,
}

/// How a call's screen sharer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScreenMode {
    /// One VP8 stream ([`Media::screen`]).
    Single,
    /// Two simulcast layers `l` and `h` ([`Media::screen_low`], [`Media::screen_high`]).
    Simulcast,
}

/// A role a session plays. A session can play several; [`Role::Listener`] means none of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sends speech audio (unmuted).
    Speaker,
    /// Shares the screen.
    ScreenSharer,
    /// Sends camera video.
    Camera,
    /// Only receives.
    Listener,
}

/// The roles of a session at join time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Roles {
    /// Unmuted: sends speech from [`Session::speech`].
    pub speaker: bool,
    /// Shares the screen in the call's [`ScreenMode`].
    pub screen: bool,
    /// Sends camera video.
    pub camera: bool,
}

impl Roles {
    /// The roles as a list; `[Listener]` when the session only receives.
    pub fn list(&self) -> Vec<Role> {
        let mut roles = Vec::new();
        if self.speaker {
            roles.push(Role::Speaker);
        }
        if self.screen {
            roles.push(Role::ScreenSharer);
        }
        if self.camera {
            roles.push(Role::Camera);
        }
        if roles.is_empty() {
            roles.push(Role::Listener);
        }
        roles
    }

    /// Whether the session sends nothing.
    pub fn is_listener(&self) -> bool {
        !(self.speaker || self.screen || self.camera)
    }
}

/// Something a session does at a planned time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Join the call; once connected, start sending what the session's roles say.
    Join,
    /// Leave the call.
    Leave,
    /// Stop sending audio (mute churn).
    Mute,
    /// Send audio again.
    Unmute,
    /// Stop the screen share (screen churn).
    ScreenOff,
    /// Share the screen again.
    ScreenOn,
    /// Stop camera video (video churn).
    VideoOff,
    /// Send camera video again.
    VideoOn,
}

/// A planned action at an offset from the plan's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Event {
    /// Offset from the plan's start.
    pub at: Duration,
    /// What happens.
    pub action: Action,
}

/// One participant's connection to one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub(super) call: u32,
    pub(super) index: u32,
    pub(super) id: Id,
    pub(super) user_id: Id,
    pub(super) roles: Roles,
    pub(super) speech: Option<u32>,
    pub(super) impairment: Option<u32>,
    pub(super) rng_seed: u64,
    pub(super) events: Vec<Event>,
}

impl Session {
    /// Index of the call in [`Plan::calls`] of the unsharded plan.
    pub fn call(&self) -> u32 {
        self.call
    }

    /// Participant index within the call (0-based); fixes the roles.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Stable session id.
    pub fn id(&self) -> Id {
        self.id
    }

    /// Stable user id.
    pub fn user_id(&self) -> Id {
        self.user_id
    }

    /// Roles at join time.
    pub fn roles(&self) -> Roles {
        self.roles
    }

    /// Index into [`Media::speech`] for speakers.
    pub fn speech(&self) -> Option<u32> {
        self.speech
    }

    /// Index into [`Plan::impairments`], or `None` for an unimpaired session.
    pub fn impairment(&self) -> Option<u32> {
        self.impairment
    }

    /// Seed for this session's own RNG (media start offsets, packet loss draws, …).
    pub fn rng_seed(&self) -> u64 {
        self.rng_seed
    }

    /// Every planned action, sorted by time; starts with [`Action::Join`], ends with
    /// [`Action::Leave`].
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The first join's offset.
    pub fn join_at(&self) -> Duration {
        self.events.first().map_or(Duration::ZERO, |e| e.at)
    }

    /// The final leave's offset.
    pub fn leave_at(&self) -> Duration {
        self.events.last().map_or(Duration::ZERO, |e| e.at)
    }
}

/// One call (one channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Call {
    pub(super) index: u32,
    pub(super) group: u32,
    pub(super) id: Id,
    pub(super) participants: u32,
    pub(super) screen: Option<ScreenMode>,
    pub(super) recorded: bool,
    pub(super) sessions: Vec<Session>,
}

impl Call {
    /// Index in the unsharded plan's call list.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Index of the scenario's call group it comes from.
    pub fn group(&self) -> u32 {
        self.group
    }

    /// Stable channel id of the call.
    pub fn id(&self) -> Id {
        self.id
    }

    /// Participants of the whole call (a shard may hold only some of them).
    pub fn participants(&self) -> u32 {
        self.participants
    }

    /// Whether participant 0 shares the screen, and how.
    pub fn screen(&self) -> Option<ScreenMode> {
        self.screen
    }

    /// Whether the call is recorded (started by the host once it is in the call).
    pub fn recorded(&self) -> bool {
        self.recorded
    }

    /// The sessions of this plan (all of them unless sharded), by participant index.
    pub fn sessions(&self) -> &[Session] {
        &self.sessions
    }
}

/// The expanded run: what every session does and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub(super) scenario: String,
    pub(super) seed: u64,
    pub(super) start_at: Option<SystemTime>,
    pub(super) phases: PhaseTimes,
    pub(super) media: Media,
    pub(super) impairments: Vec<Impairment>,
    pub(super) thresholds: Vec<Threshold>,
    pub(super) calls: Vec<Call>,
    pub(super) shard: Option<ShardInfo>,
}

/// One entry of [`Plan::timeline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// Offset from the plan's start.
    pub at: Duration,
    /// Call index.
    pub call: u32,
    /// Participant index.
    pub participant: u32,
    /// What happens.
    pub action: Action,
}

impl Plan {
    /// Expands a scenario. Pure: no clock, no global RNG, no file access.
    pub fn expand(scenario: &Scenario, config: &PlanConfig) -> Plan {
        let seed = scenario.seed();
        let mut calls = Vec::new();
        for (g, group) in scenario.groups().iter().enumerate() {
            for j in 0..group.count().get() {
                let c = calls.len() as u32;
                let screen = (j < group.screen_sharing()).then_some(if group.simulcast() {
                    ScreenMode::Simulcast
                } else {
                    ScreenMode::Single
                });
                calls.push(Call {
                    index: c,
                    group: g as u32,
                    id: Id::derive(seed, "call", &[u64::from(c)]),
                    participants: group.participants().get(),
                    screen,
                    recorded: j < group.recordings(),
                    sessions: sessions(scenario, c, group, screen.is_some()),
                });
            }
        }
        assign_impairments(seed, scenario.impairments(), &mut calls);

        let phases = scenario.phases();
        let order = join_order(seed, phases.order(), &calls);
        let n = order.len() as u64;
        let join_end = phases.join().duration(n);
        let steady_start = join_end + phases.settle();
        let steady_end = steady_start + phases.steady();
        let end = steady_end + phases.leave().duration(n);
        for (rank, &(c, p)) in order.iter().enumerate() {
            let rank = rank as u64;
            let session = &mut calls[c as usize].sessions[p as usize];
            session.events.push(Event {
                at: phases.join().offset(rank, n),
                action: Action::Join,
            });
        }
        schedule_churn(
            seed,
            scenario.churn(),
            steady_start,
            phases.steady(),
            &mut calls,
        );
        // Leaves go in join order (first in, first out) and come last.
        for (rank, &(c, p)) in order.iter().enumerate() {
            let session = &mut calls[c as usize].sessions[p as usize];
            session.events.push(Event {
                at: steady_end + phases.leave().offset(rank as u64, n),
                action: Action::Leave,
            });
            // Stable: actions planned for the same instant keep their causal order.
            session.events.sort_by_key(|e| e.at);
        }
        Plan {
            scenario: scenario.name().to_owned(),
            seed,
            start_at: config.start_at,
            phases: PhaseTimes {
                join_end,
                steady_start,
                steady_end,
                end,
            },
            media: scenario.media().clone(),
            impairments: scenario.impairments().to_vec(),
            thresholds: scenario.thresholds().to_vec(),
            calls,
            shard: None,
        }
    }

    /// The scenario's name.
    pub fn scenario(&self) -> &str {
        &self.scenario
    }

    /// The master seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Wall-clock time of offset 0, if fixed.
    pub fn start_at(&self) -> Option<SystemTime> {
        self.start_at
    }

    /// Phase boundaries.
    pub fn phases(&self) -> PhaseTimes {
        self.phases
    }

    /// Media files; sessions refer to speech files by index.
    pub fn media(&self) -> &Media {
        &self.media
    }

    /// Impairment groups; sessions refer to them by index.
    pub fn impairments(&self) -> &[Impairment] {
        &self.impairments
    }

    /// Pass/fail thresholds.
    pub fn thresholds(&self) -> &[Threshold] {
        &self.thresholds
    }

    /// Calls with at least one session in this plan, by index.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// Which shard this is, if the plan was sharded.
    pub fn shard_info(&self) -> Option<&ShardInfo> {
        self.shard.as_ref()
    }

    /// The speech file a session sends while unmuted, if it is a speaker.
    pub fn speech_file(&self, session: &Session) -> Option<&std::path::Path> {
        let index = session.speech? as usize;
        self.media.speech().get(index).map(|p| p.as_path())
    }

    /// The impairment group a session belongs to, if any.
    pub fn impairment_of(&self, session: &Session) -> Option<&Impairment> {
        self.impairments.get(session.impairment? as usize)
    }

    /// All sessions, call by call.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.calls.iter().flat_map(|c| c.sessions.iter())
    }

    /// Number of sessions in this plan.
    pub fn session_count(&self) -> usize {
        self.calls.iter().map(|c| c.sessions.len()).sum()
    }

    /// Every event of every session, sorted by time, then call, then participant (stable within a
    /// session).
    pub fn timeline(&self) -> Vec<TimelineEntry> {
        let mut entries: Vec<TimelineEntry> = self
            .sessions()
            .flat_map(|s| {
                s.events.iter().map(|e| TimelineEntry {
                    at: e.at,
                    call: s.call,
                    participant: s.index,
                    action: e.action,
                })
            })
            .collect();
        entries.sort_by_key(|e| (e.at, e.call, e.participant));
        entries
    }

    /// The plan as JSON, the form compared byte for byte by determinism checks.
    pub fn to_json(&self) -> String {
        // Serialising plain data with string map keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn sessions(
    scenario: &Scenario,
    c: u32,
    group: &super::model::CallGroup,
    screen: bool,
) -> Vec<Session> {
    let seed = scenario.seed();
    let speech_files = scenario.media().speech().len() as u64;
    // Speakers of one call take consecutive speech files from a seeded starting point, so they
    // differ while there are enough files.
    let speech_base = derive(seed, "speech", &[u64::from(c)]) % speech_files.max(1);
    (0..group.participants().get())
        .map(|p| {
            let parts = [u64::from(c), u64::from(p)];
            let roles = Roles {
                speaker: p < group.unmuted(),
                screen: screen && p == 0,
                camera: p < group.video(),
            };
            Session {
                call: c,
                index: p,
                id: Id::derive(seed, "session", &parts),
                user_id: Id::derive(seed, "user", &parts),
                roles,
                speech: roles
                    .speaker
                    .then(|| ((speech_base + u64::from(p)) % speech_files.max(1)) as u32),
                impairment: None,
                rng_seed: derive(seed, "rng", &parts),
                events: Vec::new(),
            }
        })
        .collect()
}

/// Per call, a seeded shuffle of participants; group `g` takes the positions between the rounded-down
/// cumulative shares before and after it.
fn assign_impairments(seed: u64, groups: &[Impairment], calls: &mut [Call]) {
    if groups.is_empty() {
        return;
    }
    for call in calls {
        let n = u64::from(call.participants);
        let mut order: Vec<u32> = (0..call.participants).collect();
        Rng::new(derive(seed, "impairment", &[u64::from(call.index)])).shuffle(&mut order);
        let mut cumulative = 0u32;
        let mut start = 0usize;
        for (g, group) in groups.iter().enumerate() {
            cumulative += group.share().millionths();
            let share = super::units::Percent::from_millionths(cumulative)
                .unwrap_or(super::units::Percent::HUNDRED);
            let end = share.of(n) as usize;
            for &p in &order[start..end] {
                call.sessions[p as usize].impairment = Some(g as u32);
            }
            start = end;
        }
    }
}

/// The (call, participant) pairs in the order they take places on the join ramp.
fn join_order(seed: u64, order: JoinOrder, calls: &[Call]) -> Vec<(u32, u32)> {
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    match order {
        JoinOrder::ByCall | JoinOrder::Shuffled => {
            for call in calls {
                pairs.extend((0..call.participants).map(|p| (call.index, p)));
            }
            if order == JoinOrder::Shuffled {
                Rng::new(derive(seed, "join-order", &[])).shuffle(&mut pairs);
            }
        }
        JoinOrder::RoundRobin => {
            let widest = calls.iter().map(|c| c.participants).max().unwrap_or(0);
            for p in 0..widest {
                pairs.extend(
                    calls
                        .iter()
                        .filter(|c| p < c.participants)
                        .map(|c| (c.index, p)),
                );
            }
        }
    }
    pairs
}
