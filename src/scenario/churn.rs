//! Expansion of `[[churn]]` schedules into per-session events during the steady phase.
//!
//! Every schedule yields events at fixed offsets (`at`) or, for a rate, at seeded uniform times in
//! `[0, steady − off_for]` (a Poisson process conditioned on its count, `round(rate × window)`).
//! Events of all schedules are handled in time order; each picks `targets` distinct eligible
//! sessions that are not already off from an earlier event (a session is busy until it has
//! reverted). An event that finds fewer free sessions acts on fewer: the plan never doubles an
//! action on one session.

use std::time::Duration;

use super::model::{Churn, ChurnAction, ChurnTimes};
use super::plan::{Action, Call, Event};
use super::seed::{Rng, derive};
use super::units::duration_from_nanos;

/// Draws after which random picking falls back to listing the free sessions.
const PICK_ATTEMPTS: u32 = 64;

/// Adds the churn events of `schedules` to the sessions of `calls`.
pub(super) fn schedule_churn(
    seed: u64,
    schedules: &[Churn],
    steady_start: Duration,
    steady: Duration,
    calls: &mut [Call],
) {
    // (offset in steady, schedule index, event index) in processing order.
    let mut events: Vec<(Duration, usize, u64)> = Vec::new();
    for (h, churn) in schedules.iter().enumerate() {
        match churn.times() {
            ChurnTimes::At(times) => {
                events.extend(times.iter().enumerate().map(|(e, &t)| (t, h, e as u64)));
            }
            ChurnTimes::Rate(rate) => {
                let window = steady.saturating_sub(churn.off_for());
                let count = rate.events_in(window);
                let span = window.as_nanos().min(u128::from(u64::MAX - 1)) as u64;
                let mut rng = Rng::new(derive(seed, "churn-times", &[h as u64]));
                let mut times: Vec<Duration> = (0..count)
                    .map(|_| duration_from_nanos(u128::from(rng.below(span + 1))))
                    .collect();
                times.sort();
                events.extend(times.into_iter().enumerate().map(|(e, t)| (t, h, e as u64)));
            }
        }
    }
    events.sort();

    let eligible: Vec<Vec<(u32, u32)>> = schedules
        .iter()
        .map(|churn| eligible_sessions(churn.action(), calls))
        .collect();
    // Busy until (exclusive): a session is free for an event strictly after its revert.
    let mut busy: Vec<Vec<Option<Duration>>> =
        calls.iter().map(|c| vec![None; c.sessions.len()]).collect();

    for (t, h, e) in events {
        let churn = &schedules[h];
        let candidates = &eligible[h];
        if candidates.is_empty() {
            // Validation rejects churn without eligible sessions; nothing to do for such a schedule.
            continue;
        }
        let at = steady_start + t;
        let back = at + churn.off_for();
        let is_free = |busy: &Vec<Vec<Option<Duration>>>, (c, p): (u32, u32)| {
            busy[c as usize][p as usize].is_none_or(|until| until < at)
        };
        let mut rng = Rng::new(derive(seed, "churn-pick", &[h as u64, e]));
        let wanted = churn.targets().get() as usize;
        let mut picked: Vec<(u32, u32)> = Vec::with_capacity(wanted);
        let mut attempts = 0;
        while picked.len() < wanted && attempts < PICK_ATTEMPTS {
            attempts += 1;
            let candidate = candidates[rng.below(candidates.len() as u64) as usize];
            if is_free(&busy, candidate) && !picked.contains(&candidate) {
                picked.push(candidate);
            }
        }
        if picked.len() < wanted {
            // Crowded: list what is still free and draw from it without replacement.
            let mut free: Vec<(u32, u32)> = candidates
                .iter()
                .copied()
                .filter(|&s| is_free(&busy, s) && !picked.contains(&s))
                .collect();
            while picked.len() < wanted && !free.is_empty() {
                let i = rng.below(free.len() as u64) as usize;
                picked.push(free.swap_remove(i));
            }
        }
        let (off, on) = match churn.action() {
            ChurnAction::Mute => (Action::Mute, Action::Unmute),
            ChurnAction::Screen => (Action::ScreenOff, Action::ScreenOn),
            ChurnAction::Video => (Action::VideoOff, Action::VideoOn),
            ChurnAction::Rejoin => (Action::Leave, Action::Join),
        };
        for (c, p) in picked {
            busy[c as usize][p as usize] = Some(back);
            let session = &mut calls[c as usize].sessions[p as usize];
            session.events.push(Event { at, action: off });
            session.events.push(Event {
                at: back,
                action: on,
            });
        }
    }
}

/// Sessions a churn action applies to, by (call, participant).
fn eligible_sessions(action: ChurnAction, calls: &[Call]) -> Vec<(u32, u32)> {
    calls
        .iter()
        .flat_map(|c| c.sessions.iter())
        .filter(|s| match action {
            ChurnAction::Mute => s.roles.speaker,
            ChurnAction::Screen => s.roles.screen,
            ChurnAction::Video => s.roles.camera,
            ChurnAction::Rejoin => true,
        })
        .map(|s| (s.call, s.index))
        .collect()
}
