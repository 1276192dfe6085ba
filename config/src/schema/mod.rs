//! The typed configuration. Every section and every field has a default, and unknown keys are
//! errors (`deny_unknown_fields` everywhere).

mod enums;
mod probe;
mod sections;
mod service;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub(crate) use enums::quoted_list;
pub use enums::{
    DependencyCondition, LogFormat, OnFailure, RestartPolicy, ShmGuard, Signal, YoloModel,
};
pub use probe::{Probe, ProbeKind};
pub use sections::{
    BuildConfig, ControlConfig, DetectorConfig, HttpConfig, LegacyConfig, LogConfig, MetricsConfig,
    MonitorConfig, ProfilingConfig, RecordingConfig, SourceConfig, StreamingConfig, ToolsConfig,
};
pub use service::{Backoff, BuildCommand, ServiceConfig};

use crate::graph::{self, DependencyCycle};

/// The service `--no-detector` disables.
pub const DETECTOR_SERVICE: &str = "yolo_detector_daemon";
/// The service `--no-monitor` disables.
pub const MONITOR_SERVICE: &str = "web_monitor";

/// The whole configuration, as [`crate::load`] returns it: merged, interpolated, validated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Extra directories searched for plugin files.
    pub plugin_dirs: Vec<PathBuf>,
    /// `[log]`.
    pub log: LogConfig,
    /// `[control]`.
    pub control: ControlConfig,
    /// `[http]`.
    pub http: HttpConfig,
    /// `[metrics]`.
    pub metrics: MetricsConfig,
    /// `[monitor]`.
    pub monitor: MonitorConfig,
    /// `[detector]`.
    pub detector: DetectorConfig,
    /// `[streaming]`.
    pub streaming: StreamingConfig,
    /// `[recording]`.
    pub recording: RecordingConfig,
    /// `[tools]`.
    pub tools: ToolsConfig,
    /// `[legacy]`: accepted in files, never written out (its key is read as `profiling.port`).
    #[serde(skip_serializing)]
    pub legacy: LegacyConfig,
    /// `[profiling]`.
    pub profiling: ProfilingConfig,
    /// `[source]`.
    pub source: SourceConfig,
    /// `[build]`.
    pub build: BuildConfig,
    /// `[plugins.NAME]`: each plugin's table, passed through untouched (not interpolated).
    pub plugins: BTreeMap<String, toml::Table>,
    /// `[services.NAME]`.
    pub services: BTreeMap<String, ServiceConfig>,
}

impl Config {
    /// The enabled services in an order that starts every service after the services it
    /// depends on; among services free to start, by name. Stop in the reverse order.
    ///
    /// A configuration from [`crate::load`] has no cycle; one edited since may.
    pub fn start_order(&self) -> Result<Vec<&str>, DependencyCycle> {
        graph::start_order(&self.services)
    }
}
