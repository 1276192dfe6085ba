//! Every class of error names the key, the value and where it came from; all are reported.

use stackctl_config::{ConfigError, Origin, load};

use crate::{LEGACY, env, errors, file, sources, sources_with};

const BAD_FILE: &str = r#"[http]
port = 70000
hots = "0.0.0.0"

[metrics]
port = -1

[detector]
model = "v9n"
score_threshold = 1.5
model_path = "/x.bin"

[log]
format = "yaml"

[source]
open_timeout = "ten seconds"
shm = "pet_camera_stream"

[services.web]
command = ""
restart = "sometimes"
stop_signal = "SIGSTOP"
depends_on = { ghost = "ready", cam = "healthy" }
ready = { tcp = "h:1", http = "http://x" }
liveness = { log = "up" }
backoff = { initial = "1m", max = "30s", jitter = 2 }
max_restarts = "five"

[services.a]
command = "a"
depends_on = { b = "started" }

[services.b]
command = "b"
depends_on = { a = "started" }
"#;

#[test]
fn every_error_in_a_file_with_its_line() {
    let f = file(BAD_FILE);
    let at = |needle: &str| f.origin_at(BAD_FILE, needle);
    let want = [
        format!(
            "detector.model = \"v9n\": expected one of \"v8n\", \"v11n\", \"v13n\", {}",
            at("model = ")
        ),
        format!(
            "detector.model_path = \"/x.bin\": unknown key; it is read-only, derived from detector.model_dir and detector.model, {}",
            at("model_path")
        ),
        format!(
            "detector.score_threshold = 1.5: must be between 0 and 1, {}",
            at("score_threshold")
        ),
        format!(
            "http.hots = \"0.0.0.0\": unknown key; did you mean \"host\"?, {}",
            at("hots")
        ),
        format!(
            "http.port = 70000: not a port (1..=65535), {}",
            at("port = 70000")
        ),
        format!(
            "log.format = \"yaml\": expected one of \"text\", \"json\", {}",
            at("yaml")
        ),
        format!(
            "metrics.port = -1: not a port (0..=65535), {}",
            at("port = -1")
        ),
        format!(
            "services.a.depends_on: dependency cycle a -> b -> a, {}",
            at("b = \"started\"")
        ),
        format!(
            "services.web.backoff.initial = \"1m\": longer than backoff.max (30s), {}",
            at("backoff")
        ),
        format!(
            "services.web.backoff.jitter = 2.0: must be between 0 and 1, {}",
            at("backoff")
        ),
        format!(
            "services.web.command = \"\": must not be empty, {}",
            at("command = \"\"")
        ),
        format!(
            "services.web.depends_on.cam = \"healthy\": expected one of \"started\", \"ready\", \"completed\", {}",
            at("depends_on")
        ),
        format!(
            "services.web.depends_on.ghost = \"ready\": there is no service \"ghost\", {}",
            at("depends_on")
        ),
        format!(
            "services.web.liveness = {{ log = \"up\" }}: a liveness probe cannot be `log` (use it for `ready`), {}",
            at("liveness")
        ),
        format!(
            "services.web.max_restarts = \"five\": expected an integer in 0..=4294967295, {}",
            at("five")
        ),
        format!(
            "services.web.ready = {{ http = \"http://x\", tcp = \"h:1\" }}: a probe has exactly one of shm, file, tcp, http, exec, log; this one has tcp and http, {}",
            at("ready = {")
        ),
        format!(
            "services.web.restart = \"sometimes\": expected one of \"no\", \"on-failure\", \"always\", {}",
            at("sometimes")
        ),
        format!(
            "services.web.stop_signal = \"SIGSTOP\": expected one of \"SIGHUP\", \"SIGINT\", \"SIGQUIT\", \"SIGKILL\", \"SIGUSR1\", \"SIGUSR2\", \"SIGTERM\", {}",
            at("SIGSTOP")
        ),
        format!(
            "source.open_timeout = \"ten seconds\": not a duration (e.g. \"500ms\", \"10s\"), {}",
            at("ten seconds")
        ),
        format!(
            "source.shm = \"pet_camera_stream\": not a shared-memory name (\"/name\", one leading slash), {}",
            at("shm = ")
        ),
    ];
    let got = errors(&sources_with(&f));
    assert_eq!(got, want, "\n{}", got.join("\n"));
}

#[test]
fn errors_from_variables_name_the_variable() {
    let mut s = sources();
    s.env = env(&[
        ("MONITOR_PORT", "abc"),
        ("YOLO_SCORE_THRESHOLD", "2"),
        ("STACKCTL_SOURCE__OPEN_TIMEOUT", "soon"),
        ("STACKCTL_HTTP__BOGUS", "1"),
        ("STACKCTL_STREAMING__MAX_CLIENTS", "-3"),
        ("STACKCTL_", "x"),
    ]);
    assert_eq!(
        errors(&s),
        [
            "env STACKCTL_: not a configuration key (write STACKCTL_SECTION__KEY, e.g. STACKCTL_HTTP__PORT)",
            "detector.score_threshold = 2.0: must be between 0 and 1, from env YOLO_SCORE_THRESHOLD",
            "http.bogus = 1: unknown key, from env STACKCTL_HTTP__BOGUS",
            "monitor.port = \"abc\": expected an integer, from env MONITOR_PORT",
            "source.open_timeout = \"soon\": not a duration (e.g. \"500ms\", \"10s\"), from env STACKCTL_SOURCE__OPEN_TIMEOUT",
            "streaming.max_clients = -3: out of range, expected an integer in 0..=4294967295, from env STACKCTL_STREAMING__MAX_CLIENTS",
        ]
    );
}

#[test]
fn errors_from_flags_name_the_flag() {
    let mut s = sources();
    s.flags.monitor_port = Some(0);
    s.flags.yolo_model = Some("v9n".into());
    s.flags.nms_thres = Some(-0.1);
    s.flags.sets = vec![
        "nonsense".into(),
        "a..b=1".into(),
        "services.x.command=run".into(),
        "services.x.stop_signal=STOP".into(),
        "services.x.ready={ shm = \"/a\", interval = \"0s\" }".into(),
    ];
    assert_eq!(
        errors(&s),
        [
            "flag --set nonsense: expected key.path=value (e.g. --set http.port=8082)",
            "flag --set a..b=1: expected key.path=value (e.g. --set http.port=8082)",
            "detector.model = \"v9n\": expected one of \"v8n\", \"v11n\", \"v13n\", from flag --yolo-model",
            "detector.nms_threshold = -0.1: must be between 0 and 1, from flag --nms-thres",
            "monitor.port = 0: not a port (1..=65535), from flag --monitor-port",
            "services.x.ready.interval = \"0s\": must be longer than 0s, from flag --set services.x.ready={ shm = \"/a\", interval = \"0s\" }",
            "services.x.stop_signal = \"STOP\": expected one of \"SIGHUP\", \"SIGINT\", \"SIGQUIT\", \"SIGKILL\", \"SIGUSR1\", \"SIGUSR2\", \"SIGTERM\", from flag --set services.x.stop_signal=STOP",
        ]
    );
}

#[test]
fn depending_on_a_disabled_service_is_an_error() {
    let f = file(LEGACY);
    let mut s = sources_with(&f);
    s.flags.no_detector = true;
    s.flags
        .sets
        .push("services.web_monitor.depends_on.yolo_detector_daemon=started".into());
    assert_eq!(
        errors(&s),
        [concat!(
            "services.web_monitor.depends_on.yolo_detector_daemon = \"started\": ",
            "service \"yolo_detector_daemon\" is disabled (enabled = false, from flag --no-detector); ",
            "disable \"web_monitor\" too or drop the dependency, ",
            "from flag --set services.web_monitor.depends_on.yolo_detector_daemon=started"
        )]
    );
    // Disabling the dependent too is fine.
    s.flags.no_monitor = true;
    assert!(load(&s).is_ok());
}

#[test]
fn probes_are_checked_after_interpolation() {
    let text = r#"[services.p]
command = "p"
ready = { tcp = "{monitor.host}" }
liveness = { http = "https://" }
clean_shm = ["/ok_*", "no_slash"]
build = [[]]
"#;
    let f = file(text);
    let at = |needle: &str| f.origin_at(text, needle);
    assert_eq!(
        errors(&sources_with(&f)),
        [
            format!(
                "services.p.build[0] = []: an empty command, {}",
                at("build")
            ),
            format!(
                "services.p.clean_shm[1] = \"no_slash\": not a shared-memory name (\"/name\", one leading slash), {}",
                at("clean_shm")
            ),
            format!(
                "services.p.liveness.http = \"https://\": not an http:// or https:// URL, {}",
                at("liveness")
            ),
            format!(
                "services.p.ready.tcp = \"0.0.0.0\": not host:port (e.g. \"127.0.0.1:8080\"), {}",
                at("ready")
            ),
        ]
    );
}

#[test]
fn file_syntax_errors_name_the_line() {
    let f = file("[http]\nport = \n");
    let err = load(&sources_with(&f)).unwrap_err();
    assert_eq!(err.len(), 1);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}: line 2 column 8: ", f.path.display())),
        "{text}"
    );
    assert!(matches!(err.errors()[0], ConfigError::File { .. }));
}

#[test]
fn errors_expose_key_and_origin() {
    let mut s = sources();
    s.env = env(&[("METRICS_PORT", "70000")]);
    let err = load(&s).unwrap_err();
    let e = &err.errors()[0];
    assert_eq!(e.key(), Some("metrics.port"));
    assert_eq!(
        e.origin(),
        Some(&Origin::Env {
            var: "METRICS_PORT".into()
        })
    );
}

#[test]
fn the_write_timeout_is_a_duration_of_at_least_100ms() {
    let mut s = sources();
    s.env = env(&[("STACKCTL_HTTP__WRITE_TIMEOUT", "10ms")]);
    assert_eq!(
        errors(&s),
        [
            "http.write_timeout = \"10ms\": must be at least 100ms, from env STACKCTL_HTTP__WRITE_TIMEOUT"
        ]
    );
    s.env = env(&[("STACKCTL_HTTP__WRITE_TIMEOUT", "2s")]);
    let loaded = crate::ok(&s);
    assert_eq!(loaded.config.http.write_timeout.as_secs(), 2);
    s.env = env(&[]);
    assert_eq!(crate::ok(&s).config.http.write_timeout.as_secs(), 30);
}
