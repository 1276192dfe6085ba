//! The viewers' runtime: tokio, with a larger UDP receive buffer on each viewer's socket.
//!
//! Many viewers in one process share its CPU; when they connect together, each is sent the
//! frames since the last IDR at once, and a socket with the default 208 kB buffer overflows
//! before its viewer is scheduled (`RcvbufErrors` in /proc/net/snmp). A browser on its own
//! machine does not have that problem, so the tool should not measure it.
//!
//! It can also lose RTP on purpose ([`ViewerRuntime::with_loss`]): every Nth RTP datagram
//! received is dropped before the WebRTC stack sees it, as a lossy network would, so the
//! server's loss repair (NACK retransmissions) shows in the report as late packets.

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::task::{Context, Poll};
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit,
};

/// Tokio, with each UDP socket's receive buffer set to `recv_buffer` bytes.
#[derive(Debug)]
pub struct ViewerRuntime {
    recv_buffer: usize,
    lose_every: u64,
}

impl ViewerRuntime {
    /// A runtime whose sockets get a `recv_buffer`-byte receive buffer (0: the system's).
    pub fn new(recv_buffer: usize) -> Self {
        Self {
            recv_buffer,
            lose_every: 0,
        }
    }

    /// Drops every `n`th RTP datagram received (0: none).
    pub fn with_loss(mut self, n: u64) -> Self {
        self.lose_every = n;
        self
    }
}

/// True for an RTP datagram (RFC 7983: first byte 128-191; RFC 5761: RTCP's packet types
/// 200-207 in the second byte).
fn is_rtp(datagram: &[u8]) -> bool {
    matches!(datagram, [128..=191, second, ..] if !(200..=207).contains(second))
}

/// A socket that loses every `every`th RTP datagram it receives.
#[derive(Debug)]
struct LossySocket {
    inner: Arc<dyn AsyncUdpSocket>,
    every: u64,
    seen: AtomicU64,
}

impl LossySocket {
    /// Removes the doomed datagrams from one received message (several datagrams of `stride`
    /// bytes each when the kernel coalesced them); returns its new length.
    fn filter(&self, buf: &mut [u8], len: usize, stride: usize) -> usize {
        let stride = stride.max(1);
        let (mut read, mut write) = (0, 0);
        while read < len {
            let end = (read + stride).min(len);
            let lose = is_rtp(&buf[read..end])
                && (self.seen.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(self.every);
            if !lose {
                buf.copy_within(read..end, write);
                write += end - read;
            }
            read = end;
        }
        write
    }
}

impl AsyncUdpSocket for LossySocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        self.inner.poll_send(cx, transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            let n = match self.inner.poll_recv(cx, bufs, meta) {
                Poll::Ready(Ok(n)) => n,
                other => return other,
            };
            // Messages that lost everything are left out; the rest close up.
            let mut kept = 0;
            for i in 0..n {
                let len = self.filter(&mut bufs[i], meta[i].len, meta[i].stride);
                if len > 0 {
                    if kept != i {
                        let (head, tail) = bufs.split_at_mut(i);
                        head[kept][..len].copy_from_slice(&tail[0][..len]);
                        meta[kept] = meta[i];
                    }
                    meta[kept].len = len;
                    kept += 1;
                }
            }
            if kept > 0 {
                return Poll::Ready(Ok(kept));
            }
        }
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

/// Sets `socket`'s receive buffer: beyond `net.core.rmem_max` when privileged
/// (`SO_RCVBUFFORCE`), else as far as the limit allows. Best effort: a smaller buffer only
/// makes losses under load more likely, and the report shows those.
fn set_recv_buffer(socket: &std::net::UdpSocket, bytes: usize) {
    static WARNED: Once = Once::new();
    if bytes == 0 {
        return;
    }
    if setsockopt(socket, sockopt::RcvBufForce, &bytes).is_err()
        && let Err(e) = setsockopt(socket, sockopt::RcvBuf, &bytes)
    {
        WARNED.call_once(|| {
            eprintln!("viewerload: cannot set a {bytes}-byte UDP receive buffer: {e}");
        });
    }
}

impl Runtime for ViewerRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn(future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        set_recv_buffer(&socket, self.recv_buffer);
        let inner = TokioRuntime.wrap_udp_socket(socket)?;
        if self.lose_every == 0 {
            return Ok(inner);
        }
        Ok(Arc::new(LossySocket {
            inner,
            every: self.lose_every,
            seen: AtomicU64::new(0),
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        TokioRuntime.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        Box::pin(TokioRuntime.connect_tcp(remote_addr))
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        Box::pin(async move { TokioRuntime.resolve_host(host).await })
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        TokioRuntime.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        TokioRuntime.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        TokioRuntime.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        TokioRuntime.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio+recv-buffer"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::getsockopt;

    #[tokio::test]
    async fn every_nth_rtp_datagram_is_lost_even_inside_a_coalesced_message() {
        let socket = LossySocket {
            inner: TokioRuntime
                .wrap_udp_socket(std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
                .unwrap(),
            every: 3,
            seen: AtomicU64::new(0),
        };
        // Four RTP datagrams of 4 bytes coalesced, then RTCP (a sender report), which is kept.
        let mut buf = vec![
            0x80, 96, 0, 1, 0x80, 96, 0, 2, 0x80, 96, 0, 3, 0x80, 96, 0, 4,
        ];
        assert_eq!(socket.filter(&mut buf, 16, 4), 12);
        assert_eq!(
            &buf[..12],
            &[0x80, 96, 0, 1, 0x80, 96, 0, 2, 0x80, 96, 0, 4]
        );
        let mut rtcp = vec![0x80, 200, 0, 6];
        assert_eq!(socket.filter(&mut rtcp, 4, 4), 4);
        // STUN and DTLS are never lost: a connection must still come up.
        assert!(!is_rtp(&[0x00, 0x01, 0, 0]) && !is_rtp(&[22, 254, 253]));
    }

    /// Several messages received at once: a lost one in the middle leaves the others whole,
    /// in order, closed up in the caller's buffers.
    #[tokio::test]
    async fn a_lost_message_between_others_closes_up() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let socket = LossySocket {
            inner: TokioRuntime.wrap_udp_socket(receiver).unwrap(),
            every: 2,
            seen: AtomicU64::new(0),
        };
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // Different lengths, so the kernel never coalesces them into one message.
        let sent: [&[u8]; 3] = [
            &[0x80, 96, 0, 1, 1],
            &[0x80, 96, 0, 2],
            &[0x80, 96, 0, 3, 3, 3],
        ];
        for d in sent {
            sender.send_to(d, to).unwrap();
        }
        let mut received = Vec::new();
        while received.len() < 2 {
            let mut storage = [[0u8; 64]; 3];
            let mut bufs: Vec<IoSliceMut<'_>> =
                storage.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            let mut meta = [RecvMeta::default(); 3];
            let n = tokio::time::timeout(
                Duration::from_secs(5),
                std::future::poll_fn(|cx| socket.poll_recv(cx, &mut bufs, &mut meta)),
            )
            .await
            .expect("the datagrams arrive")
            .unwrap();
            for i in 0..n {
                received.push(bufs[i][..meta[i].len].to_vec());
            }
        }
        assert_eq!(received, [sent[0].to_vec(), sent[2].to_vec()]);
    }

    #[test]
    fn sockets_get_the_larger_buffer() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        set_recv_buffer(&socket, 4 << 20);
        let after = getsockopt(&socket, sockopt::RcvBuf).unwrap();
        // The kernel doubles what it is given, which only a privileged caller may take
        // beyond net.core.rmem_max.
        let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(after >= 2 * rmem_max.min(4 << 20), "{after} bytes");
    }
}
