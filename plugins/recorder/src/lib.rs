//! `sink-recorder`: stackctl's recording sink.
//!
//! Records the camera's H.264 into `dir` as fragmented MP4 (default) or raw Annex-B H.264,
//! started and stopped over HTTP (the legacy API: `POST /start`, `POST /stop`, `GET /status`,
//! and the same under `/api/recording/`) or continuously, in segments, with retention by age,
//! total size and free space. Files survive a `kill -9` up to their last fragment.
//!
//! ```toml
//! [plugins.recording]
//! path = "libsink_recorder.so"
//! dir = "/var/lib/stackctl/recordings"
//! format = "mp4"            # or "h264"
//! mode = "manual"           # or "continuous", or "events" (clips around detections)
//! segment_duration = "10m"
//! max_total_bytes = "20GB"
//! ```
//!
//! Threads: `on_frame` (the delivery thread) only retains the frame and queues it; all file
//! I/O of recording and retention runs on the recorder's own thread ([`worker`]); HTTP answers
//! on the host's threads, reading recordings for downloads. `plugins/recorder/README.md` has
//! every key and route.

pub mod config;
pub mod downloads;
pub mod error;
pub mod events;
pub mod http;
pub mod mp4;
pub mod names;
pub mod retention;
pub mod segment;
pub mod status;
pub mod timeline;
pub mod unit;
pub mod worker;
pub mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use stackctl_sink_sdk::{
    Context, Detections, Error, Frame, Request, Responder, RetainedFrame, Sink, export_sink,
};

use crate::config::{Config, Mode};
use crate::downloads::Downloads;
use crate::events::{Hit, Observation};
use crate::http::{Control, Served};
use crate::status::Shared;
use crate::worker::{Command, ControlError, Reply, Worker};

/// Detection results queued for the writer thread (events mode): 10 s at 10 results a second.
const DETECTION_QUEUE: usize = 100;

/// How long an HTTP start or stop waits for the writer thread.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(20);

/// The recording sink.
pub struct Recorder {
    config: Config,
    shared: Arc<Shared>,
    /// Set by the writer thread while it wants frames.
    armed: Arc<AtomicBool>,
    /// After a drop, frames are skipped up to the next IDR (a P-frame without its reference
    /// would not decode).
    skipping: AtomicBool,
    frames: Sender<Arc<RetainedFrame>>,
    /// Detection results to the writer thread (events mode), bounded.
    detections: Sender<Observation>,
    commands: Sender<Command>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Downloads streaming from disk.
    downloads: Downloads,
}

impl Recorder {
    fn control(&self, make: fn(Sender<Reply>) -> Command) -> Reply {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.commands.send(make(tx)).is_err() {
            return Err(ControlError::Failed(
                "the recorder thread is gone".to_owned(),
            ));
        }
        rx.recv_timeout(CONTROL_TIMEOUT).unwrap_or_else(|_| {
            Err(ControlError::Failed(
                "the recorder thread did not answer in time".to_owned(),
            ))
        })
    }

    /// Hands a detection result to the writer thread (events mode; dropped when its queue is
    /// full).
    pub fn observe(&self, observation: Observation) {
        if self.config.mode == Mode::Events && self.detections.try_send(observation).is_err() {
            self.shared
                .counters
                .queue_drops
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn queue_fill(&self) -> f64 {
        let cap = self.frames.capacity().unwrap_or(1).max(1);
        self.frames.len() as f64 / cap as f64
    }
}

impl Control for Recorder {
    fn start(&self) -> Reply {
        self.control(Command::Start)
    }
    fn stop(&self) -> Reply {
        self.control(Command::Stop)
    }
    fn shared(&self) -> &Shared {
        &self.shared
    }
    fn dir(&self) -> &Path {
        &self.config.dir
    }
}

impl Sink for Recorder {
    type Config = Config;
    const NAME: &'static str = "recording";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ROUTES: &'static [&'static str] = &[
        "/start",
        "/stop",
        "/status",
        "/api/recording",
        "/recordings",
        "/events",
    ];
    // Events mode needs them; the other modes ignore them (one cheap call per result).
    const WANTS_DETECTIONS: bool = true;

    fn check(config: &Config) -> Result<(), Error> {
        config.validate()
    }

    fn start(config: Config, _ctx: Context) -> Result<Self, Error> {
        let shared = Arc::new(Shared::new(config.format, config.mode));
        let armed = Arc::new(AtomicBool::new(false));
        let (frames, frame_rx) = crossbeam_channel::bounded(config.buffer_frames);
        let (commands, command_rx) = crossbeam_channel::unbounded();
        // Detection results come a few a second; a writer thread that far behind drops them.
        let (detections, detection_rx) = crossbeam_channel::bounded(DETECTION_QUEUE);
        let worker =
            Worker::<Arc<RetainedFrame>>::new(config.clone(), shared.clone(), armed.clone())
                .with_detections(detection_rx);
        let thread = std::thread::Builder::new()
            .name("recorder".to_owned())
            .spawn(move || worker.run(frame_rx, command_rx))
            .map_err(|e| Error::failed(format!("cannot start the recorder thread: {e}")))?;
        tracing::info!(
            dir = %config.dir.display(),
            format = config.format.extension(),
            mode = ?config.mode,
            "recorder ready"
        );
        let downloads = Downloads::new(config.max_downloads);
        Ok(Self {
            downloads,
            config,
            shared,
            armed,
            skipping: AtomicBool::new(false),
            frames,
            detections,
            commands,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn on_frame(&self, frame: &Frame<'_>) {
        if !self.armed.load(Ordering::Acquire) {
            return;
        }
        if self.skipping.load(Ordering::Relaxed) && !frame.is_idr() {
            self.shared
                .counters
                .queue_drops
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.frames.try_send(Arc::new(frame.retain())) {
            Ok(()) => self.skipping.store(false, Ordering::Relaxed),
            Err(TrySendError::Full(_)) => {
                self.skipping.store(true, Ordering::Relaxed);
                self.shared
                    .counters
                    .queue_drops
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn on_detections(&self, detections: &Detections<'_>) {
        if self.config.mode != Mode::Events || !self.armed.load(Ordering::Acquire) {
            return;
        }
        let ts_ns = detections.timestamp_ns();
        let hits = detections
            .items()
            .map(|d| Hit {
                ts_ns,
                class: d.class.to_owned(),
                confidence: d.confidence,
                bbox: [d.x, d.y, d.w, d.h],
            })
            .collect();
        self.observe(Observation { ts_ns, hits });
    }

    fn on_http(&self, request: Request, responder: Responder) {
        let path = request.path();
        let reply = if path == "/events" || path.starts_with("/events/") {
            events::http::handle(
                self,
                request.method(),
                path,
                request.query(),
                request.header("range"),
                // Served behind a `route_prefix`, its links carry it.
                request.header("x-forwarded-prefix").unwrap_or(""),
            )
        } else {
            http::handle(self, request.method(), path, request.header("range"))
        };
        let answer = match reply {
            Served::Answer(answer) => answer,
            Served::File(download) if responder.can_stream() => {
                return self.downloads.serve(download, responder);
            }
            // A host without streamed answers: whole answers, capped.
            Served::File(download) => download.into_answer(self.config.max_response_bytes),
        };
        let headers: Vec<(&str, &str)> = answer
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        responder.respond(answer.status, &headers, &answer.body);
    }

    fn metrics(&self) -> String {
        let mut text = self.shared.metrics(self.queue_fill());
        let mut m = stackctl_sink_sdk::MetricsText::new();
        m.gauge(
            "recorder_downloads_active",
            "Downloads streaming from disk now.",
            self.downloads.active() as f64,
        )
        .counter(
            "recorder_downloads_refused_total",
            "Downloads refused with 503 because max_downloads ran already.",
            self.downloads.refused.load(Ordering::Relaxed),
        )
        .counter(
            "recorder_downloads_cut_total",
            "Downloads that ended before their end: the client went away or stopped reading, a read failed, the recorder stopped.",
            self.downloads.cut.load(Ordering::Relaxed),
        );
        text.push_str(&m.finish());
        text
    }

    fn stop(&self) {
        self.downloads.stop();
        let _ = self.commands.send(Command::Shutdown);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the recorder thread panicked");
        }
    }
}

export_sink!(Recorder);
