//! Detections end to end, with the real processes: camsim draws the orange square (shown 2 s,
//! hidden 2 s) and writes where it drew it (`--dump-objects`); detector-sim finds it in the NV12
//! frames and writes `LatestDetectionResult`s; the core's detection source reads them, next to
//! the core's frame source, onto one bus.
//!
//! Checked: every result names a frame camsim published, with that frame's capture time; while
//! the square shows, the result holds one `cat` whose box is the square's true box (within
//! 2 px: the detector works on chroma, one sample per 2x2 pixels, and the square's corner and
//! side are even, so the boxes should be equal; the tolerance absorbs one chroma sample); while
//! it is hidden, the result is empty; and on the bus each result comes right after the frame it
//! belongs to. Both with camsim encoding live and replaying its pre-encoded loop.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use stackctl_core::bus::{Bus, BusItem, SubscribeOptions};
use stackctl_core::detections::{DetectionConfig, DetectionHandle, Picture};
use stackctl_core::shm::{SourceConfig, SourceHandle};
use stackctl_tests::{Proc, bin, unique_shm};

/// One line of `--dump-objects`.
#[derive(Debug, Clone, Copy)]
struct Truth {
    timestamp_ns: u64,
    x: i32,
    y: i32,
    side: i32,
    visible: bool,
}

fn truth(path: &Path) -> HashMap<u64, Truth> {
    std::fs::read_to_string(path)
        .expect("the objects dump")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<u64> = l
                .split(' ')
                .map(|n| n.parse().ok())
                .collect::<Option<_>>()?;
            (f.len() == 7).then(|| {
                (
                    f[0],
                    Truth {
                        timestamp_ns: f[1],
                        x: f[2] as i32,
                        y: f[3] as i32,
                        side: f[4] as i32,
                        visible: f[6] == 1,
                    },
                )
            })
        })
        .collect()
}

/// Pixels a detected edge may be off the true one.
const TOLERANCE: i32 = 2;

#[test]
fn detections_match_where_camsim_drew_the_square_and_follow_their_frames() {
    run(&["--encode", "live"]);
}

/// The same with camsim replaying a pre-encoded loop (what a machine without nasm gets): the
/// NV12 picture, the dump and the H.264 stay consistent with each other.
#[test]
fn detections_match_the_square_of_a_pre_encoded_loop() {
    run(&["--encode", "loop"]);
}

fn run(camsim_args: &[&str]) {
    let stream = unique_shm("det-stream");
    let nv12 = unique_shm("det-nv12");
    let detections = unique_shm("det-results");
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = dir.path().join("objects.txt");

    let bus = Bus::new();
    let items = bus.subscribe_items(SubscribeOptions::new("test").capacity(4096));
    let frames = SourceHandle::spawn(SourceConfig::new(stream.as_str()), bus.clone(), None)
        .expect("frame source");
    let results = DetectionHandle::spawn(
        DetectionConfig::new(detections.as_str()).picture(Picture::Ring(nv12.as_str().into())),
        bus.clone(),
    )
    .expect("detection source");

    let mut camsim = Command::new(bin("camsim"));
    camsim
        .args(["--shm", stream.as_str(), "--nv12-shm", nv12.as_str()])
        .args([
            "--size",
            "640x480",
            "--fps",
            "30",
            "--object-schedule",
            "2s:2s",
        ])
        .arg("--dump-objects")
        .arg(&objects)
        .args(camsim_args);
    let camsim = Proc::spawn(camsim);
    let mut detector = Command::new(bin("detector-sim"));
    detector.args([
        "--shm",
        nv12.as_str(),
        "--detections",
        detections.as_str(),
        "--interval",
        "50ms",
        "--wait",
        "30",
    ]);
    let detector = Proc::spawn(detector);

    // Until enough results of both kinds, seen, with their frames.
    let mut seen = Vec::new();
    let (mut with_cat, mut empty) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(90);
    while (with_cat < 60 || empty < 60) && Instant::now() < deadline {
        let Ok(item) = items.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        if let BusItem::Detections(d) = &item {
            if d.items.is_empty() {
                empty += 1;
            } else {
                with_cat += 1;
            }
        }
        seen.push(item);
    }
    drop(detector);
    drop(camsim);
    let stats = results.stats().clone();
    results.stop();
    frames.stop().expect("frame source");
    assert!(
        with_cat >= 60 && empty >= 60,
        "{with_cat} results with the cat, {empty} without, in 90 s"
    );
    assert_eq!(stats.malformed.load(Relaxed), 0);
    assert_eq!(stats.late_tears.load(Relaxed), 0);

    let truth = truth(&objects);
    let mut last_frame: Option<(u64, u64)> = None; // (frame number, timestamp)
    let mut checked = 0;
    for item in &seen {
        match item {
            BusItem::Frame(f) => last_frame = Some((f.meta().frame_number, f.meta().timestamp_ns)),
            BusItem::Detections(d) => {
                let t = truth.get(&d.frame_number).unwrap_or_else(|| {
                    panic!("result of frame {} camsim never published", d.frame_number)
                });
                assert_eq!(
                    d.timestamp_ns, t.timestamp_ns,
                    "frame {}: capture time",
                    d.frame_number
                );
                // Ordered with frames: its own frame came just before it (or earlier, when
                // the detector was slower than a frame).
                let (number, ts) = last_frame.expect("a frame before the first result");
                assert!(
                    ts >= d.timestamp_ns && number >= d.frame_number,
                    "result of frame {} after frame {number} only",
                    d.frame_number
                );
                if t.visible {
                    assert_eq!(d.items.len(), 1, "frame {}: {d:?}", d.frame_number);
                    let c = &d.items[0];
                    assert_eq!(c.class, "cat");
                    assert!(c.confidence > 0.9 && c.confidence <= 1.0, "{c:?}");
                    for (got, want) in [
                        (c.x, t.x),
                        (c.y, t.y),
                        (c.x + c.w, t.x + t.side),
                        (c.y + c.h, t.y + t.side),
                    ] {
                        assert!(
                            (got - want).abs() <= TOLERANCE,
                            "frame {}: detected {c:?}, drawn at {t:?}",
                            d.frame_number
                        );
                    }
                } else {
                    assert!(
                        d.items.is_empty(),
                        "frame {}: hidden, yet {d:?}",
                        d.frame_number
                    );
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, with_cat + empty);
}
