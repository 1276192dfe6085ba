//! The header is the specification and the Rust mirror must match it byte for byte: compile
//! `include/stackctl_sink.h` with the system C compiler, print every size, alignment, offset and
//! constant, and compare them with `stackctl_plugin_abi`. Also compile the header as C99 and as
//! C++ with every warning turned into an error, as its first comment promises.
// A failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use stackctl_plugin_abi as abi;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const WARNINGS: [&str; 4] = ["-Wall", "-Wextra", "-pedantic", "-Werror"];

/// What the C program printed, by kind.
#[derive(Default)]
struct CLayout {
    /// Type → (size, alignment).
    sizes: BTreeMap<String, (usize, usize)>,
    /// (type, field) → (offset, size).
    fields: BTreeMap<(String, String), (usize, usize)>,
    /// Constant name → value.
    consts: BTreeMap<String, u64>,
    /// String macro name → value.
    strings: BTreeMap<String, String>,
}

fn include_dir() -> PathBuf {
    Path::new(MANIFEST_DIR).join("include")
}

fn source(name: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join("tests/c").join(name)
}

/// A fresh directory: tests run in parallel and each removes its own.
fn scratch_dir(name: &str) -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("stackctl-abi-{name}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn compiler(cpp: bool) -> cc::Tool {
    let target = env!("STACKCTL_BUILD_TARGET");
    cc::Build::new()
        .target(target)
        .host(target)
        .opt_level(0)
        .cargo_metadata(false)
        .cpp(cpp)
        .try_get_compiler()
        .expect("the cc crate names a compiler for the target")
}

/// The C side's facts, computed once per test process.
fn c_layout() -> &'static CLayout {
    static LAYOUT: OnceLock<CLayout> = OnceLock::new();
    LAYOUT.get_or_init(compute_c_layout)
}

fn compute_c_layout() -> CLayout {
    let dir = scratch_dir("layout");
    let exe = dir.join("layout");
    let output = compiler(false)
        .to_command()
        .arg("-I")
        .arg(include_dir())
        .arg(source("layout.c"))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the C compiler (install gcc)");
    assert!(
        output.status.success(),
        "layout.c did not compile:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = Command::new(&exe).output().expect("run the layout program");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "the layout program failed");

    let mut layout = CLayout::default();
    for line in String::from_utf8(out.stdout).expect("utf-8").lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> usize { words[i].parse().expect("a number") };
        match words[0] {
            "size" => {
                layout.sizes.insert(words[1].into(), (num(2), num(3)));
            }
            "field" => {
                layout
                    .fields
                    .insert((words[1].into(), words[2].into()), (num(3), num(4)));
            }
            "const" => {
                layout
                    .consts
                    .insert(words[1].into(), words[2].parse().expect("a number"));
            }
            "string" => {
                layout.strings.insert(words[1].into(), words[2].into());
            }
            other => panic!("unexpected line kind {other:?} in {line:?}"),
        }
    }
    layout
}

fn size_of_field<T, F>(_: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// `(("c_type", "field"), (offset, size))` for each listed field of a Rust struct.
macro_rules! fields {
    ($ty:ty as $c:literal: $($field:ident),* $(,)?) => {
        [$(
            (
                ($c.to_owned(), stringify!($field).to_owned()),
                (offset_of!($ty, $field), size_of_field(|s: &$ty| &s.$field)),
            )
        ),*]
    };
}

fn rust_fields() -> BTreeMap<(String, String), (usize, usize)> {
    let mut all = BTreeMap::new();
    all.extend(fields!(abi::Str as "stackctl_str": ptr, len));
    all.extend(fields!(abi::Buf as "stackctl_buf": ptr, len, cap));
    all.extend(fields!(abi::Frame as "stackctl_frame":
        struct_size, flags, data, len, frame_number, timestamp_ns, width, height, sequence,
        generation, camera_id, reserved, sps, sps_len, pps, pps_len));
    all.extend(fields!(abi::Detection as "stackctl_detection":
        class_name, confidence, x, y, w, h));
    all.extend(fields!(abi::Detections as "stackctl_detections":
        struct_size, frame_number, timestamp_ns, items, count));
    all.extend(fields!(abi::Header as "stackctl_header": name, value));
    all.extend(fields!(abi::HttpRequest as "stackctl_http_request":
        struct_size, reserved, id, method, path, query, headers, header_count, body, body_len));
    // `type` is a Rust keyword: the mirror calls it `value_type`.
    all.extend([(
        ("stackctl_config_value".to_owned(), "type".to_owned()),
        (offset_of!(abi::ConfigValue, value_type), size_of::<u32>()),
    )]);
    all.extend(fields!(abi::ConfigValue as "stackctl_config_value":
        key, reserved, string, integer, number));
    all.extend(fields!(abi::Host as "stackctl_host":
        struct_size, abi_major, abi_minor, host_ctx, max_log_level, reserved, log, http_respond,
        frame_retain, frame_release, config, config_count, fail_reason, http_respond_start,
        http_respond_chunk, http_respond_end, http_respond_abort));
    all.extend(fields!(abi::Sink as "stackctl_sink":
        magic, abi_major, abi_minor, struct_size, reserved, name, version, routes, route_count,
        create, start, on_frame, on_http, metrics, stop, destroy, free_buf, on_detections,
        on_http_writable));
    all
}

fn rust_sizes() -> BTreeMap<String, (usize, usize)> {
    fn entry<T>(c: &str) -> (String, (usize, usize)) {
        (c.to_owned(), (size_of::<T>(), align_of::<T>()))
    }
    BTreeMap::from([
        entry::<abi::Str>("stackctl_str"),
        entry::<abi::Buf>("stackctl_buf"),
        entry::<abi::Status>("stackctl_status"),
        // Levels cross as `uint32_t`; the enum only names them, but it must fit.
        entry::<u32>("stackctl_log_level"),
        entry::<abi::Frame>("stackctl_frame"),
        entry::<abi::Detection>("stackctl_detection"),
        entry::<abi::Detections>("stackctl_detections"),
        entry::<abi::Header>("stackctl_header"),
        entry::<abi::HttpRequest>("stackctl_http_request"),
        entry::<u32>("stackctl_value_type"),
        entry::<abi::ConfigValue>("stackctl_config_value"),
        entry::<abi::Host>("stackctl_host"),
        entry::<abi::Sink>("stackctl_sink"),
    ])
}

#[test]
fn rust_and_c_agree_on_every_size_alignment_and_offset() {
    let c = c_layout();
    assert_eq!(c.sizes, rust_sizes(), "sizeof/alignof: left C, right Rust");
    let rust = rust_fields();
    for (key, c_value) in &c.fields {
        assert_eq!(
            rust.get(key),
            Some(c_value),
            "{}.{}: C says (offset, size) = {c_value:?}, Rust says {:?}",
            key.0,
            key.1,
            rust.get(key)
        );
    }
    let only_rust: Vec<_> = rust.keys().filter(|k| !c.fields.contains_key(*k)).collect();
    assert!(
        only_rust.is_empty(),
        "fields missing from layout.c: {only_rust:?}"
    );
}

/// Catches a field added to the header but not to `layout.c` (and so not to this test): the
/// listed fields of each struct must cover it, leaving only alignment padding between them.
#[test]
fn the_listed_fields_cover_every_struct() {
    let c = c_layout();
    for (ty, &(size, align)) in &c.sizes {
        let mut fields: Vec<(usize, usize, &str)> = c
            .fields
            .iter()
            .filter(|((t, _), _)| t == ty)
            .map(|((_, f), &(offset, len))| (offset, len, f.as_str()))
            .collect();
        if fields.is_empty() {
            continue; // an enum
        }
        fields.sort();
        let mut end = 0;
        for &(offset, len, name) in &fields {
            assert!(offset >= end, "{ty}.{name} overlaps the field before it");
            assert!(
                offset - end < len.min(align),
                "{ty}: {} unlisted bytes before {name}",
                offset - end
            );
            end = offset + len;
        }
        assert!(
            size - end < align,
            "{ty}: {} unlisted bytes after the last listed field",
            size - end
        );
    }
}

#[test]
fn rust_and_c_agree_on_every_constant() {
    let c = c_layout();
    let rust: BTreeMap<String, u64> = [
        ("STACKCTL_SINK_MAGIC", u64::from(abi::MAGIC)),
        ("STACKCTL_SINK_ABI_MAJOR", u64::from(abi::ABI_MAJOR)),
        ("STACKCTL_SINK_ABI_MINOR", u64::from(abi::ABI_MINOR)),
        ("STACKCTL_OK", u64::from(abi::STATUS_OK)),
        ("STACKCTL_ERR_CONFIG", u64::from(abi::STATUS_ERR_CONFIG)),
        ("STACKCTL_ERR_FAILED", u64::from(abi::STATUS_ERR_FAILED)),
        ("STACKCTL_ERR_PANIC", u64::from(abi::STATUS_ERR_PANIC)),
        ("STACKCTL_LOG_ERROR", u64::from(abi::log_level::ERROR)),
        ("STACKCTL_LOG_WARN", u64::from(abi::log_level::WARN)),
        ("STACKCTL_LOG_INFO", u64::from(abi::log_level::INFO)),
        ("STACKCTL_LOG_DEBUG", u64::from(abi::log_level::DEBUG)),
        ("STACKCTL_LOG_TRACE", u64::from(abi::log_level::TRACE)),
        ("STACKCTL_FRAME_IDR", u64::from(abi::FRAME_IDR)),
        (
            "STACKCTL_FRAME_INBAND_PARAMS",
            u64::from(abi::FRAME_INBAND_PARAMS),
        ),
        ("STACKCTL_DETECTIONS_MAX", abi::DETECTIONS_MAX as u64),
        ("STACKCTL_CLASS_NAME_MAX", abi::CLASS_NAME_MAX as u64),
        ("STACKCTL_SINK_SIZE_1_0", abi::SINK_V1_0_SIZE as u64),
        ("STACKCTL_CONFIG_MAX_VALUES", abi::CONFIG_MAX_VALUES as u64),
        ("STACKCTL_CONFIG_MAX_DEPTH", abi::CONFIG_MAX_DEPTH as u64),
        ("STACKCTL_MESSAGE_MAX", abi::MESSAGE_MAX as u64),
        ("STACKCTL_HTTP_BODY_MAX", abi::HTTP_BODY_MAX as u64),
        ("STACKCTL_HTTP_BODY_TIMEOUT_MS", abi::HTTP_BODY_TIMEOUT_MS),
        (
            "STACKCTL_HTTP_ANSWER_TIMEOUT_MS",
            abi::HTTP_ANSWER_TIMEOUT_MS,
        ),
        (
            "STACKCTL_HTTP_STREAM_BUFFER",
            abi::HTTP_STREAM_BUFFER as u64,
        ),
        ("STACKCTL_HTTP_WRITE_TIMEOUT_MS", abi::HTTP_WRITE_TIMEOUT_MS),
        ("STACKCTL_HTTP_STREAMS_MAX", abi::HTTP_STREAMS_MAX as u64),
        ("STACKCTL_HOST_SIZE_1_2", abi::HOST_V1_2_SIZE as u64),
        ("STACKCTL_STREAM_OK", abi::stream::OK as u64),
        (
            "STACKCTL_STREAM_WOULD_BLOCK",
            abi::stream::WOULD_BLOCK as u64,
        ),
        ("STACKCTL_STREAM_CLOSED", abi::stream::CLOSED as u64),
        ("STACKCTL_STREAM_INVALID", abi::stream::INVALID as u64),
        ("STACKCTL_VALUE_STRING", u64::from(abi::value_type::STRING)),
        (
            "STACKCTL_VALUE_INTEGER",
            u64::from(abi::value_type::INTEGER),
        ),
        ("STACKCTL_VALUE_FLOAT", u64::from(abi::value_type::FLOAT)),
        ("STACKCTL_VALUE_BOOL", u64::from(abi::value_type::BOOL)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(c.consts, rust, "constants: left C, right Rust");
    assert_eq!(
        c.strings
            .get("STACKCTL_SINK_ENTRY_SYMBOL")
            .map(String::as_str),
        Some(abi::ENTRY_SYMBOL)
    );
    // "SINK" in little-endian ASCII, as documented.
    assert_eq!(&abi::MAGIC.to_le_bytes(), b"SINK");
    assert_eq!(abi::SINK_PREFIX_SIZE, 16);
}

/// Compiles `pedantic.c` (which uses every item of the header) with the given language flags.
fn compile_pedantic(cpp: bool, flags: &[&str]) -> Result<(), String> {
    let dir = scratch_dir(if cpp { "cxx" } else { "c99" });
    let tool = compiler(cpp);
    let mut command = tool.to_command();
    // The cc crate adds its own flags (-ffunction-sections, -fPIC, ...); keep them, add ours.
    command
        .args(flags)
        .args(WARNINGS)
        .arg("-I")
        .arg(include_dir())
        .arg("-c")
        .arg(source("pedantic.c"))
        .arg("-o")
        .arg(dir.join("pedantic.o"));
    let result = match command.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => panic!(
            "stackctl_sink.h does not compile cleanly with {:?} {flags:?} {WARNINGS:?}:\n{}",
            tool.path(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => Err(format!("cannot run {:?}: {e}", tool.path())),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[test]
fn header_compiles_as_c99_without_warnings() {
    compile_pedantic(false, &["-std=c99"]).expect("a C compiler (install gcc)");
}

#[test]
fn header_compiles_as_cxx_without_warnings() {
    // `-x c++` makes the C++ driver read the .c file as C++.
    if let Err(why) = compile_pedantic(true, &["-x", "c++", "-std=c++11"]) {
        eprintln!("SKIPPED header_compiles_as_cxx_without_warnings: no C++ compiler: {why}");
        eprintln!("  install g++ (or clang++) to check the header as C++");
    }
}
