//! A camera that runs late is said so: `stackctl up` with camsim publishing 15 frames a second
//! while its segment announces the full rate (`frame_interval_ms` 0, 30 fps) logs a warning
//! naming the segment and the measured rate, as a fresh machine without nasm would show with
//! the demo's camera.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use stackctl_tests::plugins::{rust_plugin, toml_path};
use stackctl_tests::up::{Stack, field};
use stackctl_tests::{bin, unique_shm};

#[test]
fn a_late_camera_is_reported_with_its_rate() {
    let shm = unique_shm("late");
    let stats = rust_plugin("sink-stats");
    let stack = Stack::new(&format!(
        r#"
[source]
shm = "{name}"

[services.camera]
command = {camsim}
args = ["--shm", "{name}", "--size", "320x240", "--fps", "15"]

[plugins.stats]
path = {stats}
"#,
        name = shm.as_str(),
        camsim = toml_path(&bin("camsim")),
        stats = toml_path(&stats),
    ));
    let mut up = stack.up(&[], &[]);
    let line = up.first_line(&["the camera runs late", shm.as_str()]);
    let fps: f64 = field(&line, "measured_fps")
        .unwrap_or_else(|| panic!("no measured_fps in {line}"))
        .trim_matches('"')
        .parse()
        .unwrap_or_else(|e| panic!("measured_fps in {line}: {e}"));
    assert!((12.0..=16.5).contains(&fps), "measured {fps} fps: {line}");
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("below the 30"), "{line}");
    up.terminate();
}
