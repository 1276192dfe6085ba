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

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use stackctl_core::bus::{Bus, BusItem, SubscribeOptions};
use stackctl_tests::Proc;
use stackctl_tests::vision::VisionRig;

/// Pixels a detected edge may be off the true one.
const TOLERANCE: i64 = 2;

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
    let rig = VisionRig::new("det");
    let bus = Bus::new();
    let items = bus.subscribe_items(SubscribeOptions::new("test").capacity(4096));
    let (frames, results) = rig.sources(&bus);
    let mut camsim = rig.camsim("640x480", "2s:2s");
    camsim.args(camsim_args);
    let camsim = Proc::spawn(camsim);
    let detector = Proc::spawn(rig.detector("50ms"));

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

    let truth = rig.truths();
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
                        (i64::from(c.x), t.x),
                        (i64::from(c.y), t.y),
                        (i64::from(c.x + c.w), t.x + t.side),
                        (i64::from(c.y + c.h), t.y + t.side),
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
