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
