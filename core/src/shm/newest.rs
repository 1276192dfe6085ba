//! The newest frame the writer has finished: for readers that want the latest picture rather
//! than every frame (a snapshot, the detector, the picture's size).
//!
//! The writer claims a slot (increments `write_index`) *before* it copies into it, and copies
//! one slot at a time, so the frame of counter `write_index - 1` may be half written while the
//! one of `write_index - 2` is complete, and stays so until the writer claims that slot again,
//! a whole ring later. Reading one frame behind costs a frame interval of latency and none of
//! the torn-read guard's machinery; a copy is checked afterwards against a writer that lapped
//! the ring meanwhile.

use super::Segment;
use crate::layout::{FrameHeader, RING_SLOTS, slot_of};

/// A complete frame of a ring: its writer counter and header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Complete {
    /// The writer counter (`write_index` value) of the frame.
    pub counter: u32,
    /// Its header, read once the frame was complete.
    pub header: FrameHeader,
}

/// The newest complete frame of `seg`; `None` before the writer has finished one.
pub fn newest_complete(seg: &Segment) -> Option<Complete> {
    let w = seg.write_index();
    if w < 2 {
        return None;
    }
    let counter = w.wrapping_sub(2);
    let header = seg.read_header(slot_of(counter));
    let frame = Complete { counter, header };
    frame.intact(seg).then_some(frame)
}

impl Complete {
    /// Appends the first `len` payload bytes of the frame to `dst` (`len` at most a slot's
    /// capacity: callers check the header's `data_size` first). False, with `dst` holding
    /// something meaningless, when the writer reused the slot during the copy.
    pub fn copy(&self, seg: &Segment, len: usize, dst: &mut Vec<u8>) -> bool {
        seg.copy_data(slot_of(self.counter), len, dst);
        self.intact(seg)
    }

    /// The writer has not claimed the slot again (it does so a whole ring later), and the
    /// header is still the one read.
    fn intact(&self, seg: &Segment) -> bool {
        seg.write_index().wrapping_sub(self.counter) < RING_SLOTS as u32
            && seg.read_header(slot_of(self.counter)) == self.header
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{PixelFormat, Timespec};
    use crate::shm::{CopyMode, ShmWriter};

    #[test]
    fn reads_one_behind_and_notices_a_lapped_slot() {
        let name = format!("/stackctl-newest-{}", std::process::id());
        let mut w = ShmWriter::create(&name).expect("segment");
        let seg = Segment::open(&name).expect("open");
        let publish = |w: &mut ShmWriter, n: u64| {
            let header = FrameHeader {
                frame_number: n,
                timestamp: Timespec::from_nanos(n + 1),
                width: 4,
                height: 2,
                format: PixelFormat::Nv12.to_raw(),
                ..FrameHeader::default()
            };
            w.publish(&header, &[n as u8; 12], CopyMode::WholeSlot)
                .expect("publish");
        };
        assert_eq!(newest_complete(&seg), None);
        publish(&mut w, 0);
        assert_eq!(newest_complete(&seg), None, "frame 0 may still be copied");
        publish(&mut w, 1);
        let f = newest_complete(&seg).expect("frame 0 is complete");
        assert_eq!((f.counter, f.header.frame_number), (0, 0));
        let mut data = Vec::new();
        assert!(f.copy(&seg, 12, &mut data));
        assert_eq!(data, [0; 12]);
        // The writer laps the ring: slot 0 now holds frame 30.
        for n in 2..=30 {
            publish(&mut w, n);
        }
        data.clear();
        assert!(!f.copy(&seg, 12, &mut data), "overwritten");
        let _ = w.unlink();
    }
}
