//! Helpers for the recorder's end-to-end tests: a stack of camsim and the recorder, its
//! `/status` and metrics, and H.264 byte checks. HTTP, ffprobe and ffmpeg come from
//! `stackctl_tests`.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use stackctl_media::h264::{NalType, nal_units};
use stackctl_tests::plugins::{camera_config_with, poll, rust_plugin, toml_path};
use stackctl_tests::up::{EVENT_TIMEOUT, Stack, Up};
use stackctl_tests::{ShmName, unique_shm};

#[allow(unused_imports)] // Each test file uses a part.
pub use stackctl_tests::media::{decodes_cleanly, have_ffmpeg, probe, recordings};
#[allow(unused_imports)]
pub use stackctl_tests::plugins::{Answer, request};

/// The recorder plugin, built once per test binary.
pub fn recorder() -> PathBuf {
    rust_plugin("sink-recorder")
}

/// A `[plugins.recording]` section with `keys` (TOML lines).
pub fn recording(dir: &Path, keys: &str) -> String {
    format!(
        "\n[plugins.recording]\npath = {}\ndir = {}\n{keys}\n",
        toml_path(&recorder()),
        toml_path(dir)
    )
}

/// The stack of a recorder test: camsim at 320x240, 30 fps, GOP 30 (its `--size`, `--fps`
/// and `--gop` may be changed), writing into a segment of its own, and the recorder writing
/// into a directory.
pub struct Recording {
    /// The configuration's directory.
    pub stack: Stack,
    /// stackctl's HTTP port.
    pub port: u16,
    /// Unlinks the segment when the test ends.
    _shm: ShmName,
}

impl Recording {
    /// camsim with `camera_args` (tagged `tag` in the segment's name), the recorder writing into
    /// `dir` with `keys` (TOML lines).
    pub fn new(tag: &str, camera_args: &[&str], dir: &Path, keys: &str) -> Self {
        let shm = unique_shm(tag);
        let stack = Stack::new(&format!(
            "{}{}",
            camera_config_with(&shm, camera_args),
            recording(dir, keys)
        ));
        let port = stack.http_port().expect("the harness chose the HTTP port");
        Self {
            stack,
            port,
            _shm: shm,
        }
    }

    /// `stackctl up`, returned once the stack is ready.
    pub fn up(&self) -> Up {
        let mut up = self.stack.up(&[], &[]);
        up.first_line(&["stack ready"]);
        up
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

/// Whether raw H.264 starts with SPS, PPS and then an IDR slice.
pub fn starts_with_params_and_idr(data: &[u8]) -> bool {
    let types: Vec<NalType> = nal_units(data)
        .take(3)
        .filter_map(|nal| {
            nal.first()
                .map(|&header| NalType::from_nal_unit_type(header))
        })
        .collect();
    types == [NalType::Sps, NalType::Pps, NalType::Idr]
}

/// Whether `needle` occurs in `haystack`, and where.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
