//! Whether a service may start: its dependencies' conditions against their current states.
//!
//! A dependency that is switched off (`enabled = false`, e.g. by `--no-detector`) is skipped, so
//! turning a service off never blocks the ones after it; a dependency that failed for good blocks
//! its dependents for good, and they say so in their status.

use crate::status::ServiceState;

/// What a dependent waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The dependency's process has been started.
    Started,
    /// The dependency passed its readiness probe (or has none and is running).
    Ready,
    /// The dependency ran to a successful exit (a one-shot task).
    Completed,
}

/// The verdict for one dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Satisfied.
    Open,
    /// Not yet.
    Wait,
    /// Can no longer be satisfied (the dependency failed, or completed when it had to run).
    Never,
}

/// Checks one dependency in state `state` against `condition`.
pub fn check(condition: Condition, state: ServiceState) -> Gate {
    use ServiceState as S;
    match (condition, state) {
        (_, S::Disabled) => Gate::Open,
        (_, S::Failed) => Gate::Never,
        (Condition::Started, S::Starting | S::Ready | S::Completed) => Gate::Open,
        (Condition::Ready, S::Ready | S::Completed) => Gate::Open,
        (Condition::Completed, S::Completed) => Gate::Open,
        (Condition::Completed, S::Stopped) => Gate::Never,
        _ => Gate::Wait,
    }
}

/// Combines the verdicts of all dependencies: the first `Never` wins, then any `Wait`.
pub fn all(gates: impl IntoIterator<Item = Gate>) -> Gate {
    let mut verdict = Gate::Open;
    for gate in gates {
        match gate {
            Gate::Never => return Gate::Never,
            Gate::Wait => verdict = Gate::Wait,
            Gate::Open => {}
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServiceState as S;

    #[test]
    fn conditions_against_states() {
        let table = [
            (Condition::Started, S::Waiting, Gate::Wait),
            (Condition::Started, S::Building, Gate::Wait),
            (Condition::Started, S::Starting, Gate::Open),
            (Condition::Started, S::Ready, Gate::Open),
            (Condition::Started, S::Backoff, Gate::Wait),
            (Condition::Ready, S::Starting, Gate::Wait),
            (Condition::Ready, S::Ready, Gate::Open),
            (Condition::Ready, S::Failed, Gate::Never),
            (Condition::Ready, S::Disabled, Gate::Open),
            (Condition::Ready, S::Stopped, Gate::Wait),
            (Condition::Completed, S::Ready, Gate::Wait),
            (Condition::Completed, S::Completed, Gate::Open),
            (Condition::Completed, S::Stopped, Gate::Never),
        ];
        for (condition, state, want) in table {
            assert_eq!(check(condition, state), want, "{condition:?} on {state:?}");
        }
    }

    #[test]
    fn never_beats_wait_beats_open() {
        assert_eq!(all([]), Gate::Open);
        assert_eq!(all([Gate::Open, Gate::Wait]), Gate::Wait);
        assert_eq!(all([Gate::Wait, Gate::Never, Gate::Open]), Gate::Never);
    }
}
