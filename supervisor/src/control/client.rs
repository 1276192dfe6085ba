//! The client side of the control socket, for `stackctl status | restart | stop | start | logs |
//! down`: one request, then the lines `up` answers with.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixStream;

use super::{Request, Response, write_line};

/// Why a control command got no answer, or a refusal.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error(
        "control socket: cannot reach stackctl up at {}: {error} (is it running? --socket or --config name the socket)",
        path.display()
    )]
    Unreachable {
        /// The socket.
        path: PathBuf,
        /// Why the connection failed.
        error: io::Error,
    },
    /// The connection broke, or a line was not JSON.
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    /// `up` answered something this command does not understand.
    #[error("unexpected answer: {0}")]
    Unexpected(serde_json::Error),
    /// `up` refused the request, saying why.
    #[error("{0}")]
    Refused(String),
}

/// Sends `request` and calls `on_line` with every JSON line received until the server closes
/// the connection. (Callbacks are `dyn`: one copy of the client serves every command.)
pub async fn call(
    path: &Path,
    request: &Request,
    on_line: &mut dyn FnMut(serde_json::Value),
) -> Result<(), ClientError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|error| ClientError::Unreachable {
            path: path.to_owned(),
            error,
        })?;
    let (read, mut write) = stream.into_split();
    write_line(&mut write, request).await?;
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        on_line(serde_json::from_str(&line).map_err(io::Error::other)?);
    }
    Ok(())
}

/// Sends `request`, hands every log line (`{"stream": ..., "text": ...}`) to `on_log`, and
/// returns the final response; a response with `ok: false` is [`ClientError::Refused`].
pub async fn request(
    path: &Path,
    request: &Request,
    on_log: &mut dyn FnMut(&serde_json::Value),
) -> Result<Response, ClientError> {
    let mut outcome = Ok(None);
    call(path, request, &mut |value| {
        if let Some(line) = value.get("line") {
            on_log(line);
            return;
        }
        if outcome.is_ok() {
            outcome = serde_json::from_value::<Response>(value)
                .map(Some)
                .map_err(ClientError::Unexpected);
        }
    })
    .await?;
    match outcome? {
        Some(Response {
            ok: false, error, ..
        }) => Err(ClientError::Refused(
            error.unwrap_or_else(|| "request failed".into()),
        )),
        Some(response) => Ok(response),
        // The stream ended without a word: as before, nothing to report.
        None => Ok(Response::ok()),
    }
}
