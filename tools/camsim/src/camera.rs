//! The camera loop: make the next frame, wait for its deadline, publish it.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::au::{append_without_parameter_sets, nal_types};
use crate::cli::{Args, Encode, Params};
use crate::dump::Dump;
use crate::encoder::{EncoderSettings, H264Encoder};
use crate::input::InputFile;
use crate::objects::{ObjectDump, Schedule};
use crate::pacing::{Pacer, Periodic, sleep_until};
use crate::pattern::{Object, Pattern};
use crate::publisher::{SLOW_INTERVAL_MS, Segments, monotonic_now};
use crate::replay::{HEADROOM, Replay, measure};

/// Frames per second while `--interval-switch` is in its slow phase.
const SLOW_FPS: u32 = 1000 / SLOW_INTERVAL_MS;

/// What the command line names on disk, opened before anything runs so that a bad path is a
/// usage error.
#[derive(Debug)]
pub struct Files {
    input: Option<InputFile>,
    dump: Option<Dump>,
    objects: Option<ObjectDump>,
}

impl Files {
    /// Reads `--input` and creates `--dump` and `--dump-objects`.
    pub fn open(args: &Args) -> Result<Self> {
        let input = args.input.as_deref().map(InputFile::open).transpose()?;
        let dump = args.dump.as_deref().map(Dump::create).transpose()?;
        let objects = args
            .dump_objects
            .as_deref()
            .map(ObjectDump::create)
            .transpose()?;
        Ok(Self {
            input,
            dump,
            objects,
        })
    }
}

/// Where access units come from.
#[derive(Debug)]
enum Source {
    Encoder(Box<H264Encoder>),
    File(InputFile),
    Replay(Replay),
}

impl Source {
    /// Starts over as a restarted camera daemon would: a new encoder, or the file's first unit.
    fn restart(&mut self) -> Result<()> {
        match self {
            Self::Encoder(encoder) => encoder.restart()?,
            Self::File(file) => file.rewind(),
            Self::Replay(replay) => replay.rewind(),
        }
        Ok(())
    }
}

/// Everything one run owns.
struct Camera<'a> {
    args: &'a Args,
    segments: Segments,
    source: Source,
    pattern: Pattern,
    dump: Option<Dump>,
    objects: Option<ObjectDump>,
    /// Where the square is in the picture being published, and whether it shows.
    object: (Object, bool),
    /// Width and height written into H.264 frame headers.
    stream_size: (usize, usize),
    /// Whether SPS/PPS went out in this writer incarnation (for `--params first`).
    params_sent: bool,
    au: Vec<u8>,
    raw: Vec<u8>,
    nv12: Vec<u8>,
}

/// Publishes frames until `stop` is set or `--frames` are out, then cleans up. Returns the
/// number of frames published.
pub fn run(args: &Args, files: Files, stop: &AtomicBool) -> Result<u64> {
    let (w, h) = (args.size.width, args.size.height);
    let stream_size = files
        .input
        .as_ref()
        .and_then(InputFile::dimensions)
        .map_or((w, h), |(sw, sh)| (sw as usize, sh as usize));
    let settings = EncoderSettings {
        fps: args.fps,
        gop: args.gop,
        bitrate_kbps: args.bitrate,
    };
    let mut pattern = Pattern::new(w, h);
    let source = match files.input {
        Some(file) => Source::File(file),
        None if use_loop(args, settings, &mut pattern)? => Source::Replay(Replay::build(
            settings,
            &mut pattern,
            args.object_schedule.is_some(),
        )?),
        None => Source::Encoder(Box::new(H264Encoder::new(settings)?)),
    };
    let segments = Segments::create(&args.shm, args.nv12_shm.as_deref(), args.slow_copy)?;
    eprintln!("{}", banner(args, &source, stream_size));
    let mut camera = Camera {
        args,
        segments,
        source,
        pattern,
        dump: files.dump,
        objects: files.objects,
        object: (Object::at(w, h, Duration::ZERO), false),
        stream_size,
        params_sent: false,
        au: Vec::new(),
        raw: Vec::new(),
        nv12: Vec::new(),
    };
    let result = camera.run(stop);
    // Clean up even after a failure: the dump shows what got out, and no segment is left over.
    let flushed = camera.dump.take().map_or(Ok(()), Dump::finish);
    let unlinked = if args.keep {
        Ok(())
    } else {
        camera
            .segments
            .unlink()
            .context("cannot unlink the segments")
    };
    let published = result?;
    flushed?;
    unlinked?;
    Ok(published)
}

/// Whether to publish a pre-encoded loop: asked for, or (`auto`) the encoder measured too slow
/// for the asked rate, which is said loudly.
fn use_loop(args: &Args, settings: EncoderSettings, pattern: &mut Pattern) -> Result<bool> {
    match args.encode {
        Encode::Live => Ok(false),
        Encode::Loop => Ok(true),
        Encode::Auto => {
            let rate = measure(settings, pattern)?;
            let slow = rate < f64::from(args.fps) * HEADROOM;
            if slow {
                eprintln!(
                    "camsim: warning: this machine encodes {}x{} at {rate:.1} frames/s, too slow \
                     for {} fps live (a busy machine, or OpenH264 built without nasm: install \
                     nasm and rebuild, see the README). Publishing a pre-encoded loop instead: \
                     about a second of the pattern, over and over, with fresh frame numbers and \
                     timestamps.",
                    args.size.width, args.size.height, args.fps
                );
            }
            Ok(slow)
        }
    }
}

fn banner(args: &Args, source: &Source, (w, h): (usize, usize)) -> String {
    let mut line = format!(
        "camsim: publishing H.264 {w}x{h}@{} into {}",
        args.fps, args.shm
    );
    if let (Some(path), Source::File(file)) = (&args.input, source) {
        line += &format!(" from {} ({} access units)", path.display(), file.len());
    }
    if let Source::Replay(replay) = source {
        line += &format!(", a pre-encoded loop of {} frames", replay.len());
    }
    if let Some(nv12) = &args.nv12_shm {
        line += &format!(
            ", NV12 {}x{} into {nv12}",
            args.size.width, args.size.height
        );
    }
    line
}

impl Camera<'_> {
    fn run(&mut self, stop: &AtomicBool) -> Result<u64> {
        let args = self.args;
        let start = Instant::now();
        let mut pacer = Pacer::new(args.fps);
        let mut switch = args.interval_switch.map(Periodic::new);
        let mut restart = args.restart_every.map(Periodic::new);
        let mut slow = false;
        let mut warned = false;
        let mut published = 0;
        while args.frames.is_none_or(|n| published < n) {
            let now = Instant::now();
            if restart.as_mut().is_some_and(|r| r.due(now)) {
                self.restart()?;
                self.log(format_args!(
                    "restarted: segments recreated, stream restarts at an IDR"
                ));
            }
            if switch.as_mut().is_some_and(|s| s.due(now)) {
                slow = !slow;
                let (ms, fps) = if slow {
                    (SLOW_INTERVAL_MS, SLOW_FPS)
                } else {
                    (0, args.fps)
                };
                self.segments.set_frame_interval_ms(ms);
                pacer.set_rate(fps);
                self.log(format_args!("frame_interval_ms = {ms}: {fps} fps"));
            }
            let clock = pacer.deadline().saturating_duration_since(start);
            self.produce(clock)?;
            if let Some(late) = pacer.forgive_lateness(Instant::now())
                && !std::mem::replace(&mut warned, true)
            {
                eprintln!(
                    "camsim: warning: frames take longer to make than {} fps allows (one was {} ms \
                     late); publishing as fast as possible",
                    if slow { SLOW_FPS } else { args.fps },
                    late.as_millis()
                );
            }
            if !sleep_until(pacer.deadline(), stop) {
                break;
            }
            self.publish()?;
            pacer.advance();
            published += 1;
        }
        self.log(format_args!(
            "published {published} frames in {:.1} s",
            start.elapsed().as_secs_f64()
        ));
        Ok(published)
    }

    /// Renders the picture (if anything needs it) and fills `self.au` with the next unit.
    fn produce(&mut self, clock: Duration) -> Result<()> {
        let frame_number = self.segments.next_frame_number();
        let visible = Schedule::visible_at(self.args.object_schedule, clock);
        self.raw.clear();
        // The picture shown: the pattern now, or the loop's frame (then the NV12 picture is
        // rendered at the loop's clock, so it shows what the H.264 shows).
        let (clock, visible) = match &mut self.source {
            Source::Replay(replay) => {
                let played = replay.next(visible);
                self.raw.extend_from_slice(played.au);
                (played.clock, played.visible)
            }
            _ => (clock, visible),
        };
        let (w, h) = (self.pattern.width(), self.pattern.height());
        self.object = (Object::at(w, h, clock), visible);
        if matches!(self.source, Source::Encoder(..)) || self.segments.wants_nv12() {
            self.pattern.render(frame_number, clock, visible);
        }
        match &mut self.source {
            Source::Encoder(encoder) => {
                encoder.encode(&self.pattern, &mut self.raw)?;
            }
            Source::File(file) => self.raw.extend_from_slice(file.next_unit()),
            Source::Replay(_) => {}
        }
        self.au.clear();
        if self.args.params == Params::First && self.params_sent {
            append_without_parameter_sets(&self.raw, &mut self.au);
        } else {
            self.params_sent |= nal_types(&self.raw).iter().any(|t| t.is_parameter_set());
            self.au.extend_from_slice(&self.raw);
        }
        Ok(())
    }

    fn publish(&mut self) -> Result<()> {
        if self.segments.wants_nv12() {
            // Converted before the capture time is taken, which latency tools compare with
            // the reader's clock: it is taken as late as possible.
            self.pattern.write_nv12(&mut self.nv12);
        }
        let frame_number = self.segments.next_frame_number();
        let timestamp = monotonic_now()?;
        self.segments
            .publish_h264(self.stream_size, &self.au, timestamp)?;
        if self.segments.wants_nv12() {
            let size = (self.pattern.width(), self.pattern.height());
            self.segments.publish_nv12(size, &self.nv12, timestamp)?;
        }
        if let Some(objects) = &mut self.objects {
            let (object, visible) = self.object;
            objects.write(frame_number, timestamp.as_nanos(), object, visible)?;
        }
        if let Some(dump) = &mut self.dump {
            dump.write(&self.au)?;
        }
        Ok(())
    }

    fn restart(&mut self) -> Result<()> {
        self.segments.restart()?;
        self.source.restart()?;
        self.params_sent = false;
        Ok(())
    }

    fn log(&self, message: std::fmt::Arguments<'_>) {
        if self.args.verbose {
            eprintln!("camsim: {message}");
        }
    }
}
