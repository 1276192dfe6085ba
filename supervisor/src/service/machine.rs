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
//!              gate open            build steps             process spawned
//!   waiting ─────────────> starting ───────────> building ─────────────────> starting
//!      ^                      │ probe passes                                    │
//!      │                      v                                                 │
//!      │                    ready        (starting, building or ready: a stop   │
//!      │                      │           asked shows as `stopping` until the   │
//!      │                      │           run ends)                             │
//!      │                      └───────────────┬─────────────────────────────────┘
//!      │                                      │ the run ends (exit, or no process)
//!      │          ┌───────────────┬───────────┼──────────────┬────────────────┐
//!      │          v               v           v              v                v
//!      │       backoff        completed     failed        stopped         (waiting)
//!      │   policy: restart   policy: done, policy: done, operator stop,  restart asked
//!      │          │          exit 0        a failure;    shutdown        by an operator
//!      └── due ───┘                        crash loop;                   or a dependency
//!      └── operator start or restart       readiness
//!          (stopped, failed, completed)    gave up
//! ```
//!
//! A running service (building, starting, ready, stopping) has one run; what its exit leads to
//! is decided when the stop is asked ([`AfterExit`]), or by the restart policy
//! ([`super::restart`]) when nobody asked. Dependencies gate the start ([`super::gate`]).
//!
//! The stack ([`Phase`]):
//!
//! ```text
//!             SIGTERM, SIGINT, `down`, on_failure = "exit"
//!  running ──────────────────────────────────────────────> stopping(code) ──> done(code)
//!   │    ^                                                       ^           (`up` exits)
//!   │    │ `stackctl start|restart`                              │
//!   │    └──────────────────── idle ─────────────────────────────┘
//!   │                           ^        SIGTERM, SIGINT, `down`
//!   └─ on_failure ──> stopping(none)
//!      = "stop-stack"
//! ```
//!
//! Stopping stops one service at a time, the last started first.

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

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::process::ProcessSpec;
    use crate::service::gate::Condition;
    use crate::service::restart::{Policy, Rules};
    use crate::service::run::{CheckError, CommandError, NotReady, StartFailure};
    use AfterExit as After;
    use ServiceState as S;

    const SEC: Duration = Duration::from_secs(1);

    /// A service `name` depending on `deps`: restarted on failure after 1 s (doubling up to
    /// 8 s, no jitter), at most `max_restarts` times a minute.
    fn plan(name: &str, deps: &[(usize, Condition)], policy: Policy, max: u32) -> ServicePlan {
        ServicePlan {
            name: name.to_owned(),
            spec: ProcessSpec {
                name: name.to_owned(),
                program: "/bin/true".into(),
                args: Vec::new(),
                env: Vec::new(),
                cwd: None,
            },
            enabled: true,
            required: true,
            build: Vec::new(),
            deps: deps.to_vec(),
            ready: None,
            liveness: None,
            rules: Rules {
                policy,
                initial: SEC,
                max: 8 * SEC,
                jitter: 0.0,
                min_uptime: 10 * SEC,
                max_restarts: max,
                window: 60 * SEC,
            },
            on_failure: OnFailure::Ignore,
            stop_signal: nix::sys::signal::Signal::SIGTERM,
            stop_timeout: 10 * SEC,
            clean_shm: Vec::new(),
            restart_dependents: false,
        }
    }

    /// A machine of `plans` with each service put straight into a state (its run, if it has
    /// one, is generation 1; a back-off ends at 5 s).
    fn given(plans: Vec<ServicePlan>, states: &[(S, After)]) -> Machine {
        let mut m = Machine::new(plans.into_iter().map(Arc::new).collect());
        for (s, &(state, after)) in m.services.iter_mut().zip(states) {
            s.state = state;
            s.after_exit = after;
            s.generation = 1;
            if state == S::Backoff {
                s.restart_at = Some(5 * SEC);
            }
            if matches!(state, S::Starting | S::Ready | S::Stopping) {
                s.pid = Some(42);
                s.started_at = Some(SEC);
            }
        }
        m
    }

    /// What happens to the machine in a row.
    enum Ev {
        /// [`Event::Tick`] at this time.
        Tick(Duration),
        /// A report of the current run (generation 1), at 2 s.
        Run(RunEvent),
        /// A report of an older run (generation 0).
        Stale(RunEvent),
        /// An operator's command on `s`.
        Cmd(Command),
        /// SIGTERM.
        Shutdown,
    }

    fn apply(m: &mut Machine, ev: Ev) -> Result<Vec<Action>, Refusal> {
        let run = |generation, event| Event::Run {
            index: 0,
            generation,
            event,
        };
        match ev {
            Ev::Tick(now) => Ok(m.handle(Event::Tick, now, 0.5)),
            Ev::Run(event) => Ok(m.handle(run(1, event), 2 * SEC, 0.5)),
            Ev::Stale(event) => Ok(m.handle(run(0, event), 2 * SEC, 0.5)),
            Ev::Cmd(command) => m.command("s", command),
            Ev::Shutdown => Ok(m.handle(
                Event::Shutdown {
                    why: "SIGTERM".into(),
                    code: 0,
                },
                2 * SEC,
                0.5,
            )),
        }
    }

    fn log(line: Log) -> Action {
        Action::Log(line)
    }

    fn launch(generation: u64) -> Vec<Action> {
        vec![
            log(Log::Starting(0)),
            Action::Launch {
                index: 0,
                generation,
            },
        ]
    }

    fn exited(code: i32, class: ExitClass) -> RunEvent {
        RunEvent::Exited(Some(Exit::Code(code)), class)
    }

    fn spawn_failed() -> RunEvent {
        RunEvent::StartFailed(StartFailure::Spawn {
            program: "/x".into(),
            error: io::Error::from(io::ErrorKind::NotFound),
        })
    }

    fn unhealthy() -> RunEvent {
        RunEvent::Unhealthy(CheckError::Exec(CommandError::Failed(Exit::Code(1))))
    }

    /// One transition of service `s`, alone in a running stack.
    struct Row {
        what: &'static str,
        policy: Policy,
        max_restarts: u32,
        from: (S, After),
        event: Ev,
        to: S,
        detail: Option<&'static str>,
        restarts: u64,
        actions: Result<Vec<Action>, Refusal>,
    }

    fn row(what: &'static str, from: (S, After), event: Ev, to: S, actions: Vec<Action>) -> Row {
        Row {
            what,
            policy: Policy::OnFailure,
            max_restarts: 3,
            from,
            event,
            to,
            detail: None,
            restarts: 0,
            actions: Ok(actions),
        }
    }

    fn refused(what: &'static str, from: (S, After), command: Command, why: Refusal) -> Row {
        Row {
            actions: Err(why),
            ..row(what, from, Ev::Cmd(command), from.0, Vec::new())
        }
    }

    #[rustfmt::skip]
    fn rows() -> Vec<Row> {
        let p = After::Policy;
        let bad_status = "exited with code 1; restarting in 1.0s";
        vec![
            // Starting.
            row("a waiting service starts", (S::Waiting, p), Ev::Tick(SEC), S::Starting, launch(2)),
            row("a disabled service never starts", (S::Disabled, p), Ev::Tick(SEC), S::Disabled, vec![]),
            row("a back-off not over yet", (S::Backoff, p), Ev::Tick(4 * SEC), S::Backoff, vec![]),
            row("a back-off over: start again", (S::Backoff, p), Ev::Tick(5 * SEC), S::Starting, launch(2)),
            row("build steps run", (S::Starting, p), Ev::Run(RunEvent::Building), S::Building, vec![]),
            row("the process runs", (S::Building, p), Ev::Run(RunEvent::Started(7)), S::Starting, vec![log(Log::Started(0, 7))]),
            row("spawned while being stopped: still stopping", (S::Stopping, After::Stop), Ev::Run(RunEvent::Started(7)), S::Stopping, vec![log(Log::Started(0, 7))]),
            row("the readiness probe passes", (S::Starting, p), Ev::Run(RunEvent::Ready), S::Ready, vec![log(Log::Ready(0))]),
            row("ready only from starting", (S::Building, p), Ev::Run(RunEvent::Ready), S::Building, vec![]),
            Row {
                detail: Some("not ready: its output ended"),
                ..row("readiness gives up: stop it", (S::Starting, p), Ev::Run(RunEvent::NotReady(NotReady::OutputEnded)), S::Starting, vec![log(Log::NotReady(0, "its output ended".into())), Action::Stop { index: 0 }])
            },
            Row {
                detail: Some("liveness failed: exited with code 1"),
                ..row("liveness fails: stop it", (S::Ready, p), Ev::Run(unhealthy()), S::Ready, vec![log(Log::Unhealthy(0, "exited with code 1".into())), Action::Stop { index: 0 }])
            },
            row("a report of an older run is ignored", (S::Ready, p), Ev::Stale(exited(1, ExitClass::Failure)), S::Ready, vec![]),
            // Exits nobody asked for: the policy decides.
            Row {
                detail: Some("did not start; restarting in 1.0s"),
                restarts: 1,
                ..row("a build step or the spawn fails", (S::Building, p), Ev::Run(spawn_failed()), S::Backoff, vec![log(Log::StartFailed(0, "cannot start /x: entity not found".into())), log(Log::Restarting(0, "did not start".into(), SEC))])
            },
            Row {
                detail: Some(bad_status),
                restarts: 1,
                ..row("a crash: back off", (S::Ready, p), Ev::Run(exited(1, ExitClass::Failure)), S::Backoff, vec![log(Log::Restarting(0, "exited with code 1".into(), SEC))])
            },
            row("a success under on-failure: completed", (S::Ready, p), Ev::Run(exited(0, ExitClass::Success)), S::Completed, vec![log(Log::Completed(0))]),
            Row {
                policy: Policy::No,
                detail: Some("exited with code 1"),
                ..row("a crash under restart = no: failed", (S::Ready, p), Ev::Run(exited(1, ExitClass::Failure)), S::Failed, vec![log(Log::Failed(0, "exited with code 1".into()))])
            },
            Row {
                max_restarts: 0,
                detail: Some("exited with code 1; gave up after 0 restarts within 60s"),
                ..row("a crash with the budget spent: failed", (S::Ready, p), Ev::Run(exited(1, ExitClass::Failure)), S::Failed, vec![log(Log::Failed(0, "exited with code 1; gave up after 0 restarts within 60s".into()))])
            },
            Row {
                detail: Some("exited with code 0; restarting in 1.0s"),
                restarts: 1,
                ..row("a clean exit after failed liveness is a failure", (S::Ready, After::PolicyAsFailure), Ev::Run(exited(0, ExitClass::Success)), S::Backoff, vec![log(Log::Restarting(0, "exited with code 0".into(), SEC))])
            },
            // Exits somebody asked for.
            row("an asked-for stop ends", (S::Stopping, After::Stop), Ev::Run(exited(143, ExitClass::Stopped)), S::Stopped, vec![log(Log::Stopped(0, "exited with code 143".into()))]),
            row("an asked-for restart: start again at once", (S::Ready, After::Restart), Ev::Run(exited(143, ExitClass::Stopped)), S::Starting, [vec![log(Log::StoppedToRestart(0, "exited with code 143".into()))], launch(2)].concat()),
            row("stopped after readiness gave up: failed", (S::Starting, After::Fail), Ev::Run(exited(143, ExitClass::Stopped)), S::Failed, vec![log(Log::Failed(0, String::new()))]),
            // Operators.
            Row {
                restarts: 1,
                ..row("restart a running service: stop it first", (S::Ready, p), Ev::Cmd(Command::Restart), S::Ready, vec![Action::Stop { index: 0 }])
            },
            Row {
                restarts: 1,
                ..row("restart one being stopped: start when it is", (S::Stopping, After::Stop), Ev::Cmd(Command::Restart), S::Stopping, vec![])
            },
            Row {
                restarts: 1,
                ..row("restart a failed service", (S::Failed, p), Ev::Cmd(Command::Restart), S::Starting, launch(2))
            },
            Row {
                restarts: 1,
                ..row("restart during a back-off: at once", (S::Backoff, p), Ev::Cmd(Command::Restart), S::Starting, launch(2))
            },
            refused("restart a disabled service", (S::Disabled, p), Command::Restart, Refusal::Disabled("s".into())),
            row("stop a running service", (S::Ready, p), Ev::Cmd(Command::Stop), S::Stopping, vec![log(Log::Stopping(0)), Action::Stop { index: 0 }]),
            row("stop a service in back-off", (S::Backoff, p), Ev::Cmd(Command::Stop), S::Stopped, vec![]),
            row("stop a stopped service: nothing to do", (S::Stopped, p), Ev::Cmd(Command::Stop), S::Stopped, vec![]),
            row("start a stopped service", (S::Stopped, p), Ev::Cmd(Command::Start), S::Starting, launch(2)),
            row("start a completed service", (S::Completed, p), Ev::Cmd(Command::Start), S::Starting, launch(2)),
            refused("start a running service", (S::Ready, p), Command::Start, Refusal::Already { name: "s".into(), state: "ready" }),
            refused("start a disabled service", (S::Disabled, p), Command::Start, Refusal::Disabled("s".into())),
            // The stack.
            row("SIGTERM: stop the running service", (S::Ready, p), Ev::Shutdown, S::Stopping, vec![log(Log::StackStopping("SIGTERM".into())), log(Log::Stopping(0)), Action::Stop { index: 0 }]),
            row("SIGTERM: a waiting service is stopped at once", (S::Waiting, p), Ev::Shutdown, S::Stopped, vec![log(Log::StackStopping("SIGTERM".into())), log(Log::AllStopped)]),
        ]
    }

    #[test]
    fn every_transition_of_one_service() {
        for r in rows() {
            let mut p = plan("s", &[], r.policy, r.max_restarts);
            p.rules.max_restarts = r.max_restarts;
            let mut m = given(vec![p], &[r.from]);
            let got = apply(&mut m, r.event);
            assert_eq!(got, r.actions, "{}: actions", r.what);
            let s = &m.services[0];
            assert_eq!(s.state, r.to, "{}: state", r.what);
            assert_eq!(s.detail.as_deref(), r.detail, "{}: detail", r.what);
            assert_eq!(s.restarts, r.restarts, "{}: restarts", r.what);
        }
    }

    fn shutdown(code: u8) -> Event {
        Event::Shutdown {
            why: "SIGTERM".into(),
            code,
        }
    }

    fn exit_of(index: usize) -> Event {
        Event::Run {
            index,
            generation: 1,
            event: exited(143, ExitClass::Stopped),
        }
    }

    fn states(m: &Machine) -> Vec<S> {
        m.services.iter().map(|s| s.state).collect()
    }

    #[test]
    fn the_stack_stops_the_last_started_first_one_at_a_time() {
        let plans = vec![
            plan("a", &[], Policy::OnFailure, 3),
            plan("b", &[(0, Condition::Ready)], Policy::OnFailure, 3),
            plan("c", &[], Policy::OnFailure, 3),
        ];
        let p = After::Policy;
        let mut m = given(plans, &[(S::Ready, p), (S::Backoff, p), (S::Ready, p)]);
        let stopping = |i| vec![log(Log::Stopping(i)), Action::Stop { index: i }];
        let first = m.handle(shutdown(0), 2 * SEC, 0.5);
        assert_eq!(
            first,
            [vec![log(Log::StackStopping("SIGTERM".into()))], stopping(2)].concat()
        );
        assert_eq!(states(&m), [S::Ready, S::Backoff, S::Stopping]);
        assert_eq!(m.phase(), Phase::Stopping(Some(0)));
        // A second signal, and commands that would start something, change nothing now.
        assert_eq!(m.handle(shutdown(3), 2 * SEC, 0.5), []);
        assert_eq!(m.command("a", Command::Restart), Err(Refusal::Stopping));
        assert_eq!(m.command("b", Command::Start), Err(Refusal::Stopping));
        // c ends: b (in back-off) is stopped at once, then a is asked to stop.
        let next = m.handle(exit_of(2), 3 * SEC, 0.5);
        assert_eq!(
            next,
            [
                vec![log(Log::Stopped(2, "exited with code 143".into()))],
                stopping(0)
            ]
            .concat()
        );
        assert_eq!(states(&m), [S::Stopping, S::Stopped, S::Stopped]);
        let last = m.handle(exit_of(0), 4 * SEC, 0.5);
        assert_eq!(
            last,
            [
                log(Log::Stopped(0, "exited with code 143".into())),
                log(Log::AllStopped)
            ]
        );
        assert_eq!(m.phase(), Phase::Done(0));
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn on_failure_decides_what_a_failure_does_to_the_stack() {
        let table = [
            (OnFailure::Ignore, Phase::Running, vec![S::Failed, S::Ready]),
            (
                OnFailure::StopStack,
                Phase::Stopping(None),
                vec![S::Failed, S::Stopping],
            ),
            (
                OnFailure::Exit,
                Phase::Stopping(Some(1)),
                vec![S::Failed, S::Stopping],
            ),
        ];
        for (on_failure, phase, want) in table {
            let mut a = plan("a", &[], Policy::No, 3);
            a.on_failure = on_failure;
            let other = plan("other", &[], Policy::No, 3);
            let mut m = given(vec![a, other], &[(S::Ready, After::Policy); 2]);
            let crash = Event::Run {
                index: 0,
                generation: 1,
                event: exited(1, ExitClass::Failure),
            };
            let actions = m.handle(crash, 2 * SEC, 0.5);
            assert_eq!(m.phase(), phase, "{on_failure:?}");
            assert_eq!(states(&m), want, "{on_failure:?}");
            let says_why = actions.contains(&log(Log::StackStopping("a failed".into())));
            assert_eq!(says_why, on_failure == OnFailure::Exit, "{on_failure:?}");
            if on_failure == OnFailure::StopStack {
                // Every service stopped: idle, not done; `up` keeps running until told.
                m.handle(exit_of(1), 3 * SEC, 0.5);
                assert_eq!(m.phase(), Phase::Idle);
                assert_eq!(states(&m), [S::Failed, S::Stopped]);
                // Starting a service runs the stack again...
                let started = m.command("other", Command::Start).expect("start");
                assert_eq!(
                    started,
                    [
                        log(Log::Starting(1)),
                        Action::Launch {
                            index: 1,
                            generation: 2
                        }
                    ]
                );
                assert_eq!(m.phase(), Phase::Running);
                // ...and a refused command leaves an idle stack idle.
                let mut idle = given(
                    vec![plan("s", &[], Policy::No, 3)],
                    &[(S::Disabled, After::Policy)],
                );
                idle.phase = Phase::Idle;
                let refused = idle.command("s", Command::Start);
                assert_eq!(refused, Err(Refusal::Disabled("s".into())));
                assert_eq!(idle.phase(), Phase::Idle);
                // A signal ends an idle stack.
                assert_eq!(
                    idle.handle(shutdown(0), 4 * SEC, 0.5),
                    [
                        log(Log::StackStopping("SIGTERM".into())),
                        log(Log::AllStopped)
                    ]
                );
                assert_eq!(idle.phase(), Phase::Done(0));
            }
        }
    }

    #[test]
    fn dependencies_gate_the_start() {
        // (a's state, b's condition on a) -> b launched, or its detail.
        let table = [
            (S::Starting, Condition::Ready, Err("waiting for a")),
            (S::Ready, Condition::Ready, Ok(())),
            (S::Failed, Condition::Ready, Err("blocked: a failed")),
            (S::Disabled, Condition::Ready, Ok(())),
            (S::Starting, Condition::Started, Ok(())),
            (S::Ready, Condition::Completed, Err("waiting for a")),
            (S::Completed, Condition::Completed, Ok(())),
        ];
        for (a, condition, want) in table {
            let plans = vec![
                plan("a", &[], Policy::No, 3),
                plan("b", &[(0, condition)], Policy::No, 3),
            ];
            let mut m = given(plans, &[(a, After::Policy), (S::Waiting, After::Policy)]);
            let actions = m.handle(Event::Tick, SEC, 0.5);
            let b = &m.services[1];
            match want {
                Ok(()) => {
                    assert_eq!(b.state, S::Starting, "{a:?} {condition:?}");
                    assert!(
                        actions.contains(&Action::Launch {
                            index: 1,
                            generation: 2
                        }),
                        "{a:?} {condition:?}: {actions:?}"
                    );
                }
                Err(detail) => {
                    assert_eq!(
                        (b.state, b.detail.as_deref()),
                        (S::Waiting, Some(detail)),
                        "{a:?} {condition:?}"
                    );
                    assert_eq!(actions, [], "{a:?} {condition:?}");
                }
            }
        }
        // A dependency launched in a step counts as started for those after it, in that step.
        let plans = vec![
            plan("a", &[], Policy::No, 3),
            plan("b", &[(0, Condition::Started)], Policy::No, 3),
        ];
        let mut m = given(plans, &[(S::Waiting, After::Policy); 2]);
        let actions = m.handle(Event::Tick, SEC, 0.5);
        let launched: Vec<_> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Launch { index, .. } => Some(*index),
                _ => None,
            })
            .collect();
        assert_eq!(launched, [0, 1]);
    }

    #[test]
    fn a_restart_takes_its_dependents_along_when_asked() {
        let mut a = plan("a", &[], Policy::OnFailure, 3);
        a.restart_dependents = true;
        let plans = vec![
            a,
            plan("b", &[(0, Condition::Ready)], Policy::OnFailure, 3),
            plan("c", &[(1, Condition::Ready)], Policy::OnFailure, 3),
            plan("d", &[(0, Condition::Ready)], Policy::OnFailure, 3),
            plan("other", &[], Policy::OnFailure, 3),
        ];
        let p = After::Policy;
        let mut m = given(
            plans,
            &[
                (S::Ready, p),
                (S::Ready, p),
                (S::Starting, p),
                (S::Backoff, p),
                (S::Ready, p),
            ],
        );
        let crash = Event::Run {
            index: 0,
            generation: 1,
            event: exited(1, ExitClass::Failure),
        };
        let actions = m.handle(crash, 2 * SEC, 0.5);
        assert_eq!(
            actions,
            [
                log(Log::Restarting(0, "exited with code 1".into(), SEC)),
                log(Log::RestartingWithDependency(1)),
                Action::Stop { index: 1 },
                log(Log::RestartingWithDependency(2)),
                Action::Stop { index: 2 },
            ]
        );
        // b and c restart once their runs end; d, in back-off, now waits for a; other goes on.
        assert_eq!(
            states(&m),
            [S::Backoff, S::Ready, S::Starting, S::Waiting, S::Ready]
        );
        assert_eq!(m.services[3].detail.as_deref(), Some("waiting for a"));
        let restarts: Vec<u64> = m.services.iter().map(|s| s.restarts).collect();
        assert_eq!(restarts, [1, 1, 1, 0, 0]);
        let b_ends = m.handle(exit_of(1), 3 * SEC, 0.5);
        assert_eq!(
            b_ends,
            [log(Log::StoppedToRestart(1, "exited with code 143".into()))],
            "b waits for a again"
        );
        assert_eq!(m.services[1].state, S::Waiting);
    }

    #[test]
    fn back_offs_are_timed_from_the_exit_and_grow_while_runs_are_short() {
        let mut m = given(
            vec![plan("s", &[], Policy::OnFailure, 10)],
            &[(S::Ready, After::Policy)],
        );
        let at = |secs: u32| secs * SEC;
        let report = |event| Event::Run {
            index: 0,
            generation: 1,
            event,
        };
        // Up since 1 s, crashes at 30 s: it stayed up long enough, so 1 s.
        m.handle(report(exited(1, ExitClass::Failure)), at(30), 0.5);
        assert_eq!(m.next_deadline(), Some(at(31)));
        assert_eq!(m.handle(Event::Tick, at(30) + SEC / 2, 0.5), []);
        assert_eq!(m.handle(Event::Tick, at(31), 0.5), launch(2));
        // Its next run never starts a process: no uptime, so the back-off doubles.
        let failed = Event::Run {
            index: 0,
            generation: 2,
            event: spawn_failed(),
        };
        m.handle(failed, at(32), 0.5);
        assert_eq!(m.next_deadline(), Some(at(34)));
        assert_eq!(m.services[0].state, S::Backoff);
        // Jitter comes from the random number: with jitter 0.5, 0.0 takes half off.
        let mut jittery = plan("s", &[], Policy::OnFailure, 10);
        jittery.rules.jitter = 0.5;
        let mut m = given(vec![jittery], &[(S::Ready, After::Policy)]);
        m.handle(report(exited(1, ExitClass::Failure)), at(30), 0.0);
        assert_eq!(m.next_deadline(), Some(at(30) + SEC / 2));
    }

    #[test]
    fn commands_name_services_and_unknown_names_are_refused() {
        let mut m = given(
            vec![plan("a", &[], Policy::No, 3), plan("b", &[], Policy::No, 3)],
            &[(S::Ready, After::Policy); 2],
        );
        assert_eq!(m.find("b"), Ok(1));
        let refused = m.command("x", Command::Stop).unwrap_err();
        assert_eq!(refused.to_string(), "no service \"x\" (services: a, b)");
    }
}
