//! One RTSP connection: a reader (requests in, through the limits of [`framing`]) and a
//! writer (answers, and the RTP and RTCP of a session interleaved on the connection).
//!
//! The reader closes a connection that sends nothing for `session_timeout` while it has no
//! session (idle), or leaves a request unfinished for [`REQUEST_TIMEOUT`] (a slow or
//! half-open client); a connection with a session lives as long as the session. The writer
//! closes one that takes no byte for [`STALL_TIMEOUT`]: its session ends as `stalled`. A
//! client whose queue fills skips to the next IDR meanwhile (see [`feed`](crate::feed)).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rtsp_types::{Response, StatusCode, Version, headers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::framing::{self, FramingError, Incoming};
use crate::handler::{self, Conn};
use crate::metrics::CloseReason;
use crate::server::Server;
use crate::session::{Cmd, Session, Transport};
use crate::udp::SR_INTERVAL;

/// A write that makes no progress for this long closes the connection.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of queued frames written with one `write` call at most.
const WRITE_BATCH: usize = 256 * 1024;

/// Why the reader stops waiting, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Until this instant, then close as idle (nothing sent, no session).
    Idle(Instant),
    /// Until this instant, then answer 408 and close (a request left unfinished).
    Request(Instant),
    /// As long as it takes (the session's time-out watches the client).
    Session,
}

/// How long the reader waits for more bytes: a pure decision, times passed in.
pub fn wait(
    last_activity: Instant,
    partial_since: Option<Instant>,
    has_session: bool,
    idle_timeout: Duration,
    request_timeout: Duration,
) -> Wait {
    match (partial_since, has_session) {
        (Some(since), _) => Wait::Request(since + request_timeout),
        (None, true) => Wait::Session,
        (None, false) => Wait::Idle(last_activity + idle_timeout),
    }
}

/// Serves one connection until it closes.
pub async fn serve(server: Arc<Server>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    // A peer that vanished (power loss, cable pulled) is found by the kernel within about a
    // minute even when nothing is being sent.
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let (mut reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Cmd>(32);
    let (closer, mut closed) = watch::channel(false);
    let id = server.next_id();
    let writer_task = tokio::spawn(write_loop(
        Arc::clone(&server),
        id,
        writer,
        rx,
        closer.clone(),
    ));
    let mut conn = Conn {
        id,
        peer,
        local,
        nonce: crate::auth::new_nonce(),
        session: None,
        writer: tx,
        closer,
        auth_failures: 0,
    };
    let mut stopping = server.stopping();
    let mut buf = BytesMut::with_capacity(4096);
    let mut last_activity = Instant::now();
    let mut partial_since: Option<Instant> = None;
    let idle_timeout = server.config.session_timeout;
    'conn: loop {
        // Everything complete in the buffer first.
        loop {
            match framing::next(&buf) {
                Ok(None) => break,
                Ok(Some((msg, used))) => {
                    buf.advance(used);
                    partial_since = None;
                    last_activity = Instant::now();
                    match msg {
                        Incoming::Blank => {}
                        Incoming::Data { channel } => rtcp_in(&server, &conn, channel),
                        Incoming::Request(req) => {
                            let out = handler::handle(&server, &mut conn, *req).await;
                            let status = out.response.status();
                            server.metrics.responded(u16::from(status));
                            if !send_reply(&conn, &out.response, &out.repeated).await {
                                break 'conn;
                            }
                            if let Some(cmd) = out.then
                                && conn.writer.send(cmd).await.is_err()
                            {
                                break 'conn;
                            }
                            if out.close {
                                break 'conn;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::info!(%peer, error = %e, "RTSP connection closed: unreadable input");
                    let (status, cseq) = match &e {
                        FramingError::HeadTooLarge | FramingError::TooManyHeaders => {
                            (StatusCode::BadRequest, None)
                        }
                        FramingError::BodyTooLarge => {
                            (StatusCode::RequestMessageBodyTooLarge, None)
                        }
                        FramingError::Malformed { cseq, .. } => {
                            (StatusCode::BadRequest, cseq.clone())
                        }
                    };
                    server.metrics.responded(u16::from(status));
                    let mut b = Response::builder(Version::V1_0, status);
                    if let Some(cseq) = cseq {
                        b = b.header(headers::CSEQ, cseq);
                    }
                    let _ = send_reply(&conn, &b.build(Vec::new()), &[]).await;
                    break 'conn;
                }
            }
        }
        if !buf.is_empty() && partial_since.is_none() {
            partial_since = Some(Instant::now());
        }
        let has_session = conn.session.as_ref().is_some_and(|s| !s.is_ended());
        let deadline = match wait(
            last_activity,
            partial_since,
            has_session,
            idle_timeout,
            server.config.request_timeout,
        ) {
            Wait::Idle(at) | Wait::Request(at) => Some(at),
            Wait::Session => None,
        };
        let expired = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            () = expired => {
                if partial_since.is_some() {
                    server.metrics.responded(408);
                    let b = Response::builder(Version::V1_0, StatusCode::RequestTimeout);
                    let _ = send_reply(&conn, &b.build(Vec::new()), &[]).await;
                    tracing::info!(%peer, "RTSP connection closed: a request left unfinished");
                } else {
                    tracing::debug!(%peer, "RTSP connection closed: idle");
                }
                break;
            }
            () = crate::server::until_set(&mut closed) => break,
            () = crate::server::until_set(&mut stopping) => break,
        }
    }
    server.connection_closed(id, CloseReason::Disconnect);
    // The last answers (an error before closing) go out first, unless the writer is stuck.
    if conn.writer.try_send(Cmd::Close).is_err() {
        conn.closer.send_replace(true);
    }
    let closer = conn.closer.clone();
    drop(conn);
    let mut writer_task = writer_task;
    if tokio::time::timeout(STALL_TIMEOUT, &mut writer_task)
        .await
        .is_err()
    {
        closer.send_replace(true);
        let _ = writer_task.await;
    }
}

/// Interleaved data from the client: RTCP on its session's channel keeps the session alive.
fn rtcp_in(server: &Server, conn: &Conn, channel: u8) {
    if let Some(session) = &conn.session
        && let Transport::Tcp { rtcp, .. } = session.transport
        && channel == rtcp
    {
        server.metrics.rtcp_received.fetch_add(1, Relaxed);
        session.machine().touch(std::time::Instant::now());
    }
}

async fn send_reply(
    conn: &Conn,
    response: &Response<Vec<u8>>,
    repeated: &[(&str, String)],
) -> bool {
    let mut bytes = Vec::with_capacity(256 + response.body().len());
    if response.write(&mut bytes).is_err() {
        return false;
    }
    if !repeated.is_empty() {
        // After the last header line, before the blank line that ends the head.
        let head_end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(bytes.len(), |i| i + 2);
        let lines: String = repeated
            .iter()
            .map(|(n, v)| format!("{n}: {v}\r\n"))
            .collect();
        bytes.splice(head_end..head_end, lines.into_bytes());
    }
    conn.writer.send(Cmd::Reply(bytes)).await.is_ok()
}

/// What the writer sends for a playing session.
struct Playing {
    session: Arc<Session>,
    rx: mpsc::Receiver<crate::feed::Queued>,
    generation: u64,
    channel: u8,
    rtcp_channel: u8,
    next_sr: Instant,
}

/// The writer: answers in order, then the frames of a playing session, a sender report
/// every [`SR_INTERVAL`]. Answers go first when both are ready.
async fn write_loop(
    server: Arc<Server>,
    conn: u64,
    mut socket: OwnedWriteHalf,
    mut cmds: mpsc::Receiver<Cmd>,
    closer: watch::Sender<bool>,
) {
    let mut closed = closer.subscribe();
    let mut playing: Option<Playing> = None;
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        out.clear();
        let sr_due = playing.as_ref().map(|p| p.next_sr);
        tokio::select! {
            biased;
            () = crate::server::until_set(&mut closed) => break,
            cmd = cmds.recv() => match cmd {
                None | Some(Cmd::Close) => break,
                Some(Cmd::Reply(bytes)) => out.extend_from_slice(&bytes),
                Some(Cmd::Play { session, rx, generation }) => {
                    let Transport::Tcp { rtp, rtcp } = session.transport else { continue };
                    playing = Some(Playing {
                        session,
                        rx,
                        generation,
                        channel: rtp,
                        rtcp_channel: rtcp,
                        next_sr: Instant::now() + Duration::from_secs(1),
                    });
                    continue;
                }
            },
            q = next_frame(&mut playing) => match q {
                Some(q) => {
                    let Some(p) = playing.as_mut() else { continue };
                    let mut frames = 0;
                    let mut next = Some(q);
                    // What else is queued, up to a batch: one write for a burst (the GOP
                    // cache at start, a client catching up).
                    while let Some(q) = next.take() {
                        p.session.rtp.interleave_frame(&mut out, &q, p.channel, &p.session.stats);
                        frames += 1;
                        if out.len() < WRITE_BATCH {
                            next = p.rx.try_recv().ok().filter(|_| p.session.sends(p.generation));
                        }
                    }
                    let m = &server.metrics;
                    m.frames_sent.fetch_add(frames, Relaxed);
                    m.bytes_sent.fetch_add(out.len() as u64, Relaxed);
                }
                None => {
                    playing = None;
                    continue;
                }
            },
            () = sleep_until(sr_due) => {
                let Some(p) = playing.as_mut() else { continue };
                p.next_sr += SR_INTERVAL;
                if !p.session.sends(p.generation) {
                    playing = None;
                    continue;
                }
                let report = p.session.rtp.sender_report(&p.session.stats);
                crate::rtp_out::interleave(&mut out, p.rtcp_channel, &report);
                p.session.stats.bytes_sent.fetch_add(out.len() as u64, Relaxed);
                server.metrics.bytes_sent.fetch_add(out.len() as u64, Relaxed);
                server.metrics.sender_reports.fetch_add(1, Relaxed);
            }
        }
        match tokio::time::timeout(STALL_TIMEOUT, socket.write_all(&out)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => {
                tracing::info!(
                    conn,
                    "RTSP client took nothing for {STALL_TIMEOUT:?}: closing"
                );
                server.connection_closed(conn, CloseReason::Stalled);
                break;
            }
        }
    }
    closer.send_replace(true);
    let _ = socket.shutdown().await;
}

/// The next frame to send: pending while nothing plays, `None` when the play ended (its
/// generation is over or its feed closed). Frames of an older generation are dropped here.
async fn next_frame(playing: &mut Option<Playing>) -> Option<crate::feed::Queued> {
    let Some(p) = playing else {
        return std::future::pending().await;
    };
    let q = p.rx.recv().await?;
    p.session.sends(p.generation).then_some(q)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let r = s(10);
        // Nothing pending, no session: idle after the idle time-out.
        assert_eq!(wait(t0, None, false, s(60), r), Wait::Idle(t0 + s(60)));
        // With a session, the session's time-out decides.
        assert_eq!(wait(t0, None, true, s(60), r), Wait::Session);
        // Half a request: the request time-out, session or not.
        assert_eq!(
            wait(t0, Some(t0 + s(5)), true, s(60), r),
            Wait::Request(t0 + s(15))
        );
        assert_eq!(wait(t0, Some(t0), false, s(1), r), Wait::Request(t0 + r));
    }
}
