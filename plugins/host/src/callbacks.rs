//! What stackctl offers a plugin: the `stackctl_host` table and its callbacks, and the frame
//! view that lets a plugin keep a frame without copying it.
#![allow(unsafe_code)] // extern "C" callbacks called by plugins, and raw pointers into frames.

use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use stackctl_core::Frame;
use stackctl_plugin_abi as abi;
use tokio::sync::oneshot;

/// A plugin's answer to an HTTP request, copied out of its buffers.
#[derive(Debug)]
pub struct PluginResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// The host side of one plugin instance: the `host_ctx` of its callbacks.
#[derive(Debug)]
pub struct HostCtx {
    /// The plugin's name in the configuration (logs are attributed to it).
    pub plugin: String,
    pending: Mutex<HashMap<u64, oneshot::Sender<PluginResponse>>>,
    next_id: AtomicU64,
    /// Frames retained and not yet released (to show leaks).
    pub retained: AtomicU64,
}

impl HostCtx {
    /// A context for plugin `plugin`.
    pub fn new(plugin: &str) -> Self {
        Self {
            plugin: plugin.to_owned(),
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
            retained: AtomicU64::new(0),
        }
    }

    /// Registers a request and returns its id and where the answer will arrive.
    pub fn expect_response(&self) -> (u64, oneshot::Receiver<PluginResponse>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tx);
        (id, rx)
    }

    /// Forgets a request that will not be answered (time-out, or the plugin refused it).
    pub fn forget(&self, id: u64) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

/// Builds the `stackctl_host` table for `ctx`. The table and `ctx` must outlive the instance.
pub fn table(ctx: &Arc<HostCtx>) -> abi::Host {
    let max_log_level = if tracing::enabled!(tracing::Level::TRACE) {
        abi::log_level::TRACE
    } else if tracing::enabled!(tracing::Level::DEBUG) {
        abi::log_level::DEBUG
    } else {
        abi::log_level::INFO
    };
    abi::Host {
        struct_size: std::mem::size_of::<abi::Host>() as u32,
        abi_major: abi::ABI_MAJOR,
        abi_minor: abi::ABI_MINOR,
        host_ctx: Arc::as_ptr(ctx).cast_mut().cast(),
        max_log_level,
        reserved: 0,
        log,
        http_respond,
        frame_retain,
        frame_release,
    }
}

/// Borrows a plugin-provided string, lossily.
///
/// # Safety
/// `s` must be `len` readable bytes (or null with 0), valid for the call.
unsafe fn text(s: abi::Str) -> String {
    if s.ptr.is_null() || s.len == 0 {
        return String::new();
    }
    // SAFETY: guaranteed by the caller (the header's contract for every `stackctl_str`).
    String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(s.ptr, s.len) }).into_owned()
}

/// Borrows plugin-provided bytes.
///
/// # Safety
/// `ptr` must be `len` readable bytes (or null with 0), valid for the call.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// # Safety
/// `ctx` must be the `host_ctx` of a live instance.
unsafe fn ctx<'a>(ctx: *mut c_void) -> &'a HostCtx {
    // SAFETY: the host passed `Arc::as_ptr` of a `HostCtx` it keeps alive as long as the
    // instance, and plugins only hand it back.
    unsafe { &*ctx.cast::<HostCtx>() }
}

unsafe extern "C" fn log(host_ctx: *mut c_void, level: u32, target: abi::Str, message: abi::Str) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the callback contract: a live host_ctx and valid strings for this call.
        let (ctx, target, message) = unsafe { (ctx(host_ctx), text(target), text(message)) };
        let plugin = ctx.plugin.as_str();
        match level {
            abi::log_level::ERROR => {
                tracing::error!(target: "plugin", plugin = %plugin, module = %target, "{message}")
            }
            abi::log_level::WARN => {
                tracing::warn!(target: "plugin", plugin = %plugin, module = %target, "{message}")
            }
            abi::log_level::INFO => {
                tracing::info!(target: "plugin", plugin = %plugin, module = %target, "{message}")
            }
            abi::log_level::DEBUG => {
                tracing::debug!(target: "plugin", plugin = %plugin, module = %target, "{message}")
            }
            _ => tracing::trace!(target: "plugin", plugin = %plugin, module = %target, "{message}"),
        }
    }));
}

unsafe extern "C" fn http_respond(
    host_ctx: *mut c_void,
    request_id: u64,
    status: u16,
    headers: *const abi::Header,
    header_count: usize,
    body: *const u8,
    body_len: usize,
) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the callback contract: a live host_ctx, `header_count` headers and `body_len`
        // body bytes valid for this call; everything is copied before returning.
        let (ctx, headers, body) = unsafe {
            let headers: &[abi::Header] = if headers.is_null() || header_count == 0 {
                &[]
            } else {
                std::slice::from_raw_parts(headers, header_count)
            };
            let headers: Vec<(String, String)> = headers
                .iter()
                .map(|h| (text(h.name), text(h.value)))
                .collect();
            (ctx(host_ctx), headers, bytes(body, body_len).to_vec())
        };
        let waiter = ctx
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&request_id);
        if let Some(waiter) = waiter {
            let _ = waiter.send(PluginResponse {
                status,
                headers,
                body,
            });
        }
    }));
}

unsafe extern "C" fn frame_retain(host_ctx: *mut c_void, frame: *const abi::Frame) {
    // SAFETY: `frame` is the `c` field, at offset 0, of a `FrameView` in an `Arc` the host keeps
    // alive during `on_frame`, the only time a retain is allowed; one more strong count keeps it
    // alive until the matching release.
    unsafe {
        Arc::increment_strong_count(frame.cast::<FrameView>());
        ctx(host_ctx).retained.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe extern "C" fn frame_release(host_ctx: *mut c_void, frame: *const abi::Frame) {
    // SAFETY: pairs with a `frame_retain` of the same pointer (the header's contract), so the
    // count being dropped is one the plugin owns.
    unsafe {
        ctx(host_ctx).retained.fetch_sub(1, Ordering::Relaxed);
        Arc::decrement_strong_count(frame.cast::<FrameView>());
    }
}

/// A frame as a plugin sees it: the C view first (so a `*const abi::Frame` is a pointer to the
/// whole view), then the frame whose bytes it points into. Nothing is copied.
#[repr(C)]
#[derive(Debug)]
pub struct FrameView {
    /// The C view handed to `on_frame`.
    pub c: abi::Frame,
    /// Owns the bytes `c` points into.
    _frame: Arc<Frame>,
}

// SAFETY: the raw pointers in `c` point into `frame`, which is immutable and owned by the view;
// sharing or sending the view shares or sends only read-only access to those bytes.
unsafe impl Send for FrameView {}
// SAFETY: as above.
unsafe impl Sync for FrameView {}

impl FrameView {
    /// The view of `frame`.
    pub fn new(frame: Arc<Frame>) -> Arc<Self> {
        let meta = *frame.meta();
        let mut flags = 0;
        if frame.is_idr() {
            flags |= abi::FRAME_IDR;
        }
        if frame.has_inband_params() {
            flags |= abi::FRAME_INBAND_PARAMS;
        }
        let (sps, pps) = frame
            .params()
            .map_or((&[][..], &[][..]), |p| (&p.sps[..], &p.pps[..]));
        let c = abi::Frame {
            struct_size: std::mem::size_of::<abi::Frame>() as u32,
            flags,
            data: frame.data().as_ptr(),
            len: frame.data().len(),
            frame_number: meta.frame_number,
            timestamp_ns: meta.timestamp_ns,
            width: meta.width,
            height: meta.height,
            sequence: meta.sequence,
            generation: meta.generation,
            camera_id: meta.camera_id,
            reserved: 0,
            sps: sps.as_ptr(),
            sps_len: sps.len(),
            pps: pps.as_ptr(),
            pps_len: pps.len(),
        };
        Arc::new(Self { c, _frame: frame })
    }
}
