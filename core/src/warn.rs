//! Rate-limited warnings: a broken stream at 30 fps must not write 30 log lines a second.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Lets one warning of each kind through per interval and counts the ones it held back.
#[derive(Debug)]
pub struct WarnLimiter {
    interval: Duration,
    kinds: HashMap<&'static str, (Instant, u64)>,
}

impl WarnLimiter {
    /// At most one warning per kind per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            kinds: HashMap::new(),
        }
    }

    /// Calls `emit` with the number of warnings suppressed since the last one of this kind, if
    /// this kind may warn now.
    pub fn warn(&mut self, kind: &'static str, emit: impl FnOnce(u64)) {
        let now = Instant::now();
        match self.kinds.get_mut(kind) {
            Some((last, suppressed)) if now.duration_since(*last) < self.interval => {
                *suppressed += 1;
            }
            Some((last, suppressed)) => {
                emit(*suppressed);
                *last = now;
                *suppressed = 0;
            }
            None => {
                emit(0);
                self.kinds.insert(kind, (now, 0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_one_through_per_interval_and_counts_the_rest() {
        let mut limiter = WarnLimiter::new(Duration::from_secs(3600));
        let mut emitted = Vec::new();
        for _ in 0..5 {
            limiter.warn("a", |n| emitted.push(("a", n)));
        }
        limiter.warn("b", |n| emitted.push(("b", n)));
        assert_eq!(emitted, vec![("a", 0), ("b", 0)]);

        let mut limiter = WarnLimiter::new(Duration::ZERO);
        limiter.warn("a", |_| {});
        let mut seen = None;
        limiter.warn("a", |n| seen = Some(n));
        assert_eq!(seen, Some(0));
    }
}
