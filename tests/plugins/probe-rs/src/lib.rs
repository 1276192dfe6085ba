//! `sink-probe-rs`: a test-only stackctl sink that records what the host hands it, through the
//! Rust SDK, one line per call, in the order of the calls:
//!
//! ```text
//! F frame_number timestamp_ns idr                                  each on_frame
//! D frame_number timestamp_ns count [class confidence x y w h]...  each on_detections
//! ```
//!
//! ```toml
//! [plugins.probe_rs]
//! path = "/…/libsink_probe_rs.so"
//! output = "/tmp/probe.txt"
//! ```
//!
//! Lines are written by the delivery thread and flushed at once, so a test can follow them.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::sync::Mutex;

use serde::Deserialize;
use stackctl_sink_sdk::{Context, Detections, Error, Frame, Sink, export_sink};

/// The `[plugins.NAME]` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file the lines are appended to.
    pub output: String,
}

/// The sink.
#[derive(Debug)]
pub struct Probe {
    file: Mutex<File>,
}

impl Probe {
    fn line(&self, line: &str) {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // A test reads the file: a write error shows there as missing lines.
        let _ = file.write_all(line.as_bytes());
    }
}

impl Sink for Probe {
    type Config = Config;
    const NAME: &'static str = "probe_rs";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const WANTS_DETECTIONS: bool = true;

    fn start(config: Config, _ctx: Context) -> Result<Self, Error> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(&config.output)
            .map_err(|e| Error::config("output", format!("cannot open {}: {e}", config.output)))?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    fn on_frame(&self, frame: &Frame<'_>) {
        self.line(&format!(
            "F {} {} {}\n",
            frame.frame_number(),
            frame.timestamp_ns(),
            u8::from(frame.is_idr())
        ));
    }

    fn on_detections(&self, detections: &Detections<'_>) {
        let items: Vec<_> = detections.items().collect();
        let mut line = format!(
            "D {} {} {}",
            detections.frame_number(),
            detections.timestamp_ns(),
            items.len()
        );
        for d in items {
            let _ = write!(
                line,
                " {} {:.3} {} {} {} {}",
                d.class, d.confidence, d.x, d.y, d.w, d.h
            );
        }
        line.push('\n');
        self.line(&line);
    }
}

export_sink!(Probe);
