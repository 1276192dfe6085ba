//! The control socket: how `stackctl status | restart | stop | start | logs | down` reach the
//! running `stackctl up`.
//!
//! A Unix stream socket (mode 0600, or 0660 with a configured group), local only: mutating
//! commands never travel over TCP. The protocol is one JSON request line ([`Request`]),
//! answered by JSON lines: a single [`Response`] for most commands, or a stream of log lines then
//! a response for `logs`. [`server`] is `up`'s side, [`client`] the commands'.
//!
//! A socket file left by a crashed `up` is detected (nothing accepts on it) and replaced; a
//! socket something still answers on means another `stackctl up` runs, and this one refuses.

pub mod client;
pub mod server;

use std::io;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

/// A command sent to `stackctl up`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// The stack's status.
    Status,
    /// Restart one service (resets its crash-loop budget).
    Restart {
        /// Service name.
        service: String,
    },
    /// Stop one service; it stays stopped until started.
    Stop {
        /// Service name.
        service: String,
    },
    /// Start a stopped or failed service.
    Start {
        /// Service name.
        service: String,
    },
    /// The last `lines` lines of a service's output, then new ones if `follow`.
    Logs {
        /// Service name.
        service: String,
        /// How many past lines.
        lines: usize,
        /// Keep streaming new lines.
        follow: bool,
    },
    /// Stop everything and exit.
    Down,
}

/// The answer to a request (the last line of a `logs` stream too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// What went wrong, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The stack's status, for `status` and after state changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::status::StackStatus>,
}

impl Response {
    /// Success without a payload.
    pub fn ok() -> Self {
        Self {
            ok: true,
            error: None,
            status: None,
        }
    }

    /// A failure with its reason.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(message.into()),
            status: None,
        }
    }
}

/// What the orchestrator answers: one response, or log lines (JSON values) then a response.
#[derive(Debug)]
pub enum Reply {
    /// A single response.
    One(Box<Response>),
    /// Lines to stream; the stream ends when the sender is dropped.
    Stream(mpsc::Receiver<serde_json::Value>),
}

impl Reply {
    /// A single response.
    pub fn one(response: Response) -> Self {
        Self::One(Box::new(response))
    }
}

/// A request as the orchestrator receives it, with where to send the reply.
pub type Call = (Request, oneshot::Sender<Reply>);

/// Writes `value` as one JSON line.
async fn write_line(
    write: &mut (impl AsyncWriteExt + Unpin),
    value: &impl Serialize,
) -> io::Result<()> {
    let mut text = serde_json::to_string(value).map_err(io::Error::other)?;
    text.push('\n');
    write.write_all(text.as_bytes()).await
}
