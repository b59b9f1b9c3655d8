//! Counts of a plan for `callsbench check --print-plan`: calls, sessions, roles, flows, events, phases.
//!
//! Flow counts follow the per-flow accounting of the published tables: each speaker's stream is
//! forwarded to the other `N − 1` participants of its call, and so is each screen share.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::plan::{Action, PhaseTimes, Plan};
use super::shard::ShardSpec;
use super::units::format_duration;

/// What a plan (or a shard of one) holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Master seed.
    pub seed: u64,
    /// The shard, if the plan is one.
    pub shard: Option<ShardSpec>,
    /// Wall-clock start, if fixed.
    pub start_at: Option<SystemTime>,
    /// Calls with at least one session here.
    pub calls: usize,
    /// Sessions here.
    pub sessions: usize,
    /// Unmuted speakers.
    pub speakers: usize,
    /// Screen sharers.
    pub screen_sharers: usize,
    /// Camera senders.
    pub cameras: usize,
    /// Sessions that only receive.
    pub listeners: usize,
    /// Recorded calls.
    pub recorded_calls: usize,
    /// Audio streams the SFU forwards for the speakers here: Σ (call participants − 1).
    pub forwarded_audio: u64,
    /// Screen viewers for the sharers here: Σ (call participants − 1).
    pub screen_viewers: u64,
    /// Sessions per impairment group, in scenario order.
    pub impaired: Vec<(String, usize)>,
    /// Planned events by action.
    pub events: BTreeMap<String, usize>,
    /// Phase boundaries.
    pub phases: PhaseTimes,
}

impl Summary {
    /// Counts `plan`.
    pub fn of(plan: &Plan) -> Summary {
        let mut s = Summary {
            scenario: plan.scenario().to_owned(),
            seed: plan.seed(),
            shard: plan.shard_info().map(|i| i.spec),
            start_at: plan.start_at(),
            calls: plan.calls().len(),
            sessions: plan.session_count(),
            speakers: 0,
            screen_sharers: 0,
            cameras: 0,
            listeners: 0,
            recorded_calls: plan.calls().iter().filter(|c| c.recorded()).count(),
            forwarded_audio: 0,
            screen_viewers: 0,
            impaired: plan
                .impairments()
                .iter()
                .map(|i| (i.name().to_owned(), 0))
                .collect(),
            events: BTreeMap::new(),
            phases: plan.phases(),
        };
        for call in plan.calls() {
            let others = u64::from(call.participants().saturating_sub(1));
            for session in call.sessions() {
                let roles = session.roles();
                s.speakers += usize::from(roles.speaker);
                s.screen_sharers += usize::from(roles.screen);
                s.cameras += usize::from(roles.camera);
                s.listeners += usize::from(roles.is_listener());
                s.forwarded_audio += u64::from(roles.speaker) * others;
                s.screen_viewers += u64::from(roles.screen) * others;
                if let Some(g) = session.impairment() {
                    s.impaired[g as usize].1 += 1;
                }
                for event in session.events() {
                    *s.events
                        .entry(action_name(event.action).to_owned())
                        .or_default() += 1;
                }
            }
        }
        s
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Join => "join",
        Action::Leave => "leave",
        Action::Mute => "mute",
        Action::Unmute => "unmute",
        Action::ScreenOff => "screen_off",
        Action::ScreenOn => "screen_on",
        Action::VideoOff => "video_off",
        Action::VideoOn => "video_on",
    }
}

fn unix(t: SystemTime) -> String {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => format!("unix {}.{:03}", d.as_secs(), d.subsec_millis()),
        Err(_) => "before 1970".to_owned(),
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shard = self
            .shard
            .map_or_else(String::new, |s| format!(" shard {s}"));
        writeln!(f, "plan {}{shard} (seed {})", self.scenario, self.seed)?;
        writeln!(f, "  calls {}, sessions {}", self.calls, self.sessions)?;
        writeln!(
            f,
            "  roles: speakers {}, screen sharers {}, cameras {}, listeners {}, recorded calls {}",
            self.speakers, self.screen_sharers, self.cameras, self.listeners, self.recorded_calls
        )?;
        writeln!(
            f,
            "  flows: forwarded audio streams {}, screen viewers {}",
            self.forwarded_audio, self.screen_viewers
        )?;
        if !self.impaired.is_empty() {
            let groups: Vec<String> = self
                .impaired
                .iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            writeln!(f, "  impaired: {}", groups.join(", "))?;
        }
        let events: Vec<String> = self
            .events
            .iter()
            .map(|(a, n)| format!("{a} {n}"))
            .collect();
        writeln!(f, "  events: {}", events.join(", "))?;
        let p = self.phases;
        let d = |d: Duration| format_duration(d);
        write!(
            f,
            "  phases: join 0s..{}, settle ..{}, steady {}..{}, leave ..{}",
            d(p.join_end),
            d(p.steady_start),
            d(p.steady_start),
            d(p.steady_end),
            d(p.end)
        )?;
        if let Some(t) = self.start_at {
            write!(f, "\n  start at {}", unix(t))?;
        }
        Ok(())
    }
}
