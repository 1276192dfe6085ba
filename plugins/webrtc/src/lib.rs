//! `sink-webrtc`: stackctl's streaming sink. It serves the camera's H.264 live to browsers
//! over WebRTC, passthrough (no decoding, no re-encoding), to many viewers at once.
//!
//! ```toml
//! [plugins.streaming]
//! path = "libsink_webrtc.so"
//! max_clients = 10          # legacy --max-clients / STREAMING_MAX_CLIENTS
//! udp_port = 8555           # one UDP port for every viewer
//! ```
//!
//! Signalling on stackctl's HTTP port: WHEP (`POST /whep`, `PATCH`/`DELETE /whep/<id>`), the
//! legacy JSON offer (`POST /offer`, `POST /api/webrtc/offer`), and a viewer page at `/`
//! ([`signalling`]). An offer is answered on the thread that took it ([`sessions`], [`peer`]);
//! the viewer then belongs to one worker thread ([`worker`]), which drives its peer connection
//! (webrtc-rs's sans-IO core, `rtc`) with no async runtime: batched UDP in and out ([`udp`],
//! [`route`]), every frame cut into RTP payloads once ([`frame`]) and written to every viewer
//! in one pass, each viewer fed by its own [`feed`] (the GOP cache first, paced by [`pace`],
//! then live; the workspace's one IDR gate decides what it skips). WHIP publications
//! (`[[plugins.streaming.publish]]`, [`publish`]) are connections the sink offers to an SFU,
//! fed by the same workers as viewers.

pub mod admission;
pub mod config;
pub mod feed;
pub mod frame;
pub mod hub;
pub mod keyframe;
pub mod metrics;
pub mod nack;
pub mod overlay;
pub mod pace;
pub mod peer;
pub mod publish;
pub mod route;
pub mod sdp;
pub mod sessions;
pub mod signalling;
pub mod stun;
pub mod trim;
pub mod udp;
pub mod viewer;
pub mod worker;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use stackctl_media::monotonic_ns;
use stackctl_sink_sdk::{Context, Detections, Error, Frame, Request, Responder, Sink, export_sink};

pub use crate::config::Config;
use crate::frame::Packetized;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::overlay::Overlay;
use crate::publish::Publishers;
use crate::sessions::Sessions;

/// How long `stop` waits for the workers to close their viewers.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long `stop` waits for the publications to delete their sessions (each DELETE has
/// [`publish::DELETE_TIMEOUT`]).
const PUBLISH_STOP_GRACE: Duration = Duration::from_secs(3);

/// `GET /publish`: the WHIP publications' state.
fn publish_status(publishers: &Publishers, request: &Request) -> signalling::Reply {
    if !matches!(request.method(), "GET" | "HEAD") {
        return signalling::Reply::error(405, "method not allowed: use GET");
    }
    signalling::Reply {
        status: 200,
        headers: Vec::new(),
        content_type: "application/json",
        body: publishers.status().to_string().into_bytes(),
    }
}

/// The streaming sink.
pub struct StreamingSink {
    hub: Arc<Hub>,
    sessions: Arc<Sessions>,
    publishers: Publishers,
    /// `detections`: results go to viewers' detections channels.
    detections: bool,
}

impl Sink for StreamingSink {
    type Config = Config;
    const NAME: &'static str = "streaming";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ROUTES: &'static [&'static str] =
        &["/", "/offer", "/api/webrtc/offer", "/whep", "/publish"];
    // The boxes for the viewer page's overlay (`detections` data channels).
    const WANTS_DETECTIONS: bool = true;

    fn check(config: &Config) -> Result<(), Error> {
        config.validate()
    }

    fn start(mut config: Config, _ctx: Context) -> Result<Self, Error> {
        // The publications' STUN servers give the sink its public address too.
        config.stun = config.gathering_servers();
        let publications = std::mem::take(&mut config.publish);
        let detections = config.detections;
        let hub = Arc::new(Hub::new(
            Arc::new(Metrics::default()),
            config.max_clients,
            config.pending_limit(),
            config.viewer_queue,
        ));
        tracing::info!(
            max_clients = config.max_clients,
            max_pending = config.pending_limit(),
            bind = ?config.bind,
            udp_port = config.udp_port,
            stun = ?config.stun,
            "serving WebRTC viewers"
        );
        let sessions = Sessions::start(Arc::clone(&hub), config)?;
        let publishers = Publishers::start(&sessions, &publications)?;
        Ok(Self {
            hub,
            sessions,
            publishers,
            detections,
        })
    }

    fn on_frame(&self, frame: &Frame<'_>) {
        let started = Instant::now();
        let metrics = &self.hub.metrics;
        metrics.frames_read.fetch_add(1, Relaxed);
        let age = monotonic_ns().saturating_sub(frame.timestamp_ns());
        metrics.frame_latency_us.store(age / 1000, Relaxed);
        if let Some(sps) = frame.sps() {
            self.hub.camera_sps(sps);
        }
        let Some(packetized) = Packetized::new(
            frame.data(),
            frame.sps(),
            frame.pps(),
            frame.timestamp_ns(),
            started,
        ) else {
            metrics.read_errors.fetch_add(1, Relaxed);
            return;
        };
        metrics.frames_processed.fetch_add(1, Relaxed);
        self.sessions.publish(packetized);
        metrics
            .process_latency_us
            .store(started.elapsed().as_micros() as u64, Relaxed);
    }

    fn on_detections(&self, detections: &Detections<'_>) {
        // Costs nothing but this check while no viewer has a detections channel.
        if !self.detections || self.hub.metrics.detection_channels.load(Relaxed) == 0 {
            return;
        }
        self.sessions
            .publish_overlay(Overlay::of(detections, Instant::now()));
    }

    fn on_http(&self, request: Request, responder: Responder) {
        // Answering an offer builds a connection (a millisecond or two, no I/O): done on the
        // host's thread, which may block.
        let reply = if request.path().trim_end_matches('/') == "/publish" {
            publish_status(&self.publishers, &request)
        } else {
            signalling::handle(&self.sessions, &request)
        };
        let mut headers: Vec<(&str, &str)> = vec![("Content-Type", reply.content_type)];
        headers.extend(reply.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        responder.respond(reply.status, &headers, &reply.body);
    }

    fn metrics(&self) -> String {
        let mut text = self.hub.metrics.render(&self.hub.snapshot());
        text.push_str(&self.publishers.render());
        text
    }

    fn stop(&self) {
        // The publications first: each deletes its session at the endpoint.
        self.publishers.stop(PUBLISH_STOP_GRACE);
        self.sessions.stop(STOP_GRACE);
    }
}

export_sink!(StreamingSink);
