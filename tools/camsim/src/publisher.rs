//! The segments camsim writes: creating, publishing into, rate-switching, restarting, removing.

use std::time::Duration;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::mman::shm_unlink;
use nix::time::{ClockId, clock_gettime};
use stackctl_core::layout::{FrameHeader, PixelFormat, Timespec};
use stackctl_core::shm::{CopyMode, ShmWriter};

/// Bytes per piece of a `--slow-copy`: small enough that an IDR takes many pieces.
///
/// With [`SLOW_COPY_PAUSE`] this stretches the writer's copy window, between the index bump and
/// the end of the copy, to provoke torn reads in readers under test.
pub const SLOW_COPY_PIECE: usize = 8 * 1024;

/// Pause between two pieces of a `--slow-copy`; see [`SLOW_COPY_PIECE`].
pub const SLOW_COPY_PAUSE: Duration = Duration::from_micros(200);

/// `frame_interval_ms` the day/night switcher stores when it runs at about 2 fps.
pub const SLOW_INTERVAL_MS: u32 = 500;

/// One segment and what identifies its frames.
struct Target {
    writer: ShmWriter,
    format: PixelFormat,
    mode: CopyMode,
    /// Frames published into this incarnation of the segment.
    frame_number: u64,
}

/// The H.264 segment and, optionally, the NV12 one, written like the camera daemon does.
pub struct Segments {
    h264: Target,
    nv12: Option<Target>,
    frame_interval_ms: u32,
}

impl std::fmt::Debug for Segments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segments")
            .field("h264", &self.h264.writer.name())
            .field("nv12", &self.nv12.as_ref().map(|t| t.writer.name()))
            .finish_non_exhaustive()
    }
}

impl Segments {
    /// Creates the segments from scratch (any stale segment of the same name is replaced, so
    /// `write_index` starts at 0). `slow` selects the slow copy for the H.264 segment; the NV12
    /// segment is always copied in one piece, as a slow copy of 1.4 MB would outlast a frame.
    pub fn create(h264_name: &str, nv12_name: Option<&str>, slow: bool) -> Result<Self> {
        let h264_mode = if slow {
            CopyMode::Slow {
                piece: SLOW_COPY_PIECE,
                pause: SLOW_COPY_PAUSE,
            }
        } else {
            CopyMode::WholeSlot
        };
        let h264 = Target::create(h264_name, PixelFormat::H264, h264_mode)?;
        let nv12 = nv12_name
            .map(|name| Target::create(name, PixelFormat::Nv12, CopyMode::WholeSlot))
            .transpose()?;
        Ok(Self {
            h264,
            nv12,
            frame_interval_ms: 0,
        })
    }

    /// Unlinks and recreates every segment, like a restarted camera daemon: new inodes,
    /// `write_index` and frame numbers back to 0. The current `frame_interval_ms` is kept.
    pub fn restart(&mut self) -> Result<()> {
        for target in std::iter::once(&mut self.h264).chain(self.nv12.as_mut()) {
            // `create` unlinks the name first; the old mapping goes when it is replaced.
            *target = Target::create(target.writer.name(), target.format, target.mode)?;
            target.writer.set_frame_interval_ms(self.frame_interval_ms);
        }
        Ok(())
    }

    /// Stores `frame_interval_ms` in every segment, as the day/night switcher does.
    pub fn set_frame_interval_ms(&mut self, ms: u32) {
        self.frame_interval_ms = ms;
        self.h264.writer.set_frame_interval_ms(ms);
        if let Some(nv12) = &mut self.nv12 {
            nv12.writer.set_frame_interval_ms(ms);
        }
    }

    /// Whether there is an NV12 segment to feed.
    pub fn wants_nv12(&self) -> bool {
        self.nv12.is_some()
    }

    /// The frame number the next H.264 frame will carry.
    pub fn next_frame_number(&self) -> u64 {
        self.h264.frame_number
    }

    /// Publishes one H.264 access unit captured at `timestamp`.
    pub fn publish_h264(
        &mut self,
        size: (usize, usize),
        au: &[u8],
        timestamp: Timespec,
    ) -> Result<()> {
        self.h264.publish(size, au, timestamp)
    }

    /// Publishes one NV12 picture into the NV12 segment, if there is one, with the capture
    /// time of the H.264 frame made from the same picture (as the board's camera does: both
    /// come from one capture), so a detection made on it lines up with that frame.
    pub fn publish_nv12(
        &mut self,
        size: (usize, usize),
        picture: &[u8],
        timestamp: Timespec,
    ) -> Result<()> {
        if let Some(nv12) = &mut self.nv12 {
            nv12.publish(size, picture, timestamp)?;
        }
        Ok(())
    }

    /// Removes every segment's name (readers keep their mappings).
    pub fn unlink(&self) -> Result<()> {
        for target in std::iter::once(&self.h264).chain(self.nv12.as_ref()) {
            target.writer.unlink()?;
        }
        Ok(())
    }
}

impl Target {
    fn create(name: &str, format: PixelFormat, mode: CopyMode) -> Result<Self> {
        // The board's daemon zeroes the segment it opens; the core writer assumes a fresh one,
        // so remove a stale segment first rather than continue its write_index.
        match shm_unlink(name) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove stale segment {name}")),
        }
        let writer = ShmWriter::create(name)?;
        Ok(Self {
            writer,
            format,
            mode,
            frame_number: 0,
        })
    }

    fn publish(
        &mut self,
        (width, height): (usize, usize),
        data: &[u8],
        timestamp: Timespec,
    ) -> Result<()> {
        let frame_number = self.frame_number;
        let header = FrameHeader {
            frame_number,
            timestamp,
            camera_id: 0,
            width: i32::try_from(width).unwrap_or(i32::MAX),
            height: i32::try_from(height).unwrap_or(i32::MAX),
            format: self.format.to_raw(),
            data_size: data.len() as u64,
        };
        self.writer
            .publish(&header, data, self.mode)
            .with_context(|| {
                format!(
                    "cannot publish frame {frame_number} into {}",
                    self.writer.name()
                )
            })?;
        self.frame_number += 1;
        Ok(())
    }
}

/// `CLOCK_MONOTONIC` now, as the layout's timespec.
pub fn monotonic_now() -> Result<Timespec> {
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC).context("cannot read CLOCK_MONOTONIC")?;
    Ok(Timespec {
        tv_sec: now.tv_sec(),
        tv_nsec: now.tv_nsec(),
    })
}
