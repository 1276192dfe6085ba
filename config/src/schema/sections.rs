//! The configuration's fixed sections: `[log]`, `[control]`, `[http]`... Every field has a
//! default; see the README for the environment variable and flag of each.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::enums::{LogFormat, ShmGuard, YoloModel};

/// `[log]`: the supervisor's own log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter directive: `"info"`, or e.g. `"info,stackctl_core=debug"`.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// `[control]`: the local socket of `stackctl status`, `restart`, `logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// The Unix socket's path. Default: see [`ControlConfig::default_socket`].
    pub socket: PathBuf,
    /// A group given access to the socket, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl ControlConfig {
    /// The default socket: `/run/stackctl/stackctl.sock` for root (`euid` 0), else
    /// `$XDG_RUNTIME_DIR/stackctl.sock` when that is an absolute path, else
    /// `/tmp/stackctl-<euid>.sock`.
    pub fn default_socket(euid: u32, xdg_runtime_dir: Option<&str>) -> PathBuf {
        match xdg_runtime_dir {
            _ if euid == 0 => PathBuf::from("/run/stackctl/stackctl.sock"),
            Some(dir) if Path::new(dir).is_absolute() => Path::new(dir).join("stackctl.sock"),
            _ => PathBuf::from(format!("/tmp/stackctl-{euid}.sock")),
        }
    }
}

impl Default for ControlConfig {
    /// The default for root; [`crate::load`] uses [`ControlConfig::default_socket`].
    fn default() -> Self {
        Self {
            socket: Self::default_socket(0, None),
            group: None,
        }
    }
}

/// `[http]`: the streaming server's HTTP listener (the API of the legacy Go server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// The address to listen on.
    pub host: String,
    /// The port, 1..=65535.
    #[serde(deserialize_with = "crate::port::deserialize")]
    pub port: u16,
    /// Origins allowed by CORS.
    pub cors_origins: Vec<String>,
    /// A plugin's streamed answer (a recording's download) that sends nothing to the client
    /// for this long is cut: its connection is closed and the plugin told.
    #[serde(with = "crate::duration")]
    pub write_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 8081,
            cors_origins: vec!["http://localhost:8080".into()],
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// `[metrics]`: the Prometheus listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// The port; 0 turns the separate metrics listener off.
    #[serde(deserialize_with = "crate::port::or_zero")]
    pub port: u16,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { port: 9090 }
    }
}

/// `[monitor]`: where the web monitor listens (used by its service's arguments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// The address.
    pub host: String,
    /// The port, 1..=65535.
    #[serde(deserialize_with = "crate::port::deserialize")]
    pub port: u16,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 8080,
        }
    }
}

/// `[detector]`: the YOLO detector's settings (used by its service's arguments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// `v8n`, `v11n` or `v13n`.
    pub model: YoloModel,
    /// Minimum detection score, 0..=1.
    pub score_threshold: f64,
    /// Non-maximum-suppression IoU threshold, 0..=1.
    pub nms_threshold: f64,
    /// The directory holding the model files.
    pub model_dir: PathBuf,
}

impl DetectorConfig {
    /// The model file: `model_dir` joined with [`YoloModel::file_name`]. Read-only; it can be
    /// referenced as `{detector.model_path}`.
    pub fn model_path(&self) -> PathBuf {
        self.model_dir.join(self.model.file_name())
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            model: YoloModel::V11n,
            score_threshold: 0.6,
            nms_threshold: 0.7,
            model_dir: "/tmp/yolo_models".into(),
        }
    }
}

/// `[streaming]`: the streaming server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamingConfig {
    /// Whether the stack streams at all (`--no-streaming` turns it off).
    pub enabled: bool,
    /// The most viewers at once, at least 1.
    pub max_clients: u32,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_clients: 10,
        }
    }
}

/// `[recording]`: where recordings go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    /// The directory (relative paths are relative to the supervisor's working directory).
    pub path: PathBuf,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            path: "recordings".into(),
        }
    }
}

/// `[tools]`: external programs the services use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsConfig {
    /// The `uv` binary that runs the Python services.
    pub uv: String,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self { uv: "uv".into() }
    }
}

/// `[legacy]`: the legacy script's settings that have no key of their own. Its one key,
/// `pprof_port`, is read as `profiling.port` (see [`crate::alias`]), so the section is empty
/// once loaded; it stays in the schema so that files which still have it load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LegacyConfig {}

/// `[profiling]`: the CPU profiler's HTTP listener, `GET /debug/pprof/profile`, in place of
/// the Go server's pprof port (`legacy.pprof_port`, `PPROF_PORT` and `--pprof-port` set
/// `port`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfilingConfig {
    /// The port; 0 (the default) turns profiling off: nothing listens and nothing samples.
    #[serde(deserialize_with = "crate::port::or_zero")]
    pub port: u16,
    /// The address to listen on: loopback unless opened on purpose, because a profile shows
    /// the program's insides and costs CPU while it runs.
    pub host: String,
    /// The longest profile one request may ask for (`?seconds=N` above it is refused).
    #[serde(with = "crate::duration")]
    pub max_duration: Duration,
}

impl Default for ProfilingConfig {
    fn default() -> Self {
        Self {
            port: 0,
            host: "127.0.0.1".into(),
            max_duration: Duration::from_secs(60),
        }
    }
}

/// `[source]`: the shared memory stackctl reads: the camera's H.264 ring, the detector's
/// results and the camera's NV12 ring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceConfig {
    /// The POSIX shared-memory name, `/name`.
    pub shm: String,
    /// The torn-read guard: `verify` or `settled`.
    pub guard: ShmGuard,
    /// How long to wait for the segment to appear.
    #[serde(with = "crate::duration")]
    pub open_timeout: Duration,
    /// The detector's result segment (`/pet_camera_detections` on the board), read for
    /// `/api/detections/*` and the metrics; `""` reads none. Optional at run time: until it
    /// exists there are no detections, and nothing else changes.
    pub detections: String,
    /// The camera's NV12 ring (`/pet_camera_active_frame`), read for `/snapshot.jpg`; `""`
    /// serves no snapshots.
    pub nv12: String,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            shm: "/pet_camera_stream".into(),
            guard: ShmGuard::Verify,
            open_timeout: Duration::from_secs(30),
            detections: "/pet_camera_detections".into(),
            nv12: "/pet_camera_active_frame".into(),
        }
    }
}

/// `[build]`: the services' build steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuildConfig {
    /// Skip every service's `build` commands (`--skip-build`).
    pub skip: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_socket() {
        let cases = [
            (0, Some("/run/user/0"), "/run/stackctl/stackctl.sock"),
            (1000, Some("/run/user/1000"), "/run/user/1000/stackctl.sock"),
            (1000, Some("relative"), "/tmp/stackctl-1000.sock"),
            (1000, Some(""), "/tmp/stackctl-1000.sock"),
            (1000, None, "/tmp/stackctl-1000.sock"),
        ];
        for (euid, xdg, want) in cases {
            assert_eq!(
                ControlConfig::default_socket(euid, xdg),
                PathBuf::from(want)
            );
        }
    }

    #[test]
    fn model_path() {
        let d = DetectorConfig::default();
        assert_eq!(
            d.model_path(),
            PathBuf::from("/tmp/yolo_models/yolo11n_detect_bayese_640x640_nv12.bin")
        );
    }
}
