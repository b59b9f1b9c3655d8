//! `callsbench table`: the whole command with the run step replaced by a mock runner that writes
//! synthetic results (the real measurement pipeline with invented traffic, `report::synthetic`) for
//! exactly the scaled mix of each row's generated scenario.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use callsbench::report::synthetic::Synthetic;
use callsbench::scenario::Scenario;
use callsbench::table::runner::{RowRunner, RunStatus, RunnerError};
use callsbench::table::{TableArgs, reproduce_table};
use clap::Parser;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callsbench-table-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn args(extra: &[&str]) -> TableArgs {
    let mut argv = vec!["callsbench", "table"];
    argv.extend_from_slice(extra);
    match callsbench::cli::Cli::try_parse_from(argv).unwrap().command {
        callsbench::cli::Command::Table(a) => a,
        other => panic!("{other:?}"),
    }
}

/// Mock runner: reads the generated scenario and writes synthetic results for its mix.
struct MockRunner {
    /// Rows (scenario file stems) whose run fails with exit 2.
    fail_rows: Vec<String>,
}

impl RowRunner for MockRunner {
    fn run(&self, scenario: &Path, out: &Path, log: &Path) -> Result<RunStatus, RunnerError> {
        std::fs::write(log, "mock run\n").unwrap();
        let stem = scenario.file_stem().unwrap().to_string_lossy().into_owned();
        if self.fail_rows.contains(&stem) {
            return Err(RunnerError::Exit {
                code: "2".into(),
                log: log.display().to_string(),
            });
        }
        let sc = Scenario::load(scenario).map_err(|e| RunnerError::Other(e.to_string()))?;
        let g = &sc.groups()[0];
        let mut spec = Synthetic::small();
        spec.calls = g.count().get();
        spec.users_per_call = g.participants().get();
        spec.unmuted_per_call = g.unmuted();
        spec.screen_calls = g.screen_sharing();
        spec.ramp_s = 4;
        spec.settle_s = 1;
        spec.steady_s = 6;
        spec.leave_s = 1;
        spec.generate()
            .write(out)
            .map_err(|e| RunnerError::Other(e.to_string()))?;
        Ok(RunStatus::Passed)
    }
}

#[test]
fn c7i_rows_reproduced_with_a_mock_runner() {
    let out = temp_dir("c7i");
    let table = root().join("scenarios/tables/c7i.toml");
    let a = args(&[
        table.to_str().unwrap(),
        "--scale",
        "0.01",
        "--rows",
        "1,3,14",
        "--out",
        out.to_str().unwrap(),
        "--no-row-reports",
    ]);
    let runner = MockRunner {
        fail_rows: Vec::new(),
    };
    let mut lines = Vec::new();
    let run = reproduce_table(&a, &runner, &mut |l| lines.push(l)).unwrap();
    let rows = &run.reproduced.rows;
    assert_eq!(rows.iter().map(|r| r.row).collect::<Vec<_>>(), [1, 3, 14]);
    assert_eq!(lines.len(), 3, "{lines:?}");
    // Row 1: 1 × 1000 U2 at 1 % → one call of 10; row 14: 1000 × 2 → 10 calls of 2.
    assert_eq!(rows[0].scaled.mix.users_per_call(), 10);
    assert_eq!(rows[2].scaled.mix.calls(), 10);
    assert_eq!(rows[0].flows.forwarded_audio, 18);
    for r in rows {
        assert_eq!(r.status, "passed", "{r:?}");
        let m = r.measured.as_ref().unwrap();
        // The synthetic traffic is 187 B + 42 B headers × 50/s ≈ 91.6 kbps per audio stream.
        let k = m.per_flow.kbps_per_forwarded_audio.unwrap();
        assert!((k - 91.6).abs() < 0.5, "{k}");
        assert_eq!(m.host_cores, Some(2));
    }
    // Published per-flow: row 1 is 97.1 kbps, so the synthetic 91.6 is −5.7 %: outside ±5 %.
    let d = rows[0].differences.kbps_per_forwarded_audio_pct.unwrap();
    assert!((d - (91.6 - 97.1) / 97.1 * 100.0).abs() < 0.6, "{d}");
    // Row 3 (screen): the viewer rate is compared, the audio rate is not published.
    assert!(rows[1].differences.mbps_per_screen_viewer_pct.is_some());
    assert!(
        rows[1]
            .published
            .per_flow
            .kbps_per_forwarded_audio
            .is_none()
    );
    // The prediction is for the scaled mix: 18 forwarded streams × ≈97 kbps.
    let p = rows[0].predicted.bandwidth_out_bps;
    assert!((1.70e6..1.80e6).contains(&p), "{p}");
    let check = run.reproduced.bandwidth_check();
    assert_eq!(check.checked, 3);
    assert!(check.within < check.checked);
    assert_eq!(run.exit_code(), ExitCode::from(1));

    // Files: scenarios that load, the table in JSON and Markdown, the plot.
    for stem in ["row-01", "row-03", "row-14"] {
        Scenario::load(&out.join(format!("scenarios/{stem}.toml"))).unwrap();
        assert!(out.join(format!("rows/{stem}/summary.json")).exists());
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("table.json")).unwrap()).unwrap();
    assert_eq!(json["family"], "c7i");
    assert_eq!(json["scale"], 0.01);
    assert_eq!(json["rows"][2]["published"]["bandwidth_out"], "195Mbps");
    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(md.contains("callsbench table "), "{md}");
    assert!(md.contains("--scale 0.01"), "{md}");
    assert!(
        md.contains("| 14 | 1000×2 U2 | c7i.2xlarge | 78% |"),
        "{md}"
    );
    assert!(
        md.contains("within ±5% of the published figures: 1 of 3"),
        "{md}"
    );
    let svg = std::fs::read_to_string(out.join("per_flow.svg")).unwrap();
    assert!(svg.contains("<svg"));
    assert!(std::fs::metadata(out.join("per_flow.png")).unwrap().len() > 1000);

    // A second run into the same directory refuses to overwrite; --reuse reads the rows instead.
    let err = reproduce_table(&a, &runner, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("already holds results"), "{err}");
    let mut again = a.clone();
    again.reuse = true;
    let failing = MockRunner {
        fail_rows: vec!["row-01".into(), "row-03".into(), "row-14".into()],
    };
    let reused = reproduce_table(&again, &failing, &mut |_| {}).unwrap();
    assert_eq!(reused.reproduced.rows, run.reproduced.rows);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_failed_row_is_recorded_and_the_rest_still_run_mock() {
    let out = temp_dir("fail");
    let table = root().join("scenarios/tables/c6i.toml");
    let a = args(&[
        table.to_str().unwrap(),
        "--scale",
        "0.02",
        "--rows",
        "1-2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let runner = MockRunner {
        fail_rows: vec!["row-01".into()],
    };
    let run = reproduce_table(&a, &runner, &mut |_| {}).unwrap();
    let rows = &run.reproduced.rows;
    assert_eq!(rows[0].status, "error");
    assert!(rows[0].measured.is_none());
    assert!(
        rows[0].detail.as_deref().unwrap().contains("exited with 2"),
        "{:?}",
        rows[0].detail
    );
    assert_eq!(rows[1].status, "passed");
    // Row reports were rendered for the row that ran.
    assert!(out.join("rows/row-02/report.html").exists());
    assert_eq!(run.exit_code(), ExitCode::from(1));
    // c6i media: the 89 kbps speech.
    let sc = std::fs::read_to_string(out.join("scenarios/row-02.toml")).unwrap();
    assert!(sc.contains("speech = [\"speech-89.ogg\"]"), "{sc}");
    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(md.contains("## Rows with problems"), "{md}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_input_fails_before_anything_runs() {
    let out = temp_dir("bad");
    let table = root().join("scenarios/tables/c7i.toml");
    let runner = MockRunner {
        fail_rows: Vec::new(),
    };
    for (extra, expect) in [
        (vec!["--scale", "0"], "--scale must be above 0"),
        (vec!["--rows", "25"], "row 25 is not in the table"),
        (vec!["--tolerance", "0"], "--tolerance must be"),
    ] {
        let mut argv = vec![table.to_str().unwrap(), "--out", out.to_str().unwrap()];
        argv.extend(extra);
        let err = reproduce_table(&args(&argv), &runner, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains(expect), "{err}");
        assert!(
            !out.join("rows").exists() || std::fs::read_dir(out.join("rows")).unwrap().count() == 0
        );
    }
    let missing = reproduce_table(
        &args(&["/nonexistent/c7i.toml", "--out", out.to_str().unwrap()]),
        &runner,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/c7i.toml"),
        "{missing}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn dry_run_writes_scenarios_only() {
    let out = temp_dir("dry");
    let table = root().join("scenarios/tables/c7i.toml");
    let a = args(&[
        table.to_str().unwrap(),
        "--scale",
        "0.02",
        "--out",
        out.to_str().unwrap(),
        "--dry-run",
    ]);
    let runner = MockRunner {
        fail_rows: Vec::new(),
    };
    let run = reproduce_table(&a, &runner, &mut |_| {}).unwrap();
    assert_eq!(run.scenarios.len(), 19);
    assert!(run.reproduced.rows.is_empty());
    assert!(!out.join("table.json").exists());
    assert_eq!(std::fs::read_dir(out.join("rows")).unwrap().count(), 0);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn rows_with_more_than_one_percent_loss_are_flagged() {
    let mut r = Synthetic::small().generate();
    assert!(
        callsbench::table::loss_note(&r).is_none(),
        "{:?}",
        r.summary.qoe.loss
    );
    let expected: u64 = r
        .counts
        .iter()
        .filter(|(k, _)| k.starts_with("media.expected."))
        .map(|(_, v)| *v)
        .sum();
    r.counts.insert("media.lost.audio".into(), expected / 20);
    r.counts.insert("host.udp_rcvbuf_errors".into(), 4461);
    r.resummarise();
    let note = callsbench::table::loss_note(&r).unwrap();
    assert!(
        note.contains("4461 host UDP receive-buffer drops"),
        "{note}"
    );
    assert!(
        note.starts_with("5.") || note.starts_with("4.") || note.starts_with("6."),
        "{note}"
    );
}
