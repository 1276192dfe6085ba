//! A camera that is seen: camsim drawing its square on a schedule (and writing where it drew it
//! with `--dump-objects`), detector-sim finding it in the NV12 picture, and the `[source]` keys
//! that make stackctl read the frames, the picture and the results. The configuration text for
//! a [`crate::up::Stack`], the two processes and stackctl's two sources for a test that runs
//! them itself, and camsim's truth to check boxes against.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::thread::JoinHandle;
use std::time::Duration;

use stackctl_core::bus::Bus;
use stackctl_core::detections::{
    Detection, DetectionConfig, DetectionHandle, DetectionWriter, Picture, WriteMode,
};
use stackctl_core::shm::{SourceConfig, SourceHandle};
use stackctl_media::clock::monotonic_ns;

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

    /// camsim's arguments: at `size`, 30 fps, its square on `schedule` (e.g. `2s:2s`: shown
    /// 2 s, hidden 2 s), where it drew it written to [`VisionRig::objects`].
    pub fn camsim_args(&self, size: &str, schedule: &str) -> Vec<String> {
        let objects = self.objects.display().to_string();
        [
            "--shm",
            self.stream.as_str(),
            "--nv12-shm",
            self.nv12.as_str(),
            "--size",
            size,
            "--fps",
            "30",
            "--object-schedule",
            schedule,
            "--dump-objects",
            objects.as_str(),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// detector-sim's arguments: the NV12 picture every `interval`, results into
    /// [`VisionRig::detections`], waiting up to 30 s for the camera.
    pub fn detector_args(&self, interval: &str) -> Vec<String> {
        [
            "--shm",
            self.nv12.as_str(),
            "--detections",
            self.detections.as_str(),
            "--interval",
            interval,
            "--wait",
            "30",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// camsim, to start (add arguments to taste).
    pub fn camsim(&self, size: &str, schedule: &str) -> Command {
        let mut command = Command::new(bin("camsim"));
        command.args(self.camsim_args(size, schedule));
        command
    }

    /// detector-sim, to start.
    pub fn detector(&self, interval: &str) -> Command {
        let mut command = Command::new(bin("detector-sim"));
        command.args(self.detector_args(interval));
        command
    }

    /// stackctl's frame and detection sources on these segments, publishing into `bus`.
    pub fn sources(&self, bus: &Bus) -> (SourceHandle, DetectionHandle) {
        let frames =
            SourceHandle::spawn(SourceConfig::new(self.stream.as_str()), bus.clone(), None)
                .expect("frame source");
        let detections = DetectionHandle::spawn(
            DetectionConfig::new(self.detections.as_str())
                .picture(Picture::Ring(self.nv12.as_str().into())),
            bus.clone(),
        )
        .expect("detection source");
        (frames, detections)
    }

    /// `[source]`, `[services.camera]` ([`VisionRig::camsim_args`]) and `[services.detector]`
    /// ([`VisionRig::detector_args`]), as configuration text.
    pub fn config(&self, size: &str, schedule: &str, interval: &str) -> String {
        let array = |args: Vec<String>| {
            let quoted: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
            format!("[{}]", quoted.join(", "))
        };
        format!(
            r#"
[source]
shm = "{stream}"
detections = "{detections}"
nv12 = "{nv12}"

[services.camera]
command = {camsim}
args = {camsim_args}
ready = {{ shm = "{stream}", timeout = "20s" }}

[services.detector]
command = {detector}
args = {detector_args}
depends_on = {{ camera = "ready" }}
"#,
            stream = self.stream.as_str(),
            nv12 = self.nv12.as_str(),
            detections = self.detections.as_str(),
            camsim = toml_path(&bin("camsim")),
            detector = toml_path(&bin("detector-sim")),
            camsim_args = array(self.camsim_args(size, schedule)),
            detector_args = array(self.detector_args(interval)),
        )
    }

    /// Everything camsim has written to [`VisionRig::objects`] so far, by frame number (a line
    /// it is still writing is left out).
    pub fn truths(&self) -> HashMap<u64, Truth> {
        std::fs::read_to_string(&self.objects)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<i64> = l
                    .split(' ')
                    .map(|n| n.parse().ok())
                    .collect::<Option<_>>()?;
                (f.len() == 7).then(|| {
                    (
                        f[0] as u64,
                        Truth {
                            timestamp_ns: f[1] as u64,
                            x: f[2],
                            y: f[3],
                            side: f[4],
                            visible: f[6] == 1,
                        },
                    )
                })
            })
            .collect()
    }

    /// camsim's truth for frame `n`; `None` while the frame is not in the file (yet).
    pub fn truth(&self, n: u64) -> Option<Truth> {
        self.truths().get(&n).copied()
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

/// The frame number [`write_open_loop`] gives its first result.
pub const FIRST_FRAME: u64 = 1_000;

/// Writes `count` results of one "cat" into `writer` on a thread, one every `period` on its own
/// clock whatever the readers do (open loop, as the board's detector: a writer that waited for
/// each reader would let one slow delivery set the pace), frame numbers from `first`, each
/// stamped as captured `lag_ns` before it is written. The thread returns when each result was
/// written (`CLOCK_MONOTONIC` ns), for latencies.
pub fn write_open_loop(
    mut writer: DetectionWriter,
    first: u64,
    count: u64,
    period: Duration,
    lag_ns: u64,
) -> JoinHandle<Vec<u64>> {
    let cat = [Detection {
        class: "cat".into(),
        confidence: 0.9,
        x: 100,
        y: 80,
        w: 64,
        h: 64,
    }];
    std::thread::spawn(move || {
        let mut stamps = Vec::new();
        let mut next = monotonic_ns();
        for i in 0..count {
            std::thread::sleep(Duration::from_nanos(next.saturating_sub(monotonic_ns())));
            let start = monotonic_ns();
            writer
                .write(first + i, start - lag_ns, &cat, WriteMode::Whole)
                .expect("write");
            stamps.push(start);
            next += period.as_nanos() as u64;
        }
        stamps
    })
}
