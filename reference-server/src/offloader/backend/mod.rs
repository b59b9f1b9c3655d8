//! Where jobs run: Docker containers through bollard, or local child processes. Both give the job
//! service the same small set of operations; the service owns the lifecycle rules (limit, monitor,
//! settle, retention, reconciliation) and never sees which backend it drives.

pub mod docker;
pub mod process;

use std::time::{Duration, SystemTime};

/// The label every job container carries (offloader.md §4.1).
pub const LABEL_KEY: &str = "app";
/// The label value.
pub const LABEL_VALUE: &str = "mattermost-calls-offloader";
/// Where the job volume is mounted.
pub const DATA_PATH: &str = "/data";

/// What to run.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// "calls-recorder" or "calls-transcriber": names the job volume.
    pub prefix: &'static str,
    /// The runner image (Docker) — the process backend ignores it.
    pub image: String,
    /// `KEY=value` pairs from input_data.
    pub env: Vec<String>,
}

/// How a wait for a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The job exited with this code.
    Exited(i64),
    /// The deadline passed while the job still ran.
    TimedOut,
    /// The job is unknown to the backend (removed behind our back).
    Gone,
    /// The wait itself failed (daemon restart, dropped connection): re-check, don't stop the job.
    Interrupted(String),
}

/// A job as the backend sees it, for reconciliation and retention.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The short (12 character) id.
    pub id: String,
    pub running: bool,
    /// Set once the job has exited.
    pub exit_code: Option<i64>,
    pub finished_at: Option<SystemTime>,
    /// Set, to its creation time, for a job container that was created but never started.
    pub stuck_since: Option<SystemTime>,
}

/// Backend failures; `Display` gives the Go service's wording where clients can see it.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("max concurrent jobs reached")]
    LimitReached,
    #[error("failed to list containers: {0}")]
    List(String),
    #[error("failed to pull docker image: {0}")]
    Pull(String),
    #[error("failed to update job runner: {0}")]
    UpdateRunner(String),
    #[error("failed to create container: {0}")]
    Create(String),
    #[error("failed to start container: {0}")]
    Start(String),
    #[error("failed to get container logs: {0}")]
    Logs(String),
    #[error("failed to get container: {0}")]
    Inspect(String),
    #[error("failed to remove container: {0}")]
    Remove(String),
    #[error("failed to remove volume: {0}")]
    RemoveVolume(String),
    #[error("failed to stop container: {0}")]
    Stop(String),
    #[error("failed to connect to docker: {0}")]
    Connect(String),
    #[error("failed to spawn runner: {0}")]
    Spawn(String),
}

/// The backend a service runs on.
#[derive(Debug)]
pub enum Backend {
    Docker(docker::DockerBackend),
    Process(process::ProcessBackend),
}

macro_rules! dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            Backend::Docker($b) => $e,
            Backend::Process($b) => $e,
        }
    };
}

impl Backend {
    /// Makes sure the runner image is present (pull if missing).
    pub async fn ensure_image(&self, image: &str) -> Result<(), BackendError> {
        dispatch!(self, b => b.ensure_image(image).await)
    }

    /// Jobs running right now, as the limit counts them (Docker: every running labelled container
    /// on the host, like the Go service).
    pub async fn running_count(&self) -> Result<usize, BackendError> {
        dispatch!(self, b => b.running_count().await)
    }

    /// Creates and starts a job; returns its short id.
    pub async fn create(&self, spec: &JobSpec) -> Result<String, BackendError> {
        dispatch!(self, b => b.create(spec).await)
    }

    /// Waits until the job stops running or `timeout` passes.
    pub async fn wait(&self, id: &str, timeout: Duration) -> WaitOutcome {
        dispatch!(self, b => b.wait(id, timeout).await)
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<(), BackendError> {
        dispatch!(self, b => b.stop(id, grace).await)
    }

    /// The job's current state, `None` if the backend doesn't know it.
    pub async fn inspect(&self, id: &str) -> Result<Option<Observed>, BackendError> {
        dispatch!(self, b => b.inspect(id).await)
    }

    /// The job's stderr from the last hour.
    pub async fn logs(&self, id: &str) -> Result<Vec<u8>, BackendError> {
        dispatch!(self, b => b.logs(id).await)
    }

    /// Removes the job and every volume it had.
    pub async fn remove(&self, id: &str) -> Result<(), BackendError> {
        dispatch!(self, b => b.remove(id).await)
    }

    /// Every job the backend holds (running or not).
    pub async fn list(&self) -> Result<Vec<Observed>, BackendError> {
        dispatch!(self, b => b.list().await)
    }
}
