//! The `plan` subcommand: arguments, dispatch and output (aligned text or `--json`).
//!
//! `callsbench plan --calls C --users N --unmuted U [...]` sizes an rtcd host; `--validate` prints the
//! leave-one-out error of the model on every published row; `plan offloader` sizes a calls-offloader host.
//! Exit codes: 0 success; 1 no size fits, or the leave-one-out median CPU error is above the 10 % goal;
//! 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::calibrate;
use super::catalog::Family;
use super::flow::CallMix;
use super::model::{Validation, leave_one_out};
use super::offloader::{self, OffloaderArgs};
use super::planner::{self, DEFAULT_HEADROOM_PCT};
use super::render::{Align, TextTable, coefficients_table, error_summary_table, fixed, signed_pct};
use super::table::BenchmarkTable;
use crate::cli::EXIT_FAILED;

/// Goal for the leave-one-out median CPU error, in percent (the Reports issue).
pub const VALIDATE_GOAL_PCT: f64 = 10.0;

/// Predict rtcd or calls-offloader resource use from the published benchmark tables, or from a model
/// calibrated on local results (`--calibrate DIR...`).
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PlanArgs {
    #[command(subcommand)]
    pub command: Option<PlanCommand>,
    /// Number of concurrent calls.
    #[arg(
        long,
        required_unless_present_any = ["validate", "calibrate"],
        conflicts_with = "validate"
    )]
    pub calls: Option<u32>,
    /// Participants per call.
    #[arg(
        long,
        required_unless_present_any = ["validate", "calibrate"],
        conflicts_with = "validate"
    )]
    pub users: Option<u32>,
    /// Unmuted (speaking) participants per call.
    #[arg(
        long,
        required_unless_present_any = ["validate", "calibrate"],
        conflicts_with = "validate"
    )]
    pub unmuted: Option<u32>,
    /// Number of calls with one screen sharer (as lt's -screen-sharing).
    #[arg(long, default_value_t = 0, conflicts_with = "validate")]
    pub screen: u32,
    /// Participants per call sending camera video (as lt's -video).
    #[arg(long, default_value_t = 0, conflicts_with = "validate")]
    pub video: u32,
    /// Instance family whose published table the model is fit to (default c7i, the current table).
    /// With --validate and no --family, both tables are validated.
    #[arg(long, value_enum)]
    pub family: Option<Family>,
    /// CPU (and memory) share a size may use, in percent.
    #[arg(long, default_value_t = DEFAULT_HEADROOM_PCT, conflicts_with = "validate")]
    pub headroom: f64,
    /// Print the leave-one-out error of the model on every published row.
    #[arg(long)]
    pub validate: bool,
    /// Refit the model on these local results directories (manifest.json + series/histograms, as
    /// written by `callsbench run`), print the fitted terms and the fit error; with --calls/--users/
    /// --unmuted, also plan with the calibrated model.
    #[arg(long, num_args = 1.., value_name = "DIR", conflicts_with = "validate")]
    pub calibrate: Vec<PathBuf>,
    /// With --calibrate: fit to the local results and the family's published rows together.
    #[arg(long, requires = "calibrate")]
    pub with_published: bool,
    /// Print JSON instead of a text table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `plan` subcommands.
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Size a calls-offloader host for concurrent recordings and transcriptions.
    Offloader(OffloaderArgs),
}

/// Runs `callsbench plan`.
pub fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    if let Some(PlanCommand::Offloader(o)) = args.command {
        return offloader::run(&o, args.json);
    }
    if args.validate {
        return validate(args.family, args.json);
    }
    if !args.calibrate.is_empty() {
        return calibrate(&args);
    }
    // Invariant: clap requires these three unless --validate, handled above.
    let (Some(calls), Some(users), Some(unmuted)) = (args.calls, args.users, args.unmuted) else {
        anyhow::bail!("--calls, --users and --unmuted are required");
    };
    let mix = CallMix::new(calls, users, unmuted, args.screen, args.video)?;
    let plan = planner::plan(mix, args.family.unwrap_or(Family::C7i), args.headroom)?;
    if args.json {
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

fn calibrate(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let family = args.family.unwrap_or(Family::C7i);
    let table = if args.with_published {
        Some(BenchmarkTable::published(family)?)
    } else {
        None
    };
    let cal = calibrate::calibrate(&args.calibrate, table.as_ref())?;
    let plan = match (args.calls, args.users, args.unmuted) {
        (Some(calls), Some(users), Some(unmuted)) => {
            let mix = CallMix::new(calls, users, unmuted, args.screen, args.video)?;
            let note = format!(
                "model calibrated on {} local results directories{}",
                cal.local,
                if cal.published > 0 {
                    format!(" and {} published {family} rows", cal.published)
                } else {
                    " (CPU in cores of the host they ran on, taken as vCPUs)".to_owned()
                }
            );
            Some(planner::plan_with_model(
                mix,
                family,
                args.headroom,
                &cal.model,
                Some(note),
            )?)
        }
        (None, None, None) => None,
        _ => anyhow::bail!("--calls, --users and --unmuted go together"),
    };
    if args.json {
        let value = serde_json::json!({ "calibration": cal, "plan": plan });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", calibrate::render_calibration(&cal));
        if let Some(p) = &plan {
            println!();
            print!("{}", p.render());
        }
    }
    Ok(match plan {
        Some(p) if p.pick.is_none() => ExitCode::from(EXIT_FAILED),
        _ => ExitCode::SUCCESS,
    })
}

fn validate(family: Option<Family>, json: bool) -> anyhow::Result<ExitCode> {
    let families = match family {
        Some(f) => vec![f],
        None => vec![Family::C6i, Family::C7i],
    };
    let mut results = Vec::new();
    for f in families {
        results.push(leave_one_out(&BenchmarkTable::published(f)?)?);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for v in &results {
            print!("{}", render_validation(v));
        }
    }
    let ok = results
        .iter()
        .all(|v| v.cpu.median_abs_pct <= VALIDATE_GOAL_PCT);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// The leave-one-out report as text.
pub fn render_validation(v: &Validation) -> String {
    let mut out = format!(
        "leave-one-out validation, {} table ({} rows): each row predicted by a model fit to the others\n",
        v.family,
        v.rows.len()
    );
    let mut t = TextTable::new(&[
        ("row", Align::Right),
        ("config", Align::Left),
        ("instance", Align::Left),
        ("CPU", Align::Right),
        ("pred", Align::Right),
        ("err", Align::Right),
        ("memory", Align::Right),
        ("pred GB", Align::Right),
        ("err", Align::Right),
        ("out", Align::Right),
        ("pred Mbps", Align::Right),
        ("err", Align::Right),
        ("in", Align::Right),
        ("pred Mbps", Align::Right),
        ("err", Align::Right),
    ]);
    for r in &v.rows {
        t.row(vec![
            r.row.to_string(),
            r.label.clone(),
            r.instance.to_owned(),
            r.cpu_published.clone(),
            format!("{}%", fixed(r.cpu_predicted_pct, 1)),
            signed_pct(r.cpu_error_pct),
            r.memory_published.clone(),
            fixed(r.memory_predicted_gb, 2),
            signed_pct(r.memory_error_pct),
            r.out_published.clone(),
            fixed(r.out_predicted_mbps, 0),
            signed_pct(r.out_error_pct),
            r.in_published.clone(),
            fixed(r.in_predicted_mbps, 1),
            signed_pct(r.in_error_pct),
        ]);
    }
    out.push_str(&t.render());
    out.push('\n');
    out += &error_summary_table(
        "worst row",
        &v.cpu,
        &v.memory,
        &v.bandwidth_out,
        &v.bandwidth_in,
    );
    out.push_str("\ncoefficients fit to all rows (what `plan` uses):\n");
    out.push_str(&coefficients_table(&v.full_fit));
    out.push('\n');
    out
}
