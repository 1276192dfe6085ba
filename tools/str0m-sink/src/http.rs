//! WHEP over HTTP/1.1: `POST /whep` and `DELETE /whep/<id>`, answered by the loop through a
//! channel (it owns every `Rtc`).

use std::convert::Infallible;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::server::{Command, OfferError};

/// Largest offer accepted.
const MAX_OFFER_BYTES: usize = 64 * 1024;
/// A client that has not sent its request headers within this is dropped.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves WHEP on `listener` for as long as the runtime runs.
pub async fn serve(listener: TcpListener, commands: mpsc::Sender<Command>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let commands = commands.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let commands = commands.clone();
                async move { Ok::<_, Infallible>(route(req, &commands).await) }
            });
            if let Err(e) = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
}

async fn route(req: Request<Incoming>, commands: &mpsc::Sender<Command>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if path == "/whep" {
        if req.method() != Method::POST {
            return with_header(
                error(StatusCode::METHOD_NOT_ALLOWED, "use POST"),
                ALLOW,
                "POST",
            );
        }
        return offer(req, commands).await;
    }
    if let Some(id) = path.strip_prefix("/whep/") {
        if req.method() != Method::DELETE {
            return with_header(
                error(StatusCode::METHOD_NOT_ALLOWED, "use DELETE"),
                ALLOW,
                "DELETE",
            );
        }
        let (reply, answer) = oneshot::channel();
        let id = id.to_owned();
        if commands.send(Command::Delete { id, reply }).await.is_err() {
            return error(StatusCode::SERVICE_UNAVAILABLE, "stopping");
        }
        return match answer.await {
            Ok(true) => respond(StatusCode::OK, "text/plain", ""),
            Ok(false) => error(StatusCode::NOT_FOUND, "no such session"),
            Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "stopping"),
        };
    }
    error(
        StatusCode::NOT_FOUND,
        "not found: POST /whep, DELETE /whep/<id>",
    )
}

async fn offer(req: Request<Incoming>, commands: &mpsc::Sender<Command>) -> Response<Full<Bytes>> {
    let sdp_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().starts_with("application/sdp"));
    if !sdp_type {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/sdp",
        );
    }
    let body = match Limited::new(req.into_body(), MAX_OFFER_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "offer too large or unreadable",
            );
        }
    };
    let Ok(sdp) = String::from_utf8(body.to_vec()) else {
        return error(StatusCode::BAD_REQUEST, "the offer is not UTF-8");
    };
    let (reply, answer) = oneshot::channel();
    if commands.send(Command::Offer { sdp, reply }).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "stopping");
    }
    match answer.await {
        Ok(Ok(answer)) => with_header(
            respond(StatusCode::CREATED, "application/sdp", answer.sdp),
            LOCATION,
            &format!("/whep/{}", answer.id),
        ),
        Ok(Err(OfferError::Full(max))) => with_header(
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("maximum viewers reached ({max})"),
            ),
            RETRY_AFTER,
            "5",
        ),
        Ok(Err(OfferError::Invalid(why))) => error(StatusCode::BAD_REQUEST, &why),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "stopping"),
    }
}

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    respond(status, "text/plain", format!("{message}\n"))
}

fn with_header(
    mut response: Response<Full<Bytes>>,
    name: hyper::header::HeaderName,
    value: &str,
) -> Response<Full<Bytes>> {
    if let Ok(value) = value.parse() {
        response.headers_mut().insert(name, value);
    }
    response
}
