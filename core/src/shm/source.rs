//! The shared-memory source: turns the camera's frame ring into a stream of [`Frame`]s.
//!
//! It delivers every H.264 frame in write order, skipping (and counting) other formats, counting
//! frames lost when it falls more than a ring behind, and following the writer through restarts:
//! a segment unlinked and created again (new inode) or an index that goes backwards is a new
//! stream, mapped afresh without restarting anything.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use std::time::Duration;
//! use stackctl_core::shm::{ShmSource, SourceConfig};
//!
//! let mut source = ShmSource::new(SourceConfig::new("/pet_camera_stream"));
//! let stop = AtomicBool::new(false);
//! source.wait_for_segment(Some(Duration::from_secs(10)), &stop)?;
//! while let Some(frame) = source.next_frame(&stop)? {
//!     println!("frame {} ({} bytes)", frame.meta().frame_number, frame.data().len());
//! }
//! # Ok::<(), stackctl_core::shm::ShmError>(())
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::ShmError;
use super::guard::{DISCONTINUITY_WAIT, Previous, SlotRead, TornReadGuard, read_frame};
use super::late::LateWatch;
use super::pacer::{Pacer, PacerConfig};
use super::segment::{Segment, current_id};
use crate::frame::{Frame, FrameMeta};
use crate::layout::{FrameHeader, RING_SLOTS, slot_of};
use crate::warn::WarnLimiter;
use stackctl_media::clock::monotonic_ns;
use stackctl_media::h264::{ParamCache, analyse};

/// The longest the source keeps reading a replaced segment's last frames before it follows
/// the new writer anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// The shortest interval between identity checks, right after the mapped writer became
/// overdue (see [`Pacer::overdue`]). A restarted writer stops writing the old segment at once,
/// so it is noticed within a frame or two rather than within [`SourceConfig::identity_check`]:
/// a new writer that writes a few frames and then unlinks its segment (a camera restarted just
/// before it stops) would otherwise come and go unseen, its frames neither read nor counted.
/// The interval then grows with the silence (an eighth of it) back to `identity_check`, so a
/// stopped camera costs no more than a running one. A check is `shm_open`, `fstat`, `close`.
const OVERDUE_IDENTITY_CHECK: Duration = Duration::from_millis(5);

/// Before the pacer knows the writer's period, this much silence makes the writer overdue.
const SILENCE_BEFORE_PERIOD: Duration = Duration::from_millis(100);

/// Where a newly attached source starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartPosition {
    /// With the first frame written after attaching.
    #[default]
    Next,
    /// With the oldest frame still in the ring (up to 29 frames of history).
    Oldest,
}

/// Configuration of a [`ShmSource`].
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Segment name, e.g. `/pet_camera_stream`.
    pub name: String,
    /// The torn-read guard.
    pub guard: TornReadGuard,
    /// Wake-up pacing.
    pub pacer: PacerConfig,
    /// Where to start on the first attach (after a writer restart it always starts at the
    /// beginning of the new stream).
    pub start: StartPosition,
    /// How often to check whether the name now points at a new segment while the writer keeps
    /// writing (once it misses two frames, the check runs every few milliseconds).
    pub identity_check: Duration,
}

impl SourceConfig {
    /// Defaults for segment `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            guard: TornReadGuard::default(),
            pacer: PacerConfig::default(),
            start: StartPosition::Next,
            identity_check: Duration::from_millis(250),
        }
    }
}

/// Counters of a source, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// H.264 frames delivered.
    pub frames: AtomicU64,
    /// Bytes of those frames.
    pub bytes: AtomicU64,
    /// Frames of other formats skipped.
    pub other_format: AtomicU64,
    /// Frames overwritten before they could be read (the reader fell a ring behind).
    pub lost: AtomicU64,
    /// Frames dropped as malformed (bad size, no start code, truncated NAL, ...).
    pub malformed: AtomicU64,
    /// Copies thrown away because the writer was still writing the slot.
    pub torn_retries: AtomicU64,
    /// Writer restarts followed.
    pub restarts: AtomicU64,
    /// Frames delivered before the writer had moved on that turned out, once it had, to differ
    /// from the slot: tears the guard's window missed (see [`crate::shm::guard`]). Should stay
    /// 0; if not, use the `Settled` guard.
    pub late_tears: AtomicU64,
    /// `CLOCK_MONOTONIC` nanoseconds of the last delivered frame, 0 before the first.
    pub last_frame_ns: AtomicU64,
    /// True once an SPS and a PPS have been seen (a decoder can start at the next IDR).
    pub has_params: std::sync::atomic::AtomicBool,
    /// Windows of two seconds (or more) in which the camera delivered fewer than 85 % of the
    /// frames its `frame_interval_ms` announces (see [`crate::shm::late`]).
    pub late_windows: AtomicU64,
    /// The rate measured over the last window judged late, in thousandths of a frame per
    /// second (0 before any).
    pub late_fps_milli: AtomicU64,
}

/// Reads frames from one named segment. Not thread-safe by design: one owner, one thread.
#[derive(Debug)]
pub struct ShmSource {
    cfg: SourceConfig,
    seg: Option<Segment>,
    /// Writer counter of the next frame to deliver.
    next: u32,
    /// The last index value seen, to notice arrivals.
    seen: u32,
    /// Camera timestamp of the frame before `next` (0 when unknown): a slot whose header is not
    /// later than this has not been written yet.
    last_ts: u64,
    /// Camera frame number of the frame before `next`, when known.
    last_number: Option<u64>,
    /// Since when the newest slot (by its counter) has been waiting to be believed.
    waiting_since: Option<(u32, Instant)>,
    pacer: Pacer,
    params: ParamCache,
    generation: u32,
    stats: Arc<SourceStats>,
    /// When the name's identity was last checked, since `epoch`.
    last_identity_check: Duration,
    /// True once a look for the segment found nothing: a segment that appears later is a new
    /// stream, read from its first frame (its writer may have written one or two already).
    waited: bool,
    gone_logged: bool,
    /// Since when the name belongs to a new writer: it is followed once the old segment's last
    /// frames are read (a restart right after a write would otherwise lose them), or after
    /// [`DRAIN_LIMIT`] if they cannot be.
    replaced: Option<Instant>,
    warn: WarnLimiter,
    epoch: Instant,
    /// The last frame delivered while the writer was still on it: checked again once the
    /// writer has moved on.
    audit: Option<Arc<Frame>>,
    late: LateWatch,
    /// Late windows are logged at most this often.
    late_warn: WarnLimiter,
}

impl ShmSource {
    /// A source that has not attached yet.
    pub fn new(cfg: SourceConfig) -> Self {
        let pacer = Pacer::new(cfg.pacer);
        Self {
            cfg,
            seg: None,
            next: 0,
            seen: 0,
            last_ts: 0,
            last_number: None,
            waiting_since: None,
            pacer,
            params: ParamCache::default(),
            generation: 0,
            stats: Arc::default(),
            last_identity_check: Duration::ZERO,
            waited: false,
            gone_logged: false,
            replaced: None,
            warn: WarnLimiter::new(Duration::from_secs(5)),
            epoch: Instant::now(),
            audit: None,
            late: LateWatch::default(),
            late_warn: WarnLimiter::new(Duration::from_secs(30)),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Arc<SourceStats> {
        self.stats.clone()
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// True once a segment is mapped.
    pub fn is_attached(&self) -> bool {
        self.seg.is_some()
    }

    /// Waits until the segment exists and maps it. `None` waits forever (or until `stop`).
    ///
    /// A segment of size 0 is a writer between `shm_open` and `ftruncate` and is waited for; any
    /// other wrong size is refused at once.
    pub fn wait_for_segment(
        &mut self,
        timeout: Option<Duration>,
        stop: &AtomicBool,
    ) -> Result<(), ShmError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        while !stop.load(Ordering::Relaxed) {
            if self.try_attach()? {
                return Ok(());
            }
            if let Some(limit) = timeout
                && start.elapsed() >= limit
            {
                return Err(ShmError::Timeout {
                    name: self.cfg.name.clone(),
                    waited: start.elapsed(),
                });
            }
            std::thread::park_timeout(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Maps the segment if it exists with the right size. `Ok(false)`: not there (yet).
    fn try_attach(&mut self) -> Result<bool, ShmError> {
        match Segment::open(&self.cfg.name) {
            Ok(seg) => {
                self.attach(seg, self.seg.is_some());
                Ok(true)
            }
            Err(ShmError::NotFound(_)) | Err(ShmError::WrongSize { actual: 0, .. }) => {
                self.waited = true;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn attach(&mut self, seg: Segment, restarted: bool) {
        let w = seg.write_index();
        if restarted {
            self.begin_new_stream(w);
        } else if self.waited {
            // Waited for it: everything its writer wrote is new to us, down to the first frame
            // (the IDR a decoder needs), which the writer may have published between our last
            // look and this one.
            self.start_of_stream(w);
        } else {
            match self.cfg.start {
                StartPosition::Next => {
                    self.next = w;
                    // The newest slot may be mid-copy and show an older timestamp: that only
                    // lowers the bar, and frame `w` is newer than both.
                    self.last_ts = match w {
                        0 => 0,
                        _ => seg
                            .read_header(slot_of(w.wrapping_sub(1)))
                            .timestamp
                            .as_nanos(),
                    };
                }
                StartPosition::Oldest => {
                    self.next = w.wrapping_sub(w.min(RING_SLOTS as u32 - 1));
                    self.last_ts = 0;
                    self.last_number = None;
                }
            }
        }
        self.seen = w;
        self.audit = None;
        tracing::info!(segment = %self.cfg.name, write_index = w, restarted, "attached to shared memory");
        self.seg = Some(seg);
        self.last_identity_check = self.epoch.elapsed();
        self.gone_logged = false;
        self.replaced = None;
    }

    /// A new writer incarnation: everything it wrote is new to us.
    fn begin_new_stream(&mut self, w: u32) {
        self.generation = self.generation.wrapping_add(1);
        self.stats.restarts.fetch_add(1, Ordering::Relaxed);
        self.start_of_stream(w);
        self.pacer.reset();
    }

    /// Reads a stream whose writer counter is `w` from its first frame, or from the oldest one
    /// still in the ring when the writer is more than a ring ahead (the others are lost).
    fn start_of_stream(&mut self, w: u32) {
        let keep = RING_SLOTS as u32 - 1;
        if w > keep {
            self.stats
                .lost
                .fetch_add(u64::from(w - keep), Ordering::Relaxed);
        }
        self.next = w.wrapping_sub(w.min(keep));
        self.last_ts = 0;
        self.last_number = None;
        self.audit = None;
    }

    /// Blocks until the next H.264 frame. `Ok(None)` once `stop` is set. Waits for the segment
    /// first if it is not attached (forever; use [`ShmSource::wait_for_segment`] for a limit).
    ///
    /// To stop a thread blocked here, set `stop` and unpark the thread.
    pub fn next_frame(&mut self, stop: &AtomicBool) -> Result<Option<Arc<Frame>>, ShmError> {
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            if self.seg.is_none() {
                self.wait_for_segment(None, stop)?;
                continue;
            }
            let now = self.epoch.elapsed();
            self.check_identity(now)?;
            let Some(w) = self.seg.as_ref().map(Segment::write_index) else {
                continue;
            };
            if w != self.seen {
                self.seen = w;
                self.pacer.on_arrival(now);
                self.audit_early_frame(w);
            }
            let pending = w.wrapping_sub(self.next);
            if let Some(since) = self.replaced
                && (pending == 0 || since.elapsed() > DRAIN_LIMIT)
            {
                tracing::info!(segment = %self.cfg.name, "segment replaced: following the new writer");
                if !self.try_attach()? {
                    // Gone again already: back to watching the name.
                    self.replaced = None;
                }
                continue;
            }
            if pending == 0 {
                std::thread::park_timeout(self.pacer.next_sleep(now));
                continue;
            }
            if pending > u32::MAX / 2 {
                tracing::info!(segment = %self.cfg.name, write_index = w, "write index went back: the writer restarted");
                self.begin_new_stream(w);
                continue;
            }
            if pending > RING_SLOTS as u32 - 1 {
                let lost = pending - (RING_SLOTS as u32 - 1);
                self.stats
                    .lost
                    .fetch_add(u64::from(lost), Ordering::Relaxed);
                self.warn.warn("lost", |n| tracing::warn!(segment = %self.cfg.name, lost, suppressed = n, "fell more than a ring behind the writer"));
                self.next = w.wrapping_sub(RING_SLOTS as u32 - 1);
                // Raise the freshness bar past the frames we skipped, or a stale slot could pass
                // for a new one.
                if let Some(seg) = self.seg.as_ref() {
                    let before = seg.read_header(slot_of(self.next.wrapping_sub(1)));
                    self.last_ts = self.last_ts.max(before.timestamp.as_nanos());
                    self.last_number = Some(before.frame_number);
                }
            }
            let early = w.wrapping_sub(self.next) < 2;
            if let Some(frame) = self.read_next(stop) {
                let frame = Arc::new(frame);
                if early && self.cfg.guard != TornReadGuard::Off {
                    self.audit = Some(frame.clone());
                }
                return Ok(Some(frame));
            }
        }
    }

    /// Reads the frame at `self.next`; `None` when there is nothing to deliver (yet).
    fn read_next(&mut self, stop: &AtomicBool) -> Option<Frame> {
        let seg = self.seg.as_ref()?;
        let c = self.next;
        let mut torn = 0;
        let waited_long = match self.waiting_since {
            Some((counter, since)) if counter == c => since.elapsed() >= DISCONTINUITY_WAIT,
            _ => {
                self.waiting_since = Some((c, Instant::now()));
                false
            }
        };
        let previous = Previous {
            timestamp_ns: self.last_ts,
            frame_number: self.last_number,
            waited_long,
        };
        let read = read_frame(seg, c, previous, self.cfg.guard, &mut torn, &|| {
            stop.load(Ordering::Relaxed)
        });
        self.stats.torn_retries.fetch_add(torn, Ordering::Relaxed);
        match read {
            SlotRead::Frame(header, data) => {
                self.advance(c, &header);
                self.build_frame(c, header, data)
            }
            SlotRead::OtherFormat(header) => {
                self.advance(c, &header);
                self.stats.other_format.fetch_add(1, Ordering::Relaxed);
                None
            }
            SlotRead::BadSize(header) => {
                self.advance(c, &header);
                self.malformed(
                    c,
                    &format!("data_size {} is 0 or larger than a slot", header.data_size),
                );
                None
            }
            SlotRead::Overwritten => {
                self.next = c.wrapping_add(1);
                self.stats.lost.fetch_add(1, Ordering::Relaxed);
                None
            }
            SlotRead::NotYet | SlotRead::Torn => {
                std::thread::park_timeout(self.cfg.pacer.fine_poll);
                None
            }
        }
    }

    /// Once the writer has moved past the frame in `audit`, checks that what was delivered is
    /// what the slot holds now that it is surely complete.
    fn audit_early_frame(&mut self, w: u32) {
        let Some(frame) = self.audit.as_ref() else {
            return;
        };
        let c = frame.meta().sequence;
        let ahead = w.wrapping_sub(c);
        if ahead < 2 {
            return;
        }
        let Some(frame) = self.audit.take() else {
            return;
        };
        let Some(seg) = self.seg.as_ref() else { return };
        // Past a whole ring the slot has been reused: nothing left to compare with.
        if ahead > RING_SLOTS as u32 {
            return;
        }
        let header = seg.read_header(slot_of(c));
        let intact = header.timestamp.as_nanos() == frame.meta().timestamp_ns
            && header.frame_number == frame.meta().frame_number
            && header.data_size == frame.data().len() as u64
            && seg.data_matches(slot_of(c), frame.data());
        if !intact {
            self.stats.late_tears.fetch_add(1, Ordering::Relaxed);
            let name = &self.cfg.name;
            self.warn.warn("late-tear", |n| {
                tracing::warn!(segment = %name, sequence = c, suppressed = n,
                    "a frame delivered before the writer finished it was torn: the writer stalls \
                     mid-copy longer than the guard's window; consider the settled guard")
            });
        }
    }

    /// Moves past frame `c`, whose header was `header`.
    fn advance(&mut self, c: u32, header: &FrameHeader) {
        self.next = c.wrapping_add(1);
        self.last_ts = self.last_ts.max(header.timestamp.as_nanos());
        self.last_number = Some(header.frame_number);
    }

    fn build_frame(&mut self, sequence: u32, header: FrameHeader, data: Vec<u8>) -> Option<Frame> {
        let info = match analyse(&data) {
            Ok(info) => info,
            Err(e) => {
                self.malformed(sequence, &e.to_string());
                return None;
            }
        };
        if let Err(e) = self.params.update(&data, &info) {
            self.warn.warn("sps", |n| tracing::warn!(segment = %self.cfg.name, error = %e, suppressed = n, "unusable parameter set"));
        }
        let received_ns = monotonic_ns();
        let meta = FrameMeta {
            frame_number: header.frame_number,
            sequence,
            timestamp_ns: header.timestamp.as_nanos(),
            received_ns,
            camera_id: header.camera_id,
            width: u32::try_from(header.width).unwrap_or(0),
            height: u32::try_from(header.height).unwrap_or(0),
            generation: self.generation,
        };
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.stats
            .last_frame_ns
            .store(received_ns, Ordering::Relaxed);
        let params = self.params.current();
        self.stats
            .has_params
            .store(params.is_some(), Ordering::Relaxed);
        self.watch_rate(meta.timestamp_ns);
        Some(Frame::new(meta, data.into_boxed_slice(), info, params))
    }

    /// Feeds the late-camera watch and warns (at most every 30 s) about a late window.
    fn watch_rate(&mut self, timestamp_ns: u64) {
        let interval = self.seg.as_ref().map_or(0, Segment::frame_interval_ms);
        let Some(late) = self.late.on_frame(timestamp_ns, interval) else {
            return;
        };
        self.stats.late_windows.fetch_add(1, Ordering::Relaxed);
        self.stats
            .late_fps_milli
            .store((late.measured_fps * 1000.0) as u64, Ordering::Relaxed);
        let name = &self.cfg.name;
        self.late_warn.warn("late", |n| {
            tracing::warn!(segment = %name, measured_fps = format!("{:.1}", late.measured_fps),
                announced_fps = late.announced_fps, frame_interval_ms = late.frame_interval_ms,
                suppressed = n,
                "the camera runs late: {name} delivers {:.1} frames per second, below the {} its \
                 frame_interval_ms ({}) announces; every viewer and recording lags with it (an \
                 overloaded machine, or camsim built without nasm: see the README)",
                late.measured_fps, late.announced_fps, late.frame_interval_ms)
        });
    }

    fn malformed(&mut self, sequence: u32, why: &str) {
        self.stats.malformed.fetch_add(1, Ordering::Relaxed);
        let name = &self.cfg.name;
        self.warn.warn("malformed", |n| {
            tracing::warn!(segment = %name, sequence, suppressed = n, "dropped a malformed frame: {why}")
        });
    }

    /// Notices a writer that unlinked the name and created a new segment under it: every
    /// `identity_check` while the writer writes, every [`OVERDUE_IDENTITY_CHECK`] once it is
    /// overdue, growing with the silence. `now` is time since `epoch`.
    fn check_identity(&mut self, now: Duration) -> Result<(), ShmError> {
        let every = if self.pacer.overdue(now, SILENCE_BEFORE_PERIOD) {
            let silence = now.saturating_sub(self.pacer.last_arrival().unwrap_or_default());
            (silence / 8).clamp(
                OVERDUE_IDENTITY_CHECK.min(self.cfg.identity_check),
                self.cfg.identity_check,
            )
        } else {
            self.cfg.identity_check
        };
        if self.replaced.is_some() || now.saturating_sub(self.last_identity_check) < every {
            return Ok(());
        }
        self.last_identity_check = now;
        let mapped = self.seg.as_ref().map(Segment::id);
        match current_id(&self.cfg.name)? {
            None => {
                if !self.gone_logged {
                    tracing::info!(segment = %self.cfg.name, "segment removed; waiting for the writer to create it again");
                    self.gone_logged = true;
                }
            }
            Some(id) if Some(id) != mapped && id.size != 0 => {
                // Switched to once the old segment is drained (in `next_frame`).
                self.replaced = Some(Instant::now());
            }
            Some(_) => {}
        }
        Ok(())
    }
}
