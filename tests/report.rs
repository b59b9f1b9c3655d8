//! The results directory: the committed synthetic fixture, the summary schema, write → read round
//! trips, partial runs, and `callsbench report`.

use std::path::{Path, PathBuf};

use callsbench::report::schema::validate;
use callsbench::report::synthetic::Synthetic;
use callsbench::report::{EndReason, RunResult};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results-small")
}

fn schema() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema/summary.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callsbench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The data files of a results directory (not the rendered report).
const DATA_FILES: [&str; 5] = [
    "manifest.json",
    "series.csv",
    "summary.json",
    "histograms.json",
    "intervals.hlog",
];

#[test]
fn committed_fixture_is_what_the_generator_makes() {
    let generated = Synthetic::small().generate();
    if std::env::var_os("CALLSBENCH_REGENERATE_FIXTURES").is_some() {
        generated.write(&fixture()).unwrap();
    }
    let dir = temp_dir("fixture-check");
    generated.write(&dir).unwrap();
    for name in DATA_FILES {
        let committed = std::fs::read(fixture().join(name)).unwrap();
        let fresh = std::fs::read(dir.join(name)).unwrap();
        assert!(
            committed == fresh,
            "{name} differs from the generator; regenerate with CALLSBENCH_REGENERATE_FIXTURES=1"
        );
    }
}

#[test]
fn fixture_summary_validates_against_the_committed_schema() {
    let text = std::fs::read_to_string(fixture().join("summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    let errors = validate(&schema(), &summary);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn schema_rejects_a_summary_that_breaks_it() {
    let text = std::fs::read_to_string(fixture().join("summary.json")).unwrap();
    let mut summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    summary["benchmark"]["cpu_avg_cores"] = serde_json::json!("lots");
    summary["qoe"]
        .as_object_mut()
        .unwrap()
        .remove("join_p99_us");
    summary["surprise"] = serde_json::json!(1);
    let errors = validate(&schema(), &summary);
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

#[test]
fn fixture_reads_back_with_realistic_figures() {
    let r = RunResult::read(&fixture()).unwrap();
    let s = &r.summary;
    assert!(r.manifest.synthetic && s.complete && s.passed, "{s:#?}");
    assert_eq!(r.series.len(), 51);
    // Steady window: 10 s ramp + 5 s settle, 30 s steady.
    assert_eq!(
        (s.steady.start_s, s.steady.end_s, s.steady.seconds),
        (15, 45, 30)
    );
    // 4 calls × 5 users, 2 unmuted: 4·2·4 = 32 forwarded audio streams, one sharer → 4 viewers.
    assert_eq!(
        (s.per_flow.forwarded_audio, s.per_flow.screen_viewers),
        (32, 4)
    );
    // 50 packets/s × (187 + 42) B × 8 = 91.6 kbps per forwarded audio stream on the wire.
    let kbps = s.per_flow.kbps_per_forwarded_audio.unwrap();
    assert!((kbps - 91.6).abs() < 0.01, "{kbps}");
    let mbps = s.per_flow.mbps_per_screen_viewer.unwrap();
    assert!((1.5..1.75).contains(&mbps), "{mbps}");
    assert_eq!(s.qoe.joins, 20);
    assert!(s.benchmark.cpu_avg_cores.unwrap() > 0.1);
    assert!(s.benchmark.memory_avg_bytes.unwrap() > 48_000_000);
    let text = callsbench::report::text::render(&r);
    assert!(
        text.contains("Benchmark row") && text.contains("PASSED"),
        "{text}"
    );
}

#[test]
fn write_then_read_keeps_every_figure() {
    let r = Synthetic::small().generate();
    let dir = temp_dir("round-trip");
    r.write(&dir).unwrap();
    let back = RunResult::read(&dir).unwrap();
    assert_eq!(back.summary, r.summary);
    assert_eq!(back.series, r.series);
    assert_eq!(back.counts, r.counts);
    assert_eq!(back.histograms, r.histograms);
    assert_eq!(back.intervals, r.intervals);
}

#[test]
fn an_interrupted_run_writes_everything_and_says_it_is_partial() {
    let mut spec = Synthetic::small();
    spec.stop_after_s = Some(20);
    let r = spec.generate();
    let dir = temp_dir("partial");
    r.write(&dir).unwrap();
    for name in DATA_FILES {
        assert!(dir.join(name).is_file(), "{name} missing");
    }
    let back = RunResult::read(&dir).unwrap();
    assert!(!back.summary.complete && !back.summary.passed);
    assert_eq!(back.summary.end_reason, EndReason::Interrupted);
    // The steady window was cut at the last recorded second.
    assert_eq!(
        (back.summary.steady.start_s, back.summary.steady.end_s),
        (15, 20)
    );
    assert_eq!(back.exit_code(), 2);
    let text = callsbench::report::text::render(&back);
    assert!(
        text.contains("PARTIAL (interrupted: stopped by Ctrl-C)"),
        "{text}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert!(validate(&schema(), &summary).is_empty());
}

#[test]
fn a_failed_threshold_fails_the_run() {
    let mut spec = Synthetic::small();
    spec.thresholds = vec!["latency.p50 <= 1ms".into(), "disconnects <= 0".into()];
    let r = spec.generate();
    let t = &r.summary.thresholds;
    assert!(!t[0].passed && t[1].passed, "{t:#?}");
    assert!(!r.summary.passed);
    assert_eq!(r.exit_code(), 1);
}

fn run_cli(args: &[&str]) -> u8 {
    use clap::Parser;
    let cli = callsbench::cli::Cli::try_parse_from(args).unwrap();
    let code = callsbench::cli::run(cli).unwrap();
    // ExitCode has no accessor; compare against the documented values.
    [0u8, 1, 2]
        .into_iter()
        .find(|c| std::process::ExitCode::from(*c) == code)
        .unwrap()
}

#[test]
fn report_command_renders_a_self_contained_html_with_plots() {
    let out = temp_dir("render");
    let code = run_cli(&[
        "callsbench",
        "report",
        fixture().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, 0);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let figures = [
        "cpu_memory",
        "bandwidth",
        "join_cdf",
        "latency_cdf",
        "track_quality",
    ];
    assert_eq!(html.matches("<svg").count(), figures.len());
    assert_eq!(
        html.matches("href=\"data:image/png;base64,").count(),
        figures.len()
    );
    for name in figures {
        assert!(html.contains(&format!("<figure id=\"{name}\">")), "{name}");
        let png = std::fs::read(out.join("plots").join(format!("{name}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}.png is not a PNG");
        assert!(out.join("plots").join(format!("{name}.svg")).is_file());
    }
    // Self-contained: no URL of any kind, no script.
    for needle in [
        "http://",
        "https://",
        "src=\"//",
        "href=\"//",
        "<script",
        "<link",
    ] {
        assert!(!html.contains(needle), "report.html contains {needle}");
    }
    // The plots carry real data: the CPU polyline has a point per second.
    assert!(html.contains("Target CPU") && html.contains("time since start (s)"));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| Calls | Users/call |"));
    assert!(md.contains("![cpu_memory](plots/cpu_memory.svg)"));
}

#[test]
fn run_supplied_text_is_escaped_in_html() {
    let mut r = Synthetic::small().generate();
    r.manifest.scenario.name = "<img src=x onerror=alert(1)>".into();
    r.manifest.end_detail = Some("a & b <script>".into());
    r.resummarise();
    let dir = temp_dir("escape");
    r.write(&dir).unwrap();
    callsbench::report::render::write_report(&r, &dir).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(!html.contains("<img src=x"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
}

#[test]
fn a_saturated_harness_marks_its_figures_and_fails_the_run() {
    let mut r = Synthetic::small().generate();
    for row in r
        .series
        .iter_mut()
        .filter(|row| (20..23).contains(&row.t_s))
    {
        row.saturation = "cpu|pacing".into();
    }
    // Saturation outside the steady window does not count against the figures averaged in it.
    r.series[2].saturation = "loop_lag".into();
    r.resummarise();
    let h = &r.summary.self_health;
    assert!(h.saturated);
    assert_eq!(h.saturated_seconds, 3);
    assert_eq!(h.reasons, ["cpu", "pacing"]);
    assert!(h.affected.contains(&"latency".to_owned()));
    assert!(!r.summary.passed);
    assert_eq!(r.exit_code(), 1);
    let text = callsbench::report::text::render(&r);
    assert!(text.contains("SATURATED (cpu, pacing)"), "{text}");
    assert!(text.contains(" ms *"), "latency figures are marked: {text}");
    let summary = serde_json::to_value(&r.summary).unwrap();
    assert!(validate(&schema(), &summary).is_empty());
}

#[test]
fn job_runs_get_job_figures_and_plots() {
    let mut spec = Synthetic::small();
    spec.jobs = 3;
    let r = spec.generate();
    let j = &r.summary.jobs;
    assert_eq!((j.started, j.completed, j.failed), (3, 3, 0));
    // Submit → running is drawn around 2.5 s ± 30 %.
    let p50 = j.start_p50_us.unwrap();
    assert!((1_700_000..=3_300_000).contains(&p50), "{p50}");
    assert_eq!(r.series.iter().map(|row| row.jobs_running).max(), Some(3));
    let dir = temp_dir("jobs");
    r.write(&dir).unwrap();
    callsbench::report::render::write_report(&r, &dir).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<figure id=\"jobs\">") && html.contains("Running jobs"));
    assert!(callsbench::report::text::render(&r).contains("\nJobs\n"));
    // Runs without jobs get no jobs plot.
    let plain = std::fs::read_to_string(fixture().join("summary.json")).unwrap();
    assert!(plain.contains("\"started\": 0"));
}

#[test]
fn series_rows_are_on_disk_as_soon_as_they_are_appended() {
    let r = Synthetic::small().generate();
    let dir = temp_dir("series-writer");
    let mut w = callsbench::report::SeriesWriter::create(&dir).unwrap();
    for row in &r.series[..5] {
        w.append(row).unwrap();
    }
    // Read back while the writer is still open, as after a crash.
    let mut reader = csv::Reader::from_path(dir.join("series.csv")).unwrap();
    let rows: Vec<callsbench::measure::Snapshot> =
        reader.deserialize().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows, r.series[..5]);
}
