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
    /// Start the stack in the foreground and keep it running (what systemd runs).
    Up(UpArgs),
    /// Show every service's state, pid, uptime, restarts, last exit, CPU and memory.
    Status(StatusArgs),
    /// Restart one service (its crash-loop budget starts over).
    Restart(ServiceArgs),
    /// Stop one service; it stays stopped until `stackctl start`.
    Stop(ServiceArgs),
    /// Start a stopped or failed service.
    Start(ServiceArgs),
    /// Show a service's recent output.
    Logs(LogsArgs),
    /// Stop the whole stack (in reverse dependency order) and end `stackctl up`.
    Down(SocketArgs),
    /// Print the effective configuration as TOML.
    Config(ConfigArgs),
    /// Validate the configuration, executables, directories and plugins; start nothing.
    Check(ConfigFlags),
    /// List the sink plugins configured and found, with their ABI, version and routes.
    Plugins(ConfigFlags),
    /// Look at the camera's shared-memory segments (the first stop when the stream is black).
    #[command(subcommand)]
    Shm(ShmCommand),
}

/// Where the configuration comes from, and the legacy launch script's options (declared once,
/// in `stackctl_config::Flags`).
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigFlags {
    /// Configuration file [default: ./stackctl.toml, then /etc/stackctl/stackctl.toml].
    #[arg(long, short, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The flags that set configuration keys.
    #[command(flatten)]
    pub flags: stackctl_config::Flags,
}

/// Arguments of `stackctl up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Configuration.
    #[command(flatten)]
    pub config: ConfigFlags,
    /// Log format: `text` (human-readable; no timestamps when standard error is the journal,
    /// which stamps lines itself) or `json` (one object per line) [default: `log.format`].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,
}

/// The log formats selectable on the command line (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for stackctl_config::LogFormat {
    fn from(arg: LogFormatArg) -> Self {
        match arg {
            LogFormatArg::Text => Self::Text,
            LogFormatArg::Json => Self::Json,
        }
    }
}

/// How a control command finds the running `stackctl up`.
#[derive(Debug, Args, Clone, Default)]
pub struct SocketArgs {
    /// The control socket [default: `[control] socket` of the configuration].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Configuration file naming the socket.
    #[arg(long, short, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// Arguments of `stackctl status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where `stackctl up` listens.
    #[command(flatten)]
    pub socket: SocketArgs,
}

/// A command on one service.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// The service's name, as in `[services.NAME]`.
    pub service: String,
    /// Where `stackctl up` listens.
    #[command(flatten)]
    pub socket: SocketArgs,
}

/// Arguments of `stackctl logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The service's name.
    pub service: String,
    /// Keep printing new lines.
    #[arg(long, short)]
    pub follow: bool,
    /// How many past lines.
    #[arg(long, short = 'n', default_value_t = 100)]
    pub lines: usize,
    /// Where `stackctl up` listens.
    #[command(flatten)]
    pub socket: SocketArgs,
}

/// Arguments of `stackctl config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Show where each value came from (default, file and line, environment variable, flag).
    #[arg(long)]
    pub explain: bool,
    /// Configuration.
    #[command(flatten)]
    pub config: ConfigFlags,
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
    /// Stop after this many seconds without a frame (default: wait for the camera forever).
    #[arg(long, value_name = "SECS")]
    pub idle: Option<f64>,
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
