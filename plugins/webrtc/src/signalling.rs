//! The HTTP side: WHEP (`POST /whep`, `PATCH` and `DELETE /whep/<id>`), the legacy JSON offer
//! (`POST /offer`, `POST /api/webrtc/offer`) and the viewer page (`GET /`).

use rtc::peer_connection::transport::RTCIceCandidateInit;
use serde::Deserialize;
use stackctl_sink_sdk::Request;

use crate::admission::Refused;
use crate::hub::Removal;
use crate::sessions::{SessionError, Sessions};

/// The viewer page, served at `/`.
pub const VIEWER_PAGE: &str = include_str!("../assets/viewer.html");

/// An answer to give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers, besides the content type.
    pub headers: Vec<(String, String)>,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            content_type,
            body: body.into(),
        }
    }

    /// A JSON error: `{"error": message}`.
    pub fn error(status: u16, message: impl std::fmt::Display) -> Self {
        let body = serde_json::json!({ "error": message.to_string() }).to_string();
        Self::new(status, "application/json", body)
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// The legacy offer: `{"type": "offer", "sdp": "..."}`.
#[derive(Debug, Deserialize)]
struct JsonOffer {
    #[serde(rename = "type")]
    kind: String,
    sdp: String,
}

/// Routes one request.
pub fn handle(sessions: &Sessions, request: &Request) -> Reply {
    let path = request.path().trim_end_matches('/');
    let method = request.method();
    match (path, method) {
        ("" | "/index.html", "GET" | "HEAD") => {
            Reply::new(200, "text/html; charset=utf-8", VIEWER_PAGE)
                .header("Cache-Control", "no-cache")
        }
        ("" | "/index.html", _) => not_allowed("GET"),
        ("/offer" | "/api/webrtc/offer", "POST") => legacy_offer(sessions, request),
        ("/offer" | "/api/webrtc/offer", _) => not_allowed("POST"),
        ("/whep", "POST") => whep_offer(sessions, request),
        ("/whep", _) => not_allowed("POST"),
        _ => match path.strip_prefix("/whep/") {
            Some(id) if !id.is_empty() && !id.contains('/') => match method {
                "DELETE" => {
                    if sessions.close(id, Removal::Closed) {
                        Reply::new(200, "text/plain", "")
                    } else {
                        Reply::error(404, format_args!("no session {id}"))
                    }
                }
                "PATCH" => trickle(sessions, id, request),
                _ => not_allowed("PATCH, DELETE"),
            },
            _ => Reply::error(404, format_args!("no route {}", request.path())),
        },
    }
}

fn not_allowed(allow: &str) -> Reply {
    Reply::error(405, format_args!("method not allowed: use {allow}")).header("Allow", allow)
}

/// The body as UTF-8 text, if within `max` bytes and of one of `types` (when a type is given).
fn body_text<'a>(request: &'a Request, types: &[&str], max: usize) -> Result<&'a str, Reply> {
    let content_type = request.header("content-type").map(|t| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    match &content_type {
        Some(t) if !types.contains(&t.as_str()) => {
            return Err(Reply::error(
                415,
                format_args!(
                    "Content-Type {t} is not accepted here: send {}",
                    types.join(" or ")
                ),
            ));
        }
        None if types.first() == Some(&"application/sdp") => {
            return Err(Reply::error(
                415,
                "Content-Type application/sdp is required",
            ));
        }
        _ => {}
    }
    if request.body().len() > max {
        return Err(Reply::error(
            413,
            format_args!("body of {} bytes: the limit is {max}", request.body().len()),
        ));
    }
    std::str::from_utf8(request.body()).map_err(|_| Reply::error(400, "the body is not UTF-8"))
}

fn legacy_offer(sessions: &Sessions, request: &Request) -> Reply {
    let max = sessions.config().max_offer_bytes;
    let text = match body_text(request, &["application/json", "text/plain"], max) {
        Ok(text) => text,
        Err(reply) => return rejected(sessions, reply),
    };
    let offer: JsonOffer = match serde_json::from_str(text) {
        Ok(offer) => offer,
        Err(e) => {
            return rejected(
                sessions,
                Reply::error(
                    400,
                    format_args!("expected {{\"type\":\"offer\",\"sdp\":\"...\"}}: {e}"),
                ),
            );
        }
    };
    if offer.kind != "offer" {
        return rejected(
            sessions,
            Reply::error(
                400,
                format_args!("type {:?}: expected \"offer\"", offer.kind),
            ),
        );
    }
    match sessions.open(&offer.sdp) {
        Ok(answer) => {
            let body = serde_json::json!({ "type": "answer", "sdp": answer.sdp }).to_string();
            Reply::new(200, "application/json", body)
        }
        Err(e) => session_error(sessions, &e),
    }
}

fn whep_offer(sessions: &Sessions, request: &Request) -> Reply {
    let max = sessions.config().max_offer_bytes;
    let text = match body_text(request, &["application/sdp"], max) {
        Ok(text) => text,
        Err(reply) => return rejected(sessions, reply),
    };
    match sessions.open(text) {
        Ok(answer) => {
            let mut reply = Reply::new(201, "application/sdp", answer.sdp)
                .header("Location", format!("/whep/{}", answer.id))
                .header("Accept-Patch", "application/trickle-ice-sdpfrag");
            for url in &sessions.config().stun {
                reply = reply.header("Link", format!("<{url}>; rel=\"ice-server\""));
            }
            reply
        }
        Err(e) => session_error(sessions, &e),
    }
}

/// `PATCH /whep/<id>`: trickled candidates, as an `application/trickle-ice-sdpfrag`.
fn trickle(sessions: &Sessions, id: &str, request: &Request) -> Reply {
    let text = match body_text(request, &["application/trickle-ice-sdpfrag"], 64 * 1024) {
        Ok(text) => text,
        Err(reply) => return reply,
    };
    let mut mid = None;
    let mut ufrag = None;
    let mut candidates = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.to_owned());
        } else if let Some(u) = line.strip_prefix("a=ice-ufrag:") {
            ufrag = Some(u.to_owned());
        } else if let Some(c) = line.strip_prefix("a=")
            && c.starts_with("candidate:")
            // The sink listens on UDP only (ICE-TCP is not offered): a TCP candidate is no use.
            && c.split_whitespace().nth(2).is_some_and(|t| t.eq_ignore_ascii_case("udp"))
        {
            candidates.push(RTCIceCandidateInit {
                candidate: c.to_owned(),
                sdp_mid: mid.clone(),
                sdp_mline_index: Some(0),
                username_fragment: ufrag.clone(),
                ..Default::default()
            });
        }
    }
    match sessions.add_candidates(id, candidates) {
        Ok(true) => Reply::new(204, "text/plain", ""),
        Ok(false) => Reply::error(404, format_args!("no session {id}")),
        Err(e) => Reply::error(400, e),
    }
}

/// Counts a malformed request and passes its reply on.
fn rejected(sessions: &Sessions, reply: Reply) -> Reply {
    sessions.count_invalid();
    reply
}

fn session_error(sessions: &Sessions, e: &SessionError) -> Reply {
    match e {
        SessionError::Offer(_) => rejected(sessions, Reply::error(400, e)),
        SessionError::Refused(Refused::Full(_)) => Reply::error(503, e).header("Retry-After", "5"),
        SessionError::Refused(Refused::Busy(_) | Refused::NoVideo | Refused::Gone) => {
            Reply::error(503, e).header("Retry-After", "1")
        }
        SessionError::WebRtc(_) => Reply::error(500, e),
    }
}
