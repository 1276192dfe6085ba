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

/// Upper bounds of the `recorder_event_seconds` histogram's buckets, seconds.
pub const EVENT_BUCKETS: [f64; 9] = [5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0];

/// Most classes counted separately in `recorder_events_total` (a detector names few; the
/// bound keeps a misbehaving one from growing the metrics without end).
pub const MAX_EVENT_CLASSES: usize = 64;

#[derive(Debug, Default)]
struct EventMetrics {
    /// Events per class (an event with two classes counts for both).
    per_class: std::collections::BTreeMap<String, u64>,
    /// Observations at or below each of [`EVENT_BUCKETS`].
    buckets: [u64; EVENT_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Events mode's metrics: events per class and their durations.
#[derive(Debug, Default)]
pub struct EventCounters {
    inner: Mutex<EventMetrics>,
}

impl EventCounters {
    /// Counts one finished event of `classes` that lasted `seconds` (all its clips).
    pub fn record<'a>(&self, classes: impl IntoIterator<Item = &'a String>, seconds: f64) {
        let mut m = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for class in classes {
            if m.per_class.len() < MAX_EVENT_CLASSES || m.per_class.contains_key(class) {
                *m.per_class.entry(class.clone()).or_insert(0) += 1;
            }
        }
        for (i, le) in EVENT_BUCKETS.iter().enumerate() {
            if seconds <= *le {
                m.buckets[i] += 1;
            }
        }
        m.count += 1;
        m.sum += seconds;
    }

    fn write(&self, m: &mut MetricsText) {
        let e = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let labels: Vec<[(&str, &str); 1]> = e
            .per_class
            .keys()
            .map(|k| [("class", k.as_str())])
            .collect();
        m.counters(
            "recorder_events_total",
            "Events recorded (events mode), per detected class.",
            labels
                .iter()
                .zip(e.per_class.values())
                .map(|(l, v)| (&l[..], *v)),
        );
        let buckets: Vec<(f64, u64)> = EVENT_BUCKETS
            .iter()
            .copied()
            .zip(e.buckets.iter().copied())
            .collect();
        m.histogram(
            "recorder_event_seconds",
            "Duration of the events recorded (events mode), all clips of an event together.",
            &buckets,
            e.sum,
            e.count,
        );
    }
}

/// Everything the threads share.
#[derive(Debug)]
pub struct Shared {
    status: Mutex<Status>,
    /// The counters.
    pub counters: Counters,
    /// Events mode's metrics.
    pub events: EventCounters,
    /// Media duration (seconds) of the files this run completed, and of the one being written.
    durations: Mutex<HashMap<String, f64>>,
}

impl Shared {
    /// Idle, nothing counted.
    pub fn new(format: Format, mode: Mode) -> Self {
        Self {
            status: Mutex::new(Status::new(format, mode)),
            counters: Counters::default(),
            events: EventCounters::default(),
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
        if s.mode == Mode::Events {
            self.events.write(&mut m);
        }
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
    fn event_metrics_count_per_class_and_observe_durations() {
        let shared = Shared::new(Format::Mp4, Mode::Events);
        let cat = "cat".to_owned();
        let dog = "dog".to_owned();
        shared.events.record([&cat], 7.0);
        shared.events.record([&cat, &dog], 45.0);
        let text = shared.metrics(0.0);
        for needle in [
            "# TYPE recorder_events_total counter\n",
            "recorder_events_total{class=\"cat\"} 2\n",
            "recorder_events_total{class=\"dog\"} 1\n",
            "# TYPE recorder_event_seconds histogram\n",
            "recorder_event_seconds_bucket{le=\"5\"} 0\n",
            "recorder_event_seconds_bucket{le=\"10\"} 1\n",
            "recorder_event_seconds_bucket{le=\"60\"} 2\n",
            "recorder_event_seconds_bucket{le=\"+Inf\"} 2\n",
            "recorder_event_seconds_sum 52\n",
            "recorder_event_seconds_count 2\n",
        ] {
            assert!(text.contains(needle), "{needle:?} missing:\n{text}");
        }
        let manual = Shared::new(Format::Mp4, Mode::Manual).metrics(0.0);
        assert!(!manual.contains("recorder_event"), "{manual}");
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
