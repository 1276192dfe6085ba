//! `GET /snapshot.jpg[?width=N]`: the camera's newest NV12 picture as a JPEG, through core's
//! [`Snapshotter`] (cached per frame and width: a burst of requests costs one encode per
//! frame). 503 with a `reason` when there is no picture, 400 for a bad width; never cached by
//! the client (`Cache-Control: no-store`).

use std::sync::Arc;

use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use stackctl_core::snapshot::Snapshotter;

use super::Body;

/// Answers one request; `query` is the URI's query string.
pub async fn answer(snapshots: &Arc<Snapshotter>, query: Option<&str>) -> Response<Body> {
    let width = match width(query) {
        Ok(width) => width,
        Err(message) => {
            return super::json_error(StatusCode::BAD_REQUEST, &message).map(super::boxed);
        }
    };
    let snapshots = snapshots.clone();
    // An encode takes milliseconds (12 ms at 1080p here): off the runtime's threads.
    let result = tokio::task::spawn_blocking(move || snapshots.jpeg(width)).await;
    match result {
        Ok(Ok(jpeg)) => {
            let mut response = Response::new(super::full(Bytes::from_owner(jpeg)));
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Ok(Err(e)) if e.is_client_error() => {
            super::json_error(StatusCode::BAD_REQUEST, &e.to_string()).map(super::boxed)
        }
        Ok(Err(e)) => unavailable(&e.to_string()),
        Err(e) => unavailable(&format!("the encoder task failed: {e}")),
    }
}

/// 503 `{"error": .., "status": 503, "reason": ..}`.
fn unavailable(reason: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": reason, "status": 503, "reason": reason });
    let mut response = Response::new(super::full(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// `width=N` from the query (other parameters are ignored): a whole number of pixels, 1 or
/// more (core clamps it to 16..=the picture's width).
fn width(query: Option<&str>) -> Result<Option<u32>, String> {
    let Some(value) = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("width="))
    else {
        return Ok(None);
    };
    match value.parse::<u32>() {
        Ok(0) | Err(_) => Err(format!(
            "width = {value:?}: expected a whole number of pixels, at least 1"
        )),
        Ok(w) => Ok(Some(w)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        // `None`: refused (400); `Some(width)`: accepted.
        let cases = [
            (None, Some(None)),
            (Some(""), Some(None)),
            (Some("width=640"), Some(Some(640))),
            (Some("x=1&width=320"), Some(Some(320))),
            (Some("width=0"), None),
            (Some("width=-5"), None),
            (Some("width=abc"), None),
            (Some("width="), None),
            (Some("width=99999999999"), None),
        ];
        for (query, want) in cases {
            assert_eq!(width(query).ok(), want, "{query:?}");
        }
    }
}
