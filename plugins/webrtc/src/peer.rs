//! One viewer's peer connection (webrtc-rs's sans-IO `rtc`), built from its offer: the answer,
//! with every local candidate in it, and what the viewer's worker needs to write its RTP.
//!
//! Built on the thread that took the offer (an HTTP thread), then handed to a worker, which
//! alone drives it from then on. Nothing here does I/O or reads a clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc::crypto::SignatureScheme;
use rtc::interceptor::{NackResponderBuilder, Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, CandidateRelayConfig, CandidateServerReflexiveConfig,
    RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

use crate::config::Config;
use crate::hub::{random_bytes, random_u32};
use crate::keyframe::{self, KeyframeRequests};
use crate::sdp::{H264Format, OfferError, VideoOffer};
use stackctl_media::rtp::{ABS_CAPTURE_TIME_URI, PLAYOUT_DELAY_URI};

/// Why no connection was built.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The offer is wrong (400).
    #[error(transparent)]
    Offer(#[from] OfferError),
    /// WebRTC failed to build the connection or the answer (500).
    #[error("WebRTC: {0}")]
    WebRtc(String),
}

fn webrtc_err(e: impl std::fmt::Display) -> PeerError {
    PeerError::WebRtc(e.to_string())
}

/// A local candidate to advertise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate {
    /// An address of this host (or of a 1:1 NAT in front of it), on a socket of the sink.
    Host(SocketAddr),
    /// The public address a STUN server saw for the socket at `base`.
    Reflexive {
        /// The public address.
        addr: SocketAddr,
        /// The local socket's address.
        base: SocketAddr,
    },
    /// An address a TURN server relays for a WHIP publication.
    Relay {
        /// The relayed address.
        addr: SocketAddr,
        /// The local socket the TURN server is reached from.
        base: SocketAddr,
    },
}

/// What every connection shares: one DTLS certificate (its fingerprint goes in every answer;
/// generating a key per viewer would cost a few milliseconds each) and the configuration.
#[derive(Debug)]
pub struct Factory {
    certificate: RTCCertificate,
    nack_window: u16,
    disconnect_timeout: Duration,
    failed_timeout: Duration,
    playout_delay: bool,
}

/// The header extensions a viewer's packets carry, with the ids its offer gave them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extensions {
    /// playout-delay, on each frame's first packet.
    pub playout_delay: Option<u8>,
    /// abs-capture-time, on each frame's first packet.
    pub abs_capture_time: Option<u8>,
}

/// A connection with its answer set, ready for a worker.
pub struct Built {
    /// The connection.
    pub pc: RTCPeerConnection,
    /// Its video sender.
    pub sender: RTCRtpSenderId,
    /// The SSRC of its stream.
    pub ssrc: u32,
    /// The payload type of the answered format.
    pub payload_type: u8,
    /// Its ICE username fragment (what its checks name).
    pub ufrag: String,
    /// The answer SDP, with every candidate.
    pub answer: String,
    /// The header extensions to send.
    pub extensions: Extensions,
    /// Packets its NACK responder keeps (`nack_window`).
    pub nack_window: u16,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built")
            .field("ssrc", &self.ssrc)
            .field("payload_type", &self.payload_type)
            .field("ufrag", &self.ufrag)
            .finish_non_exhaustive()
    }
}

impl Factory {
    /// Generates the certificate (ECDSA P-256, what browsers expect).
    pub fn new(config: &Config) -> Result<Self, PeerError> {
        let provider = rtc::crypto::default_provider().map_err(webrtc_err)?;
        let params = CertificateParams::new(vec!["stackctl".to_owned()]).map_err(webrtc_err)?;
        let certificate =
            RTCCertificate::generate(provider.crypto(), SignatureScheme::EcdsaP256Sha256, params)
                .map_err(webrtc_err)?;
        Ok(Self {
            certificate,
            nack_window: config.nack_window,
            disconnect_timeout: config.disconnect_timeout,
            failed_timeout: config.failed_timeout,
            playout_delay: config.playout_delay,
        })
    }

    /// Builds a connection that answers `offer` (whose video section `video` says it receives
    /// H.264 as `format`) with `candidates`.
    pub fn answer(
        &self,
        now: Instant,
        offer: &str,
        video: &VideoOffer,
        format: &H264Format,
        candidates: &[Candidate],
    ) -> Result<Built, PeerError> {
        let codec = h264_codec(&format.fmtp);
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
        let mut extensions = Extensions::default();
        let wanted = [
            (ABS_CAPTURE_TIME_URI, true),
            (PLAYOUT_DELAY_URI, self.playout_delay),
        ];
        for (uri, wanted) in wanted {
            let Some(id) = video.extension(uri).filter(|_| wanted) else {
                continue;
            };
            media
                .register_header_extension(
                    RTCRtpHeaderExtensionCapability {
                        uri: uri.to_owned(),
                    },
                    RtpCodecKind::Video,
                    None,
                )
                .map_err(webrtc_err)?;
            if uri == ABS_CAPTURE_TIME_URI {
                extensions.abs_capture_time = Some(id);
            } else {
                extensions.playout_delay = Some(id);
            }
        }
        let ufrag = hex(&random_bytes::<6>());
        let mut pc = self.connection(now, media, &ufrag)?;
        let ssrc = random_u32();
        let sender = pc
            .add_track(camera_track(ssrc, codec))
            .map_err(webrtc_err)?;
        let description = RTCSessionDescription::offer(offer.to_owned())
            .map_err(|e| OfferError::Malformed(e.to_string()))?;
        pc.set_remote_description(now, description)
            .map_err(|e| OfferError::Malformed(e.to_string()))?;
        for candidate in candidates {
            pc.add_local_candidate(candidate.to_init()?)
                .map_err(webrtc_err)?;
        }
        // Gathering is complete: there is nothing to trickle.
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .map_err(webrtc_err)?;
        let answer = pc.create_answer(None).map_err(webrtc_err)?;
        pc.set_local_description(now, answer).map_err(webrtc_err)?;
        let answer = pc
            .local_description()
            .ok_or_else(|| webrtc_err("no local description after setting it"))?
            .sdp;
        Ok(Built {
            pc,
            sender,
            ssrc,
            payload_type: format.payload_type,
            ufrag,
            answer,
            extensions,
            nack_window: self.nack_window,
        })
    }
    /// A connection with what every one of the sink's connections has: the certificate,
    /// the ICE timeouts and credentials (`ufrag`), and the interceptors a send-only stream
    /// needs and no more (every interceptor runs on every packet): NACKs are answered from the
    /// last `nack_window` packets, and PLI/FIR reach the sink to be counted. Sender reports are
    /// the sink's own (see `Viewer::report`): the interceptor's would map RTP time to the time a
    /// frame was sent, not captured.
    fn connection(
        &self,
        now: Instant,
        media: MediaEngine,
        ufrag: &str,
    ) -> Result<RTCPeerConnection, PeerError> {
        let registry = Registry::new()
            .with(
                Slot::NackResponder,
                NackResponderBuilder::new()
                    .with_size(self.nack_window)
                    .build(),
            )
            .with(Slot::from(keyframe::SLOT), KeyframeRequests::default());
        let password = hex(&random_bytes::<16>());
        let settings = SettingEngineBuilder::new()
            .with_ice_timeouts(
                Some(self.disconnect_timeout),
                Some(self.failed_timeout),
                Some(Duration::from_secs(2)),
            )
            .with_ice_credentials(ufrag.to_owned(), password)
            // Our own checks every 50 ms rather than 200 while connecting (as many in all): a
            // viewer that nominates only after our check has answered waits less for it.
            .with_ice_connection_attempts(Some(Duration::from_millis(50)), Some(28))
            .build();
        let configuration = RTCConfigurationBuilder::new()
            .with_certificates(vec![self.certificate.clone()])
            .build();
        RTCPeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media)
            .with_setting_engine(settings)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(webrtc_err)
    }

    /// Builds a connection that offers the camera (H.264 as `fmtp` says, send-only, payload
    /// type `payload_type`) with `candidates`: a WHIP publication. Its `answer` field holds
    /// the offer; the endpoint's answer goes to [`Built::pc`]'s remote description.
    pub fn offer(
        &self,
        now: Instant,
        fmtp: &str,
        payload_type: u8,
        candidates: &[Candidate],
    ) -> Result<Built, PeerError> {
        let codec = h264_codec(fmtp);
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: codec.clone(),
                    payload_type,
                },
                RtpCodecKind::Video,
            )
            .map_err(webrtc_err)?;
        let ufrag = hex(&random_bytes::<6>());
        let mut pc = self.connection(now, media, &ufrag)?;
        let ssrc = random_u32();
        let transceiver = pc
            .add_transceiver_from_track(
                camera_track(ssrc, codec),
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )
            .map_err(webrtc_err)?;
        let offer = pc.create_offer(None).map_err(webrtc_err)?;
        pc.set_local_description(now, offer).map_err(webrtc_err)?;
        for candidate in candidates {
            pc.add_local_candidate(candidate.to_init()?)
                .map_err(webrtc_err)?;
        }
        // Gathering is complete: nothing is trickled (RFC 9725 does not require it).
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .map_err(webrtc_err)?;
        let offer = pc
            .local_description()
            .ok_or_else(|| webrtc_err("no local description after setting it"))?
            .sdp;
        Ok(Built {
            pc,
            sender: RTCRtpSenderId::from(transceiver),
            ssrc,
            payload_type,
            ufrag,
            answer: offer,
            extensions: Extensions::default(),
            nack_window: self.nack_window,
        })
    }
}

/// The camera's H.264 as `fmtp` says, with the feedback the sink answers (NACK) or counts
/// (PLI, FIR).
fn h264_codec(fmtp: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: fmtp.to_owned(),
        rtcp_feedback: [("nack", ""), ("nack", "pli"), ("ccm", "fir")]
            .iter()
            .map(|(typ, parameter)| RTCPFeedback {
                typ: (*typ).to_owned(),
                parameter: (*parameter).to_owned(),
            })
            .collect(),
    }
}

/// The camera's track, its one stream sent as `ssrc`.
fn camera_track(ssrc: u32, codec: RTCRtpCodec) -> MediaStreamTrack {
    MediaStreamTrack::new(
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
    )
}

impl Candidate {
    /// As a candidate line for the connection.
    fn to_init(self) -> Result<RTCIceCandidateInit, PeerError> {
        let base = |addr: SocketAddr| CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        };
        let candidate = match self {
            Candidate::Host(addr) => CandidateHostConfig {
                base_config: base(addr),
                ..Default::default()
            }
            .new_candidate_host(),
            Candidate::Reflexive { addr, base: local } => CandidateServerReflexiveConfig {
                base_config: base(addr),
                rel_addr: local.ip().to_string(),
                rel_port: local.port(),
                url: None,
            }
            .new_candidate_server_reflexive(),
            Candidate::Relay { addr, base: local } => CandidateRelayConfig {
                base_config: base(addr),
                rel_addr: local.ip().to_string(),
                rel_port: local.port(),
                ..Default::default()
            }
            .new_candidate_relay(),
        }
        .map_err(webrtc_err)?;
        RTCIceCandidate::from(&candidate)
            .to_json()
            .map_err(webrtc_err)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
