//! The plugin boundary, from the outside: the real `stackctl`, real sinks (the C test sink
//! `plugins/host/tests/c/boundary_sink.c`, which gets HTTP and metrics wrong on purpose, and the
//! real recording and streaming sinks), real clients (a raw keep-alive TCP client, `promtool`).
//!
//! - HTTP framing is the host's: a plugin lying about `content-length` does not desynchronise
//!   a keep-alive connection; a status out of range or a header with CR, LF or NUL is a 502.
//! - `/metrics` stays valid whatever a plugin emits, every plugin sample labelled `plugin`.
//! - `stackctl check` creates every plugin with its section and reports what it refuses.
//! - A refused `required` plugin makes `up` exit 2, with every error and its origin.
//! - A detached plugin's routes answer 503 with the reason.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;

use stackctl_tests::plugins::{c_plugin, http_get, request, rust_plugin, toml_path};
use stackctl_tests::unique_shm;
use stackctl_tests::up::{EVENT_TIMEOUT, Stack};

/// The C sink that gets the boundary wrong on purpose.
fn boundary_sink() -> Option<PathBuf> {
    c_plugin("sink_boundary", "plugins/host/tests/c/boundary_sink.c", &[])
}

/// One response read off a keep-alive connection: status, headers (lower-cased names), body.
struct Raw {
    code: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Sends `GET target` on `stream` (kept alive) and reads exactly one response, framed by its
/// `content-length` as any HTTP/1.1 client would.
fn get_on(stream: &mut TcpStream, target: &str) -> Raw {
    let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(req.as_bytes()).expect("send the request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => panic!(
                "GET {target}: the connection closed after {:?}",
                String::from_utf8_lossy(&head)
            ),
            Err(e) => panic!(
                "GET {target}: {e} after {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("GET {target}: not a status line: {status:?} in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("GET {target}: no content-length in {head:?}"));
    let mut body = vec![0; length];
    stream
        .read_exact(&mut body)
        .unwrap_or_else(|e| panic!("GET {target}: {length} bytes of body: {e} ({head:?})"));
    Raw {
        code,
        headers,
        body,
    }
}

#[test]
fn a_plugin_lying_about_framing_cannot_desynchronise_a_keep_alive_connection() {
    let Some(sink) = boundary_sink() else {
        return;
    };
    let stack = Stack::new(&format!(
        "[source]\nshm = \"{shm}\"\n\n[plugins.liar]\npath = {sink}\n",
        shm = unique_shm("boundary-framing").as_str(),
        sink = toml_path(&sink),
    ));
    let port = stack.http_port().expect("a free HTTP port");
    let mut up = stack.up(&[], &[]);
    up.first_line(&["plugin started", "plugin=liar"]);
    up.first_line(&["stackctl up", "http="]);

    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
    for n in 1..=2 {
        let r = get_on(&mut conn, "/b/lie");
        assert_eq!(r.code, 200, "request {n}");
        assert_eq!(
            r.body, b"x",
            "request {n}: the body is the plugin's one byte"
        );
        let has = |name: &str| r.headers.iter().any(|(n, _)| n == name);
        assert!(has("x-kept"), "request {n}: an ordinary header is kept");
        for hop in [
            "transfer-encoding",
            "connection",
            "keep-alive",
            "upgrade",
            "te",
            "trailer",
            "proxy-authenticate",
        ] {
            assert!(!has(hop), "request {n}: the plugin's {hop} went out");
        }
        let date = r.headers.iter().find(|(n, _)| n == "date");
        assert!(
            date.is_some_and(|(_, v)| v != "yesterday"),
            "request {n}: the date is the server's"
        );
    }
    // The same connection still frames what follows.
    let r = get_on(&mut conn, "/b/ok");
    assert_eq!((r.code, r.body.as_slice()), (200, &b"ok"[..]));

    // What cannot be repaired is refused with a 502 and a JSON reason, on the same connection.
    for (target, why) in [
        ("/b/crlf", "x-split"),
        ("/b/nul", "header name"),
        ("/b/status99", "status 99"),
        ("/b/status600", "status 600"),
    ] {
        let r = get_on(&mut conn, target);
        assert_eq!(
            r.code,
            502,
            "{target}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON error");
        let error = body["error"].as_str().unwrap_or_default().to_lowercase();
        assert!(
            error.contains("liar") && error.contains(why),
            "{target}: {body}"
        );
        assert!(
            !r.headers.iter().any(|(n, _)| n == "x-injected"),
            "{target}: a header was injected"
        );
    }
    let r = get_on(&mut conn, "/b/ok");
    assert_eq!((r.code, r.body.as_slice()), (200, &b"ok"[..]));

    // Warned about: the refusals each time, the dropped framing headers once.
    up.first_line(&["WARN", "liar", "status 600"]);
    let log = up.log();
    let dropped = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("hop-by-hop"))
        .count();
    assert_eq!(dropped, 1, "one warning for the framing headers:\n{log}");
    up.terminate();
}

#[test]
fn metrics_stay_valid_whatever_a_plugin_emits() {
    // Two instances of one library (the same sink name), on two routes: two plugins may not
    // declare the same one.
    let (Some(sink), Some(other)) = (
        boundary_sink(),
        c_plugin(
            "sink_boundary_c",
            "plugins/host/tests/c/boundary_sink.c",
            &["BOUNDARY_ROUTE=\"/c\""],
        ),
    ) else {
        return;
    };
    let stack = Stack::new(&format!(
        "[source]\nshm = \"{shm}\"\n\n[plugins.one]\npath = {sink}\n\n[plugins.two]\npath = {other}\n",
        shm = unique_shm("boundary-metrics").as_str(),
        sink = toml_path(&sink),
        other = toml_path(&other),
    ));
    let port = stack.http_port().expect("a free HTTP port");
    let mut up = stack.up(&[], &[]);
    up.first_line(&["stackctl up", "http="]);
    let (code, scrape) = http_get(port, "/metrics");
    assert_eq!(code, 200, "{scrape}");
    eprintln!("{scrape}");
    let said = stackctl_tests::plugins::promtool_check_metrics(&scrape);
    if let Some(said) = said {
        eprintln!("promtool check metrics said:\n{said}");
    }
    for line in [
        "boundary_requests_total{plugin=\"one\",path=\"/b\"} 3",
        "boundary_requests_total{plugin=\"two\",path=\"/b\"} 3",
    ] {
        assert!(scrape.contains(line), "{line} missing:\n{scrape}");
    }
    assert_eq!(
        scrape
            .matches("# TYPE boundary_requests_total counter")
            .count(),
        1,
        "one family for both instances:\n{scrape}"
    );
    assert_eq!(
        scrape.matches("# TYPE stackctl_ready ").count(),
        1,
        "the host's stackctl_ready only:\n{scrape}"
    );
    assert!(!scrape.contains("stackctl_ready{plugin="), "{scrape}");
    assert!(!scrape.contains("someone_else"), "{scrape}");
    for name in ["one", "two"] {
        let rejected = scrape
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "stackctl_plugin_metrics_rejected_total{{plugin=\"{name}\"}} "
                ))
            })
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no rejected counter for {name}:\n{scrape}"));
        assert!(rejected > 0.0, "{name}: {rejected}");
    }
    up.first_line(&["WARN", "plugin=one", "metrics"]);
    up.terminate();
}

#[test]
fn check_creates_every_plugin_and_reports_what_it_refuses() {
    let recorder = rust_plugin("sink-recorder");
    let webrtc = rust_plugin("sink-webrtc");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |recording: &str, streaming: &str| {
        format!(
            "[plugins.recording]\npath = {recorder}\ndir = {dir}\n{recording}\n\n\
             [plugins.streaming]\npath = {webrtc}\nbind = [\"127.0.0.1\"]\n{streaming}\n",
            recorder = toml_path(&recorder),
            webrtc = toml_path(&webrtc),
            dir = toml_path(dir.path()),
        )
    };
    let good = Stack::new(&config("", ""));
    let out = good.stackctl(&["check"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("configuration ok"),
        "{}\n{said}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for (recording, streaming, needles) in [
        (
            "log_evry = 2",
            "",
            &["plugin recording", "log_evry", "stackctl.toml line 4"][..],
        ),
        (
            "format = \"avi\"",
            "",
            &["plugin recording", "avi", "stackctl.toml line 4"][..],
        ),
        (
            "",
            "max_clients = 0",
            &["plugin streaming", "max_clients", "stackctl.toml line 9"][..],
        ),
        (
            "",
            "bogus_key = 1",
            &["plugin streaming", "bogus_key", "stackctl.toml line 9"][..],
        ),
    ] {
        let stack = Stack::new(&config(recording, streaming));
        let out = stack.stackctl(&["check"]);
        let said = String::from_utf8_lossy(&out.stderr);
        eprintln!("{recording}{streaming}: {said}");
        assert_eq!(out.status.code(), Some(2), "{recording}{streaming}: {said}");
        for needle in needles {
            assert!(
                said.contains(needle),
                "{recording}{streaming}: no {needle:?} in {said}"
            );
        }
    }
}

#[test]
fn a_refused_required_plugin_makes_up_exit_2_with_every_error() {
    let Some(sink) = boundary_sink() else {
        return;
    };
    let stack = Stack::new(&format!(
        "[source]\nshm = \"{shm}\"\n\n\
         [plugins.first]\npath = {sink}\nrequired = true\nrefuse = true\n\n\
         [plugins.fine]\npath = {sink}\n\n\
         [plugins.second]\npath = {sink}\nrequired = true\nrefuse = \"yes\"\n",
        shm = unique_shm("boundary-required").as_str(),
        sink = toml_path(&sink),
    ));
    let mut up = stack.up(&[], &[]);
    let code = up.wait_exit();
    let log = up.log();
    eprintln!("exit {code:?}:\n{log}");
    assert_eq!(code, Some(2), "a configuration error:\n{log}");
    for needle in [
        "plugin first: configuration refused: refuse: this instance was told to refuse",
        "stackctl.toml line 7",
        "plugin second: configuration refused: refuse: this instance was told to refuse",
        "stackctl.toml line 15",
    ] {
        assert!(log.contains(needle), "no {needle:?} in:\n{log}");
    }
    assert!(
        !stack.socket().exists(),
        "the control socket {} was left behind",
        stack.socket().display()
    );
}

#[test]
fn a_refused_optional_plugin_shows_as_failed_and_its_routes_answer_503() {
    let Some(sink) = boundary_sink() else {
        return;
    };
    let stack = Stack::new(&format!(
        "[source]\nshm = \"{shm}\"\n\n[plugins.refused]\npath = {sink}\nrefuse = true\n",
        shm = unique_shm("boundary-optional").as_str(),
        sink = toml_path(&sink),
    ));
    let port = stack.http_port().expect("a free HTTP port");
    let mut up = stack.up(&[], &[]);
    up.first_line(&["stackctl up", "http="]);
    let st = stack.status();
    let p = stackctl_tests::plugins::plugin(&st, "refused");
    assert_eq!(p["state"], "failed", "{st:#}");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("this instance was told to refuse")),
        "{st:#}"
    );
    let text = stack.ctl_ok(&["status"]);
    let line = text
        .lines()
        .find(|l| l.starts_with("refused "))
        .unwrap_or_else(|| panic!("no plugin line in:\n{text}"));
    assert!(
        line.contains("failed") && line.contains("this instance was told to refuse"),
        "{text}"
    );
    // Its library was loaded: its routes are known, and say why they do not answer.
    let r = request(port, "GET", "/b/ok", &[]);
    assert_eq!(r.code, 503, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("this instance was told to refuse")),
        "{}",
        r.text()
    );
    assert_eq!(r.header("retry-after"), None, "it does not come back");
    up.terminate();
}

#[test]
fn a_detached_plugins_routes_answer_503_with_the_reason() {
    let Some(sink) = boundary_sink() else {
        return;
    };
    let stack = Stack::new(&format!(
        "[source]\nshm = \"{shm}\"\n\n[plugins.flaky]\npath = {sink}\n",
        shm = unique_shm("boundary-detached").as_str(),
        sink = toml_path(&sink),
    ));
    let port = stack.http_port().expect("a free HTTP port");
    let mut up = stack.up(&[], &[]);
    up.first_line(&["stackctl up", "http="]);
    assert_eq!(http_get(port, "/b/ok"), (200, "ok".to_owned()));
    // Refusing a request detaches it.
    let (code, body) = http_get(port, "/b/fail");
    assert_eq!(code, 503, "{body}");
    up.first_line(&["plugin failed and is detached", "plugin=flaky"]);
    let r = request(port, "GET", "/b/ok", &[]);
    assert_eq!(r.code, 503, "{}", r.text());
    let error = r.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains("flaky") && error.contains("on_http returned a failure"),
        "{error}"
    );
    assert_eq!(
        r.header("retry-after"),
        None,
        "a detached plugin does not come back"
    );
    up.terminate();
}
