//! `sink-webrtc`: stackctl's streaming sink. It serves the camera's H.264 live to browsers
//! over WebRTC, passthrough (no decoding, no re-encoding), to many viewers at once.
//!
//! ```toml
//! [plugins.streaming]
//! path = "libsink_webrtc.so"
//! max_clients = 10          # legacy --max-clients / STREAMING_MAX_CLIENTS
//! stun = []                 # none needed on a LAN
//! ```
//!
//! Signalling on stackctl's HTTP port: WHEP (`POST /whep`, `PATCH`/`DELETE /whep/<id>`), the
//! legacy JSON offer (`POST /offer`, `POST /api/webrtc/offer`), and a viewer page at `/`.
//! Every access unit is cut into RTP payloads once ([`rtp`]) and fanned out to a bounded queue
//! per viewer ([`hub`]); each viewer's connection ([`session`]) writes its own headers.

pub mod batch;
pub mod config;
pub mod hub;
pub mod keyframe;
pub mod metrics;
pub mod mux;
pub mod sdp;
pub mod session;
pub mod signalling;
pub mod trim;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use stackctl_sink_sdk::{Context, Error, Frame, Request, Responder, Sink, export_sink};

pub use crate::config::Config;
use stackctl_media::monotonic_ns;

use crate::hub::{Hub, Packetized};
use crate::metrics::Metrics;
use crate::session::Sessions;

/// How long `stop` waits for the connections to close.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The streaming sink.
pub struct StreamingSink {
    hub: Arc<Hub>,
    sessions: Arc<Sessions>,
    runtime: tokio::runtime::Handle,
}

impl Sink for StreamingSink {
    type Config = Config;
    const NAME: &'static str = "streaming";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ROUTES: &'static [&'static str] = &["/", "/offer", "/api/webrtc/offer", "/whep"];

    fn check(config: &Config) -> Result<(), Error> {
        config.validate()
    }

    fn start(config: Config, ctx: Context) -> Result<Self, Error> {
        let runtime = ctx.runtime_with_workers(config.worker_threads())?;
        let hub = Arc::new(Hub::new(
            Arc::new(Metrics::default()),
            config.max_clients,
            config.viewer_queue,
            config.gop_cache,
        ));
        tracing::info!(
            max_clients = config.max_clients,
            bind = ?config.bind,
            stun = ?config.stun,
            "serving WebRTC viewers"
        );
        let mux = match config.udp_port {
            0 => None,
            port => Some(
                mux::UdpMux::bind(&config.bind, port, &runtime)
                    .map_err(|e| Error::config("udp_port", format_args!("{port}: {e}")))?,
            ),
        };
        let sessions = Sessions::new(Arc::clone(&hub), config, runtime.clone(), mux);
        Ok(Self {
            hub,
            sessions,
            runtime,
        })
    }

    fn on_frame(&self, frame: &Frame<'_>) {
        let started = Instant::now();
        let metrics = &self.hub.metrics;
        metrics.frames_read.fetch_add(1, Relaxed);
        let age = monotonic_ns().saturating_sub(frame.timestamp_ns());
        metrics.frame_latency_us.store(age / 1000, Relaxed);
        let Some(packetized) =
            Packetized::new(frame.data(), frame.sps(), frame.pps(), frame.timestamp_ns())
        else {
            metrics.read_errors.fetch_add(1, Relaxed);
            return;
        };
        metrics.frames_processed.fetch_add(1, Relaxed);
        self.hub.publish(packetized, frame.sps());
        metrics
            .process_latency_us
            .store(started.elapsed().as_micros() as u64, Relaxed);
    }

    fn on_http(&self, request: Request, responder: Responder) {
        let sessions = Arc::clone(&self.sessions);
        self.runtime.spawn(async move {
            let reply = signalling::handle(&sessions, request).await;
            let mut headers: Vec<(&str, &str)> = vec![("Content-Type", reply.content_type)];
            headers.extend(reply.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            responder.respond(reply.status, &headers, &reply.body);
        });
    }

    fn metrics(&self) -> String {
        self.hub.metrics.render(&self.hub.snapshot())
    }

    fn stop(&self) {
        let sessions = Arc::clone(&self.sessions);
        let closed = self
            .runtime
            .block_on(async move { tokio::time::timeout(STOP_GRACE, sessions.close_all()).await });
        if closed.is_err() {
            tracing::warn!("viewers still closing after {STOP_GRACE:?}; dropping them");
        }
    }
}

export_sink!(StreamingSink);
