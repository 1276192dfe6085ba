//! One viewer's WebRTC connection: built from its offer, answered with every candidate
//! gathered, fed from its queue, and removed when it fails, is deleted or the sink stops.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{NackResponderBuilder, SenderReportBuilder, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_H264;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{Notify, mpsc};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCIceServer,
    RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
};
use webrtc::runtime::Runtime;

use crate::batch::SinkRuntime;
use crate::config::{Config, TimestampOrigin};
use crate::hub::{Hub, Packetized, State, Viewer};
use crate::keyframe::{self, KeyframeRequests};
use crate::mux::{MuxConnection, UdpMux, ice_credentials};
use crate::sdp::{self, H264Format};
use crate::trim::Trimmer;

/// Why an offer got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The offer itself is wrong (400).
    #[error(transparent)]
    Offer(#[from] sdp::OfferError),
    /// The hub refused (503).
    #[error(transparent)]
    Refused(#[from] crate::hub::Refused),
    /// WebRTC failed to build the connection or the answer (500).
    #[error("WebRTC: {0}")]
    WebRtc(String),
}

fn webrtc_err(e: impl std::fmt::Display) -> SessionError {
    SessionError::WebRtc(e.to_string())
}

/// A live connection, kept by the [`Sessions`] table until removed.
struct Session {
    viewer: Arc<Viewer>,
    pc: Arc<dyn PeerConnection>,
}

/// Every viewer's connection, and what building one needs.
pub struct Sessions {
    hub: Arc<Hub>,
    config: Config,
    mux: Option<Arc<UdpMux>>,
    runtime: tokio::runtime::Handle,
    /// Returns departed viewers' memory to the system.
    trimmer: Trimmer,
    table: std::sync::Mutex<std::collections::HashMap<String, Session>>,
}

/// A new viewer's answer.
#[derive(Debug)]
pub struct Answer {
    /// Its id.
    pub id: String,
    /// The answer SDP, with every gathered candidate.
    pub sdp: String,
}

impl Sessions {
    /// A table feeding viewers from `hub`, with connections driven on `runtime`, all on
    /// the shared UDP port `mux` if there is one.
    pub fn new(
        hub: Arc<Hub>,
        config: Config,
        runtime: tokio::runtime::Handle,
        mux: Option<Arc<UdpMux>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            hub,
            config,
            mux,
            trimmer: Trimmer::spawn(&runtime),
            runtime,
            table: std::sync::Mutex::default(),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Session>> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counts a malformed request.
    pub fn count_invalid(&self) {
        self.hub.metrics.rejected_invalid.fetch_add(1, Relaxed);
    }

    /// Answers an offer: checks it, admits a viewer, builds its connection and waits for ICE
    /// gathering (bounded by `gather_timeout`). On any error nothing stays allocated.
    pub async fn open(self: &Arc<Self>, offer: String) -> Result<Answer, SessionError> {
        let formats = sdp::video_h264(&offer)?;
        let camera = self.hub.camera().ok_or(crate::hub::Refused::NoVideo)?;
        let format = sdp::choose(&formats, camera.profile)?.clone();
        let offer = RTCSessionDescription::offer(offer)
            .map_err(|e| sdp::OfferError::Malformed(e.to_string()))?;
        let (viewer, rx) = self.hub.admit()?;
        match self.connect(&viewer, offer, &format).await {
            Ok((pc, track, sdp)) => {
                let session = Session {
                    viewer: Arc::clone(&viewer),
                    pc: Arc::clone(&pc),
                };
                self.table().insert(viewer.id.clone(), session);
                self.spawn_sender(Arc::clone(&viewer), track, rx, format.payload_type);
                self.spawn_connect_deadline(Arc::clone(&viewer));
                Ok(Answer {
                    id: viewer.id.clone(),
                    sdp,
                })
            }
            Err(e) => {
                self.hub.remove(&viewer.id);
                self.hub.metrics.webrtc_errors.fetch_add(1, Relaxed);
                Err(e)
            }
        }
    }

    /// Builds the connection, sets the offer and the answer, waits for gathering.
    async fn connect(
        self: &Arc<Self>,
        viewer: &Arc<Viewer>,
        offer: RTCSessionDescription,
        format: &H264Format,
    ) -> Result<(Arc<dyn PeerConnection>, Arc<TrackLocalStaticRTP>, String), SessionError> {
        let codec = RTCRtpCodec {
            mime_type: MIME_TYPE_H264.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: format.fmtp.clone(),
            rtcp_feedback: ["nack", "nack pli", "ccm fir"]
                .iter()
                .map(|fb| {
                    let (typ, parameter) = fb.split_once(' ').unwrap_or((fb, ""));
                    RTCPFeedback {
                        typ: typ.to_owned(),
                        parameter: parameter.to_owned(),
                    }
                })
                .collect(),
        };
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: codec.clone(),
                    payload_type: format.payload_type,
                },
                RtpCodecKind::Video,
            )
            .map_err(webrtc_err)?;
        // What a send-only stream needs, and no more: every interceptor runs on every packet.
        // NACKs are answered from the last 1024 packets (a second at 8 Mbit/s), sender
        // reports let the browser map RTP time to wall time, and PLI/FIR are counted. The
        // defaults would add a NACK generator, receiver reports and TWCC feedback for media
        // this side never receives, and simulcast header extensions on every packet.
        let registry = Registry::new()
            .with(Slot::NackResponder, NackResponderBuilder::new().build())
            .with(Slot::SenderReport, SenderReportBuilder::new().build())
            .with(Slot::from(keyframe::SLOT), KeyframeRequests::default());
        let config = &self.config;
        let mut settings = SettingEngineBuilder::new()
            .with_ice_timeouts(
                Some(config.disconnect_timeout),
                Some(config.failed_timeout),
                Some(Duration::from_secs(2)),
            )
            // Checks every 50 ms instead of 200 (for as long in total): the answer-to-connected
            // time is mostly the answerer waiting for its next check.
            .with_ice_connection_attempts(Some(Duration::from_millis(50)), Some(28))
            // mDNS costs a multicast socket per viewer; without it a browser's `.local`
            // candidates are ignored, and its checks reveal its address anyway.
            .with_multicast_dns_mode(if config.mdns {
                MulticastDnsMode::QueryOnly
            } else {
                MulticastDnsMode::Disabled
            });
        if !config.nat_ips.is_empty() {
            settings = settings.with_nat_1to1_ips(
                config.nat_ips.iter().map(ToString::to_string).collect(),
                webrtc::peer_connection::RTCIceCandidateType::Host,
            );
        }
        let rtc_config = RTCConfigurationBuilder::new()
            .with_ice_servers(if config.stun.is_empty() {
                Vec::new()
            } else {
                vec![RTCIceServer {
                    urls: config.stun.clone(),
                    ..Default::default()
                }]
            })
            .build();
        let gathered = Arc::new(Notify::new());
        let events = Arc::new(Events {
            sessions: Arc::downgrade(self),
            viewer: Arc::clone(viewer),
            gathered: Arc::clone(&gathered),
        });
        let binds: Vec<SocketAddr> = config
            .bind
            .iter()
            .map(|ip| SocketAddr::new(*ip, 0))
            .collect();
        let muxed = self.mux.as_ref().map(|mux| {
            let (ufrag, password) = ice_credentials();
            settings = std::mem::take(&mut settings).with_ice_credentials(ufrag.clone(), password);
            MuxConnection::new(Arc::clone(mux), ufrag)
        });
        let runtime = SinkRuntime::new(
            self.runtime.clone(),
            muxed.clone(),
            Arc::clone(&self.hub.metrics),
        );
        let pc = PeerConnectionBuilder::new()
            .with_runtime(runtime as Arc<dyn Runtime>)
            .with_configuration(rtc_config)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings.build())
            .with_handler(events)
            .with_udp_addrs(binds)
            .build()
            .await
            .map_err(webrtc_err)?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let built = async {
            let ssrc = random_u32();
            let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                "stackctl".to_owned(),
                "camera".to_owned(),
                "camera".to_owned(),
                RtpCodecKind::Video,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            )));
            pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
                .await
                .map_err(webrtc_err)?;
            pc.set_remote_description(offer)
                .await
                .map_err(|e| SessionError::Offer(sdp::OfferError::Malformed(e.to_string())))?;
            let answer = pc.create_answer(None).await.map_err(webrtc_err)?;
            let wait = gathered.notified();
            pc.set_local_description(answer).await.map_err(webrtc_err)?;
            // Candidates in the answer: the legacy client does not trickle. Gathering host
            // candidates takes a few ms; STUN may take longer, hence the bound.
            let _ = tokio::time::timeout(config.gather_timeout, wait).await;
            let local = pc
                .local_description()
                .await
                .ok_or_else(|| webrtc_err("no local description after setting it"))?;
            let sdp = match (&self.mux, &muxed) {
                (Some(mux), Some(muxed)) => mux.rewrite_candidates(&local.sdp, &muxed.bound()),
                _ => local.sdp,
            };
            Ok::<_, SessionError>((track, sdp))
        }
        .await;
        match built {
            Ok((track, sdp)) => Ok((pc, track, sdp)),
            Err(e) => {
                let _ = pc.close().await;
                Err(e)
            }
        }
    }

    /// The viewer's task: writes each queued frame as RTP and counts the viewer's keyframe
    /// requests; ends when the viewer is removed (its stop signal) or its connection closes.
    fn spawn_sender(
        self: &Arc<Self>,
        viewer: Arc<Viewer>,
        track: Arc<TrackLocalStaticRTP>,
        rx: mpsc::Receiver<Arc<Packetized>>,
        payload_type: u8,
    ) {
        let sessions = Arc::downgrade(self);
        let metrics = Arc::clone(&self.hub.metrics);
        let origin = self.config.rtp_timestamp_origin;
        self.runtime.spawn(async move {
            let ssrc = track
                .track()
                .await
                .codings()
                .first()
                .and_then(|c| c.rtp_coding_parameters.ssrc)
                .unwrap_or_default();
            let offset = match origin {
                TimestampOrigin::Random => random_u32(),
                TimestampOrigin::Monotonic => 0,
            };
            let mut sender = Sender {
                track: &track,
                viewer: &viewer,
                metrics: &metrics,
                ssrc,
                payload_type,
                offset,
                sequence: random_u32() as u16,
                first: true,
                caught_up: false,
                skipping: false,
            };
            sender.run(rx).await;
            drop(track);
            if let Some(sessions) = sessions.upgrade() {
                sessions.remove(&viewer.id, Removal::Closed).await;
            }
        });
    }

    /// Removes a viewer that has not connected within `failed_timeout` (a client that
    /// vanished after its offer).
    fn spawn_connect_deadline(self: &Arc<Self>, viewer: Arc<Viewer>) {
        let sessions = Arc::downgrade(self);
        let deadline = self.config.gather_timeout + self.config.failed_timeout;
        self.runtime.spawn(async move {
            // Ends with the viewer, so a removed viewer (and its queue) is not kept alive.
            tokio::select! {
                () = tokio::time::sleep(deadline) => {}
                () = viewer.stopped() => return,
            }
            if viewer.state() != State::Connected
                && let Some(sessions) = sessions.upgrade()
                && sessions.remove(&viewer.id, Removal::Failed).await
            {
                tracing::info!(viewer = %viewer.id, "viewer never connected: removed");
            }
        });
    }

    /// Removes a viewer and closes its connection; `true` if it was there.
    pub async fn remove(&self, id: &str, why: Removal) -> bool {
        let session = self.table().remove(id);
        let hub_had = self.hub.remove(id);
        let Some(session) = session else {
            return hub_had;
        };
        match why {
            Removal::Closed => &self.hub.metrics.removed_closed,
            Removal::Failed => &self.hub.metrics.removed_failed,
        }
        .fetch_add(1, Relaxed);
        tracing::info!(
            viewer = %id,
            reason = ?why,
            frames = session.viewer.frames_sent.load(Relaxed),
            dropped = session.viewer.frames_dropped.load(Relaxed),
            "viewer removed"
        );
        if let Err(e) = session.pc.close().await {
            tracing::debug!(viewer = %id, "close: {e}");
        }
        drop(session);
        self.trimmer.request();
        true
    }

    /// Adds trickled candidates (a WHEP `PATCH`).
    pub async fn add_candidates(
        &self,
        id: &str,
        candidates: Vec<RTCIceCandidateInit>,
    ) -> Result<bool, SessionError> {
        let pc = match self.table().get(id) {
            Some(s) => Arc::clone(&s.pc),
            None => return Ok(false),
        };
        for candidate in candidates {
            pc.add_ice_candidate(candidate).await.map_err(webrtc_err)?;
        }
        Ok(true)
    }

    /// Closes every connection (at stop).
    pub async fn close_all(&self) {
        for id in self.hub.ids() {
            self.remove(&id, Removal::Closed).await;
        }
    }
}

/// A frame older than this when its turn comes is catching up (the GOP cache, a burst):
/// it is paced, so a new viewer's socket buffer is not flooded with a whole GOP at once.
const CATCH_UP_AGE: Duration = Duration::from_millis(200);
/// Packets of a catching-up frame written between two pauses of a millisecond (~5 MB/s: a
/// 1 MB GOP in 0.2 s, well inside a receiver's default 208 kB socket buffer per pause).
const CATCH_UP_BURST: usize = 4;
/// A live frame older than this when its turn comes means the viewer (or this board) cannot
/// keep up: it skips to the next IDR rather than fall further behind.
const MAX_LAG: Duration = Duration::from_secs(1);

/// One viewer's RTP writer: its own SSRC, sequence numbers and timestamp offset.
struct Sender<'a> {
    track: &'a TrackLocalStaticRTP,
    viewer: &'a Viewer,
    metrics: &'a crate::metrics::Metrics,
    ssrc: u32,
    payload_type: u8,
    offset: u32,
    sequence: u16,
    first: bool,
    /// A frame younger than [`CATCH_UP_AGE`] went out: from now on old frames mean lag.
    caught_up: bool,
    /// Lagging: frames are dropped until an IDR that is not late.
    skipping: bool,
}

impl Sender<'_> {
    async fn run(&mut self, mut rx: mpsc::Receiver<Arc<Packetized>>) {
        loop {
            let frame = tokio::select! {
                biased;
                () = self.viewer.stopped() => return,
                frame = rx.recv() => match frame {
                    Some(frame) => frame,
                    None => return,
                },
                Some(TrackLocalEvent::OnRtcpPacket(packets)) = self.track.poll() => {
                    count_keyframe_requests(&packets, self.viewer, self.metrics);
                    continue;
                }
            };
            let age = Duration::from_nanos(
                stackctl_media::monotonic_ns().saturating_sub(frame.timestamp_ns),
            );
            if self.caught_up && age > MAX_LAG {
                self.skipping = true;
            }
            if self.skipping {
                if frame.idr && age <= MAX_LAG {
                    self.skipping = false;
                } else {
                    self.viewer.frames_dropped.fetch_add(1, Relaxed);
                    self.metrics.frames_dropped.fetch_add(1, Relaxed);
                    continue;
                }
            }
            let catching_up = age > CATCH_UP_AGE;
            if !catching_up {
                self.caught_up = true;
            }
            if !self.send(&frame, catching_up).await {
                return;
            }
        }
    }

    /// Adds packets and bytes written to the viewer's counters.
    fn count(&self, packets: u64, bytes: u64) {
        self.viewer.packets_sent.fetch_add(packets, Relaxed);
        self.viewer.bytes_sent.fetch_add(bytes, Relaxed);
    }

    /// Writes one frame; `false` when the connection is gone.
    async fn send(&mut self, frame: &Packetized, paced: bool) -> bool {
        let timestamp = stackctl_media::rtp::rtp_timestamp(frame.timestamp_ns, self.offset);
        let last = frame.payloads.len().saturating_sub(1);
        // Counted once per frame, not per packet; a frame cut short counts what went out.
        let (mut packets, mut bytes) = (0, 0);
        for (i, payload) in frame.payloads.iter().enumerate() {
            if paced && i > 0 && i % CATCH_UP_BURST == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let packet = rtc::rtp::Packet {
                header: rtc::rtp::Header {
                    version: 2,
                    marker: i == last,
                    payload_type: self.payload_type,
                    sequence_number: self.sequence,
                    timestamp,
                    ssrc: self.ssrc,
                    ..Default::default()
                },
                payload: payload.clone(),
            };
            self.sequence = self.sequence.wrapping_add(1);
            let written = self.track.write_rtp(packet).await;
            if let Err(e) = written {
                self.count(packets, bytes);
                // Closing races with writing: only a write to a live viewer is an error.
                if !self.viewer.is_stopped() {
                    tracing::debug!(viewer = %self.viewer.id, "write failed: {e}");
                    self.metrics.webrtc_errors.fetch_add(1, Relaxed);
                }
                return false;
            }
            packets += 1;
            bytes += 12 + payload.len() as u64;
        }
        self.count(packets, bytes);
        self.viewer.frames_sent.fetch_add(1, Relaxed);
        self.metrics.frames_sent.fetch_add(1, Relaxed);
        if self.first {
            self.first = false;
            self.metrics.observe_ttff(self.viewer.created.elapsed());
        }
        true
    }
}

/// Why a viewer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// DELETE, closed by the viewer, or the sink stopping.
    Closed,
    /// ICE failed, or it never connected.
    Failed,
}

/// The connection's events, routed to its viewer. Holds no reference to the connection
/// (that would be a cycle) and only a weak one to the table.
struct Events {
    sessions: Weak<Sessions>,
    viewer: Arc<Viewer>,
    gathered: Arc<Notify>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.notify_one();
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let Some(sessions) = self.sessions.upgrade() else {
            return;
        };
        tracing::debug!(viewer = %self.viewer.id, %state, "connection state");
        match state {
            RTCPeerConnectionState::Connecting => self.viewer.set_state(State::Connecting),
            RTCPeerConnectionState::Connected => {
                self.viewer.set_state(State::Connected);
                sessions.hub.go_live(&self.viewer);
                tracing::info!(viewer = %self.viewer.id, "viewer connected");
            }
            RTCPeerConnectionState::Disconnected => self.viewer.set_state(State::Disconnected),
            RTCPeerConnectionState::Failed => {
                let id = self.viewer.id.clone();
                // Not from inside the connection's own event: close() waits for it.
                sessions.runtime.clone().spawn(async move {
                    sessions.remove(&id, Removal::Failed).await;
                });
            }
            RTCPeerConnectionState::Closed => {
                let id = self.viewer.id.clone();
                sessions.runtime.clone().spawn(async move {
                    sessions.remove(&id, Removal::Closed).await;
                });
            }
            _ => {}
        }
    }
}

/// Counts a viewer's PLI and FIR requests. The camera cannot be asked for an IDR: the next
/// one comes with its GOP, so they are only counted (and logged at debug level).
fn count_keyframe_requests(
    packets: &[Box<dyn rtc::rtcp::Packet>],
    viewer: &Viewer,
    metrics: &crate::metrics::Metrics,
) {
    let n = packets
        .iter()
        .filter(|p| keyframe::is_keyframe_request(p.as_ref()))
        .count() as u64;
    if n > 0 {
        viewer.keyframe_requests.fetch_add(n, Relaxed);
        metrics.keyframe_requests.fetch_add(n, Relaxed);
        tracing::debug!(viewer = %viewer.id, "keyframe requested; the camera cannot be asked for one");
    }
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    // Without randomness, a fixed start is still valid RTP.
    let _ = getrandom::getrandom(&mut bytes);
    u32::from_be_bytes(bytes)
}
