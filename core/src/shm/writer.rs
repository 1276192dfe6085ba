//! The board's writer protocol, for the simulated camera, tests and benchmarks.
//!
//! This reproduces `camera_switcher_daemon` exactly, hazard included: it publishes the index
//! with an atomic fetch-add *before* it copies the whole 3 MB slot, so a reader that trusts the
//! index alone can read a half-written frame. [`CopyMode::Slow`] stretches that window on
//! purpose so tests can prove the reader's guard.
#![allow(unsafe_code)]

use std::fs::File;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use memmap2::{MmapMut, MmapOptions};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::Mode;
use nix::unistd::ftruncate;

use super::ShmError;
use crate::layout::{
    DATA_OFFSET, FRAME_INTERVAL_OFFSET, FrameHeader, SEGMENT_SIZE, SLOT_DATA_CAPACITY, SLOT_SIZE,
    WRITE_INDEX_OFFSET, slot_of, slot_offset,
};

/// How [`ShmWriter::publish`] copies a frame into its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMode {
    /// One `memcpy` of the whole slot, as the board does.
    WholeSlot,
    /// The header, then the used payload in `piece`-byte pieces with `pause` between them, then
    /// the rest of the slot at once: a writer that keeps getting preempted mid-copy.
    Slow {
        /// Bytes per piece.
        piece: usize,
        /// Sleep between pieces.
        pause: Duration,
    },
    /// Everything but the first 8 bytes (`frame_number`), a pause, then those 8 bytes: the
    /// order glibc's x86-64 memcpy uses in every other slot, stretched.
    HeadLast {
        /// Sleep before the head.
        pause: Duration,
    },
}

/// Writes frames into a frame-ring segment it created.
pub struct ShmWriter {
    name: String,
    map: MmapMut,
    /// The slot image the next frame is assembled in, as the board's local `Frame`: bytes past
    /// `data_size` keep whatever earlier frames left there, and are copied too.
    staging: Vec<u8>,
}

impl std::fmt::Debug for ShmWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmWriter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ShmWriter {
    /// Creates (or opens and resizes) the segment `name` with mode 0666, as the camera does.
    pub fn create(name: &str) -> Result<Self, ShmError> {
        Self::create_sized(name, SEGMENT_SIZE)
    }

    /// Creates a segment of an arbitrary size: only for tests that need a wrong one.
    /// Frames cannot be published into a segment smaller than the layout.
    pub fn create_sized(name: &str, size: usize) -> Result<Self, ShmError> {
        // A fresh tmpfs file reads as zeros already: no need for the board's memset, which would
        // only fault in all 93 MB.
        Ok(Self {
            name: name.to_owned(),
            map: create_mapped(name, size)?,
            staging: vec![0; SLOT_SIZE],
        })
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn index_atomic(&self) -> &AtomicU32 {
        let ptr = self.map.as_ptr().wrapping_add(WRITE_INDEX_OFFSET) as *mut u32;
        // SAFETY: offset 0 of a page-aligned writable mapping is aligned for u32 and in bounds;
        // all accesses to it, here and in readers, are atomic. The reference lives no longer
        // than `self`, which owns the mapping.
        unsafe { AtomicU32::from_ptr(ptr) }
    }

    /// The current `write_index`.
    pub fn write_index(&self) -> u32 {
        self.index_atomic().load(Ordering::SeqCst)
    }

    /// Stores `frame_interval_ms`, as the switcher does on a day/night switch.
    pub fn set_frame_interval_ms(&mut self, ms: u32) {
        let ptr = self.map.as_mut_ptr().wrapping_add(FRAME_INTERVAL_OFFSET) as *mut u32;
        // SAFETY: aligned, in bounds, and written volatile as the C side's `volatile uint32_t`.
        unsafe { ptr.write_volatile(ms) };
    }

    /// Publishes one frame with the board's protocol and returns the `write_index` value it took
    /// (the frame's 0-based sequence number).
    pub fn publish(
        &mut self,
        header: &FrameHeader,
        data: &[u8],
        mode: CopyMode,
    ) -> Result<u32, ShmError> {
        if data.len() > SLOT_DATA_CAPACITY {
            return Err(ShmError::FrameTooLarge { size: data.len() });
        }
        if self.map.len() < SEGMENT_SIZE {
            return Err(ShmError::WrongSize {
                name: self.name.clone(),
                actual: self.map.len() as u64,
                expected: SEGMENT_SIZE as u64,
            });
        }
        let mut header = *header;
        header.data_size = data.len() as u64;
        // SAFETY: `staging` is SLOT_SIZE bytes, FrameHeader is 48 plain bytes at offset 0 and
        // write_unaligned has no alignment requirement.
        unsafe {
            std::ptr::write_unaligned(self.staging.as_mut_ptr().cast::<FrameHeader>(), header)
        };
        self.staging[DATA_OFFSET..DATA_OFFSET + data.len()].copy_from_slice(data);

        // The hazard, faithfully: index first, copy after.
        let counter = self.index_atomic().fetch_add(1, Ordering::SeqCst);
        let dst = self
            .map
            .as_mut_ptr()
            .wrapping_add(slot_offset(slot_of(counter)));
        let src = self.staging.as_ptr();
        match mode {
            CopyMode::WholeSlot => {
                // SAFETY: `dst..dst+SLOT_SIZE` is one slot inside the mapping (size checked
                // above), `src` is SLOT_SIZE bytes of our own heap; they cannot overlap.
                unsafe { std::ptr::copy_nonoverlapping(src, dst, SLOT_SIZE) };
            }
            CopyMode::HeadLast { pause } => {
                const HEAD: usize = 8;
                // SAFETY: both ranges lie inside the slot and the staging buffer, which cannot
                // overlap.
                unsafe {
                    std::ptr::copy_nonoverlapping(src.add(HEAD), dst.add(HEAD), SLOT_SIZE - HEAD)
                };
                std::thread::sleep(pause);
                // SAFETY: as above, the first 8 bytes.
                unsafe { std::ptr::copy_nonoverlapping(src, dst, HEAD) };
            }
            CopyMode::Slow { piece, pause } => {
                let used = DATA_OFFSET + data.len();
                let piece = piece.max(1);
                let mut off = 0;
                while off < SLOT_SIZE {
                    let n = if off < used {
                        piece.min(used - off)
                    } else {
                        SLOT_SIZE - off
                    };
                    // SAFETY: `off + n <= SLOT_SIZE`, so both ranges stay inside their buffers.
                    unsafe { std::ptr::copy_nonoverlapping(src.add(off), dst.add(off), n) };
                    off += n;
                    if off < used {
                        std::thread::sleep(pause);
                    }
                }
            }
        }
        Ok(counter)
    }

    /// Sets `write_index` back to 0 without recreating the segment: a writer restarted in place,
    /// which readers must notice from the index going backwards.
    pub fn reset_index(&mut self) {
        self.index_atomic().store(0, Ordering::SeqCst);
    }

    /// Removes the name, like the camera daemon does when it stops. Readers keep their mapping.
    pub fn unlink(&self) -> Result<(), ShmError> {
        unlink(&self.name)
    }
}

/// Creates (or opens) segment `name` with mode 0666 as the board's writers do (`shm_open`
/// with `O_CREAT`, `ftruncate` to `size`), and maps it writable.
pub(crate) fn create_mapped(name: &str, size: usize) -> Result<MmapMut, ShmError> {
    let open_err = |source: std::io::Error| ShmError::Open {
        name: name.to_owned(),
        source,
    };
    let fd = shm_open(
        name,
        OFlag::O_CREAT | OFlag::O_RDWR,
        Mode::from_bits_truncate(0o666),
    )
    .map_err(|e| open_err(e.into()))?;
    let len = i64::try_from(size).map_err(|_| open_err(Errno::EINVAL.into()))?;
    ftruncate(&fd, len).map_err(|e| open_err(e.into()))?;
    let file = File::from(fd);
    // SAFETY: we map exactly the length we just set with ftruncate. Other processes may map it
    // too; the callers touch it only through raw pointers (atomics for the counters).
    unsafe { MmapOptions::new().len(size).map_mut(&file) }.map_err(open_err)
}

/// Removes segment `name` (readers keep their mappings); a missing one is fine.
pub(crate) fn unlink(name: &str) -> Result<(), ShmError> {
    match shm_unlink(name) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(ShmError::Open {
            name: name.to_owned(),
            source: e.into(),
        }),
    }
}
