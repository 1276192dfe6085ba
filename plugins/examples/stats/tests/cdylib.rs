//! The built plugin, as stackctl sees it: `dlopen` `libsink_stats.so`, find
//! `stackctl_sink_entry`, check the table, and drive it through a fake host (the SDK's test
//! host, shared by path).
//!
//! Cargo builds this package's cdylib before its integration tests (it is the same library
//! target as the rlib) but gives a test no path to it (cargo #8193): it lies next to the test
//! executable, in `target/<profile>/deps/`, and is copied one level up.
// A failed expectation is the test failing; loading a plugin is unsafe by nature.
#![allow(clippy::expect_used, clippy::unwrap_used, unsafe_code)]

#[path = "../../../sdk/tests/fake_host/mod.rs"]
mod fake_host;

use std::path::PathBuf;

use fake_host::{FakeHost, OwnedFrame, Plugin};
use stackctl_sink_sdk::abi::{self, log_level};

const FRAME_NS: u64 = 40_000_000; // 25 fps

fn library_path() -> PathBuf {
    let name = format!(
        "{}sink_stats{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("target/<profile>/deps");
    [deps.join(&name), deps.join("..").join(&name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} not found next to {}", exe.display()))
}

/// Loads the plugin and leaks the library: a Rust cdylib is never unloaded.
fn load() -> Plugin {
    // SAFETY: loading our own plugin runs no initializers beyond Rust's own.
    let library = unsafe { libloading::Library::new(library_path()) }.expect("dlopen");
    // SAFETY: the symbol has the ABI's entry type.
    let entry = unsafe { library.get::<abi::EntryFn>(abi::ENTRY_SYMBOL.as_bytes()) }
        .expect("stackctl_sink_entry exported");
    // SAFETY: the entry returns a static table.
    let plugin = unsafe { Plugin::new(entry()) };
    std::mem::forget(library);
    plugin
}

#[test]
fn the_library_exports_a_valid_table() {
    let t = load().table;
    assert_eq!(t.magic, abi::MAGIC);
    assert_eq!(t.abi_major, abi::ABI_MAJOR);
    assert_eq!(t.struct_size as usize, size_of::<abi::Sink>());
    assert_eq!(t.route_count, 1);
    // SAFETY: static strings of the table.
    let (name, route) = unsafe {
        (
            std::slice::from_raw_parts(t.name.ptr, t.name.len),
            std::slice::from_raw_parts((*t.routes).ptr, (*t.routes).len),
        )
    };
    assert_eq!((name, route), (&b"stats"[..], &b"/stats"[..]));
}

#[test]
fn it_counts_frames_and_serves_them_as_json_and_metrics() {
    let p = load();
    let host = FakeHost::new(log_level::INFO);
    let i = p.create(&host, "window = 5").expect("created");
    p.start(&i).expect("started");
    assert!(host.logged(log_level::INFO, "counting frames window=5"));
    for n in 0..12_u64 {
        let frame = OwnedFrame::new(n, n * FRAME_NS, n % 10 == 0, vec![0; 100 + n as usize]);
        assert_eq!(p.frame(&i, &frame), abi::STATUS_OK);
    }

    assert_eq!(p.http(&i, 1, "GET", "/stats", ""), abi::STATUS_OK);
    let r = host.wait_response(1);
    assert_eq!(r.status, 200);
    let stats: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        stats,
        serde_json::json!({
            "frames": 12, "bytes": 1266, "idr_frames": 2, "gop_length": 2, "fps": 25.0,
            "last_frame_size": 111, "width": 1920, "height": 1080,
        })
    );
    assert_eq!(p.http(&i, 2, "POST", "/stats", ""), abi::STATUS_OK);
    assert_eq!(host.wait_response(2).status, 405);
    assert_eq!(p.http(&i, 3, "GET", "/stats/x", ""), abi::STATUS_OK);
    assert_eq!(host.wait_response(3).status, 404);

    // Two detector results (ABI 1.1), one with a cat, one empty.
    let cat = [abi::Detection {
        class_name: abi::Str::new("cat"),
        confidence: 0.9,
        x: 1,
        y: 2,
        w: 3,
        h: 4,
    }];
    for items in [&cat[..], &[]] {
        let result = abi::Detections {
            struct_size: size_of::<abi::Detections>() as u32,
            frame_number: 12,
            timestamp_ns: 12 * FRAME_NS,
            items: if items.is_empty() {
                std::ptr::null()
            } else {
                items.as_ptr()
            },
            count: items.len() as u32,
        };
        assert_eq!(p.detections(&i, &result), abi::STATUS_OK);
    }

    let (status, text) = p.metrics(&i);
    assert_eq!(status, abi::STATUS_OK);
    for line in [
        "sink_stats_detections_total 2\n",
        "sink_stats_objects_total 1\n",
        "sink_stats_frames_total 12\n",
        "sink_stats_bytes_total 1266\n",
        "sink_stats_gop_length 2\n",
        "sink_stats_fps 25\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    p.stop(&i);
    p.destroy(i);
}

#[test]
fn a_bad_window_is_a_config_error_naming_it() {
    let p = load();
    let host = FakeHost::new(log_level::INFO);
    let (status, message) = p.create(&host, "window = \"wide\"").err().expect("refused");
    assert_eq!(status, abi::STATUS_ERR_CONFIG);
    assert!(message.starts_with("window: invalid type"), "{message}");
    // A range error comes from `start`, still as a config error naming the key.
    let i = p.create(&host, "window = 1").expect("created");
    assert_eq!(
        p.start(&i),
        Err((
            abi::STATUS_ERR_CONFIG,
            "window: must be between 2 and 10000 frames".to_owned()
        ))
    );
    p.destroy(i);
}
