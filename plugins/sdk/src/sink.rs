//! The [`Sink`] trait a plugin implements, and the [`Context`] it starts with.

use std::fmt;
#[cfg(feature = "runtime")]
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::host::HostHandle;
#[cfg(feature = "runtime")]
use crate::runtime::RuntimeSlot;
use crate::{Detections, Error, Frame, Request, Responder};

/// A sink: what stackctl hands every H.264 access unit to.
///
/// Implement it, then export it with [`export_sink!`](crate::export_sink). Threads, as the
/// header specifies them: `start` and `stop` run on stackctl's control thread; `on_frame` on
/// this plugin's own delivery thread; `on_http` and `metrics` on any thread, concurrently with
/// `on_frame` and with each other (hence `Sync`: use atomics or short locks).
///
/// A panic in any method is caught at the boundary and never reaches stackctl: it is logged and
/// the instance is *poisoned*: it receives no more frames or requests (requests get 503),
/// `metrics` reports a failure, and only `stop` and `drop` are still called.
pub trait Sink: Send + Sync + Sized + 'static {
    /// The sink's `[plugins.NAME]` section (host keys such as `path` removed), deserialized
    /// from TOML. `#[serde(deny_unknown_fields)]` catches typos; `#[serde(default)]` makes
    /// keys optional.
    type Config: DeserializeOwned + Send + 'static;

    /// The sink's name, e.g. `"stats"` (stackctl shows it; prefix your metrics with it).
    const NAME: &'static str;
    /// The sink's own version, usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// Path prefixes it serves over stackctl's HTTP server, each starting with `/` (checked at
    /// compile time). Empty for none.
    const ROUTES: &'static [&'static str] = &[];

    /// Whether the sink wants the detector's results in [`on_detections`](Self::on_detections).
    /// Set it to `true` when you implement that method: only then does the SDK fill the
    /// table's `on_detections`, so a sink that does not care costs stackctl nothing (no queue
    /// entries, no calls).
    const WANTS_DETECTIONS: bool = false;

    /// Builds and starts the sink: open files, spawn threads. Frames and requests come after
    /// it returns. Called once, on the control thread.
    fn start(config: Self::Config, ctx: Context) -> Result<Self, Error>;

    /// One access unit, on the delivery thread. Must not block for long: a slow sink only
    /// delays its own queue (stackctl drops whole GOPs for it), but do I/O on your own threads.
    /// [`Frame::retain`] keeps the frame without copying it.
    fn on_frame(&self, frame: &Frame<'_>);

    /// One result of the detector (ABI 1.1), on the delivery thread, in timestamp order with
    /// the frames: after the frame it was computed on (or after at most 500 ms when that frame
    /// does not come), never before a queued frame with an earlier timestamp. Called only when
    /// [`WANTS_DETECTIONS`](Self::WANTS_DETECTIONS) is `true` and stackctl speaks ABI 1.1. Empty
    /// results come too (the object left). Must not block for long, as `on_frame`. By default:
    /// nothing.
    fn on_detections(&self, detections: &Detections<'_>) {
        let _ = detections;
    }

    /// A request for one of [`ROUTES`](Self::ROUTES), on any thread. Answer through
    /// `responder`, now or later. By default: 404 with a JSON error.
    fn on_http(&self, request: Request, responder: Responder) {
        responder.json(
            404,
            &serde_json::json!({ "error": "not found", "path": request.path() }),
        );
    }

    /// Prometheus text exposition of the sink's metrics (see
    /// [`MetricsText`](crate::MetricsText)), on any thread. By default: none.
    fn metrics(&self) -> String {
        String::new()
    }

    /// Stops the sink, on the control thread: flush, join your threads, drop retained frames.
    /// No frame or request comes after it returns (answers still owed may be given).
    fn stop(&self) {}
}

/// What a sink gets at [`Sink::start`]: the host, and (feature `runtime`) its own tokio
/// runtime. Cheap to clone; keep it if you need it later.
#[derive(Clone)]
pub struct Context {
    host: HostHandle,
    #[cfg(feature = "runtime")]
    runtime: Arc<RuntimeSlot>,
}

impl Context {
    pub(crate) fn new(host: HostHandle, name: &'static str) -> Self {
        #[cfg(not(feature = "runtime"))]
        let _ = name;
        Self {
            #[cfg(feature = "runtime")]
            runtime: Arc::new(RuntimeSlot::new(name, host.clone())),
            host,
        }
    }

    /// The host that created this instance.
    pub fn host(&self) -> &HostHandle {
        &self.host
    }

    /// A handle on this instance's own multi-thread tokio runtime, started on the first call.
    ///
    /// stackctl's runtime is out of reach (a plugin has its own copy of tokio). This one lives
    /// until `destroy`, which drops the sink and then shuts it down, waiting at most
    /// [`SHUTDOWN_GRACE`](crate::SHUTDOWN_GRACE). Its threads' `tracing` events go to the host.
    #[cfg(feature = "runtime")]
    pub fn runtime(&self) -> Result<tokio::runtime::Handle, Error> {
        self.runtime.handle(None)
    }

    /// [`runtime`](Self::runtime) with `workers` worker threads (at least one) instead of one
    /// per core. Fewer workers cost fewer cross-thread wake-ups when the work is light; a
    /// runtime already started keeps its size.
    #[cfg(feature = "runtime")]
    pub fn runtime_with_workers(&self, workers: usize) -> Result<tokio::runtime::Handle, Error> {
        self.runtime.handle(Some(workers.max(1)))
    }

    /// Shuts the runtime down, at `destroy`.
    pub(crate) fn shut_down(&self) {
        #[cfg(feature = "runtime")]
        self.runtime.shut_down();
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}
