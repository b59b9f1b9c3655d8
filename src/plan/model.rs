//! Linear resource models fit to a published table, and their leave-one-out validation.
//!
//! Every resource is a non-negative combination of flow counts (see `flow`):
//! - CPU (busy vCPUs = CPU% × vCPUs): per session, per inbound stream, per forwarded audio stream, per
//!   screen viewer, and an extra per inbound screen stream (a 1.6 Mbps screen upload is about three times
//!   an audio stream's packet rate; without it the c7i 500×2 row with 500 sharers is mispredicted by
//!   half). No intercept: an idle rtcd uses next to no CPU.
//! - Memory (bytes): a base plus per session, inbound stream, forwarded audio stream and screen viewer.
//! - Bandwidth out (bit/s): per forwarded audio stream and per screen viewer.
//! - Bandwidth in (bit/s): per audio source, per session (RTCP and feedback every participant sends,
//!   calls-loadtest.md §2.5) and per screen sharer.
//!
//! Forwarded camera streams count as screen viewers and camera sources as screen sharers: no published
//! row has video, and the 1.6 Mbps screen sample is above a camera's 1 Mbps cap (calls-loadtest.md
//! §1.5), so the estimate errs high.
//!
//! Fit: non-negative least squares (`nnls`) on relative residuals — each row divided by its published
//! value — because a planner cares about percentage error and the rows span two orders of magnitude.
//! Leave-one-out: for each row, fit on all the others and predict it.

use serde::Serialize;

use super::flow::Flows;
use super::nnls::{NnlsError, nnls};
use super::table::{BenchmarkRow, BenchmarkTable};

/// Why a model could not be fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FitError {
    #[error("fitting the {resource} model: {source}")]
    Solve {
        resource: &'static str,
        #[source]
        source: NnlsError,
    },
    #[error("leave-one-out needs at least 2 rows, the table has {0}")]
    TooFewRows(usize),
    #[error("no observation has a positive {0} figure to fit")]
    NoData(&'static str),
}

/// One fitted term: the cost of one unit of a flow count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Term {
    pub name: &'static str,
    /// Unit of the coefficient, e.g. "vCPU per session".
    pub unit: &'static str,
    pub coefficient: f64,
}

/// A non-negative linear model over named features.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Linear {
    pub terms: Vec<Term>,
}

impl Linear {
    fn fit(
        resource: &'static str,
        names: &[(&'static str, &'static str)],
        xs: &[Vec<f64>],
        ys: &[f64],
    ) -> Result<Self, FitError> {
        // Relative residuals: divide each observation by its published value.
        let a: Vec<Vec<f64>> = xs
            .iter()
            .zip(ys)
            .map(|(x, y)| x.iter().map(|v| v / y).collect())
            .collect();
        let b = vec![1.0; ys.len()];
        let coef = nnls(&a, &b).map_err(|source| FitError::Solve { resource, source })?;
        Ok(Self {
            terms: names
                .iter()
                .zip(coef)
                .map(|(&(name, unit), coefficient)| Term {
                    name,
                    unit,
                    coefficient,
                })
                .collect(),
        })
    }

    fn eval(&self, x: &[f64]) -> f64 {
        self.terms
            .iter()
            .zip(x)
            .map(|(t, v)| t.coefficient * v)
            .sum()
    }
}

const CPU_TERMS: &[(&str, &str)] = &[
    ("session", "vCPU per session"),
    ("inbound stream", "vCPU per inbound stream"),
    ("forwarded audio stream", "vCPU per forwarded audio stream"),
    ("screen viewer", "vCPU per screen viewer"),
    ("screen sharer", "extra vCPU per inbound screen stream"),
];
const MEMORY_TERMS: &[(&str, &str)] = &[
    ("base", "bytes"),
    ("session", "bytes per session"),
    ("inbound stream", "bytes per inbound stream"),
    ("forwarded audio stream", "bytes per forwarded audio stream"),
    ("screen viewer", "bytes per screen viewer"),
];
const OUT_TERMS: &[(&str, &str)] = &[
    ("forwarded audio stream", "bit/s per forwarded audio stream"),
    ("screen viewer", "bit/s per screen viewer"),
];
const IN_TERMS: &[(&str, &str)] = &[
    ("audio source", "bit/s per audio source"),
    ("session", "bit/s per session"),
    ("screen sharer", "bit/s per screen sharer"),
];

fn viewers(f: &Flows) -> f64 {
    (f.screen_viewers + f.forwarded_video) as f64
}

fn cpu_x(f: &Flows) -> Vec<f64> {
    vec![
        f.sessions as f64,
        f.inbound_streams as f64,
        f.forwarded_audio as f64,
        viewers(f),
        (f.screen_sharers + f.video_sources) as f64,
    ]
}

fn memory_x(f: &Flows) -> Vec<f64> {
    vec![
        1.0,
        f.sessions as f64,
        f.inbound_streams as f64,
        f.forwarded_audio as f64,
        viewers(f),
    ]
}

fn out_x(f: &Flows) -> Vec<f64> {
    vec![f.forwarded_audio as f64, viewers(f)]
}

fn in_x(f: &Flows) -> Vec<f64> {
    vec![
        f.audio_sources as f64,
        f.sessions as f64,
        (f.screen_sharers + f.video_sources) as f64,
    ]
}

/// What a call mix needs from one rtcd host, independent of its size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Demand {
    pub busy_vcpus: f64,
    pub memory_bytes: f64,
    pub in_bps: f64,
    pub out_bps: f64,
}

impl Demand {
    /// CPU as a percentage of a host with `vcpus` vCPUs (linear in cores, calls-loadtest.md §2.5).
    pub fn cpu_percent(&self, vcpus: u32) -> f64 {
        self.busy_vcpus / f64::from(vcpus) * 100.0
    }
}

/// CPU, memory and bandwidth models for one family's table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityModel {
    pub cpu: Linear,
    pub memory: Linear,
    pub bandwidth_out: Linear,
    pub bandwidth_in: Linear,
    pub rows_fitted: usize,
}

/// One operating point the models are fit to: the flows and what they cost. A published row or a
/// local results directory (`calibrate`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// What it is, for reports (`row 3`, a results directory).
    pub label: String,
    pub flows: Flows,
    /// Busy vCPUs (or cores of the measured host).
    pub busy_vcpus: f64,
    pub memory_bytes: f64,
    pub in_bps: f64,
    pub out_bps: f64,
}

impl From<&BenchmarkRow> for Observation {
    fn from(r: &BenchmarkRow) -> Self {
        Self {
            label: format!("row {} ({}, {})", r.row, r.label(), r.instance.name),
            flows: r.mix().flows(),
            busy_vcpus: r.busy_vcpus(),
            memory_bytes: r.memory.value().0,
            in_bps: r.bandwidth_in.value().0,
            out_bps: r.bandwidth_out.value().0,
        }
    }
}

impl CapacityModel {
    /// Fits every model to these rows.
    pub fn fit(rows: &[&BenchmarkRow]) -> Result<Self, FitError> {
        let obs: Vec<Observation> = rows.iter().map(|r| Observation::from(*r)).collect();
        Self::fit_observations(&obs)
    }

    /// Fits every model to these observations. For each resource, observations with a value that
    /// is not positive are left out (a relative residual cannot be taken of them).
    pub fn fit_observations(obs: &[Observation]) -> Result<Self, FitError> {
        let fit_one = |resource: &'static str,
                       names: &[(&'static str, &'static str)],
                       x: fn(&Flows) -> Vec<f64>,
                       y: fn(&Observation) -> f64| {
            let (xs, ys): (Vec<Vec<f64>>, Vec<f64>) = obs
                .iter()
                .filter(|o| y(o).is_finite() && y(o) > 0.0)
                .map(|o| (x(&o.flows), y(o)))
                .unzip();
            if ys.is_empty() {
                return Err(FitError::NoData(resource));
            }
            Linear::fit(resource, names, &xs, &ys)
        };
        Ok(Self {
            cpu: fit_one("cpu", CPU_TERMS, cpu_x, |o| o.busy_vcpus)?,
            memory: fit_one("memory", MEMORY_TERMS, memory_x, |o| o.memory_bytes)?,
            bandwidth_out: fit_one("bandwidth out", OUT_TERMS, out_x, |o| o.out_bps)?,
            bandwidth_in: fit_one("bandwidth in", IN_TERMS, in_x, |o| o.in_bps)?,
            rows_fitted: obs.len(),
        })
    }

    /// Fits every model to a whole table.
    pub fn fit_table(table: &BenchmarkTable) -> Result<Self, FitError> {
        let rows: Vec<&BenchmarkRow> = table.rows.iter().collect();
        Self::fit(&rows)
    }

    /// Predicts what these flows need.
    pub fn predict(&self, f: &Flows) -> Demand {
        Demand {
            busy_vcpus: self.cpu.eval(&cpu_x(f)),
            memory_bytes: self.memory.eval(&memory_x(f)),
            in_bps: self.bandwidth_in.eval(&in_x(f)),
            out_bps: self.bandwidth_out.eval(&out_x(f)),
        }
    }
}

/// Signed error of a prediction, in percent of the published value.
pub fn error_pct(predicted: f64, published: f64) -> f64 {
    (predicted - published) / published * 100.0
}

/// One row's leave-one-out check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowCheck {
    pub row: u32,
    pub label: String,
    pub instance: &'static str,
    pub cpu_published: String,
    pub cpu_predicted_pct: f64,
    pub cpu_error_pct: f64,
    pub memory_published: String,
    pub memory_predicted_gb: f64,
    pub memory_error_pct: f64,
    pub out_published: String,
    pub out_predicted_mbps: f64,
    pub out_error_pct: f64,
    pub in_published: String,
    pub in_predicted_mbps: f64,
    pub in_error_pct: f64,
}

/// Median and worst absolute error over the rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorSummary {
    pub median_abs_pct: f64,
    pub worst_abs_pct: f64,
    /// Row number of the worst error.
    pub worst_row: u32,
}

impl ErrorSummary {
    fn of(rows: &[RowCheck], err: impl Fn(&RowCheck) -> f64) -> Self {
        let errors: Vec<(u32, f64)> = rows.iter().map(|r| (r.row, err(r))).collect();
        Self::of_errors(&errors)
    }

    /// Median and worst of signed percentage errors, each with its row number; all zero when empty.
    pub fn of_errors(errors: &[(u32, f64)]) -> Self {
        if errors.is_empty() {
            return Self {
                median_abs_pct: 0.0,
                worst_abs_pct: 0.0,
                worst_row: 0,
            };
        }
        let mut abs: Vec<f64> = errors.iter().map(|(_, e)| e.abs()).collect();
        abs.sort_by(f64::total_cmp);
        let n = abs.len();
        let median = if n % 2 == 1 {
            abs[n / 2]
        } else {
            (abs[n / 2 - 1] + abs[n / 2]) / 2.0
        };
        let worst = errors.iter().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()));
        Self {
            median_abs_pct: median,
            worst_abs_pct: abs[n - 1],
            worst_row: worst.map_or(0, |w| w.0),
        }
    }
}

/// Leave-one-out validation of a table's models.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validation {
    pub family: String,
    pub rows: Vec<RowCheck>,
    pub cpu: ErrorSummary,
    pub memory: ErrorSummary,
    pub bandwidth_out: ErrorSummary,
    pub bandwidth_in: ErrorSummary,
    /// The models fit to every row: what `plan` uses.
    pub full_fit: CapacityModel,
}

/// Fits on every row but one and predicts that one, for every row.
pub fn leave_one_out(table: &BenchmarkTable) -> Result<Validation, FitError> {
    if table.rows.len() < 2 {
        return Err(FitError::TooFewRows(table.rows.len()));
    }
    let mut checks = Vec::with_capacity(table.rows.len());
    for (i, held_out) in table.rows.iter().enumerate() {
        let train: Vec<&BenchmarkRow> = table
            .rows
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, r)| r)
            .collect();
        let model = CapacityModel::fit(&train)?;
        let d = model.predict(&held_out.mix().flows());
        let cpu_pct = d.cpu_percent(held_out.instance.vcpus);
        checks.push(RowCheck {
            row: held_out.row,
            label: held_out.label(),
            instance: held_out.instance.name,
            cpu_published: held_out.cpu.text().to_owned(),
            cpu_predicted_pct: cpu_pct,
            cpu_error_pct: error_pct(cpu_pct, held_out.cpu.value().0),
            memory_published: held_out.memory.text().to_owned(),
            memory_predicted_gb: d.memory_bytes / 1e9,
            memory_error_pct: error_pct(d.memory_bytes, held_out.memory.value().0),
            out_published: held_out.bandwidth_out.text().to_owned(),
            out_predicted_mbps: d.out_bps / 1e6,
            out_error_pct: error_pct(d.out_bps, held_out.bandwidth_out.value().0),
            in_published: held_out.bandwidth_in.text().to_owned(),
            in_predicted_mbps: d.in_bps / 1e6,
            in_error_pct: error_pct(d.in_bps, held_out.bandwidth_in.value().0),
        });
    }
    Ok(Validation {
        family: table.meta.family.to_string(),
        cpu: ErrorSummary::of(&checks, |r| r.cpu_error_pct),
        memory: ErrorSummary::of(&checks, |r| r.memory_error_pct),
        bandwidth_out: ErrorSummary::of(&checks, |r| r.out_error_pct),
        bandwidth_in: ErrorSummary::of(&checks, |r| r.in_error_pct),
        rows: checks,
        full_fit: CapacityModel::fit_table(table)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::catalog::Family;

    #[test]
    fn c7i_bandwidth_rates_match_the_per_flow_derivation() {
        // §2.6: about 97 kbps per forwarded audio stream and 1.6 Mbps per screen viewer.
        let table = BenchmarkTable::published(Family::C7i).unwrap();
        let m = CapacityModel::fit_table(&table).unwrap();
        let audio = m.bandwidth_out.terms[0].coefficient;
        let screen = m.bandwidth_out.terms[1].coefficient;
        assert!((94e3..100e3).contains(&audio), "{audio}");
        assert!((1.5e6..1.7e6).contains(&screen), "{screen}");
    }

    #[test]
    fn coefficients_are_non_negative() {
        for family in [Family::C6i, Family::C7i] {
            let m = CapacityModel::fit_table(&BenchmarkTable::published(family).unwrap()).unwrap();
            for lin in [&m.cpu, &m.memory, &m.bandwidth_out, &m.bandwidth_in] {
                assert!(lin.terms.iter().all(|t| t.coefficient >= 0.0), "{lin:?}");
            }
        }
    }
}
