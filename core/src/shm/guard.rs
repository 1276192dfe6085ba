//! The torn-read guard: never deliver a frame the writer may still be copying.
//!
//! The board's writer increments `write_index` *before* it copies the 3 MB slot, and publishes
//! nothing when the copy ends. So the only proof that slot `c` is complete is the writer taking
//! the next index (`write_index >= c + 2`): it copies one slot at a time. For every frame but the
//! newest that proof is already there; for the newest one, waiting for it costs a whole frame
//! interval (33 ms at 30 fps, 500 ms at night).
//!
//! What this module does for a frame (see `read_frame`):
//! 1. If the writer has already moved on, copy and re-validate: done.
//! 2. Otherwise read the header; unless its camera timestamp is later than the previous frame's,
//!    its frame number follows the previous one (or the slot has waited 250 ms, for a real
//!    jump), and it describes an H.264 frame of a sane size, the writer has not finished writing
//!    it: come back later. Header bytes are not written in order: glibc's x86-64 memcpy stores
//!    the bytes before the slot's first 32-byte boundary last, which is `frame_number` alone in
//!    every other slot.
//! 3. Copy `data_size` bytes, re-read header and index: a changed header or a lapped slot is torn.
//! 4. Wait for the [`TornReadGuard`] window, or less if the writer moves on meanwhile, then
//!    compare the copy with the slot byte for byte and the header again. Any difference means the
//!    writer was still writing: start over.
//!
//! Each time step 4 catches the writer mid-copy, that frame's window doubles (up to 250 ms): a
//! writer seen to be slow is waited out.
//!
//! A torn copy survives step 4 only if the writer stalls (is preempted), inside the first
//! `data_size` bytes of its copy, for longer than the whole window. The default window is
//! 500 µs: a 3 MB slot copy takes 0.15–0.4 ms on this class of machine, so the check spans more
//! than a whole slot copy. That residual risk is not left silent: the source re-checks every
//! frame it delivered early once the writer has moved on, and counts a mismatch as a late tear
//! (`SourceStats::late_tears`, with a warning). `Settled` makes the window 250 ms, which on a
//! 30 fps stream means "wait for the writer to move on": proof against any writer short of one
//! hung for a quarter of a second mid-copy, for one frame interval of latency. The figures behind
//! these choices are in the README (`cargo bench -p stackctl-core --bench latency`).

use std::time::{Duration, Instant};

use crate::layout::{FrameHeader, PixelFormat, RING_SLOTS, SLOT_DATA_CAPACITY, slot_of};
use crate::shm::Segment;

/// The window of [`TornReadGuard::Settled`], and the longest any window grows to.
pub const SETTLED_WINDOW: Duration = Duration::from_millis(250);

/// How hard the reader works to never deliver a half-written frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TornReadGuard {
    /// No protection: copy as soon as the index moves. Only for measuring the guard.
    Off,
    /// Copy, then prove the slot unchanged over `window` (or until the writer moves on).
    Verify {
        /// The stability window.
        window: Duration,
    },
    /// Like `Verify` with a 250 ms window: in practice, wait for the writer's next frame.
    Settled,
}

impl Default for TornReadGuard {
    fn default() -> Self {
        Self::Verify {
            window: Duration::from_micros(500),
        }
    }
}

impl TornReadGuard {
    fn window(self) -> Option<Duration> {
        match self {
            Self::Off => None,
            Self::Verify { window } => Some(window),
            Self::Settled => Some(SETTLED_WINDOW),
        }
    }
}

/// What reading one frame's slot produced.
#[derive(Debug)]
pub(crate) enum SlotRead {
    /// A complete, validated H.264 frame.
    Frame(FrameHeader, Vec<u8>),
    /// A frame of another format (skipped).
    OtherFormat(FrameHeader),
    /// `data_size` is 0 or larger than a slot.
    BadSize(FrameHeader),
    /// The writer has not written this slot's header yet: try again shortly.
    NotYet,
    /// The writer reused the slot before we could finish: the frame is lost.
    Overwritten,
    /// The copy changed under us; `read_frame` retries, so callers only see it when stopping.
    Torn,
}

/// Distance from counter `c` to the writer's current index, in frames.
fn ahead(write_index: u32, c: u32) -> u32 {
    write_index.wrapping_sub(c)
}

/// What the source knows about the frame before the one being read.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Previous {
    /// Its camera timestamp (0 when unknown): a header whose timestamp is not later has not
    /// been written yet.
    pub timestamp_ns: u64,
    /// Its camera frame number, when known: the next one is normally one more.
    pub frame_number: Option<u64>,
    /// True once the slot has waited [`DISCONTINUITY_WAIT`]: a frame number that does not
    /// follow is then believed (the switcher changed cameras, or the camera restarted).
    pub waited_long: bool,
}

/// How long a newest slot whose frame number does not follow the previous one waits before
/// its header is believed anyway (unless the writer moves on first).
pub const DISCONTINUITY_WAIT: Duration = SETTLED_WINDOW;

/// Reads the frame with counter `c`, the one after `previous`. `torn_retries` counts restarts
/// of the procedure.
pub(crate) fn read_frame(
    seg: &Segment,
    c: u32,
    previous: Previous,
    guard: TornReadGuard,
    torn_retries: &mut u64,
    stop: &dyn Fn() -> bool,
) -> SlotRead {
    let mut window = guard.window();
    loop {
        match read_once(seg, c, previous, guard, window) {
            SlotRead::Torn if !stop() => {
                *torn_retries += 1;
                // Caught the writer mid-copy: it is slower than the window assumed, so wait
                // longer before believing the next copy.
                window = window.map(|w| (w * 2).min(SETTLED_WINDOW));
            }
            other => return other,
        }
    }
}

fn read_once(
    seg: &Segment,
    c: u32,
    previous: Previous,
    guard: TornReadGuard,
    window: Option<Duration>,
) -> SlotRead {
    let slot = slot_of(c);
    let complete = ahead(seg.write_index(), c) >= 2;
    let header = seg.read_header(slot);
    let guarded = guard != TornReadGuard::Off;
    let size = usize::try_from(header.data_size)
        .ok()
        .filter(|&size| size > 0 && size <= SLOT_DATA_CAPACITY);
    let h264 = PixelFormat::from_raw(header.format) == PixelFormat::H264;
    if guarded && !complete {
        // Which header bytes a writer stores first depends on its memcpy: glibc on x86-64
        // stores the bytes before the slot's first 32-byte boundary *last*, after the whole
        // 3 MB. With the board's layout that is `frame_number` alone in odd slots, and
        // `frame_number` plus the timestamp in even ones; aarch64 stores the head first. So an
        // unfinished slot's header is believed only once its timestamp is new AND its frame
        // number follows the previous one (or the slot has waited long enough for a real jump),
        // and only to accept a frame: a verdict that would skip the slot waits until the
        // writer has moved on.
        let follows = previous
            .frame_number
            .is_none_or(|n| header.frame_number == n.wrapping_add(1));
        if header.timestamp.as_nanos() <= previous.timestamp_ns
            || !(follows || previous.waited_long)
            || !h264
            || size.is_none()
        {
            return SlotRead::NotYet;
        }
    }
    if !h264 {
        return SlotRead::OtherFormat(header);
    }
    let Some(size) = size else {
        return SlotRead::BadSize(header);
    };
    let mut data = Vec::with_capacity(size);
    seg.copy_data(slot, size, &mut data);
    if !guarded {
        return SlotRead::Frame(header, data);
    }
    if seg.read_header(slot) != header {
        return SlotRead::Torn;
    }
    if ahead(seg.write_index(), c) > RING_SLOTS as u32 {
        return SlotRead::Overwritten;
    }
    if !complete && let Some(window) = window {
        wait_settled(seg, c, window);
        if seg.read_header(slot) != header || !seg.data_matches(slot, &data) {
            return SlotRead::Torn;
        }
        if ahead(seg.write_index(), c) > RING_SLOTS as u32 {
            return SlotRead::Overwritten;
        }
    }
    SlotRead::Frame(header, data)
}

/// Sleeps until `window` has passed or the writer has moved past counter `c`.
fn wait_settled(seg: &Segment, c: u32, window: Duration) {
    let start = Instant::now();
    while ahead(seg.write_index(), c) < 2 {
        let left = window.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(1)));
    }
}
