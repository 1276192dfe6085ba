//! Detections: what the board's YOLO detector sees, read out of its shared-memory segment.
//!
//! The detector (`yolo_detector_daemon` on the board, `detector-sim` in the demo) keeps the
//! latest result in `/pet_camera_detections`, a single [`LatestDetectionResult`] record: it
//! writes the fields, then increments `version`. Nothing else signals an update, and nothing
//! stops a reader from copying the record while the writer rewrites it.
//!
//! - [`segment`]: the read-only mapping (the only `unsafe` on this side);
//! - [`guard`]: reading one consistent copy: version, copy, copy again, version;
//! - [`validate`]: from the raw record to a [`Detections`] value, or why it is malformed;
//! - [`source`]: the reader that follows the writer through restarts and counts everything;
//! - [`run`]: a source on its own thread, publishing into a [`crate::bus::Bus`];
//! - [`writer`]: the board's writer protocol, for `detector-sim` and tests.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use std::time::Duration;
//! use stackctl_core::detections::{DetectionConfig, DetectionSource};
//!
//! let mut source = DetectionSource::new(DetectionConfig::new("/pet_camera_detections"));
//! let stop = AtomicBool::new(false);
//! while let Some(result) = source.poll(&stop, Duration::from_secs(1)) {
//!     for d in &result.items {
//!         println!("frame {}: {} {:.2} at {},{}", result.frame_number, d.class, d.confidence, d.x, d.y);
//!     }
//! }
//! ```
//!
//! [`LatestDetectionResult`]: crate::layout::LatestDetectionResult

pub mod guard;
pub mod picture;
pub mod run;
pub mod segment;
pub mod source;
pub mod validate;
pub mod writer;

pub use picture::Picture;
pub use run::DetectionHandle;
pub use segment::DetectionSegment;
pub use source::{DetectionConfig, DetectionSource, DetectionStats};
pub use writer::{DetectionWriter, WriteMode};

/// The default segment name, as on the board.
pub const DEFAULT_SEGMENT: &str = "/pet_camera_detections";

/// One thing the detector found.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Its class, e.g. `cat`.
    pub class: String,
    /// The detector's confidence, `0.0..=1.0`.
    pub confidence: f32,
    /// Left edge, picture pixels.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub w: i32,
    /// Height.
    pub h: i32,
}

/// One result of the detector: what it found in one camera frame. Travels on the bus as an
/// `Arc`, next to the frames (see [`crate::bus`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Detections {
    /// The camera frame it belongs to.
    pub frame_number: u64,
    /// That frame's time on `CLOCK_MONOTONIC` (ns), as the detector wrote it: the bus orders
    /// results with frames by this.
    pub timestamp_ns: u64,
    /// The segment's `version` of this result.
    pub version: u32,
    /// When the source read it (`CLOCK_MONOTONIC`, ns).
    pub received_ns: u64,
    /// Incremented each time the source follows a detector restart.
    pub generation: u32,
    /// What was found; empty when nothing was.
    pub items: Vec<Detection>,
}
