//! `callsbench check`: validate scenario files without running them, optionally print the plan.
//!
//! Every file is checked (an error in one does not hide errors in the next); each error is printed
//! as `path:line:col: message` on stderr and the command exits 2 if any file is bad.

use std::io::Write;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;

use super::shard::{DEFAULT_MAX_CALL_SIZE, ShardSpec, assign};
use super::units::parse_wall_clock;
use super::{Plan, PlanConfig, Scenario, Summary};

/// Arguments of `callsbench check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Scenario files to validate.
    #[arg(required = true, value_name = "SCENARIO")]
    pub scenarios: Vec<PathBuf>,

    /// Print a summary of the expanded plan (calls, sessions, roles, flows, events, phases).
    #[arg(long)]
    pub print_plan: bool,

    /// Summarise only shard I of N (1-based), and list every shard's share of the plan.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<ShardSpec>,

    /// Calls larger than this are split across shards by participant index.
    #[arg(long, value_name = "N", default_value_t = NonZeroU32::new(DEFAULT_MAX_CALL_SIZE).unwrap_or(NonZeroU32::MIN))]
    pub max_call_size: NonZeroU32,

    /// Replace the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,

    /// Wall-clock start of the plan (RFC 3339 like 2026-11-22T12:00:00Z, or @unix-seconds).
    #[arg(long, value_name = "TIME", value_parser = parse_wall_clock)]
    pub start_at: Option<SystemTime>,

    /// Write the full expanded plan (or the shard) as JSON to this file; needs a single scenario.
    #[arg(long, value_name = "FILE")]
    pub write_plan: Option<PathBuf>,
}

fn parse_shard(text: &str) -> Result<ShardSpec, String> {
    text.parse()
}

/// Runs `callsbench check`.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    if args.write_plan.is_some() && args.scenarios.len() != 1 {
        eprintln!("callsbench check: --write-plan needs exactly one scenario");
        return Ok(ExitCode::from(crate::cli::EXIT_ERROR));
    }
    let mut bad = 0usize;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in &args.scenarios {
        let scenario = match Scenario::load(path) {
            Ok(s) => s,
            Err(err) => {
                eprintln!("{err}");
                bad += 1;
                continue;
            }
        };
        let scenario = match args.seed {
            Some(seed) => scenario.with_seed(seed),
            None => scenario,
        };
        let plan = Plan::expand(
            &scenario,
            &PlanConfig {
                start_at: args.start_at,
            },
        );
        let plan = match args.shard {
            Some(spec) => {
                writeln!(out, "{}: ok", path.display())?;
                print_shares(&mut out, &plan, spec.count(), args.max_call_size)?;
                plan.shard(spec, args.max_call_size)?
            }
            None => {
                writeln!(
                    out,
                    "{}: ok ({} calls, {} sessions)",
                    path.display(),
                    scenario.call_count(),
                    scenario.session_count()
                )?;
                plan
            }
        };
        if args.print_plan {
            writeln!(out, "{}", Summary::of(&plan))?;
        }
        if let Some(file) = &args.write_plan {
            std::fs::write(file, plan.to_json())
                .with_context(|| format!("writing the plan to {}", file.display()))?;
        }
    }
    Ok(if bad > 0 {
        ExitCode::from(crate::cli::EXIT_ERROR)
    } else {
        ExitCode::SUCCESS
    })
}

/// One line per shard: its calls (whole or split) and sessions.
fn print_shares(
    out: &mut impl Write,
    plan: &Plan,
    count: NonZeroU32,
    max_call_size: NonZeroU32,
) -> std::io::Result<()> {
    for (i, pieces) in assign(plan.calls(), count, max_call_size)
        .iter()
        .enumerate()
    {
        let sessions: usize = pieces.iter().map(|p| p.participants.len()).sum();
        let split = pieces
            .iter()
            .filter(|p| p.participants.len() as u32 != plan.calls()[p.call as usize].participants())
            .count();
        writeln!(
            out,
            "  shard {}/{}: {} pieces of calls ({} split), {} sessions",
            i + 1,
            count,
            pieces.len(),
            split,
            sessions
        )?;
    }
    Ok(())
}
