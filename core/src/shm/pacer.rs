//! When to look at `write_index` next.
//!
//! The writer signals nothing: no futex, no semaphore, no eventfd; only the index changes. A fixed
//! 10 ms poll (what the board's proof of concept did) costs 5 ms of latency on average and 100
//! wake-ups a second. Cameras are periodic, though, so the pacer predicts the next frame from the
//! arrivals it has seen: it sleeps until shortly before the frame is due, polls finely around the
//! due time, and backs off geometrically when the frame is late (the day/night switcher drops
//! from 30 fps to about 2 fps at run time; the estimate follows within a frame or two).
//!
//! Pure logic: time is an argument, so the tests drive it with made-up clocks.

use std::time::Duration;

/// Tuning of the pacer. The defaults hold the p50 wake-up delay near half of `fine_poll` at
/// about 20 wake-ups per frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacerConfig {
    /// Poll interval around the due time.
    pub fine_poll: Duration,
    /// Start fine polling at most this long before the due time.
    pub early: Duration,
    /// ... and at least this long. In between, the lead follows the measured arrival jitter:
    /// a punctual camera costs few wake-ups, an irregular one is still caught early.
    pub min_early: Duration,
    /// Longest poll interval while a frame is late, and the longest sleep before the first frame.
    pub max_poll: Duration,
    /// Fine polling lasts this long past the due time before backing off.
    pub late_window: Duration,
    /// Longest sleep at all: a frame at the camera's full rate. The day/night switcher may
    /// return to 30 fps at any moment; a reader asleep for the 2 fps period (500 ms) left the
    /// first frames after the switch waiting up to half a second, then delivered them in a
    /// burst. At 2 fps this costs 15 looks at the index a frame instead of one.
    pub max_sleep: Duration,
}

impl Default for PacerConfig {
    fn default() -> Self {
        Self {
            fine_poll: Duration::from_micros(100),
            early: Duration::from_millis(2),
            min_early: Duration::from_micros(300),
            max_poll: Duration::from_millis(4),
            late_window: Duration::from_millis(3),
            max_sleep: Duration::from_micros(33_333),
        }
    }
}

/// Predicts frame arrivals and says how long to sleep before the next look.
#[derive(Debug, Clone)]
pub struct Pacer {
    cfg: PacerConfig,
    last_arrival: Option<Duration>,
    period: Option<Duration>,
    /// Mean absolute deviation of arrivals from the predicted period.
    jitter: Duration,
    /// Current back-off step while a frame is late.
    late_poll: Duration,
}

impl Pacer {
    /// A pacer that knows nothing yet.
    pub fn new(cfg: PacerConfig) -> Self {
        Self {
            cfg,
            last_arrival: None,
            period: None,
            jitter: cfg.early,
            late_poll: cfg.fine_poll,
        }
    }

    /// How long before the due time fine polling starts now.
    pub fn lead(&self) -> Duration {
        (self.jitter * 4 + self.cfg.fine_poll).clamp(self.cfg.min_early, self.cfg.early)
    }

    /// The frame period it currently expects, once it has seen two frames.
    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    /// When frames last arrived, if ever.
    pub fn last_arrival(&self) -> Option<Duration> {
        self.last_arrival
    }

    /// Records that new frames were found at `now` (any monotonic clock, as a duration since its
    /// origin).
    pub fn on_arrival(&mut self, now: Duration) {
        if let Some(last) = self.last_arrival {
            let seen = now.saturating_sub(last);
            if let Some(p) = self.period {
                let deviation = seen.abs_diff(p);
                self.jitter = (self.jitter * 7 + deviation.min(self.cfg.early)) / 8;
            }
            self.period = Some(match self.period {
                // A rate switch (30 ↔ 2 fps) is a factor of 15: take the new period at once
                // instead of averaging towards it over dozens of frames.
                Some(p) if seen < p * 2 && seen > p / 2 => (p * 7 + seen) / 8,
                _ => seen,
            });
        }
        self.last_arrival = Some(now);
        self.late_poll = self.cfg.fine_poll;
    }

    /// True at `now` when the writer has missed two frames it was expected to write (or, before
    /// a period is known, has written nothing for `silence`): a writer that stopped, maybe
    /// because it was replaced by a new one under the same name.
    pub fn overdue(&self, now: Duration, silence: Duration) -> bool {
        let last = self.last_arrival.unwrap_or_default();
        let quiet = now.saturating_sub(last);
        match self.period {
            Some(period) => quiet > period * 2,
            None => quiet > silence,
        }
    }

    /// Forgets everything (after the writer restarted).
    pub fn reset(&mut self) {
        *self = Self::new(self.cfg);
    }

    /// How long to sleep, at `now`, before looking at the index again, having found nothing new.
    pub fn next_sleep(&mut self, now: Duration) -> Duration {
        let (Some(last), Some(period)) = (self.last_arrival, self.period) else {
            return self.back_off();
        };
        let due = last + period;
        let lead = self.lead();
        let wake = due.saturating_sub(lead);
        if now < wake {
            return (wake - now).max(self.cfg.fine_poll).min(self.cfg.max_sleep);
        }
        if now <= due + self.cfg.late_window {
            return self.cfg.fine_poll;
        }
        self.back_off()
    }

    fn back_off(&mut self) -> Duration {
        let step = self.late_poll;
        self.late_poll = (self.late_poll * 3 / 2).min(self.cfg.max_poll);
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const US: Duration = Duration::from_micros(1);

    fn at_30fps(frames: u32) -> Pacer {
        let mut p = Pacer::new(PacerConfig::default());
        for i in 0..frames {
            p.on_arrival(Duration::from_micros(33_333) * i);
        }
        p
    }

    #[test]
    fn sleeps_until_shortly_before_the_next_frame_then_polls_finely() {
        let mut p = at_30fps(10);
        let last = Duration::from_micros(33_333) * 9;
        // Right after a frame: sleep until 2 ms before the next one is due.
        assert_eq!(
            p.next_sleep(last + 100 * US),
            Duration::from_micros(33_333 - 2_000 - 100)
        );
        // Inside the window: fine polls.
        assert_eq!(p.next_sleep(last + 32 * MS), 100 * US);
        assert_eq!(p.next_sleep(last + 35 * MS), 100 * US);
    }

    #[test]
    fn a_late_frame_backs_off_geometrically_up_to_the_cap() {
        let mut p = at_30fps(10);
        let late = Duration::from_micros(33_333) * 9 + 40 * MS;
        let steps: Vec<_> = (0..16).map(|_| p.next_sleep(late)).collect();
        assert_eq!(steps[0], 100 * US);
        assert!(steps.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*steps.last().expect("16 steps"), 4 * MS);
        // The next arrival resets the back-off.
        p.on_arrival(late);
        p.on_arrival(late + 33 * MS);
        assert_eq!(p.next_sleep(late + 33 * MS + 32 * MS), 100 * US);
    }

    #[test]
    fn follows_a_switch_from_30_to_2_fps_within_one_frame() {
        let mut p = at_30fps(10);
        let t = Duration::from_micros(33_333) * 9;
        p.on_arrival(t + 500 * MS);
        assert_eq!(p.period(), Some(500 * MS));
        // Sleeps through the half second a full-rate frame at a time, not finely.
        assert_eq!(p.next_sleep(t + 501 * MS), Duration::from_micros(33_333));
        assert_eq!(p.next_sleep(t + 990 * MS), 8 * MS);
        p.on_arrival(t + 1000 * MS);
        p.on_arrival(t + 1033 * MS);
        assert_eq!(p.period(), Some(33 * MS));
    }

    /// Back to 30 fps after a slow spell: the first fast frame is seen within a full-rate frame
    /// of its arrival, not at the slow frame's due time.
    #[test]
    fn a_switch_back_to_30_fps_is_seen_within_a_frame() {
        let mut p = Pacer::new(PacerConfig::default());
        for i in 0..4 {
            p.on_arrival(500 * MS * i);
        }
        let last = 1500 * MS;
        // The camera switches back and writes a frame 33 ms after the last slow one: the reader
        // looks at most a full-rate frame after any look, wherever in the period it is.
        let mut now = last + 100 * US;
        let arrival = last + 33 * MS;
        while now < arrival {
            now += p.next_sleep(now);
        }
        assert!(
            now - arrival <= 33_334 * US,
            "seen {:?} late",
            now - arrival
        );
    }

    #[test]
    fn an_irregular_camera_gets_a_longer_lead() {
        let mut p = Pacer::new(PacerConfig::default());
        let mut t = Duration::ZERO;
        for i in 0..60 {
            t += Duration::from_micros(if i % 2 == 0 { 32_000 } else { 34_600 });
            p.on_arrival(t);
        }
        assert_eq!(p.lead(), 2 * MS);
    }

    #[test]
    fn jitter_is_averaged() {
        let mut p = at_30fps(10);
        let t = Duration::from_micros(33_333) * 9;
        p.on_arrival(t + 36 * MS);
        let period = p.period().expect("period known");
        assert!(
            period > Duration::from_micros(33_333) && period < 34 * MS,
            "{period:?}"
        );
    }

    #[test]
    fn a_writer_is_overdue_after_two_missed_frames() {
        let p = at_30fps(10);
        let last = Duration::from_micros(33_333) * 9;
        let silence = 100 * MS;
        // (time since the last frame, overdue?)
        for (quiet, want) in [
            (Duration::ZERO, false),
            (40 * MS, false),
            (66 * MS, false),
            (67 * MS, true),
        ] {
            assert_eq!(p.overdue(last + quiet, silence), want, "{quiet:?}");
        }
        // At 2 fps a writer is allowed its second.
        let mut night = at_30fps(10);
        night.on_arrival(last + 500 * MS);
        assert!(!night.overdue(last + 1400 * MS, silence));
        assert!(night.overdue(last + 1600 * MS, silence));
        // Before a period is known, silence decides.
        let mut fresh = Pacer::new(PacerConfig::default());
        assert!(!fresh.overdue(50 * MS, silence));
        assert!(fresh.overdue(150 * MS, silence));
        fresh.on_arrival(200 * MS);
        assert!(!fresh.overdue(250 * MS, silence));
        assert!(fresh.overdue(301 * MS, silence));
    }

    #[test]
    fn before_any_frame_it_polls_with_back_off() {
        let mut p = Pacer::new(PacerConfig::default());
        assert_eq!(p.next_sleep(Duration::ZERO), 100 * US);
        for _ in 0..20 {
            p.next_sleep(Duration::ZERO);
        }
        assert_eq!(p.next_sleep(Duration::ZERO), 4 * MS);
    }
}
