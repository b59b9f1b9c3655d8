//! `callsbench table FILE`: reproduce a published rtcd benchmark table on this machine.
//!
//! For every selected row of `scenarios/tables/<family>.toml`: scale the call mix (`--scale`), write a
//! scenario with the media of the table's client generation (`DIR/scenarios/row-NN.toml`), run it
//! with `callsbench run` in a child process (`DIR/rows/row-NN/`, output in `DIR/logs/row-NN.log`),
//! read its results, and put the measurement beside the published row, the per-flow rates derived
//! from it and the flow model's prediction for the mix that ran. Writes `DIR/table.md`,
//! `DIR/table.json`, the per-flow plot and each row's report; prints the tables.
//!
//! The run step is a [`runner::RowRunner`], so tests drive the whole command with synthetic results.
//!
//! A row's status is `passed`, `failed` (a threshold), `saturated` (the harness could not keep up),
//! `lossy` (more than 1 % media loss, so received-side egress reads low), `incomplete`,
//! `interrupted` or `error` (no results).
//!
//! Exit codes: 0 every row passed and every measured per-flow bandwidth figure is within the
//! tolerance of the published one; 1 otherwise; 2 bad input; 130 interrupted (the rows so far are
//! written).

pub mod render;
pub mod reproduce;
pub mod runner;
pub mod scenario;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::plan::model::{CapacityModel, FitError};
use crate::plan::table::{BenchmarkTable, TableError};
use crate::report::RunResult;
use crate::scenario::units::parse_duration;
use reproduce::{Reproduced, ReproducedRow};
use runner::{ChildRunner, RowRunner, RunStatus, RunnerError};
use scenario::{MediaChoice, RowPhases, RowSelection, ScenarioGenError};

/// `callsbench table` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct TableArgs {
    /// Published table: scenarios/tables/c6i.toml or scenarios/tables/c7i.toml.
    pub file: PathBuf,
    /// Fraction of each row's sessions to run, above 0 and at most 1. Calls are scaled while at
    /// least one is left; then the single call is made smaller.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Rows to run by published number, e.g. `1,3,5-7` (default: all).
    #[arg(long)]
    pub rows: Option<String>,
    /// Output directory (default: reports/<family>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Join ramp of every row.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub join: Duration,
    /// Pause between the last join and the steady window.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Steady window every average is taken over.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub steady: Duration,
    /// Folder of the media samples (default: `media` beside the table's folder).
    #[arg(long)]
    pub media: Option<PathBuf>,
    /// rtcd base URL handed to every `callsbench run` (repeatable); default the embedded SFU.
    #[arg(long = "rtcd", value_name = "URL")]
    pub rtcd: Vec<String>,
    /// Largest difference of a measured per-flow bandwidth figure from the published one, percent.
    #[arg(long, default_value_t = 5.0)]
    pub tolerance: f64,
    /// Read rows whose results directory already exists instead of running them again.
    #[arg(long)]
    pub reuse: bool,
    /// Do not render each row's report.md / report.html and plots.
    #[arg(long)]
    pub no_row_reports: bool,
    /// Write the scenarios and print what would run, without running anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// Why the table could not be reproduced at all (a single row's failure is recorded in its row).
#[derive(Debug, thiserror::Error)]
pub enum TableCmdError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Scenario(#[from] ScenarioGenError),
    #[error(transparent)]
    Fit(#[from] FitError),
    #[error("generated scenario is invalid: {0}")]
    Generated(#[from] crate::scenario::ScenarioError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} already holds results: remove it, pass --reuse, or choose another --out")]
    Exists(String),
    #[error("--tolerance must be a percentage above 0, got {0}")]
    Tolerance(f64),
    #[error("writing {path}: {message}")]
    Write { path: String, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TableCmdError + '_ {
    move |source| TableCmdError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The result of one `table` invocation.
#[derive(Debug, Clone)]
pub struct TableRun {
    pub reproduced: Reproduced,
    pub out: PathBuf,
    /// Ctrl-C stopped the rows; the table holds the rows so far.
    pub interrupted: bool,
    /// Scenario files written (dry run: nothing else happened).
    pub scenarios: Vec<PathBuf>,
}

impl TableRun {
    /// 0, 1 or 130 as documented on the module.
    pub fn exit_code(&self) -> ExitCode {
        if self.interrupted {
            return ExitCode::from(130);
        }
        let check = self.reproduced.bandwidth_check();
        let clean = self.reproduced.rows.iter().all(|r| r.status == "passed");
        if clean && check.within == check.checked {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(crate::cli::EXIT_FAILED)
        }
    }
}

/// The command line that regenerates the output (canonical form of the arguments).
pub fn regenerating_command(args: &TableArgs, out: &Path) -> String {
    let mut c = format!(
        "callsbench table {} --scale {} --out {} --join {}s --settle {}s --steady {}s",
        args.file.display(),
        args.scale,
        out.display(),
        args.join.as_secs_f64(),
        args.settle.as_secs_f64(),
        args.steady.as_secs_f64()
    );
    if let Some(rows) = &args.rows {
        c += &format!(" --rows {rows}");
    }
    for url in &args.rtcd {
        c += &format!(" --rtcd {url}");
    }
    c
}

/// Runs `callsbench table`.
pub fn command(args: TableArgs) -> anyhow::Result<ExitCode> {
    let runner = ChildRunner {
        program: std::env::current_exe()?,
        extra_args: args
            .rtcd
            .iter()
            .flat_map(|u| ["--rtcd".to_owned(), u.clone()])
            .collect(),
    };
    let run = reproduce_table(&args, &runner, &mut |line| eprintln!("{line}"))?;
    if args.dry_run {
        for s in &run.scenarios {
            println!("{}", s.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render::to_text(&run.reproduced));
    println!(
        "\nwrote {} and {}",
        run.out.join("table.md").display(),
        run.out.join("table.json").display()
    );
    Ok(run.exit_code())
}

/// Reproduces the table with `runner` doing each row's run; `progress` receives a line per step.
pub fn reproduce_table(
    args: &TableArgs,
    runner: &dyn RowRunner,
    progress: &mut dyn FnMut(String),
) -> Result<TableRun, TableCmdError> {
    if !(args.tolerance > 0.0 && args.tolerance.is_finite()) {
        return Err(TableCmdError::Tolerance(args.tolerance));
    }
    let table = BenchmarkTable::load(&args.file)?;
    let family = table.meta.family;
    let n_rows = u32::try_from(table.rows.len()).unwrap_or(u32::MAX);
    let selection = match &args.rows {
        Some(text) => RowSelection::parse(text, n_rows)?,
        None => RowSelection::all(n_rows),
    };
    // Scale every row first: a bad scale fails before anything runs.
    let rows: Vec<_> = table
        .rows
        .iter()
        .filter(|r| selection.contains(r.row))
        .map(|r| scenario::scale_row(r, args.scale).map(|s| (r, s)))
        .collect::<Result<_, _>>()?;

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(family.name()));
    let scenario_dir = out.join("scenarios");
    let rows_dir = out.join("rows");
    let log_dir = out.join("logs");
    for d in [&scenario_dir, &rows_dir, &log_dir] {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    if !args.reuse {
        for (r, _) in &rows {
            let dir = rows_dir.join(scenario::row_stem(r.row));
            if dir.exists() {
                return Err(TableCmdError::Exists(dir.display().to_string()));
            }
        }
    }
    let media_dir = match &args.media {
        Some(m) => m.clone(),
        None => args
            .file
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."))
            .join("media"),
    };
    let media_abs = std::fs::canonicalize(&media_dir).map_err(io(&media_dir))?;
    let scenario_abs = std::fs::canonicalize(&scenario_dir).map_err(io(&scenario_dir))?;
    let media_rel = scenario::relative_to(&media_abs, &scenario_abs);
    let phases = RowPhases {
        join: args.join,
        settle: args.settle,
        steady: args.steady,
    };
    let command = regenerating_command(args, &out);

    // Write and validate every scenario before the first run.
    let mut scenarios = Vec::new();
    for (r, scaled) in &rows {
        let path = scenario_dir.join(format!("{}.toml", scenario::row_stem(r.row)));
        let text = scenario::scenario_text(&table, r, scaled, phases, &media_rel, &command);
        std::fs::write(&path, text).map_err(io(&path))?;
        crate::scenario::Scenario::load(&path)?;
        scenarios.push(path);
    }

    let model = CapacityModel::fit_table(&table)?;
    let audio_bps = reproduce::audio_rate_bps(&table);
    let media = MediaChoice::for_family(family);
    let mut reproduced = Reproduced {
        family: family.to_string(),
        table: args.file.display().to_string(),
        published: table.meta.published.clone(),
        versions: table.meta.versions.clone(),
        published_media: table.meta.media.clone(),
        media: media.note.to_owned(),
        scale: args.scale,
        command,
        machine: None,
        published_audio_kbps: audio_bps.map(|a| a / 1e3),
        tolerance_pct: args.tolerance,
        rows: Vec::new(),
    };
    let mut run = TableRun {
        reproduced: reproduced.clone(),
        out: out.clone(),
        interrupted: false,
        scenarios: scenarios.clone(),
    };
    if args.dry_run {
        for ((r, s), path) in rows.iter().zip(&scenarios) {
            progress(format!(
                "row {}: {} → {}×{} ({})",
                r.row,
                r.label(),
                s.mix.calls(),
                s.mix.users_per_call(),
                path.display()
            ));
        }
        return Ok(run);
    }

    for ((r, scaled), path) in rows.iter().zip(&scenarios) {
        let stem = scenario::row_stem(r.row);
        let dir = rows_dir.join(&stem);
        let log = log_dir.join(format!("{stem}.log"));
        let reuse = args.reuse && dir.join("summary.json").exists();
        progress(format!(
            "row {}: {} as {}×{}{}",
            r.row,
            r.label(),
            scaled.mix.calls(),
            scaled.mix.users_per_call(),
            if reuse { " (reusing results)" } else { "" }
        ));
        let status = if reuse {
            Ok(RunStatus::Passed)
        } else {
            runner.run(path, &dir, &log)
        };
        let interrupted = matches!(status, Err(RunnerError::Interrupted));
        let read = match &status {
            Ok(_) | Err(RunnerError::Interrupted) => Some(RunResult::read(&dir)),
            Err(_) => None,
        };
        let result = match read {
            Some(Ok(result)) => Some(result),
            Some(Err(e)) if !interrupted => {
                let detail = format!("results unreadable: {e}");
                reproduced.rows.push(row_without_results(
                    r, scaled, &model, audio_bps, &stem, detail,
                ));
                continue;
            }
            _ => None,
        };
        let Some(result) = result else {
            let detail = match status {
                Err(e) => e.to_string(),
                Ok(_) => "no results".to_owned(),
            };
            reproduced.rows.push(row_without_results(
                r, scaled, &model, audio_bps, &stem, detail,
            ));
            if interrupted {
                run.interrupted = true;
                break;
            }
            continue;
        };
        if reproduced.machine.is_none() {
            reproduced.machine = Some(result.manifest.host.clone());
        }
        let measured = reproduce::measured(&result);
        let published = reproduce::published(r, audio_bps);
        let predicted = reproduce::predicted(&model, &scaled.mix);
        let mut detail = None;
        let status_text = if interrupted {
            detail = Some("interrupted: partial results".to_owned());
            "interrupted"
        } else if !measured.complete {
            detail = result.manifest.end_detail.clone();
            "incomplete"
        } else if let Some(note) = loss_note(&result) {
            detail = Some(note);
            "lossy"
        } else if measured.saturated {
            detail = Some(format!(
                "the harness saturated ({}): bandwidth and latency figures are suspect",
                result.summary.self_health.reasons.join(", ")
            ));
            "saturated"
        } else if status.as_ref().is_ok_and(|s| *s == RunStatus::Failed) {
            "failed"
        } else {
            "passed"
        };
        if !args.no_row_reports
            && let Err(e) = crate::report::render::write_report(&result, &dir)
        {
            let note = format!("report not rendered: {e}");
            detail = Some(detail.map_or(note.clone(), |d| format!("{d}; {note}")));
        }
        reproduced.rows.push(ReproducedRow {
            row: r.row,
            label: r.label(),
            differences: reproduce::differences(&published, Some(&measured), &predicted),
            published,
            scaled: *scaled,
            flows: scaled.mix.flows().into(),
            results: format!("rows/{stem}"),
            status: status_text.to_owned(),
            detail,
            measured: Some(measured),
            predicted,
        });
        if interrupted {
            run.interrupted = true;
            break;
        }
    }

    write_outputs(&reproduced, &out)?;
    run.reproduced = reproduced;
    Ok(run)
}

/// Media loss above this share makes a row's egress figures (counted where the participants
/// receive) read low.
pub const LOSSY_ABOVE: f64 = 0.01;

/// Why a row's received-side figures are too low to trust, if they are.
pub fn loss_note(result: &RunResult) -> Option<String> {
    let loss = result.summary.qoe.loss.filter(|l| *l > LOSSY_ABOVE)?;
    let drops = result
        .counts
        .get("host.udp_rcvbuf_errors")
        .copied()
        .unwrap_or(0);
    Some(format!(
        "{:.1}% media loss ({drops} host UDP receive-buffer drops): egress is counted where the \
         participants receive it, so this row's bandwidth and per-flow figures read low",
        loss * 100.0
    ))
}

fn row_without_results(
    r: &crate::plan::table::BenchmarkRow,
    scaled: &scenario::ScaledRow,
    model: &CapacityModel,
    audio_bps: Option<f64>,
    stem: &str,
    detail: String,
) -> ReproducedRow {
    let published = reproduce::published(r, audio_bps);
    let predicted = reproduce::predicted(model, &scaled.mix);
    ReproducedRow {
        row: r.row,
        label: r.label(),
        differences: reproduce::differences(&published, None, &predicted),
        published,
        scaled: *scaled,
        flows: scaled.mix.flows().into(),
        results: format!("rows/{stem}"),
        status: "error".to_owned(),
        detail: Some(detail),
        measured: None,
        predicted,
    }
}

/// Writes `table.json`, `table.md` and the per-flow plot.
fn write_outputs(t: &Reproduced, out: &Path) -> Result<(), TableCmdError> {
    let json = out.join("table.json");
    let text = serde_json::to_string_pretty(t).map_err(|e| TableCmdError::Write {
        path: json.display().to_string(),
        message: e.to_string(),
    })?;
    std::fs::write(&json, text + "\n").map_err(io(&json))?;
    let plot = render::plot(t, out).map_err(|message| TableCmdError::Write {
        path: out.join("per_flow.png").display().to_string(),
        message,
    })?;
    let md = out.join("table.md");
    let markdown = render::to_markdown(t, plot.as_ref().map(|_| "per_flow.svg"));
    std::fs::write(&md, markdown).map_err(io(&md))?;
    Ok(())
}
