//! The C example sink (`plugins/examples/c-meta`) builds against the header as strict C99, as a
//! shared library exporting `stackctl_sink_entry`, passes its own C test host
//! (`test_meta_sink.c`, what `make test` runs), and works when driven from Rust through this
//! crate's mirror: the check that the Rust function-pointer types match the header's (a layout
//! comparison cannot see a wrong return type or argument).
// A failed expectation is the test failing; loading a C plugin is unsafe by nature.
#![allow(clippy::expect_used, clippy::unwrap_used, unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use stackctl_plugin_abi as abi;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const FLAGS: [&str; 6] = [
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-pedantic",
    "-Werror",
    "-pthread",
];

fn example(name: &str) -> PathBuf {
    Path::new(MANIFEST_DIR)
        .join("../examples/c-meta")
        .join(name)
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stackctl-c-meta-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs the target's C compiler with the example's flags plus `args`.
fn cc(args: &[&std::ffi::OsStr]) {
    let target = env!("STACKCTL_BUILD_TARGET");
    let compiler = cc::Build::new()
        .target(target)
        .host(target)
        .opt_level(0)
        .cargo_metadata(false)
        .try_get_compiler()
        .expect("a C compiler for the target");
    let out = compiler
        .to_command()
        .args(FLAGS)
        .arg("-I")
        .arg(Path::new(MANIFEST_DIR).join("include"))
        .args(args)
        .output()
        .expect("run the C compiler (install gcc)");
    assert!(
        out.status.success(),
        "the C example does not compile cleanly:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_c_example_builds_as_a_shared_library() {
    let dir = scratch_dir("so");
    let library = dir.join("libsink_meta.so");
    cc(&[
        "-shared".as_ref(),
        "-fPIC".as_ref(),
        "-o".as_ref(),
        library.as_os_str(),
        example("meta_sink.c").as_os_str(),
    ]);
    assert!(library.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_c_example_passes_its_c_test_host() {
    let dir = scratch_dir("test");
    let exe = dir.join("test_meta_sink");
    cc(&[
        "-o".as_ref(),
        exe.as_os_str(),
        example("test_meta_sink.c").as_os_str(),
        example("meta_sink.c").as_os_str(),
    ]);
    let out = Command::new(&exe)
        .arg(dir.join("meta.txt"))
        .output()
        .expect("run the C test host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

// --- driving the C plugin from Rust through the mirror -----------------------------------------

unsafe extern "C" {
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *const c_char;
}
const RTLD_NOW: c_int = 2;

/// What the plugin did to the host.
#[derive(Default)]
struct Record {
    logs: Mutex<Vec<String>>,
    statuses: Mutex<Vec<u16>>,
}

unsafe fn text(s: abi::Str) -> String {
    // SAFETY: the plugin passes `len` valid bytes for the call.
    String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(s.ptr, s.len) }).into_owned()
}

unsafe extern "C" fn host_log(ctx: *mut c_void, _level: u32, _target: abi::Str, message: abi::Str) {
    // SAFETY: `ctx` is the test's `Record`; `message` is valid for the call.
    let (record, message) = unsafe { (&*ctx.cast::<Record>(), text(message)) };
    record.logs.lock().unwrap().push(message);
}

unsafe extern "C" fn host_respond(
    ctx: *mut c_void,
    _id: u64,
    status: u16,
    _headers: *const abi::Header,
    _header_count: usize,
    _body: *const u8,
    _body_len: usize,
) {
    // SAFETY: `ctx` is the test's `Record`.
    let record = unsafe { &*ctx.cast::<Record>() };
    record.statuses.lock().unwrap().push(status);
}

unsafe extern "C" fn host_frame(_: *mut c_void, _: *const abi::Frame) {}

/// Reads a plugin buffer and gives it back through the plugin's `free_buf` (by value).
fn take(sink: &abi::Sink, buf: abi::Buf) -> String {
    let text = if buf.ptr.is_null() {
        String::new()
    } else {
        // SAFETY: the plugin made `len` bytes at `ptr`.
        String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) })
            .into_owned()
    };
    // SAFETY: the plugin's own buffer, freed once.
    unsafe { (sink.free_buf)(buf) };
    text
}

#[cfg(target_os = "linux")]
#[test]
fn the_c_example_works_through_the_rust_mirror() {
    let dir = scratch_dir("mirror");
    let library = dir.join("libsink_meta.so");
    cc(&[
        "-shared".as_ref(),
        "-fPIC".as_ref(),
        "-o".as_ref(),
        library.as_os_str(),
        example("meta_sink.c").as_os_str(),
    ]);
    let path = CString::new(library.to_str().unwrap()).unwrap();
    // SAFETY: a C library with no initializers; never closed, as stackctl never closes one.
    let handle = unsafe { dlopen(path.as_ptr(), RTLD_NOW) };
    // SAFETY: dlerror returns a valid C string after a failure.
    assert!(!handle.is_null(), "dlopen: {:?}", unsafe {
        CStr::from_ptr(dlerror())
    });
    let symbol = CString::new(abi::ENTRY_SYMBOL).unwrap();
    // SAFETY: a live handle and a C string.
    let entry = unsafe { dlsym(handle, symbol.as_ptr()) };
    assert!(!entry.is_null(), "stackctl_sink_entry is exported");
    // SAFETY: the symbol has the header's entry type.
    let entry: abi::EntryFn = unsafe { std::mem::transmute::<*mut c_void, abi::EntryFn>(entry) };
    // SAFETY: the entry returns a static table.
    let sink: &abi::Sink = unsafe { &*entry() };
    assert_eq!(sink.magic, abi::MAGIC);
    assert_eq!(sink.struct_size as usize, size_of::<abi::Sink>());

    let record = Box::new(Record::default());
    let output = dir.join("meta.txt");
    let output_text = output.display().to_string();
    let config = [abi::ConfigValue {
        key: abi::Str::new("output"),
        value_type: abi::value_type::STRING,
        reserved: 0,
        string: abi::Str::new(&output_text),
        integer: 0,
        number: 0.0,
    }];
    let mut host = abi::Host {
        struct_size: size_of::<abi::Host>() as u32,
        abi_major: abi::ABI_MAJOR,
        abi_minor: abi::ABI_MINOR,
        host_ctx: (&*record as *const Record).cast_mut().cast(),
        max_log_level: abi::log_level::INFO,
        reserved: 0,
        log: host_log,
        http_respond: host_respond,
        frame_retain: host_frame,
        frame_release: host_frame,
        config: std::ptr::null(),
        config_count: 0,
        fail_reason: None,
        http_respond_start: None,
        http_respond_chunk: None,
        http_respond_end: None,
        http_respond_abort: None,
    };

    // A config error, its message in a plugin buffer.
    let mut instance = std::ptr::null_mut();
    let mut error = abi::Buf::EMPTY;
    // SAFETY: valid host, config and out-parameters for the call.
    let status = unsafe { (sink.create)(&host, abi::Str::new(""), &mut instance, &mut error) };
    assert_eq!(status, abi::STATUS_ERR_CONFIG);
    assert!(take(sink, error).starts_with("output: missing"));

    // A life, configured through the pre-parsed section.
    host.config = config.as_ptr();
    host.config_count = config.len();
    let mut error = abi::Buf::EMPTY;
    // SAFETY: as above; `host`, `config` and `record` outlive the instance.
    let status = unsafe { (sink.create)(&host, abi::Str::EMPTY, &mut instance, &mut error) };
    assert_eq!(status, abi::STATUS_OK, "{}", take(sink, error));
    // SAFETY: a live instance, a valid out-parameter.
    let status = unsafe { (sink.start)(instance, &mut error) };
    assert_eq!(status, abi::STATUS_OK, "{}", take(sink, error));
    let data = [0_u8, 0, 0, 1, 0x65, 0x88];
    for number in [1_u64, 2] {
        let frame = abi::Frame {
            struct_size: size_of::<abi::Frame>() as u32,
            flags: if number == 1 { abi::FRAME_IDR } else { 0 },
            data: data.as_ptr(),
            len: data.len(),
            frame_number: number,
            timestamp_ns: number * 1_000,
            width: 640,
            height: 480,
            sequence: number as u32,
            generation: 0,
            camera_id: 1,
            reserved: 0,
            sps: std::ptr::null(),
            sps_len: 0,
            pps: std::ptr::null(),
            pps_len: 0,
        };
        // SAFETY: a live instance; the frame outlives the call.
        let status = unsafe { (sink.on_frame)(instance, &frame) };
        assert_eq!(status, abi::STATUS_OK);
    }
    let request = abi::HttpRequest {
        struct_size: size_of::<abi::HttpRequest>() as u32,
        reserved: 0,
        id: 5,
        method: abi::Str::new("GET"),
        path: abi::Str::new("/x"),
        query: abi::Str::EMPTY,
        headers: std::ptr::null(),
        header_count: 0,
        body: std::ptr::null(),
        body_len: 0,
    };
    // SAFETY: a live instance; the request outlives the call.
    let status = unsafe { (sink.on_http)(instance, &request) };
    assert_eq!(status, abi::STATUS_OK);
    assert_eq!(*record.statuses.lock().unwrap(), [404]);
    let mut out = abi::Buf::EMPTY;
    // SAFETY: a live instance, a valid out-parameter.
    let status = unsafe { (sink.metrics)(instance, &mut out) };
    assert_eq!(status, abi::STATUS_OK);
    assert!(take(sink, out).contains("\nsink_meta_lines_total 2\n"));
    // SAFETY: a live instance, stopped then destroyed once.
    unsafe {
        (sink.stop)(instance);
        (sink.destroy)(instance);
    }
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "1 1000 6 1 640 480\n2 2000 6 0 640 480\n"
    );
    assert_eq!(
        *record.logs.lock().unwrap(),
        ["appending one line per frame"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
