//! What stackctl offers a plugin: the `stackctl_host` table and its callbacks, and the frame
//! view that lets a plugin keep a frame without copying it.
#![allow(unsafe_code)] // extern "C" callbacks called by plugins, and raw pointers into frames.

use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use stackctl_core::Frame;

use crate::config::FlatConfig;
use crate::http::framing;
use crate::http::stream::{PendingStream, Registry, Stream, StreamError};
use stackctl_plugin_abi as abi;
use tokio::sync::oneshot;

/// A plugin's answer to an HTTP request, copied out of its buffers.
#[derive(Debug)]
pub struct PluginResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body (empty for a streamed answer).
    pub body: Vec<u8>,
    /// A streamed answer's body (ABI 1.2), to follow.
    pub stream: Option<PendingStream>,
}

/// The host side of one plugin instance: the `host_ctx` of its callbacks.
#[derive(Debug)]
pub struct HostCtx {
    /// The plugin's name in the configuration (logs are attributed to it).
    pub plugin: String,
    pending: Mutex<HashMap<u64, oneshot::Sender<PluginResponse>>>,
    /// Streamed answers under way (ABI 1.2), by request id.
    streams: Registry,
    next_id: AtomicU64,
    /// Frames retained and not yet released (to show leaks).
    pub retained: AtomicU64,
    /// The last `fail_reason` the plugin gave (ABI 1.1), at most `MESSAGE_MAX` bytes.
    fail_reason: Mutex<Option<String>>,
}

impl HostCtx {
    /// A context for plugin `plugin`.
    pub fn new(plugin: &str) -> Self {
        Self {
            plugin: plugin.to_owned(),
            pending: Mutex::default(),
            streams: Registry::default(),
            next_id: AtomicU64::new(1),
            retained: AtomicU64::new(0),
            fail_reason: Mutex::new(None),
        }
    }

    /// Takes the last reason the plugin gave for a failure, if any.
    pub fn take_fail_reason(&self) -> Option<String> {
        self.fail_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
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

    /// The streamed answer to request `id`, while it is under way.
    fn stream(&self, id: u64) -> Option<Arc<Stream>> {
        self.streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Streamed answers under way.
    pub fn open_streams(&self) -> usize {
        self.streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Takes the waiter of request `id` (it gets one answer).
    fn take_waiter(&self, id: u64) -> Option<oneshot::Sender<PluginResponse>> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
    }

    /// Forgets a request that will not be answered (time-out, or the plugin refused it).
    pub fn forget(&self, id: u64) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

/// Builds the `stackctl_host` table for `ctx`, handing over `config` (the section pre-parsed).
/// The table, `ctx` and `config` must outlive the instance.
pub fn table(ctx: &Arc<HostCtx>, config: &FlatConfig) -> abi::Host {
    let (config, config_count) = config.view();
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
        config,
        config_count,
        fail_reason: Some(fail_reason),
        http_respond_start: Some(http_respond_start),
        http_respond_chunk: Some(http_respond_chunk),
        http_respond_end: Some(http_respond_end),
        http_respond_abort: Some(http_respond_abort),
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
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

unsafe extern "C" fn fail_reason(host_ctx: *mut c_void, message: abi::Str) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the callback contract: a live host_ctx and a string valid for this call;
        // bounded before it is copied.
        let (ctx, message) = unsafe {
            let bounded = abi::Str {
                ptr: message.ptr,
                len: message.len.min(abi::MESSAGE_MAX),
            };
            (ctx(host_ctx), text(bounded))
        };
        let line = message.lines().next().unwrap_or_default().to_owned();
        *ctx.fail_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(line);
    }));
}

/// Copies a plugin's headers.
///
/// # Safety
/// `headers` must be `header_count` readable headers (or null with 0), valid for the call.
unsafe fn copy_headers(headers: *const abi::Header, header_count: usize) -> Vec<(String, String)> {
    let headers: &[abi::Header] = if headers.is_null() || header_count == 0 {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(headers, header_count) }
    };
    headers
        .iter()
        // SAFETY: every string of a valid header is readable for the call.
        .map(|h| unsafe { (text(h.name), text(h.value)) })
        .collect()
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
            (
                ctx(host_ctx),
                copy_headers(headers, header_count),
                bytes(body, body_len).to_vec(),
            )
        };
        if let Some(waiter) = ctx.take_waiter(request_id) {
            let _ = waiter.send(PluginResponse {
                status,
                headers,
                body,
                stream: None,
            });
        }
    }));
}

unsafe extern "C" fn http_respond_start(
    host_ctx: *mut c_void,
    request_id: u64,
    status: u16,
    headers: *const abi::Header,
    header_count: usize,
    content_length: i64,
) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the callback contract: a live host_ctx and `header_count` headers valid for
        // this call; copied before returning.
        let (ctx, headers) = unsafe { (ctx(host_ctx), copy_headers(headers, header_count)) };
        let Some(waiter) = ctx.take_waiter(request_id) else {
            return abi::stream::CLOSED;
        };
        let head = PluginResponse {
            status,
            headers,
            body: Vec::new(),
            stream: None,
        };
        // A head that cannot be sent goes on as it is: the server answers 502 for it.
        if framing::check(PluginResponse {
            status,
            headers: head.headers.clone(),
            body: Vec::new(),
            stream: None,
        })
        .is_err()
        {
            let _ = waiter.send(head);
            return abi::stream::INVALID;
        }
        if ctx.open_streams() >= abi::HTTP_STREAMS_MAX {
            // Bounded: the client is told to come back, the plugin that it may not stream.
            let _ = waiter.send(PluginResponse {
                status: 503,
                headers: vec![
                    ("content-type".to_owned(), "application/json".to_owned()),
                    ("retry-after".to_owned(), "2".to_owned()),
                ],
                body: format!(
                    "{{\"error\":\"plugin {} has {} streamed answers open, the most the host allows\",\"status\":503}}",
                    ctx.plugin,
                    abi::HTTP_STREAMS_MAX
                )
                .into_bytes(),
                stream: None,
            });
            return abi::stream::CLOSED;
        }
        let length = u64::try_from(content_length).ok();
        let stream = Stream::open(request_id, length, &ctx.streams);
        match waiter.send(PluginResponse {
            stream: Some(PendingStream::new(stream.clone())),
            ..head
        }) {
            Ok(()) => abi::stream::OK,
            Err(_) => {
                // Nobody waits any more (the client went away meanwhile).
                stream.close(StreamError::ClientGone);
                abi::stream::CLOSED
            }
        }
    }))
    .unwrap_or(abi::stream::CLOSED)
}

unsafe extern "C" fn http_respond_chunk(
    host_ctx: *mut c_void,
    request_id: u64,
    data: *const u8,
    len: usize,
) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the callback contract: a live host_ctx and `len` bytes valid for this call;
        // copied (by `chunk`) before returning.
        let (ctx, data) = unsafe { (ctx(host_ctx), bytes(data, len)) };
        match ctx.stream(request_id) {
            Some(stream) => stream.chunk(data),
            None => abi::stream::CLOSED,
        }
    }))
    .unwrap_or(abi::stream::CLOSED)
}

unsafe extern "C" fn http_respond_end(host_ctx: *mut c_void, request_id: u64) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the callback contract: a live host_ctx.
        if let Some(stream) = unsafe { ctx(host_ctx) }.stream(request_id) {
            stream.end();
        }
    }));
}

unsafe extern "C" fn http_respond_abort(host_ctx: *mut c_void, request_id: u64) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the callback contract: a live host_ctx.
        if let Some(stream) = unsafe { ctx(host_ctx) }.stream(request_id) {
            stream.close(StreamError::Aborted);
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
