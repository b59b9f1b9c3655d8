//! The validated scenario: what a run is made of, with every illegal combination ruled out.
//!
//! Values of these types come only from [`super::parse`] (or the checked constructors here), so a
//! consumer never re-checks that `unmuted ≤ participants`, that screen calls fit in the call count,
//! or that the steady phase is longer than zero.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::ramp::Ramp;
use super::threshold::Threshold;
use super::units::{Percent, Rate};

/// A validated scenario. Load one with [`Scenario::load`] or [`Scenario::from_toml`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) seed: u64,
    pub(super) phases: Phases,
    pub(super) groups: Vec<CallGroup>,
    pub(super) media: Media,
    pub(super) churn: Vec<Churn>,
    pub(super) impairments: Vec<Impairment>,
    pub(super) thresholds: Vec<Threshold>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) drains: Vec<Drain>,
}

impl Scenario {
    /// The scenario's name (`name` key, or the file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The free-text description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The master seed every random choice of the plan derives from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A copy with another master seed (e.g. from `--seed`).
    pub fn with_seed(mut self, seed: u64) -> Scenario {
        self.seed = seed;
        self
    }

    /// Ramp, settle, steady and leave phases.
    pub fn phases(&self) -> &Phases {
        &self.phases
    }

    /// The call groups, in file order; at least one.
    pub fn groups(&self) -> &[CallGroup] {
        &self.groups
    }

    /// Media files per role, resolved against the scenario's directory.
    pub fn media(&self) -> &Media {
        &self.media
    }

    /// Scheduled churn during the steady phase.
    pub fn churn(&self) -> &[Churn] {
        &self.churn
    }

    /// Network impairment groups.
    pub fn impairments(&self) -> &[Impairment] {
        &self.impairments
    }

    /// Pass/fail thresholds.
    pub fn thresholds(&self) -> &[Threshold] {
        &self.thresholds
    }

    /// rtcd hosts to drain during the run (`[[drain]]`).
    pub fn drains(&self) -> &[Drain] {
        &self.drains
    }

    /// Number of calls over all groups.
    pub fn call_count(&self) -> u64 {
        self.groups.iter().map(|g| u64::from(g.count.get())).sum()
    }

    /// Number of sessions over all calls.
    pub fn session_count(&self) -> u64 {
        self.groups
            .iter()
            .map(|g| u64::from(g.count.get()) * u64::from(g.participants.get()))
            .sum()
    }
}

/// The run's phases. The plan starts at 0 with the join ramp; settle follows the last join; the
/// steady (measurement) window follows settle; the leave ramp starts when steady ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phases {
    pub(super) join: Ramp,
    pub(super) order: JoinOrder,
    pub(super) settle: Duration,
    pub(super) steady: Duration,
    pub(super) leave: Ramp,
}

impl Phases {
    /// How joins are spread.
    pub fn join(&self) -> &Ramp {
        &self.join
    }

    /// In which order sessions take their places on the join ramp.
    pub fn order(&self) -> JoinOrder {
        self.order
    }

    /// Pause after the last join before measurement starts.
    pub fn settle(&self) -> Duration {
        self.settle
    }

    /// Length of the measurement window; never zero.
    pub fn steady(&self) -> Duration {
        self.steady
    }

    /// How leaves are spread (in join order: first in, first out).
    pub fn leave(&self) -> &Ramp {
        &self.leave
    }
}

/// The order in which sessions take their places on the join ramp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinOrder {
    /// A seeded shuffle of all sessions of all calls (like `lt`'s random join times).
    Shuffled,
    /// Call after call, each call filled by participant index.
    ByCall,
    /// Participant 0 of every call, then participant 1 of every call, and so on.
    RoundRobin,
}

/// A set of identical calls (`[[calls]]` in the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallGroup {
    pub(super) name: Option<String>,
    pub(super) count: NonZeroU32,
    pub(super) participants: NonZeroU32,
    pub(super) unmuted: u32,
    pub(super) video: u32,
    pub(super) screen_sharing: u32,
    pub(super) simulcast: bool,
    pub(super) recordings: u32,
}

/// Why a call group's numbers do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// More unmuted than participants.
    #[error("unmuted ({unmuted}) must not exceed participants per call ({participants})")]
    Unmuted {
        /// Asked-for unmuted per call.
        unmuted: u32,
        /// Participants per call.
        participants: u32,
    },
    /// More camera senders than participants.
    #[error("video ({video}) must not exceed participants per call ({participants})")]
    Video {
        /// Asked-for camera senders per call.
        video: u32,
        /// Participants per call.
        participants: u32,
    },
    /// More screen-sharing calls than calls.
    #[error("screen_sharing ({screen}) counts calls and must not exceed count ({count})")]
    Screen {
        /// Asked-for screen-sharing calls.
        screen: u32,
        /// Calls in the group.
        count: u32,
    },
    /// More recorded calls than calls.
    #[error("recordings ({recordings}) counts calls and must not exceed count ({count})")]
    Recordings {
        /// Asked-for recorded calls.
        recordings: u32,
        /// Calls in the group.
        count: u32,
    },
}

impl CallGroup {
    /// Builds a group, checking the per-call counts against the group's size.
    pub fn new(
        count: NonZeroU32,
        participants: NonZeroU32,
        unmuted: u32,
        video: u32,
        screen_sharing: u32,
        recordings: u32,
    ) -> Result<CallGroup, GroupError> {
        if unmuted > participants.get() {
            return Err(GroupError::Unmuted {
                unmuted,
                participants: participants.get(),
            });
        }
        if video > participants.get() {
            return Err(GroupError::Video {
                video,
                participants: participants.get(),
            });
        }
        if screen_sharing > count.get() {
            return Err(GroupError::Screen {
                screen: screen_sharing,
                count: count.get(),
            });
        }
        if recordings > count.get() {
            return Err(GroupError::Recordings {
                recordings,
                count: count.get(),
            });
        }
        Ok(CallGroup {
            name: None,
            count,
            participants,
            unmuted,
            video,
            screen_sharing,
            simulcast: false,
            recordings,
        })
    }

    /// The same group with a label for reports.
    pub fn named(mut self, name: impl Into<String>) -> CallGroup {
        self.name = Some(name.into());
        self
    }

    /// The same group with simulcast screen sharing switched on or off.
    pub fn with_simulcast(mut self, simulcast: bool) -> CallGroup {
        self.simulcast = simulcast;
        self
    }

    /// Optional label for reports.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Calls in the group.
    pub fn count(&self) -> NonZeroU32 {
        self.count
    }

    /// Participants (sessions) per call.
    pub fn participants(&self) -> NonZeroU32 {
        self.participants
    }

    /// Unmuted speakers per call: participants `0..unmuted` of every call.
    pub fn unmuted(&self) -> u32 {
        self.unmuted
    }

    /// Camera senders per call: participants `0..video` of every call.
    pub fn video(&self) -> u32 {
        self.video
    }

    /// Calls with one screen sharer (participant 0): calls `0..screen_sharing` of the group.
    pub fn screen_sharing(&self) -> u32 {
        self.screen_sharing
    }

    /// Whether screen sharers upload two simulcast layers (`l` and `h`) instead of one stream.
    pub fn simulcast(&self) -> bool {
        self.simulcast
    }

    /// Recorded calls: calls `0..recordings` of the group.
    pub fn recordings(&self) -> u32 {
        self.recordings
    }
}

/// Media files per role, already resolved to paths that existed when the scenario was loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Media {
    pub(super) speech: Vec<PathBuf>,
    pub(super) screen: PathBuf,
    pub(super) screen_low: PathBuf,
    pub(super) screen_high: PathBuf,
    pub(super) camera: PathBuf,
}

impl Media {
    /// Ogg/Opus files for unmuted speakers; never empty. Speakers of one call get different
    /// entries while there are enough of them.
    pub fn speech(&self) -> &[PathBuf] {
        &self.speech
    }

    /// VP8 IVF for a screen share without simulcast.
    pub fn screen(&self) -> &Path {
        &self.screen
    }

    /// VP8 IVF for the simulcast `l` layer.
    pub fn screen_low(&self) -> &Path {
        &self.screen_low
    }

    /// VP8 IVF for the simulcast `h` layer.
    pub fn screen_high(&self) -> &Path {
        &self.screen_high
    }

    /// VP8 IVF for camera video.
    pub fn camera(&self) -> &Path {
        &self.camera
    }
}

/// What a churn schedule toggles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChurnAction {
    /// An unmuted speaker mutes, then unmutes after `off_for`.
    Mute,
    /// A screen sharer stops sharing, then shares again after `off_for`.
    Screen,
    /// A camera sender turns video off, then on again after `off_for`.
    Video,
    /// Any session leaves the call, then joins again after `off_for`.
    Rejoin,
}

impl ChurnAction {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            ChurnAction::Mute => "mute",
            ChurnAction::Screen => "screen",
            ChurnAction::Video => "video",
            ChurnAction::Rejoin => "rejoin",
        }
    }
}

/// When churn events happen, relative to the start of the steady phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChurnTimes {
    /// At these offsets (sorted, each leaving room for `off_for` before steady ends).
    At(Vec<Duration>),
    /// This many events per unit of time over the steady phase, at seeded uniform times.
    Rate(Rate),
}

/// One `[[churn]]` schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Churn {
    pub(super) action: ChurnAction,
    pub(super) times: ChurnTimes,
    pub(super) targets: NonZeroU32,
    pub(super) off_for: Duration,
}

impl Churn {
    /// What is toggled.
    pub fn action(&self) -> ChurnAction {
        self.action
    }

    /// When.
    pub fn times(&self) -> &ChurnTimes {
        &self.times
    }

    /// Sessions acting at each event, chosen by seed among the eligible ones.
    pub fn targets(&self) -> NonZeroU32 {
        self.targets
    }

    /// How long a session stays muted, off or away before it reverts; never zero.
    pub fn off_for(&self) -> Duration {
        self.off_for
    }
}

/// Which packets an impairment group affects, seen from the participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Packets the participant sends.
    Up,
    /// Packets the participant receives.
    Down,
    /// Both.
    Both,
}

/// One `[[impairment]]` group: a share of every call's participants whose packets the harness
/// drops and delays in its own packet path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Impairment {
    pub(super) name: String,
    pub(super) share: Percent,
    pub(super) loss: Percent,
    pub(super) delay: Duration,
    pub(super) jitter: Duration,
    pub(super) direction: Direction,
}

impl Impairment {
    /// Unique name, used in reports.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Share of each call's participants in this group (rounded down per call).
    pub fn share(&self) -> Percent {
        self.share
    }

    /// Independent random drop probability per packet.
    pub fn loss(&self) -> Percent {
        self.loss
    }

    /// Constant one-way delay added to each packet.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Extra delay drawn uniformly from `0..=jitter` per packet, on top of `delay`.
    pub fn jitter(&self) -> Duration {
        self.jitter
    }

    /// Which packets are affected.
    pub fn direction(&self) -> Direction {
        self.direction
    }
}

/// Which rtcd host a `[[drain]]` names. Hosts are only known when the run starts (`--rtcd`), so the
/// name is resolved against them then (`target::placement`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainHost {
    /// 0-based index into the run's hosts, in `--rtcd` order after each URL's host name is
    /// expanded into its IPv4 addresses.
    Index(u32),
    /// An IP address, or `IP:port`, of one of the run's hosts.
    Address(String),
}

impl std::fmt::Display for DrainHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DrainHost::Index(i) => write!(f, "host {i}"),
            DrainHost::Address(a) => write!(f, "host {a}"),
        }
    }
}

/// One `[[drain]]`: from `at` (after the run start) no new call is placed on `host`, as the
/// plugin does with a host that left DNS; calls already there keep running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drain {
    pub(super) host: DrainHost,
    pub(super) at: Duration,
}

impl Drain {
    /// A drain of `host` from `at`.
    pub fn new(host: DrainHost, at: Duration) -> Drain {
        Drain { host, at }
    }

    /// The host.
    pub fn host(&self) -> &DrainHost {
        &self.host
    }

    /// Time from the run start after which no new call goes to the host.
    pub fn at(&self) -> Duration {
        self.at
    }
}
