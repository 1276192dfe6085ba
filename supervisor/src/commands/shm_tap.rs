//! `stackctl shm tap NAME`: the access units a segment delivers, byte for byte.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use stackctl_core::bus::{Bus, RecvError, SubscribeOptions};
use stackctl_core::shm::{SourceConfig, SourceHandle, StartPosition, TornReadGuard};

use crate::cli::{GuardArg, TapArgs, segment_name};
use crate::signals::stop_on_signal;

/// Frames the tap may fall behind its output before the bus drops for it: ten seconds at 30 fps.
const QUEUE_FRAMES: usize = 300;

/// Runs the command.
pub fn run(args: &TapArgs) -> anyhow::Result<ExitCode> {
    let stop = stop_on_signal(std::thread::current())?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let mut cfg = SourceConfig::new(segment_name(&args.name));
    cfg.start = if args.from_start {
        StartPosition::Oldest
    } else {
        StartPosition::Next
    };
    cfg.guard = match args.guard {
        GuardArg::Verify => TornReadGuard::default(),
        GuardArg::Settled => TornReadGuard::Settled,
        GuardArg::Off => TornReadGuard::Off,
    };
    let wait = (args.wait > 0.0).then(|| Duration::from_secs_f64(args.wait));
    let bus = Bus::new();
    let sub = bus.subscribe(SubscribeOptions::new("tap").capacity(QUEUE_FRAMES));
    let source = SourceHandle::spawn(cfg, bus, wait).context("cannot start the reader thread")?;

    let idle = args.idle.map(Duration::from_secs_f64);
    let mut last_frame = std::time::Instant::now();
    let mut written = 0u64;
    let mut bytes = 0u64;
    while args.frames.is_none_or(|n| written < n) && !stop.load(Ordering::SeqCst) {
        let frame = match sub.recv_timeout(Duration::from_millis(200)) {
            Ok(frame) => frame,
            Err(RecvError::Empty) if idle.is_some_and(|limit| last_frame.elapsed() >= limit) => {
                eprintln!(
                    "tap: no frame for {:.1} s; stopping",
                    last_frame.elapsed().as_secs_f64()
                );
                break;
            }
            Err(RecvError::Empty) => continue,
            Err(RecvError::Closed) => break,
        };
        match out.write_all(frame.data()) {
            Ok(()) => {}
            // The reader of our output went away (`| head -c`, a closed player): a normal end.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(e).context("writing the stream"),
        }
        written += 1;
        last_frame = std::time::Instant::now();
        bytes += frame.data().len() as u64;
    }
    match out.flush() {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("writing the stream"),
    }
    let stats = source.stats().clone();
    let dropped = sub.stats().snapshot().dropped;
    let ended = source.stop();
    eprintln!(
        "tap: {written} frames, {bytes} bytes; lost {}, malformed {}, other formats {}, torn copies retried {}, late tears {}, writer restarts {}, dropped by a slow output {dropped}",
        stats.lost.load(Ordering::Relaxed),
        stats.malformed.load(Ordering::Relaxed),
        stats.other_format.load(Ordering::Relaxed),
        stats.torn_retries.load(Ordering::Relaxed),
        stats.late_tears.load(Ordering::Relaxed),
        stats.restarts.load(Ordering::Relaxed),
    );
    ended.context("reading shared memory")?;
    Ok(ExitCode::SUCCESS)
}
