//! Decode times (90 kHz ticks from the file's first frame) from capture times.
//!
//! Two steps:
//!
//! 1. **True time.** Ticks since the first frame, from the camera's CLOCK_MONOTONIC stamps. A
//!    new generation (camera restart) or a stamp going backwards continues one frame interval
//!    after the last frame instead of jumping (no huge or negative duration).
//! 2. **The frame-rate grid.** Capture stamps jitter (scheduling, a busy board); a player or
//!    transcoder that assumes a constant rate (ffmpeg guesses one and rounds every timestamp
//!    to it) then sees two frames on the same instant and complains or drops one. So each
//!    frame is placed on the grid of its stream's nominal rate (the slowest standard rate at
//!    least as fast as the recent intervals: 30, 2, 60, 25 fps...): within half a frame of its true
//!    time, never on or before the previous frame. A rate change (30 to 2 fps and back) moves
//!    to the new grid at once, so the media time stays the camera's.

/// Intervals measured to pick the rate.
const WINDOW: usize = 8;

/// Standard frame rates, per second: the grids a stream is snapped to.
const RATES: &[u64] = &[
    1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 16, 20, 24, 25, 30, 40, 48, 50, 60, 72, 90, 100, 120, 144, 240,
];

/// The grid interval (ticks) for a measured interval: the longest standard frame interval
/// not more than 5% above it. Never coarser than the stream (a coarser grid would push frames
/// late, one after the other); a finer one only leaves some slots empty.
pub fn grid_for(interval: u64, timescale: u64) -> u64 {
    let limit = interval.max(1).saturating_mul(21) / 20;
    RATES
        .iter()
        .map(|r| timescale / r)
        .filter(|&g| g <= limit)
        .max()
        .unwrap_or(timescale / 240)
}

/// True time: ticks since the file's first frame, from capture stamps.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    timescale: u64,
    generation: u32,
    /// Capture time and true ticks of an anchor frame of this generation.
    anchor_ns: u64,
    anchor_true: u64,
    last_ns: u64,
    last_true: u64,
    /// The latest interval, ticks: the step after a discontinuity.
    step: u64,
}

impl Clock {
    /// A clock whose first frame, captured at `ns`, is at 0.
    pub fn new(ns: u64, generation: u32, timescale: u32) -> Self {
        Self {
            timescale: u64::from(timescale),
            generation,
            anchor_ns: ns,
            anchor_true: 0,
            last_ns: ns,
            last_true: 0,
            step: u64::from(timescale) / 30,
        }
    }

    fn ticks(&self, ns: u64) -> u64 {
        crate::mp4::ns_to_ticks_at(ns, self.timescale)
    }

    /// The true time of a frame captured at `ns` in `generation`, without recording it.
    pub fn peek(&self, ns: u64, generation: u32) -> u64 {
        let mut copy = *self;
        copy.advance(ns, generation)
    }

    /// The true time of the next frame.
    pub fn advance(&mut self, ns: u64, generation: u32) -> u64 {
        let t = if generation == self.generation && ns > self.last_ns {
            (self.anchor_true + self.ticks(ns - self.anchor_ns)).max(self.last_true + 1)
        } else {
            // Restarted camera or clock going back: one interval after the last frame.
            let t = self.last_true + self.step.max(1);
            self.generation = generation;
            self.anchor_ns = ns;
            self.anchor_true = t;
            t
        };
        if t > self.last_true && self.last_ns != ns {
            self.step = t - self.last_true;
        }
        self.last_ns = ns;
        self.last_true = t;
        t
    }
}

/// Decode times: true times placed on the frame-rate grid.
#[derive(Debug, Clone, Copy)]
pub struct Grid {
    timescale: u64,
    last_true: u64,
    last_dts: Option<u64>,
    /// Recent true intervals, a ring.
    intervals: [u64; WINDOW],
    count: usize,
    /// The current grid, ticks (0 until primed).
    grid: u64,
    /// Whether a frame was taken in.
    started: bool,
}

impl Grid {
    /// An empty grid for `timescale` ticks a second.
    pub fn new(timescale: u32) -> Self {
        Self {
            timescale: u64::from(timescale),
            last_true: 0,
            last_dts: None,
            intervals: [0; WINDOW],
            count: 0,
            grid: 0,
            started: false,
        }
    }

    /// The typical interval so far: the median of the recent ones.
    fn typical(&self) -> u64 {
        let n = self.count.min(WINDOW);
        let mut v = self.intervals;
        let v = &mut v[..n];
        v.sort_unstable();
        v.get(n / 2).copied().unwrap_or(0)
    }

    /// Whether a grid has been chosen ([`Grid::prime`] does nothing after that).
    pub fn primed(&self) -> bool {
        self.grid != 0
    }

    /// Chooses the first grid from the first frames' true times (before any is placed), so
    /// that the very first intervals are already on it.
    pub fn prime(&mut self, times: &[u64]) {
        if self.grid != 0 {
            return;
        }
        // The average interval: robust to jitter, which a median of a few is not.
        let average = match (times.first(), times.last()) {
            (Some(first), Some(last)) if times.len() > 1 && last > first => {
                (last - first) / (times.len() as u64 - 1)
            }
            _ => self.timescale / 30,
        };
        self.grid = grid_for(average, self.timescale);
    }

    /// The decode time the frame at true time `t` would get, without placing it.
    pub fn peek(&self, t: u64) -> u64 {
        let mut copy = *self;
        copy.place(t)
    }

    /// Places the next frame, at true time `t`, after the frames placed so far.
    pub fn place(&mut self, t: u64) -> u64 {
        let first = !self.started;
        let (grid, snapped) = self.advance_grid(t);
        let dts = match self.last_dts {
            Some(last) if !first => snapped.max(last + grid),
            _ => snapped,
        };
        self.last_dts = Some(dts);
        dts
    }

    /// Places a run of frames (one fragment), the first at `pinned` if given (the decode time
    /// the previous fragment's last duration ended at).
    ///
    /// Late frames published in a bunch carry nearly the same capture time; rather than
    /// pushing them (and every frame after them) later, they are spread back into the gap
    /// before them, where they belonged, as far as the run allows.
    pub fn place_run(&mut self, times: &[u64], pinned: Option<u64>) -> Vec<u64> {
        let lower = match (pinned, self.last_dts) {
            (Some(p), _) => Some(p),
            (None, Some(last)) => Some(last + self.grid.max(1)),
            (None, None) => None,
        };
        let placed: Vec<(u64, u64)> = times.iter().map(|&t| self.advance_grid(t)).collect();
        let n = placed.len();
        let mut dts: Vec<u64> = placed.iter().map(|&(_, s)| s).collect();
        // Backwards: each frame at least one slot before the next.
        for i in (0..n.saturating_sub(1)).rev() {
            dts[i] = dts[i].min(dts[i + 1].saturating_sub(placed[i + 1].0));
        }
        // Forwards: after what is already placed, and one slot apart.
        for i in 0..n {
            let floor = if i == 0 {
                lower.unwrap_or(0)
            } else {
                dts[i - 1] + placed[i].0
            };
            dts[i] = if i == 0 && pinned.is_some() {
                floor
            } else {
                dts[i].max(floor)
            };
        }
        if let Some(&last) = dts.last() {
            self.last_dts = Some(last);
        }
        dts
    }

    /// Takes in the frame at true time `t`: updates the rate and the grid; returns the grid
    /// and `t` snapped to it.
    fn advance_grid(&mut self, t: u64) -> (u64, u64) {
        if !self.started {
            self.started = true;
            if self.grid == 0 {
                self.grid = self.timescale / 30;
            }
            self.last_true = t;
            let g = self.grid;
            return (g, t / g * g);
        }
        let interval = t.saturating_sub(self.last_true).max(1);
        self.intervals[self.count % WINDOW] = interval;
        self.count += 1;
        let shortest = self.intervals[..self.count.min(WINDOW)]
            .iter()
            .copied()
            .min()
            .unwrap_or(interval);
        let g = self.grid;
        let typical = self.typical();
        let grid = if g >= self.timescale / 10 && interval.saturating_mul(4) < g {
            // Out of a slow rate (10 fps or less: the night rate) into a fast one: at once,
            // before the coarse grid pushes frames late; jitter cannot explain such a step.
            grid_for(interval, self.timescale)
        } else if typical.saturating_mul(3) < g * 2 {
            // Faster for most of the window (not a burst of late frames catching up): finer.
            grid_for(typical, self.timescale)
        } else if self.count >= WINDOW && shortest * 2 >= g * 3 {
            // Slower for a whole window: a coarser grid.
            grid_for(typical, self.timescale)
        } else {
            g
        };
        self.grid = grid;
        self.last_true = t;
        // Snapped to the grid from the file's origin: within half a slot of the true time.
        (grid, (t + grid / 2) / grid * grid)
    }

    /// The current grid (one frame's duration), ticks.
    pub fn step(&self) -> u64 {
        self.grid.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Decode times as the writer computes them: true times, the grid primed with the first
    /// fragment's frames (15 here).
    fn run(stamps: &[(u64, u32)]) -> Vec<u64> {
        let mut clock = Clock::new(stamps[0].0, stamps[0].1, 90_000);
        let times: Vec<u64> = std::iter::once(0)
            .chain(stamps[1..].iter().map(|&(ns, g)| clock.advance(ns, g)))
            .collect();
        let mut grid = Grid::new(90_000);
        grid.prime(&times[..times.len().min(15)]);
        // In runs of 15 frames (a fragment), each pinned where the previous one ended.
        let mut out = Vec::new();
        let mut pinned = None;
        for (k, run) in times.chunks(15).enumerate() {
            out.extend(grid.place_run(run, pinned));
            pinned = times.get((k + 1) * 15).map(|&t| grid.peek(t));
        }
        out
    }

    #[test]
    fn grids_are_standard_rates() {
        assert_eq!(grid_for(3000, 90_000), 3000);
        assert_eq!(grid_for(3100, 90_000), 3000);
        assert_eq!(grid_for(1480, 90_000), 1500);
        assert_eq!(grid_for(45_200, 90_000), 45_000);
        assert_eq!(grid_for(3003, 90_000), 3000);
        assert_eq!(grid_for(270_000, 90_000), 90_000);
        assert_eq!(grid_for(12_857, 90_000), 11_250); // 7 fps: on the 8 fps grid
    }

    #[test]
    fn jitter_is_snapped_to_the_rate_and_never_collides() {
        for (scale, tolerance) in [(3, 750), (7, 6000)] {
            // 60 fps with up to +-3 ms (a busy machine) or +-7 ms (a very busy one) of jitter.
            let jitter = [0i64, 7, -6, 5, -7, 7, 6, -5, 0, 7, -7, 3, 7, -7, 7, -7];
            let stamps: Vec<(u64, u32)> = (0..200u64)
                .map(|i| {
                    let ideal = 1_000 * MS + i * 16_666_667;
                    let j = jitter[i as usize % 16] * scale / 7;
                    ((ideal as i64 + j * MS as i64) as u64, 0)
                })
                .collect();
            let dts = run(&stamps);
            for (i, pair) in dts.windows(2).enumerate() {
                let d = pair[1] - pair[0];
                assert!(d >= 1500, "frame {i}: {pair:?}");
                assert!(d % 1500 == 0, "frame {i}: {pair:?}");
            }
            // True time is kept: the last frame is near its capture time (a very jittery
            // clock pushes a few frames one slot late, which only a gap makes up for).
            let true_last = (stamps[199].0 - stamps[0].0) * 9 / 100_000;
            assert!(
                dts[199].abs_diff(true_last) <= tolerance,
                "+-{scale} ms: {} vs {true_last}",
                dts[199]
            );
        }
    }

    #[test]
    fn a_burst_of_late_frames_keeps_the_grid() {
        // 60 fps; frames 40..43 are published late, all within 3 ms, then on time again.
        let stamps: Vec<(u64, u32)> = (0..120u64)
            .map(|i| {
                let ideal = 1_000 * MS + i * 16_666_667;
                let late = if (40..43).contains(&i) {
                    1_000 * MS + 43 * 16_666_667 - (43 - i) * MS
                } else {
                    ideal
                };
                (late, 0)
            })
            .collect();
        let dts = run(&stamps);
        for (i, pair) in dts.windows(2).enumerate() {
            let d = pair[1] - pair[0];
            assert!(d >= 1500 && d % 1500 == 0, "frame {i}: {pair:?}");
        }
        assert_eq!(dts[119], 119 * 1500, "back on time after the burst");
    }

    #[test]
    fn a_rate_switch_keeps_true_time() {
        // 30 fps for 60 frames, 2 fps for 10, then 30 fps again.
        let mut ns = 5_000 * MS;
        let mut stamps = Vec::new();
        for i in 0..100 {
            stamps.push((ns, 0));
            ns += if (60..70).contains(&i) {
                500 * MS
            } else {
                33_333_333
            };
        }
        let dts = run(&stamps);
        for (i, &d) in dts.iter().enumerate() {
            let truth = (stamps[i].0 - stamps[0].0) * 9 / 100_000;
            assert!(d.abs_diff(truth) <= 3000, "frame {i}: {d} vs {truth}");
        }
        assert!(dts.windows(2).all(|p| p[1] > p[0]));
    }

    #[test]
    fn a_restart_continues_one_interval_later() {
        let mut stamps: Vec<(u64, u32)> =
            (0..10).map(|i| (9_000 * MS + i * 33_333_333, 0)).collect();
        // Generation 1 starts with a clock far back.
        stamps.extend((0..10).map(|i| (10 * MS + i * 33_333_333, 1)));
        let dts = run(&stamps);
        for pair in dts.windows(2) {
            assert_eq!(pair[1] - pair[0], 3000, "{dts:?}");
        }
        // And a clock going back within a generation.
        let dts = run(&[(100 * MS, 0), (133 * MS, 0), (50 * MS, 0), (83 * MS, 0)]);
        assert!(
            dts.windows(2).all(|p| p[1] > p[0] && p[1] - p[0] <= 3000),
            "{dts:?}"
        );
    }
}
