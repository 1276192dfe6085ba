//! The loop: one UDP socket, every viewer's `Rtc`, the camera's frames and the signalling
//! requests, on one thread.
//!
//! Each turn waits for the first of: a datagram, a frame, a WHEP request, the earliest
//! `Rtc` timeout, or the stop signal. Then it feeds that in (`handle_input`, or a frame written
//! to every viewer), polls the viewers it touched until they want to wait (`poll_output`), and
//! sends the datagrams that came out, one `sendto` each, before it waits again.

use std::collections::VecDeque;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use stackctl_core::Frame;
use str0m::change::SdpOffer;
use str0m::crypto::CryptoProvider;
use str0m::net::{Protocol, Receive, Transmit};
use str0m::{Candidate, Input, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::CONNECT_TIMEOUT;
use crate::media::Media;
use crate::viewer::{self, Gone, Viewer};

/// Largest datagram read; WebRTC keeps well under it.
const RECV_BUFFER: usize = 2048;

/// How long the loop sleeps with nothing scheduled.
const IDLE: Duration = Duration::from_secs(1);

/// A signalling request from the HTTP server.
#[derive(Debug)]
pub enum Command {
    /// A WHEP offer: answer it and add the viewer.
    Offer {
        /// The offer SDP.
        sdp: String,
        /// The answer, or why not.
        reply: oneshot::Sender<Result<Answer, OfferError>>,
    },
    /// A WHEP `DELETE`: remove the viewer; the reply says whether it existed.
    Delete {
        /// The session id.
        id: String,
        /// True if the session existed.
        reply: oneshot::Sender<bool>,
    },
}

/// An accepted offer.
#[derive(Debug)]
pub struct Answer {
    /// The new session's id.
    pub id: String,
    /// The answer SDP, with the UDP socket as host candidate.
    pub sdp: String,
}

/// A refused offer.
#[derive(Debug)]
pub enum OfferError {
    /// `--max-viewers` viewers already.
    Full(usize),
    /// Not an offer this sink can serve.
    Invalid(String),
}

/// Why [`Server::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// SIGTERM or SIGINT.
    Signal,
    /// The bus closed: the camera's reader ended.
    CameraGone,
}

/// What woke the loop.
enum Wake {
    Stop(anyhow::Result<()>),
    Readable(std::io::Result<()>),
    Frame(Option<Arc<Frame>>),
    Command(Option<Command>),
    Timeout,
}

/// The sink's state, owned by the loop.
pub struct Server {
    socket: UdpSocket,
    /// The socket's address: the host candidate and every `Receive`'s destination.
    local: SocketAddr,
    max_viewers: usize,
    viewers: Vec<Viewer>,
    /// Datagrams str0m produced, not yet sent.
    out: VecDeque<Transmit>,
    crypto: Arc<CryptoProvider>,
    ids: RandomState,
    next_id: u64,
    buf: Vec<u8>,
    /// Datagrams the socket refused to send (logged at powers of two).
    send_errors: u64,
    /// A frame has arrived.
    camera_seen: bool,
}

impl Server {
    /// A server on `socket` (bound to `local`), empty.
    pub fn new(socket: UdpSocket, local: SocketAddr, max_viewers: usize) -> Self {
        Self {
            socket,
            local,
            max_viewers,
            viewers: Vec::new(),
            out: VecDeque::new(),
            crypto: Arc::new(str0m::crypto::from_feature_flags()),
            ids: RandomState::new(),
            next_id: 0,
            buf: vec![0; RECV_BUFFER],
            send_errors: 0,
            camera_seen: false,
        }
    }

    /// Runs until `stop` resolves or the camera's stream ends.
    pub async fn run(
        mut self,
        mut frames: mpsc::Receiver<Arc<Frame>>,
        mut commands: mpsc::Receiver<Command>,
        stop: impl Future<Output = anyhow::Result<()>>,
    ) -> anyhow::Result<End> {
        let mut stop = std::pin::pin!(stop);
        loop {
            let deadline = tokio::time::Instant::from_std(self.deadline());
            let wake = tokio::select! {
                biased;
                r = &mut stop => Wake::Stop(r),
                r = self.socket.readable() => Wake::Readable(r),
                f = frames.recv() => Wake::Frame(f),
                c = commands.recv() => Wake::Command(c),
                () = tokio::time::sleep_until(deadline) => Wake::Timeout,
            };
            match wake {
                Wake::Stop(r) => {
                    r?;
                    for viewer in &mut self.viewers {
                        viewer.remove(Gone::Stopping);
                    }
                    self.reap();
                    return Ok(End::Signal);
                }
                Wake::Readable(r) => {
                    r.context("UDP socket")?;
                    self.receive().context("UDP receive")?;
                }
                Wake::Frame(Some(frame)) => {
                    if !self.camera_seen {
                        self.camera_seen = true;
                        let meta = frame.meta();
                        tracing::info!(
                            width = meta.width,
                            height = meta.height,
                            "first frame from the camera"
                        );
                    }
                    self.write_frame(&frame);
                }
                Wake::Frame(None) => return Ok(End::CameraGone),
                Wake::Command(Some(command)) => self.command(command),
                Wake::Command(None) => anyhow::bail!("the HTTP server stopped"),
                Wake::Timeout => self.timeouts(),
            }
            self.reap();
            self.flush().await.context("UDP send")?;
        }
    }

    /// The earliest instant a viewer needs attention.
    fn deadline(&self) -> Instant {
        let now = Instant::now();
        self.viewers
            .iter()
            .map(|v| {
                if v.is_connected() {
                    v.next_timeout
                } else {
                    v.next_timeout.min(v.created + CONNECT_TIMEOUT)
                }
            })
            .min()
            .unwrap_or(now + IDLE)
    }

    /// Reads every datagram waiting and hands each to the viewer whose `Rtc` accepts it.
    fn receive(&mut self) -> std::io::Result<()> {
        loop {
            let (n, source) = match self.socket.try_recv_from(&mut self.buf) {
                Ok(got) => got,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                // An ICMP error for an earlier send to a viewer that went away.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            };
            let now = Instant::now();
            let Ok(contents) = self.buf[..n].try_into() else {
                tracing::debug!(%source, bytes = n, "not a WebRTC datagram");
                continue;
            };
            let input = Input::Receive(
                now,
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: self.local,
                    contents,
                },
            );
            match self.viewers.iter_mut().find(|v| v.accepts(&input)) {
                Some(viewer) => {
                    viewer.handle_input(input);
                    viewer.drive(&mut self.out);
                }
                None => tracing::debug!(%source, "no viewer takes this datagram"),
            }
        }
    }

    /// Writes one camera frame to every viewer.
    fn write_frame(&mut self, frame: &Frame) {
        if self.viewers.is_empty() {
            return;
        }
        let media = Media::new(frame);
        for viewer in &mut self.viewers {
            viewer.write(&media);
            viewer.drive(&mut self.out);
        }
    }

    /// Feeds time to the viewers that asked for it; drops those that never connected.
    fn timeouts(&mut self) {
        let now = Instant::now();
        for viewer in &mut self.viewers {
            if viewer.next_timeout <= now {
                viewer.handle_input(Input::Timeout(now));
                viewer.drive(&mut self.out);
            }
            if !viewer.is_connected() && now >= viewer.created + CONNECT_TIMEOUT {
                viewer.remove(Gone::NeverConnected);
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Offer { sdp, reply } => {
                let answer = self.offer(&sdp);
                if let Err(OfferError::Invalid(why)) = &answer {
                    tracing::info!(reason = %why, "offer refused");
                }
                if let Err(Ok(answer)) = reply.send(answer) {
                    // The HTTP request went away before its answer: forget the viewer.
                    if let Some(v) = self.viewers.iter_mut().find(|v| v.id == answer.id) {
                        v.remove(Gone::Deleted);
                    }
                }
            }
            Command::Delete { id, reply } => {
                let found = self
                    .viewers
                    .iter_mut()
                    .find(|v| v.id == id && v.gone.is_none());
                let existed = found.is_some();
                if let Some(viewer) = found {
                    viewer.remove(Gone::Deleted);
                }
                let _ = reply.send(existed);
            }
        }
    }

    /// Answers an offer with a new viewer: its own `Rtc`, H.264 only, the shared socket as the
    /// one host candidate.
    fn offer(&mut self, sdp: &str) -> Result<Answer, OfferError> {
        if self.viewers.len() >= self.max_viewers {
            return Err(OfferError::Full(self.max_viewers));
        }
        let offer = SdpOffer::from_sdp_string(sdp)
            .map_err(|e| OfferError::Invalid(format!("malformed SDP offer: {e}")))?;
        let now = Instant::now();
        let mut rtc = Rtc::builder()
            .set_crypto_provider(Arc::clone(&self.crypto))
            .clear_codecs()
            .enable_h264(true)
            .build(now);
        let candidate = Candidate::host(self.local, "udp")
            .map_err(|e| OfferError::Invalid(format!("host candidate {}: {e}", self.local)))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| OfferError::Invalid(format!("offer not accepted: {e}")))?;

        let Some(mid) = viewer::video_mid(&mut rtc, &answer) else {
            return Err(OfferError::Invalid(
                "the offer has no H.264 video with packetization-mode=1 to receive".to_owned(),
            ));
        };

        self.next_id += 1;
        let id = format!("{:016x}", self.ids.hash_one(self.next_id));
        let mut viewer = Viewer::new(id.clone(), rtc, mid, now);
        viewer.drive(&mut self.out);
        tracing::info!(viewer = %id, viewers = self.viewers.len() + 1, "viewer added");
        self.viewers.push(viewer);
        Ok(Answer {
            id,
            sdp: answer.to_sdp_string(),
        })
    }

    /// Removes the viewers marked gone.
    fn reap(&mut self) {
        self.viewers.retain(|v| {
            let Some(why) = v.gone else { return true };
            tracing::info!(
                viewer = %v.id,
                reason = ?why,
                frames = v.frames,
                keyframe_requests = v.keyframe_requests,
                "viewer removed"
            );
            false
        });
    }

    /// Sends what str0m produced, one datagram per `sendto`, waiting while the socket's send
    /// buffer is full (as a blocking socket would).
    async fn flush(&mut self) -> std::io::Result<()> {
        while let Some(t) = self.out.front() {
            match self.socket.try_send_to(&t.contents, t.destination) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.socket.writable().await?;
                    continue;
                }
                // One destination failing (unreachable, ...) is that viewer's problem.
                Err(e) => {
                    self.send_errors += 1;
                    if self.send_errors.is_power_of_two() {
                        tracing::warn!(destination = %t.destination, error = %e, count = self.send_errors, "UDP send failed");
                    }
                }
            }
            self.out.pop_front();
        }
        Ok(())
    }
}
