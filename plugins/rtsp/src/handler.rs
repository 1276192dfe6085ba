//! One request in, one answer out: the RTSP 1.0 methods (RFC 2326 §10) and their errors.
//!
//! | request | answer |
//! | --- | --- |
//! | no or bad `CSeq`, bad `Transport`, `Session` syntax | 400 Bad Request |
//! | credentials needed and missing or wrong | 401 Unauthorized (`WWW-Authenticate`) |
//! | a path other than the stream's | 404 Not Found |
//! | ANNOUNCE, RECORD, REDIRECT, PLAY_NOTIFY | 405 Method Not Allowed (`Allow`) |
//! | SET_PARAMETER with parameters | 451 Parameter Not Understood |
//! | an unknown or foreign `Session` | 454 Session Not Found |
//! | PAUSE when not playing, SETUP when playing, a second session on one connection | 455 Method Not Valid in This State |
//! | SETUP of the presentation URL (not the track's) | 459 Aggregate Operation Not Allowed |
//! | only multicast, another profile, UDP without client ports or none free | 461 Unsupported Transport |
//! | an unknown method | 501 Not Implemented |
//! | `max_clients` sessions already; no video yet at DESCRIBE | 503 Service Unavailable |
//! | RTSP/2.0 | 505 RTSP Version Not Supported |
//! | a `Require`d feature | 551 Option Not Supported (`Unsupported`) |

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rtsp_types::headers::{
    self, RtpLowerTransport, RtpProfile, Transport as RtspTransport, Transports,
};
use rtsp_types::{Method, Request, Response, StatusCode, Url, Version};
use stackctl_media::monotonic_ns;
use tokio::sync::{mpsc, watch};

use crate::auth::AuthError;
use crate::machine::{Action, Machine, Request as MachineRequest};
use crate::metrics::CloseReason;
use crate::sdp::{self, TRACK};
use crate::server::Server;
use crate::session::{Cmd, Session, Transport};

/// How long DESCRIBE waits for the camera's first parameter sets.
const PARAMS_WAIT: Duration = Duration::from_secs(5);

/// Failed authentications on one connection before it is closed.
pub const MAX_AUTH_FAILURES: u32 = 5;

/// The methods this server answers, for `Public`.
const PUBLIC: &str =
    "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

/// One RTSP connection as the handler sees it.
#[derive(Debug)]
pub struct Conn {
    /// Its id.
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// The server's address the client reached.
    pub local: SocketAddr,
    /// Its Digest nonce.
    pub nonce: String,
    /// The session it set up, if any.
    pub session: Option<Arc<Session>>,
    /// Its writer.
    pub writer: mpsc::Sender<Cmd>,
    /// Closes it.
    pub closer: watch::Sender<bool>,
    /// Failed authentications so far.
    pub auth_failures: u32,
}

/// What to do with an answer.
#[derive(Debug)]
pub struct Outcome {
    /// The answer.
    pub response: Response<Vec<u8>>,
    /// Sent to the writer after the answer (a TCP session's `Play`).
    pub then: Option<Cmd>,
    /// Close the connection after the answer.
    pub close: bool,
    /// Header lines the answer repeats (`WWW-Authenticate`, one per scheme): `rtsp-types`
    /// keeps one value per header name, so these are written after its headers.
    pub repeated: Vec<(&'static str, String)>,
}

impl Outcome {
    fn new(response: Response<Vec<u8>>) -> Self {
        Self {
            response,
            then: None,
            close: false,
            repeated: Vec::new(),
        }
    }
}

/// Where a request URI points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `*`.
    Star,
    /// The stream (aggregate control).
    Presentation,
    /// Its one track.
    Track,
    /// Anything else.
    Unknown,
}

fn target(uri: Option<&Url>, mount: &str) -> Target {
    let Some(uri) = uri else {
        return Target::Star;
    };
    if uri.scheme() != "rtsp" {
        return Target::Unknown;
    }
    let path = uri.path().trim_matches('/');
    match path.strip_prefix(mount) {
        Some("") => Target::Presentation,
        Some(rest) if rest.strip_prefix('/') == Some(TRACK) => Target::Track,
        _ => Target::Unknown,
    }
}

/// A builder for an answer with `CSeq` and `Server`.
fn answer(status: StatusCode, cseq: Option<&str>) -> rtsp_types::ResponseBuilder {
    let mut b = Response::builder(Version::V1_0, status).header(
        headers::SERVER,
        concat!("stackctl/", env!("CARGO_PKG_VERSION")),
    );
    if let Some(cseq) = cseq {
        b = b.header(headers::CSEQ, cseq);
    }
    b
}

fn error(status: StatusCode, cseq: Option<&str>) -> Outcome {
    Outcome::new(answer(status, cseq).build(Vec::new()))
}

/// The method's name as the request line spells it (for Digest's HA2).
fn method_name(method: &Method) -> &str {
    match method {
        Method::Describe => "DESCRIBE",
        Method::GetParameter => "GET_PARAMETER",
        Method::Options => "OPTIONS",
        Method::Pause => "PAUSE",
        Method::Play => "PLAY",
        Method::PlayNotify => "PLAY_NOTIFY",
        Method::Redirect => "REDIRECT",
        Method::Setup => "SETUP",
        Method::SetParameter => "SET_PARAMETER",
        Method::Announce => "ANNOUNCE",
        Method::Record => "RECORD",
        Method::Teardown => "TEARDOWN",
        Method::Extension(name) => name,
    }
}

/// Answers one request.
pub async fn handle(server: &Arc<Server>, conn: &mut Conn, req: Request<Vec<u8>>) -> Outcome {
    let cseq = req
        .header(&headers::CSEQ)
        .map(|v| v.as_str().trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()));
    let Some(cseq) = cseq else {
        return error(StatusCode::BadRequest, None);
    };
    let cseq = cseq.as_str();
    if req.version() != Version::V1_0 {
        return error(StatusCode::RTSPVersionNotSupported, Some(cseq));
    }
    if let Some(required) = req.header(&headers::REQUIRE) {
        return Outcome::new(
            answer(StatusCode::OptionNotSupported, Some(cseq))
                .header(headers::UNSUPPORTED, required.as_str())
                .build(Vec::new()),
        );
    }
    let method = req.method().clone();
    let target = target(req.request_uri(), &server.config.mount);

    let mut user = None;
    if let Some(auth) = &server.auth
        && method != Method::Options
    {
        let uri = req.request_uri().map_or("*", Url::as_str);
        let authorization = req.header(&headers::AUTHORIZATION).map(|v| v.as_str());
        match auth.check(authorization, method_name(&method), uri, &conn.nonce) {
            Ok(name) => user = Some(name),
            Err(e) => {
                if e != AuthError::Missing && e != AuthError::Stale {
                    server.metrics.auth_failures.fetch_add(1, Relaxed);
                    conn.auth_failures += 1;
                    tracing::info!(peer = %conn.peer, error = %e, "RTSP authentication failed");
                }
                let mut out = error(StatusCode::Unauthorized, Some(cseq));
                out.repeated = auth
                    .challenges(&conn.nonce, e == AuthError::Stale)
                    .into_iter()
                    .map(|c| ("WWW-Authenticate", c))
                    .collect();
                out.close = conn.auth_failures >= MAX_AUTH_FAILURES;
                return out;
            }
        }
    }

    match method {
        Method::Options => options(server, conn, &req, cseq),
        Method::Describe => describe(server, conn, &req, cseq, target).await,
        Method::Setup => setup(server, conn, &req, cseq, target, user),
        Method::Play | Method::Pause | Method::Teardown => {
            control(server, conn, &req, cseq, target, &method)
        }
        Method::GetParameter | Method::SetParameter => parameter(server, conn, &req, cseq),
        Method::Announce | Method::Record | Method::Redirect | Method::PlayNotify => Outcome::new(
            answer(StatusCode::MethodNotAllowed, Some(cseq))
                .header(headers::ALLOW, PUBLIC)
                .build(Vec::new()),
        ),
        Method::Extension(_) => error(StatusCode::NotImplemented, Some(cseq)),
    }
}

/// The session a request names: `Ok(None)` when it names none, `Err` with the status when
/// it names one that is not there (or not this client's).
fn named_session(
    server: &Server,
    conn: &Conn,
    req: &Request<Vec<u8>>,
) -> Result<Option<Arc<Session>>, StatusCode> {
    let session = match req.typed_header::<headers::Session>() {
        Ok(None) => return Ok(None),
        Ok(Some(s)) => s,
        Err(_) => return Err(StatusCode::BadRequest),
    };
    let found = server.session(&session.0).filter(|s| {
        // An interleaved session lives on its own connection; a UDP session can be
        // reached from another (its client may have reconnected).
        s.conn == conn.id || matches!(s.transport, Transport::Udp { .. })
    });
    found.map(Some).ok_or(StatusCode::SessionNotFound)
}

fn session_header(server: &Server, session: &Session) -> String {
    format!(
        "{};timeout={}",
        session.id,
        server.config.session_timeout.as_secs()
    )
}

fn options(server: &Server, conn: &Conn, req: &Request<Vec<u8>>, cseq: &str) -> Outcome {
    let mut b = answer(StatusCode::Ok, Some(cseq)).header(headers::PUBLIC, PUBLIC);
    match named_session(server, conn, req) {
        Err(status) => return error(status, Some(cseq)),
        Ok(Some(session)) => {
            // A keep-alive is always valid.
            let _ = session
                .machine()
                .on_request(MachineRequest::KeepAlive, Instant::now());
            b = b.header(headers::SESSION, session_header(server, &session));
        }
        Ok(None) => {}
    }
    Outcome::new(b.build(Vec::new()))
}

fn parameter(server: &Server, conn: &Conn, req: &Request<Vec<u8>>, cseq: &str) -> Outcome {
    let session = match named_session(server, conn, req) {
        Err(status) => return error(status, Some(cseq)),
        Ok(s) => s,
    };
    if let Some(session) = &session {
        let _ = session
            .machine()
            .on_request(MachineRequest::KeepAlive, Instant::now());
    }
    if *req.method() == Method::SetParameter && !req.body().is_empty() {
        return error(StatusCode::ParameterNotUnderstood, Some(cseq));
    }
    let mut b = answer(StatusCode::Ok, Some(cseq));
    if let Some(session) = &session {
        b = b.header(headers::SESSION, session_header(server, session));
    }
    Outcome::new(b.build(Vec::new()))
}

async fn describe(
    server: &Server,
    conn: &Conn,
    req: &Request<Vec<u8>>,
    cseq: &str,
    target: Target,
) -> Outcome {
    match target {
        Target::Presentation => {}
        Target::Star => return error(StatusCode::BadRequest, Some(cseq)),
        Target::Track | Target::Unknown => return error(StatusCode::NotFound, Some(cseq)),
    }
    let Some(params) = server.feed.wait_params(PARAMS_WAIT).await else {
        return Outcome::new(
            answer(StatusCode::ServiceUnavailable, Some(cseq))
                .header(headers::RETRY_AFTER, "2")
                .build(Vec::new()),
        );
    };
    let base = content_base(req.request_uri(), &server.config.mount);
    let body = sdp::describe(&params, server.sdp_session_id, conn.local.ip()).into_bytes();
    Outcome::new(
        answer(StatusCode::Ok, Some(cseq))
            .header(headers::CONTENT_TYPE, "application/sdp")
            .header(headers::CONTENT_BASE, base)
            .build(body),
    )
}

/// The stream's URL as the client wrote it (host and port), with a trailing `/` so that the
/// track's control resolves under it; credentials and query left out.
fn content_base(uri: Option<&Url>, mount: &str) -> String {
    let Some(uri) = uri else {
        return format!("rtsp://localhost/{mount}/");
    };
    let host = uri.host_str().unwrap_or("localhost");
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    match uri.port() {
        Some(port) => format!("rtsp://{host}:{port}/{mount}/"),
        None => format!("rtsp://{host}/{mount}/"),
    }
}

/// The first transport of the client's list this server can serve.
enum Chosen {
    Tcp { rtp: u8, rtcp: u8 },
    Udp { client_rtp: u16, client_rtcp: u16 },
}

fn choose(transports: &Transports, udp: bool) -> Option<Chosen> {
    transports.iter().find_map(|t| {
        let RtspTransport::Rtp(rtp) = t else {
            return None;
        };
        if rtp.profile != RtpProfile::Avp || rtp.params.multicast {
            return None;
        }
        match rtp.lower_transport {
            Some(RtpLowerTransport::Tcp) => {
                let (rtp_ch, rtcp_ch) = match rtp.params.interleaved {
                    Some((a, Some(b))) => (a, b),
                    Some((a, None)) => (a, a.checked_add(1)?),
                    None => (0, 1),
                };
                (rtp_ch != rtcp_ch).then_some(Chosen::Tcp {
                    rtp: rtp_ch,
                    rtcp: rtcp_ch,
                })
            }
            Some(RtpLowerTransport::Udp) | None if udp => {
                let (a, b) = rtp.params.client_port?;
                let b = b.or_else(|| a.checked_add(1))?;
                (a != 0 && b != 0).then_some(Chosen::Udp {
                    client_rtp: a,
                    client_rtcp: b,
                })
            }
            _ => None,
        }
    })
}

fn transport_header(transport: &Transport, ssrc: u32) -> String {
    match transport {
        Transport::Tcp { rtp, rtcp } => {
            format!("RTP/AVP/TCP;unicast;interleaved={rtp}-{rtcp};ssrc={ssrc:08X}")
        }
        Transport::Udp {
            client_rtp,
            client_rtcp,
            server_port,
        } => format!(
            "RTP/AVP;unicast;client_port={}-{};server_port={}-{};ssrc={ssrc:08X}",
            client_rtp.port(),
            client_rtcp.port(),
            server_port,
            server_port + 1
        ),
    }
}

fn setup(
    server: &Arc<Server>,
    conn: &mut Conn,
    req: &Request<Vec<u8>>,
    cseq: &str,
    target: Target,
    user: Option<String>,
) -> Outcome {
    match target {
        Target::Track => {}
        Target::Presentation => return error(StatusCode::AggregateOperationNotAllowed, Some(cseq)),
        Target::Star => return error(StatusCode::BadRequest, Some(cseq)),
        Target::Unknown => return error(StatusCode::NotFound, Some(cseq)),
    }
    let transports = match req.typed_header::<Transports>() {
        Ok(Some(t)) => t,
        Ok(None) | Err(_) => return error(StatusCode::BadRequest, Some(cseq)),
    };
    match named_session(server, conn, req) {
        Err(status) => return error(status, Some(cseq)),
        Ok(Some(session)) => {
            // The same track again: nothing changes (RFC 2326 allows a transport change;
            // this server keeps the one it has).
            let action = session
                .machine()
                .on_request(MachineRequest::Setup, Instant::now());
            return match action {
                Ok(_) => Outcome::new(
                    answer(StatusCode::Ok, Some(cseq))
                        .header(
                            headers::TRANSPORT,
                            transport_header(&session.transport, session.rtp.ssrc),
                        )
                        .header(headers::SESSION, session_header(server, &session))
                        .build(Vec::new()),
                ),
                Err(_) => error(StatusCode::MethodNotValidInThisState, Some(cseq)),
            };
        }
        Ok(None) => {}
    }
    if conn.session.as_ref().is_some_and(|s| !s.is_ended()) {
        return error(StatusCode::MethodNotValidInThisState, Some(cseq));
    }
    if server.session_count() >= server.config.max_clients {
        return max_clients(server, cseq);
    }
    let Some(chosen) = choose(&transports, server.ports.is_some()) else {
        return error(StatusCode::UnsupportedTransport, Some(cseq));
    };
    let machine = Machine::new(Instant::now(), server.config.session_timeout);
    let id = crate::random::session_id();
    let key = server.next_id();
    let session = match chosen {
        Chosen::Tcp { rtp, rtcp } => Arc::new(Session::new(
            id,
            key,
            conn.id,
            Transport::Tcp { rtp, rtcp },
            user,
            conn.writer.clone(),
            conn.closer.clone(),
            machine,
        )),
        Chosen::Udp {
            client_rtp,
            client_rtcp,
        } => {
            let Some(pool) = &server.ports else {
                return error(StatusCode::UnsupportedTransport, Some(cseq));
            };
            // Not enough UDP ports: 461 makes clients such as ffmpeg retry over TCP.
            let Some(pair) = crate::udp::bind_pair(pool, server.config.bind) else {
                tracing::warn!("no free UDP port pair in udp_ports: a client is told to use TCP");
                return error(StatusCode::UnsupportedTransport, Some(cseq));
            };
            let (tx, rx) = mpsc::channel(4);
            let transport = Transport::Udp {
                // RTP goes to the address the RTSP connection comes from, never to one the
                // request names (that would make this server a traffic reflector).
                client_rtp: SocketAddr::new(conn.peer.ip(), client_rtp),
                client_rtcp: SocketAddr::new(conn.peer.ip(), client_rtcp),
                server_port: pair.port,
            };
            let session = Arc::new(Session::new(
                id,
                key,
                conn.id,
                transport,
                user,
                tx,
                conn.closer.clone(),
                machine,
            ));
            if server.add_session(Arc::clone(&session)).is_err() {
                return max_clients(server, cseq);
            }
            tokio::spawn(crate::udp::run(
                Arc::clone(server),
                Arc::clone(&session),
                pair,
                rx,
            ));
            return setup_done(server, conn, session, cseq);
        }
    };
    if server.add_session(Arc::clone(&session)).is_err() {
        return max_clients(server, cseq);
    }
    setup_done(server, conn, session, cseq)
}

fn setup_done(server: &Server, conn: &mut Conn, session: Arc<Session>, cseq: &str) -> Outcome {
    tracing::info!(
        session = %session.id,
        peer = %conn.peer,
        transport = %transport_header(&session.transport, session.rtp.ssrc),
        user = session.user.as_deref().unwrap_or("-"),
        "RTSP session set up"
    );
    let out = Outcome::new(
        answer(StatusCode::Ok, Some(cseq))
            .header(
                headers::TRANSPORT,
                transport_header(&session.transport, session.rtp.ssrc),
            )
            .header(headers::SESSION, session_header(server, &session))
            .build(Vec::new()),
    );
    conn.session = Some(session);
    out
}

fn max_clients(server: &Server, cseq: &str) -> Outcome {
    tracing::info!(
        max_clients = server.config.max_clients,
        "RTSP client refused: max_clients reached"
    );
    Outcome::new(
        answer(StatusCode::ServiceUnavailable, Some(cseq))
            .header(headers::RETRY_AFTER, "5")
            .build(Vec::new()),
    )
}

fn control(
    server: &Server,
    conn: &mut Conn,
    req: &Request<Vec<u8>>,
    cseq: &str,
    target: Target,
    method: &Method,
) -> Outcome {
    match target {
        Target::Presentation | Target::Track => {}
        Target::Star => return error(StatusCode::BadRequest, Some(cseq)),
        Target::Unknown => return error(StatusCode::NotFound, Some(cseq)),
    }
    let session = match named_session(server, conn, req) {
        Err(status) => return error(status, Some(cseq)),
        Ok(Some(s)) => s,
        Ok(None) => return error(StatusCode::SessionNotFound, Some(cseq)),
    };
    let request = match method {
        Method::Play => MachineRequest::Play,
        Method::Pause => MachineRequest::Pause,
        _ => MachineRequest::Teardown,
    };
    let action = session.machine().on_request(request, Instant::now());
    let Ok(action) = action else {
        return error(StatusCode::MethodNotValidInThisState, Some(cseq));
    };
    let mut b = answer(StatusCode::Ok, Some(cseq))
        .header(headers::SESSION, session_header(server, &session));
    let mut then = None;
    match action {
        Action::Answer => {}
        Action::Start => {
            let generation = session.next_generation();
            let next_seq = *session.next_seq();
            let (rx, start) =
                server
                    .feed
                    .subscribe(session.key, next_seq, Arc::clone(&session.stats));
            let rtptime = session
                .rtp
                .timestamp(start.timestamp_ns.unwrap_or_else(monotonic_ns));
            let track_url = format!(
                "{}{TRACK}",
                content_base(req.request_uri(), &server.config.mount)
            );
            b = b.header(headers::RANGE, "npt=0.000-").header(
                headers::RTP_INFO,
                format!("url={track_url};seq={};rtptime={rtptime}", start.seq),
            );
            let play = Cmd::Play {
                session: Arc::clone(&session),
                rx,
                generation,
            };
            match session.transport {
                // After the answer: a client must read PLAY's answer before RTP.
                Transport::Tcp { .. } => then = Some(play),
                Transport::Udp { .. } => {
                    if session.sender.try_send(play).is_err() {
                        tracing::warn!(session = %session.id, "the UDP sender is gone");
                    }
                }
            }
        }
        Action::Stop => {
            // Before the answer is queued: no frame of this play is written after it.
            session.next_generation();
            if let Some(next) = server.feed.unsubscribe(session.key) {
                *session.next_seq() = next;
            }
        }
        Action::End => {
            server.close_session(&session.id, CloseReason::Teardown);
        }
    }
    Outcome {
        then,
        ..Outcome::new(b.build(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn targets() {
        for (uri, want) in [
            ("rtsp://h:8554/live", Target::Presentation),
            ("rtsp://h/live/", Target::Presentation),
            ("rtsp://u:p@h/live?x=1", Target::Presentation),
            ("rtsp://h:8554/live/trackID=0", Target::Track),
            ("rtsp://h/live/trackID=1", Target::Unknown),
            ("rtsp://h/liver", Target::Unknown),
            ("rtsp://h/", Target::Unknown),
            ("http://h/live", Target::Unknown),
        ] {
            assert_eq!(target(Some(&url(uri)), "live"), want, "{uri}");
        }
        assert_eq!(target(None, "live"), Target::Star);
        assert_eq!(
            target(Some(&url("rtsp://h/cam/main/trackID=0")), "cam/main"),
            Target::Track
        );
    }

    #[test]
    fn content_base_keeps_the_clients_host_and_drops_credentials() {
        assert_eq!(
            content_base(Some(&url("rtsp://u:p@board:8554/live?a=b")), "live"),
            "rtsp://board:8554/live/"
        );
        assert_eq!(
            content_base(Some(&url("rtsp://[::1]:8554/live")), "live"),
            "rtsp://[::1]:8554/live/"
        );
    }

    fn transports(text: &str) -> Transports {
        let req = Request::builder(Method::Setup, Version::V1_0)
            .header(headers::TRANSPORT, text)
            .empty();
        req.typed_header::<Transports>().unwrap().unwrap()
    }

    #[test]
    fn the_first_servable_transport_is_chosen() {
        let tcp = |t: &str, udp: bool| match choose(&transports(t), udp) {
            Some(Chosen::Tcp { rtp, rtcp }) => Some(("tcp", u16::from(rtp), u16::from(rtcp))),
            Some(Chosen::Udp {
                client_rtp,
                client_rtcp,
            }) => Some(("udp", client_rtp, client_rtcp)),
            None => None,
        };
        assert_eq!(
            tcp("RTP/AVP/TCP;unicast;interleaved=0-1", true),
            Some(("tcp", 0, 1))
        );
        assert_eq!(
            tcp("RTP/AVP/TCP;unicast;interleaved=4", true),
            Some(("tcp", 4, 5))
        );
        assert_eq!(tcp("RTP/AVP/TCP;unicast", true), Some(("tcp", 0, 1)));
        assert_eq!(tcp("RTP/AVP/TCP;interleaved=3-3", true), None);
        assert_eq!(
            tcp("RTP/AVP;unicast;client_port=5000-5001", true),
            Some(("udp", 5000, 5001))
        );
        assert_eq!(
            tcp("RTP/AVP/UDP;unicast;client_port=5000", true),
            Some(("udp", 5000, 5001))
        );
        assert_eq!(
            tcp("RTP/AVP;unicast;client_port=5000-5001", false),
            None,
            "UDP off"
        );
        assert_eq!(tcp("RTP/AVP;unicast", true), None, "no client ports");
        assert_eq!(tcp("RTP/AVP;multicast", true), None);
        assert_eq!(tcp("RTP/SAVP;unicast;client_port=5000-5001", true), None);
        assert_eq!(
            tcp(
                "RTP/AVP;multicast,RTP/AVP;unicast;client_port=6000-6001,RTP/AVP/TCP;unicast",
                true
            ),
            Some(("udp", 6000, 6001)),
            "the client's order"
        );
    }
}
