//! One run of a service: clean its segments, build, spawn, probe, and report, until it exits or
//! is told to stop. Each run is a task that owns its process; the orchestrator only hears about
//! it through [`RunEvent`]s tagged with the run's generation, so a late event from an old run
//! can never be mistaken for the current one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::plan::{Check, ProbePlan, ServicePlan};
use crate::process::{Exit, ExitClass, LogRing, Reaper, classify};
use crate::service::probe::{ProbeError, ProbeState, attempt};

/// What a run reports.
#[derive(Debug)]
pub enum RunEvent {
    /// Build commands are running.
    Building,
    /// The process runs with this pid.
    Started(u32),
    /// A build command failed, or the process could not be spawned.
    StartFailed(StartFailure),
    /// The readiness probe passed (or there is none).
    Ready,
    /// The readiness probe gave up.
    NotReady(NotReady),
    /// The liveness probe failed too many times in a row (the last failure).
    Unhealthy(CheckError),
    /// The process ended; `None` if it could not be reaped after SIGKILL.
    Exited(Option<Exit>, ExitClass),
}

/// Why a run never got its process started.
#[derive(Debug, thiserror::Error)]
pub enum StartFailure {
    /// A build step did not succeed.
    #[error("build step `{step}` {error}")]
    Build {
        /// The step's name (`service/buildN`).
        step: String,
        /// How it failed.
        error: CommandError,
    },
    /// The service's program could not be spawned.
    #[error("cannot start {}: {error}", program.display())]
    Spawn {
        /// The program.
        program: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

/// How a command run to its end (a build step, an exec probe) failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// It could not be spawned.
    #[error("could not start: {0}")]
    Spawn(std::io::Error),
    /// It ran longer than its limit (and was killed).
    #[error("took longer than {0:?}")]
    TimedOut(Duration),
    /// It ended otherwise than with exit code 0.
    #[error("{0}")]
    Failed(Exit),
}

/// Why one probe attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A probe that looks from outside.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// An exec probe's command.
    #[error(transparent)]
    Exec(#[from] CommandError),
}

/// Why the readiness probe gave up.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// A `log` probe: the service's output ended before the line came.
    #[error("its output ended")]
    OutputEnded,
    /// A `log` probe: no matching line in time.
    #[error("no line matching /{pattern}/ within {timeout:?}")]
    NoLine {
        /// The pattern.
        pattern: String,
        /// The probe's timeout.
        timeout: Duration,
    },
    /// `retries` attempts failed.
    #[error("{failures} attempts failed, the last: {last}")]
    Retries {
        /// How many.
        failures: u32,
        /// The last failure.
        last: CheckError,
    },
    /// The probe's timeout passed.
    #[error("not ready within {timeout:?}: {last}")]
    TimedOut {
        /// The probe's timeout.
        timeout: Duration,
        /// The last failure.
        last: CheckError,
    },
}

/// A report from run `generation` of service `index`.
#[derive(Debug)]
pub struct Report {
    /// The service.
    pub index: usize,
    /// The run.
    pub generation: u64,
    /// What happened.
    pub event: RunEvent,
}

/// The orchestrator's handle on a run.
#[derive(Debug)]
pub struct RunHandle {
    stop: Option<oneshot::Sender<()>>,
}

impl RunHandle {
    /// Asks the run to stop its process (the stop signal, then SIGKILL after the timeout). The
    /// run reports `Exited` when done.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The one reaper.
    pub reaper: Arc<Reaper>,
    /// Where reports go.
    pub reports: mpsc::UnboundedSender<Report>,
    /// Whether build commands are skipped.
    pub skip_build: bool,
}

/// Starts run `generation` of `plan` (service `index`).
pub fn start(
    ctx: RunContext,
    plan: Arc<ServicePlan>,
    index: usize,
    generation: u64,
    logs: Arc<LogRing>,
) -> RunHandle {
    let (stop_tx, stop_rx) = oneshot::channel();
    // The task reports its own end (`Exited`); nothing needs its handle.
    tokio::spawn(run(ctx, plan, index, generation, logs, stop_rx));
    RunHandle {
        stop: Some(stop_tx),
    }
}

async fn run(
    ctx: RunContext,
    plan: Arc<ServicePlan>,
    index: usize,
    generation: u64,
    logs: Arc<LogRing>,
    mut stop: oneshot::Receiver<()>,
) {
    let report = |event| {
        let _ = ctx.reports.send(Report {
            index,
            generation,
            event,
        });
    };
    if !plan.clean_shm.is_empty() {
        match crate::service::shm_clean::clean(&plan.clean_shm) {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(service = %plan.name, ?removed, "removed stale shared memory")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(service = %plan.name, error = %e, "could not clean shared memory")
            }
        }
    }
    if !ctx.skip_build && !plan.build.is_empty() {
        report(RunEvent::Building);
        for step in &plan.build {
            let outcome = tokio::select! {
                outcome = run_to_completion(&ctx.reaper, step, logs.clone(), None) => outcome,
                _ = &mut stop => {
                    report(RunEvent::Exited(None, ExitClass::Stopped));
                    return;
                }
            };
            if let Err(error) = outcome {
                report(RunEvent::StartFailed(StartFailure::Build {
                    step: step.name.clone(),
                    error,
                }));
                return;
            }
        }
    }
    // Subscribe before spawning, so a log probe cannot miss the line it waits for.
    let log_lines = logs.subscribe();
    let mut child = match ctx.reaper.spawn(&plan.spec, logs.clone()).await {
        Ok(child) => child,
        Err(error) => {
            report(RunEvent::StartFailed(StartFailure::Spawn {
                program: plan.spec.program.clone(),
                error,
            }));
            return;
        }
    };
    report(RunEvent::Started(child.pid()));
    let probes = tokio::spawn(probe(
        ctx.clone(),
        plan.clone(),
        index,
        generation,
        log_lines,
    ));
    let (exit, class) = tokio::select! {
        exit = child.wait() => (Some(exit), classify(exit, None)),
        _ = &mut stop => {
            let stopped = child.stop(plan.stop_signal, plan.stop_timeout).await;
            if stopped.killed {
                tracing::warn!(service = %plan.name, timeout = ?plan.stop_timeout, "did not stop in time: killed");
            }
            if !stopped.group_empty {
                tracing::warn!(service = %plan.name, "processes of its group survived SIGKILL");
            }
            (stopped.exit, stopped.class.unwrap_or(ExitClass::Stopped))
        }
    };
    probes.abort();
    report(RunEvent::Exited(exit, class));
}

/// Runs `spec` to its end; `Err` says how it failed.
///
/// Used for build steps and exec probes, whose futures are dropped when their service stops:
/// the child is held by a [`KillOnDrop`], so dropping the future kills its process group
/// instead of leaving it behind.
async fn run_to_completion(
    reaper: &Reaper,
    spec: &crate::process::ProcessSpec,
    logs: Arc<LogRing>,
    timeout: Option<Duration>,
) -> Result<(), CommandError> {
    let child = reaper
        .spawn(spec, logs)
        .await
        .map_err(CommandError::Spawn)?;
    let child = KillOnDrop(child);
    let exit = match timeout {
        Some(limit) => match tokio::time::timeout(limit, child.0.wait()).await {
            Ok(exit) => exit,
            Err(_) => return Err(CommandError::TimedOut(limit)),
        },
        None => child.0.wait().await,
    };
    match exit {
        Exit::Code(0) => Ok(()),
        other => Err(CommandError::Failed(other)),
    }
}

/// A child whose whole process group is SIGKILLed when this is dropped (the reaper then reaps
/// it). After a normal exit the group is usually empty and the signal finds nothing.
struct KillOnDrop(crate::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.signal(nix::sys::signal::Signal::SIGKILL);
    }
}

/// Readiness, then liveness, for one run.
async fn probe(
    ctx: RunContext,
    plan: Arc<ServicePlan>,
    index: usize,
    generation: u64,
    mut lines: tokio::sync::broadcast::Receiver<crate::process::LogLine>,
) {
    let report = |event| {
        let _ = ctx.reports.send(Report {
            index,
            generation,
            event,
        });
    };
    match &plan.ready {
        None => report(RunEvent::Ready),
        Some(ready) => match wait_ready(&ctx, ready, &mut lines).await {
            Ok(()) => report(RunEvent::Ready),
            Err(why) => {
                report(RunEvent::NotReady(why));
                return;
            }
        },
    }
    let Some(live) = &plan.liveness else { return };
    let mut failures = 0;
    let mut state = ProbeState::default();
    loop {
        tokio::time::sleep(live.interval).await;
        match check_once(&ctx, live, &mut state, live.timeout).await {
            Ok(()) => failures = 0,
            Err(why) => {
                failures += 1;
                tracing::warn!(service = %plan.name, failures, "liveness probe failed: {why}");
                if failures >= live.retries.max(1) {
                    report(RunEvent::Unhealthy(why));
                    return;
                }
            }
        }
    }
}

async fn wait_ready(
    ctx: &RunContext,
    ready: &ProbePlan,
    lines: &mut tokio::sync::broadcast::Receiver<crate::process::LogLine>,
) -> Result<(), NotReady> {
    let deadline = Instant::now() + ready.timeout;
    if let Check::Log(pattern) = &ready.check {
        let wait = async {
            loop {
                match lines.recv().await {
                    Ok(line) if pattern.is_match(&line.text) => return Ok(()),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        return Err(NotReady::OutputEnded);
                    }
                }
            }
        };
        return tokio::time::timeout(ready.timeout, wait)
            .await
            .unwrap_or_else(|_| {
                Err(NotReady::NoLine {
                    pattern: pattern.to_string(),
                    timeout: ready.timeout,
                })
            });
    }
    let mut state = ProbeState::default();
    let mut failures = 0u32;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let last =
            match check_once(ctx, ready, &mut state, left.max(Duration::from_millis(1))).await {
                Ok(()) => return Ok(()),
                Err(why) => why,
            };
        failures += 1;
        if ready.retries > 0 && failures >= ready.retries {
            return Err(NotReady::Retries { failures, last });
        }
        if Instant::now() + ready.interval >= deadline {
            return Err(NotReady::TimedOut {
                timeout: ready.timeout,
                last,
            });
        }
        tokio::time::sleep(ready.interval).await;
    }
}

async fn check_once(
    ctx: &RunContext,
    probe: &ProbePlan,
    state: &mut ProbeState,
    limit: Duration,
) -> Result<(), CheckError> {
    match &probe.check {
        Check::Target(target) => Ok(attempt(target, state, limit).await?),
        Check::Exec(spec) => {
            Ok(
                run_to_completion(&ctx.reaper, spec, Arc::new(LogRing::new(64)), Some(limit))
                    .await?,
            )
        }
        Check::Log(_) => Ok(()),
    }
}
