//! Runs N viewers concurrently against one server and collects what each saw.

use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::report::{Report, ViewerOutcome};
use crate::viewer::{Viewer, ViewerOptions};

/// A load run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// How every viewer connects.
    pub viewer: ViewerOptions,
    /// Number of viewers.
    pub viewers: usize,
    /// How long each viewer watches, from the start of its connect.
    pub duration: Duration,
    /// Pause between starting two viewers.
    pub ramp: Duration,
    /// Start of each viewer's run excluded from latency and fps (connection setup, first GOP).
    pub warmup: Duration,
}

/// Runs the viewers (one every `ramp`), each for `duration`, closes them all, and reports.
pub async fn run(opts: &LoadOptions) -> Report {
    let started = Instant::now();
    let mut set = JoinSet::new();
    for index in 0..opts.viewers {
        if index > 0 && !opts.ramp.is_zero() {
            tokio::time::sleep(opts.ramp).await;
        }
        let opts = opts.clone();
        set.spawn(async move { watch(index, &opts).await });
    }
    let mut outcomes = Vec::with_capacity(opts.viewers);
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(outcome) => outcomes.push(outcome),
            // A viewer task panicking is a bug here, not a server result; keep the count right.
            Err(e) => outcomes.push(ViewerOutcome::failed(
                usize::MAX,
                format!("viewer task: {e}"),
            )),
        }
    }
    outcomes.sort_by_key(|o| o.index);
    Report::new(opts, outcomes, started.elapsed())
}

/// One viewer's whole run.
async fn watch(index: usize, opts: &LoadOptions) -> ViewerOutcome {
    let started_ns = stackctl_media::clock::monotonic_ns();
    let deadline = tokio::time::Instant::now() + opts.duration;
    let mut viewer = match Viewer::connect(&opts.viewer).await {
        Ok(viewer) => viewer,
        Err(e) => return ViewerOutcome::failed(index, e.to_string()),
    };
    let warm_until_ns =
        started_ns.saturating_add(u64::try_from(opts.warmup.as_nanos()).unwrap_or(u64::MAX));

    let mut outcome = ViewerOutcome::new(index);
    loop {
        match tokio::time::timeout_at(deadline, viewer.next_frame()).await {
            Ok(Some(frame)) => {
                // Frames are attributed to the window by when they finished arriving.
                if frame.last_packet_ns < warm_until_ns {
                    continue;
                }
                outcome.measured_frames += 1;
                if frame.complete {
                    match frame.latency_ns() {
                        Some(ns) => outcome.latencies_ns.push(ns),
                        None => outcome.latency_unavailable_frames += 1,
                    }
                }
            }
            Ok(None) => {
                outcome.error = Some(format!(
                    "connection {} before the end of the run",
                    *viewer.state().borrow()
                ));
                break;
            }
            Err(_) => break,
        }
    }

    let window = opts.duration.saturating_sub(opts.warmup).as_secs_f64();
    outcome.fps = if window > 0.0 {
        outcome.measured_frames as f64 / window
    } else {
        0.0
    };
    outcome.absorb_stats(&viewer.stats());
    if let Err(e) = viewer.close().await {
        outcome.close_error = Some(e.to_string());
    }
    outcome
}
