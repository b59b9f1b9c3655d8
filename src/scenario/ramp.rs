//! Join and leave ramps as steps of a piecewise-linear cumulative schedule.
//!
//! A ramp says what share of the sessions has joined (or left) by each point in time: step `i`
//! moves the share linearly from the previous step's `to` to its own `to` over `over`. A step with
//! `over = 0` is a burst. At any time `t` exactly `floor(n × share(t))` of `n` sessions have
//! acted, so the session of rank `k` (0-based) acts at the first `t` with `share(t) ≥ (k+1)/n`.
//! Everything is integer arithmetic.

use std::time::Duration;

use serde::Serialize;

use super::units::{Percent, Rate, duration_from_nanos};

/// One step of a ramp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Step {
    /// How long the step lasts; zero for a burst.
    pub over: Duration,
    /// The cumulative share of sessions that have acted at the end of the step.
    pub to: Percent,
}

/// How sessions are spread over a ramp phase: either validated steps or a constant rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Ramp(Kind);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    /// Steps with non-decreasing `to`, the last at 100 %.
    Steps(Vec<Step>),
    /// A constant rate of sessions per unit of time (e.g. `"5/s"`), whatever the session count.
    Rate(Rate),
}

/// Why a list of steps is not a ramp. Messages are lower case and say what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RampError {
    /// No steps.
    #[error("expected at least one ramp step")]
    Empty,
    /// A step goes backwards.
    #[error("step {index} goes down from {from} to {to}; ramp shares must not decrease")]
    Decreasing {
        /// 0-based step index.
        index: usize,
        /// The previous share.
        from: Percent,
        /// This step's share.
        to: Percent,
    },
    /// A step changes nothing.
    #[error("step {index} has `over = \"0s\"` and keeps the share at {to}; it does nothing")]
    NoOp {
        /// 0-based step index.
        index: usize,
        /// The share.
        to: Percent,
    },
    /// The last step stops short of everyone.
    #[error("the last step ends at {to}; a ramp must end at 100%")]
    Incomplete {
        /// The last share.
        to: Percent,
    },
}

impl Ramp {
    /// Everyone at once, at the start of the phase.
    pub fn instant() -> Ramp {
        Ramp::linear(Duration::ZERO)
    }

    /// Everyone spread evenly over `over`.
    pub fn linear(over: Duration) -> Ramp {
        Ramp(Kind::Steps(vec![Step {
            over,
            to: Percent::HUNDRED,
        }]))
    }

    /// Sessions spaced `1/rate` apart, the first at the start of the phase.
    pub fn rate(rate: Rate) -> Ramp {
        Ramp(Kind::Rate(rate))
    }

    /// The steps, unless the ramp is a rate.
    pub fn steps(&self) -> Option<&[Step]> {
        match &self.0 {
            Kind::Steps(steps) => Some(steps),
            Kind::Rate(_) => None,
        }
    }

    /// The rate, if the ramp is one.
    pub fn as_rate(&self) -> Option<Rate> {
        match &self.0 {
            Kind::Steps(_) => None,
            Kind::Rate(rate) => Some(*rate),
        }
    }

    /// Checks the step rules (non-empty, non-decreasing, no no-op step, ends at 100 %).
    pub fn from_steps(steps: Vec<Step>) -> Result<Ramp, RampError> {
        let last = steps.last().ok_or(RampError::Empty)?;
        if last.to != Percent::HUNDRED {
            return Err(RampError::Incomplete { to: last.to });
        }
        let mut previous = Percent::ZERO;
        for (index, step) in steps.iter().enumerate() {
            if step.to < previous {
                return Err(RampError::Decreasing {
                    index,
                    from: previous,
                    to: step.to,
                });
            }
            if step.over.is_zero() && step.to == previous {
                return Err(RampError::NoOp { index, to: step.to });
            }
            previous = step.to;
        }
        Ok(Ramp(Kind::Steps(steps)))
    }

    /// How long the ramp takes for `n` sessions.
    pub fn duration(&self, n: u64) -> Duration {
        match &self.0 {
            Kind::Steps(steps) => steps.iter().map(|s| s.over).sum(),
            Kind::Rate(rate) => rate.time_for(n.saturating_sub(1)),
        }
    }

    /// When the session of rank `k` (0-based, `k < n`) acts, from the start of the phase.
    pub fn offset(&self, k: u64, n: u64) -> Duration {
        debug_assert!(k < n, "rank {k} out of {n}");
        match &self.0 {
            Kind::Rate(rate) => rate.time_for(k),
            Kind::Steps(steps) => steps_offset(steps, k, n),
        }
    }
}

/// The first time the cumulative share reaches `(k+1)/n`, for validated steps.
fn steps_offset(steps: &[Step], k: u64, n: u64) -> Duration {
    let whole = u128::from(Percent::WHOLE);
    // Compare share·n ≥ (k+1)·WHOLE in integers.
    let target = u128::from(k + 1) * whole;
    let n = u128::from(n);
    let mut start = Duration::ZERO;
    let mut previous: u128 = 0;
    for step in steps {
        let to = u128::from(step.to.millionths());
        if to * n >= target {
            if step.over.is_zero() || previous * n >= target {
                return start;
            }
            // Linear within the step: share(t) = previous + (to − previous)·t/over.
            let needed = target - previous * n;
            let slope_den = (to - previous) * n;
            let nanos = (step.over.as_nanos() * needed).div_ceil(slope_den);
            return start + duration_from_nanos(nanos);
        }
        start += step.over;
        previous = to;
    }
    // Validated ramps end at 100 %, which every rank reaches; keep a total answer anyway.
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::units::{parse_percent, parse_rate};

    fn step(over_ms: u64, to: &str) -> Step {
        Step {
            over: Duration::from_millis(over_ms),
            to: parse_percent(to).unwrap(),
        }
    }

    #[test]
    fn linear_ramp_spreads_evenly_and_ends_on_time() {
        let ramp = Ramp::linear(Duration::from_secs(10));
        let times: Vec<u64> = (0..4)
            .map(|k| ramp.offset(k, 4).as_millis() as u64)
            .collect();
        assert_eq!(times, [2500, 5000, 7500, 10000]);
        assert_eq!(ramp.duration(4), Duration::from_secs(10));
    }

    #[test]
    fn instant_ramp_is_all_at_zero() {
        let ramp = Ramp::instant();
        assert!((0..7).all(|k| ramp.offset(k, 7).is_zero()));
    }

    #[test]
    fn bursts_and_holds_follow_the_steps() {
        let ramp =
            Ramp::from_steps(vec![step(0, "50%"), step(5000, "50%"), step(10000, "100%")]).unwrap();
        let times: Vec<u64> = (0..4)
            .map(|k| ramp.offset(k, 4).as_millis() as u64)
            .collect();
        assert_eq!(times, [0, 0, 10000, 15000]);
    }

    #[test]
    fn at_any_step_end_floor_of_share_has_joined() {
        let ramp = Ramp::from_steps(vec![step(3000, "30%"), step(7000, "100%")]).unwrap();
        let n = 17;
        let joined_by_3s = (0..n)
            .filter(|&k| ramp.offset(k, n) <= Duration::from_secs(3))
            .count();
        assert_eq!(joined_by_3s, 5); // floor(17 × 0.3)
    }

    #[test]
    fn rate_ramp_spaces_sessions() {
        let ramp = Ramp::rate(parse_rate("4/s").unwrap());
        assert_eq!(ramp.offset(0, 9), Duration::ZERO);
        assert_eq!(ramp.offset(8, 9), Duration::from_secs(2));
        assert_eq!(ramp.duration(9), Duration::from_secs(2));
    }

    #[test]
    fn bad_steps_are_rejected() {
        assert_eq!(Ramp::from_steps(vec![]), Err(RampError::Empty));
        assert!(matches!(
            Ramp::from_steps(vec![step(1000, "60%"), step(1000, "50%"), step(0, "100%")]),
            Err(RampError::Decreasing { index: 1, .. })
        ));
        assert!(matches!(
            Ramp::from_steps(vec![step(1000, "90%")]),
            Err(RampError::Incomplete { .. })
        ));
        assert!(matches!(
            Ramp::from_steps(vec![step(1000, "50%"), step(0, "50%"), step(1000, "100%")]),
            Err(RampError::NoOp { index: 1, .. })
        ));
    }
}
