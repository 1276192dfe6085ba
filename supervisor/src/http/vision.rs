//! The routes of what the camera sees: detections (`/api/detections/*`) and snapshots
//! (`/snapshot.jpg`). [`dispatch`] is the one hook the server calls before its own routes.

use std::sync::Arc;

use hyper::{Method, Request, Response, StatusCode};
use stackctl_core::snapshot::Snapshotter;

use super::detections::Feed;
use super::{Body, Routes};

/// What the routes serve from; `None` where `[source] detections` or `nv12` is `""`.
#[derive(Debug, Clone, Default)]
pub struct Vision {
    /// The detector's results.
    pub detections: Option<Feed>,
    /// Snapshots of the NV12 ring.
    pub snapshots: Option<Arc<Snapshotter>>,
}

/// The answer for a request to one of these routes, `None` for any other request.
pub async fn dispatch<B>(
    req: &Request<B>,
    vision: &Vision,
    routes: Routes,
) -> Option<Response<Body>> {
    if routes != Routes::All {
        return None;
    }
    let path = req.uri().path();
    let route = match path {
        "/api/detections/stream" | "/api/detections/latest" | "/snapshot.jpg" => path,
        _ => return None,
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Some(
            super::json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("{route} only answers GET"),
            )
            .map(super::boxed),
        );
    }
    let off = |key: &str| {
        super::json_error(
            StatusCode::NOT_FOUND,
            &format!("{route} is off: [source] {key} is \"\""),
        )
        .map(super::boxed)
    };
    Some(match route {
        "/snapshot.jpg" => match &vision.snapshots {
            Some(snapshots) => super::snapshot::answer(snapshots, req.uri().query()).await,
            None => off("nv12"),
        },
        "/api/detections/latest" => match &vision.detections {
            Some(feed) => feed.latest(),
            None => off("detections"),
        },
        _ => match &vision.detections {
            Some(feed) => feed.stream(),
            None => off("detections"),
        },
    })
}
