//! Snapshots of the real camsim's NV12 segment (`--nv12-shm`, the board's
//! `/pet_camera_active_frame`), checked with ffprobe and ffmpeg: a JPEG of the picture's size
//! showing the orange square where camsim says it drew it (`--dump-objects`); a hundred
//! concurrent requests for the stopped camera's last frame cost one encode; once camsim has
//! removed its segment, "no picture" with the reason.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use stackctl_core::snapshot::{SnapshotError, Snapshotter};
use stackctl_tests::media::{have_ffmpeg, probe};
use stackctl_tests::plugins::poll;
use stackctl_tests::up::EVENT_TIMEOUT;
use stackctl_tests::{Proc, assert_success, bin, unique_shm};

#[test]
fn snapshots_of_camsim_decode_show_the_square_and_are_encoded_once() {
    if !have_ffmpeg("snapshots") {
        return;
    }
    let stream = unique_shm("snap-stream");
    let nv12 = unique_shm("snap-nv12");
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = dir.path().join("objects.txt");
    // Ten frames, then camsim exits and leaves its segments: the last complete frame (8)
    // stays the newest for as long as the test needs.
    let mut cam = Command::new(bin("camsim"));
    cam.args(["--shm", stream.as_str(), "--nv12-shm", nv12.as_str()])
        .args([
            "--size", "640x480", "--fps", "30", "--frames", "10", "--keep",
        ])
        .arg("--dump-objects")
        .arg(&objects);
    assert_success(&Proc::spawn(cam).wait(), "camsim");

    let snapshots = Arc::new(Snapshotter::new(nv12.as_str()));
    let answers: Vec<Arc<[u8]>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| s.spawn(|| snapshots.jpeg(None).expect("a picture")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(snapshots.stats().encodes.load(Ordering::Relaxed), 1);
    assert!(answers.iter().all(|a| Arc::ptr_eq(a, &answers[0])));

    let file = dir.path().join("snapshot.jpg");
    std::fs::write(&file, &answers[0]).expect("write");
    let p = probe(&file);
    assert_eq!((p.width, p.height), (640, 480), "{p:?}");

    // Where the square is in frame 8, and its colour in the decoded picture.
    let dump = std::fs::read_to_string(&objects).expect("objects");
    let line: Vec<usize> = dump
        .lines()
        .find(|l| l.starts_with("8 "))
        .expect("frame 8")
        .split(' ')
        .map(|n| n.parse().expect("a number"))
        .collect();
    let (x, y, side) = (line[2], line[3], line[4]);
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), 640 * 480 * 3);
    let centre = ((y + side / 2) * 640 + x + side / 2) * 3;
    let (r, g, b) = (
        out.stdout[centre],
        out.stdout[centre + 1],
        out.stdout[centre + 2],
    );
    assert!(
        r > 220 && (90..160).contains(&g) && b < 90,
        "the square's centre ({}, {}) is ({r}, {g}, {b}), not orange",
        x + side / 2,
        y + side / 2
    );

    let scaled = snapshots.jpeg(Some(320)).expect("scaled");
    std::fs::write(&file, &scaled).expect("write");
    let p = probe(&file);
    assert_eq!((p.width, p.height), (320, 240), "{p:?}");

    // The camera gone (its segment removed): no picture, and why.
    // The name is looked at again every 250 ms.
    drop(nv12);
    let e = poll(
        "the segment's removal noticed",
        EVENT_TIMEOUT,
        || match snapshots.jpeg(None) {
            Err(e @ SnapshotError::NoSegment { .. }) => Ok(e),
            other => Err(format!("{other:?}")),
        },
    );
    assert!(e.to_string().contains("does not exist"), "{e}");
}
