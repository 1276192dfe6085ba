//! Reading the camera's frame ring out of POSIX shared memory.
//!
//! - [`segment`]: the read-only mapping and its raw accessors (the only `unsafe` on the read
//!   side);
//! - [`source`]: the reader that turns the ring into [`crate::frame::Frame`]s, following writer
//!   restarts;
//! - [`guard`]: the torn-read guard (the writer publishes the index before it copies);
//! - [`pacer`]: when to look at the index, since the writer signals nothing;
//! - [`late`]: noticing a camera that delivers fewer frames than it announces;
//! - [`snapshot`]: every slot header at once, for diagnostics and readiness probes;
//! - [`newest`]: the newest complete frame, for readers of the latest picture (NV12);
//! - [`run`]: a source on its own thread feeding a [`crate::bus::Bus`];
//! - [`writer`]: the board's writer protocol, for the simulated camera and tests.

pub mod guard;
pub mod late;
pub mod newest;
pub mod pacer;
pub mod run;
pub mod segment;
pub mod snapshot;
pub mod source;
pub mod writer;

pub use guard::TornReadGuard;
pub use newest::{Complete, newest_complete};
pub use pacer::PacerConfig;
pub use run::SourceHandle;
pub use segment::{Segment, SegmentId};
pub use snapshot::RingSnapshot;
pub use source::{ShmSource, SourceConfig, SourceStats, StartPosition};
pub use writer::{CopyMode, ShmWriter};

/// Errors from opening, mapping or reading a segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// No segment of that name exists (yet).
    #[error("shared memory segment {0} does not exist")]
    NotFound(String),
    /// The segment exists but is not the board's layout.
    #[error(
        "shared memory segment {name} is {actual} bytes, but the camera's frame ring is {expected} \
         bytes: it was not written by a compatible camera daemon"
    )]
    WrongSize {
        /// Segment name.
        name: String,
        /// Its size.
        actual: u64,
        /// The layout's size.
        expected: u64,
    },
    /// The segment exists but is not the detector's `LatestDetectionResult`.
    #[error(
        "shared memory segment {name} is {actual} bytes, but the detector's result \
         (LatestDetectionResult) is {expected} bytes: it was not written by a compatible detector"
    )]
    WrongDetectionSize {
        /// Segment name.
        name: String,
        /// Its size.
        actual: u64,
        /// The layout's size.
        expected: u64,
    },
    /// The system refused to open, size or map it.
    #[error("cannot open shared memory segment {name}: {source}")]
    Open {
        /// Segment name.
        name: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A frame larger than a slot was offered to the writer.
    #[error("a frame of {size} bytes does not fit in a slot")]
    FrameTooLarge {
        /// Its size.
        size: usize,
    },
    /// Waiting for the segment took longer than allowed.
    #[error("shared memory segment {name} did not appear within {waited:?}")]
    Timeout {
        /// Segment name.
        name: String,
        /// How long we waited.
        waited: std::time::Duration,
    },
}
