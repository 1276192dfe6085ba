//! Frames: [`Frame`] borrows the host's access unit during `on_frame`; [`RetainedFrame`] keeps it
//! past that, on any thread, without copying a byte.
#![allow(unsafe_code)] // Reads the host's frame through raw pointers; keeps it across threads.

use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;

use stackctl_plugin_abi as abi;

use crate::buf;
use crate::host::HostHandle;

/// One H.264 access unit, borrowed from the host for the duration of
/// [`Sink::on_frame`](crate::Sink::on_frame).
///
/// It cannot leave the delivery thread; to keep it longer, [`retain`](Self::retain) it.
pub struct Frame<'a> {
    raw: &'a abi::Frame,
    host: &'a HostHandle,
}

/// A frame kept beyond `on_frame`: the host's bytes, not a copy. Dereferences to the access
/// unit; `Send` and `Sync`, so it can be queued for another thread. Dropping it tells the host
/// (`frame_release`), which frees the frame when nobody holds it.
///
/// # Caveats
/// It pins a buffer in stackctl: a sink that queues frames must bound its queue (drop whole
/// GOPs, as the host does). Drop every retained frame in [`Sink::stop`](crate::Sink::stop) at
/// the latest: one still alive after `destroy` points to freed memory.
pub struct RetainedFrame {
    raw: NonNull<abi::Frame>,
    host: HostHandle,
}

// SAFETY: the header: after `frame_retain`, "the struct AND the bytes it points to stay valid and
// unchanged, on any thread" until the matching `frame_release`, which is [any-thread]. The data
// is read-only, so sharing it is as safe as sharing `&[u8]`.
unsafe impl Send for RetainedFrame {}
// SAFETY: as above: nothing is written through it.
unsafe impl Sync for RetainedFrame {}

impl<'a> Frame<'a> {
    /// Wraps the frame passed to `on_frame`.
    ///
    /// # Safety
    /// `raw` is the frame of the running `on_frame` call, on the delivery thread, and its
    /// `struct_size` covers ABI 1.0.
    pub(crate) unsafe fn new(raw: &'a abi::Frame, host: &'a HostHandle) -> Self {
        Self { raw, host }
    }

    /// Keeps this frame beyond `on_frame`, without copying it.
    pub fn retain(&self) -> RetainedFrame {
        // SAFETY: a `Frame` exists only during `on_frame` on the delivery thread (it is built
        // there, borrows from the call and is neither Send nor Sync): `frame_retain`'s context.
        unsafe { self.host.retain(self.raw) };
        RetainedFrame {
            raw: NonNull::from(self.raw),
            host: self.host.clone(),
        }
    }

    fn raw(&self) -> &abi::Frame {
        self.raw
    }
}

impl RetainedFrame {
    fn raw(&self) -> &abi::Frame {
        // SAFETY: retained, so valid and unchanged until our `Drop` releases it.
        unsafe { self.raw.as_ref() }
    }
}

impl Drop for RetainedFrame {
    fn drop(&mut self) {
        // SAFETY: retained once in `Frame::retain`, released once here.
        unsafe { self.host.release(self.raw.as_ptr()) };
    }
}

impl Deref for RetainedFrame {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.data()
    }
}

impl AsRef<[u8]> for RetainedFrame {
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}

/// The same read-only accessors on [`Frame`] and [`RetainedFrame`].
macro_rules! accessors {
    ($ty:ty) => {
        impl $ty {
            /// The access unit in Annex-B, exactly as the camera wrote it.
            pub fn data(&self) -> &[u8] {
                let raw = self.raw();
                // SAFETY: the host keeps `len` bytes at `data` valid while this frame is
                // (borrowed in `on_frame`, or retained).
                unsafe { buf::bytes(raw.data, raw.len) }
            }

            /// The camera's frame counter.
            pub fn frame_number(&self) -> u64 {
                self.raw().frame_number
            }

            /// Capture time, `CLOCK_MONOTONIC` nanoseconds: media time comes from here.
            pub fn timestamp_ns(&self) -> u64 {
                self.raw().timestamp_ns
            }

            /// Width in pixels.
            pub fn width(&self) -> u32 {
                self.raw().width
            }

            /// Height in pixels.
            pub fn height(&self) -> u32 {
                self.raw().height
            }

            /// The writer's index: consecutive within one generation.
            pub fn sequence(&self) -> u32 {
                self.raw().sequence
            }

            /// Incremented when the camera restarted (timestamps may jump then).
            pub fn generation(&self) -> u32 {
                self.raw().generation
            }

            /// 0 for the day camera, 1 for the night camera.
            pub fn camera_id(&self) -> i32 {
                self.raw().camera_id
            }

            /// The raw `STACKCTL_FRAME_*` flags.
            pub fn flags(&self) -> u32 {
                self.raw().flags
            }

            /// An IDR access unit: a decoder can start here.
            pub fn is_idr(&self) -> bool {
                self.flags() & stackctl_plugin_abi::FRAME_IDR != 0
            }

            /// It carries its own SPS and PPS.
            pub fn has_inband_params(&self) -> bool {
                self.flags() & stackctl_plugin_abi::FRAME_INBAND_PARAMS != 0
            }

            /// The latest SPS seen on the stream (a NAL unit without start code), if any yet.
            /// Put it in front of an IDR that lacks it.
            pub fn sps(&self) -> Option<&[u8]> {
                let raw = self.raw();
                // SAFETY: as for `data`.
                Some(unsafe { buf::bytes(raw.sps, raw.sps_len) }).filter(|s| !s.is_empty())
            }

            /// The latest PPS seen on the stream (without start code), if any yet.
            pub fn pps(&self) -> Option<&[u8]> {
                let raw = self.raw();
                // SAFETY: as for `data`.
                Some(unsafe { buf::bytes(raw.pps, raw.pps_len) }).filter(|s| !s.is_empty())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("frame_number", &self.frame_number())
                    .field("timestamp_ns", &self.timestamp_ns())
                    .field("len", &self.data().len())
                    .field("idr", &self.is_idr())
                    .field("width", &self.width())
                    .field("height", &self.height())
                    .finish_non_exhaustive()
            }
        }
    };
}

accessors!(Frame<'_>);
accessors!(RetainedFrame);
