//! One viewer on its worker: its peer connection, its feed, and its RTP writer (its own SSRC,
//! sequence numbers, timestamp origin and header extensions in front of the shared payloads).

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::{RTCIceConnectionState, RTCPeerConnectionState};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext};

use rtc::data_channel::RTCDataChannelId;
use rtc::peer_connection::event::RTCDataChannelEvent;

use crate::feed::Feed;
use crate::frame::Packetized;
use crate::hub::ViewerStats;
use crate::keyframe;
use crate::overlay::{self, Overlay, Sent};
use crate::peer::{Built, Extensions};
use stackctl_media::rtp;

/// What happened to a viewer's connection, for its worker to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happening {
    /// ICE and DTLS are under way.
    Connecting,
    /// Media can flow.
    Connected,
    /// ICE lost the peer (it may come back).
    Disconnected,
    /// ICE failed for good.
    Failed,
    /// The connection closed (the viewer said goodbye).
    Closed,
    /// It asked for keyframes (PLI, FIR), this many.
    KeyframeRequests(u64),
    /// It sent NACKs: how many, and what they asked for and got again.
    Nacks(u64, crate::nack::Answer),
    /// It opened a data channel labelled [`overlay::LABEL`] (its id on the connection).
    DetectionsOpened(RTCDataChannelId),
    /// Its detections channel closed.
    DetectionsClosed,
}

/// Where a viewer's datagrams go out: a socket of its worker and, on a wildcard socket, the
/// local address its datagrams came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path {
    /// The socket (an index into the worker's sockets).
    pub socket: usize,
    /// The address to send from, on a wildcard socket.
    pub src_ip: Option<std::net::IpAddr>,
}

/// One viewer. See the [module docs](self).
pub struct Viewer {
    /// Its id (the last segment of its WHEP resource URL).
    pub id: String,
    /// Its key on its worker.
    pub key: u64,
    pc: RTCPeerConnection,
    sender: RTCRtpSenderId,
    ssrc: u32,
    payload_type: u8,
    sequence: u16,
    timestamp_origin: u32,
    extensions: Extensions,
    /// Which frames it gets, and when.
    pub feed: Feed,
    /// Its figures.
    pub stats: Arc<ViewerStats>,
    /// When its offer arrived.
    pub created: Instant,
    /// Whether it reached Connected.
    pub connected: bool,
    /// Where its datagrams go out, from its latest datagram in.
    pub path: Option<Path>,
    /// Its connection's next timer.
    pub deadline: Option<Instant>,
    /// When its pacer lets the next frame out.
    pub wait: Option<Instant>,
    /// When its next sender report is due (once it has sent a frame).
    pub next_report: Option<Instant>,
    /// Its ICE agent has selected a pair.
    ice_connected: bool,
    /// The viewer's latest nominating check, while ICE is not connected (see
    /// [`Viewer::receive`]), and how often it was given again.
    nominating: Option<(TransportContext, BytesMut)>,
    replays: u8,
    packets: u32,
    octets: u32,
    /// RTP packets written (not wrapping, unlike `packets`): what its NACK history holds.
    written: u64,
    /// Packets its NACK responder keeps.
    nack_window: u16,
    /// Its `detections` data channel, once open and accepted.
    detections: Option<RTCDataChannelId>,
}

/// Between two sender reports.
pub const REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl std::fmt::Debug for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

impl Viewer {
    /// A viewer of a connection built by the [`Factory`](crate::peer::Factory).
    pub fn new(
        id: String,
        key: u64,
        built: Built,
        feed: Feed,
        stats: Arc<ViewerStats>,
        created: Instant,
        timestamp_origin: u32,
    ) -> Self {
        Self {
            id,
            key,
            pc: built.pc,
            sender: built.sender,
            ssrc: built.ssrc,
            payload_type: built.payload_type,
            sequence: crate::hub::random_u32() as u16,
            timestamp_origin,
            extensions: built.extensions,
            feed,
            stats,
            created,
            connected: false,
            path: None,
            deadline: None,
            wait: None,
            next_report: None,
            ice_connected: false,
            nominating: None,
            replays: 0,
            packets: 0,
            octets: 0,
            written: 0,
            nack_window: built.nack_window,
            detections: None,
        }
    }

    /// A datagram for it.
    ///
    /// A browser (the controlling ICE agent) nominates from its very first check
    /// (`USE-CANDIDATE`). rtc 0.21's controlled agent answers such a check only once its own
    /// check of that pair has succeeded, and otherwise just sends its own check: the browser
    /// hears nothing and asks again 50-100 ms later, and the connection waits for it. So the
    /// latest nominating check is kept and given to the agent again as soon as an answer to
    /// one of its checks arrives: the pair has succeeded then, the agent selects it and answers
    /// the browser (same transaction, so the browser takes it), and DTLS starts at once.
    pub fn receive(&mut self, now: Instant, transport: TransportContext, datagram: BytesMut) {
        let answer = !self.ice_connected && datagram.first() == Some(&0x01);
        if !self.ice_connected && crate::route::is_nominating_check(&datagram) {
            self.nominating = Some((transport, datagram.clone()));
        }
        self.read(now, transport, datagram);
        if answer
            && self.replays < 3
            && let Some((transport, check)) = self.nominating.clone()
        {
            self.replays += 1;
            self.read(now, transport, check);
        }
    }

    fn read(&mut self, now: Instant, transport: TransportContext, datagram: BytesMut) {
        if let Err(e) = self.pc.handle_read(TaggedBytesMut {
            now,
            transport,
            message: datagram,
        }) {
            tracing::debug!(viewer = %self.id, "datagram refused: {e}");
        }
    }

    /// Its connection's timer fired.
    pub fn timeout(&mut self, now: Instant) {
        if let Err(e) = self.pc.handle_timeout(now) {
            tracing::debug!(viewer = %self.id, "timeout: {e}");
        }
    }

    /// Writes one frame as RTP: its own header in front of each shared payload, the marker on
    /// the last, and on the first the header extensions it negotiated (`capture_ntp`: the
    /// frame's capture time as NTP). Returns the packets and bytes written.
    pub fn write_frame(
        &mut self,
        now: Instant,
        frame: &Packetized,
        capture_ntp: rtp::NtpTime,
    ) -> Result<(u64, u64), rtc::shared::error::Error> {
        let timestamp = rtp::rtp_timestamp(frame.au.timestamp_ns, self.timestamp_origin);
        let last = frame.au.payloads.len().saturating_sub(1);
        let Some(mut sender) = self.pc.rtp_sender(self.sender) else {
            return Err(rtc::shared::error::Error::ErrRTPSenderNotExisted);
        };
        let (mut packets, mut bytes) = (0, 0);
        for (i, payload) in frame.au.payloads.iter().enumerate() {
            let mut header = rtc::rtp::header::Header {
                version: 2,
                marker: i == last,
                payload_type: self.payload_type,
                sequence_number: self.sequence,
                timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            };
            if i == 0 {
                if let Some(id) = self.extensions.abs_capture_time {
                    header.set_extension(
                        id,
                        Bytes::copy_from_slice(&rtp::abs_capture_time(capture_ntp)),
                    )?;
                }
                if let Some(id) = self.extensions.playout_delay {
                    let zero = std::time::Duration::ZERO;
                    header.set_extension(
                        id,
                        Bytes::copy_from_slice(&rtp::playout_delay(zero, zero)),
                    )?;
                }
            }
            let size = 12 + header.get_extension_payload_len() + payload.len();
            sender.write_rtp(
                now,
                rtc::rtp::packet::Packet {
                    header,
                    payload: payload.clone(),
                },
            )?;
            self.sequence = self.sequence.wrapping_add(1);
            self.packets = self.packets.wrapping_add(1);
            self.written += 1;
            self.octets = self.octets.wrapping_add(payload.len() as u32);
            packets += 1;
            bytes += size as u64;
        }
        self.next_report.get_or_insert(now);
        Ok((packets, bytes))
    }

    /// Its stream as the NACK responder's history sees it.
    fn history(&self) -> crate::nack::History {
        crate::nack::History {
            ssrc: self.ssrc,
            next_sequence: self.sequence,
            written: self.written,
            window: self.nack_window,
        }
    }

    /// Sends a sender report if one is due: RTP time and wall-clock time of this instant (the
    /// RTP clock is the camera's, so the browser learns when each frame was captured).
    pub fn report(&mut self, now: Instant, monotonic_ns: u64, unix_ns: u64) {
        if self.next_report.is_none_or(|at| at > now) {
            return;
        }
        self.next_report = Some(now + REPORT_INTERVAL);
        // The workspace's report, sent through the connection's RTCP (it encrypts it).
        let sr = rtp::SenderReport::at(
            self.ssrc,
            self.timestamp_origin,
            monotonic_ns,
            unix_ns,
            self.packets,
            self.octets,
        );
        let report = rtc::rtcp::sender_report::SenderReport {
            ssrc: sr.ssrc,
            ntp_time: sr.ntp.0,
            rtp_time: sr.rtp_timestamp,
            packet_count: sr.packet_count,
            octet_count: sr.octet_count,
            ..Default::default()
        };
        let sent = self
            .pc
            .rtp_sender(self.sender)
            .map(|mut sender| sender.write_rtcp(now, vec![Box::new(report)]));
        if let Some(Err(e)) = sent {
            tracing::debug!(viewer = %self.id, "sender report: {e}");
        }
    }

    /// Takes what the connection has to say: its state changes and the keyframe requests in
    /// its RTCP, into `happenings`; its datagrams to send, to `send`. Updates its deadline.
    pub fn drain(
        &mut self,
        happenings: &mut Vec<Happening>,
        mut send: impl FnMut(&TransportContext, &[u8]),
    ) {
        loop {
            let mut any = false;
            while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
                any = true;
                if let RTCMessage::RtcpPacket(_, packets) = message {
                    let n = packets
                        .iter()
                        .filter(|p| keyframe::is_keyframe_request(p.as_ref()))
                        .count() as u64;
                    if n > 0 {
                        happenings.push(Happening::KeyframeRequests(n));
                    }
                    let history = self.history();
                    let (mut nacks, mut answer) = (0, crate::nack::Answer::default());
                    for nack in packets.iter().filter_map(|p| {
                        p.as_any()
                            .downcast_ref::<rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack>()
                    }) {
                        let a = history.answer(nack);
                        nacks += 1;
                        answer.requested += a.requested;
                        answer.retransmitted += a.retransmitted;
                    }
                    if nacks > 0 {
                        happenings.push(Happening::Nacks(nacks, answer));
                    }
                }
            }
            while let Some(event) = self.pc.poll_event() {
                any = true;
                if let RTCPeerConnectionEvent::OnDataChannel(event) = &event {
                    match *event {
                        RTCDataChannelEvent::OnOpen(id) => {
                            let label = self.pc.data_channel(id).map(|dc| dc.label().to_owned());
                            tracing::debug!(viewer = %self.id, ?label, "data channel open");
                            if label.as_deref() == Some(overlay::LABEL) {
                                happenings.push(Happening::DetectionsOpened(id));
                            }
                        }
                        RTCDataChannelEvent::OnClose(id) if self.detections == Some(id) => {
                            self.detections = None;
                            happenings.push(Happening::DetectionsClosed);
                        }
                        _ => {}
                    }
                }
                if let RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(state) = &event {
                    tracing::debug!(viewer = %self.id, %state, since_offer = ?self.created.elapsed(), "ICE");
                    if *state == RTCIceConnectionState::Connected {
                        self.ice_connected = true;
                        self.nominating = None;
                    }
                }
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                    tracing::debug!(viewer = %self.id, %state, since_offer = ?self.created.elapsed(), "connection");
                    match state {
                        RTCPeerConnectionState::Connecting => {
                            happenings.push(Happening::Connecting)
                        }
                        RTCPeerConnectionState::Connected => happenings.push(Happening::Connected),
                        RTCPeerConnectionState::Disconnected => {
                            happenings.push(Happening::Disconnected)
                        }
                        RTCPeerConnectionState::Failed => happenings.push(Happening::Failed),
                        RTCPeerConnectionState::Closed => happenings.push(Happening::Closed),
                        _ => {}
                    }
                }
            }
            if !any {
                break;
            }
        }
        while let Some(out) = self.pc.poll_write() {
            send(&out.transport, &out.message);
        }
        self.deadline = self.pc.poll_timeout();
    }

    /// Takes channel `id` (labelled [`overlay::LABEL`]) as its detections channel: `false` if
    /// it has one already (the other is left alone, unused).
    pub fn accept_detections(&mut self, id: RTCDataChannelId) -> bool {
        if self.detections.is_some() {
            return false;
        }
        self.detections = Some(id);
        true
    }

    /// Whether it has a detections channel open.
    pub fn has_detections(&self) -> bool {
        self.detections.is_some()
    }

    /// Closes data channel `id` (a detections channel the sink is not to serve).
    pub fn close_channel(&mut self, id: RTCDataChannelId) {
        if let Some(mut dc) = self.pc.data_channel(id)
            && let Err(e) = dc.close()
        {
            tracing::debug!(viewer = %self.id, "closing a data channel: {e}");
        }
    }

    /// Sends it a detection result, with the RTP timestamp its own frame of that result
    /// carries; `None` when it has no detections channel. A channel holding more than
    /// [`overlay::MAX_BUFFERED`] bytes gets nothing more until its peer catches up.
    pub fn send_overlay(&mut self, now: Instant, result: &Overlay) -> Option<Sent> {
        let id = self.detections?;
        let timestamp = rtp::rtp_timestamp(result.timestamp_ns, self.timestamp_origin);
        let message = result.message(timestamp);
        let Some(mut dc) = self.pc.data_channel(id) else {
            self.detections = None;
            return Some(Sent::Refused);
        };
        if !overlay::has_room(dc.outstanding_bytes(), message.len()) {
            return Some(Sent::Full);
        }
        Some(match dc.send_text(now, message) {
            Ok(()) => Sent::Sent,
            Err(e) => {
                tracing::debug!(viewer = %self.id, "detections channel: {e}");
                Sent::Refused
            }
        })
    }

    /// Closes the connection (queues the DTLS close_notify, drained by [`Viewer::drain`]).
    pub fn close(&mut self) {
        if let Err(e) = self.pc.close() {
            tracing::debug!(viewer = %self.id, "close: {e}");
        }
    }

    /// Adds a trickled remote candidate.
    pub fn add_remote_candidate(
        &mut self,
        candidate: rtc::peer_connection::transport::RTCIceCandidateInit,
    ) -> Result<(), rtc::shared::error::Error> {
        self.pc.add_remote_candidate(candidate)
    }
}
