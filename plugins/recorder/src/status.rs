//! What the recorder shows: the legacy `RecordingStatus` (plus a few fields), the counters,
//! and their Prometheus text. Shared between the writer thread (which updates it) and the
//! HTTP and metrics calls (which read it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use stackctl_sink_sdk::MetricsText;

use crate::config::{Format, Mode};

/// The legacy `RecordingStatus`, extended. The counts are those of the current recording
/// (since `POST /start`, across its segments), or of the last one when idle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// Whether a recording is running (possibly still waiting for its first IDR).
    pub recording: bool,
    /// The file being written (or last written), a name in the recording directory; empty
    /// before any recording.
    pub filename: String,
    /// Frames recorded.
    pub frame_count: u64,
    /// Bytes written to disk.
    pub bytes_written: u64,
    /// Media time recorded, milliseconds (the legacy server sent nanoseconds here: a bug).
    pub duration_ms: u64,
    /// The same in seconds, for the UI.
    pub duration: f64,
    /// When the recording started, RFC 3339 local time; null before any recording.
    pub start_time: Option<String>,
    /// `mp4` or `h264`.
    pub format: Format,
    /// `manual` or `continuous`.
    pub mode: Mode,
    /// Files completed in this recording (segments).
    pub segments: u64,
    /// Why recording stopped or could not start; null when all is well.
    pub error: Option<String>,
}

impl Status {
    /// The status before any recording.
    pub fn new(format: Format, mode: Mode) -> Self {
        Self {
            recording: false,
            filename: String::new(),
            frame_count: 0,
            bytes_written: 0,
            duration_ms: 0,
            duration: 0.0,
            start_time: None,
            format,
            mode,
            segments: 0,
            error: None,
        }
    }
}

/// Monotonic counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes written to recordings.
    pub bytes_written: AtomicU64,
    /// Frames recorded.
    pub frames_written: AtomicU64,
    /// Files completed.
    pub segments: AtomicU64,
    /// Recordings deleted by retention.
    pub deletions: AtomicU64,
    /// Errors that stopped (or prevented) a recording.
    pub errors: AtomicU64,
    /// Frames dropped because the queue to the writer thread was full (or skipped after such a
    /// drop until the next IDR).
    pub queue_drops: AtomicU64,
}

/// Everything the threads share.
#[derive(Debug)]
pub struct Shared {
    status: Mutex<Status>,
    /// The counters.
    pub counters: Counters,
    /// Media duration (seconds) of the files this run completed, and of the one being written.
    durations: Mutex<HashMap<String, f64>>,
}

impl Shared {
    /// Idle, nothing counted.
    pub fn new(format: Format, mode: Mode) -> Self {
        Self {
            status: Mutex::new(Status::new(format, mode)),
            counters: Counters::default(),
            durations: Mutex::new(HashMap::new()),
        }
    }

    /// The status, locked for a short read or update.
    pub fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the status.
    pub fn snapshot(&self) -> Status {
        self.status().clone()
    }

    /// Notes the media duration of a file.
    pub fn set_duration(&self, name: &str, seconds: f64) {
        self.durations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), seconds);
    }

    /// The media duration of a file written in this run, if known.
    pub fn duration_of(&self, name: &str) -> Option<f64> {
        self.durations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied()
    }

    /// Forgets a deleted file.
    pub fn forget(&self, name: &str) {
        self.durations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    /// The Prometheus text: the legacy gauges and the recorder's counters; `queue_fill` is the
    /// writer queue's fill, 0 to 1.
    pub fn metrics(&self, queue_fill: f64) -> String {
        let s = self.snapshot();
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut m = MetricsText::new();
        m.gauge(
            "streaming_recording_active",
            "1 while a recording runs.",
            if s.recording { 1.0 } else { 0.0 },
        )
        .gauge(
            "streaming_recording_bytes",
            "Bytes written by the current (or last) recording.",
            s.bytes_written as f64,
        )
        .gauge(
            "streaming_recording_frames",
            "Frames recorded by the current (or last) recording.",
            s.frame_count as f64,
        )
        .gauge(
            "streaming_recorder_buffer_usage_percent",
            "Fill of the queue between the delivery and writer threads, percent.",
            (queue_fill * 100.0).clamp(0.0, 100.0),
        )
        .counter(
            "recorder_bytes_written_total",
            "Bytes written to recordings.",
            get(&c.bytes_written),
        )
        .counter(
            "recorder_frames_written_total",
            "Frames recorded.",
            get(&c.frames_written),
        )
        .counter(
            "recorder_segments_total",
            "Recording files completed.",
            get(&c.segments),
        )
        .counter(
            "recorder_deletions_total",
            "Recordings deleted by retention.",
            get(&c.deletions),
        )
        .counter(
            "recorder_errors_total",
            "Errors that stopped a recording or kept one from starting.",
            get(&c.errors),
        )
        .counter(
            "recorder_queue_drops_total",
            "Frames dropped because the writer thread fell behind.",
            get(&c.queue_drops),
        );
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_have_the_legacy_gauges_and_typed_counters() {
        let shared = Shared::new(Format::Mp4, Mode::Manual);
        {
            let mut s = shared.status();
            s.recording = true;
            s.bytes_written = 1234;
            s.frame_count = 56;
        }
        shared.counters.errors.fetch_add(2, Ordering::Relaxed);
        let text = shared.metrics(0.25);
        for needle in [
            "# TYPE streaming_recording_active gauge\nstreaming_recording_active 1\n",
            "streaming_recording_bytes 1234\n",
            "streaming_recording_frames 56\n",
            "streaming_recorder_buffer_usage_percent 25\n",
            "# TYPE recorder_errors_total counter\nrecorder_errors_total 2\n",
            "# TYPE recorder_bytes_written_total counter\n",
            "# TYPE recorder_frames_written_total counter\n",
            "# TYPE recorder_segments_total counter\n",
            "# TYPE recorder_deletions_total counter\n",
            "# TYPE recorder_queue_drops_total counter\n",
        ] {
            assert!(text.contains(needle), "{needle:?} missing:\n{text}");
        }
    }

    #[test]
    fn the_status_has_the_legacy_fields() {
        let v = serde_json::to_value(Status::new(Format::H264, Mode::Continuous)).expect("json");
        for key in [
            "recording",
            "filename",
            "frame_count",
            "bytes_written",
            "duration_ms",
            "start_time",
            "duration",
            "format",
            "mode",
            "error",
        ] {
            assert!(v.get(key).is_some(), "{key} missing: {v}");
        }
        assert_eq!(v["format"], "h264");
        assert_eq!(v["mode"], "continuous");
        assert!(v["error"].is_null());
    }
}
