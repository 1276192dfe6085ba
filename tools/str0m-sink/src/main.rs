//! `str0m-sink`: the camera's H.264 to WHEP viewers, built on [str0m], the sans-IO WebRTC
//! crate.
//!
//! It exists to **compare str0m with the webrtc-rs streaming sink** (`plugins/webrtc`) under the
//! same load, not to replace it: it reads the same shared-memory segment with the same core
//! crate, serves the same WHEP routes, sends the same H.264 (RFC 6184 packetization mode 1,
//! SPS and PPS in front of every IDR, RTP time = the camera's `CLOCK_MONOTONIC` at 90 kHz like
//! the sink's `rtp_timestamp_origin = "monotonic"`), so `viewerload` and the streaming bench
//! (`tools/loadbench --str0m`) measures both the same way.
//!
//! The shape is str0m's classic one: one UDP socket for every viewer, one [`str0m::Rtc`] per
//! viewer, demultiplexed with `Rtc::accepts`, and one thread that waits for a datagram, a frame,
//! a signalling request or the earliest `Rtc` timeout, feeds it in (`handle_input`) and sends
//! what comes out (`poll_output`). That thread is a single-threaded tokio runtime, which also
//! runs the small HTTP server; the shared-memory reader has its own thread, as in stackctl.
//!
//! Deliberately left out (the comparison does not need them): the legacy `/offer` API,
//! trickle ICE (`PATCH`), STUN/TURN, a GOP cache (a viewer starts at the next IDR), metrics.

mod http;
mod media;
mod server;
mod viewer;

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use stackctl_core::Bus;
use stackctl_core::bus::SubscribeOptions;
use stackctl_core::shm::{SourceConfig, SourceHandle, StartPosition};
use tokio::sync::mpsc;

const AFTER_HELP: &str = "\
WHEP
  POST /whep with Content-Type: application/sdp and a recvonly H.264 offer (packetization-mode=1)
  -> 201 Created, Location: /whep/<id>, the answer with one host candidate: the --udp socket.
  DELETE /whep/<id> -> 200 ends that viewer; 404 for an unknown one. A viewer gets frames from
  the camera's next IDR on. With --max-viewers viewers connected, one more gets 503.

RTP TIME
  RTP timestamps are the camera's capture time (CLOCK_MONOTONIC) at 90 kHz, mod 2^32, with no
  random offset, so viewerload on the same host measures end-to-end latency.

EXIT STATUS
  0  stopped by SIGTERM or SIGINT
  1  an error (the camera's segment went away for good, a socket failed, ...)
  2  usage error";

/// Streams the camera's H.264 from POSIX shared memory to WHEP viewers with str0m: the
/// side-by-side measurement of str0m against stackctl's webrtc-rs streaming sink.
#[derive(Debug, Parser)]
#[command(name = "str0m-sink", version, after_long_help = AFTER_HELP)]
struct Cli {
    /// The camera's shared-memory segment, e.g. /pet_camera_stream (waited for if absent).
    #[arg(long, value_name = "NAME")]
    shm: String,

    /// Address of the WHEP HTTP server.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    http: SocketAddr,

    /// The one UDP socket every viewer's media goes through; its address is the answer's host
    /// candidate, so it must be a concrete address, not 0.0.0.0 (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    udp: SocketAddr,

    /// Viewers at once; one more gets 503.
    #[arg(long, value_name = "N", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_viewers: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("str0m-sink: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.udp.ip().is_unspecified() {
        bail!(
            "--udp {}: name a concrete address (it is advertised as the host candidate)",
            cli.udp
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let socket = tokio::net::UdpSocket::bind(cli.udp)
            .await
            .with_context(|| format!("cannot bind UDP {}", cli.udp))?;
        let listener = tokio::net::TcpListener::bind(cli.http)
            .await
            .with_context(|| format!("cannot listen on {}", cli.http))?;
        let http_addr = listener.local_addr().context("HTTP listener address")?;
        let udp_addr = socket.local_addr().context("UDP socket address")?;

        // The camera: its reader thread publishes into the bus; a bridge thread hands every
        // frame to this runtime (a subscription's receive blocks).
        let bus = Bus::new();
        let subscription = bus.subscribe(SubscribeOptions::new("str0m"));
        // As stackctl does: start with what is still in the ring, so the SPS and PPS of a
        // camera that sends them once, at its first IDR, are in the parameter cache.
        let mut source_cfg = SourceConfig::new(cli.shm.clone());
        source_cfg.start = StartPosition::Oldest;
        let source = SourceHandle::spawn(source_cfg, bus, None)
            .context("cannot start the shared-memory reader")?;
        let frames = media::bridge(subscription).context("cannot start the frame bridge")?;

        let (commands_tx, commands) = mpsc::channel(16);
        tokio::spawn(http::serve(listener, commands_tx));
        tracing::info!(
            shm = %cli.shm,
            whep = %format!("http://{http_addr}/whep"),
            udp = %udp_addr,
            max_viewers = cli.max_viewers,
            "str0m-sink ready"
        );

        let server = server::Server::new(socket, udp_addr, cli.max_viewers as usize);
        let ended = server.run(frames, commands, shutdown_signal()).await;
        // The reader's own error (e.g. the segment went away) explains a closed stream best.
        let stopped = source.stop();
        match ended? {
            server::End::Signal => Ok(()),
            server::End::CameraGone => {
                stopped.context("the shared-memory reader failed")?;
                bail!("the camera's stream ended")
            }
        }
    })
}

/// Resolves at the first SIGTERM or SIGINT.
async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
    Ok(())
}

/// How long a viewer may take from its answer to a connected DTLS session.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
