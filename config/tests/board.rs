//! The board's configuration, `config/stackctl.toml`: it describes what the launch script
//! (`scripts/run_camera_switcher_yolo_streaming.sh`) ran, with the script's defaults, and every
//! option and environment variable of the script still works against it.
#![allow(missing_docs)]
// Helpers outside `#[test]` functions panic on purpose, as tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use stackctl_config::{
    BuildCommand, DependencyCondition, Flags, LEGACY_ENV, Loaded, OnFailure, Origin, ProbeKind,
    ServiceConfig, Signal, Sources, YoloModel, load,
};

const BOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/stackctl.toml");
const ROOT: &str = "/opt/rdk-x5_smart-pet-camera";
const CAMERA: &str = "camera_switcher_daemon";
const DETECTOR: &str = "yolo_detector_daemon";
const MONITOR: &str = "web_monitor";

/// The board's file with `env` and `flags`, as root (the unit runs as root).
fn board(env: &[(&str, &str)], flags: Flags) -> Loaded {
    let mut sources = Sources::new(0);
    sources.search.clear();
    sources.file = Some(PathBuf::from(BOARD));
    sources.env = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    sources.flags = flags;
    match load(&sources) {
        Ok(loaded) => loaded,
        Err(e) => panic!("{BOARD} does not load:\n{e}"),
    }
}

fn plain() -> Loaded {
    board(&[], Flags::default())
}

fn service<'a>(loaded: &'a Loaded, name: &str) -> &'a ServiceConfig {
    loaded
        .config
        .services
        .get(name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

fn args(loaded: &Loaded, name: &str) -> Vec<String> {
    service(loaded, name).args.clone()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The detector's arguments for a model file and thresholds.
fn detector_args(model_file: &str, score: &str, nms: &str) -> Vec<String> {
    strings(&[
        "run",
        "src/detector/yolo_detector_daemon.py",
        "--model-path",
        &format!("/tmp/yolo_models/{model_file}"),
        "--score-threshold",
        score,
        "--nms-threshold",
        nms,
    ])
}

/// The monitor's arguments for a host and port.
fn monitor_args(host: &str, port: &str) -> Vec<String> {
    strings(&[
        "run",
        "src/monitor/main.py",
        "--shm-type",
        "real",
        "--host",
        host,
        "--port",
        port,
    ])
}

fn probe_kind(probe: Option<&stackctl_config::Probe>) -> ProbeKind {
    probe.expect("a probe").kind.clone()
}

#[test]
fn three_services_in_the_scripts_order() {
    let loaded = plain();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let order = loaded.config.start_order().unwrap();
    assert_eq!(order, [CAMERA, MONITOR, DETECTOR]);
}

#[test]
fn the_camera_switcher_as_the_script_ran_it() {
    let loaded = plain();
    let camera = service(&loaded, CAMERA);
    assert_eq!(camera.command, "../../build/camera_switcher_daemon");
    assert!(camera.args.is_empty());
    assert_eq!(
        camera.cwd.as_deref(),
        Some(Path::new(&format!("{ROOT}/src/capture")))
    );
    assert_eq!(
        camera.build,
        [
            BuildCommand::Argv(strings(&["make"])),
            BuildCommand::Argv(strings(&["make", "switcher-daemon-build"])),
        ]
    );
    assert_eq!(camera.clean_shm, ["/pet_camera_*"]);
    let ready = camera.ready.as_ref().unwrap();
    assert_eq!(
        ready.kind,
        ProbeKind::Shm("/pet_camera_active_frame".into())
    );
    // The script gave the camera 10 s, and exited when it was not there by then.
    assert_eq!(ready.timeout, Duration::from_secs(10));
    assert_eq!(camera.on_failure, OnFailure::Exit);
    assert_eq!(
        probe_kind(camera.liveness.as_ref()),
        ProbeKind::Shm("/pet_camera_active_frame".into())
    );
    assert!(camera.restart_dependents);
    assert!(camera.depends_on.is_empty());
    assert!(camera.enabled && camera.required);
}

#[test]
fn the_detector_and_the_monitor_as_the_script_ran_them() {
    let loaded = plain();
    let detector = service(&loaded, DETECTOR);
    assert_eq!(detector.command, "uv");
    assert_eq!(
        detector.args,
        detector_args("yolo11n_detect_bayese_640x640_nv12.bin", "0.6", "0.7")
    );
    assert_eq!(detector.cwd.as_deref(), Some(Path::new(ROOT)));
    assert_eq!(
        detector.depends_on.get(CAMERA),
        Some(&DependencyCondition::Ready)
    );
    assert!(!detector.required, "READY must not wait for the detector");
    assert_eq!(detector.stop_signal, Signal::Int);

    let monitor = service(&loaded, MONITOR);
    assert_eq!(monitor.command, "uv");
    assert_eq!(monitor.args, monitor_args("0.0.0.0", "8080"));
    assert_eq!(monitor.cwd.as_deref(), Some(Path::new(ROOT)));
    assert_eq!(
        monitor.build,
        [BuildCommand::Argv(strings(&["make", "web"]))]
    );
    assert_eq!(
        monitor.depends_on.get(CAMERA),
        Some(&DependencyCondition::Ready)
    );
    assert_eq!(
        probe_kind(monitor.ready.as_ref()),
        ProbeKind::Tcp("0.0.0.0:8080".into())
    );
    assert_eq!(
        probe_kind(monitor.liveness.as_ref()),
        ProbeKind::Http("http://127.0.0.1:8080/".into())
    );
    assert!(monitor.required);
}

#[test]
fn the_scripts_defaults() {
    let c = plain().config;
    assert_eq!((c.monitor.host.as_str(), c.monitor.port), ("0.0.0.0", 8080));
    assert_eq!((c.http.host.as_str(), c.http.port), ("0.0.0.0", 8081));
    assert_eq!(c.metrics.port, 9090);
    assert_eq!(
        (c.profiling.host.as_str(), c.profiling.port),
        ("127.0.0.1", 6060)
    );
    assert_eq!(c.streaming.max_clients, 10);
    assert!(c.streaming.enabled);
    assert_eq!(c.detector.model, YoloModel::V11n);
    assert_eq!(c.detector.score_threshold, 0.6);
    assert_eq!(c.detector.nms_threshold, 0.7);
    assert_eq!(c.source.shm, "/pet_camera_stream");
    assert_eq!(c.tools.uv, "uv");
    assert_eq!(c.recording.path, Path::new(&format!("{ROOT}/recordings")));
    assert!(!c.build.skip);
    // Absolute, because a relative path would be taken from /etc/stackctl (the services) or
    // from systemd's working directory, / (the recordings).
    for (name, s) in &c.services {
        assert!(s.cwd.as_ref().is_some_and(|d| d.is_absolute()), "{name}");
    }
    assert!(c.recording.path.is_absolute());
}

#[test]
fn the_sink_plugins_replace_the_go_server() {
    let c = plain().config;
    let streaming = &c.plugins["streaming"];
    assert_eq!(streaming["path"].as_str(), Some("libsink_webrtc.so"));
    assert_eq!(streaming["udp_port"].as_integer(), Some(8555));
    assert_eq!(streaming["stun"].as_array().map(Vec::len), Some(0));
    // Filled in by the host from streaming.max_clients and recording.path: one place each.
    assert!(!streaming.contains_key("max_clients"));
    let recording = &c.plugins["recording"];
    assert_eq!(recording["path"].as_str(), Some("libsink_recorder.so"));
    assert_eq!(recording["format"].as_str(), Some("mp4"));
    assert_eq!(recording["mode"].as_str(), Some("manual"));
    assert!(!recording.contains_key("dir"));
    // And RTSP, on the port NVRs expect.
    let rtsp = &c.plugins["rtsp"];
    assert_eq!(rtsp["path"].as_str(), Some("libsink_rtsp.so"));
    assert_eq!(rtsp["port"].as_integer(), Some(8554));
    assert_eq!(c.plugins.len(), 3);
}

/// Every variable of the script (legacy-stack.md §3), with a value other than its default,
/// the key it sets and the value that key then has (as `stackctl config` prints it).
const SCRIPT_ENV: [(&str, &str, &str); 13] = [
    ("UV_BIN", "/root/.local/bin/uv", "tools.uv"),
    ("MONITOR_HOST", "192.168.1.20", "monitor.host"),
    ("MONITOR_PORT", "8090", "monitor.port"),
    ("STREAMING_HOST", "127.0.0.1", "http.host"),
    ("STREAMING_PORT", "8091", "http.port"),
    ("METRICS_PORT", "9100", "metrics.port"),
    ("PPROF_PORT", "6061", "profiling.port"),
    ("YOLO_MODEL", "v8n", "detector.model"),
    ("YOLO_SCORE_THRESHOLD", "0.4", "detector.score_threshold"),
    ("YOLO_NMS_THRESHOLD", "0.5", "detector.nms_threshold"),
    ("STREAMING_MAX_CLIENTS", "3", "streaming.max_clients"),
    ("STREAMING_SHM", "/pet_camera_stream_day", "source.shm"),
    ("RECORDING_PATH", "/mnt/sd/recordings", "recording.path"),
];

#[test]
fn every_script_variable_beats_the_file() {
    for (var, value, key) in SCRIPT_ENV {
        assert!(
            LEGACY_ENV.contains(&(var, key)),
            "{var} should set {key} (LEGACY_ENV: {LEGACY_ENV:?})"
        );
        let loaded = board(&[(var, value)], Flags::default());
        assert_eq!(
            loaded.origin(key),
            Some(Origin::Env { var: var.into() }),
            "{var}"
        );
        let shown = loaded
            .explain()
            .into_iter()
            .find(|e| e.key == key)
            .unwrap()
            .value;
        assert_eq!(shown.trim_matches('"'), value, "{var} -> {key}");
    }
    assert_eq!(LEGACY_ENV.len(), SCRIPT_ENV.len(), "a variable is untested");
}

#[test]
fn the_variables_reach_the_services_command_lines() {
    let loaded = board(
        &[
            ("UV_BIN", "/root/.local/bin/uv"),
            ("YOLO_MODEL", "v8n"),
            ("YOLO_SCORE_THRESHOLD", "0.45"),
            ("YOLO_NMS_THRESHOLD", "0.5"),
            ("MONITOR_HOST", "192.168.1.20"),
            ("MONITOR_PORT", "8090"),
        ],
        Flags::default(),
    );
    assert_eq!(service(&loaded, DETECTOR).command, "/root/.local/bin/uv");
    assert_eq!(service(&loaded, MONITOR).command, "/root/.local/bin/uv");
    assert_eq!(
        args(&loaded, DETECTOR),
        detector_args("yolov8n_detect_bayese_640x640_nv12.bin", "0.45", "0.5")
    );
    assert_eq!(args(&loaded, MONITOR), monitor_args("192.168.1.20", "8090"));
    let monitor = service(&loaded, MONITOR);
    assert_eq!(
        probe_kind(monitor.ready.as_ref()),
        ProbeKind::Tcp("192.168.1.20:8090".into())
    );
    assert_eq!(
        probe_kind(monitor.liveness.as_ref()),
        ProbeKind::Http("http://127.0.0.1:8090/".into())
    );
}

#[test]
fn every_script_flag_works() {
    let flags = Flags {
        skip_build: true,
        no_detector: true,
        no_monitor: true,
        no_streaming: true,
        monitor_host: Some("10.0.0.2".into()),
        monitor_port: Some(8180),
        streaming_port: Some(8181),
        metrics_port: Some(0),
        pprof_port: Some(6070),
        max_clients: Some(4),
        yolo_model: Some("v13n".into()),
        score_thres: Some(0.3),
        nms_thres: Some(0.35),
        sets: Vec::new(),
    };
    let loaded = board(&[], flags);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = &loaded.config;
    assert!(c.build.skip);
    assert!(!c.services[DETECTOR].enabled);
    assert!(!c.services[MONITOR].enabled);
    assert!(c.services[CAMERA].enabled);
    assert!(!c.streaming.enabled);
    assert_eq!(
        (c.monitor.host.as_str(), c.monitor.port),
        ("10.0.0.2", 8180)
    );
    assert_eq!(c.http.port, 8181);
    assert_eq!(c.metrics.port, 0);
    assert_eq!(c.profiling.port, 6070);
    assert_eq!(c.streaming.max_clients, 4);
    assert_eq!(
        args(&loaded, DETECTOR),
        detector_args("yolov13n_detect_bayese_640x640_nv12.bin", "0.3", "0.35")
    );
    assert_eq!(args(&loaded, MONITOR), monitor_args("10.0.0.2", "8180"));
    assert_eq!(
        loaded.origin("detector.model"),
        Some(Origin::Flag {
            flag: "--yolo-model".into()
        })
    );
}

#[test]
fn flags_beat_the_scripts_variables() {
    let flags = Flags {
        yolo_model: Some("v13n".into()),
        monitor_port: Some(8280),
        ..Flags::default()
    };
    let loaded = board(&[("YOLO_MODEL", "v8n"), ("MONITOR_PORT", "8090")], flags);
    assert_eq!(loaded.config.detector.model, YoloModel::V13n);
    assert_eq!(loaded.config.monitor.port, 8280);
    assert_eq!(
        args(&loaded, DETECTOR)[3],
        "/tmp/yolo_models/yolov13n_detect_bayese_640x640_nv12.bin"
    );
}

#[test]
fn a_bad_script_value_is_refused_naming_the_variable() {
    let mut sources = Sources::new(0);
    sources.search.clear();
    sources.file = Some(PathBuf::from(BOARD));
    sources.env = vec![("YOLO_MODEL".into(), "v9n".into())];
    let errors = load(&sources).expect_err("v9n is refused").to_string();
    assert!(
        errors.contains("detector.model") && errors.contains("env YOLO_MODEL"),
        "{errors}"
    );
}
