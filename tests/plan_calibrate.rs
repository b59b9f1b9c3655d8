//! `plan --calibrate DIR...`: the model refit on synthetic results directories recovers the traffic
//! the generator put on the wire, and the command runs end to end.
//!
//! The synthetic generator (`report::synthetic`) sends 187 B UDP payloads at 50 packets/s per
//! forwarded audio stream (91.6 kbps on the wire with 42 B of IPv4/UDP/Ethernet) and ≈150 packets/s of
//! 1290 B per screen viewer (≈1.6 Mbps), so a calibrated egress model must find those rates.

use std::path::PathBuf;
use std::process::ExitCode;

use callsbench::plan::calibrate::{CalibrateError, calibrate, render_calibration};
use callsbench::plan::catalog::Family;
use callsbench::plan::table::BenchmarkTable;
use callsbench::report::synthetic::Synthetic;
use clap::Parser;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callsbench-cal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Synthetic results for several mixes: (calls, users, unmuted, screen calls).
fn results(name: &str, mixes: &[(u32, u32, u32, u32)]) -> (PathBuf, Vec<PathBuf>) {
    let root = temp_dir(name);
    let dirs = mixes
        .iter()
        .enumerate()
        .map(|(i, &(c, n, u, s))| {
            let mut spec = Synthetic::small();
            spec.seed = 100 + i as u64;
            spec.calls = c;
            spec.users_per_call = n;
            spec.unmuted_per_call = u;
            spec.screen_calls = s;
            spec.ramp_s = 4;
            spec.settle_s = 1;
            spec.steady_s = 8;
            spec.leave_s = 1;
            let dir = root.join(format!("run-{i}"));
            spec.generate().write(&dir).unwrap();
            dir
        })
        .collect();
    (root, dirs)
}

const MIXES: &[(u32, u32, u32, u32)] = &[
    (1, 10, 2, 0),
    (4, 5, 2, 1),
    (3, 6, 1, 3),
    (8, 2, 2, 0),
    (2, 12, 1, 1),
    (1, 16, 3, 0),
    (5, 4, 1, 2),
];

#[test]
fn local_calibration_recovers_the_synthetic_wire_rates() {
    let (root, dirs) = results("local", MIXES);
    let cal = calibrate(&dirs, None).unwrap();
    assert_eq!((cal.local, cal.published), (7, 0));
    let out = &cal.model.bandwidth_out.terms;
    let audio = out[0].coefficient;
    let screen = out[1].coefficient;
    // Control traffic (≈3.9 kbps per session each way) has no egress term, so it lands on the
    // others: within 5 % of the media rates.
    assert!((audio / 91.6e3 - 1.0).abs() < 0.05, "{audio}");
    assert!((screen / 1.598e6 - 1.0).abs() < 0.05, "{screen}");
    assert!(
        cal.bandwidth_out.median_abs_pct < 5.0,
        "{:?}",
        cal.bandwidth_out
    );
    // The synthetic CPU is linear in connected sessions and streams plus a small constant and ±8 %
    // noise: the CPU model (no intercept) fits it within 15 % at the median.
    assert!(cal.cpu.median_abs_pct < 15.0, "{:?}", cal.cpu);
    assert!(cal.cpu.median_abs_pct > 0.0);
    let text = render_calibration(&cal);
    assert!(text.contains("fitted terms:"), "{text}");
    assert!(text.contains("bit/s per forwarded audio stream"), "{text}");
    assert!(
        text.contains("predictions are for the kind of host"),
        "{text}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn too_few_shapes_are_flagged_and_published_rows_can_join() {
    let (root, dirs) = results("few", &MIXES[..2]);
    let cal = calibrate(&dirs, None).unwrap();
    assert!(
        cal.notes.iter().any(|n| n.contains("the fit can be exact")),
        "{:?}",
        cal.notes
    );
    let c7i = BenchmarkTable::published(Family::C7i).unwrap();
    let both = calibrate(&dirs, Some(&c7i)).unwrap();
    assert_eq!((both.local, both.published), (2, 19));
    assert_eq!(both.checks.len(), 21);
    assert!(both.checks[0].local && !both.checks[2].local);
    assert!(
        both.notes
            .iter()
            .any(|n| n.contains("as if they were the same"))
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn unreadable_or_unmeasured_directories_are_typed_errors() {
    let missing = calibrate(&[PathBuf::from("/nonexistent/results")], None).unwrap_err();
    assert!(matches!(missing, CalibrateError::Read { .. }), "{missing}");
    assert!(missing.to_string().contains("/nonexistent/results"));
    // A shard that left server probes to another shard has no CPU figure.
    let root = temp_dir("noprobe");
    let mut spec = Synthetic::small();
    spec.shard = Some((1, 2));
    spec.generate().write(&root).unwrap();
    let err = calibrate(std::slice::from_ref(&root), None).unwrap_err();
    assert!(
        err.to_string().contains("no server CPU was measured"),
        "{err}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn the_cli_calibrates_and_plans() {
    let (root, dirs) = results("cli", MIXES);
    let run = |extra: &[&str]| {
        let mut argv: Vec<String> = vec!["callsbench".into(), "plan".into(), "--calibrate".into()];
        argv.extend(dirs.iter().map(|d| d.display().to_string()));
        argv.extend(extra.iter().map(|s| s.to_string()));
        callsbench::cli::run(callsbench::cli::Cli::try_parse_from(argv).unwrap()).unwrap()
    };
    assert_eq!(run(&[]), ExitCode::SUCCESS);
    assert_eq!(run(&["--json"]), ExitCode::SUCCESS);
    // A small mix fits the smallest size with a model calibrated on these runs.
    assert_eq!(
        run(&["--calls", "2", "--users", "5", "--unmuted", "1"]),
        ExitCode::SUCCESS
    );
    assert_eq!(
        run(&["--with-published", "--family", "c6i"]),
        ExitCode::SUCCESS
    );
    // --calls without --users is a usage error from clap.
    let mut argv: Vec<String> = vec!["callsbench".into(), "plan".into(), "--calibrate".into()];
    argv.push(dirs[0].display().to_string());
    argv.extend(["--calls".into(), "2".into()]);
    let parsed = callsbench::cli::Cli::try_parse_from(argv);
    let usage_or_error = match parsed {
        Err(_) => true,
        Ok(cli) => callsbench::cli::run(cli).is_err(),
    };
    assert!(usage_or_error);
    std::fs::remove_dir_all(&root).unwrap();
}
