//! CPU profiles over HTTP, in place of the Go server's `net/http/pprof` on `--pprof-port`:
//! `go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=30` works against stackctl
//! as it did against the Go server.
//!
//! `[profiling] port` (0, the default, is off: no listener, no sampler) and `host` (loopback by
//! default). One route:
//!
//! - `GET /debug/pprof/profile?seconds=N` samples the whole process (every thread: the
//!   supervisor, the shared-memory reader, each plugin's delivery thread and the plugins' own)
//!   for N seconds (default 30, at most `profiling.max_duration`) and answers pprof's protobuf,
//!   with each sample labelled by its thread's name (`-tagfocus thread=shm-reader`);
//! - `&format=svg` answers a flame graph instead.
//!
//! At most one profile runs at a time: a second request gets `409 Conflict`. A bad `seconds` or
//! `format` gets `400` with a JSON `{"error": ...}` naming it. A client that goes away stops its
//! profile.

mod request;
mod sampler;

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::http::json_error;
use request::{Format, parse};
use sampler::{Running, Slot};

/// The profile route, as Go's `net/http/pprof` names it.
pub const PROFILE_PATH: &str = "/debug/pprof/profile";

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the profiling listener of `config`, unless its port is 0. A port that cannot be had
/// turns profiling off with an error in the log, and the stack runs on: a profiler is never a
/// reason not to run the camera.
pub async fn listen(config: &stackctl_config::ProfilingConfig) {
    if config.port == 0 {
        return;
    }
    let addr = format!("{}:{}", config.host, config.port);
    match crate::commands::up::bind_tcp(&addr, "profiling.port").await {
        Ok(listener) => {
            tracing::info!("CPU profiles: go tool pprof http://{addr}{PROFILE_PATH}?seconds=30");
            tokio::spawn(serve(listener, config.max_duration));
        }
        Err(e) => tracing::error!("{e:#}; profiling is off"),
    }
}

/// Serves profiles on `listener` until the task is dropped; `max` caps `?seconds=`.
pub async fn serve(listener: TcpListener, max: Duration) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "profiling: accept failed");
                continue;
            }
        };
        tokio::spawn(async move {
            let service =
                service_fn(move |req| async move { Ok::<_, Infallible>(handle(req, max).await) });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "profiling: connection ended");
            }
        });
    }
}

async fn handle(req: Request<Incoming>, max: Duration) -> Response<Full<Bytes>> {
    if req.uri().path() != PROFILE_PATH {
        let path = req.uri().path();
        return json_error(
            StatusCode::NOT_FOUND,
            &format!("no route {path}; profiles are at {PROFILE_PATH}?seconds=N"),
        );
    }
    if req.method() != Method::GET {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{PROFILE_PATH} only answers GET"),
        );
    }
    let wanted = match parse(req.uri().query(), max) {
        Ok(wanted) => wanted,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let Some(slot) = Slot::try_take() else {
        return json_error(
            StatusCode::CONFLICT,
            "a profile is already running; try again when it ends",
        );
    };
    let running = match Running::start(slot) {
        Ok(running) => running,
        Err(e) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    tracing::info!(
        seconds = wanted.duration.as_secs(),
        format = ?wanted.format,
        "CPU profile started"
    );
    // Dropped with this future if the client goes away: the profile stops with it.
    tokio::time::sleep(wanted.duration).await;
    let finished = tokio::task::spawn_blocking(move || running.finish(wanted.format)).await;
    let profile = match finished {
        Ok(Ok(profile)) => profile,
        Ok(Err(e)) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("the profile's report failed: {e}"),
            );
        }
    };
    tracing::info!(
        samples = profile.samples,
        bytes = profile.body.len(),
        sampled = ?profile.sampled,
        "CPU profile done"
    );
    let (content_type, file) = match wanted.format {
        Format::Protobuf => (
            "application/octet-stream",
            "attachment; filename=\"profile\"",
        ),
        Format::Svg => ("image/svg+xml", "inline; filename=\"profile.svg\""),
    };
    let mut response = Response::new(Full::new(Bytes::from(profile.body)));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(file));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_samples_this_process_and_names_its_functions() {
        // One test, because the slot is the process's.
        let slot = Slot::try_take().expect("no other profile in this test binary");
        assert!(Slot::try_take().is_none(), "one profile at a time");
        let running = Running::start(slot).expect("start");
        let until = std::time::Instant::now() + Duration::from_millis(600);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let svg = running.finish(Format::Svg).expect("finish");
        assert!(Slot::try_take().is_some(), "free again once finished");
        assert!(svg.samples > 0, "{svg:?}");
        let text = String::from_utf8_lossy(&svg.body);
        assert!(
            text.starts_with("<?xml"),
            "{}",
            &text[..text.len().min(200)]
        );
        assert!(
            text.contains("a_profile_samples_this_process"),
            "this test's own function is in the flame graph"
        );
    }
}
