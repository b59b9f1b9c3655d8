//! A job load (`callsbench run` of an `[offloader]` scenario) on the embedded reference offloader's
//! process backend writes the common results directory: `callsbench report` renders it, its
//! summary validates against the committed schema and carries the `job_load` section, and its
//! series adds up to the same job counts.

mod support;

use std::path::Path;
use std::process::Command;
use support::{callsref, root};

use callsbench::report::RunResult;
use callsbench::report::schema::validate;

fn callsbench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_callsbench"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run callsbench")
}

#[test]
fn process_backend_job_load_writes_a_results_directory_report_renders() {
    callsref();
    let tmp = std::env::temp_dir().join(format!("callsbench-jobload-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    // 8 jobs at 8/s that each run 1 s against a limit of 2: some must be rejected.
    let scenario = tmp.join("burst.toml");
    std::fs::write(
        &scenario,
        "[offloader]\nurl = \"embedded\"\nbackend = \"process\"\nmax_concurrent_jobs = 2\n\
         jobs = 8\nrate_per_sec = 8.0\nrunner_run_sec = 1.0\nauth_requests = 400\n",
    )
    .unwrap();
    let out = tmp.join("results");
    let run = callsbench(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("Job load") && stdout.contains("Create→running p99"));

    for f in [
        "manifest.json",
        "series.csv",
        "summary.json",
        "histograms.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("reports/schema/summary.schema.json")).unwrap(),
    )
    .unwrap();
    let errors = validate(&schema, &summary);
    assert!(errors.is_empty(), "{errors:#?}");

    let r = RunResult::read(&out).unwrap();
    let j = r.summary.job_load.clone().expect("job_load section");
    assert_eq!(j.requested, 8);
    assert_eq!(j.created + j.rejected_limit, 8, "{j:?}");
    assert!(j.created >= 2 && j.rejected_limit >= 1, "{j:?}");
    assert_eq!((j.errors, j.removed), (0, j.created), "{j:?}");
    assert_eq!(j.limit, Some(2));
    // The process backend has no containers to count.
    assert_eq!(j.max_containers_running, None);
    // The series adds up to the same counts, and never shows more than the limit running:
    // a job only counts as running until its record is removed, and the limit holds per job.
    let sum = |f: fn(&callsbench::measure::Snapshot) -> u64| r.series.iter().map(f).sum::<u64>();
    assert_eq!(sum(|row| row.jobs_created), j.created);
    assert_eq!(sum(|row| row.jobs_rejected), j.rejected_limit);
    assert_eq!(sum(|row| row.jobs_finished), j.removed);
    assert!(r.series.iter().any(|row| row.jobs_running > 0));
    // Latencies measured: a job starts within its create request, its record goes within 1 s of
    // the runner's exit (the process backend settles exits at once).
    let (create, running) = (j.create_p50_us.unwrap(), j.running_p50_us.unwrap());
    assert!(
        running <= create + 5_000,
        "running {running} create {create}"
    );
    assert!(j.removed_p99_us.unwrap() < 1_000_000, "{j:?}");
    // A bcrypt compare per request is the slow path the credential cache removes.
    let (cached, bearer, bcrypt) = (
        j.auth_basic_cached_rps.unwrap(),
        j.auth_bearer_rps.unwrap(),
        j.auth_basic_bcrypt_rps.unwrap(),
    );
    assert!(
        cached > 3.0 * bcrypt && bearer > 3.0 * bcrypt,
        "{cached} {bearer} {bcrypt}"
    );
    // The offloader's process was probed.
    assert!(r.series.iter().any(|row| row.server_rss_bytes.is_some()));

    let report = callsbench(&["report", out.to_str().unwrap(), "--quiet"]);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Job latency") && md.contains("plots/job_load.svg"));
    assert!(Path::new(&out.join("plots/job_load.svg")).is_file());
    let svg = std::fs::read_to_string(out.join("plots/job_load.svg")).unwrap();
    assert!(svg.contains("create request → running"));
    std::fs::remove_dir_all(&tmp).unwrap();
}
