//! Write a stackctl sink plugin in safe Rust.
//!
//! stackctl hands every H.264 access unit from the camera to its **sinks**: shared libraries it
//! loads at start through a C ABI (`plugins/abi/include/stackctl_sink.h`, the specification).
//! With this crate a sink is a struct implementing [`Sink`] plus one [`export_sink!`] line; the
//! SDK writes the `extern "C"` table and keeps its promises:
//!
//! - **No panic crosses the boundary.** Each call is wrapped in `catch_unwind`; a panic becomes
//!   `STACKCTL_ERR_PANIC` or a log line, and *poisons* the instance (no more frames or
//!   requests; stackctl keeps running).
//! - **Logs cross explicitly.** The plugin has its own copy of `tracing`; the SDK installs a
//!   subscriber in it that forwards every event to stackctl's log, honouring its level. Use
//!   `tracing::info!` as usual.
//! - **Configuration** is the plugin's `[plugins.NAME]` TOML section, deserialized into
//!   [`Sink::Config`] with serde; an error names the key and stops stackctl's start-up.
//! - **Detections** (ABI 1.1): set [`Sink::WANTS_DETECTIONS`] and implement
//!   [`Sink::on_detections`] to get the detector's results on the delivery thread, in order with
//!   the frames, checked ([`Detections`]).
//! - **Frames are borrowed.** [`Frame`] is the host's buffer; [`Frame::retain`] keeps it past
//!   `on_frame` on any thread, without a copy, until the [`RetainedFrame`] drops.
//! - **HTTP** requests for the sink's [`Sink::ROUTES`] arrive as an owned [`Request`] and a
//!   [`Responder`] that answers once, now or later (500 if it is dropped unanswered).
//! - **Metrics** are Prometheus text ([`MetricsText`]) that stackctl appends to `/metrics`.
//! - **Async I/O** runs on the plugin's own tokio runtime, [`Context::runtime`] (feature
//!   `runtime`, on by default): stackctl's runtime is another copy of tokio, out of reach.
//!
//! # Example
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use stackctl_sink_sdk::{Context, Error, Frame, Request, Responder, Sink, export_sink};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     #[serde(default)]
//!     verbose: bool,
//! }
//!
//! struct Counter {
//!     verbose: bool,
//!     frames: AtomicU64,
//! }
//!
//! impl Sink for Counter {
//!     type Config = Config;
//!     const NAME: &'static str = "counter";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     const ROUTES: &'static [&'static str] = &["/counter"];
//!
//!     fn start(config: Config, _ctx: Context) -> Result<Self, Error> {
//!         Ok(Self { verbose: config.verbose, frames: AtomicU64::new(0) })
//!     }
//!
//!     // On the delivery thread: keep it short.
//!     fn on_frame(&self, frame: &Frame<'_>) {
//!         self.frames.fetch_add(1, Ordering::Relaxed);
//!         if self.verbose && frame.is_idr() {
//!             tracing::info!(frame = frame.frame_number(), bytes = frame.data().len(), "IDR");
//!         }
//!     }
//!
//!     // On any thread.
//!     fn on_http(&self, _request: Request, responder: Responder) {
//!         let frames = self.frames.load(Ordering::Relaxed);
//!         responder.json(200, &serde_json::json!({ "frames": frames }));
//!     }
//! }
//!
//! export_sink!(Counter);
//! ```
//!
//! Build it as a `cdylib` (`[lib] crate-type = ["cdylib", "rlib"]`), then point stackctl at
//! the library: `[plugins.counter] path = "libcounter.so"`. `plugins/README.md` has the whole
//! story, and `plugins/examples/stats` a complete sink to copy.
//!
//! # Rules the SDK cannot enforce
//! - Build with `panic = "unwind"` (the default): with `panic = "abort"` nothing can be caught
//!   and a panic takes stackctl down.
//! - Drop every [`RetainedFrame`] and finish with every [`Responder`] by [`Sink::stop`]: after
//!   `destroy` the host's memory is gone.
//! - Don't install your own global `tracing` subscriber: the SDK's carries your logs.

mod buf;
mod config;
mod detections;
mod error;
mod export;
mod frame;
mod host;
mod http;
mod instance;
mod log;
mod metrics;
mod panic;
#[cfg(feature = "runtime")]
mod runtime;
mod sink;
mod versioned;

pub use config::parse_config;
pub use detections::{Detection, Detections};
pub use error::Error;
pub use frame::{Frame, RetainedFrame};
pub use host::HostHandle;
pub use http::{Request, Responder, ResponseStream, StreamError, Written};
pub use metrics::MetricsText;
#[cfg(feature = "runtime")]
pub use runtime::SHUTDOWN_GRACE;
pub use sink::{Context, Sink};
/// The raw C ABI (`#[repr(C)]` mirrors of the header), for what the SDK does not wrap.
pub use stackctl_plugin_abi as abi;

/// Exports a [`Sink`] as a stackctl plugin: defines the static `stackctl_sink` table and the
/// `stackctl_sink_entry` symbol that returns it. Use it once per library, at the crate root.
///
/// ```ignore
/// stackctl_sink_sdk::export_sink!(MySink);
/// ```
///
/// The table is built at compile time: an empty `NAME` or a route not starting with `/` is a
/// compile error.
///
/// It works in a crate that forbids `unsafe_code`: the unsafe part (`#[unsafe(no_mangle)]`) is
/// this macro's.
#[macro_export]
macro_rules! export_sink {
    ($sink:ty) => {
        const _: () = {
            const ROUTE_COUNT: usize = <$sink as $crate::Sink>::ROUTES.len();
            static ROUTES: [$crate::abi::Str; ROUTE_COUNT] =
                $crate::__private::routes::<$sink, ROUTE_COUNT>();
            static TABLE: $crate::abi::Sink = $crate::__private::table::<$sink>(&ROUTES);

            /// The plugin's entry point: its static `stackctl_sink` table.
            // No `#[allow(unsafe_code)]`: the lint is not reported inside another crate's macro,
            // and an `allow` would be an error in a crate that forbids unsafe code.
            #[unsafe(no_mangle)]
            pub extern "C" fn stackctl_sink_entry() -> *const $crate::abi::Sink {
                &TABLE
            }
        };
    };
}

/// What [`export_sink!`] expands to; not an API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{routes, table};
}
