//! `stackctl logs SERVICE [-f] [-n N]`: a service's recent output, from the ring `up` keeps of
//! it, and with `-f` what it prints from then on.

use std::process::ExitCode;

use super::socket_path;
use crate::cli::LogsArgs;
use crate::control::Request;
use crate::control::client::request;

/// Runs the command.
pub async fn run(args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let path = socket_path(&args.socket)?;
    let logs = Request::Logs {
        service: args.service.clone(),
        lines: args.lines,
        follow: args.follow,
    };
    request(&path, &logs, &mut print_log_line).await?;
    Ok(ExitCode::SUCCESS)
}

/// One line of the service's output, on the stream it came from.
fn print_log_line(line: &serde_json::Value) {
    let text = line
        .get("text")
        .and_then(|t| t.as_str())
        .unwrap_or_default();
    let stream = line
        .get("stream")
        .and_then(|t| t.as_str())
        .unwrap_or("stdout");
    if stream == "stderr" {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}
