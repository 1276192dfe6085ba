//! Events mode with the real parts: camsim shows its orange square 3 s and hides it 6 s
//! (`--object-schedule 3s:6s`), detector-sim finds it and writes results into shared memory,
//! the core's frame and detection sources put both on one bus, and the real plugin host feeds
//! the real `libsink_recorder.so` (ABI 1.1 `on_detections`). The routes are then asked about
//! the clips on disk.
//!
//! Checked: one clip per appearance and none while the square hides; each clip after the first
//! (the first appearance comes before any pre-roll exists) begins pre_roll (2 s) ± 1 s before
//! its first detection, at a key frame, and ends post_roll (2 s) after its last one; ffmpeg
//! decodes it without a word; its frames ≈ duration × 30; its sidecar and thumbnail exist and
//! are served; the metrics count the events.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sink_recorder::events::http::handle;
use sink_recorder::http::Control;
use sink_recorder::status::Shared;
use sink_recorder::worker::Reply;
use stackctl_core::bus::Bus;
use stackctl_plugin_host::{Plugin, loader};
use stackctl_tests::Proc;
use stackctl_tests::media::{decodes_cleanly, have_ffmpeg, probe};
use stackctl_tests::plugins::{poll, rust_plugin, toml_path};
use stackctl_tests::vision::VisionRig;

/// The routes over the clips directory (start and stop are not asked).
struct Dir {
    dir: PathBuf,
    shared: Shared,
}

impl Control for Dir {
    fn start(&self) -> Reply {
        unreachable!()
    }
    fn stop(&self) -> Reply {
        unreachable!()
    }
    fn shared(&self) -> &Shared {
        &self.shared
    }
    fn dir(&self) -> &Path {
        &self.dir
    }
}

fn complete_sidecars(dir: &Path) -> Vec<Value> {
    let mut v: Vec<(String, Value)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !(name.starts_with("event_") && name.ends_with(".json")) {
                        return None;
                    }
                    let v: Value = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
                    (v["complete"] == true).then_some((name, v))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| {
        a.1["first_detection_ns"]
            .as_u64()
            .cmp(&b.1["first_detection_ns"].as_u64())
    });
    v.into_iter().map(|(_, v)| v).collect()
}

#[test]
fn camsim_and_detector_sim_make_one_clip_per_appearance() {
    if !have_ffmpeg("camsim_and_detector_sim_make_one_clip_per_appearance") {
        return;
    }
    let recorder = rust_plugin("sink-recorder");
    let rig = VisionRig::new("rec-ev");
    let dir = tempfile::tempdir().expect("tempdir");

    let bus = Bus::new();
    let library = loader::load("recording", &recorder).expect("load");
    assert!(library.wants_detections());
    let plugin = Plugin::start(
        "recording",
        library,
        &format!(
            "dir = {}\nmode = \"events\"\nclasses = [\"cat\"]\npre_roll = 2\npost_roll = 2\n\
             fragment_duration = 0.5\n",
            toml_path(dir.path())
        ),
    )
    .expect("start");
    plugin.attach(&bus, 256).expect("attach");
    let (frames, detections) = rig.sources(&bus);
    let mut camsim = rig.camsim("320x240", "3s:6s");
    camsim.args(["--gop", "30"]);
    let camsim = Proc::spawn(camsim);
    let detector = Proc::spawn(rig.detector("100ms"));

    // Three appearances (0-3 s, 9-12 s, 18-21 s), each clip complete 2 s after it ends.
    poll("three complete clips", Duration::from_secs(60), || {
        let n = complete_sidecars(dir.path()).len();
        if n >= 3 {
            Ok(())
        } else {
            Err(format!("{n} complete clips"))
        }
    });
    let metrics = plugin.metrics();
    drop(detector);
    drop(camsim);
    let status = plugin.status();
    plugin.stop();
    detections.stop();
    frames.stop().expect("frame source");
    assert_eq!(status.state, "running", "{status:?}");
    assert!(status.detections > 100, "{status:?}");

    let sidecars = complete_sidecars(dir.path());
    assert!((3..=4).contains(&sidecars.len()), "{sidecars:#?}");
    let ctl = Dir {
        dir: dir.path().to_owned(),
        shared: Shared::new(
            sink_recorder::config::Format::Mp4,
            sink_recorder::config::Mode::Events,
        ),
    };
    for (k, side) in sidecars.iter().take(3).enumerate() {
        let first = side["first_detection_offset"].as_f64().expect("first");
        let last = side["last_detection_offset"].as_f64().expect("last");
        let duration = side["duration"].as_f64().expect("duration");
        if k > 0 {
            assert!(
                (1.0..=3.05).contains(&first),
                "clip {k}: pre-roll {first} s: {side}"
            );
        }
        // Shown 3 s: the detections span about that (the detector samples every 100 ms).
        assert!((2.5..=3.3).contains(&(last - first)), "clip {k}: {side}");
        assert!(
            (duration - (last + 2.0)).abs() <= 0.25,
            "clip {k}: {duration} s, last detection at {last} s: {side}"
        );
        // Not into the next appearance (6 s later): nothing was recorded while hidden.
        assert!(duration < first + 3.3 + 2.5, "clip {k}: {side}");
        let id = side["id"].as_str().expect("id");
        let clip = dir.path().join(side["file"].as_str().expect("file"));
        let p = probe(&clip);
        assert!(p.first_key, "clip {k} starts with a key frame");
        assert!(
            (p.frames as f64 - duration * 30.0).abs() <= 3.0,
            "clip {k}: {} frames in {duration} s",
            p.frames
        );
        decodes_cleanly(&clip);
        assert!(dir.path().join(format!("{id}.jpg")).exists(), "{side}");

        // The routes.
        let get = |path: &str, query: &str| handle(&ctl, "GET", path, query, None, "").read_whole();
        let one = get(&format!("/events/{id}"), "");
        assert_eq!(one.status, 200);
        let served: Value = serde_json::from_slice(&one.body).expect("json");
        assert_eq!(&served, side);
        let video = get(&format!("/events/{id}.mp4"), "");
        assert_eq!(video.status, 200);
        assert_eq!(video.body, std::fs::read(&clip).expect("read"));
        let thumb = get(&format!("/events/{id}.jpg"), "");
        assert_eq!(thumb.status, 200);
        assert!(thumb.body.starts_with(&[0xff, 0xd8]), "a JPEG");
    }
    let list = handle(&ctl, "GET", "/events", "class=cat&limit=2", None, "").read_whole();
    assert_eq!(list.status, 200);
    let v: Value = serde_json::from_slice(&list.body).expect("json");
    let events = v["events"].as_array().expect("events");
    assert_eq!(events.len(), 2);
    let newest = sidecars.last().expect("a clip");
    assert_eq!(events[0]["id"], newest["id"], "newest first");
    let id = newest["id"].as_str().expect("an id");
    assert_eq!(events[0]["video"], format!("/events/{id}.mp4"));
    // Behind a route prefix, the links carry it.
    let prefixed = handle(&ctl, "GET", "/events", "limit=1", None, "/clips").read_whole();
    let page: Value = serde_json::from_slice(&prefixed.body).expect("json");
    assert_eq!(
        page["events"][0]["video"],
        format!("/clips/events/{id}.mp4")
    );
    assert_eq!(
        page["events"][0]["thumbnail_url"],
        format!("/clips/events/{id}.jpg")
    );
    let cursor = v["next_cursor"].as_str().expect("a next page");
    let rest = handle(
        &ctl,
        "GET",
        "/events",
        &format!("cursor={cursor}"),
        None,
        "",
    )
    .read_whole();
    let rest: Value = serde_json::from_slice(&rest.body).expect("json");
    assert_eq!(
        rest["events"].as_array().expect("events").len(),
        sidecars.len() - 2
    );
    let dogs = handle(&ctl, "GET", "/events", "class=dog", None, "").read_whole();
    let dogs: Value = serde_json::from_slice(&dogs.body).expect("json");
    assert_eq!(dogs["events"], serde_json::json!([]));
    for bad in [
        "/events/../recording",
        "/events/event_20260102_030405",
        "/events/x.jpg",
    ] {
        assert_eq!(
            handle(&ctl, "GET", bad, "", None, "").read_whole().status,
            404,
            "{bad}"
        );
    }
    assert_eq!(
        handle(&ctl, "POST", "/events", "", None, "")
            .read_whole()
            .status,
        405
    );

    assert!(
        metrics.contains("recorder_events_total{class=\"cat\"} "),
        "{metrics}"
    );
}
