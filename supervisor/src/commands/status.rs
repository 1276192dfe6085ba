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
        println!("\n{}", source_line(src));
    }
    if let Some(d) = &status.detections {
        println!("{}", detections_line(d));
    }
    if let Some(s) = &status.snapshots {
        println!("{}", snapshots_line(s));
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

/// The source's line: every counter it keeps.
fn source_line(src: &crate::status::SourceStatus) -> String {
    let age = src.last_frame_age_ms.map_or_else(
        || "no frame yet".to_owned(),
        |ms| format!("last frame {ms:.0} ms ago"),
    );
    let late = match src.late_fps {
        Some(fps) => format!("late windows {} (last {fps:.1} fps)", src.late_windows),
        None => format!("late windows {}", src.late_windows),
    };
    format!(
        "source {}: {} frames ({}), {age}; lost {}, malformed {}, other formats {}, torn copies retried {}, late tears {}, camera restarts {}, {late}, {}",
        src.shm,
        src.frames,
        bytes(src.bytes),
        src.lost,
        src.malformed,
        src.other_format,
        src.torn_retries,
        src.late_tears,
        src.restarts,
        if src.has_params {
            "SPS/PPS seen"
        } else {
            "no SPS/PPS yet"
        },
    )
}

/// The detection source's line.
fn detections_line(d: &crate::status::DetectionStatus) -> String {
    let state = match (d.attached, d.last_result_age_ms) {
        (false, _) => "waiting for the segment".to_owned(),
        (true, None) => "no result yet".to_owned(),
        (true, Some(ms)) => format!("last result {ms:.0} ms ago"),
    };
    format!(
        "detections {}: {} results, {} detections, {state}; malformed {}, missed {}, unstable {}, torn copies retried {}, late tears {}, segments refused {}, detector restarts {}; stream clients {} (dropped slow {}, refused {})",
        d.shm,
        d.results,
        d.detections,
        d.malformed,
        d.missed,
        d.unstable,
        d.torn_retries,
        d.late_tears,
        d.refused,
        d.restarts,
        d.stream_clients,
        d.stream_dropped_slow,
        d.stream_refused,
    )
}

/// The snapshots' line.
fn snapshots_line(s: &crate::status::SnapshotStatus) -> String {
    format!(
        "snapshots {}: {} served ({} from the cache), {} encodes, {} errors",
        s.shm, s.served, s.cached, s.encodes, s.errors
    )
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

    /// Every counter the source, the detections and the snapshots keep is in the text (the
    /// source's other formats and late windows used to be missing).
    #[test]
    fn every_counter_is_shown() {
        let status = crate::metrics::tests::sample();
        let src = source_line(status.source.as_ref().expect("source"));
        for part in [
            "10 frames",
            "lost 1",
            "malformed 2",
            "other formats 6",
            "torn copies retried 3",
            "late tears 4",
            "camera restarts 5",
            "late windows 7 (last 14.5 fps)",
            "SPS/PPS seen",
        ] {
            assert!(src.contains(part), "{part:?} missing: {src}");
        }
        let det = detections_line(status.detections.as_ref().expect("detections"));
        for part in [
            "30 results",
            "12 detections",
            "malformed 1",
            "missed 2",
            "unstable 3",
            "stream clients 2 (dropped slow 1",
        ] {
            assert!(det.contains(part), "{part:?} missing: {det}");
        }
        let snap = snapshots_line(status.snapshots.as_ref().expect("snapshots"));
        assert!(
            snap.contains("1 encodes") && snap.contains("99 from the cache"),
            "{snap}"
        );
    }
}
