//! The counting, with no plugin in sight: what `on_frame` feeds and `/stats` shows.

use std::collections::VecDeque;

use serde::Serialize;

/// What the sink needs to know about one access unit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observed {
    /// Its size in bytes.
    pub size: usize,
    /// Capture time, nanoseconds.
    pub timestamp_ns: u64,
    /// Whether it is an IDR.
    pub idr: bool,
    /// The camera's generation (a restart resets the fps average).
    pub generation: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Counters and the fps window.
#[derive(Debug)]
pub struct Stats {
    window: usize,
    timestamps: VecDeque<u64>,
    generation: Option<u32>,
    snapshot: Snapshot,
}

/// The numbers, as `GET /stats` serves them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// Access units received.
    pub frames: u64,
    /// Bytes received.
    pub bytes: u64,
    /// IDR access units received.
    pub idr_frames: u64,
    /// Access units in the current GOP, its IDR included (0 before the first IDR).
    pub gop_length: u64,
    /// Frames per second over the last `window` frames, from the camera's timestamps.
    pub fps: f64,
    /// Size of the latest access unit, bytes.
    pub last_frame_size: u64,
    /// Width of the latest access unit.
    pub width: u32,
    /// Height of the latest access unit.
    pub height: u32,
}

impl Stats {
    /// Averages fps over the last `window` frames (at least 2).
    pub fn new(window: usize) -> Self {
        let window = window.max(2);
        Self {
            window,
            timestamps: VecDeque::with_capacity(window),
            generation: None,
            snapshot: Snapshot::default(),
        }
    }

    /// Counts one access unit. Allocates nothing.
    pub fn record(&mut self, frame: Observed) {
        let s = &mut self.snapshot;
        s.frames += 1;
        s.bytes += frame.size as u64;
        s.last_frame_size = frame.size as u64;
        (s.width, s.height) = (frame.width, frame.height);
        if frame.idr {
            s.idr_frames += 1;
            s.gop_length = 1;
        } else if s.gop_length > 0 {
            s.gop_length += 1;
        }
        // A restarted camera (or time going backwards) starts a new average.
        let restarted = self.generation.is_some_and(|g| g != frame.generation)
            || self
                .timestamps
                .back()
                .is_some_and(|&t| frame.timestamp_ns < t);
        if restarted {
            self.timestamps.clear();
        }
        self.generation = Some(frame.generation);
        if self.timestamps.len() == self.window {
            self.timestamps.pop_front();
        }
        self.timestamps.push_back(frame.timestamp_ns);
        s.fps = fps(&self.timestamps);
    }

    /// The numbers now.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.clone()
    }
}

/// Frames per second from capture times, rounded to 0.01; 0 with fewer than two.
fn fps(timestamps: &VecDeque<u64>) -> f64 {
    let (Some(&first), Some(&last)) = (timestamps.front(), timestamps.back()) else {
        return 0.0;
    };
    let span = last.saturating_sub(first);
    if span == 0 {
        return 0.0;
    }
    let fps = (timestamps.len() - 1) as f64 * 1e9 / span as f64;
    (fps * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME_NS: u64 = 33_333_333; // 30 fps

    fn frame(n: u64, idr: bool) -> Observed {
        Observed {
            size: 100 + n as usize,
            timestamp_ns: 1_000_000_000 + n * FRAME_NS,
            idr,
            generation: 0,
            width: 1280,
            height: 720,
        }
    }

    #[test]
    fn counts_frames_bytes_idrs_and_the_current_gop() {
        let mut stats = Stats::new(30);
        stats.record(frame(0, false)); // before the first IDR
        assert_eq!(stats.snapshot().gop_length, 0);
        for n in 1..=12 {
            stats.record(frame(n, n % 5 == 1)); // IDRs at 1, 6, 11
        }
        let s = stats.snapshot();
        assert_eq!(s.frames, 13);
        assert_eq!(s.bytes, (0..=12).map(|n| 100 + n).sum::<u64>());
        assert_eq!(s.idr_frames, 3);
        assert_eq!(s.gop_length, 2); // 11 and 12
        assert_eq!(s.last_frame_size, 112);
        assert_eq!((s.width, s.height), (1280, 720));
    }

    #[test]
    fn fps_comes_from_the_camera_timestamps_over_the_window() {
        let mut stats = Stats::new(10);
        stats.record(frame(0, true));
        assert_eq!(stats.snapshot().fps, 0.0, "one frame: no rate yet");
        for n in 1..40 {
            stats.record(frame(n, false));
        }
        assert_eq!(stats.snapshot().fps, 30.0);
        // The camera slows to 15 fps: after one window, the average says so.
        let base = 1_000_000_000 + 39 * FRAME_NS;
        for k in 1..=10 {
            stats.record(Observed {
                timestamp_ns: base + k * 2 * FRAME_NS,
                ..frame(0, false)
            });
        }
        assert_eq!(stats.snapshot().fps, 15.0);
    }

    #[test]
    fn a_camera_restart_starts_a_new_average() {
        let mut stats = Stats::new(10);
        for n in 0..10 {
            stats.record(frame(n, false));
        }
        // Generation 1 starts with timestamps far back: no negative or huge rate.
        stats.record(Observed {
            generation: 1,
            timestamp_ns: 5,
            ..frame(0, false)
        });
        assert_eq!(stats.snapshot().fps, 0.0);
        stats.record(Observed {
            generation: 1,
            timestamp_ns: 5 + FRAME_NS,
            ..frame(0, false)
        });
        assert_eq!(stats.snapshot().fps, 30.0);
    }
}
