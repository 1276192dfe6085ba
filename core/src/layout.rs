//! The board's shared-memory segments, byte for byte: the frame ring and the detections.
//!
//! These `#[repr(C)]` types mirror the camera daemon's `shared_memory.h` (LP64, identical on
//! x86-64 and aarch64). Their sizes and offsets are asserted at compile time below, and
//! `core/tests/layout.rs` compiles the C definitions with the system C compiler and compares.
//!
//! The types are never used as references into the mapping: the writer changes the memory
//! underneath at any time, so the reader copies headers out with volatile reads (see
//! [`crate::shm`]). They exist to give every offset one definition.

use std::mem::{offset_of, size_of};

/// Number of slots in the ring (`RING_BUFFER_SIZE`): one second at 30 fps.
pub const RING_SLOTS: usize = 30;

/// Bytes of payload one slot can hold: a 1920×1080 NV12 frame (1920 × 1080 × 3 / 2).
pub const SLOT_DATA_CAPACITY: usize = 1920 * 1080 * 3 / 2;

/// `struct timespec` on LP64 Linux.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timespec {
    /// Whole seconds.
    pub tv_sec: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub tv_nsec: i64,
}

impl Timespec {
    /// The time as nanoseconds since the clock's epoch, saturating on nonsense values.
    pub fn as_nanos(&self) -> u64 {
        let secs = u64::try_from(self.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(self.tv_nsec).unwrap_or(0);
        secs.saturating_mul(1_000_000_000).saturating_add(nanos)
    }

    /// Builds a timespec from nanoseconds.
    pub fn from_nanos(ns: u64) -> Self {
        Self {
            tv_sec: i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX),
            // Always below 1e9, so it fits.
            tv_nsec: (ns % 1_000_000_000) as i64,
        }
    }
}

/// Payload formats a slot can carry (`Frame.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// 0: a JPEG image.
    Jpeg,
    /// 1: NV12 planar luma + interleaved chroma.
    Nv12,
    /// 2: packed RGB.
    Rgb,
    /// 3: one H.264 access unit in Annex-B framing.
    H264,
    /// Any other value, kept so it can be reported.
    Unknown(i32),
}

impl PixelFormat {
    /// Decodes the C `int`.
    pub fn from_raw(raw: i32) -> Self {
        match raw {
            0 => Self::Jpeg,
            1 => Self::Nv12,
            2 => Self::Rgb,
            3 => Self::H264,
            other => Self::Unknown(other),
        }
    }

    /// Encodes back to the C `int`.
    pub fn to_raw(self) -> i32 {
        match self {
            Self::Jpeg => 0,
            Self::Nv12 => 1,
            Self::Rgb => 2,
            Self::H264 => 3,
            Self::Unknown(other) => other,
        }
    }

    /// A short lowercase name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Nv12 => "nv12",
            Self::Rgb => "rgb",
            Self::H264 => "h264",
            Self::Unknown(_) => "unknown",
        }
    }
}

/// The fixed-size head of `Frame`: everything but the payload.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameHeader {
    /// The camera's monotonic frame counter.
    pub frame_number: u64,
    /// Capture time on `CLOCK_MONOTONIC`.
    pub timestamp: Timespec,
    /// 0 day camera, 1 night camera.
    pub camera_id: i32,
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// Raw [`PixelFormat`].
    pub format: i32,
    /// Bytes of `data` in use (`size_t`).
    pub data_size: u64,
}

/// One ring slot (`Frame` in C): header followed by the payload area.
#[repr(C)]
pub struct FrameSlot {
    /// Metadata of the frame in this slot.
    pub header: FrameHeader,
    /// Payload; only the first `header.data_size` bytes are meaningful.
    pub data: [u8; SLOT_DATA_CAPACITY],
}

/// The whole segment (`SharedFrameBuffer` in C).
#[repr(C)]
pub struct SharedFrameBuffer {
    /// Frames written so far (wraps at 2^32). The writer increments it *before* copying the slot.
    pub write_index: u32,
    /// 0 at full rate (30 fps); 500 when the switcher runs at about 2 fps.
    pub frame_interval_ms: u32,
    /// The ring.
    pub frames: [FrameSlot; RING_SLOTS],
}

/// Size of one slot: 3,110,448 bytes.
pub const SLOT_SIZE: usize = size_of::<FrameSlot>();
/// Size of the whole segment: 93,313,448 bytes.
pub const SEGMENT_SIZE: usize = size_of::<SharedFrameBuffer>();
/// Offset of `write_index` in the segment.
pub const WRITE_INDEX_OFFSET: usize = offset_of!(SharedFrameBuffer, write_index);
/// Offset of `frame_interval_ms` in the segment.
pub const FRAME_INTERVAL_OFFSET: usize = offset_of!(SharedFrameBuffer, frame_interval_ms);
/// Offset of slot 0 in the segment.
pub const FRAMES_OFFSET: usize = offset_of!(SharedFrameBuffer, frames);
/// Offset of the payload inside a slot.
pub const DATA_OFFSET: usize = offset_of!(FrameSlot, data);

/// Offset in the segment of slot `slot`'s first byte. `slot` must be below [`RING_SLOTS`].
pub const fn slot_offset(slot: usize) -> usize {
    FRAMES_OFFSET + slot * SLOT_SIZE
}

/// The slot a given `write_index` value points the writer at: the writer fetch-adds the index and
/// uses the value *before* the increment, so frame number `n` (0-based) lives in `n % 30`.
pub const fn slot_of(counter: u32) -> usize {
    counter as usize % RING_SLOTS
}

/// Most detections one result holds (`MAX_DETECTIONS`).
pub const MAX_DETECTIONS: usize = 10;

/// Bytes of a class name, NUL terminator included (`char class_name[32]`).
pub const CLASS_NAME_LEN: usize = 32;

/// A box in picture pixels (`BoundingBox`): top-left corner, width, height.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BoundingBox {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub w: i32,
    /// Height.
    pub h: i32,
}

/// One detection as the detector writes it (`Detection`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RawDetection {
    /// The class, NUL-terminated (UTF-8 expected, not guaranteed).
    pub class_name: [u8; CLASS_NAME_LEN],
    /// The detector's confidence, 0..=1 expected.
    pub confidence: f32,
    /// Where.
    pub bbox: BoundingBox,
}

/// The detections segment, `/pet_camera_detections` (`LatestDetectionResult`): the latest
/// result only. The writer fills the fields, then increments `version`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LatestDetectionResult {
    /// The camera frame the result belongs to.
    pub frame_number: u64,
    /// Its time on `CLOCK_MONOTONIC`.
    pub timestamp: Timespec,
    /// Entries of `detections` in use, 0..=10 expected.
    pub num_detections: i32,
    /// The detections.
    pub detections: [RawDetection; MAX_DETECTIONS],
    /// Incremented after each update (`volatile uint32_t`).
    pub version: u32,
}

/// Size of the detections segment: 552 bytes.
pub const DETECTION_SEGMENT_SIZE: usize = size_of::<LatestDetectionResult>();
/// Offset of `version` in the detections segment.
pub const DETECTION_VERSION_OFFSET: usize = offset_of!(LatestDetectionResult, version);

// The contract with `shared_memory.h` (legacy-stack.md §1). A change here breaks the board.
const _: () = {
    assert!(size_of::<Timespec>() == 16);
    assert!(offset_of!(FrameHeader, frame_number) == 0);
    assert!(offset_of!(FrameHeader, timestamp) == 8);
    assert!(offset_of!(FrameHeader, camera_id) == 24);
    assert!(offset_of!(FrameHeader, width) == 28);
    assert!(offset_of!(FrameHeader, height) == 32);
    assert!(offset_of!(FrameHeader, format) == 36);
    assert!(offset_of!(FrameHeader, data_size) == 40);
    assert!(size_of::<FrameHeader>() == 48);
    assert!(offset_of!(FrameSlot, header) == 0);
    assert!(DATA_OFFSET == 48);
    assert!(SLOT_SIZE == 3_110_448);
    assert!(WRITE_INDEX_OFFSET == 0);
    assert!(FRAME_INTERVAL_OFFSET == 4);
    assert!(FRAMES_OFFSET == 8);
    assert!(SEGMENT_SIZE == 93_313_448);
};

// The detections segment (legacy-stack.md §2).
const _: () = {
    assert!(size_of::<BoundingBox>() == 16);
    assert!(offset_of!(RawDetection, class_name) == 0);
    assert!(offset_of!(RawDetection, confidence) == 32);
    assert!(offset_of!(RawDetection, bbox) == 36);
    assert!(size_of::<RawDetection>() == 52);
    assert!(offset_of!(LatestDetectionResult, frame_number) == 0);
    assert!(offset_of!(LatestDetectionResult, timestamp) == 8);
    assert!(offset_of!(LatestDetectionResult, num_detections) == 24);
    assert!(offset_of!(LatestDetectionResult, detections) == 28);
    assert!(DETECTION_VERSION_OFFSET == 548);
    assert!(DETECTION_SEGMENT_SIZE == 552);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_of_follows_the_writers_fetch_add() {
        assert_eq!(slot_of(0), 0);
        assert_eq!(slot_of(29), 29);
        assert_eq!(slot_of(30), 0);
        // u32::MAX % 30 == 15; the next value wraps to 0 and the slot jumps to 0: the board
        // has the same discontinuity, once every 4.5 years at 30 fps.
        assert_eq!(slot_of(u32::MAX), 15);
    }

    #[test]
    fn timespec_round_trips_nanoseconds() {
        let ts = Timespec::from_nanos(12_345_678_901);
        assert_eq!(
            ts,
            Timespec {
                tv_sec: 12,
                tv_nsec: 345_678_901
            }
        );
        assert_eq!(ts.as_nanos(), 12_345_678_901);
        assert_eq!(
            Timespec {
                tv_sec: -1,
                tv_nsec: 5
            }
            .as_nanos(),
            5
        );
    }

    #[test]
    fn pixel_format_round_trips() {
        for raw in -1..6 {
            assert_eq!(PixelFormat::from_raw(raw).to_raw(), raw);
        }
        assert_eq!(PixelFormat::from_raw(3), PixelFormat::H264);
    }
}
