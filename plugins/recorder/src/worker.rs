//! The recorder's own thread: every file operation of recording and retention happens here.
//!
//! It receives frames from `on_frame` through a bounded queue, and commands (start, stop,
//! shutdown) from HTTP and `Sink::stop`. Between frames it writes out held frames when the
//! camera stalls and runs retention every `retention_interval`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};

use crate::config::{Config, Mode};
use crate::error::RecordError;
use crate::events::{Events, Observation, Settings};
use crate::mp4::TIMESCALE;
use crate::names::rfc3339;
use crate::retention::{self, Policy};
use crate::segment::{Session, SessionConfig};
use crate::status::{Shared, Status};
use crate::unit::AccessUnit;

/// Why a start or stop was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// `start` while recording.
    #[error("already recording")]
    AlreadyRecording,
    /// `stop` while idle.
    #[error("not recording")]
    NotRecording,
    /// The recording could not start.
    #[error("{0}")]
    Failed(String),
}

/// The answer to a start or stop.
pub type Reply = Result<Status, ControlError>;

/// What the thread is asked to do.
#[derive(Debug)]
pub enum Command {
    /// Start recording; answers the status.
    Start(Sender<Reply>),
    /// Stop recording; answers the status.
    Stop(Sender<Reply>),
    /// Finish the file and end the thread.
    Shutdown,
}

/// The writer thread's state.
pub struct Worker<F> {
    config: Config,
    shared: Arc<Shared>,
    /// Set while frames are wanted; `on_frame` reads it.
    armed: Arc<AtomicBool>,
    session: Option<Session<F>>,
    /// Continuous mode, not paused by `POST /stop`: retry after an error.
    wanted: bool,
    /// The last error, to log a repeated one only once.
    last_error: Option<String>,
    last_frame: Instant,
    next_retention: Instant,
    /// Totals already added to the counters, for this session.
    counted_frames: u64,
    counted_bytes: u64,
    /// Files completed in this session.
    segments: u64,
    /// Events mode, armed (clips open and close by themselves).
    events: Option<Events<F>>,
    /// Detection results (events mode).
    detections: Receiver<Observation>,
}

impl<F: AccessUnit + Clone> Worker<F> {
    /// A worker for `config`.
    pub fn new(config: Config, shared: Arc<Shared>, armed: Arc<AtomicBool>) -> Self {
        let wanted = matches!(config.mode, Mode::Continuous | Mode::Events);
        Self {
            config,
            shared,
            armed,
            session: None,
            wanted,
            last_error: None,
            last_frame: Instant::now(),
            next_retention: Instant::now(),
            counted_frames: 0,
            counted_bytes: 0,
            segments: 0,
            events: None,
            detections: crossbeam_channel::never(),
        }
    }

    /// Takes detection results from `detections` (events mode).
    pub fn with_detections(mut self, detections: Receiver<Observation>) -> Self {
        self.detections = detections;
        self
    }

    /// Runs until `Shutdown` (or until every sender is gone).
    pub fn run(mut self, frames: Receiver<F>, commands: Receiver<Command>) {
        self.retention();
        if self.wanted {
            let _ = self.start();
        }
        let idle_flush = self
            .config
            .fragment_duration
            .max(Duration::from_millis(200))
            * 2;
        loop {
            let now = Instant::now();
            let wake = self
                .next_retention
                .saturating_duration_since(now)
                .min(idle_flush);
            select! {
                recv(commands) -> cmd => match cmd {
                    Ok(Command::Start(reply)) => {
                        let _ = reply.send(self.start());
                    }
                    Ok(Command::Stop(reply)) => {
                        // Frames queued before the stop belong to the recording.
                        while let Ok(frame) = frames.try_recv() {
                            self.frame(frame);
                        }
                        self.wanted = false;
                        let _ = reply.send(self.stop());
                    }
                    Ok(Command::Shutdown) | Err(_) => {
                        // Frames already queued still go into the file.
                        while let Ok(frame) = frames.try_recv() {
                            self.frame(frame);
                        }
                        break;
                    }
                },
                recv(frames) -> frame => match frame {
                    Ok(frame) => self.frame(frame),
                    Err(_) => break,
                },
                recv(self.detections) -> observation => {
                    if let Ok(observation) = observation {
                        self.detection(observation);
                    }
                }
                default(wake) => {}
            }
            if self.session.is_some() && self.last_frame.elapsed() >= idle_flush {
                self.last_frame = Instant::now();
                if let Some(s) = &mut self.session
                    && let Err(e) = s.flush_pending()
                {
                    self.fail(&e);
                }
            }
            if self.events.is_some() && self.last_frame.elapsed() >= idle_flush {
                self.last_frame = Instant::now();
                if let Some(ev) = &mut self.events
                    && let Err(e) = ev.flush_pending()
                {
                    self.event_failed(&e);
                }
            }
            if Instant::now() >= self.next_retention {
                self.retention();
                if self.wanted && self.session.is_none() && self.events.is_none() {
                    let _ = self.start();
                }
            }
        }
        self.armed.store(false, Ordering::Release);
        if self.session.is_some() || self.events.is_some() {
            let _ = self.stop();
        }
        // Frames still queued are released now, before `stop` returns to the host (the
        // channel itself lives on until the sink is dropped).
        while frames.try_recv().is_ok() {}
    }

    fn frame(&mut self, frame: F) {
        self.last_frame = Instant::now();
        if let Some(ev) = &mut self.events {
            let segments = self.shared.counters.segments.load(Ordering::Relaxed);
            if let Err(e) = ev.frame(frame) {
                self.event_failed(&e);
            }
            if self.shared.counters.segments.load(Ordering::Relaxed) != segments {
                // A clip was completed: make room as for a new segment.
                self.retention();
            }
            return;
        }
        let Some(session) = &mut self.session else {
            return;
        };
        if let Err(e) = session.push(frame) {
            self.fail(&e);
            return;
        }
        self.publish();
    }

    fn detection(&mut self, observation: Observation) {
        if let Some(ev) = &mut self.events
            && let Err(e) = ev.detections(observation)
        {
            self.event_failed(&e);
        }
    }

    /// An event clip failed (disk full...): logged once, in the status and counted; the clip
    /// keeps what was written, and the next event tries again.
    fn event_failed(&mut self, e: &RecordError) {
        if let Some(ev) = &mut self.events {
            ev.abort();
        }
        let message = e.to_string();
        if self.last_error.as_deref() != Some(message.as_str()) {
            tracing::error!("event clip stopped: {message}");
        }
        self.last_error = Some(message.clone());
        self.shared.counters.errors.fetch_add(1, Ordering::Relaxed);
        let mut s = self.shared.status();
        s.recording = false;
        s.error = Some(message);
    }

    fn start(&mut self) -> Reply {
        if self.session.is_some() || self.events.is_some() {
            return Err(ControlError::AlreadyRecording);
        }
        if self.config.mode == Mode::Events {
            self.wanted = true;
            self.events = Some(Events::new(Settings::of(&self.config), self.shared.clone()));
            self.last_frame = Instant::now();
            self.armed.store(true, Ordering::Release);
            tracing::info!(dir = %self.config.dir.display(), "events recording armed");
            return Ok(self.shared.snapshot());
        }
        self.wanted = self.config.mode == Mode::Continuous || self.wanted;
        let cfg = SessionConfig {
            dir: self.config.dir.clone(),
            format: self.config.format,
            fsync: self.config.fsync,
            fragment_duration: self.config.fragment_duration,
            segment_duration: self.config.segment_duration,
            segment_bytes: self.config.segment_bytes,
        };
        match Session::start(cfg) {
            Ok(session) => {
                tracing::info!(
                    file = session.current_file().unwrap_or(""),
                    dir = %self.config.dir.display(),
                    format = self.config.format.extension(),
                    "recording started"
                );
                {
                    let mut s = self.shared.status();
                    s.recording = true;
                    s.error = None;
                    s.filename = session.current_file().unwrap_or("").to_owned();
                    s.frame_count = 0;
                    s.bytes_written = 0;
                    s.duration_ms = 0;
                    s.duration = 0.0;
                    s.segments = 0;
                    s.start_time = Some(rfc3339(session.started()));
                }
                self.last_error = None;
                self.counted_frames = 0;
                self.counted_bytes = 0;
                self.segments = 0;
                self.session = Some(session);
                self.last_frame = Instant::now();
                self.armed.store(true, Ordering::Release);
                Ok(self.shared.snapshot())
            }
            Err(e) => {
                self.fail(&e);
                Err(ControlError::Failed(e.to_string()))
            }
        }
    }

    fn stop(&mut self) -> Reply {
        self.armed.store(false, Ordering::Release);
        if let Some(mut ev) = self.events.take() {
            if let Err(e) = ev.stop() {
                self.event_failed(&e);
            }
            tracing::info!("events recording paused");
            return Ok(self.shared.snapshot());
        }
        let Some(mut session) = self.session.take() else {
            return Err(ControlError::NotRecording);
        };
        let result = session.stop();
        self.account(&mut session);
        {
            let mut s = self.shared.status();
            s.recording = false;
        }
        match result {
            Ok(()) => {
                let st = self.shared.snapshot();
                tracing::info!(
                    file = %st.filename,
                    frames = st.frame_count,
                    bytes = st.bytes_written,
                    duration_s = st.duration,
                    "recording stopped"
                );
                Ok(st)
            }
            Err(e) => {
                self.fail(&e);
                Ok(self.shared.snapshot())
            }
        }
    }

    /// Stops recording after `e`: one error line (once per distinct error), the status and
    /// the error counter.
    fn fail(&mut self, e: &RecordError) {
        self.armed.store(false, Ordering::Release);
        if let Some(mut session) = self.session.take() {
            self.account(&mut session);
        }
        let message = e.to_string();
        if self.last_error.as_deref() != Some(message.as_str()) {
            tracing::error!("recording stopped: {message}");
        } else {
            tracing::debug!("recording still impossible: {message}");
        }
        self.last_error = Some(message.clone());
        self.shared.counters.errors.fetch_add(1, Ordering::Relaxed);
        let mut s = self.shared.status();
        s.recording = false;
        s.error = Some(message);
    }

    /// Copies the session's numbers into the status and counters, and notes finished files.
    fn account(&mut self, session: &mut Session<F>) -> usize {
        let closed = session.take_closed();
        self.segments += closed.len() as u64;
        for file in &closed {
            self.shared
                .counters
                .segments
                .fetch_add(1, Ordering::Relaxed);
            self.shared
                .set_duration(&file.name, file.ticks as f64 / f64::from(TIMESCALE));
            tracing::info!(
                file = %file.name,
                frames = file.frames,
                bytes = file.bytes,
                "recording file complete"
            );
        }
        let (frames, bytes) = (session.frames(), session.bytes());
        let c = &self.shared.counters;
        c.frames_written.fetch_add(
            frames.saturating_sub(self.counted_frames),
            Ordering::Relaxed,
        );
        c.bytes_written
            .fetch_add(bytes.saturating_sub(self.counted_bytes), Ordering::Relaxed);
        self.counted_frames = self.counted_frames.max(frames);
        self.counted_bytes = self.counted_bytes.max(bytes);
        let ticks = session.ticks();
        if let Some(name) = session.current_file() {
            self.shared
                .set_duration(name, session.current_ticks() as f64 / f64::from(TIMESCALE));
        }
        let mut s = self.shared.status();
        if let Some(name) = session.current_file() {
            s.filename = name.to_owned();
        }
        s.frame_count = frames;
        s.bytes_written = bytes;
        s.duration_ms = ticks * 1000 / u64::from(TIMESCALE);
        s.duration = ticks as f64 / f64::from(TIMESCALE);
        s.segments = self.segments;
        closed.len()
    }

    /// After a frame: the numbers, and retention when a file was just completed (a new
    /// segment needs room).
    fn publish(&mut self) {
        let Some(mut session) = self.session.take() else {
            return;
        };
        let closed = self.account(&mut session);
        self.session = Some(session);
        if closed > 0 {
            self.retention();
        }
    }

    fn retention(&mut self) {
        self.next_retention = Instant::now() + self.config.retention_interval;
        let policy = Policy {
            max_age: self.config.max_age,
            max_total_bytes: self.config.max_total_bytes,
            min_free_bytes: self.config.min_free_bytes,
        };
        let event_clip = self.events.as_ref().and_then(Events::current_file);
        let current = self
            .session
            .as_ref()
            .and_then(|s| s.current_file())
            .or(event_clip.as_deref());
        let deleted = retention::apply(&self.config.dir, current, &policy);
        for d in &deleted {
            self.shared.forget(&d.name);
        }
        self.shared
            .counters
            .deletions
            .fetch_add(deleted.len() as u64, Ordering::Relaxed);
    }
}
