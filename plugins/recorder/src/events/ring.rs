//! The pre-roll: the last seconds of frames, held (retained, not copied) so that a clip can
//! start before the detection that caused it.
//!
//! It always begins with an IDR (a clip must start with one) and keeps whole GOPs: the oldest
//! goes once the next one still reaches `keep_ns` back from the newest frame, or when the
//! frames exceed `max_bytes`. Its memory is therefore at most `keep_ns` plus one GOP of
//! frames, and never more than `max_bytes` (a single GOP bigger than that is dropped too: the
//! ring then waits for the next IDR).

use std::collections::VecDeque;

use crate::unit::AccessUnit;

/// Frames held for the pre-roll.
#[derive(Debug)]
pub struct Ring<F> {
    frames: VecDeque<F>,
    bytes: u64,
    keep_ns: u64,
    max_bytes: u64,
}

impl<F: AccessUnit + Clone> Ring<F> {
    /// An empty ring keeping `keep_ns` of media, at most `max_bytes`.
    pub fn new(keep_ns: u64, max_bytes: u64) -> Self {
        Self {
            frames: VecDeque::new(),
            bytes: 0,
            keep_ns,
            max_bytes,
        }
    }

    /// Adds the newest frame and drops what is no longer needed.
    pub fn push(&mut self, frame: F) {
        if self
            .frames
            .front()
            .is_some_and(|f| f.generation() != frame.generation())
        {
            // A restarted camera: its clock is unrelated to the old frames'.
            self.clear();
        }
        if self.frames.is_empty() && !frame.is_idr() {
            return;
        }
        self.bytes += frame.data().len() as u64;
        let newest = frame.timestamp_ns();
        self.frames.push_back(frame);
        let horizon = newest.saturating_sub(self.keep_ns);
        loop {
            let over = self.bytes > self.max_bytes;
            // The second GOP's IDR: if it is old enough, the first GOP is not needed.
            let next_idr = self.frames.iter().skip(1).position(AccessUnit::is_idr);
            let stale = next_idr
                .and_then(|i| self.frames.get(i + 1))
                .is_some_and(|f| f.timestamp_ns() <= horizon);
            if !(over || stale) {
                break;
            }
            let drop = next_idr.map_or(self.frames.len(), |i| i + 1);
            for f in self.frames.drain(..drop) {
                self.bytes -= f.data().len() as u64;
            }
        }
    }

    /// The frames from the IDR at or before `from_ns` (or the oldest IDR held, if none is that
    /// old) to the newest, shared with the ring.
    pub fn from(&self, from_ns: u64) -> Vec<F> {
        let start = self
            .frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.is_idr() && f.timestamp_ns() <= from_ns)
            .map(|(i, _)| i)
            .next_back()
            .unwrap_or(0);
        self.frames.iter().skip(start).cloned().collect()
    }

    /// The frames a decoder needs to show the frame captured at `ts_ns` (or the last one before
    /// it): from the IDR before it to it. Empty when the ring no longer holds that IDR.
    pub fn picture(&self, ts_ns: u64) -> Vec<F> {
        let Some(end) = self.frames.iter().rposition(|f| f.timestamp_ns() <= ts_ns) else {
            return Vec::new();
        };
        let Some(start) = self
            .frames
            .iter()
            .take(end + 1)
            .rposition(AccessUnit::is_idr)
        else {
            return Vec::new();
        };
        self.frames
            .iter()
            .skip(start)
            .take(end + 1 - start)
            .cloned()
            .collect()
    }

    /// Drops every frame.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame is held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Media time held, from the oldest frame to the newest.
    pub fn span_ns(&self) -> u64 {
        match (self.frames.front(), self.frames.back()) {
            (Some(a), Some(b)) => b.timestamp_ns().saturating_sub(a.timestamp_ns()),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::OwnedUnit;

    const MS: u64 = 1_000_000;

    /// Frame `n` at 10 fps (100 ms apart), an IDR every `gop`, `size` bytes.
    fn unit(n: u64, gop: u64, size: usize) -> OwnedUnit {
        let idr = n.is_multiple_of(gop);
        let mut data = vec![0, 0, 0, 1, if idr { 0x65 } else { 0x41 }];
        data.resize(size.max(5), 0x11);
        OwnedUnit {
            data,
            timestamp_ns: 1_000 * MS + n * 100 * MS,
            idr,
            sps: None,
            pps: None,
            inband: false,
            generation: 0,
        }
    }

    fn times(frames: &[OwnedUnit]) -> Vec<u64> {
        frames
            .iter()
            .map(|f| (f.timestamp_ns - 1_000 * MS) / (100 * MS))
            .collect()
    }

    #[test]
    fn it_keeps_whole_gops_reaching_the_pre_roll_back() {
        // Keep 1 s; GOP 5 frames (0.5 s).
        let mut r = Ring::new(1_000 * MS, 1 << 20);
        for n in 0..=23 {
            r.push(unit(n, 5, 100));
        }
        // Newest 23 (2.3 s): horizon 1.3 s = frame 13. GOPs start at 10, 15, 20: the one at 10
        // is kept because the next (15) is after the horizon.
        assert_eq!(times(&r.from(0))[0], 10);
        assert_eq!(r.len(), 14);
        assert_eq!(r.bytes(), 1400);
        assert_eq!(r.span_ns(), 1_300 * MS);
        // The IDR at or before a point.
        assert_eq!(times(&r.from(1_000 * MS + 1_700 * MS))[0], 15);
        assert_eq!(times(&r.from(1_000 * MS + 2_000 * MS))[..2], [20, 21]);
        // A picture: from its IDR to it.
        assert_eq!(times(&r.picture(1_000 * MS + 1_720 * MS)), [15, 16, 17]);
        assert!(r.picture(0).is_empty());
    }

    #[test]
    fn it_starts_at_an_idr_and_respects_the_byte_cap() {
        let mut r = Ring::new(10_000 * MS, 1_000);
        for n in 3..5 {
            r.push(unit(n, 5, 100));
        }
        assert!(r.is_empty(), "no IDR yet");
        for n in 5..20 {
            r.push(unit(n, 5, 100));
        }
        // 15 frames of 100 bytes > 1000: whole GOPs go, 10 frames stay.
        assert_eq!(times(&r.from(0)), (10..20).collect::<Vec<_>>());
        assert!(r.bytes() <= 1_000);
        // A GOP bigger than the cap empties the ring until the next IDR.
        let mut r = Ring::new(10_000 * MS, 1_000);
        for n in 0..12 {
            r.push(unit(n, 20, 200));
        }
        assert!(r.bytes() <= 1_000);
        assert!(r.from(0).first().is_none_or(|f| f.idr));
    }

    #[test]
    fn a_camera_restart_clears_it() {
        let mut r = Ring::new(10_000 * MS, 1 << 20);
        for n in 0..7 {
            r.push(unit(n, 5, 100));
        }
        let mut u = unit(0, 5, 100);
        u.generation = 1;
        r.push(u);
        assert_eq!(r.len(), 1);
    }
}
