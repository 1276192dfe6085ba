//! `stackctl status [--json]`: the running stack's services, source and plugins, as a table or
//! as JSON (the same JSON as `GET /api/status`).

use std::process::ExitCode;

use anyhow::Context;

use super::socket_path;
use crate::cli::StatusArgs;
use crate::control::Request;
use crate::control::client::request;
use crate::status::StackStatus;

/// Runs the command.
pub async fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let path = socket_path(&args.socket)?;
    let response = request(&path, &Request::Status, &mut |_| {}).await?;
    if let Some(status) = response.status {
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&status).context("encoding the status")?
            );
        } else {
            print_status(&status);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The table `stackctl status` prints.
fn print_status(status: &StackStatus) {
    println!(
        "stackctl {} (pid {}): {}, up {}",
        status.version,
        status.pid,
        status.phase,
        duration(status.uptime_secs)
    );
    println!(
        "{:<26} {:<10} {:>7} {:>9} {:>8} {:<18} {:>6} {:>8}  DETAIL",
        "SERVICE", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "CPU%", "RSS"
    );
    for s in &status.services {
        let dash = || "-".to_owned();
        println!(
            "{:<26} {:<10} {:>7} {:>9} {:>8} {:<18} {:>6} {:>8}  {}",
            s.name,
            s.state.name(),
            s.pid.map_or_else(dash, |p| p.to_string()),
            s.uptime_secs.map_or_else(dash, duration),
            s.restarts,
            s.last_exit.clone().unwrap_or_else(dash),
            s.cpu_percent.map_or_else(dash, |c| format!("{c:.1}")),
            s.rss_bytes.map_or_else(dash, bytes),
            s.detail.clone().unwrap_or_default(),
        );
    }
    if let Some(src) = &status.source {
        let age = src.last_frame_age_ms.map_or_else(
            || "no frame yet".to_owned(),
            |ms| format!("last frame {ms:.0} ms ago"),
        );
        println!(
            "\nsource {}: {} frames, {age}; lost {}, malformed {}, torn copies retried {}, late tears {}, camera restarts {}",
            src.shm,
            src.frames,
            src.lost,
            src.malformed,
            src.torn_retries,
            src.late_tears,
            src.restarts
        );
    }
    if !status.plugins.is_empty() {
        println!(
            "\n{:<16} {:<9} {:<10} {:>9} {:>8}  ROUTES / DETAIL",
            "PLUGIN", "STATE", "VERSION", "FRAMES", "DROPPED"
        );
        for p in &status.plugins {
            let version = match (&p.version, &p.abi) {
                (Some(v), Some(abi)) => format!("{v} (ABI {abi})"),
                _ => "-".to_owned(),
            };
            let routes = p.routes.join(" ");
            println!(
                "{:<16} {:<9} {:<10} {:>9} {:>8}  {}",
                p.name,
                p.state,
                version,
                p.frames,
                p.dropped,
                p.detail.clone().unwrap_or(routes)
            );
        }
    }
}

fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn bytes(b: u64) -> String {
    match b {
        0..1_048_576 => format!("{}K", b / 1024),
        _ => format!("{:.1}M", b as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(duration(59.9), "59s");
        assert_eq!(duration(61.0), "1m01s");
        assert_eq!(duration(7322.0), "2h02m");
        assert_eq!(bytes(4096), "4K");
        assert_eq!(bytes(5 * 1_048_576), "5.0M");
    }
}
