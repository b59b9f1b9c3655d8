//! `callsbench`: thin binary over [`callsbench::cli::run`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = callsbench::cli::Cli::parse();
    match callsbench::cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("callsbench: {err:#}");
            ExitCode::from(callsbench::cli::EXIT_ERROR)
        }
    }
}
