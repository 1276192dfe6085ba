//! Readiness and liveness checks that look at a service from the outside.
//!
//! Each kind answers one question with one attempt; the supervisor repeats attempts at the
//! configured interval and applies the timeout and retry rules. `exec` and `log` probes need the
//! process layer and live with the orchestrator.

use std::path::PathBuf;
use std::time::Duration;

use stackctl_core::shm::{Segment, ShmError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a probe looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A camera segment exists, has the board's size, and its `write_index` advances.
    Shm(String),
    /// A file exists.
    File(PathBuf),
    /// A TCP connection to `host:port` succeeds.
    Tcp(String),
    /// `GET` of an `http://` URL answers 2xx or 3xx.
    Http(String),
}

/// Why one attempt failed (shown in the status and the log).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The attempt took longer than its limit.
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
    /// The segment does not exist.
    #[error("{0} does not exist yet")]
    NoSegment(String),
    /// The segment exists but cannot be used (wrong size, no access...).
    #[error(transparent)]
    Segment(ShmError),
    /// The segment's index did not move since the previous attempt.
    #[error("{name}: write_index {index} has not advanced since the last check")]
    Stale {
        /// The segment.
        name: String,
        /// Its index, then and now.
        index: u32,
    },
    /// On a first look, the segment's index did not move within [`SHM_FIRST_LOOK`].
    #[error("{name}: write_index {index} has not advanced in {SHM_FIRST_LOOK:?}")]
    NotAdvancing {
        /// The segment.
        name: String,
        /// Its index.
        index: u32,
    },
    /// The file cannot be seen.
    #[error("{}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A TCP connection failed.
    #[error("connect {addr}: {error}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Why.
        error: std::io::Error,
    },
    /// The URL is not one this probe speaks.
    #[error("{0}: only http:// URLs can be probed")]
    NotHttp(String),
    /// Writing the request or reading the answer failed.
    #[error("{url}: {error}")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        error: std::io::Error,
    },
    /// The answer did not start with an HTTP status line.
    #[error("{0}: not an HTTP answer")]
    NotAnHttpAnswer(String),
    /// The answer's status was not 2xx or 3xx.
    #[error("{url} answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// Its status.
        status: u16,
    },
}

/// Memory between attempts (only the shm probe needs any).
#[derive(Debug, Default)]
pub struct ProbeState {
    last_index: Option<(u64, u32)>,
}

/// Runs one attempt, bounded by `timeout`. `Err` says why it failed, for status and logs.
pub async fn attempt(
    target: &Target,
    state: &mut ProbeState,
    timeout: Duration,
) -> Result<(), ProbeError> {
    match tokio::time::timeout(timeout, run(target, state)).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::NoAnswer(timeout)),
    }
}

async fn run(target: &Target, state: &mut ProbeState) -> Result<(), ProbeError> {
    match target {
        Target::Shm(name) => shm(name, state).await,
        Target::File(path) => match std::fs::metadata(path) {
            Ok(_) => Ok(()),
            Err(error) => Err(ProbeError::File {
                path: path.clone(),
                error,
            }),
        },
        Target::Tcp(addr) => TcpStream::connect(addr.as_str())
            .await
            .map(drop)
            .map_err(|error| ProbeError::Connect {
                addr: addr.clone(),
                error,
            }),
        Target::Http(url) => http(url).await,
    }
}

/// How often the first attempt on a segment looks at its index again.
const SHM_WATCH: Duration = Duration::from_millis(20);
/// How long the first attempt on a segment watches it: four frames at the night rate (2 fps).
const SHM_FIRST_LOOK: Duration = Duration::from_secs(2);

/// Passes once the index has moved: since the previous attempt on the same incarnation, or,
/// on the first look at one, within this attempt (at most [`SHM_FIRST_LOOK`]), so a first
/// attempt is never a failure just for having nothing to compare with.
async fn shm(name: &str, state: &mut ProbeState) -> Result<(), ProbeError> {
    let seg = match Segment::open(name) {
        Ok(seg) => seg,
        Err(ShmError::NotFound(_)) => return Err(ProbeError::NoSegment(name.to_owned())),
        Err(e) => return Err(ProbeError::Segment(e)),
    };
    let ino = seg.id().ino;
    let first = seg.write_index();
    match state.last_index.replace((ino, first)) {
        Some((before_ino, before)) if before_ino == ino => {
            if before != first {
                Ok(())
            } else {
                Err(ProbeError::Stale {
                    name: name.to_owned(),
                    index: first,
                })
            }
        }
        // A new incarnation (or the first look): watch it advance now.
        _ => {
            let watch = async {
                loop {
                    tokio::time::sleep(SHM_WATCH).await;
                    let now = seg.write_index();
                    if now != first {
                        return now;
                    }
                }
            };
            match tokio::time::timeout(SHM_FIRST_LOOK, watch).await {
                Ok(now) => {
                    state.last_index = Some((ino, now));
                    Ok(())
                }
                Err(_) => Err(ProbeError::NotAdvancing {
                    name: name.to_owned(),
                    index: first,
                }),
            }
        }
    }
}

/// A minimal HTTP/1.1 `GET`: the status line is all a probe needs.
async fn http(url: &str) -> Result<(), ProbeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ProbeError::NotHttp(url.to_owned()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream = TcpStream::connect(&addr)
        .await
        .map_err(|error| ProbeError::Connect {
            addr: addr.clone(),
            error,
        })?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: stackctl-probe\r\n\r\n"
    );
    let io = |error| ProbeError::Http {
        url: url.to_owned(),
        error,
    };
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]).await {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(io(e)),
        }
    }
    let line = String::from_utf8_lossy(&head[..len]);
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| ProbeError::NotAnHttpAnswer(url.to_owned()))?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(ProbeError::Status {
            url: url.to_owned(),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use stackctl_core::layout::{FrameHeader, PixelFormat};
    use stackctl_core::shm::{CopyMode, ShmWriter};

    use super::*;

    const T: Duration = Duration::from_secs(5);

    /// An HTTP server on loopback that answers each connection with `status` once.
    fn serve(status: u16) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let _ = write!(conn, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            }
        });
        format!("http://{addr}/health")
    }

    #[tokio::test]
    async fn http_succeeds_on_2xx_and_fails_on_5xx() {
        let mut state = ProbeState::default();
        attempt(&Target::Http(serve(200)), &mut state, T)
            .await
            .expect("a 200 passes");
        let err = attempt(&Target::Http(serve(503)), &mut state, T)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("503"), "{err}");
        let err = attempt(&Target::Http("https://x".into()), &mut state, T)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("only http://"), "{err}");
    }

    #[tokio::test]
    async fn tcp_and_file() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let mut state = ProbeState::default();
        attempt(&Target::Tcp(addr.clone()), &mut state, T)
            .await
            .expect("a listening port passes");
        drop(listener);
        assert!(attempt(&Target::Tcp(addr), &mut state, T).await.is_err());

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ready");
        assert!(
            attempt(&Target::File(path.clone()), &mut state, T)
                .await
                .is_err()
        );
        std::fs::write(&path, b"").expect("write");
        attempt(&Target::File(path), &mut state, T)
            .await
            .expect("an existing file passes");
    }

    #[tokio::test]
    async fn shm_needs_the_index_to_advance() {
        let name = format!("/stackctl-probe-{}", std::process::id());
        let target = Target::Shm(name.clone());
        let mut state = ProbeState::default();
        let err = attempt(&target, &mut state, T)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");

        let mut writer = ShmWriter::create(&name).expect("segment");
        let header = FrameHeader {
            format: PixelFormat::H264.to_raw(),
            ..FrameHeader::default()
        };
        let au = [0, 0, 0, 1, 0x65, 0x88];
        // A stale segment whose index never moves is not ready: the first look waits for it
        // (and times out), the next ones compare with it.
        writer
            .publish(&header, &au, CopyMode::WholeSlot)
            .expect("publish");
        let short = Duration::from_millis(100);
        let err = attempt(&target, &mut state, short)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no answer within"), "{err}");
        let err = attempt(&target, &mut state, short)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("has not advanced"), "{err}");
        writer
            .publish(&header, &au, CopyMode::WholeSlot)
            .expect("publish");
        attempt(&target, &mut state, T)
            .await
            .expect("an advancing index passes");
        // A first look at a live segment passes within the attempt: no spurious failure.
        let mut fresh = ProbeState::default();
        let (done, ()) = tokio::join!(attempt(&target, &mut fresh, T), async {
            tokio::time::sleep(Duration::from_millis(60)).await;
            writer
                .publish(&header, &au, CopyMode::WholeSlot)
                .expect("publish");
        });
        done.expect("a first look at a live segment passes");
        writer.unlink().expect("unlink");
    }
}
