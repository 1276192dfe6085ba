//! `{dotted.key}` references in service fields.

use std::path::PathBuf;

use stackctl_config::{BuildCommand, ProbeKind};

use crate::{Edit, LEGACY, env, errors, file, line_of, ok, sources_with};

#[test]
fn a_port_changed_once_changes_everywhere() {
    let f = file(LEGACY);
    let layers: [(Edit<'_>, &str); 4] = [
        (&|_| {}, "8080"),
        (&|s| s.env = env(&[("MONITOR_PORT", "8180")]), "8180"),
        (&|s| s.flags.monitor_port = Some(8280), "8280"),
        (&|s| s.flags.sets.push("monitor.port=8380".into()), "8380"),
    ];
    let mut s = sources_with(&f);
    for (add, port) in layers {
        add(&mut s);
        let c = ok(&s).config;
        let web = &c.services["web_monitor"];
        assert_eq!(web.args[web.args.len() - 1], port);
        assert_eq!(
            web.ready.as_ref().unwrap().kind,
            ProbeKind::Tcp(format!("127.0.0.1:{port}"))
        );
        assert_eq!(
            web.liveness.as_ref().unwrap().kind,
            ProbeKind::Http(format!("http://127.0.0.1:{port}/"))
        );
    }
}

#[test]
fn the_detector_gets_the_model_path_and_thresholds() {
    let f = file(LEGACY);
    let mut s = sources_with(&f);
    s.env = env(&[("YOLO_MODEL", "v8n"), ("UV_BIN", "/opt/uv")]);
    s.flags.score_thres = Some(0.45);
    s.flags.sets.push("detector.model_dir=/models".into());
    let c = ok(&s).config;
    let d = &c.services["yolo_detector_daemon"];
    assert_eq!(d.command, "/opt/uv");
    assert_eq!(
        d.args,
        [
            "run",
            "src/detector/yolo_detector_daemon.py",
            "--model-path",
            "/models/yolov8n_detect_bayese_640x640_nv12.bin",
            "--score-threshold",
            "0.45",
            "--nms-threshold",
            "0.7",
        ]
    );
}

#[test]
fn every_template_field_is_expanded_and_braces_escape() {
    let text = r#"
[services.t]
command = "{tools.uv}"
args = ["{{literal}}", "}}{{"]
env = { PORT = "{http.port}", CLIENTS = "{streaming.max_clients}" }
cwd = "{recording.path}/x"
build = [["make", "PORT={http.port}"], "echo '{{ {source.shm} }}'"]
ready = { exec = ["check", "{source.open_timeout}"] }
liveness = { file = "{recording.path}/alive" }
clean_shm = ["{source.shm}_*"]
"#;
    let f = file(text);
    let c = ok(&sources_with(&f)).config;
    let t = &c.services["t"];
    assert_eq!(t.command, "uv");
    assert_eq!(t.args, ["{literal}", "}{"]);
    assert_eq!(t.env["PORT"], "8081");
    assert_eq!(t.env["CLIENTS"], "10");
    assert_eq!(t.cwd, Some(PathBuf::from("recordings/x")));
    assert_eq!(
        t.build,
        [
            BuildCommand::Argv(vec!["make".into(), "PORT=8081".into()]),
            BuildCommand::Shell("echo '{ /pet_camera_stream }'".into()),
        ]
    );
    assert_eq!(
        t.ready.as_ref().unwrap().kind,
        ProbeKind::Exec(vec!["check".into(), "30s".into()])
    );
    assert_eq!(
        t.liveness.as_ref().unwrap().kind,
        ProbeKind::File("recordings/alive".into())
    );
    assert_eq!(t.clean_shm, ["/pet_camera_stream_*"]);
}

#[test]
fn bad_references_name_the_field_the_reference_and_the_origin() {
    let text = r#"[services.web]
command = "x"
args = ["--port={monitor.prot}"]
env = { A = "{http.cors_origins}" }
cwd = "{services.other.cwd}"
build = ["echo {oops"]
"#;
    let f = file(text);
    let p = f.path.display();
    assert_eq!(
        errors(&sources_with(&f)),
        [
            format!(
                r#"services.web.args[0] = "--port={{monitor.prot}}": unknown reference {{monitor.prot}} (did you mean {{monitor.port}}?), from {p} line {}"#,
                line_of(text, "args")
            ),
            format!(
                r#"services.web.build[0] = "echo {{oops": an unclosed {{ (write {{{{ for a literal brace), from {p} line {}"#,
                line_of(text, "build")
            ),
            format!(
                r#"services.web.cwd = "{{services.other.cwd}}": {{services.other.cwd}}: references into services are not allowed, from {p} line {}"#,
                line_of(text, "cwd")
            ),
            format!(
                r#"services.web.env.A = "{{http.cors_origins}}": {{http.cors_origins}} is a list, not a scalar, from {p} line {}"#,
                line_of(text, "env")
            ),
        ]
    );
}

#[test]
fn a_reference_from_a_flag_names_the_flag() {
    let f = file(LEGACY);
    let mut s = sources_with(&f);
    s.flags
        .sets
        .push("services.camera.args=[\"{nope}\"]".into());
    assert_eq!(
        errors(&s),
        [
            r#"services.camera.args[0] = "{nope}": unknown reference {nope}, from flag --set services.camera.args=["{nope}"]"#
        ]
    );
}
