//! What the streaming sink's end-to-end tests share: a stack with camsim and the sink, a
//! tokio runtime for the WebRTC viewers, the sink's metrics, and the camera's dump split into
//! access units.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

use stackctl_tests::plugins::{http_get, poll, rust_plugin, toml_path};
use stackctl_tests::up::{EVENT_TIMEOUT, Stack, Up};
use stackctl_tests::vision::VisionRig;
use stackctl_tests::{ShmName, bin, unique_shm};

/// A running stack: camsim publishing into a segment, stackctl with the streaming sink.
pub struct Streaming {
    pub stack: Stack,
    pub up: Up,
    pub port: u16,
    pub dump: PathBuf,
    _shm: ShmName,
    _dir: tempfile::TempDir,
}

impl Streaming {
    /// Starts camsim (`camera_args` added to its own) and the sink (`sink_keys`: TOML lines;
    /// `bind = ["127.0.0.1"]` unless they say otherwise), and waits for the stack to be ready.
    pub fn start(tag: &str, camera_args: &[&str], sink_keys: &str) -> Self {
        let lib = rust_plugin("sink-webrtc");
        let shm = unique_shm(tag);
        let dir = tempfile::tempdir().expect("tempdir");
        let dump = dir.path().join("camera.h264");
        let mut args = vec![
            "--shm".to_owned(),
            shm.as_str().to_owned(),
            "--size".to_owned(),
            "320x240".to_owned(),
            "--fps".to_owned(),
            "30".to_owned(),
            "--dump".to_owned(),
            dump.display().to_string(),
        ];
        args.extend(camera_args.iter().map(|a| (*a).to_owned()));
        let stack = Stack::new(&format!(
            r#"
[source]
shm = "{shm}"

[services.camera]
command = {camsim}
args = {args:?}

[plugins.streaming]
path = {lib}
{bind}
{sink_keys}
"#,
            bind = if sink_keys.contains("bind") {
                ""
            } else {
                "bind = [\"127.0.0.1\"]"
            },
            shm = shm.as_str(),
            camsim = toml_path(&bin("camsim")),
            lib = toml_path(&lib),
        ));
        let port = stack.http_port().expect("the harness chose the HTTP port");
        let mut up = stack.up(&[], &[]);
        up.first_line(&["plugin started", "plugin=streaming"]);
        // The URL to open, as the user sees it.
        up.first_line(&[&format!("viewer page: http://127.0.0.1:{port}/")]);
        up.first_line(&["stack ready"]);
        Self {
            stack,
            up,
            port,
            dump,
            _shm: shm,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One sample of stackctl's `/metrics` (see [`metric`]).
    pub fn metric(&self, sample: &str) -> Option<f64> {
        metric(self.port, sample)
    }

    /// Waits until `sample` equals `want`.
    pub fn wait_metric(&self, sample: &str, want: f64) {
        poll(
            &format!("{sample} = {want}"),
            EVENT_TIMEOUT,
            || match self.metric(sample) {
                Some(v) if v == want => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
    }

    /// Stops the stack (camsim flushes its dump) and returns the access units it published.
    pub fn stop(mut self) -> Vec<Vec<u8>> {
        self.up.terminate();
        access_units(&std::fs::read(&self.dump).expect("camsim's dump"))
    }
}

/// A running stack that sees ([`VisionRig`]: camsim's square on `schedule`, detector-sim finding
/// it every `interval`), stackctl reading both with the streaming sink (`sink_keys` added).
pub struct Vision {
    pub up: Up,
    pub port: u16,
    /// The segments, and camsim's truth.
    pub rig: VisionRig,
    _stack: Stack,
}

/// One sample of the `/metrics` of stackctl on `port` (the first whose name and labels, the
/// `plugin` label left out, match exactly).
pub fn metric(port: u16, sample: &str) -> Option<f64> {
    let (code, text) = http_get(port, "/metrics");
    assert_eq!(code, 200, "/metrics: {text}");
    let text = stackctl_tests::plugins::unlabelled(&text);
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == sample).then(|| value.parse().ok())?
    })
}

impl Vision {
    /// One sample of stackctl's `/metrics` (see [`metric`]).
    pub fn metric(&self, sample: &str) -> Option<f64> {
        metric(self.port, sample)
    }

    /// Starts it (`size`: camsim's `--size`) and waits until it is ready.
    pub fn start(tag: &str, size: &str, schedule: &str, interval: &str, sink_keys: &str) -> Self {
        let lib = rust_plugin("sink-webrtc");
        let rig = VisionRig::new(tag);
        let stack = Stack::new(&format!(
            r#"{services}
[plugins.streaming]
path = {lib}
{bind}
{sink_keys}
"#,
            services = rig.config(size, schedule, interval),
            bind = if sink_keys.contains("bind") {
                ""
            } else {
                "bind = [\"127.0.0.1\"]"
            },
            lib = toml_path(&lib),
        ));
        let port = stack.http_port().expect("the harness chose the HTTP port");
        let mut up = stack.up(&[], &[]);
        up.first_line(&["plugin started", "plugin=streaming"]);
        up.first_line(&["stack ready"]);
        Self {
            up,
            port,
            rig,
            _stack: stack,
        }
    }
}

/// A multi-thread runtime for the viewers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The NAL units of an Annex-B stream (start codes removed).
pub fn nal_units(annexb: &[u8]) -> Vec<&[u8]> {
    stackctl_media::h264::nal_units(annexb).collect()
}

/// Splits a camera dump into access units: a new one starts at an SPS, or at a slice that
/// begins a picture (first_mb_in_slice = 0) after another slice. camsim's encoder writes
/// one slice per picture.
pub fn access_units(dump: &[u8]) -> Vec<Vec<u8>> {
    let mut units: Vec<Vec<u8>> = Vec::new();
    let mut previous_was_slice = true;
    for nal in nal_units(dump) {
        let kind = nal[0] & 0x1f;
        let slice = kind == 1 || kind == 5;
        let starts_picture = slice && nal.get(1).is_some_and(|b| b & 0x80 != 0);
        if units.is_empty() || kind == 7 || (starts_picture && previous_was_slice) {
            units.push(Vec::new());
        }
        previous_was_slice = slice;
        let au = units.last_mut().unwrap();
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(nal);
    }
    units
}

/// `au` with 4-byte start codes, and the SPS and PPS put in front when it is an IDR
/// without them: what a viewer must receive for a camera access unit.
pub fn expected(au: &[u8], sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let units = nal_units(au);
    let idr = units.iter().any(|n| n[0] & 0x1f == 5);
    let has = |t: u8| units.iter().any(|n| n[0] & 0x1f == t);
    let mut out = Vec::new();
    let mut push = |n: &[u8]| {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(n);
    };
    if idr && !has(7) {
        push(sps);
    }
    if idr && !has(8) {
        push(pps);
    }
    for n in units {
        push(n);
    }
    out
}

/// The dump's first SPS and PPS.
pub fn parameter_sets(units: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
    let all: Vec<&[u8]> = units.iter().flat_map(|au| nal_units(au)).collect();
    let find = |t: u8| {
        all.iter()
            .find(|n| n[0] & 0x1f == t)
            .map(|n| n.to_vec())
            .expect("the dump has SPS and PPS")
    };
    (find(7), find(8))
}

/// Asserts that `received` are consecutive access units of the camera, starting at an IDR
/// with SPS and PPS, byte for byte (SPS and PPS inserted where the camera left them out).
pub fn assert_matches_camera(received: &[Vec<u8>], camera: &[Vec<u8>], what: &str) {
    assert!(!received.is_empty(), "{what}: nothing received");
    let (sps, pps) = parameter_sets(camera);
    let want: Vec<Vec<u8>> = camera.iter().map(|au| expected(au, &sps, &pps)).collect();
    let first = want
        .iter()
        .position(|au| au == &received[0])
        .unwrap_or_else(|| panic!("{what}: the first frame received is not one the camera sent"));
    let types: Vec<u8> = nal_units(&received[0])
        .iter()
        .map(|n| n[0] & 0x1f)
        .collect();
    assert_eq!(
        &types[..2],
        [7, 8],
        "{what}: starts with SPS, PPS: {types:?}"
    );
    assert!(
        types.contains(&5),
        "{what}: the first frame is an IDR: {types:?}"
    );
    for (i, au) in received.iter().enumerate() {
        let Some(w) = want.get(first + i) else {
            panic!("{what}: frame {i} received but the camera's dump ends before it");
        };
        assert!(
            au == w,
            "{what}: frame {i} (camera frame {}) differs: {} bytes received, {} expected",
            first + i,
            au.len(),
            w.len()
        );
    }
}
