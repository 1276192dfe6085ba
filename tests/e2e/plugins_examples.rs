//! Both example sinks loaded into the real `stackctl up`, fed by camsim through the shared
//! memory source and the bus: the Rust `stats` sink serves `GET /stats` and metrics, the C
//! `meta` sink writes one line per frame, starting at an IDR, without a gap.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use stackctl_tests::plugins::{
    camera_config, complete_lines, http_get, http_json, meta_plugin, plugin, poll, probe_frames,
    probe_plugin, rust_plugin, toml_path, wait_lines,
};
use stackctl_tests::unique_shm;
use stackctl_tests::up::{EVENT_TIMEOUT, Stack};

/// One line of the meta sink: `frame_number timestamp_ns size idr width height`.
#[derive(Debug)]
struct MetaLine {
    frame: u64,
    timestamp_ns: u64,
    size: u64,
    idr: bool,
    width: u32,
    height: u32,
}

fn meta_line(line: &str) -> MetaLine {
    let f: Vec<u64> = line
        .split(' ')
        .map(|v| {
            v.parse()
                .unwrap_or_else(|e| panic!("meta line {line:?}: {e}"))
        })
        .collect();
    assert_eq!(f.len(), 6, "meta line {line:?}");
    MetaLine {
        frame: f[0],
        timestamp_ns: f[1],
        size: f[2],
        idr: f[3] == 1,
        width: u32::try_from(f[4]).unwrap(),
        height: u32::try_from(f[5]).unwrap(),
    }
}

#[test]
fn the_rust_and_c_examples_receive_the_camera_and_serve_http_and_metrics() {
    let stats_lib = rust_plugin("sink-stats");
    let Some(meta_lib) = meta_plugin() else {
        return;
    };
    let shm = unique_shm("plugins-examples");
    let dir = tempfile::tempdir().expect("tempdir");
    let meta_out = dir.path().join("meta.txt");
    let stack = Stack::new(&format!(
        r#"{camera}
[plugins.stats]
path = {stats}
window = 10

[plugins.meta]
path = {meta}
output = {out}
"#,
        camera = camera_config(&shm),
        stats = toml_path(&stats_lib),
        meta = toml_path(&meta_lib),
        out = toml_path(&meta_out),
    ));
    let port = stack.http_port().expect("the harness chose the HTTP port");
    let mut up = stack.up(&[], &[]);
    let started = up.first_line(&["plugin started", "plugin=stats"]);
    assert!(started.contains("/stats"), "routes not logged: {started}");
    up.first_line(&["plugin started", "plugin=meta"]);
    // With plugins, READY waits for the camera's first frame on the bus.
    up.first_line(&["stack ready"]);

    // The Rust sink: frames counted, and still counted a moment later. (READY means a frame
    // reached the bus; a plugin starts with the next IDR, up to a GOP later.)
    let first = poll("/stats counting frames", EVENT_TIMEOUT, || {
        let now = http_json(port, "/stats");
        if now["frames"].as_u64() > Some(0) {
            Ok(now)
        } else {
            Err(now.to_string())
        }
    });
    let frames = first["frames"].as_u64().expect("frames in /stats");
    assert_eq!(
        (first["width"].as_u64(), first["height"].as_u64()),
        (Some(320), Some(240))
    );
    let later = poll("/stats frames growing", EVENT_TIMEOUT, || {
        let now = http_json(port, "/stats");
        if now["frames"].as_u64() > Some(frames + 30) {
            Ok(now)
        } else {
            Err(now.to_string())
        }
    });
    eprintln!("/stats: {first}\nthen:   {later}");
    assert!(later["idr_frames"].as_u64() >= Some(1), "{later:#}");
    let (code, body) = http_get(port, "/stats/unknown");
    eprintln!("GET /stats/unknown: {code} {body}");
    assert_eq!(
        code, 404,
        "a path under /stats is the plugin's to answer: {body}"
    );

    // The C sink: one line per frame, from an IDR, consecutive.
    let lines = wait_lines(&meta_out, 60, |_| true);
    let meta: Vec<MetaLine> = lines.iter().map(|l| meta_line(l)).collect();
    assert!(
        meta[0].idr,
        "the meta sink's first frame is not an IDR: {:?}",
        meta[0]
    );
    for pair in meta.windows(2) {
        assert_eq!(
            pair[1].frame,
            pair[0].frame + 1,
            "a gap in the meta sink's frames: {:?} then {:?} (source: {})",
            pair[0],
            pair[1],
            stack.status()["source"]
        );
        assert!(
            pair[1].timestamp_ns > pair[0].timestamp_ns,
            "frames out of capture order: {pair:?}"
        );
    }
    assert!(
        meta.iter()
            .all(|m| m.size > 0 && (m.width, m.height) == (320, 240))
    );
    let idrs: Vec<u64> = meta.iter().filter(|m| m.idr).map(|m| m.frame).collect();
    eprintln!(
        "meta: {} lines, frames {}..={}, IDRs at {idrs:?}",
        meta.len(),
        meta[0].frame,
        meta[meta.len() - 1].frame
    );

    // stackctl's metrics, then each plugin's own.
    let (code, metrics) = http_get(port, "/metrics");
    assert_eq!(code, 200, "{metrics}");
    for needle in [
        "stackctl_plugin_frames_total{plugin=\"stats\"}",
        "stackctl_plugin_frames_total{plugin=\"meta\"}",
        "stackctl_plugin_dropped_total{plugin=\"stats\"}",
        "stackctl_plugin_dropped_total{plugin=\"meta\"}",
        "stackctl_source_frames_total",
        "# TYPE sink_stats_frames_total counter",
        "sink_stats_idr_frames_total",
        "sink_stats_fps",
        "# TYPE sink_meta_lines_total counter",
    ] {
        assert!(
            metrics.contains(needle),
            "/metrics lacks {needle:?}:\n{metrics}"
        );
    }
    let unlabelled = stackctl_tests::plugins::unlabelled(&metrics);
    let sample = |name: &str| -> u64 {
        unlabelled
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no sample {name} in /metrics:\n{metrics}")) as u64
    };
    assert!(sample("sink_stats_frames_total") > frames, "{metrics}");
    assert!(sample("sink_meta_lines_total") >= 60, "{metrics}");

    // /health: frames flow, and the stream's SPS/PPS were seen (camsim sends them with every
    // IDR).
    let (code, body) = http_get(port, "/health");
    eprintln!("/health: {code} {body}");
    assert_eq!(code, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).expect("/health is JSON");
    assert_eq!(health["status"], "ok", "{health:#}");
    assert_eq!(health["has_headers"], true, "{health:#}");
    assert_eq!(health["webrtc_clients"], 0, "{health:#}");
    assert_eq!(health["recording"], false, "{health:#}");

    // The status: both running, with their ABI, version, routes and counters.
    let st = stack.status();
    let stats = plugin(&st, "stats");
    assert_eq!(stats["state"], "running", "{st:#}");
    assert_eq!(stats["abi"], "1.2", "{st:#}");
    assert_eq!(stats["version"], "0.1.0", "{st:#}");
    assert_eq!(stats["routes"], serde_json::json!(["/stats"]), "{st:#}");
    assert!(stats["frames"].as_u64() > Some(0), "{st:#}");
    let meta_status = plugin(&st, "meta");
    assert_eq!(meta_status["state"], "running", "{st:#}");
    assert_eq!(meta_status["abi"], "1.2", "{st:#}");
    assert_eq!(meta_status["routes"], serde_json::json!([]), "{st:#}");
    assert!(meta_status["frames"].as_u64() >= Some(60), "{st:#}");
    assert_eq!(st["source"]["shm"], shm.as_str(), "{st:#}");
    assert!(st["source"]["frames"].as_u64() > Some(0), "{st:#}");
    eprintln!("source: {}", st["source"]);

    up.terminate();
    // Stopped: the meta sink closed its file after its last line.
    let last = complete_lines(&meta_out);
    let text = std::fs::read_to_string(&meta_out).expect("meta output");
    assert!(text.ends_with('\n'), "a partial last line after stop");
    assert!(last.len() >= meta.len());
}

/// Every frame reaches the sinks with the number camsim gave it, over several laps of the
/// ring. A regression test: the source used to deliver the frames of slots 1, 5, 9... 29 with
/// the frame number of the slot's previous occupant (glibc's memcpy stores a slot's first 8
/// bytes, `frame_number`, last when the slot starts 8 bytes short of a 64-byte boundary). The
/// probe beside the meta sink shows, on failure, which frames came with a wrong number, with
/// the source's sequence and the slot.
#[test]
fn frame_numbers_reach_the_c_sink_consecutively() {
    let Some(meta_lib) = meta_plugin() else {
        return;
    };
    let Some(probe_lib) = probe_plugin("probe", &[]) else {
        return;
    };
    let shm = unique_shm("plugins-numbers");
    let dir = tempfile::tempdir().expect("tempdir");
    let (meta_out, probe_out) = (dir.path().join("meta.txt"), dir.path().join("probe.txt"));
    let stack = Stack::new(&format!(
        r#"{camera}
[plugins.meta]
path = {meta}
output = {meta_out}

[plugins.probe]
path = {probe}
output = {probe_out}
"#,
        camera = camera_config(&shm),
        meta = toml_path(&meta_lib),
        meta_out = toml_path(&meta_out),
        probe = toml_path(&probe_lib),
        probe_out = toml_path(&probe_out),
    ));
    let mut up = stack.up(&[], &[]);
    up.first_line(&["stack ready"]);
    // Past a whole ring (30 frames) three times: every slot is reused.
    let lines = wait_lines(&meta_out, 120, |_| true);
    let probe = probe_frames(&wait_lines(&probe_out, 120, |l| l.starts_with("F ")));
    let st = stack.status();
    up.terminate();

    let wrong: Vec<String> = probe
        .iter()
        .filter(|f| f.number != f.sequence)
        .map(|f| {
            format!(
                "sequence {} (slot {}) came as frame_number {}",
                f.sequence,
                f.sequence % 30,
                f.number
            )
        })
        .collect();
    eprintln!(
        "probe: {} frames, {} with a frame_number other than camsim's ({}); source: {}",
        probe.len(),
        wrong.len(),
        wrong.join("; "),
        st["source"]
    );
    assert!(
        wrong.is_empty(),
        "frames came with another number than camsim's: {}",
        wrong.join("; ")
    );
    let meta: Vec<MetaLine> = lines.iter().map(|l| meta_line(l)).collect();
    assert!(meta[0].idr, "{:?}", meta[0]);
    for pair in meta.windows(2) {
        assert_eq!(
            pair[1].frame,
            pair[0].frame + 1,
            "a gap in the meta sink's frame numbers: {:?} then {:?}\nthe probe saw: {}",
            pair[0],
            pair[1],
            wrong.join("; ")
        );
    }
}
