//! A viewer built on webrtc-rs's sans-IO core (`rtc`) and driven on simulated time: the
//! offerer of a recvonly H.264 transceiver, with a UDP socket of its own on loopback, that
//! records the RTP it receives with the simulated instant it got each packet.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

#[path = "candidate.rs"]
mod candidate;

use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use bytes::BytesMut;
use rtc::data_channel::{RTCDataChannelId, RTCDataChannelInit};
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MediaEngine};
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

/// One RTP packet as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The simulated instant it came.
    pub at: Instant,
    /// Its sequence number.
    pub sequence: u16,
    /// Its RTP timestamp.
    pub timestamp: u32,
    /// Its marker bit.
    pub marker: bool,
    /// Its payload's size.
    pub len: usize,
}

/// The viewer.
pub struct Client {
    pc: RTCPeerConnection,
    socket: UdpSocket,
    local: SocketAddr,
    /// Its connection state.
    pub state: RTCPeerConnectionState,
    /// The RTP it received, in order of arrival.
    pub received: Vec<Received>,
    /// Its data channel (from [`Client::with_channel`]).
    pub channel: Option<RTCDataChannelId>,
    /// Whether its channel opened; whether it closed.
    pub channel_open: bool,
    pub channel_closed: bool,
    /// The text messages its channel received, with the instant each came.
    pub messages: Vec<(Instant, String)>,
    /// Drop every DTLS datagram that arrives (SCTP then hears nothing, its peer's buffer
    /// fills), keep SRTP and STUN.
    pub drop_dtls: bool,
    buf: Vec<u8>,
}

impl Client {
    /// A viewer at `now`, and its offer.
    pub fn new(now: Instant) -> (Self, String) {
        Self::with_channel(now, None)
    }

    /// A viewer at `now` that also opens a data channel `(label, options)`, and its offer
    /// (with an SCTP section).
    pub fn with_channel(
        now: Instant,
        channel: Option<(&str, RTCDataChannelInit)>,
    ) -> (Self, String) {
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: RTCRtpCodec {
                        mime_type: MIME_TYPE_H264.to_owned(),
                        clock_rate: 90_000,
                        channels: 0,
                        sdp_fmtp_line:
                            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
                                .to_owned(),
                        rtcp_feedback: vec![RTCPFeedback {
                            typ: "nack".to_owned(),
                            parameter: String::new(),
                        }],
                    },
                    payload_type: 102,
                },
                RtpCodecKind::Video,
            )
            .unwrap();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(Registry::new())
            .build(now)
            .unwrap();
        pc.add_transceiver_from_kind(
            RtpCodecKind::Video,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                streams: vec![],
                send_encodings: vec![],
            }),
        )
        .unwrap();
        let channel = channel
            .map(|(label, options)| pc.create_data_channel(label, Some(options)).unwrap().id());
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let local = socket.local_addr().unwrap();
        let offer = pc.create_offer(None).unwrap();
        pc.set_local_description(now, offer).unwrap();
        pc.add_local_candidate(candidate::loopback_host(&socket))
            .unwrap();
        let sdp = pc.local_description().unwrap().sdp;
        (
            Self {
                pc,
                socket,
                local,
                state: RTCPeerConnectionState::New,
                received: Vec::new(),
                channel,
                channel_open: false,
                channel_closed: false,
                messages: Vec::new(),
                drop_dtls: false,
                buf: vec![0; 65536],
            },
            sdp,
        )
    }

    /// Applies the sink's answer.
    pub fn answer(&mut self, now: Instant, sdp: String) {
        self.pc
            .set_remote_description(now, RTCSessionDescription::answer(sdp).unwrap())
            .unwrap();
    }

    /// Takes the connection's events and the RTP it has for the application.
    fn take(&mut self, now: Instant) {
        while let Some(event) = self.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => self.state = state,
                RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(id))
                    if Some(id) == self.channel =>
                {
                    self.channel_open = true;
                }
                RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnClose(id))
                    if Some(id) == self.channel =>
                {
                    self.channel_closed = true;
                }
                _ => {}
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            match message {
                RTCMessage::RtpPacket(_, packet) => self.received.push(Received {
                    at: now,
                    sequence: packet.header.sequence_number,
                    timestamp: packet.header.timestamp,
                    marker: packet.header.marker,
                    len: packet.payload.len(),
                }),
                RTCMessage::DataChannelMessage(_, message) if message.is_string => {
                    let text = String::from_utf8(message.data.to_vec()).unwrap();
                    self.messages.push((now, text));
                }
                _ => {}
            }
        }
    }

    /// The RTP timestamps of the access units it received whole (their marker packet came).
    pub fn frame_timestamps(&self) -> std::collections::HashSet<u32> {
        self.received
            .iter()
            .filter(|r| r.marker)
            .map(|r| r.timestamp)
            .collect()
    }

    /// Waits at most `max` (real time) for a datagram or the connection's next timer, then
    /// [`pump`](Self::pump)s at the real instant: for a viewer of a real stack.
    pub fn pump_real(&mut self, max: std::time::Duration) {
        let now = Instant::now();
        let until = self
            .pc
            .poll_timeout()
            .map_or(now + max, |t| t.min(now + max));
        let wait = until.saturating_duration_since(now);
        if !wait.is_zero() {
            self.socket.set_nonblocking(false).unwrap();
            self.socket.set_read_timeout(Some(wait)).unwrap();
            let mut peek = [0u8; 1];
            let _ = self.socket.peek_from(&mut peek);
            self.socket.set_nonblocking(true).unwrap();
        }
        self.pump(Instant::now());
    }

    /// Sends what it has to send, takes what arrived, fires its timers: at `now`.
    pub fn pump(&mut self, now: Instant) {
        if self.pc.poll_timeout().is_some_and(|t| t <= now) {
            let _ = self.pc.handle_timeout(now);
        }
        self.take(now);
        while let Ok((n, from)) = self.socket.recv_from(&mut self.buf) {
            if self.drop_dtls && (20..64).contains(&self.buf[0]) {
                continue;
            }
            let _ = self.pc.handle_read(TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr: self.local,
                    peer_addr: from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: BytesMut::from(&self.buf[..n]),
            });
            // Events first: the end of the DTLS handshake installs the SRTP keys the next
            // datagram may need.
            self.take(now);
        }
        while let Some(out) = self.pc.poll_write() {
            let _ = self.socket.send_to(&out.message, out.transport.peer_addr);
        }
    }
}

/// POSTs `offer` to stackctl's `/whep` on `port` (over a plain socket, `Connection: close`):
/// the answer SDP, which must come with 201.
pub fn whep(port: u16, offer: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /whep HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{offer}",
        offer.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 201"), "{head}\n{body}");
    body.to_owned()
}
