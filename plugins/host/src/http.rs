//! HTTP across the plugin boundary: a request the supervisor's server has read whole becomes an
//! `stackctl_http_request` (borrowed for the call), and the plugin's answer, given through the
//! `http_respond` callback on any thread, then or later, comes back as a response.
//!
//! The host trusts no plugin here: an answer with an invalid status becomes a 500, a header that
//! is not a valid HTTP header is dropped, and a plugin that does not answer within
//! [`PLUGIN_TIMEOUT`] is given up on (its late answer is then discarded).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use stackctl_plugin_abi as abi;

use crate::plugin::Plugin;

/// How long a plugin may take to answer a request.
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a plugin gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// It refused the request, or had failed before (it is detached).
    #[error("plugin {0} failed")]
    Failed(String),
    /// It did not answer within [`PLUGIN_TIMEOUT`].
    #[error("plugin {0} did not answer in time")]
    TimedOut(String),
}

impl Plugin {
    /// Hands `request` (its body read whole) to the plugin and waits for its answer, for at most
    /// [`PLUGIN_TIMEOUT`].
    ///
    /// The plugin's `on_http` runs on a blocking-pool thread: it should return at once, but one
    /// that blocks holds up that thread, not the caller's runtime.
    pub async fn http(
        self: &Arc<Self>,
        request: Request<Bytes>,
    ) -> Result<Response<Vec<u8>>, HttpError> {
        let (parts, body) = request.into_parts();
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let (id, answer) = self.ctx.expect_response();
        let method = parts.method.as_str().to_owned();
        let path = parts.uri.path().to_owned();
        let query = parts.uri.query().unwrap_or("").to_owned();
        let plugin = self.clone();
        let accepted = tokio::task::spawn_blocking(move || {
            let c_headers: Vec<abi::Header> = headers
                .iter()
                .map(|(k, v)| abi::Header {
                    name: abi::Str::new(k),
                    value: abi::Str::new(v),
                })
                .collect();
            let request = abi::HttpRequest {
                struct_size: std::mem::size_of::<abi::HttpRequest>() as u32,
                reserved: 0,
                id,
                method: abi::Str::new(&method),
                path: abi::Str::new(&path),
                query: abi::Str::new(&query),
                headers: c_headers.as_ptr(),
                header_count: c_headers.len(),
                body: body.as_ptr(),
                body_len: body.len(),
            };
            plugin.on_http(&request)
        })
        .await
        .unwrap_or(false);
        if !accepted {
            self.ctx.forget(id);
            return Err(HttpError::Failed(self.name().to_owned()));
        }
        match tokio::time::timeout(PLUGIN_TIMEOUT, answer).await {
            Ok(Ok(answer)) => {
                let mut response = Response::new(answer.body);
                *response.status_mut() = StatusCode::from_u16(answer.status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                for (name, value) in answer.headers {
                    if let (Ok(name), Ok(value)) = (
                        HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_str(&value),
                    ) {
                        response.headers_mut().append(name, value);
                    }
                }
                Ok(response)
            }
            _ => {
                self.ctx.forget(id);
                Err(HttpError::TimedOut(self.name().to_owned()))
            }
        }
    }
}
