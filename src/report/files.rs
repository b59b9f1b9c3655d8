//! The results directory on disk, and [`RunResult`], the model every renderer reads.
//!
//! ```text
//! manifest.json     versions, host, scenario, seed, target, how the run ended, shards
//! series.csv        one row per second (columns: measure::Snapshot, documented in reports/schema/README.md)
//! summary.json      the figures (schema: reports/schema/summary.schema.json)
//! histograms.json   run-wide HDR histograms (V2+DEFLATE, base64) and counts — exact to merge
//! intervals.hlog    per-second HDR histograms, standard HdrHistogram interval log
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use serde::{Deserialize, Serialize};

use super::model::Manifest;
use super::summary::Summary;
use crate::measure::histogram::{HIGHEST_US, LOWEST_US, SIGFIG};
use crate::measure::{
    Counts, Histograms, IntervalHistograms, LatencyHistogram, Measurements, Snapshot,
};

/// File names inside a results directory.
pub mod names {
    pub const MANIFEST: &str = "manifest.json";
    pub const SERIES: &str = "series.csv";
    pub const SUMMARY: &str = "summary.json";
    pub const HISTOGRAMS: &str = "histograms.json";
    pub const INTERVALS: &str = "intervals.hlog";
}

/// Why a results directory could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("cannot encode {path}: {message}")]
    Encode { path: PathBuf, message: String },
}

/// Why a results directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not a valid results file: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{path}: {message}")]
    Hlog { path: PathBuf, message: String },
    #[error(
        "{path}: results format version {found} is not supported (this build reads {expected})"
    )]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
}

/// `histograms.json`: the fixed layout, the run-wide histograms and counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramFile {
    /// Always `"us"`.
    pub unit: String,
    /// Lowest discernible value.
    pub lowest: u64,
    /// Highest trackable value.
    pub highest: u64,
    /// Significant digits.
    pub significant_digits: u8,
    /// Always `"HdrHistogram V2+DEFLATE, base64"`.
    pub encoding: String,
    /// Name → histogram.
    pub histograms: Histograms,
    /// Name → count.
    pub counts: Counts,
}

/// A run's results: the report model all renderers, `compare` and `merge` work on.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// `manifest.json`.
    pub manifest: Manifest,
    /// `series.csv`.
    pub series: Vec<Snapshot>,
    /// Run-wide histograms.
    pub histograms: Histograms,
    /// Run-wide counts.
    pub counts: Counts,
    /// Per-second histograms.
    pub intervals: Vec<IntervalHistograms>,
    /// `summary.json`, computed from the rest.
    pub summary: Summary,
}

impl RunResult {
    /// Builds the result of a run from its manifest and what the aggregator measured.
    pub fn new(manifest: Manifest, measured: Measurements) -> RunResult {
        let summary = Summary::compute(
            &manifest,
            &measured.series,
            &measured.histograms,
            &measured.counts,
        );
        RunResult {
            manifest,
            series: measured.series,
            histograms: measured.histograms,
            counts: measured.counts,
            intervals: measured.intervals,
            summary,
        }
    }

    /// Recomputes the summary after the parts changed.
    pub fn resummarise(&mut self) {
        self.summary =
            Summary::compute(&self.manifest, &self.series, &self.histograms, &self.counts);
    }

    /// The run's exit code: 0 when it passed, 1 when it completed but a threshold failed or the
    /// harness was saturated, 2 when it did not complete (`cli::EXIT_*`).
    pub fn exit_code(&self) -> u8 {
        if !self.summary.complete {
            crate::cli::EXIT_ERROR
        } else if self.summary.passed {
            0
        } else {
            crate::cli::EXIT_FAILED
        }
    }

    /// Writes every file into `dir` (created if missing).
    pub fn write(&self, dir: &Path) -> Result<(), WriteError> {
        fs::create_dir_all(dir).map_err(|source| WriteError::Io {
            path: dir.to_owned(),
            source,
        })?;
        write_json(&dir.join(names::MANIFEST), &self.manifest)?;
        write_json(&dir.join(names::SUMMARY), &self.summary)?;
        write_json(
            &dir.join(names::HISTOGRAMS),
            &HistogramFile {
                unit: "us".into(),
                lowest: LOWEST_US,
                highest: HIGHEST_US,
                significant_digits: SIGFIG,
                encoding: "HdrHistogram V2+DEFLATE, base64".into(),
                histograms: self.histograms.clone(),
                counts: self.counts.clone(),
            },
        )?;
        let path = dir.join(names::SERIES);
        let csv_err = |source| WriteError::Csv {
            path: path.clone(),
            source,
        };
        let mut w = csv::Writer::from_path(&path).map_err(csv_err)?;
        for row in &self.series {
            w.serialize(row).map_err(csv_err)?;
        }
        w.flush().map_err(|source| WriteError::Io {
            path: path.clone(),
            source,
        })?;
        let path = dir.join(names::INTERVALS);
        let text = encode_intervals(&self.series, &self.intervals).map_err(|message| {
            WriteError::Encode {
                path: path.clone(),
                message,
            }
        })?;
        fs::write(&path, text).map_err(|source| WriteError::Io { path, source })
    }

    /// Reads a results directory; the summary is recomputed, not trusted.
    pub fn read(dir: &Path) -> Result<RunResult, ReadError> {
        let manifest: Manifest = read_json(&dir.join(names::MANIFEST))?;
        if manifest.format_version != super::model::FORMAT_VERSION {
            return Err(ReadError::Version {
                path: dir.join(names::MANIFEST),
                found: manifest.format_version,
                expected: super::model::FORMAT_VERSION,
            });
        }
        let hist: HistogramFile = read_json(&dir.join(names::HISTOGRAMS))?;
        let path = dir.join(names::SERIES);
        let csv_err = |source| ReadError::Csv {
            path: path.clone(),
            source,
        };
        let mut reader = csv::Reader::from_path(&path).map_err(csv_err)?;
        let series = reader
            .deserialize()
            .collect::<Result<Vec<Snapshot>, _>>()
            .map_err(csv_err)?;
        let path = dir.join(names::INTERVALS);
        let intervals = match fs::read(&path) {
            Ok(bytes) => decode_intervals(&bytes, &series)
                .map_err(|message| ReadError::Hlog { path, message })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(ReadError::Io { path, source }),
        };
        Ok(RunResult {
            summary: Summary::compute(&manifest, &series, &hist.histograms, &hist.counts),
            manifest,
            series,
            histograms: hist.histograms,
            counts: hist.counts,
            intervals,
        })
    }
}

/// Appends `series.csv` rows as the run goes, so a run killed without a chance to write its results
/// still leaves every sealed second on disk. [`RunResult::write`] rewrites the file at the end.
#[derive(Debug)]
pub struct SeriesWriter {
    path: PathBuf,
    writer: csv::Writer<fs::File>,
}

impl SeriesWriter {
    /// Creates `dir/series.csv` (and `dir`).
    pub fn create(dir: &Path) -> Result<SeriesWriter, WriteError> {
        fs::create_dir_all(dir).map_err(|source| WriteError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(names::SERIES);
        let writer = csv::Writer::from_path(&path).map_err(|source| WriteError::Csv {
            path: path.clone(),
            source,
        })?;
        Ok(SeriesWriter { path, writer })
    }

    /// Appends one row and flushes it to the file.
    pub fn append(&mut self, row: &Snapshot) -> Result<(), WriteError> {
        self.writer
            .serialize(row)
            .map_err(|source| WriteError::Csv {
                path: self.path.clone(),
                source,
            })?;
        self.writer.flush().map_err(|source| WriteError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), WriteError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| WriteError::Encode {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    text.push('\n');
    fs::write(path, text).map_err(|source| WriteError::Io {
        path: path.to_owned(),
        source,
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ReadError> {
    let text = fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ReadError::Json {
        path: path.to_owned(),
        source,
    })
}

/// The interval log: BaseTime = UNIX time of second 0, each entry's start = its `t_s`.
fn encode_intervals(
    series: &[Snapshot],
    intervals: &[IntervalHistograms],
) -> Result<Vec<u8>, String> {
    let base = series.first().map_or(0, |r| r.unix_s.saturating_sub(r.t_s));
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment("callsbench per-second histograms; values in microseconds")
        .with_base_time(UNIX_EPOCH + Duration::from_secs(base))
        .with_start_time(UNIX_EPOCH + Duration::from_secs(base))
        .begin_log_with(&mut out, &mut serializer)
        .map_err(|e| e.to_string())?;
    for interval in intervals {
        for (tag, h) in &interval.histograms {
            let tag = Tag::new(tag).ok_or_else(|| format!("invalid tag {tag}"))?;
            writer
                .write_histogram(
                    h.inner(),
                    Duration::from_secs(interval.t_s),
                    Duration::from_secs(1),
                    Some(tag),
                )
                .map_err(|e| e.to_string())?;
        }
    }
    drop(writer);
    Ok(out)
}

fn decode_intervals(bytes: &[u8], series: &[Snapshot]) -> Result<Vec<IntervalHistograms>, String> {
    let mut out: Vec<IntervalHistograms> = Vec::new();
    for entry in IntervalLogIterator::new(bytes) {
        let LogEntry::Interval(i) = entry.map_err(|e| format!("{e:?}"))? else {
            continue;
        };
        let t_s = i.start_timestamp().as_secs();
        let tag = i.tag().map_or("untagged", |t| t.as_str()).to_owned();
        let h = LatencyHistogram::from_base64(i.encoded_histogram()).map_err(|e| e.to_string())?;
        let unix_s = series.iter().find(|r| r.t_s == t_s).map_or(0, |r| r.unix_s);
        match out.last_mut() {
            Some(last) if last.t_s == t_s => {
                last.histograms.insert(tag, h);
            }
            _ => out.push(IntervalHistograms {
                t_s,
                unix_s,
                histograms: [(tag, h)].into_iter().collect(),
            }),
        }
    }
    Ok(out)
}
