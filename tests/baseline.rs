//! The committed regression baseline (`reports/baselines/smoke-2core`, a real `callsbench run
//! scenarios/smoke.toml`): it reads, it passes against itself, and the CI gate fails a copy of it
//! with the target's CPU raised by 20 %.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use callsbench::report::RunResult;
use clap::Parser;

fn baseline() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/baselines/smoke-2core")
}

fn compare(base: &Path, current: &Path, extra: &[&str]) -> ExitCode {
    let mut argv = vec![
        "callsbench".to_owned(),
        "compare".to_owned(),
        base.display().to_string(),
        current.display().to_string(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    callsbench::cli::run(callsbench::cli::Cli::try_parse_from(argv).unwrap()).unwrap()
}

#[test]
fn the_committed_baseline_is_a_trustworthy_real_run() {
    let r = RunResult::read(&baseline()).unwrap();
    assert!(!r.manifest.synthetic);
    assert!(r.summary.complete);
    assert!(!r.summary.self_health.saturated);
    assert!(r.summary.benchmark.cpu_avg_cores.unwrap() > 0.0);
    assert_eq!(r.manifest.scenario.name, "smoke");
}

#[test]
fn the_gate_passes_the_baseline_against_itself_and_fails_a_20_percent_cpu_regression() {
    let base = baseline();
    assert_eq!(compare(&base, &base, &[]), ExitCode::SUCCESS);
    let mut worse = RunResult::read(&base).unwrap();
    for row in &mut worse.series {
        row.server_cpu_cores = row.server_cpu_cores.map(|c| c * 1.2);
    }
    worse.resummarise();
    let dir =
        std::env::temp_dir().join(format!("callsbench-baseline-cpu120-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    worse.write(&dir).unwrap();
    assert_eq!(
        compare(&base, &dir, &["--max-regress", "cpu=10%"]),
        ExitCode::from(1)
    );
    assert_eq!(
        compare(&base, &dir, &["--max-regress", "cpu=25%"]),
        ExitCode::SUCCESS
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
