//! `sink-stats`: an example stackctl sink in Rust, to copy.
//!
//! It counts access units, bytes and IDRs, follows the current GOP's length and the frame rate
//! (from the camera's timestamps, averaged over `window` frames), serves them as JSON on
//! `GET /stats`, and as Prometheus metrics (`sink_stats_*`) on stackctl's `/metrics`. With
//! stackctl's detector (ABI 1.1) it also counts the detector's results and the objects in them
//! (`sink_stats_detections_total`, `sink_stats_objects_total`): see `on_detections`.
//!
//! ```toml
//! [plugins.stats]
//! path = "libsink_stats.so"   # cargo build --release -p sink-stats: target/release/
//! window = 30                 # frames in the fps average (default 30)
//! ```
//!
//! The plugin is [`StatsSink`] and the [`export_sink!`] line at the bottom; the counting is
//! plain Rust in [`stats`], tested without any plugin machinery.

pub mod stats;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Deserialize;
use stackctl_sink_sdk::{
    Context, Detections, Error, Frame, MetricsText, Request, Responder, Sink, export_sink,
};

use crate::stats::{Observed, Snapshot, Stats};

/// The `[plugins.stats]` section (stackctl's own keys, such as `path`, removed).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Frames in the fps average.
    pub window: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self { window: 30 }
    }
}

/// The largest `window`: it bounds the memory the average takes.
pub const MAX_WINDOW: usize = 10_000;

/// The sink: the counters behind a lock that `on_frame` holds for a few additions.
#[derive(Debug)]
pub struct StatsSink {
    stats: Mutex<Stats>,
    /// Detector results received (`on_detections`).
    detections: AtomicU64,
    /// Objects in them.
    objects: AtomicU64,
}

impl StatsSink {
    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sink for StatsSink {
    type Config = Config;
    const NAME: &'static str = "stats";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ROUTES: &'static [&'static str] = &["/stats"];
    // Ask for the detector's results: without this line `on_detections` is never called and
    // stackctl queues nothing for it.
    const WANTS_DETECTIONS: bool = true;

    fn start(config: Config, _ctx: Context) -> Result<Self, Error> {
        if !(2..=MAX_WINDOW).contains(&config.window) {
            return Err(Error::config(
                "window",
                format_args!("must be between 2 and {MAX_WINDOW} frames"),
            ));
        }
        tracing::info!(window = config.window, "counting frames");
        Ok(Self {
            stats: Mutex::new(Stats::new(config.window)),
            detections: AtomicU64::new(0),
            objects: AtomicU64::new(0),
        })
    }

    fn on_frame(&self, frame: &Frame<'_>) {
        self.stats().record(Observed {
            size: frame.data().len(),
            timestamp_ns: frame.timestamp_ns(),
            idr: frame.is_idr(),
            generation: frame.generation(),
            width: frame.width(),
            height: frame.height(),
        });
    }

    // On the delivery thread, in order with the frames. The SDK has checked every item already.
    fn on_detections(&self, detections: &Detections<'_>) {
        self.detections.fetch_add(1, Ordering::Relaxed);
        let objects = detections.items().count() as u64;
        self.objects.fetch_add(objects, Ordering::Relaxed);
    }

    fn on_http(&self, request: Request, responder: Responder) {
        match (request.method(), request.path()) {
            ("GET", "/stats") => responder.json(200, &self.stats().snapshot()),
            (_, "/stats") => responder.respond(405, &[("allow", "GET")], b""),
            (_, path) => responder.json(
                404,
                &serde_json::json!({ "error": "not found", "path": path }),
            ),
        }
    }

    fn metrics(&self) -> String {
        let mut text = render_metrics(&self.stats().snapshot());
        let mut m = MetricsText::new();
        m.counter(
            "sink_stats_detections_total",
            "Detector results received.",
            self.detections.load(Ordering::Relaxed),
        )
        .counter(
            "sink_stats_objects_total",
            "Objects in the detector results received.",
            self.objects.load(Ordering::Relaxed),
        );
        text.push_str(&m.finish());
        text
    }
}

/// The Prometheus text for `snapshot`.
pub fn render_metrics(s: &Snapshot) -> String {
    let mut m = MetricsText::new();
    m.counter(
        "sink_stats_frames_total",
        "Access units received.",
        s.frames,
    )
    .counter(
        "sink_stats_bytes_total",
        "Bytes of access units received.",
        s.bytes,
    )
    .counter(
        "sink_stats_idr_frames_total",
        "IDR access units received.",
        s.idr_frames,
    )
    .gauge(
        "sink_stats_gop_length",
        "Access units in the current GOP, its IDR included.",
        s.gop_length as f64,
    )
    .gauge(
        "sink_stats_fps",
        "Frames per second from the camera's timestamps.",
        s.fps,
    );
    m.finish()
}

export_sink!(StatsSink);

#[cfg(test)]
mod tests {
    use stackctl_sink_sdk::parse_config;

    use super::*;

    #[test]
    fn the_window_has_a_default_and_typos_are_refused() {
        assert_eq!(parse_config::<Config>(""), Ok(Config { window: 30 }));
        assert_eq!(
            parse_config::<Config>("window = 5"),
            Ok(Config { window: 5 })
        );
        let e = parse_config::<Config>("windw = 5").expect_err("a typo");
        assert!(e.to_string().starts_with("windw: unknown field"), "{e}");
    }

    #[test]
    fn metrics_name_every_counter_and_gauge() {
        let text = render_metrics(&Snapshot {
            frames: 3,
            bytes: 300,
            idr_frames: 1,
            gop_length: 3,
            fps: 29.97,
            ..Snapshot::default()
        });
        for line in [
            "# TYPE sink_stats_frames_total counter\nsink_stats_frames_total 3\n",
            "sink_stats_bytes_total 300\n",
            "sink_stats_idr_frames_total 1\n",
            "# TYPE sink_stats_gop_length gauge\nsink_stats_gop_length 3\n",
            "sink_stats_fps 29.97\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }
}
