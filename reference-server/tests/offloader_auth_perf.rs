//! Authenticated request throughput of the reference offloader (process backend, no Docker
//! needed): Basic with the verified-credential cache, Bearer, and Basic with the cache disabled
//! (a bcrypt compare per request, as the Go service does). The figures are printed; the test
//! asserts the cache makes Basic at least 5x cheaper than bcrypt-per-request and that wrong keys
//! are still refused while the cache is warm.

mod offloader_support;

use std::time::Instant;

use offloader_support::*;
use serde_json::json;

async fn throughput(
    client: &reqwest::Client,
    url: &str,
    auth: &str,
    total: usize,
    concurrency: usize,
) -> f64 {
    let started = Instant::now();
    let per_worker = total / concurrency;
    let workers = (0..concurrency).map(|_| async move {
        for _ in 0..per_worker {
            let (status, _) = get(client, url, auth).await;
            // 404 proves authentication passed (the job does not exist).
            assert_eq!(status, 404);
        }
    });
    futures_util::future::join_all(workers).await;
    (per_worker * concurrency) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn basic_cached_vs_bearer_vs_bcrypt_per_request() {
    let dir = temp_dir("authperf");
    let cached = Offloader::spawn(&dir, &config(&dir, "process", 2, true));
    let dir2 = temp_dir("authperf-nocache");
    let uncached_cfg = config(&dir2, "process", 2, true)
        .replace("[store]", "security.credential_cache_seconds = 0\n[store]");
    let uncached = Offloader::spawn(&dir2, &uncached_cfg);
    let client = reqwest::Client::new();
    let auth = basic("perf", KEY);

    // Self-registration on first use, then a bearer token.
    for off in [&cached, &uncached] {
        let (status, _) = get(&client, &format!("{}/jobs/zzzzzzzzzzzz", off.url), &auth).await;
        assert_eq!(status, 404);
    }
    let (_, login) = post(
        &client,
        &format!("{}/login", cached.url),
        "",
        json!({"clientID": "perf", "authKey": KEY}).to_string(),
    )
    .await;
    let token: serde_json::Value = serde_json::from_str(&login).unwrap();
    let bearer = format!("Bearer {}", token["bearerToken"].as_str().unwrap());

    let probe = |off: &Offloader| format!("{}/jobs/zzzzzzzzzzzz", off.url);
    let basic_rps = throughput(&client, &probe(&cached), &auth, 800, 8).await;
    let bearer_rps = throughput(&client, &probe(&cached), &bearer, 800, 8).await;
    let bcrypt_rps = throughput(&client, &probe(&uncached), &auth, 48, 8).await;
    eprintln!(
        "authenticated GET /jobs/{{id}} (debug build, 8 concurrent): Basic cached {basic_rps:.0} req/s, Bearer {bearer_rps:.0} req/s, Basic bcrypt-per-request {bcrypt_rps:.1} req/s"
    );
    assert!(
        basic_rps > 5.0 * bcrypt_rps,
        "cache gives {basic_rps:.0} vs {bcrypt_rps:.1} req/s"
    );

    // A warm cache never admits a wrong key.
    let wrong = basic("perf", "ffffffffffffffffffffffffffffffff");
    let (status, body) = get(&client, &probe(&cached), &wrong).await;
    assert_eq!(
        (status, body.as_str()),
        (
            401,
            "{\"code\":\"401\",\"error\":\"authentication failed\"}\n"
        )
    );
}
