//! Issue 14, item 7, exactly as reported: `stackctl shm tap` started before camsim (so it waits
//! for the segment), without `--from-start`, must receive the camera's first frame, the IDR.
//! It used to attach when `write_index` was already 1, skip frame 0 and count nothing lost: the
//! file started with a P-frame ("non-existing PPS 0 referenced"). (The report also used
//! `--slow-copy`, which the verify guard's audit flags on a loaded machine, a separate matter
//! covered by `shm_tap.rs` under the settled guard; it is left out here.)
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;

use stackctl_tests::{Proc, assert_success, bin, unique_shm};

#[test]
fn a_tap_that_waited_for_the_camera_gets_its_first_frame() {
    let shm = unique_shm("first-frame");
    let dir = tempfile::tempdir().expect("tempdir");
    let (reference, tapped) = (dir.path().join("ref.h264"), dir.path().join("got.h264"));
    let mut tap = Command::new(bin("stackctl"));
    tap.args([
        "shm",
        "tap",
        shm.as_str(),
        "--frames",
        "300",
        "--wait",
        "60",
        "--idle",
        "10",
    ])
    .arg("--out")
    .arg(&tapped);
    let tap = Proc::spawn(tap);
    let mut cam = Command::new(bin("camsim"));
    cam.args(["--shm", shm.as_str(), "--frames", "300", "--fps", "60"])
        .args(["--size", "640x480", "--gop", "30"])
        .arg("--dump")
        .arg(&reference);
    assert_success(&Proc::spawn(cam).wait(), "camsim");
    let out = tap.wait();
    assert_success(&out, "stackctl shm tap");
    let want = std::fs::read(&reference).expect("the dump");
    let got = std::fs::read(&tapped).expect("the tap's file");
    assert!(
        got == want,
        "the tap's {} bytes differ from camsim's {} (first difference at byte {:?}); tap said:\n{}",
        got.len(),
        want.len(),
        got.iter().zip(&want).position(|(a, b)| a != b),
        String::from_utf8_lossy(&out.stderr)
    );
}
