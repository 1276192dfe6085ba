//! The detection source: turns the detector's segment into a stream of [`Detections`].
//!
//! It waits for the segment to appear (the detector is optional: without it, nothing happens),
//! reads each new result once and consistently ([`super::guard`]), validates it
//! ([`super::validate`]), and follows the detector through restarts: a segment unlinked and
//! created again (new inode, checked every `identity_check`) or a `version` that goes back (a
//! writer that reopened the segment and counts from 1 again) starts a new generation. A
//! segment that appears while it is watched for, or after a restart, is new: its current
//! result is delivered. One found already there at start is history: only the next result is.
//! A segment of the wrong size is refused with a warning and watched until it is replaced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Detections;
use super::guard::{Read, ReadGuard, read_consistent};
use super::picture::{Picture, PictureSize};
use super::segment::DetectionSegment;
use super::validate::validate;
use crate::shm::pacer::{Pacer, PacerConfig};
use crate::shm::segment::current_id;
use crate::shm::{SegmentId, ShmError};
use crate::warn::WarnLimiter;
use stackctl_media::clock::monotonic_ns;

/// The longest pause between two looks for a segment that does not exist.
const ABSENT_POLL: Duration = Duration::from_millis(100);

/// Configuration of a [`DetectionSource`].
#[derive(Debug, Clone)]
pub struct DetectionConfig {
    /// Segment name, e.g. `/pet_camera_detections`.
    pub name: String,
    /// The picture boxes must fit in.
    pub picture: Picture,
    /// The consistent read.
    pub guard: ReadGuard,
    /// When to look at `version`: results come about as periodically as frames.
    pub pacer: PacerConfig,
    /// How often to check whether the name now points at a new segment.
    pub identity_check: Duration,
}

impl DetectionConfig {
    /// Defaults for segment `name`: the picture unknown, polls every 0.5 ms from shortly before
    /// the next result is due to 6 ms after (a detector's results are less punctual than a
    /// camera's frames), at most 2 ms apart otherwise.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            picture: Picture::Unknown,
            guard: ReadGuard::default(),
            pacer: PacerConfig {
                fine_poll: Duration::from_micros(500),
                late_window: Duration::from_millis(6),
                max_poll: Duration::from_millis(2),
                ..PacerConfig::default()
            },
            identity_check: Duration::from_millis(250),
        }
    }

    /// The picture boxes must fit in.
    pub fn picture(mut self, picture: Picture) -> Self {
        self.picture = picture;
        self
    }
}

/// Counters of a detection source, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct DetectionStats {
    /// Results delivered.
    pub results: AtomicU64,
    /// Detections in those results.
    pub detections: AtomicU64,
    /// Results dropped as malformed (see [`super::validate`]).
    pub malformed: AtomicU64,
    /// Results overwritten before they could be read (`version` moved by more than one).
    pub missed: AtomicU64,
    /// Copies thrown away because the writer was at work.
    pub torn_retries: AtomicU64,
    /// Results given up because the writer never held still long enough.
    pub unstable: AtomicU64,
    /// Detector restarts followed.
    pub restarts: AtomicU64,
    /// Segments refused for their size.
    pub refused: AtomicU64,
    /// Results delivered that turned out, once the next one was read, to have been copied
    /// while the writer was already writing that next one (it carries their frame number and
    /// timestamp): the one tear the guard's window cannot see (see [`super::guard`]). Should
    /// stay 0.
    pub late_tears: AtomicU64,
    /// `CLOCK_MONOTONIC` nanoseconds when the last result was read, 0 before the first.
    pub last_result_ns: AtomicU64,
    /// True while a segment is mapped.
    pub attached: AtomicBool,
}

/// Reads results from one named segment. One owner, one thread.
#[derive(Debug)]
pub struct DetectionSource {
    cfg: DetectionConfig,
    seg: Option<DetectionSegment>,
    /// The version of the last result taken (or skipped as history).
    last: Option<u32>,
    /// Version, frame number and timestamp of the last result read, for the late-tear audit.
    previous: Option<(u32, u64, u64)>,
    /// A look found no segment: the next one attached is new.
    waited: bool,
    generation: u32,
    stats: Arc<DetectionStats>,
    pacer: Pacer,
    picture: PictureSize,
    last_identity_check: Instant,
    absent_pause: Duration,
    gone_logged: bool,
    refused: Option<SegmentId>,
    warn: WarnLimiter,
    epoch: Instant,
}

impl DetectionSource {
    /// A source that has not attached yet.
    pub fn new(cfg: DetectionConfig) -> Self {
        Self {
            pacer: Pacer::new(cfg.pacer),
            picture: PictureSize::new(cfg.picture.clone()),
            cfg,
            seg: None,
            last: None,
            previous: None,
            waited: false,
            generation: 0,
            stats: Arc::default(),
            last_identity_check: Instant::now(),
            absent_pause: Duration::from_millis(1),
            gone_logged: false,
            refused: None,
            warn: WarnLimiter::new(Duration::from_secs(10)),
            epoch: Instant::now(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Arc<DetectionStats> {
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

    /// Waits at most `max_wait` for the next valid result; `None` when none came in time or
    /// `stop` is set. Never fails: a missing or refused segment is waited for, malformed
    /// results are counted and skipped.
    pub fn poll(&mut self, stop: &AtomicBool, max_wait: Duration) -> Option<Arc<Detections>> {
        let deadline = Instant::now() + max_wait;
        loop {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let now = Instant::now();
            if self.seg.is_none() {
                if !self.try_attach() {
                    if now >= deadline {
                        return None;
                    }
                    park(self.absent_pause.min(deadline - now));
                    self.absent_pause = (self.absent_pause * 2).min(ABSENT_POLL);
                }
                continue;
            }
            self.check_identity(now);
            let Some(seg) = self.seg.as_ref() else {
                continue;
            };
            match read_consistent(seg, self.last, self.cfg.guard) {
                Read::Unchanged => {
                    if now >= deadline {
                        return None;
                    }
                    let sleep = self.pacer.next_sleep(self.epoch.elapsed());
                    park(sleep.min(deadline - now));
                }
                Read::Unstable { version, retries } => {
                    self.stats
                        .torn_retries
                        .fetch_add(u64::from(retries), Ordering::Relaxed);
                    self.stats.unstable.fetch_add(1, Ordering::Relaxed);
                    self.last = Some(version);
                    let name = &self.cfg.name;
                    self.warn.warn("unstable", |n| {
                        tracing::warn!(segment = %name, version, suppressed = n,
                            "the detector rewrote its result during every read: result skipped")
                    });
                }
                Read::Fresh {
                    record,
                    version,
                    retries,
                } => {
                    self.stats
                        .torn_retries
                        .fetch_add(u64::from(retries), Ordering::Relaxed);
                    self.pacer.on_arrival(self.epoch.elapsed());
                    self.account_version(version);
                    self.audit(version, &record);
                    let received_ns = monotonic_ns();
                    let picture = self.picture.get(Instant::now());
                    match validate(&record, version, picture, received_ns, self.generation) {
                        Ok(result) => {
                            self.stats.results.fetch_add(1, Ordering::Relaxed);
                            self.stats
                                .detections
                                .fetch_add(result.items.len() as u64, Ordering::Relaxed);
                            self.stats
                                .last_result_ns
                                .store(received_ns, Ordering::Relaxed);
                            return Some(Arc::new(result));
                        }
                        Err(why) => {
                            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                            let name = &self.cfg.name;
                            self.warn.warn("malformed", |n| {
                                tracing::warn!(segment = %name, version, suppressed = n,
                                    "dropped a malformed detection result: {why}")
                            });
                        }
                    }
                }
            }
        }
    }

    /// Counts results missed between the last version and `version`, or a restart in place.
    fn account_version(&mut self, version: u32) {
        if let Some(last) = self.last {
            let ahead = version.wrapping_sub(last);
            if ahead > u32::MAX / 2 {
                tracing::info!(segment = %self.cfg.name, version, last,
                    "detection version went back: the detector restarted");
                self.new_generation();
            } else if ahead > 1 {
                self.stats
                    .missed
                    .fetch_add(u64::from(ahead - 1), Ordering::Relaxed);
            }
        }
        self.last = Some(version);
    }

    /// A result read as `version - 1` whose frame number and timestamp are this one's was
    /// copied after the writer had begun this update (it writes those fields first).
    fn audit(&mut self, version: u32, record: &crate::layout::LatestDetectionResult) {
        let current = (version, record.frame_number, record.timestamp.as_nanos());
        if let Some((v, number, ts)) = self.previous.replace(current)
            && v.wrapping_add(1) == version
            && (number, ts) == (current.1, current.2)
        {
            self.stats.late_tears.fetch_add(1, Ordering::Relaxed);
            let name = &self.cfg.name;
            self.warn.warn("late-tear", |n| {
                tracing::warn!(segment = %name, version = v, suppressed = n,
                    "a detection result was read while the detector was already writing the next \
                     one: it may have mixed the two")
            });
        }
    }

    fn new_generation(&mut self) {
        self.previous = None;
        self.generation = self.generation.wrapping_add(1);
        self.stats.restarts.fetch_add(1, Ordering::Relaxed);
        self.pacer.reset();
    }

    /// Maps the segment if it is there with the right size; false otherwise.
    fn try_attach(&mut self) -> bool {
        match DetectionSegment::open(&self.cfg.name) {
            Ok(seg) => {
                let restarted = self.seg.is_some();
                self.attach(seg, restarted);
                true
            }
            Err(ShmError::NotFound(_)) | Err(ShmError::WrongDetectionSize { actual: 0, .. }) => {
                self.waited = true;
                false
            }
            Err(e) => {
                self.waited = true;
                let id = current_id(&self.cfg.name).ok().flatten();
                if id.is_some() && self.refused != id {
                    self.refused = id;
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(segment = %self.cfg.name, "{e}; waiting for a detector to replace it");
                }
                false
            }
        }
    }

    fn attach(&mut self, seg: DetectionSegment, restarted: bool) {
        let version = seg.version();
        if restarted {
            self.new_generation();
        }
        // New to us: deliver its current result. Otherwise that result is history.
        self.last = if restarted || self.waited {
            None
        } else {
            Some(version)
        };
        tracing::info!(segment = %self.cfg.name, version, restarted, "attached to the detector's segment");
        self.seg = Some(seg);
        self.stats.attached.store(true, Ordering::Relaxed);
        self.last_identity_check = Instant::now();
        self.absent_pause = Duration::from_millis(1);
        self.gone_logged = false;
        self.refused = None;
    }

    /// Notices a detector that unlinked the name and created a new segment under it.
    fn check_identity(&mut self, now: Instant) {
        if now.duration_since(self.last_identity_check) < self.cfg.identity_check {
            return;
        }
        self.last_identity_check = now;
        let mapped = self.seg.as_ref().map(DetectionSegment::id);
        match current_id(&self.cfg.name) {
            Ok(None) => {
                if !self.gone_logged {
                    tracing::info!(segment = %self.cfg.name, "detections segment removed; waiting for the detector to create it again");
                    self.gone_logged = true;
                }
            }
            Ok(Some(id)) if Some(id) != mapped && id.size != 0 => {
                // Its last result was read or is lost with it: follow the new one.
                self.try_attach();
            }
            Ok(Some(_)) | Err(_) => {}
        }
    }
}

/// Sleeps for `d`; the thread may be unparked early to stop.
fn park(d: Duration) {
    std::thread::park_timeout(d);
}
