//! HTTP across the plugin boundary: a request the supervisor's server has read whole becomes an
//! `stackctl_http_request` (borrowed for the call), and the plugin's answer, given through the
//! `http_respond` callback on any thread, then or later, comes back as a response.
//!
//! The host trusts no plugin here: it owns the framing of every answer ([`framing`]: the
//! headers that frame the message or concern the connection are dropped; a status outside
//! 100-599 or a header with CR, LF or NUL makes the answer a refusal, which the server turns
//! into a 502), and a plugin that does not answer within [`PLUGIN_TIMEOUT`] is given up on (its
//! late answer is then discarded).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use stackctl_plugin_abi as abi;

use crate::plugin::Plugin;

pub mod framing;

/// The request header that tells a plugin served behind a `route_prefix` what that prefix is, for the
/// links it writes into its answers (`/clips` + `/events/1.mp4`). The host's own: a client's is
/// dropped, and a plugin without a route prefix never sees one.
pub const PREFIX_HEADER: &str = "x-forwarded-prefix";

/// How long a plugin may take to answer a request (`STACKCTL_HTTP_ANSWER_TIMEOUT_MS`).
pub const PLUGIN_TIMEOUT: Duration = Duration::from_millis(abi::HTTP_ANSWER_TIMEOUT_MS);

/// Why a plugin gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// It refused the request, or had failed before (it is detached).
    #[error("plugin {0} failed")]
    Failed(String),
    /// It did not answer within [`PLUGIN_TIMEOUT`].
    #[error("plugin {0} did not answer in time")]
    TimedOut(String),
    /// Its answer cannot be sent (see [`framing`]): a bad status, CR, LF or NUL in a header.
    #[error("plugin {plugin} gave an answer that cannot be sent: {refusal}")]
    BadAnswer {
        /// The plugin's name in the configuration.
        plugin: String,
        /// What is wrong with the answer.
        refusal: framing::Refusal,
    },
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
        let mut headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .filter(|(k, _)| k.as_str() != PREFIX_HEADER)
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        if let Some(prefix) = self.route_prefix() {
            headers.push((PREFIX_HEADER.to_owned(), prefix.to_owned()));
        }
        let (id, answer) = self.ctx.expect_response();
        let method = parts.method.as_str().to_owned();
        let path = self.local_path(parts.uri.path()).to_owned();
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
            Ok(Ok(answer)) => self.frame(answer),
            _ => {
                self.ctx.forget(id);
                Err(HttpError::TimedOut(self.name().to_owned()))
            }
        }
    }
}

impl Plugin {
    /// Makes a plugin's answer safe to write ([`framing::check`]), warning about what it got
    /// wrong: each refusal, and the host-owned headers once per plugin.
    fn frame(
        &self,
        answer: crate::callbacks::PluginResponse,
    ) -> Result<Response<Vec<u8>>, HttpError> {
        match framing::check(answer) {
            Ok(checked) => {
                if !checked.dropped.is_empty() && crate::once::first_time(self.name(), "framing") {
                    tracing::warn!(
                        plugin = %self.name(), headers = ?checked.dropped,
                        "plugin answered with hop-by-hop or framing headers, which the host owns: dropped (said once)"
                    );
                }
                Ok(checked.response)
            }
            Err(refusal) => {
                tracing::warn!(plugin = %self.name(), "plugin answer refused (502): {refusal}");
                Err(HttpError::BadAnswer {
                    plugin: self.name().to_owned(),
                    refusal,
                })
            }
        }
    }
}
