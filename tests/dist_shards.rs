//! Distributed runs end to end (issue #8 acceptance), with the real `callsbench` binary, real
//! WebRTC participants and the reference SFU (`callsref sfu`) as separate processes on loopback.
//!
//! * The same 6 calls × 6 scenario runs once unsharded and once as three `callsbench run --shard
//!   I/3 --start-at T` processes at the same time against one SFU; `callsbench merge` of the shards
//!   must give the same flow counts, bandwidth within ±5 %, histogram totals and counts equal to the
//!   sums over the shards, and server CPU/memory from one shard only.
//! * 8 calls over two SFUs on 127.0.0.1 and 127.0.0.2 with the second drained mid-ramp: the summary
//!   has a row per host, both hosts took calls, every call is whole on one host, none was placed on
//!   the drained host after its drain.

mod support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{callsref, root};

use callsbench::report::RunResult;
use callsbench::target::embedded::EmbeddedSfu;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callsbench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn callsbench(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callsbench"));
    c.args(args);
    c
}

/// A run's process ended with 0 (passed) or 1 (a threshold or self-health verdict failed, results
/// written); anything else is a failure of the run itself.
fn ran(what: &str, out: &Output) {
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "{what}: exit {code:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_scenario(dir: &Path, name: &str, body: &str) -> PathBuf {
    let file = dir.join(format!("{name}.toml"));
    let media = root().join("scenarios/media");
    std::fs::write(
        &file,
        format!(
            "name = \"{name}\"\nseed = 11\n\n[media]\ndir = {:?}\n\n{body}",
            media.display().to_string()
        ),
    )
    .unwrap();
    file
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

#[test]
fn three_shards_merge_to_the_unsharded_run() {
    let dir = scratch("dist-shards");
    let sfu = EmbeddedSfu::spawn(&callsref(), &dir.join("sfu")).unwrap();
    let url = format!("http://{}", sfu.host().addr);
    let scenario = write_scenario(
        &dir,
        "six-by-six",
        "[phases]\njoin = \"3s\"\nsettle = \"2s\"\nsteady = \"10s\"\nleave = \"1s\"\n\n\
         [[calls]]\ncount = 6\nparticipants = 6\nunmuted = 2\n",
    );
    let sc = scenario.to_str().unwrap();

    let full_dir = dir.join("full");
    let out = callsbench(&[
        "run",
        sc,
        "--rtcd",
        &url,
        "--out",
        full_dir.to_str().unwrap(),
        "--no-report",
        "--quiet",
    ])
    .output()
    .unwrap();
    ran("unsharded run", &out);
    let full = RunResult::read(&full_dir).unwrap();

    // Three agents at once, all starting their timelines at the same wall-clock second.
    let start = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(4);
    let start_at = format!("@{}", start.as_secs());
    let shard_dirs: Vec<PathBuf> = (1..=3).map(|i| dir.join(format!("shard-{i}"))).collect();
    let children: Vec<_> = shard_dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            callsbench(&[
                "run",
                sc,
                "--shard",
                &format!("{}/3", i + 1),
                "--start-at",
                &start_at,
                "--rtcd",
                &url,
                "--out",
                d.to_str().unwrap(),
                "--no-report",
                "--quiet",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        ran(
            &format!("shard {}/3", i + 1),
            &c.wait_with_output().unwrap(),
        );
    }
    let merged_dir = dir.join("merged");
    let mut args = vec!["merge"];
    args.extend(shard_dirs.iter().map(|d| d.to_str().unwrap()));
    args.extend(["--out", merged_dir.to_str().unwrap()]);
    let out = callsbench(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = RunResult::read(&merged_dir).unwrap();
    let shards: Vec<RunResult> = shard_dirs
        .iter()
        .map(|d| RunResult::read(d).unwrap())
        .collect();

    // Same flows: the shards together are the unsharded plan.
    assert_eq!(merged.manifest.scenario.flows, full.manifest.scenario.flows);
    assert_eq!(merged.manifest.scenario.flows.sessions, 36);
    assert!(
        shards
            .iter()
            .all(|s| s.manifest.scenario.flows.sessions == 12)
    );
    assert_eq!(merged.summary.qoe.joins, 36, "{:?}", merged.summary.qoe);
    assert_eq!(full.summary.qoe.joins, 36, "{:?}", full.summary.qoe);

    // Histogram totals and counts are the sums over the shards, exactly.
    for (name, h) in &merged.histograms {
        let sum: u64 = shards
            .iter()
            .filter_map(|s| s.histograms.get(name))
            .map(|h| h.count())
            .sum();
        assert_eq!(h.count(), sum, "histogram {name}");
    }
    for (name, v) in &merged.counts {
        let sum: u64 = shards.iter().filter_map(|s| s.counts.get(name)).sum();
        assert_eq!(*v, sum, "count {name}");
    }
    assert!(merged.histograms.values().map(|h| h.count()).sum::<u64>() > 0);

    // Bandwidth within ±5 % of the unsharded run.
    let b = &merged.summary.benchmark;
    let f = &full.summary.benchmark;
    for (what, m, u) in [
        ("in", b.bandwidth_in_bps, f.bandwidth_in_bps),
        ("out", b.bandwidth_out_bps, f.bandwidth_out_bps),
    ] {
        let (m, u) = (m.unwrap(), u.unwrap());
        eprintln!("bandwidth {what}: merged {m:.0} bps, unsharded {u:.0} bps");
        assert!(
            u > 0.0 && rel(m, u) <= 0.05,
            "bandwidth {what}: merged {m}, unsharded {u}"
        );
    }

    // Server CPU and memory come from exactly one shard, never a sum over the agents.
    let probers: Vec<_> = merged
        .manifest
        .shards
        .iter()
        .filter(|s| s.server_probes)
        .collect();
    assert_eq!(probers.len(), 1, "{:?}", merged.manifest.shards);
    let prober = &shards[probers[0].index as usize];
    let mut compared = 0;
    for row in &merged.series {
        let Some(cpu) = row.server_cpu_cores else {
            continue;
        };
        let own = prober
            .series
            .iter()
            .find(|r| r.unix_s == row.unix_s)
            .and_then(|r| r.server_cpu_cores);
        assert_eq!(Some(cpu), own, "second {}", row.unix_s);
        compared += 1;
    }
    assert!(compared > 5, "server cpu seconds compared: {compared}");
    eprintln!(
        "joins p99 merged {:?} us, unsharded {:?} us; cpu merged {:?}, unsharded {:?}",
        merged.summary.qoe.join_p99_us,
        full.summary.qoe.join_p99_us,
        merged.summary.benchmark.cpu_avg_cores,
        full.summary.benchmark.cpu_avg_cores
    );
    drop(sfu);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_sfus_with_a_drain_give_a_row_per_host() {
    let dir = scratch("dist-two-sfus");
    let program = callsref();
    let a = EmbeddedSfu::spawn_on(&program, &dir.join("a"), IpAddr::from([127, 0, 0, 1])).unwrap();
    let b = EmbeddedSfu::spawn_on(&program, &dir.join("b"), IpAddr::from([127, 0, 0, 2])).unwrap();
    // Calls are created over the 4 s join ramp (call by call); 127.0.0.2 is drained at 2 s.
    let scenario = write_scenario(
        &dir,
        "two-sfus",
        "[phases]\njoin = \"4s\"\norder = \"by_call\"\nsettle = \"1s\"\nsteady = \"4s\"\nleave = \"1s\"\n\n\
         [[calls]]\ncount = 8\nparticipants = 2\nunmuted = 1\n\n\
         [[drain]]\nhost = \"127.0.0.2\"\nat = \"2s\"\n",
    );
    let out_dir = dir.join("out");
    let out = callsbench(&[
        "run",
        scenario.to_str().unwrap(),
        "--rtcd",
        &format!("http://{}", a.host().addr),
        "--rtcd",
        &format!("http://{}", b.host().addr),
        "--out",
        out_dir.to_str().unwrap(),
        "--no-report",
    ])
    .output()
    .unwrap();
    ran("two-SFU run", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    let r = RunResult::read(&out_dir).unwrap();
    let hosts = &r.summary.hosts;
    assert_eq!(hosts.len(), 2, "{hosts:?}");
    let (ha, hb) = (
        hosts
            .iter()
            .find(|h| h.address == a.host().addr.to_string())
            .unwrap(),
        hosts
            .iter()
            .find(|h| h.address == b.host().addr.to_string())
            .unwrap(),
    );
    assert_eq!(ha.calls + hb.calls, 8);
    assert!(ha.calls > 0 && hb.calls > 0, "both hosts used: {hosts:?}");
    // Every call whole on one host: each host's sessions are exactly 2 per call it holds.
    assert_eq!(ha.sessions, 2 * ha.calls);
    assert_eq!(hb.sessions, 2 * hb.calls);
    assert_eq!(ha.joins + hb.joins, 16, "{hosts:?}");
    let d = hb.drain.as_ref().expect("127.0.0.2 drained");
    assert_eq!(d.at_s, 2.0);
    assert_eq!(d.calls_placed_after, 0);
    assert!(ha.drain.is_none());
    assert!(
        stdout.contains("Hosts"),
        "terminal summary has the per-host rows"
    );
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
