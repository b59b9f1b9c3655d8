//! Drives a job load against an offloader: spawns the embedded one when asked, creates the jobs on
//! the scenario's schedule, watches each record until it is removed, samples the labelled
//! containers (Docker) and the offloader's CPU and memory, and measures authenticated
//! requests/s. Everything lands in a [`Timeline`].

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use super::JobLoad;
use super::timeline::{Attempt, AuthRate, Outcome, Timeline};
use crate::conform::offloader::{Http, random_key};
use crate::measure::procfs::{ProcProbe, ProcSample};

/// An offloader child process, killed on drop.
pub struct Spawned {
    child: Child,
    /// Its base URL.
    pub url: String,
    dir: std::path::PathBuf,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
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
    let spawned = Spawned {
        child,
        url: format!("http://{addr}"),
        dir,
    };
    anyhow::ensure!(
        line.contains("listening on"),
        "embedded offloader did not start: {:?}",
        std::fs::read_to_string(spawned.dir.join("offloader.log")).unwrap_or_default()
    );
    Ok(spawned)
}

/// Requests answered (any status but a transport error) by 8 workers sending `total` GETs of an
/// unknown job, each of which is authenticated before the 404.
async fn auth_rate(http: &Http, auth: &str, total: usize, mode: &'static str) -> AuthRate {
    let started = Instant::now();
    let per = total.div_ceil(8);
    let workers = (0..8).map(|_| async move {
        let mut ok = 0u64;
        for _ in 0..per {
            if http.get("/jobs/zzzzzzzzzzzz", Some(auth)).await.status == 404 {
                ok += 1;
            }
        }
        ok
    });
    let requests = futures_util::future::join_all(workers).await.iter().sum();
    AuthRate {
        mode,
        requests,
        elapsed: started.elapsed(),
    }
}

/// What a load ran against.
pub struct Target {
    /// Base URL.
    pub url: String,
    /// `buildVersion` from /version.
    pub version: Option<String>,
    /// True for the embedded offloader.
    pub embedded: bool,
}

/// Samples the labelled containers running every 50 ms (when they are visible) until `on` turns
/// false.
fn container_sampler(
    on: Arc<AtomicBool>,
    start: Instant,
    containers: bool,
) -> std::thread::JoinHandle<Vec<(Duration, u64)>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        while on.load(Ordering::Relaxed) {
            if containers && let Some(n) = crate::conform::offloader::running_labelled() {
                seen.push((start.elapsed(), n as u64));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        seen
    })
}

/// Reads a process's CPU and memory once a second until `on` turns false.
fn proc_sampler(
    on: Arc<AtomicBool>,
    start: Instant,
    probe: ProcProbe,
) -> std::thread::JoinHandle<Vec<(Duration, ProcSample)>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut next = Duration::ZERO;
        while on.load(Ordering::Relaxed) {
            if start.elapsed() >= next {
                if let Ok(s) = probe.sample() {
                    out.push((start.elapsed(), s));
                }
                next += Duration::from_secs(1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        out
    })
}

/// Runs the load and returns what it saw.
pub async fn run(l: &JobLoad) -> anyhow::Result<(Target, Timeline)> {
    let embedded = l.url == "embedded";
    let spawned = if embedded {
        Some(spawn_embedded(l, &l.backend, false)?)
    } else {
        None
    };
    let url = spawned.as_ref().map_or(l.url.clone(), |s| s.url.clone());
    let http = Http::new(&url);
    let version = http
        .get("/version", None)
        .await
        .json()
        .and_then(|v| v["buildVersion"].as_str().map(str::to_owned));
    let client_id = format!("jobload-{:x}", rand::random::<u32>());
    let key = random_key();
    let basic = callsref::proto::auth::Authorization::basic(&client_id, &key).to_header_value();
    if let Some(secret) = &l.admin_secret {
        let admin = callsref::proto::auth::Authorization::admin(secret).to_header_value();
        let r = http
            .post(
                "/register",
                Some(&admin),
                json!({"clientID": client_id, "authKey": key}).to_string(),
            )
            .await;
        anyhow::ensure!(
            r.status == 201,
            "registering the load client failed: {} {}",
            r.status,
            r.body
        );
    }
    let containers_visible = l.backend == "docker" || !embedded;
    let start = Instant::now();
    let start_unix = SystemTime::now();
    let start_unix_ms = crate::report::model::unix_ms(start_unix);
    let on = Arc::new(AtomicBool::new(true));
    let containers = container_sampler(on.clone(), start, containers_visible);
    let offloader = spawned
        .as_ref()
        .map(|s| proc_sampler(on.clone(), start, ProcProbe::pid(s.child.id())));
    let harness = proc_sampler(on.clone(), start, ProcProbe::this_process());

    let run = Duration::from_secs_f64(l.runner_run_sec);
    let body = json!({"type": "recording", "max_duration_sec": l.max_duration_sec,
        "runner": format!("{}/calls-recorder:v0.8.13", l.registry),
        "input_data": {"runner_run_ms": run.as_millis() as u64}})
    .to_string();
    let interval = Duration::from_secs_f64(1.0 / l.rate_per_sec);
    let mut tasks = Vec::new();
    for i in 0..l.jobs {
        tokio::time::sleep_until((start + interval * i as u32).into()).await;
        let (http, basic, body) = (http.clone(), basic.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let sent = start.elapsed();
            let r = http.post("/jobs", Some(&basic), body).await;
            let answered = start.elapsed();
            let job = r.json().filter(|_| r.status == 200);
            let Some(job) = job else {
                let outcome = if r.status == 500 && r.body.contains("max concurrent jobs reached") {
                    Outcome::Rejected
                } else {
                    Outcome::Error
                };
                return Attempt {
                    sent,
                    answered,
                    outcome,
                };
            };
            let id = job["id"].as_str().unwrap_or_default().to_owned();
            let start_at = job["start_at"]
                .as_u64()
                .and_then(|ms| ms.checked_sub(start_unix_ms))
                .map(Duration::from_millis);
            // Poll from just before the runner's exit until the record is gone (or 2 min).
            let exit = start_at.unwrap_or(answered) + run;
            tokio::time::sleep_until((start + exit).into()).await;
            let deadline = start.elapsed() + Duration::from_secs(120);
            let mut removed = None;
            while start.elapsed() < deadline {
                if http.get(&format!("/jobs/{id}"), Some(&basic)).await.status == 404 {
                    removed = Some(start.elapsed());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Attempt {
                sent,
                answered,
                outcome: Outcome::Created { start_at, removed },
            }
        }));
    }
    let mut attempts = Vec::new();
    for t in tasks {
        attempts.push(t.await?);
    }
    let end = start.elapsed();
    on.store(false, Ordering::Relaxed);
    let containers = containers
        .join()
        .map_err(|_| anyhow::anyhow!("container sampler panicked"))?;
    let offloader = match offloader {
        Some(h) => h
            .join()
            .map_err(|_| anyhow::anyhow!("process sampler panicked"))?,
        None => Vec::new(),
    };
    let harness = harness
        .join()
        .map_err(|_| anyhow::anyhow!("process sampler panicked"))?;

    let mut auth = Vec::new();
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
            .ok_or_else(|| anyhow::anyhow!("login failed: {} {}", login.status, login.body))?;
        let bearer = callsref::proto::auth::Authorization::Bearer(token).to_header_value();
        auth.push(auth_rate(&http, &basic, l.auth_requests, "basic_cached").await);
        auth.push(auth_rate(&http, &bearer, l.auth_requests, "bearer").await);
        if embedded {
            // The same offloader with the credential cache off: a bcrypt compare per request.
            let baseline = spawn_embedded(l, "process", true)?;
            let bhttp = Http::new(&baseline.url);
            bhttp.get("/jobs/zzzzzzzzzzzz", Some(&basic)).await; // self-registers
            let n = (l.auth_requests / 20).max(16);
            auth.push(auth_rate(&bhttp, &basic, n, "basic_bcrypt").await);
        }
    }
    drop(spawned);
    Ok((
        Target {
            url,
            version,
            embedded,
        },
        Timeline {
            start_unix_s: start_unix
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            runner_run: run,
            attempts,
            containers,
            offloader,
            harness,
            auth,
            limit: embedded.then_some(l.max_concurrent_jobs as u64),
            end,
        },
    ))
}
