//! The detector's writer protocol, for `detector-sim` and tests: exactly what the board's
//! `shm_detection_write` does. It fills the fields, then increments `version` atomically; it
//! signals nothing else. [`WriteMode::Stalled`] pauses in the middle of the fields, the window
//! a reader's guard must survive.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use memmap2::MmapMut;

use super::Detection;
use super::validate::class_name;
use crate::layout::{
    BoundingBox, DETECTION_SEGMENT_SIZE, DETECTION_VERSION_OFFSET, LatestDetectionResult,
    MAX_DETECTIONS, RawDetection, Timespec,
};
use crate::shm::ShmError;
use crate::shm::writer::{create_mapped, unlink};

/// How [`DetectionWriter::write`] stores the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// All fields at once, then the version: the board's writer.
    Whole,
    /// The header fields and the first half of the detections, a pause, the rest, then the
    /// version: a writer preempted mid-update.
    Stalled(Duration),
}

/// Writes results into a detections segment it created.
pub struct DetectionWriter {
    name: String,
    map: MmapMut,
}

impl std::fmt::Debug for DetectionWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectionWriter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl DetectionWriter {
    /// Creates (or opens and sizes) segment `name`, mode 0666, 552 bytes: `shm_open`,
    /// `ftruncate`, `mmap`, as the detector does. A fresh segment reads as zeros (version 0).
    pub fn create(name: &str) -> Result<Self, ShmError> {
        Ok(Self {
            name: name.to_owned(),
            map: create_mapped(name, DETECTION_SEGMENT_SIZE)?,
        })
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn version_atomic(&self) -> &AtomicU32 {
        let ptr = self.map.as_ptr().wrapping_add(DETECTION_VERSION_OFFSET) as *mut u32;
        // SAFETY: offset 548 of a page-aligned writable mapping of 552 bytes is aligned for
        // u32 and in bounds; every access to it, here and in readers, is atomic. The reference
        // lives no longer than `self`, which owns the mapping.
        unsafe { AtomicU32::from_ptr(ptr) }
    }

    /// The current `version`.
    pub fn version(&self) -> u32 {
        self.version_atomic().load(Ordering::SeqCst)
    }

    /// Writes one result: at most 10 detections (more are an error, as on the board), class
    /// names cut to 31 bytes. Returns the new version.
    pub fn write(
        &mut self,
        frame_number: u64,
        timestamp_ns: u64,
        items: &[Detection],
        mode: WriteMode,
    ) -> Result<u32, ShmError> {
        let split = match mode {
            WriteMode::Whole => items.len(),
            WriteMode::Stalled(_) => items.len() / 2,
        };
        self.write_with(frame_number, timestamp_ns, items, split, || {
            if let WriteMode::Stalled(pause) = mode {
                std::thread::sleep(pause);
            }
        })
    }

    /// As [`DetectionWriter::write`], calling `middle` once the header fields and the first
    /// `split` detections are stored, before the rest and the version: a test's handle on a
    /// writer stopped mid-update.
    pub fn write_with(
        &mut self,
        frame_number: u64,
        timestamp_ns: u64,
        items: &[Detection],
        split: usize,
        middle: impl FnOnce(),
    ) -> Result<u32, ShmError> {
        if items.len() > MAX_DETECTIONS {
            return Err(ShmError::Open {
                name: self.name.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{} detections, at most {MAX_DETECTIONS}", items.len()),
                ),
            });
        }
        let mut record = LatestDetectionResult {
            frame_number,
            timestamp: Timespec::from_nanos(timestamp_ns),
            num_detections: items.len() as i32,
            ..Default::default()
        };
        for (slot, d) in record.detections.iter_mut().zip(items) {
            *slot = RawDetection {
                class_name: class_name(&d.class),
                confidence: d.confidence,
                bbox: BoundingBox {
                    x: d.x,
                    y: d.y,
                    w: d.w,
                    h: d.h,
                },
            };
        }
        self.store(&record, split, middle);
        Ok(self
            .version_atomic()
            .fetch_add(1, Ordering::SeqCst)
            .wrapping_add(1))
    }

    /// Writes `record`'s fields (not its version) with the board's plain stores: the header
    /// fields, then only the detections in use (the board copies `num_detections` entries and
    /// leaves the rest as they were).
    fn store(&mut self, record: &LatestDetectionResult, split: usize, middle: impl FnOnce()) {
        let base = self.map.as_mut_ptr() as *mut LatestDetectionResult;
        let count = usize::try_from(record.num_detections)
            .unwrap_or(0)
            .min(MAX_DETECTIONS);
        let split = split.min(count);
        // Plain volatile stores: readers synchronise through the version alone, as with the
        // board's writer.
        // SAFETY: `base` is the page-aligned start of a 552-byte mapping, aligned and large
        // enough for the record; each field pointer stays inside it, and `i` stays below
        // MAX_DETECTIONS.
        unsafe {
            (&raw mut (*base).timestamp).write_volatile(record.timestamp);
            (&raw mut (*base).frame_number).write_volatile(record.frame_number);
            (&raw mut (*base).num_detections).write_volatile(record.num_detections);
            let dets = &raw mut (*base).detections as *mut RawDetection;
            for (i, d) in record.detections.iter().enumerate().take(split) {
                dets.add(i).write_volatile(*d);
            }
        }
        middle();
        // SAFETY: as above: the detections array inside the mapping, `i` below MAX_DETECTIONS.
        unsafe {
            let dets = &raw mut (*base).detections as *mut RawDetection;
            for (i, d) in record.detections.iter().enumerate().take(count).skip(split) {
                dets.add(i).write_volatile(*d);
            }
        }
    }

    /// Writes `record` exactly as given, version included, without any protocol: for tests
    /// that need malformed results or a version that goes back.
    pub fn write_raw(&mut self, record: &LatestDetectionResult) {
        let mut fields = *record;
        fields.num_detections = MAX_DETECTIONS as i32;
        self.store(&fields, MAX_DETECTIONS, || {});
        let base = self.map.as_mut_ptr() as *mut LatestDetectionResult;
        // SAFETY: as in `store`: an aligned field of the record inside the mapping.
        unsafe { (&raw mut (*base).num_detections).write_volatile(record.num_detections) };
        self.version_atomic()
            .store(record.version, Ordering::SeqCst);
    }

    /// Removes the name, like a stopping detector. Readers keep their mapping.
    pub fn unlink(&self) -> Result<(), ShmError> {
        unlink(&self.name)
    }
}
