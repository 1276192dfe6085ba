//! One RTSP session's state machine (RFC 2326 Appendix A, server side), pure: the request (or
//! the clock) comes in, the decision comes out; the caller does the I/O.
//!
//! ```text
//!            SETUP                       PLAY
//!  (none) ─────────► Ready ───────────────────────────► Playing
//!                    │  ▲ ◄─────────────── PAUSE ──────────┘ │
//!                    │  └ SETUP (same transport)             │ PLAY (nothing changes)
//!                    └──────── TEARDOWN, time-out ───────────┴──► (gone)
//! ```
//!
//! Every request naming the session, and every RTCP packet from its client, keeps it alive;
//! `timeout` without either ends it.

use std::time::{Duration, Instant};

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Set up, not sending (after SETUP or PAUSE).
    Ready,
    /// Sending RTP.
    Playing,
}

/// A request that names the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Request {
    /// SETUP again, on the same session.
    Setup,
    /// PLAY.
    Play,
    /// PAUSE.
    Pause,
    /// TEARDOWN.
    Teardown,
    /// OPTIONS, GET_PARAMETER or SET_PARAMETER: a keep-alive.
    KeepAlive,
}

/// What the caller does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Answer 200; nothing else changes.
    Answer,
    /// Start sending, from the GOP cache or the next IDR; answer with `RTP-Info`.
    Start,
    /// Stop sending; answer 200.
    Stop,
    /// End the session (stop sending, free its ports); answer 200.
    End,
}

/// A request the session's state does not allow: `455 Method Not Valid in This State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{request:?} is not valid in state {state:?}")]
pub struct NotValid {
    /// The state.
    pub state: State,
    /// The request.
    pub request: Request,
}

/// A session's state and liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    state: State,
    last_seen: Instant,
    timeout: Duration,
}

impl Machine {
    /// A session just set up at `now`.
    pub fn new(now: Instant, timeout: Duration) -> Self {
        Self {
            state: State::Ready,
            last_seen: now,
            timeout,
        }
    }

    /// Where it stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// A request arrived at `now`: it keeps the session alive, valid or not.
    pub fn on_request(&mut self, request: Request, now: Instant) -> Result<Action, NotValid> {
        self.touch(now);
        let (next, action) = match (self.state, request) {
            (_, Request::KeepAlive) => (self.state, Action::Answer),
            (_, Request::Teardown) => (self.state, Action::End),
            (State::Ready, Request::Setup) => (State::Ready, Action::Answer),
            (State::Ready, Request::Play) => (State::Playing, Action::Start),
            (State::Playing, Request::Play) => (State::Playing, Action::Answer),
            (State::Playing, Request::Pause) => (State::Ready, Action::Stop),
            (state @ State::Ready, request @ Request::Pause)
            | (state @ State::Playing, request @ Request::Setup) => {
                return Err(NotValid { state, request });
            }
        };
        self.state = next;
        Ok(action)
    }

    /// The client showed it is alive (an RTCP packet) at `now`.
    pub fn touch(&mut self, now: Instant) {
        self.last_seen = self.last_seen.max(now);
    }

    /// When the session expires unless it hears from its client.
    pub fn deadline(&self) -> Instant {
        self.last_seen + self.timeout
    }

    /// Whether it has expired at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.deadline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_and_request() {
        use Action::*;
        use Request::*;
        use State::*;
        let table: [(State, Request, Result<Action, ()>, State); 10] = [
            (Ready, Setup, Ok(Answer), Ready),
            (Ready, Play, Ok(Start), Playing),
            (Ready, Pause, Err(()), Ready),
            (Ready, Teardown, Ok(End), Ready),
            (Ready, KeepAlive, Ok(Answer), Ready),
            (Playing, Setup, Err(()), Playing),
            (Playing, Play, Ok(Answer), Playing),
            (Playing, Pause, Ok(Stop), Ready),
            (Playing, Teardown, Ok(End), Playing),
            (Playing, KeepAlive, Ok(Answer), Playing),
        ];
        let t0 = Instant::now();
        for (from, request, want, to) in table {
            let mut m = Machine {
                state: from,
                last_seen: t0,
                timeout: Duration::from_secs(60),
            };
            let got = m.on_request(request, t0);
            match want {
                Ok(action) => assert_eq!(got, Ok(action), "{from:?} + {request:?}"),
                Err(()) => assert_eq!(
                    got,
                    Err(NotValid {
                        state: from,
                        request
                    }),
                    "{from:?} + {request:?}"
                ),
            }
            assert_eq!(m.state(), to, "{from:?} + {request:?}");
        }
    }

    #[test]
    fn requests_and_rtcp_keep_it_alive_and_silence_ends_it() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut m = Machine::new(t0, s(60));
        assert!(!m.expired(t0 + s(59)));
        assert!(m.expired(t0 + s(60)));
        // Even a refused request shows the client is there.
        assert!(m.on_request(Request::Pause, t0 + s(50)).is_err());
        assert_eq!(m.deadline(), t0 + s(110));
        m.touch(t0 + s(100));
        assert!(!m.expired(t0 + s(159)));
        // Time never goes back: an older stamp changes nothing.
        m.touch(t0 + s(1));
        assert_eq!(m.deadline(), t0 + s(160));
        assert!(m.expired(t0 + s(160)));
    }
}
