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

/// A tap that joins a running camera mid-GOP (no `--raw`, no `--from-start`) starts at an IDR
/// with its parameter sets, so what it wrote decodes from its first frame without an error (it
/// used to start with whatever frame came next: "non-existing PPS 0 referenced").
#[test]
fn a_tap_of_a_running_camera_decodes_from_its_first_frame() {
    if !stackctl_tests::media::have_ffmpeg("tap of a running camera") {
        return;
    }
    let shm = unique_shm("midgop");
    let dir = tempfile::tempdir().expect("tempdir");
    let tapped = dir.path().join("tap.h264");
    let mut cam = Command::new(bin("camsim"));
    cam.args(["--shm", shm.as_str(), "--frames", "1200", "--fps", "60"])
        .args(["--size", "320x240", "--gop", "120"]);
    let _cam = Proc::spawn(cam);
    // A first raw tap of five frames: once it ends, the camera is running and its first IDR
    // is behind us (the next one up to two seconds away).
    let mut first = Command::new(bin("stackctl"));
    first.args([
        "shm",
        "tap",
        shm.as_str(),
        "--frames",
        "5",
        "--wait",
        "30",
        "--raw",
    ]);
    assert_success(&Proc::spawn(first).wait(), "a first tap");
    let mut tap = Command::new(bin("stackctl"));
    tap.args([
        "shm",
        "tap",
        shm.as_str(),
        "--frames",
        "150",
        "--idle",
        "10",
    ])
    .arg("--out")
    .arg(&tapped);
    let out = Proc::spawn(tap).wait();
    assert_success(&out, "stackctl shm tap");
    let p = stackctl_tests::media::probe(&tapped);
    assert!(p.first_key, "the first frame is no key frame: {p:?}");
    assert_eq!(p.frames, 150, "{p:?}");
    stackctl_tests::media::decodes_cleanly(&tapped);
}
