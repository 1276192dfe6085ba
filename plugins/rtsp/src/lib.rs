//! `sink-rtsp`: stackctl's RTSP server. It serves the camera's H.264 live to NVRs (Frigate,
//! Blue Iris, Synology), Home Assistant, VLC and ffmpeg over RTSP 1.0 (RFC 2326), passthrough:
//! no decoding, no re-encoding.
//!
//! ```toml
//! [plugins.rtsp]
//! path = "libsink_rtsp.so"
//! port = 8554                # rtsp://board:8554/live
//! mount = "live"
//! max_clients = 10
//! ```
//!
//! Every access unit is cut into RTP payloads once ([`feed`]) and queued for each playing
//! client; each client's sender writes its own RTP headers, interleaved on its RTSP
//! connection ([`conn`]) or as UDP datagrams ([`udp`]). Requests are parsed by `rtsp-types`
//! within [`framing`]'s limits and answered by [`handler`]; each session follows
//! [`machine`]. Keys: [`config`]; users and password hashes: [`auth`].

pub mod auth;
pub mod config;
pub mod conn;
pub mod feed;
pub mod framing;
pub mod handler;
pub mod machine;
pub mod metrics;
mod random;
pub mod rtp_out;
pub mod sdp;
pub mod server;
pub mod session;
pub mod udp;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use stackctl_media::rtp::{MAX_PAYLOAD, RtpAccessUnit};
use stackctl_sink_sdk::{Context, Error, Frame, Sink, export_sink};

pub use crate::config::Config;
use crate::server::Server;

/// The RTSP sink.
pub struct RtspSink {
    server: Arc<Server>,
    runtime: tokio::runtime::Handle,
}

impl Sink for RtspSink {
    type Config = Config;
    const NAME: &'static str = "rtsp";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    /// The ranges and names at `create`, so `stackctl check` (exit 2) reports them with the
    /// key, rather than `up` at start; only binding the ports is left to `start`.
    fn check(config: &Config) -> Result<(), Error> {
        config.clone().validate().map(|_| ())
    }

    fn start(config: Config, ctx: Context) -> Result<Self, Error> {
        let config = config.validate()?;
        let listener = std::net::TcpListener::bind((config.bind, config.port)).map_err(|e| {
            Error::config("port", format_args!("{}:{}: {e}", config.bind, config.port))
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::failed(format!("RTSP listener: {e}")))?;
        let runtime = ctx.runtime_with_workers(config.worker_threads())?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)
                .map_err(|e| Error::failed(format!("RTSP listener: {e}")))?
        };
        tracing::info!(
            url = %format_args!("rtsp://{}:{}/{}", config.bind, config.port, config.mount),
            max_clients = config.max_clients,
            udp_ports = ?config.udp_ports,
            users = config.users.len(),
            "serving RTSP"
        );
        let server = Server::new(config);
        runtime.spawn(Arc::clone(&server).run(listener));
        Ok(Self { server, runtime })
    }

    fn on_frame(&self, frame: &Frame<'_>) {
        let metrics = &self.server.metrics;
        metrics.frames_received.fetch_add(1, Relaxed);
        match RtpAccessUnit::new(
            frame.data(),
            frame.sps(),
            frame.pps(),
            frame.timestamp_ns(),
            MAX_PAYLOAD,
        ) {
            Ok(au) => self.server.feed.publish(au, frame.sps(), frame.pps()),
            Err(_) => {
                metrics.frames_invalid.fetch_add(1, Relaxed);
            }
        }
    }

    fn metrics(&self) -> String {
        self.server.metrics.render(&self.server.snapshot())
    }

    fn stop(&self) {
        self.server.stop();
        // The connections see the stop and close; give them a moment to say goodbye.
        let server = Arc::clone(&self.server);
        let _ = self.runtime.block_on(async move {
            tokio::time::timeout(std::time::Duration::from_secs(2), async {
                while server.snapshot().connections > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            })
            .await
        });
    }
}

export_sink!(RtspSink);
