//! The detector's results (ABI 1.1): [`Detections`] borrows the host's result during
//! [`Sink::on_detections`](crate::Sink::on_detections); [`Detection`] is one object in it.
//!
//! Nothing the host hands over is trusted: the result's size and count are checked before it is
//! wrapped, and every item is checked again as it is read (UTF-8 class name within the header's
//! limit, confidence in `0..=1`, a non-empty box with non-negative corner); items that fail are
//! skipped, never exposed.
#![allow(unsafe_code)] // Reads the host's result through raw pointers.

use std::fmt;

use stackctl_plugin_abi as abi;

use crate::buf;

/// One result of the detector: what it found in one camera frame (possibly nothing), borrowed
/// from the host for the duration of `on_detections`. Copy what you keep.
pub struct Detections<'a> {
    raw: &'a abi::Detections,
    items: &'a [abi::Detection],
}

/// One object the detector found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection<'a> {
    /// Its class, e.g. `cat`: non-empty UTF-8, at most 63 bytes.
    pub class: &'a str,
    /// The detector's confidence, `0.0..=1.0`.
    pub confidence: f32,
    /// Left edge, pixels of the camera picture (not negative).
    pub x: i32,
    /// Top edge (not negative).
    pub y: i32,
    /// Width (positive).
    pub w: i32,
    /// Height (positive).
    pub h: i32,
}

/// Why the host's result could not be wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// Its `struct_size` does not cover ABI 1.1's fields.
    Short,
    /// More items than `STACKCTL_DETECTIONS_MAX`.
    TooMany(u32),
    /// A count but no items.
    NoItems,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short => {
                f.write_str("the host passed a stackctl_detections shorter than ABI 1.1")
            }
            Self::TooMany(n) => write!(
                f,
                "the host passed a stackctl_detections of {n} items, more than {}",
                abi::DETECTIONS_MAX
            ),
            Self::NoItems => {
                f.write_str("the host passed a stackctl_detections with a count but NULL items")
            }
        }
    }
}

impl<'a> Detections<'a> {
    /// Wraps the result passed to `on_detections`, after checking its size and count.
    ///
    /// # Safety
    /// `raw` is the result of the running `on_detections` call: if its size and count are
    /// right, `items` points to `count` entries whose strings are valid for `'a`.
    pub(crate) unsafe fn new(raw: &'a abi::Detections) -> Result<Self, Unusable> {
        if (raw.struct_size as usize) < abi::DETECTIONS_V1_1_SIZE {
            return Err(Unusable::Short);
        }
        let count = raw.count as usize;
        if count > abi::DETECTIONS_MAX {
            return Err(Unusable::TooMany(raw.count));
        }
        let items = if count == 0 {
            &[][..]
        } else if raw.items.is_null() {
            return Err(Unusable::NoItems);
        } else {
            // SAFETY: the caller's promise: `count` (bounded above) readable entries.
            unsafe { std::slice::from_raw_parts(raw.items, count) }
        };
        Ok(Self { raw, items })
    }

    /// The camera frame the detector ran on.
    pub fn frame_number(&self) -> u64 {
        self.raw.frame_number
    }

    /// That frame's capture time, `CLOCK_MONOTONIC` nanoseconds (the frames' clock).
    pub fn timestamp_ns(&self) -> u64 {
        self.raw.timestamp_ns
    }

    /// The objects found, in the detector's order; items the host got wrong are skipped.
    pub fn items(&self) -> impl Iterator<Item = Detection<'a>> + 'a {
        self.items.iter().filter_map(check)
    }

    /// True when the detector found nothing (or nothing usable).
    pub fn is_empty(&self) -> bool {
        self.items().next().is_none()
    }
}

/// One item, if it is what the header promises.
fn check(item: &abi::Detection) -> Option<Detection<'_>> {
    let len = item.class_name.len;
    if len == 0 || len > abi::CLASS_NAME_MAX || item.class_name.ptr.is_null() {
        return None;
    }
    // SAFETY: the header: `len` bytes at `ptr`, valid during on_detections (what the
    // `Detections` borrow lasts); the length was bounded just above.
    let bytes = unsafe { buf::bytes(item.class_name.ptr, len) };
    let class = std::str::from_utf8(bytes).ok()?;
    let sane = (0.0..=1.0).contains(&item.confidence)
        && item.x >= 0
        && item.y >= 0
        && item.w > 0
        && item.h > 0;
    sane.then_some(Detection {
        class,
        confidence: item.confidence,
        x: item.x,
        y: item.y,
        w: item.w,
        h: item.h,
    })
}

impl fmt::Debug for Detections<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detections")
            .field("frame_number", &self.frame_number())
            .field("timestamp_ns", &self.timestamp_ns())
            .field("items", &self.items().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(class: &'static [u8], confidence: f32, b: (i32, i32, i32, i32)) -> abi::Detection {
        abi::Detection {
            class_name: abi::Str {
                ptr: class.as_ptr(),
                len: class.len(),
            },
            confidence,
            x: b.0,
            y: b.1,
            w: b.2,
            h: b.3,
        }
    }

    fn result(items: &[abi::Detection], count: u32, struct_size: usize) -> abi::Detections {
        abi::Detections {
            struct_size: struct_size as u32,
            frame_number: 7,
            timestamp_ns: 1_000,
            items: if items.is_empty() {
                std::ptr::null()
            } else {
                items.as_ptr()
            },
            count,
        }
    }

    #[test]
    fn items_the_host_got_wrong_are_skipped() {
        let long = [b'a'; 64];
        let long: &'static [u8] = Box::leak(Box::new(long));
        let items = [
            item(b"cat", 0.9, (1, 2, 3, 4)),
            item(b"\xff\xfe", 0.9, (1, 2, 3, 4)), // not UTF-8
            item(b"", 0.9, (1, 2, 3, 4)),         // empty name
            item(long, 0.9, (1, 2, 3, 4)),        // too long
            item(b"dog", f32::NAN, (1, 2, 3, 4)), // NaN
            item(b"dog", 1.5, (1, 2, 3, 4)),      // above 1
            item(b"dog", 0.5, (-1, 2, 3, 4)),     // negative corner
            item(b"dog", 0.5, (1, 2, 0, 4)),      // empty box
            item(b"person", 0.0, (0, 0, 1, 1)),
        ];
        let raw = result(&items, items.len() as u32, size_of::<abi::Detections>());
        // SAFETY: `items` outlives `d`.
        let d = unsafe { Detections::new(&raw) }.expect("usable");
        let got: Vec<_> = d.items().map(|i| (i.class, i.x)).collect();
        assert_eq!(got, [("cat", 1), ("person", 0)]);
        assert_eq!(d.frame_number(), 7);
        assert_eq!(d.timestamp_ns(), 1_000);
        assert!(!d.is_empty());
    }

    #[test]
    fn a_result_of_the_wrong_shape_is_refused() {
        let items = [item(b"cat", 0.9, (1, 2, 3, 4))];
        let full = size_of::<abi::Detections>();
        let cases = [
            (result(&items, 1, full - 8), Unusable::Short),
            (result(&items, 65, full), Unusable::TooMany(65)),
            (result(&[], 1, full), Unusable::NoItems),
        ];
        for (raw, why) in cases {
            // SAFETY: refused before any item is read.
            assert_eq!(unsafe { Detections::new(&raw) }.err(), Some(why));
        }
        let empty = result(&[], 0, full);
        // SAFETY: no items to read.
        let empty = unsafe { Detections::new(&empty) };
        assert!(empty.expect("usable").is_empty());
    }
}
