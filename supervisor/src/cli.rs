//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Runs the pet-camera stack: the camera, detector and web monitor services, and the camera's
/// H.264 distributed from shared memory to streaming, recording and custom sink plugins.
#[derive(Debug, Parser)]
#[command(
    name = "stackctl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Look at the camera's shared-memory segments (the first stop when the stream is black).
    #[command(subcommand)]
    Shm(ShmCommand),
}

/// `stackctl shm ...`
#[derive(Debug, Subcommand)]
pub enum ShmCommand {
    /// Print a segment's state: size and layout, write index, frame rate, formats, the last
    /// frame's size, resolution and age, and the H.264 profile and level.
    Inspect(InspectArgs),
    /// Wait for a segment and write the H.264 access units it receives, exactly as received
    /// (Annex-B), e.g. `stackctl shm tap /pet_camera_stream --frames 300 | ffplay -`.
    Tap(TapArgs),
}

/// Arguments of `stackctl shm inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Segment name, e.g. /pet_camera_stream (the leading slash may be omitted).
    pub name: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `stackctl shm tap`.
#[derive(Debug, Args)]
pub struct TapArgs {
    /// Segment name, e.g. /pet_camera_stream (the leading slash may be omitted).
    pub name: String,
    /// Stop after this many frames (default: until interrupted).
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Seconds to wait for the segment to appear; 0 waits forever.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub wait: f64,
    /// Start with the oldest frame still in the ring instead of the next one written.
    #[arg(long)]
    pub from_start: bool,
    /// Torn-read guard (for diagnosis; see the README): `verify` proves each new frame stable
    /// for a short window, `settled` waits for the writer's next frame, `off` trusts the index.
    #[arg(long, value_enum, default_value_t = GuardArg::Verify)]
    pub guard: GuardArg,
}

/// The torn-read guards selectable on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GuardArg {
    /// Copy, then prove the slot unchanged for 500 µs.
    Verify,
    /// Wait until the writer has moved on.
    Settled,
    /// No protection (frames may be half-written).
    Off,
}

/// Normalises a segment name to the `/name` form shm_open expects.
pub fn segment_name(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}
