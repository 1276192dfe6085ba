//! Results held for the frame they belong to, so item queues carry frames and results in
//! timestamp order. Pure: the frame time and the clock come in as arguments.

use std::collections::VecDeque;
use std::sync::Arc;

use super::DETECTION_HOLD;
use crate::detections::Detections;

/// Most results held at once: beyond it the oldest goes out unmatched (a detector far ahead of
/// the frames, or on another clock, must not grow memory).
pub(crate) const HELD_MAX: usize = 64;

/// Results waiting, oldest first, each with the time (ns) it was published.
#[derive(Debug, Default)]
pub(crate) struct Held {
    queue: VecDeque<(Arc<Detections>, u64)>,
}

impl Held {
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Holds `d`, published at `now`.
    pub(crate) fn push(&mut self, d: Arc<Detections>, now: u64) {
        self.queue.push_back((d, now));
    }

    /// The results to release, in order, given the latest frame timestamp published and the
    /// time now: from the front, each whose frame has been published (its timestamp is not
    /// later than `last_frame_ns`), was held longer than [`DETECTION_HOLD`], or is beyond
    /// [`HELD_MAX`]. Order is kept: one still waiting holds back those behind it.
    pub(crate) fn release(&mut self, last_frame_ns: u64, now: u64) -> Vec<Arc<Detections>> {
        let hold = u64::try_from(DETECTION_HOLD.as_nanos()).unwrap_or(u64::MAX);
        let mut out = Vec::new();
        while let Some((d, at)) = self.queue.front() {
            let ready = d.timestamp_ns <= last_frame_ns
                || now.saturating_sub(*at) >= hold
                || self.queue.len() > HELD_MAX;
            if !ready {
                break;
            }
            if let Some((d, _)) = self.queue.pop_front() {
                out.push(d);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ts: u64) -> Arc<Detections> {
        Arc::new(Detections {
            frame_number: ts,
            timestamp_ns: ts,
            version: 1,
            received_ns: 0,
            generation: 0,
            items: Vec::new(),
        })
    }

    fn stamps(v: &[Arc<Detections>]) -> Vec<u64> {
        v.iter().map(|d| d.timestamp_ns).collect()
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn released_once_the_frame_is_published_or_held_too_long() {
        let mut h = Held::default();
        h.push(d(100), 0);
        h.push(d(200), 0);
        assert!(h.release(99, MS).is_empty(), "no frame at 100 yet");
        assert_eq!(stamps(&h.release(150, MS)), [100]);
        assert_eq!(stamps(&h.release(200, 2 * MS)), [200]);
        assert!(h.is_empty());
        // A frame that never comes: out after the hold.
        h.push(d(900), 10 * MS);
        assert!(h.release(0, 10 * MS + 499 * MS).is_empty());
        assert_eq!(stamps(&h.release(0, 10 * MS + 500 * MS)), [900]);
    }

    #[test]
    fn order_is_kept_and_the_queue_bounded() {
        let mut h = Held::default();
        h.push(d(500), 0);
        h.push(d(100), 0); // out of order: waits behind 500
        assert!(h.release(200, MS).is_empty());
        assert_eq!(stamps(&h.release(500, MS)), [500, 100]);
        for ts in 0..HELD_MAX as u64 + 3 {
            h.push(d(1000 + ts), 0);
        }
        let out = h.release(0, 0);
        assert_eq!(
            stamps(&out),
            [1000, 1001, 1002],
            "the oldest beyond the bound"
        );
    }
}
