//! Shared helpers of the offloader integration tests: the real Docker engine (required, never
//! silently skipped), the runner image (built on demand), and `callsref offloader` child processes
//! on port 0.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// Docker tests share one engine and count labelled containers: run them one at a time.
pub static DOCKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The engine-wide turn of one Docker test: this process's lock, then a file lock every test
/// process on the machine takes (`callsbench-docker-tests.lock` in the temp dir; callsbench's
/// conformance test takes the same one). An offloader adopts every labelled container on its
/// engine, so two test processes at once (two worktrees, or `cargo test` beside a manual run)
/// would settle, count and remove each other's jobs.
pub struct DockerTurn {
    _file: std::fs::File,
    _in_process: tokio::sync::MutexGuard<'static, ()>,
}

pub const REGISTRY: &str = "callsbench";
pub const RECORDER: &str = "callsbench/calls-recorder:v0.8.13";
pub const KEY: &str = "0123456789abcdef0123456789abcdef";

pub async fn docker_lock() -> DockerTurn {
    let in_process = DOCKER.lock().await;
    let file = tokio::task::spawn_blocking(|| {
        let path = std::env::temp_dir().join("callsbench-docker-tests.lock");
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        file.lock()?;
        std::io::Result::Ok(file)
    })
    .await
    .unwrap()
    .expect("docker test lock file");
    DockerTurn {
        _file: file,
        _in_process: in_process,
    }
}

/// Fails (never skips) when the engine is unreachable.
pub fn require_docker() {
    let ok = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        ok.is_ok_and(|s| s.success()),
        "Docker is not reachable (`docker info` failed): these tests need a running dockerd; .ci/run installs docker.io and starts it"
    );
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the runner image with deploy/runner/build-image.sh unless it is already present.
pub fn ensure_image() {
    let _guard = IMAGE.lock().unwrap_or_else(|p| p.into_inner());
    let present = Command::new("docker")
        .args(["image", "inspect", RECORDER])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if present.is_ok_and(|s| s.success()) {
        return;
    }
    let status = Command::new(workspace_root().join("deploy/runner/build-image.sh"))
        .current_dir(workspace_root())
        .status()
        .expect("run deploy/runner/build-image.sh");
    assert!(status.success(), "deploy/runner/build-image.sh failed");
}

static IMAGE: Mutex<()> = Mutex::new(());

pub fn docker_out(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Running containers labelled app=mattermost-calls-offloader.
pub fn running_labelled() -> usize {
    docker_out(&[
        "ps",
        "-q",
        "--filter",
        "label=app=mattermost-calls-offloader",
    ])
    .lines()
    .count()
}

/// All containers (any state) with the label.
pub fn all_labelled() -> Vec<String> {
    docker_out(&[
        "ps",
        "-aq",
        "--filter",
        "label=app=mattermost-calls-offloader",
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// Job volumes (calls-recorder-* and calls-transcriber-*).
pub fn job_volumes() -> Vec<String> {
    docker_out(&["volume", "ls", "-q"])
        .lines()
        .filter(|v| v.starts_with("calls-recorder-") || v.starts_with("calls-transcriber-"))
        .map(str::to_owned)
        .collect()
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "callsref-{tag}-{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A config for a test offloader (admin on with secret "admin_secret_key").
pub fn config(dir: &Path, api_type: &str, limit: usize, self_registration: bool) -> String {
    format!(
        r#"[api]
http.listen_address = "127.0.0.1:0"
security.allow_self_registration = {self_registration}
security.enable_admin = true
security.admin_secret_key = "admin_secret_key"
security.session_cache.expiration_minutes = 1440
[store]
data_source = "{data}"
[jobs]
api_type = "{api_type}"
max_concurrent_jobs = {limit}
image_registry = "{REGISTRY}"
stop_grace_seconds = 3
[logger]
enable_console = true
console_level = "INFO"
"#,
        data = dir.join("db").display()
    )
}

/// A running `callsref offloader`.
pub struct Offloader {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
}

impl Offloader {
    /// Starts the offloader with `cfg` written to `<dir>/config.toml`; waits for its address.
    pub fn spawn(dir: &Path, cfg: &str) -> Offloader {
        let path = dir.join("config.toml");
        std::fs::write(&path, cfg).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_callsref"))
            .args(["offloader", "--config"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("offloader.log")).unwrap())
            .spawn()
            .expect("spawn callsref offloader");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        assert!(
            line.contains("listening on"),
            "offloader did not start: {line:?}; log: {}",
            std::fs::read_to_string(dir.join("offloader.log")).unwrap_or_default()
        );
        Offloader {
            child,
            url: format!("http://{addr}"),
            dir: dir.to_owned(),
        }
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Offloader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn basic(id: &str, key: &str) -> String {
    callsref::proto::auth::Authorization::basic(id, key).to_header_value()
}

pub fn admin() -> String {
    callsref::proto::auth::Authorization::admin("admin_secret_key").to_header_value()
}

/// POST with no Content-Type; returns status and body.
pub async fn post(client: &reqwest::Client, url: &str, auth: &str, body: String) -> (u16, String) {
    let r = client
        .post(url)
        .header("Authorization", auth)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

pub async fn get(client: &reqwest::Client, url: &str, auth: &str) -> (u16, String) {
    let r = client
        .get(url)
        .header("Authorization", auth)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

pub fn job_body(max: i64, input: serde_json::Value) -> String {
    serde_json::json!({"type": "recording", "max_duration_sec": max, "runner": RECORDER, "input_data": input}).to_string()
}

pub fn job_id(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls `f` every 100 ms until it returns true or `within` passes.
pub async fn eventually(within: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + within;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}
