//! `stackctl`: one program in place of the board's launch script.

mod cli;
mod commands;
mod control;
mod disk;
mod http;
mod logging;
mod metrics;
mod notify;
mod process;
mod profiling;
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
    match command {
        Command::Shm(ShmCommand::Inspect(args)) => commands::shm_inspect::run(&args),
        Command::Shm(ShmCommand::Tap(args)) => commands::shm_tap::run(&args),
        Command::Config(args) => commands::config::run(&args),
        Command::Check(flags) => commands::check::run(&flags),
        Command::Plugins(flags) => commands::plugins::run(&flags),
        Command::Up(args) => {
            commands::up::survive_signals()?;
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
        control => block_on(ask_up(control)),
    }
}

/// The commands that talk to the running `stackctl up` over its control socket.
async fn ask_up(command: Command) -> anyhow::Result<ExitCode> {
    use commands::service::Action;
    match command {
        Command::Status(args) => commands::status::run(&args).await,
        Command::Restart(args) => commands::service::run(Action::Restart, &args).await,
        Command::Stop(args) => commands::service::run(Action::Stop, &args).await,
        Command::Start(args) => commands::service::run(Action::Start, &args).await,
        Command::Down(socket) => commands::down::run(&socket).await,
        Command::Logs(args) => commands::logs::run(&args).await,
        // `run` hands only the commands above to this function.
        other => unreachable!("{other:?} does not talk to up"),
    }
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
