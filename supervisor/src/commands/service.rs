//! `stackctl restart | stop | start SERVICE`: one service of the running stack.

use std::process::ExitCode;

use super::socket_path;
use crate::cli::ServiceArgs;
use crate::control::Request;
use crate::control::client::request;

/// What to do with the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `stackctl restart`.
    Restart,
    /// `stackctl stop`.
    Stop,
    /// `stackctl start`.
    Start,
}

/// Runs the command.
pub async fn run(action: Action, args: &ServiceArgs) -> anyhow::Result<ExitCode> {
    let path = socket_path(&args.socket)?;
    let service = args.service.clone();
    let call = match action {
        Action::Restart => Request::Restart { service },
        Action::Stop => Request::Stop { service },
        Action::Start => Request::Start { service },
    };
    request(&path, &call, &mut |_| {}).await?;
    Ok(ExitCode::SUCCESS)
}
