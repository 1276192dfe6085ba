//! The server side of the control socket, in `stackctl up`: binds it (replacing a stale one,
//! refusing while another `up` answers), reads one request line per connection and hands it,
//! with a reply channel, to the service driver.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::{Call, Reply, Request, Response, write_line};

/// Longest request line accepted on the control socket.
const MAX_REQUEST: u64 = 64 * 1024;

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another `stackctl up` answers on the socket.
    #[error(
        "another stackctl up is running (its control socket {0} answers); stop it first with `stackctl down`"
    )]
    AlreadyRunning(PathBuf),
    /// The socket could not be created.
    #[error("cannot create the control socket {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Binds the control socket at `path`, replacing a stale one, with mode 0600 (0660 when a group
/// is given; `gid` must then be the group's id).
pub async fn bind(path: &Path, gid: Option<u32>) -> Result<UnixListener, ControlError> {
    let bind_err = |source| ControlError::Bind {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(ControlError::AlreadyRunning(path.to_owned()));
        }
        tracing::info!(socket = %path.display(), "replacing a stale control socket");
        std::fs::remove_file(path).map_err(bind_err)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(bind_err)?;
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    let mode = if gid.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(bind_err)?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(bind_err)?;
    }
    Ok(listener)
}

/// Accepts connections forever, passing each request to `calls`.
pub async fn serve(listener: UnixListener, calls: mpsc::Sender<Call>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let calls = calls.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle(stream, calls).await {
                        tracing::debug!(error = %e, "control connection ended");
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "control socket accept failed"),
        }
    }
}

async fn handle(stream: UnixStream, calls: mpsc::Sender<Call>) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    // One request line; a local client sending megabytes of it is cut off, not buffered.
    let mut line = String::new();
    BufReader::new(read.take(MAX_REQUEST))
        .read_line(&mut line)
        .await?;
    let reply = match serde_json::from_str::<Request>(&line) {
        Err(e) => Reply::one(Response::error(format!("bad request: {e}"))),
        Ok(request) => {
            let (tx, rx) = oneshot::channel();
            if calls.send((request, tx)).await.is_err() {
                Reply::one(Response::error("stackctl is shutting down"))
            } else {
                rx.await
                    .unwrap_or_else(|_| Reply::one(Response::error("stackctl is shutting down")))
            }
        }
    };
    match reply {
        Reply::One(response) => write_line(&mut write, &response).await,
        Reply::Stream(mut lines) => {
            while let Some(value) = lines.recv().await {
                write_line(&mut write, &value).await?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::control::client::call;

    #[tokio::test]
    async fn a_request_is_answered_and_a_second_server_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run").join("stackctl.sock");
        let listener = bind(&path, None).await.expect("bind");
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let (tx, mut rx) = mpsc::channel::<Call>(4);
        tokio::spawn(serve(listener, tx));
        tokio::spawn(async move {
            while let Some((request, reply)) = rx.recv().await {
                let response = match request {
                    Request::Restart { service } if service == "cam" => Response::ok(),
                    other => Response::error(format!("unexpected {other:?}")),
                };
                let _ = reply.send(Reply::one(response));
            }
        });
        let mut got = Vec::new();
        call(
            &path,
            &Request::Restart {
                service: "cam".into(),
            },
            &mut |v| got.push(v),
        )
        .await
        .expect("call");
        assert_eq!(got, vec![serde_json::json!({"ok": true})]);

        match bind(&path, None).await {
            Err(ControlError::AlreadyRunning(p)) => assert_eq!(p, path),
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stackctl.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        assert!(path.exists(), "a dead server leaves its socket file behind");
        let _listener = bind(&path, None)
            .await
            .expect("the stale socket is replaced");
    }

    #[tokio::test]
    async fn a_bad_request_gets_an_error_not_silence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        let listener = bind(&path, None).await.expect("bind");
        let (tx, _rx) = mpsc::channel::<Call>(1);
        tokio::spawn(serve(listener, tx));
        let mut stream = UnixStream::connect(&path).await.expect("connect");
        stream
            .write_all(b"{\"cmd\":\"explode\"}\n")
            .await
            .expect("write");
        let mut lines = BufReader::new(stream).lines();
        let line = lines.next_line().await.expect("read").expect("a line");
        let response: Response = serde_json::from_str(&line).expect("json");
        assert!(!response.ok);
        assert!(response.error.unwrap_or_default().contains("bad request"));
    }
}
