//! The NV12 ring as a source of the newest picture.

use std::time::{Duration, Instant};

use super::SnapshotError;
use super::jpeg::Nv12;
use crate::layout::{PixelFormat, SLOT_DATA_CAPACITY};
use crate::shm::segment::current_id;
use crate::shm::{Complete, Segment, SegmentId, ShmError, newest_complete};

/// How often the name is checked for a recreated segment.
const IDENTITY_CHECK: Duration = Duration::from_millis(250);

/// Copies of a frame that the writer may overwrite before giving up.
const ATTEMPTS: usize = 3;

/// What identifies one frame: the segment's incarnation and the writer counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameKey {
    /// The segment incarnation.
    pub segment: SegmentId,
    /// The writer counter of the frame.
    pub counter: u32,
    /// Its camera frame number.
    pub frame_number: u64,
}

/// The newest complete frame, not copied yet.
#[derive(Debug, Clone, Copy)]
pub(super) struct Newest {
    pub(super) key: FrameKey,
    frame: Complete,
    width: usize,
    height: usize,
    len: usize,
}

/// Reads the newest NV12 picture of a ring, following the camera through restarts.
#[derive(Debug)]
pub struct Nv12Source {
    name: String,
    seg: Option<Segment>,
    checked: Option<Instant>,
}

impl Nv12Source {
    /// A source for segment `name`, mapped on first use.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            seg: None,
            checked: None,
        }
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Maps the segment, or maps it again when the name leads to a new one.
    fn segment(&mut self) -> Result<&Segment, SnapshotError> {
        let now = Instant::now();
        let stale = self
            .checked
            .is_none_or(|t| now.duration_since(t) >= IDENTITY_CHECK);
        if stale {
            self.checked = Some(now);
            let current = current_id(&self.name)?;
            if current.is_none() {
                self.seg = None;
            } else if current != self.seg.as_ref().map(Segment::id) {
                self.seg = match Segment::open(&self.name) {
                    Ok(seg) => Some(seg),
                    Err(ShmError::NotFound(_) | ShmError::WrongSize { actual: 0, .. }) => None,
                    Err(e) => return Err(e.into()),
                };
            }
        }
        self.seg.as_ref().ok_or_else(|| SnapshotError::NoSegment {
            name: self.name.clone(),
        })
    }

    /// The newest complete frame's identity and geometry, checked to be an NV12 picture.
    pub(super) fn newest(&mut self) -> Result<Newest, SnapshotError> {
        let name = self.name.clone();
        let seg = self.segment()?;
        let frame = newest_complete(seg).ok_or(SnapshotError::NoFrame { name: name.clone() })?;
        let h = frame.header;
        let format = PixelFormat::from_raw(h.format);
        if format != PixelFormat::Nv12 {
            return Err(SnapshotError::NotNv12 {
                name,
                format: format.name(),
            });
        }
        let bad = || SnapshotError::BadFrame {
            name: name.clone(),
            frame_number: h.frame_number,
            width: h.width,
            height: h.height,
            data_size: h.data_size,
        };
        let (width, height) = match (usize::try_from(h.width), usize::try_from(h.height)) {
            (Ok(w), Ok(hh)) if w >= 2 && hh >= 2 && w % 2 == 0 && hh % 2 == 0 => (w, hh),
            _ => return Err(bad()),
        };
        let len = width * height * 3 / 2;
        if len > SLOT_DATA_CAPACITY || u64::try_from(len).map_or(true, |l| l > h.data_size) {
            return Err(bad());
        }
        if width > usize::from(u16::MAX) || height > usize::from(u16::MAX) {
            return Err(bad());
        }
        Ok(Newest {
            key: FrameKey {
                segment: seg.id(),
                counter: frame.counter,
                frame_number: h.frame_number,
            },
            frame,
            width,
            height,
            len,
        })
    }

    /// Copies the picture of `newest` into `buf` (or of a newer frame, if the writer
    /// overwrote it meanwhile).
    pub(super) fn copy<'b>(
        &mut self,
        newest: &Newest,
        buf: &'b mut Vec<u8>,
    ) -> Result<Nv12<'b>, SnapshotError> {
        let mut target = *newest;
        for _ in 0..ATTEMPTS {
            buf.clear();
            let seg = self.segment()?;
            if target.frame.copy(seg, target.len, buf) {
                return Ok(Nv12 {
                    data: buf,
                    width: target.width,
                    height: target.height,
                });
            }
            target = self.newest()?;
        }
        Err(SnapshotError::Overwritten {
            name: self.name.clone(),
        })
    }
}
