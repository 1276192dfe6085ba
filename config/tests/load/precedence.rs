//! Each layer lands on its keys, and later layers win.

use std::path::PathBuf;

use stackctl_config::{Flags, LEGACY_ENV, Origin, load};

use crate::{Edit, LEGACY, env, file, line_of, ok, sources, sources_with};

fn flag(name: &str) -> Origin {
    Origin::Flag { flag: name.into() }
}

fn env_origin(var: &str) -> Origin {
    Origin::Env { var: var.into() }
}

#[test]
fn later_layers_win() {
    let text = "[http]\nport = 8001\n";
    let f = file(text);
    let file_origin = Origin::File {
        path: f.path.clone(),
        line: Some(2),
    };
    // Each row adds one layer to the previous ones.
    let rows: [(Edit<'_>, u16, Origin); 6] = [
        (&|_| {}, 8081, Origin::Default),
        (&|s| s.file = Some(f.path.clone()), 8001, file_origin),
        (
            &|s| s.env.extend(env(&[("STREAMING_PORT", "8002")])),
            8002,
            env_origin("STREAMING_PORT"),
        ),
        (
            &|s| s.env.extend(env(&[("STACKCTL_HTTP__PORT", "8003")])),
            8003,
            env_origin("STACKCTL_HTTP__PORT"),
        ),
        (
            &|s| s.flags.streaming_port = Some(8004),
            8004,
            flag("--streaming-port"),
        ),
        (
            &|s| s.flags.sets.push("http.port=8005".into()),
            8005,
            flag("--set http.port=8005"),
        ),
    ];
    let mut s = sources();
    for (add, port, origin) in rows {
        add(&mut s);
        let loaded = ok(&s);
        assert_eq!(loaded.config.http.port, port);
        assert_eq!(loaded.origin("http.port"), Some(origin));
    }
}

#[test]
fn stackctl_variables_beat_legacy_ones_whatever_the_order() {
    let mut s = sources();
    s.env = env(&[("STACKCTL_MONITOR__PORT", "2"), ("MONITOR_PORT", "1")]);
    assert_eq!(ok(&s).config.monitor.port, 2);
}

#[test]
fn every_legacy_variable_lands_on_its_key() {
    let rows = [
        ("MONITOR_HOST", "127.0.0.1", "monitor.host", "\"127.0.0.1\""),
        ("MONITOR_PORT", "8090", "monitor.port", "8090"),
        ("STREAMING_HOST", "::", "http.host", "\"::\""),
        ("STREAMING_PORT", "8091", "http.port", "8091"),
        ("METRICS_PORT", "0", "metrics.port", "0"),
        ("PPROF_PORT", "6061", "profiling.port", "6061"),
        ("STREAMING_MAX_CLIENTS", "3", "streaming.max_clients", "3"),
        (
            "STREAMING_SHM",
            "/other_stream",
            "source.shm",
            "\"/other_stream\"",
        ),
        (
            "RECORDING_PATH",
            "/var/rec",
            "recording.path",
            "\"/var/rec\"",
        ),
        ("YOLO_MODEL", "v8n", "detector.model", "\"v8n\""),
        (
            "YOLO_SCORE_THRESHOLD",
            "0.25",
            "detector.score_threshold",
            "0.25",
        ),
        ("YOLO_NMS_THRESHOLD", "0.5", "detector.nms_threshold", "0.5"),
        ("UV_BIN", "/opt/uv/bin/uv", "tools.uv", "\"/opt/uv/bin/uv\""),
    ];
    assert_eq!(rows.len(), LEGACY_ENV.len());
    for (var, value, key, want) in rows {
        assert!(LEGACY_ENV.contains(&(var, key)), "{var}");
        let mut s = sources();
        s.env = env(&[(var, value)]);
        let loaded = ok(&s);
        let explained = loaded.explain().into_iter().find(|e| e.key == key).unwrap();
        assert_eq!(explained.value, want, "{var}");
        assert_eq!(explained.origin, env_origin(var), "{var}");
    }
}

#[test]
fn every_flag_lands_on_its_key() {
    type Row = (fn(&mut Flags), &'static str, &'static str, &'static str);
    let rows: [Row; 14] = [
        (
            |f| f.skip_build = true,
            "build.skip",
            "true",
            "--skip-build",
        ),
        (
            |f| f.no_detector = true,
            "services.yolo_detector_daemon.enabled",
            "false",
            "--no-detector",
        ),
        (
            |f| f.no_monitor = true,
            "services.web_monitor.enabled",
            "false",
            "--no-monitor",
        ),
        (
            |f| f.no_streaming = true,
            "streaming.enabled",
            "false",
            "--no-streaming",
        ),
        (
            |f| f.monitor_host = Some("127.0.0.1".into()),
            "monitor.host",
            "\"127.0.0.1\"",
            "--monitor-host",
        ),
        (
            |f| f.monitor_port = Some(9001),
            "monitor.port",
            "9001",
            "--monitor-port",
        ),
        (
            |f| f.streaming_port = Some(9002),
            "http.port",
            "9002",
            "--streaming-port",
        ),
        (
            |f| f.metrics_port = Some(9003),
            "metrics.port",
            "9003",
            "--metrics-port",
        ),
        (
            |f| f.pprof_port = Some(9004),
            "profiling.port",
            "9004",
            "--pprof-port",
        ),
        (
            |f| f.max_clients = Some(4),
            "streaming.max_clients",
            "4",
            "--max-clients",
        ),
        (
            |f| f.yolo_model = Some("v13n".into()),
            "detector.model",
            "\"v13n\"",
            "--yolo-model",
        ),
        (
            |f| f.score_thres = Some(0.3),
            "detector.score_threshold",
            "0.3",
            "--score-thres",
        ),
        (
            |f| f.nms_thres = Some(0.4),
            "detector.nms_threshold",
            "0.4",
            "--nms-thres",
        ),
        (
            |f| f.sets.push("log.format=json".into()),
            "log.format",
            "\"json\"",
            "--set log.format=json",
        ),
    ];
    let f = file(LEGACY);
    for (set, key, want, name) in rows {
        let mut s = sources_with(&f);
        set(&mut s.flags);
        let loaded = ok(&s);
        assert!(loaded.warnings.is_empty(), "{name}: {:?}", loaded.warnings);
        let explained = loaded.explain().into_iter().find(|e| e.key == key).unwrap();
        assert_eq!(explained.value, want, "{name}");
        assert_eq!(explained.origin, flag(name), "{name}");
    }
}

#[test]
fn disabling_a_missing_service_is_a_warning() {
    let mut s = sources();
    s.flags.no_detector = true;
    s.flags.no_monitor = true;
    let loaded = ok(&s);
    assert!(loaded.config.services.is_empty());
    assert_eq!(
        loaded.warnings,
        [
            "--no-detector: there is no service \"yolo_detector_daemon\" in the configuration; ignored",
            "--no-monitor: there is no service \"web_monitor\" in the configuration; ignored",
        ]
    );
    // A service created by --set counts.
    s.flags
        .sets
        .push("services.web_monitor.command=true".into());
    let loaded = ok(&s);
    assert!(!loaded.config.services["web_monitor"].enabled);
    assert_eq!(loaded.warnings.len(), 1);
}

#[test]
fn stackctl_variables_reach_nested_keys() {
    let f = file(LEGACY);
    let mut s = sources_with(&f);
    s.env = env(&[
        ("STACKCTL_SERVICES__WEB_MONITOR__ENABLED", "false"),
        (
            "STACKCTL_HTTP__CORS_ORIGINS",
            r#"["https://a", "https://b"]"#,
        ),
        ("STACKCTL_CONTROL__GROUP", "1000"),
        ("STACKCTL_SERVICES__CAMERA__BACKOFF__JITTER", "0"),
        ("UNRELATED", "x"),
    ]);
    let c = ok(&s).config;
    assert!(!c.services["web_monitor"].enabled);
    assert_eq!(c.http.cors_origins, ["https://a", "https://b"]);
    assert_eq!(
        c.control.group.as_deref(),
        Some("1000"),
        "a number where a string is wanted stays text"
    );
    assert_eq!(c.services["camera"].backoff.jitter, 0.0);
    assert_eq!(c.start_order().unwrap(), ["camera", "yolo_detector_daemon"]);
}

#[test]
fn set_values_are_toml_when_they_parse() {
    let mut s = sources();
    s.flags.sets = vec![
        "plugin_dirs=[\"/opt/a\", \"/opt/b\"]".into(),
        "services.x.command=echo".into(),
        "services.x.args=[\"a b\", \"{{c}}\"]".into(),
        "services.x.env.Mixed_Case=1.5".into(),
        "plugins.webrtc.port=8555".into(),
        "plugins.webrtc.path=/usr/lib/libwebrtc.so".into(),
    ];
    let c = ok(&s).config;
    assert_eq!(
        c.plugin_dirs,
        [PathBuf::from("/opt/a"), PathBuf::from("/opt/b")]
    );
    let x = &c.services["x"];
    assert_eq!(
        (x.command.as_str(), x.args.as_slice()),
        ("echo", &["a b".to_owned(), "{c}".to_owned()][..])
    );
    assert_eq!(x.env["Mixed_Case"], "1.5");
    assert_eq!(c.plugins["webrtc"]["port"].as_integer(), Some(8555));
    assert_eq!(
        c.plugins["webrtc"]["path"].as_str(),
        Some("/usr/lib/libwebrtc.so")
    );
}

#[test]
fn control_socket_default_depends_on_the_user() {
    let mut s = sources();
    s.euid = 0;
    assert_eq!(
        ok(&s).config.control.socket,
        PathBuf::from("/run/stackctl/stackctl.sock")
    );
    s.euid = 1000;
    assert_eq!(
        ok(&s).config.control.socket,
        PathBuf::from("/tmp/stackctl-1000.sock")
    );
    s.env = env(&[("XDG_RUNTIME_DIR", "/run/user/1000")]);
    let loaded = ok(&s);
    assert_eq!(
        loaded.config.control.socket,
        PathBuf::from("/run/user/1000/stackctl.sock")
    );
    assert_eq!(loaded.origin("control.socket"), Some(Origin::Default));
}

#[test]
fn the_file_is_searched_in_order() {
    let second = file("[log]\nlevel = \"debug\"\n");
    let mut s = sources();
    s.search = vec![
        PathBuf::from("/nonexistent/stackctl.toml"),
        second.path.clone(),
    ];
    let loaded = ok(&s);
    assert_eq!(loaded.file.as_deref(), Some(second.path.as_path()));
    assert_eq!(loaded.config.log.level, "debug");
    assert_eq!(
        loaded.origin("log.level"),
        Some(Origin::File {
            path: second.path.clone(),
            line: Some(line_of("[log]\nlevel = \"debug\"\n", "level"))
        })
    );

    // An explicit file must exist; the search is then not used.
    s.file = Some(PathBuf::from("/nonexistent/explicit.toml"));
    let err = load(&s).unwrap_err().to_string();
    assert_eq!(
        err,
        "/nonexistent/explicit.toml: no such configuration file"
    );

    s.file = None;
    s.search = vec![PathBuf::from("/nonexistent/stackctl.toml")];
    assert_eq!(ok(&s).file, None);
}
