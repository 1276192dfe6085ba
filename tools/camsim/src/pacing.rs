//! When to publish: absolute deadlines, and periodic events (rate switches, restarts).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest a wait sleeps before looking at the stop flag again.
const STOP_POLL: Duration = Duration::from_millis(20);

/// Publishes frame `n` of a run at `base + n / rate`, computed from the base each time so
/// rounding never accumulates into drift.
#[derive(Debug)]
pub struct Pacer {
    base: Instant,
    rate_hz: u32,
    /// Frames scheduled since `base`.
    n: u64,
    /// The deadline of the last frame published, where a new rate takes over from.
    last: Option<Instant>,
}

impl Pacer {
    /// A schedule of `rate_hz` frames per second whose first deadline is now.
    pub fn new(rate_hz: u32) -> Self {
        let now = Instant::now();
        Self {
            base: now,
            rate_hz: rate_hz.max(1),
            n: 0,
            last: None,
        }
    }

    /// The deadline of the next frame; call [`Pacer::advance`] once it is published.
    pub fn deadline(&self) -> Instant {
        let nanos = u128::from(self.n) * 1_000_000_000 / u128::from(self.rate_hz);
        self.base + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Moves on to the next frame.
    pub fn advance(&mut self) {
        self.last = Some(self.deadline());
        self.n += 1;
    }

    /// Changes the rate; the next frame is due one new interval after the last one.
    pub fn set_rate(&mut self, rate_hz: u32) {
        self.rate_hz = rate_hz.max(1);
        if let Some(last) = self.last {
            self.base = last;
            self.n = 1;
        }
    }

    /// If the next deadline is more than one interval in the past, gives up on catching up:
    /// the schedule restarts from `now`, so a slow encoder runs flat out instead of publishing
    /// a burst. Returns how late it was in that case.
    pub fn forgive_lateness(&mut self, now: Instant) -> Option<Duration> {
        let interval = Duration::from_nanos(1_000_000_000 / u64::from(self.rate_hz));
        let late = now.checked_duration_since(self.deadline())?;
        if late <= interval {
            return None;
        }
        self.base = now;
        self.n = 0;
        Some(late)
    }
}

/// Sleeps until `deadline`, waking regularly to look at `stop`. Returns false if stopped.
pub fn sleep_until(deadline: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(STOP_POLL));
    }
}

/// An event due every `period`, counted from its creation.
#[derive(Debug)]
pub struct Periodic {
    period: Duration,
    next: Instant,
}

impl Periodic {
    /// First due one `period` from now.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            next: Instant::now() + period,
        }
    }

    /// Whether the event is due at `now`; if so, schedules the next one a period later.
    pub fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next += self.period;
        if self.next <= now {
            // Far behind (e.g. the process was stopped): count from now rather than fire again.
            self.next = now + self.period;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_exact_multiples_of_the_interval() {
        let mut p = Pacer::new(30);
        let base = p.deadline();
        for _ in 0..30 {
            p.advance();
        }
        assert_eq!(p.deadline() - base, Duration::from_secs(1));
        p.advance();
        assert_eq!(p.deadline() - base, Duration::from_nanos(1_033_333_333));
    }

    #[test]
    fn a_new_rate_counts_from_the_last_frame() {
        let mut p = Pacer::new(30);
        let base = p.deadline();
        p.advance();
        p.advance();
        let last = base + Duration::from_nanos(33_333_333);
        p.set_rate(2);
        assert_eq!(p.deadline(), last + Duration::from_millis(500));
        p.advance();
        assert_eq!(p.deadline(), last + Duration::from_millis(1000));
    }

    #[test]
    fn lateness_beyond_one_interval_resets_the_schedule() {
        let mut p = Pacer::new(10);
        let start = p.deadline();
        assert_eq!(p.forgive_lateness(start + Duration::from_millis(50)), None);
        let now = start + Duration::from_millis(250);
        assert_eq!(p.forgive_lateness(now), Some(Duration::from_millis(250)));
        assert_eq!(p.deadline(), now);
    }

    #[test]
    fn periodic_fires_once_per_period() {
        let mut e = Periodic::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(!e.due(t0));
        assert!(e.due(t0 + Duration::from_millis(1001)));
        assert!(!e.due(t0 + Duration::from_millis(1500)));
        assert!(e.due(t0 + Duration::from_secs(10)));
        assert!(!e.due(t0 + Duration::from_millis(10_500)));
    }
}
