//! A host in Rust for the tests: `extern "C"` callbacks that record every call, frames the test
//! owns, and helpers that drive a plugin's table the way stackctl does.
#![allow(unsafe_code, dead_code)] // The host side of the C ABI; not every test uses every helper.

use std::ffi::c_void;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use stackctl_sink_sdk::abi;

/// One `http_respond` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub id: u64,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Everything the plugin did to the host.
#[derive(Debug, Default)]
pub struct Record {
    pub logs: Mutex<Vec<(u32, String, String)>>,
    pub responses: Mutex<Vec<Response>>,
    pub retained: Mutex<Vec<usize>>,
    pub released: Mutex<Vec<usize>>,
    pub fail_reasons: Mutex<Vec<String>>,
    /// Streamed answers (a streaming host): "start STATUS LENGTH", "would_block", "chunk
    /// TEXT", "end", "abort".
    pub streamed: Mutex<Vec<String>>,
    /// The next chunk is answered WOULD_BLOCK (once).
    pub block_next: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

unsafe fn text(s: abi::Str) -> String {
    if s.ptr.is_null() {
        return String::new();
    }
    // SAFETY: the plugin passes `len` bytes valid for the call.
    String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(s.ptr, s.len) }).into_owned()
}

unsafe fn record<'a>(ctx: *mut c_void) -> &'a Record {
    // SAFETY: `host_ctx` is the `Record` of a live `FakeHost`.
    unsafe { &*ctx.cast::<Record>() }
}

unsafe extern "C" fn log(ctx: *mut c_void, level: u32, target: abi::Str, message: abi::Str) {
    // SAFETY: see `record` and `text`.
    let (r, target, message) = unsafe { (record(ctx), text(target), text(message)) };
    lock(&r.logs).push((level, target, message));
}

unsafe extern "C" fn http_respond(
    ctx: *mut c_void,
    id: u64,
    status: u16,
    headers: *const abi::Header,
    header_count: usize,
    body: *const u8,
    body_len: usize,
) {
    // SAFETY: the plugin passes valid arrays for the call.
    unsafe {
        let headers = if header_count == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(headers, header_count)
        };
        let body = if body_len == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(body, body_len)
        };
        lock(&record(ctx).responses).push(Response {
            id,
            status,
            headers: headers
                .iter()
                .map(|h| (text(h.name), text(h.value)))
                .collect(),
            body: String::from_utf8_lossy(body).into_owned(),
        });
    }
}

unsafe extern "C" fn respond_start(
    ctx: *mut c_void,
    _id: u64,
    status: u16,
    _headers: *const abi::Header,
    _header_count: usize,
    length: i64,
) -> i32 {
    // SAFETY: see `record`.
    lock(unsafe { &record(ctx).streamed }).push(format!("start {status} {length}"));
    abi::stream::OK
}

unsafe extern "C" fn respond_chunk(ctx: *mut c_void, _id: u64, data: *const u8, len: usize) -> i32 {
    // SAFETY: see `record`; `len` bytes valid for the call.
    let (r, data) = unsafe { (record(ctx), std::slice::from_raw_parts(data, len)) };
    if r.block_next
        .swap(false, std::sync::atomic::Ordering::SeqCst)
    {
        lock(&r.streamed).push("would_block".to_owned());
        return abi::stream::WOULD_BLOCK;
    }
    lock(&r.streamed).push(format!("chunk {}", String::from_utf8_lossy(data)));
    abi::stream::OK
}

unsafe extern "C" fn respond_end(ctx: *mut c_void, _id: u64) {
    // SAFETY: see `record`.
    lock(unsafe { &record(ctx).streamed }).push("end".to_owned());
}

unsafe extern "C" fn respond_abort(ctx: *mut c_void, _id: u64) {
    // SAFETY: see `record`.
    lock(unsafe { &record(ctx).streamed }).push("abort".to_owned());
}

unsafe extern "C" fn frame_retain(ctx: *mut c_void, frame: *const abi::Frame) {
    // SAFETY: see `record`.
    lock(unsafe { &record(ctx).retained }).push(frame as usize);
}

unsafe extern "C" fn fail_reason(ctx: *mut c_void, message: abi::Str) {
    // SAFETY: see `record` and `text`.
    let (r, message) = unsafe { (record(ctx), text(message)) };
    lock(&r.fail_reasons).push(message);
}

unsafe extern "C" fn frame_release(ctx: *mut c_void, frame: *const abi::Frame) {
    // SAFETY: see `record`.
    lock(unsafe { &record(ctx).released }).push(frame as usize);
}

/// A host: its `stackctl_host` table and what was recorded. Boxed, so pointers stay put.
pub struct FakeHost {
    pub table: abi::Host,
    pub record: Box<Record>,
}

impl FakeHost {
    pub fn new(max_log_level: u32) -> Box<Self> {
        let record = Box::new(Record::default());
        let ctx = (&*record as *const Record).cast_mut().cast::<c_void>();
        Box::new(Self {
            table: abi::Host {
                struct_size: size_of::<abi::Host>() as u32,
                abi_major: abi::ABI_MAJOR,
                abi_minor: abi::ABI_MINOR,
                host_ctx: ctx,
                max_log_level,
                reserved: 0,
                log,
                http_respond,
                frame_retain,
                frame_release,
                config: std::ptr::null(),
                config_count: 0,
                fail_reason: Some(fail_reason),
                http_respond_start: None,
                http_respond_chunk: None,
                http_respond_end: None,
                http_respond_abort: None,
            },
            record,
        })
    }

    /// A host that streams answers (ABI 1.2), recording them in `streamed`.
    pub fn streaming(max_log_level: u32) -> Box<Self> {
        let mut host = Self::new(max_log_level);
        host.table.http_respond_start = Some(respond_start);
        host.table.http_respond_chunk = Some(respond_chunk);
        host.table.http_respond_end = Some(respond_end);
        host.table.http_respond_abort = Some(respond_abort);
        host
    }

    /// Waits (at most 5 s) until the streamed events include `event`; returns them all.
    pub fn wait_streamed(&self, event: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let events = lock(&self.record.streamed).clone();
            if events.iter().any(|e| e == event) {
                return events;
            }
            assert!(Instant::now() < deadline, "no {event:?} in {events:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn fail_reasons(&self) -> Vec<String> {
        lock(&self.record.fail_reasons).clone()
    }

    pub fn logs(&self) -> Vec<(u32, String, String)> {
        lock(&self.record.logs).clone()
    }

    pub fn responses(&self) -> Vec<Response> {
        lock(&self.record.responses).clone()
    }

    pub fn retained(&self) -> Vec<usize> {
        lock(&self.record.retained).clone()
    }

    pub fn released(&self) -> Vec<usize> {
        lock(&self.record.released).clone()
    }

    /// Waits (at most 5 s) for the response to request `id`.
    pub fn wait_response(&self, id: u64) -> Response {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(r) = self.responses().into_iter().find(|r| r.id == id) {
                return r;
            }
            assert!(Instant::now() < deadline, "no response to request {id}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether some log line at `level` contains `needle`.
    pub fn logged(&self, level: u32, needle: &str) -> bool {
        self.logs()
            .iter()
            .any(|(l, _, m)| *l == level && m.contains(needle))
    }
}

/// A frame the test owns: the bytes, SPS/PPS and the `stackctl_frame` pointing to them.
pub struct OwnedFrame {
    pub data: Vec<u8>,
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
    pub raw: abi::Frame,
}

impl OwnedFrame {
    pub fn new(number: u64, timestamp_ns: u64, idr: bool, data: Vec<u8>) -> Box<Self> {
        let mut f = Box::new(Self {
            data,
            sps: vec![0x67, 0x42, 0x00, 0x1f],
            pps: vec![0x68, 0xce, 0x3c, 0x80],
            raw: abi::Frame {
                struct_size: size_of::<abi::Frame>() as u32,
                flags: if idr { abi::FRAME_IDR } else { 0 },
                data: std::ptr::null(),
                len: 0,
                frame_number: number,
                timestamp_ns,
                width: 1920,
                height: 1080,
                sequence: number as u32,
                generation: 0,
                camera_id: 0,
                reserved: 0,
                sps: std::ptr::null(),
                sps_len: 0,
                pps: std::ptr::null(),
                pps_len: 0,
            },
        });
        f.raw.data = f.data.as_ptr();
        f.raw.len = f.data.len();
        f.raw.sps = f.sps.as_ptr();
        f.raw.sps_len = f.sps.len();
        f.raw.pps = f.pps.as_ptr();
        f.raw.pps_len = f.pps.len();
        f
    }
}

/// A host's view of a loaded plugin: its table, and calls in the header's terms.
#[derive(Clone, Copy)]
pub struct Plugin {
    pub table: &'static abi::Sink,
}

/// A live instance.
pub struct Instance(pub *mut c_void);

impl Plugin {
    /// # Safety
    /// `table` is a plugin's table (valid for the process).
    pub unsafe fn new(table: *const abi::Sink) -> Self {
        // SAFETY: the caller's promise.
        let table = unsafe { &*table };
        Self { table }
    }

    /// Reads a plugin buffer and gives it back through `free_buf`.
    pub fn take(&self, buf: abi::Buf) -> String {
        let text = if buf.ptr.is_null() {
            String::new()
        } else {
            // SAFETY: the plugin made `len` bytes at `ptr`.
            String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) })
                .into_owned()
        };
        // SAFETY: a buffer of this plugin, freed once.
        unsafe { (self.table.free_buf)(buf) };
        text
    }

    pub fn create(&self, host: &FakeHost, config: &str) -> Result<Instance, (u32, String)> {
        let mut instance = std::ptr::null_mut();
        let mut error = abi::Buf::EMPTY;
        // SAFETY: a valid host table, a config borrowed for the call, valid out-parameters.
        let status = unsafe {
            (self.table.create)(
                &host.table,
                abi::Str::new(config),
                &mut instance,
                &mut error,
            )
        };
        let message = self.take(error);
        if status == abi::STATUS_OK {
            assert!(!instance.is_null());
            Ok(Instance(instance))
        } else {
            Err((status, message))
        }
    }

    pub fn start(&self, i: &Instance) -> Result<(), (u32, String)> {
        let mut error = abi::Buf::EMPTY;
        // SAFETY: a live instance, a valid out-parameter.
        let status = unsafe { (self.table.start)(i.0, &mut error) };
        let message = self.take(error);
        if status == abi::STATUS_OK {
            Ok(())
        } else {
            Err((status, message))
        }
    }

    pub fn frame(&self, i: &Instance, frame: &OwnedFrame) -> u32 {
        // SAFETY: a live instance; the frame outlives the call.
        unsafe { (self.table.on_frame)(i.0, &frame.raw) }
    }

    /// Sends a request; returns on_http's status.
    pub fn http(&self, i: &Instance, id: u64, method: &str, path: &str, query: &str) -> u32 {
        let headers = [abi::Header {
            name: abi::Str::new("accept"),
            value: abi::Str::new("application/json"),
        }];
        let body = b"request body";
        let request = abi::HttpRequest {
            struct_size: size_of::<abi::HttpRequest>() as u32,
            reserved: 0,
            id,
            method: abi::Str::new(method),
            path: abi::Str::new(path),
            query: abi::Str::new(query),
            headers: headers.as_ptr(),
            header_count: headers.len(),
            body: body.as_ptr(),
            body_len: body.len(),
        };
        // SAFETY: a live instance; the request outlives the call.
        unsafe { (self.table.on_http)(i.0, &request) }
    }

    /// Hands a result to `on_detections` (which must be in the table).
    pub fn detections(&self, i: &Instance, raw: &abi::Detections) -> u32 {
        let f = self
            .table
            .on_detections
            .expect("the table has on_detections");
        // SAFETY: a live instance; the result outlives the call.
        unsafe { f(i.0, raw) }
    }

    pub fn metrics(&self, i: &Instance) -> (u32, String) {
        let mut out = abi::Buf::EMPTY;
        // SAFETY: a live instance, a valid out-parameter.
        let status = unsafe { (self.table.metrics)(i.0, &mut out) };
        (status, self.take(out))
    }

    pub fn stop(&self, i: &Instance) {
        // SAFETY: a live instance.
        unsafe { (self.table.stop)(i.0) }
    }

    /// Calls `on_http_writable` for request `id`.
    pub fn writable(&self, i: &Instance, id: u64) {
        let f = self.table.on_http_writable.expect("on_http_writable");
        // SAFETY: a live instance; [any-thread].
        unsafe { f(i.0, id) }
    }

    pub fn destroy(&self, i: Instance) {
        // SAFETY: a live instance, destroyed once.
        unsafe { (self.table.destroy)(i.0) }
    }
}
