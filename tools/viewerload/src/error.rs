//! The library's error type.

use std::time::Duration;

/// Everything that can go wrong between a viewer and the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The base URL (or a `Location` derived from it) is not a usable `http://` URL.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TCP connection to the server could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port` dialled.
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange broke off (connection reset, malformed response, oversized body).
    #[error("{method} {url}: HTTP exchange failed: {reason}")]
    Http {
        /// Request method.
        method: String,
        /// Request URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server answered with a status the operation does not accept.
    #[error("{method} {url} returned HTTP {status}: {message}{}", retry_hint(*retry_after))]
    Status {
        /// Request method.
        method: String,
        /// Request URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The server's JSON `error` message if it sent one, else the start of the body, else
        /// the status's reason phrase.
        message: String,
        /// `Retry-After` in seconds, when the server sent one (503 when full).
        retry_after: Option<Duration>,
    },
    /// A 2xx response that does not carry a usable answer (no SDP, no `Location`, bad JSON).
    #[error("{url}: unusable answer: {reason}")]
    BadAnswer {
        /// Request URL.
        url: String,
        /// What is missing or malformed.
        reason: String,
    },
    /// The WebRTC stack refused something (the answer SDP, a codec, a socket).
    #[error("WebRTC: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    /// The peer connection failed or closed while it was being waited on.
    #[error("peer connection {0} before connecting")]
    ConnectionEnded(crate::ConnectionState),
    /// The connection failed or closed while frames were awaited.
    #[error("the connection ended after {frames} frames")]
    StreamEnded {
        /// Frames received before it ended.
        frames: usize,
    },
    /// A step did not finish within the configured timeout.
    #[error("timed out after {after:?} {during}")]
    Timeout {
        /// The timeout that elapsed.
        after: Duration,
        /// What was being waited for.
        during: &'static str,
    },
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |d| format!(" (retry after {d:?})"))
}

impl Error {
    /// The HTTP status, for [`Error::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's error message, for [`Error::Status`].
    pub fn server_message(&self) -> Option<&str> {
        match self {
            Error::Status { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The server's `Retry-After`, for [`Error::Status`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
