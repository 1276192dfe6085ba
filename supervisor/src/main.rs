//! `stackctl`: one program in place of the board's launch script.

mod cli;
mod control;
mod http;
mod metrics;
mod notify;
mod probe;
mod service;
mod shm;
mod signals;
mod status;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ShmCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Shm(ShmCommand::Inspect(args)) => shm::inspect::run(&args),
        Command::Shm(ShmCommand::Tap(args)) => shm::tap::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("stackctl: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
