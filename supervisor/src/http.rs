//! stackctl's HTTP server: `/metrics` and `/api/status` (read-only; nothing that changes the
//! stack is reachable over TCP). The sink plugins' routes join it later.
#![allow(dead_code)] // Served by `stackctl up`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::status::StackStatus;

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

/// Serves `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    status: watch::Receiver<Arc<StackStatus>>,
    routes: Routes,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                continue;
            }
        };
        let status = status.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let snapshot = status.borrow().clone();
                async move { Ok::<_, Infallible>(route(&req, &snapshot, routes)) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
}

fn route(req: &Request<Incoming>, status: &StackStatus, routes: Routes) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let known = match routes {
        Routes::All => matches!(path, "/metrics" | "/api/status"),
        Routes::MetricsOnly => path == "/metrics",
    };
    if !known {
        return json_error(StatusCode::NOT_FOUND, &format!("no route {path}"));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{path} only answers GET"),
        );
    }
    match path {
        "/metrics" => match crate::metrics::render(status) {
            Ok(text) => respond(StatusCode::OK, "text/plain; version=0.0.4", text),
            Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("metrics: {e}")),
        },
        _ => match serde_json::to_string(status) {
            Ok(json) => respond(StatusCode::OK, "application/json", json),
            Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("status: {e}")),
        },
    }
}

fn respond(code: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
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

    async fn get(addr: std::net::SocketAddr, request: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut out = String::new();
        stream.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn routes_answer_and_unknown_ones_get_json_errors() {
        let status = Arc::new(crate::metrics::tests::sample());
        let (_tx, rx) = watch::channel(status);
        let all = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let metrics_only = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (a, m) = (
            all.local_addr().expect("addr"),
            metrics_only.local_addr().expect("addr"),
        );
        tokio::spawn(serve(all, rx.clone(), Routes::All));
        tokio::spawn(serve(metrics_only, rx, Routes::MetricsOnly));

        let close = "Connection: close\r\n\r\n";
        let r = get(
            a,
            &format!("GET /api/status HTTP/1.1\r\nHost: x\r\n{close}"),
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(
            r.contains("\"phase\":\"ready\"") && r.contains("application/json"),
            "{r}"
        );
        let r = get(m, &format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{close}")).await;
        assert!(
            r.starts_with("HTTP/1.1 200") && r.contains("stackctl_ready 1"),
            "{r}"
        );
        let r = get(
            m,
            &format!("GET /api/status HTTP/1.1\r\nHost: x\r\n{close}"),
        )
        .await;
        assert!(
            r.starts_with("HTTP/1.1 404") && r.contains("\"error\""),
            "{r}"
        );
        let r = get(
            a,
            &format!("POST /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n{close}"),
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    }
}
