//! Results: the model a run produces ([`RunResult`]), its files, and everything that reads them —
//! the terminal summary, `report` (Markdown + single-file HTML with plots), `compare` and `merge`.
//!
//! # How the `run` command feeds it
//!
//! ```text
//! measure::Aggregator::finish() ─▶ Measurements ─┐
//! Manifest { scenario, target, host, how it ended } ─┴▶ RunResult::new ─▶ .write(dir)
//!                                                                      ─▶ text::render (terminal)
//!                                                                      ─▶ render::write_report(dir)
//!                                                                      ─▶ .exit_code()
//! ```
//!
//! 1. Build a [`Manifest`]: [`Host::this_machine`], [`Tool::this`],
//!    [`ScenarioInfo::of_plan`] (name, seed, thresholds, the whole scenario's benchmark [`Mix`],
//!    the [`FlowCounts`] of the plan or shard slice this harness runs, phase boundaries), and a
//!    [`TargetInfo`] with the probe used ([`ProbeSource`]) and the target's vCPUs (the host's cores
//!    for the embedded target). `tests/report_pipeline.rs` wires all of it end to end.
//! 2. Run the engine with `measure` (see its module docs); append each sealed second to a
//!    [`SeriesWriter`] so even a killed run leaves its series on disk; at the end
//!    `RunResult::new(manifest, aggregator.finish())`.
//! 3. Ctrl-C, a dead target or a fatal error: still call `finish()` and build the result, with
//!    `complete: false`, the [`EndReason`] and a sentence in `end_detail`; everything is written and
//!    the summary says the figures are partial. [`RunResult::exit_code`] is then 2.
//! 4. `result.write(&dir)`, print [`text::render`], call [`render::write_report`], and exit with
//!    [`RunResult::exit_code`] (0 passed, 1 a threshold failed or the harness was saturated).
//!
//! The directory layout is in [`files`]; `series.csv` columns are [`crate::measure::Snapshot`]'s
//! fields; `summary.json` follows `reports/schema/summary.schema.json` (checked in tests).

pub mod cli;
pub mod compare;
pub mod files;
pub mod hosts;
pub mod jobload;
pub mod merge;
pub mod model;
pub mod plots;
pub mod render;
pub mod schema;
pub mod summary;
pub mod synthetic;
pub mod table;
pub mod text;

pub use files::{ReadError, RunResult, SeriesWriter, WriteError};
pub use model::{
    EndReason, FORMAT_VERSION, FlowCounts, Host, Manifest, Mix, PhaseSeconds, ProbeSource,
    ScenarioInfo, ShardEntry, TargetInfo, Tool,
};
pub use summary::{Summary, steady_window};
