//! `callsref`: thin CLI over the `callsref` library.

use std::process::ExitCode;

use clap::Parser;

/// Reference servers for callsbench: an rtcd-compatible SFU and a calls-offloader-compatible job service.
#[derive(Debug, Parser)]
#[command(name = "callsref", version, about)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}
