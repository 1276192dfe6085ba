//! Helpers for the recorder's end-to-end tests: the stack's configuration, HTTP with any
//! method and headers, ffprobe/ffmpeg, and H.264 byte checks.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use stackctl_tests::plugins::{poll, rust_plugin, toml_path};
use stackctl_tests::up::EVENT_TIMEOUT;
use stackctl_tests::{ShmName, bin};

/// The recorder plugin, built once per test binary.
pub fn recorder() -> PathBuf {
    rust_plugin("sink-recorder")
}

/// `[source]` and a camsim camera at 320x240, 30 fps, GOP 30 (unless `extra` sets these),
/// plus `extra` arguments.
pub fn camera(shm: &ShmName, extra: &[&str]) -> String {
    let mut args: Vec<String> = vec!["--shm".into(), shm.as_str().into()];
    for (flag, value) in [("--size", "320x240"), ("--fps", "30"), ("--gop", "30")] {
        if !extra.contains(&flag) {
            args.extend([flag.to_owned(), value.to_owned()]);
        }
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    format!(
        "[source]\nshm = \"{}\"\n\n[services.camera]\ncommand = {}\nargs = {:?}\n",
        shm.as_str(),
        toml_path(&bin("camsim")),
        args
    )
}

/// A `[plugins.recording]` section with `keys` (TOML lines).
pub fn recording(dir: &Path, keys: &str) -> String {
    format!(
        "\n[plugins.recording]\npath = {}\ndir = {}\n{keys}\n",
        toml_path(&recorder()),
        toml_path(dir)
    )
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub code: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Answer {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.code,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request (the target sent as it is, unnormalised).
pub fn request(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(EVENT_TIMEOUT))
        .expect("timeout");
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        code,
        headers,
        body,
    }
}

/// `GET /status` (200, JSON).
pub fn status(port: u16) -> Value {
    let a = request(port, "GET", "/status", &[]);
    assert_eq!(a.code, 200, "{}", a.text());
    a.json()
}

/// Waits until the status satisfies `check`.
pub fn wait_status(port: u16, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    poll(what, EVENT_TIMEOUT, || {
        let s = status(port);
        if check(&s) { Ok(s) } else { Err(s.to_string()) }
    })
}

/// `/metrics` sample `name` (the first line starting with it).
pub fn metric(port: u16, name: &str) -> f64 {
    let text = request(port, "GET", "/metrics", &[]).text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

#[allow(unused_imports)] // Each test file uses a part.
pub use stackctl_tests::media::{decodes_cleanly, have_ffmpeg, probe, recordings};

/// Whether a raw H.264 file starts with SPS, PPS and then an IDR slice.
pub fn starts_with_params_and_idr(data: &[u8]) -> bool {
    let types: Vec<u8> = {
        let mut t = Vec::new();
        let mut i = 0;
        while i + 3 < data.len() && t.len() < 3 {
            if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
                t.push(data[i + 3] & 0x1f);
                i += 3;
            } else {
                i += 1;
            }
        }
        t
    };
    types == [7, 8, 5]
}

/// Whether `needle` occurs in `haystack`, and where.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
