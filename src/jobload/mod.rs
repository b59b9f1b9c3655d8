//! Job load against a calls-offloader: `callsbench run SCENARIO` for scenarios with an
//! `[offloader]` table (scenarios/offloader/*.toml).
//!
//! N recording jobs are created at a fixed rate (each runs the callsbench runner for a set time),
//! and the run measures what sizing an offloader needs: create latency (request → response),
//! create → running (request → the job's `start_at`), exit → record removed (first 404 after
//! `start_at` + the runner's run time), rejections, the most labelled containers seen running
//! (Docker, sampled with `docker ps`), the offloader's CPU and memory (embedded), and
//! authenticated requests/s with Basic, Bearer and — on an embedded target — Basic with the
//! credential cache off (a bcrypt compare per request, as the Go service does).
//!
//! The results are a normal results directory ([`crate::report`]): `series.csv` rows carry jobs
//! running, created, rejected, finished and containers running per second; `summary.json` a
//! `job_load` section. [`drive`] runs the load into a [`timeline::Timeline`], which turns into the
//! measurements.

mod drive;
pub mod timeline;

use std::path::Path;

use serde::Deserialize;

use crate::measure::WireOverhead;
use crate::report::model::unix_ms;
use crate::report::{
    EndReason, FORMAT_VERSION, FlowCounts, Host, Manifest, Mix, PhaseSeconds, ProbeSource,
    RunResult, ScenarioInfo, TargetInfo, Tool,
};

/// The `[offloader]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobLoad {
    /// "embedded" (spawn `callsref offloader`) or a base URL.
    #[serde(default = "embedded")]
    pub url: String,
    /// Embedded only: "docker" or "process".
    #[serde(default = "docker")]
    pub backend: String,
    /// Embedded only.
    #[serde(default = "four")]
    pub max_concurrent_jobs: usize,
    /// Remote targets: the admin secret used to register the load client (else self-registration).
    #[serde(default)]
    pub admin_secret: Option<String>,
    #[serde(default = "registry")]
    pub registry: String,
    /// Total recording jobs to create.
    pub jobs: usize,
    /// Creation rate, jobs per second.
    pub rate_per_sec: f64,
    /// How long each job's runner runs, seconds.
    pub runner_run_sec: f64,
    #[serde(default = "sixty")]
    pub max_duration_sec: i64,
    /// Authenticated requests per auth mode for the throughput figures (0 = skip).
    #[serde(default)]
    pub auth_requests: usize,
}

fn embedded() -> String {
    "embedded".into()
}
fn docker() -> String {
    "docker".into()
}
fn registry() -> String {
    "callsbench".into()
}
fn four() -> usize {
    4
}
fn sixty() -> i64 {
    60
}

#[derive(Debug, Deserialize)]
struct File {
    offloader: JobLoad,
}

/// Reads a scenario; `Ok(None)` when it has no `[offloader]` table.
pub fn load(path: &Path) -> anyhow::Result<Option<JobLoad>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let value: toml::Value =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if value.get("offloader").is_none() {
        return Ok(None);
    }
    let file: File =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let l = &file.offloader;
    anyhow::ensure!(l.jobs > 0, "{}: offloader.jobs must be > 0", path.display());
    anyhow::ensure!(
        l.rate_per_sec > 0.0,
        "{}: offloader.rate_per_sec must be > 0",
        path.display()
    );
    anyhow::ensure!(
        l.runner_run_sec >= 0.0,
        "{}: offloader.runner_run_sec must be >= 0",
        path.display()
    );
    anyhow::ensure!(
        ["docker", "process"].contains(&l.backend.as_str()),
        "{}: offloader.backend must be docker or process",
        path.display()
    );
    Ok(Some(file.offloader))
}

/// Whether the scenario file is a job load (has an `[offloader]` table).
pub fn is_job_load(path: &Path) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let value: toml::Value =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(value.get("offloader").is_some())
}

/// Runs a job-load scenario, writes the results directory of [`crate::report`] under `out`
/// (created) with report.md / report.html, prints the terminal summary, and returns the run's exit
/// code (0 passed; 1 a create failed, the limit was overshot or a record stayed; see
/// [`crate::report::jobload::JobLoadSummary::passed`]).
pub fn command(scenario: &Path, out: &Path) -> anyhow::Result<std::process::ExitCode> {
    let Some(load) = load(scenario)? else {
        anyhow::bail!("{}: no [offloader] table", scenario.display());
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = std::time::SystemTime::now();
    let (target, timeline) = rt.block_on(drive::run(&load))?;
    let ended = std::time::SystemTime::now();
    let result = RunResult::new(
        manifest(scenario, &load, &target, &timeline, started, ended),
        timeline.measurements(),
    );
    result.write(out)?;
    crate::report::render::write_report(&result, out)?;
    print!("{}", crate::report::text::render(&result));
    println!("\nwrote {}", out.display());
    Ok(std::process::ExitCode::from(result.exit_code()))
}

/// The manifest of a job load: no calls, the creation span as the ramp, the whole run as the
/// steady window.
fn manifest(
    scenario: &Path,
    l: &JobLoad,
    target: &drive::Target,
    t: &timeline::Timeline,
    started: std::time::SystemTime,
    ended: std::time::SystemTime,
) -> Manifest {
    let last_send = t.attempts.iter().map(|a| a.sent).max().unwrap_or_default();
    let end = t.end.as_secs_f64();
    let host = Host::this_machine();
    Manifest {
        format_version: FORMAT_VERSION,
        tool: Tool::this(),
        synthetic: false,
        scenario: ScenarioInfo {
            name: scenario
                .file_stem()
                .map_or("jobload".into(), |s| s.to_string_lossy().into_owned()),
            file: Some(scenario.display().to_string()),
            seed: 0,
            thresholds: Vec::new(),
            mix: Mix {
                calls: 0,
                users_per_call: 0,
                unmuted_per_call: 0,
                screen_calls: 0,
                video_per_call: 0,
                uniform: true,
            },
            flows: FlowCounts::default(),
            phases: PhaseSeconds {
                join_end_s: last_send.as_secs_f64(),
                steady_start_s: 0.0,
                steady_end_s: end,
                end_s: end,
            },
        },
        target: TargetInfo {
            kind: if target.embedded {
                format!("embedded offloader ({} backend)", l.backend)
            } else {
                "offloader".into()
            },
            version: target.version.clone(),
            address: Some(target.url.clone()),
            vcpus: target.embedded.then_some(host.cores),
            probe: if target.embedded {
                ProbeSource::Proc
            } else {
                ProbeSource::None
            },
        },
        host,
        wire: WireOverhead::default(),
        started_unix_ms: unix_ms(started),
        ended_unix_ms: unix_ms(ended),
        complete: true,
        end_reason: EndReason::Completed,
        end_detail: None,
        shards: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/offloader");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                assert!(load(&path).unwrap().is_some(), "{}", path.display());
                n += 1;
            }
        }
        assert!(n >= 2);
    }
}
