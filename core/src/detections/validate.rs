//! From the raw record to a [`Detections`] value, or the reason it is malformed.
//!
//! The record comes from another process: nothing in it is trusted. A result is malformed, and
//! dropped whole, when `num_detections` is outside `0..=10`, a class name is not UTF-8 or not
//! NUL-terminated within its 32 bytes (or empty), a confidence is outside `0..=1` (NaN
//! included), or a box is empty or reaches outside the picture (when the picture's size is
//! known; otherwise only negative corners are refused).

use super::{Detection, Detections};
use crate::layout::{CLASS_NAME_LEN, LatestDetectionResult, MAX_DETECTIONS, RawDetection};

/// Why a result was dropped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// `num_detections` outside `0..=10`.
    #[error("num_detections is {0}, not 0..=10")]
    Count(i32),
    /// A class name that is not UTF-8.
    #[error("detection {index}: the class name is not UTF-8")]
    NotUtf8 {
        /// Which detection.
        index: usize,
    },
    /// A class name without a NUL within its 32 bytes, or an empty one.
    #[error("detection {index}: the class name is empty or not NUL-terminated")]
    BadName {
        /// Which detection.
        index: usize,
    },
    /// A confidence outside `0..=1`.
    #[error("detection {index}: confidence {confidence} is outside 0..=1")]
    Confidence {
        /// Which detection.
        index: usize,
        /// The value.
        confidence: f32,
    },
    /// A box that is empty or not inside the picture.
    #[error(
        "detection {index}: box x={x} y={y} w={w} h={h} is empty or outside the picture{}",
        picture.map(|(pw, ph)| format!(" ({pw}x{ph})")).unwrap_or_default()
    )]
    Box {
        /// Which detection.
        index: usize,
        /// Left.
        x: i32,
        /// Top.
        y: i32,
        /// Width.
        w: i32,
        /// Height.
        h: i32,
        /// The picture, when known.
        picture: Option<(u32, u32)>,
    },
}

/// Checks `record` (read as `version`) against a picture of `picture` pixels, if known.
/// `received_ns` and `generation` are the reader's own, copied into the value.
pub fn validate(
    record: &LatestDetectionResult,
    version: u32,
    picture: Option<(u32, u32)>,
    received_ns: u64,
    generation: u32,
) -> Result<Detections, Malformed> {
    let count = usize::try_from(record.num_detections)
        .ok()
        .filter(|&n| n <= MAX_DETECTIONS)
        .ok_or(Malformed::Count(record.num_detections))?;
    let items = record.detections[..count]
        .iter()
        .enumerate()
        .map(|(index, raw)| detection(index, raw, picture))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Detections {
        frame_number: record.frame_number,
        timestamp_ns: record.timestamp.as_nanos(),
        version,
        received_ns,
        generation,
        items,
    })
}

fn detection(
    index: usize,
    raw: &RawDetection,
    picture: Option<(u32, u32)>,
) -> Result<Detection, Malformed> {
    let len = raw
        .class_name
        .iter()
        .position(|&b| b == 0)
        .filter(|&n| n > 0 && n < CLASS_NAME_LEN)
        .ok_or(Malformed::BadName { index })?;
    let class = std::str::from_utf8(&raw.class_name[..len])
        .map_err(|_| Malformed::NotUtf8 { index })?
        .to_owned();
    let confidence = raw.confidence;
    if !(0.0..=1.0).contains(&confidence) {
        return Err(Malformed::Confidence { index, confidence });
    }
    let b = raw.bbox;
    let inside = |start: i32, len: i32, limit: Option<u32>| {
        start >= 0
            && len > 0
            && limit.is_none_or(|limit| i64::from(start) + i64::from(len) <= i64::from(limit))
    };
    if !inside(b.x, b.w, picture.map(|p| p.0)) || !inside(b.y, b.h, picture.map(|p| p.1)) {
        return Err(Malformed::Box {
            index,
            x: b.x,
            y: b.y,
            w: b.w,
            h: b.h,
            picture,
        });
    }
    Ok(Detection {
        class,
        confidence,
        x: b.x,
        y: b.y,
        w: b.w,
        h: b.h,
    })
}

/// `name` as a class name field: its bytes, NUL-padded (cut to 31 bytes on a char boundary).
pub fn class_name(name: &str) -> [u8; CLASS_NAME_LEN] {
    let mut end = name.len().min(CLASS_NAME_LEN - 1);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = [0u8; CLASS_NAME_LEN];
    out[..end].copy_from_slice(&name.as_bytes()[..end]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{BoundingBox, Timespec};

    fn raw(name: &[u8], confidence: f32, bbox: (i32, i32, i32, i32)) -> RawDetection {
        let mut class_name = [0u8; CLASS_NAME_LEN];
        class_name[..name.len()].copy_from_slice(name);
        RawDetection {
            class_name,
            confidence,
            bbox: BoundingBox {
                x: bbox.0,
                y: bbox.1,
                w: bbox.2,
                h: bbox.3,
            },
        }
    }

    fn record(dets: &[RawDetection]) -> LatestDetectionResult {
        let mut r = LatestDetectionResult {
            frame_number: 42,
            timestamp: Timespec::from_nanos(7_000_000_123),
            num_detections: dets.len() as i32,
            ..Default::default()
        };
        r.detections[..dets.len()].copy_from_slice(dets);
        r
    }

    const PICTURE: Option<(u32, u32)> = Some((640, 480));

    #[test]
    fn a_good_result_becomes_a_value() {
        let r = record(&[
            raw(b"cat", 0.9, (10, 20, 100, 50)),
            raw(b"dog", 0.0, (0, 0, 640, 480)),
        ]);
        let d = validate(&r, 3, PICTURE, 99, 1).expect("valid");
        assert_eq!(
            (d.frame_number, d.timestamp_ns, d.version),
            (42, 7_000_000_123, 3)
        );
        assert_eq!((d.received_ns, d.generation), (99, 1));
        assert_eq!(
            d.items[0],
            Detection {
                class: "cat".into(),
                confidence: 0.9,
                x: 10,
                y: 20,
                w: 100,
                h: 50
            }
        );
        assert_eq!(d.items[1].class, "dog");
        let empty = validate(&record(&[]), 1, PICTURE, 0, 0).expect("nothing found is valid");
        assert!(empty.items.is_empty());
    }

    #[test]
    fn malformed_results_and_why() {
        let ok = raw(b"cat", 0.5, (0, 0, 10, 10));
        let mut too_many = record(&[ok; 10]);
        too_many.num_detections = 11;
        let mut negative = record(&[]);
        negative.num_detections = -1;
        let long = [b'a'; CLASS_NAME_LEN];
        type Case = (LatestDetectionResult, Option<(u32, u32)>, &'static str);
        let table: Vec<Case> = vec![
            (too_many, PICTURE, "num_detections is 11"),
            (negative, PICTURE, "num_detections is -1"),
            (
                record(&[ok, raw(&[0xff, 0xfe], 0.5, (0, 0, 1, 1))]),
                PICTURE,
                "detection 1: the class name is not UTF-8",
            ),
            (
                record(&[raw(&long, 0.5, (0, 0, 1, 1))]),
                PICTURE,
                "not NUL-terminated",
            ),
            (record(&[raw(b"", 0.5, (0, 0, 1, 1))]), PICTURE, "empty"),
            (
                record(&[raw(b"cat", 1.01, (0, 0, 1, 1))]),
                PICTURE,
                "confidence 1.01",
            ),
            (
                record(&[raw(b"cat", -0.1, (0, 0, 1, 1))]),
                PICTURE,
                "confidence -0.1",
            ),
            (
                record(&[raw(b"cat", f32::NAN, (0, 0, 1, 1))]),
                PICTURE,
                "confidence NaN",
            ),
            (record(&[raw(b"cat", 0.5, (-1, 0, 5, 5))]), None, "x=-1"),
            (record(&[raw(b"cat", 0.5, (0, 0, 0, 5))]), PICTURE, "w=0"),
            (
                record(&[raw(b"cat", 0.5, (600, 0, 41, 5))]),
                PICTURE,
                "outside the picture (640x480)",
            ),
            (
                record(&[raw(b"cat", 0.5, (0, 470, 5, 11))]),
                PICTURE,
                "h=11",
            ),
            (
                record(&[raw(b"cat", 0.5, (i32::MAX, 0, i32::MAX, 5))]),
                PICTURE,
                "x=2147483647",
            ),
        ];
        for (r, picture, want) in table {
            let e = validate(&r, 1, picture, 0, 0).expect_err(want);
            assert!(e.to_string().contains(want), "{e} lacks {want:?}");
        }
        // Without a picture size, a box far to the right is believed.
        assert!(validate(&record(&[raw(b"cat", 0.5, (5000, 0, 5, 5))]), 1, None, 0, 0).is_ok());
        // A 31-byte name is the longest; UTF-8 of several bytes is fine.
        assert!(
            validate(
                &record(&[raw(&long[..31], 1.0, (0, 0, 1, 1))]),
                1,
                PICTURE,
                0,
                0
            )
            .is_ok()
        );
        assert_eq!(
            validate(
                &record(&[raw("chat-é".as_bytes(), 1.0, (0, 0, 1, 1))]),
                1,
                PICTURE,
                0,
                0
            )
            .expect("utf-8")
            .items[0]
                .class,
            "chat-é"
        );
    }

    #[test]
    fn class_names_are_cut_on_a_char_boundary() {
        assert_eq!(&class_name("cat")[..4], b"cat\0");
        let long = "é".repeat(20); // 40 bytes
        let field = class_name(&long);
        let end = field.iter().position(|&b| b == 0).expect("NUL");
        assert_eq!(end, 30);
        assert!(std::str::from_utf8(&field[..end]).is_ok());
    }
}
