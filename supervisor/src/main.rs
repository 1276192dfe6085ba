//! `stackctl`: one program in place of the board's launch script.

mod cli;
mod control;
mod ctl;
mod http;
mod metrics;
mod notify;
mod plan;
mod probe;
mod process;
mod service;
mod shm;
mod shm_clean;
mod signals;
mod status;
mod up;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ShmCommand};
use crate::control::Request;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Shm(ShmCommand::Inspect(args)) => shm::inspect::run(&args),
        Command::Shm(ShmCommand::Tap(args)) => shm::tap::run(&args),
        Command::Config(args) => up::show(&args),
        Command::Check(flags) => up::check(&flags),
        Command::Up(args) => block_on(up::up(&args.config)),
        Command::Status(args) => control(&args.socket, Request::Status, args.json),
        Command::Restart(a) => control(&a.socket, Request::Restart { service: a.service }, false),
        Command::Stop(a) => control(&a.socket, Request::Stop { service: a.service }, false),
        Command::Start(a) => control(&a.socket, Request::Start { service: a.service }, false),
        Command::Down(socket) => control(&socket, Request::Down, false),
        Command::Logs(a) => {
            let request = Request::Logs {
                service: a.service,
                lines: a.lines,
                follow: a.follow,
            };
            control(&a.socket, request, false)
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("stackctl: {err:#}");
            if err.downcast_ref::<up::ConfigError>().is_some() {
                ExitCode::from(up::CONFIG_ERROR)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Runs a control command against the running `stackctl up`.
fn control(socket: &cli::SocketArgs, request: Request, json: bool) -> anyhow::Result<ExitCode> {
    let path = up::socket_path(socket)?;
    block_on(ctl::run(&path, request, json))
}

/// One thread is plenty for a supervisor: its work is waiting.
fn block_on<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)?
        .block_on(future)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
