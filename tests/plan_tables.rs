//! The published tables as data: every row equals the spec's table (hand-copied literals below, from
//! calls-loadtest.md §2.4 and §2.6, offloader.md §6.1 and §6.2), and bad files fail with file:line:col.

use std::path::PathBuf;

use callsbench::plan::catalog::Family;
use callsbench::plan::offloader::{Quality, RecordingTable, TranscriptionTable, WhisperModel};
use callsbench::plan::table::{BenchmarkTable, TableError, YesNo};

/// calls, users/call, unmuted/call, screen sharing, CPU, memory, bandwidth in, bandwidth out, instance.
type Row = (
    u32,
    u32,
    u32,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// calls-loadtest.md §2.4, copied by hand.
#[rustfmt::skip]
const C6I: &[Row] = &[
    (100, 8, 2, "no", "60%", "0.5GB", "22Mbps", "125Mbps", "c6i.xlarge"),
    (100, 8, 2, "no", "30%", "0.5GB", "22Mbps", "125Mbps", "c6i.2xlarge"),
    (100, 8, 2, "yes", "86%", "0.7GB", "280Mbps", "2.2Gbps", "c6i.2xlarge"),
    (10, 50, 2, "no", "35%", "0.3GB", "5.25Mbps", "86Mbps", "c6i.xlarge"),
    (10, 50, 2, "no", "16%", "0.3GB", "5.25Mbps", "86Mbps", "c6i.2xlarge"),
    (10, 50, 2, "yes", "90%", "0.3GB", "32Mbps", "1.33Gbps", "c6i.xlarge"),
    (10, 50, 2, "yes", "45%", "0.3GB", "32Mbps", "1.33Gbps", "c6i.2xlarge"),
    (5, 200, 2, "no", "65%", "0.6GB", "8.2Mbps", "180Mbps", "c6i.xlarge"),
    (5, 200, 2, "no", "30%", "0.6GB", "8.2Mbps", "180Mbps", "c6i.2xlarge"),
    (5, 200, 2, "yes", "90%", "0.7GB", "31Mbps", "2.2Gbps", "c6i.2xlarge"),
];

/// calls-loadtest.md §2.6, copied by hand.
#[rustfmt::skip]
const C7I: &[Row] = &[
    (1, 1000, 2, "no", "47%", "1.46GB", "1Mbps", "194Mbps", "c7i.xlarge"),
    (1, 800, 1, "yes", "64%", "1.43GB", "2.7Mbps", "1.36Gbps", "c7i.xlarge"),
    (1, 1000, 1, "yes", "79%", "1.54GB", "2.9Mbps", "1.68Gbps", "c7i.xlarge"),
    (10, 100, 1, "yes", "74%", "1.56GB", "18.2Mbps", "1.68Gbps", "c7i.xlarge"),
    (100, 10, 2, "no", "49%", "1.46GB", "18.7Mbps", "175Mbps", "c7i.xlarge"),
    (100, 10, 1, "yes", "84%", "1.73GB", "171Mbps", "1.53Gbps", "c7i.xlarge"),
    (1, 1000, 2, "no", "20%", "1.44GB", "1.4Mbps", "194Mbps", "c7i.2xlarge"),
    (1, 1000, 2, "yes", "49%", "1.53GB", "3.6Mbps", "1.79Gbps", "c7i.2xlarge"),
    (2, 1000, 1, "yes", "73%", "2.38GB", "5.7Mbps", "3.06Gbps", "c7i.2xlarge"),
    (100, 10, 2, "yes", "60%", "1.74GB", "181Mbps", "1.62Gbps", "c7i.2xlarge"),
    (150, 10, 1, "yes", "72%", "2.26GB", "257Mbps", "2.30Gbps", "c7i.2xlarge"),
    (150, 10, 2, "yes", "79%", "2.34GB", "271Mbps", "2.41Gbps", "c7i.2xlarge"),
    (250, 10, 2, "no", "58%", "2.66GB", "47Mbps", "439Mbps", "c7i.2xlarge"),
    (1000, 2, 2, "no", "78%", "2.31GB", "178Mbps", "195Mbps", "c7i.2xlarge"),
    (2, 1000, 2, "yes", "41%", "2.6GB", "7.23Mbps", "3.60Gbps", "c7i.4xlarge"),
    (3, 1000, 2, "yes", "63%", "3.53GB", "10.9Mbps", "5.38Gbps", "c7i.4xlarge"),
    (4, 1000, 2, "yes", "83%", "4.40GB", "14.5Mbps", "7.17Gbps", "c7i.4xlarge"),
    (250, 10, 2, "yes", "79%", "3.49GB", "431Mbps", "3.73Gbps", "c7i.4xlarge"),
    (500, 2, 2, "yes", "71%", "2.54GB", "896Mbps", "919Mbps", "c7i.4xlarge"),
];

fn load_file(name: &str) -> BenchmarkTable {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "scenarios", "tables", name]
        .iter()
        .collect();
    BenchmarkTable::load(&path).unwrap()
}

fn assert_table(table: &BenchmarkTable, expected: &[Row]) {
    assert_eq!(table.rows.len(), expected.len());
    for (i, (r, e)) in table.rows.iter().zip(expected).enumerate() {
        let screen = match r.screen_sharing {
            YesNo::Yes => "yes",
            YesNo::No => "no",
        };
        let got = (
            r.calls,
            r.users_per_call,
            r.unmuted_per_call,
            screen,
            r.cpu.text(),
            r.memory.text(),
            r.bandwidth_in.text(),
            r.bandwidth_out.text(),
            r.instance.name,
        );
        assert_eq!(&got, e, "row {}", i + 1);
        assert_eq!(r.row as usize, i + 1);
        assert!(table.sources.contains_key(&r.source));
    }
}

#[test]
fn c6i_file_equals_the_published_table() {
    let table = load_file("c6i.toml");
    assert_eq!(table.meta.family, Family::C6i);
    assert_table(&table, C6I);
    // Parsed values, spot-checked: row 3's 2.2Gbps out and 86% CPU; row 4's 5.25Mbps in.
    assert_eq!(table.rows[2].bandwidth_out.value().0, 2.2e9);
    assert_eq!(table.rows[2].cpu.value().0, 86.0);
    assert_eq!(table.rows[3].bandwidth_in.value().0, 5.25e6);
    assert_eq!(table.rows[0].memory.value().0, 0.5e9);
}

#[test]
fn c7i_file_equals_the_published_table() {
    let table = load_file("c7i.toml");
    assert_eq!(table.meta.family, Family::C7i);
    assert_table(&table, C7I);
    assert_eq!(table.rows[16].bandwidth_out.value().0, 7.17e9);
    assert_eq!(table.rows[13].cpu.value().0, 78.0);
    assert!((table.rows[15].memory.value().0 - 3.53e9).abs() < 1.0);
}

#[test]
fn embedded_tables_equal_the_files() {
    assert_eq!(
        BenchmarkTable::published(Family::C6i).unwrap().rows,
        load_file("c6i.toml").rows
    );
    assert_eq!(
        BenchmarkTable::published(Family::C7i).unwrap().rows,
        load_file("c7i.toml").rows
    );
}

#[test]
fn offloader_recording_table_equals_the_published_one() {
    let t = RecordingTable::published().unwrap();
    let rows: Vec<_> = t
        .row
        .iter()
        .map(|r| {
            (
                r.profile,
                r.concurrency,
                r.cpu.text(),
                r.memory.text(),
                r.recording_size.text(),
                r.instance.get_ref().as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (Quality::Low, 8, "66%", "4GB", "0.5GB/hour", "c6i.2xlarge"),
            (
                Quality::Medium,
                6,
                "66%",
                "4GB",
                "0.7GB/hour",
                "c6i.2xlarge"
            ),
            (Quality::High, 4, "72%", "4GB", "1.2GB/hour", "c6i.2xlarge"),
        ]
    );
    let high = t
        .profile
        .iter()
        .find(|p| p.profile == Quality::High)
        .unwrap();
    assert_eq!(
        (
            high.resolution.as_str(),
            high.framerate.text(),
            high.video_bitrate.text()
        ),
        ("1080p", "20fps", "2.5Mbps")
    );
    assert_eq!(high.audio_bitrate.value().0, 64e3);
}

#[test]
fn offloader_transcription_table_spot_checks() {
    let t = TranscriptionTable::published().unwrap();
    assert_eq!(t.row.len(), 12);
    let base4 = t.row(WhisperModel::Base, 4, 600.0).unwrap();
    assert_eq!(
        (
            base4.cpu.text(),
            base4.memory.text(),
            base4.processing_time.text(),
            base4.speed.text()
        ),
        ("49.8%", "1.27GB", "1m32s", "6.52x")
    );
    let small4_60 = t.row(WhisperModel::Small, 4, 3600.0).unwrap();
    assert_eq!(
        (
            small4_60.call_duration.text(),
            small4_60.processing_time.text(),
            small4_60.speed.text()
        ),
        ("60m", "22m50s", "2.63x")
    );
    let tiny1 = t.row(WhisperModel::Tiny, 1, 600.0).unwrap();
    assert_eq!(
        (tiny1.cpu.text(), tiny1.processing_time.text()),
        ("13.5%", "2m20s")
    );
    assert!(t.row(WhisperModel::Tiny, 3, 600.0).is_none());
    let small = t
        .model
        .iter()
        .find(|m| m.model == WhisperModel::Small)
        .unwrap();
    assert_eq!(
        (small.file_size.text(), small.memory.text()),
        ("466MB", "~852MB")
    );
}

/// Writes `text` to a scratch file and loads it as a benchmark table.
fn load_bad(name: &str, text: &str) -> (String, TableError) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plan_tables");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let err = BenchmarkTable::load(&path).unwrap_err();
    (path.display().to_string(), err)
}

const GOOD_HEAD: &str = r#"[table]
family = "c7i"
title = "t"
published = "2024-07-16"
versions = "v"
media = "m"

[sources.docs]
document = "d"
section = "s"
reproduced_in = "r"
"#;

fn row(cpu: &str, instance: &str, extra: &str) -> String {
    format!(
        "\n[[row]]\nrow = 1\ncalls = 1\nusers_per_call = 2\nunmuted_per_call = 1\nscreen_sharing = \"no\"\n\
         cpu = \"{cpu}\"\nmemory = \"1GB\"\nbandwidth_in = \"1Mbps\"\nbandwidth_out = \"2Mbps\"\n\
         instance = \"{instance}\"\nsource = \"docs\"\n{extra}"
    )
}

#[test]
fn good_minimal_file_loads() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plan_tables");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("good.toml");
    std::fs::write(
        &path,
        format!("{GOOD_HEAD}{}", row("47%", "c7i.xlarge", "")),
    )
    .unwrap();
    let t = BenchmarkTable::load(&path).unwrap();
    assert_eq!(t.rows[0].cpu.value().0, 47.0);
}

#[test]
fn a_malformed_figure_names_its_line_and_column_and_the_expected_form() {
    // The cpu value is on line 19 (11 header lines, a blank, [[row]], 6 keys), column 7.
    let (path, err) = load_bad(
        "bad_cpu.toml",
        &format!("{GOOD_HEAD}{}", row("47", "c7i.xlarge", "")),
    );
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{path}:19:7: ")), "{msg}");
    assert!(msg.contains("expected a number followed by %"), "{msg}");
}

#[test]
fn an_unknown_key_is_rejected_with_its_position() {
    let (path, err) = load_bad(
        "bad_key.toml",
        &format!(
            "{GOOD_HEAD}{}",
            row("47%", "c7i.xlarge", "cpu_avg = \"1%\"\n")
        ),
    );
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{path}:25:1: ")), "{msg}");
    assert!(msg.contains("unknown field `cpu_avg`"), "{msg}");
}

#[test]
fn an_unknown_instance_or_wrong_family_points_at_the_value() {
    let (path, err) = load_bad(
        "bad_inst.toml",
        &format!("{GOOD_HEAD}{}", row("47%", "c7i.huge", "")),
    );
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{path}:23:12: ")), "{msg}");
    assert!(msg.contains("unknown instance type \"c7i.huge\""), "{msg}");

    let (_, err) = load_bad(
        "bad_family.toml",
        &format!("{GOOD_HEAD}{}", row("47%", "c6i.xlarge", "")),
    );
    assert!(
        err.to_string()
            .contains(":23:12: instance c6i.xlarge is not in this table's family c7i"),
        "{err}"
    );
}

#[test]
fn an_unknown_source_and_a_syntax_error_carry_positions() {
    let text = format!("{GOOD_HEAD}{}", row("47%", "c7i.xlarge", ""))
        .replace("source = \"docs\"", "source = \"blog\"");
    let (path, err) = load_bad("bad_source.toml", &text);
    assert!(
        err.to_string()
            .starts_with(&format!("{path}:24:10: unknown source \"blog\"")),
        "{err}"
    );

    let (path, err) = load_bad("bad_syntax.toml", "[table]\nfamily = \"c7i\nx = 1\n");
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{path}:2:")), "{msg}");
}

#[test]
fn a_missing_file_is_a_read_error_naming_the_path() {
    let err = BenchmarkTable::load(std::path::Path::new("/nonexistent/c9i.toml")).unwrap_err();
    assert!(matches!(err, TableError::Read { .. }));
    assert!(
        err.to_string().starts_with("/nonexistent/c9i.toml: "),
        "{err}"
    );
}
