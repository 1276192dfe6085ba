//! The thin async loop around the [`Machine`]: it turns what happens (a run's report, a back-off
//! ending, a control call, SIGTERM or SIGINT) into events, carries out the actions the machine
//! returns (start a run, stop a run, write a log line), and publishes the status (to
//! `stackctl status`, `/api/status`, `/metrics` and systemd) after each step. It also feeds the
//! systemd watchdog and samples CPU and memory once a second.
//!
//! Everything that decides lives in the machine; what is here does I/O and keeps the handles
//! the machine must not see: the runs, the log rings, the clock and the random numbers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::machine::{Action, Command, Event, Log, Machine, Phase};
use super::plan::ServicePlan;
use super::resources::Resources;
use super::run::{self, Report, RunContext, RunEvent, RunHandle};
use crate::control::{Call, Reply, Request, Response};
use crate::notify::Notifier;
use crate::process::{Exit, LogRing};
use crate::status::{ServiceState, ServiceStatus, StackStatus};

/// Lines of output kept per service for `stackctl logs`.
const LOG_LINES: usize = 1000;

/// What runs beside the services and shows in the status: the sink plugins and their source.
#[derive(Debug, Default, Clone)]
pub struct Attachments {
    /// The plugin host, when plugins are configured.
    pub plugins: Option<Arc<stackctl_plugin_host::PluginHost>>,
    /// The source's segment name and counters, when it runs.
    pub source: Option<(String, Arc<stackctl_core::shm::SourceStats>)>,
}

/// The driver. Build it with [`Driver::new`], then run it with [`Driver::run`].
#[derive(Debug)]
pub struct Driver {
    machine: Machine,
    /// Each service's current run, with its generation.
    runs: Vec<Option<(u64, RunHandle)>>,
    /// Each service's output, kept across its runs.
    logs: Vec<Arc<LogRing>>,
    ctx: RunContext,
    reports: mpsc::UnboundedReceiver<Report>,
    status: watch::Sender<Arc<StackStatus>>,
    notifier: Notifier,
    /// The machine's time origin.
    started: Instant,
    ready_sent: bool,
    last_summary: String,
    rng: u64,
    resources: Resources,
    attached: Attachments,
}

impl Driver {
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
        let n = plans.len();
        Self {
            machine: Machine::new(plans.into_iter().map(Arc::new).collect()),
            runs: (0..n).map(|_| None).collect(),
            logs: (0..n).map(|_| Arc::new(LogRing::new(LOG_LINES))).collect(),
            ctx: RunContext {
                reaper,
                reports: reports_tx,
                skip_build,
            },
            reports,
            status,
            notifier,
            started: Instant::now(),
            ready_sent: false,
            last_summary: String::new(),
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
        self.step(Event::Tick);
        loop {
            self.publish();
            if let Phase::Done(code) = self.machine.phase() {
                let _ = self.notifier.stopping("stopped");
                return code;
            }
            let deadline = self.machine.next_deadline();
            let wake = tokio::time::Instant::from_std(
                self.started + deadline.unwrap_or(Duration::from_secs(3600)),
            );
            tokio::select! {
                Some(report) = self.reports.recv() => self.on_report(report),
                () = tokio::time::sleep_until(wake), if deadline.is_some() => self.step(Event::Tick),
                Some(call) = calls.recv() => self.on_call(call),
                _ = recv(&mut sigterm) => self.shutdown("SIGTERM"),
                _ = recv(&mut sigint) => self.shutdown("SIGINT"),
                _ = watchdog.tick(), if watchdog_every.is_some() => { let _ = self.notifier.watchdog(); }
                _ = sample.tick() => {
                    let pids: Vec<_> = self.machine.services().iter().map(|s| s.pid).collect();
                    self.resources.sample(&pids);
                }
            }
        }
    }

    /// Feeds `event` to the machine and carries out what it says.
    fn step(&mut self, event: Event) {
        let now = self.started.elapsed();
        let random = self.random();
        let actions = self.machine.handle(event, now, random);
        self.carry_out(actions);
    }

    fn shutdown(&mut self, why: &str) {
        self.step(Event::Shutdown {
            why: why.to_owned(),
            code: 0,
        });
    }

    fn carry_out(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Launch { index, generation } => {
                    let plan = self.machine.services()[index].plan.clone();
                    let logs = self.logs[index].clone();
                    let handle = run::start(self.ctx.clone(), plan, index, generation, logs);
                    self.runs[index] = Some((generation, handle));
                }
                Action::Stop { index } => {
                    if let Some((_, run)) = self.runs[index].as_mut() {
                        run.stop();
                    }
                }
                Action::Log(line) => self.log(line),
            }
        }
    }

    /// Writes a line of the machine's in the log (with the service's name).
    fn log(&self, line: Log) {
        let name = |i: usize| self.machine.services()[i].plan.name.as_str();
        match line {
            Log::Starting(i) => tracing::info!(service = %name(i), "starting"),
            Log::Started(i, pid) => tracing::info!(service = %name(i), pid, "started"),
            Log::Ready(i) => tracing::info!(service = %name(i), "ready"),
            Log::NotReady(i, why) => tracing::error!(service = %name(i), "not ready: {why}"),
            Log::Unhealthy(i, why) => {
                tracing::warn!(service = %name(i), "liveness failed: {why}; restarting");
            }
            Log::StartFailed(i, why) => tracing::error!(service = %name(i), "{why}"),
            Log::Stopping(i) => tracing::info!(service = %name(i), "stopping"),
            Log::Stopped(i, how) => tracing::info!(service = %name(i), "stopped ({how})"),
            Log::StoppedToRestart(i, how) => {
                tracing::info!(service = %name(i), "stopped ({how}); starting again");
            }
            Log::Restarting(i, how, delay) => {
                tracing::warn!(service = %name(i), "{how}; restarting in {delay:.1?}");
            }
            Log::Completed(i) => tracing::info!(service = %name(i), "completed"),
            Log::Failed(i, detail) => {
                tracing::error!(service = %name(i), detail = detail.as_str(), "failed");
            }
            Log::RestartingWithDependency(i) => {
                tracing::info!(service = %name(i), "restarting with its dependency");
            }
            Log::StackStopping(why) => {
                tracing::info!("{why}: stopping the stack");
                let _ = self.notifier.stopping(&format!("stopping ({why})"));
            }
            Log::AllStopped => tracing::info!("every service is stopped"),
        }
    }

    fn on_report(&mut self, report: Report) {
        let Report {
            index,
            generation,
            event,
        } = report;
        // The run is over: its handle goes (a late report of an older run changes nothing).
        if matches!(event, RunEvent::Exited(..) | RunEvent::StartFailed(_))
            && self.runs[index]
                .as_ref()
                .is_some_and(|(g, _)| *g == generation)
        {
            self.runs[index] = None;
        }
        self.step(Event::Run {
            index,
            generation,
            event,
        });
    }

    fn on_call(&mut self, (request, reply): Call) {
        let answer = match request {
            Request::Status => Reply::one(Response {
                status: Some(self.snapshot()),
                ..Response::ok()
            }),
            Request::Down => {
                self.shutdown("stackctl down");
                Reply::one(Response::ok())
            }
            Request::Restart { service } => self.command(&service, Command::Restart),
            Request::Stop { service } => self.command(&service, Command::Stop),
            Request::Start { service } => self.command(&service, Command::Start),
            Request::Logs {
                service,
                lines,
                follow,
            } => match self.machine.find(&service) {
                Ok(i) => logs_reply(&self.logs[i], lines, follow),
                Err(e) => Reply::one(Response::error(e.to_string())),
            },
        };
        let _ = reply.send(answer);
    }

    fn command(&mut self, service: &str, command: Command) -> Reply {
        match self.machine.command(service, command) {
            Ok(actions) => {
                self.carry_out(actions);
                Reply::one(Response::ok())
            }
            Err(refusal) => Reply::one(Response::error(refusal.to_string())),
        }
    }

    /// Publishes the status, and tells systemd about readiness and state changes.
    fn publish(&mut self) {
        let snapshot = self.snapshot();
        if !self.ready_sent && snapshot.ready && self.machine.phase() == Phase::Running {
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
        let now = self.started.elapsed();
        let services: Vec<_> = self
            .machine
            .services()
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
                        .map(|t| now.saturating_sub(t).as_secs_f64()),
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
            && self.machine.services().iter().all(|s| {
                !s.plan.required
                    || matches!(
                        s.state,
                        ServiceState::Ready | ServiceState::Completed | ServiceState::Disabled
                    )
            });
        let phase = match self.machine.phase() {
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
            uptime_secs: now.as_secs_f64(),
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

    /// A number uniform in `0.0..1.0` (xorshift; back-off jitter needs nothing better).
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
