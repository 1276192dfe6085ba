//! Snapshots: the camera's newest picture as a JPEG, encoded once per frame.
//!
//! The picture comes from the NV12 ring (`/pet_camera_active_frame` on the board, camsim's
//! `--nv12-shm`): format 1 frames in the frame ring's layout, read one frame behind the writer
//! ([`crate::shm::newest`]), so no torn-read guard is needed. [`Snapshotter::jpeg`] is the one
//! call an HTTP route needs:
//!
//! ```no_run
//! use stackctl_core::snapshot::Snapshotter;
//!
//! let snapshots = Snapshotter::new("/pet_camera_active_frame");
//! match snapshots.jpeg(Some(640)) {
//!     Ok(jpeg) => println!("{} bytes of JPEG", jpeg.len()),
//!     Err(e) => println!("503: {e}"),
//! }
//! ```
//!
//! # The cache
//!
//! Each encoded picture is kept, per asked width (a few widths at once), until the camera has
//! a newer frame. Requests are served one at a time: one that arrives while another encodes
//! waits for it, and takes its result if that result reflects the newest frame *as of its own
//! arrival* or later. So any number of requests for one frame cost one encode, and a burst of
//! requests on a live camera at most two (the frame may change during the first encode).

mod jpeg;
mod nv12;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

pub use jpeg::{Nv12, QUALITY, encode, output_size};
pub use nv12::{FrameKey, Nv12Source};

use crate::shm::ShmError;

/// Why there is no snapshot. Every variant but [`SnapshotError::Width`] means "no picture
/// now" (HTTP 503 with the message as the reason); `Width` is the caller's mistake (400).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// No NV12 segment of that name.
    #[error("no picture: the NV12 segment {name} does not exist (is the camera running?)")]
    NoSegment {
        /// Segment name.
        name: String,
    },
    /// The segment exists but holds no complete frame yet.
    #[error("no picture: {name} holds no complete frame yet")]
    NoFrame {
        /// Segment name.
        name: String,
    },
    /// The newest frame is not NV12.
    #[error("no picture: {name} holds {format} frames, not NV12")]
    NotNv12 {
        /// Segment name.
        name: String,
        /// The format found.
        format: &'static str,
    },
    /// A frame whose header is no NV12 picture.
    #[error(
        "no picture: frame {frame_number} of {name} is {width}x{height} with {data_size} bytes, not an NV12 picture"
    )]
    BadFrame {
        /// Segment name.
        name: String,
        /// The frame.
        frame_number: u64,
        /// Its width.
        width: i32,
        /// Its height.
        height: i32,
        /// Its `data_size`.
        data_size: u64,
    },
    /// The writer kept overwriting the frame during the copy.
    #[error("no picture: the camera overwrote {name}'s frames faster than they could be copied")]
    Overwritten {
        /// Segment name.
        name: String,
    },
    /// Mapping the segment failed.
    #[error("no picture: {0}")]
    Open(#[from] ShmError),
    /// The encoder failed.
    #[error("no picture: the JPEG encoder failed: {0}")]
    Encode(String),
    /// A width of 0 was asked.
    #[error("width must be at least 1 (it is clamped to 16..=the picture's width)")]
    Width,
}

impl SnapshotError {
    /// True for the caller's mistakes (HTTP 400); the rest mean no picture now (503).
    pub fn is_client_error(&self) -> bool {
        matches!(self, Self::Width)
    }
}

/// Counters of a [`Snapshotter`].
#[derive(Debug, Default)]
pub struct SnapshotStats {
    /// Requests answered with a picture.
    pub served: AtomicU64,
    /// Of those, answered from the cache.
    pub cached: AtomicU64,
    /// JPEG encodes done.
    pub encodes: AtomicU64,
    /// Requests answered with an error.
    pub errors: AtomicU64,
}

/// Most widths cached at once for one frame.
const WIDTHS_CACHED: usize = 4;

/// One encoded picture.
#[derive(Debug, Clone)]
struct Cached {
    key: FrameKey,
    width: Option<u32>,
    /// When its request found `key` to be the newest frame.
    observed: Instant,
    jpeg: Arc<[u8]>,
}

#[derive(Debug)]
struct Inner {
    source: Nv12Source,
    cache: Vec<Cached>,
    picture: Vec<u8>,
}

/// JPEG snapshots of one NV12 segment, cached per frame. `Sync`: share it between request
/// handlers.
#[derive(Debug)]
pub struct Snapshotter {
    inner: Mutex<Inner>,
    stats: Arc<SnapshotStats>,
}

impl Snapshotter {
    /// Snapshots of the NV12 segment `name` (mapped on the first request, and again whenever
    /// the camera recreates it).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                source: Nv12Source::new(name),
                cache: Vec::new(),
                picture: Vec::new(),
            }),
            stats: Arc::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<SnapshotStats> {
        &self.stats
    }

    /// The newest picture as a JPEG, `width` pixels wide if given (clamped to 16..=the
    /// picture's width, the height following the aspect), else at full size.
    pub fn jpeg(&self, width: Option<u32>) -> Result<Arc<[u8]>, SnapshotError> {
        let result = self.jpeg_inner(width);
        let counter = match &result {
            Ok(_) => &self.stats.served,
            Err(_) => &self.stats.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    fn jpeg_inner(&self, width: Option<u32>) -> Result<Arc<[u8]>, SnapshotError> {
        if width == Some(0) {
            return Err(SnapshotError::Width);
        }
        let arrived = Instant::now();
        // Poisoned only by a panic in the encoder; the cache is still consistent.
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        // Encoded (for another request) after this one arrived: as new as it can ask for.
        if let Some(hit) = inner
            .cache
            .iter()
            .find(|c| c.width == width && c.observed >= arrived)
        {
            self.stats.cached.fetch_add(1, Ordering::Relaxed);
            return Ok(hit.jpeg.clone());
        }
        let newest = inner.source.newest()?;
        let observed = Instant::now();
        if let Some(hit) = inner
            .cache
            .iter_mut()
            .find(|c| c.width == width && c.key == newest.key)
        {
            hit.observed = observed;
            self.stats.cached.fetch_add(1, Ordering::Relaxed);
            return Ok(hit.jpeg.clone());
        }
        let Inner {
            source,
            cache,
            picture,
        } = &mut *inner;
        let frame = source.copy(&newest, picture)?;
        let out_width = width.map_or(frame.width, |w| usize::try_from(w).unwrap_or(usize::MAX));
        let bytes =
            jpeg::encode(frame, out_width).map_err(|e| SnapshotError::Encode(e.to_string()))?;
        self.stats.encodes.fetch_add(1, Ordering::Relaxed);
        let jpeg: Arc<[u8]> = bytes.into();
        cache.retain(|c| c.key == newest.key);
        if cache.len() >= WIDTHS_CACHED {
            cache.remove(0);
        }
        cache.push(Cached {
            key: newest.key,
            width,
            observed,
            jpeg: jpeg.clone(),
        });
        Ok(jpeg)
    }
}
