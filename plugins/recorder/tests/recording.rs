//! The recorder in the real `stackctl up`, fed by the real camsim, its files checked by the
//! real ffprobe and ffmpeg: both formats, the legacy API and its fields, a start mid-GOP,
//! segments that lose nothing, and files that survive `kill -9`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::{
    Answer, Recording, decodes_cleanly, find, have_ffmpeg, metric, probe, recordings, request,
    starts_with_params_and_idr, status, wait_status,
};
use stackctl_tests::up::{Stray, field, kill};

fn post(port: u16, path: &str) -> Answer {
    request(port, "POST", path, &[])
}

/// Manual recording of a few seconds in `format`: one file that plays, as `/status` said.
fn record_manually(format: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec_dir = dir.path().join("rec");
    let dump = dir.path().join("camsim.h264");
    let keys = format!("format = \"{format}\"\nfragment_duration = 0.25");
    let stack = Recording::new(
        &format!("rec-{format}"),
        &["--dump", dump.to_str().unwrap()],
        &rec_dir,
        &keys,
    );
    let port = stack.port;
    let mut up = stack.up();
    up.first_line(&["plugin started", "plugin=recording"]);

    // Idle: the legacy fields, nothing recorded, not recording.
    let idle = status(port);
    assert_eq!(idle["recording"], false, "{idle}");
    assert_eq!(idle["format"], format, "{idle}");
    assert_eq!(idle["mode"], "manual", "{idle}");
    assert!(idle["error"].is_null(), "{idle}");
    let stop_idle = post(port, "/stop");
    assert_eq!(stop_idle.code, 409, "stop while idle: {}", stop_idle.text());
    assert!(stop_idle.json()["error"].is_string());
    let wrong = request(port, "GET", "/start", &[]);
    assert_eq!(wrong.code, 405, "{}", wrong.text());

    let started = post(port, "/api/recording/start");
    assert_eq!(started.code, 200, "{}", started.text());
    let body = started.json();
    assert_eq!(body["success"], true, "{body}");
    assert_eq!(body["status"]["recording"], true, "{body}");
    let again = post(port, "/start");
    assert_eq!(again.code, 409, "start while recording: {}", again.text());
    assert_eq!(
        request(port, "GET", "/health", &[]).json()["recording"],
        true
    );
    assert_eq!(metric(port, "streaming_recording_active"), 1.0);

    let during = wait_status(port, "120 frames recorded", |s| {
        s["frame_count"].as_u64() >= Some(120) && s["bytes_written"].as_u64() > Some(0)
    });
    let listing = request(port, "GET", "/recordings", &[]).json();
    let current = &listing["recordings"][0];
    assert_eq!(current["name"], during["filename"], "{listing}");
    assert_eq!(current["recording"], true, "{listing}");
    assert_eq!(current["format"], format, "{listing}");

    let stopped = post(port, "/api/recording/stop");
    assert_eq!(stopped.code, 200, "{}", stopped.text());
    let st = stopped.json()["status"].clone();
    assert_eq!(st["recording"], false, "{st}");
    assert_eq!(
        request(port, "GET", "/health", &[]).json()["recording"],
        false
    );
    let legacy = request(port, "GET", "/api/recording/status", &[]).json();
    assert_eq!(legacy, status(port), "both status routes answer the same");
    assert_eq!(legacy["frame_count"], st["frame_count"]);

    let frames = st["frame_count"].as_u64().expect("frame_count");
    let duration_ms = st["duration_ms"].as_u64().expect("duration_ms");
    let duration = st["duration"].as_f64().expect("duration");
    // Media time from the camera's 30 fps timestamps: milliseconds, not nanoseconds.
    let expected_ms = frames * 1000 / 30;
    assert!(
        duration_ms + 100 >= expected_ms && duration_ms <= expected_ms + 500,
        "{frames} frames at 30 fps but duration_ms = {duration_ms}: {st}"
    );
    assert!(
        (duration - duration_ms as f64 / 1000.0).abs() < 0.01,
        "{st}"
    );
    let start_time = st["start_time"].as_str().expect("start_time");
    assert!(
        start_time.len() >= 25 && start_time.as_bytes()[10] == b'T',
        "RFC 3339: {start_time}"
    );
    let name = st["filename"].as_str().expect("filename");
    assert!(
        name.starts_with("recording_") && name.ends_with(&format!(".{format}")),
        "{name}"
    );
    assert_eq!(metric(port, "streaming_recording_frames"), frames as f64);
    assert!(metric(port, "recorder_frames_written_total") >= frames as f64);
    assert!(metric(port, "recorder_bytes_written_total") > 0.0);
    assert_eq!(metric(port, "recorder_segments_total"), 1.0);
    assert_eq!(metric(port, "recorder_errors_total"), 0.0);
    up.terminate();

    let file = rec_dir.join(name);
    let size = std::fs::metadata(&file).expect("the file").len();
    assert_eq!(st["bytes_written"].as_u64(), Some(size), "{st}");
    let p = probe(&file);
    eprintln!("{format}: status {st}\nffprobe {p:?}");
    assert_eq!(
        p.packets, frames,
        "ffprobe's packets = the recorder's frame_count"
    );
    assert_eq!(p.frames, frames, "ffprobe decodes every frame");
    assert_eq!((p.width, p.height), (320, 240));
    assert!(p.first_key, "the first frame is a key frame");
    decodes_cleanly(&file);
    if format == "mp4" {
        // The container's duration is the camera's time (30 fps), within a frame.
        let d = p.duration.expect("an mp4 duration");
        assert!(
            (d - frames as f64 / 30.0).abs() < 0.1,
            "{d} s for {frames} frames"
        );
    } else {
        // A raw file is exactly a run of what camsim published, from an IDR with its SPS/PPS.
        let data = std::fs::read(&file).expect("read");
        let published = std::fs::read(&dump).expect("camsim's dump");
        assert!(starts_with_params_and_idr(&data));
        assert!(
            find(&published, &data).is_some(),
            "the raw recording is not a contiguous run of camsim's output"
        );
    }
}

#[test]
fn manual_mp4_recording_holds_every_frame_and_the_api_is_legacy_compatible() {
    if have_ffmpeg("manual mp4") {
        record_manually("mp4");
    }
}

#[test]
fn manual_raw_h264_recording_is_exactly_what_camsim_published() {
    if have_ffmpeg("manual h264") {
        record_manually("h264");
    }
}

/// A start mid-GOP (GOP of 90 frames, SPS/PPS in-band only before camsim's very first IDR):
/// both formats start at an IDR, decodable from their first frame.
#[test]
fn a_start_mid_gop_waits_for_an_idr_and_brings_its_own_sps_pps() {
    if !have_ffmpeg("mid-GOP") {
        return;
    }
    for format in ["h264", "mp4"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let rec = Recording::new(
            "rec-midgop",
            &["--gop", "90", "--params", "first"],
            dir.path(),
            &format!("format = \"{format}\""),
        );
        let (port, stack) = (rec.port, &rec.stack);
        let mut up = rec.up();
        // Past camsim's first IDR (the only one with in-band parameter sets), mid-GOP.
        stackctl_tests::plugins::poll(
            "frames past the first GOP",
            stackctl_tests::up::EVENT_TIMEOUT,
            || {
                let n = stackctl_tests::plugins::plugin_counter(stack, "recording", "frames");
                if n > 100 { Ok(n) } else { Err(n.to_string()) }
            },
        );
        assert_eq!(post(port, "/start").code, 200);
        wait_status(port, "two GOPs recorded", |s| {
            s["frame_count"].as_u64() >= Some(100)
        });
        let st = post(port, "/stop").json()["status"].clone();
        up.terminate();
        let file = dir.path().join(st["filename"].as_str().expect("filename"));
        let p = probe(&file);
        eprintln!("{format} mid-GOP: {st}\n{p:?}");
        assert!(p.first_key);
        assert_eq!(p.frames, st["frame_count"].as_u64().unwrap());
        decodes_cleanly(&file);
        if format == "h264" {
            let data = std::fs::read(&file).expect("read");
            assert!(
                starts_with_params_and_idr(&data),
                "the raw file must start with SPS, PPS, IDR: {:02x?}",
                &data[..data.len().min(48)]
            );
        }
    }
}

/// Continuous raw recording cut every second: each segment starts with SPS/PPS and an IDR, and
/// the segments, end to end, are exactly a contiguous run of camsim's output.
#[test]
fn raw_segments_are_cut_on_idrs_and_lose_or_repeat_nothing() {
    if !have_ffmpeg("raw segments") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("camsim.h264");
    let rec_dir = dir.path().join("rec");
    let stack = Recording::new(
        "rec-seg",
        &["--dump", dump.to_str().unwrap()],
        &rec_dir,
        "format = \"h264\"\nmode = \"continuous\"\nsegment_duration = 1",
    );
    let port = stack.port;
    let mut up = stack.up();
    let st = wait_status(port, "three segments", |s| {
        s["segments"].as_u64() >= Some(3)
    });
    assert_eq!(st["mode"], "continuous");
    up.terminate(); // the recorder closes its file, camsim flushes its dump

    let files = recordings(&rec_dir);
    assert!(files.len() >= 4, "{files:?}");
    let published = std::fs::read(&dump).expect("dump");
    let mut all = Vec::new();
    let mut frames = 0;
    for f in &files {
        let data = std::fs::read(f).expect("read");
        assert!(
            starts_with_params_and_idr(&data),
            "{} does not start with SPS, PPS, IDR",
            f.display()
        );
        let p = probe(f);
        assert!(p.first_key);
        decodes_cleanly(f);
        frames += p.frames;
        all.extend_from_slice(&data);
    }
    assert!(
        find(&published, &all).is_some(),
        "the segments, concatenated, are not a contiguous run of camsim's output ({} files, {frames} frames)",
        files.len()
    );
    eprintln!("{} segments, {frames} frames in all", files.len());
}

/// MP4 segments by size: every segment plays, starts with a key frame, and the frames of all
/// segments add up to the recorder's count.
#[test]
fn mp4_segments_by_size_add_up_to_every_frame() {
    if !have_ffmpeg("mp4 segments") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let stack = Recording::new(
        "rec-segmp4",
        &[],
        dir.path(),
        "segment_bytes = \"100KB\"\nfragment_duration = 0.2",
    );
    let port = stack.port;
    let mut up = stack.up();
    assert_eq!(post(port, "/start").code, 200);
    wait_status(port, "three segments", |s| {
        s["segments"].as_u64() >= Some(3)
    });
    let st = post(port, "/stop").json()["status"].clone();
    up.terminate();
    let files = recordings(dir.path());
    let total: u64 = files
        .iter()
        .map(|f| {
            let p = probe(f);
            assert!(p.first_key, "{} starts with a key frame", f.display());
            decodes_cleanly(f);
            p.packets
        })
        .sum();
    eprintln!("{} mp4 segments, {total} frames: {st}", files.len());
    assert_eq!(Some(total), st["frame_count"].as_u64(), "{st}");
    assert_eq!(files.len() as u64, st["segments"].as_u64().unwrap());
}

/// `kill -9` of stackctl in the middle of a recording: the file ends on a fragment boundary
/// and plays cleanly.
#[test]
fn a_file_survives_kill_9_of_stackctl() {
    if !have_ffmpeg("kill -9") {
        return;
    }
    for format in ["mp4", "h264"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = format!("format = \"{format}\"\nmode = \"continuous\"\nfragment_duration = 0.1");
        let stack = Recording::new("rec-kill", &[], dir.path(), &keys);
        let port = stack.port;
        let mut up = stack.up();
        let started = up.first_event("camera", ": started");
        let camsim = Stray(
            field(&started, "pid")
                .and_then(|p| p.parse().ok())
                .expect("camera pid"),
        );
        wait_status(port, "a few fragments", |s| {
            s["frame_count"].as_u64() >= Some(100)
        });
        kill(up.pid(), 9);
        up.wait_exit();
        drop(camsim);
        let files = recordings(dir.path());
        assert_eq!(files.len(), 1, "{files:?}");
        let p = probe(&files[0]);
        eprintln!("{format} after kill -9: {p:?}");
        assert!(p.frames >= 30, "{p:?}");
        assert!(p.first_key);
        decodes_cleanly(&files[0]);
    }
}
