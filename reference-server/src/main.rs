//! `callsref`: thin CLI over the `callsref` library.
//!
//! Exit codes: 0 success, 1 runtime error, 2 usage error (clap).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Reference servers for callsbench: an rtcd-compatible SFU and a calls-offloader-compatible job service.
#[derive(Debug, Parser)]
#[command(name = "callsref", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the rtcd-compatible SFU.
    Sfu(callsref::sfu::server::SfuArgs),
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
        Command::Sfu(args) => run_sfu(args),
        Command::Offloader { config } => match callsref::offloader::run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("callsref offloader: {err:#}");
                ExitCode::FAILURE
            }
        },
        Command::Runner => {
            ExitCode::from(u8::try_from(callsref::runner::run().rem_euclid(256)).unwrap_or(1))
        }
    }
}

fn run_sfu(args: callsref::sfu::server::SfuArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("callsref sfu: starting runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(callsref::sfu::server::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callsref sfu: {e}");
            ExitCode::FAILURE
        }
    }
}
