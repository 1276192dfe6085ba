//! Aggregation of N viewers' outcomes into one report (JSON or human-readable).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::load::LoadOptions;
use crate::viewer::{Signalling, ViewerStats};

/// Shown when frames arrived but none had a plausible latency.
pub const LATENCY_UNAVAILABLE: &str =
    "latency unavailable: set rtp_timestamp_origin = \"monotonic\" on the server";

/// What one viewer saw during a load run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ViewerOutcome {
    /// Viewer number, in start order.
    pub index: usize,
    /// Signalling succeeded (an answer was applied).
    pub signalled: bool,
    /// The peer connection reached Connected.
    pub connected: bool,
    /// Why the viewer failed to connect, or ended early.
    pub error: Option<String>,
    /// Why closing (WHEP `DELETE`) failed.
    pub close_error: Option<String>,
    /// From the start of connect to Connected.
    pub connect_ms: Option<f64>,
    /// From the start of connect to the first complete frame.
    pub first_frame_ms: Option<f64>,
    /// From the start of connect to the first complete IDR frame.
    pub first_keyframe_ms: Option<f64>,
    /// Frames (complete or not) that finished arriving after the warmup.
    pub measured_frames: u64,
    /// `measured_frames` per second of the post-warmup window.
    pub fps: f64,
    /// All frames, warmup included.
    pub frames: u64,
    /// Frames with a missing packet or a malformed payload.
    pub incomplete_frames: u64,
    /// RTP packets received.
    pub packets: u64,
    /// RTP payload bytes received.
    pub bytes: u64,
    /// RTP packets lost (sequence gaps not filled).
    pub lost_packets: u64,
    /// RTP packets that arrived after their frame was closed.
    pub late_packets: u64,
    /// Frames dropped because the tool did not read them in time.
    pub frames_unread_dropped: u64,
    /// Complete post-warmup frames whose latency was implausible (server not in monotonic mode).
    pub latency_unavailable_frames: u64,
    /// Latency of each complete post-warmup frame, in ns.
    #[serde(skip)]
    pub latencies_ns: Vec<u64>,
}

fn ms_between(from: Instant, to: Option<Instant>) -> Option<f64> {
    to.map(|t| t.saturating_duration_since(from).as_secs_f64() * 1e3)
}

impl ViewerOutcome {
    /// An outcome with nothing received yet.
    pub fn new(index: usize) -> Self {
        Self {
            index,
            signalled: true,
            ..Self::default()
        }
    }

    /// A viewer that never got an answer applied.
    pub fn failed(index: usize, error: String) -> Self {
        Self {
            index,
            error: Some(error),
            ..Self::default()
        }
    }

    /// Copies the viewer's counters and milestones.
    pub fn absorb_stats(&mut self, s: &ViewerStats) {
        self.connected = s.connected_at.is_some();
        self.connect_ms = ms_between(s.started_at, s.connected_at);
        self.first_frame_ms = ms_between(s.started_at, s.first_frame_at);
        self.first_keyframe_ms = ms_between(s.started_at, s.first_idr_at);
        self.frames = s.frames;
        self.incomplete_frames = s.incomplete_frames;
        self.packets = s.packets;
        self.bytes = s.bytes;
        self.lost_packets = s.lost_packets;
        self.late_packets = s.late_packets;
        self.frames_unread_dropped = s.frames_unread_dropped;
    }
}

/// p50 / p90 / max of a set of durations, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Median (nearest rank).
    pub p50: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// Largest.
    pub max: f64,
}

/// Latency percentiles, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Frames measured.
    pub samples: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Frame rate across viewers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FpsSummary {
    /// Slowest viewer.
    pub min: f64,
    /// Mean over viewers that signalled.
    pub mean: f64,
    /// Fastest viewer.
    pub max: f64,
}

/// The result of a load run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Server base URL.
    pub url: String,
    /// `whep` or `offer`.
    pub signalling: &'static str,
    /// Per-viewer run length, seconds.
    pub duration_s: f64,
    /// Per-viewer warmup excluded from fps and latency, seconds.
    pub warmup_s: f64,
    /// Wall time of the whole run, seconds.
    pub elapsed_s: f64,
    /// Viewers started.
    pub viewers_requested: usize,
    /// Viewers whose peer connection reached Connected.
    pub viewers_connected: usize,
    /// Viewers that did not connect or did not receive a frame.
    pub viewers_failed: usize,
    /// Viewers that received at least one complete frame.
    pub viewers_with_frames: usize,
    /// Start of connect to Connected.
    pub connect_ms: Option<Spread>,
    /// Start of connect to the first complete frame.
    pub time_to_first_frame_ms: Option<Spread>,
    /// Start of connect to the first complete IDR frame (what a browser can first show).
    pub time_to_first_keyframe_ms: Option<Spread>,
    /// Post-warmup frame rate across viewers that signalled.
    pub fps: Option<FpsSummary>,
    /// Frames received by all viewers.
    pub total_frames: u64,
    /// Incomplete frames received by all viewers.
    pub incomplete_frames: u64,
    /// RTP packets lost, all viewers.
    pub lost_packets: u64,
    /// RTP packets late, all viewers.
    pub late_packets: u64,
    /// RTP packets received, all viewers.
    pub packets: u64,
    /// RTP payload bytes received, all viewers.
    pub bytes: u64,
    /// End-to-end latency of complete post-warmup frames, all viewers pooled.
    pub latency_ms: Option<LatencySummary>,
    /// Why `latency_ms` is missing, when frames did arrive.
    pub latency_note: Option<String>,
    /// Distinct errors and how many viewers hit each.
    pub errors: BTreeMap<String, usize>,
    /// Each viewer.
    pub viewers: Vec<ViewerOutcome>,
}

/// Nearest-rank percentile of sorted values.
/// The nearest-rank `p`th percentile of `sorted` (ascending); 0 for no values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn spread(values: impl Iterator<Item = f64>) -> Option<Spread> {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Spread {
        p50: percentile(&v, 50.0),
        p90: percentile(&v, 90.0),
        max: percentile(&v, 100.0),
    })
}

impl Report {
    /// Aggregates the outcomes of a run.
    pub fn new(opts: &LoadOptions, viewers: Vec<ViewerOutcome>, elapsed: Duration) -> Self {
        let with_frames = viewers
            .iter()
            .filter(|v| v.first_frame_ms.is_some())
            .count();
        let connected = viewers.iter().filter(|v| v.connected).count();
        let failed = viewers
            .iter()
            .filter(|v| !v.connected || v.first_frame_ms.is_none())
            .count();

        let mut latencies: Vec<f64> = viewers
            .iter()
            .flat_map(|v| v.latencies_ns.iter().map(|&ns| ns as f64 / 1e6))
            .collect();
        latencies.sort_by(f64::total_cmp);
        let latency_ms = (!latencies.is_empty()).then(|| LatencySummary {
            samples: latencies.len(),
            p50: percentile(&latencies, 50.0),
            p90: percentile(&latencies, 90.0),
            p99: percentile(&latencies, 99.0),
            max: percentile(&latencies, 100.0),
        });
        let unavailable: u64 = viewers.iter().map(|v| v.latency_unavailable_frames).sum();
        let latency_note = if latency_ms.is_none() && unavailable > 0 {
            Some(LATENCY_UNAVAILABLE.to_owned())
        } else if unavailable > 0 {
            Some(format!(
                "{unavailable} frames had an implausible latency and were left out"
            ))
        } else {
            None
        };

        let signalled: Vec<f64> = viewers
            .iter()
            .filter(|v| v.signalled)
            .map(|v| v.fps)
            .collect();
        let fps = (!signalled.is_empty()).then(|| FpsSummary {
            min: signalled.iter().copied().fold(f64::INFINITY, f64::min),
            mean: signalled.iter().sum::<f64>() / signalled.len() as f64,
            max: signalled.iter().copied().fold(0.0, f64::max),
        });

        let mut errors = BTreeMap::new();
        for v in &viewers {
            for e in [&v.error, &v.close_error].into_iter().flatten() {
                *errors.entry(e.clone()).or_insert(0) += 1;
            }
            if v.signalled && !v.connected && v.error.is_none() {
                *errors
                    .entry("peer connection never reached Connected".to_owned())
                    .or_insert(0) += 1;
            }
        }

        Report {
            url: opts.viewer.base_url.clone(),
            signalling: match opts.viewer.signalling {
                Signalling::Whep => "whep",
                Signalling::Offer => "offer",
            },
            duration_s: opts.duration.as_secs_f64(),
            warmup_s: opts.warmup.as_secs_f64(),
            elapsed_s: elapsed.as_secs_f64(),
            viewers_requested: opts.viewers,
            viewers_connected: connected,
            viewers_failed: failed,
            viewers_with_frames: with_frames,
            connect_ms: spread(viewers.iter().filter_map(|v| v.connect_ms)),
            time_to_first_frame_ms: spread(viewers.iter().filter_map(|v| v.first_frame_ms)),
            time_to_first_keyframe_ms: spread(viewers.iter().filter_map(|v| v.first_keyframe_ms)),
            fps,
            total_frames: viewers.iter().map(|v| v.frames).sum(),
            incomplete_frames: viewers.iter().map(|v| v.incomplete_frames).sum(),
            lost_packets: viewers.iter().map(|v| v.lost_packets).sum(),
            late_packets: viewers.iter().map(|v| v.late_packets).sum(),
            packets: viewers.iter().map(|v| v.packets).sum(),
            bytes: viewers.iter().map(|v| v.bytes).sum(),
            latency_ms,
            latency_note,
            errors,
            viewers,
        }
    }

    /// Every viewer connected and received at least one complete frame.
    pub fn success(&self) -> bool {
        self.viewers_requested > 0 && self.viewers_failed == 0
    }
}

fn fmt_spread(s: Option<Spread>) -> String {
    s.map_or_else(
        || "-".to_owned(),
        |s| {
            format!(
                "p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
                s.p50, s.p90, s.max
            )
        },
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "viewerload: {} viewers on {} ({}), {:.1} s each, warmup {:.1} s, wall {:.1} s",
            self.viewers_requested,
            self.url,
            self.signalling,
            self.duration_s,
            self.warmup_s,
            self.elapsed_s
        )?;
        writeln!(
            f,
            "  viewers          {} connected, {} with frames, {} failed",
            self.viewers_connected, self.viewers_with_frames, self.viewers_failed
        )?;
        writeln!(f, "  connect          {}", fmt_spread(self.connect_ms))?;
        writeln!(
            f,
            "  first frame      {}",
            fmt_spread(self.time_to_first_frame_ms)
        )?;
        writeln!(
            f,
            "  first keyframe   {}",
            fmt_spread(self.time_to_first_keyframe_ms)
        )?;
        match self.fps {
            Some(fps) => writeln!(
                f,
                "  fps per viewer   min {:.1}, mean {:.1}, max {:.1}",
                fps.min, fps.mean, fps.max
            )?,
            None => writeln!(f, "  fps per viewer   -")?,
        }
        writeln!(
            f,
            "  frames           {} total, {} incomplete",
            self.total_frames, self.incomplete_frames
        )?;
        writeln!(
            f,
            "  packets          {} received ({:.1} MB), {} lost, {} late",
            self.packets,
            self.bytes as f64 / 1e6,
            self.lost_packets,
            self.late_packets
        )?;
        match self.latency_ms {
            Some(l) => writeln!(
                f,
                "  latency          p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} frames)",
                l.p50, l.p90, l.p99, l.max, l.samples
            )?,
            None => writeln!(f, "  latency          -")?,
        }
        if let Some(note) = &self.latency_note {
            writeln!(f, "  note: {note}")?;
        }
        for (error, count) in &self.errors {
            writeln!(f, "  error ({count}x): {error}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viewer::ViewerOptions;

    fn opts(n: usize) -> LoadOptions {
        LoadOptions {
            viewer: ViewerOptions::new("http://127.0.0.1:1"),
            viewers: n,
            duration: Duration::from_secs(10),
            ramp: Duration::ZERO,
            warmup: Duration::from_secs(2),
        }
    }

    fn good(index: usize, latencies_ms: &[u64]) -> ViewerOutcome {
        ViewerOutcome {
            connected: true,
            first_frame_ms: Some(100.0 + index as f64),
            fps: 30.0,
            frames: 300,
            latencies_ns: latencies_ms.iter().map(|ms| ms * 1_000_000).collect(),
            ..ViewerOutcome::new(index)
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 90.0), 90.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 50.0), 7.0);
    }

    #[test]
    fn pooled_latency_and_success() {
        let r = Report::new(
            &opts(2),
            vec![good(0, &[10, 20, 30]), good(1, &[40])],
            Duration::from_secs(10),
        );
        assert!(r.success());
        let l = r.latency_ms.unwrap();
        assert_eq!((l.samples, l.p50, l.max), (4, 20.0, 40.0));
        assert_eq!(r.total_frames, 600);
        assert!(r.latency_note.is_none());
        assert!(r.to_string().contains("p50 20.0 ms"));
    }

    #[test]
    fn a_failed_viewer_fails_the_run_and_its_error_is_counted() {
        let r = Report::new(
            &opts(3),
            vec![
                good(0, &[5]),
                ViewerOutcome::failed(1, "HTTP 503".into()),
                ViewerOutcome::failed(2, "HTTP 503".into()),
            ],
            Duration::from_secs(10),
        );
        assert!(!r.success());
        assert_eq!((r.viewers_connected, r.viewers_failed), (1, 2));
        assert_eq!(r.errors.get("HTTP 503"), Some(&2));
        assert!(r.to_string().contains("error (2x): HTTP 503"));
    }

    #[test]
    fn random_origin_server_gets_the_monotonic_hint() {
        let mut v = good(0, &[]);
        v.latency_unavailable_frames = 240;
        let r = Report::new(&opts(1), vec![v], Duration::from_secs(10));
        assert!(r.latency_ms.is_none());
        assert_eq!(r.latency_note.as_deref(), Some(LATENCY_UNAVAILABLE));
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["latency_ms"].is_null());
        assert_eq!(json["viewers"][0]["fps"], 30.0);
    }
}
