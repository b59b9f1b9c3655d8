//! Jobs as local child processes, for machines without Docker: each job runs `<runner> runner`
//! with the input_data environment, its own data directory standing in for the `/data` volume
//! (`DATA_DIR`), stderr captured to a file (the job's logs) and stdout discarded.
//!
//! Layout under the backend root: `<id>/meta` (pid and volume path), `<id>/stderr.log`,
//! `<id>/exit` (the exit code, written by whoever sees the exit first: this backend when the runner
//! is its child, or the runner itself via `CALLSREF_EXIT_FILE` so that an exit while the offloader
//! is down is still known), and `volumes/<prefix>-<26 id>/`. A job whose process is gone without an
//! exit file was SIGKILLed and counts as exit code 137.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::watch;

use super::{BackendError, JobSpec, Observed, WaitOutcome};

/// The env var that tells the runner where to record its exit code.
pub const EXIT_FILE_ENV: &str = "CALLSREF_EXIT_FILE";
/// The env var that tells the runner where its `/data` is.
pub const DATA_DIR_ENV: &str = "DATA_DIR";
/// How often an adopted (non-child) process is checked for exit.
const ADOPT_POLL: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct ProcJob {
    dir: PathBuf,
    volume: PathBuf,
    pid: i32,
    exit: watch::Receiver<Option<i64>>,
}

/// The process backend.
#[derive(Debug)]
pub struct ProcessBackend {
    runner: PathBuf,
    root: PathBuf,
    jobs: Mutex<HashMap<String, Arc<ProcJob>>>,
}

fn io(e: std::io::Error) -> BackendError {
    BackendError::Spawn(e.to_string())
}

fn read_exit(dir: &Path) -> Option<i64> {
    std::fs::read_to_string(dir.join("exit"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

impl ProcessBackend {
    /// Opens the backend at `root` and adopts the jobs a previous instance left there, watching
    /// the ones still running.
    pub fn open(runner: PathBuf, root: PathBuf) -> Result<Self, BackendError> {
        std::fs::create_dir_all(root.join("volumes")).map_err(io)?;
        let backend = ProcessBackend {
            runner,
            root,
            jobs: Mutex::new(HashMap::new()),
        };
        for entry in std::fs::read_dir(&backend.root).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "volumes" {
                continue;
            }
            let Ok(meta) = std::fs::read_to_string(entry.path().join("meta")) else {
                continue;
            };
            let mut lines = meta.lines();
            let (Some(pid), Some(volume)) =
                (lines.next().and_then(|p| p.parse().ok()), lines.next())
            else {
                continue;
            };
            let job = backend.adopt(entry.path(), PathBuf::from(volume), pid);
            backend.lock().insert(name, job);
        }
        Ok(backend)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ProcJob>>> {
        // A poisoned map only means a panic elsewhere mid-insert; the map itself is still valid.
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn adopt(&self, dir: PathBuf, volume: PathBuf, pid: i32) -> Arc<ProcJob> {
        let (tx, rx) = watch::channel(read_exit(&dir));
        if rx.borrow().is_none() {
            let dir = dir.clone();
            tokio::spawn(async move {
                loop {
                    if let Some(code) = read_exit(&dir) {
                        let _ = tx.send(Some(code));
                        return;
                    }
                    if !alive(pid) {
                        // The runner may have written its exit file just before exiting.
                        let code = read_exit(&dir).unwrap_or(137);
                        let _ = std::fs::write(dir.join("exit"), code.to_string());
                        let _ = tx.send(Some(code));
                        return;
                    }
                    tokio::time::sleep(ADOPT_POLL).await;
                }
            });
        }
        Arc::new(ProcJob {
            dir,
            volume,
            pid,
            exit: rx,
        })
    }

    fn job(&self, id: &str) -> Option<Arc<ProcJob>> {
        self.lock().get(id).cloned()
    }

    /// Images mean nothing here; every runner string runs the same local binary.
    pub async fn ensure_image(&self, _image: &str) -> Result<(), BackendError> {
        Ok(())
    }

    pub async fn running_count(&self) -> Result<usize, BackendError> {
        Ok(self
            .lock()
            .values()
            .filter(|j| j.exit.borrow().is_none())
            .count())
    }

    pub async fn create(&self, spec: &JobSpec) -> Result<String, BackendError> {
        let id: String = (0..12)
            .map(|_| char::from(b"0123456789abcdef"[rand::random_range(0..16)]))
            .collect();
        let dir = self.root.join(&id);
        let volume = self.root.join("volumes").join(format!(
            "{}-{}",
            spec.prefix,
            super::docker::new_volume_id()
        ));
        std::fs::create_dir_all(&dir).map_err(io)?;
        std::fs::create_dir_all(&volume).map_err(io)?;
        let stderr = std::fs::File::create(dir.join("stderr.log")).map_err(io)?;
        let mut cmd = tokio::process::Command::new(&self.runner);
        cmd.arg("runner")
            .env_clear()
            .envs(spec.env.iter().filter_map(|kv| kv.split_once('=')))
            .env(DATA_DIR_ENV, &volume)
            .env(EXIT_FILE_ENV, dir.join("exit"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            // Its own process group: a Ctrl-C meant for the offloader must not reach jobs, which
            // outlive the service like containers do.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| BackendError::Start(e.to_string()))?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
        std::fs::write(dir.join("meta"), format!("{pid}\n{}\n", volume.display())).map_err(io)?;
        let (tx, rx) = watch::channel(None);
        let exit_path = dir.join("exit");
        tokio::spawn(async move {
            let code = match child.wait().await {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt as _;
                    status
                        .code()
                        .map(i64::from)
                        .or(status.signal().map(|s| 128 + i64::from(s)))
                        .unwrap_or(1)
                }
                Err(_) => 1,
            };
            let _ = std::fs::write(&exit_path, code.to_string());
            let _ = tx.send(Some(code));
        });
        self.lock().insert(
            id.clone(),
            Arc::new(ProcJob {
                dir,
                volume,
                pid,
                exit: rx,
            }),
        );
        Ok(id)
    }

    pub async fn wait(&self, id: &str, timeout: Duration) -> WaitOutcome {
        let Some(job) = self.job(id) else {
            return WaitOutcome::Gone;
        };
        let mut rx = job.exit.clone();
        match tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await {
            Err(_) => WaitOutcome::TimedOut,
            Ok(Ok(code)) => WaitOutcome::Exited(code.unwrap_or(1)),
            Ok(Err(_)) => WaitOutcome::Interrupted("exit watcher ended".into()),
        }
    }

    pub async fn stop(&self, id: &str, grace: Duration) -> Result<(), BackendError> {
        let job = self
            .job(id)
            .ok_or_else(|| BackendError::Stop(format!("no such job: {id}")))?;
        if job.exit.borrow().is_some() {
            return Ok(());
        }
        let _ = kill(Pid::from_raw(job.pid), Signal::SIGTERM);
        let mut rx = job.exit.clone();
        if tokio::time::timeout(grace, rx.wait_for(Option::is_some))
            .await
            .is_err()
        {
            let _ = kill(Pid::from_raw(job.pid), Signal::SIGKILL);
            let _ =
                tokio::time::timeout(Duration::from_secs(10), rx.wait_for(Option::is_some)).await;
        }
        Ok(())
    }

    pub async fn inspect(&self, id: &str) -> Result<Option<Observed>, BackendError> {
        Ok(self.job(id).map(|job| observe(id, &job)))
    }

    pub async fn logs(&self, id: &str) -> Result<Vec<u8>, BackendError> {
        let job = self
            .job(id)
            .ok_or_else(|| BackendError::Logs(format!("No such container: {id}")))?;
        tokio::fs::read(job.dir.join("stderr.log"))
            .await
            .map_err(|e| BackendError::Logs(e.to_string()))
    }

    pub async fn remove(&self, id: &str) -> Result<(), BackendError> {
        let job = self
            .job(id)
            .ok_or_else(|| BackendError::Inspect(format!("No such container: {id}")))?;
        if job.exit.borrow().is_none() {
            return Err(BackendError::Remove(format!(
                "You cannot remove a running container {id}"
            )));
        }
        self.lock().remove(id);
        std::fs::remove_dir_all(&job.volume)
            .map_err(|e| BackendError::RemoveVolume(e.to_string()))?;
        std::fs::remove_dir_all(&job.dir).map_err(|e| BackendError::Remove(e.to_string()))
    }

    pub async fn list(&self) -> Result<Vec<Observed>, BackendError> {
        let jobs: Vec<_> = self
            .lock()
            .iter()
            .map(|(id, j)| (id.clone(), j.clone()))
            .collect();
        Ok(jobs.iter().map(|(id, j)| observe(id, j)).collect())
    }
}

fn observe(id: &str, job: &ProcJob) -> Observed {
    let exit_code = *job.exit.borrow();
    let finished_at = exit_code
        .and_then(|_| std::fs::metadata(job.dir.join("exit")).ok())
        .and_then(|m| m.modified().ok())
        .or(exit_code.map(|_| SystemTime::now()));
    Observed {
        id: id.to_owned(),
        running: exit_code.is_none(),
        exit_code,
        finished_at,
        // A process job is spawned in one step: it cannot be stuck between create and start.
        stuck_since: None,
    }
}
