//! `stackctl`: one program in place of the board's launch script.

mod cli;
mod commands;
mod control;
mod http;
mod logging;
mod metrics;
mod notify;
mod process;
mod service;
mod signals;
mod status;

use std::process::ExitCode;

use clap::Parser;
use stackctl_config::LogFormat;

use crate::cli::{Cli, Command, ShmCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `up` sets up logging itself, from its configuration's `log` section; the other commands
    // talk to a person and log only what goes wrong, as text.
    let is_up = matches!(cli.command, Command::Up(_));
    let logging = if is_up {
        Ok(())
    } else {
        logging::init(None, logging::Style::detect(LogFormat::Text))
            .map_err(|e| commands::ConfigError::from(e).into())
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
            if err.downcast_ref::<commands::ConfigError>().is_some() {
                ExitCode::from(commands::CONFIG_ERROR)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    use commands::service::Action;
    match command {
        Command::Shm(ShmCommand::Inspect(args)) => commands::shm_inspect::run(&args),
        Command::Shm(ShmCommand::Tap(args)) => commands::shm_tap::run(&args),
        Command::Config(args) => commands::config::run(&args),
        Command::Check(flags) => commands::check::run(&flags),
        Command::Plugins(flags) => commands::plugins::run(&flags),
        Command::Up(args) => {
            let loaded = commands::load(&args.config)?;
            // The flag beats the file (and its variable), as every flag does.
            let format = args.log_format.map_or(loaded.config.log.format, Into::into);
            logging::init(
                Some(&loaded.config.log.level),
                logging::Style::detect(format),
            )
            .map_err(commands::ConfigError::from)?;
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            block_on(commands::up::run(loaded))
        }
        Command::Status(args) => block_on(commands::status::run(&args)),
        Command::Restart(args) => block_on(commands::service::run(Action::Restart, &args)),
        Command::Stop(args) => block_on(commands::service::run(Action::Stop, &args)),
        Command::Start(args) => block_on(commands::service::run(Action::Start, &args)),
        Command::Down(socket) => block_on(commands::down::run(&socket)),
        Command::Logs(args) => block_on(commands::logs::run(&args)),
    }
}

/// One thread is plenty for a supervisor: its work is waiting.
fn block_on<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)?
        .block_on(future)
}
