//! Reading one consistent copy of the record.
//!
//! The writer fills the fields and increments `version` last; it signals nothing else. So a
//! new version proves the record complete *at that moment*, and nothing stops the writer from
//! starting its next update while we copy. The procedure:
//!
//! 1. read `version`; unchanged since the last result (or 0, nothing written yet): nothing new;
//! 2. copy the record, wait a short window, copy it again, read `version` again;
//! 3. both copies equal and the version unmoved: accept. Otherwise the writer was at work:
//!    retry, the window doubled, a bounded number of times; then give up on this version
//!    (counted) and wait for the next one.
//!
//! What it cannot see: a writer that starts its next update right after its own increment and
//! stalls in the middle of it for longer than the whole window, before our first copy. The
//! record is 552 bytes (a write of well under a microsecond) and the board's detector updates
//! it once per inference (tens of milliseconds apart), so that takes a writer preempted inside
//! a sub-microsecond store within a millisecond of its own previous update. A writer stalled
//! mid-update at any other moment is harmless: the version has not moved, so nothing is read.
//! That residual case is not silent: the writer stores the frame number and timestamp first, so
//! a result read that way carries the *next* result's; the source compares each result with
//! the one before and counts such a pair as a late tear (`DetectionStats::late_tears`).
//!
//! [`judge`] is the decision, pure and table-tested; [`read_consistent`] does the I/O.

use std::time::Duration;

use super::segment::DetectionSegment;
use crate::layout::LatestDetectionResult;

/// Tuning of the consistent read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadGuard {
    /// Pause between the two copies (doubled at each retry).
    pub window: Duration,
    /// Longest window.
    pub max_window: Duration,
    /// Attempts before a version is given up.
    pub attempts: u32,
}

impl Default for ReadGuard {
    fn default() -> Self {
        Self {
            window: Duration::from_micros(200),
            max_window: Duration::from_millis(20),
            attempts: 10,
        }
    }
}

/// What one attempt shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No new result: the version is the one last read, or 0.
    Unchanged,
    /// A consistent copy of a new result.
    Accept,
    /// The writer was at work during the copies: try again.
    Retry,
}

/// The decision of one attempt: `last` is the version of the last result taken (if any),
/// `before` and `after` the version read before the first copy and after the second, `same`
/// whether the two copies are equal byte for byte.
pub fn judge(last: Option<u32>, before: u32, after: u32, same: bool) -> Verdict {
    if before == 0 || last == Some(before) {
        return Verdict::Unchanged;
    }
    if before != after || !same {
        return Verdict::Retry;
    }
    Verdict::Accept
}

/// The outcome of [`read_consistent`].
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// Nothing new.
    Unchanged,
    /// A new result, consistent, with its version; `retries` attempts were thrown away first.
    Fresh {
        /// The record.
        record: Box<LatestDetectionResult>,
        /// Its version.
        version: u32,
        /// Torn attempts before it.
        retries: u32,
    },
    /// The writer never held still over `attempts` attempts: version `version` is given up.
    Unstable {
        /// The version given up.
        version: u32,
        /// Attempts made.
        retries: u32,
    },
}

/// Reads a new, consistent result if there is one. `last` as in [`judge`].
pub fn read_consistent(seg: &DetectionSegment, last: Option<u32>, guard: ReadGuard) -> Read {
    let mut window = guard.window;
    let mut retries = 0;
    let mut version = 0;
    for _ in 0..guard.attempts.max(1) {
        let before = seg.version();
        if judge(last, before, before, true) == Verdict::Unchanged {
            return Read::Unchanged;
        }
        version = before;
        let first = seg.read();
        std::thread::sleep(window);
        let second = seg.read();
        let after = seg.version();
        match judge(last, before, after, bytes_equal(&first, &second)) {
            Verdict::Accept => {
                return Read::Fresh {
                    record: Box::new(first),
                    version: before,
                    retries,
                };
            }
            Verdict::Unchanged => return Read::Unchanged,
            Verdict::Retry => {
                retries += 1;
                window = (window * 2).min(guard.max_window);
            }
        }
    }
    Read::Unstable { version, retries }
}

/// Byte equality (`PartialEq` on the record compares floats, and NaN != NaN).
fn bytes_equal(a: &LatestDetectionResult, b: &LatestDetectionResult) -> bool {
    as_bytes(a) == as_bytes(b)
}

/// The record's bytes.
fn as_bytes(r: &LatestDetectionResult) -> [u8; crate::layout::DETECTION_SEGMENT_SIZE] {
    let mut out = [0u8; crate::layout::DETECTION_SEGMENT_SIZE];
    out[..8].copy_from_slice(&r.frame_number.to_ne_bytes());
    out[8..16].copy_from_slice(&r.timestamp.tv_sec.to_ne_bytes());
    out[16..24].copy_from_slice(&r.timestamp.tv_nsec.to_ne_bytes());
    out[24..28].copy_from_slice(&r.num_detections.to_ne_bytes());
    for (i, d) in r.detections.iter().enumerate() {
        let at = 28 + i * 52;
        out[at..at + 32].copy_from_slice(&d.class_name);
        out[at + 32..at + 36].copy_from_slice(&d.confidence.to_bits().to_ne_bytes());
        for (j, v) in [d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h]
            .into_iter()
            .enumerate()
        {
            out[at + 36 + 4 * j..at + 40 + 4 * j].copy_from_slice(&v.to_ne_bytes());
        }
    }
    out[548..552].copy_from_slice(&r.version.to_ne_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_table() {
        use Verdict::*;
        // (last, before, after, same) -> verdict
        let table = [
            ((None, 0, 0, true), Unchanged),     // nothing ever written
            ((None, 0, 1, false), Unchanged),    // the first write is under way: wait for it
            ((Some(4), 4, 4, true), Unchanged),  // read already
            ((Some(4), 4, 5, false), Unchanged), // read already; the next one is coming
            ((None, 1, 1, true), Accept),        // the first result
            ((Some(4), 5, 5, true), Accept),     // the next one
            ((Some(4), 9, 9, true), Accept),     // some were missed (counted elsewhere)
            ((Some(9), 2, 2, true), Accept),     // went back: a restarted writer
            ((Some(4), 5, 6, true), Retry),      // finished another update meanwhile
            ((Some(4), 5, 5, false), Retry),     // rewriting the fields right now
            ((Some(4), 5, 6, false), Retry),
            ((Some(u32::MAX), 1, 1, true), Accept), // wrapped
        ];
        for ((last, before, after, same), want) in table {
            assert_eq!(
                judge(last, before, after, same),
                want,
                "last {last:?}, before {before}, after {after}, same {same}"
            );
        }
    }

    #[test]
    fn bytes_cover_every_field() {
        let a = LatestDetectionResult::default();
        let mut b = a;
        b.detections[9].bbox.h = 1;
        assert!(!bytes_equal(&a, &b));
        let mut c = a;
        c.detections[3].confidence = f32::NAN;
        assert!(bytes_equal(&c, &c), "NaN compares equal as bytes");
        let mut d = a;
        d.version = 7;
        assert!(!bytes_equal(&a, &d));
    }
}
