//! A read-only view of a frame-ring segment.
//!
//! # Safety contract of the mapping
//!
//! The camera daemon writes the segment while we read it, without any lock. So this module never
//! hands out a Rust reference (`&[u8]`, `&FrameHeader`) into the mapping: that would promise the
//! compiler the bytes do not change. Every access goes through a raw pointer: an atomic load for
//! `write_index`, volatile reads for headers, and a byte copy for payloads, whose result the
//! caller must treat as possibly torn until validated (see [`crate::shm::guard`]).
//!
//! The mapping stays valid while this value lives even if the writer unlinks the name (the inode
//! lives on until the last mapping goes). If a writer *shrank* the file in place, reading past
//! its new end would raise SIGBUS; the board's writer never does that (it unlinks and recreates),
//! and [`Segment::open`] refuses files of the wrong size.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};

use memmap2::{Mmap, MmapOptions};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::shm_open;
use nix::sys::stat::{Mode, fstat};

use super::ShmError;
use crate::layout::{
    DATA_OFFSET, FRAME_INTERVAL_OFFSET, FrameHeader, RING_SLOTS, SEGMENT_SIZE, SLOT_DATA_CAPACITY,
    WRITE_INDEX_OFFSET, slot_offset,
};

/// What identifies one incarnation of a segment: a writer that unlinks and recreates the name
/// gets a new inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentId {
    /// Device of the tmpfs.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Opens `name` read-only and returns the descriptor with its identity.
///
/// `Ok(None)` when no segment of that name exists.
pub fn open_fd(name: &str) -> Result<Option<(OwnedFd, SegmentId)>, ShmError> {
    let fd = match shm_open(name, OFlag::O_RDONLY, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => {
            return Err(ShmError::Open {
                name: name.to_owned(),
                source: errno.into(),
            });
        }
    };
    let st = fstat(&fd).map_err(|errno| ShmError::Open {
        name: name.to_owned(),
        source: errno.into(),
    })?;
    let id = SegmentId {
        dev: st.st_dev,
        ino: st.st_ino,
        size: u64::try_from(st.st_size).unwrap_or(0),
    };
    Ok(Some((fd, id)))
}

/// Maps segment `name` read-only if it is exactly `size` bytes; `wrong_size` makes the error
/// for any other size. [`ShmError::NotFound`] when there is no such segment.
///
/// The caller takes on the contract in the module docs: no reference into the mapping, ever.
pub(crate) fn map_read_only(
    name: &str,
    size: usize,
    wrong_size: impl FnOnce(u64) -> ShmError,
) -> Result<(Mmap, SegmentId), ShmError> {
    let (fd, id) = open_fd(name)?.ok_or_else(|| ShmError::NotFound(name.to_owned()))?;
    if id.size != size as u64 {
        return Err(wrong_size(id.size));
    }
    let file = File::from(fd);
    // SAFETY: the mapping is read-only and shared with a writer that modifies it concurrently;
    // the callers uphold that by never creating references into it (see the module docs). The
    // size was checked just above, so every offset a caller computes from its layout lies
    // inside the mapping.
    let map =
        unsafe { MmapOptions::new().len(size).map(&file) }.map_err(|source| ShmError::Open {
            name: name.to_owned(),
            source,
        })?;
    Ok((map, id))
}

/// Looks up the identity of whatever segment carries `name` now, without mapping it.
pub fn current_id(name: &str) -> Result<Option<SegmentId>, ShmError> {
    Ok(open_fd(name)?.map(|(_, id)| id))
}

/// A read-only mapping of one incarnation of a frame-ring segment.
#[derive(Debug)]
pub struct Segment {
    name: String,
    id: SegmentId,
    map: Mmap,
}

impl Segment {
    /// Maps the segment `name` (e.g. `/pet_camera_stream`) read-only.
    ///
    /// Fails with [`ShmError::NotFound`] when it does not exist and [`ShmError::WrongSize`] when
    /// its size is not the board's layout.
    pub fn open(name: &str) -> Result<Self, ShmError> {
        let (map, id) = map_read_only(name, SEGMENT_SIZE, |actual| ShmError::WrongSize {
            name: name.to_owned(),
            actual,
            expected: SEGMENT_SIZE as u64,
        })?;
        Ok(Self {
            name: name.to_owned(),
            id,
            map,
        })
    }

    /// The name it was opened by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The identity of the mapped incarnation.
    pub fn id(&self) -> SegmentId {
        self.id
    }

    /// The writer's frame counter, with acquire ordering: slot contents written before an
    /// increment the writer made are visible after we see it.
    pub fn write_index(&self) -> u32 {
        let ptr = self.map.as_ptr().wrapping_add(WRITE_INDEX_OFFSET) as *mut u32;
        // SAFETY: offset 0 of a page-aligned mapping of SEGMENT_SIZE bytes is 4-byte aligned and
        // in bounds. An atomic load of a native-sized integer from read-only memory is allowed
        // (std::sync::atomic docs), and the writer only ever changes it with atomic RMWs.
        unsafe { AtomicU32::from_ptr(ptr) }.load(Ordering::Acquire)
    }

    /// `frame_interval_ms` as the switcher last wrote it.
    pub fn frame_interval_ms(&self) -> u32 {
        let ptr = self.map.as_ptr().wrapping_add(FRAME_INTERVAL_OFFSET) as *const u32;
        // SAFETY: aligned and in bounds (offset 4 of the mapping); a volatile read because the
        // writer stores it without synchronisation, and any value it reads is acceptable.
        unsafe { ptr.read_volatile() }
    }

    /// A snapshot of slot `slot`'s header. It may be torn if the writer is rewriting that slot:
    /// callers compare two snapshots taken around their copy.
    ///
    /// # Panics
    /// If `slot >= RING_SLOTS` (a bug in the caller, never input).
    pub fn read_header(&self, slot: usize) -> FrameHeader {
        assert!(slot < RING_SLOTS, "slot {slot} out of range");
        let ptr = self.map.as_ptr().wrapping_add(slot_offset(slot)) as *const FrameHeader;
        // SAFETY: slot_offset(slot) + 48 <= SEGMENT_SIZE for slot < RING_SLOTS; every slot offset
        // is 8 + k × 3,110,448, a multiple of 8, so the pointer is aligned for FrameHeader; every
        // bit pattern is a valid FrameHeader (integers only). Volatile because the memory changes
        // underneath us.
        unsafe { ptr.read_volatile() }
    }

    /// Raw pointer to the first `len` payload bytes of `slot`, after bounds checks.
    fn data_ptr(&self, slot: usize, len: usize) -> *const u8 {
        assert!(slot < RING_SLOTS, "slot {slot} out of range");
        assert!(len <= SLOT_DATA_CAPACITY, "length {len} beyond the slot");
        self.map
            .as_ptr()
            .wrapping_add(slot_offset(slot) + DATA_OFFSET)
    }

    /// Appends the first `len` payload bytes of `slot` to `dst`. The bytes may be torn.
    ///
    /// # Panics
    /// If `slot >= RING_SLOTS` or `len > SLOT_DATA_CAPACITY` (callers validate `data_size`).
    pub fn copy_data(&self, slot: usize, len: usize, dst: &mut Vec<u8>) {
        let src = self.data_ptr(slot, len);
        dst.reserve(len);
        let old_len = dst.len();
        // SAFETY: `src..src+len` lies inside the mapping (checked in data_ptr); `dst` has room
        // for `len` more bytes after reserve, and the regions cannot overlap (private heap vs
        // shared mapping). A plain byte copy of racing memory yields some bytes, never UB at
        // the hardware level; the result is validated by the caller before use. Every byte
        // value is a valid u8, so set_len exposes initialised memory.
        unsafe {
            std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr().add(old_len), len);
            dst.set_len(old_len + len);
        }
    }

    /// True when the first `expected.len()` payload bytes of `slot` still equal `expected`.
    ///
    /// # Panics
    /// As [`Segment::copy_data`].
    pub fn data_matches(&self, slot: usize, expected: &[u8]) -> bool {
        // Compared in chunks through a small stack buffer so no reference into the mapping is
        // ever formed.
        const CHUNK: usize = 4096;
        let src = self.data_ptr(slot, expected.len());
        let mut buf = [0u8; CHUNK];
        for (i, want) in expected.chunks(CHUNK).enumerate() {
            // SAFETY: in bounds as checked by data_ptr for the whole length; `buf` holds CHUNK
            // bytes and `want.len() <= CHUNK`.
            unsafe {
                std::ptr::copy_nonoverlapping(src.add(i * CHUNK), buf.as_mut_ptr(), want.len())
            };
            if buf[..want.len()] != *want {
                return false;
            }
        }
        true
    }
}
