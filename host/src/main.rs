//! The `longshore` binary: parse the command line, set up logging, run a command.

use std::process::ExitCode;

use clap::Parser;
use longshore::cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("longshore: {e:#}");
            ExitCode::FAILURE
        }
    }
}
