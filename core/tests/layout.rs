//! The Rust layout must be the C layout: compile the board's struct definitions with the system
//! C compiler, run the program, and compare every size and offset.
// A failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::mem::{offset_of, size_of};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use stackctl_core::layout::{
    BoundingBox, FrameHeader, FrameSlot, LatestDetectionResult, RawDetection, SharedFrameBuffer,
    Timespec,
};

fn c_layout() -> HashMap<String, usize> {
    // One directory per call: the tests run in parallel and each removes its own.
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("stackctl-layout-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let exe = dir.join("board_layout");
    let target = env!("STACKCTL_BUILD_TARGET");
    let compiler = cc::Build::new()
        .target(target)
        .host(target)
        .opt_level(0)
        .cargo_metadata(false)
        .try_get_compiler()
        .expect("a C compiler for the target (install gcc)");
    let status = compiler
        .to_command()
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/c/board_layout.c"
        ))
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("run the C compiler");
    assert!(status.success(), "the board's header did not compile");
    let out = Command::new(&exe).output().expect("run the layout program");
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(k, v)| (k.to_owned(), v.parse().expect("a number")))
        .collect()
}

/// Every `(C expression, Rust value)` pair equals what the C program printed.
fn assert_agree(c: &HashMap<String, usize>, rust: &[(&str, usize)]) {
    for &(name, value) in rust {
        assert_eq!(
            c.get(name),
            Some(&value),
            "{name}: C says {:?}, Rust says {value}",
            c.get(name)
        );
    }
}

#[test]
fn rust_and_c_agree_on_every_size_and_offset() {
    let c = c_layout();
    let rust = [
        ("sizeof(struct timespec)", size_of::<Timespec>()),
        (
            "offsetof(Frame, frame_number)",
            offset_of!(FrameHeader, frame_number),
        ),
        (
            "offsetof(Frame, timestamp)",
            offset_of!(FrameHeader, timestamp),
        ),
        (
            "offsetof(Frame, camera_id)",
            offset_of!(FrameHeader, camera_id),
        ),
        ("offsetof(Frame, width)", offset_of!(FrameHeader, width)),
        ("offsetof(Frame, height)", offset_of!(FrameHeader, height)),
        ("offsetof(Frame, format)", offset_of!(FrameHeader, format)),
        (
            "offsetof(Frame, data_size)",
            offset_of!(FrameHeader, data_size),
        ),
        ("offsetof(Frame, data)", offset_of!(FrameSlot, data)),
        ("sizeof(Frame)", size_of::<FrameSlot>()),
        (
            "offsetof(SharedFrameBuffer, write_index)",
            offset_of!(SharedFrameBuffer, write_index),
        ),
        (
            "offsetof(SharedFrameBuffer, frame_interval_ms)",
            offset_of!(SharedFrameBuffer, frame_interval_ms),
        ),
        (
            "offsetof(SharedFrameBuffer, frames)",
            offset_of!(SharedFrameBuffer, frames),
        ),
        ("sizeof(SharedFrameBuffer)", size_of::<SharedFrameBuffer>()),
    ];
    assert_agree(&c, &rust);
    // The detection segment's documented numbers (legacy-stack.md §2), checked on the C side so
    // the header used here is known to be the board's.
    assert_eq!(c["sizeof(LatestDetectionResult)"], 552);
    assert_eq!(c["offsetof(LatestDetectionResult, version)"], 548);
}

#[test]
fn the_detection_segment_agrees_with_c_too() {
    let c = c_layout();
    let rust = [
        ("sizeof(BoundingBox)", size_of::<BoundingBox>()),
        ("offsetof(BoundingBox, x)", offset_of!(BoundingBox, x)),
        ("offsetof(BoundingBox, y)", offset_of!(BoundingBox, y)),
        ("offsetof(BoundingBox, w)", offset_of!(BoundingBox, w)),
        ("offsetof(BoundingBox, h)", offset_of!(BoundingBox, h)),
        ("sizeof(Detection)", size_of::<RawDetection>()),
        (
            "offsetof(Detection, class_name)",
            offset_of!(RawDetection, class_name),
        ),
        (
            "offsetof(Detection, confidence)",
            offset_of!(RawDetection, confidence),
        ),
        ("offsetof(Detection, bbox)", offset_of!(RawDetection, bbox)),
        (
            "sizeof(LatestDetectionResult)",
            size_of::<LatestDetectionResult>(),
        ),
        (
            "offsetof(LatestDetectionResult, frame_number)",
            offset_of!(LatestDetectionResult, frame_number),
        ),
        (
            "offsetof(LatestDetectionResult, timestamp)",
            offset_of!(LatestDetectionResult, timestamp),
        ),
        (
            "offsetof(LatestDetectionResult, num_detections)",
            offset_of!(LatestDetectionResult, num_detections),
        ),
        (
            "offsetof(LatestDetectionResult, detections)",
            offset_of!(LatestDetectionResult, detections),
        ),
        (
            "offsetof(LatestDetectionResult, version)",
            offset_of!(LatestDetectionResult, version),
        ),
    ];
    assert_agree(&c, &rust);
}
