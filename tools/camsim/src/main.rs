//! `camsim`: a simulated board camera. It publishes real H.264 (and optionally NV12) into POSIX
//! shared memory with the board's layout and writer protocol, for demos, tests and benchmarks.
//!
//! See `camsim --help` for the options.

mod args;
mod au;
mod camera;
mod cli;
mod dump;
mod encoder;
mod font;
mod input;
mod objects;
mod pacing;
mod pattern;
mod publisher;
mod replay;
mod square;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::Parser;
use nix::sys::signal::{SigSet, Signal};

use crate::cli::Args;

/// Exit status for a bad command line, as clap uses.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    // Blocked before any thread exists (OpenH264 may start some), so every thread inherits the
    // mask and the signals can only be taken by `sigwait` below.
    let signals = match block_stop_signals() {
        Ok(signals) => signals,
        Err(e) => return fail(&e, 1),
    };
    let args = Args::parse();
    if let Err(e) = cli::check(&args) {
        e.exit();
    }
    let files = match camera::Files::open(&args) {
        Ok(files) => files,
        Err(e) => return fail(&e, USAGE),
    };
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(e) = spawn_signal_waiter(signals, Arc::clone(&stop), args.verbose) {
        return fail(&e, 1);
    }
    match camera::run(&args, files, &stop) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(&e, 1),
    }
}

fn fail(error: &anyhow::Error, code: u8) -> ExitCode {
    eprintln!("camsim: error: {error:#}");
    ExitCode::from(code)
}

fn block_stop_signals() -> Result<SigSet> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()
        .context("cannot block SIGINT and SIGTERM")?;
    Ok(set)
}

/// One thread takes SIGINT/SIGTERM synchronously and raises `stop`, so no async-signal-unsafe
/// code ever runs in a handler. A second signal means the clean stop is stuck: exit at once.
fn spawn_signal_waiter(signals: SigSet, stop: Arc<AtomicBool>, verbose: bool) -> Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                match signals.wait() {
                    Ok(signal) if !stop.swap(true, Ordering::Relaxed) => {
                        if verbose {
                            eprintln!("camsim: {signal}, stopping");
                        }
                    }
                    Ok(signal) => {
                        eprintln!("camsim: {signal} again, exiting without cleaning up");
                        std::process::exit(1);
                    }
                    Err(e) => {
                        eprintln!("camsim: sigwait failed ({e}), stopping");
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}
