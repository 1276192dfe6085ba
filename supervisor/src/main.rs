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
use stackctl::plugins;

use crate::cli::{Cli, Command, ShmCommand};
use crate::control::Request;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `up` sets up logging itself, from its configuration's `log.level`.
    let logging = match cli.command {
        Command::Up(_) => Ok(()),
        _ => init_logging(None),
    };
    let result = logging.and_then(|()| run(cli.command));
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

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Shm(ShmCommand::Inspect(args)) => shm::inspect::run(&args),
        Command::Shm(ShmCommand::Tap(args)) => shm::tap::run(&args),
        Command::Config(args) => up::show(&args),
        Command::Check(flags) => up::check(&flags),
        Command::Plugins(flags) => up::list_plugins(&flags),
        Command::Up(args) => {
            let loaded = up::load(&args.config)?;
            init_logging(Some(&loaded.config.log.level))?;
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            block_on(up::up(loaded))
        }
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

/// Logs to stderr: `RUST_LOG` if set, else `level` (the configuration's `log.level`), else info.
fn init_logging(level: Option<&str>) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => tracing_subscriber::EnvFilter::try_new(&env)
            .map_err(|e| up::ConfigError(format!("RUST_LOG = {env:?}: not a log filter: {e}")))?,
        _ => {
            let level = level.unwrap_or("info");
            tracing_subscriber::EnvFilter::try_new(level).map_err(|e| {
                up::ConfigError(format!("log.level = {level:?}: not a log filter: {e}"))
            })?
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}
