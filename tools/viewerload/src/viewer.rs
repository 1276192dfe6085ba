//! One WebRTC viewer: a recvonly H.264 peer connection, signalled over WHEP or the legacy API.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout_at;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCBundlePolicy, RTCConfigurationBuilder, RTCIceGatheringState, RTCPeerConnectionState,
    RTCRtcpMuxPolicy, RTCSessionDescription, Registry, SettingEngineBuilder,
    register_default_interceptors,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use webrtc::runtime::Runtime;

use crate::Error;
use crate::frame::ReceivedFrame;
use crate::reassemble::{Reassembler, ReassemblyCounters, RtpIn};
use crate::runtime::ViewerRuntime;
use crate::signalling;

/// The H.264 variants offered, as a browser does: the server answers with the one that
/// matches its camera (passthrough cannot transcode). Payload types are arbitrary dynamic ones.
pub const H264_PROFILES: [(u8, &str); 5] = [
    (102, "42e01f"),
    (104, "42001f"),
    (106, "4d001f"),
    (108, "640028"),
    (110, "64001f"),
];

/// Frames buffered for [`Viewer::next_frame`] before further ones are dropped (and counted in
/// [`ViewerStats::frames_unread_dropped`]): ~8 s at 30 fps.
pub const FRAME_QUEUE: usize = 256;

/// Limit for the WHEP `DELETE` in [`Viewer::close`].
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(5);

/// How the viewer exchanges SDP with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signalling {
    /// WHEP: `POST {base}/whep` (application/sdp), `DELETE` the returned session on close.
    #[default]
    Whep,
    /// Legacy JSON API: `POST {base}{offer_path}` with `{"type":"offer","sdp":...}`.
    Offer,
}

/// SRTP replay window of each viewer's incoming media, in packets: what Chromium and Firefox
/// give libsrtp (`window_size = 1024`).
///
/// webrtc-rs's default is 64, and SRTP refuses a packet more than that many sequence numbers
/// behind the newest one as a replay. A NACK retransmission comes back a NACK interval (100 ms)
/// plus a round trip after its loss; a keyframe or a viewer that read a backlog at once puts
/// more than 64 packets in between, and the repaired packet, though it arrived, was thrown
/// away: on a loaded machine about half of them (22 of 41 in one run), which a browser would
/// have kept. With the browsers' window the tool measures the server's loss repair, not its own.
pub const SRTP_REPLAY_WINDOW: usize = 1024;

/// Each viewer's UDP receive buffer unless told otherwise: 4 MiB.
pub const DEFAULT_RECV_BUFFER: usize = 4 << 20;

/// Where and how to connect a [`Viewer`].
#[derive(Debug, Clone)]
pub struct ViewerOptions {
    /// The server, e.g. `http://127.0.0.1:8081` (paths are appended to it).
    pub base_url: String,
    /// WHEP or the legacy offer API.
    pub signalling: Signalling,
    /// Local address for the viewer's UDP socket (port chosen by the OS). Must be a concrete
    /// address: a wildcard would be expanded to the non-loopback interfaces only.
    pub bind: IpAddr,
    /// Limit for ICE gathering plus signalling in [`Viewer::connect`].
    pub connect_timeout: Duration,
    /// Path of the legacy offer endpoint: `/offer`, or `/api/webrtc/offer`.
    pub offer_path: String,
    /// The viewer's UDP receive buffer in bytes (`SO_RCVBUF`; 0 keeps the system's). Many
    /// viewers in one process need more than the default: see [`crate::runtime`].
    pub recv_buffer: usize,
    /// Lose every Nth RTP datagram received, as a lossy network would (0: none). The server's
    /// retransmissions then show as late packets.
    pub lose_every: u64,
}

impl ViewerOptions {
    /// WHEP to `base_url`, bound to 127.0.0.1, 10 s connect timeout, legacy path `/offer`.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            signalling: Signalling::Whep,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            connect_timeout: Duration::from_secs(10),
            offer_path: "/offer".to_owned(),
            recv_buffer: DEFAULT_RECV_BUFFER,
            lose_every: 0,
        }
    }
}

/// The peer connection's state, as `RTCPeerConnectionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not yet connecting.
    New,
    /// ICE/DTLS in progress.
    Connecting,
    /// Media can flow.
    Connected,
    /// Connectivity lost; may recover.
    Disconnected,
    /// Connectivity lost for good.
    Failed,
    /// Closed locally.
    Closed,
}

impl ConnectionState {
    /// Failed or Closed: no more media will come.
    pub fn is_terminal(self) -> bool {
        matches!(self, ConnectionState::Failed | ConnectionState::Closed)
    }

    fn from_rtc(state: RTCPeerConnectionState) -> Self {
        match state {
            RTCPeerConnectionState::Connecting => ConnectionState::Connecting,
            RTCPeerConnectionState::Connected => ConnectionState::Connected,
            RTCPeerConnectionState::Disconnected => ConnectionState::Disconnected,
            RTCPeerConnectionState::Failed => ConnectionState::Failed,
            RTCPeerConnectionState::Closed => ConnectionState::Closed,
            _ => ConnectionState::New,
        }
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ConnectionState::New => "new",
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Disconnected => "disconnected",
            ConnectionState::Failed => "failed",
            ConnectionState::Closed => "closed",
        };
        f.write_str(s)
    }
}

/// What a viewer has received so far.
#[derive(Debug, Clone, Copy)]
pub struct ViewerStats {
    /// RTP packets received (late and duplicate ones included).
    pub packets: u64,
    /// RTP payload bytes received.
    pub bytes: u64,
    /// Packets missing from the sequence-number space (RFC 3550 cumulative loss).
    pub lost_packets: u64,
    /// Packets that arrived after their frame was closed (dropped).
    pub late_packets: u64,
    /// Packets received twice within a frame.
    pub duplicate_packets: u64,
    /// Frames reassembled, complete or not.
    pub frames: u64,
    /// Frames reassembled with a packet missing or a malformed payload (still delivered,
    /// flagged `complete: false`).
    pub incomplete_frames: u64,
    /// Frames dropped because [`Viewer::next_frame`] was not keeping up
    /// ([`FRAME_QUEUE`] were already waiting).
    pub frames_unread_dropped: u64,
    /// When [`Viewer::connect`] started.
    pub started_at: Instant,
    /// When the peer connection first reached Connected.
    pub connected_at: Option<Instant>,
    /// When the first RTP packet arrived.
    pub first_packet_at: Option<Instant>,
    /// When the first complete frame was reassembled.
    pub first_frame_at: Option<Instant>,
    /// When the first complete frame holding an IDR was reassembled.
    pub first_idr_at: Option<Instant>,
}

impl ViewerStats {
    fn new(started_at: Instant) -> Self {
        Self {
            packets: 0,
            bytes: 0,
            lost_packets: 0,
            late_packets: 0,
            duplicate_packets: 0,
            frames: 0,
            incomplete_frames: 0,
            frames_unread_dropped: 0,
            started_at,
            connected_at: None,
            first_packet_at: None,
            first_frame_at: None,
            first_idr_at: None,
        }
    }

    fn set_counters(&mut self, c: ReassemblyCounters) {
        self.packets = c.packets;
        self.bytes = c.bytes;
        self.lost_packets = c.lost_packets;
        self.late_packets = c.late_packets;
        self.duplicate_packets = c.duplicate_packets;
        self.frames = c.frames;
        self.incomplete_frames = c.incomplete_frames;
    }
}

/// State shared between the [`Viewer`] and the peer connection's callbacks.
struct Shared {
    stats: Mutex<ViewerStats>,
    state_tx: watch::Sender<ConnectionState>,
    gathered_tx: watch::Sender<bool>,
    frames_tx: mpsc::Sender<ReceivedFrame>,
    /// The video track and its SSRC, once it opened (for PLI).
    track: Mutex<Option<(Arc<dyn TrackRemote>, u32)>>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

/// Locks a mutex whose data stays consistent even if a holder panicked (plain counters).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Handler(Arc<Shared>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.0.gathered_tx.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let state = ConnectionState::from_rtc(state);
        if state == ConnectionState::Connected {
            let mut stats = lock(&self.0.stats);
            stats.connected_at.get_or_insert_with(Instant::now);
        }
        self.0.state_tx.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if track.kind().await != RtpCodecKind::Video {
            return;
        }
        let ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
        *lock(&self.0.track) = Some((Arc::clone(&track), ssrc));
        let shared = Arc::clone(&self.0);
        // The callback runs on the connection's driver: read packets on a task of our own so
        // reassembly never holds the driver up.
        let reader = tokio::spawn(read_track(track, shared));
        if let Some(old) = lock(&self.0.reader).replace(reader) {
            old.abort();
        }
    }
}

async fn read_track(track: Arc<dyn TrackRemote>, shared: Arc<Shared>) {
    let mut reassembler = Reassembler::new();
    while let Some(event) = track.poll().await {
        let packet = match event {
            TrackRemoteEvent::OnRtpPacket(packet) => packet,
            TrackRemoteEvent::OnEnded => break,
            _ => continue,
        };
        // Arrival is stamped here, after SRTP and the interceptors: what an application sees.
        let arrival_ns = stackctl_media::clock::monotonic_ns();
        let arrival = Instant::now();
        let frames = reassembler.push(RtpIn {
            sequence_number: packet.header.sequence_number,
            timestamp: packet.header.timestamp,
            marker: packet.header.marker,
            payload: &packet.payload,
            arrival_ns,
        });
        let mut stats = lock(&shared.stats);
        stats.set_counters(reassembler.counters());
        stats.first_packet_at.get_or_insert(arrival);
        for frame in frames {
            if frame.complete {
                stats.first_frame_at.get_or_insert(arrival);
                if stats.first_idr_at.is_none() && frame.is_idr() {
                    stats.first_idr_at = Some(arrival);
                }
            }
            if shared.frames_tx.try_send(frame).is_err() {
                stats.frames_unread_dropped += 1;
            }
        }
    }
}

fn media_engine() -> Result<(MediaEngine, Registry), Error> {
    let mut media_engine = MediaEngine::default();
    for (payload_type, profile) in H264_PROFILES {
        media_engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: "video/H264".to_owned(),
                    clock_rate: 90_000,
                    channels: 0,
                    sdp_fmtp_line: format!(
                        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile}"
                    ),
                    rtcp_feedback: vec![],
                },
                payload_type,
            },
            RtpCodecKind::Video,
        )?;
    }
    // NACK, receiver reports and TWCC feedback, as a browser sends them: the server's
    // behaviour under load includes answering those.
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
    Ok((media_engine, registry))
}

/// A connected (or connecting) WebRTC viewer of the server's H.264 stream.
pub struct Viewer {
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    frames_rx: mpsc::Receiver<ReceivedFrame>,
    state_rx: watch::Receiver<ConnectionState>,
    session_url: Option<String>,
    closed: bool,
}

impl fmt::Debug for Viewer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Viewer")
            .field("session_url", &self.session_url)
            .field("state", &*self.state_rx.borrow())
            .finish_non_exhaustive()
    }
}

impl Viewer {
    /// Opens a peer connection, offers a recvonly H.264 video transceiver once ICE gathering
    /// is complete (no trickle), signals it, and applies the answer.
    ///
    /// Returns as soon as the answer is applied; await [`Viewer::wait_connected`] or watch
    /// [`Viewer::state`] for the connection itself. On failure nothing is left behind: the peer
    /// connection is closed and a WHEP session already created is deleted.
    pub async fn connect(opts: &ViewerOptions) -> Result<Viewer, Error> {
        let started_at = Instant::now();
        let deadline = tokio::time::Instant::now() + opts.connect_timeout;
        // Checked before any socket is opened, so a bad URL is a clean error.
        signalling::check_base_url(&opts.base_url)?;

        let (state_tx, state_rx) = watch::channel(ConnectionState::New);
        let (gathered_tx, mut gathered_rx) = watch::channel(false);
        let (frames_tx, frames_rx) = mpsc::channel(FRAME_QUEUE);
        let shared = Arc::new(Shared {
            stats: Mutex::new(ViewerStats::new(started_at)),
            state_tx,
            gathered_tx,
            frames_tx,
            track: Mutex::new(None),
            reader: Mutex::new(None),
        });

        let (media_engine, registry) = media_engine()?;
        let config = RTCConfigurationBuilder::new()
            .with_bundle_policy(RTCBundlePolicy::MaxBundle)
            .with_rtcp_mux_policy(RTCRtcpMuxPolicy::Require)
            .build();
        let pc = PeerConnectionBuilder::new()
            .with_runtime(
                Arc::new(ViewerRuntime::new(opts.recv_buffer).with_loss(opts.lose_every))
                    as Arc<dyn Runtime>,
            )
            .with_configuration(config)
            .with_media_engine(media_engine)
            .with_setting_engine(
                SettingEngineBuilder::new()
                    .with_srtp_replay_protection_window(SRTP_REPLAY_WINDOW)
                    .build(),
            )
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler(Arc::clone(&shared))))
            // A concrete address is bound as given, loopback included (a wildcard would skip
            // loopback). `with_include_loopback_candidate` is not needed: in webrtc 0.21.1
            // nothing reads it, host candidates come straight from the bound sockets.
            .with_udp_addrs(vec![SocketAddr::new(opts.bind, 0)])
            .build()
            .await?;
        let mut viewer = Viewer {
            pc: Arc::new(pc),
            shared,
            frames_rx,
            state_rx,
            session_url: None,
            closed: false,
        };

        let negotiated = async {
            viewer
                .pc
                .add_transceiver_from_kind(
                    RtpCodecKind::Video,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        ..Default::default()
                    }),
                )
                .await?;
            let offer = viewer.pc.create_offer(None).await?;
            viewer.pc.set_local_description(offer).await?;
            timeout_at(deadline, gathered_rx.wait_for(|done| *done))
                .await
                .map_err(|_| Error::Timeout {
                    after: opts.connect_timeout,
                    during: "waiting for ICE gathering to complete",
                })?
                .map_err(|_| Error::Timeout {
                    after: opts.connect_timeout,
                    during: "waiting for ICE gathering (connection dropped)",
                })?;
            let offer_sdp = viewer
                .pc
                .local_description()
                .await
                .map(|d| d.sdp)
                .unwrap_or_default();

            let signalled = async {
                match opts.signalling {
                    Signalling::Whep => {
                        let answer = signalling::whep_offer(&opts.base_url, &offer_sdp).await?;
                        viewer.session_url = Some(answer.session_url);
                        Ok::<_, Error>(answer.sdp)
                    }
                    Signalling::Offer => {
                        signalling::legacy_offer(&opts.base_url, &opts.offer_path, &offer_sdp).await
                    }
                }
            };
            let answer_sdp =
                timeout_at(deadline, signalled)
                    .await
                    .map_err(|_| Error::Timeout {
                        after: opts.connect_timeout,
                        during: "waiting for the server's answer",
                    })??;
            viewer
                .pc
                .set_remote_description(RTCSessionDescription::answer(answer_sdp)?)
                .await?;
            Ok::<_, Error>(())
        }
        .await;

        match negotiated {
            Ok(()) => Ok(viewer),
            Err(err) => {
                // Tear down what was set up; the first error is the one worth reporting.
                let _ = viewer.shutdown().await;
                Err(err)
            }
        }
    }

    /// The WHEP session resource (absolute URL); `None` with the legacy API.
    pub fn session_url(&self) -> Option<&str> {
        self.session_url.as_deref()
    }

    /// The next reassembled frame, in arrival order; `None` once the connection has failed or
    /// closed and every frame received before that was returned.
    pub async fn next_frame(&mut self) -> Option<ReceivedFrame> {
        let mut state = self.state_rx.clone();
        tokio::select! {
            biased;
            frame = self.frames_rx.recv() => frame,
            _ = state.wait_for(|s| s.is_terminal()) => self.frames_rx.try_recv().ok(),
        }
    }

    /// The next `n` frames, each arriving within `each` of the one before; an error if one is
    /// late or the connection ends first.
    pub async fn frames(&mut self, n: usize, each: Duration) -> Result<Vec<ReceivedFrame>, Error> {
        let mut frames = Vec::with_capacity(n);
        while frames.len() < n {
            match tokio::time::timeout(each, self.next_frame()).await {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => {
                    return Err(Error::StreamEnded {
                        frames: frames.len(),
                    });
                }
                Err(_) => {
                    return Err(Error::Timeout {
                        after: each,
                        during: "waiting for a frame",
                    });
                }
            }
        }
        Ok(frames)
    }

    /// A snapshot of the counters and milestones.
    pub fn stats(&self) -> ViewerStats {
        *lock(&self.shared.stats)
    }

    /// The connection state, as a watch: `borrow()` for now, `wait_for` to await a state.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state_rx.clone()
    }

    /// Waits until the peer connection is Connected.
    ///
    /// Fails with [`Error::Timeout`] after `timeout`, or [`Error::ConnectionEnded`] if it
    /// fails or closes first.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), Error> {
        let mut state = self.state_rx.clone();
        let reached = tokio::time::timeout(
            timeout,
            state.wait_for(|s| *s == ConnectionState::Connected || s.is_terminal()),
        )
        .await
        .map_err(|_| Error::Timeout {
            after: timeout,
            during: "waiting for the peer connection to connect",
        })?
        .map(|s| *s)
        .unwrap_or(ConnectionState::Closed);
        if reached == ConnectionState::Connected {
            Ok(())
        } else {
            Err(Error::ConnectionEnded(reached))
        }
    }

    /// Asks the server for a keyframe (RTCP PLI), as a browser does when it cannot decode.
    /// Does nothing before the video track has opened.
    pub async fn request_keyframe(&self) -> Result<(), Error> {
        let track = lock(&self.shared.track).clone();
        if let Some((track, media_ssrc)) = track {
            track
                .write_rtcp(vec![Box::new(PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc,
                })])
                .await?;
        }
        Ok(())
    }

    /// Ends the session: `DELETE` on the WHEP resource, then closes the peer connection. The
    /// connection is closed even if the `DELETE` fails; that failure is returned.
    pub async fn close(mut self) -> Result<(), Error> {
        self.shutdown().await
    }

    async fn shutdown(&mut self) -> Result<(), Error> {
        self.closed = true;
        let deleted = match self.session_url.take() {
            Some(url) => delete_session(&url).await,
            None => Ok(()),
        };
        if let Some(reader) = lock(&self.shared.reader).take() {
            reader.abort();
        }
        let closed = self.pc.close().await;
        self.shared.state_tx.send_replace(ConnectionState::Closed);
        deleted?;
        closed?;
        Ok(())
    }
}

/// `DELETE` of a WHEP session, bounded so that a hung server cannot hang `close`.
async fn delete_session(url: &str) -> Result<(), Error> {
    tokio::time::timeout(DELETE_TIMEOUT, signalling::whep_delete(url))
        .await
        .map_err(|_| Error::Timeout {
            after: DELETE_TIMEOUT,
            during: "waiting for the WHEP session DELETE",
        })?
}

impl Drop for Viewer {
    /// A viewer dropped without [`Viewer::close`] is closed in the background (best effort:
    /// only while a tokio runtime is running), so it neither leaks a connection nor leaves a
    /// WHEP session behind.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        if let Some(reader) = lock(&self.shared.reader).take() {
            reader.abort();
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pc = Arc::clone(&self.pc);
        let session_url = self.session_url.take();
        runtime.spawn(async move {
            if let Some(url) = session_url {
                let _ = delete_session(&url).await;
            }
            let _ = pc.close().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::SRTP_REPLAY_WINDOW;
    use rtc::srtp::context::Context;
    use rtc::srtp::option::srtp_replay_protection;
    use rtc::srtp::protection_profile::ProtectionProfile;

    /// The sending and the receiving end of one SRTP stream, the receiver with a replay window
    /// of `window` packets.
    fn srtp_pair(window: usize) -> (Context, Context) {
        let profile = ProtectionProfile::Aes128CmHmacSha1_80;
        let provider = rtc::crypto::default_provider().unwrap();
        let (key, salt) = (vec![7; profile.key_len()], vec![9; profile.salt_len()]);
        let sender = Context::new(&key, &salt, profile, None, None, provider.crypto()).unwrap();
        let receiver = Context::new(
            &key,
            &salt,
            profile,
            Some(srtp_replay_protection(window)),
            None,
            provider.crypto(),
        )
        .unwrap();
        (sender, receiver)
    }

    /// Whether a packet lost on the way and retransmitted once `behind` newer packets have
    /// arrived gets through the receiver's SRTP.
    fn retransmission_accepted(window: usize, behind: u16) -> bool {
        let (mut sender, mut receiver) = srtp_pair(window);
        // A 12-byte RTP header (version 2, payload type 96, sequence number, SSRC) and a few
        // bytes of payload.
        let packet = |seq: u16| {
            let mut raw = vec![0x80, 96];
            raw.extend_from_slice(&seq.to_be_bytes());
            raw.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x7c, 0x85, 1, 2, 3]);
            raw
        };
        let lost = sender.encrypt_rtp(&packet(1000)).unwrap();
        for seq in 1001..=1000 + behind {
            let encrypted = sender.encrypt_rtp(&packet(seq)).unwrap();
            receiver.decrypt_rtp(&encrypted).unwrap();
        }
        // The same packet again, as the NACK responder sends it (no RTX stream).
        receiver.decrypt_rtp(&lost).is_ok()
    }

    /// A retransmission that comes back after a keyframe (~150 packets at 8 Mbit/s) is kept,
    /// as a browser keeps it; with webrtc-rs's default window of 64 it would be refused as a
    /// replay although it arrived.
    #[test]
    fn a_retransmission_behind_a_keyframe_is_not_taken_for_a_replay() {
        assert!(retransmission_accepted(SRTP_REPLAY_WINDOW, 40));
        assert!(retransmission_accepted(SRTP_REPLAY_WINDOW, 300));
        assert!(
            !retransmission_accepted(64, 300),
            "the default window refuses it"
        );
        // A true replay is still refused.
        let (mut sender, mut receiver) = srtp_pair(SRTP_REPLAY_WINDOW);
        let packet = [
            0x80, 96, 0, 5, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x7c, 0x85, 1,
        ];
        let encrypted = sender.encrypt_rtp(&packet).unwrap();
        assert!(receiver.decrypt_rtp(&encrypted).is_ok());
        assert!(receiver.decrypt_rtp(&encrypted).is_err());
    }
}
