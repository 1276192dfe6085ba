//! When a service that stopped by itself comes back: restart policy, exponential back-off with
//! jitter, and the crash-loop budget.
//!
//! Pure logic: time is an argument (a `Duration` since any fixed origin) and randomness comes in
//! as a number in `0.0..1.0`, so every rule is tested as a table below.
//!
//! ```text
//! exit ──> policy says no? ──────────────────────────────> Done (completed or failed for good)
//!   │
//!   └──> more than `max_restarts` in `restart_window`? ──> GiveUp (FAILED, on_failure applies)
//!   │
//!   └──> Restart after back-off: initial × 2^(n-1), capped at max, ± jitter;
//!        n counts restarts since the service last stayed up `min_uptime`
//! ```

use std::collections::VecDeque;
use std::time::Duration;

/// Which exits lead to a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Never restart.
    No,
    /// Restart after a failure (non-zero exit, death by a signal, failed liveness probe).
    OnFailure,
    /// Restart after any exit.
    Always,
}

/// The restart rules of one service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Which exits restart.
    pub policy: Policy,
    /// First back-off.
    pub initial: Duration,
    /// Longest back-off.
    pub max: Duration,
    /// Fraction of the back-off randomly added or removed (0 to 1).
    pub jitter: f64,
    /// A run at least this long resets the back-off.
    pub min_uptime: Duration,
    /// Restarts allowed within `window` before the service is declared failed.
    pub max_restarts: u32,
    /// The crash-loop window.
    pub window: Duration,
}

/// What to do after an exit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Start it again after this delay.
    Restart(Duration),
    /// The policy does not restart this exit: the service stays down (completed if it
    /// succeeded, failed otherwise).
    Done,
    /// Too many restarts in the window: FAILED.
    GiveUp,
}

/// Restart bookkeeping of one service.
#[derive(Debug, Clone, Default)]
pub struct RestartState {
    /// When recent restarts were decided, oldest first, pruned to the window.
    recent: VecDeque<Duration>,
    /// Restarts since the service last stayed up `min_uptime`.
    streak: u32,
}

impl RestartState {
    /// Restarts decided within the current window.
    #[cfg(test)]
    pub fn recent(&self) -> usize {
        self.recent.len()
    }

    /// Forgets the history (after an operator restarts the service by hand).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Decides what follows an exit at `now` after `uptime`. `failed` says whether the exit was
    /// a failure; `random` is uniform in `0.0..1.0`.
    pub fn on_exit(
        &mut self,
        rules: &Rules,
        now: Duration,
        uptime: Duration,
        failed: bool,
        random: f64,
    ) -> Decision {
        let restart = match rules.policy {
            Policy::No => false,
            Policy::OnFailure => failed,
            Policy::Always => true,
        };
        if !restart {
            return Decision::Done;
        }
        while self
            .recent
            .front()
            .is_some_and(|&t| now.saturating_sub(t) >= rules.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= rules.max_restarts as usize {
            return Decision::GiveUp;
        }
        self.recent.push_back(now);
        if uptime >= rules.min_uptime {
            self.streak = 0;
        }
        self.streak = self.streak.saturating_add(1);
        Decision::Restart(backoff(rules, self.streak, random))
    }
}

/// The delay before restart number `n` (1-based) of a streak.
fn backoff(rules: &Rules, n: u32, random: f64) -> Duration {
    let doublings = n.saturating_sub(1).min(31);
    let base = rules
        .initial
        .saturating_mul(1u32 << doublings)
        .min(rules.max);
    let jitter = rules.jitter.clamp(0.0, 1.0);
    let factor = 1.0 + jitter * (2.0 * random.clamp(0.0, 1.0) - 1.0);
    Duration::try_from_secs_f64(base.as_secs_f64() * factor.max(0.0)).unwrap_or(rules.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const S: Duration = Duration::from_secs(1);

    fn rules(policy: Policy) -> Rules {
        Rules {
            policy,
            initial: 500 * MS,
            max: 4 * S,
            jitter: 0.0,
            min_uptime: 10 * S,
            max_restarts: 5,
            window: 60 * S,
        }
    }

    #[test]
    fn the_policy_decides_which_exits_restart() {
        let table = [
            (Policy::No, false, Decision::Done),
            (Policy::No, true, Decision::Done),
            (Policy::OnFailure, false, Decision::Done),
            (Policy::OnFailure, true, Decision::Restart(500 * MS)),
            (Policy::Always, false, Decision::Restart(500 * MS)),
            (Policy::Always, true, Decision::Restart(500 * MS)),
        ];
        for (policy, failed, want) in table {
            let got = RestartState::default().on_exit(&rules(policy), S, S, failed, 0.5);
            assert_eq!(got, want, "{policy:?}, failed {failed}");
        }
    }

    #[test]
    fn back_off_doubles_up_to_the_cap_and_resets_after_min_uptime() {
        let r = rules(Policy::Always);
        let mut state = RestartState::default();
        let mut t = Duration::ZERO;
        let mut delays = Vec::new();
        for _ in 0..5 {
            t += S;
            match state.on_exit(&r, t, S, true, 0.5) {
                Decision::Restart(d) => delays.push(d),
                other => panic!("expected a restart, got {other:?}"),
            }
        }
        assert_eq!(delays, [500 * MS, S, 2 * S, 4 * S, 4 * S]);
        // It stayed up long enough: the streak starts over (and the window has passed).
        t += 120 * S;
        assert_eq!(
            state.on_exit(&r, t, 30 * S, true, 0.5),
            Decision::Restart(500 * MS)
        );
    }

    #[test]
    fn a_crash_loop_exhausts_the_budget_then_the_window_forgives() {
        let r = rules(Policy::OnFailure);
        let mut state = RestartState::default();
        for i in 1..=5 {
            let decision = state.on_exit(&r, i * S, MS, true, 0.5);
            assert!(
                matches!(decision, Decision::Restart(_)),
                "restart {i}: {decision:?}"
            );
        }
        assert_eq!(state.on_exit(&r, 6 * S, MS, true, 0.5), Decision::GiveUp);
        assert_eq!(state.recent(), 5);
        // A minute after the first restart, one slot of the budget is free again.
        assert!(matches!(
            state.on_exit(&r, 61 * S, MS, true, 0.5),
            Decision::Restart(_)
        ));
    }

    #[test]
    fn jitter_spreads_the_delay_symmetrically() {
        let r = Rules {
            jitter: 0.2,
            ..rules(Policy::Always)
        };
        let at = |random| RestartState::default().on_exit(&r, S, S, true, random);
        assert_eq!(at(0.0), Decision::Restart(400 * MS));
        assert_eq!(at(0.5), Decision::Restart(500 * MS));
        assert_eq!(at(1.0), Decision::Restart(600 * MS));
    }

    #[test]
    fn absurd_numbers_saturate_instead_of_overflowing() {
        let r = Rules {
            initial: Duration::MAX / 2,
            max: Duration::MAX,
            max_restarts: u32::MAX,
            ..rules(Policy::Always)
        };
        let mut state = RestartState::default();
        for i in 0..40 {
            assert!(matches!(
                state.on_exit(&r, i * S, MS, true, 0.5),
                Decision::Restart(_)
            ));
        }
    }
}
