//! The `report`, `compare` and `merge` commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::files::RunResult;

/// Arguments of `callsbench report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Results directory written by `run` or `merge`.
    pub dir: PathBuf,
    /// Where to write report.md, report.html and plots/ (default: the results directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Do not print the summary to the terminal.
    #[arg(long)]
    pub quiet: bool,
}

/// Renders report.md and report.html; exit 0 when written.
pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let result = RunResult::read(&args.dir)?;
    let out = args.out.unwrap_or_else(|| args.dir.clone());
    let files = super::render::write_report(&result, &out)
        .with_context(|| format!("rendering the report of {}", args.dir.display()))?;
    if !args.quiet {
        print!("{}", super::text::render(&result));
        println!(
            "\nwrote {} and {}",
            files.markdown.display(),
            files.html.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `callsbench compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Baseline results directory (e.g. under reports/baselines/).
    pub baseline: PathBuf,
    /// Results directory to judge.
    pub current: PathBuf,
    /// Largest tolerated worsening per figure, e.g. `cpu=10%,join_p99=20%`. Without it: cpu and
    /// memory 10 %, join_p99 and latency_p99 25 %, join_failures and disconnects 0 %.
    #[arg(long, value_parser = parse_limits)]
    pub max_regress: Option<super::compare::Limits>,
}

fn parse_limits(text: &str) -> Result<super::compare::Limits, String> {
    text.parse()
}

/// Prints the diff table; exit 1 when a figure regressed beyond its limit.
pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let baseline = RunResult::read(&args.baseline)?;
    let current = RunResult::read(&args.current)?;
    let limits = args
        .max_regress
        .unwrap_or_else(super::compare::Limits::defaults);
    let c = super::compare::compare(&baseline.summary, &current.summary, &limits);
    print!("{c}");
    Ok(if c.regressed() {
        ExitCode::from(crate::cli::EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Arguments of `callsbench merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Shard results directories.
    #[arg(required = true, num_args = 1..)]
    pub dirs: Vec<PathBuf>,
    /// Directory for the merged results.
    #[arg(long)]
    pub out: PathBuf,
}

/// Merges shard directories into one results directory and prints its summary.
pub fn merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let merged = super::merge::merge_dirs(&args.dirs)?;
    merged.write(&args.out)?;
    print!("{}", super::text::render(&merged));
    Ok(ExitCode::SUCCESS)
}
