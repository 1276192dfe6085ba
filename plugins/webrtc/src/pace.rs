//! Pacing a viewer's catch-up: a token bucket of bytes over elapsed time.
//!
//! A viewer that joins gets the frames since the last IDR (the GOP cache) before it is live.
//! Sent all at once, a GOP (up to a megabyte at 8 Mbit/s) would overflow the viewer's socket
//! buffer; sent at the stream's own rate, the viewer would never catch up. The bucket lets
//! bytes out at [`Pacer::rate`] on average, with bursts of up to [`Pacer::burst`] bytes, and
//! a whole frame at a time: a frame goes out when the bucket holds anything, and may leave
//! it in debt (a frame is never split, and an IDR larger than the burst still goes).
//!
//! Pure: time is passed in, so it is tested on made-up clocks.

use std::time::{Duration, Instant};

/// A token bucket of bytes. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Pacer {
    /// A full bucket at `now`: `rate` bytes a second (at least 1), bursts of `burst` bytes.
    pub fn new(now: Instant, rate: f64, burst: f64) -> Self {
        let burst = burst.max(1.0);
        Self {
            rate: rate.max(1.0),
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// Bytes a second, on average.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The most bytes that go out back to back after a pause.
    pub fn burst(&self) -> f64 {
        self.burst
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = self.at.max(now);
    }

    /// `None` when a frame may go now; else when it may.
    pub fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        if self.tokens > 0.0 {
            return None;
        }
        // Just past the instant the debt is paid, so the bucket then holds something.
        let wait = (-self.tokens + 1.0) / self.rate;
        Some(now + Duration::from_secs_f64(wait))
    }

    /// Takes `bytes` out (the bucket may go into debt).
    pub fn spend(&mut self, now: Instant, bytes: usize) {
        self.refill(now);
        self.tokens -= bytes as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_full_bucket_lets_a_burst_out_then_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 100_000.0, 10_000.0);
        // The first frame goes at once even though it is larger than the burst.
        assert_eq!(p.ready_at(t0), None);
        p.spend(t0, 30_000);
        // 20,000 bytes of debt at 100 kB/s: 200 ms (and a hair).
        let at = p.ready_at(t0).expect("in debt");
        assert!(at > t0 + ms(200) && at < t0 + ms(201), "{:?}", at - t0);
        assert_eq!(p.ready_at(at), None);
        // Time refills, but never beyond the burst.
        p.spend(at, 1);
        assert!(p.ready_at(at).is_some());
        let later = at + Duration::from_secs(60);
        assert_eq!(p.ready_at(later), None);
        p.spend(later, 10_000);
        assert!(p.ready_at(later).is_some(), "the burst is the cap");
    }

    #[test]
    fn over_a_second_the_bytes_out_are_the_rate_plus_the_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 50_000.0, 5_000.0);
        let (mut now, mut sent) = (t0, 0usize);
        // Frames of 1,000 bytes, each sent as soon as allowed, for one second.
        while now < t0 + Duration::from_secs(1) {
            match p.ready_at(now) {
                None => {
                    p.spend(now, 1_000);
                    sent += 1_000;
                }
                Some(at) => now = at,
            }
        }
        assert!((54_000..=57_000).contains(&sent), "{sent}");
    }

    #[test]
    fn a_clock_that_goes_back_changes_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut p = Pacer::new(t0, 1_000.0, 100.0);
        p.spend(t0, 200);
        let at = p.ready_at(t0).unwrap();
        assert_eq!(p.ready_at(t0 - ms(500)), Some(t0 - ms(500) + (at - t0)));
        assert_eq!(p.ready_at(at), None);
    }
}
