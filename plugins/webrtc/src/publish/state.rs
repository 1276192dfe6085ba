//! One publication's life as a pure state machine: what to do next (offer, delete the old
//! resource, wait) from what happened (answered, refused, connected, lost, stop), with the
//! time and the randomness passed in. Its driver ([`super::client`]) does the I/O.
//!
//! ```text
//!            Answered            Connected
//! Offering ───────────> Connecting ───────> Live
//!    ^   │ Refused           │ Lost, Refused  │ Lost
//!    │   v                   v                v
//!    └── Retrying <──────────┴────────────────┘   (DELETE the old resource, back off)
//!  retry_at
//! any ── Stop ──> Stopped  (DELETE the resource)
//! ```
//!
//! Failures back off exponentially with jitter ([`Backoff`]), forever; a publication that was
//! live for [`STABLE`] starts its back-off afresh. It is logged once per change of what a user
//! cares about: live, failing (with a new reason), stopped. The same failure again and again
//! is not logged again.

use std::time::{Duration, Instant};

use super::backoff::Backoff;

/// Live this long: the next failure backs off from the start again.
pub const STABLE: Duration = Duration::from_secs(30);
/// The longest an endpoint's `Retry-After` is honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Where a publication is. The numbers are `whip_publish_state`'s values (0: disabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// `enabled = false`: never offered.
    Disabled = 0,
    /// Offering to the endpoint (the POST is under way).
    Offering = 1,
    /// Answered: ICE and DTLS under way.
    Connecting = 2,
    /// The camera flows to the endpoint.
    Live = 3,
    /// Failed; offering again at `retry_at`.
    Retrying = 4,
    /// Stopped (the sink is stopping).
    Stopped = 5,
}

impl Phase {
    /// Its name in the status.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Disabled => "disabled",
            Phase::Offering => "offering",
            Phase::Connecting => "connecting",
            Phase::Live => "live",
            Phase::Retrying => "retrying",
            Phase::Stopped => "stopped",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The endpoint answered (201) at `resource`, and the connection is with its worker.
    Answered {
        /// The session's URL (the `Location`, resolved).
        resource: String,
    },
    /// The offer failed (refused, no answer, a bad answer).
    Refused {
        /// Why, for the status and the log (no changing figures in it: equal reasons are
        /// logged once).
        error: String,
        /// The endpoint's `Retry-After`, if it said.
        retry_after: Option<Duration>,
        /// A resource the endpoint created anyway (a 201 with an unusable answer): deleted.
        resource: Option<String>,
    },
    /// ICE and DTLS connected.
    Connected,
    /// The connection failed, disconnected or closed.
    Lost {
        /// Why.
        reason: String,
    },
    /// The sink is stopping.
    Stop,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Build an offer and POST it.
    Post,
    /// DELETE this resource (bounded in time; its outcome does not matter).
    Delete(String),
}

/// A line to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Log {
    /// Good news: live, stopped.
    Info(String),
    /// Failing.
    Warn(String),
}

/// What a step decided.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    /// To do, in order.
    pub actions: Vec<Action>,
    /// To log, if anything changed that a user cares about.
    pub log: Option<Log>,
}

/// One publication. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Machine {
    backoff: Backoff,
    phase: Phase,
    attempt: u32,
    retry_at: Option<Instant>,
    live_since: Option<Instant>,
    resource: Option<String>,
    error: Option<String>,
    logged: Option<(Phase, Option<String>)>,
    reconnects: u64,
}

impl Machine {
    /// A publication not started yet (its phase reads `Offering`; [`Machine::start`] says to
    /// offer).
    pub fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            phase: Phase::Offering,
            attempt: 0,
            retry_at: None,
            live_since: None,
            resource: None,
            error: None,
            logged: None,
            reconnects: 0,
        }
    }

    /// Where it is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The last failure, until it is live again.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The current session's URL at the endpoint.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// Offers made again after a failure.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// When it offers again, while retrying.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at.filter(|_| self.phase == Phase::Retrying)
    }

    /// Starts: offer.
    pub fn start(&mut self) -> Output {
        self.phase = Phase::Offering;
        Output {
            actions: vec![Action::Post],
            log: None,
        }
    }

    /// The clock moved: offers again once the back-off is over.
    pub fn tick(&mut self, now: Instant) -> Output {
        match self.retry_at() {
            Some(at) if at <= now => {
                self.phase = Phase::Offering;
                self.retry_at = None;
                self.reconnects += 1;
                Output {
                    actions: vec![Action::Post],
                    log: None,
                }
            }
            _ => Output::default(),
        }
    }

    /// Something happened at `now`; `jitter` in `[0, 1)` draws the back-off if it failed.
    pub fn on(&mut self, now: Instant, jitter: f64, input: Input) -> Output {
        if self.phase == Phase::Stopped {
            // Too late: a resource created meanwhile is deleted all the same.
            return Output {
                actions: match input {
                    Input::Answered { resource }
                    | Input::Refused {
                        resource: Some(resource),
                        ..
                    } => vec![Action::Delete(resource)],
                    _ => Vec::new(),
                },
                log: None,
            };
        }
        match input {
            Input::Stop => {
                self.phase = Phase::Stopped;
                self.retry_at = None;
                let actions = self
                    .resource
                    .take()
                    .map(Action::Delete)
                    .into_iter()
                    .collect();
                let log = self.log(Log::Info("stopped".to_owned()));
                Output { actions, log }
            }
            Input::Answered { resource } if self.phase == Phase::Offering => {
                self.phase = Phase::Connecting;
                self.resource = Some(resource);
                Output::default()
            }
            // An answer nobody waits for (cannot happen with one driver): not kept.
            Input::Answered { resource } => Output {
                actions: vec![Action::Delete(resource)],
                log: None,
            },
            Input::Connected if self.phase == Phase::Connecting => {
                self.phase = Phase::Live;
                self.live_since = Some(now);
                self.error = None;
                let log = self.log(Log::Info("live".to_owned()));
                Output {
                    actions: Vec::new(),
                    log,
                }
            }
            Input::Connected => Output::default(),
            Input::Refused {
                error,
                retry_after,
                resource,
            } if matches!(self.phase, Phase::Offering | Phase::Connecting) => {
                let mut out = self.fail(now, jitter, error, retry_after);
                out.actions.extend(resource.map(Action::Delete));
                out
            }
            Input::Lost { reason } if matches!(self.phase, Phase::Connecting | Phase::Live) => {
                self.fail(now, jitter, reason, None)
            }
            Input::Refused { resource, .. } => Output {
                actions: resource.map(Action::Delete).into_iter().collect(),
                log: None,
            },
            Input::Lost { .. } => Output::default(),
        }
    }

    fn fail(
        &mut self,
        now: Instant,
        jitter: f64,
        error: String,
        retry_after: Option<Duration>,
    ) -> Output {
        if self.phase == Phase::Live
            && self
                .live_since
                .is_some_and(|since| now.saturating_duration_since(since) >= STABLE)
        {
            self.attempt = 0;
        }
        let delay = self
            .backoff
            .delay(self.attempt, jitter)
            .max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER));
        self.attempt = self.attempt.saturating_add(1);
        self.phase = Phase::Retrying;
        self.retry_at = Some(now + delay);
        self.live_since = None;
        let actions = self
            .resource
            .take()
            .map(Action::Delete)
            .into_iter()
            .collect();
        self.error = Some(error.clone());
        let log = self.log(Log::Warn(format!(
            "{error}; offering again in {:.1} s, and after every failure with a growing delay (logged again when the reason changes)",
            delay.as_secs_f64()
        )));
        Output { actions, log }
    }

    /// `line`, if the state a user cares about changed since the last line logged.
    fn log(&mut self, line: Log) -> Option<Log> {
        let key = (self.phase, self.error.clone());
        (self.logged.as_ref() != Some(&key)).then(|| {
            self.logged = Some(key);
            line
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn refused(error: &str) -> Input {
        Input::Refused {
            error: error.to_owned(),
            retry_after: None,
            resource: None,
        }
    }

    fn answered(n: u32) -> Input {
        Input::Answered {
            resource: format!("http://sfu/r/{n}"),
        }
    }

    fn lost() -> Input {
        Input::Lost {
            reason: "ICE failed".to_owned(),
        }
    }

    fn delete(n: u32) -> Action {
        Action::Delete(format!("http://sfu/r/{n}"))
    }

    /// What a step should give: the phase after it, its actions, whether it logs, and when it
    /// retries (seconds after the step, jitter 0).
    type Want = (Phase, Vec<Action>, bool, Option<f64>);

    fn run(steps: Vec<(u64, Option<Input>, Want)>) {
        let t0 = Instant::now();
        let mut m = Machine::new(Backoff::default());
        assert_eq!(m.start().actions, vec![Action::Post]);
        for (i, (at, input, (phase, actions, logs, retry))) in steps.into_iter().enumerate() {
            let now = t0 + S * at as u32;
            let out = match input {
                Some(input) => m.on(now, 0.0, input),
                None => m.tick(now),
            };
            assert_eq!(m.phase(), phase, "step {i}");
            assert_eq!(out.actions, actions, "step {i}");
            assert_eq!(out.log.is_some(), logs, "step {i}: {:?}", out.log);
            assert_eq!(
                m.retry_at().map(|r| (r - now).as_secs_f64()),
                retry,
                "step {i}"
            );
        }
    }

    #[test]
    fn a_publication_goes_live_and_comes_back_after_losing_ice() {
        use Phase::*;
        run(vec![
            (0, Some(answered(1)), (Connecting, vec![], false, None)),
            (1, Some(Input::Connected), (Live, vec![], true, None)),
            // Lost after 5 s live: DELETE the old session, back off from the start.
            (
                6,
                Some(lost()),
                (Retrying, vec![delete(1)], true, Some(0.5)),
            ),
            (6, None, (Retrying, vec![], false, Some(0.5))),
            (7, None, (Offering, vec![Action::Post], false, None)),
            (7, Some(answered(2)), (Connecting, vec![], false, None)),
            (8, Some(Input::Connected), (Live, vec![], true, None)),
            // Lost again soon (logged: it was live): the back-off grows (2 s, half of it with
            // jitter 0).
            (
                9,
                Some(lost()),
                (Retrying, vec![delete(2)], true, Some(1.0)),
            ),
            (10, None, (Offering, vec![Action::Post], false, None)),
            (10, Some(answered(3)), (Connecting, vec![], false, None)),
            (10, Some(Input::Connected), (Live, vec![], true, None)),
            // Lost after a stable minute: the back-off starts afresh.
            (
                70,
                Some(lost()),
                (Retrying, vec![delete(3)], true, Some(0.5)),
            ),
            // Stopping while retrying: nothing to delete.
            (70, Some(Input::Stop), (Stopped, vec![], true, None)),
            (71, None, (Stopped, vec![], false, None)),
            (
                71,
                Some(answered(4)),
                (Stopped, vec![delete(4)], false, None),
            ),
        ]);
    }

    #[test]
    fn refusals_back_off_forever_and_are_logged_once_per_reason() {
        use Phase::*;
        let mut steps = Vec::new();
        let mut t = 0;
        // 503s: the delays double up to the 30 s ceiling (jitter 0: half of it), logged once.
        for (i, want) in [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
            .iter()
            .enumerate()
        {
            steps.push((
                t,
                Some(refused("503 Service Unavailable")),
                (Retrying, vec![], i == 0, Some(*want)),
            ));
            t += 30;
            steps.push((t, None, (Offering, vec![Action::Post], false, None)));
        }
        // Another reason is logged; the endpoint's Retry-After beats a shorter back-off.
        steps.push((
            t,
            Some(Input::Refused {
                error: "401 Unauthorized: check token".to_owned(),
                retry_after: Some(S * 45),
                resource: None,
            }),
            (Retrying, vec![], true, Some(45.0)),
        ));
        t += 45;
        steps.push((t, None, (Offering, vec![Action::Post], false, None)));
        // A 201 whose answer cannot be used: its resource is deleted.
        steps.push((
            t,
            Some(Input::Refused {
                error: "the answer is not SDP".to_owned(),
                retry_after: None,
                resource: Some("http://sfu/r/9".to_owned()),
            }),
            (Retrying, vec![delete(9)], true, Some(15.0)),
        ));
        steps.push((t, Some(Input::Stop), (Stopped, vec![], true, None)));
        run(steps);
    }

    #[test]
    fn a_connection_that_never_connects_is_deleted_and_offered_again() {
        use Phase::*;
        run(vec![
            (0, Some(answered(1)), (Connecting, vec![], false, None)),
            (
                5,
                Some(Input::Lost {
                    reason: "ICE did not connect".to_owned(),
                }),
                (Retrying, vec![delete(1)], true, Some(0.5)),
            ),
            // Late news of a connection already given up: ignored.
            (
                5,
                Some(Input::Connected),
                (Retrying, vec![], false, Some(0.5)),
            ),
            (6, None, (Offering, vec![Action::Post], false, None)),
            (6, Some(answered(2)), (Connecting, vec![], false, None)),
            // Stopped while connecting: its session is deleted.
            (6, Some(Input::Stop), (Stopped, vec![delete(2)], true, None)),
        ]);
    }

    #[test]
    fn reconnects_count_every_offer_after_the_first() {
        let t0 = Instant::now();
        let mut m = Machine::new(Backoff::default());
        m.start();
        m.on(t0, 0.5, refused("timed out"));
        assert_eq!(m.error(), Some("timed out"));
        assert_eq!(m.reconnects(), 0);
        m.tick(t0 + S * 60);
        assert_eq!(m.reconnects(), 1);
        m.on(t0 + S * 60, 0.5, answered(1));
        assert_eq!(m.resource(), Some("http://sfu/r/1"));
        m.on(t0 + S * 61, 0.5, Input::Connected);
        assert_eq!(m.error(), None, "live clears the error");
    }
}
