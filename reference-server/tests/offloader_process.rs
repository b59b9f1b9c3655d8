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
        created_grace: Duration::from_secs(60),
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

/// A restart on the process backend: the runtime holding the service goes away while jobs run
/// (their processes live on, as containers do), then a new service on the same store and job
/// directory settles the job that exited meanwhile and re-attaches to the one still running.
#[test]
fn restart_settles_exited_jobs_and_reattaches_running_ones() {
    let dir =
        std::env::temp_dir().join(format!("callsref-proc-restart-{:x}", rand::random::<u64>()));
    let open = |dir: &std::path::Path| {
        let backend = ProcessBackend::open(
            PathBuf::from(env!("CARGO_BIN_EXE_callsref")),
            dir.join("jobs"),
        )
        .unwrap();
        let store = Store::open(&dir.join("db")).unwrap();
        let timing = Timing {
            stop_grace: Duration::from_secs(2),
            retention: Duration::ZERO,
            retention_interval: Duration::from_secs(60),
            created_grace: Duration::from_secs(60),
        };
        Jobs::new(Backend::Process(backend), store, 4, timing)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (failed, long) = rt.block_on(async {
        let jobs = open(&dir);
        jobs.start().await.unwrap();
        let (r1, s1) = job(&["RUNNER_RUN_MS=1000", "RUNNER_EXIT_CODE=5"]);
        let (r2, s2) = job(&["RUNNER_RUN_MS=2500"]);
        // The short job is created last so that it exits after the service is gone.
        let long = jobs.create(r2, s2).await.unwrap().id;
        let failed = jobs.create(r1, s1).await.unwrap().id;
        (failed, long)
    });
    // The service disappears; its monitors with it. The jobs keep running.
    rt.shutdown_timeout(Duration::from_millis(100));
    let exit_file = dir.join("jobs").join(&failed).join("exit");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !exit_file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        exit_file.exists(),
        "the runner records its exit code while the service is down"
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let jobs = open(&dir);
        jobs.start().await.unwrap();
        // Settled (by its monitor before the restart or by reconciliation after it): kept, with stop_at.
        let j = jobs.get(&failed).unwrap();
        assert!(
            j.stop_at > 0,
            "job that failed while down must be settled: {j:?}"
        );
        // The long one is running and re-attached: its exit later removes it.
        assert_eq!(jobs.get(&long).unwrap().stop_at, 0);
        let removed = eventually(Duration::from_secs(15), || jobs.get(&long).is_err()).await;
        assert!(removed, "re-attached job must be settled when it exits");
    });
}
