//! `stackctl`: one program in place of the board's launch script.

mod cli;
mod control;
mod ctl;
mod disk;
mod http;
mod logging;
mod metrics;
mod notify;
mod plan;
mod probe;
mod process;
mod profiling;
mod service;
mod shm;
mod shm_clean;
mod signals;
mod status;
mod up;

use std::process::ExitCode;

use clap::Parser;
use stackctl::plugins;
use stackctl_config::LogFormat;

use crate::cli::{Cli, Command, ShmCommand};
use crate::control::Request;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `up` sets up logging itself, from its configuration's `log` section; the other commands
    // talk to a person and log only what goes wrong, as text.
    let is_up = matches!(cli.command, Command::Up(_));
    let logging = if is_up {
        Ok(())
    } else {
        logging::init(None, logging::Style::detect(LogFormat::Text)).map_err(Into::into)
    };
    let result = logging.and_then(|()| run(cli.command));
    match result {
        Ok(code) => code,
        Err(err) => {
            // Once `up` logs, its last word goes through the log too: one JSON object in json
            // mode, a line with the journal's error priority under systemd. (Before that, as
            // for a configuration error, there is no log yet.)
            if is_up && tracing::dispatcher::has_been_set() {
                tracing::error!("{err:#}");
            } else {
                eprintln!("stackctl: {err:#}");
            }
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
            // The flag beats the file (and its variable), as every flag does.
            let format = args.log_format.map_or(loaded.config.log.format, Into::into);
            logging::init(
                Some(&loaded.config.log.level),
                logging::Style::detect(format),
            )?;
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
        // The supervisor's own loop runs on the main thread (`stackctl` in a profile).
        .thread_name("supervisor-io")
        .build()
        .map_err(anyhow::Error::from)?
        .block_on(future)
}
