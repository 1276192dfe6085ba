//! A read-only view of the detections segment.
//!
//! # Safety contract of the mapping
//!
//! The same as the frame ring's ([`crate::shm::segment`]): the detector writes the record
//! while we read it, without a lock, so no Rust reference into the mapping is ever formed. The
//! version is read with an atomic load, the record with a volatile copy that may be torn; the
//! caller proves it consistent ([`super::guard`]). The mapping stays valid after the writer
//! unlinks the name; a writer that shrank the file in place would make reads raise SIGBUS,
//! which the board's writers never do (they create the segment at its size once), and
//! [`DetectionSegment::open`] refuses any other size.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use memmap2::Mmap;

use crate::layout::{DETECTION_SEGMENT_SIZE, DETECTION_VERSION_OFFSET, LatestDetectionResult};
use crate::shm::segment::map_read_only;
use crate::shm::{SegmentId, ShmError};

/// A read-only mapping of one incarnation of a detections segment.
#[derive(Debug)]
pub struct DetectionSegment {
    name: String,
    id: SegmentId,
    map: Mmap,
}

impl DetectionSegment {
    /// Maps `name` (e.g. `/pet_camera_detections`) read-only.
    ///
    /// [`ShmError::NotFound`] when it does not exist, [`ShmError::WrongDetectionSize`] when it
    /// is not 552 bytes (0: a writer between `shm_open` and `ftruncate`).
    pub fn open(name: &str) -> Result<Self, ShmError> {
        let (map, id) = map_read_only(name, DETECTION_SEGMENT_SIZE, |actual| {
            ShmError::WrongDetectionSize {
                name: name.to_owned(),
                actual,
                expected: DETECTION_SEGMENT_SIZE as u64,
            }
        })?;
        Ok(Self {
            name: name.to_owned(),
            id,
            map,
        })
    }

    /// The name it was opened by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The identity of the mapped incarnation.
    pub fn id(&self) -> SegmentId {
        self.id
    }

    /// `version`, with acquire ordering: the fields the writer stored before its increment are
    /// visible once we see the new value.
    pub fn version(&self) -> u32 {
        let ptr = self.map.as_ptr().wrapping_add(DETECTION_VERSION_OFFSET) as *mut u32;
        // SAFETY: offset 548 of a page-aligned mapping of 552 bytes: 4-byte aligned, in bounds.
        // An atomic load from read-only memory is allowed; the writer increments it atomically
        // (the C writer with __atomic_fetch_add) or stores it whole.
        unsafe { AtomicU32::from_ptr(ptr) }.load(Ordering::Acquire)
    }

    /// A copy of the whole record. It may be torn if the writer is rewriting it.
    pub fn read(&self) -> LatestDetectionResult {
        let ptr = self.map.as_ptr() as *const LatestDetectionResult;
        // SAFETY: the mapping is 552 bytes, page-aligned (so aligned for the record's 8-byte
        // alignment); every bit pattern is a valid LatestDetectionResult (integers, a float and
        // bytes). Volatile because the memory changes underneath us.
        unsafe { ptr.read_volatile() }
    }
}
