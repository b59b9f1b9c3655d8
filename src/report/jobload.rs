//! The job-load section of a result (`summary.json` → `job_load`): what a run of recording jobs
//! against a calls-offloader measured, computed from the same inputs as the rest of the summary
//! (counts, histograms, series), plus its terminal table and its figure.
//!
//! The section exists only when the counts carry `jobload.requested`, so call runs are unchanged.

use serde::{Deserialize, Serialize};

use super::files::RunResult;
use super::plots::{Chart, Figure, Line, cdf_line, colors};
use super::table::{Table, micros, opt3};
use crate::measure::{Counts, Histograms, LatencyHistogram, Snapshot};

/// Histogram: create request → response.
pub const CREATE: &str = "jobload.create";
/// Histogram: runner exit → first 404 on the job's record.
pub const REMOVED: &str = "jobload.removed";
/// Histogram: create request → the job's `start_at` (shared with call runs' job section).
pub const START: &str = "job.start";
/// Histogram: create request → record removed (shared with call runs' job section).
pub const TOTAL: &str = "job.total";
/// The auth modes whose throughput a job load measures.
pub const AUTH_MODES: [&str; 3] = ["basic_cached", "bearer", "basic_bcrypt"];

/// `summary.json` → `job_load`. Durations are whole microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobLoadSummary {
    /// Creates sent.
    pub requested: u64,
    /// Creates answered 200.
    pub created: u64,
    /// Creates rejected with "max concurrent jobs reached".
    pub rejected_limit: u64,
    /// Other failures (other statuses, transport errors).
    pub errors: u64,
    /// Created jobs whose record was removed after the runner exited 0.
    pub removed: u64,
    /// Create request → response, median.
    pub create_p50_us: Option<u64>,
    /// Create request → response, 99th percentile.
    pub create_p99_us: Option<u64>,
    /// Create request → response, largest.
    pub create_max_us: Option<u64>,
    /// Create request → running (the job's `start_at`), median.
    pub running_p50_us: Option<u64>,
    /// Create request → running, 99th percentile.
    pub running_p99_us: Option<u64>,
    /// Runner exit → record removed (first 404), median.
    pub removed_p50_us: Option<u64>,
    /// Runner exit → record removed, 99th percentile.
    pub removed_p99_us: Option<u64>,
    /// The target's `max_concurrent_jobs`, when known.
    pub limit: Option<u64>,
    /// Most labelled job containers seen running at once (Docker, sampled), when sampled.
    pub max_containers_running: Option<u64>,
    /// More containers ran at once than the limit allows.
    pub overshoot: bool,
    /// Authenticated requests/s with Basic auth (the reference's verified-credential cache on).
    pub auth_basic_cached_rps: Option<f64>,
    /// Authenticated requests/s with a Bearer token from /login.
    pub auth_bearer_rps: Option<f64>,
    /// Authenticated requests/s with Basic auth and a bcrypt compare per request (the Go
    /// service's behaviour), when measured.
    pub auth_basic_bcrypt_rps: Option<f64>,
    /// No errors, no overshoot, and every created job's record was removed.
    pub passed: bool,
}

fn quantile(histograms: &Histograms, name: &str, q: f64) -> Option<u64> {
    histograms.get(name).and_then(|h| h.quantile_us(q))
}

/// Requests per second of one auth mode, from its `requests` and `elapsed_us` counts.
fn rps(counts: &Counts, mode: &str) -> Option<f64> {
    let n = *counts.get(&format!("auth.{mode}.requests"))?;
    let us = *counts.get(&format!("auth.{mode}.elapsed_us"))?;
    (n > 0 && us > 0).then(|| n as f64 / (us as f64 / 1e6))
}

impl JobLoadSummary {
    /// The section, or `None` for a run that was not a job load.
    pub fn compute(
        series: &[Snapshot],
        histograms: &Histograms,
        counts: &Counts,
    ) -> Option<JobLoadSummary> {
        let requested = *counts.get("jobload.requested")?;
        let c = |name: &str| counts.get(name).copied().unwrap_or(0);
        let limit = counts.get("jobload.limit").copied();
        let seen = series.iter().filter_map(|r| r.containers_running).max();
        let max_containers_running = counts.get("jobload.containers_max").copied().max(seen);
        let overshoot = limit
            .zip(max_containers_running)
            .is_some_and(|(l, m)| m > l);
        let (created, errors, removed) = (
            c("jobload.created"),
            c("jobload.errors"),
            c("jobload.removed"),
        );
        Some(JobLoadSummary {
            requested,
            created,
            rejected_limit: c("jobload.rejected"),
            errors,
            removed,
            create_p50_us: quantile(histograms, CREATE, 0.5),
            create_p99_us: quantile(histograms, CREATE, 0.99),
            create_max_us: histograms.get(CREATE).and_then(LatencyHistogram::max_us),
            running_p50_us: quantile(histograms, START, 0.5),
            running_p99_us: quantile(histograms, START, 0.99),
            removed_p50_us: quantile(histograms, REMOVED, 0.5),
            removed_p99_us: quantile(histograms, REMOVED, 0.99),
            limit,
            max_containers_running,
            overshoot,
            auth_basic_cached_rps: rps(counts, AUTH_MODES[0]),
            auth_bearer_rps: rps(counts, AUTH_MODES[1]),
            auth_basic_bcrypt_rps: rps(counts, AUTH_MODES[2]),
            passed: errors == 0 && !overshoot && removed == created,
        })
    }
}

/// The terminal/Markdown/HTML tables of the section: jobs, latencies, and auth throughput.
pub fn tables(j: &JobLoadSummary) -> Vec<(&'static str, Table)> {
    let opt = |v: Option<u64>| v.map_or("–".to_owned(), |n| n.to_string());
    let mut jobs = Table::new([
        "Requested",
        "Created",
        "Rejected (limit)",
        "Errors",
        "Records removed",
        "Max containers running",
        "Limit",
        "Verdict",
    ]);
    jobs.row([
        j.requested.to_string(),
        j.created.to_string(),
        j.rejected_limit.to_string(),
        j.errors.to_string(),
        j.removed.to_string(),
        if j.overshoot {
            format!("{} OVERSHOOT", opt(j.max_containers_running))
        } else {
            opt(j.max_containers_running)
        },
        opt(j.limit),
        if j.passed { "ok" } else { "FAILED" }.to_owned(),
    ]);
    let mut latency = Table::new([
        "Create p50",
        "Create p99",
        "Create max",
        "Create→running p50",
        "Create→running p99",
        "Exit→removed p50",
        "Exit→removed p99",
    ]);
    latency.row([
        micros(j.create_p50_us),
        micros(j.create_p99_us),
        micros(j.create_max_us),
        micros(j.running_p50_us),
        micros(j.running_p99_us),
        micros(j.removed_p50_us),
        micros(j.removed_p99_us),
    ]);
    let mut out = vec![("Job load", jobs), ("Job latency", latency)];
    if j.auth_basic_cached_rps.is_some() || j.auth_bearer_rps.is_some() {
        let mut auth = Table::new([
            "Basic (cached) req/s",
            "Bearer req/s",
            "Basic, bcrypt per request req/s",
        ]);
        auth.row([
            opt3(j.auth_basic_cached_rps),
            opt3(j.auth_bearer_rps),
            opt3(j.auth_basic_bcrypt_rps),
        ]);
        out.push(("Authenticated requests", auth));
    }
    out
}

/// The job-load figures: jobs and containers over time, creates/rejections/removals per second,
/// the three latency CDFs, and the offloader's CPU and memory when they were probed. `None` for a
/// run that was not a job load.
pub fn figures(r: &RunResult) -> Option<Vec<Figure>> {
    r.summary.job_load.as_ref()?;
    let series = |f: &dyn Fn(&Snapshot) -> Option<f64>| -> Vec<(f64, f64)> {
        r.series
            .iter()
            .filter_map(|row| Some((row.t_s as f64, f(row)?)))
            .collect()
    };
    let h = |name: &str| r.histograms.get(name).cloned().unwrap_or_default();
    let time = "time since start (s)".to_owned();
    let mut running = vec![Line {
        label: "jobs running (created, record not yet removed)".into(),
        points: series(&|row| Some(row.jobs_running as f64)),
        color: colors::PURPLE,
    }];
    let containers = series(&|row| row.containers_running.map(|n| n as f64));
    if !containers.is_empty() {
        running.push(Line {
            label: "labelled containers running (max in the second)".into(),
            points: containers,
            color: colors::RED,
        });
    }
    let mut out = vec![Figure {
        name: "job_load",
        caption: "Job load: jobs and labelled containers running over time, creates, rejections and \
                  removals per second, and job latency CDFs",
        charts: vec![
            Chart {
                title: "Running jobs".into(),
                x_desc: time.clone(),
                y_desc: "jobs".into(),
                lines: running,
                bands: Vec::new(),
            },
            Chart {
                title: "Jobs per second".into(),
                x_desc: time,
                y_desc: "jobs/s".into(),
                lines: vec![
                    Line {
                        label: "created".into(),
                        points: series(&|row| Some(row.jobs_created as f64)),
                        color: colors::BLUE,
                    },
                    Line {
                        label: "rejected (limit)".into(),
                        points: series(&|row| Some(row.jobs_rejected as f64)),
                        color: colors::ORANGE,
                    },
                    Line {
                        label: "record removed".into(),
                        points: series(&|row| Some(row.jobs_finished as f64)),
                        color: colors::GREEN,
                    },
                ],
                bands: Vec::new(),
            },
            Chart {
                title: "Job latency (CDF)".into(),
                x_desc: "ms".into(),
                y_desc: "fraction of jobs".into(),
                lines: [
                    cdf_line("create request → response", &h(CREATE), colors::BLUE),
                    cdf_line("create request → running", &h(START), colors::PURPLE),
                    cdf_line("runner exit → record removed", &h(REMOVED), colors::GREEN),
                ]
                .into_iter()
                .flatten()
                .collect(),
                bands: Vec::new(),
            },
        ],
    }];
    if r.series.iter().any(|row| row.server_cpu_cores.is_some()) {
        out.push(Figure {
            name: "offloader_cpu_memory",
            caption: "The offloader process's CPU (cores) and resident memory over time (job \
                      containers are not included)",
            charts: vec![
                Chart {
                    title: "Offloader CPU".into(),
                    x_desc: "time since start (s)".into(),
                    y_desc: "cores".into(),
                    lines: vec![Line {
                        label: "CPU".into(),
                        points: series(&|row| row.server_cpu_cores),
                        color: colors::RED,
                    }],
                    bands: Vec::new(),
                },
                Chart {
                    title: "Offloader memory (RSS)".into(),
                    x_desc: "time since start (s)".into(),
                    y_desc: "MB".into(),
                    lines: vec![Line {
                        label: "RSS".into(),
                        points: series(&|row| row.server_rss_bytes.map(|b| b as f64 / 1e6)),
                        color: colors::PURPLE,
                    }],
                    bands: Vec::new(),
                },
            ],
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn absent_without_the_job_load_counts() {
        assert_eq!(
            JobLoadSummary::compute(&[], &Histograms::new(), &Counts::new()),
            None
        );
    }

    #[test]
    fn figures_come_from_counts_histograms_and_series() {
        let mut counts = Counts::new();
        for (k, v) in [
            ("jobload.requested", 10),
            ("jobload.created", 6),
            ("jobload.rejected", 4),
            ("jobload.removed", 6),
            ("jobload.limit", 4),
            ("auth.bearer.requests", 500),
            ("auth.bearer.elapsed_us", 250_000),
        ] {
            counts.insert(k.into(), v);
        }
        let mut create = LatencyHistogram::new();
        (1..=100).for_each(|ms| create.record(Duration::from_millis(ms)));
        let histograms: Histograms = [(CREATE.to_owned(), create)].into_iter().collect();
        let mut row = Snapshot::empty(0, 0, crate::measure::Phase::Ramp);
        row.containers_running = Some(4);
        let s = JobLoadSummary::compute(&[row.clone()], &histograms, &counts).unwrap();
        assert_eq!((s.created, s.rejected_limit, s.errors), (6, 4, 0));
        assert_eq!(s.auth_bearer_rps, Some(2000.0));
        assert_eq!(s.auth_basic_cached_rps, None);
        let p50 = s.create_p50_us.unwrap();
        assert!((49_000..=51_000).contains(&p50), "{p50}");
        assert!(s.passed && !s.overshoot);

        row.containers_running = Some(5);
        let s = JobLoadSummary::compute(&[row], &histograms, &counts).unwrap();
        assert!(s.overshoot && !s.passed);
        counts.insert("jobload.removed".into(), 5);
        let s = JobLoadSummary::compute(&[], &histograms, &counts).unwrap();
        assert!(
            !s.passed,
            "a created job whose record stayed must fail the run"
        );
    }

    #[test]
    fn series_files_without_the_job_columns_still_read() {
        let mut row = Snapshot::empty(3, 1_003, crate::measure::Phase::Steady);
        row.jobs_created = 2;
        row.containers_running = Some(1);
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&row).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        // Drop the four job-load columns and the four self-health columns added after them, as a
        // file written before them has.
        let old: String = text
            .lines()
            .map(|l| l.rsplitn(9, ',').last().unwrap().to_owned() + "\n")
            .collect();
        assert!(!old.contains("jobs_created"));
        let read: Snapshot = csv::Reader::from_reader(old.as_bytes())
            .deserialize()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            (read.t_s, read.jobs_created, read.containers_running),
            (3, 0, None)
        );
    }
}
