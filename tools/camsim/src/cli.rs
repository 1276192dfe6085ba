//! The command line: every option, its default and its validation.

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser, ValueEnum};
use stackctl_core::layout::SLOT_DATA_CAPACITY;

use crate::args;
use crate::objects::Schedule;

/// A simulated board camera: publishes real H.264 into a POSIX shared-memory frame ring with the
/// board's exact layout and writer protocol.
#[derive(Debug, Parser)]
#[command(
    name = "camsim",
    version,
    after_help = "The picture is a moving test pattern (scrolling colour bars, a bouncing box and a \
                  burned-in frame counter and clock) encoded with OpenH264, unless --input is \
                  given.\n\nSIGINT or SIGTERM stops it cleanly: the dump is flushed and the \
                  segments are unlinked (unless --keep).\n\nExit status: 0 when stopped or done, \
                  2 for a bad command line (including an unreadable or empty --input file or an \
                  uncreatable --dump file), 1 for any other failure."
)]
pub struct Args {
    /// Shared-memory segment to publish H.264 access units into, e.g. /pet_camera_stream (a
    /// leading slash is added if missing). Any stale segment of that name is replaced.
    #[arg(long, value_name = "NAME", value_parser = args::shm_name)]
    pub shm: String,

    /// Frames per second to publish (the fast rate when --interval-switch is used).
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=240))]
    pub fps: u32,

    /// Picture size, even numbers, at most 1920x1080 worth of pixels (a slot holds 3,110,400
    /// bytes). With --input, H.264 frame headers carry the size in the file's SPS instead (this
    /// one if none parses), and this only sets the NV12 picture's size.
    #[arg(long, value_name = "WxH", default_value = "1280x720", value_parser = parse_size)]
    pub size: Size,

    /// Frames from one IDR to the next (ignored with --input).
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub gop: u32,

    /// Target bit rate of the encoder in kbit/s (ignored with --input).
    #[arg(long, value_name = "KBITS", default_value_t = 4000, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    pub bitrate: u32,

    /// Stop after publishing N frames (default: run until SIGINT or SIGTERM).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub frames: Option<u64>,

    /// Publish the access units of this Annex-B H.264 file instead of encoding the test pattern,
    /// in order, looping forever.
    #[arg(long, value_name = "FILE.h264")]
    pub input: Option<PathBuf>,

    /// Also write every published access unit, byte for byte and in order, to this file.
    #[arg(long, value_name = "FILE.h264")]
    pub dump: Option<PathBuf>,

    /// When SPS and PPS are sent in-band: before every IDR (as the board's camera usually does),
    /// or only before the first IDR of each writer incarnation (readers must cope with that).
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Params::EveryIdr)]
    pub params: Params,

    /// How the test pattern becomes H.264: `live` encodes every frame; `loop` encodes about
    /// a second of it once at start and publishes that loop over and over, with fresh frame
    /// numbers and capture times (for machines whose OpenH264, built without nasm, cannot
    /// encode the size in real time); `auto` measures the encoder at start and takes `loop`
    /// when it is not at least 1.25 times as fast as --fps. Ignored with --input.
    #[arg(long, value_enum, value_name = "HOW", default_value_t = Encode::Auto)]
    pub encode: Encode,

    /// Copy each H.264 frame into its slot in small pieces with pauses, widening the window in
    /// which a reader can see a half-written slot (to test torn-read guards).
    #[arg(long)]
    pub slow_copy: bool,

    /// Also publish the raw NV12 picture of the test pattern (format 1) into this second
    /// segment, like the board's /pet_camera_active_frame. Always copied in one piece.
    #[arg(long, value_name = "NAME", value_parser = args::shm_name)]
    pub nv12_shm: Option<String>,

    /// Every SECS seconds (decimals allowed) switch between the full rate (--fps,
    /// frame_interval_ms = 0) and 2 fps (frame_interval_ms = 500), as the day/night switcher does.
    #[arg(long, value_name = "SECS", value_parser = args::secs)]
    pub interval_switch: Option<Duration>,

    /// Every SECS seconds (decimals allowed) unlink the segment(s) and create them again
    /// (write_index back to 0, new inode) and restart the stream (a new encoder, or --input from
    /// its first unit), like a restarted camera daemon: the first frame after a restart is an
    /// IDR with SPS and PPS.
    #[arg(long, value_name = "SECS", value_parser = args::secs)]
    pub restart_every: Option<Duration>,

    /// Show the orange square (the "cat" detector-sim finds) for VISIBLE, then hide it for
    /// HIDDEN, over and over from the start (e.g. 10s:20s), so detection events start and end.
    /// Without it the square always shows.
    #[arg(long, value_name = "VISIBLE:HIDDEN", value_parser = Schedule::parse)]
    pub object_schedule: Option<Schedule>,

    /// Write, for every published frame, where the orange square is and whether it shows:
    /// lines of `frame_number timestamp_ns x y w h visible`, flushed as they are written (the
    /// truth detections are checked against).
    #[arg(long, value_name = "FILE")]
    pub dump_objects: Option<PathBuf>,

    /// Leave the segment(s) in place on exit (default: unlink them, like the camera daemon).
    #[arg(long)]
    pub keep: bool,

    /// Report restarts, rate switches and a summary on stderr.
    #[arg(short, long)]
    pub verbose: bool,
}

/// How the pattern is encoded (`--encode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Encode {
    /// Live when the encoder keeps up, else a loop.
    Auto,
    /// Every frame encoded as it is published.
    Live,
    /// A pre-encoded loop.
    Loop,
}

/// Whether SPS and PPS accompany every IDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Params {
    /// SPS and PPS before every IDR.
    EveryIdr,
    /// SPS and PPS only before the first IDR of each writer incarnation.
    First,
}

/// A picture size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Width in pixels, even.
    pub width: usize,
    /// Height in pixels, even.
    pub height: usize,
}

/// Checks what clap cannot express: the two segments must differ.
pub fn check(args: &Args) -> Result<(), clap::Error> {
    if args.nv12_shm.as_deref() == Some(args.shm.as_str()) {
        return Err(Args::command().error(
            clap::error::ErrorKind::ArgumentConflict,
            format!(
                "--nv12-shm must name another segment than --shm ({})",
                args.shm
            ),
        ));
    }
    Ok(())
}

/// Smallest accepted side: room for a few macroblocks and a line of text.
const MIN_SIDE: usize = 16;

fn parse_size(text: &str) -> Result<Size, String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| "expected WIDTHxHEIGHT, e.g. 1280x720".to_owned())?;
    let side = |s: &str| {
        s.trim()
            .parse::<usize>()
            .map_err(|_| format!("{s:?} is not a whole number of pixels"))
    };
    let (width, height) = (side(w)?, side(h)?);
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(format!("width and height must be at least {MIN_SIDE}"));
    }
    if width % 2 != 0 || height % 2 != 0 {
        return Err("width and height must be even (4:2:0 chroma is subsampled by 2)".to_owned());
    }
    // The NV12 picture must fit a slot; that bound also keeps H.264 at or below 1080p.
    if width.saturating_mul(height).saturating_mul(3) / 2 > SLOT_DATA_CAPACITY {
        return Err(format!(
            "{width}x{height} is larger than a slot allows ({SLOT_DATA_CAPACITY} bytes, i.e. at \
             most 1920x1080 pixels)"
        ));
    }
    if width > 3840 || height > 2160 {
        return Err("OpenH264 encodes at most 3840 pixels wide or 2160 high".to_owned());
    }
    Ok(Size { width, height })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_validated() {
        assert_eq!(
            parse_size("320x240"),
            Ok(Size {
                width: 320,
                height: 240
            })
        );
        assert!(parse_size("1920x1080").is_ok());
        assert!(parse_size("1080x1920").is_ok());
        for bad in [
            "",
            "320",
            "321x240",
            "0x0",
            "1920x1082",
            "3840x2160",
            "axb",
            "-2x4",
        ] {
            assert!(parse_size(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn shm_names_get_one_leading_slash() {
        assert_eq!(args::shm_name("cam").as_deref(), Ok("/cam"));
        assert_eq!(args::shm_name("/cam").as_deref(), Ok("/cam"));
        assert!(args::shm_name("/").is_err());
        assert!(args::shm_name("/a/b").is_err());
    }

    #[test]
    fn seconds_accept_decimals_and_reject_nonsense() {
        assert_eq!(args::secs("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["0", "-1", "nan", "inf", "x"] {
            assert!(args::secs(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Args::command().debug_assert();
    }
}
