//! The life of every service, and of the stack as a whole, as a pure state machine.
//!
//! [`Machine::handle`] and [`Machine::command`] take an event (a run's report, time passing, a
//! shutdown, an operator's command), the time (a `Duration` since any fixed origin) and a
//! random number in `0.0..1.0` (for back-off jitter), update the state and return the
//! [`Action`]s that carry it out: start a run, stop a run, say something in the log. Nothing
//! here does I/O or reads a clock; [`super::driver`] turns signals, timers, child exits, probe
//! results and control calls into events and does what the actions say. Every transition is a
//! row of the tables at the bottom of this file.
//!
//! One service ([`ServiceState`] is what `stackctl status` shows):
//!
//! ```text
//!                   gate open              Started           Ready
//!  ┌─────────┐  (Launch, Starting) ┌──────────┐ (build) ┌──────────┐ probe ok ┌───────┐
//!  │ waiting │ ──────────────────> │ starting │ <────── │ building │   ┌────> │ ready │
//!  └─────────┘                     └──────────┘         └──────────┘   │      └───────┘
//!    ^  ^  ^ restart_at reached          │ Exited / StartFailed (any running state)
//!    │  │  └──────── ┌─────────┐ <───────┤ policy: restart (restart_dependents: theirs too)
//!    │  │            │ backoff │         ├──────> completed   policy: done, exit 0
//!    │  │            └─────────┘         ├──────> failed      policy: done, a failure; crash
//!    │  │                                │                    loop; readiness gave up
//!    │  └─ operator restart, a dependency├──────> stopped     operator stop, shutdown
//!    │     restarted (after the exit)    │
//!    └──── operator start / restart ─────┘   (stopping: a stop was asked; the exit ends it)
//!          from stopped, failed, completed
//! ```
//!
//! A running service (building, starting, ready, stopping) has one run; what its exit leads to
//! is decided when the stop is asked ([`AfterExit`]), or by the restart policy
//! ([`super::restart`]) when nobody asked. Dependencies gate the start ([`super::gate`]).
//!
//! The stack ([`Phase`]):
//!
//! ```text
//!  running ── SIGTERM, SIGINT, `down`, on_failure = "exit" ──> stopping(code) ──> done(code)
//!     │  ^                                                       (the last started first,
//!     │  └───── `stackctl start|restart` ─── idle <── stopping    one at a time)
//!     └────────── on_failure = "stop-stack" ───────────────────────┘
//! ```

use std::sync::Arc;
use std::time::Duration;

use super::gate::{self, Gate};
use super::plan::{OnFailure, ServicePlan};
use super::restart::{Decision, RestartState};
use super::run::RunEvent;
use crate::process::{Exit, ExitClass};
use crate::status::ServiceState;

/// What the stack as a whole is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Services start as their dependencies allow, and exits are handled by policy.
    Running,
    /// Every service is being stopped, the last started first and one at a time; then
    /// [`Phase::Done`] with this code, or [`Phase::Idle`] for `None`.
    Stopping(Option<u8>),
    /// Every service stopped after `on_failure = "stop-stack"`: `up` keeps running, so the
    /// failure can be looked at, and `stackctl start|restart` runs the stack again.
    Idle,
    /// Every service stopped: `up` exits with this code.
    Done(u8),
}

/// What ends the current run of a service, decided when its stop is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterExit {
    /// Nobody asked: the restart policy decides.
    Policy,
    /// The restart policy decides, counting the exit as a failure (liveness failed).
    PolicyAsFailure,
    /// Stay stopped (an operator's stop, or shutdown).
    Stop,
    /// Start again at once (an operator's restart, or a dependency restarted).
    Restart,
    /// Failed (readiness gave up).
    Fail,
}

/// An operator's command on one service (`stackctl restart|stop|start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Stop it if it runs, then start it again; its crash-loop budget starts over.
    Restart,
    /// Stop it; it stays stopped until started.
    Stop,
    /// Start a stopped, failed or completed service; its crash-loop budget starts over.
    Start,
}

/// An event the machine reacts to.
#[derive(Debug)]
pub enum Event {
    /// Time has passed: back-offs that are over end. Also the first event, which starts what may
    /// start.
    Tick,
    /// Run `generation` of service `index` reports (reports of an older run are ignored).
    Run {
        /// The service.
        index: usize,
        /// The run.
        generation: u64,
        /// What happened.
        event: RunEvent,
    },
    /// Stop the stack and end with `code`: SIGTERM, SIGINT, `stackctl down`.
    Shutdown {
        /// For the log: `SIGTERM`, `stackctl down`...
        why: String,
        /// The exit code.
        code: u8,
    },
}

/// What the machine asks the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start run `generation` of service `index`: clean its segments, build, spawn, probe.
    Launch {
        /// The service.
        index: usize,
        /// The run, to tag its reports.
        generation: u64,
    },
    /// Stop the current run of service `index` (its stop signal, then SIGKILL after its
    /// timeout); the run reports `Exited` when it is over.
    Stop {
        /// The service.
        index: usize,
    },
    /// Write this line in the log.
    Log(Log),
}

/// The lines the machine writes, each about one service (by index) unless said otherwise.
#[derive(Debug, Clone, PartialEq)]
pub enum Log {
    /// `starting`.
    Starting(usize),
    /// `started`, with its pid.
    Started(usize, u32),
    /// `ready`.
    Ready(usize),
    /// `not ready: WHY` (an error).
    NotReady(usize, String),
    /// `liveness failed: WHY; restarting` (a warning).
    Unhealthy(usize, String),
    /// A build step or the spawn failed (an error).
    StartFailed(usize, String),
    /// `stopping`.
    Stopping(usize),
    /// `stopped (HOW)`.
    Stopped(usize, String),
    /// `stopped (HOW); starting again`.
    StoppedToRestart(usize, String),
    /// `HOW; restarting in DELAY` (a warning).
    Restarting(usize, String, Duration),
    /// `completed`.
    Completed(usize),
    /// `failed`, with its detail (an error).
    Failed(usize, String),
    /// `restarting with its dependency`.
    RestartingWithDependency(usize),
    /// The stack: `WHY: stopping the stack` (and systemd hears `STOPPING=1`).
    StackStopping(String),
    /// The stack: `every service is stopped`.
    AllStopped,
}

/// Why an operator's command was refused (the state is then unchanged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No service of that name.
    #[error("no service {name:?} (services: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The services there are, comma-separated.
        known: String,
    },
    /// The service is switched off in the configuration.
    #[error("{0} is disabled in the configuration")]
    Disabled(String),
    /// `start` of a service that is not stopped, failed or completed.
    #[error("{name} is already {state}")]
    Already {
        /// The service.
        name: String,
        /// Its state.
        state: &'static str,
    },
    /// The stack is stopping (or has stopped) for good.
    #[error("the stack is stopping")]
    Stopping,
}

/// One service: its plan and where it is.
#[derive(Debug)]
pub struct Service {
    /// What it is.
    pub plan: Arc<ServicePlan>,
    /// Where it is in its life.
    pub state: ServiceState,
    /// Why it is there, when that helps: what it waits for, why it failed or restarts.
    pub detail: Option<String>,
    /// The pid of its current run's process.
    pub pid: Option<u32>,
    /// When its last process started (the machine's time).
    pub started_at: Option<Duration>,
    /// Whether its current run passed its readiness probe.
    pub ready: bool,
    /// Restarts so far, by policy or by hand.
    pub restarts: u64,
    /// How its last process ended.
    pub last_exit: Option<Exit>,
    /// Its current (or last) run; reports of other runs are ignored.
    generation: u64,
    /// What its current run's exit leads to.
    after_exit: AfterExit,
    /// Restart history for the back-off and the crash-loop budget.
    restart: RestartState,
    /// In `backoff`: when it may start again.
    restart_at: Option<Duration>,
}

impl Service {
    fn new(plan: Arc<ServicePlan>) -> Self {
        Self {
            state: if plan.enabled {
                ServiceState::Waiting
            } else {
                ServiceState::Disabled
            },
            plan,
            detail: None,
            pid: None,
            started_at: None,
            ready: false,
            restarts: 0,
            last_exit: None,
            generation: 0,
            after_exit: AfterExit::Policy,
            restart: RestartState::default(),
            restart_at: None,
        }
    }

    /// True while it has a run that has not been asked to stop.
    fn is_running(&self) -> bool {
        matches!(
            self.state,
            ServiceState::Building | ServiceState::Starting | ServiceState::Ready
        )
    }
}

/// Every service and the stack's phase. Build it with [`Machine::new`], then feed it
/// [`Event::Tick`] to start what may start.
#[derive(Debug)]
pub struct Machine {
    services: Vec<Service>,
    phase: Phase,
}

impl Machine {
    /// A stack of `plans`, in start order (dependencies before dependents), nothing started.
    pub fn new(plans: Vec<Arc<ServicePlan>>) -> Self {
        Self {
            services: plans.into_iter().map(Service::new).collect(),
            phase: Phase::Running,
        }
    }

    /// The services, in start order.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The stack's phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The index of the service called `name`.
    pub fn find(&self, name: &str) -> Result<usize, Refusal> {
        self.services
            .iter()
            .position(|s| s.plan.name == name)
            .ok_or_else(|| Refusal::Unknown {
                name: name.to_owned(),
                known: self
                    .services
                    .iter()
                    .map(|s| s.plan.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// When the machine next wants an [`Event::Tick`]: the end of the earliest back-off.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.services
            .iter()
            .filter(|s| s.state == ServiceState::Backoff)
            .filter_map(|s| s.restart_at)
            .min()
    }

    /// Reacts to `event` at `now`; `random` is uniform in `0.0..1.0`.
    pub fn handle(&mut self, event: Event, now: Duration, random: f64) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Tick => self.tick(now),
            Event::Run {
                index,
                generation,
                event,
            } => {
                if self.services.get(index).map(|s| s.generation) == Some(generation) {
                    self.on_report(index, event, now, random, &mut out);
                }
            }
            Event::Shutdown { why, code } => self.shutdown(why, code, &mut out),
        }
        self.advance(&mut out);
        out
    }

    /// Carries out an operator's `command` on the service called `name`, or refuses it and
    /// changes nothing.
    pub fn command(&mut self, name: &str, command: Command) -> Result<Vec<Action>, Refusal> {
        let mut out = Vec::new();
        let index = self.find(name)?;
        let s = &self.services[index];
        if command != Command::Stop {
            if matches!(self.phase, Phase::Stopping(_) | Phase::Done(_)) {
                return Err(Refusal::Stopping);
            }
            match s.state {
                ServiceState::Disabled => return Err(Refusal::Disabled(s.plan.name.clone())),
                ServiceState::Stopped | ServiceState::Failed | ServiceState::Completed => {}
                state if command == Command::Start => {
                    return Err(Refusal::Already {
                        name: s.plan.name.clone(),
                        state: state.name(),
                    });
                }
                _ => {}
            }
            self.phase = Phase::Running;
        }
        match command {
            Command::Restart => self.operator_restart(index, &mut out),
            Command::Stop => self.operator_stop(index, &mut out),
            Command::Start => {
                let s = &mut self.services[index];
                s.restart.reset();
                s.state = ServiceState::Waiting;
            }
        }
        self.advance(&mut out);
        Ok(out)
    }

    fn tick(&mut self, now: Duration) {
        if self.phase != Phase::Running {
            return;
        }
        for s in &mut self.services {
            if s.state == ServiceState::Backoff && s.restart_at.is_some_and(|t| t <= now) {
                s.restart_at = None;
                s.state = ServiceState::Waiting;
            }
        }
    }

    /// Starts what may start, or moves a shutdown along.
    fn advance(&mut self, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Running => self.start_ready_services(out),
            Phase::Stopping(code) => self.stop_next(code, out),
            Phase::Idle | Phase::Done(_) => {}
        }
    }

    /// Launches every waiting service whose dependencies allow it, in start order (so one
    /// launched here counts as started for those after it), and says what the others wait for.
    fn start_ready_services(&mut self, out: &mut Vec<Action>) {
        for i in 0..self.services.len() {
            if self.services[i].state != ServiceState::Waiting {
                continue;
            }
            let blocking: Vec<(usize, Gate)> = self.services[i]
                .plan
                .deps
                .iter()
                .map(|&(d, cond)| (d, gate::check(cond, self.services[d].state)))
                .filter(|(_, g)| *g != Gate::Open)
                .collect();
            let names = |g: Gate| -> String {
                blocking
                    .iter()
                    .filter(|(_, v)| *v == g)
                    .map(|&(d, _)| self.services[d].plan.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let detail = match gate::all(blocking.iter().map(|&(_, g)| g)) {
                Gate::Open => {
                    self.launch(i, out);
                    continue;
                }
                Gate::Wait => format!("waiting for {}", names(Gate::Wait)),
                Gate::Never => format!("blocked: {} failed", names(Gate::Never)),
            };
            self.services[i].detail = Some(detail);
        }
    }

    fn launch(&mut self, i: usize, out: &mut Vec<Action>) {
        let s = &mut self.services[i];
        s.generation += 1;
        s.after_exit = AfterExit::Policy;
        s.ready = false;
        s.detail = None;
        // The uptime of a run that never started a process is zero, not its predecessor's.
        s.started_at = None;
        s.state = ServiceState::Starting;
        out.push(Action::Log(Log::Starting(i)));
        out.push(Action::Launch {
            index: i,
            generation: s.generation,
        });
    }

    /// Shutdown stops one service at a time, the last started first.
    fn stop_next(&mut self, code: Option<u8>, out: &mut Vec<Action>) {
        if self
            .services
            .iter()
            .any(|s| s.state == ServiceState::Stopping)
        {
            return;
        }
        for i in (0..self.services.len()).rev() {
            let s = &mut self.services[i];
            if s.is_running() {
                s.state = ServiceState::Stopping;
                out.push(Action::Log(Log::Stopping(i)));
                self.stop_run(i, AfterExit::Stop, out);
                return;
            }
            if matches!(s.state, ServiceState::Waiting | ServiceState::Backoff) {
                s.restart_at = None;
                s.state = ServiceState::Stopped;
            }
        }
        self.phase = match code {
            Some(code) => Phase::Done(code),
            None => Phase::Idle,
        };
        out.push(Action::Log(Log::AllStopped));
    }

    fn shutdown(&mut self, why: String, code: u8, out: &mut Vec<Action>) {
        if matches!(self.phase, Phase::Running | Phase::Idle) {
            out.push(Action::Log(Log::StackStopping(why)));
            self.phase = Phase::Stopping(Some(code));
        }
    }

    fn on_report(
        &mut self,
        i: usize,
        event: RunEvent,
        now: Duration,
        random: f64,
        out: &mut Vec<Action>,
    ) {
        let s = &mut self.services[i];
        match event {
            RunEvent::Building => s.state = ServiceState::Building,
            RunEvent::Started(pid) => {
                s.pid = Some(pid);
                s.started_at = Some(now);
                if s.state != ServiceState::Stopping {
                    s.state = ServiceState::Starting;
                }
                out.push(Action::Log(Log::Started(i, pid)));
            }
            RunEvent::Ready => {
                if s.state == ServiceState::Starting {
                    s.state = ServiceState::Ready;
                    s.ready = true;
                    out.push(Action::Log(Log::Ready(i)));
                }
            }
            RunEvent::NotReady(why) => {
                out.push(Action::Log(Log::NotReady(i, why.to_string())));
                s.detail = Some(format!("not ready: {why}"));
                self.stop_run(i, AfterExit::Fail, out);
            }
            RunEvent::Unhealthy(why) => {
                out.push(Action::Log(Log::Unhealthy(i, why.to_string())));
                s.detail = Some(format!("liveness failed: {why}"));
                self.stop_run(i, AfterExit::PolicyAsFailure, out);
            }
            RunEvent::StartFailed(why) => {
                let why = why.to_string();
                out.push(Action::Log(Log::StartFailed(i, why.clone())));
                s.detail = Some(why);
                self.on_exit(i, None, ExitClass::Failure, now, random, out);
            }
            RunEvent::Exited(exit, class) => self.on_exit(i, exit, class, now, random, out),
        }
    }

    fn stop_run(&mut self, i: usize, after: AfterExit, out: &mut Vec<Action>) {
        self.services[i].after_exit = after;
        out.push(Action::Stop { index: i });
    }

    fn on_exit(
        &mut self,
        i: usize,
        exit: Option<Exit>,
        class: ExitClass,
        now: Duration,
        random: f64,
        out: &mut Vec<Action>,
    ) {
        let s = &mut self.services[i];
        let uptime = s
            .started_at
            .map(|t| now.saturating_sub(t))
            .unwrap_or_default();
        s.pid = None;
        s.ready = false;
        if exit.is_some() {
            s.last_exit = exit;
        }
        let how = exit.map_or_else(|| "did not start".to_owned(), |e| e.to_string());
        match s.after_exit {
            AfterExit::Stop => {
                s.state = ServiceState::Stopped;
                out.push(Action::Log(Log::Stopped(i, how)));
            }
            AfterExit::Restart => {
                s.state = ServiceState::Waiting;
                out.push(Action::Log(Log::StoppedToRestart(i, how)));
            }
            AfterExit::Fail => {
                s.state = ServiceState::Failed;
                self.on_failed(i, out);
            }
            after @ (AfterExit::Policy | AfterExit::PolicyAsFailure) => {
                let failed = after == AfterExit::PolicyAsFailure || class == ExitClass::Failure;
                let rules = s.plan.rules;
                match s.restart.on_exit(&rules, now, uptime, failed, random) {
                    Decision::Restart(delay) => {
                        s.state = ServiceState::Backoff;
                        s.restarts += 1;
                        s.restart_at = Some(now + delay);
                        s.detail = Some(format!("{how}; restarting in {delay:.1?}"));
                        out.push(Action::Log(Log::Restarting(i, how, delay)));
                        if s.plan.restart_dependents {
                            self.restart_dependents(i, out);
                        }
                    }
                    Decision::Done if !failed => {
                        s.state = ServiceState::Completed;
                        s.detail = None;
                        out.push(Action::Log(Log::Completed(i)));
                    }
                    Decision::Done => {
                        s.state = ServiceState::Failed;
                        s.detail = Some(how);
                        self.on_failed(i, out);
                    }
                    Decision::GiveUp => {
                        s.state = ServiceState::Failed;
                        s.detail = Some(format!(
                            "{how}; gave up after {} restarts within {:?}",
                            rules.max_restarts, rules.window
                        ));
                        self.on_failed(i, out);
                    }
                }
            }
        }
    }

    fn on_failed(&mut self, i: usize, out: &mut Vec<Action>) {
        let s = &self.services[i];
        let detail = s.detail.clone().unwrap_or_default();
        out.push(Action::Log(Log::Failed(i, detail)));
        match s.plan.on_failure {
            OnFailure::Ignore => {}
            OnFailure::StopStack => {
                if self.phase == Phase::Running {
                    self.phase = Phase::Stopping(None);
                }
            }
            OnFailure::Exit => {
                let why = format!("{} failed", s.plan.name);
                self.shutdown(why, 1, out);
            }
        }
    }

    /// Restarts every running service that depends, directly or not, on service `i`.
    fn restart_dependents(&mut self, i: usize, out: &mut Vec<Action>) {
        let mut affected = vec![false; self.services.len()];
        affected[i] = true;
        // Plans are in start order, so one forward pass sees dependencies before dependents.
        for j in i + 1..self.services.len() {
            if !self.services[j].plan.deps.iter().any(|&(d, _)| affected[d]) {
                continue;
            }
            affected[j] = true;
            let s = &mut self.services[j];
            if s.is_running() {
                s.restarts += 1;
                out.push(Action::Log(Log::RestartingWithDependency(j)));
                self.stop_run(j, AfterExit::Restart, out);
            } else if s.state == ServiceState::Backoff {
                s.restart_at = None;
                s.state = ServiceState::Waiting;
            }
        }
    }

    fn operator_restart(&mut self, i: usize, out: &mut Vec<Action>) {
        let s = &mut self.services[i];
        s.restart.reset();
        s.restarts += 1;
        if s.is_running() {
            self.stop_run(i, AfterExit::Restart, out);
        } else if s.state == ServiceState::Stopping {
            s.after_exit = AfterExit::Restart;
        } else {
            s.restart_at = None;
            s.state = ServiceState::Waiting;
        }
    }

    fn operator_stop(&mut self, i: usize, out: &mut Vec<Action>) {
        let s = &mut self.services[i];
        if s.is_running() {
            s.state = ServiceState::Stopping;
            out.push(Action::Log(Log::Stopping(i)));
            self.stop_run(i, AfterExit::Stop, out);
        } else if matches!(s.state, ServiceState::Waiting | ServiceState::Backoff) {
            s.restart_at = None;
            s.state = ServiceState::Stopped;
        }
    }
}
