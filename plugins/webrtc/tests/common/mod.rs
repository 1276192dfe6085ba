//! What the streaming sink's end-to-end tests share: a stack with camsim and the sink, a
//! tokio runtime for the WebRTC viewers, the sink's metrics, and the camera's dump split into
//! access units.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

use stackctl_tests::plugins::{http_get, poll, rust_plugin, toml_path};
use stackctl_tests::up::{EVENT_TIMEOUT, Stack, Up};
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

    /// One sample of stackctl's `/metrics` (the first whose name and labels match exactly).
    pub fn metric(&self, sample: &str) -> Option<f64> {
        let (code, text) = http_get(self.port, "/metrics");
        assert_eq!(code, 200, "/metrics: {text}");
        let text = stackctl_tests::plugins::unlabelled(&text);
        text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok())?
        })
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

/// A running stack that sees: camsim (its square on `schedule`, where it drew it written to
/// [`Vision::objects`]) publishing H.264 and NV12, detector-sim finding the square every
/// `interval`, stackctl reading both with the streaming sink (`sink_keys` added).
pub struct Vision {
    pub up: Up,
    pub port: u16,
    /// camsim's `--dump-objects`: `frame timestamp_ns x y side ... visible` per frame.
    pub objects: PathBuf,
    _stack: Stack,
    _shm: [ShmName; 3],
    _dir: tempfile::TempDir,
}

impl Vision {
    /// Starts it (`size`: camsim's `--size`) and waits until it is ready.
    pub fn start(tag: &str, size: &str, schedule: &str, interval: &str, sink_keys: &str) -> Self {
        let lib = rust_plugin("sink-webrtc");
        let (stream, nv12, detections) = (
            unique_shm(&format!("{tag}-s")),
            unique_shm(&format!("{tag}-n")),
            unique_shm(&format!("{tag}-d")),
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = dir.path().join("objects.txt");
        let stack = Stack::new(&format!(
            r#"
[source]
shm = "{stream}"
detections = "{detections}"
nv12 = "{nv12}"

[services.camera]
command = {camsim}
args = ["--shm", "{stream}", "--nv12-shm", "{nv12}", "--size", "{size}", "--fps", "30",
        "--object-schedule", "{schedule}", "--dump-objects", {objects}]
ready = {{ shm = "{stream}", timeout = "20s" }}

[services.detector]
command = {detector}
args = ["--shm", "{nv12}", "--detections", "{detections}", "--interval", "{interval}", "--wait", "30"]
depends_on = {{ camera = "ready" }}

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
            stream = stream.as_str(),
            nv12 = nv12.as_str(),
            detections = detections.as_str(),
            camsim = toml_path(&bin("camsim")),
            detector = toml_path(&bin("detector-sim")),
            objects = toml_path(&objects),
            lib = toml_path(&lib),
        ));
        let port = stack.http_port().expect("the harness chose the HTTP port");
        let mut up = stack.up(&[], &[]);
        up.first_line(&["plugin started", "plugin=streaming"]);
        up.first_line(&["stack ready"]);
        Self {
            up,
            port,
            objects,
            _stack: stack,
            _shm: [stream, nv12, detections],
            _dir: dir,
        }
    }

    /// camsim's truth for frame `n`: its capture time, the square's corner and side, whether
    /// it showed; `None` if the frame is not in the file (yet).
    pub fn truth(&self, n: u64) -> Option<(u64, i64, i64, i64, bool)> {
        let text = std::fs::read_to_string(&self.objects).ok()?;
        let prefix = format!("{n} ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&prefix) && l.split(' ').count() == 7)?;
        let f: Vec<i64> = line.split(' ').map(|n| n.parse().unwrap()).collect();
        Some((f[1] as u64, f[2], f[3], f[4], f[6] == 1))
    }

    /// One sample of `/metrics` (the first whose name and labels match exactly).
    pub fn metric(&self, sample: &str) -> Option<f64> {
        let (code, text) = http_get(self.port, "/metrics");
        assert_eq!(code, 200, "/metrics: {text}");
        let text = stackctl_tests::plugins::unlabelled(&text);
        text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok())?
        })
    }
}

/// [`Vision::truth`] for frame `n`, waiting for camsim to have written it.
pub fn poll_truth(vision: &Vision, n: u64) -> (u64, i64, i64, i64, bool) {
    poll(
        &format!("frame {n} in --dump-objects"),
        EVENT_TIMEOUT,
        || vision.truth(n).ok_or_else(|| "not yet".to_owned()),
    )
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
