//! Events mode under `kill -9`: `stackctl up` with camsim (its orange square shown 6 s, hidden
//! 6 s), detector-sim and the recorder in events mode; stackctl is killed with SIGKILL while a
//! clip is being written (its sidecar says `complete: false`). The clip on disk is fragmented
//! MP4 that ends on the last fragment written: ffprobe reads it from a key frame and ffmpeg
//! decodes it without a word.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{decodes_cleanly, have_ffmpeg, probe, recording};
use serde_json::Value;
use stackctl_tests::plugins::{poll, toml_path};
use stackctl_tests::up::{Stack, Stray, field, kill};
use stackctl_tests::{bin, unique_shm};

/// The clip of the event in progress, once it holds at least `bytes`: its path.
fn clip_in_progress(dir: &Path, bytes: u64) -> Result<PathBuf, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name
            .strip_prefix("event_")
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let Ok(sidecar) = std::fs::read(entry.path()) else {
            continue;
        };
        let Ok(sidecar) = serde_json::from_slice::<Value>(&sidecar) else {
            continue;
        };
        if sidecar["complete"] != false {
            continue;
        }
        let clip = dir.join(format!("event_{stem}.mp4"));
        let size = std::fs::metadata(&clip).map_or(0, |m| m.len());
        if size >= bytes {
            return Ok(clip);
        }
        return Err(format!("{} holds {size} bytes", clip.display()));
    }
    Err("no event in progress".to_owned())
}

#[test]
fn a_clip_survives_kill_9_of_stackctl_during_its_event() {
    if !have_ffmpeg("events kill -9") {
        return;
    }
    let (stream, nv12, results) = (
        unique_shm("rec-evk-s"),
        unique_shm("rec-evk-n"),
        unique_shm("rec-evk-d"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let stack = Stack::new(&format!(
        r#"
[source]
shm = "{stream}"
detections = "{results}"

[services.camera]
command = {camsim}
args = ["--shm", "{stream}", "--nv12-shm", "{nv12}", "--size", "320x240", "--fps", "30",
        "--gop", "30", "--object-schedule", "6s:6s"]
ready = {{ shm = "{stream}", timeout = "20s" }}

[services.detector]
command = {detector}
args = ["--shm", "{nv12}", "--detections", "{results}", "--interval", "50ms", "--wait", "30"]
depends_on = {{ camera = "ready" }}
{recording}"#,
        stream = stream.as_str(),
        nv12 = nv12.as_str(),
        results = results.as_str(),
        camsim = toml_path(&bin("camsim")),
        detector = toml_path(&bin("detector-sim")),
        recording = recording(
            dir.path(),
            "mode = \"events\"\nclasses = [\"cat\"]\npre_roll = 1\npost_roll = 5\n\
             fragment_duration = 0.25"
        ),
    ));
    let mut up = stack.up(&[], &[]);
    // Its children outlive a SIGKILL of stackctl: killed when the test ends.
    let camera = up.first_event("camera", ": started");
    let detector = up.first_event("detector", ": started");
    let _strays = [camera, detector].map(|line| {
        Stray(
            field(&line, "pid")
                .and_then(|p| p.parse().ok())
                .expect("a pid"),
        )
    });
    up.first_line(&["stack ready"]);
    // The event begins; two seconds of it written (fragments of 0.25 s) before the kill.
    let clip = poll("an event in progress", Duration::from_secs(30), || {
        clip_in_progress(dir.path(), 1)
    });
    let begun = std::time::Instant::now();
    poll("two seconds of the event", Duration::from_secs(10), || {
        let now = clip_in_progress(dir.path(), 1)?;
        if now != clip {
            return Err(format!("another event: {}", now.display()));
        }
        (begun.elapsed() >= Duration::from_secs(2))
            .then_some(())
            .ok_or_else(|| "under way".to_owned())
    });
    kill(up.pid(), 9);
    up.wait_exit();
    let p = probe(&clip);
    eprintln!("{} after kill -9: {p:?}", clip.display());
    // Two seconds of the event (and its pre-roll) but the fragment not yet written.
    assert!(p.frames >= 45, "{p:?}");
    assert!(p.first_key, "starts on a key frame: {p:?}");
    assert_eq!((p.width, p.height), (320, 240));
    decodes_cleanly(&clip);
}
