//! TOML → [`Scenario`]: conversion of the raw file schema (`schema.rs`) into the validated model,
//! with every error reported at the offending key as `path:line:col: message`.
//!
//! Schema errors (unknown key, wrong type, missing key) come from the TOML deserializer with its
//! span; everything it cannot know (unit strings, bounds between keys, media files that must exist)
//! is checked here against the spans kept by [`toml::Spanned`].

use std::num::NonZeroU32;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{ScenarioError, Source};
use super::model::{
    CallGroup, Churn, ChurnAction, ChurnTimes, Direction, Impairment, JoinOrder, Media, Phases,
    Scenario,
};
use super::ramp::{Ramp, Step};
use super::schema::{
    ChurnActionRaw, DirectionRaw, Int, JoinOrderRaw, RawChurn, RawGroup, RawImpairment, RawMedia,
    RawPhases, RawScenario, RawStep, S,
};
use super::threshold::Threshold;
use super::units::{Percent, parse_duration, parse_percent, parse_rate};

/// The most sessions one scenario may expand to; more is a typo, not a load test of one harness.
pub const MAX_SESSIONS: u64 = 1_000_000;

/// Default media folder, relative to the scenario file.
pub const DEFAULT_MEDIA_DIR: &str = "media";
/// Default speech samples in the media folder: two different recordings, both 97 kbps on the wire
/// like the 2024 benchmark's speech sample, so the two speakers of a call send different audio.
pub const DEFAULT_SPEECH: [&str; 2] = ["speech-97.ogg", "conversation.ogg"];
/// Default screen sample without simulcast (1.6 Mbps VP8).
pub const DEFAULT_SCREEN: &str = "screen.ivf";
/// Default simulcast `l` layer.
pub const DEFAULT_SCREEN_LOW: &str = "screen_l.ivf";
/// Default simulcast `h` layer.
pub const DEFAULT_SCREEN_HIGH: &str = "screen_h.ivf";
/// Default camera sample.
pub const DEFAULT_CAMERA: &str = "camera.ivf";

/// Default join ramp (`lt`'s `-join-duration` default).
pub const DEFAULT_JOIN: &str = "30s";
/// Default steady (measurement) window.
pub const DEFAULT_STEADY: &str = "1m";

/// Whether loading checks that the media files exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaCheck {
    /// Every media file a role in the scenario needs must exist (the default).
    Require,
    /// Resolve the paths but do not look at the file system.
    Skip,
}

impl Scenario {
    /// Reads and validates a scenario file; media paths resolve against the file's directory and
    /// must exist.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Scenario::from_toml(&text, path, MediaCheck::Require)
    }

    /// Validates scenario text. `path` names the file in errors, gives the default name (its
    /// stem) and the directory relative media paths resolve against.
    pub fn from_toml(
        text: &str,
        path: &Path,
        media: MediaCheck,
    ) -> Result<Scenario, ScenarioError> {
        let src = Source { path, text };
        let raw: RawScenario = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
        convert(src, raw, media)
    }
}

fn convert(
    src: Source<'_>,
    raw: RawScenario,
    check: MediaCheck,
) -> Result<Scenario, ScenarioError> {
    let name = match &raw.name {
        Some(name) if name.get_ref().trim().is_empty() => {
            return Err(src.error_at_key(name.span(), "expected a non-empty name"));
        }
        Some(name) => name.get_ref().clone(),
        None => src.path.file_stem().map_or_else(
            || "scenario".to_owned(),
            |s| s.to_string_lossy().into_owned(),
        ),
    };
    let seed = match &raw.seed {
        Some(seed) => u64::try_from(seed.get_ref().0).map_err(|_| {
            src.error_at_key(
                seed.span(),
                format!(
                    "expected a non-negative integer seed, found {}",
                    seed.get_ref().0
                ),
            )
        })?,
        None => 0,
    };
    let groups = groups(src, &raw.calls)?;
    let phases = phases(src, raw.phases.as_ref())?;
    let media = media(src, raw.media.as_ref(), &raw.calls, &groups, check)?;
    let churn = raw
        .churn
        .iter()
        .map(|c| churn(src, c, &groups, phases.steady))
        .collect::<Result<Vec<_>, _>>()?;
    let impairments = impairments(src, &raw.impairment)?;
    let thresholds = raw
        .thresholds
        .iter()
        .map(|t| {
            t.get_ref()
                .parse::<Threshold>()
                .map_err(|e| src.error_at(t.span(), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let drains = super::drain::drains(src, &raw.drain)?;
    Ok(Scenario {
        name,
        description: raw.description,
        seed,
        phases,
        groups,
        media,
        churn,
        impairments,
        thresholds,
        drains,
    })
}

/// Reads an integer key in `min..=u32::MAX`.
fn count(src: Source<'_>, value: &S<Int>, key: &str, min: u32) -> Result<u32, ScenarioError> {
    let v = value.get_ref().0;
    u32::try_from(v).ok().filter(|v| *v >= min).ok_or_else(|| {
        src.error_at_key(
            value.span(),
            format!(
                "{key}: expected an integer from {min} to {}, found {v}",
                u32::MAX
            ),
        )
    })
}

/// Reads an integer key in `1..=u32::MAX`.
fn positive(src: Source<'_>, value: &S<Int>, key: &str) -> Result<NonZeroU32, ScenarioError> {
    let v = count(src, value, key, 1)?;
    // `count` with a minimum of 1 never returns 0; fall back to the same error anyway.
    NonZeroU32::new(v)
        .ok_or_else(|| src.error_at_key(value.span(), format!("{key}: expected at least 1")))
}

fn optional_count(
    src: Source<'_>,
    value: Option<&S<Int>>,
    key: &str,
    default: u32,
) -> Result<u32, ScenarioError> {
    value.map_or(Ok(default), |v| count(src, v, key, 0))
}

fn duration(src: Source<'_>, value: &S<String>, key: &str) -> Result<Duration, ScenarioError> {
    parse_duration(value.get_ref())
        .map_err(|e| src.error_at_key(value.span(), format!("{key}: {e}")))
}

fn percent(src: Source<'_>, value: &S<String>, key: &str) -> Result<Percent, ScenarioError> {
    parse_percent(value.get_ref())
        .map_err(|e| src.error_at_key(value.span(), format!("{key}: {e}")))
}

fn groups(src: Source<'_>, calls: &S<Vec<S<RawGroup>>>) -> Result<Vec<CallGroup>, ScenarioError> {
    if calls.get_ref().is_empty() {
        return Err(src.error_at_key(calls.span(), "expected at least one [[calls]] group"));
    }
    let mut groups = Vec::new();
    let mut sessions: u64 = 0;
    for raw in calls.get_ref() {
        let raw = raw.get_ref();
        let count_at = raw.count.as_ref();
        let calls_n = count_at.map_or(Ok(NonZeroU32::MIN), |c| positive(src, c, "count"))?;
        let participants = positive(src, &raw.participants, "participants")?;
        let unmuted = optional_count(src, raw.unmuted.as_ref(), "unmuted", 0)?;
        let video = optional_count(src, raw.video.as_ref(), "video", 0)?;
        let screen = optional_count(src, raw.screen_sharing.as_ref(), "screen_sharing", 0)?;
        let recordings = optional_count(src, raw.recordings.as_ref(), "recordings", 0)?;
        let group = CallGroup::new(calls_n, participants, unmuted, video, screen, recordings)
            .map_err(|e| {
                let span = match e {
                    super::model::GroupError::Unmuted { .. } => raw.unmuted.as_ref().map(S::span),
                    super::model::GroupError::Video { .. } => raw.video.as_ref().map(S::span),
                    super::model::GroupError::Screen { .. } => {
                        raw.screen_sharing.as_ref().map(S::span)
                    }
                    super::model::GroupError::Recordings { .. } => {
                        raw.recordings.as_ref().map(S::span)
                    }
                };
                src.error_at_key(
                    span.unwrap_or_else(|| raw.participants.span()),
                    e.to_string(),
                )
            })?;
        let mut group = group.with_simulcast(raw.simulcast.unwrap_or(false));
        if let Some(name) = &raw.name {
            group = group.named(name.clone());
        }
        sessions += u64::from(calls_n.get()) * u64::from(participants.get());
        if sessions > MAX_SESSIONS {
            let span = count_at.map_or_else(|| raw.participants.span(), S::span);
            return Err(src.error_at_key(
                span,
                format!("the scenario expands to {sessions} sessions or more; at most {MAX_SESSIONS} are supported"),
            ));
        }
        groups.push(group);
    }
    Ok(groups)
}

fn ramp(
    src: Source<'_>,
    simple: Option<&S<String>>,
    steps: Option<&S<Vec<RawStep>>>,
    key: &str,
    default: &str,
) -> Result<Ramp, ScenarioError> {
    match (simple, steps) {
        (Some(_), Some(steps)) => Err(src.error_at_key(
            steps.span(),
            format!("give either {key} or {key}_steps, not both"),
        )),
        (Some(text), None) => {
            let value = text.get_ref();
            if value.contains('/') {
                parse_rate(value)
                    .map(Ramp::rate)
                    .map_err(|e| src.error_at_key(text.span(), format!("{key}: {e}")))
            } else {
                parse_duration(value).map(Ramp::linear).map_err(|e| {
                    src.error_at_key(text.span(), format!("{key}: {e}, or a rate like \"5/s\""))
                })
            }
        }
        (None, Some(raw_steps)) => {
            let mut steps = Vec::new();
            for step in raw_steps.get_ref() {
                steps.push(Step {
                    over: duration(src, &step.over, "over")?,
                    to: percent(src, &step.to, "to")?,
                });
            }
            Ramp::from_steps(steps).map_err(|e| {
                let at = match e {
                    super::ramp::RampError::Decreasing { index, .. }
                    | super::ramp::RampError::NoOp { index, .. } => {
                        raw_steps.get_ref()[index].to.span()
                    }
                    _ => raw_steps.span(),
                };
                src.error_at_key(at, format!("{key}_steps: {e}"))
            })
        }
        (None, None) => Ok(parse_duration(default).map_or_else(|_| Ramp::instant(), Ramp::linear)),
    }
}

fn phases(src: Source<'_>, raw: Option<&RawPhases>) -> Result<Phases, ScenarioError> {
    let default = RawPhases::default();
    let raw = raw.unwrap_or(&default);
    let join = ramp(
        src,
        raw.join.as_ref(),
        raw.join_steps.as_ref(),
        "join",
        DEFAULT_JOIN,
    )?;
    let leave = ramp(
        src,
        raw.leave.as_ref(),
        raw.leave_steps.as_ref(),
        "leave",
        "0s",
    )?;
    let settle = raw
        .settle
        .as_ref()
        .map_or(Ok(Duration::ZERO), |s| duration(src, s, "settle"))?;
    let steady = match &raw.steady {
        Some(steady) => {
            let d = duration(src, steady, "steady")?;
            if d.is_zero() {
                return Err(src.error_at_key(
                    steady.span(),
                    "steady: expected a duration longer than 0s (the measurement window)",
                ));
            }
            d
        }
        None => parse_duration(DEFAULT_STEADY).unwrap_or(Duration::from_secs(60)),
    };
    let order = match raw.order.unwrap_or(JoinOrderRaw::Shuffled) {
        JoinOrderRaw::Shuffled => JoinOrder::Shuffled,
        JoinOrderRaw::ByCall => JoinOrder::ByCall,
        JoinOrderRaw::RoundRobin => JoinOrder::RoundRobin,
    };
    Ok(Phases {
        join,
        order,
        settle,
        steady,
        leave,
    })
}

/// Resolves `name` against the media folder and, when required, checks that it exists.
fn media_file(
    src: Source<'_>,
    dir: &Path,
    value: Option<&S<String>>,
    default: &str,
    needed_by: Option<Range<usize>>,
    check: MediaCheck,
    what: &str,
) -> Result<PathBuf, ScenarioError> {
    let name = value.map_or(default, |v| v.get_ref().as_str());
    let path = dir.join(name);
    if check == MediaCheck::Require
        && let Some(needed_by) = needed_by
        && !path.is_file()
    {
        let span = value.map_or(needed_by, S::span);
        return Err(src.error_at_key(
            span,
            format!("{what} file {} does not exist", path.display()),
        ));
    }
    Ok(path)
}

fn media(
    src: Source<'_>,
    raw: Option<&RawMedia>,
    calls: &S<Vec<S<RawGroup>>>,
    groups: &[CallGroup],
    check: MediaCheck,
) -> Result<Media, ScenarioError> {
    let base = src.path.parent().unwrap_or(Path::new("."));
    let dir_value = raw.and_then(|m| m.dir.as_ref());
    let dir = base.join(dir_value.map_or(DEFAULT_MEDIA_DIR, |d| d.get_ref().as_str()));
    // A missing default file is blamed on `dir` if given, else on the key that needs the role.
    let needs = |pick: &dyn Fn(&RawGroup, &CallGroup) -> Option<Range<usize>>| {
        calls
            .get_ref()
            .iter()
            .zip(groups)
            .find_map(|(raw, group)| pick(raw.get_ref(), group))
            .map(|span| dir_value.map_or(span, S::span))
    };
    let speech_need = needs(&|r, g| {
        (g.unmuted() > 0)
            .then(|| r.unmuted.as_ref().map(S::span))
            .flatten()
    });
    let plain_need = needs(&|r, g| {
        (g.screen_sharing() > 0 && !g.simulcast())
            .then(|| r.screen_sharing.as_ref().map(S::span))
            .flatten()
    });
    let simulcast_need = needs(&|r, g| {
        (g.screen_sharing() > 0 && g.simulcast())
            .then(|| r.screen_sharing.as_ref().map(S::span))
            .flatten()
    });
    let camera_need = needs(&|r, g| {
        (g.video() > 0)
            .then(|| r.video.as_ref().map(S::span))
            .flatten()
    });

    let speech = match raw.and_then(|m| m.speech.as_ref()) {
        Some(list) if list.get_ref().is_empty() => {
            return Err(src.error_at_key(list.span(), "speech: expected at least one file"));
        }
        Some(list) => list
            .get_ref()
            .iter()
            .map(|f| media_file(src, &dir, Some(f), "", speech_need.clone(), check, "speech"))
            .collect::<Result<Vec<_>, _>>()?,
        None => DEFAULT_SPEECH
            .iter()
            .map(|name| media_file(src, &dir, None, name, speech_need.clone(), check, "speech"))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let m = |f: fn(&RawMedia) -> Option<&S<String>>| raw.and_then(f);
    Ok(Media {
        speech,
        screen: media_file(
            src,
            &dir,
            m(|m| m.screen.as_ref()),
            DEFAULT_SCREEN,
            plain_need,
            check,
            "screen",
        )?,
        screen_low: media_file(
            src,
            &dir,
            m(|m| m.screen_low.as_ref()),
            DEFAULT_SCREEN_LOW,
            simulcast_need.clone(),
            check,
            "screen_low",
        )?,
        screen_high: media_file(
            src,
            &dir,
            m(|m| m.screen_high.as_ref()),
            DEFAULT_SCREEN_HIGH,
            simulcast_need,
            check,
            "screen_high",
        )?,
        camera: media_file(
            src,
            &dir,
            m(|m| m.camera.as_ref()),
            DEFAULT_CAMERA,
            camera_need,
            check,
            "camera",
        )?,
    })
}

fn churn(
    src: Source<'_>,
    raw: &S<RawChurn>,
    groups: &[CallGroup],
    steady: Duration,
) -> Result<Churn, ScenarioError> {
    let raw = raw.get_ref();
    let action = match *raw.action.get_ref() {
        ChurnActionRaw::Mute => ChurnAction::Mute,
        ChurnActionRaw::Screen => ChurnAction::Screen,
        ChurnActionRaw::Video => ChurnAction::Video,
        ChurnActionRaw::Rejoin => ChurnAction::Rejoin,
    };
    let eligible: u64 = groups
        .iter()
        .map(|g| {
            let calls = u64::from(g.count().get());
            match action {
                ChurnAction::Mute => calls * u64::from(g.unmuted()),
                ChurnAction::Screen => u64::from(g.screen_sharing()),
                ChurnAction::Video => calls * u64::from(g.video()),
                ChurnAction::Rejoin => calls * u64::from(g.participants().get()),
            }
        })
        .sum();
    if eligible == 0 {
        let role = match action {
            ChurnAction::Mute => "no session is unmuted",
            ChurnAction::Screen => "no call has a screen sharer",
            ChurnAction::Video => "no session sends video",
            ChurnAction::Rejoin => "there are no sessions",
        };
        return Err(src.error_at_key(
            raw.action.span(),
            format!("{} churn has nothing to act on: {role}", action.name()),
        ));
    }
    let targets = match &raw.targets {
        Some(t) => {
            let n = positive(src, t, "targets")?;
            if u64::from(n.get()) > eligible {
                return Err(src.error_at_key(
                    t.span(),
                    format!(
                        "targets ({n}) exceeds the {eligible} sessions {} churn can act on",
                        action.name()
                    ),
                ));
            }
            n
        }
        None => NonZeroU32::MIN,
    };
    let off_for = duration(src, &raw.off_for, "off_for")?;
    if off_for.is_zero() {
        return Err(src.error_at_key(
            raw.off_for.span(),
            "off_for: expected a duration longer than 0s",
        ));
    }
    let times = match (&raw.at, &raw.rate) {
        (Some(_), Some(rate)) => {
            return Err(src.error_at_key(rate.span(), "give either at or rate, not both"));
        }
        (None, None) => {
            return Err(src.error_at_key(
                raw.action.span(),
                "churn needs `at` (a list of times) or `rate` (events per second)",
            ));
        }
        (Some(list), None) => {
            if list.get_ref().is_empty() {
                return Err(src.error_at_key(list.span(), "at: expected at least one time"));
            }
            let mut times = Vec::new();
            for at in list.get_ref() {
                let t = duration(src, at, "at")?;
                if t + off_for > steady {
                    return Err(src.error_at(
                        at.span(),
                        format!(
                            "at: {} plus off_for {} ends after the steady phase ({}); churn must revert before leaving starts",
                            at.get_ref(),
                            raw.off_for.get_ref(),
                            super::units::format_duration(steady)
                        ),
                    ));
                }
                times.push(t);
            }
            times.sort();
            ChurnTimes::At(times)
        }
        (None, Some(rate)) => {
            let r = parse_rate(rate.get_ref())
                .map_err(|e| src.error_at_key(rate.span(), format!("rate: {e}")))?;
            if off_for >= steady {
                return Err(src.error_at_key(
                    raw.off_for.span(),
                    format!(
                        "off_for: expected less than the steady phase ({})",
                        super::units::format_duration(steady)
                    ),
                ));
            }
            ChurnTimes::Rate(r)
        }
    };
    Ok(Churn {
        action,
        times,
        targets,
        off_for,
    })
}

fn impairments(
    src: Source<'_>,
    raw: &[S<RawImpairment>],
) -> Result<Vec<Impairment>, ScenarioError> {
    let mut out: Vec<Impairment> = Vec::new();
    let mut total: u32 = 0;
    for item in raw {
        let item = item.get_ref();
        let name = item.name.get_ref().trim();
        if name.is_empty() {
            return Err(src.error_at_key(item.name.span(), "name: expected a non-empty name"));
        }
        if out.iter().any(|i| i.name == name) {
            return Err(src.error_at_key(
                item.name.span(),
                format!("name: impairment group \"{name}\" is defined twice"),
            ));
        }
        let share = percent(src, &item.share, "share")?;
        if share == Percent::ZERO {
            return Err(src.error_at_key(item.share.span(), "share: expected more than 0%"));
        }
        total += share.millionths();
        if total > Percent::WHOLE {
            return Err(src.error_at_key(
                item.share.span(),
                "share: the impairment groups' shares add up to more than 100%",
            ));
        }
        let opt_duration = |v: &Option<S<String>>, key| {
            v.as_ref()
                .map_or(Ok(Duration::ZERO), |v| duration(src, v, key))
        };
        out.push(Impairment {
            name: name.to_owned(),
            share,
            loss: item
                .loss
                .as_ref()
                .map_or(Ok(Percent::ZERO), |v| percent(src, v, "loss"))?,
            delay: opt_duration(&item.delay, "delay")?,
            jitter: opt_duration(&item.jitter, "jitter")?,
            direction: match item.direction.unwrap_or(DirectionRaw::Both) {
                DirectionRaw::Up => Direction::Up,
                DirectionRaw::Down => Direction::Down,
                DirectionRaw::Both => Direction::Both,
            },
        });
    }
    Ok(out)
}
