//! Events mode: clips around detections.
//!
//! Every frame goes into the pre-roll [`Ring`] (retained, not copied). Detection results go to
//! the [`Machine`], which decides when a clip starts (the IDR at or before `pre_roll` before
//! the first of `min_frames` consecutive matching results), is cut (`max_event_duration`) and
//! ends (`post_roll` after the last match). A clip is a normal recording file named
//! `event_YYYYMMDD_HHMMSS[_N].mp4|h264`, written by the same [`FileWriter`] as the other modes
//! (so it is crash-safe the same way), with a JSON sidecar (`.json`, see [`sidecar`]) written
//! when it opens and again when it closes, and a JPEG thumbnail (`.jpg`, see [`thumb`]) of the
//! frame with the most confident detection.

pub mod http;
pub mod machine;
pub mod ring;
pub mod sidecar;
pub mod thumb;

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::{Config, Format, Fsync};
use crate::error::RecordError;
use crate::mp4::{TIMESCALE, ns_to_ticks};
use crate::names::{Kind, RecordingName, now, rfc3339};
use crate::status::Shared;
use crate::unit::AccessUnit;
use crate::writer::FileWriter;

pub use machine::{Action, Machine, Timing};
pub use ring::Ring;
pub use sidecar::{ClipStats, Sidecar};

/// Media the ring holds beyond the pre-roll: a detection reaches the recorder after its frame
/// (the detector's latency, and `min_frames` results), so the clip's start lies further back
/// than `pre_roll` from the newest frame.
pub const RING_SLACK: Duration = Duration::from_secs(2);

/// One detection, as the recorder uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Capture time of the frame it was found in (CLOCK_MONOTONIC, ns: the frames' clock).
    pub ts_ns: u64,
    /// Class name, e.g. `cat`.
    pub class: String,
    /// Confidence, 0 to 1.
    pub confidence: f32,
    /// Box in the picture's pixels: x, y, width, height.
    pub bbox: [i32; 4],
}

/// One detection result: everything found in one frame (possibly nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Capture time of the frame analysed.
    pub ts_ns: u64,
    /// Its detections.
    pub hits: Vec<Hit>,
}

/// Which detections count.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Wanted classes; empty: any.
    pub classes: Vec<String>,
    /// Lowest confidence.
    pub min_confidence: f32,
}

impl Filter {
    /// Whether `hit` counts.
    pub fn matches(&self, hit: &Hit) -> bool {
        hit.confidence >= self.min_confidence
            && (self.classes.is_empty() || self.classes.contains(&hit.class))
    }
}

/// What events mode needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Where clips go.
    pub dir: PathBuf,
    /// Container.
    pub format: Format,
    /// Sync policy.
    pub fsync: Fsync,
    /// Longest media time per write.
    pub fragment_duration: Duration,
    /// Which detections count.
    pub filter: Filter,
    /// The timing rules.
    pub timing: Timing,
    /// The pre-roll ring's byte cap.
    pub pre_roll_max_bytes: u64,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Settings {
    /// Events mode's part of `config`.
    pub fn of(config: &Config) -> Self {
        Self {
            dir: config.dir.clone(),
            format: config.format,
            fsync: config.fsync,
            fragment_duration: config.fragment_duration,
            filter: Filter {
                classes: config.classes.clone(),
                min_confidence: config.min_confidence,
            },
            timing: Timing {
                pre_roll_ns: ns(config.pre_roll),
                post_roll_ns: ns(config.post_roll),
                max_clip_ns: ns(config.max_event_duration),
                min_frames: config.min_frames,
            },
            pre_roll_max_bytes: config.pre_roll_max_bytes,
        }
    }
}

/// A clip being written.
struct Clip<F> {
    writer: FileWriter<F>,
    name: RecordingName,
    /// Capture time of its first frame.
    first_ns: u64,
    stats: ClipStats<F>,
    /// The clip before it, when the event was cut.
    continues: Option<String>,
}

/// The event in progress, across its clips.
#[derive(Debug, Default)]
struct EventTotals {
    classes: BTreeSet<String>,
    seconds: f64,
    last_clip: Option<String>,
}

/// Events mode's state, on the recorder's thread.
pub struct Events<F> {
    settings: Settings,
    shared: Arc<Shared>,
    machine: Machine,
    ring: Ring<F>,
    clip: Option<Clip<F>>,
    /// An event runs but no IDR was held: the clip opens at the next IDR.
    waiting: bool,
    /// Hits noted before the clip opened.
    pending: ClipStats<F>,
    /// The matching results of the current run, before an event starts (at most `min_frames`).
    run: VecDeque<Vec<Hit>>,
    event: EventTotals,
    generation: Option<u32>,
    /// Capture time of the newest frame seen.
    newest_ns: Option<u64>,
    /// Results that came before their frame (frames and results reach this thread on two
    /// queues): applied once the frame is seen, in order.
    early: VecDeque<Observation>,
}

/// Most results held for frames not yet seen (30 s at 10 a second); beyond, the oldest is
/// applied at once.
pub const MAX_EARLY: usize = 300;

impl<F: AccessUnit + Clone> Events<F> {
    /// Idle, nothing held.
    pub fn new(settings: Settings, shared: Arc<Shared>) -> Self {
        let keep = settings.timing.pre_roll_ns + ns(RING_SLACK);
        Self {
            ring: Ring::new(keep, settings.pre_roll_max_bytes),
            machine: Machine::new(settings.timing),
            settings,
            shared,
            clip: None,
            waiting: false,
            pending: ClipStats::default(),
            run: VecDeque::new(),
            event: EventTotals::default(),
            generation: None,
            newest_ns: None,
            early: VecDeque::new(),
        }
    }

    /// The clip being written.
    pub fn current_file(&self) -> Option<String> {
        self.clip.as_ref().map(|c| c.name.file_name())
    }

    /// The pre-roll ring (for the figures).
    pub fn ring(&self) -> &Ring<F> {
        &self.ring
    }

    /// One frame, then the results that were waiting for it.
    pub fn frame(&mut self, frame: F) -> Result<(), RecordError> {
        let ts = frame.timestamp_ns();
        self.newest_ns = Some(ts);
        self.frame_only(frame)?;
        while self.early.front().is_some_and(|o| o.ts_ns <= ts) {
            if let Some(o) = self.early.pop_front() {
                self.apply(o)?;
            }
        }
        Ok(())
    }

    /// One detection result, applied once its frame has been seen.
    pub fn detections(&mut self, observation: Observation) -> Result<(), RecordError> {
        if self.newest_ns.is_some_and(|n| observation.ts_ns > n) || !self.early.is_empty() {
            self.early.push_back(observation);
            if self.early.len() > MAX_EARLY
                && let Some(o) = self.early.pop_front()
            {
                return self.apply(o);
            }
            return Ok(());
        }
        self.apply(observation)
    }

    fn frame_only(&mut self, frame: F) -> Result<(), RecordError> {
        let generation = frame.generation();
        if self.generation.is_some_and(|g| g != generation) {
            // A restarted camera: its clock starts over; the event (if any) ends here.
            self.waiting = false;
            self.machine.reset();
            self.run.clear();
            self.early.clear();
            self.close(None, true)?;
        }
        self.generation = Some(generation);
        self.ring.push(frame.clone());
        let (ts, idr) = (frame.timestamp_ns(), frame.is_idr());
        match self.machine.frame(ts, idr) {
            Action::End => {
                self.waiting = false;
                let end = self.clip.as_ref().map(|c| c.writer.peek_time(&frame));
                self.close(end, true)
            }
            Action::Cut => self.cut(frame),
            Action::Start { .. } | Action::None => {
                if let Some(clip) = &mut self.clip {
                    if idr
                        && self.settings.format == Format::Mp4
                        && clip.writer.params_changed(&frame)
                    {
                        // An MP4 holds one set of parameters: a new file with the new ones.
                        return self.cut(frame);
                    }
                    clip.writer.push(frame)
                } else if self.waiting && idr {
                    self.waiting = false;
                    self.open(vec![frame])
                } else {
                    Ok(())
                }
            }
        }
    }

    fn apply(&mut self, observation: Observation) -> Result<(), RecordError> {
        let hits: Vec<Hit> = observation
            .hits
            .into_iter()
            .filter(|h| self.settings.filter.matches(h))
            .collect();
        let was_active = self.machine.active();
        let action = self.machine.detection(observation.ts_ns, !hits.is_empty());
        if !was_active {
            if hits.is_empty() {
                self.run.clear();
            } else {
                self.run.push_back(hits.clone());
                while self.run.len() > self.settings.timing.min_frames.max(1) as usize {
                    self.run.pop_front();
                }
            }
        }
        if let Action::Start { from_ns, .. } = action {
            self.pending = ClipStats::default();
            for run_hits in std::mem::take(&mut self.run) {
                for hit in run_hits {
                    self.note(hit);
                }
            }
            let frames = self.ring.from(from_ns);
            if frames.is_empty() {
                self.waiting = true;
            } else {
                self.open(frames)?;
            }
        } else if self.machine.active() {
            for hit in hits {
                self.note(hit);
            }
        }
        Ok(())
    }

    /// Writes held frames out (no frame for a while).
    pub fn flush_pending(&mut self) -> Result<(), RecordError> {
        match &mut self.clip {
            Some(clip) => clip.writer.flush_pending(),
            None => Ok(()),
        }
    }

    /// Ends the event (stop, shutdown, pause): the clip is finished cleanly.
    pub fn stop(&mut self) -> Result<(), RecordError> {
        self.early.clear();
        self.waiting = false;
        self.machine.reset();
        self.run.clear();
        let closed = self.close(None, true);
        self.ring.clear();
        closed
    }

    /// Drops the clip after an error (its file keeps what was written) and ends the event.
    pub fn abort(&mut self) {
        self.waiting = false;
        self.machine.reset();
        self.run.clear();
        if let Some(clip) = self.clip.take() {
            self.shared.set_duration(
                &clip.name.file_name(),
                clip.writer.ticks() as f64 / 90_000.0,
            );
        }
        self.event = EventTotals::default();
    }

    fn note(&mut self, hit: Hit) {
        let stats = match &mut self.clip {
            Some(clip) => &mut clip.stats,
            None => &mut self.pending,
        };
        if stats.is_better(&hit) {
            let frames = self.ring.picture(hit.ts_ns);
            stats.set_thumbnail(&hit, frames);
        }
        stats.note(&hit);
    }

    fn cut(&mut self, frame: F) -> Result<(), RecordError> {
        let end = self.clip.as_ref().map(|c| c.writer.peek_time(&frame));
        self.close(end, false)?;
        self.open(vec![frame])
    }

    /// Opens a clip with `frames` (starting with an IDR).
    fn open(&mut self, frames: Vec<F>) -> Result<(), RecordError> {
        let Some(first) = frames.first() else {
            return Ok(());
        };
        let first_ns = first.timestamp_ns();
        let s = &self.settings;
        std::fs::create_dir_all(&s.dir).map_err(|source| RecordError::CreateDir {
            dir: s.dir.clone(),
            source,
        })?;
        let writer =
            FileWriter::create_kind(&s.dir, Kind::Event, s.format, s.fsync, s.fragment_duration)?;
        let Some(name) = RecordingName::parse(writer.name()) else {
            return Ok(());
        };
        let started = now();
        let mut clip = Clip {
            writer,
            name,
            first_ns,
            stats: std::mem::take(&mut self.pending),
            continues: self.event.last_clip.clone(),
        };
        clip.stats.started = Some(rfc3339(&started));
        clip.stats.wall_offset_ns = sidecar::wall_offset_ns();
        write_sidecar(
            &s.dir,
            &clip.name,
            &clip.stats,
            first_ns,
            &clip.continues,
            false,
        );
        for f in frames {
            clip.writer.push(f)?;
        }
        self.machine.clip_started(first_ns);
        tracing::info!(file = %clip.name.file_name(), "event clip started");
        {
            let mut st = self.shared.status();
            st.recording = true;
            st.filename = clip.name.file_name();
            st.start_time = clip.stats.started.clone();
            st.error = None;
        }
        self.clip = Some(clip);
        Ok(())
    }

    /// Closes the clip (its last frame ending at `end`, in ticks), writes its thumbnail and
    /// sidecar, and counts; `event_over` also ends the event.
    fn close(&mut self, end: Option<u64>, event_over: bool) -> Result<(), RecordError> {
        if let Some(clip) = self.clip.take() {
            let Clip {
                writer,
                name,
                first_ns,
                mut stats,
                continues,
            } = clip;
            let summary = writer.finish(end)?;
            let seconds = summary.ticks as f64 / f64::from(TIMESCALE);
            stats.frames = summary.frames;
            stats.bytes = summary.bytes;
            stats.seconds = seconds;
            if let Some((hit, frames)) = stats.thumbnail.take() {
                match thumb::jpeg(&frames, hit.bbox) {
                    Ok(jpeg) => {
                        let path = self.settings.dir.join(format!("{}.jpg", name.stem()));
                        match sidecar::write_atomic(&path, &jpeg) {
                            Ok(()) => stats.has_thumbnail = true,
                            Err(e) => {
                                tracing::warn!(file = %path.display(), error = %e, "cannot write the thumbnail")
                            }
                        }
                    }
                    Err(e) => tracing::warn!(clip = %name.stem(), error = %e, "no thumbnail"),
                }
            }
            write_sidecar(
                &self.settings.dir,
                &name,
                &stats,
                first_ns,
                &continues,
                true,
            );
            let file = name.file_name();
            self.shared.set_duration(&file, seconds);
            let c = &self.shared.counters;
            c.segments.fetch_add(1, Ordering::Relaxed);
            c.frames_written
                .fetch_add(summary.frames, Ordering::Relaxed);
            c.bytes_written.fetch_add(summary.bytes, Ordering::Relaxed);
            {
                let mut st = self.shared.status();
                st.recording = false;
                st.frame_count = summary.frames;
                st.bytes_written = summary.bytes;
                st.duration = seconds;
                st.duration_ms = summary.ticks * 1000 / u64::from(TIMESCALE);
                st.segments += 1;
            }
            tracing::info!(file = %file, frames = summary.frames, duration_s = seconds, "event clip complete");
            self.event.seconds += seconds;
            self.event.classes.extend(stats.classes.keys().cloned());
            self.event.last_clip = Some(name.stem());
        }
        if event_over {
            let event = std::mem::take(&mut self.event);
            if event.last_clip.is_some() {
                self.shared.events.record(&event.classes, event.seconds);
            }
        }
        Ok(())
    }
}

/// Writes a clip's sidecar; a failure is logged (the clip itself is what matters).
fn write_sidecar<F>(
    dir: &Path,
    name: &RecordingName,
    stats: &ClipStats<F>,
    first_ns: u64,
    continues: &Option<String>,
    complete: bool,
) {
    let sidecar = Sidecar::of(name, stats, first_ns, complete, continues.clone());
    let path = dir.join(format!("{}.json", name.stem()));
    let text = serde_json::to_vec_pretty(&sidecar).unwrap_or_default();
    if let Err(e) = sidecar::write_atomic(&path, &text) {
        tracing::warn!(file = %path.display(), error = %e, "cannot write the sidecar");
    }
}

/// Ticks of a duration (for tests).
pub fn ticks(d: Duration) -> u64 {
    ns_to_ticks(ns(d))
}
