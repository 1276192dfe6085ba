//! `sink-panicky`: a test-only stackctl sink that panics in `on_frame`.
//!
//! It counts frames and panics on the `panic_after`-th one, to show that the SDK catches the
//! panic at the boundary and that stackctl detaches this sink alone. `GET /panicky` answers its
//! count while it runs.
//!
//! ```toml
//! [plugins.panicky]
//! path = "/…/libsink_panicky.so"
//! panic_after = 30   # default 30
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use stackctl_sink_sdk::{Context, Error, Frame, Request, Responder, Sink, export_sink};

/// The `[plugins.NAME]` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The frame (counted from 1) whose `on_frame` panics.
    pub panic_after: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self { panic_after: 30 }
    }
}

/// The sink.
#[derive(Debug)]
pub struct Panicky {
    panic_after: u64,
    frames: AtomicU64,
}

impl Sink for Panicky {
    type Config = Config;
    const NAME: &'static str = "panicky";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ROUTES: &'static [&'static str] = &["/panicky"];

    fn start(config: Config, _ctx: Context) -> Result<Self, Error> {
        if config.panic_after == 0 {
            return Err(Error::config("panic_after", "must be at least 1"));
        }
        Ok(Self {
            panic_after: config.panic_after,
            frames: AtomicU64::new(0),
        })
    }

    fn on_frame(&self, frame: &Frame<'_>) {
        let n = self.frames.fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.panic_after {
            panic!(
                "panicky: deliberate panic on frame {n} (camera frame {})",
                frame.frame_number()
            );
        }
    }

    fn on_http(&self, _request: Request, responder: Responder) {
        let frames = self.frames.load(Ordering::Relaxed);
        responder.json(200, &serde_json::json!({ "frames": frames }));
    }
}

export_sink!(Panicky);
