//! The sink plugin ABI: `#[repr(C)]` mirrors of `include/stackctl_sink.h`, which is the
//! specification (threads, ownership and lifetimes are documented there, on every item).
//!
//! This crate holds only the contract. Rust sinks use `stackctl-sink-sdk`, which wraps it in a
//! safe trait; stackctl's plugin host uses it directly. `tests/layout.rs` compiles the header
//! with the system C compiler and checks every size and offset against these definitions.
#![allow(unsafe_code)] // `Send`/`Sync` for the raw-pointer tables, as the header allows.

use std::ffi::c_void;

/// First field of [`Sink`]: "SINK" in little-endian ASCII.
pub const MAGIC: u32 = 0x4B4E_4953;
/// Major ABI version: a plugin of another major is refused.
pub const ABI_MAJOR: u16 = 1;
/// Minor ABI version: grows when fields are appended (1.1: `on_detections`; 1.2: streamed
/// HTTP answers).
pub const ABI_MINOR: u16 = 2;
/// The one symbol a plugin exports.
pub const ENTRY_SYMBOL: &str = "stackctl_sink_entry";

/// A borrowed UTF-8 string, not nul-terminated (`stackctl_str`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Str {
    /// First byte; may be null when `len` is 0.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl Str {
    /// An empty string.
    pub const EMPTY: Self = Self {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// Borrows `s`. The result is valid as long as `s`.
    pub const fn new(s: &str) -> Self {
        Self {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }
}

// SAFETY: a `Str` is a pointer to immutable bytes; the tables holding them are static and
// shared between threads, which the header allows ([any-thread] reads of static data).
unsafe impl Sync for Str {}
// SAFETY: as above: the bytes are never written through it.
unsafe impl Send for Str {}

/// A buffer the plugin allocated, freed by the plugin's `free_buf` (`stackctl_buf`).
#[repr(C)]
#[derive(Debug)]
pub struct Buf {
    /// First byte, or null.
    pub ptr: *mut u8,
    /// Bytes in use.
    pub len: usize,
    /// Capacity, for the plugin's allocator.
    pub cap: usize,
}

impl Buf {
    /// An empty buffer (nothing to free).
    pub const EMPTY: Self = Self {
        ptr: std::ptr::null_mut(),
        len: 0,
        cap: 0,
    };
}

/// `stackctl_status`.
pub type Status = u32;
/// Success.
pub const STATUS_OK: Status = 0;
/// The plugin's configuration section is wrong.
pub const STATUS_ERR_CONFIG: Status = 1;
/// Anything else failed.
pub const STATUS_ERR_FAILED: Status = 2;
/// A panic was caught at the boundary.
pub const STATUS_ERR_PANIC: Status = 3;

/// `stackctl_log_level` values.
pub mod log_level {
    /// Errors.
    pub const ERROR: u32 = 1;
    /// Warnings.
    pub const WARN: u32 = 2;
    /// Information.
    pub const INFO: u32 = 3;
    /// Debugging.
    pub const DEBUG: u32 = 4;
    /// Tracing.
    pub const TRACE: u32 = 5;
}

/// `STACKCTL_FRAME_IDR`.
pub const FRAME_IDR: u32 = 0x1;
/// `STACKCTL_FRAME_INBAND_PARAMS`.
pub const FRAME_INBAND_PARAMS: u32 = 0x2;

/// One access unit, owned by the host (`stackctl_frame`).
#[repr(C)]
#[derive(Debug)]
pub struct Frame {
    /// The host's `sizeof(stackctl_frame)`.
    pub struct_size: u32,
    /// `FRAME_*` flags.
    pub flags: u32,
    /// The access unit, Annex-B.
    pub data: *const u8,
    /// Its length.
    pub len: usize,
    /// The camera's counter.
    pub frame_number: u64,
    /// Capture time, `CLOCK_MONOTONIC` nanoseconds.
    pub timestamp_ns: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The writer's index.
    pub sequence: u32,
    /// Camera restarts seen.
    pub generation: u32,
    /// 0 day, 1 night.
    pub camera_id: i32,
    /// Zero.
    pub reserved: u32,
    /// Latest SPS (no start code), or null.
    pub sps: *const u8,
    /// Its length.
    pub sps_len: usize,
    /// Latest PPS (no start code), or null.
    pub pps: *const u8,
    /// Its length.
    pub pps_len: usize,
}

/// `STACKCTL_DETECTIONS_MAX`: the most items the host hands over in one result.
pub const DETECTIONS_MAX: usize = 64;
/// `STACKCTL_CLASS_NAME_MAX`: the longest class name the host hands over, in bytes.
pub const CLASS_NAME_MAX: usize = 63;

/// One object the detector found, owned by the host (`stackctl_detection`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Detection {
    /// Its class, e.g. `cat`.
    pub class_name: Str,
    /// The detector's confidence, 0..1.
    pub confidence: f32,
    /// Left edge, picture pixels.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub w: i32,
    /// Height.
    pub h: i32,
}

/// One result of the detector, owned by the host (`stackctl_detections`, ABI 1.1).
#[repr(C)]
#[derive(Debug)]
pub struct Detections {
    /// The host's `sizeof(stackctl_detections)`.
    pub struct_size: u32,
    /// The frame the detector ran on.
    pub frame_number: u64,
    /// That frame's capture time, `CLOCK_MONOTONIC` nanoseconds.
    pub timestamp_ns: u64,
    /// `count` items, or null when there are none.
    pub items: *const Detection,
    /// Their number.
    pub count: u32,
}

/// `on_detections`'s type.
pub type OnDetectionsFn =
    unsafe extern "C" fn(instance: *mut c_void, detections: *const Detections) -> Status;

/// An HTTP header (`stackctl_header`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// Lower-case name.
    pub name: Str,
    /// Value.
    pub value: Str,
}

/// An HTTP request, owned by the host (`stackctl_http_request`).
#[repr(C)]
#[derive(Debug)]
pub struct HttpRequest {
    /// The host's `sizeof(stackctl_http_request)`.
    pub struct_size: u32,
    /// Zero.
    pub reserved: u32,
    /// Pass to `http_respond` exactly once.
    pub id: u64,
    /// Method.
    pub method: Str,
    /// Path.
    pub path: Str,
    /// Query string, without `?`.
    pub query: Str,
    /// Headers.
    pub headers: *const Header,
    /// Their number.
    pub header_count: usize,
    /// Body.
    pub body: *const u8,
    /// Its length.
    pub body_len: usize,
}

/// `STACKCTL_HTTP_BODY_MAX`: the largest request body a plugin is handed, in bytes.
pub const HTTP_BODY_MAX: usize = 1024 * 1024;
/// `STACKCTL_HTTP_BODY_TIMEOUT_MS`: how long the host waits for a request's body.
pub const HTTP_BODY_TIMEOUT_MS: u64 = 10_000;
/// `STACKCTL_HTTP_ANSWER_TIMEOUT_MS`: how long a plugin may take to answer a request.
pub const HTTP_ANSWER_TIMEOUT_MS: u64 = 30_000;
/// `STACKCTL_HTTP_STREAM_BUFFER`: the most bytes a streamed answer holds between the plugin and
/// the connection; also the largest chunk.
pub const HTTP_STREAM_BUFFER: usize = 128 * 1024;
/// `STACKCTL_HTTP_WRITE_TIMEOUT_MS`: the default write time-out of a streamed answer.
pub const HTTP_WRITE_TIMEOUT_MS: u64 = 30_000;
/// `STACKCTL_HTTP_STREAMS_MAX`: streamed answers one plugin may have open at once.
pub const HTTP_STREAMS_MAX: usize = 64;

/// `stackctl_stream_status` values: what `http_respond_chunk` (and `_start`) return.
pub mod stream {
    /// Taken, all of it.
    pub const OK: i32 = 0;
    /// Nothing taken: no room; try again after `on_http_writable`.
    pub const WOULD_BLOCK: i32 = 1;
    /// The answer is over (client gone, time-out, ended, aborted, unknown id).
    pub const CLOSED: i32 = 2;
    /// Too large a chunk, more than announced, or a start that cannot be sent.
    pub const INVALID: i32 = 3;
}

/// `http_respond_start`'s type (ABI 1.2).
pub type RespondStartFn = unsafe extern "C" fn(
    host_ctx: *mut c_void,
    request_id: u64,
    status: u16,
    headers: *const Header,
    header_count: usize,
    content_length: i64,
) -> i32;
/// `http_respond_chunk`'s type (ABI 1.2).
pub type RespondChunkFn = unsafe extern "C" fn(
    host_ctx: *mut c_void,
    request_id: u64,
    data: *const u8,
    len: usize,
) -> i32;
/// `http_respond_end`'s and `http_respond_abort`'s type (ABI 1.2).
pub type RespondEndFn = unsafe extern "C" fn(host_ctx: *mut c_void, request_id: u64);
/// `on_http_writable`'s type (ABI 1.2).
pub type OnHttpWritableFn = unsafe extern "C" fn(instance: *mut c_void, request_id: u64);

/// `STACKCTL_CONFIG_MAX_VALUES`: the most entries of a pre-parsed section.
pub const CONFIG_MAX_VALUES: usize = 1024;
/// `STACKCTL_CONFIG_MAX_DEPTH`: the deepest nesting of a pre-parsed section.
pub const CONFIG_MAX_DEPTH: usize = 16;
/// `STACKCTL_MESSAGE_MAX`: the longest error message or failure reason kept, in bytes.
pub const MESSAGE_MAX: usize = 1024;

/// `stackctl_value_type` values.
pub mod value_type {
    /// A string (also dates and times, as TOML text).
    pub const STRING: u32 = 1;
    /// A 64-bit integer.
    pub const INTEGER: u32 = 2;
    /// A double.
    pub const FLOAT: u32 = 3;
    /// A boolean (`integer` 1 or 0).
    pub const BOOL: u32 = 4;
}

/// One value of a plugin's pre-parsed section (`stackctl_config_value`, ABI 1.1).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ConfigValue {
    /// Dotted key (`a.b`, arrays `a.0`).
    pub key: Str,
    /// A [`value_type`].
    pub value_type: u32,
    /// Zero.
    pub reserved: u32,
    /// STRING: the value.
    pub string: Str,
    /// INTEGER: the value; BOOL: 1 or 0.
    pub integer: i64,
    /// FLOAT: the value; INTEGER: the value as a double.
    pub number: f64,
}

/// What the host offers (`stackctl_host`).
#[repr(C)]
#[derive(Debug)]
pub struct Host {
    /// The host's `sizeof(stackctl_host)`.
    pub struct_size: u32,
    /// The host's major ABI version.
    pub abi_major: u16,
    /// The host's minor ABI version.
    pub abi_minor: u16,
    /// First argument of every callback.
    pub host_ctx: *mut c_void,
    /// Highest level worth sending.
    pub max_log_level: u32,
    /// Zero.
    pub reserved: u32,
    /// Logs a line.
    pub log: unsafe extern "C" fn(host_ctx: *mut c_void, level: u32, target: Str, message: Str),
    /// Answers a request.
    pub http_respond: unsafe extern "C" fn(
        host_ctx: *mut c_void,
        request_id: u64,
        status: u16,
        headers: *const Header,
        header_count: usize,
        body: *const u8,
        body_len: usize,
    ),
    /// Keeps a frame beyond `on_frame`.
    pub frame_retain: unsafe extern "C" fn(host_ctx: *mut c_void, frame: *const Frame),
    /// Ends one retain.
    pub frame_release: unsafe extern "C" fn(host_ctx: *mut c_void, frame: *const Frame),
    /// ABI 1.1: the plugin's section pre-parsed, `config_count` entries (null when none).
    pub config: *const ConfigValue,
    /// ABI 1.1: their number.
    pub config_count: usize,
    /// ABI 1.1: why the plugin is about to return non-OK (one line, copied).
    pub fail_reason: Option<unsafe extern "C" fn(host_ctx: *mut c_void, message: Str)>,
    /// ABI 1.2: starts a streamed answer.
    pub http_respond_start: Option<RespondStartFn>,
    /// ABI 1.2: the next bytes of a streamed answer.
    pub http_respond_chunk: Option<RespondChunkFn>,
    /// ABI 1.2: ends a streamed answer.
    pub http_respond_end: Option<RespondEndFn>,
    /// ABI 1.2: aborts a streamed answer (the connection is closed mid-message).
    pub http_respond_abort: Option<RespondEndFn>,
}

/// `STACKCTL_HOST_SIZE_1_2`: the end of `http_respond_abort`, the last field of ABI 1.2.
pub const HOST_V1_2_SIZE: usize =
    std::mem::offset_of!(Host, http_respond_abort) + std::mem::size_of::<Option<RespondEndFn>>();

/// The plugin's table (`stackctl_sink`).
#[repr(C)]
#[derive(Debug)]
pub struct Sink {
    /// [`MAGIC`].
    pub magic: u32,
    /// The plugin's major ABI version.
    pub abi_major: u16,
    /// The plugin's minor ABI version.
    pub abi_minor: u16,
    /// The plugin's `sizeof(stackctl_sink)`.
    pub struct_size: u32,
    /// Zero.
    pub reserved: u32,
    /// The plugin's name.
    pub name: Str,
    /// The plugin's version.
    pub version: Str,
    /// Path prefixes it serves.
    pub routes: *const Str,
    /// Their number.
    pub route_count: usize,
    /// Creates an instance.
    pub create: unsafe extern "C" fn(
        host: *const Host,
        config_toml: Str,
        instance: *mut *mut c_void,
        error: *mut Buf,
    ) -> Status,
    /// Starts it.
    pub start: unsafe extern "C" fn(instance: *mut c_void, error: *mut Buf) -> Status,
    /// One access unit; non-OK detaches the plugin.
    pub on_frame: unsafe extern "C" fn(instance: *mut c_void, frame: *const Frame) -> Status,
    /// One HTTP request; non-OK means it will not answer (the host answers 500, detaches it).
    pub on_http: unsafe extern "C" fn(instance: *mut c_void, request: *const HttpRequest) -> Status,
    /// Its metrics.
    pub metrics: unsafe extern "C" fn(instance: *mut c_void, out: *mut Buf) -> Status,
    /// Stops it.
    pub stop: unsafe extern "C" fn(instance: *mut c_void),
    /// Frees it.
    pub destroy: unsafe extern "C" fn(instance: *mut c_void),
    /// Frees a plugin-owned buffer.
    pub free_buf: unsafe extern "C" fn(buf: Buf),
    /// ABI 1.1: one result of the detector; `None` (NULL) when not wanted. Read only when
    /// `struct_size` covers it ([`SINK_V1_1_SIZE`]).
    pub on_detections: Option<OnDetectionsFn>,
    /// ABI 1.2: a streamed answer has room again, or was closed; `None` (NULL): the plugin
    /// polls. Read only when `struct_size` covers it ([`SINK_V1_2_SIZE`]).
    pub on_http_writable: Option<OnHttpWritableFn>,
}

// SAFETY: the table is immutable static data plus function pointers, shared read-only between
// threads as the header specifies.
unsafe impl Sync for Sink {}

/// The entry point's type.
pub type EntryFn = unsafe extern "C" fn() -> *const Sink;

/// Offset of the fields every version has: what the host reads before trusting `struct_size`.
pub const SINK_PREFIX_SIZE: usize = std::mem::offset_of!(Sink, name);

/// `sizeof(stackctl_sink)` in ABI 1.0 (`STACKCTL_SINK_SIZE_1_0`). A table of any 1.0+ plugin
/// is at least this long; fields appended by later minors are read only when `struct_size`
/// covers them.
pub const SINK_V1_0_SIZE: usize = std::mem::offset_of!(Sink, on_detections);

/// The end of `on_detections`, the last field of ABI 1.1: a table whose `struct_size` is at
/// least this has the field.
pub const SINK_V1_1_SIZE: usize =
    std::mem::offset_of!(Sink, on_detections) + std::mem::size_of::<Option<OnDetectionsFn>>();

/// The end of `on_http_writable`, the last field of ABI 1.2.
pub const SINK_V1_2_SIZE: usize =
    std::mem::offset_of!(Sink, on_http_writable) + std::mem::size_of::<Option<OnHttpWritableFn>>();

/// The end of `stackctl_detections`' last 1.1 field (`count`).
pub const DETECTIONS_V1_1_SIZE: usize =
    std::mem::offset_of!(Detections, count) + std::mem::size_of::<u32>();

/// Offsets of the table's function pointers (none may be null; the host checks them as raw
/// pointers before it treats the table as a [`Sink`]).
pub const SINK_FN_OFFSETS: [(&str, usize); 8] = [
    ("create", std::mem::offset_of!(Sink, create)),
    ("start", std::mem::offset_of!(Sink, start)),
    ("on_frame", std::mem::offset_of!(Sink, on_frame)),
    ("on_http", std::mem::offset_of!(Sink, on_http)),
    ("metrics", std::mem::offset_of!(Sink, metrics)),
    ("stop", std::mem::offset_of!(Sink, stop)),
    ("destroy", std::mem::offset_of!(Sink, destroy)),
    ("free_buf", std::mem::offset_of!(Sink, free_buf)),
];
