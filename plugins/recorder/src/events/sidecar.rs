//! An event clip's sidecar, `event_....json`: what was detected in it, and when.
//!
//! Written when the clip opens (`"complete": false`: a clip cut short by a crash still has
//! one) and again when it closes, each time to a temporary name renamed over the old one, so
//! a reader never sees half a file.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::Hit;
use crate::config::Format;
use crate::names::RecordingName;

/// Most per-second boxes kept for one clip (an hour).
pub const MAX_BOXES: usize = 3600;

/// The most confident box of one second of a clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoxSample {
    /// Seconds from the clip's first frame.
    pub t: f64,
    /// Class.
    pub class: String,
    /// Confidence.
    pub confidence: f32,
    /// x, y, width, height in the picture's pixels.
    pub bbox: [i32; 4],
}

/// What the recorder notes about a clip's detections while it is written.
#[derive(Debug)]
pub struct ClipStats<F> {
    /// Matching detections per class.
    pub classes: BTreeMap<String, u64>,
    /// Highest confidence seen.
    pub max_confidence: f32,
    /// Capture time of the first and last matching detection.
    pub first_ns: Option<u64>,
    /// See `first_ns`.
    pub last_ns: Option<u64>,
    /// The most confident hit per second of capture time (key: whole seconds of the clock).
    pub boxes: BTreeMap<u64, Hit>,
    /// The thumbnail's hit and the frames that decode to its picture.
    pub thumbnail: Option<(Hit, Vec<F>)>,
    /// Whether the thumbnail file was written.
    pub has_thumbnail: bool,
    /// When the clip started, RFC 3339 local time.
    pub started: Option<String>,
    /// Wall clock minus CLOCK_MONOTONIC, ns, at the clip's start.
    pub wall_offset_ns: i128,
    /// Frames written (at close).
    pub frames: u64,
    /// Bytes written (at close).
    pub bytes: u64,
    /// Media time, seconds (at close).
    pub seconds: f64,
}

impl<F> Default for ClipStats<F> {
    fn default() -> Self {
        Self {
            classes: BTreeMap::new(),
            max_confidence: 0.0,
            first_ns: None,
            last_ns: None,
            boxes: BTreeMap::new(),
            thumbnail: None,
            has_thumbnail: false,
            started: None,
            wall_offset_ns: wall_offset_ns(),
            frames: 0,
            bytes: 0,
            seconds: 0.0,
        }
    }
}

impl<F> ClipStats<F> {
    /// Notes a matching detection.
    pub fn note(&mut self, hit: &Hit) {
        *self.classes.entry(hit.class.clone()).or_insert(0) += 1;
        self.max_confidence = self.max_confidence.max(hit.confidence);
        self.first_ns = Some(self.first_ns.map_or(hit.ts_ns, |t| t.min(hit.ts_ns)));
        self.last_ns = Some(self.last_ns.map_or(hit.ts_ns, |t| t.max(hit.ts_ns)));
        let second = hit.ts_ns / 1_000_000_000;
        if self.boxes.len() < MAX_BOXES || self.boxes.contains_key(&second) {
            let slot = self.boxes.entry(second).or_insert_with(|| hit.clone());
            if hit.confidence > slot.confidence {
                *slot = hit.clone();
            }
        }
    }

    /// Whether `hit` would make a better thumbnail than the one held.
    pub fn is_better(&self, hit: &Hit) -> bool {
        self.thumbnail
            .as_ref()
            .is_none_or(|(best, _)| hit.confidence > best.confidence)
    }

    /// Holds `frames` (an IDR up to the hit's frame) for the thumbnail, unless there are none.
    pub fn set_thumbnail(&mut self, hit: &Hit, frames: Vec<F>) {
        if !frames.is_empty() {
            self.thumbnail = Some((hit.clone(), frames));
        }
    }
}

/// The sidecar file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    /// The clip's id: its file name without the extension.
    pub id: String,
    /// The clip's file name.
    pub file: String,
    /// `mp4` or `h264`.
    pub format: Format,
    /// False while the clip is being written (or if the recorder died before closing it).
    pub complete: bool,
    /// When the clip's file was started, RFC 3339 local time.
    pub start_time: Option<String>,
    /// Media time, seconds (0 until complete).
    pub duration: f64,
    /// Frames (0 until complete).
    pub frames: u64,
    /// Bytes (0 until complete).
    pub bytes: u64,
    /// The classes detected, sorted.
    pub classes: Vec<String>,
    /// Matching detections per class.
    pub detections: BTreeMap<String, u64>,
    /// Highest confidence.
    pub max_confidence: f32,
    /// First matching detection, RFC 3339 local time with milliseconds.
    pub first_detection: Option<String>,
    /// Last matching detection.
    pub last_detection: Option<String>,
    /// First matching detection, seconds from the clip's first frame.
    pub first_detection_offset: Option<f64>,
    /// Last matching detection, seconds from the clip's first frame.
    pub last_detection_offset: Option<f64>,
    /// First matching detection's capture time, CLOCK_MONOTONIC ns (the clock of the frames
    /// and of stackctl's other detection data).
    pub first_detection_ns: Option<u64>,
    /// Last matching detection's capture time, CLOCK_MONOTONIC ns.
    pub last_detection_ns: Option<u64>,
    /// The most confident box of each second with a detection.
    pub boxes: Vec<BoxSample>,
    /// The thumbnail's file name, once written.
    pub thumbnail: Option<String>,
    /// The id of the clip this one continues (an event longer than `max_event_duration`).
    pub continues: Option<String>,
}

impl Sidecar {
    /// The sidecar of the clip `name`, whose first frame was captured at `first_ns`.
    pub fn of<F>(
        name: &RecordingName,
        stats: &ClipStats<F>,
        first_ns: u64,
        complete: bool,
        continues: Option<String>,
    ) -> Self {
        let offset = |ts: u64| (ts as f64 - first_ns as f64) / 1e9;
        let wall = |ts: Option<u64>| ts.and_then(|t| wall_time(t, stats.wall_offset_ns));
        Self {
            id: name.stem(),
            file: name.file_name(),
            format: name.format,
            complete,
            start_time: stats.started.clone(),
            duration: stats.seconds,
            frames: stats.frames,
            bytes: stats.bytes,
            classes: stats.classes.keys().cloned().collect(),
            detections: stats.classes.clone(),
            max_confidence: stats.max_confidence,
            first_detection: wall(stats.first_ns),
            last_detection: wall(stats.last_ns),
            first_detection_offset: stats.first_ns.map(offset),
            last_detection_offset: stats.last_ns.map(offset),
            first_detection_ns: stats.first_ns,
            last_detection_ns: stats.last_ns,
            boxes: stats
                .boxes
                .values()
                .map(|h| BoxSample {
                    t: (offset(h.ts_ns) * 1000.0).round() / 1000.0,
                    class: h.class.clone(),
                    confidence: h.confidence,
                    bbox: h.bbox,
                })
                .collect(),
            thumbnail: stats.has_thumbnail.then(|| format!("{}.jpg", name.stem())),
            continues,
        }
    }
}

/// Wall clock minus CLOCK_MONOTONIC now, ns: adds to a capture time to date it.
pub fn wall_offset_ns() -> i128 {
    let mono = i128::from(stackctl_media::clock::monotonic_ns());
    Timestamp::now().as_nanosecond() - mono
}

/// A capture time as RFC 3339 local time with milliseconds.
pub fn wall_time(ts_ns: u64, offset_ns: i128) -> Option<String> {
    let t = Timestamp::from_nanosecond(i128::from(ts_ns) + offset_ns).ok()?;
    Some(
        t.to_zoned(TimeZone::system())
            .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string(),
    )
}

/// Writes `bytes` to `path` through a temporary file renamed over it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("sidecar");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    f.write_all(bytes)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(ts_ms: u64, class: &str, confidence: f32) -> Hit {
        Hit {
            ts_ns: ts_ms * 1_000_000,
            class: class.to_owned(),
            confidence,
            bbox: [1, 2, 3, 4],
        }
    }

    #[test]
    fn the_sidecar_sums_up_the_detections() {
        let mut s = ClipStats::<()>::default();
        for h in [
            hit(10_100, "cat", 0.6),
            hit(10_500, "cat", 0.9),
            hit(11_200, "dog", 0.7),
            hit(12_900, "cat", 0.55),
        ] {
            s.note(&h);
        }
        let name = RecordingName::parse("event_20260102_030405.mp4").expect("name");
        let c = Sidecar::of(&name, &s, 8_000_000_000, true, None);
        assert_eq!(c.id, "event_20260102_030405");
        assert_eq!(c.classes, ["cat", "dog"]);
        assert_eq!(c.detections["cat"], 3);
        assert_eq!(c.max_confidence, 0.9);
        assert_eq!(c.first_detection_offset, Some(2.1));
        assert_eq!(c.last_detection_offset, Some(4.9));
        // One box per second: the best of second 10, then 11 and 12.
        let t: Vec<f64> = c.boxes.iter().map(|b| b.t).collect();
        assert_eq!(t, [2.5, 3.2, 4.9]);
        assert!(c.first_detection.is_some());
        let json = serde_json::to_string(&c).expect("json");
        let back: Sidecar = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, c);
    }
}
