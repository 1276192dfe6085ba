//! The orchestrator: one task that owns every service's state and reacts to events (run
//! reports, restart timers, control requests, signals), starting what may start after each.
//!
//! ```text
//!            gate open            spawned          probe ok
//! waiting ─────────────> building ───────> starting ───────> ready
//!    ^                                        │                │
//!    │ restart due                            └──── exit ──────┤
//! backoff <── policy: restart ────────────────────────────────┤
//! failed  <── crash loop / not ready / policy: done + failure ─┤
//! completed <── policy: done + success ───────────────────────┤
//! stopped <── stop / shutdown ────────────────────────────────┘
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::gate::{self, Gate};
use super::plan::{OnFailure, ServicePlan};
use super::resources::Resources;
use super::restart::{Decision, RestartState};
use super::run::{self, Report, RunContext, RunEvent, RunHandle};
use crate::control::{Call, Reply, Request, Response};
use crate::notify::Notifier;
use crate::process::{Exit, ExitClass, LogRing};
use crate::status::{ServiceState, ServiceStatus, StackStatus};

/// Lines of output kept per service for `stackctl logs`.
const LOG_LINES: usize = 1000;

/// What to do when the current run has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterExit {
    /// Apply the restart policy.
    Policy,
    /// Apply the restart policy, counting the exit as a failure (liveness failed).
    PolicyAsFailure,
    /// Stay stopped (operator stop or shutdown).
    Stop,
    /// Start again at once (operator restart, or a dependency restarted).
    Restart,
    /// Declare it failed (readiness gave up).
    Fail,
}

#[derive(Debug)]
struct Service {
    plan: Arc<ServicePlan>,
    state: ServiceState,
    detail: Option<String>,
    generation: u64,
    run: Option<RunHandle>,
    after_exit: AfterExit,
    pid: Option<u32>,
    started_at: Option<Instant>,
    ready: bool,
    restarts: u64,
    last_exit: Option<Exit>,
    restart: RestartState,
    logs: Arc<LogRing>,
}

/// Where the stack as a whole is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Stopping every service, then exiting with this code (`None`: stay up, stack stopped).
    Stopping(Option<u8>),
    Idle,
    Done(u8),
}

/// The orchestrator. Build it with [`Stack::new`], then drive it with [`Stack::run`].
#[derive(Debug)]
pub struct Stack {
    services: Vec<Service>,
    ctx: RunContext,
    reports: mpsc::UnboundedReceiver<Report>,
    /// Restart timers report `(service, generation)` here when their back-off has passed.
    timers_tx: mpsc::UnboundedSender<(usize, u64)>,
    timers: mpsc::UnboundedReceiver<(usize, u64)>,
    status: watch::Sender<Arc<StackStatus>>,
    notifier: Notifier,
    started: Instant,
    ready_sent: bool,
    last_summary: String,
    phase: Phase,
    rng: u64,
    resources: Resources,
    attached: Attachments,
}

/// What runs beside the services and shows in the status: the sink plugins and their source.
#[derive(Debug, Default, Clone)]
pub struct Attachments {
    /// The plugin host, when plugins are configured.
    pub plugins: Option<Arc<stackctl_plugin_host::PluginHost>>,
    /// The source's segment name and counters, when it runs.
    pub source: Option<(String, Arc<stackctl_core::shm::SourceStats>)>,
}

impl Stack {
    /// A stack of `plans` (in start order) whose status is published on `status`.
    pub fn new(
        plans: Vec<ServicePlan>,
        reaper: Arc<crate::process::Reaper>,
        skip_build: bool,
        notifier: Notifier,
        status: watch::Sender<Arc<StackStatus>>,
        attached: Attachments,
    ) -> Self {
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let (timers_tx, timers) = mpsc::unbounded_channel();
        let services = plans
            .into_iter()
            .map(|plan| Service {
                state: if plan.enabled {
                    ServiceState::Waiting
                } else {
                    ServiceState::Disabled
                },
                plan: Arc::new(plan),
                detail: None,
                generation: 0,
                run: None,
                after_exit: AfterExit::Policy,
                pid: None,
                started_at: None,
                ready: false,
                restarts: 0,
                last_exit: None,
                restart: RestartState::default(),
                logs: Arc::new(LogRing::new(LOG_LINES)),
            })
            .collect();
        Self {
            services,
            ctx: RunContext {
                reaper,
                reports: reports_tx,
                skip_build,
            },
            reports,
            timers_tx,
            timers,
            status,
            notifier,
            started: Instant::now(),
            ready_sent: false,
            last_summary: String::new(),
            phase: Phase::Running,
            rng: seed(),
            resources: Resources::new(),
            attached,
        }
    }

    /// Runs until shutdown completes, and returns the exit code: 0 after SIGINT, SIGTERM or
    /// `stackctl down`, 1 after a service failed with `on_failure = "exit"`.
    pub async fn run(mut self, mut calls: mpsc::Receiver<Call>) -> u8 {
        let mut sigterm = signal(tokio::signal::unix::SignalKind::terminate());
        let mut sigint = signal(tokio::signal::unix::SignalKind::interrupt());
        let watchdog_every = self.notifier.watchdog_interval();
        let mut watchdog =
            tokio::time::interval(watchdog_every.unwrap_or(Duration::from_secs(3600)));
        let mut sample = tokio::time::interval(Duration::from_secs(1));
        loop {
            self.advance();
            self.publish();
            if let Phase::Done(code) = self.phase {
                let _ = self.notifier.stopping("stopped");
                return code;
            }
            tokio::select! {
                Some(report) = self.reports.recv() => self.on_report(report),
                Some((index, generation)) = self.timers.recv() => self.on_restart_due(index, generation),
                Some(call) = calls.recv() => self.on_call(call),
                _ = recv(&mut sigterm) => self.shutdown("SIGTERM", 0),
                _ = recv(&mut sigint) => self.shutdown("SIGINT", 0),
                _ = watchdog.tick(), if watchdog_every.is_some() => { let _ = self.notifier.watchdog(); }
                _ = sample.tick() => {
                    let pids: Vec<_> = self.services.iter().map(|s| s.pid).collect();
                    self.resources.sample(&pids);
                }
            }
        }
    }

    /// Starts what may start, and moves a shutdown along.
    fn advance(&mut self) {
        match self.phase {
            Phase::Running => self.start_ready_services(),
            Phase::Stopping(code) => self.stop_next(code),
            Phase::Idle | Phase::Done(_) => {}
        }
    }

    fn start_ready_services(&mut self) {
        for i in 0..self.services.len() {
            if self.services[i].state != ServiceState::Waiting {
                continue;
            }
            let deps = self.services[i].plan.deps.clone();
            let verdicts = deps
                .iter()
                .map(|&(d, cond)| (d, gate::check(cond, self.services[d].state)));
            let blocking: Vec<_> = verdicts.filter(|(_, g)| *g != Gate::Open).collect();
            let verdict = gate::all(blocking.iter().map(|&(_, g)| g));
            let names = |g: Gate| -> Vec<&str> {
                blocking
                    .iter()
                    .filter(|(_, v)| *v == g)
                    .map(|&(d, _)| self.services[d].plan.name.as_str())
                    .collect()
            };
            let detail = match verdict {
                Gate::Open => None,
                Gate::Wait => Some(format!("waiting for {}", names(Gate::Wait).join(", "))),
                Gate::Never => Some(format!("blocked: {} failed", names(Gate::Never).join(", "))),
            };
            if verdict == Gate::Open {
                self.launch(i);
            } else {
                self.services[i].detail = detail;
            }
        }
    }

    fn launch(&mut self, i: usize) {
        let ctx = self.ctx.clone();
        let s = &mut self.services[i];
        s.generation += 1;
        s.after_exit = AfterExit::Policy;
        s.ready = false;
        s.detail = None;
        s.state = ServiceState::Starting;
        tracing::info!(service = %s.plan.name, "starting");
        s.run = Some(run::start(
            ctx,
            s.plan.clone(),
            i,
            s.generation,
            s.logs.clone(),
        ));
    }

    /// Shutdown stops one service at a time, the last started first.
    fn stop_next(&mut self, code: Option<u8>) {
        if self
            .services
            .iter()
            .any(|s| s.state == ServiceState::Stopping)
        {
            return;
        }
        for s in self.services.iter_mut().rev() {
            match s.state {
                ServiceState::Building | ServiceState::Starting | ServiceState::Ready => {
                    s.after_exit = AfterExit::Stop;
                    s.state = ServiceState::Stopping;
                    tracing::info!(service = %s.plan.name, "stopping");
                    if let Some(run) = s.run.as_mut() {
                        run.stop();
                    }
                    return;
                }
                ServiceState::Waiting | ServiceState::Backoff => {
                    s.generation += 1;
                    s.state = ServiceState::Stopped;
                }
                _ => {}
            }
        }
        self.phase = match code {
            Some(code) => Phase::Done(code),
            None => Phase::Idle,
        };
        tracing::info!("every service is stopped");
    }

    fn shutdown(&mut self, why: &str, code: u8) {
        if matches!(self.phase, Phase::Running | Phase::Idle) {
            tracing::info!("{why}: stopping the stack");
            let _ = self.notifier.stopping(&format!("stopping ({why})"));
            self.phase = Phase::Stopping(Some(code));
        }
    }

    fn on_report(&mut self, report: Report) {
        let i = report.index;
        if self.services[i].generation != report.generation {
            return;
        }
        let name = self.services[i].plan.name.clone();
        match report.event {
            RunEvent::Building => self.services[i].state = ServiceState::Building,
            RunEvent::Started(pid) => {
                let s = &mut self.services[i];
                s.pid = Some(pid);
                s.started_at = Some(Instant::now());
                if s.state != ServiceState::Stopping {
                    s.state = ServiceState::Starting;
                }
                tracing::info!(service = %name, pid, "started");
            }
            RunEvent::Ready => {
                let s = &mut self.services[i];
                if s.state == ServiceState::Starting {
                    s.state = ServiceState::Ready;
                    s.ready = true;
                    tracing::info!(service = %name, "ready");
                }
            }
            RunEvent::NotReady(why) => {
                tracing::error!(service = %name, "not ready: {why}");
                self.services[i].detail = Some(format!("not ready: {why}"));
                self.stop_run(i, AfterExit::Fail);
            }
            RunEvent::Unhealthy(why) => {
                tracing::warn!(service = %name, "liveness failed: {why}; restarting");
                self.services[i].detail = Some(format!("liveness failed: {why}"));
                self.stop_run(i, AfterExit::PolicyAsFailure);
            }
            RunEvent::StartFailed(why) => {
                tracing::error!(service = %name, "{why}");
                self.services[i].detail = Some(why);
                self.on_exit(i, None, ExitClass::Failure);
            }
            RunEvent::Exited(exit, class) => self.on_exit(i, exit, class),
        }
    }

    fn stop_run(&mut self, i: usize, after: AfterExit) {
        let s = &mut self.services[i];
        s.after_exit = after;
        if let Some(run) = s.run.as_mut() {
            run.stop();
        }
    }

    fn on_exit(&mut self, i: usize, exit: Option<Exit>, class: ExitClass) {
        let now = self.started.elapsed();
        let random = self.random();
        let s = &mut self.services[i];
        let name = s.plan.name.clone();
        let uptime = s.started_at.map(|t| t.elapsed()).unwrap_or_default();
        s.run = None;
        s.pid = None;
        s.ready = false;
        if exit.is_some() {
            s.last_exit = exit;
        }
        let how = exit.map_or_else(|| "did not start".to_owned(), |e| e.to_string());
        match s.after_exit {
            AfterExit::Stop => {
                s.state = ServiceState::Stopped;
                tracing::info!(service = %name, "stopped ({how})");
            }
            AfterExit::Restart => {
                s.state = ServiceState::Waiting;
                tracing::info!(service = %name, "stopped ({how}); starting again");
            }
            AfterExit::Fail => {
                s.state = ServiceState::Failed;
                self.on_failed(i);
            }
            after @ (AfterExit::Policy | AfterExit::PolicyAsFailure) => {
                let failed = after == AfterExit::PolicyAsFailure || class == ExitClass::Failure;
                let plan = s.plan.clone();
                match s.restart.on_exit(&plan.rules, now, uptime, failed, random) {
                    Decision::Restart(delay) => {
                        s.state = ServiceState::Backoff;
                        s.restarts += 1;
                        s.detail = Some(format!("{how}; restarting in {delay:.1?}"));
                        tracing::warn!(service = %name, "{how}; restarting in {delay:.1?}");
                        let (timers, generation) = (self.timers_tx.clone(), s.generation);
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let _ = timers.send((i, generation));
                        });
                        if plan.restart_dependents {
                            self.restart_dependents(i);
                        }
                    }
                    Decision::Done if !failed => {
                        s.state = ServiceState::Completed;
                        s.detail = None;
                        tracing::info!(service = %name, "completed");
                    }
                    Decision::Done => {
                        s.state = ServiceState::Failed;
                        s.detail = Some(how);
                        self.on_failed(i);
                    }
                    Decision::GiveUp => {
                        s.state = ServiceState::Failed;
                        s.detail = Some(format!(
                            "{how}; gave up after {} restarts within {:?}",
                            plan.rules.max_restarts, plan.rules.window
                        ));
                        self.on_failed(i);
                    }
                }
            }
        }
    }

    fn on_failed(&mut self, i: usize) {
        let s = &self.services[i];
        tracing::error!(service = %s.plan.name, detail = s.detail.as_deref().unwrap_or(""), "failed");
        match s.plan.on_failure {
            OnFailure::Ignore => {}
            OnFailure::StopStack => {
                if self.phase == Phase::Running {
                    self.phase = Phase::Stopping(None);
                }
            }
            OnFailure::Exit => self.shutdown(&format!("{} failed", s.plan.name), 1),
        }
    }

    /// Restarts every running service that depends, directly or not, on service `i`.
    fn restart_dependents(&mut self, i: usize) {
        let mut affected = vec![false; self.services.len()];
        affected[i] = true;
        // Plans are in start order, so one forward pass sees dependencies before dependents.
        for j in i + 1..self.services.len() {
            if self.services[j].plan.deps.iter().any(|&(d, _)| affected[d]) {
                affected[j] = true;
                let s = &mut self.services[j];
                match s.state {
                    ServiceState::Building | ServiceState::Starting | ServiceState::Ready => {
                        tracing::info!(service = %s.plan.name, "restarting with its dependency");
                        s.restarts += 1;
                        self.stop_run(j, AfterExit::Restart);
                    }
                    ServiceState::Backoff => {
                        s.generation += 1;
                        s.state = ServiceState::Waiting;
                    }
                    _ => {}
                }
            }
        }
    }

    fn on_restart_due(&mut self, i: usize, generation: u64) {
        let s = &mut self.services[i];
        if s.generation == generation
            && s.state == ServiceState::Backoff
            && self.phase == Phase::Running
        {
            s.state = ServiceState::Waiting;
        }
    }

    fn on_call(&mut self, (request, reply): Call) {
        let answer = match request {
            Request::Status => Reply::one(Response {
                status: Some(self.snapshot()),
                ..Response::ok()
            }),
            Request::Down => {
                self.shutdown("stackctl down", 0);
                Reply::one(Response::ok())
            }
            Request::Restart { service } => {
                self.with_service(&service, |stack, i| stack.operator_restart(i))
            }
            Request::Stop { service } => {
                self.with_service(&service, |stack, i| stack.operator_stop(i))
            }
            Request::Start { service } => {
                self.with_service(&service, |stack, i| stack.operator_start(i))
            }
            Request::Logs {
                service,
                lines,
                follow,
            } => match self.find(&service) {
                Ok(i) => logs_reply(&self.services[i].logs, lines, follow),
                Err(e) => Reply::one(Response::error(e)),
            },
        };
        let _ = reply.send(answer);
    }

    fn find(&self, name: &str) -> Result<usize, String> {
        self.services
            .iter()
            .position(|s| s.plan.name == name)
            .ok_or_else(|| {
                let known: Vec<_> = self.services.iter().map(|s| s.plan.name.as_str()).collect();
                format!("no service {name:?} (services: {})", known.join(", "))
            })
    }

    fn with_service(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Self, usize) -> Result<(), String>,
    ) -> Reply {
        let response = match self.find(name).and_then(|i| f(self, i)) {
            Ok(()) => Response::ok(),
            Err(e) => Response::error(e),
        };
        Reply::one(response)
    }

    fn operator_restart(&mut self, i: usize) -> Result<(), String> {
        self.require_running()?;
        let s = &mut self.services[i];
        s.restart.reset();
        s.restarts += 1;
        match s.state {
            ServiceState::Disabled => {
                return Err(format!("{} is disabled in the configuration", s.plan.name));
            }
            ServiceState::Building | ServiceState::Starting | ServiceState::Ready => {
                self.stop_run(i, AfterExit::Restart)
            }
            ServiceState::Stopping => s.after_exit = AfterExit::Restart,
            _ => {
                s.generation += 1;
                s.state = ServiceState::Waiting;
            }
        }
        Ok(())
    }

    fn operator_stop(&mut self, i: usize) -> Result<(), String> {
        let s = &mut self.services[i];
        match s.state {
            ServiceState::Building | ServiceState::Starting | ServiceState::Ready => {
                s.state = ServiceState::Stopping;
                tracing::info!(service = %s.plan.name, "stopping");
                self.stop_run(i, AfterExit::Stop);
            }
            ServiceState::Waiting | ServiceState::Backoff => {
                s.generation += 1;
                s.state = ServiceState::Stopped;
            }
            _ => {}
        }
        Ok(())
    }

    fn operator_start(&mut self, i: usize) -> Result<(), String> {
        self.require_running()?;
        let s = &mut self.services[i];
        match s.state {
            ServiceState::Stopped | ServiceState::Failed | ServiceState::Completed => {
                s.restart.reset();
                s.state = ServiceState::Waiting;
                Ok(())
            }
            ServiceState::Disabled => {
                Err(format!("{} is disabled in the configuration", s.plan.name))
            }
            other => Err(format!("{} is already {}", s.plan.name, other.name())),
        }
    }

    fn require_running(&mut self) -> Result<(), String> {
        match self.phase {
            Phase::Running => Ok(()),
            Phase::Idle => {
                self.phase = Phase::Running;
                Ok(())
            }
            Phase::Stopping(_) | Phase::Done(_) => Err("the stack is stopping".to_owned()),
        }
    }

    /// Publishes the status, and tells systemd about readiness and state changes.
    fn publish(&mut self) {
        let snapshot = self.snapshot();
        if !self.ready_sent && snapshot.ready && self.phase == Phase::Running {
            self.ready_sent = true;
            tracing::info!("stack ready");
            let _ = self.notifier.ready(&summary(&snapshot));
        }
        let line = summary(&snapshot);
        if line != self.last_summary {
            let _ = self.notifier.status(&line);
            self.last_summary = line;
        }
        self.status.send_replace(Arc::new(snapshot));
    }

    fn snapshot(&self) -> StackStatus {
        let services: Vec<_> = self
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let usage = self.resources.get(i, s.pid);
                ServiceStatus {
                    name: s.plan.name.clone(),
                    state: s.state,
                    detail: s.detail.clone(),
                    required: s.plan.required,
                    ready: s.ready,
                    pid: s.pid,
                    uptime_secs: s
                        .started_at
                        .filter(|_| s.pid.is_some())
                        .map(|t| t.elapsed().as_secs_f64()),
                    restarts: s.restarts,
                    last_exit: s.last_exit.map(|e| e.to_string()),
                    last_exit_code: s.last_exit.map(|e| match e {
                        Exit::Code(c) => c,
                        Exit::Signal(n) => 128 + n,
                    }),
                    cpu_percent: usage.map(|u| u.cpu_percent),
                    cpu_seconds: usage.map(|u| u.cpu_seconds),
                    rss_bytes: usage.map(|u| u.rss_bytes),
                }
            })
            .collect();
        let source = self
            .attached
            .source
            .as_ref()
            .map(|(shm, stats)| source_status(shm, stats));
        // With plugins, READY also waits for the camera's first frame to reach the bus.
        let source_up = source.as_ref().is_none_or(|s| s.frames > 0);
        let ready = source_up
            && self.services.iter().all(|s| {
                !s.plan.required
                    || matches!(
                        s.state,
                        ServiceState::Ready | ServiceState::Completed | ServiceState::Disabled
                    )
            });
        let phase = match self.phase {
            Phase::Stopping(_) | Phase::Done(_) => "stopping",
            Phase::Idle => "stopped",
            Phase::Running if ready => "ready",
            Phase::Running if self.ready_sent => "degraded",
            Phase::Running => "starting",
        };
        let me = self.resources.own();
        StackStatus {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs_f64(),
            ready,
            phase: phase.to_owned(),
            services,
            cpu_seconds: me.map_or(0.0, |u| u.cpu_seconds),
            rss_bytes: me.map_or(0, |u| u.rss_bytes),
            plugins: self
                .attached
                .plugins
                .as_ref()
                .map(|p| p.statuses())
                .unwrap_or_default(),
            source,
        }
    }

    fn random(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `3/4 services ready; detector: backoff` and the like.
fn summary(status: &StackStatus) -> String {
    let enabled: Vec<_> = status
        .services
        .iter()
        .filter(|s| s.state != ServiceState::Disabled)
        .collect();
    let ready = enabled
        .iter()
        .filter(|s| s.state == ServiceState::Ready)
        .count();
    let odd: Vec<_> = enabled
        .iter()
        .filter(|s| !matches!(s.state, ServiceState::Ready | ServiceState::Completed))
        .map(|s| format!("{}: {}", s.name, s.state.name()))
        .collect();
    let mut line = format!("{}: {ready}/{} services ready", status.phase, enabled.len());
    if !odd.is_empty() {
        line.push_str("; ");
        line.push_str(&odd.join(", "));
    }
    line
}

fn source_status(
    shm: &str,
    stats: &stackctl_core::shm::SourceStats,
) -> crate::status::SourceStatus {
    use std::sync::atomic::Ordering::Relaxed;
    let last = stats.last_frame_ns.load(Relaxed);
    crate::status::SourceStatus {
        shm: shm.to_owned(),
        frames: stats.frames.load(Relaxed),
        lost: stats.lost.load(Relaxed),
        malformed: stats.malformed.load(Relaxed),
        torn_retries: stats.torn_retries.load(Relaxed),
        late_tears: stats.late_tears.load(Relaxed),
        restarts: stats.restarts.load(Relaxed),
        last_frame_age_ms: (last > 0)
            .then(|| stackctl_media::clock::monotonic_ns().saturating_sub(last) as f64 / 1e6),
    }
}

fn logs_reply(logs: &LogRing, lines: usize, follow: bool) -> Reply {
    let (tx, rx) = mpsc::channel(256);
    let past = logs.snapshot(lines);
    let live = follow.then(|| logs.subscribe());
    tokio::spawn(async move {
        for line in past {
            if tx
                .send(serde_json::json!({ "line": line_json(&line) }))
                .await
                .is_err()
            {
                return;
            }
        }
        if let Some(mut live) = live {
            while let Ok(line) = live.recv().await {
                if tx
                    .send(serde_json::json!({ "line": line_json(&line) }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        let _ = tx.send(serde_json::json!({ "ok": true })).await;
    });
    Reply::Stream(rx)
}

fn line_json(line: &crate::process::LogLine) -> serde_json::Value {
    serde_json::json!({ "stream": line.stream.as_str(), "text": line.text })
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind)
        .inspect_err(|e| tracing::warn!(error = %e, "cannot listen for a signal"))
        .ok()
}

async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ u64::from(std::process::id())) | 1
}
