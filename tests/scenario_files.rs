//! The shipped scenario files parse, say what their names and comments claim, and the `check`
//! command validates them (exit 0) and rejects bad files (exit 2).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use callsbench::cli::{Cli, run};
use callsbench::scenario::{MediaCheck, Plan, PlanConfig, Scenario, Summary};
use clap::Parser;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `*.toml` under `scenarios/` except the media manifest and the published-table data.
fn shipped() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["scenarios", "scenarios/c6i"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Removes `.` and `dir/..` components without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn load(path: &Path, media: MediaCheck) -> Scenario {
    let text = std::fs::read_to_string(path).unwrap();
    Scenario::from_toml(&text, path, media).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_shipped_scenario_parses() {
    let files = shipped();
    let c6i = files
        .iter()
        .filter(|f| f.parent().unwrap().ends_with("c6i"))
        .count();
    assert_eq!(c6i, 10, "one file per c6i row: {files:?}");
    for name in ["smoke.toml", "ci.toml"] {
        assert!(
            files.contains(&repo().join("scenarios").join(name)),
            "{name} missing"
        );
    }
    for path in &files {
        let scenario = load(path, MediaCheck::Skip);
        let plan = Plan::expand(&scenario, &PlanConfig::default());
        assert_eq!(plan.session_count() as u64, scenario.session_count());
        // Media resolve into the committed samples folder.
        let media_dir = repo().join("scenarios/media");
        for file in scenario.media().speech() {
            assert_eq!(
                normalize(file.parent().unwrap()),
                media_dir,
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn shipped_scenarios_find_their_media() {
    // The samples are committed: every file a shipped scenario names must exist.
    for path in shipped() {
        Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn smoke_is_small_and_under_a_minute() {
    let scenario = load(&repo().join("scenarios/smoke.toml"), MediaCheck::Skip);
    let plan = Plan::expand(&scenario, &PlanConfig::default());
    assert!(
        plan.phases().end < Duration::from_secs(60),
        "{:?}",
        plan.phases()
    );
    let summary = Summary::of(&plan);
    assert_eq!((summary.calls, summary.sessions), (2, 8));
    assert_eq!(
        (summary.speakers, summary.screen_sharers, summary.cameras),
        (4, 1, 1)
    );
    assert!(!plan.thresholds().is_empty());
}

#[test]
fn c6i_files_match_their_published_rows() {
    // (file stem, calls, users per call, unmuted, screen calls, published bandwidth)
    let rows = [
        ("100x8-u2-xlarge", 100, 8, 2, 0, "22Mbps / 125Mbps"),
        ("100x8-u2-2xlarge", 100, 8, 2, 0, "22Mbps / 125Mbps"),
        (
            "100x8-u2-screen-2xlarge",
            100,
            8,
            2,
            100,
            "280Mbps / 2.2Gbps",
        ),
        ("10x50-u2-xlarge", 10, 50, 2, 0, "5.25Mbps / 86Mbps"),
        ("10x50-u2-2xlarge", 10, 50, 2, 0, "5.25Mbps / 86Mbps"),
        ("10x50-u2-screen-xlarge", 10, 50, 2, 10, "32Mbps / 1.33Gbps"),
        (
            "10x50-u2-screen-2xlarge",
            10,
            50,
            2,
            10,
            "32Mbps / 1.33Gbps",
        ),
        ("5x200-u2-xlarge", 5, 200, 2, 0, "8.2Mbps / 180Mbps"),
        ("5x200-u2-2xlarge", 5, 200, 2, 0, "8.2Mbps / 180Mbps"),
        ("5x200-u2-screen-2xlarge", 5, 200, 2, 5, "31Mbps / 2.2Gbps"),
    ];
    for (stem, calls, users, unmuted, screen, bandwidth) in rows {
        let path = repo().join(format!("scenarios/c6i/{stem}.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(bandwidth),
            "{stem}: published figures missing"
        );
        let scenario = load(&path, MediaCheck::Skip);
        let summary = Summary::of(&Plan::expand(&scenario, &PlanConfig::default()));
        assert_eq!(summary.calls, calls, "{stem}");
        assert_eq!(summary.sessions, calls * users, "{stem}");
        assert_eq!(summary.speakers, calls * unmuted, "{stem}");
        assert_eq!(summary.screen_sharers, screen, "{stem}");
        // The per-flow counts of calls-loadtest.md §2.5: F = C·U·(N−1), V = C_s·(N−1).
        assert_eq!(
            summary.forwarded_audio as usize,
            calls * unmuted * (users - 1),
            "{stem}"
        );
        assert_eq!(
            summary.screen_viewers as usize,
            screen * (users - 1),
            "{stem}"
        );
        assert!(scenario.media().speech()[0].ends_with("speech-89.ogg"));
    }
}

fn check(args: &[&str]) -> ExitCode {
    let mut argv = vec!["callsbench", "check"];
    argv.extend_from_slice(args);
    run(Cli::try_parse_from(argv).unwrap()).unwrap()
}

#[test]
fn check_accepts_good_files_and_exits_2_on_bad_ones() {
    let dir = std::env::temp_dir().join(format!("callsbench-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, "[[calls]]\ncount = 3\nparticipants = 700\n").unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[calls]]\nparticipants = 0\n").unwrap();
    let plan_file = dir.join("plan.json");

    let ok = check(&[
        good.to_str().unwrap(),
        "--print-plan",
        "--shard",
        "2/2",
        "--max-call-size",
        "500",
        "--start-at",
        "2026-11-22T12:00:00Z",
        "--write-plan",
        plan_file.to_str().unwrap(),
    ]);
    assert_eq!(ok, ExitCode::SUCCESS);
    // The written shard holds its half of the 2100 sessions (700-calls are split at 500).
    let json = std::fs::read_to_string(&plan_file).unwrap();
    assert_eq!(json.matches("\"rng_seed\"").count(), 1050);
    assert!(json.contains("\"secs_since_epoch\":1795348800"));

    assert_eq!(check(&[bad.to_str().unwrap()]), ExitCode::from(2));
    assert_eq!(
        check(&[good.to_str().unwrap(), bad.to_str().unwrap()]),
        ExitCode::from(2)
    );
    assert_eq!(
        check(&[dir.join("missing.toml").to_str().unwrap()]),
        ExitCode::from(2)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_rejects_bad_shard_and_start_time_arguments() {
    for args in [
        ["x.toml", "--shard", "3/2"],
        ["x.toml", "--shard", "0/2"],
        ["x.toml", "--start-at", "noon"],
    ] {
        let mut argv = vec!["callsbench", "check"];
        argv.extend_from_slice(&args);
        let err = Cli::try_parse_from(argv).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{args:?}");
    }
}

#[test]
fn c6i_scenarios_cover_every_row_of_the_published_table_data() {
    // scenarios/tables/c6i.toml is the published table as data (kept by `plan`); each of its rows
    // must have a scenario here with the same load and its figures quoted in the header comment.
    let table: toml::Table = std::fs::read_to_string(repo().join("scenarios/tables/c6i.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let rows = table["row"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    let mut matched = std::collections::BTreeSet::new();
    for row in rows {
        let int = |k: &str| row[k].as_integer().unwrap() as usize;
        let text = |k: &str| row[k].as_str().unwrap().to_owned();
        let (calls, users, unmuted) =
            (int("calls"), int("users_per_call"), int("unmuted_per_call"));
        let screen = text("screen_sharing") == "yes";
        let size = text("instance").trim_start_matches("c6i.").to_owned();
        let stem = format!(
            "{calls}x{users}-u{unmuted}{}-{size}",
            if screen { "-screen" } else { "" }
        );
        let path = repo().join(format!("scenarios/c6i/{stem}.toml"));
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let published = format!(
            "CPU (avg) {}, memory (avg) {}, bandwidth in/out {} / {}, instance {}",
            text("cpu"),
            text("memory"),
            text("bandwidth_in"),
            text("bandwidth_out"),
            text("instance")
        );
        assert!(
            source.contains(&published),
            "{stem}: expected the comment to quote {published:?}"
        );
        let scenario = load(&path, MediaCheck::Skip);
        let group = &scenario.groups()[0];
        assert_eq!(scenario.groups().len(), 1);
        assert_eq!(group.count().get() as usize, calls);
        assert_eq!(group.participants().get() as usize, users);
        assert_eq!(group.unmuted() as usize, unmuted);
        assert_eq!(
            group.screen_sharing() as usize,
            if screen { calls } else { 0 }
        );
        assert!(matched.insert(stem));
    }
}
