//! stackctl's HTTP server: `/health`, `/metrics`, `/api/status`, and the routes of the sink
//! plugins. Read-only for the stack itself: nothing that starts or stops a service is reachable
//! over TCP (that is the control socket's job).
//!
//! Every 4xx and 5xx carries a JSON body; CORS is answered for the configured origins only
//! (with OPTIONS preflight); request bodies are limited in size and in time.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use stackctl_core::shm::SourceStats;
use stackctl_media::clock::monotonic_ns;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::status::StackStatus;
use stackctl_plugin_host::{HttpError, Plugin, PluginBody, PluginHost, Routed, StreamOptions};

pub mod detections;
pub mod hyper_errors;
pub mod snapshot;
pub mod vision;

/// Why a response body failed: a plugin's streamed answer was cut or aborted (hyper then closes
/// the connection mid-message, so the client sees it incomplete).
pub type BodyError = stackctl_plugin_host::StreamError;

/// A response body: a whole one, or a stream (server-sent events, a plugin's streamed answer).
pub type Body = http_body_util::combinators::BoxBody<Bytes, BodyError>;

/// A whole body.
pub fn full(bytes: Bytes) -> Body {
    boxed(Full::new(bytes))
}

/// A whole body as a [`Body`].
pub fn boxed(body: Full<Bytes>) -> Body {
    never_fails(body)
}

/// A body that cannot fail as a [`Body`].
pub fn never_fails(
    body: impl hyper::body::Body<Data = Bytes, Error = Infallible> + Send + Sync + 'static,
) -> Body {
    body.map_err(|never: Infallible| match never {}).boxed()
}

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// Everything (the main HTTP port).
    All,
    /// Only `/metrics` (the separate metrics port).
    MetricsOnly,
}

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper's read and write buffer per connection: a head larger than this is refused (431), and
/// hyper stops taking a response body past it until the client reads. Its default (about
/// 400 KiB) would hold more of a stalled download than the plugin's own bounded buffer.
const CONNECTION_BUFFER: usize = 64 * 1024;
/// Largest request body accepted (SDP offers are a few kB).
pub const BODY_LIMIT: usize = 1 << 20;
/// Frames older than this mean the stream has stopped (the night rate is 2 fps).
const STALE_AFTER: Duration = Duration::from_secs(3);

/// What the handlers read.
#[derive(Debug, Clone)]
pub struct Context {
    /// The latest stack status.
    pub status: watch::Receiver<Arc<StackStatus>>,
    /// The sink plugins, when any run.
    pub plugins: Option<Arc<PluginHost>>,
    /// The camera source's counters, when the source runs.
    pub source: Option<(String, Arc<SourceStats>)>,
    /// Origins allowed to call from a browser.
    pub cors_origins: Arc<Vec<String>>,
    /// Detections and snapshots.
    pub vision: vision::Vision,
    /// A plugin's streamed answer that sends nothing for this long is cut (`http.write_timeout`).
    pub write_timeout: Duration,
}

/// Serves `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, ctx: Context, routes: Routes) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                continue;
            }
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            // A plugin's streamed answer that is cut (write time-out) or aborted drops its
            // connection through this, also when hyper is not polling the body (a client that
            // stopped reading leaves hyper waiting on the socket).
            let close = Arc::new(Notify::new());
            let options = StreamOptions {
                write_timeout: ctx.write_timeout,
                close_connection: Some(close.clone()),
            };
            let service = service_fn(move |mut req: Request<Incoming>| {
                let ctx = ctx.clone();
                req.extensions_mut().insert(options.clone());
                async move { Ok::<_, Infallible>(handle(req, &ctx, routes).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(CONNECTION_BUFFER)
                .serve_connection(TokioIo::new(hyper_errors::JsonErrors::new(stream)), service);
            tokio::select! {
                ended = conn => if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                },
                () = close.notified() => {
                    tracing::debug!(%peer, "HTTP connection closed: its streamed answer was cut or aborted");
                }
            }
        });
    }
}

async fn handle(req: Request<Incoming>, ctx: &Context, routes: Routes) -> Response<Body> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| ctx.cors_origins.iter().any(|allowed| allowed == o))
        .map(str::to_owned);
    let mut response = if req.method() == Method::OPTIONS {
        respond(StatusCode::OK, "text/plain", String::new()).map(boxed)
    } else if let Some(response) = vision::dispatch(&req, &ctx.vision, routes).await {
        response
    } else {
        dispatch(req, ctx, routes).await
    };
    if let Some(origin) = origin.and_then(|o| HeaderValue::from_str(&o).ok()) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, PATCH, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Location, Link, Retry-After"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

async fn dispatch(req: Request<Incoming>, ctx: &Context, routes: Routes) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let own = match routes {
        Routes::All => matches!(path.as_str(), "/metrics" | "/api/status" | "/health"),
        Routes::MetricsOnly => path == "/metrics",
    };
    if own {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("{path} only answers GET"),
            )
            .map(boxed);
        }
        let status = ctx.status.borrow().clone();
        return match path.as_str() {
            "/metrics" => metrics(&status, ctx),
            "/health" => health(ctx),
            _ => json(StatusCode::OK, &*status),
        }
        .map(boxed);
    }
    if routes == Routes::All
        && let Some(plugins) = &ctx.plugins
    {
        let routed = match plugins.route(&path) {
            Some(Routed::Plugin(plugin)) => Some(Ok(plugin.clone())),
            Some(Routed::Unavailable {
                plugin,
                reason,
                may_return,
            }) => Some(Err(unavailable(&plugin, &reason, may_return))),
            None => None,
        };
        match routed {
            Some(Ok(plugin)) => return to_plugin(req, &plugin).await,
            Some(Err(response)) => return response.map(boxed),
            None => {}
        }
    }
    json_error(StatusCode::NOT_FOUND, &format!("no route {path}")).map(boxed)
}

fn metrics(status: &StackStatus, ctx: &Context) -> Response<Full<Bytes>> {
    match crate::metrics::render(status) {
        Ok(mut text) => {
            text.push_str(&crate::disk::metrics());
            if let Some(plugins) = &ctx.plugins {
                // The plugins' families are checked against everything above.
                let host = stackctl_plugin_host::exposition::host_names(&text);
                text.push_str(&plugins.metrics(&host));
            }
            respond(StatusCode::OK, "text/plain; version=0.0.4", text)
        }
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("metrics: {e}")),
    }
}

/// `/health`: 200 while frames flow, 503 with a reason when not; always with the legacy fields.
fn health(ctx: &Context) -> Response<Full<Bytes>> {
    let plugin_metrics = ctx
        .plugins
        .as_ref()
        .map(|p| p.raw_metrics())
        .unwrap_or_default();
    let gauge = |name: &str| -> f64 {
        plugin_metrics
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.strip_prefix(name))
            .filter_map(|rest| rest.rsplit(' ').next()?.trim().parse::<f64>().ok())
            .sum()
    };
    let webrtc_clients = gauge("streaming_active_clients") as u64;
    let recording = gauge("streaming_recording_active") > 0.0;
    let (reason, has_headers) = match &ctx.source {
        None => (Some("no camera source is configured".to_owned()), false),
        Some((name, stats)) => {
            let last = stats.last_frame_ns.load(Ordering::Relaxed);
            let age = Duration::from_nanos(monotonic_ns().saturating_sub(last));
            let reason = if last == 0 {
                Some(format!("no frame from {name} yet"))
            } else if age > STALE_AFTER {
                Some(format!(
                    "no frame from {name} for {:.1} s",
                    age.as_secs_f64()
                ))
            } else {
                None
            };
            (reason, stats.has_params.load(Ordering::Relaxed))
        }
    };
    let mut body = serde_json::json!({
        "status": if reason.is_none() { "ok" } else { "unavailable" },
        "reason": reason,
        "webrtc_clients": webrtc_clients,
        "recording": recording,
        "has_headers": has_headers,
    });
    // WHIP publications, when the streaming sink has any: how many are live of how many. A
    // failing publication does not make the board unhealthy (its own status says why).
    let publications = plugin_metrics
        .lines()
        .filter(|l| l.starts_with("whip_publish_state{"))
        .count();
    if publications > 0 {
        body["whip_publications"] = publications.into();
        body["whip_publications_live"] = (gauge("whip_publications_live") as u64).into();
    }
    let code = if reason.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(code, &body)
}

/// Reads a request's body (within [`BODY_LIMIT`] and [`BODY_TIMEOUT`]) and hands the request
/// to a plugin, which may answer later (a 504 after the host's timeout).
async fn to_plugin(req: Request<Incoming>, plugin: &Arc<Plugin>) -> Response<Body> {
    match from_plugin(req, plugin).await {
        Ok(answer) => answer.map(|body| match body {
            PluginBody::Whole(bytes) => full(bytes),
            stream @ PluginBody::Stream(_) => stream.boxed(),
        }),
        Err(refusal) => refusal.map(boxed),
    }
}

/// The plugin's answer, or the server's own when there is none.
async fn from_plugin(
    req: Request<Incoming>,
    plugin: &Arc<Plugin>,
) -> Result<Response<PluginBody>, Response<Full<Bytes>>> {
    let (parts, body) = req.into_parts();
    let body =
        match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, BODY_LIMIT).collect()).await {
            Err(_) => {
                return Err(json_error(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time",
                ));
            }
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(json_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("request bodies are limited to {BODY_LIMIT} bytes"),
                ));
            }
            Ok(Err(e)) => {
                return Err(json_error(
                    StatusCode::BAD_REQUEST,
                    &format!("reading the body: {e}"),
                ));
            }
            Ok(Ok(collected)) => collected.to_bytes(),
        };
    let refusal = match plugin.http(Request::from_parts(parts, body)).await {
        Ok(answer) => return Ok(answer),
        // It refused the request (and is detached now), or was detached meanwhile.
        Err(HttpError::Failed(name)) => match plugin.failure() {
            Some(reason) => unavailable(&name, &reason, false),
            None => unavailable(&name, "the stack is stopping", true),
        },
        Err(e @ HttpError::TimedOut(_)) => json_error(StatusCode::GATEWAY_TIMEOUT, &e.to_string()),
        Err(e @ HttpError::BadAnswer { .. }) => json_error(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    Err(refusal)
}

/// How long a client is told to wait before asking a plugin that may come back again.
const RETRY_AFTER_SECS: &str = "5";

/// A route whose plugin cannot answer: 503 with the reason, and `Retry-After` only when the
/// plugin may come back (a detached plugin stays detached until stackctl restarts).
fn unavailable(plugin: &str, reason: &str, may_return: bool) -> Response<Full<Bytes>> {
    let mut response = json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("plugin {plugin} is unavailable: {reason}"),
    );
    if may_return {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    response
}

fn json(code: StatusCode, value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_string(value) {
        Ok(body) => respond(code, "application/json", body),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("encoding: {e}")),
    }
}

fn respond(code: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Every 4xx/5xx carries a JSON body saying what went wrong.
pub fn json_error(code: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": message, "status": code.as_u16() }).to_string();
    respond(code, "application/json", body)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn send(addr: std::net::SocketAddr, request: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut out = String::new();
        stream.read_to_string(&mut out).await.expect("read");
        out
    }

    fn context() -> Context {
        let (_tx, status) = watch::channel(Arc::new(crate::metrics::tests::sample()));
        Context {
            status,
            plugins: None,
            source: None,
            cors_origins: Arc::new(vec!["http://localhost:8080".to_owned()]),
            vision: vision::Vision::default(),
            write_timeout: Duration::from_secs(30),
        }
    }

    #[tokio::test]
    async fn routes_answer_and_unknown_ones_get_json_errors() {
        let all = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let metrics_only = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (a, m) = (
            all.local_addr().expect("addr"),
            metrics_only.local_addr().expect("addr"),
        );
        tokio::spawn(serve(all, context(), Routes::All));
        tokio::spawn(serve(metrics_only, context(), Routes::MetricsOnly));

        let close = "Connection: close\r\n\r\n";
        let r = send(
            a,
            &format!("GET /api/status HTTP/1.1\r\nHost: x\r\n{close}"),
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(
            r.contains("\"phase\":\"ready\"") && r.contains("application/json"),
            "{r}"
        );
        let r = send(m, &format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{close}")).await;
        assert!(
            r.starts_with("HTTP/1.1 200") && r.contains("stackctl_ready 1"),
            "{r}"
        );
        let r = send(
            m,
            &format!("GET /api/status HTTP/1.1\r\nHost: x\r\n{close}"),
        )
        .await;
        assert!(
            r.starts_with("HTTP/1.1 404") && r.contains("\"error\""),
            "{r}"
        );
        let r = send(
            a,
            &format!("POST /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n{close}"),
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");
        // No camera source: unhealthy, with the legacy fields all the same.
        let r = send(a, &format!("GET /health HTTP/1.1\r\nHost: x\r\n{close}")).await;
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
        for field in [
            "\"webrtc_clients\":0",
            "\"recording\":false",
            "\"has_headers\":false",
            "\"reason\"",
        ] {
            assert!(r.contains(field), "{field} missing: {r}");
        }
    }

    /// Requests hyper refuses before any handler sees them still get a JSON body: a request
    /// line it cannot parse (400), a URI over 64 KiB (414), more headers than it takes (431).
    #[tokio::test]
    async fn hypers_own_errors_have_json_bodies() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(serve(listener, context(), Routes::All));
        let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
        let many_headers = format!(
            "GET /health HTTP/1.1\r\nHost: x\r\n{}\r\n",
            (0..200)
                .map(|i| format!("X-H{i}: v\r\n"))
                .collect::<String>()
        );
        let cases = [
            ("GARBAGE\r\n\r\n".to_owned(), 400),
            ("GET /health HTTP/1.1\r\nHost x\r\n\r\n".to_owned(), 400),
            (long_uri, 414),
            (many_headers, 431),
            (
                "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
                404,
            ),
        ];
        for (request, code) in cases {
            let r = send(addr, &request).await;
            let what = &request[..request.len().min(40)];
            assert!(r.starts_with(&format!("HTTP/1.1 {code} ")), "{what:?}: {r}");
            let (head, body) = r.split_once("\r\n\r\n").expect("a head");
            assert!(
                head.to_lowercase()
                    .contains("content-type: application/json"),
                "{what:?}: {r}"
            );
            let json: serde_json::Value = serde_json::from_str(body)
                .unwrap_or_else(|e| panic!("{what:?}: body not JSON ({e}): {r}"));
            assert_eq!(json["status"], code, "{r}");
            assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
        }
    }

    #[tokio::test]
    async fn cors_answers_only_the_allowed_origins() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(serve(listener, context(), Routes::All));
        let preflight = |origin: &str| {
            format!(
                "OPTIONS /offer HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
            )
        };
        let r = send(addr, &preflight("http://localhost:8080"))
            .await
            .to_lowercase();
        assert!(r.starts_with("http/1.1 200"), "{r}");
        assert!(
            r.contains("access-control-allow-origin: http://localhost:8080"),
            "{r}"
        );
        assert!(r.contains("access-control-allow-methods:"), "{r}");
        let r = send(addr, &preflight("http://evil.example"))
            .await
            .to_lowercase();
        assert!(!r.contains("access-control-allow-origin"), "{r}");
    }
}
