//! What the camera sees, served by `stackctl up`: the detector's results as server-sent events
//! (`/api/detections/stream`) and the latest one (`/api/detections/latest`), snapshots of the
//! NV12 ring (`/snapshot.jpg`), and their counters in `status` and `/metrics`.
//!
//! The real camsim draws its orange square on a schedule (`--object-schedule`) and writes where
//! it drew it (`--dump-objects`); the real detector-sim finds it and writes results into the
//! board's detection segment; the test reads the events over a plain TCP connection and checks
//! every box against the truth. Snapshots are decoded with ffprobe.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use stackctl_tests::media::{have_ffmpeg, probe};
use stackctl_tests::plugins::{http_json, poll, request};
use stackctl_tests::up::{EVENT_TIMEOUT, Stack};
use stackctl_tests::vision::VisionRig;
use stackctl_tests::{Proc, assert_success, bin, unique_shm};

/// An open `/api/detections/stream`: the events' JSON, line by line.
struct Events {
    reader: BufReader<TcpStream>,
}

impl Events {
    fn open(port: u16) -> Self {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(EVENT_TIMEOUT))
            .expect("read timeout");
        stream
            .write_all(b"GET /api/detections/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
            .expect("send");
        let mut reader = BufReader::new(stream);
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("a response head");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push(line.trim_end().to_ascii_lowercase());
        }
        assert!(head[0].starts_with("http/1.1 200"), "{head:?}");
        assert!(
            head.iter().any(|h| h == "content-type: text/event-stream"),
            "{head:?}"
        );
        assert!(
            head.iter().any(|h| h == "cache-control: no-store"),
            "{head:?}"
        );
        Self { reader }
    }

    /// The next event's JSON (chunked framing lines and comments skipped).
    fn next(&mut self) -> Value {
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("an event");
            assert!(n > 0, "the stream ended");
            if let Some(json) = line.trim_end().strip_prefix("data: ") {
                return serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {line}"));
            }
        }
    }
}

#[test]
fn detections_stream_with_the_true_box_and_snapshots_decode() {
    if !have_ffmpeg("detections and snapshots in up") {
        return;
    }
    let rig = VisionRig::new("vis");
    let dir = tempfile::tempdir().expect("tempdir");
    let stack = Stack::new(&rig.config("640x480", "2s:2s", "50ms"));
    let port = stack.http_port().expect("port");
    let mut up = stack.up(&[], &[]);
    up.wait_line(&["stack ready"]);

    let mut events = Events::open(port);
    let (mut with_cat, mut empty) = (0, 0);
    let mut last_frame = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    while (with_cat < 15 || empty < 15) && Instant::now() < deadline {
        let event = events.next();
        let frame = event["frame_number"].as_u64().expect("frame_number");
        let truth = rig.wait_truth(frame);
        let (ts, x, y, side, visible) = (
            truth.timestamp_ns,
            truth.x,
            truth.y,
            truth.side,
            truth.visible,
        );
        let timestamp = event["timestamp"].as_f64().expect("timestamp");
        assert!(
            (timestamp * 1e9 - ts as f64).abs() < 1000.0,
            "{event}: camsim stamped {ts}"
        );
        let found = event["detections"].as_array().expect("detections");
        if found.is_empty() {
            assert!(!visible, "{event}: the square shows in frame {frame}");
            empty += 1;
        } else {
            assert!(visible, "{event}: the square hides in frame {frame}");
            assert_eq!(found.len(), 1, "{event}");
            let d = &found[0];
            assert_eq!(d["class_name"], "cat", "{event}");
            let c = d["confidence"].as_f64().expect("confidence");
            assert!(c > 0.0 && c <= 1.0, "{event}");
            let b = &d["bbox"];
            let (bx, by, bw, bh) = (
                b["x"].as_i64().unwrap(),
                b["y"].as_i64().unwrap(),
                b["w"].as_i64().unwrap(),
                b["h"].as_i64().unwrap(),
            );
            // The box holds the true square (within 2 px) and is not much larger.
            assert!(
                bx <= x + 2 && by <= y + 2 && bx + bw >= x + side - 2 && by + bh >= y + side - 2,
                "{event}: the square is at {x},{y} size {side}"
            );
            assert!(bw <= side + 4 && bh <= side + 4, "{event}: side {side}");
            with_cat += 1;
        }
        last_frame = last_frame.max(frame);
    }
    assert!(
        with_cat >= 15 && empty >= 15,
        "{with_cat} with the cat, {empty} empty"
    );

    let latest = request(port, "GET", "/api/detections/latest", &[]);
    assert_eq!(latest.code, 200, "{}", latest.text());
    assert!(latest.json()["frame_number"].as_u64().unwrap() >= last_frame);

    // Snapshots of the live camera.
    for (target, size) in [
        ("/snapshot.jpg", (640, 480)),
        ("/snapshot.jpg?width=320", (320, 240)),
    ] {
        let answer = request(port, "GET", target, &[]);
        assert_eq!(answer.code, 200, "{target}: {}", answer.text());
        assert_eq!(answer.header("content-type"), Some("image/jpeg"));
        assert_eq!(answer.header("cache-control"), Some("no-store"));
        let file = dir.path().join("snap.jpg");
        std::fs::write(&file, &answer.body).expect("write");
        let p = probe(&file);
        assert_eq!((p.width, p.height), size, "{target}: {p:?}");
    }

    // The counters, with the stream still open (the status is refreshed once a second).
    poll("the counters in the status", EVENT_TIMEOUT, || {
        let status = stack.status();
        let d = &status["detections"];
        let ok = d["attached"] == true
            && d["results"].as_u64().unwrap_or(0) >= 30
            && d["stream_clients"] == 1
            && d["stream_events"].as_u64().unwrap_or(0) >= 30
            && status["snapshots"]["encodes"].as_u64().unwrap_or(0) >= 2;
        if ok { Ok(()) } else { Err(status.to_string()) }
    });
    let text = String::from_utf8_lossy(&stack.ctl(&["status"]).stdout).into_owned();
    assert!(
        text.contains(&format!("detections {}: ", rig.detections.as_str())),
        "{text}"
    );
    assert!(text.contains("snapshots "), "{text}");
    let metrics = request(port, "GET", "/metrics", &[]).text();
    for name in [
        "stackctl_detection_results_total ",
        "stackctl_detections_total ",
        "stackctl_detections_rejected_total{reason=\"malformed\"} 0",
        "stackctl_detection_stream_clients 1",
        "stackctl_snapshot_encodes_total ",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    drop(events);
    up.terminate();
}

#[test]
fn snapshots_without_a_camera_then_a_hundred_at_once_one_encode() {
    if !have_ffmpeg("snapshots in up") {
        return;
    }
    let stream = unique_shm("vis-still");
    let nv12 = unique_shm("vis-still-nv12");
    let detections = unique_shm("vis-none");
    let stack = Stack::new(&format!(
        r#"
[source]
detections = "{detections}"
nv12 = "{nv12}"

[services.idle]
command = "sleep"
args = ["1000"]
"#,
        detections = detections.as_str(),
        nv12 = nv12.as_str(),
    ));
    let port = stack.http_port().expect("port");
    let mut up = stack.up(&[], &[]);
    up.wait_line(&["stack ready"]);

    // No camera, no detector: 503 with the reason, 404 before any result, JSON errors.
    let answer = request(port, "GET", "/snapshot.jpg", &[]);
    assert_eq!(answer.code, 503, "{}", answer.text());
    let reason = answer.json()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains(nv12.as_str()) && reason.contains("does not exist"),
        "{reason}"
    );
    let answer = request(port, "GET", "/api/detections/latest", &[]);
    assert_eq!(answer.code, 404, "{}", answer.text());
    assert!(
        answer.json()["error"]
            .as_str()
            .unwrap()
            .contains("no detection result yet")
    );
    for (method, target, code) in [
        ("GET", "/snapshot.jpg?width=abc", 400),
        ("GET", "/snapshot.jpg?width=0", 400),
        ("POST", "/snapshot.jpg", 405),
        ("DELETE", "/api/detections/stream", 405),
    ] {
        let answer = request(port, method, target, &[]);
        assert_eq!(answer.code, code, "{method} {target}: {}", answer.text());
        assert!(answer.json()["error"].is_string(), "{method} {target}");
    }
    poll("the detection source in the status", EVENT_TIMEOUT, || {
        let status = stack.status();
        let d = &status["detections"];
        if d["attached"] == false && d["results"] == 0 && d["shm"] == detections.as_str() {
            Ok(())
        } else {
            Err(status.to_string())
        }
    });

    // A camera that wrote ten frames and stopped: its last frame stays the newest.
    let mut cam = Command::new(bin("camsim"));
    cam.args(["--shm", stream.as_str(), "--nv12-shm", nv12.as_str()])
        .args([
            "--size", "640x480", "--fps", "30", "--frames", "10", "--keep",
        ]);
    assert_success(&Proc::spawn(cam).wait(), "camsim");

    let answers: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| s.spawn(|| request(port, "GET", "/snapshot.jpg", &[])))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for a in &answers {
        assert_eq!(a.code, 200, "{}", a.text());
        assert_eq!(a.body, answers[0].body);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("still.jpg");
    std::fs::write(&file, &answers[0].body).expect("write");
    let p = probe(&file);
    assert_eq!((p.width, p.height), (640, 480), "{p:?}");

    let s = poll("the snapshot counters", EVENT_TIMEOUT, || {
        let status = http_json(port, "/api/status");
        let s = status["snapshots"].clone();
        if s["served"] == 100 {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    });
    assert_eq!(s["encodes"], 1, "a hundred requests for one frame: {s}");
    assert_eq!(s["cached"], 99, "{s}");
    let metrics = request(port, "GET", "/metrics", &[]).text();
    assert!(
        metrics
            .lines()
            .any(|l| l == "stackctl_snapshot_encodes_total 1"),
        "{metrics}"
    );
    up.terminate();
}
