//! `camsim` writes, `stackctl shm tap` reads: what comes out must be exactly what went in.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use stackctl_tests::{Proc, assert_success, bin, unique_shm};

/// Frames per run: ten seconds of camera at 30 fps.
const FRAMES: &str = "300";

struct Run {
    dump: Vec<u8>,
    tapped: Vec<u8>,
    tap_stderr: String,
}

/// Starts the tap first (it waits for the segment), then camsim with `camsim_args`.
fn run(tag: &str, tap_args: &[&str], camsim_args: &[&str]) -> Run {
    let shm = unique_shm(tag);
    let dir = tempfile::tempdir().expect("tempdir");
    let (dump, tapped) = (dir.path().join("dump.h264"), dir.path().join("tap.h264"));

    let mut tap = Command::new(bin("stackctl"));
    tap.args([
        "shm",
        "tap",
        shm.as_str(),
        "--frames",
        FRAMES,
        "--from-start",
        "--wait",
        "60",
        // Bounds the test: a tap that misses frames ends, and the comparison shows it.
        "--idle",
        "10",
    ])
    .arg("--out")
    .arg(&tapped)
    .args(tap_args);
    let tap = Proc::spawn(tap);

    let mut cam = Command::new(bin("camsim"));
    cam.args([
        "--shm",
        shm.as_str(),
        "--frames",
        FRAMES,
        "--fps",
        "60",
        "--size",
        "640x480",
    ])
    .arg("--dump")
    .arg(&dump)
    .args(camsim_args);
    let cam_out = Proc::spawn(cam).wait();
    assert_success(&cam_out, "camsim");
    let tap_out = tap.wait();
    assert_success(&tap_out, "stackctl shm tap");
    Run {
        dump: read(&dump),
        tapped: read(&tapped),
        tap_stderr: String::from_utf8_lossy(&tap_out.stderr).into_owned(),
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The counter `name` from the tap's closing summary line.
fn summary_count(stderr: &str, name: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("tap:"))
        .expect("tap summary line");
    let after = line
        .split(name)
        .nth(1)
        .unwrap_or_else(|| panic!("no {name:?} in {line:?}"));
    after
        .trim()
        .split([',', ' '])
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

fn assert_same_stream(run: &Run) {
    assert!(!run.dump.is_empty(), "camsim dumped nothing");
    assert!(
        run.tapped == run.dump,
        "the tap's {} bytes differ from camsim's {} bytes (first difference at byte {:?})\n{}",
        run.tapped.len(),
        run.dump.len(),
        run.tapped.iter().zip(&run.dump).position(|(a, b)| a != b),
        run.tap_stderr
    );
}

#[test]
fn tap_receives_exactly_what_the_camera_wrote() {
    let run = run("tap", &[], &[]);
    assert_same_stream(&run);
    assert_eq!(summary_count(&run.tap_stderr, "lost"), 0);
    assert_eq!(summary_count(&run.tap_stderr, "late tears"), 0);
}

#[test]
fn the_settled_guard_reads_a_slow_writer_intact() {
    // A writer that keeps pausing mid-copy (and, on a loaded machine, gets preempted there) is
    // what the settled guard is for: it only takes a slot the writer has finished.
    let run = run(
        "slow",
        &["--guard", "settled"],
        &["--slow-copy", "--bitrate", "8000"],
    );
    assert_same_stream(&run);
    assert_eq!(summary_count(&run.tap_stderr, "late tears"), 0);
}

#[test]
fn without_the_guard_a_slow_writer_tears_frames() {
    // The control experiment: the same writer, the guard switched off. If this ever passes
    // through intact, `--slow-copy` no longer provokes tears and the test above proves nothing.
    let run = run(
        "noguard",
        &["--guard", "off"],
        &["--slow-copy", "--bitrate", "8000"],
    );
    assert_ne!(
        run.tapped, run.dump,
        "an unguarded reader read a slow writer without a single tear"
    );
}

#[test]
fn a_writer_restart_is_followed_without_losing_a_frame() {
    let run = run("restart", &[], &["--restart-every", "1"]);
    assert_same_stream(&run);
    assert!(
        summary_count(&run.tap_stderr, "writer restarts") >= 3,
        "300 frames at 60 fps with a restart every second:\n{}",
        run.tap_stderr
    );
}
