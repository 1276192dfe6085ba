//! A snapshot of the whole stack, as `stackctl status`, `/api/status` and `/metrics` show it.
//!
//! The orchestrator publishes a fresh snapshot on every state change (and the resource figures
//! once a second); readers never lock anything the orchestrator holds.

use serde::{Deserialize, Serialize};

/// The state of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceState {
    /// Switched off in the configuration.
    Disabled,
    /// Not started yet: waiting for its dependencies.
    Waiting,
    /// Running its build commands.
    Building,
    /// Running, not ready yet.
    Starting,
    /// Running and ready.
    Ready,
    /// Exited; a restart is scheduled.
    Backoff,
    /// Being stopped.
    Stopping,
    /// Stopped by an operator or by shutdown.
    Stopped,
    /// Exited successfully and is not restarted.
    Completed,
    /// Gave up: crash loop, readiness timeout, failed build, or a dependency failed.
    Failed,
}

impl ServiceState {
    /// The lower-case name used in output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Waiting => "waiting",
            Self::Building => "building",
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Backoff => "backoff",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    /// True while a process of the service runs.
    pub fn is_up(self) -> bool {
        matches!(self, Self::Starting | Self::Ready | Self::Stopping)
    }
}

/// One service in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Its name in the configuration.
    pub name: String,
    /// Where it is in its life cycle.
    pub state: ServiceState,
    /// Why it is in that state, when that helps (what it waits for, why it failed).
    pub detail: Option<String>,
    /// Whether READY waits for it.
    pub required: bool,
    /// Whether it passed its readiness probe (or has none) in its current run.
    pub ready: bool,
    /// Process id of the current run.
    pub pid: Option<u32>,
    /// Seconds since the current run started.
    pub uptime_secs: Option<f64>,
    /// Restarts so far (by policy or by hand).
    pub restarts: u64,
    /// How the last run ended, e.g. `exit code 3` or `killed by SIGSEGV`.
    pub last_exit: Option<String>,
    /// The last run's exit code, or 128 + signal number.
    pub last_exit_code: Option<i32>,
    /// CPU use of the current run over the last second, in percent of one core.
    pub cpu_percent: Option<f32>,
    /// CPU time of the current run, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident memory of the current run's main process, in bytes.
    pub rss_bytes: Option<u64>,
}

/// The whole stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackStatus {
    /// stackctl's version.
    pub version: String,
    /// stackctl's own process id.
    pub pid: u32,
    /// Seconds since `stackctl up` started.
    pub uptime_secs: f64,
    /// True once every required service is ready.
    pub ready: bool,
    /// `starting`, `ready`, `degraded` (a required service is not ready after READY) or `stopping`.
    pub phase: String,
    /// Every configured service, in start order.
    pub services: Vec<ServiceStatus>,
    /// stackctl's own CPU time in seconds.
    pub cpu_seconds: f64,
    /// stackctl's own resident memory in bytes.
    pub rss_bytes: u64,
    /// The sink plugins.
    #[serde(default)]
    pub plugins: Vec<stackctl_plugin_host::PluginStatus>,
    /// The camera source, when plugins need one.
    #[serde(default)]
    pub source: Option<SourceStatus>,
    /// The detector's results, unless `[source] detections = ""`.
    #[serde(default)]
    pub detections: Option<DetectionStatus>,
    /// Snapshots, unless `[source] nv12 = ""`.
    #[serde(default)]
    pub snapshots: Option<SnapshotStatus>,
}

/// The detection source and the HTTP clients of its results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectionStatus {
    /// Segment name.
    pub shm: String,
    /// Whether the segment is mapped (the detector has created it).
    pub attached: bool,
    /// Results read.
    pub results: u64,
    /// Detections in those results.
    pub detections: u64,
    /// Results dropped as malformed.
    pub malformed: u64,
    /// Results overwritten before they could be read.
    pub missed: u64,
    /// Copies retried because the detector was writing.
    pub torn_retries: u64,
    /// Results given up: the detector never held still long enough.
    pub unstable: u64,
    /// Segments refused for their size.
    pub refused: u64,
    /// Results found torn afterwards (should stay 0).
    pub late_tears: u64,
    /// Detector restarts followed.
    pub restarts: u64,
    /// Milliseconds since the last result, when there was one.
    pub last_result_age_ms: Option<f64>,
    /// `/api/detections/stream` clients connected now.
    pub stream_clients: u64,
    /// Stream clients accepted since start.
    pub stream_clients_total: u64,
    /// Events sent to stream clients.
    pub stream_events: u64,
    /// Stream clients disconnected for reading too slowly.
    pub stream_dropped_slow: u64,
    /// Stream clients refused at the cap.
    pub stream_refused: u64,
}

/// `/snapshot.jpg`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotStatus {
    /// The NV12 segment.
    pub shm: String,
    /// Requests answered with a picture.
    pub served: u64,
    /// Of those, answered from the cache.
    pub cached: u64,
    /// JPEG encodes.
    pub encodes: u64,
    /// Requests answered without a picture (503) or refused (400).
    pub errors: u64,
}

/// The shared-memory source feeding the plugins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Segment name.
    pub shm: String,
    /// H.264 frames read.
    pub frames: u64,
    /// Frames lost by falling a ring behind.
    pub lost: u64,
    /// Malformed frames dropped.
    pub malformed: u64,
    /// Copies retried because the camera was still writing them.
    pub torn_retries: u64,
    /// Early deliveries found torn afterwards (should stay 0).
    pub late_tears: u64,
    /// Camera restarts followed.
    pub restarts: u64,
    /// Milliseconds since the last frame, when there was one.
    pub last_frame_age_ms: Option<f64>,
    /// Bytes of H.264 read.
    #[serde(default)]
    pub bytes: u64,
    /// Frames of other formats skipped.
    #[serde(default)]
    pub other_format: u64,
    /// Two-second windows in which the camera delivered below 85 % of its announced rate.
    #[serde(default)]
    pub late_windows: u64,
    /// The rate measured in the last late window, frames per second.
    #[serde(default)]
    pub late_fps: Option<f64>,
    /// Whether SPS and PPS have been seen.
    #[serde(default)]
    pub has_params: bool,
}
