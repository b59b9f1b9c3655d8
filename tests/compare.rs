//! `callsbench compare`: planted regressions are caught, a run against itself passes, and the
//! direction of each figure is respected.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use callsbench::report::compare::{Limits, compare};
use callsbench::report::synthetic::Synthetic;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callsbench-cmp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results-small")
}

fn run_cli(args: &[&str]) -> ExitCode {
    use clap::Parser;
    callsbench::cli::run(callsbench::cli::Cli::try_parse_from(args).unwrap()).unwrap()
}

fn with_cpu_scale(scale: f64, name: &str) -> PathBuf {
    let mut spec = Synthetic::small();
    spec.cpu_scale = scale;
    let dir = temp_dir(name);
    spec.generate().write(&dir).unwrap();
    dir
}

#[test]
fn a_planted_20_percent_cpu_regression_exits_1() {
    let current = with_cpu_scale(1.2, "cpu120");
    let f = fixture();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "callsbench",
            "compare",
            f.to_str().unwrap(),
            current.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let code = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        run_cli(&refs)
    };
    assert_eq!(
        code(args(&["--max-regress", "cpu=10%,join_p99=20%"])),
        ExitCode::from(1)
    );
    // The default limits (cpu 10 %) catch it too; a 25 % allowance does not.
    assert_eq!(code(args(&[])), ExitCode::from(1));
    assert_eq!(code(args(&["--max-regress", "cpu=25%"])), ExitCode::SUCCESS);
}

#[test]
fn a_run_against_itself_exits_0() {
    let f = fixture();
    let f = f.to_str().unwrap();
    assert_eq!(run_cli(&["callsbench", "compare", f, f]), ExitCode::SUCCESS);
    assert_eq!(
        run_cli(&[
            "callsbench",
            "compare",
            f,
            f,
            "--max-regress",
            "cpu=0%,latency_p99=0%"
        ]),
        ExitCode::SUCCESS
    );
}

#[test]
fn the_diff_reports_the_planted_change_exactly() {
    let base = Synthetic::small().generate();
    let mut spec = Synthetic::small();
    spec.cpu_scale = 1.2;
    let cur = spec.generate();
    let c = compare(&base.summary, &cur.summary, &Limits::defaults());
    let cpu = c.rows.iter().find(|r| r.name == "cpu").unwrap();
    assert!((cpu.change.unwrap() - 0.20).abs() < 1e-9, "{cpu:?}");
    assert!(cpu.regressed);
    // Nothing else moved: same seed, same traffic.
    let others: Vec<_> = c
        .rows
        .iter()
        .filter(|r| r.regressed && r.name != "cpu" && r.name != "cpu_percent")
        .collect();
    assert!(others.is_empty(), "{others:?}");
    let text = c.to_string();
    assert!(
        text.contains("+20.0%") && text.contains("REGRESSION: cpu"),
        "{text}"
    );
}

#[test]
fn lower_cpu_is_an_improvement_not_a_regression() {
    let base = Synthetic::small().generate();
    let mut spec = Synthetic::small();
    spec.cpu_scale = 0.7;
    let cur = spec.generate();
    let limits: Limits = "cpu=0%".parse().unwrap();
    assert!(!compare(&base.summary, &cur.summary, &limits).regressed());
}

#[test]
fn bandwidth_is_neutral_unless_a_limit_is_asked_for() {
    let base = Synthetic::small().generate();
    let mut more = base.summary.clone();
    more.benchmark.bandwidth_out_bps = more.benchmark.bandwidth_out_bps.map(|b| b * 1.5);
    assert!(!compare(&base.summary, &more, &Limits::defaults()).regressed());
    let asked: Limits = "bw_out=10%".parse().unwrap();
    assert!(compare(&base.summary, &more, &asked).regressed());
}

#[test]
fn a_failure_where_there_was_none_is_a_regression() {
    let base = Synthetic::small().generate();
    let mut worse = base.summary.clone();
    worse.qoe.join_failures = 1;
    let c = compare(&base.summary, &worse, &Limits::defaults());
    assert!(c.regressed());
    assert!(c.to_string().contains("new"));
}

#[test]
fn an_unknown_figure_is_a_usage_error() {
    use clap::Parser;
    let f = fixture();
    let f = f.to_str().unwrap();
    let err = callsbench::cli::Cli::try_parse_from([
        "callsbench",
        "compare",
        f,
        f,
        "--max-regress",
        "cpu_avg=1%",
    ])
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown figure \"cpu_avg\""),
        "{err}"
    );
    assert_eq!(err.exit_code(), 2);
}
