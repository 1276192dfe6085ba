//! `stackctl shm inspect` on a segment camsim wrote.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;

use stackctl_tests::{Proc, assert_success, bin, unique_shm};

#[test]
fn inspect_reports_what_the_camera_wrote() {
    let shm = unique_shm("inspect");
    let mut cam = Command::new(bin("camsim"));
    cam.args([
        "--shm",
        shm.as_str(),
        "--frames",
        "45",
        "--fps",
        "30",
        "--size",
        "320x240",
        "--keep",
    ]);
    assert_success(&Proc::spawn(cam).wait(), "camsim");

    let out = Command::new(bin("stackctl"))
        .args(["shm", "inspect", shm.as_str(), "--json"])
        .output()
        .expect("run stackctl");
    assert_success(&out, "stackctl shm inspect --json");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["layout_ok"], true);
    assert_eq!(report["size"], 93_313_448);
    assert_eq!(report["write_index"], 45);
    assert_eq!(report["formats"]["h264"], 30);
    assert_eq!(report["last_frame"]["width"], 320);
    assert_eq!(report["last_frame"]["height"], 240);
    assert_eq!(report["last_frame"]["frame_number"], 44);
    let fps = report["fps"].as_f64().expect("fps measured");
    // From the camera's own timestamps; its exact value depends on how punctual camsim was.
    assert!(fps.is_finite() && fps > 0.0, "inspect says {fps} fps");
    assert_eq!(report["sps"]["width"], 320);
    assert_eq!(report["sps"]["height"], 240);
    assert_eq!(
        report["sps"]["profile_level_id"].as_str().map(str::len),
        Some(6)
    );

    let text = Command::new(bin("stackctl"))
        .args(["shm", "inspect", shm.as_str()])
        .output()
        .expect("run");
    assert_success(&text, "stackctl shm inspect");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("layout ok") && text.contains("320x240"),
        "{text}"
    );
}
