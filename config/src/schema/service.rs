//! `[services.NAME]`: one supervised process. The key names are a contract with the
//! supervisor; the README describes the model.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::enums::{DependencyCondition, OnFailure, OutputLevel, RestartPolicy, Signal};
use super::probe::Probe;

/// A supervised service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// The program: a bare name is looked up in `PATH`, a name with a `/` is a path (the
    /// supervisor resolves relative ones from `cwd`). Required, non-empty.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Variables added to the supervisor's environment for this service.
    pub env: BTreeMap<String, String>,
    /// The working directory; the supervisor resolves a relative one, and the default, against
    /// the configuration file's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// Whether it runs at all.
    pub enabled: bool,
    /// Whether the stack's READY (systemd `READY=1`) waits for this service to be ready.
    pub required: bool,
    /// Commands run in order, in `cwd`, before the service starts, unless `build.skip`.
    pub build: Vec<BuildCommand>,
    /// Services that must reach a condition before this one starts.
    pub depends_on: BTreeMap<String, DependencyCondition>,
    /// The readiness probe; without one, the service is ready once started.
    #[serde(
        deserialize_with = "super::probe::ready",
        serialize_with = "super::probe::serialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub ready: Option<Probe>,
    /// The liveness probe; failing it `retries` times in a row restarts the service.
    #[serde(
        deserialize_with = "super::probe::liveness",
        serialize_with = "super::probe::serialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub liveness: Option<Probe>,
    /// When an exited service is started again.
    pub restart: RestartPolicy,
    /// The delay before each restart.
    pub backoff: Backoff,
    /// Once the service has run this long, the back-off starts again from `backoff.initial`.
    #[serde(with = "crate::duration")]
    pub min_uptime: Duration,
    /// The most restarts within `restart_window`; one more makes the service FAILED.
    pub max_restarts: u32,
    /// The sliding window `max_restarts` counts in.
    #[serde(with = "crate::duration")]
    pub restart_window: Duration,
    /// What a FAILED service does to the stack.
    pub on_failure: OnFailure,
    /// The signal sent to the service's process group to stop it.
    pub stop_signal: Signal,
    /// How long to wait after `stop_signal` before SIGKILL.
    #[serde(with = "crate::duration")]
    pub stop_timeout: Duration,
    /// Shared-memory names (`*` and `?` globs, e.g. `"/pet_camera_*"`) owned by this service:
    /// the supervisor unlinks matching segments before each start, so a stale one from a
    /// previous run is never taken for a live one.
    pub clean_shm: Vec<String>,
    /// Whether restarting this service also restarts the services that depend on it.
    pub restart_dependents: bool,
    /// The level its standard error is logged at (`trace` ... `error`, default `info`);
    /// standard output is always `info`.
    pub stderr_level: OutputLevel,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            command: String::new(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            enabled: true,
            required: true,
            build: Vec::new(),
            depends_on: BTreeMap::new(),
            ready: None,
            liveness: None,
            restart: RestartPolicy::OnFailure,
            backoff: Backoff::default(),
            min_uptime: Duration::from_secs(10),
            max_restarts: 5,
            restart_window: Duration::from_secs(60),
            on_failure: OnFailure::Ignore,
            stop_signal: Signal::Term,
            stop_timeout: Duration::from_secs(10),
            clean_shm: Vec::new(),
            restart_dependents: false,
            stderr_level: OutputLevel::Info,
        }
    }
}

/// `backoff`: the delay before a restart starts at `initial`, doubles after each restart up to
/// `max`, and is spread by ± `jitter` × delay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Backoff {
    /// The first delay.
    #[serde(with = "crate::duration")]
    pub initial: Duration,
    /// The largest delay.
    #[serde(with = "crate::duration")]
    pub max: Duration,
    /// The random spread, as a fraction of the delay, 0..=1.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            jitter: 0.1,
        }
    }
}

/// One `build` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildCommand {
    /// Written as a list of strings: run as is, no shell.
    Argv(Vec<String>),
    /// Written as a string: run with `sh -c`.
    Shell(String),
}

impl Serialize for BuildCommand {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Argv(argv) => argv.serialize(s),
            Self::Shell(line) => s.serialize_str(line),
        }
    }
}

impl<'de> Deserialize<'de> for BuildCommand {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BuildVisitor)
    }
}

struct BuildVisitor;

impl<'de> Visitor<'de> for BuildVisitor {
    type Value = BuildCommand;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a command line (run with sh -c) or a list of strings (argv)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<BuildCommand, E> {
        Ok(BuildCommand::Shell(v.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BuildCommand, A::Error> {
        let mut argv = Vec::new();
        while let Some(arg) = seq.next_element::<String>()? {
            argv.push(arg);
        }
        Ok(BuildCommand::Argv(argv))
    }
}
