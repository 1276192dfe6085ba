//! `stackctl down`: stop the whole stack, in reverse dependency order, and end `stackctl up`.

use std::process::ExitCode;

use super::socket_path;
use crate::cli::SocketArgs;
use crate::control::Request;
use crate::control::client::request;

/// Runs the command.
pub async fn run(args: &SocketArgs) -> anyhow::Result<ExitCode> {
    let path = socket_path(args)?;
    request(&path, &Request::Down, &mut |_| {}).await?;
    Ok(ExitCode::SUCCESS)
}
