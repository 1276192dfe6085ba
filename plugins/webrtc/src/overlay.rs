//! The detector's results to the viewers that ask for them, over a data channel labelled
//! [`LABEL`]: one JSON text message per result, with the RTP timestamp of its frame on that
//! viewer's video track, so the page can draw each box over the frame it was found in.
//!
//! A result is turned into JSON once, on the delivery thread ([`Overlay::new`]); each viewer's
//! worker only puts that viewer's RTP timestamp in front ([`Overlay::message`]). A viewer whose
//! channel has more than [`MAX_BUFFERED`] bytes not yet taken by its peer misses results
//! (counted) rather than queueing them: the boxes are only worth their frame, and video never
//! waits for them.

use std::fmt::Write as _;
use std::time::Instant;

use stackctl_sink_sdk::Detections;

/// The label of the channel a viewer opens to receive the results.
pub const LABEL: &str = "detections";

/// Bytes a viewer's channel may hold unacknowledged before a result is dropped for it: about
/// 80 results of one box, between two and three seconds at 30 results a second. A viewer that
/// far behind cannot draw them in time anyway.
pub const MAX_BUFFERED: usize = 16 * 1024;

/// Results waiting for a worker before newer ones are dropped (a worker this far behind is
/// stuck on something else).
pub const INBOX_RESULTS: usize = 64;

/// One result of the detector, as JSON once for every viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// The capture time of its frame (`CLOCK_MONOTONIC` ns), from which each viewer's RTP
    /// timestamp is computed as its frames' are.
    pub timestamp_ns: u64,
    /// The JSON object after `{"rtp_timestamp":N,`: `"frame_number":..,"timestamp_ns":..,
    /// "detections":[..]}`.
    tail: String,
    /// When the sink got it (for the latency of the path through the workers).
    pub received: Instant,
}

/// One object of a result, as the overlay reads it (what [`Detections::items`] gives).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Item<'a> {
    /// Its class.
    pub class: &'a str,
    /// The detector's confidence, `0..=1`.
    pub confidence: f32,
    /// Its box, in pixels of the camera picture: left, top, width, height.
    pub bbox: (i32, i32, i32, i32),
}

impl Overlay {
    /// The JSON of a result the host handed over (its items already checked by the SDK).
    pub fn of(detections: &Detections<'_>, received: Instant) -> Self {
        let items: Vec<Item<'_>> = detections
            .items()
            .map(|d| Item {
                class: d.class,
                confidence: d.confidence,
                bbox: (d.x, d.y, d.w, d.h),
            })
            .collect();
        Self::new(
            detections.frame_number(),
            detections.timestamp_ns(),
            &items,
            received,
        )
    }

    /// The JSON of a result: the web monitor's field names (`class_name`, `confidence`,
    /// `bbox: {x, y, w, h}`), the frame's number and capture time.
    pub fn new(
        frame_number: u64,
        timestamp_ns: u64,
        items: &[Item<'_>],
        received: Instant,
    ) -> Self {
        let mut tail = String::with_capacity(64 + items.len() * 96);
        // Writing into a String cannot fail.
        let _ = write!(
            tail,
            "\"frame_number\":{frame_number},\"timestamp_ns\":{timestamp_ns},\"detections\":["
        );
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                tail.push(',');
            }
            // serde_json escapes the class name (UTF-8 from the detector: quotes, controls).
            let class = serde_json::Value::from(item.class).to_string();
            let (x, y, w, h) = item.bbox;
            // Confidence rounded to 4 decimals: a float printed in full is 9 digits of noise.
            let confidence = (f64::from(item.confidence) * 1e4).round() / 1e4;
            let _ = write!(
                tail,
                "{{\"class_name\":{class},\"confidence\":{confidence},\"bbox\":{{\"x\":{x},\"y\":{y},\"w\":{w},\"h\":{h}}}}}"
            );
        }
        tail.push_str("]}");
        Self {
            timestamp_ns,
            tail,
            received,
        }
    }

    /// The message for a viewer whose frame of this result carries `rtp_timestamp`.
    pub fn message(&self, rtp_timestamp: u32) -> String {
        let mut m = String::with_capacity(self.tail.len() + 32);
        let _ = write!(m, "{{\"rtp_timestamp\":{rtp_timestamp},");
        m.push_str(&self.tail);
        m
    }
}

/// What became of a result for one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Handed to its channel.
    Sent,
    /// Its channel holds more than [`MAX_BUFFERED`] bytes: dropped for it.
    Full,
    /// Its channel refused it (closing, or not open after all): dropped for it.
    Refused,
}

/// Whether a channel holding `buffered` bytes takes a message of `len` more.
pub fn has_room(buffered: usize, len: usize) -> bool {
    buffered + len <= MAX_BUFFERED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_carries_the_monitors_fields_and_the_viewers_rtp_timestamp() {
        let items = [
            Item {
                class: "cat",
                confidence: 0.875,
                bbox: (10, 20, 30, 40),
            },
            Item {
                class: "a \"quoted\" dog",
                confidence: 0.123_456_78,
                bbox: (0, 0, 1, 1),
            },
        ];
        let overlay = Overlay::new(42, 1_000_000_000, &items, Instant::now());
        let m: serde_json::Value = serde_json::from_str(&overlay.message(90_000)).unwrap();
        assert_eq!(
            m,
            serde_json::json!({
                "rtp_timestamp": 90_000,
                "frame_number": 42,
                "timestamp_ns": 1_000_000_000u64,
                "detections": [
                    {"class_name": "cat", "confidence": 0.875,
                     "bbox": {"x": 10, "y": 20, "w": 30, "h": 40}},
                    {"class_name": "a \"quoted\" dog", "confidence": 0.1235,
                     "bbox": {"x": 0, "y": 0, "w": 1, "h": 1}},
                ]
            })
        );
        // Another viewer, another origin: only the timestamp differs.
        let other: serde_json::Value = serde_json::from_str(&overlay.message(u32::MAX)).unwrap();
        assert_eq!(other["rtp_timestamp"], u32::MAX);
        assert_eq!(other["detections"], m["detections"]);
    }

    #[test]
    fn an_empty_result_is_a_message_too() {
        let overlay = Overlay::new(7, 5, &[], Instant::now());
        assert_eq!(
            overlay.message(1),
            r#"{"rtp_timestamp":1,"frame_number":7,"timestamp_ns":5,"detections":[]}"#
        );
    }

    #[test]
    fn a_full_channel_takes_nothing_more() {
        for (buffered, len, room) in [
            (0, 200, true),
            (MAX_BUFFERED - 200, 200, true),
            (MAX_BUFFERED - 199, 200, false),
            (MAX_BUFFERED, 1, false),
            (0, MAX_BUFFERED + 1, false),
        ] {
            assert_eq!(has_room(buffered, len), room, "{buffered} + {len}");
        }
    }
}
