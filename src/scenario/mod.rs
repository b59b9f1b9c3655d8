//! Scenarios: the TOML description of a load run, validated into a [`Scenario`], expanded into a
//! deterministic [`Plan`] and sliced into shards for distributed runs.
//!
//! ```text
//! scenario.toml ──Scenario::load──▶ Scenario ──Plan::expand──▶ Plan ──Plan::shard(I/N)──▶ Plan (slice)
//! ```
//!
//! * Loading parses, it does not merely validate: durations become [`std::time::Duration`], shares
//!   become [`Percent`], ramps become [`Ramp`] steps, thresholds become typed [`Threshold`]s, and the
//!   model types cannot hold an illegal combination. Every error reads `path:line:col: what was
//!   expected`, pointing at the offending key (see [`ScenarioError`]).
//! * Expansion is a pure function of the scenario (with its seed) and [`PlanConfig`]; see
//!   [`plan`] for the role rules and [`seed`] for how ids and per-session seeds are derived.
//! * Sharding keeps calls whole while they fit in `max_call_size`; see [`shard`].
//!
//! The file format, every key, unit and default, is documented in `scenarios/README.md`.

pub mod check;
mod churn;
mod drain;
pub mod error;
pub mod model;
pub mod parse;
pub mod plan;
pub mod ramp;
mod schema;
pub mod seed;
pub mod shard;
pub mod summary;
pub mod threshold;
pub mod units;

pub use error::{Location, ScenarioError};
pub use model::{
    CallGroup, Churn, ChurnAction, ChurnTimes, Direction, Drain, DrainHost, Impairment, JoinOrder,
    Media, Phases, Scenario,
};
pub use parse::MediaCheck;
pub use plan::{
    Action, Call, Event, PhaseTimes, Plan, PlanConfig, Role, Roles, ScreenMode, Session,
    TimelineEntry,
};
pub use ramp::{Ramp, Step};
pub use seed::Id;
pub use shard::{DEFAULT_MAX_CALL_SIZE, Piece, ShardError, ShardInfo, ShardSpec};
pub use summary::Summary;
pub use threshold::{Comparator, Limit, Metric, Stat, Threshold};
pub use units::{Percent, Rate};
