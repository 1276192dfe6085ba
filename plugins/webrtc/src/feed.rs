//! One viewer's feed: which frames it gets, in which order, and when.
//!
//! A viewer that connects starts with the frames since the last IDR (the GOP cache), so its
//! first frame is an IDR and it shows a picture at once, and then takes every new frame, in
//! order: joining loses nothing. Until it has caught up, frames wait in its backlog and go out
//! as a [`Pacer`] allows, at a few times the stream's rate, so that a GOP does not land in the
//! viewer's socket buffer all at once. Once a frame goes out less than [`FeedConfig::live_age`]
//! after the sink received it and nothing is left waiting, the viewer is **live**: from then
//! on each frame goes out the moment it arrives.
//!
//! What it skips is decided by the workspace's one IDR gate ([`IdrGate`]): nothing before its
//! first IDR (not counted), and after a frame it could not take (its backlog full:
//! it truly cannot keep up) everything up to the next IDR, counted as dropped.
//!
//! Pure: time is passed in; the worker does the sending.
//!
//! ```text
//!   new ──start(GOP)──► catching up ──(backlog empty, last frame < live_age old)──► live
//!                        (paced)                                               (at once)
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stackctl_media::gate::{Admit, IdrGate};

use crate::frame::Packetized;
use crate::pace::Pacer;

/// How a feed paces and when it gives up on a viewer.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// Frames that may wait beyond the GOP it started with before it skips to the next IDR.
    pub max_backlog: usize,
    /// A frame sent this soon after the sink received it, with nothing left waiting, makes the
    /// viewer live.
    pub live_age: Duration,
    /// The catch-up should take about this long: the pace is at least the backlog's bytes over
    /// this time, plus the stream's own rate.
    pub catch_up: Duration,
    /// The pace is at least this many times the stream's rate.
    pub rate_factor: f64,
    /// And at least this many bytes a second.
    pub min_rate: f64,
    /// Bytes that may go out back to back (besides a frame larger than that).
    pub burst: f64,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            max_backlog: 90,
            live_age: Duration::from_millis(50),
            catch_up: Duration::from_millis(400),
            rate_factor: 3.0,
            // 2 Mbit/s: a small stream's GOP still goes in a blink.
            min_rate: 250_000.0,
            burst: 64.0 * 1024.0,
        }
    }
}

/// What became of an offered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Waiting to be sent (or sent at once: see [`Feed::next`]).
    Queued,
    /// Skipped by the gate; `counted` when it is a drop (the viewer had joined).
    Skipped {
        /// A drop to count.
        counted: bool,
    },
    /// Not taken: the backlog was full. The viewer skips to the next IDR; counted.
    Overflow,
    /// The feed has not started (the viewer is not connected yet).
    NotStarted,
}

/// What the viewer should do now.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send this frame, then report [`Feed::sent`].
    Send(Arc<Packetized>),
    /// Nothing may go before this instant (pacing).
    Wait(Instant),
    /// Nothing to send.
    Idle,
}

/// One viewer's feed. See the [module docs](self).
#[derive(Debug)]
pub struct Feed {
    config: FeedConfig,
    gate: IdrGate,
    backlog: VecDeque<Arc<Packetized>>,
    limit: usize,
    pacer: Option<Pacer>,
    live: bool,
    first_sent: Option<Instant>,
    live_at: Option<Instant>,
    dropped: u64,
}

impl Feed {
    /// A feed that has not started: frames offered before [`Feed::start`] are ignored.
    pub fn new(config: FeedConfig) -> Self {
        Self {
            limit: config.max_backlog,
            config,
            gate: IdrGate::joining(),
            backlog: VecDeque::new(),
            pacer: None,
            live: false,
            first_sent: None,
            live_at: None,
            dropped: 0,
        }
    }

    /// Starts feeding at `now` with `gop` (the frames since the last IDR, possibly none), for a
    /// stream of `stream_rate` bytes a second. Does nothing if already started.
    pub fn start(&mut self, now: Instant, gop: &[Arc<Packetized>], stream_rate: f64) {
        if self.pacer.is_some() {
            return;
        }
        let c = &self.config;
        let backlog_bytes: usize = gop.iter().map(|f| f.bytes).sum();
        let rate = (c.rate_factor * stream_rate)
            .max(backlog_bytes as f64 / c.catch_up.as_secs_f64() + stream_rate)
            .max(c.min_rate);
        self.pacer = Some(Pacer::new(now, rate, c.burst));
        self.limit = gop.len() + c.max_backlog;
        for frame in gop {
            self.offer(Arc::clone(frame));
        }
    }

    /// Whether it has started.
    pub fn started(&self) -> bool {
        self.pacer.is_some()
    }

    /// Offers the next frame of the stream.
    pub fn offer(&mut self, frame: Arc<Packetized>) -> Offered {
        if self.pacer.is_none() {
            return Offered::NotStarted;
        }
        match self.gate.offer(frame.au.idr) {
            Admit::Skip { counted } => {
                self.dropped += u64::from(counted);
                Offered::Skipped { counted }
            }
            Admit::Deliver if self.backlog.len() >= self.limit => {
                let rejected = self.gate.rejected();
                self.dropped += u64::from(rejected.counted);
                Offered::Overflow
            }
            Admit::Deliver => {
                self.backlog.push_back(frame);
                self.gate.delivered();
                Offered::Queued
            }
        }
    }

    /// Frames never reached this viewer (they were lost on the way to its worker): it skips to
    /// the next IDR.
    pub fn lost(&mut self) {
        if self.pacer.is_some() {
            self.gate.rejected();
        }
    }

    /// What to do at `now`: a live viewer sends at once, one catching up as its pacer allows.
    pub fn next(&mut self, now: Instant) -> Step {
        if self.backlog.is_empty() {
            return Step::Idle;
        }
        if !self.live
            && let Some(at) = self.pacer.as_mut().and_then(|p| p.ready_at(now))
        {
            return Step::Wait(at);
        }
        match self.backlog.pop_front() {
            Some(frame) => Step::Send(frame),
            None => Step::Idle,
        }
    }

    /// `frame` (from [`Step::Send`]) went out at `now`.
    pub fn sent(&mut self, now: Instant, frame: &Packetized) {
        if let Some(pacer) = &mut self.pacer {
            pacer.spend(now, frame.bytes);
        }
        self.first_sent.get_or_insert(now);
        if !self.live
            && self.backlog.is_empty()
            && now.saturating_duration_since(frame.received) < self.config.live_age
        {
            self.live = true;
            self.live_at = Some(now);
        }
    }

    /// Whether it is live (caught up).
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// When its first frame went out.
    pub fn first_sent(&self) -> Option<Instant> {
        self.first_sent
    }

    /// From its first frame to live, once live.
    pub fn catch_up_time(&self) -> Option<Duration> {
        Some(self.live_at?.saturating_duration_since(self.first_sent?))
    }

    /// Frames it dropped (skipped after joining).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Frames waiting.
    pub fn backlog(&self) -> usize {
        self.backlog.len()
    }

    /// The catch-up pace, bytes a second (0 before start).
    pub fn rate(&self) -> f64 {
        self.pacer.as_ref().map_or(0.0, Pacer::rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(seq: u64, idr: bool, bytes: usize, received: Instant) -> Arc<Packetized> {
        Arc::new(Packetized::from_payloads(
            seq,
            seq * 33_333_333,
            received,
            idr,
            vec![Bytes::from(vec![0u8; bytes])],
        ))
    }

    /// Sends everything the feed allows until `until`, as a worker would (waking when told);
    /// returns the sequence numbers and send times.
    fn drain(feed: &mut Feed, now: &mut Instant, until: Instant) -> Vec<(u64, Instant)> {
        let mut out = Vec::new();
        while *now <= until {
            match feed.next(*now) {
                Step::Send(f) => {
                    feed.sent(*now, &f);
                    out.push((f.seq, *now));
                }
                Step::Wait(at) => *now = at.min(until + Duration::from_nanos(1)),
                Step::Idle => break,
            }
        }
        out
    }

    #[test]
    fn a_joiner_gets_the_gop_then_every_frame_in_order_and_goes_live() {
        // 30 fps, 1 s GOP, 4 kB P-frames and a 40 kB IDR: 156 kB a second.
        let t0 = Instant::now();
        let fps = Duration::from_nanos(33_333_333);
        let at = |n: u64| t0 + fps * n as u32;
        let mk = |n: u64| {
            let idr = n.is_multiple_of(30);
            frame(n, idr, if idr { 40_000 } else { 4_000 }, at(n))
        };
        // It connects 0.9 s into a GOP: 28 frames cached.
        let gop: Vec<_> = (0..28).map(mk).collect();
        let mut feed = Feed::new(FeedConfig::default());
        assert_eq!(feed.offer(mk(27)), Offered::NotStarted);
        let mut now = at(27) + Duration::from_millis(5);
        feed.start(now, &gop, 156_000.0);
        let mut sent = drain(&mut feed, &mut now, at(28));
        for n in 28..60 {
            now = now.max(at(n));
            assert_eq!(feed.offer(mk(n)), Offered::Queued, "frame {n}");
            sent.extend(drain(&mut feed, &mut now, at(n + 1)));
        }
        let seqs: Vec<u64> = sent.iter().map(|s| s.0).collect();
        assert_eq!(seqs, (0..60).collect::<Vec<_>>(), "all of them, in order");
        assert!(feed.is_live());
        let caught_up = feed.catch_up_time().unwrap();
        assert!(caught_up < Duration::from_millis(600), "{caught_up:?}");
        // Paced: the GOP's 148 kB did not all leave at the first instant.
        let first = sent[0].1;
        let burst: usize = sent.iter().filter(|s| s.1 == first).count();
        assert!(burst < 28, "{burst} frames at once");
        // Live: every frame after that left the instant it came.
        let live_at = first + caught_up;
        for &(seq, when) in sent.iter().filter(|s| s.1 > live_at) {
            let waited = when.saturating_duration_since(at(seq));
            assert!(
                waited < Duration::from_millis(1),
                "frame {seq} waited {waited:?}"
            );
        }
        assert_eq!(feed.dropped(), 0);
    }

    #[test]
    fn without_a_gop_it_starts_at_the_next_idr_and_is_live_at_once() {
        let t0 = Instant::now();
        let mut feed = Feed::new(FeedConfig::default());
        feed.start(t0, &[], 100_000.0);
        assert_eq!(
            feed.offer(frame(1, false, 100, t0)),
            Offered::Skipped { counted: false }
        );
        assert_eq!(feed.offer(frame(2, true, 50_000, t0)), Offered::Queued);
        assert!(matches!(feed.next(t0), Step::Send(f) if f.seq == 2));
        feed.sent(t0, &frame(2, true, 50_000, t0));
        assert!(feed.is_live());
        assert_eq!(feed.catch_up_time(), Some(Duration::ZERO));
        // Live: no pacing even though the IDR put the bucket in debt.
        assert_eq!(feed.offer(frame(3, false, 100, t0)), Offered::Queued);
        assert!(matches!(feed.next(t0), Step::Send(f) if f.seq == 3));
        assert_eq!(feed.dropped(), 0);
    }

    #[test]
    fn a_viewer_that_cannot_keep_up_skips_to_the_next_idr_counted() {
        let t0 = Instant::now();
        let config = FeedConfig {
            max_backlog: 3,
            min_rate: 1.0,
            rate_factor: 0.0,
            catch_up: Duration::from_secs(1_000_000),
            burst: 1.0,
            ..FeedConfig::default()
        };
        let mut feed = Feed::new(config);
        feed.start(t0, &[frame(0, true, 10, t0)], 0.0);
        // Its pace is a byte a second: it sends the IDR, then can send nothing more.
        assert!(matches!(feed.next(t0), Step::Send(_)));
        feed.sent(t0, &frame(0, true, 10, t0 - Duration::from_secs(1)));
        assert!(matches!(feed.next(t0), Step::Idle));
        let offered: Vec<Offered> = (1..=8)
            .map(|n| feed.offer(frame(n, n == 7, 10, t0)))
            .collect();
        use Offered::*;
        assert_eq!(
            offered,
            [
                Queued,
                Queued,
                Queued,
                Queued, // 1 (GOP) + 3: full after frame 4
                Overflow,
                Skipped { counted: true },
                Overflow, // an IDR, but still no room
                Skipped { counted: true },
            ]
        );
        assert_eq!(feed.dropped(), 4);
        assert!(matches!(feed.next(t0), Step::Wait(_)));
        // Room again (its pace caught up): the next IDR gets it back on a decodable chain.
        let mut later = t0;
        let drained = drain(&mut feed, &mut later, t0 + Duration::from_secs(1000));
        assert_eq!(
            drained.iter().map(|s| s.0).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(
            feed.offer(frame(9, false, 10, later)),
            Skipped { counted: true }
        );
        assert_eq!(feed.offer(frame(10, true, 10, later)), Queued);
        assert_eq!(feed.offer(frame(11, false, 10, later)), Queued);
        assert_eq!(feed.dropped(), 5);
    }

    #[test]
    fn frames_lost_before_the_worker_make_it_skip_to_the_next_idr() {
        let t0 = Instant::now();
        let mut feed = Feed::new(FeedConfig::default());
        feed.lost(); // not started: nothing to skip
        feed.start(t0, &[frame(0, true, 10, t0)], 1_000.0);
        feed.lost();
        assert_eq!(
            feed.offer(frame(5, false, 10, t0)),
            Offered::Skipped { counted: true }
        );
        assert_eq!(feed.offer(frame(6, true, 10, t0)), Offered::Queued);
    }

    #[test]
    fn the_pace_covers_a_long_gop_within_the_catch_up_time() {
        let t0 = Instant::now();
        // Night mode: 2 fps, a 15 s GOP of 30 frames, 1.5 MB cached, 100 kB/s.
        let gop: Vec<_> = (0..30).map(|n| frame(n, n == 0, 50_000, t0)).collect();
        let mut feed = Feed::new(FeedConfig::default());
        let mut now = t0 + Duration::from_secs(15);
        feed.start(now, &gop, 100_000.0);
        let rate = feed.rate();
        assert!(rate >= 1_500_000.0 / 0.4, "{rate}");
        let sent = drain(&mut feed, &mut now, t0 + Duration::from_secs(20));
        assert_eq!(sent.len(), 30);
        let took = sent[29].1 - sent[0].1;
        assert!(took <= Duration::from_millis(400), "{took:?}");
    }
}
