//! Events mode on real H.264: OpenH264 encodes a 320x240, 30 fps stream (an IDR every second)
//! with an object shown 3 s and hidden 6 s; detection results for it (one every 100 ms, each
//! arriving three frames after its frame, as the detector's latency makes them) go to the
//! recorder's writer thread with the frames, and the clips are checked with the real ffprobe
//! and ffmpeg.
//!
//! The detection results are made here rather than read from detector-sim: they reach a sink
//! through the plugin ABI's `on_detections`, which this test does not need to prove the
//! recorder's part (the clip boundaries, the files, the sidecar, the thumbnail, retention).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use openh264::encoder::{Encoder, EncoderConfig, FrameRate, IntraFramePeriod, UsageType};
use openh264::formats::YUVSlices;
use openh264::{OpenH264API, Timestamp};
use serde_json::Value;
use sink_recorder::config::{Config, Mode};
use sink_recorder::events::{Hit, Observation};
use sink_recorder::status::Shared;
use sink_recorder::unit::OwnedUnit;
use sink_recorder::worker::{Command as WorkerCommand, Worker};
use stackctl_tests::media::{decodes_cleanly, have_ffmpeg, probe};

const FPS: u64 = 30;
const W: usize = 320;
const H: usize = 240;
/// Capture time of the first frame, ns.
const T0: u64 = 1_000_000_000_000;
const S: u64 = 1_000_000_000;

/// Whether the object shows at `t` seconds after the start: 3 s out of every 9, from 5 s on.
fn visible(t: f64) -> bool {
    t >= 5.0 && (t - 5.0) % 9.0 < 3.0
}

/// `seconds` of encoded frames, with the object (a bright square) where `visible` says.
fn stream(seconds: u64) -> Vec<OwnedUnit> {
    let config = EncoderConfig::new()
        .usage_type(UsageType::CameraVideoRealTime)
        .max_frame_rate(FrameRate::from_hz(FPS as f32))
        .intra_frame_period(IntraFramePeriod::from_num_frames(FPS as u32))
        .skip_frames(false)
        .scene_change_detect(false)
        .num_threads(1);
    let mut enc = Encoder::with_api_config(OpenH264API::from_source(), config).expect("encoder");
    let mut y = vec![0u8; W * H];
    let u = vec![128u8; W * H / 4];
    let v = vec![128u8; W * H / 4];
    let mut out = Vec::new();
    for n in 0..seconds * FPS {
        let t = n as f64 / FPS as f64;
        for (i, p) in y.iter_mut().enumerate() {
            *p = 40 + ((i % W + n as usize) % 64) as u8;
        }
        if visible(t) {
            for row in 80..160 {
                y[row * W + 100..row * W + 180].fill(230);
            }
        }
        let src = YUVSlices::new((&y, &u, &v), (W, H), (W, W / 2, W / 2));
        let bits = enc
            .encode_at(&src, Timestamp::from_millis(n * 1000 / FPS))
            .expect("encode");
        let data = bits.to_vec();
        let idr = n % FPS == 0;
        out.push(OwnedUnit {
            data,
            timestamp_ns: T0 + n * S / FPS,
            idr,
            sps: None,
            pps: None,
            inband: idr,
            generation: 0,
        });
    }
    out
}

fn config(dir: &Path) -> Config {
    Config {
        dir: dir.to_owned(),
        mode: Mode::Events,
        pre_roll: Duration::from_secs(2),
        post_roll: Duration::from_secs(2),
        fragment_duration: Duration::from_millis(200),
        classes: vec!["cat".to_owned()],
        ..Config::default()
    }
}

/// Feeds `frames` (and a detection result every 3rd frame, three frames late) to a writer
/// thread; after `stop_after` frames (all if none) it stops recording (`POST /stop`), then the
/// thread shuts down.
fn record(config: Config, frames: Vec<OwnedUnit>, stop_after: Option<usize>) -> Arc<Shared> {
    let shared = Arc::new(Shared::new(config.format, config.mode));
    let (tx, rx) = crossbeam_channel::bounded(10_000);
    let (ctl, ctl_rx) = crossbeam_channel::unbounded();
    let (det_tx, det_rx) = crossbeam_channel::bounded(10_000);
    let worker = Worker::<OwnedUnit>::new(config, shared.clone(), Arc::new(AtomicBool::new(false)))
        .with_detections(det_rx);
    let thread = std::thread::spawn(move || worker.run(rx, ctl_rx));
    let times: Vec<u64> = frames.iter().map(|f| f.timestamp_ns).collect();
    let n = stop_after.unwrap_or(frames.len());
    for (i, f) in frames.into_iter().take(n).enumerate() {
        tx.send(f).expect("worker");
        // Frames and results reach the thread on two queues: let the frame in first, as the
        // host delivers them in order.
        while !tx.is_empty() {
            std::thread::yield_now();
        }
        if i >= 3 && (i - 3) % 3 == 0 {
            let ts = times[i - 3];
            let t = (ts - T0) as f64 / S as f64;
            let hits = if visible(t) {
                vec![Hit {
                    ts_ns: ts,
                    class: "cat".to_owned(),
                    confidence: 0.6 + ((i / 3) % 4) as f32 * 0.1,
                    bbox: [100, 80, 80, 80],
                }]
            } else {
                Vec::new()
            };
            det_tx
                .send(Observation { ts_ns: ts, hits })
                .expect("worker");
            while !det_tx.is_empty() {
                std::thread::yield_now();
            }
        }
    }
    if stop_after.is_some() {
        let (reply, answer) = crossbeam_channel::bounded(1);
        ctl.send(WorkerCommand::Stop(reply)).expect("worker");
        answer
            .recv_timeout(Duration::from_secs(20))
            .expect("answer")
            .expect("stopped");
    }
    ctl.send(WorkerCommand::Shutdown).expect("worker");
    thread.join().expect("the worker ends");
    shared
}

fn clips(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("event_") && n.ends_with(".mp4")
        })
        .collect();
    v.sort();
    v
}

fn sidecar(clip: &Path) -> Value {
    let text = std::fs::read(clip.with_extension("json")).expect("the sidecar");
    serde_json::from_slice(&text).expect("sidecar json")
}

/// ffprobe's word on a JPEG: (codec, width, height).
fn jpeg_size(file: &Path) -> (String, u64, u64) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
        ])
        .args(["-of", "json"])
        .arg(file)
        .output()
        .expect("ffprobe");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let s = &v["streams"][0];
    (
        s["codec_name"].as_str().unwrap_or("").to_owned(),
        s["width"].as_u64().unwrap_or(0),
        s["height"].as_u64().unwrap_or(0),
    )
}

#[test]
fn each_event_is_one_clip_from_its_pre_roll_to_its_post_roll() {
    if !have_ffmpeg("each_event_is_one_clip_from_its_pre_roll_to_its_post_roll") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // Shown at 5-8 s, 14-17 s, 23-26 s.
    let shared = record(config(dir.path()), stream(30), None);
    let clips = clips(dir.path());
    assert_eq!(
        clips.len(),
        3,
        "one clip per appearance, none while hidden: {clips:?}"
    );
    for (k, clip) in clips.iter().enumerate() {
        let side = sidecar(clip);
        assert_eq!(side["complete"], true, "{side}");
        assert_eq!(side["classes"], serde_json::json!(["cat"]));
        // The first detection is the appearance (at 5 + 9k s, on an IDR): the clip starts
        // pre_roll (2 s) before it, at an IDR (every second here), within 1 s.
        let first = side["first_detection_offset"].as_f64().expect("first");
        assert!(
            (1.0..=3.0).contains(&first),
            "clip {k} starts {first} s before: {side}"
        );
        // The last detection is the last result before it hides (3 s later, within 100 ms);
        // the clip ends post_roll (2 s) after it.
        let last = side["last_detection_offset"].as_f64().expect("last");
        assert!((last - first - 3.0).abs() <= 0.15, "{side}");
        let duration = side["duration"].as_f64().expect("duration");
        assert!(
            (duration - (last + 2.0)).abs() <= 0.1,
            "clip {k}: {duration} s, last detection at {last} s: {side}"
        );
        let p = probe(clip);
        assert!(p.first_key, "clip {k} starts with a key frame");
        assert_eq!((p.width, p.height), (W as u64, H as u64));
        let expected = duration * FPS as f64;
        assert!(
            (p.frames as f64 - expected).abs() <= 2.0,
            "clip {k}: {} frames for {duration} s",
            p.frames
        );
        assert_eq!(side["frames"].as_u64(), Some(p.frames));
        decodes_cleanly(clip);
        // The thumbnail: a JPEG of the picture (at most 640 wide: here its own size).
        let thumb = clip.with_extension("jpg");
        assert_eq!(
            side["thumbnail"],
            thumb.file_name().unwrap().to_string_lossy().as_ref()
        );
        assert_eq!(jpeg_size(&thumb), ("mjpeg".to_owned(), W as u64, H as u64));
        assert!(side["max_confidence"].as_f64().expect("max") >= 0.89);
        assert!(
            side["boxes"].as_array().expect("boxes").len() >= 3,
            "{side}"
        );
    }
    let metrics = shared.metrics(0.0);
    assert!(
        metrics.contains("recorder_events_total{class=\"cat\"} 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("recorder_event_seconds_count 3\n"),
        "{metrics}"
    );
}

#[test]
fn a_stop_during_an_event_finishes_the_clip_cleanly() {
    if !have_ffmpeg("a_stop_during_an_event_finishes_the_clip_cleanly") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // Stopped at 6.5 s: 1.5 s into the first appearance.
    record(config(dir.path()), stream(8), Some(195));
    let clips = clips(dir.path());
    assert_eq!(clips.len(), 1, "{clips:?}");
    let side = sidecar(&clips[0]);
    assert_eq!(side["complete"], true, "{side}");
    let duration = side["duration"].as_f64().expect("duration");
    // From 3 s (the IDR 2 s before 5 s) to the stop at 6.5 s.
    assert!((duration - 3.5).abs() <= 0.1, "{side}");
    let p = probe(&clips[0]);
    assert!(p.first_key);
    assert_eq!(side["frames"].as_u64(), Some(p.frames));
    decodes_cleanly(&clips[0]);
}

#[test]
fn retention_deletes_the_oldest_clip_first_with_its_sidecar_and_thumbnail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let frames = stream(30);
    // Measure a clip's size first, then allow about two.
    let probe_dir = tempfile::tempdir().expect("tempdir");
    record(config(probe_dir.path()), frames.clone(), None);
    let sizes: Vec<u64> = clips(probe_dir.path())
        .iter()
        .map(|c| std::fs::metadata(c).expect("stat").len())
        .collect();
    assert_eq!(sizes.len(), 3);
    let mut cfg = config(dir.path());
    cfg.max_total_bytes = Some(sizes[1] + sizes[2] + 1000);
    let shared = record(cfg, frames, None);
    let kept = clips(dir.path());
    let names = |dir: &Path| -> Vec<String> {
        clips(dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(kept.len(), 2, "{:?}", names(dir.path()));
    // The companions of the deleted clip went with it: nothing but two clips' files remain.
    let mut rest: Vec<String> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    rest.sort();
    assert_eq!(rest.len(), 6, "{rest:?}");
    for clip in &kept {
        for ext in ["json", "jpg"] {
            assert!(clip.with_extension(ext).exists(), "{rest:?}");
        }
    }
    // The oldest went: the kept clips are the second and third appearances (14 s, 23 s).
    let mut firsts: Vec<u64> = kept
        .iter()
        .map(|c| (sidecar(c)["first_detection_ns"].as_u64().expect("ns") - T0) / S)
        .collect();
    firsts.sort_unstable();
    assert_eq!(firsts, [14, 23]);
    assert_eq!(
        shared
            .counters
            .deletions
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
