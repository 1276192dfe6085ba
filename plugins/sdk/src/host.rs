//! The host's callbacks: read once at `create`, checked, and guarded so that none is called
//! after `destroy` (a [`Responder`](crate::Responder) or
//! [`RetainedFrame`](crate::RetainedFrame) that outlives its instance then does nothing).
#![allow(unsafe_code)] // Reads the host's table and calls its C function pointers.

use std::collections::HashMap;
use std::ffi::c_void;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::time::Duration;

use stackctl_plugin_abi as abi;
use tracing::Level;

use crate::Error;
use crate::versioned::{HOST_V1_0, HOST_V1_1, HOST_V1_2, covers};

type LogFn = unsafe extern "C" fn(*mut c_void, u32, abi::Str, abi::Str);
type RespondFn =
    unsafe extern "C" fn(*mut c_void, u64, u16, *const abi::Header, usize, *const u8, usize);
type FrameFn = unsafe extern "C" fn(*mut c_void, *const abi::Frame);
type ReasonFn = unsafe extern "C" fn(*mut c_void, abi::Str);

/// Copies of the host's callbacks and the context they take.
struct Callbacks {
    ctx: *mut c_void,
    log: LogFn,
    http_respond: RespondFn,
    frame_retain: FrameFn,
    frame_release: FrameFn,
    /// ABI 1.1, `None` from a 1.0 host.
    fail_reason: Option<ReasonFn>,
    /// ABI 1.2 (all four, or none), `None` from an older host.
    streaming: Option<Streaming>,
}

/// The host's streamed-answer callbacks (ABI 1.2).
#[derive(Clone, Copy)]
struct Streaming {
    start: abi::RespondStartFn,
    chunk: abi::RespondChunkFn,
    end: abi::RespondEndFn,
    abort: abi::RespondEndFn,
}

/// Wakes a thread waiting to write a streamed answer: a counter bumped by every
/// `on_http_writable`, so a wake-up between a `WOULD_BLOCK` and the wait is not lost.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    count: Mutex<u64>,
    cond: Condvar,
}

impl Signal {
    /// The count now.
    pub(crate) fn seen(&self) -> u64 {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.cond.notify_all();
    }

    /// Waits until the count differs from `seen`, for at most `timeout`: whether it does.
    pub(crate) fn wait(&self, seen: u64, timeout: Duration) -> bool {
        let count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        let (count, _) = self
            .cond
            .wait_timeout_while(count, timeout, |c| *c == seen)
            .unwrap_or_else(PoisonError::into_inner);
        *count != seen
    }
}

struct Shared {
    callbacks: Callbacks,
    abi_major: u16,
    abi_minor: u16,
    max_log_level: u32,
    /// False once the instance is destroyed: the callbacks are dead then. Calls hold it for
    /// reading; `close` waits for them and flips it.
    alive: RwLock<bool>,
    /// Streamed answers under way, woken by `on_http_writable`.
    streams: Mutex<HashMap<u64, Arc<Signal>>>,
}

// SAFETY: the header makes `log`, `http_respond`, `frame_release`, `fail_reason` and the four
// streaming functions [any-thread], and `ctx` is
// only ever passed back to them. `frame_retain` is [delivery]: it is only reached through
// `Frame::retain`, and a `Frame` cannot leave the delivery thread (it is neither Send nor Sync).
unsafe impl Send for Shared {}
// SAFETY: as above; nothing in `Shared` is mutated except `alive` and `streams`, behind locks.
unsafe impl Sync for Shared {}

/// The host that created this instance: its ABI version, its log level, its log.
///
/// Cheap to clone and usable from any thread. Valid until the instance is destroyed; after that
/// every call through it does nothing.
#[derive(Clone)]
pub struct HostHandle(Arc<Shared>);

impl HostHandle {
    /// Reads and checks the host's table.
    ///
    /// # Safety
    /// `host` is null or points to a `stackctl_host` readable for its first `struct_size`
    /// bytes, whose callbacks stay valid until `destroy` returns (the header's promise).
    pub(crate) unsafe fn from_raw(host: *const abi::Host) -> Result<Self, Error> {
        if host.is_null() {
            return Err(Error::failed("the host passed a NULL stackctl_host"));
        }
        // SAFETY: non-null; the first fields exist in every version of the struct.
        let (size, major, minor) =
            unsafe { ((*host).struct_size, (*host).abi_major, (*host).abi_minor) };
        if major != abi::ABI_MAJOR {
            return Err(Error::failed(format!(
                "the host speaks sink ABI {major}.{minor}, this plugin was built for {}.{}",
                abi::ABI_MAJOR,
                abi::ABI_MINOR
            )));
        }
        if !covers(size, HOST_V1_0) {
            return Err(Error::failed(format!(
                "the host's stackctl_host is {size} bytes, shorter than ABI 1.0's {HOST_V1_0}"
            )));
        }
        // SAFETY: `struct_size` covers every 1.0 field. The callbacks are read as `Option`s
        // (same layout; NULL is `None`) because a C host may leave one NULL, which a bare
        // function pointer must never hold.
        let (ctx, max_log_level, log, respond, retain, release) = unsafe {
            (
                (*host).host_ctx,
                (*host).max_log_level,
                (&raw const (*host).log).cast::<Option<LogFn>>().read(),
                (&raw const (*host).http_respond)
                    .cast::<Option<RespondFn>>()
                    .read(),
                (&raw const (*host).frame_retain)
                    .cast::<Option<FrameFn>>()
                    .read(),
                (&raw const (*host).frame_release)
                    .cast::<Option<FrameFn>>()
                    .read(),
            )
        };
        let (Some(log), Some(http_respond), Some(frame_retain), Some(frame_release)) =
            (log, respond, retain, release)
        else {
            return Err(Error::failed(
                "the host left a callback of stackctl_host NULL",
            ));
        };
        let fail_reason = if covers(size, HOST_V1_1) {
            // SAFETY: `struct_size` covers the 1.1 field; read as an `Option` (NULL is `None`).
            unsafe { (&raw const (*host).fail_reason).read() }
        } else {
            None
        };
        let streaming = if covers(size, HOST_V1_2) {
            // SAFETY: `struct_size` covers the 1.2 fields; read as `Option`s (NULL is `None`).
            let (start, chunk, end, abort) = unsafe {
                (
                    (&raw const (*host).http_respond_start).read(),
                    (&raw const (*host).http_respond_chunk).read(),
                    (&raw const (*host).http_respond_end).read(),
                    (&raw const (*host).http_respond_abort).read(),
                )
            };
            match (start, chunk, end, abort) {
                (Some(start), Some(chunk), Some(end), Some(abort)) => Some(Streaming {
                    start,
                    chunk,
                    end,
                    abort,
                }),
                _ => None,
            }
        } else {
            None
        };
        Ok(Self(Arc::new(Shared {
            callbacks: Callbacks {
                ctx,
                log,
                http_respond,
                frame_retain,
                frame_release,
                fail_reason,
                streaming,
            },
            abi_major: major,
            abi_minor: minor,
            max_log_level,
            alive: RwLock::new(true),
            streams: Mutex::default(),
        })))
    }

    /// The ABI version the host speaks, `(major, minor)`.
    pub fn abi_version(&self) -> (u16, u16) {
        (self.0.abi_major, self.0.abi_minor)
    }

    /// The most verbose level the host wants, or `None` when it wants no log at all.
    pub fn max_log_level(&self) -> Option<Level> {
        match self.0.max_log_level {
            0 => None,
            abi::log_level::ERROR => Some(Level::ERROR),
            abi::log_level::WARN => Some(Level::WARN),
            abi::log_level::INFO => Some(Level::INFO),
            abi::log_level::DEBUG => Some(Level::DEBUG),
            _ => Some(Level::TRACE),
        }
    }

    /// Writes one line to stackctl's log, bypassing `tracing` (which reaches the same place).
    /// Lines above [`max_log_level`](Self::max_log_level) are dropped.
    pub fn log(&self, level: Level, target: &str, message: &str) {
        self.log_number(level_number(level), target, message);
    }

    /// [`log`](Self::log) with the ABI's level number.
    pub(crate) fn log_number(&self, level: u32, target: &str, message: &str) {
        if level > self.0.max_log_level {
            return;
        }
        self.call(|c| {
            // SAFETY: `log` is [any-thread] and copies both strings before returning; they are
            // borrowed for the duration of the call.
            unsafe { (c.log)(c.ctx, level, abi::Str::new(target), abi::Str::new(message)) }
        });
    }

    /// The host's `max_log_level` as a number (`stackctl_log_level`).
    pub(crate) fn max_log_number(&self) -> u32 {
        self.0.max_log_level
    }

    /// Answers request `id` ([any-thread]; the host copies headers and body).
    pub(crate) fn respond(&self, id: u64, status: u16, headers: &[abi::Header], body: &[u8]) {
        self.call(|c| {
            // SAFETY: [any-thread]; both slices are valid for the call and copied by the host.
            unsafe {
                (c.http_respond)(
                    c.ctx,
                    id,
                    status,
                    headers.as_ptr(),
                    headers.len(),
                    body.as_ptr(),
                    body.len(),
                );
            }
        });
    }

    /// Whether the host streams answers (ABI 1.2).
    pub fn can_stream(&self) -> bool {
        self.0.callbacks.streaming.is_some()
    }

    /// Starts a streamed answer to `id` (a `stackctl_stream_status`; `CLOSED` from a host
    /// that does not stream, or once destroyed), registering its wake-up signal on success.
    pub(crate) fn stream_start(
        &self,
        id: u64,
        status: u16,
        headers: &[abi::Header],
        length: Option<u64>,
    ) -> (i32, Option<Arc<Signal>>) {
        let signal = Arc::new(Signal::default());
        self.streams().insert(id, signal.clone());
        let length = length.and_then(|l| i64::try_from(l).ok()).unwrap_or(-1);
        let mut out = abi::stream::CLOSED;
        self.call(|c| {
            if let Some(s) = c.streaming {
                // SAFETY: [any-thread]; the headers are valid for the call and copied.
                out = unsafe {
                    (s.start)(c.ctx, id, status, headers.as_ptr(), headers.len(), length)
                };
            }
        });
        if out == abi::stream::OK {
            (out, Some(signal))
        } else {
            self.streams().remove(&id);
            (out, None)
        }
    }

    /// The next bytes of streamed answer `id` (a `stackctl_stream_status`).
    pub(crate) fn stream_chunk(&self, id: u64, data: &[u8]) -> i32 {
        let mut out = abi::stream::CLOSED;
        self.call(|c| {
            if let Some(s) = c.streaming {
                // SAFETY: [any-thread]; `data` is valid for the call and copied.
                out = unsafe { (s.chunk)(c.ctx, id, data.as_ptr(), data.len()) };
            }
        });
        out
    }

    /// Ends (`abort` false) or aborts streamed answer `id`, and forgets its signal.
    pub(crate) fn stream_finish(&self, id: u64, abort: bool) {
        self.streams().remove(&id);
        self.call(|c| {
            if let Some(s) = c.streaming {
                let f = if abort { s.abort } else { s.end };
                // SAFETY: [any-thread].
                unsafe { f(c.ctx, id) }
            }
        });
    }

    /// `on_http_writable`: wakes whoever writes streamed answer `id`.
    pub(crate) fn writable(&self, id: u64) {
        let signal = self.streams().get(&id).cloned();
        if let Some(signal) = signal {
            signal.bump();
        }
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Signal>>> {
        self.0
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells the host why the plugin is about to return a failure (ABI 1.1; nothing with a 1.0
    /// host). The host shows it with the failure.
    pub(crate) fn fail_reason(&self, message: &str) {
        self.call(|c| {
            if let Some(f) = c.fail_reason {
                // SAFETY: [any-thread]; the host copies the string before returning.
                unsafe { f(c.ctx, abi::Str::new(message)) }
            }
        });
    }

    /// Keeps `frame` beyond `on_frame`.
    ///
    /// # Safety
    /// Called on the delivery thread, during the `on_frame` call that received `frame`.
    pub(crate) unsafe fn retain(&self, frame: *const abi::Frame) {
        self.call(|c| {
            // SAFETY: the caller promises the [delivery]-during-on_frame context.
            unsafe { (c.frame_retain)(c.ctx, frame) }
        });
    }

    /// Ends one retain of `frame`.
    ///
    /// # Safety
    /// `frame` was retained through [`retain`](Self::retain) and is released once per retain.
    pub(crate) unsafe fn release(&self, frame: *const abi::Frame) {
        self.call(|c| {
            // SAFETY: [any-thread]; the caller pairs it with one retain.
            unsafe { (c.frame_release)(c.ctx, frame) }
        });
    }

    /// Marks the host dead: waits for calls in flight, then makes every later call a no-op.
    pub(crate) fn close(&self) {
        *self.0.alive.write().unwrap_or_else(PoisonError::into_inner) = false;
    }

    /// Whether both handles are the same host (the same `create`).
    pub(crate) fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Runs `f` with the callbacks, unless the host is closed.
    fn call(&self, f: impl FnOnce(&Callbacks)) {
        let alive = self.0.alive.read().unwrap_or_else(PoisonError::into_inner);
        if *alive {
            f(&self.0.callbacks);
        }
    }
}

impl fmt::Debug for HostHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostHandle")
            .field("abi_version", &self.abi_version())
            .field("max_log_level", &self.max_log_level())
            .finish_non_exhaustive()
    }
}

/// The ABI's number for a `tracing` level (`stackctl_log_level`).
pub(crate) fn level_number(level: Level) -> u32 {
    match level {
        Level::ERROR => abi::log_level::ERROR,
        Level::WARN => abi::log_level::WARN,
        Level::INFO => abi::log_level::INFO,
        Level::DEBUG => abi::log_level::DEBUG,
        Level::TRACE => abi::log_level::TRACE,
    }
}
