//! Job load against a calls-offloader: `callsbench run SCENARIO` for scenarios with an
//! `[offloader]` table (scenarios/offloader/*.toml).
//!
//! N recording jobs are created at a fixed rate (each runs the callsbench runner for a set time),
//! and the run measures what sizing an offloader needs: create latency (request → response; the
//! reference and the Go service answer after the container started, so this is also
//! create → running), exit → record removed (first 404 after start_at + the runner's run time),
//! rejections, the most labelled containers seen running (Docker, sampled with `docker ps`), and
//! authenticated requests/s with Basic, Bearer and — on an embedded target — Basic with the
//! credential cache off (a bcrypt compare per request, as the Go service does).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::conform::offloader::{Http, random_key};

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

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn summary(mut v: Vec<Duration>) -> Summary {
    v.sort();
    let at = |p: f64| {
        v.get(((v.len().max(1) - 1) as f64 * p).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    Summary {
        count: v.len(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: v.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    }
}

/// What a run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobLoadResult {
    pub target: String,
    pub jobs_requested: usize,
    pub accepted: usize,
    pub rejected_limit: usize,
    pub errors: usize,
    pub create_latency: Summary,
    pub exit_to_removed: Summary,
    pub max_labelled_running: Option<usize>,
    pub limit: Option<usize>,
    pub auth_basic_cached_rps: Option<f64>,
    pub auth_bearer_rps: Option<f64>,
    pub auth_basic_bcrypt_rps: Option<f64>,
}

struct Spawned {
    child: Child,
    url: String,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_embedded(l: &JobLoad, backend: &str, cache_off: bool) -> anyhow::Result<Spawned> {
    use std::io::BufRead as _;
    let dir = std::env::temp_dir().join(format!("callsbench-jobload-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir)?;
    let cache = if cache_off {
        "security.credential_cache_seconds = 0\n"
    } else {
        ""
    };
    let cfg = format!(
        "[api]\nhttp.listen_address = \"127.0.0.1:0\"\nsecurity.allow_self_registration = true\n{cache}security.session_cache.expiration_minutes = 1440\n[store]\ndata_source = \"{}\"\n[jobs]\napi_type = \"{backend}\"\nmax_concurrent_jobs = {}\nimage_registry = \"{}\"\n[logger]\nenable_console = true\nconsole_level = \"WARN\"\n",
        dir.join("db").display(),
        l.max_concurrent_jobs,
        l.registry
    );
    std::fs::write(dir.join("config.toml"), cfg)?;
    let mut child = Command::new(crate::target::embedded::default_program())
        .args(["offloader", "--config"])
        .arg(dir.join("config.toml"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("offloader.log"))?)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start callsref offloader: {e}"))?;
    let mut line = String::new();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        line.contains("listening on"),
        "embedded offloader did not start; see {}",
        dir.display()
    );
    Ok(Spawned {
        child,
        url: format!("http://{addr}"),
    })
}

async fn auth_rps(http: &Http, auth: &str, total: usize) -> f64 {
    let started = Instant::now();
    let per = total.div_ceil(8);
    let workers = (0..8).map(|_| async move {
        for _ in 0..per {
            http.get("/jobs/zzzzzzzzzzzz", Some(auth)).await;
        }
    });
    futures_util::future::join_all(workers).await;
    (per * 8) as f64 / started.elapsed().as_secs_f64()
}

/// Runs the job load.
pub async fn run(l: &JobLoad) -> anyhow::Result<JobLoadResult> {
    let embedded = l.url == "embedded";
    let spawned = if embedded {
        Some(spawn_embedded(l, &l.backend, false)?)
    } else {
        None
    };
    let url = spawned.as_ref().map_or(l.url.clone(), |s| s.url.clone());
    let http = Http::new(&url);
    let client_id = format!("jobload-{:x}", rand::random::<u32>());
    let key = random_key();
    let basic = callsref::proto::auth::Authorization::basic(&client_id, &key).to_header_value();
    if let Some(secret) = &l.admin_secret {
        let admin = callsref::proto::auth::Authorization::admin(secret).to_header_value();
        http.post(
            "/register",
            Some(&admin),
            json!({"clientID": client_id, "authKey": key}).to_string(),
        )
        .await;
    }
    let docker_visible = l.backend == "docker" || !embedded;
    let mut result = JobLoadResult {
        target: url.clone(),
        jobs_requested: l.jobs,
        limit: embedded.then_some(l.max_concurrent_jobs),
        ..Default::default()
    };

    let sampling = Arc::new(AtomicBool::new(docker_visible));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (on, peak) = (sampling.clone(), peak.clone());
        tokio::task::spawn_blocking(move || {
            while on.load(Ordering::Relaxed) {
                if let Some(n) = crate::conform::offloader::running_labelled() {
                    peak.fetch_max(n, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let run_ms = (l.runner_run_sec * 1000.0) as u64;
    let body = json!({"type": "recording", "max_duration_sec": l.max_duration_sec,
        "runner": format!("{}/calls-recorder:v0.8.13", l.registry), "input_data": {"runner_run_ms": run_ms}})
    .to_string();
    let interval = Duration::from_secs_f64(1.0 / l.rate_per_sec);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..l.jobs {
        tokio::time::sleep_until(start + interval * i as u32).await;
        let (http, basic, body) = (http.clone(), basic.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let r = http.post("/jobs", Some(&basic), body).await;
            let latency = sent.elapsed();
            let job = r.json().filter(|_| r.status == 200);
            let Some(job) = job else {
                return (r.status, r.body, latency, None);
            };
            let id = job["id"].as_str().unwrap_or_default().to_owned();
            // The runner exits run_ms after it started; the record should go right after.
            let exit_at = sent + latency + Duration::from_millis(run_ms);
            tokio::time::sleep_until(exit_at.into()).await;
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                if http.get(&format!("/jobs/{id}"), Some(&basic)).await.status == 404 {
                    return (200, String::new(), latency, Some(exit_at.elapsed()));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (200, String::new(), latency, None)
        }));
    }
    let mut latencies = Vec::new();
    let mut removals = Vec::new();
    for t in tasks {
        let (status, body, latency, removed) = t.await?;
        match status {
            200 => {
                result.accepted += 1;
                latencies.push(latency);
                removals.extend(removed);
            }
            500 if body.contains("max concurrent jobs reached") => result.rejected_limit += 1,
            _ => result.errors += 1,
        }
    }
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;
    result.max_labelled_running = docker_visible.then(|| peak.load(Ordering::Relaxed));
    result.create_latency = summary(latencies);
    result.exit_to_removed = summary(removals);

    if l.auth_requests > 0 {
        let login = http
            .post(
                "/login",
                None,
                json!({"clientID": client_id, "authKey": key}).to_string(),
            )
            .await;
        let token = login
            .json()
            .and_then(|v| v["bearerToken"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let bearer = callsref::proto::auth::Authorization::Bearer(token).to_header_value();
        result.auth_basic_cached_rps = Some(auth_rps(&http, &basic, l.auth_requests).await);
        result.auth_bearer_rps = Some(auth_rps(&http, &bearer, l.auth_requests).await);
        if embedded {
            let baseline = spawn_embedded(l, "process", true)?;
            let bhttp = Http::new(&baseline.url);
            bhttp.get("/jobs/zzzzzzzzzzzz", Some(&basic)).await; // self-registers
            result.auth_basic_bcrypt_rps =
                Some(auth_rps(&bhttp, &basic, (l.auth_requests / 20).max(16)).await);
        }
    }
    Ok(result)
}

/// Human-readable summary.
pub fn render(r: &JobLoadResult) -> String {
    let opt = |v: Option<f64>| v.map_or("n/a".to_owned(), |x| format!("{x:.1}"));
    format!(
        "target {}\njobs: {} requested, {} accepted, {} rejected (limit), {} errors\ncreate latency (= create -> running): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms\nexit -> record removed: p50 {:.0} ms, p99 {:.0} ms (n = {})\nmax labelled containers running: {} (limit {})\nauthenticated req/s: Basic cached {}, Bearer {}, Basic bcrypt-per-request {}\n",
        r.target,
        r.jobs_requested,
        r.accepted,
        r.rejected_limit,
        r.errors,
        r.create_latency.p50_ms,
        r.create_latency.p99_ms,
        r.create_latency.max_ms,
        r.exit_to_removed.p50_ms,
        r.exit_to_removed.p99_ms,
        r.exit_to_removed.count,
        r.max_labelled_running
            .map_or("n/a".into(), |n| n.to_string()),
        r.limit.map_or("unknown".into(), |n| n.to_string()),
        opt(r.auth_basic_cached_rps),
        opt(r.auth_bearer_rps),
        opt(r.auth_basic_bcrypt_rps),
    )
}

/// Whether the scenario file is a job load (has an `[offloader]` table).
pub fn is_job_load(path: &Path) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let value: toml::Value =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(value.get("offloader").is_some())
}

/// Runs a job-load scenario and writes its results under `out` (created).
pub fn command(scenario: &Path, out: &Path) -> anyhow::Result<std::process::ExitCode> {
    let Some(load) = load(scenario)? else {
        anyhow::bail!("{}: no [offloader] table", scenario.display());
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(run(&load))?;
    print!("{}", render(&result));
    std::fs::create_dir_all(out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    std::fs::write(
        out.join("jobload.json"),
        serde_json::to_string_pretty(&result)?,
    )?;
    let over = result
        .limit
        .zip(result.max_labelled_running)
        .is_some_and(|(l, m)| m > l);
    Ok(if result.errors == 0 && !over {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(crate::cli::EXIT_FAILED)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_percentiles() {
        let s = summary((1..=100).map(Duration::from_millis).collect());
        assert_eq!(s.count, 100);
        assert!(
            (s.p50_ms - 51.0).abs() < 1.5 && (s.p99_ms - 99.0).abs() < 1.5 && s.max_ms == 100.0
        );
    }

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
