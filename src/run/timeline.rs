//! The timeline of a call load: every planned action of every session of the plan (or shard), played
//! at its time against the engine — join (place the call, add the participant, impair it, `Join`,
//! then what its roles send), churn, leave — and what each session is expected to receive.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::call::CallRun;
use super::sink::{Expected, RunSink, SessionMeta, Shared};
use super::target::TargetSetup;
use crate::engine::driver::Driver;
use crate::engine::impair::Link;
use crate::engine::participant::{Command, ParticipantConfig};
use crate::scenario::{Action, Id, Session};

/// One planned action of one session, by position in the plan.
#[derive(Debug, Clone, Copy)]
pub(super) struct Step {
    pub(super) at: Duration,
    pub(super) call: usize,
    pub(super) session: usize,
    pub(super) action: Action,
}

/// A session's live state across joins.
#[derive(Debug, Default)]
pub(super) struct Live {
    pub(super) session_id: Option<String>,
    pub(super) joins: u64,
    pub(super) mic_given: bool,
    pub(super) muted: bool,
}

impl CallRun<'_> {
    /// Every planned action of this plan's sessions, in time order.
    pub(super) fn steps(&self) -> Vec<Step> {
        let mut steps: Vec<Step> = Vec::new();
        for (c, call) in self.plan.calls().iter().enumerate() {
            for (s, session) in call.sessions().iter().enumerate() {
                steps.extend(session.events().iter().map(|e| Step {
                    at: e.at,
                    call: c,
                    session: s,
                    action: e.action,
                }));
            }
        }
        // Stable: a session's own events keep their planned order at equal times.
        steps.sort_by_key(|s| s.at);
        steps
    }

    /// Tracks `session` expects when it joins at `at`: one per sender already in its call (from
    /// the whole plan, so a call split across shards counts its remote senders too).
    pub(super) fn expected(&self, session: &Session, at: Duration) -> Expected {
        self.senders(session, at, at)
    }

    /// The senders of `session`'s call (other than itself) in the call at some time in
    /// `[from, to]`, by kind.
    pub(super) fn senders(&self, session: &Session, from: Duration, to: Duration) -> Expected {
        let mut e = Expected::default();
        let Some(call) = self.full.calls().get(session.call() as usize) else {
            return e;
        };
        for other in call.sessions() {
            if other.index() == session.index() || other.join_at() > to || other.leave_at() <= from
            {
                continue;
            }
            let r = other.roles();
            e.audio += u32::from(r.speaker);
            e.screen += u32::from(r.screen);
            e.video += u32::from(r.camera);
        }
        e
    }

    /// Plays the timeline: each planned action at its time.
    pub(super) async fn play(
        &self,
        setup: &mut TargetSetup,
        driver: &mut Driver<RunSink>,
        shared: &Arc<Shared>,
        state: &mut HashMap<(usize, usize), Live>,
        call_host: &mut HashMap<usize, usize>,
        epoch: Instant,
    ) -> anyhow::Result<()> {
        let seed = self.plan.seed();
        for step in self.steps() {
            tokio::time::sleep_until((epoch + step.at).into()).await;
            let call = &self.plan.calls()[step.call];
            let session = &call.sessions()[step.session];
            let live = state.entry((step.call, step.session)).or_default();
            if step.action == Action::Join {
                let host = match call_host.get(&step.call) {
                    Some(h) => *h,
                    None => {
                        let h = setup.target.place(&call.id().to_string(), step.at).await?;
                        call_host.insert(step.call, h);
                        h
                    }
                };
                let session_id = if live.joins == 0 {
                    session.id().to_string()
                } else {
                    // A rejoin is a new connection: a new session id, as the plugin makes one.
                    Id::derive(
                        seed,
                        "rejoin",
                        &[
                            u64::from(call.index()),
                            u64::from(session.index()),
                            live.joins,
                        ],
                    )
                    .to_string()
                };
                let cfg = ParticipantConfig {
                    call_id: call.id().to_string(),
                    user_id: session.user_id().to_string(),
                    session_id: session_id.clone(),
                    channel_id: Id::derive(seed, "channel", &[u64::from(call.index())]).to_string(),
                    dc_signaling: false,
                    local_addr: SocketAddr::new(setup.local_ip, 0),
                    seed: session.rng_seed() ^ live.joins,
                };
                let (index, _) = tokio::task::block_in_place(|| {
                    setup.target.hosts()[host].add_participant(driver, cfg)
                })?;
                setup
                    .target
                    .placement_mut()
                    .session_started(&call.id().to_string());
                let expected = self.expected(session, step.at);
                // Every track this connection should receive while it is in the call (its
                // leave is the next one planned).
                let until = session
                    .events()
                    .iter()
                    .find(|e| e.at >= step.at && e.action == Action::Leave)
                    .map_or(session.leave_at(), |e| e.at);
                let all = self.senders(session, step.at, until);
                shared.tracks_expected.fetch_add(
                    u64::from(all.audio + all.screen + all.video),
                    Ordering::Relaxed,
                );
                if let Ok(mut m) = shared.sessions.write() {
                    m.insert(
                        index,
                        Arc::new(SessionMeta {
                            session_id: session_id.clone(),
                            call_id: call.id().to_string(),
                            scheduled: step.at,
                            expected,
                            group: session.impairment(),
                        }),
                    );
                }
                // The session's impairment group: its packets are dropped and delayed in the
                // engine's own packet path, from before its join on.
                if let Some(imp) = self.plan.impairment_of(session) {
                    let link = Link {
                        loss: imp.loss().as_fraction(),
                        delay: imp.delay(),
                        jitter: imp.jitter(),
                        direction: imp.direction(),
                    };
                    driver.impair(&session_id, link)?;
                }
                driver.command(&session_id, Command::Join)?;
                let roles = session.roles();
                if roles.speaker && !live.muted {
                    self.unmute(driver, session, live, &session_id)?;
                }
                if roles.screen
                    && let Some(mode) = call.screen()
                {
                    let (low, high) = self.media.screen(session, mode, live.joins);
                    driver.command(&session_id, Command::ScreenOn { low, high })?;
                }
                if roles.camera {
                    let cam = self.media.camera(session, live.joins);
                    driver.command(&session_id, Command::VideoOn(cam))?;
                }
                live.joins += 1;
                live.session_id = Some(session_id);
                continue;
            }
            let Some(id) = live.session_id.clone() else {
                continue;
            };
            match step.action {
                Action::Join => {}
                Action::Leave => {
                    driver.command(&id, Command::Leave)?;
                    setup
                        .target
                        .placement_mut()
                        .session_left(&call.id().to_string(), step.at);
                }
                Action::Mute => {
                    live.muted = true;
                    driver.command(&id, Command::Mute)?;
                }
                Action::Unmute => {
                    live.muted = false;
                    self.unmute(driver, session, live, &id)?;
                }
                Action::ScreenOff => driver.command(&id, Command::ScreenOff)?,
                Action::ScreenOn => {
                    if let Some(mode) = call.screen() {
                        let (low, high) = self.media.screen(session, mode, live.joins + 100);
                        driver.command(&id, Command::ScreenOn { low, high })?;
                    }
                }
                Action::VideoOff => driver.command(&id, Command::VideoOff)?,
                Action::VideoOn => {
                    let cam = self.media.camera(session, live.joins + 100);
                    driver.command(&id, Command::VideoOn(cam))?;
                }
            }
        }
        // The plan ends with the last leave; wait for the leave ramp's end before measuring stops.
        tokio::time::sleep_until((epoch + self.plan.phases().end).into()).await;
        Ok(())
    }

    fn unmute(
        &self,
        driver: &Driver<RunSink>,
        session: &Session,
        live: &mut Live,
        session_id: &str,
    ) -> anyhow::Result<()> {
        if live.mic_given {
            driver.command(session_id, Command::Unmute(None))?;
            return Ok(());
        }
        if let Some(mic) = self.media.mic(session, live.joins) {
            driver.command(session_id, Command::Unmute(Some(mic)))?;
            live.mic_given = true;
        }
        Ok(())
    }
}
