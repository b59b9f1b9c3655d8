//! Jobs as Docker containers through bollard (offloader.md §4).
//!
//! The client connects from the environment (DOCKER_HOST) and negotiates the API version down to
//! the engine's — bollard's default is newer than Debian's docker.io (1.41). Short requests get a
//! 10 s budget and pulls 2 min, like the Go service; waits and stops use a client without a
//! practical timeout because they legitimately last as long as a job.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountPointTypeEnum, MountTypeEnum};
use bollard::query_parameters::{
    CreateImageOptions, InspectContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, RemoveVolumeOptions, StopContainerOptions, WaitContainerOptions,
};
use futures_util::StreamExt as _;

use super::{BackendError, DATA_PATH, JobSpec, LABEL_KEY, LABEL_VALUE, Observed, WaitOutcome};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const PULL_TIMEOUT: Duration = Duration::from_secs(120);
/// Waits and stops: longer than any job may run (the plugin's maximum is 6 h for transcriptions).
const LONG_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Mattermost's id alphabet, used for volume names like the Go service's `random.NewID()`.
const ID_ALPHABET: &[u8] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// The Docker backend.
#[derive(Debug)]
pub struct DockerBackend {
    short: Docker,
    long: Docker,
    network_mode: Option<String>,
    security_opt: String,
    /// `jobs.docker.output_logs`: follow each job's output to this process's stdout/stderr.
    output_logs: bool,
    /// The negotiated API version, for logs and tests.
    pub api_version: String,
}

/// Go's docker client prints daemon errors as "Error response from daemon: <message>"; clients see
/// that text inside error bodies, so bollard's errors are rendered the same way.
fn daemon(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => {
            format!("Error response from daemon: {message}")
        }
        other => other.to_string(),
    }
}

fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

async fn within<T>(
    budget: Duration,
    fut: impl Future<Output = Result<T, DockerError>>,
) -> Result<T, String> {
    match tokio::time::timeout(budget, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(daemon(&e)),
        Err(_) => Err("context deadline exceeded".into()),
    }
}

fn label_filter(state: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut filters = HashMap::new();
    filters.insert(
        "label".to_owned(),
        vec![format!("{LABEL_KEY}={LABEL_VALUE}")],
    );
    if let Some(state) = state {
        filters.insert("status".to_owned(), vec![state.to_owned()]);
    }
    filters
}

/// A 26-character id in Mattermost's alphabet.
pub fn new_volume_id() -> String {
    (0..26)
        .map(|_| ID_ALPHABET[rand::random_range(0..ID_ALPHABET.len())] as char)
        .collect()
}

fn parse_docker_time(text: &str) -> Option<SystemTime> {
    // Docker reports "0001-01-01T00:00:00Z" for a container that never finished.
    humantime::parse_rfc3339_weak(text)
        .ok()
        .filter(|t| *t > SystemTime::UNIX_EPOCH)
}

impl DockerBackend {
    /// Connects from the environment, negotiates the API version and pings the engine (the Go
    /// service refuses to start when the engine doesn't answer within 10 s).
    pub async fn connect(
        network_mode: Option<String>,
        security_opt: String,
        output_logs: bool,
    ) -> Result<Self, BackendError> {
        let client =
            Docker::connect_with_defaults().map_err(|e| BackendError::Connect(e.to_string()))?;
        let client = tokio::time::timeout(REQUEST_TIMEOUT, client.negotiate_version())
            .await
            .map_err(|_| BackendError::Connect("timed out negotiating the api version".into()))?
            .map_err(|e| BackendError::Connect(e.to_string()))?;
        let version = within(REQUEST_TIMEOUT, client.version())
            .await
            .map_err(BackendError::Connect)?;
        let api_version = version.api_version.unwrap_or_default();
        tracing::info!(version = ?version.version, api_version, "connected to docker API");
        Ok(DockerBackend {
            short: client.clone().with_timeout(REQUEST_TIMEOUT),
            long: client.with_timeout(LONG_TIMEOUT),
            network_mode,
            security_opt,
            output_logs,
            api_version,
        })
    }

    /// Inspects the image and pulls it if missing, checking the pull stream for errors (the Go
    /// service doesn't, so a failed pull can look like success there).
    pub async fn ensure_image(&self, image: &str) -> Result<(), BackendError> {
        if self.short.inspect_image(image).await.is_ok() {
            return Ok(());
        }
        tracing::debug!(image, "image is missing, will try to pull it from registry");
        let opts = CreateImageOptions {
            from_image: Some(image.to_owned()),
            ..Default::default()
        };
        let pull = async {
            let mut stream = self.long.create_image(Some(opts), None, None);
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| daemon(&e))?;
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    return Err(err);
                }
            }
            Ok(())
        };
        match tokio::time::timeout(PULL_TIMEOUT, pull).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(BackendError::Pull(e)),
            Err(_) => return Err(BackendError::Pull("context deadline exceeded".into())),
        }
        // A stream without errors should have produced the image; make sure.
        self.short
            .inspect_image(image)
            .await
            .map(|_| ())
            .map_err(|e| BackendError::Pull(daemon(&e)))
    }

    pub async fn running_count(&self) -> Result<usize, BackendError> {
        let opts = ListContainersOptions {
            filters: Some(label_filter(None)),
            ..Default::default()
        };
        let list = within(REQUEST_TIMEOUT, self.short.list_containers(Some(opts)))
            .await
            .map_err(BackendError::List)?;
        Ok(list.len())
    }

    /// Creates and starts the container of §4.1 and returns the first 12 characters of its id.
    pub async fn create(&self, spec: &JobSpec) -> Result<String, BackendError> {
        let volume = format!("{}-{}", spec.prefix, new_volume_id());
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            tty: Some(false),
            env: Some(spec.env.clone()),
            labels: Some(HashMap::from([(
                LABEL_KEY.to_owned(),
                LABEL_VALUE.to_owned(),
            )])),
            // The Go service also sets a `Volumes` map whose key Docker reads as a relative path,
            // which leaks an anonymous volume per job (offloader.md §4.1); the mount alone is right.
            host_config: Some(HostConfig {
                network_mode: self.network_mode.clone(),
                mounts: Some(vec![Mount {
                    target: Some(DATA_PATH.to_owned()),
                    source: Some(volume.clone()),
                    typ: Some(MountTypeEnum::VOLUME),
                    ..Default::default()
                }]),
                security_opt: Some(vec![self.security_opt.clone()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = within(
            REQUEST_TIMEOUT,
            self.short.create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            ),
        )
        .await
        .map_err(BackendError::Create)?;
        let id: String = created.id.chars().take(12).collect();
        if let Err(e) = within(
            REQUEST_TIMEOUT,
            self.short.start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            ),
        )
        .await
        {
            // Don't leave a "created" container behind (the Go service does; retention never
            // cleans that state). Best effort: the start error is what the client must see.
            let opts = RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            let _ = within(
                REQUEST_TIMEOUT,
                self.short.remove_container(&id, Some(opts)),
            )
            .await;
            let _ = within(
                REQUEST_TIMEOUT,
                self.short
                    .remove_volume(&volume, None::<RemoveVolumeOptions>),
            )
            .await;
            return Err(BackendError::Start(e));
        }
        if self.output_logs {
            self.follow_logs(&id);
        }
        Ok(id)
    }

    /// Relays a job's stdout and stderr to ours until it exits (jobs.docker.output_logs).
    fn follow_logs(&self, id: &str) {
        let client = self.long.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            use std::io::Write as _;
            let opts = LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            };
            let mut stream = client.logs(&id, Some(opts));
            while let Some(Ok(item)) = stream.next().await {
                match item {
                    LogOutput::StdErr { message } => {
                        let _ = std::io::stderr().write_all(&message);
                    }
                    other => {
                        let _ = std::io::stdout().write_all(other.as_ref());
                    }
                }
            }
        });
    }

    pub async fn wait(&self, id: &str, timeout: Duration) -> WaitOutcome {
        let opts = WaitContainerOptions {
            condition: "not-running".to_owned(),
        };
        let mut stream = self.long.wait_container(id, Some(opts));
        match tokio::time::timeout(timeout, stream.next()).await {
            Err(_) => WaitOutcome::TimedOut,
            Ok(None) => WaitOutcome::Interrupted("wait stream ended without a status".into()),
            Ok(Some(Ok(resp))) => WaitOutcome::Exited(resp.status_code),
            // bollard reports non-zero exits as errors; they are exit codes, not failures.
            Ok(Some(Err(DockerError::DockerContainerWaitError { code, .. }))) => {
                WaitOutcome::Exited(code)
            }
            Ok(Some(Err(e))) if is_not_found(&e) => WaitOutcome::Gone,
            Ok(Some(Err(e))) => WaitOutcome::Interrupted(daemon(&e)),
        }
    }

    pub async fn stop(&self, id: &str, grace: Duration) -> Result<(), BackendError> {
        let secs = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let opts = StopContainerOptions {
            t: Some(secs),
            signal: None,
        };
        within(
            grace + REQUEST_TIMEOUT * 3,
            self.long.stop_container(id, Some(opts)),
        )
        .await
        .map_err(BackendError::Stop)
    }

    pub async fn inspect(&self, id: &str) -> Result<Option<Observed>, BackendError> {
        match tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.short
                .inspect_container(id, None::<InspectContainerOptions>),
        )
        .await
        {
            Err(_) => Err(BackendError::Inspect("context deadline exceeded".into())),
            Ok(Err(e)) if is_not_found(&e) => Ok(None),
            Ok(Err(e)) => Err(BackendError::Inspect(daemon(&e))),
            Ok(Ok(c)) => {
                let state = c.state.unwrap_or_default();
                let running = state.running.unwrap_or(false);
                let finished_at = state.finished_at.as_deref().and_then(parse_docker_time);
                let created = matches!(
                    state.status,
                    Some(bollard::models::ContainerStateStatusEnum::CREATED)
                );
                Ok(Some(Observed {
                    id: c.id.unwrap_or_default().chars().take(12).collect(),
                    running,
                    // A container that never started has no exit code to judge by.
                    exit_code: if running || created {
                        None
                    } else {
                        state.exit_code
                    },
                    finished_at,
                    stuck_since: if created {
                        c.created.as_deref().and_then(parse_docker_time)
                    } else {
                        None
                    },
                }))
            }
        }
    }

    /// stderr only (the Go service discards stdout), since now − 1 h, no follow.
    pub async fn logs(&self, id: &str) -> Result<Vec<u8>, BackendError> {
        let since = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs().saturating_sub(3600))
            .unwrap_or(0);
        let opts = LogsOptions {
            stderr: true,
            stdout: false,
            since: i32::try_from(since).unwrap_or(i32::MAX),
            ..Default::default()
        };
        let collect = async {
            let mut out = Vec::new();
            let mut stream = self.short.logs(id, Some(opts));
            while let Some(item) = stream.next().await {
                match item {
                    Ok(LogOutput::StdErr { message }) => out.extend_from_slice(&message),
                    Ok(_) => {}
                    Err(e) => return Err(daemon(&e)),
                }
            }
            Ok(out)
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, collect).await {
            Ok(r) => r.map_err(BackendError::Logs),
            Err(_) => Err(BackendError::Logs("context deadline exceeded".into())),
        }
    }

    /// Removes the container and ALL its volumes (the Go service removes only the first mount's).
    pub async fn remove(&self, id: &str) -> Result<(), BackendError> {
        let c = within(
            REQUEST_TIMEOUT,
            self.short
                .inspect_container(id, None::<InspectContainerOptions>),
        )
        .await
        .map_err(BackendError::Inspect)?;
        within(
            REQUEST_TIMEOUT,
            self.short
                .remove_container(id, Some(RemoveContainerOptions::default())),
        )
        .await
        .map_err(BackendError::Remove)?;
        let volumes = c
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ == Some(MountPointTypeEnum::VOLUME));
        for name in volumes.filter_map(|m| m.name) {
            within(
                REQUEST_TIMEOUT,
                self.short.remove_volume(&name, None::<RemoveVolumeOptions>),
            )
            .await
            .map_err(BackendError::RemoveVolume)?;
        }
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<Observed>, BackendError> {
        let opts = ListContainersOptions {
            all: true,
            filters: Some(label_filter(None)),
            ..Default::default()
        };
        let list = within(REQUEST_TIMEOUT, self.short.list_containers(Some(opts)))
            .await
            .map_err(BackendError::List)?;
        let mut out = Vec::with_capacity(list.len());
        for summary in list {
            let Some(id) = summary.id else { continue };
            if let Some(observed) = self.inspect(&id).await? {
                out.push(observed);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_ids_use_the_mattermost_alphabet() {
        let id = new_volume_id();
        assert_eq!(id.len(), 26);
        assert!(id.bytes().all(|b| ID_ALPHABET.contains(&b)), "{id}");
    }

    #[test]
    fn docker_times_parse_and_zero_time_is_none() {
        assert!(parse_docker_time("2026-11-22T11:20:00.123456789Z").is_some());
        assert!(parse_docker_time("0001-01-01T00:00:00Z").is_none());
    }
}
