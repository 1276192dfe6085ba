//! A plugin that fails is isolated: a Rust sink that panics in `on_frame` (caught by the SDK)
//! and a C sink that returns an error are detached and shown as failed, get no more frames,
//! while stackctl and the other plugins go on.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use stackctl_tests::plugins::{
    camera_config, complete_lines, http_get, http_json, plugin, plugin_status, poll, probe_frames,
    probe_plugin, rust_plugin, toml_path, two_probes,
};
use stackctl_tests::unique_shm;
use stackctl_tests::up::{EVENT_TIMEOUT, Stack, field, pid_exists};

/// The frame on which the panicky sink panics.
const PANIC_AFTER: u64 = 45;

/// `GET /stats`'s frame count.
fn stats_frames(port: u16) -> u64 {
    http_json(port, "/stats")["frames"]
        .as_u64()
        .expect("frames in /stats")
}

#[test]
fn a_panicking_plugin_is_detached_and_the_others_go_on() {
    let stats_lib = rust_plugin("sink-stats");
    let panicky_lib = rust_plugin("sink-panicky");
    let shm = unique_shm("plugins-panic");
    let stack = Stack::new(&format!(
        r#"{camera}
[plugins.stats]
path = {stats}

[plugins.panicky]
path = {panicky}
panic_after = {PANIC_AFTER}
"#,
        camera = camera_config(&shm),
        stats = toml_path(&stats_lib),
        panicky = toml_path(&panicky_lib),
    ));
    let port = stack.http_port().expect("the harness chose the HTTP port");
    let mut up = stack.up(&[], &[]);
    up.first_line(&["plugin started", "plugin=panicky", "/panicky"]);
    up.first_line(&["plugin started", "plugin=stats"]);

    // The SDK catches the panic and says so through the host's log; the host detaches it.
    // (Lines a plugin logs carry `plugin="panicky"`, the host's own `plugin=panicky`.)
    let caught = up.first_line(&[
        "the sink panicked in on_frame: panicky: deliberate panic on frame 45",
        "panicky/src/lib.rs",
    ]);
    assert_eq!(
        field(&caught, "plugin").as_deref(),
        Some("panicky"),
        "{caught}"
    );
    let detached = up.first_line(&["plugin failed and is detached", "plugin=panicky"]);
    eprintln!("{caught}\n{detached}");
    assert!(detached.contains("panic"), "{detached}");

    let at_failure = stats_frames(port);
    let st = stack.status();
    let p = plugin(&st, "panicky");
    assert_eq!(p["state"], "failed", "{st:#}");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("panic")),
        "the detail should mention the panic: {st:#}"
    );
    assert_eq!(
        p["frames"], PANIC_AFTER,
        "frames handed to it, the fatal one included: {st:#}"
    );
    assert_eq!(plugin(&st, "stats")["state"], "running", "{st:#}");

    // The other plugin keeps receiving frames: a second of video more.
    let later = poll("stats counting after the panic", EVENT_TIMEOUT, || {
        let n = stats_frames(port);
        if n >= at_failure + 30 {
            Ok(n)
        } else {
            Err(format!("{n} frames (at the panic: {at_failure})"))
        }
    });
    eprintln!("stats frames: {at_failure} when panicky failed, then {later}");
    assert_eq!(
        plugin_status(&stack, "panicky")["frames"],
        PANIC_AFTER,
        "frames were still handed to the failed plugin"
    );

    // stackctl itself: alive, serving, healthy. The failed plugin's route is gone.
    assert!(pid_exists(up.pid()));
    let (code, body) = http_get(port, "/health");
    assert_eq!(code, 200, "{body}");
    let (code, body) = http_get(port, "/panicky");
    eprintln!("GET /panicky after the panic: {code} {body}");
    assert_ne!(code, 200, "a failed plugin still answers: {body}");
    let (code, metrics) = http_get(port, "/metrics");
    assert_eq!(code, 200, "{metrics}");
    assert!(metrics.contains("sink_stats_frames_total"), "{metrics}");
    assert!(
        metrics.contains("stackctl_plugin_up{plugin=\"panicky\"} 0"),
        "{metrics}"
    );

    up.terminate();
}

/// The header: a non-OK `on_frame` "detaches the plugin: the host marks it failed, stops
/// delivering to it and stops it". The probe writes `S` when its `stop` runs.
#[test]
fn a_plugin_that_fails_is_stopped_when_detached() {
    let Some(probe_lib) = probe_plugin("probe", &[]) else {
        return;
    };
    let shm = unique_shm("plugins-fail");
    let dir = tempfile::tempdir().expect("tempdir");
    let (stack, failing_out, other_out) =
        two_probes(&shm, &probe_lib, dir.path(), "failing", "fail_after = 10");
    let mut up = stack.up(&[], &[]);
    let detached = up.wait_line(&["plugin failed and is detached", "plugin=failing"]);
    eprintln!("{detached}");
    assert!(
        detached.contains("on_frame returned a failure"),
        "{detached}"
    );
    let st = stack.status();
    assert_eq!(plugin(&st, "failing")["state"], "failed", "{st:#}");
    assert_eq!(plugin(&st, "failing")["frames"], 10, "{st:#}");
    assert_eq!(plugin(&st, "other")["state"], "running", "{st:#}");
    let frames = probe_frames(&complete_lines(&failing_out));
    assert_eq!(frames.len(), 10, "on_frame calls after the failure");

    // Meanwhile the other instance of the same library goes on.
    let seen = probe_frames(&complete_lines(&other_out)).len();
    poll("the other plugin going on", EVENT_TIMEOUT, || {
        let n = probe_frames(&complete_lines(&other_out)).len();
        if n > seen + 30 {
            Ok(n)
        } else {
            Err(format!("{n} frames"))
        }
    });

    // Its `stop`, then, while stackctl runs on (a second of video later at the least).
    let stopped = poll("the failed plugin stopped", Duration::from_secs(10), || {
        let lines = complete_lines(&failing_out);
        if lines.iter().any(|l| l.starts_with("S ")) {
            Ok(lines)
        } else {
            Err(format!("{} lines, no S", lines.len()))
        }
    });
    eprintln!("stopped: {:?}", stopped.last());
    up.terminate();
}
