//! The job lifecycle in-process on the process backend (the real `callsref runner` binary as the
//! job, no Docker): atomic admission under a parallel burst, and the retention loop removing a
//! failed job and its record once the retention time has passed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use callsref::offloader::backend::process::ProcessBackend;
use callsref::offloader::backend::{Backend, JobSpec};
use callsref::offloader::jobs::{JobError, Jobs, Timing};
use callsref::offloader::store::Store;
use callsref::proto::offloader::{Config, Job};

fn jobs(limit: usize, retention: Duration) -> Arc<Jobs> {
    let dir = std::env::temp_dir().join(format!(
        "callsref-proc-{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let backend = ProcessBackend::open(
        PathBuf::from(env!("CARGO_BIN_EXE_callsref")),
        dir.join("jobs"),
    )
    .unwrap();
    let store = Store::open(&dir.join("db")).unwrap();
    let timing = Timing {
        stop_grace: Duration::from_secs(2),
        retention,
        retention_interval: Duration::from_millis(100),
    };
    Jobs::new(Backend::Process(backend), store, limit, timing)
}

fn job(env: &[&str]) -> (Job, JobSpec) {
    let body = br#"{"type":"recording","max_duration_sec":60,"runner":"callsbench/calls-recorder:v0.8.13"}"#;
    let cfg = Config::decode(body).unwrap();
    let spec = JobSpec {
        prefix: "calls-recorder",
        image: cfg.runner.clone(),
        env: env.iter().map(|s| s.to_string()).collect(),
    };
    (Job::new(cfg, "", 0), spec)
}

async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_creates_admit_exactly_the_limit() {
    let jobs = jobs(3, Duration::ZERO);
    jobs.start().await.unwrap();
    let creates = (0..50).map(|_| {
        let jobs = Arc::clone(&jobs);
        tokio::spawn(async move {
            let (record, spec) = job(&["RUNNER_RUN_MS=3000"]);
            jobs.create(record, spec).await
        })
    });
    let results: Vec<_> = futures_util::future::join_all(creates)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let accepted: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(
            r.to_string(),
            "failed to create recording job: max concurrent jobs reached"
        );
        assert!(matches!(r, JobError::Create(_)));
    }
    // The 50 creates finish long before the 3 s jobs end, so exactly the limit is admitted.
    assert_eq!(accepted.len(), 3);
    assert_eq!(jobs.backend().running_count().await.unwrap(), 3);
    let ids: Vec<String> = accepted.iter().map(|j| j.id.clone()).collect();
    let settled = eventually(Duration::from_secs(20), || {
        ids.iter().all(|id| jobs.get(id).is_err())
    })
    .await;
    assert!(settled, "successful jobs must be removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_a_failed_job_and_its_record() {
    let jobs = jobs(2, Duration::from_millis(500));
    jobs.start().await.unwrap();
    let (record, spec) = job(&[
        "RUNNER_EXIT_CODE=4",
        "RUNNER_FILES=out.mp4",
        "RECORDING_ID=ret",
    ]);
    let created = jobs.create(record, spec).await.unwrap();
    let id = created.id.clone();
    let stopped = eventually(Duration::from_secs(10), || {
        jobs.get(&id)
            .is_ok_and(|j| j.stop_at >= j.start_at && j.stop_at > 0)
    })
    .await;
    assert!(stopped, "failed job must be kept with stop_at");
    assert!(
        jobs.backend()
            .inspect(&id)
            .await
            .unwrap()
            .is_some_and(|o| o.exit_code == Some(4))
    );
    let removed = eventually(Duration::from_secs(10), || {
        matches!(jobs.get(&id), Err(JobError::NotFound(_)))
    })
    .await;
    assert!(removed, "retention must remove the record of a failed job");
    assert!(
        jobs.backend().inspect(&id).await.unwrap().is_none(),
        "retention must remove the job"
    );
}
