//! `callsbench table` for real: one tiny c7i row through `callsbench run` (a child process of the
//! built binary) against the embedded reference SFU, with the real media and WebRTC.

use std::path::{Path, PathBuf};

use callsbench::report::RunResult;
use callsbench::table::runner::ChildRunner;
use callsbench::table::{TableArgs, reproduce_table};
use clap::Parser;

#[test]
fn one_small_c7i_row_reproduces_the_published_audio_rate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("callsbench-table-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let table = root.join("scenarios/tables/c7i.toml");
    // Row 1 is 1 × 1000 with 2 unmuted; at 0.4 % it is one call of 4: 6 forwarded audio streams.
    let argv = [
        "callsbench",
        "table",
        table.to_str().unwrap(),
        "--scale",
        "0.004",
        "--rows",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--join",
        "1s",
        "--settle",
        "4s",
        "--steady",
        "10s",
        "--no-row-reports",
    ];
    let args: TableArgs = match callsbench::cli::Cli::try_parse_from(argv).unwrap().command {
        callsbench::cli::Command::Table(a) => a,
        other => panic!("{other:?}"),
    };
    let runner = ChildRunner {
        program: PathBuf::from(env!("CARGO_BIN_EXE_callsbench")),
        extra_args: Vec::new(),
    };
    // A row the harness itself marks saturated (its event loop lagged: the machine is busy with
    // other work) is one a user would run again; so does the test, a few times. A row still
    // saturated after that is judged below on its per-second rates.
    let mut attempts = 0;
    let run = loop {
        attempts += 1;
        let run = reproduce_table(&args, &runner, &mut |_| {}).unwrap();
        if run.reproduced.rows[0].status != "saturated" || attempts == 3 {
            break run;
        }
        eprintln!("attempt {attempts}: the harness saturated; running the row again");
        std::fs::remove_dir_all(&out).unwrap();
    };
    let log = std::fs::read_to_string(out.join("logs/row-01.log")).unwrap_or_default();
    let r = &run.reproduced.rows[0];
    assert_eq!(r.flows.forwarded_audio, 6);
    // The row ran to the end and was measured. On a loaded 2-core CI host a debug-build harness can
    // fall behind for a second (`saturated`) or lose a few packets to full socket buffers (`lossy`);
    // both are host facts the table reports, not a wrong result. The per-flow rate below is what
    // this test checks, and it still holds them to ±5 %.
    assert!(
        ["passed", "saturated", "lossy"].contains(&r.status.as_str()),
        "status {} {:?}\n{log}",
        r.status,
        r.detail
    );
    let m = r.measured.as_ref().unwrap();
    // The published 97.1 kbps per forwarded audio stream, within ±5 %, measured on the wire. The
    // harness's packets run a few percent above it (reports/README.md), which leaves little room: the
    // first seconds of a stream carry a few more header bytes per packet (gone once the receiver's
    // reports come back), and on a busy host a loop-lag burst moves a tick of packets across a window edge: hence
    // the median of the steady seconds rather than their mean. The window starts `settle` after the
    // last join, so slow joins on a loaded host shorten it; 10 s of steady phase keeps several
    // seconds in it. The table's own difference column must agree with its mean.
    let k = m.per_flow.kbps_per_forwarded_audio.unwrap();
    let d = r.differences.kbps_per_forwarded_audio_pct.unwrap();
    eprintln!("{k:.1} kbps per forwarded audio stream ({d:+.1}% against the published figure)");
    let published = r.published.per_flow.kbps_per_forwarded_audio.unwrap();
    assert!(
        (d - (k / published - 1.0) * 100.0).abs() < 0.1,
        "{k} kbps, {d:+.1} %"
    );
    let row = RunResult::read(&out.join(&r.results)).unwrap();
    let steady = &row.summary.steady;
    let mut per_second: Vec<f64> = row
        .series
        .iter()
        .filter(|s| (steady.start_s..steady.end_s).contains(&s.t_s))
        .map(|s| s.audio_out_bps / r.flows.forwarded_audio as f64 / 1e3)
        .collect();
    assert!(
        per_second.len() >= 3,
        "{} steady seconds\n{log}",
        per_second.len()
    );
    per_second.sort_by(f64::total_cmp);
    let median = per_second[per_second.len() / 2];
    let dm = (median / published - 1.0) * 100.0;
    assert!(
        dm.abs() <= 5.0,
        "median {median:.1} kbps ({dm:+.1} %), mean {k:.1} kbps\n{log}"
    );
    // The target's CPU and memory were measured.
    assert!(m.cpu_cores.unwrap() > 0.0);
    assert!(m.memory_bytes.unwrap() > 1_000_000);
    assert!(out.join("table.md").exists());
    std::fs::remove_dir_all(&out).unwrap();
}
