//! Command-line interface: argument types and the `run` entry point the binary and tests share.
//!
//! Exit codes: 0 success; 1 a check failed (thresholds, conformance, regression);
//! 2 usage or input error (bad scenario, unreadable file); clap's own usage errors also exit 2.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code when the command ran but its checks failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for bad input or an operational error.
pub const EXIT_ERROR: u8 = 2;

/// Load-test and conformance toolkit for Mattermost Calls (rtcd and calls-offloader).
#[derive(Debug, Parser)]
#[command(name = "callsbench", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. Each arrives with the issue that makes it work; none is listed before it does.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Predict rtcd or calls-offloader resource use and pick an instance size from the published benchmarks.
    Plan(crate::plan::cli::PlanArgs),
    /// Validate scenario files without running them; optionally print the expanded plan.
    Check(crate::scenario::check::CheckArgs),
    /// Render report.md and a single-file report.html (with plots) from a results directory.
    Report(crate::report::cli::ReportArgs),
    /// Compare two results directories figure by figure; exit 1 on a regression beyond the limits.
    Compare(crate::report::cli::CompareArgs),
    /// Merge the results directories of a distributed run's shards into one.
    Merge(crate::report::cli::MergeArgs),
    /// Check that a server conforms to the real service's API (status codes, bodies, framing, metrics).
    Conform(ConformArgs),
    /// Media samples: inspect Ogg/Opus and IVF/VP8 files.
    #[command(subcommand)]
    Media(MediaCommand),
    /// Run a scenario. Scenarios with an [offloader] table run a job load against a calls-offloader.
    Run(crate::run::RunArgs),
    /// Reproduce a published rtcd benchmark table (scenarios/tables/*.toml) on this machine, scaled.
    Table(crate::table::TableArgs),
    /// The embedded reference SFU (`callsref sfu`), for runs where the `callsref` binary was not
    /// built beside this one (`cargo run -- run ...`): the harness spawns itself as the target.
    #[command(hide = true)]
    Sfu(callsref::sfu::server::SfuArgs),
}

/// `callsbench conform <target>`.
#[derive(Debug, clap::Args)]
pub struct ConformArgs {
    #[command(subcommand)]
    pub target: ConformTarget,
}

/// The services a conformance suite exists for.
#[derive(Debug, Subcommand)]
pub enum ConformTarget {
    /// Black-box suite for an rtcd (or rtcd-compatible SFU): HTTP API, auth, /ws, metrics.
    Rtcd(crate::conform::rtcd::RtcdArgs),
    /// The calls-offloader API contract (offloader.md §9.1), against the Go service or
    /// `callsref offloader`: table on stdout, JSON results file, exit 1 on any failure.
    Offloader(crate::conform::offloader::ConformOffloaderArgs),
}

/// `callsbench media ...`
#[derive(Debug, Subcommand)]
pub enum MediaCommand {
    /// Print what scenarios/media/MANIFEST.toml records for a file (sha256, codec, resolution, fps,
    /// mean and peak bitrate, duration, keyframe interval), measured from the file, as TOML.
    Inspect {
        /// An Ogg/Opus or IVF/VP8 file.
        file: PathBuf,
    },
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Plan(args) => crate::plan::cli::run(args),
        Command::Check(args) => crate::scenario::check::run(args),
        Command::Report(args) => crate::report::cli::report(args),
        Command::Compare(args) => crate::report::cli::compare(args),
        Command::Merge(args) => crate::report::cli::merge(args),
        Command::Conform(args) => match args.target {
            ConformTarget::Rtcd(args) => crate::conform::rtcd::run(args),
            ConformTarget::Offloader(args) => crate::conform::offloader::command(args),
        },
        Command::Media(MediaCommand::Inspect { file }) => {
            let entry = crate::media::inspect(&file)?;
            print!("{}", crate::media::inspect::to_toml(&entry)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => crate::run::command(args),
        Command::Table(args) => crate::table::command(args),
        Command::Sfu(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(callsref::sfu::server::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
