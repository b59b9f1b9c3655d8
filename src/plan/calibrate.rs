//! `plan --calibrate DIR...`: refit the capacity model on local results directories (the flows from
//! `manifest.json`, steady-window CPU, memory and bandwidth from the recomputed summary), alone or
//! together with a family's published rows, and report the fitted terms and the fit error.
//!
//! A local run's CPU is in cores of the host the target ran on, so a model calibrated on local runs
//! alone predicts for that kind of host; mixed with published rows it treats a local core as an EC2
//! vCPU. The fit error reported is in-sample (each observation against the model fit to all of
//! them); with fewer observations of different shapes than a model has terms the fit can be exact
//! and the error says nothing, which the report says.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::flow::Flows;
use super::model::{CapacityModel, ErrorSummary, FitError, Observation, error_pct};
use super::render::{Align, TextTable, coefficients_table, error_summary_table, fixed, signed_pct};
use super::table::BenchmarkTable;
use crate::report::{FlowCounts, ReadError, RunResult};

/// Why a calibration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("{dir}: {source}")]
    Read {
        dir: String,
        #[source]
        source: ReadError,
    },
    #[error("{dir}: no {what} was measured, so it cannot calibrate the model")]
    Missing { dir: String, what: &'static str },
    #[error("{dir}: the results have no sessions")]
    Empty { dir: String },
    #[error(transparent)]
    Fit(#[from] FitError),
}

/// The flow counts of a results directory in the planner's terms.
pub fn flows_of(c: &FlowCounts) -> Flows {
    Flows {
        sessions: c.sessions,
        audio_sources: c.audio_sources,
        screen_sharers: c.screen_sharers,
        video_sources: c.video_sources,
        inbound_streams: c.audio_sources + c.screen_sharers + c.video_sources,
        forwarded_audio: c.forwarded_audio,
        screen_viewers: c.screen_viewers,
        forwarded_video: c.forwarded_video,
    }
}

/// One results directory as an observation.
pub fn observation_of(result: &RunResult, dir: &Path) -> Result<Observation, CalibrateError> {
    let d = || dir.display().to_string();
    let b = &result.summary.benchmark;
    let flows = flows_of(&result.manifest.scenario.flows);
    if flows.sessions == 0 {
        return Err(CalibrateError::Empty { dir: d() });
    }
    let need = |v: Option<f64>, what| v.ok_or(CalibrateError::Missing { dir: d(), what });
    Ok(Observation {
        label: d(),
        flows,
        busy_vcpus: need(b.cpu_avg_cores, "server CPU")?,
        memory_bytes: need(b.memory_avg_bytes.map(|m| m as f64), "server memory")?,
        in_bps: need(b.bandwidth_in_bps, "ingress bandwidth")?,
        out_bps: need(b.bandwidth_out_bps, "egress bandwidth")?,
    })
}

/// One observation against the calibrated model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitCheck {
    pub label: String,
    /// Local results (true) or a published row.
    pub local: bool,
    pub cpu: f64,
    pub cpu_fitted: f64,
    pub cpu_error_pct: f64,
    pub memory_gb: f64,
    pub memory_fitted_gb: f64,
    pub memory_error_pct: f64,
    pub out_mbps: f64,
    pub out_fitted_mbps: f64,
    pub out_error_pct: f64,
    pub in_mbps: f64,
    pub in_fitted_mbps: f64,
    pub in_error_pct: f64,
}

/// A calibrated model and how well it fits what it was fit to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// Local results directories used.
    pub local: usize,
    /// Published rows used (0 unless asked for), and their table.
    pub published: usize,
    pub published_table: Option<String>,
    pub model: CapacityModel,
    pub checks: Vec<FitCheck>,
    /// In-sample error summaries (worst_row is the 1-based position in `checks`).
    pub cpu: ErrorSummary,
    pub memory: ErrorSummary,
    pub bandwidth_out: ErrorSummary,
    pub bandwidth_in: ErrorSummary,
    /// Caveats a reader needs (too few shapes, mixed hardware).
    pub notes: Vec<String>,
}

/// Fits the model to the results in `dirs`, plus every row of `published` when given.
pub fn calibrate(
    dirs: &[PathBuf],
    published: Option<&BenchmarkTable>,
) -> Result<Calibration, CalibrateError> {
    let mut obs = Vec::new();
    for dir in dirs {
        let result = RunResult::read(dir).map_err(|source| CalibrateError::Read {
            dir: dir.display().to_string(),
            source,
        })?;
        obs.push(observation_of(&result, dir)?);
    }
    let local = obs.len();
    if let Some(t) = published {
        obs.extend(t.rows.iter().map(Observation::from));
    }
    let model = CapacityModel::fit_observations(&obs)?;
    let checks: Vec<FitCheck> = obs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let d = model.predict(&o.flows);
            FitCheck {
                label: o.label.clone(),
                local: i < local,
                cpu: o.busy_vcpus,
                cpu_fitted: d.busy_vcpus,
                cpu_error_pct: error_pct(d.busy_vcpus, o.busy_vcpus),
                memory_gb: o.memory_bytes / 1e9,
                memory_fitted_gb: d.memory_bytes / 1e9,
                memory_error_pct: error_pct(d.memory_bytes, o.memory_bytes),
                out_mbps: o.out_bps / 1e6,
                out_fitted_mbps: d.out_bps / 1e6,
                out_error_pct: error_pct(d.out_bps, o.out_bps),
                in_mbps: o.in_bps / 1e6,
                in_fitted_mbps: d.in_bps / 1e6,
                in_error_pct: error_pct(d.in_bps, o.in_bps),
            }
        })
        .collect();
    let summary = |f: fn(&FitCheck) -> f64| {
        let errors: Vec<(u32, f64)> = checks
            .iter()
            .enumerate()
            .map(|(i, c)| (u32::try_from(i + 1).unwrap_or(u32::MAX), f(c)))
            .filter(|(_, e)| e.is_finite())
            .collect();
        ErrorSummary::of_errors(&errors)
    };
    let mut notes = Vec::new();
    let shapes = distinct_shapes(&obs);
    let cpu_terms = model.cpu.terms.len();
    if shapes <= cpu_terms {
        notes.push(format!(
            "{shapes} distinct flow shapes for {cpu_terms} CPU terms: the fit can be exact and its \
             error says nothing; add runs of other shapes (calls, users, unmuted, screen)"
        ));
    }
    if local > 0 && published.is_some() {
        notes.push(
            "local CPU is in cores of the host the target ran on and is fit together with \
             published EC2 vCPUs as if they were the same"
                .to_owned(),
        );
    }
    if local > 0 && published.is_none() {
        notes.push(
            "calibrated on local runs only: predictions are for the kind of host they ran on"
                .to_owned(),
        );
    }
    Ok(Calibration {
        local,
        published: obs.len() - local,
        published_table: published.map(|t| t.path.clone()),
        cpu: summary(|c| c.cpu_error_pct),
        memory: summary(|c| c.memory_error_pct),
        bandwidth_out: summary(|c| c.out_error_pct),
        bandwidth_in: summary(|c| c.in_error_pct),
        model,
        checks,
        notes,
    })
}

/// Observations whose flow vectors differ (a repeated run adds no information about the terms).
fn distinct_shapes(obs: &[Observation]) -> usize {
    let mut shapes: Vec<Flows> = obs.iter().map(|o| o.flows).collect();
    shapes.sort_by_key(|f| {
        (
            f.sessions,
            f.inbound_streams,
            f.forwarded_audio,
            f.screen_viewers,
            f.screen_sharers,
            f.forwarded_video,
        )
    });
    shapes.dedup();
    shapes.len()
}

/// The calibration as text: fitted terms, then the fit error per observation and in summary.
pub fn render_calibration(c: &Calibration) -> String {
    let mut out = format!(
        "calibration: {} local results directories{}\n\nfitted terms:\n",
        c.local,
        match &c.published_table {
            Some(t) => format!(" + {} published rows of {t}", c.published),
            None => String::new(),
        }
    );
    out += &coefficients_table(&c.model);
    out += "\nfit error (in-sample: each observation against the model fit to all of them):\n";
    let mut t = TextTable::new(&[
        ("#", Align::Right),
        ("observation", Align::Left),
        ("CPU", Align::Right),
        ("fitted", Align::Right),
        ("err", Align::Right),
        ("mem GB", Align::Right),
        ("fitted", Align::Right),
        ("err", Align::Right),
        ("out Mbps", Align::Right),
        ("fitted", Align::Right),
        ("err", Align::Right),
        ("in Mbps", Align::Right),
        ("fitted", Align::Right),
        ("err", Align::Right),
    ]);
    for (i, k) in c.checks.iter().enumerate() {
        t.row(vec![
            (i + 1).to_string(),
            k.label.clone(),
            fixed(k.cpu, 3),
            fixed(k.cpu_fitted, 3),
            signed_pct(k.cpu_error_pct),
            fixed(k.memory_gb, 3),
            fixed(k.memory_fitted_gb, 3),
            signed_pct(k.memory_error_pct),
            fixed(k.out_mbps, 2),
            fixed(k.out_fitted_mbps, 2),
            signed_pct(k.out_error_pct),
            fixed(k.in_mbps, 2),
            fixed(k.in_fitted_mbps, 2),
            signed_pct(k.in_error_pct),
        ]);
    }
    out += &t.render();
    out.push('\n');
    out += &error_summary_table(
        "worst #",
        &c.cpu,
        &c.memory,
        &c.bandwidth_out,
        &c.bandwidth_in,
    );
    out.push('\n');
    for n in &c.notes {
        out += &format!("note: {n}\n");
    }
    out
}
