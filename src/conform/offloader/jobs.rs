//! Job cases: creation input, init, lifecycle with the callsbench runner, limits, and the Docker
//! white-box checks (offloader.md §2, §4, §9.1).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callsref::proto::offloader::{ApiError, Config};
use serde_json::{Value, json};

use super::{Resp, Suite, poll};

const G_INPUT: &str = "job input";
const G_LIFE: &str = "lifecycle";
const G_INIT: &str = "init";
const G_LIMIT: &str = "limits";
const G_DOCKER: &str = "docker";
const G_DEFECT: &str = "known defects";
const NOT_FOUND: &str = "failed to get job failed to get job: error: not found";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn body(job_type: &str, runner: &str, max: i64, input: Value) -> String {
    json!({"type": job_type, "max_duration_sec": max, "runner": runner, "input_data": input})
        .to_string()
}

impl Suite {
    async fn create(&mut self, max: i64, input: Value) -> Resp {
        let auth = self.client_auth();
        let r = self
            .http
            .post(
                "/jobs",
                auth.as_deref(),
                body("recording", &self.opts.recorder(), max, input),
            )
            .await;
        if let Some(id) = job_id(&r) {
            self.created.push(id);
        }
        r
    }

    async fn get_job(&self, id: &str) -> Resp {
        self.http
            .get(&format!("/jobs/{id}"), self.client_auth().as_deref())
            .await
    }

    async fn wait_gone(&self, id: &str, within: Duration) -> Result<String, String> {
        let started = Instant::now();
        match poll(within, || async {
            (self.get_job(id).await.status == 404).then_some(())
        })
        .await
        {
            Some(()) => {
                let r = self.get_job(id).await;
                r.expect_error(404, NOT_FOUND)
                    .map(|_| format!("404 after {:?}", started.elapsed()))
            }
            None => Err(format!(
                "still {} after {within:?}",
                self.get_job(id).await.body.trim_end()
            )),
        }
    }

    async fn wait_stopped(&self, id: &str, within: Duration) -> Option<Value> {
        poll(within, || async {
            self.get_job(id)
                .await
                .json()
                .filter(|v| v.get("stop_at").is_some())
        })
        .await
    }
}

fn job_id(r: &Resp) -> Option<String> {
    (r.status == 200)
        .then(|| r.json()?.get("id")?.as_str().map(str::to_owned))
        .flatten()
}

fn is_job_id(id: &str) -> bool {
    (12..=26).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The expected decode error text for a body, from the shared Go-compatible decoder.
fn decode_error(body: &str) -> String {
    Config::decode(body.as_bytes())
        .err()
        .map(|e| ApiError::Decode(e).to_string())
        .unwrap_or_default()
}

/// Validation order and messages, the runner matrix, decode errors, a successful create.
pub(crate) async fn creation_input(s: &mut Suite) {
    let auth = s.client_auth();
    let a = auth.as_deref();
    let rec = s.opts.recorder();
    let reg = s.opts.registry.clone();
    let cases: Vec<(&str, String, String)> = vec![
        ("empty type reported before a bad runner", body("", "bad", 0, json!({})), "invalid Type value: should not be empty".into()),
        ("empty runner", body("recording", "", 60, json!({})), "invalid Runner value: runner should not be empty".into()),
        ("non-positive max_duration_sec (0)", body("recording", &rec, 0, json!({})), "invalid MaxDurationSec value: should be positive".into()),
        ("non-positive max_duration_sec (-1)", body("recording", &rec, -1, json!({})), "invalid MaxDurationSec value: should be positive".into()),
        ("unknown type", body("captions", &rec, 60, json!({})), "invalid Type value: \"captions\"".into()),
        (
            "recorder below v0.6.0",
            body("recording", &format!("{reg}/calls-recorder:v0.5.9"), 60, json!({})),
            "invalid Runner value: actual version (0.5.9) is lower than minimum supported version (0.6.0)".into(),
        ),
    ];
    for (name, b, msg) in cases {
        let r = s.http.post("/jobs", a, b).await;
        s.record(G_INPUT, name, r.expect_error(400, &msg));
    }
    // Accepted runners pass the runner check and fail on the duration check that follows it.
    let dur = "invalid MaxDurationSec value: should be positive";
    for runner in [
        format!("{reg}/calls-recorder:v0.6.0"),
        format!("{reg}/calls-recorder:v0.8.13-dev"),
        format!("{reg}/calls-recorder:v0.8.13-dev29"),
        format!("{reg}/calls-transcriber:v0.1.0"),
        format!("{reg}/calls-transcriber:v1.0.0"),
    ] {
        let r = s
            .http
            .post("/jobs", a, body("recording", &runner, 0, json!({})))
            .await;
        s.record(
            G_INPUT,
            &format!("runner accepted: {runner}"),
            r.expect_error(400, dur),
        );
    }
    for runner in [
        format!("{reg}/calls-recorder:latest"),
        format!("{reg}/calls-recorder@sha256:{}", "a".repeat(64)),
        "elsewhere/calls-recorder:v0.8.13".to_owned(),
        format!("{reg}/calls-offloader:v0.9.5"),
    ] {
        let r = s
            .http
            .post("/jobs", a, body("recording", &runner, 60, json!({})))
            .await;
        let msg = format!("invalid Runner value: failed to validate runner {runner:?}");
        s.record(
            G_INPUT,
            &format!("runner rejected: {runner}"),
            r.expect_error(400, &msg),
        );
    }
    for (name, b) in [
        (
            "max_duration_sec as a string",
            r#"{"type":"recording","max_duration_sec":"60"}"#.to_owned(),
        ),
        (
            "fractional max_duration_sec",
            r#"{"type":"recording","max_duration_sec":1.5}"#.to_owned(),
        ),
        ("empty body", String::new()),
    ] {
        let want = decode_error(&b);
        let r = s.http.post("/jobs", a, b).await;
        s.record(G_INPUT, name, r.expect_error(400, &want));
    }
    let big = body(
        "recording",
        &rec,
        60,
        json!({"pad": "x".repeat(1024 * 1024 + 16)}),
    );
    let r = s.http.post("/jobs", a, big).await;
    s.record(
        G_INPUT,
        "body over 1 MiB",
        r.expect_error(
            400,
            "failed to decode request body: http: request body too large",
        ),
    );

    // Success: unknown top-level key ignored, type/runner mismatch accepted, no Content-Type sent.
    let input =
        json!({"call_id": "conform", "runner_exit_code": 0, "site_url": "http://mm.invalid"});
    let b = json!({"type": "transcribing", "max_duration_sec": 60, "runner": rec, "input_data": input, "unknown": 1})
        .to_string();
    let before = now_ms();
    let r = s.http.post("/jobs", a, b).await;
    let res = (|| {
        let v = r.json().filter(|_| r.status == 200).ok_or(format!(
            "{} {}",
            r.status,
            r.body.trim_end()
        ))?;
        let id = v["id"].as_str().unwrap_or_default();
        if !is_job_id(id) {
            return Err(format!("id {id:?} does not match [a-z0-9]{{12,26}}"));
        }
        let start = v["start_at"].as_i64().unwrap_or(0);
        if (start - before).abs() > 60_000 {
            return Err(format!("start_at {start} is not near now ({before})"));
        }
        if v.get("stop_at").is_some() || v.get("output_data").is_some() {
            return Err("stop_at or output_data present on a new job".into());
        }
        if v["input_data"] != input || v["type"] != "transcribing" {
            return Err(format!("input_data/type not echoed: {v}"));
        }
        Ok(format!("id {id}, no Content-Type sent"))
    })();
    if let Some(id) = job_id(&r) {
        s.created.push(id.clone());
        s.record(
            G_INPUT,
            "create succeeds (mismatched type, unknown key, no Content-Type)",
            res,
        );
        let gone = s.wait_gone(&id, Duration::from_secs(20)).await;
        s.record(G_LIFE, "fast exit 0: job removed", gone.clone());
        s.info(
            G_DEFECT,
            "stuck running after a fast exit",
            match gone {
                Ok(_) => "not observed".into(),
                Err(e) => format!("OBSERVED: {e}"),
            },
        );
    } else {
        s.record(
            G_INPUT,
            "create succeeds (mismatched type, unknown key, no Content-Type)",
            res,
        );
    }
}

pub(crate) async fn init(s: &mut Suite) {
    let auth = s.client_auth();
    let a = auth.as_deref();
    let runners = json!({"Runners": [s.opts.recorder(), s.opts.transcriber()]}).to_string();
    let r = s.http.post("/jobs/init", a, runners).await;
    s.record(G_INIT, "valid runners: 200 empty", r.expect(200, ""));
    let r = s
        .http
        .post(
            "/jobs/init",
            a,
            json!({"runners": [s.opts.recorder()]}).to_string(),
        )
        .await;
    s.record(G_INIT, "lower-case runners key accepted", r.expect(200, ""));
    let r = s.http.post("/jobs/init", a, "{}").await;
    s.record(
        G_INIT,
        "empty Runners",
        r.expect_error(400, "invalid job service config: invalid empty Runners"),
    );
    let r = s.http.post("/jobs/init", a, r#"{"Runners":["x"]}"#).await;
    s.record(
        G_INIT,
        "bad runner",
        r.expect_error(
            400,
            "invalid job service config: failed to validate runner \"x\"",
        ),
    );
}

fn docker(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn docker_inspect(id: &str) -> Option<Value> {
    serde_json::from_str::<Value>(&docker(&["inspect", id])?)
        .ok()?
        .get(0)
        .cloned()
}

/// Running containers with the offloader label.
pub(crate) fn running_labelled() -> Option<usize> {
    docker(&[
        "ps",
        "-q",
        "--filter",
        "label=app=mattermost-calls-offloader",
    ])
    .map(|o| o.lines().count())
}

/// Volumes of a container (by name).
fn volumes_of(c: &Value) -> Vec<String> {
    c["Mounts"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| m["Type"] == "volume")
                .filter_map(|m| m["Name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn volume_exists(name: &str) -> bool {
    docker(&["volume", "inspect", name]).is_some()
}

fn white_box(c: &Value, network: Option<&str>) -> Result<String, String> {
    if c["Config"]["Labels"]["app"] != "mattermost-calls-offloader" {
        return Err(format!("label app missing: {}", c["Config"]["Labels"]));
    }
    let mounts = c["Mounts"].as_array().cloned().unwrap_or_default();
    let data = mounts
        .iter()
        .find(|m| m["Destination"] == "/data")
        .ok_or("no mount at /data")?;
    let name = data["Name"].as_str().unwrap_or_default();
    let ok_name = ["calls-recorder-", "calls-transcriber-"]
        .iter()
        .any(|p| name.strip_prefix(p).is_some_and(|rest| rest.len() == 26));
    if data["Type"] != "volume" || !ok_name {
        return Err(format!(
            "/data mount is not a calls-*-<26 id> volume: {data}"
        ));
    }
    let opt = c["HostConfig"]["SecurityOpt"][0]
        .as_str()
        .unwrap_or_default();
    if !opt.starts_with("seccomp=") {
        return Err(format!("SecurityOpt[0] = {opt:.40}"));
    }
    if c["HostConfig"]["Privileged"] != false {
        return Err("container is privileged".into());
    }
    let mode = c["HostConfig"]["NetworkMode"].as_str().unwrap_or_default();
    let want = network.unwrap_or("default");
    if mode != want && !(network.is_none() && mode == "bridge") {
        return Err(format!("NetworkMode {mode:?}, want {want:?}"));
    }
    Ok(format!(
        "label, /data volume {name}, seccomp, unprivileged, network {mode}"
    ))
}

pub(crate) async fn lifecycle(s: &mut Suite) {
    let auth = s.client_auth();
    let a = auth.as_deref();
    // A running job that prints to both streams, then honours SIGTERM at max duration with exit 0.
    let input = json!({"runner_run_ms": 120_000, "runner_stderr": "conform-stderr-line", "runner_stdout": "conform-stdout-line"});
    let r = s.create(8, input).await;
    let Some(id) = job_id(&r) else {
        s.record(
            G_LIFE,
            "create a running job",
            Err(format!("{} {}", r.status, r.body.trim_end())),
        );
        return;
    };
    let g = s.get_job(&id).await;
    let running = g
        .json()
        .filter(|v| g.status == 200 && v.get("stop_at").is_none());
    s.record(
        G_LIFE,
        "running job has no stop_at",
        running.map(|_| "ok".into()).ok_or(g.body.clone()),
    );
    let r = s.http.send("DELETE", &format!("/jobs/{id}"), a, None).await;
    s.record(
        G_LIFE,
        "DELETE of a running job",
        r.expect_error(400, "job is running"),
    );
    let logs = poll(Duration::from_secs(6), || async {
        let r = s.http.get(&format!("/jobs/{id}/logs"), a).await;
        (r.status == 200 && r.body.contains("conform-stderr-line")).then_some(r)
    })
    .await;
    let res = match logs {
        Some(r) if !r.body.contains("conform-stdout-line") => Ok("stderr only".into()),
        Some(r) => Err(format!("stdout leaked into logs: {:?}", r.body)),
        None => Err("stderr line never appeared in logs".into()),
    };
    s.record(G_LIFE, "logs are stderr only", res);
    if s.opts.docker {
        let res = docker_inspect(&id)
            .ok_or("docker inspect failed".to_owned())
            .and_then(|c| white_box(&c, s.opts.docker_network.as_deref()));
        s.record(G_DOCKER, "container spec", res);
    }
    let r = s.http.get("/jobs/zzzzzzzzzzzz/logs", a).await;
    let res = if r.status == 403
        && r.json()
            .and_then(|v| {
                v["error"]
                    .as_str()
                    .map(|e| e.starts_with("failed to get recording job logs: "))
            })
            .unwrap_or(false)
    {
        Ok("403".into())
    } else {
        Err(format!("{} {}", r.status, r.body.trim_end()))
    };
    s.record(G_LIFE, "logs of an unknown id are 403", res);
    let res = s.wait_gone(&id, Duration::from_secs(30)).await;
    s.record(
        G_LIFE,
        "max duration: SIGTERM, exit 0 counts as success",
        res,
    );

    // Exit 1: kept with stop_at, files on the volume, then DELETE removes everything.
    let env_input = json!({
        "site_url": "http://x", "video_rate": 1500, "big": 1_000_000, "flag": true, "nested": {"a": 1},
        "runner_exit_code": 1, "runner_dump_env": true, "runner_files": "out.mp4", "recording_id": "conformrec"
    });
    let r = s.create(60, env_input).await;
    let Some(id) = job_id(&r) else {
        s.record(
            G_LIFE,
            "exit 1 job",
            Err(format!("{} {}", r.status, r.body.trim_end())),
        );
        return;
    };
    let stopped = s.wait_stopped(&id, Duration::from_secs(20)).await;
    let res = match &stopped {
        Some(v) if v["stop_at"].as_i64() >= v["start_at"].as_i64() => {
            Ok(format!("stop_at {}", v["stop_at"]))
        }
        Some(v) => Err(format!("stop_at before start_at: {v}")),
        None => Err("no stop_at within 20 s".into()),
    };
    s.record(G_LIFE, "exit 1: kept with stop_at >= start_at", res);
    let logs = s.http.get(&format!("/jobs/{id}/logs"), a).await;
    let want = [
        "SITE_URL=http://x",
        "VIDEO_RATE=1500",
        "BIG=1e+06",
        "FLAG=true",
        "NESTED=map[a:1]",
    ];
    let missing: Vec<_> = want
        .iter()
        .filter(|w| !logs.body.lines().any(|l| l == **w))
        .collect();
    s.record(
        G_LIFE,
        "input_data becomes env with Go %v formatting",
        if missing.is_empty() {
            Ok(want.join(" "))
        } else {
            Err(format!("missing {missing:?} in {:?}", logs.body))
        },
    );
    let mut volumes = Vec::new();
    if s.opts.docker {
        let c = docker_inspect(&id);
        volumes = c.as_ref().map(volumes_of).unwrap_or_default();
        let env_ok = c
            .as_ref()
            .and_then(|c| c["Config"]["Env"].as_array().cloned())
            .is_some_and(|env| want.iter().all(|w| env.iter().any(|e| e == *w)));
        s.record(
            G_DOCKER,
            "exit 1: container kept, env in container config",
            if c.is_some() && env_ok {
                Ok("kept".into())
            } else {
                Err(format!("container or env missing: {c:?}"))
            },
        );
    }
    let r = s.http.send("DELETE", &format!("/jobs/{id}"), a, None).await;
    s.record(
        G_LIFE,
        "DELETE of a stopped job is 200 empty",
        r.expect(200, ""),
    );
    if s.opts.docker {
        let left: Vec<_> = volumes.iter().filter(|v| volume_exists(v)).collect();
        let gone = docker_inspect(&id).is_none();
        s.record(
            G_DOCKER,
            "DELETE removes container and volume",
            if gone && left.is_empty() {
                Ok(format!("{} volume(s) removed", volumes.len()))
            } else {
                Err(format!("container gone: {gone}, volumes left: {left:?}"))
            },
        );
    }
    let r = s.get_job(&id).await;
    s.info(
        G_DEFECT,
        "record after DELETE (Go keeps it)",
        format!("GET after DELETE: {}", r.status),
    );

    // Exit 0 with files: container, every volume and the record disappear.
    let r = s
        .create(
            60,
            json!({"runner_run_ms": 500, "runner_files": "a.mp4", "recording_id": "conformok"}),
        )
        .await;
    if let Some(id) = job_id(&r) {
        let vols = if s.opts.docker {
            docker_inspect(&id)
                .as_ref()
                .map(volumes_of)
                .unwrap_or_default()
        } else {
            vec![]
        };
        let res = s.wait_gone(&id, Duration::from_secs(20)).await;
        s.record(G_LIFE, "exit 0: record removed", res);
        if s.opts.docker {
            let gone = poll(Duration::from_secs(5), || async {
                docker_inspect(&id).is_none().then_some(())
            })
            .await
            .is_some();
            s.record(
                G_DOCKER,
                "exit 0: container removed",
                if gone {
                    Ok("gone".into())
                } else {
                    Err("container still present".into())
                },
            );
            let left: Vec<_> = vols.iter().filter(|v| volume_exists(v)).cloned().collect();
            s.info(
                G_DEFECT,
                "volume leak after a successful job",
                if left.is_empty() {
                    "not observed".into()
                } else {
                    format!("OBSERVED: {left:?}")
                },
            );
        }
    }

    // SIGTERM ignored: killed after the grace and counted as failed.
    match s.opts.stop_grace {
        Some(grace) if grace <= 30 => {
            let r = s
                .create(
                    2,
                    json!({"runner_run_ms": 600_000, "runner_sigterm": "ignore"}),
                )
                .await;
            if let Some(id) = job_id(&r) {
                let v = s
                    .wait_stopped(&id, Duration::from_secs(2 + grace + 20))
                    .await;
                s.record(
                    G_LIFE,
                    "SIGTERM ignored: killed after the grace, kept as failed",
                    v.map(|v| format!("stop_at {}", v["stop_at"]))
                        .ok_or("no stop_at".into()),
                );
                let _ = s.http.send("DELETE", &format!("/jobs/{id}"), a, None).await;
            }
        }
        _ => s.skip(
            G_LIFE,
            "SIGTERM ignored: killed after the grace",
            "needs --stop-grace <= 30 (Go waits 300 s)",
        ),
    }

    // Retention: a failed job's container goes within retention + one pass of the 1-minute loop.
    match (s.opts.slow, s.opts.retention_minutes) {
        (true, Some(minutes)) if minutes <= 2 => {
            let r = s.create(60, json!({"runner_exit_code": 1})).await;
            if let Some(id) = job_id(&r) {
                let stopped = s.wait_stopped(&id, Duration::from_secs(20)).await.is_some();
                let started = Instant::now();
                let within = Duration::from_secs(minutes * 60 + 90);
                // Black-box: the logs route asks the backend directly, so 403 means the job is gone.
                let gone = poll(within, || async {
                    (s.http.get(&format!("/jobs/{id}/logs"), a).await.status == 403).then_some(())
                })
                .await;
                s.record(
                    G_LIFE,
                    "retention removes a failed job",
                    match (stopped, gone) {
                        (true, Some(())) => {
                            Ok(format!("removed {:?} after it stopped", started.elapsed()))
                        }
                        (false, _) => Err("the job never stopped".into()),
                        (true, None) => Err(format!("still present after {within:?}")),
                    },
                );
                let r = s.get_job(&id).await;
                s.info(
                    G_DEFECT,
                    "record after retention (Go keeps it)",
                    format!("GET after retention: {}", r.status),
                );
            }
        }
        _ => s.skip(
            G_LIFE,
            "retention removes a failed job",
            "needs --slow and --retention-minutes 1",
        ),
    }
}

pub(crate) async fn limits(s: &mut Suite) {
    let n = s.opts.limit;
    let auth = s.client_auth();
    let a = auth.as_deref();
    // n jobs: the first ends after 3 s, the others at max duration (SIGTERM, exit 0).
    let mut ids = Vec::new();
    for i in 0..n {
        let run = if i == 0 { 3_000 } else { 120_000 };
        let r = s.create(10, json!({"runner_run_ms": run})).await;
        match job_id(&r) {
            Some(id) => ids.push(id),
            None => {
                s.record(
                    G_LIMIT,
                    "fill the limit",
                    Err(format!("job {i}: {} {}", r.status, r.body.trim_end())),
                );
                return;
            }
        }
    }
    let r = s.create(10, json!({})).await;
    s.record(
        G_LIMIT,
        &format!("job {} over the limit of {n}", n + 1),
        r.expect_error(
            500,
            "failed to create recording job: max concurrent jobs reached",
        ),
    );
    let again = poll(Duration::from_secs(20), || async {
        let b = body(
            "recording",
            &s.opts.recorder(),
            10,
            json!({"runner_run_ms": 500}),
        );
        let r = s.http.post("/jobs", a, b).await;
        job_id(&r)
    })
    .await;
    s.record(
        G_LIMIT,
        "creation succeeds again after a job exits",
        again
            .clone()
            .map(|id| format!("job {id}"))
            .ok_or("still rejected after 20 s".into()),
    );
    ids.extend(again);
    for id in &ids {
        let _ = s.wait_gone(id, Duration::from_secs(40)).await;
    }

    // Parallel burst of 4n+4 creates; at most n may be admitted.
    let m = 4 * n + 4;
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(s.opts.docker));
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sampler = {
        let (on, peak) = (sampling.clone(), peak.clone());
        tokio::task::spawn_blocking(move || {
            while on.load(std::sync::atomic::Ordering::Relaxed) {
                let c = running_labelled().unwrap_or(0);
                peak.fetch_max(c, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let b = body(
        "recording",
        &s.opts.recorder(),
        20,
        json!({"runner_run_ms": 4_000}),
    );
    let reqs = (0..m).map(|_| s.http.post("/jobs", a, b.clone()));
    let results = futures_util::future::join_all(reqs).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.await;
    let accepted: Vec<String> = results.iter().filter_map(job_id).collect();
    let bad_rejections: Vec<_> = results
        .iter()
        .filter(|r| r.status != 200)
        .filter(|r| {
            r.expect_error(
                500,
                "failed to create recording job: max concurrent jobs reached",
            )
            .is_err()
        })
        .map(|r| format!("{} {}", r.status, r.body.trim_end()))
        .collect();
    s.created.extend(accepted.iter().cloned());
    s.record(
        G_LIMIT,
        "burst rejections carry the exact error",
        if bad_rejections.is_empty() {
            Ok(format!("{} rejected", m - accepted.len()))
        } else {
            Err(bad_rejections.join("; "))
        },
    );
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    let over = accepted.len() > n || peak > n;
    s.info(
        G_DEFECT,
        "limit overshoot under a parallel burst",
        format!(
            "{}: {m} parallel creates, {} accepted, peak running labelled containers {}, limit {n}",
            if over { "OBSERVED" } else { "not observed" },
            accepted.len(),
            if s.opts.docker {
                peak.to_string()
            } else {
                "n/a".into()
            }
        ),
    );
    s.record(
        G_LIMIT,
        "parallel burst admits at most the limit",
        if over {
            Err(format!("{} accepted, peak {peak} > {n}", accepted.len()))
        } else {
            Ok(format!("{} accepted", accepted.len()))
        },
    );
    for id in &accepted {
        let _ = s.wait_gone(id, Duration::from_secs(40)).await;
    }
}

/// Deletes every stopped job the suite created, so the target is left clean.
pub(crate) async fn cleanup(s: &mut Suite) {
    let auth = s.client_auth();
    let ids = std::mem::take(&mut s.created);
    for id in ids {
        let g = s.get_job(&id).await;
        if g.json().is_some_and(|v| v.get("stop_at").is_some()) {
            let _ = s
                .http
                .send("DELETE", &format!("/jobs/{id}"), auth.as_deref(), None)
                .await;
        }
    }
}
