//! The HTTP side of WHIP (RFC 9725) on hyper: POST an offer (following 307 and 308
//! redirects), DELETE a session. Each request has its own connection and a deadline; nothing
//! the endpoint sends is trusted beyond [`MAX_BODY`] bytes.
//!
//! Plain `http://` only: see the crate README for why `https://` is refused.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, LOCATION, RETRY_AFTER};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use url::Url;

/// The largest answer (or error body) read from an endpoint.
pub const MAX_BODY: usize = 256 * 1024;
/// Redirects followed for one offer.
pub const MAX_REDIRECTS: usize = 5;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No connection (refused, unreachable, no such host).
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    /// No complete response within the deadline.
    #[error("no response from {0} within {1:?}")]
    Timeout(String, Duration),
    /// The exchange broke off (the connection closed, an invalid response).
    #[error("{0}: {1}")]
    Exchange(String, String),
    /// A response body larger than [`MAX_BODY`].
    #[error("{0}: the response is larger than {MAX_BODY} bytes")]
    TooLarge(String),
    /// Redirected too often, or to somewhere unusable.
    #[error("{0}")]
    Redirect(String),
}

/// A response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// The URL that answered (after redirects): a relative `Location` resolves against it.
    pub url: Url,
    /// `Location`, resolved.
    pub location: Option<Url>,
    /// `Retry-After` in seconds, if given so.
    pub retry_after: Option<Duration>,
    /// `Content-Type`, without parameters.
    pub content_type: Option<String>,
    /// Its body (at most [`MAX_BODY`] bytes).
    pub body: Bytes,
}

/// A blocking client: a small single-threaded tokio runtime of its own (the sink has no other),
/// used from one publisher thread.
#[derive(Debug)]
pub struct Client {
    rt: tokio::runtime::Runtime,
}

impl Client {
    /// A client.
    pub fn new() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Self { rt })
    }

    /// POSTs `sdp` to `url` (`Authorization: Bearer token` if given), following 307 and 308
    /// redirects, each request within `timeout`.
    pub fn post_offer(
        &self,
        url: &Url,
        token: Option<&str>,
        sdp: &str,
        timeout: Duration,
    ) -> Result<Reply, HttpError> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let reply = self.request(
                Method::POST,
                &url,
                token,
                Some(("application/sdp", Bytes::copy_from_slice(sdp.as_bytes()))),
                timeout,
            )?;
            if matches!(
                reply.status,
                StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
            ) {
                let Some(next) = reply.location else {
                    return Err(HttpError::Redirect(format!(
                        "{}: {} without a Location",
                        redact(&url),
                        reply.status
                    )));
                };
                if next.scheme() != "http" {
                    return Err(HttpError::Redirect(format!(
                        "{}: redirected to {}, which is not http://",
                        redact(&url),
                        redact(&next)
                    )));
                }
                tracing::debug!(from = %redact(&url), to = %redact(&next), "WHIP offer redirected");
                url = next;
                continue;
            }
            return Ok(reply);
        }
        Err(HttpError::Redirect(format!(
            "{}: more than {MAX_REDIRECTS} redirects",
            redact(&url)
        )))
    }

    /// DELETEs a session, within `timeout`: its status.
    pub fn delete(
        &self,
        url: &Url,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<StatusCode, HttpError> {
        self.request(Method::DELETE, url, token, None, timeout)
            .map(|r| r.status)
    }

    /// One request on a connection of its own.
    pub fn request(
        &self,
        method: Method,
        url: &Url,
        token: Option<&str>,
        body: Option<(&str, Bytes)>,
        timeout: Duration,
    ) -> Result<Reply, HttpError> {
        let shown = redact(url);
        let exchange = exchange(method, url, token, body, &shown);
        self.rt.block_on(async {
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| Err(HttpError::Timeout(shown.clone(), timeout)))
        })
    }
}

async fn exchange(
    method: Method,
    url: &Url,
    token: Option<&str>,
    body: Option<(&str, Bytes)>,
    shown: &str,
) -> Result<Reply, HttpError> {
    let broke = |e: &dyn std::fmt::Display| HttpError::Exchange(shown.to_owned(), e.to_string());
    let host = url
        .host_str()
        .ok_or_else(|| broke(&"the URL has no host"))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| broke(&"the URL has no port"))?;
    // `[::1]` in a URL is `::1` to connect to.
    let connect_host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((connect_host, port))
        .await
        .map_err(|e| HttpError::Connect(format!("{host}:{port}"), e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| broke(&e))?;
    // The connection runs beside the request; it ends when the sender is dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let mut path = url.path().to_owned();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, authority);
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let (content_type, bytes) = body.unwrap_or(("", Bytes::new()));
    if !content_type.is_empty() {
        request = request.header(CONTENT_TYPE, content_type);
    }
    let request = request.body(Full::new(bytes)).map_err(|e| broke(&e))?;
    let response = sender.send_request(request).await.map_err(|e| broke(&e))?;
    {
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    HttpError::TooLarge(shown.to_owned())
                } else {
                    broke(&e)
                }
            })?
            .to_bytes();
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
        };
        Ok(Reply {
            status: parts.status,
            url: url.clone(),
            location: header(LOCATION).and_then(|l| url.join(l).ok()),
            retry_after: header(RETRY_AFTER)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
            content_type: header(CONTENT_TYPE).map(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            }),
            body,
        })
    }
}

/// A URL as it may be shown (logs, status, metric labels): no user, password or query (a
/// query or a path may carry a key; the path is kept, it names the stream).
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}
