//! The reference offloader on the real Docker engine: the atomic concurrency limit under a
//! parallel burst, crash recovery (SIGKILL, restart, reconciliation), and cleanup after many jobs.
//! Docker is required: these tests fail, with a message, when the engine is unreachable.

mod offloader_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use offloader_support::*;
use serde_json::json;

const LIMIT_ERROR: &str = "{\"code\":\"500\",\"error\":\"failed to create recording job: max concurrent jobs reached\"}\n";

async fn setup(tag: &str, limit: usize) -> (DockerTurn, Offloader) {
    let guard = docker_lock().await;
    require_docker();
    ensure_image();
    let dir = temp_dir(tag);
    let off = Offloader::spawn(&dir, &config(&dir, "docker", limit, false));
    (guard, off)
}

async fn register(client: &reqwest::Client, off: &Offloader, id: &str) {
    let body = json!({"clientID": id, "authKey": KEY}).to_string();
    let (status, text) = post(client, &format!("{}/register", off.url), &admin(), body).await;
    assert_eq!(status, 201, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn burst_of_200_creates_never_runs_more_than_the_limit() {
    let (_guard, off) = setup("burst", 4).await;
    let client = reqwest::Client::new();
    register(&client, &off, "burst").await;
    let auth = basic("burst", KEY);

    let sampling = Arc::new(AtomicBool::new(true));
    let peak = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(AtomicUsize::new(0));
    let over: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let sampler = {
        let (on, peak, samples, over) = (
            sampling.clone(),
            peak.clone(),
            samples.clone(),
            over.clone(),
        );
        std::thread::spawn(move || {
            while on.load(Ordering::Relaxed) {
                let ids = docker_out(&[
                    "ps",
                    "-q",
                    "--filter",
                    "label=app=mattermost-calls-offloader",
                ]);
                let n = ids.lines().count();
                if n > 4 {
                    over.lock().unwrap().push(ids.replace('\n', " "));
                }
                peak.fetch_max(n, Ordering::Relaxed);
                samples.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let url = format!("{}/jobs", off.url);
    let body = job_body(30, json!({"runner_run_ms": 3000}));
    let requests = (0..200).map(|_| post(&client, &url, &auth, body.clone()));
    let results = futures_util::future::join_all(requests).await;
    // Keep sampling while the admitted jobs run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();

    let accepted: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| job_id(b))
        .collect();
    let rejected: Vec<_> = results.iter().filter(|(s, _)| *s != 200).collect();
    // Jobs run 3 s and the burst may outlast them, so more than 4 can be admitted over time; what
    // must never happen is more than 4 running at once.
    assert!(!accepted.is_empty(), "nothing admitted");
    for (status, text) in &rejected {
        assert_eq!((*status, text.as_str()), (500, LIMIT_ERROR));
    }
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "burst: 200 creates, {} accepted, {} rejected, peak running {peak} over {} docker ps samples",
        accepted.len(),
        rejected.len(),
        samples.load(Ordering::Relaxed)
    );
    assert!(
        peak <= 4,
        "peak running labelled containers {peak} > 4: samples {:?}, this test's jobs {accepted:?}",
        over.lock().unwrap()
    );
    assert!(
        samples.load(Ordering::Relaxed) >= 3,
        "too few docker ps samples"
    );
    let done = eventually(Duration::from_secs(60), async || {
        let left = all_labelled();
        accepted.iter().all(|id| !left.contains(id))
    })
    .await;
    assert!(done, "containers left: {:?}", all_labelled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_and_restart_keeps_records_settles_and_reattaches() {
    let (_guard, mut off) = setup("restart", 4).await;
    let client = reqwest::Client::new();
    register(&client, &off, "crash").await;
    let auth = basic("crash", KEY);
    let url = format!("{}/jobs", off.url);
    let login = json!({"clientID": "crash", "authKey": KEY}).to_string();
    let (_, login_body) = post(&client, &format!("{}/login", off.url), "", login).await;
    let token: serde_json::Value = serde_json::from_str(&login_body).unwrap();
    let bearer = format!("Bearer {}", token["bearerToken"].as_str().unwrap());

    let create = async |input| {
        let (status, text) = post(&client, &url, &auth, job_body(120, input)).await;
        assert_eq!(status, 200, "{text}");
        job_id(&text)
    };
    let ok_early = create(json!({"runner_run_ms": 1500})).await;
    let failed_early = create(json!({"runner_run_ms": 1500, "runner_exit_code": 3})).await;
    // Runs until the test stops it (SIGTERM ends the runner with exit code 0), so how long the
    // crash and restart take on a busy machine cannot decide whether it is still running.
    let long = create(json!({"runner_run_ms": 120_000})).await;
    let failed_before = create(json!({"runner_exit_code": 2})).await;
    // The last one is settled by the live service before the crash.
    let settled = eventually(Duration::from_secs(20), async || {
        let (_, b) = get(&client, &format!("{url}/{failed_before}"), &auth).await;
        b.contains("stop_at")
    })
    .await;
    assert!(settled);
    off.kill9();

    // While the service is down, the two short jobs exit.
    let exited = eventually(Duration::from_secs(20), async || {
        [&ok_early, &failed_early]
            .iter()
            .all(|id| docker_out(&["inspect", "-f", "{{.State.Status}}", id]).trim() == "exited")
    })
    .await;
    assert!(exited, "short jobs did not exit");
    assert_eq!(
        docker_out(&["inspect", "-f", "{{.State.Status}}", &long]).trim(),
        "running"
    );

    let off = Offloader::spawn(
        &off.dir.clone(),
        &std::fs::read_to_string(off.dir.join("config.toml")).unwrap(),
    );
    let url = format!("{}/jobs", off.url);
    // Registered clients still authenticate; old bearer tokens don't.
    let (status, text) = get(&client, &format!("{url}/{failed_before}"), &auth).await;
    assert_eq!(status, 200, "stopped-failed record must survive: {text}");
    let (status, text) = get(&client, &format!("{url}/{failed_before}"), &bearer).await;
    assert_eq!(
        (status, text.as_str()),
        (
            401,
            "{\"code\":\"401\",\"error\":\"authentication failed: token is invalid\"}\n"
        )
    );
    // Reconciled at startup: success removed, failure kept with stop_at.
    let (status, _) = get(&client, &format!("{url}/{ok_early}"), &auth).await;
    assert_eq!(
        status, 404,
        "job that exited 0 while down must be settled and removed"
    );
    assert!(
        docker_out(&["ps", "-aq", "--filter", &format!("id={ok_early}")])
            .trim()
            .is_empty()
    );
    let (status, text) = get(&client, &format!("{url}/{failed_early}"), &auth).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("\"stop_at\":"),
        "job that failed while down must have stop_at: {text}"
    );
    // The long job is re-attached: running now, settled when it exits.
    let (status, text) = get(&client, &format!("{url}/{long}"), &auth).await;
    assert_eq!(status, 200);
    assert!(!text.contains("stop_at"), "still running: {text}");
    docker_out(&["stop", "--time", "10", &long]);
    let gone = eventually(Duration::from_secs(30), async || {
        get(&client, &format!("{url}/{long}"), &auth).await.0 == 404
    })
    .await;
    assert!(gone, "re-attached job was not settled after it exited");
    for id in [&failed_early, &failed_before] {
        let (status, _) = client
            .delete(format!("{url}/{id}"))
            .header("Authorization", &auth)
            .send()
            .await
            .map(|r| (r.status().as_u16(), ()))
            .unwrap();
        assert_eq!(status, 200);
    }
    let left = all_labelled();
    for id in [&ok_early, &failed_early, &long, &failed_before] {
        assert!(!left.contains(id), "container {id} left");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_successful_jobs_leave_no_container_or_volume() {
    let (_guard, off) = setup("fifty", 4).await;
    let volumes_before = job_volumes();
    let client = reqwest::Client::new();
    register(&client, &off, "fifty").await;
    let auth = basic("fifty", KEY);
    let url = format!("{}/jobs", off.url);
    let body = job_body(
        60,
        json!({"runner_run_ms": 200, "runner_files": "rec.mp4", "recording_id": "fifty"}),
    );
    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    while ids.len() < 50 {
        let started = Instant::now();
        let (status, text) = post(&client, &url, &auth, body.clone()).await;
        match status {
            200 => {
                latencies.push(started.elapsed());
                ids.push(job_id(&text));
            }
            500 if text == LIMIT_ERROR => tokio::time::sleep(Duration::from_millis(50)).await,
            _ => panic!("create failed: {status} {text}"),
        }
    }
    let all_gone = eventually(Duration::from_secs(90), async || {
        for id in &ids {
            if get(&client, &format!("{url}/{id}"), &auth).await.0 != 404 {
                return false;
            }
        }
        true
    })
    .await;
    assert!(all_gone, "some records remain");
    let clean = eventually(Duration::from_secs(10), async || {
        let left = all_labelled();
        ids.iter().all(|id| !left.contains(id))
    })
    .await;
    assert!(clean, "containers left: {:?}", all_labelled());
    let leaked: Vec<_> = job_volumes()
        .into_iter()
        .filter(|v| !volumes_before.contains(v))
        .collect();
    assert!(leaked.is_empty(), "volumes left: {leaked:?}");
    latencies.sort();
    eprintln!(
        "create (request -> container started) over {} jobs: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_stuck_in_created_is_swept_with_its_volume() {
    let _guard = docker_lock().await;
    require_docker();
    ensure_image();
    // What a crash between create and start leaves: a labelled job container that never ran, with
    // its /data volume.
    let volume = format!("calls-recorder-sweep{:x}", rand::random::<u64>());
    let id = docker_out(&[
        "create",
        "--label",
        "app=mattermost-calls-offloader",
        "--mount",
        &format!("type=volume,source={volume},target=/data"),
        &format!("{REGISTRY}/calls-recorder:v0.8.13"),
    ])
    .trim()
    .to_owned();
    assert!(!id.is_empty(), "docker create failed");
    let short: String = id.chars().take(12).collect();
    assert!(all_labelled().contains(&short));
    assert!(job_volumes().contains(&volume));

    let dir = temp_dir("sweep");
    let cfg = config(&dir, "docker", 4, false).replace(
        "stop_grace_seconds = 3\n",
        "stop_grace_seconds = 3\nretention_interval_seconds = 1\ncreated_grace_seconds = 5\n",
    );
    let _off = Offloader::spawn(&dir, &cfg);
    // Younger than the grace: still there after the first pass.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let early = all_labelled().contains(&short);
    let gone = eventually(Duration::from_secs(20), async || {
        !all_labelled().contains(&short) && !job_volumes().contains(&volume)
    })
    .await;
    if !gone {
        docker_out(&["rm", "-f", "-v", &id]);
        docker_out(&["volume", "rm", &volume]);
    }
    assert!(early, "swept before the grace elapsed");
    assert!(
        gone,
        "the never-started container or its volume is still there"
    );
}
