//! RTP over UDP: the pool of server port pairs, and each UDP session's task (sends its RTP
//! and sender reports, hears its client's RTCP as a keep-alive).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use stackctl_media::rtp::RTP_HEADER_LEN;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::feed::Queued;
use crate::server::Server;
use crate::session::{Cmd, Session};

/// Time between RTCP sender reports (RFC 3550's minimum interval).
pub const SR_INTERVAL: Duration = Duration::from_secs(5);

/// The pace of a UDP client's RTP when it is behind (the GOP cache at its start, an IDR):
/// bytes per second.
pub const PACE_BYTES_PER_SEC: u64 = 8_000_000;
/// Bytes sent at once before pacing starts: well under a receiver's default socket buffer
/// (208 KiB on Linux), so a burst does not overflow it.
pub const PACE_BURST: u64 = 64 * 1024;

/// A token bucket: when the next datagram may go, so that a burst leaves the server at
/// [`PACE_BYTES_PER_SEC`] after the first [`PACE_BURST`] bytes. Pure: time passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacer {
    /// When the bytes sent so far will have drained at the pace.
    drained_at: Instant,
}

impl Pacer {
    /// A pacer with nothing sent.
    pub fn new(now: Instant) -> Self {
        Self { drained_at: now }
    }

    /// Counts `bytes` sent at `now`; returns how long to wait before sending more.
    pub fn sent(&mut self, bytes: usize, now: Instant) -> Duration {
        let cost = Duration::from_nanos(bytes as u64 * 1_000_000_000 / PACE_BYTES_PER_SEC);
        self.drained_at = self.drained_at.max(now) + cost;
        let allowance = Duration::from_nanos(PACE_BURST * 1_000_000_000 / PACE_BYTES_PER_SEC);
        self.drained_at
            .saturating_duration_since(now)
            .saturating_sub(allowance)
    }
}

/// The server's UDP port pairs (RTP even, RTCP odd), each lent to one session at a time.
#[derive(Debug)]
pub struct PortPool {
    first: u16,
    last: u16,
    lent: BTreeSet<u16>,
    /// Where the next search starts, so a freed pair is not reused at once (late packets of
    /// an old session would reach a new one).
    next: u16,
}

impl PortPool {
    /// Pairs from `first` (even) up to `last`, inclusive.
    pub fn new(first: u16, last: u16) -> Self {
        Self {
            first,
            last,
            lent: BTreeSet::new(),
            next: first,
        }
    }

    /// Pairs not lent, in the order to try them.
    pub fn candidates(&self) -> Vec<u16> {
        let pairs: Vec<u16> = (self.first..self.last)
            .step_by(2)
            .filter(|p| !self.lent.contains(p))
            .collect();
        let split = pairs.partition_point(|p| *p < self.next);
        pairs[split..]
            .iter()
            .chain(&pairs[..split])
            .copied()
            .collect()
    }

    /// Lends the pair starting at `port`.
    pub fn lend(&mut self, port: u16) {
        self.lent.insert(port);
        self.next = port.saturating_add(2);
        if self.next >= self.last {
            self.next = self.first;
        }
    }

    /// Takes the pair back.
    pub fn give_back(&mut self, port: u16) {
        self.lent.remove(&port);
    }
}

/// A pair of bound sockets lent from the pool, given back when dropped.
#[derive(Debug)]
pub struct Pair {
    /// The RTP socket (even port).
    pub rtp: StdUdpSocket,
    /// The RTCP socket (odd port).
    pub rtcp: StdUdpSocket,
    /// The RTP port.
    pub port: u16,
    pool: Arc<Mutex<PortPool>>,
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .give_back(self.port);
    }
}

/// Binds the first free pair of `pool` on `ip`; `None` when every pair is lent or taken by
/// another program.
pub fn bind_pair(pool: &Arc<Mutex<PortPool>>, ip: IpAddr) -> Option<Pair> {
    let mut guard = pool.lock().unwrap_or_else(PoisonError::into_inner);
    for port in guard.candidates() {
        let Ok(rtp) = StdUdpSocket::bind((ip, port)) else {
            continue;
        };
        let Ok(rtcp) = StdUdpSocket::bind((ip, port + 1)) else {
            continue;
        };
        if rtp.set_nonblocking(true).is_err() || rtcp.set_nonblocking(true).is_err() {
            continue;
        }
        guard.lend(port);
        return Some(Pair {
            rtp,
            rtcp,
            port,
            pool: Arc::clone(pool),
        });
    }
    None
}

/// A UDP session's task: until the session ends, sends what it is told to play, a sender
/// report every [`SR_INTERVAL`] while playing, and takes any datagram from the client's
/// address as a sign of life.
pub async fn run(
    server: Arc<Server>,
    session: Arc<Session>,
    pair: Pair,
    mut cmds: mpsc::Receiver<Cmd>,
) {
    let crate::session::Transport::Udp {
        client_rtp,
        client_rtcp,
        ..
    } = session.transport
    else {
        return;
    };
    let (Ok(rtp), Ok(rtcp)) = (
        pair.rtp.try_clone().and_then(UdpSocket::from_std),
        pair.rtcp.try_clone().and_then(UdpSocket::from_std),
    ) else {
        tracing::warn!(session = %session.id, "cannot use the UDP sockets");
        server.close_session(&session.id, crate::metrics::CloseReason::Stalled);
        return;
    };
    let mut playing: Option<(mpsc::Receiver<Queued>, u64)> = None;
    let mut datagram = Vec::with_capacity(RTP_HEADER_LEN + stackctl_media::rtp::MAX_PAYLOAD);
    let mut rtcp_in = [0u8; 1500];
    let mut rtp_in = [0u8; 1500];
    let mut next_sr = tokio::time::Instant::now() + Duration::from_secs(1);
    let mut pacer = Pacer::new(Instant::now());
    loop {
        tokio::select! {
            biased;
            () = session.ended() => break,
            cmd = cmds.recv() => match cmd {
                None => break,
                Some(Cmd::Play { rx, generation, .. }) => {
                    playing = Some((rx, generation));
                    next_sr = tokio::time::Instant::now() + Duration::from_secs(1);
                }
                Some(Cmd::Reply(_) | Cmd::Close) => {}
            },
            q = recv(&mut playing) => match q {
                Some((q, generation)) if session.sends(generation) => {
                    let rtp_id = session.rtp;
                    let mut sent = 0;
                    for (header, payload) in rtp_id.packets(&q) {
                        datagram.clear();
                        datagram.extend_from_slice(&header.to_bytes());
                        datagram.extend_from_slice(payload);
                        if send(&rtp, &datagram, client_rtp, &server).await {
                            sent += datagram.len();
                        }
                        let wait = pacer.sent(datagram.len(), Instant::now());
                        if !wait.is_zero() {
                            tokio::time::sleep(wait).await;
                        }
                    }
                    let stats = &session.stats;
                    stats.packets_sent.fetch_add(q.au.payloads.len() as u64, Relaxed);
                    stats.payload_bytes_sent.fetch_add(q.au.payload_bytes() as u64, Relaxed);
                    stats.bytes_sent.fetch_add(sent as u64, Relaxed);
                    server.metrics.packets_sent.fetch_add(q.au.payloads.len() as u64, Relaxed);
                    server.metrics.bytes_sent.fetch_add(sent as u64, Relaxed);
                    server.metrics.frames_sent.fetch_add(1, Relaxed);
                }
                Some(_) | None => playing = None,
            },
            () = tokio::time::sleep_until(next_sr), if playing.is_some() => {
                next_sr += SR_INTERVAL;
                let report = session.rtp.sender_report(&session.stats);
                if send(&rtcp, &report, client_rtcp, &server).await {
                    session.stats.bytes_sent.fetch_add(report.len() as u64, Relaxed);
                    server.metrics.bytes_sent.fetch_add(report.len() as u64, Relaxed);
                    server.metrics.sender_reports.fetch_add(1, Relaxed);
                }
            }
            got = rtcp.recv_from(&mut rtcp_in) => {
                if let Ok((_, from)) = got && from.ip() == client_rtcp.ip() {
                    server.metrics.rtcp_received.fetch_add(1, Relaxed);
                    session.machine().touch(Instant::now());
                }
            }
            got = rtp.recv_from(&mut rtp_in) => {
                // Some clients send a datagram or two to open their NAT: a sign of life too.
                if let Ok((_, from)) = got && from.ip() == client_rtp.ip() {
                    session.machine().touch(Instant::now());
                }
            }
        }
    }
    drop(pair);
}

/// The next frame of `playing`, with its generation; pending forever when not playing.
async fn recv(playing: &mut Option<(mpsc::Receiver<Queued>, u64)>) -> Option<(Queued, u64)> {
    match playing {
        Some((rx, generation)) => rx.recv().await.map(|q| (q, *generation)),
        None => std::future::pending().await,
    }
}

/// Sends one datagram; counts a refusal. Waits while the socket's buffer is full.
async fn send(socket: &UdpSocket, data: &[u8], to: SocketAddr, server: &Server) -> bool {
    let sent = match socket.try_send_to(data, to) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => socket.send_to(data, to).await,
        other => other,
    };
    if sent.is_err() {
        server.metrics.udp_send_errors.fetch_add(1, Relaxed);
    }
    sent.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_lets_a_burst_through_then_holds_to_the_pace() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0);
        // 64 KiB go at once.
        for _ in 0..64 {
            assert_eq!(p.sent(1024, t0), Duration::ZERO);
        }
        // Then each 8,000 bytes cost a millisecond.
        assert_eq!(p.sent(8000, t0), Duration::from_millis(1));
        assert_eq!(p.sent(8000, t0), Duration::from_millis(2));
        // Time passing drains the bucket.
        assert_eq!(p.sent(8000, t0 + Duration::from_secs(1)), Duration::ZERO);
    }

    #[test]
    fn pairs_are_lent_once_and_a_freed_pair_comes_last() {
        let mut pool = PortPool::new(8600, 8607);
        assert_eq!(pool.candidates(), [8600, 8602, 8604, 8606]);
        pool.lend(8600);
        pool.lend(8602);
        assert_eq!(pool.candidates(), [8604, 8606]);
        pool.give_back(8600);
        assert_eq!(pool.candidates(), [8604, 8606, 8600]);
        pool.lend(8604);
        pool.lend(8606);
        assert_eq!(pool.candidates(), [8600], "wraps around");
        pool.lend(8600);
        assert!(pool.candidates().is_empty());
        // An odd last port closes the range: [8600, 8601] is one pair.
        assert_eq!(PortPool::new(8600, 8601).candidates(), [8600]);
    }

    #[test]
    fn bound_pairs_are_given_back_when_dropped() {
        // Ports in a range the kernel does not hand out on its own; skip the test quietly if
        // they happen to be taken.
        let pool = Arc::new(Mutex::new(PortPool::new(47_600, 47_603)));
        let ip = IpAddr::from([127, 0, 0, 1]);
        let Some(a) = bind_pair(&pool, ip) else {
            return;
        };
        let b = bind_pair(&pool, ip);
        if let Some(b) = &b {
            assert_ne!(a.port, b.port);
            assert!(bind_pair(&pool, ip).is_none(), "two pairs, both lent");
        }
        let port = a.port;
        assert_eq!(a.rtcp.local_addr().unwrap().port(), port + 1);
        drop(a);
        drop(b);
        assert!(pool.lock().unwrap().candidates().contains(&port));
    }
}
