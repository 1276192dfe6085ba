//! Noticing a camera that runs late: fewer frames than its own interval announces.
//!
//! The board's switcher announces its rate in `frame_interval_ms` (0: full rate, 30 fps;
//! 500: about 2 fps). A camera that cannot keep that rate (an overloaded board, or camsim
//! encoding without OpenH264's assembly) delays every consumer, and nothing else says so. The
//! watch counts frames over windows of at least [`WINDOW`] of camera time and reports a window
//! whose rate is below [`LATE_RATIO`] of the announced one. A change of the announced rate, or
//! a timestamp going back (a restarted camera), starts a new window.
//!
//! Pure logic: frame timestamps and the announced interval come in as arguments.

use std::time::Duration;

/// The shortest window judged.
pub const WINDOW: Duration = Duration::from_secs(2);

/// Below this share of the announced rate, a window is late.
pub const LATE_RATIO: f64 = 0.85;

/// The full rate `frame_interval_ms = 0` announces.
pub const FULL_RATE_FPS: f64 = 30.0;

/// A late window: what was measured against what was announced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Late {
    /// Frames per second measured over the window.
    pub measured_fps: f64,
    /// Frames per second `frame_interval_ms` announces.
    pub announced_fps: f64,
    /// The `frame_interval_ms` in force.
    pub frame_interval_ms: u32,
}

/// The rate `frame_interval_ms` announces.
pub fn announced_fps(frame_interval_ms: u32) -> f64 {
    match frame_interval_ms {
        0 => FULL_RATE_FPS,
        ms => 1000.0 / f64::from(ms),
    }
}

/// Counts frames per window.
#[derive(Debug, Clone, Default)]
pub struct LateWatch {
    /// First frame's timestamp, interval, and frames since (the first included).
    window: Option<(u64, u32, u64)>,
    last_ts: u64,
}

impl LateWatch {
    /// A frame captured at `timestamp_ns` while `frame_interval_ms` was announced. Returns a
    /// late window when one closes.
    pub fn on_frame(&mut self, timestamp_ns: u64, frame_interval_ms: u32) -> Option<Late> {
        let back = timestamp_ns < self.last_ts;
        self.last_ts = timestamp_ns;
        let (start, interval, frames) = match self.window {
            Some((start, interval, frames)) if !back && interval == frame_interval_ms => {
                (start, interval, frames + 1)
            }
            _ => {
                self.window = Some((timestamp_ns, frame_interval_ms, 1));
                return None;
            }
        };
        let span = timestamp_ns - start;
        if span < u64::try_from(WINDOW.as_nanos()).unwrap_or(u64::MAX) {
            self.window = Some((start, interval, frames));
            return None;
        }
        // The frame that closes this window opens the next one.
        self.window = Some((timestamp_ns, interval, 1));
        let measured_fps = (frames - 1) as f64 * 1e9 / span as f64;
        let announced = announced_fps(interval);
        (measured_fps < announced * LATE_RATIO).then_some(Late {
            measured_fps,
            announced_fps: announced,
            frame_interval_ms: interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Feeds `n` frames `period_ms` apart from `start_ms`; returns the late windows.
    fn feed(w: &mut LateWatch, start_ms: u64, period_ms: f64, n: u64, interval: u32) -> Vec<Late> {
        (0..n)
            .filter_map(|i| {
                w.on_frame(
                    start_ms * MS + (i as f64 * period_ms * 1e6) as u64,
                    interval,
                )
            })
            .collect()
    }

    #[test]
    fn the_table() {
        // (period of the frames, announced interval, frames) -> late windows expected
        let table: [(f64, u32, u64, usize); 6] = [
            (33.3, 0, 200, 0),    // 30 fps as announced
            (16.7, 0, 400, 0),    // faster than announced: fine
            (45.5, 0, 200, 4),    // 22 fps for 9 s: late, once per 2 s window
            (37.0, 0, 200, 0),    // 27 fps: within 85 %
            (500.0, 500, 20, 0),  // 2 fps announced and delivered
            (1000.0, 500, 10, 4), // 1 fps against 2
        ];
        for (period, interval, n, want) in table {
            let mut w = LateWatch::default();
            let late = feed(&mut w, 1000, period, n, interval);
            assert_eq!(
                late.len(),
                want,
                "period {period} ms, interval {interval}: {late:?}"
            );
            if let Some(l) = late.first() {
                assert!((l.measured_fps - 1000.0 / period).abs() < 0.6, "{l:?}");
                assert_eq!(l.announced_fps, announced_fps(interval));
            }
        }
    }

    #[test]
    fn a_rate_switch_or_a_restart_starts_a_new_window() {
        let mut w = LateWatch::default();
        // 2 fps announced, then the switcher goes to full rate: the slow frames before the
        // switch are not held against the new rate.
        assert!(feed(&mut w, 0, 500.0, 3, 500).is_empty());
        assert!(feed(&mut w, 1500, 33.3, 120, 0).is_empty());
        // A camera restarted with an earlier clock: a new window, no bogus rate.
        assert!(feed(&mut w, 100, 33.3, 120, 0).is_empty());
    }
}
