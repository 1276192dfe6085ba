//! When an event clip starts, is cut and ends: a pure state machine, times passed in.
//!
//! Inputs are the detection results (their frame's capture time, and whether they match) and
//! the frames (capture time, IDR or not), all on the camera's CLOCK_MONOTONIC. Outputs say what
//! the clip writer does; it owns the files and the pre-roll frames, this owns the decisions:
//!
//! - idle, `min_frames` consecutive matching results start an event: a clip from `pre_roll`
//!   before the first of them (the writer picks the IDR at or before that point);
//! - while an event runs, every matching result extends it; a frame later than the last match
//!   plus `post_roll` ends it (that frame is not in the clip). Two events closer than
//!   `post_roll` are therefore one;
//! - an event longer than `max_event_duration` is cut at the next IDR: that IDR ends one clip
//!   and starts the next, so the event goes on in a new file without a gap.

/// The timing rules, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Media before the first matching detection.
    pub pre_roll_ns: u64,
    /// Media after the last matching detection.
    pub post_roll_ns: u64,
    /// Longest clip; a longer event continues in the next clip.
    pub max_clip_ns: u64,
    /// Consecutive matching results that start an event (at least 1).
    pub min_frames: u32,
}

/// What the clip writer does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing changes.
    None,
    /// An event starts: open a clip at the IDR at or before `from_ns`, holding the pre-roll.
    Start {
        /// `first_ns` minus the pre-roll (0 at the clock's start).
        from_ns: u64,
        /// The first matching detection of the run that started the event.
        first_ns: u64,
    },
    /// The event is over: close the clip before the frame just given.
    End,
    /// The clip is long enough: close it before this IDR, and open the next one with it.
    Cut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No event; `run` matching results in a row so far, the first at `run_first`.
    Idle { run: u32, run_first: u64 },
    /// An event: last match at `last_match`; the current clip's first frame at `clip_start`
    /// (none until the writer has opened it).
    Active {
        last_match: u64,
        clip_start: Option<u64>,
    },
}

/// The decisions of events mode.
#[derive(Debug, Clone)]
pub struct Machine {
    timing: Timing,
    state: State,
    /// Where the last event ended: older results (late, or from before) start nothing.
    ended_at: Option<u64>,
}

impl Machine {
    /// Idle, with `timing`.
    pub fn new(timing: Timing) -> Self {
        Self {
            timing,
            state: State::Idle {
                run: 0,
                run_first: 0,
            },
            ended_at: None,
        }
    }

    /// Whether an event is running.
    pub fn active(&self) -> bool {
        matches!(self.state, State::Active { .. })
    }

    /// Forgets everything (the camera restarted: its clock starts over).
    pub fn reset(&mut self) {
        *self = Self::new(self.timing);
    }

    /// A detection result for the frame captured at `ts_ns`: `matched` when it holds a wanted
    /// class at or above the confidence threshold.
    pub fn detection(&mut self, ts_ns: u64, matched: bool) -> Action {
        if self.ended_at.is_some_and(|end| ts_ns < end) {
            return Action::None;
        }
        match &mut self.state {
            State::Idle { run, run_first } => {
                if !matched {
                    *run = 0;
                    return Action::None;
                }
                if *run == 0 {
                    *run_first = ts_ns;
                }
                *run += 1;
                if *run < self.timing.min_frames.max(1) {
                    return Action::None;
                }
                let first_ns = *run_first;
                self.state = State::Active {
                    last_match: ts_ns,
                    clip_start: None,
                };
                Action::Start {
                    from_ns: first_ns.saturating_sub(self.timing.pre_roll_ns),
                    first_ns,
                }
            }
            State::Active { last_match, .. } => {
                if matched {
                    *last_match = (*last_match).max(ts_ns);
                }
                Action::None
            }
        }
    }

    /// The writer opened a clip whose first frame was captured at `ts_ns`.
    pub fn clip_started(&mut self, ts_ns: u64) {
        if let State::Active { clip_start, .. } = &mut self.state {
            *clip_start = Some(ts_ns);
        }
    }

    /// A frame captured at `ts_ns` (an IDR or not).
    pub fn frame(&mut self, ts_ns: u64, idr: bool) -> Action {
        let State::Active {
            last_match,
            clip_start,
        } = &mut self.state
        else {
            return Action::None;
        };
        if ts_ns > last_match.saturating_add(self.timing.post_roll_ns) {
            self.state = State::Idle {
                run: 0,
                run_first: 0,
            };
            self.ended_at = Some(ts_ns);
            return Action::End;
        }
        if idr
            && let Some(start) = clip_start
            && ts_ns.saturating_sub(*start) >= self.timing.max_clip_ns
        {
            *clip_start = Some(ts_ns);
            return Action::Cut;
        }
        Action::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    #[derive(Debug, Clone, Copy)]
    enum In {
        /// A detection result: time (ms), matched.
        D(u64, bool),
        /// A frame: time (ms), IDR.
        F(u64, bool),
        /// The writer opened the clip at this time (ms).
        Opened(u64),
    }
    use In::*;

    fn timing() -> Timing {
        Timing {
            pre_roll_ns: 2 * S,
            post_roll_ns: 3 * S,
            max_clip_ns: 10 * S,
            min_frames: 2,
        }
    }

    /// Runs `inputs` and returns the actions that were not `None`, with the input's index.
    fn run(timing: Timing, inputs: &[In]) -> Vec<(usize, Action)> {
        let mut m = Machine::new(timing);
        let mut out = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let a = match *input {
                D(t, matched) => m.detection(t * MS, matched),
                F(t, idr) => m.frame(t * MS, idr),
                Opened(t) => {
                    m.clip_started(t * MS);
                    Action::None
                }
            };
            if a != Action::None {
                out.push((i, a));
            }
        }
        out
    }

    fn start(first_ms: u64, pre_ms: u64) -> Action {
        Action::Start {
            from_ns: (first_ms - pre_ms) * MS,
            first_ns: first_ms * MS,
        }
    }

    /// A case: its name, the timing, the inputs, the actions expected (input index, action).
    type Case<'a> = (&'a str, Timing, &'a [In], &'a [(usize, Action)]);

    #[test]
    fn decisions_table() {
        let cases: &[Case<'_>] = &[
            (
                "one match is not enough with min_frames 2",
                timing(),
                &[D(5000, true), D(5100, false), D(5200, true), F(9000, false)],
                &[],
            ),
            (
                "two in a row start at the first, minus the pre-roll",
                timing(),
                &[D(5000, true), D(5100, true)],
                &[(1, start(5000, 2000))],
            ),
            (
                "min_frames 1 starts at once; the pre-roll stops at the clock's start",
                Timing {
                    min_frames: 1,
                    ..timing()
                },
                &[D(500, true)],
                &[(
                    0,
                    Action::Start {
                        from_ns: 0,
                        first_ns: 500 * MS,
                    },
                )],
            ),
            (
                "the event ends with the first frame after last match + post-roll",
                timing(),
                &[
                    D(5000, true),
                    D(5100, true),
                    Opened(3000),
                    F(8100, false),
                    F(8133, false),
                ],
                &[(1, start(5000, 2000)), (4, Action::End)],
            ),
            (
                "matches during the post-roll extend the event (events merge)",
                timing(),
                &[
                    D(5000, true),
                    D(5100, true),
                    Opened(3000),
                    D(7000, true),
                    F(8200, false),
                    D(9000, false),
                    F(10_000, false),
                    F(10_033, false),
                ],
                &[(1, start(5000, 2000)), (7, Action::End)],
            ),
            (
                "a non-matching result while active changes nothing",
                timing(),
                &[
                    D(5000, true),
                    D(5100, true),
                    D(5200, false),
                    F(8000, false),
                    F(8101, false),
                ],
                &[(1, start(5000, 2000)), (4, Action::End)],
            ),
            (
                "a long event is cut at the first IDR past max duration, and goes on",
                timing(),
                &[
                    D(5000, true),
                    D(5100, true),
                    Opened(3000),
                    D(12_000, true),
                    F(12_900, false),
                    F(13_000, true),
                    D(14_000, true),
                    F(16_000, true),
                    F(17_100, false),
                ],
                &[(1, start(5000, 2000)), (5, Action::Cut), (8, Action::End)],
            ),
            (
                "no cut before the clip is open",
                timing(),
                &[D(5000, true), D(5100, true), F(6000, true), D(7000, true)],
                &[(1, start(5000, 2000))],
            ),
            (
                "after an event, a late result from before its end starts nothing",
                timing(),
                &[
                    D(5000, true),
                    D(5100, true),
                    F(8101, false),
                    D(8000, true),
                    D(8050, true),
                    D(9000, true),
                    D(9100, true),
                ],
                &[
                    (1, start(5000, 2000)),
                    (2, Action::End),
                    (6, start(9000, 2000)),
                ],
            ),
            (
                "frames while idle change nothing",
                timing(),
                &[F(0, true), F(33, false), F(1000, true)],
                &[],
            ),
        ];
        for (name, timing, inputs, expected) in cases {
            assert_eq!(run(*timing, inputs), *expected, "{name}");
        }
    }

    #[test]
    fn reset_forgets_an_event() {
        let mut m = Machine::new(timing());
        m.detection(5 * S, true);
        assert!(matches!(
            m.detection(5 * S + 100 * MS, true),
            Action::Start { .. }
        ));
        assert!(m.active());
        m.reset();
        assert!(!m.active());
        assert_eq!(m.frame(100 * S, false), Action::None);
    }
}
