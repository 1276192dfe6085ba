//! The cost of one WHIP publication: stackctl with the camera on and nobody watching, with one
//! publication live to a WHIP endpoint in this process, against the same stack without one,
//! alternating, on fresh stacks.
//!
//! The endpoint is the sink's own test endpoint (`plugins/webrtc/tests/common/whip_endpoint.rs`:
//! hyper, and webrtc-rs's sans-IO `rtc` receiving and reassembling every frame): its work is
//! this process's, not stackctl's, so it does not count in the figure.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use crate::input::Input;
use crate::procfs::Sample;
use crate::report::median;
use crate::stacks::{Running, SinkSetup, Variant};

#[allow(missing_docs)]
#[path = "../../../plugins/webrtc/tests/common/whip_endpoint.rs"]
mod whip_endpoint;

/// One run: with or without the publication.
#[derive(Debug, Clone)]
pub struct Run {
    /// With the publication.
    pub published: bool,
    /// stackctl's CPU over the window, % of one core.
    pub cpu: f64,
    /// stackctl's `RssAnon` at the end of the window, kB.
    pub rss_anon_kb: u64,
    /// stackctl's threads at the end of the window.
    pub threads: u64,
    /// Frames the endpoint received over the window (0 without the publication).
    pub frames: usize,
    /// RTP bytes the sink sent to the endpoint over the window.
    pub bytes: f64,
    /// The window, seconds.
    pub window_s: f64,
    /// The host's load average over the last minute, at the end of the window (the machine
    /// may be shared).
    pub loadavg: f64,
}

impl Run {
    fn json(&self) -> Value {
        json!({
            "published": self.published, "cpu_percent": self.cpu, "rss_anon_kb": self.rss_anon_kb,
            "threads": self.threads, "frames_received": self.frames,
            "kbit_per_s": self.bytes * 8.0 / 1000.0 / self.window_s, "window_s": self.window_s, "loadavg_1m": self.loadavg,
        })
    }
}

/// The number of frames the endpoint's first session has received.
fn frames(endpoint: &whip_endpoint::Endpoint) -> usize {
    endpoint
        .shared
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .sessions
        .first()
        .map_or(0, |s| s.frame_count())
}

/// One run of `variant` (this tree's sink) on `input`: `published` or not, measured over
/// `window` once the publication is live (or the camera on) and `settle` has passed.
pub fn run(
    variant: &Variant,
    input: &Input,
    published: bool,
    settle: Duration,
    window: Duration,
) -> anyhow::Result<Run> {
    eprintln!(
        "{}: {} WHIP publication, {window:?}",
        variant.name,
        if published { "one" } else { "no" }
    );
    let endpoint = published.then(|| whip_endpoint::Endpoint::start(None));
    let setup = SinkSetup {
        whip_port: endpoint.as_ref().map(|e| e.port),
        ..SinkSetup::BOARD
    };
    let mut running = Running::start(variant, input, setup)?;
    let pid = running.pid();
    if let Some(endpoint) = &endpoint {
        let deadline = Instant::now() + Duration::from_secs(30);
        while frames(endpoint) < 30 {
            if Instant::now() > deadline {
                bail!(
                    "the publication sent no 30 frames within 30 s: {:?}",
                    running.problems()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    std::thread::sleep(settle);
    let bytes = |r: &Running| {
        r.metrics().map_or(0.0, |m| {
            m.iter()
                .filter(|(k, _)| k.starts_with("whip_publish_bytes_sent_total"))
                .map(|(_, v)| v)
                .sum::<f64>()
        })
    };
    let (b0, f0) = (bytes(&running), endpoint.as_ref().map_or(0, frames));
    let s0 = Sample::take(pid);
    std::thread::sleep(window);
    let s1 = Sample::take(pid);
    let (b1, f1) = (bytes(&running), endpoint.as_ref().map_or(0, frames));
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN);
    let problems = running.stop();
    if !problems.is_empty() {
        eprintln!("  logged: {problems:?}");
    }
    Ok(Run {
        published,
        cpu: s0.cpu_to(&s1),
        rss_anon_kb: s1.rss_anon_kb,
        threads: s1.threads,
        frames: f1 - f0,
        bytes: b1 - b0,
        window_s: s1.at.duration_since(s0.at).as_secs_f64(),
        loadavg,
    })
}

/// The report of `runs`: medians without and with the publication, and their difference.
pub fn report(md: &mut String, runs: &[Run], size: &str) -> Value {
    let pick = |published: bool, f: fn(&Run) -> f64| -> Vec<f64> {
        runs.iter()
            .filter(|r| r.published == published)
            .map(f)
            .collect()
    };
    let cpu = |p| pick(p, |r| r.cpu);
    let rss = |p| pick(p, |r| r.rss_anon_kb as f64 / 1024.0);
    let (cpu0, cpu1) = (median(&cpu(false)), median(&cpu(true)));
    let (rss0, rss1) = (median(&rss(false)), median(&rss(true)));
    let fps = median(&pick(true, |r| r.frames as f64 / r.window_s));
    let kbps = median(&pick(true, |r| r.bytes * 8.0 / 1000.0 / r.window_s));
    let load: Vec<f64> = runs.iter().map(|r| r.loadavg).collect();
    let (load_min, load_max) = load
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let _ = std::fmt::Write::write_fmt(
        md,
        format_args!(
            "## publish: one WHIP publication of {size} against none (camera on, nobody watching), medians of {} runs each\n\n\
             | stackctl | no publication | one publication | difference |\n| --- | --- | --- | --- |\n\
             | CPU, % of one core | {cpu0:.2} % ({:.2?}) | {cpu1:.2} % ({:.2?}) | {:+.2} % |\n\
             | RssAnon | {rss0:.1} MiB | {rss1:.1} MiB | {:+.1} MiB |\n\n\
             The endpoint received {fps:.1} frames/s, {kbps:.0} kbit/s of RTP. Host load average \
             {load_min:.1}-{load_max:.1} during the runs.\n\n",
            cpu(false).len(),
            cpu(false),
            cpu(true),
            cpu1 - cpu0,
            rss1 - rss0,
        ),
    );
    json!({
        "cpu_percent": {"none": cpu0, "one": cpu1, "difference": cpu1 - cpu0},
        "rss_anon_mib": {"none": rss0, "one": rss1, "difference": rss1 - rss0},
        "frames_per_s": fps, "kbit_per_s": kbps,
        "runs": runs.iter().map(Run::json).collect::<Vec<_>>(),
    })
}
