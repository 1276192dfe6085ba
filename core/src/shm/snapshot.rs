//! A quick look at a whole ring, for diagnostics and readiness probes.

use std::collections::BTreeMap;

use super::Segment;
use crate::layout::{FrameHeader, PixelFormat, RING_SLOTS, slot_of};

/// The headers of every written slot, oldest first, as read at one moment.
#[derive(Debug, Clone)]
pub struct RingSnapshot {
    /// The writer's index when the snapshot was taken.
    pub write_index: u32,
    /// `frame_interval_ms` when the snapshot was taken.
    pub frame_interval_ms: u32,
    /// `(writer counter, header)` of each slot written so far, oldest first.
    pub frames: Vec<(u32, FrameHeader)>,
}

impl RingSnapshot {
    /// Reads every slot header of `seg`.
    pub fn take(seg: &Segment) -> Self {
        let write_index = seg.write_index();
        let count = write_index.min(RING_SLOTS as u32);
        let frames = (0..count)
            .map(|back| write_index.wrapping_sub(count - back))
            .map(|c| (c, seg.read_header(slot_of(c))))
            .collect();
        Self {
            write_index,
            frame_interval_ms: seg.frame_interval_ms(),
            frames,
        }
    }

    /// The newest frame: the one the writer claimed last (possibly still being copied).
    pub fn newest(&self) -> Option<&(u32, FrameHeader)> {
        self.frames.last()
    }

    /// Frames per second over the ring, from the camera's own timestamps.
    pub fn fps(&self) -> Option<f64> {
        let (first, last) = (self.frames.first()?, self.frames.last()?);
        let span = last
            .1
            .timestamp
            .as_nanos()
            .checked_sub(first.1.timestamp.as_nanos())?;
        let intervals = self.frames.len().checked_sub(1)?;
        (span > 0 && intervals > 0).then(|| intervals as f64 * 1e9 / span as f64)
    }

    /// How many slots hold each format.
    pub fn formats(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for (_, header) in &self.frames {
            *counts
                .entry(PixelFormat::from_raw(header.format).name())
                .or_insert(0) += 1;
        }
        counts
    }
}
