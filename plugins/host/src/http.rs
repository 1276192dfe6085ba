//! HTTP across the plugin boundary: a request the supervisor's server has read whole becomes an
//! `stackctl_http_request` (borrowed for the call), and the plugin's answer, given through the
//! `http_respond` callback on any thread, then or later, comes back as a response.
//!
//! The host trusts no plugin here: it owns the framing of every answer ([`framing`]: the
//! headers that frame the message or concern the connection are dropped; a status outside
//! 100-599 or a header with CR, LF or NUL makes the answer a refusal, which the server turns
//! into a 502), and a plugin that does not answer within [`PLUGIN_TIMEOUT`] is given up on (its
//! late answer is then discarded).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use stackctl_plugin_abi as abi;

use crate::plugin::Plugin;

pub mod framing;
pub mod stream;

use stream::{StreamBody, StreamError, StreamOptions};

/// The body of a plugin's answer: whole (`http_respond`), or streamed (ABI 1.2,
/// `http_respond_start` and chunks), which fails (and the server closes the connection
/// mid-message) when the answer is cut or aborted.
#[derive(Debug)]
pub enum PluginBody {
    /// The whole body.
    Whole(Bytes),
    /// A streamed body.
    Stream(StreamBody),
}

impl PluginBody {
    /// The body, when it is whole.
    pub fn whole(&self) -> Option<&[u8]> {
        match self {
            Self::Whole(bytes) => Some(bytes),
            Self::Stream(_) => None,
        }
    }
}

impl Body for PluginBody {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        match self.get_mut() {
            Self::Whole(bytes) if bytes.is_empty() => Poll::Ready(None),
            Self::Whole(bytes) => Poll::Ready(Some(Ok(Frame::data(std::mem::take(bytes))))),
            Self::Stream(stream) => Pin::new(stream).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Whole(bytes) if bytes.is_empty())
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Whole(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Self::Stream(stream) => stream.size_hint(),
        }
    }
}

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
    /// that blocks holds up that thread, not the caller's runtime. A streamed answer (ABI 1.2)
    /// follows the [`StreamOptions`] in the request's extensions (the defaults without).
    pub async fn http(
        self: &Arc<Self>,
        request: Request<Bytes>,
    ) -> Result<Response<PluginBody>, HttpError> {
        let (parts, body) = request.into_parts();
        let options = parts
            .extensions
            .get::<StreamOptions>()
            .cloned()
            .unwrap_or_default();
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
            Ok(Ok(answer)) => self.frame(answer, &options),
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
        self: &Arc<Self>,
        answer: crate::callbacks::PluginResponse,
        options: &StreamOptions,
    ) -> Result<Response<PluginBody>, HttpError> {
        match framing::check(answer) {
            Ok(checked) => {
                if !checked.dropped.is_empty() && crate::once::first_time(self.name(), "framing") {
                    tracing::warn!(
                        plugin = %self.name(), headers = ?checked.dropped,
                        "plugin answered with hop-by-hop or framing headers, which the host owns: dropped (said once)"
                    );
                }
                let Some(stream) = checked.stream.and_then(|s| s.take()) else {
                    return Ok(checked
                        .response
                        .map(|body| PluginBody::Whole(Bytes::from(body))));
                };
                // Tell the plugin about room and closures on the blocking pool: its
                // `on_http_writable` must not run on the server's threads.
                let plugin = Arc::downgrade(self);
                let id = stream.id();
                stream.set_notify(Box::new(move || {
                    let Some(plugin) = plugin.upgrade() else {
                        return;
                    };
                    match tokio::runtime::Handle::try_current() {
                        Ok(rt) => drop(rt.spawn_blocking(move || plugin.on_http_writable(id))),
                        Err(_) => plugin.on_http_writable(id),
                    }
                }));
                if let Some(close) = &options.close_connection {
                    stream.set_close_connection(close.clone());
                }
                tokio::spawn(stream::watch(stream.clone(), options.write_timeout));
                Ok(checked
                    .response
                    .map(|_| PluginBody::Stream(StreamBody::new(stream))))
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
