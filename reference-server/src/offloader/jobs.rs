//! The job lifecycle over a backend (offloader.md §2.3–2.9): the atomic concurrency limit, create,
//! the monitor (max duration → SIGTERM → kill after the grace), settling (exit 0 removes container,
//! volumes and record; non-zero keeps them with stop_at), DELETE, logs, init, the retention loop
//! and restart reconciliation.
//!
//! Differences from the Go service, all invisible on the wire except where the Go behaviour is a
//! documented defect: the limit is checked and reserved under one lock (no overshoot); the record
//! is saved before the monitor starts (no job stuck "running" after a fast exit); DELETE and
//! retention also drop the record; a transient wait error re-attaches instead of stopping the job;
//! and at startup running jobs are re-attached and jobs that exited while the service was down are
//! settled from their exit codes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::backend::{Backend, BackendError, JobSpec, WaitOutcome};
use super::store::{Store, StoreError};
use crate::proto::offloader::Job as JobRecord;

/// Errors of job operations; the HTTP layer maps each to the Go status and text.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// 500 "failed to create recording job: <err>".
    #[error("failed to create recording job: {0}")]
    Create(BackendError),
    /// 500 "failed to save job: <err>".
    #[error("failed to save job: failed to save to store: {0}")]
    Save(StoreError),
    /// 404 "failed to get job failed to get job: <err>".
    #[error("failed to get job failed to get job: {0}")]
    NotFound(StoreError),
    /// 400 "job is running".
    #[error("job is running")]
    Running,
    /// 500 "failed to delete recording job: <err>".
    #[error("failed to delete recording job: {0}")]
    Delete(BackendError),
    /// 403 "failed to get recording job logs: <err>".
    #[error("failed to get recording job logs: {0}")]
    Logs(BackendError),
    /// 500 "failed to update job runner: <err>".
    #[error("failed to update job runner: {0}")]
    Init(BackendError),
    /// The stored record is unreadable.
    #[error("failed to get job failed to unmarshal: {0}")]
    Corrupt(String),
}

/// Timing knobs (Go constants, configurable here so tests don't wait minutes).
#[derive(Debug, Clone)]
pub struct Timing {
    pub stop_grace: Duration,
    /// Zero disables the retention loop.
    pub retention: Duration,
    pub retention_interval: Duration,
    /// Never-started job containers older than this are swept (every `retention_interval`).
    pub created_grace: Duration,
}

/// The job service; share it as `Arc<Jobs>`.
#[derive(Debug)]
pub struct Jobs {
    backend: Backend,
    store: Store,
    limit: usize,
    timing: Timing,
    /// Serialises "count running + reserve" so parallel creates cannot overshoot the limit.
    admit: tokio::sync::Mutex<()>,
    /// Creates admitted but whose job may not show as running yet.
    pending: AtomicUsize,
    monitored: Mutex<HashSet<String>>,
}

/// Milliseconds since the Unix epoch, as Go's `time.Now().UnixMilli()`.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Releases an admission reservation on every path out of `create`.
struct Reservation<'a>(&'a AtomicUsize);

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Jobs {
    pub fn new(backend: Backend, store: Store, limit: usize, timing: Timing) -> Arc<Self> {
        Arc::new(Jobs {
            backend,
            store,
            limit,
            timing,
            admit: tokio::sync::Mutex::new(()),
            pending: AtomicUsize::new(0),
            monitored: Mutex::new(HashSet::new()),
        })
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Reconciles the store with the backend, then starts the housekeeping loop: the sweep of
    /// never-started containers always, the retention pass when configured.
    pub async fn start(self: &Arc<Self>) -> Result<(), StoreError> {
        self.reconcile().await?;
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.timing.retention_interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                this.sweep_created().await;
                if !this.timing.retention.is_zero() {
                    this.retention_pass().await;
                }
            }
        });
        Ok(())
    }

    /// Removes job containers (and their volumes) that were created but never started and are
    /// older than the grace, when no job record names them: what a crash between create and
    /// start leaves behind, which the Go service's retention (exited containers only) never
    /// cleans. The grace spares a create in flight, here or in another offloader on the same
    /// engine.
    pub async fn sweep_created(&self) {
        let Ok(list) = self.backend.list().await else {
            return;
        };
        let now = SystemTime::now();
        for o in list {
            let Some(created) = o.stuck_since else {
                continue;
            };
            if now.duration_since(created).unwrap_or_default() <= self.timing.created_grace
                || self.get(&o.id).is_ok()
            {
                continue;
            }
            tracing::info!(job = o.id, "removing a job container that never started");
            if let Err(e) = self.backend.remove(&o.id).await {
                tracing::error!(job = o.id, error = %e, "failed to remove a never-started job");
            }
        }
    }

    async fn admit(&self) -> Result<Reservation<'_>, BackendError> {
        let _guard = self.admit.lock().await;
        // Read the reservations BEFORE asking the backend: a reservation is released only after its
        // job runs, so a job that leaves `pending` while the list is in flight is in the list. The
        // other order undercounts (list taken, then the job starts and releases, then `pending` is
        // read) and overshoots the limit under a burst.
        let pending = self.pending.load(Ordering::SeqCst);
        let running = self.backend.running_count().await?;
        if running + pending >= self.limit {
            return Err(BackendError::LimitReached);
        }
        self.pending.fetch_add(1, Ordering::SeqCst);
        Ok(Reservation(&self.pending))
    }

    /// Creates a job: admit, make sure the image is there, create and start, save, then monitor.
    pub async fn create(
        self: &Arc<Self>,
        mut record: JobRecord,
        spec: JobSpec,
    ) -> Result<JobRecord, JobError> {
        let reservation = self.admit().await.map_err(JobError::Create)?;
        self.backend
            .ensure_image(&spec.image)
            .await
            .map_err(|e| JobError::Create(BackendError::UpdateRunner(e.to_string())))?;
        let id = self.backend.create(&spec).await.map_err(JobError::Create)?;
        record.id = id.clone();
        record.start_at = now_ms();
        // The job now counts as running in the backend; the reservation can go.
        drop(reservation);
        if let Err(e) = self.save(&record) {
            // Don't leave an untracked job running (the Go service does).
            let _ = self.backend.stop(&id, Duration::ZERO).await;
            let _ = self.backend.remove(&id).await;
            return Err(JobError::Save(e));
        }
        self.monitor(record.clone());
        Ok(record)
    }

    fn save(&self, record: &JobRecord) -> Result<(), StoreError> {
        self.store
            .put_job(&record.id, record.to_go_json().as_bytes())
    }

    /// The stored record.
    pub fn get(&self, id: &str) -> Result<JobRecord, JobError> {
        let bytes = self.store.job(id).map_err(JobError::NotFound)?;
        JobRecord::decode(&bytes).map_err(|e| JobError::Corrupt(e.to_string()))
    }

    /// DELETE: only stopped jobs; removes container, volumes and the record.
    pub async fn delete(&self, id: &str) -> Result<(), JobError> {
        let record = self.get(id)?;
        if record.stop_at == 0 {
            return Err(JobError::Running);
        }
        match self.backend.remove(id).await {
            Ok(()) => {}
            // Already gone (e.g. removed by retention): the record is all that's left.
            Err(BackendError::Inspect(msg)) if msg.contains("No such container") => {}
            Err(e) => return Err(JobError::Delete(e)),
        }
        self.store.delete_job(id).map_err(JobError::NotFound)
    }

    /// The job's stderr, looked up in the backend only (no store lookup, like Go).
    pub async fn logs(&self, id: &str) -> Result<Vec<u8>, JobError> {
        self.backend.logs(id).await.map_err(JobError::Logs)
    }

    /// `/jobs/init`: make every runner image present, concurrently; the first error wins.
    pub async fn init(&self, runners: &[String]) -> Result<(), JobError> {
        let pulls = runners.iter().map(|r| self.backend.ensure_image(r));
        for result in futures_util::future::join_all(pulls).await {
            result.map_err(JobError::Init)?;
        }
        Ok(())
    }

    fn monitor(self: &Arc<Self>, record: JobRecord) {
        {
            let mut set = self.monitored.lock().unwrap_or_else(|p| p.into_inner());
            if !set.insert(record.id.clone()) {
                return;
            }
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let code = this.watch(&record).await;
            this.settle(&record.id, code).await;
            this.monitored
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&record.id);
        });
    }

    /// Waits for the job to end, enforcing its max duration; returns the exit code if known.
    async fn watch(&self, record: &JobRecord) -> Option<i64> {
        let deadline_ms = record
            .start_at
            .saturating_add(record.config.max_duration_sec.saturating_mul(1000));
        loop {
            let remaining =
                Duration::from_millis(u64::try_from(deadline_ms - now_ms()).unwrap_or(0));
            match self.backend.wait(&record.id, remaining).await {
                WaitOutcome::Exited(code) => return Some(code),
                WaitOutcome::Gone => return None,
                WaitOutcome::TimedOut => {
                    tracing::warn!(job = record.id, "max duration reached, stopping job");
                    if let Err(e) = self.backend.stop(&record.id, self.timing.stop_grace).await {
                        tracing::error!(job = record.id, error = %e, "failed to stop job");
                    }
                    return match self.backend.inspect(&record.id).await {
                        Ok(Some(o)) if !o.running => o.exit_code,
                        _ => None,
                    };
                }
                WaitOutcome::Interrupted(err) => {
                    // A dropped connection or daemon restart is not a timeout: look, then re-attach.
                    tracing::warn!(
                        job = record.id,
                        error = err,
                        "wait interrupted, re-attaching"
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    match self.backend.inspect(&record.id).await {
                        Ok(Some(o)) if !o.running && o.exit_code.is_some() => return o.exit_code,
                        Ok(None) => return None,
                        _ => continue,
                    }
                }
            }
        }
    }

    /// The stop callback: stop_at, then on success remove everything.
    async fn settle(&self, id: &str, code: Option<i64>) {
        tracing::info!(job = id, exit_code = ?code, "job stopped");
        let mut record = match self.get(id) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(job = id, error = %e, "job record missing at stop");
                return;
            }
        };
        if record.stop_at == 0 {
            record.stop_at = now_ms();
            if let Err(e) = self.save(&record) {
                tracing::error!(job = id, error = %e, "failed to save stopped job");
            }
        }
        if code == Some(0) {
            if let Err(e) = self.backend.remove(id).await {
                tracing::error!(job = id, error = %e, "failed to remove finished job");
                return;
            }
            if let Err(e) = self.store.delete_job(id) {
                tracing::error!(job = id, error = %e, "failed to delete job record");
            }
        }
    }

    /// Startup: re-attach monitors to running jobs, settle those that exited while we were down.
    async fn reconcile(self: &Arc<Self>) -> Result<(), StoreError> {
        let observed = match self.backend.list().await {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(error = %e, "reconciliation skipped: cannot list jobs");
                return Ok(());
            }
        };
        for (id, bytes) in self.store.jobs()? {
            let Ok(record) = JobRecord::decode(&bytes) else {
                continue;
            };
            if record.stop_at != 0 {
                continue;
            }
            match observed.iter().find(|o| o.id == id) {
                Some(o) if o.running => {
                    tracing::info!(job = id, "re-attaching to running job");
                    self.monitor(record);
                }
                Some(o) => {
                    tracing::info!(job = id, exit_code = ?o.exit_code, "settling job that exited while down");
                    self.settle(&id, o.exit_code).await;
                }
                None => self.settle(&id, None).await,
            }
        }
        Ok(())
    }

    /// One retention pass: remove exited jobs older than the retention time, and their records.
    pub async fn retention_pass(&self) {
        let Ok(list) = self.backend.list().await else {
            return;
        };
        let now = SystemTime::now();
        for o in list
            .into_iter()
            .filter(|o| !o.running && o.exit_code.is_some())
        {
            let Some(finished) = o.finished_at else {
                continue;
            };
            if now.duration_since(finished).unwrap_or_default() <= self.timing.retention {
                continue;
            }
            tracing::info!(
                job = o.id,
                "retention time has elapsed since the job finished, deleting"
            );
            if let Err(e) = self.backend.remove(&o.id).await {
                tracing::error!(job = o.id, error = %e, "failed to delete job");
                continue;
            }
            if let Ok(record) = self.get(&o.id)
                && record.stop_at != 0
            {
                let _ = self.store.delete_job(&o.id);
            }
        }
    }
}
