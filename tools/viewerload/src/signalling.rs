//! HTTP signalling: WHEP (`POST /whep`, `DELETE /whep/<id>`) and the legacy JSON offer API.
//!
//! A small HTTP/1.1 client on hyper: one TCP connection per request, `Connection: close`,
//! bodies capped at 1 MiB. Plain `http://` only — stackctl serves signalling on the board's
//! LAN or loopback.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, HeaderMap, LOCATION, RETRY_AFTER};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpStream;

use crate::Error;

/// Largest response body accepted: an answer SDP is a few KiB.
const MAX_BODY: usize = 1 << 20;

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A header's value, if present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `error` field of a JSON error body, if the body is one.
    pub fn json_error(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        match v.get("error")? {
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// Sends `body` to `{base_url}{path}` with `POST` and the given `Content-Type`, and returns
/// whatever the server answers, any status. For tests of malformed requests.
pub async fn post_raw(
    base_url: &str,
    path: &str,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> Result<HttpResponse, Error> {
    let url = join(base_url, path)?;
    request(Method::POST, &url, Some(content_type), body.into()).await
}

/// Sends one HTTP/1.1 request and reads the whole response, any status.
pub async fn request(
    method: Method,
    url: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<HttpResponse, Error> {
    let uri = parse_http_url(url)?;
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let addr = if uri.port_u16().is_some() {
        authority.clone()
    } else {
        format!("{authority}:80")
    };
    let http_err = |reason: String| Error::Http {
        method: method.to_string(),
        url: url.to_owned(),
        reason,
    };

    let stream = TcpStream::connect(&addr)
        .await
        .map_err(|source| Error::Connect {
            addr: addr.clone(),
            source,
        })?;
    // Signalling is a handful of small writes; don't let Nagle hold the body back.
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http_err(e.to_string()))?;
    let conn = tokio::spawn(conn);

    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(HOST, &authority)
        .header(CONNECTION, "close");
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| http_err(e.to_string()))?;

    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| http_err(e.to_string()))?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| http_err(e.to_string()))?
            .to_bytes();
        Ok(HttpResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.to_vec(),
        })
    }
    .await;
    conn.abort();
    result
}

/// Checks that `base_url` is a usable base: `http://host[:port][/prefix]`, no query.
pub fn check_base_url(base_url: &str) -> Result<(), Error> {
    join(base_url, "/").map(|_| ())
}

/// `{base}{path}`, with exactly one `/` between them.
pub(crate) fn join(base_url: &str, path: &str) -> Result<String, Error> {
    parse_http_url(base_url)?;
    if base_url.contains(['?', '#']) {
        return Err(Error::InvalidUrl {
            url: base_url.to_owned(),
            reason: "a base URL cannot have a query or fragment".into(),
        });
    }
    Ok(format!(
        "{}/{}",
        base_url.trim_end_matches('/'),
        path.trim_start_matches('/')
    ))
}

fn parse_http_url(url: &str) -> Result<Uri, Error> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(invalid("https is not supported; use http://")),
        _ => return Err(invalid("expected http://host:port")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    Ok(uri)
}

/// Resolves a `Location` header against the URL of the request that returned it (RFC 3986
/// §5.2, for the forms a server sends: absolute URL, absolute path, or relative path).
pub(crate) fn resolve_location(request_url: &str, location: &str) -> Result<String, Error> {
    let location = location.trim();
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(location.to_owned());
    }
    let uri = parse_http_url(request_url)?;
    let origin = format!("http://{}", uri.authority().map_or("", |a| a.as_str()));
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("http://{rest}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{origin}{location}"));
    }
    let dir = uri.path().rsplit_once('/').map_or("", |(dir, _)| dir);
    Ok(format!("{origin}{dir}/{location}"))
}

fn status_error(method: &Method, url: &str, resp: &HttpResponse) -> Error {
    let message = resp.json_error().unwrap_or_else(|| {
        let text = resp.text();
        let text = text.trim();
        if text.is_empty() {
            hyper::StatusCode::from_u16(resp.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("no message")
                .to_owned()
        } else {
            text.chars().take(200).collect()
        }
    });
    let retry_after = resp
        .header(RETRY_AFTER.as_str())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Error::Status {
        method: method.to_string(),
        url: url.to_owned(),
        status: resp.status,
        message,
        retry_after,
    }
}

/// A negotiated WHEP session.
#[derive(Debug, Clone)]
pub(crate) struct WhepAnswer {
    pub sdp: String,
    pub session_url: String,
}

/// `POST {base}/whep` with the offer; expects `201 Created`, `Location`, and an SDP answer.
pub(crate) async fn whep_offer(base_url: &str, offer_sdp: &str) -> Result<WhepAnswer, Error> {
    let url = join(base_url, "/whep")?;
    let resp = request(
        Method::POST,
        &url,
        Some("application/sdp"),
        offer_sdp.as_bytes().to_vec(),
    )
    .await?;
    // WHEP says 201; a 200 with the same content is accepted rather than failing a viewer
    // over a status nuance.
    if !matches!(resp.status, 200 | 201) {
        return Err(status_error(&Method::POST, &url, &resp));
    }
    let bad = |reason: &str| Error::BadAnswer {
        url: url.clone(),
        reason: reason.to_owned(),
    };
    let location = resp
        .header(LOCATION.as_str())
        .ok_or_else(|| bad("no Location header (the WHEP session URL)"))?;
    let session_url = resolve_location(&url, location)?;
    let sdp = resp.text();
    if !sdp.trim_start().starts_with("v=0") {
        return Err(bad("body is not an SDP answer"));
    }
    Ok(WhepAnswer { sdp, session_url })
}

/// `DELETE` a WHEP session; 2xx is success (200 and 204 expected).
pub(crate) async fn whep_delete(session_url: &str) -> Result<(), Error> {
    let resp = request(Method::DELETE, session_url, None, Vec::new()).await?;
    if (200..300).contains(&resp.status) {
        Ok(())
    } else {
        Err(status_error(&Method::DELETE, session_url, &resp))
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct JsonDescription {
    #[serde(rename = "type")]
    kind: String,
    sdp: String,
}

/// Legacy API: `POST {base}{path}` with `{"type":"offer","sdp":...}`, expects
/// `{"type":"answer","sdp":...}`.
pub(crate) async fn legacy_offer(
    base_url: &str,
    path: &str,
    offer_sdp: &str,
) -> Result<String, Error> {
    let url = join(base_url, path)?;
    let body = serde_json::to_vec(&JsonDescription {
        kind: "offer".into(),
        sdp: offer_sdp.to_owned(),
    })
    .map_err(|e| Error::BadAnswer {
        url: url.clone(),
        reason: format!("cannot encode offer: {e}"),
    })?;
    let resp = request(Method::POST, &url, Some("application/json"), body).await?;
    if !(200..300).contains(&resp.status) {
        return Err(status_error(&Method::POST, &url, &resp));
    }
    let answer: JsonDescription =
        serde_json::from_slice(&resp.body).map_err(|e| Error::BadAnswer {
            url: url.clone(),
            reason: format!("expected {{\"type\":\"answer\",\"sdp\":...}}: {e}"),
        })?;
    if answer.kind != "answer" {
        return Err(Error::BadAnswer {
            url,
            reason: format!("type is {:?}, expected \"answer\"", answer.kind),
        });
    }
    Ok(answer.sdp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_puts_one_slash_between() {
        assert_eq!(
            join("http://127.0.0.1:8081/", "/whep").unwrap(),
            "http://127.0.0.1:8081/whep"
        );
        assert_eq!(
            join("http://h:1/cam", "api/webrtc/offer").unwrap(),
            "http://h:1/cam/api/webrtc/offer"
        );
        assert!(join("https://h:1", "/whep").is_err());
        assert!(join("127.0.0.1:8081", "/whep").is_err());
        assert!(join("http://h:1/?x=1", "/whep").is_err());
    }

    #[test]
    fn location_resolution() {
        let req = "http://127.0.0.1:8081/whep";
        assert_eq!(
            resolve_location(req, "/whep/abc").unwrap(),
            "http://127.0.0.1:8081/whep/abc"
        );
        assert_eq!(
            resolve_location(req, "whep/abc").unwrap(),
            "http://127.0.0.1:8081/whep/abc"
        );
        assert_eq!(
            resolve_location("http://h:1/a/whep", "s/1").unwrap(),
            "http://h:1/a/s/1"
        );
        assert_eq!(
            resolve_location(req, "http://other:9/x").unwrap(),
            "http://other:9/x"
        );
    }

    #[test]
    fn status_error_prefers_the_json_message_and_reads_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, hyper::header::HeaderValue::from_static("3"));
        let resp = HttpResponse {
            status: 503,
            headers,
            body: br#"{"error":"too many viewers"}"#.to_vec(),
        };
        let e = status_error(&Method::POST, "http://h:1/whep", &resp);
        assert_eq!(e.status(), Some(503));
        assert_eq!(e.server_message(), Some("too many viewers"));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(
            e.to_string(),
            "POST http://h:1/whep returned HTTP 503: too many viewers (retry after 3s)"
        );
        let plain = HttpResponse {
            status: 404,
            headers: HeaderMap::new(),
            body: Vec::new(),
        };
        assert_eq!(
            status_error(&Method::DELETE, "u", &plain).server_message(),
            Some("Not Found")
        );
    }
}
