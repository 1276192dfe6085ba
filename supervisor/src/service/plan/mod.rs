//! What the orchestrator needs to know about a service, resolved from the configuration once:
//! interpolated, validated, with probes compiled and signals parsed.

pub mod build;

use std::time::Duration;

use nix::sys::signal::Signal;
use regex::Regex;

use super::gate::Condition;
use super::restart::Rules;
use crate::process::ProcessSpec;
use crate::service::probe::Target;

/// What happens when a service is declared FAILED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Nothing: the rest of the stack carries on.
    Ignore,
    /// Stop every service; `stackctl up` keeps running so the failure can be inspected and the
    /// stack started again by hand.
    StopStack,
    /// Stop every service and exit non-zero, so systemd (`Restart=on-failure`) starts afresh.
    Exit,
}

/// One probe: what it checks and how often.
#[derive(Debug, Clone)]
pub struct ProbePlan {
    /// What it checks.
    pub check: Check,
    /// Between attempts.
    pub interval: Duration,
    /// Readiness: the total time allowed; liveness: the limit of one attempt.
    pub timeout: Duration,
    /// Readiness: failed attempts allowed (0 = no limit); liveness: consecutive failures
    /// tolerated before a restart.
    pub retries: u32,
}

/// The kinds of check.
#[derive(Debug, Clone)]
pub enum Check {
    /// Looked at from outside (shm, file, tcp, http).
    Target(Target),
    /// A command that must exit 0.
    Exec(ProcessSpec),
    /// A line of the service's own output matching this.
    Log(Regex),
}

/// A service, ready to run.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    /// Its name.
    pub name: String,
    /// The process to run.
    pub spec: ProcessSpec,
    /// Off services are shown but never started.
    pub enabled: bool,
    /// READY waits for it.
    pub required: bool,
    /// Commands run, in order, before each start (unless builds are skipped).
    pub build: Vec<ProcessSpec>,
    /// Dependencies, as indices into the plan list, with their conditions.
    pub deps: Vec<(usize, Condition)>,
    /// Readiness probe.
    pub ready: Option<ProbePlan>,
    /// Liveness probe.
    pub liveness: Option<ProbePlan>,
    /// Restart rules.
    pub rules: Rules,
    /// What a FAILED state triggers.
    pub on_failure: OnFailure,
    /// Sent to the process group to stop it.
    pub stop_signal: Signal,
    /// Before SIGKILL.
    pub stop_timeout: Duration,
    /// Segments removed before each start.
    pub clean_shm: Vec<String>,
    /// When this service restarts, its dependents restart too.
    pub restart_dependents: bool,
}
