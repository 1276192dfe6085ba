//! The CPU sampler: pprof-rs's in-process profiler (a `SIGPROF` timer on the process's CPU
//! time, a stack walked in the signal handler into a preallocated table), at most one at a time.
//!
//! # Caveats
//!
//! - **One per process.** The profiler and its timer are process-wide, so [`Slot`] is too: a
//!   second profile while one runs is refused, never queued.
//! - **Nothing when idle.** The timer exists only while a profile runs; the signal handler stays
//!   installed afterwards (pprof-rs never removes it) but no signal arrives.
//! - **Stacks.** On aarch64 they are walked by frame pointers: every Rust frame there has one,
//!   and libgcc's DWARF unwinder has crashed in this signal handler on aarch64. A frame-pointer
//!   walk starts at the return address, so the function a sample lands in is not in its stack
//!   (its caller is). Elsewhere the DWARF unwinder gives every frame. Samples whose program
//!   counter is in libgcc or the vDSO are dropped: unwinding from there is what deadlocks or
//!   reads bad unwind tables.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pprof::protos::Message;

use super::request::Format;

/// Samples a second of CPU time (Go uses 100; 99 keeps clear of lockstep with 10 ms timers).
pub const FREQUENCY_HZ: i32 = 99;

/// Shared objects whose code a sample is dropped in (names contain these).
const BLOCKLIST: [&str; 2] = ["libgcc", "vdso"];

static BUSY: AtomicBool = AtomicBool::new(false);

/// The right to run the process's one profile; given back when dropped.
#[derive(Debug)]
pub struct Slot(());

impl Slot {
    /// The slot, unless a profile is running.
    pub fn try_take() -> Option<Self> {
        BUSY.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Self(()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        BUSY.store(false, Ordering::Release);
    }
}

/// Why a profile could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The profiler did not start (its signal handler or timer could not be set).
    #[error("cannot start the CPU profiler: {0}")]
    Start(#[source] pprof::Error),
    /// The samples could not be turned into a report.
    #[error("cannot build the profile: {0}")]
    Report(#[source] pprof::Error),
    /// The flame graph could not be drawn.
    #[error("cannot draw the flame graph: {0}")]
    Svg(#[source] pprof::Error),
}

/// A profile that is sampling.
pub struct Running {
    guard: pprof::ProfilerGuard<'static>,
    started: Instant,
    _slot: Slot,
}

/// A finished profile.
#[derive(Debug)]
pub struct Profile {
    /// The encoded profile (protobuf or SVG).
    pub body: Vec<u8>,
    /// Samples in it.
    pub samples: u64,
    /// How long it sampled.
    pub sampled: Duration,
}

impl Running {
    /// Starts sampling the whole process.
    pub fn start(slot: Slot) -> Result<Self, ProfileError> {
        let guard = pprof::ProfilerGuardBuilder::default()
            .frequency(FREQUENCY_HZ)
            .blocklist(&BLOCKLIST)
            .build()
            .map_err(ProfileError::Start)?;
        Ok(Self {
            guard,
            started: Instant::now(),
            _slot: slot,
        })
    }

    /// Stops sampling and encodes what was sampled. Symbolizes every address, so it reads the
    /// binaries' symbol tables: call it off the async runtime.
    pub fn finish(self, format: Format) -> Result<Profile, ProfileError> {
        let sampled = self.started.elapsed();
        // Built while the guard lives (the samples are the profiler's); the signal handler
        // skips samples while the report holds the profiler's lock.
        let mut builder = self.guard.report();
        builder.frames_post_processor(strip_profiler_frames);
        let report = builder.build().map_err(ProfileError::Report)?;
        drop(self.guard);
        let samples = report.data.values().map(|&n| n.max(0) as u64).sum();
        let body = match format {
            Format::Protobuf => report
                .pprof()
                .map_err(ProfileError::Report)?
                .encode_to_vec(),
            // pprof-rs draws nothing at all from no sample: say so in a picture.
            Format::Svg if samples == 0 => format!(
                "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
                 width=\"900\" height=\"40\"><text x=\"10\" y=\"25\">No sample: stackctl used no CPU \
                 time in these {:.0} s.</text></svg>\n",
                sampled.as_secs_f64()
            )
            .into_bytes(),
            Format::Svg => {
                let mut svg = Vec::new();
                report.flamegraph(&mut svg).map_err(ProfileError::Svg)?;
                svg
            }
        };
        Ok(Profile {
            body,
            samples,
            sampled,
        })
    }
}

/// Removes the profiler's own frames from the top of a stack (the stack walker, called from the
/// signal handler; pprof-rs removes the handler and the signal trampoline itself), so that a
/// sample's first frame is the code it interrupted. Only the first few frames are looked at:
/// the walker sits right above the handler.
fn strip_profiler_frames(frames: &mut pprof::Frames) {
    let own = |frame: &Vec<pprof::Symbol>| {
        frame.iter().any(|s| {
            let name = s.name();
            name.starts_with("pprof::") || name.starts_with("<pprof::")
        })
    };
    let top = frames.frames.len().min(8);
    if let Some(last) = frames.frames[..top].iter().rposition(own) {
        frames.frames.drain(..=last);
    }
}
