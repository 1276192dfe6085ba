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
}
