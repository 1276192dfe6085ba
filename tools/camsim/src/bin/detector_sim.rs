//! `detector-sim`: a stand-in for the board's `yolo_detector_daemon` in the demo stack.
//!
//! It maps the camera's NV12 segment (camsim's `--nv12-shm`, the board's
//! `/pet_camera_active_frame`) read-only and looks at the newest complete frame every
//! `--interval`. It really detects: it finds the orange square of camsim's test pattern (its
//! chroma is unique in the picture) and, with `--detections`, writes each result into the
//! detections segment exactly as the board's detector does (a `LatestDetectionResult`: the
//! frame's number and capture time, class `cat`, a confidence, the box; `version` incremented
//! last), an empty result when the square is hidden. It also computes the mean luma and the
//! brightest 16×16 block. Once a second it prints one line about it. It exits
//! non-zero when the segment disappears, is recreated or stops advancing, which is how the real
//! detector behaves when the camera dies, so the supervisor's dependency handling
//! (`depends_on`, `restart_dependents`) can be seen at work without a board.
//!
//! No `unsafe` here: the segment is read through `stackctl_core::shm::Segment`, whose accessors
//! copy bytes out of the mapping without ever forming a reference into it.

#[path = "../args.rs"]
mod args;
#[path = "../square.rs"]
mod square;

use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use stackctl_core::detections::{Detection, DetectionWriter, WriteMode};
use stackctl_core::layout::{PixelFormat, SLOT_DATA_CAPACITY};
use stackctl_core::shm::{Segment, SegmentId, ShmError, newest_complete, segment};

/// A stand-in for yolo_detector_daemon in the stackctl demo: reads the camera's NV12 frames
/// from shared memory, finds the orange square of camsim's test pattern and writes it as a
/// "cat" into the detections segment, as the board's detector does.
#[derive(Debug, Parser)]
#[command(
    name = "detector-sim",
    version,
    after_help = "It plays the YOLO detector's part in config/demo.toml: it depends on the \
                  camera, and it fails when the camera goes away (the segment is removed or \
                  recreated, or no new frame arrives within --stale), so the supervisor restarts \
                  it with the camera.\n\nExit status: 0 after SIGINT or SIGTERM, 2 for a bad \
                  command line, 1 when the segment never appears, is not NV12, disappears, is \
                  recreated or goes stale."
)]
struct Args {
    /// The NV12 shared-memory segment to read, e.g. /demo_active_frame (camsim's --nv12-shm).
    #[arg(long, value_name = "NAME", value_parser = args::shm_name)]
    shm: String,

    /// How often to look at the newest frame: "200ms", "0.5s", or seconds ("1").
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = parse_interval)]
    interval: Duration,

    /// How long to wait for the segment to appear at start, in seconds (decimals allowed).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = args::secs)]
    wait: Duration,

    /// Exit with an error when no new frame arrives for this many seconds (decimals allowed).
    #[arg(long, value_name = "SECS", default_value = "3", value_parser = args::secs)]
    stale: Duration,

    /// Write every result into this detections segment (the board's
    /// /pet_camera_detections: LatestDetectionResult, 552 bytes), created if missing and
    /// left in place on exit, as the board's detector does. Without it, results are only
    /// printed.
    #[arg(long, value_name = "NAME", value_parser = args::shm_name)]
    detections: Option<String>,

    /// The class name written for the square.
    #[arg(long, value_name = "NAME", default_value = "cat", value_parser = class_name)]
    class: String,
}

/// A class name: 1 to 31 bytes (the field holds 32 with its NUL), no NUL.
fn class_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 31 || text.contains('\0') {
        return Err("a class name is 1 to 31 bytes, without NUL".to_owned());
    }
    Ok(text.to_owned())
}

/// Exit status for a bad command line, as clap uses.
const USAGE: u8 = 2;

/// How often the segment is looked for while waiting for it to appear.
const APPEAR_POLL: Duration = Duration::from_millis(100);

/// How often a detection line is printed.
const REPORT_EVERY: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    // Blocked before any other thread exists, so only the `sigwait` thread ever takes them.
    let signals = match block_stop_signals() {
        Ok(signals) => signals,
        Err(e) => return fail(&e),
    };
    let args = Args::parse();
    if args.stale < args.interval {
        eprintln!(
            "detector-sim: error: --stale ({:?}) must be at least --interval ({:?})",
            args.stale, args.interval
        );
        return ExitCode::from(USAGE);
    }
    let stop = match spawn_signal_waiter(signals) {
        Ok(stop) => stop,
        Err(e) => return fail(&e),
    };
    match run(&args, &stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Reports `error` and exits with status 1.
fn fail(error: &Error) -> ExitCode {
    eprintln!("detector-sim: error: {error}");
    ExitCode::FAILURE
}

/// Why the detector stopped.
#[derive(Debug, thiserror::Error)]
enum Error {
    /// SIGINT/SIGTERM could not be set up.
    #[error("cannot handle SIGINT and SIGTERM: {0}")]
    Signals(#[source] std::io::Error),
    /// The segment was not there within `--wait`.
    #[error("{name} did not appear within {waited:?}: is the camera running (camsim --nv12-shm)?")]
    NeverAppeared { name: String, waited: Duration },
    /// Opening or mapping it (or the detections segment) failed for another reason than its
    /// absence, or a result could not be written.
    #[error(transparent)]
    Open(#[from] ShmError),
    /// The name is gone: the camera stopped and removed it (or something cleaned it up).
    #[error("{name} was removed: the camera stopped")]
    Removed { name: String },
    /// A new segment carries the name: the camera restarted.
    #[error("{name} was recreated: the camera restarted, so the detector starts over")]
    Recreated { name: String },
    /// The writer stopped writing.
    #[error(
        "no new frame in {name} for {stale:?} (write_index stuck at {index}): the camera \
         stopped producing frames"
    )]
    Stale {
        name: String,
        stale: Duration,
        index: u32,
    },
    /// The segment holds another format, such as the H.264 stream.
    #[error(
        "{name} holds {format} frames, not NV12: name the raw picture segment (camsim \
         --nv12-shm, the board's /pet_camera_active_frame), not the H.264 stream"
    )]
    NotNv12 { name: String, format: &'static str },
    /// A complete frame whose header makes no sense as NV12.
    #[error(
        "frame {number} in {name} is {width}x{height} with {data_size} bytes of data: not an \
         NV12 picture"
    )]
    BadFrame {
        name: String,
        number: u64,
        width: i32,
        height: i32,
        data_size: u64,
    },
}

fn block_stop_signals() -> Result<SigSet, Error> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()
        .map_err(|e| Error::Signals(std::io::Error::from(e)))?;
    Ok(set)
}

/// A thread takes SIGINT/SIGTERM synchronously and reports them on the returned channel, which
/// the main loop waits on between looks at the segment: a stop is seen at once, not after the
/// current pause.
fn spawn_signal_waiter(signals: SigSet) -> Result<Receiver<Signal>, Error> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                match signals.wait() {
                    Ok(signal) => {
                        if tx.send(signal).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        eprintln!("detector-sim: sigwait failed ({e}), stopping");
                        // Dropping the sender wakes the main loop, which then stops.
                        return;
                    }
                }
            }
        })
        .map_err(Error::Signals)?;
    Ok(rx)
}

/// Pauses for `pause`, or less when a stop signal comes; true when it is time to stop.
fn stopped(stop: &Receiver<Signal>, pause: Duration) -> bool {
    match stop.recv_timeout(pause) {
        Ok(_) | Err(RecvTimeoutError::Disconnected) => true,
        Err(RecvTimeoutError::Timeout) => false,
    }
}

fn run(args: &Args, stop: &Receiver<Signal>) -> Result<(), Error> {
    let Some(segment) = wait_for_segment(&args.shm, args.wait, stop)? else {
        return Ok(());
    };
    let mut writer = args
        .detections
        .as_deref()
        .map(DetectionWriter::create)
        .transpose()?;
    println!(
        "detector-sim: reading NV12 frames from {} every {:?} (a stand-in for \
         yolo_detector_daemon){}",
        args.shm,
        args.interval,
        args.detections
            .as_deref()
            .map(|d| format!(", writing detections into {d}"))
            .unwrap_or_default()
    );
    let mut ring = Ring::new(segment, Instant::now());
    let mut last_report: Option<Instant> = None;
    while !stopped(stop, args.interval) {
        let now = Instant::now();
        ring.check_identity()?;
        if let Some(frame) = ring.newest_frame(now)?
            && let Some(found) = picture::analyse(ring.luma(), frame.width, frame.height)
        {
            let square = square_finder::find(ring.picture(), frame.width, frame.height);
            let items: Vec<Detection> = square
                .iter()
                .map(|s| Detection {
                    class: args.class.clone(),
                    confidence: s.confidence,
                    x: s.x as i32,
                    y: s.y as i32,
                    w: s.w as i32,
                    h: s.h as i32,
                })
                .collect();
            if let Some(writer) = &mut writer {
                writer.write(frame.number, frame.timestamp_ns, &items, WriteMode::Whole)?;
            }
            if last_report.is_none_or(|t| now.duration_since(t) >= REPORT_EVERY) {
                last_report = Some(now);
                match items.first() {
                    Some(d) => println!(
                        "frame {}: {found}; {} {:.2} at ({}, {}) {}x{}",
                        frame.number, d.class, d.confidence, d.x, d.y, d.w, d.h
                    ),
                    None => println!("frame {}: {found}; no {}", frame.number, args.class),
                }
            }
        }
        ring.check_progress(now, args.stale)?;
    }
    Ok(())
}

/// Maps `name` once it exists with the ring's size; `None` when stopped while waiting.
fn wait_for_segment(
    name: &str,
    wait: Duration,
    stop: &Receiver<Signal>,
) -> Result<Option<Segment>, Error> {
    let started = Instant::now();
    loop {
        match Segment::open(name) {
            Ok(segment) => return Ok(Some(segment)),
            // Absent, or created but not sized yet (between the writer's shm_open and ftruncate).
            Err(ShmError::NotFound(_)) | Err(ShmError::WrongSize { actual: 0, .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if started.elapsed() >= wait {
            return Err(Error::NeverAppeared {
                name: name.to_owned(),
                waited: wait,
            });
        }
        if stopped(stop, APPEAR_POLL) {
            return Ok(None);
        }
    }
}

/// A frame whose picture was copied out.
#[derive(Debug, Clone, Copy)]
struct FrameInfo {
    number: u64,
    timestamp_ns: u64,
    width: usize,
    height: usize,
}

/// The mapped segment and what has been seen of it.
struct Ring {
    segment: Segment,
    id: SegmentId,
    /// `write_index` when it last changed, and when that was seen.
    last_index: u32,
    last_progress: Instant,
    /// The writer counter of the frame analysed last.
    analysed: Option<u32>,
    /// That frame's NV12 picture: the luma plane, then the interleaved chroma.
    picture: Vec<u8>,
    /// Its luma plane's length.
    luma_len: usize,
}

impl Ring {
    fn new(segment: Segment, now: Instant) -> Self {
        let id = segment.id();
        let last_index = segment.write_index();
        Self {
            segment,
            id,
            last_index,
            last_progress: now,
            analysed: None,
            picture: Vec::new(),
            luma_len: 0,
        }
    }

    fn name(&self) -> String {
        self.segment.name().to_owned()
    }

    /// Fails when the name no longer leads to the mapped segment. The mapping itself stays
    /// readable after an unlink, so without this a dead camera would only show up as staleness.
    fn check_identity(&self) -> Result<(), Error> {
        match segment::current_id(self.segment.name())? {
            None => Err(Error::Removed { name: self.name() }),
            Some(id) if (id.dev, id.ino) != (self.id.dev, self.id.ino) => {
                Err(Error::Recreated { name: self.name() })
            }
            Some(_) => Ok(()),
        }
    }

    /// Fails when `write_index` has not moved for `stale`.
    fn check_progress(&self, now: Instant, stale: Duration) -> Result<(), Error> {
        if now.duration_since(self.last_progress) > stale {
            return Err(Error::Stale {
                name: self.name(),
                stale,
                index: self.last_index,
            });
        }
        Ok(())
    }

    /// The luma plane of the frame [`Ring::newest_frame`] returned last.
    fn luma(&self) -> &[u8] {
        &self.picture[..self.luma_len.min(self.picture.len())]
    }

    /// Its whole NV12 picture.
    fn picture(&self) -> &[u8] {
        &self.picture
    }

    /// Copies the newest complete frame's NV12 picture, unless it was analysed already (or
    /// the writer overwrote it during the copy: the next call tries again). The newest
    /// complete frame is one behind the newest (`stackctl_core::shm::newest`).
    fn newest_frame(&mut self, now: Instant) -> Result<Option<FrameInfo>, Error> {
        let index = self.segment.write_index();
        if index != self.last_index {
            self.last_index = index;
            self.last_progress = now;
        }
        let Some(frame) = newest_complete(&self.segment) else {
            return Ok(None);
        };
        if self.analysed == Some(frame.counter) {
            return Ok(None);
        }
        let header = frame.header;
        let format = PixelFormat::from_raw(header.format);
        if format != PixelFormat::Nv12 {
            return Err(Error::NotNv12 {
                name: self.name(),
                format: format.name(),
            });
        }
        let bad = || Error::BadFrame {
            name: self.name(),
            number: header.frame_number,
            width: header.width,
            height: header.height,
            data_size: header.data_size,
        };
        let (Ok(width), Ok(height)) = (
            usize::try_from(header.width),
            usize::try_from(header.height),
        ) else {
            return Err(bad());
        };
        let luma_len = width.saturating_mul(height);
        // The board may pad NV12 rows; the luma plane (rows of `width` bytes) comes first either
        // way, so only its size is required. The chroma is read when the frame holds it.
        if width == 0 || height == 0 || luma_len > SLOT_DATA_CAPACITY {
            return Err(bad());
        }
        let Ok(data_size) = usize::try_from(header.data_size) else {
            return Err(bad());
        };
        if data_size < luma_len || data_size > SLOT_DATA_CAPACITY {
            return Err(bad());
        }
        let len = data_size.min(luma_len + luma_len / 2);
        self.picture.clear();
        if !frame.copy(&self.segment, len, &mut self.picture) {
            return Ok(None);
        }
        self.luma_len = luma_len;
        self.analysed = Some(frame.counter);
        Ok(Some(FrameInfo {
            number: header.frame_number,
            timestamp_ns: header.timestamp.as_nanos(),
            width,
            height,
        }))
    }
}

/// Finding the orange square: every chroma sample of its colour, their bounding box.
mod square_finder {
    use super::square::COLOUR;

    /// How far a chroma sample may be from the square's U and V and still count.
    const TOLERANCE: u8 = 16;

    /// Fewest chroma samples (2x2 pixels each) that make a square: fewer is noise.
    const MIN_SAMPLES: usize = 16;

    /// The square found, in pixels.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Found {
        /// Left edge.
        pub x: usize,
        /// Top edge.
        pub y: usize,
        /// Width.
        pub w: usize,
        /// Height.
        pub h: usize,
        /// The share of the box's chroma samples that have the colour (1.0 for a clean
        /// square), as the confidence.
        pub confidence: f32,
    }

    /// Looks for the square in an NV12 picture of `width`x`height` (luma, then interleaved
    /// U/V at half resolution). `None` when the picture holds no chroma or too few samples of
    /// the colour.
    pub fn find(nv12: &[u8], width: usize, height: usize) -> Option<Found> {
        let (cw, ch) = (width / 2, height / 2);
        let luma = width * height;
        let chroma = nv12.get(luma..luma + cw * ch * 2)?;
        let near = |a: u8, b: u8| a.abs_diff(b) <= TOLERANCE;
        let (mut x0, mut y0, mut x1, mut y1, mut n) = (usize::MAX, usize::MAX, 0, 0, 0usize);
        for (cy, row) in chroma.chunks_exact(cw * 2).enumerate() {
            for (cx, uv) in row.chunks_exact(2).enumerate() {
                if near(uv[0], COLOUR.1) && near(uv[1], COLOUR.2) {
                    x0 = x0.min(cx);
                    y0 = y0.min(cy);
                    x1 = x1.max(cx);
                    y1 = y1.max(cy);
                    n += 1;
                }
            }
        }
        if n < MIN_SAMPLES {
            return None;
        }
        let area = (x1 - x0 + 1) * (y1 - y0 + 1);
        Some(Found {
            x: x0 * 2,
            y: y0 * 2,
            w: (x1 - x0 + 1) * 2,
            h: (y1 - y0 + 1) * 2,
            confidence: (n as f32 / area as f32).min(1.0),
        })
    }
}

/// The picture math: cheap, real, and testable on made-up pictures.
mod picture {
    use std::fmt;

    /// The side of the square blocks searched for the brightest one.
    pub const BLOCK: usize = 16;

    /// What one look at a luma plane found.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Analysis {
        /// Mean luma over the whole picture, 0..=255.
        pub mean_luma: f64,
        /// Top-left pixel `(x, y)` of the brightest 16×16 block of the grid that starts at
        /// `(0, 0)` (the first one, in reading order, on a tie); `None` when the picture is
        /// smaller than one block.
        pub brightest: Option<(usize, usize)>,
    }

    impl fmt::Display for Analysis {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "luma {:.1}", self.mean_luma)?;
            match self.brightest {
                Some((x, y)) => write!(f, ", brightest block at ({x}, {y})"),
                None => write!(f, ", no full {BLOCK}x{BLOCK} block"),
            }
        }
    }

    /// Analyses the `width`×`height` luma plane `luma` (rows of `width` bytes, row 0 first).
    /// `None` when the plane is empty or shorter than `width * height`.
    pub fn analyse(luma: &[u8], width: usize, height: usize) -> Option<Analysis> {
        let len = width.checked_mul(height)?;
        if len == 0 || luma.len() < len {
            return None;
        }
        let plane = &luma[..len];
        let total: u64 = plane.iter().map(|&y| u64::from(y)).sum();
        let mean_luma = total as f64 / len as f64;

        // Block sums, one band of BLOCK rows at a time: each row adds its 16-pixel runs to the
        // band's per-column sums, so the plane is read once, in order.
        let columns = width / BLOCK;
        let mut sums = vec![0u32; columns];
        let mut best: Option<(u32, usize, usize)> = None;
        for band in 0..height / BLOCK {
            sums.fill(0);
            for row in plane
                .chunks_exact(width)
                .skip(band * BLOCK)
                .take(BLOCK)
                .map(|row| &row[..columns * BLOCK])
            {
                for (sum, run) in sums.iter_mut().zip(row.chunks_exact(BLOCK)) {
                    // 256 pixels of at most 255: at most 65,280, far below u32::MAX.
                    *sum += run.iter().map(|&y| u32::from(y)).sum::<u32>();
                }
            }
            for (column, &sum) in sums.iter().enumerate() {
                if best.is_none_or(|(b, _, _)| sum > b) {
                    best = Some((sum, column * BLOCK, band * BLOCK));
                }
            }
        }
        Some(Analysis {
            mean_luma,
            brightest: best.map(|(_, x, y)| (x, y)),
        })
    }
}

/// `"200ms"`, `"0.5s"` or a number of seconds, between 10 ms and 60 s.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(ms) = t.strip_suffix("ms") {
        (ms, 1e-3)
    } else {
        (t.strip_suffix('s').unwrap_or(t), 1.0)
    };
    let secs = number
        .trim()
        .parse::<f64>()
        .map(|n| n * scale)
        .map_err(|_| format!("{text:?} is not a duration (e.g. \"200ms\", \"0.5s\", \"1\")"))?;
    if !(0.01..=60.0).contains(&secs) {
        return Err("expected a duration between 10ms and 60s".to_owned());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    // A failed expectation is the test failing.
    #![allow(clippy::expect_used, clippy::unwrap_used)]

    use super::picture::{Analysis, BLOCK, analyse};
    use super::*;
    use clap::CommandFactory;
    use stackctl_core::layout::{FrameHeader, Timespec};
    use stackctl_core::shm::{CopyMode, ShmWriter};

    /// A `width`×`height` plane of `background` with the block whose top-left is `(x, y)` set
    /// to `bright`.
    fn plane(
        width: usize,
        height: usize,
        background: u8,
        block: (usize, usize),
        bright: u8,
    ) -> Vec<u8> {
        let mut p = vec![background; width * height];
        for row in block.1..block.1 + BLOCK {
            p[row * width + block.0..row * width + block.0 + BLOCK].fill(bright);
        }
        p
    }

    #[test]
    fn finds_the_bright_block_and_the_mean() {
        let (w, h) = (64, 48);
        let p = plane(w, h, 10, (32, 16), 250);
        let a = analyse(&p, w, h).unwrap();
        assert_eq!(a.brightest, Some((32, 16)));
        let want = (10.0 * (w * h - 256) as f64 + 250.0 * 256.0) / (w * h) as f64;
        assert!((a.mean_luma - want).abs() < 1e-9, "{a:?}");
        assert_eq!(
            a.to_string(),
            format!("luma {want:.1}, brightest block at (32, 16)")
        );
    }

    #[test]
    fn a_uniform_picture_reports_the_first_block_and_its_level() {
        let a = analyse(&[77; 32 * 32], 32, 32).unwrap();
        assert_eq!(
            a,
            Analysis {
                mean_luma: 77.0,
                brightest: Some((0, 0))
            }
        );
    }

    #[test]
    fn blocks_lie_on_the_grid_and_partial_edges_are_left_out() {
        // A bright 16x16 square at (10, 12) straddles four grid blocks; the one at (16, 16)
        // holds 10x12 of its pixels, the most.
        let (w, h) = (40, 40);
        let mut p = vec![0u8; w * h];
        for row in 12..28 {
            p[row * w + 10..row * w + 26].fill(200);
        }
        assert_eq!(analyse(&p, w, h).unwrap().brightest, Some((16, 16)));
        // Bright pixels only in the columns and rows past the last full block count for the
        // mean but cannot be a block.
        let mut edge = vec![0u8; w * h];
        for row in 0..h {
            edge[row * w + 32..row * w + 40].fill(255);
        }
        let a = analyse(&edge, w, h).unwrap();
        assert_eq!(a.brightest, Some((0, 0)));
        assert!((a.mean_luma - 255.0 * 8.0 / 40.0).abs() < 1e-9);
    }

    #[test]
    fn small_or_short_planes() {
        let a = analyse(&[200; 8 * 8], 8, 8).unwrap();
        assert_eq!(a.brightest, None);
        assert_eq!(a.to_string(), "luma 200.0, no full 16x16 block");
        assert_eq!(analyse(&[0; 10], 4, 4), None);
        assert_eq!(analyse(&[], 0, 0), None);
    }

    #[test]
    fn a_full_hd_plane_of_white_does_not_overflow() {
        let a = analyse(&vec![255; 1920 * 1080], 1920, 1080).unwrap();
        assert_eq!(a.mean_luma, 255.0);
    }

    /// A segment name unique to this test process; unlinked when dropped.
    struct Shm(String);

    impl Shm {
        fn new(tag: &str) -> Self {
            Self(format!("/detector_sim_test_{}_{tag}", std::process::id()))
        }
    }

    impl Drop for Shm {
        fn drop(&mut self) {
            let _ = nix::sys::mman::shm_unlink(self.0.as_str());
        }
    }

    fn publish(
        writer: &mut ShmWriter,
        number: u64,
        format: PixelFormat,
        data: &[u8],
        size: (i32, i32),
    ) {
        let header = FrameHeader {
            frame_number: number,
            timestamp: Timespec::from_nanos(number + 1),
            camera_id: 0,
            width: size.0,
            height: size.1,
            format: format.to_raw(),
            data_size: data.len() as u64,
        };
        writer
            .publish(&header, data, CopyMode::WholeSlot)
            .expect("publish");
    }

    /// An NV12 picture: `luma`, then neutral chroma.
    fn nv12(luma: &[u8]) -> Vec<u8> {
        let mut data = luma.to_vec();
        data.extend(std::iter::repeat_n(128, luma.len() / 2));
        data
    }

    #[test]
    fn reads_the_newest_complete_frame_of_a_real_segment() {
        let shm = Shm::new("newest");
        let mut writer = ShmWriter::create(&shm.0).expect("segment");
        let (w, h) = (64usize, 32usize);
        let segment = Segment::open(&shm.0).expect("open");
        let start = Instant::now();
        let mut ring = Ring::new(segment, start);
        assert!(
            ring.newest_frame(start).unwrap().is_none(),
            "nothing written"
        );
        for n in 0..3u64 {
            let block = (16 * n as usize, 16);
            publish(
                &mut writer,
                n,
                PixelFormat::Nv12,
                &nv12(&plane(w, h, 0, block, 255)),
                (64, 32),
            );
        }
        // Index 3: frame 2 (counter 2) may still be copied, frame 1 is complete.
        let frame = ring.newest_frame(start).unwrap().expect("a frame");
        assert_eq!((frame.number, frame.width, frame.height), (1, w, h));
        assert_eq!(
            analyse(ring.luma(), w, h).unwrap().brightest,
            Some((16, 16))
        );
        assert!(
            ring.newest_frame(start).unwrap().is_none(),
            "already analysed"
        );
        ring.check_identity().expect("same segment");
        ring.check_progress(start, Duration::from_secs(1))
            .expect("fresh");
        assert!(matches!(
            ring.check_progress(start + Duration::from_secs(2), Duration::from_secs(1)),
            Err(Error::Stale { index: 3, .. })
        ));
    }

    #[test]
    fn an_h264_segment_is_refused_and_a_removed_or_recreated_one_noticed() {
        let shm = Shm::new("gone");
        let mut writer = ShmWriter::create(&shm.0).expect("segment");
        for n in 0..2 {
            publish(
                &mut writer,
                n,
                PixelFormat::H264,
                &[0, 0, 0, 1, 0x65],
                (64, 32),
            );
        }
        let start = Instant::now();
        let mut ring = Ring::new(Segment::open(&shm.0).expect("open"), start);
        let err = ring.newest_frame(start).unwrap_err();
        assert!(
            matches!(err, Error::NotNv12 { format: "h264", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("not NV12"), "{err}");

        writer.unlink().expect("unlink");
        assert!(matches!(ring.check_identity(), Err(Error::Removed { .. })));
        let _again = ShmWriter::create(&shm.0).expect("recreate");
        assert!(matches!(
            ring.check_identity(),
            Err(Error::Recreated { .. })
        ));
    }

    /// A `w`x`h` NV12 picture of neutral grey with chroma `(u, v)` over the pixel rectangle
    /// `rect` (even corner and size).
    fn nv12_with(w: usize, h: usize, rect: (usize, usize, usize, usize), uv: (u8, u8)) -> Vec<u8> {
        let mut p = vec![100u8; w * h];
        p.extend(std::iter::repeat_n(128u8, w * h / 2));
        let (x, y, rw, rh) = rect;
        for cy in y / 2..(y + rh) / 2 {
            for cx in x / 2..(x + rw) / 2 {
                let at = w * h + cy * w + cx * 2;
                p[at] = uv.0;
                p[at + 1] = uv.1;
            }
        }
        p
    }

    #[test]
    fn finds_the_orange_square_and_nothing_else() {
        let (w, h) = (320, 240);
        let orange = (square::COLOUR.1, square::COLOUR.2);
        let found = square_finder::find(&nv12_with(w, h, (100, 60, 48, 48), orange), w, h)
            .expect("the square");
        assert_eq!((found.x, found.y, found.w, found.h), (100, 60, 48, 48));
        assert_eq!(found.confidence, 1.0);
        // Touching the picture's edges.
        let edge = square_finder::find(&nv12_with(w, h, (272, 192, 48, 48), orange), w, h)
            .expect("the square");
        assert_eq!((edge.x + edge.w, edge.y + edge.h), (320, 240));
        // Nothing orange, yellow (the nearest colour bar), or only a speck: nothing.
        assert_eq!(
            square_finder::find(&nv12_with(w, h, (0, 0, 0, 0), orange), w, h),
            None
        );
        assert_eq!(
            square_finder::find(&nv12_with(w, h, (0, 0, 320, 160), (44, 142)), w, h),
            None
        );
        assert_eq!(
            square_finder::find(&nv12_with(w, h, (10, 10, 6, 6), orange), w, h),
            None
        );
        // A picture without its chroma planes.
        assert_eq!(square_finder::find(&[100; 320 * 240], w, h), None);
    }

    #[test]
    fn options_parse() {
        Args::command().debug_assert();
        assert_eq!(parse_interval("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_interval("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("1"), Ok(Duration::from_secs(1)));
        for bad in ["", "0", "5ms", "1m", "x", "-1s"] {
            assert!(parse_interval(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(class_name("cat").as_deref(), Ok("cat"));
        for bad in ["", "a\0b", &"x".repeat(32)] {
            assert!(class_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(args::shm_name("demo").as_deref(), Ok("/demo"));
        assert!(args::shm_name("/a/b").is_err());
    }
}
