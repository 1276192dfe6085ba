//! Exponential back-off with jitter: how long a publication waits before it offers again.
//!
//! Pure: the attempt number and the randomness are passed in.

use std::time::Duration;

/// The back-off schedule: `initial`, doubling per failed attempt up to `max`, each delay
/// drawn between half of it and all of it ("equal jitter"), so that publishers that failed
/// together do not come back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay (before jitter).
    pub initial: Duration,
    /// The longest delay (before jitter).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay after failed attempt `attempt` (0 for the first failure), with `jitter` in
    /// `[0, 1)` (anything outside is clamped).
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        base / 2 + base.mul_f64(0.5 * jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_ceiling_with_the_jitter_in_the_upper_half() {
        let b = Backoff::default();
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        for (attempt, jitter, want) in [
            (0, 0.0, ms(500)),
            (0, 0.999_999, ms(1000)),
            (1, 0.0, s(1)),
            (1, 0.5, ms(1500)),
            (2, 0.0, s(2)),
            (4, 1.0, s(16)),
            (5, 0.0, s(15)),
            (5, 1.0, s(30)),
            (6, 1.0, s(30)),
            (40, 0.0, s(15)),
            (u32::MAX, 1.0, s(30)),
            (0, -3.0, ms(500)),
            (0, f64::NAN, ms(500)),
            (0, 7.0, s(1)),
        ] {
            let got = b.delay(attempt, jitter);
            let diff = got.abs_diff(want);
            assert!(
                diff < ms(1),
                "attempt {attempt} jitter {jitter}: {got:?}, want {want:?}"
            );
        }
    }
}
