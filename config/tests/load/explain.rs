//! `Loaded::explain`, `Loaded::origin` and `Loaded::to_toml`.

use stackctl_config::{Origin, Sources, load};

use crate::{LEGACY, env, file, line_of, ok, sources, sources_with};

fn explained(s: &Sources, key: &str) -> (String, Origin) {
    let all = ok(s).explain();
    let Some(e) = all.iter().find(|e| e.key == key) else {
        panic!("no {key} in {all:#?}")
    };
    let e = e.clone();
    (e.value, e.origin)
}

#[test]
fn explain_reports_each_layer() {
    let f = file(LEGACY);
    let mut s = sources_with(&f);
    s.env = env(&[("UV_BIN", "/opt/uv"), ("STACKCTL_LOG__LEVEL", "debug")]);
    s.flags.metrics_port = Some(0);
    s.flags.sets.push("services.camera.restart=always".into());
    let file_at = |needle: &str| Origin::File {
        path: f.path.clone(),
        line: Some(line_of(LEGACY, needle)),
    };
    let after = |needle: &str, lines: usize| Origin::File {
        path: f.path.clone(),
        line: Some(line_of(LEGACY, needle) + lines),
    };
    let rows = [
        ("http.port", "8081", Origin::Default),
        (
            "services.camera.stop_signal",
            "\"SIGTERM\"",
            Origin::Default,
        ),
        ("services.camera.cwd", "\"src/capture\"", file_at("cwd")),
        (
            "services.camera.ready.shm",
            "\"/pet_camera_active_frame\"",
            file_at("ready"),
        ),
        ("services.camera.ready.timeout", "\"10s\"", file_at("ready")),
        ("services.camera.ready.retries", "0", Origin::Default),
        (
            "services.web_monitor.env.PYTHONUNBUFFERED",
            "\"1\"",
            file_at("PYTHONUNBUFFERED"),
        ),
        (
            "services.web_monitor.stop_signal",
            "\"SIGINT\"",
            file_at("stop_signal = \"INT\""),
        ),
        (
            "tools.uv",
            "\"/opt/uv\"",
            Origin::Env {
                var: "UV_BIN".into(),
            },
        ),
        (
            "services.web_monitor.command",
            "\"/opt/uv\"",
            after("[services.web_monitor]", 1),
        ),
        (
            "log.level",
            "\"debug\"",
            Origin::Env {
                var: "STACKCTL_LOG__LEVEL".into(),
            },
        ),
        (
            "metrics.port",
            "0",
            Origin::Flag {
                flag: "--metrics-port".into(),
            },
        ),
        (
            "services.camera.restart",
            "\"always\"",
            Origin::Flag {
                flag: "--set services.camera.restart=always".into(),
            },
        ),
        (
            "detector.model_path",
            "\"/tmp/yolo_models/yolo11n_detect_bayese_640x640_nv12.bin\"",
            Origin::Derived {
                from: vec!["detector.model_dir".into(), "detector.model".into()],
            },
        ),
        ("plugins", "{}", Origin::Default),
    ];
    for (key, value, origin) in rows {
        assert_eq!(explained(&s, key), (value.to_owned(), origin), "{key}");
    }
}

#[test]
fn explain_covers_every_value_once_in_key_order() {
    let f = file(LEGACY);
    let loaded = ok(&sources_with(&f));
    let keys: Vec<String> = loaded.explain().into_iter().map(|e| e.key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted);
    for key in [
        "plugin_dirs",
        "control.socket",
        "source.guard",
        "services.camera.backoff.jitter",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key}");
    }
}

#[test]
fn origin_of_keys_and_tables() {
    let f = file(LEGACY);
    let loaded = ok(&sources_with(&f));
    let at = |needle: &str| {
        Some(Origin::File {
            path: f.path.clone(),
            line: Some(line_of(LEGACY, needle)),
        })
    };
    assert_eq!(loaded.origin("services.camera"), at("[services.camera]"));
    assert_eq!(loaded.origin("services.camera.build"), at("build = ["));
    assert_eq!(
        loaded.origin("services.camera.max_restarts"),
        Some(Origin::Default)
    );
    assert_eq!(loaded.origin("http"), Some(Origin::Default));
    assert_eq!(loaded.origin("services.nope"), None);
    assert_eq!(loaded.origin("http.port.x"), None);
}

#[test]
fn to_toml_round_trips() {
    let f = file(LEGACY);
    let mut s = sources_with(&f);
    s.env = env(&[
        ("MONITOR_PORT", "8090"),
        ("XDG_RUNTIME_DIR", "/run/user/1000"),
    ]);
    s.flags.no_detector = true;
    s.flags.sets = vec![
        "services.camera.args=[\"{{not a reference}}\", \"}}\"]".into(),
        "plugins.webrtc.ice = { port = 8555, hosts = [\"a\"] }".into(),
        // A plugin section needs its `path` (a configuration error without one).
        "plugins.webrtc.path=/usr/lib/stackctl/plugins/libsink_webrtc.so".into(),
        "control.group=video".into(),
    ];
    let first = ok(&s);
    let printed = first.to_toml();
    let again = file(&printed);
    let second = ok(&sources_with(&again));
    assert_eq!(second.config, first.config, "\n{printed}");
    assert_eq!(second.to_toml(), printed);
    assert_eq!(
        first.config.services["camera"].args,
        ["{not a reference}", "}"]
    );
    assert!(printed.contains("\"{{not a reference}}\""), "{printed}");
}

#[test]
fn defaults_round_trip() {
    let loaded = ok(&sources());
    let again = file(&loaded.to_toml());
    assert_eq!(ok(&sources_with(&again)).config, loaded.config);
    assert!(load(&sources_with(&file(""))).is_ok());
}
