//! A WHIP endpoint (RFC 9725) written for the tests: hyper on loopback takes the offers, and
//! each session is received by webrtc-rs's sans-IO core (`rtc`, the answerer) on a thread of its
//! own with a UDP socket on loopback, its RTP reassembled into access units by `viewerload`.
//!
//! What it answers is scripted: each POST takes the next [`Mode`] (a refusal, no answer at
//! all, a redirect) and accepts once the script is empty. It records every POST and DELETE,
//! can drop a session's ICE (its receiver stops and closes its socket), and can disappear
//! (its listener closed) and come back on the same port. [`Endpoint::start_tls`] serves https
//! with a certificate the test made.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

#[path = "candidate.rs"]
mod candidate;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MediaEngine};
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use viewerload::ReceivedFrame;
use viewerload::reassemble::{Reassembler, RtpIn};

/// What the endpoint does with the next POST.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Answers: 201, `Location: session/<n>` (relative), the answer.
    Accept,
    /// Refuses with this status.
    Status(u16),
    /// Never answers.
    Hang,
    /// `307` to this `Location`.
    Redirect(String),
}

/// A POST as it came.
#[derive(Debug, Clone)]
pub struct Post {
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub offer: String,
}

/// One accepted session.
pub struct Session {
    pub number: u64,
    pub frames: Mutex<Vec<ReceivedFrame>>,
    pub connected: AtomicBool,
    stop: AtomicBool,
}

impl Session {
    /// Its access units so far (Annex-B).
    pub fn access_units(&self) -> Vec<Vec<u8>> {
        self.frames
            .lock()
            .unwrap()
            .iter()
            .map(|f| f.annexb.clone())
            .collect()
    }

    /// Its frames so far.
    pub fn frame_count(&self) -> usize {
        self.frames
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Drops its ICE: the receiver stops answering and closes its socket.
    pub fn drop_ice(&self) {
        self.stop.store(true, Relaxed);
    }
}

/// What the endpoint saw, and its script.
#[derive(Default)]
pub struct State {
    pub modes: VecDeque<Mode>,
    pub token: Option<String>,
    pub posts: Vec<Post>,
    pub deletes: Vec<String>,
    pub sessions: Vec<Arc<Session>>,
    pub refused: u64,
}

/// Shared between the test and the server.
#[derive(Default)]
pub struct Shared {
    pub state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_all();
    }

    /// Waits (at most `timeout`) until `ready` says yes, woken by every change.
    pub fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut(&State) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(t) = ready(&state) {
                return t;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let seen: Vec<String> = state
                    .posts
                    .iter()
                    .map(|p| p.path.clone())
                    .chain(state.sessions.iter().map(|s| {
                        format!(
                            "session {}: {} frames, connected {}",
                            s.number,
                            s.frame_count(),
                            s.connected.load(Relaxed)
                        )
                    }))
                    .collect();
                drop(state);
                panic!("timed out waiting for {what}; posts and sessions: {seen:?}");
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Wakes the waiters (a receiver got frames).
    fn poke(&self) {
        self.changed.notify_all();
    }
}

/// The endpoint. See the [module docs](self).
pub struct Endpoint {
    pub port: u16,
    pub shared: Arc<Shared>,
    rt: tokio::runtime::Runtime,
    accept: Option<tokio::task::JoinHandle<()>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Endpoint {
    /// Listens on loopback, https with this certificate chain and key (PEM).
    pub fn start_tls(token: Option<&str>, chain_pem: &str, key_pem: &str) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self::listening(
            token,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
    }

    /// Listens on loopback.
    pub fn start(token: Option<&str>) -> Self {
        Self::listening(token, None)
    }

    fn listening(token: Option<&str>, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Shared::default());
        shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .token = token.map(str::to_owned);
        let mut endpoint = Self {
            port: 0,
            shared,
            rt,
            accept: None,
            tls,
        };
        endpoint.listen(0);
        endpoint
    }

    /// `http://127.0.0.1:PORT{path}` (`https://` when it serves TLS).
    pub fn url(&self, path: &str) -> String {
        self.url_at("127.0.0.1", path)
    }

    /// Its URL with this host name (`localhost`, for a certificate that names it).
    pub fn url_at(&self, host: &str, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{host}:{}{path}", self.port)
    }

    fn listen(&mut self, port: u16) {
        let listener = self
            .rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
            .expect("bind the WHIP endpoint");
        self.port = listener.local_addr().unwrap().port();
        let shared = Arc::clone(&self.shared);
        let tls = self.tls.clone();
        self.accept = Some(self.rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&shared);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        // A client that refuses the certificate ends here: no request is seen.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        }));
    }

    /// Disappears: the listener closes (connections are refused) and every session's receiver
    /// stops.
    pub fn disappear(&mut self) {
        if let Some(task) = self.accept.take() {
            task.abort();
            let _ = self.rt.block_on(task);
        }
        for s in &self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sessions
        {
            s.drop_ice();
        }
    }

    /// Comes back on the same port.
    pub fn come_back(&mut self) {
        let port = self.port;
        self.listen(port);
    }

    /// Queues what the next POSTs get.
    pub fn script(&self, modes: &[Mode]) {
        self.shared
            .update(|s| s.modes.extend(modes.iter().cloned()));
    }

    /// Waits for session `n` (from 1) to have received `frames` frames.
    pub fn wait_frames(&self, n: usize, frames: usize, timeout: Duration) -> Arc<Session> {
        self.shared
            .wait(&format!("{frames} frames in session {n}"), timeout, |s| {
                let session = s.sessions.get(n - 1)?;
                (session.frame_count() >= frames).then(|| Arc::clone(session))
            })
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        for s in &self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sessions
        {
            s.drop_ice();
        }
    }
}

fn reply(
    status: StatusCode,
    headers: &[(&str, String)],
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    r.body(Full::new(body.into())).unwrap()
}

async fn handle(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header("authorization");
    let content_type = header("content-type");
    let method = req.method().clone();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    if method == hyper::Method::DELETE {
        let n: Option<u64> = path.rsplit('/').next().and_then(|n| n.parse().ok());
        let mut found = false;
        shared.update(|s| {
            s.deletes.push(path.clone());
            if let Some(session) = s.sessions.iter().find(|x| Some(x.number) == n) {
                session.drop_ice();
                found = true;
            }
        });
        return if found {
            reply(StatusCode::OK, &[], "")
        } else {
            reply(StatusCode::NOT_FOUND, &[], "no such session")
        };
    }
    let offer = String::from_utf8_lossy(&body).into_owned();
    let mut mode = Mode::Accept;
    let mut token_ok = true;
    shared.update(|s| {
        s.posts.push(Post {
            path: path.clone(),
            authorization: authorization.clone(),
            content_type: content_type.clone(),
            offer: offer.clone(),
        });
        mode = s.modes.pop_front().unwrap_or(Mode::Accept);
        if let Some(token) = &s.token {
            token_ok = authorization.as_deref() == Some(&format!("Bearer {token}"));
        }
        if !token_ok {
            s.refused += 1;
        }
    });
    if !token_ok {
        return reply(StatusCode::UNAUTHORIZED, &[], "invalid token");
    }
    match mode {
        Mode::Status(code) => {
            shared.update(|s| s.refused += 1);
            reply(StatusCode::from_u16(code).unwrap(), &[], "scripted refusal")
        }
        Mode::Hang => std::future::pending().await,
        Mode::Redirect(to) => reply(StatusCode::TEMPORARY_REDIRECT, &[("Location", to)], ""),
        Mode::Accept => {
            if content_type.as_deref() != Some("application/sdp") {
                return reply(StatusCode::UNSUPPORTED_MEDIA_TYPE, &[], "");
            }
            let number = shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .sessions
                .len() as u64
                + 1;
            match Receiver::answer(&offer) {
                Ok((receiver, answer)) => {
                    let session = Arc::new(Session {
                        number,
                        frames: Mutex::default(),
                        connected: AtomicBool::new(false),
                        stop: AtomicBool::new(false),
                    });
                    shared.update(|s| s.sessions.push(Arc::clone(&session)));
                    let shared = Arc::clone(shared);
                    std::thread::spawn(move || receiver.run(&session, &shared));
                    reply(
                        StatusCode::CREATED,
                        &[
                            ("Content-Type", "application/sdp".to_owned()),
                            ("Location", format!("session/{number}")),
                        ],
                        answer,
                    )
                }
                Err(e) => reply(StatusCode::BAD_REQUEST, &[], e),
            }
        }
    }
}

/// A session's receiving side.
struct Receiver {
    pc: RTCPeerConnection,
    socket: UdpSocket,
    local: SocketAddr,
}

impl Receiver {
    /// Answers `offer` (its H.264 format as offered), with one host candidate on loopback.
    fn answer(offer: &str) -> Result<(Self, String), String> {
        let (pt, fmtp) = offer
            .lines()
            .find_map(|l| {
                let rest = l.trim().strip_prefix("a=fmtp:")?;
                let (pt, fmtp) = rest.split_once(' ')?;
                Some((pt.parse::<u8>().ok()?, fmtp.to_owned()))
            })
            .ok_or("no fmtp in the offer")?;
        let now = Instant::now();
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: RTCRtpCodec {
                        mime_type: MIME_TYPE_H264.to_owned(),
                        clock_rate: 90_000,
                        channels: 0,
                        sdp_fmtp_line: fmtp,
                        rtcp_feedback: vec![RTCPFeedback {
                            typ: "nack".to_owned(),
                            parameter: String::new(),
                        }],
                    },
                    payload_type: pt,
                },
                RtpCodecKind::Video,
            )
            .map_err(|e| e.to_string())?;
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(Registry::new())
            .build(now)
            .map_err(|e| e.to_string())?;
        pc.set_remote_description(
            now,
            RTCSessionDescription::offer(offer.to_owned()).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = socket.local_addr().unwrap();
        pc.add_local_candidate(candidate::loopback_host(&socket))
            .map_err(|e| e.to_string())?;
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .map_err(|e| e.to_string())?;
        let answer = pc.create_answer(None).map_err(|e| e.to_string())?;
        pc.set_local_description(now, answer)
            .map_err(|e| e.to_string())?;
        let sdp = pc.local_description().ok_or("no answer")?.sdp;
        Ok((Self { pc, socket, local }, sdp))
    }

    /// Receives until told to stop (or the sink closes the connection).
    fn run(mut self, session: &Session, shared: &Shared) {
        let mut buf = vec![0u8; 65536];
        let mut reassembler = Reassembler::new();
        let t0 = Instant::now();
        while !session.stop.load(Relaxed) {
            let now = Instant::now();
            if self.pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = self.pc.handle_timeout(now);
            }
            self.take(session, shared, &mut reassembler, t0);
            while let Some(out) = self.pc.poll_write() {
                let _ = self.socket.send_to(&out.message, out.transport.peer_addr);
            }
            let wait = self
                .pc
                .poll_timeout()
                .map_or(Duration::from_millis(20), |t| {
                    t.saturating_duration_since(Instant::now())
                })
                .clamp(Duration::from_millis(1), Duration::from_millis(20));
            self.socket.set_read_timeout(Some(wait)).unwrap();
            if let Ok((n, from)) = self.socket.recv_from(&mut buf) {
                let _ = self.pc.handle_read(TaggedBytesMut {
                    now: Instant::now(),
                    transport: TransportContext {
                        local_addr: self.local,
                        peer_addr: from,
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
                    },
                    message: BytesMut::from(&buf[..n]),
                });
                self.take(session, shared, &mut reassembler, t0);
            }
        }
    }

    fn take(&mut self, session: &Session, shared: &Shared, r: &mut Reassembler, t0: Instant) {
        while let Some(event) = self.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                session
                    .connected
                    .store(state == RTCPeerConnectionState::Connected, Relaxed);
                shared.poke();
            }
        }
        let mut got = false;
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            if let RTCMessage::RtpPacket(_, packet) = message {
                let frames = r.push(RtpIn {
                    sequence_number: packet.header.sequence_number,
                    timestamp: packet.header.timestamp,
                    marker: packet.header.marker,
                    payload: &packet.payload,
                    arrival_ns: t0.elapsed().as_nanos() as u64,
                });
                if !frames.is_empty() {
                    session
                        .frames
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend(frames);
                    got = true;
                }
            }
        }
        if got {
            shared.poke();
        }
    }
}
