//! calls-offloader sizing from its published tables: `scenarios/tables/offloader-recording.toml`
//! (recording concurrency per quality profile) and `offloader-transcription.toml` (post-call
//! transcription per whisper.cpp model and thread count). Both were measured on one c6i.2xlarge.
//!
//! Per-job costs are the host totals divided by the concurrency (offloader.md §6.1: low ≈ 0.66 vCPU and
//! 0.5 GB per recording). A transcription's CPU and memory are taken as its row's host figures, so
//! memory includes the host's base use and errs high when several run at once.

use std::process::ExitCode;

use clap::Args;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::catalog::{self, Family, Instance};
use super::planner::DEFAULT_HEADROOM_PCT;
use super::quantity::{Bitrate, Bytes, BytesPerHour, Factor, Fps, Percent, Published, Span};
use super::render::{Align, TextTable, fit_mark, fixed};
use super::table::{Source, TableError, parse_toml};
use crate::cli::EXIT_FAILED;

/// A recording quality profile (the Calls plugin's "Call recording quality").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Quality {
    Low,
    Medium,
    High,
}

/// A whisper.cpp model the transcriber bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WhisperModel {
    Tiny,
    Base,
    Small,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffloaderMeta {
    pub title: String,
    pub versions: String,
    pub instance: String,
}

/// A quality profile's published settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub profile: Quality,
    pub resolution: String,
    pub framerate: Published<Fps>,
    pub video_bitrate: Published<Bitrate>,
    pub audio_bitrate: Published<Bitrate>,
}

/// One published recording benchmark row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingRow {
    pub profile: Quality,
    pub concurrency: u32,
    pub cpu: Published<Percent>,
    pub memory: Published<Bytes>,
    pub recording_size: Published<BytesPerHour>,
    pub instance: Spanned<String>,
    pub source: Spanned<String>,
}

/// The recording table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingTable {
    pub table: OffloaderMeta,
    pub sources: std::collections::BTreeMap<String, Source>,
    pub profile: Vec<Profile>,
    pub row: Vec<RecordingRow>,
}

/// A whisper.cpp model's published size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSize {
    pub model: WhisperModel,
    pub file_size: Published<Bytes>,
    pub memory: Published<Bytes>,
}

/// One published transcription benchmark row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscriptionRow {
    pub model: WhisperModel,
    pub threads: u32,
    pub cpu: Published<Percent>,
    pub memory: Published<Bytes>,
    pub call_duration: Published<Span>,
    pub processing_time: Published<Span>,
    pub speed: Published<Factor>,
    pub instance: Spanned<String>,
    pub source: Spanned<String>,
}

/// The transcription table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscriptionTable {
    pub table: OffloaderMeta,
    pub sources: std::collections::BTreeMap<String, Source>,
    pub model: Vec<ModelSize>,
    pub row: Vec<Spanned<TranscriptionRow>>,
}

const RECORDING_PATH: &str = "scenarios/tables/offloader-recording.toml";
const RECORDING_TEXT: &str = include_str!("../../scenarios/tables/offloader-recording.toml");
const TRANSCRIPTION_PATH: &str = "scenarios/tables/offloader-transcription.toml";
const TRANSCRIPTION_TEXT: &str =
    include_str!("../../scenarios/tables/offloader-transcription.toml");

/// Checks that a row names a known instance and source.
fn check_refs(
    path: &str,
    text: &str,
    sources: &std::collections::BTreeMap<String, Source>,
    instance: &Spanned<String>,
    source: &Spanned<String>,
) -> Result<&'static Instance, TableError> {
    let inst = catalog::lookup(instance.get_ref()).ok_or_else(|| {
        TableError::at(
            path,
            text,
            Some(instance.span()),
            format!("unknown instance type {:?}", instance.get_ref()),
        )
    })?;
    if !sources.contains_key(source.get_ref()) {
        return Err(TableError::at(
            path,
            text,
            Some(source.span()),
            format!("unknown source {:?}", source.get_ref()),
        ));
    }
    Ok(inst)
}

impl RecordingTable {
    /// Parses and validates the recording table; `path` names the file in errors.
    pub fn parse(path: &str, text: &str) -> Result<Self, TableError> {
        let t: Self = parse_toml(path, text)?;
        for r in &t.row {
            check_refs(path, text, &t.sources, &r.instance, &r.source)?;
            if r.concurrency == 0 {
                return Err(TableError::at(
                    path,
                    text,
                    Some(r.instance.span()),
                    "concurrency must be at least 1".to_owned(),
                ));
            }
        }
        Ok(t)
    }

    /// The table shipped with callsbench.
    pub fn published() -> Result<Self, TableError> {
        Self::parse(RECORDING_PATH, RECORDING_TEXT)
    }

    /// The benchmark row of a profile.
    pub fn row(&self, quality: Quality) -> Option<&RecordingRow> {
        self.row.iter().find(|r| r.profile == quality)
    }
}

impl TranscriptionTable {
    /// Parses and validates the transcription table; the published speed factor must equal call
    /// duration over processing time within 1 % (a check on the data entry).
    pub fn parse(path: &str, text: &str) -> Result<Self, TableError> {
        let t: Self = parse_toml(path, text)?;
        for spanned in &t.row {
            let r = spanned.get_ref();
            check_refs(path, text, &t.sources, &r.instance, &r.source)?;
            let call = r.call_duration.value().0.as_secs_f64();
            let took = r.processing_time.value().0.as_secs_f64();
            let speed = r.speed.value().0;
            if took <= 0.0 || ((call / took) / speed - 1.0).abs() > 0.01 {
                return Err(TableError::at(
                    path,
                    text,
                    Some(spanned.span()),
                    format!(
                        "speed {} disagrees with call duration {} over processing time {}",
                        r.speed.text(),
                        r.call_duration.text(),
                        r.processing_time.text()
                    ),
                ));
            }
        }
        Ok(t)
    }

    /// The table shipped with callsbench.
    pub fn published() -> Result<Self, TableError> {
        Self::parse(TRANSCRIPTION_PATH, TRANSCRIPTION_TEXT)
    }

    /// The row for a model and thread count whose call duration is closest to `call_secs`.
    pub fn row(
        &self,
        model: WhisperModel,
        threads: u32,
        call_secs: f64,
    ) -> Option<&TranscriptionRow> {
        self.row
            .iter()
            .map(Spanned::get_ref)
            .filter(|r| r.model == model && r.threads == threads)
            .min_by(|a, b| {
                let da = (a.call_duration.value().0.as_secs_f64() - call_secs).abs();
                let db = (b.call_duration.value().0.as_secs_f64() - call_secs).abs();
                da.total_cmp(&db)
            })
    }
}

/// Arguments of `callsbench plan offloader`.
#[derive(Debug, Args)]
pub struct OffloaderArgs {
    /// Concurrent call recordings.
    #[arg(long, default_value_t = 0, requires = "quality")]
    pub recordings: u32,
    /// Recording quality profile.
    #[arg(long, value_enum)]
    pub quality: Option<Quality>,
    /// Concurrent post-call transcriptions.
    #[arg(long, default_value_t = 0)]
    pub transcriptions: u32,
    /// whisper.cpp model of the transcriptions.
    #[arg(long, value_enum, default_value = "base")]
    pub model: WhisperModel,
    /// Threads per transcription (the plugin's default is 2).
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// Length of the calls being transcribed, in minutes.
    #[arg(long, default_value_t = 60)]
    pub call_minutes: u32,
    /// Instance family to size (the tables were measured on c6i.2xlarge).
    #[arg(long, value_enum, default_value = "c6i")]
    pub family: Family,
    /// CPU (and memory) share a size may use, in percent.
    #[arg(long, default_value_t = DEFAULT_HEADROOM_PCT)]
    pub headroom: f64,
}

/// One size's predicted offloader load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffloaderSize {
    pub instance: &'static Instance,
    pub cpu_pct: f64,
    pub memory_pct: f64,
    /// Recordings of the chosen quality this size runs within the headroom (its max_concurrent_jobs).
    pub max_recordings: Option<u32>,
    pub fits: bool,
}

/// A calls-offloader sizing answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffloaderPlan {
    pub recordings: u32,
    pub quality: Option<Quality>,
    pub transcriptions: u32,
    pub model: WhisperModel,
    pub threads: u32,
    pub busy_vcpus: f64,
    pub memory_gb: f64,
    pub storage_gb_per_hour: f64,
    /// Expected time to transcribe one call, in seconds.
    pub transcription_secs: Option<f64>,
    pub headroom_pct: f64,
    pub sizes: Vec<OffloaderSize>,
    pub pick: Option<&'static str>,
    pub notes: Vec<String>,
}

/// Why an offloader plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum OffloaderPlanError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("nothing to size: give --recordings with --quality, or --transcriptions")]
    Empty,
    #[error("--recordings needs --quality")]
    NoQuality,
    #[error("the recording table has no row for the {0:?} profile")]
    NoRecordingRow(Quality),
    #[error("unknown instance type {0:?} in an offloader table")]
    UnknownHost(String),
    #[error(
        "no published transcription row for model {model:?} with {threads} threads (published: 1, 2 or 4 threads)"
    )]
    NoTranscriptionRow { model: WhisperModel, threads: u32 },
    #[error("headroom must be above 0 and at most 100 percent, got {0}")]
    Headroom(f64),
    #[error("call length must be at least 1 minute")]
    NoCallLength,
}

/// The catalog entry of a row's host (validated at parse time; an error rather than a panic anyway).
fn host_of(name: &Spanned<String>) -> Result<&'static Instance, OffloaderPlanError> {
    catalog::lookup(name.get_ref())
        .ok_or_else(|| OffloaderPlanError::UnknownHost(name.get_ref().clone()))
}

/// Sizes an offloader host.
pub fn plan(args: &OffloaderArgs) -> Result<OffloaderPlan, OffloaderPlanError> {
    if !(args.headroom > 0.0 && args.headroom <= 100.0) {
        return Err(OffloaderPlanError::Headroom(args.headroom));
    }
    if args.recordings == 0 && args.transcriptions == 0 {
        return Err(OffloaderPlanError::Empty);
    }
    let mut notes = Vec::new();
    let mut vcpus = 0.0;
    let mut memory = 0.0;
    let mut storage = 0.0;
    let mut per_recording_vcpus = None;
    if args.recordings > 0 {
        let quality = args.quality.ok_or(OffloaderPlanError::NoQuality)?;
        let table = RecordingTable::published()?;
        let row = table
            .row(quality)
            .ok_or(OffloaderPlanError::NoRecordingRow(quality))?;
        let host = host_of(&row.instance)?;
        let n = f64::from(row.concurrency);
        let per_job = row.cpu.value().0 / 100.0 * f64::from(host.vcpus) / n;
        per_recording_vcpus = Some(per_job);
        vcpus += per_job * f64::from(args.recordings);
        memory += row.memory.value().0 / n * f64::from(args.recordings);
        storage += row.recording_size.value().0 * f64::from(args.recordings);
        notes.push(format!(
            "published: {} {}-quality recordings on {} at {} CPU, {} memory; the docs recommend \
             max_concurrent_jobs = {}",
            row.concurrency,
            format!("{quality:?}").to_lowercase(),
            host.name,
            row.cpu.text(),
            row.memory.text(),
            row.concurrency
        ));
    }
    let mut transcription_secs = None;
    if args.transcriptions > 0 {
        if args.call_minutes == 0 {
            return Err(OffloaderPlanError::NoCallLength);
        }
        let table = TranscriptionTable::published()?;
        let call_secs = f64::from(args.call_minutes) * 60.0;
        let row = table.row(args.model, args.threads, call_secs).ok_or(
            OffloaderPlanError::NoTranscriptionRow {
                model: args.model,
                threads: args.threads,
            },
        )?;
        let host = host_of(&row.instance)?;
        vcpus += row.cpu.value().0 / 100.0 * f64::from(host.vcpus) * f64::from(args.transcriptions);
        memory += row.memory.value().0 * f64::from(args.transcriptions);
        transcription_secs = Some(call_secs / row.speed.value().0);
        notes.push(format!(
            "transcription figures from the {} {}-thread row of a {} call ({} CPU, {} memory, {})",
            format!("{:?}", args.model).to_lowercase(),
            args.threads,
            row.call_duration.text(),
            row.cpu.text(),
            row.memory.text(),
            row.speed.text()
        ));
    }
    if args.family != Family::C6i {
        notes.push(format!(
            "the tables were measured on c6i.2xlarge; {} sizes are costed per vCPU without adjustment",
            args.family
        ));
    }
    let sizes: Vec<OffloaderSize> = catalog::family(args.family)
        .map(|instance| {
            let cpu_pct = vcpus / f64::from(instance.vcpus) * 100.0;
            let memory_pct = memory / instance.memory_bytes() * 100.0;
            OffloaderSize {
                instance,
                cpu_pct,
                memory_pct,
                max_recordings: per_recording_vcpus.map(|per| {
                    // Truncation intended: whole jobs only.
                    (args.headroom / 100.0 * f64::from(instance.vcpus) / per).floor() as u32
                }),
                fits: cpu_pct <= args.headroom && memory_pct <= args.headroom,
            }
        })
        .collect();
    let pick = sizes.iter().find(|s| s.fits).map(|s| s.instance.name);
    Ok(OffloaderPlan {
        recordings: args.recordings,
        quality: args.quality,
        transcriptions: args.transcriptions,
        model: args.model,
        threads: args.threads,
        busy_vcpus: vcpus,
        memory_gb: memory / 1e9,
        storage_gb_per_hour: storage / 1e9,
        transcription_secs,
        headroom_pct: args.headroom,
        sizes,
        pick,
        notes,
    })
}

impl OffloaderPlan {
    /// The aligned text report.
    pub fn render(&self) -> String {
        let mut out = format!(
            "plan offloader: {} recordings ({}), {} transcriptions ({}, {} threads)\n\
             demand: {:.2} busy vCPU, {:.2} GB memory, {:.1} GB/hour of recordings",
            self.recordings,
            self.quality
                .map_or("-".to_owned(), |q| format!("{q:?}").to_lowercase()),
            self.transcriptions,
            format!("{:?}", self.model).to_lowercase(),
            self.threads,
            self.busy_vcpus,
            self.memory_gb,
            self.storage_gb_per_hour,
        );
        if let Some(secs) = self.transcription_secs {
            out.push_str(&format!(", {:.1} min per transcription", secs / 60.0));
        }
        out.push_str("\n\n");
        let mut t = TextTable::new(&[
            ("instance", Align::Left),
            ("vCPU", Align::Right),
            ("mem GiB", Align::Right),
            ("CPU %", Align::Right),
            ("memory %", Align::Right),
            ("max recordings", Align::Right),
            ("", Align::Left),
        ]);
        for s in &self.sizes {
            let mark = fit_mark(s.instance.name, self.pick, s.fits, self.headroom_pct);
            t.row(vec![
                s.instance.name.to_owned(),
                s.instance.vcpus.to_string(),
                fixed(s.instance.memory_gib, 0),
                fixed(s.cpu_pct, 1),
                fixed(s.memory_pct, 1),
                s.max_recordings.map_or("-".to_owned(), |m| m.to_string()),
                mark,
            ]);
        }
        out.push_str(&t.render());
        out.push('\n');
        for n in &self.notes {
            out.push_str("note: ");
            out.push_str(n);
            out.push('\n');
        }
        out
    }
}

/// Runs `callsbench plan offloader`.
pub fn run(args: &OffloaderArgs, json: bool) -> anyhow::Result<ExitCode> {
    let plan = plan(args)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", plan.render());
    }
    Ok(if plan.pick.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "[table]\ntitle = \"t\"\nversions = \"v\"\ninstance = \"c6i.2xlarge\"\n\n\
                        [sources.s]\ndocument = \"d\"\nsection = \"s\"\nreproduced_in = \"r\"\n\n\
                        [[model]]\nmodel = \"tiny\"\nfile_size = \"75MB\"\nmemory = \"~273MB\"\n";

    fn row(processing: &str) -> String {
        format!(
            "\n[[row]]\nmodel = \"tiny\"\nthreads = 1\ncpu = \"13.5%\"\nmemory = \"1.20GB\"\n\
             call_duration = \"10m\"\nprocessing_time = \"{processing}\"\nspeed = \"4.28x\"\n\
             instance = \"c6i.2xlarge\"\nsource = \"s\"\n"
        )
    }

    #[test]
    fn a_speed_that_disagrees_with_the_times_is_rejected_at_its_row() {
        assert!(TranscriptionTable::parse("t.toml", &format!("{HEAD}{}", row("2m20s"))).is_ok());
        let err =
            TranscriptionTable::parse("t.toml", &format!("{HEAD}{}", row("3m20s"))).unwrap_err();
        let msg = err.to_string();
        // The row's table starts on line 16.
        assert!(
            msg.starts_with("t.toml:16:1: speed 4.28x disagrees"),
            "{msg}"
        );
    }

    #[test]
    fn a_bad_duration_says_what_was_expected() {
        let err = TranscriptionTable::parse("t.toml", &format!("{HEAD}{}", row("2 minutes")))
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("t.toml:22:19: "), "{msg}");
        assert!(
            msg.contains("expected whole hours, minutes and seconds"),
            "{msg}"
        );
    }

    #[test]
    fn per_job_costs_follow_the_published_rows() {
        let args = OffloaderArgs {
            recordings: 6,
            quality: Some(Quality::Medium),
            transcriptions: 0,
            model: WhisperModel::Base,
            threads: 2,
            call_minutes: 60,
            family: Family::C6i,
            headroom: 70.0,
        };
        let p = plan(&args).unwrap();
        // 6 medium recordings = the published row: 66 % of 8 vCPU, 4 GB, 6 × 0.7 GB/hour.
        assert!((p.busy_vcpus - 5.28).abs() < 1e-9, "{}", p.busy_vcpus);
        assert!((p.memory_gb - 4.0).abs() < 1e-9);
        assert!((p.storage_gb_per_hour - 4.2).abs() < 1e-9);
        let xl2 = p
            .sizes
            .iter()
            .find(|s| s.instance.name == "c6i.2xlarge")
            .unwrap();
        assert!((xl2.cpu_pct - 66.0).abs() < 1e-9);
        // 70 % of 8 vCPU over 0.88 vCPU per recording: 6 whole recordings.
        assert_eq!(xl2.max_recordings, Some(6));
        assert_eq!(p.pick, Some("c6i.2xlarge"));
    }
}
