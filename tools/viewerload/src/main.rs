//! `viewerload`: opens N WebRTC viewers against a stackctl server and reports time to first
//! frame, fps, loss and end-to-end latency.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use viewerload::load::{self, LoadOptions};
use viewerload::{Signalling, ViewerOptions};

const AFTER_HELP: &str = "\
LATENCY
  Latency is measured per frame as (arrival of its last RTP packet) - (capture time), both on
  CLOCK_MONOTONIC. The capture time is read from the RTP timestamp, which only carries it when
  the server is configured with

      rtp_timestamp_origin = \"monotonic\"

  (RTP timestamp = camera CLOCK_MONOTONIC * 90 kHz, mod 2^32), and only when viewerload runs on
  the same host as the camera. Otherwise every latency comes out implausible (outside [0, 10 s))
  and the report says \"latency unavailable\". Frames that finish arriving during --warmup are
  left out of latency and fps.

EXIT STATUS
  0  every viewer connected and received at least one complete frame
  1  some viewer did not (see the errors in the report)
  2  usage error";

/// Opens N WebRTC viewers against a stackctl streaming sink and measures what they receive.
#[derive(Debug, Parser)]
#[command(name = "viewerload", version, after_long_help = AFTER_HELP)]
struct Cli {
    /// Server base URL (WHEP at {url}/whep, legacy API at {url}/offer).
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    url: String,

    /// Number of concurrent viewers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    viewers: u32,

    /// How long each viewer watches, from the start of its connect (e.g. 10s, 1m).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,

    /// Signalling: WHEP, or the legacy JSON offer API.
    #[arg(long, value_enum, default_value_t = SignallingArg::Whep)]
    signalling: SignallingArg,

    /// Legacy offer path (with --signalling offer), e.g. /api/webrtc/offer.
    #[arg(long, default_value = "/offer")]
    offer_path: String,

    /// Pause between starting two viewers (e.g. 50ms).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    ramp: Duration,

    /// Local address for the viewers' UDP sockets. Must be concrete, not 0.0.0.0: a wildcard
    /// never yields loopback candidates.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,

    /// Start of each viewer's run excluded from latency and fps.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,

    /// Limit for ICE gathering plus signalling, per viewer.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,

    /// Each viewer's UDP receive buffer in bytes (0: the system's default). Beyond
    /// net.core.rmem_max only as root. Many viewers in one process need more than the usual
    /// 208 kB: they all get a GOP's worth of frames as they connect.
    #[arg(long, default_value_t = viewerload::viewer::DEFAULT_RECV_BUFFER)]
    recv_buffer: usize,

    /// Lose every Nth RTP datagram received, as a lossy network would (0: none). The
    /// server's NACK repairs then show as late packets; what it cannot repair, as lost.
    #[arg(long, default_value_t = 0)]
    lose_every: u64,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SignallingArg {
    /// POST {url}/whep (application/sdp), DELETE the session at the end.
    Whep,
    /// POST {url}{offer-path} with {"type":"offer","sdp":...}.
    Offer,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.warmup >= cli.duration {
        eprintln!(
            "viewerload: --warmup ({}) must be shorter than --duration ({})",
            humantime::format_duration(cli.warmup),
            humantime::format_duration(cli.duration)
        );
        return ExitCode::from(2);
    }
    if cli.bind.is_unspecified() {
        eprintln!(
            "viewerload: --bind needs a concrete address such as 127.0.0.1, not {}",
            cli.bind
        );
        return ExitCode::from(2);
    }
    let viewer = ViewerOptions {
        signalling: match cli.signalling {
            SignallingArg::Whep => Signalling::Whep,
            SignallingArg::Offer => Signalling::Offer,
        },
        bind: cli.bind,
        connect_timeout: cli.connect_timeout,
        offer_path: cli.offer_path.clone(),
        recv_buffer: cli.recv_buffer,
        lose_every: cli.lose_every,
        ..ViewerOptions::new(cli.url.clone())
    };
    // Reject a bad URL as a usage error rather than N identical viewer failures.
    if let Err(e) = viewerload::signalling::check_base_url(&viewer.base_url) {
        eprintln!("viewerload: {e}");
        return ExitCode::from(2);
    }
    let opts = LoadOptions {
        viewer,
        viewers: cli.viewers as usize,
        duration: cli.duration,
        ramp: cli.ramp,
        warmup: cli.warmup,
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("viewerload: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let report = runtime.block_on(load::run(&opts));

    if cli.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("viewerload: cannot encode the report: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        print!("{report}");
    }
    if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
