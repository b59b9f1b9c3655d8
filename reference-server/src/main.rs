//! `callsref`: thin CLI over the `callsref` library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Reference servers for callsbench: an rtcd-compatible SFU and a calls-offloader-compatible job service.
#[derive(Debug, Parser)]
#[command(name = "callsref", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the calls-offloader-compatible job service.
    Offloader {
        /// Path to the configuration file (missing file: built-in defaults).
        #[arg(long, short = 'c', default_value = callsref::offloader::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Run as a job: the entrypoint of the runner image (behaviour from the environment).
    Runner,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => ExitCode::SUCCESS,
        Some(Command::Offloader { config }) => match callsref::offloader::run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("callsref offloader: {err:#}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Runner) => {
            ExitCode::from(u8::try_from(callsref::runner::run().rem_euclid(256)).unwrap_or(1))
        }
    }
}
