//! A camera that is seen: camsim drawing its square on a schedule (and writing where it drew it
//! with `--dump-objects`), detector-sim finding it in the NV12 picture, and the `[source]` keys
//! that make stackctl read the frames, the picture and the results. The configuration text for
//! a [`crate::up::Stack`], and camsim's truth to check boxes against.

use std::path::PathBuf;

use crate::plugins::{poll, toml_path};
use crate::up::EVENT_TIMEOUT;
use crate::{ShmName, bin, unique_shm};

/// Where camsim drew its square in one frame (`--dump-objects`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truth {
    /// The frame's capture time, `CLOCK_MONOTONIC` nanoseconds.
    pub timestamp_ns: u64,
    /// The square's left edge, in pixels.
    pub x: i64,
    /// Its top edge.
    pub y: i64,
    /// Its side.
    pub side: i64,
    /// Whether it showed in that frame.
    pub visible: bool,
}

/// The segments and camsim's truth file of one seeing camera; they go with it.
#[derive(Debug)]
pub struct VisionRig {
    /// The H.264 ring.
    pub stream: ShmName,
    /// The NV12 picture detector-sim reads.
    pub nv12: ShmName,
    /// detector-sim's results.
    pub detections: ShmName,
    /// camsim's `--dump-objects`: `frame timestamp_ns x y side ... visible` per frame.
    pub objects: PathBuf,
    _dir: tempfile::TempDir,
}

impl VisionRig {
    /// Segment names unique to `tag` and a file for camsim's truth.
    pub fn new(tag: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self {
            stream: unique_shm(&format!("{tag}-s")),
            nv12: unique_shm(&format!("{tag}-n")),
            detections: unique_shm(&format!("{tag}-d")),
            objects: dir.path().join("objects.txt"),
            _dir: dir,
        }
    }

    /// `[source]`, `[services.camera]` (camsim at `size`, 30 fps, its square on `schedule`, e.g.
    /// `2s:2s`) and `[services.detector]` (detector-sim every `interval`), as configuration
    /// text.
    pub fn config(&self, size: &str, schedule: &str, interval: &str) -> String {
        format!(
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
"#,
            stream = self.stream.as_str(),
            nv12 = self.nv12.as_str(),
            detections = self.detections.as_str(),
            camsim = toml_path(&bin("camsim")),
            detector = toml_path(&bin("detector-sim")),
            objects = toml_path(&self.objects),
        )
    }

    /// camsim's truth for frame `n`; `None` while the frame is not in the file (yet).
    pub fn truth(&self, n: u64) -> Option<Truth> {
        let text = std::fs::read_to_string(&self.objects).ok()?;
        let prefix = format!("{n} ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&prefix) && l.split(' ').count() == 7)?;
        let f: Vec<i64> = line.split(' ').map(|n| n.parse().unwrap()).collect();
        Some(Truth {
            timestamp_ns: f[1] as u64,
            x: f[2],
            y: f[3],
            side: f[4],
            visible: f[6] == 1,
        })
    }

    /// [`VisionRig::truth`], waiting (up to [`EVENT_TIMEOUT`]) for camsim to write frame `n`.
    pub fn wait_truth(&self, n: u64) -> Truth {
        poll(
            &format!("frame {n} in --dump-objects"),
            EVENT_TIMEOUT,
            || self.truth(n).ok_or_else(|| "not yet".to_owned()),
        )
    }
}
