//! Batched UDP sends: one `sendmsg` per run of a viewer's packets instead of one per packet.
//!
//! webrtc-rs's connection driver takes one RTP packet per turn of its loop and sends it at
//! once, so a 1080p frame (≈ 30 packets) costs ≈ 30 `sendmsg` calls per viewer, and each walks
//! the whole UDP/IP stack. The driver sends through its [`Runtime`]'s sockets, so
//! [`SinkRuntime`] hands it a [`BatchSocket`] instead: a send only copies the datagram into
//! a queue and wakes the socket's flush task, which runs once the driver yields (after it has
//! taken every packet the viewer's sender had queued) and sends the queue as UDP GSO runs:
//! consecutive datagrams to one address, all of one size but the last, in one syscall.
//! Order is kept; the queue is bounded, and a full one makes the driver wait (back-pressure
//! as before). Without GSO (an old kernel), each datagram is sent on its own, as the driver
//! would have.
//!
//! [`Runtime`]: webrtc::runtime::Runtime

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::Notify;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, EcnCodepoint, JoinHandle,
    RecvMeta, Runtime, TokioRuntime, Transmit,
};

use crate::metrics::Metrics;
use crate::mux::MuxConnection;

/// Bytes queued on one socket before a send waits for the flush (a few IDR frames' worth).
const MAX_QUEUED_BYTES: usize = 1 << 20;
/// The most one GSO send may carry: the largest UDP payload.
const MAX_RUN_BYTES: usize = 65_507;
/// The most segments one GSO send may carry (the kernel's `UDP_MAX_SEGMENTS` is 64, or 128).
const MAX_RUN_SEGMENTS: usize = 64;

/// One queued datagram: where it goes and where its bytes are in [`Queue::bytes`].
#[derive(Debug, Clone, Copy)]
struct Entry {
    destination: SocketAddr,
    ecn: Option<EcnCodepoint>,
    len: usize,
}

/// Datagrams waiting for the flush task, in order, their bytes back to back.
#[derive(Debug, Default)]
struct Queue {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    /// The driver, waiting for room.
    blocked: Option<Waker>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Notify,
    closed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connection's UDP socket whose sends are queued and flushed in runs (see the module).
#[derive(Debug)]
pub struct BatchSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    shared: Arc<Shared>,
}

impl BatchSocket {
    /// Wraps `inner` and starts its flush task on `runtime`. The task ends, after sending
    /// what is queued, when the socket is dropped.
    pub fn new(
        inner: Arc<dyn AsyncUdpSocket>,
        runtime: &tokio::runtime::Handle,
        stats: Arc<Metrics>,
    ) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::default(),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
        });
        runtime.spawn(flush_task(Arc::clone(&inner), Arc::clone(&shared), stats));
        Self { inner, shared }
    }
}

impl Drop for BatchSocket {
    fn drop(&mut self) {
        self.shared.closed.store(true, Relaxed);
        self.shared.ready.notify_one();
    }
}

impl AsyncUdpSocket for BatchSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        let mut queue = lock(&self.shared.queue);
        // An empty queue always takes one: a datagram larger than the bound still goes out.
        if !queue.entries.is_empty()
            && queue.bytes.len() + transmit.contents.len() > MAX_QUEUED_BYTES
        {
            queue.blocked = Some(cx.waker().clone());
            return Poll::Pending;
        }
        queue.bytes.extend_from_slice(transmit.contents);
        queue.entries.push(Entry {
            destination: transmit.destination,
            ecn: transmit.ecn,
            len: transmit.contents.len(),
        });
        let first = queue.entries.len() == 1;
        drop(queue);
        if first {
            self.shared.ready.notify_one();
        }
        Poll::Ready(Ok(transmit.contents.len()))
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

/// Sends what the socket queues, until it is dropped.
async fn flush_task(inner: Arc<dyn AsyncUdpSocket>, shared: Arc<Shared>, stats: Arc<Metrics>) {
    // Swapped with the shared queue: the driver fills one while this sends the other.
    let mut sending = Queue::default();
    loop {
        shared.ready.notified().await;
        loop {
            let blocked = {
                let mut queue = lock(&shared.queue);
                std::mem::swap(&mut queue.bytes, &mut sending.bytes);
                std::mem::swap(&mut queue.entries, &mut sending.entries);
                queue.blocked.take()
            };
            if let Some(waker) = blocked {
                waker.wake();
            }
            if sending.entries.is_empty() {
                break;
            }
            send_runs(inner.as_ref(), &sending, &stats).await;
            sending.bytes.clear();
            sending.entries.clear();
        }
        if shared.closed.load(Relaxed) {
            return;
        }
    }
}

/// Sends `queue` in order, each run of datagrams to one address (all of one size but the
/// last) in one GSO send.
async fn send_runs(socket: &dyn AsyncUdpSocket, queue: &Queue, stats: &Metrics) {
    let max_segments = socket.max_gso_segments().clamp(1, MAX_RUN_SEGMENTS);
    let mut offset = 0;
    let mut i = 0;
    while i < queue.entries.len() {
        let first = queue.entries[i];
        let (count, bytes) = run(&queue.entries[i..], max_segments);
        let transmit = Transmit {
            destination: first.destination,
            ecn: first.ecn,
            contents: &queue.bytes[offset..offset + bytes],
            segment_size: (count > 1).then_some(first.len),
            src_ip: None,
        };
        let sent = std::future::poll_fn(|cx| socket.poll_send(cx, &transmit)).await;
        stats.udp_send_calls.fetch_add(1, Relaxed);
        match sent {
            Ok(_) => {
                stats.udp_datagrams.fetch_add(count as u64, Relaxed);
            }
            Err(e) => {
                // As the driver does with a failed send: the datagrams are lost, the
                // connection carries on (RTP recovers from loss; ICE notices a dead path).
                stats.udp_send_errors.fetch_add(1, Relaxed);
                tracing::debug!(to = %first.destination, "UDP send of {count} datagrams failed: {e}");
            }
        }
        offset += bytes;
        i += count;
    }
}

/// The length of the run at the start of `entries` (datagrams and bytes): one address and
/// ECN mark, every datagram `entries[0].len` bytes except a shorter last one.
fn run(entries: &[Entry], max_segments: usize) -> (usize, usize) {
    let first = entries[0];
    let mut count = 1;
    let mut bytes = first.len;
    if first.len == 0 {
        return (count, bytes);
    }
    for e in &entries[1..] {
        if count == max_segments
            || e.destination != first.destination
            || e.ecn != first.ecn
            || e.len == 0
            || e.len > first.len
            || bytes + e.len > MAX_RUN_BYTES
        {
            break;
        }
        count += 1;
        bytes += e.len;
        if e.len < first.len {
            break;
        }
    }
    (count, bytes)
}

/// The runtime every connection of the sink runs on: tokio, with [`BatchSocket`]s, and with
/// the shared UDP port ([`MuxConnection`]) when `udp_port` is set.
#[derive(Debug)]
pub struct SinkRuntime {
    handle: tokio::runtime::Handle,
    mux: Option<Arc<MuxConnection>>,
    stats: Arc<Metrics>,
}

impl SinkRuntime {
    /// A runtime for one connection.
    pub fn new(
        handle: tokio::runtime::Handle,
        mux: Option<Arc<MuxConnection>>,
        stats: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self { handle, mux, stats })
    }
}

impl Runtime for SinkRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn(future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let inner = match &self.mux {
            Some(mux) => mux.wrap_udp_socket(socket)?,
            None => TokioRuntime.wrap_udp_socket(socket)?,
        };
        Ok(Arc::new(BatchSocket::new(
            inner,
            &self.handle,
            Arc::clone(&self.stats),
        )))
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
        "tokio+batched-udp"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(port: u16, len: usize) -> Entry {
        Entry {
            destination: SocketAddr::from(([127, 0, 0, 1], port)),
            ecn: None,
            len,
        }
    }

    #[test]
    fn a_run_is_one_address_and_one_size_but_a_shorter_last() {
        let fu_a = |n| vec![entry(1, 1222); n];
        // A frame: equal fragments, then a shorter last one, then the next viewer's.
        let mut q = fu_a(5);
        q.push(entry(1, 700));
        q.push(entry(2, 1222));
        assert_eq!(run(&q, 64), (6, 5 * 1222 + 700));
        assert_eq!(run(&q[6..], 64), (1, 1222));
        // A larger datagram starts a new run; so does another address.
        assert_eq!(run(&[entry(1, 100), entry(1, 200)], 64), (1, 100));
        assert_eq!(run(&[entry(1, 100), entry(2, 100)], 64), (1, 100));
        // Bounded by the segment count and by the largest UDP payload.
        assert_eq!(run(&vec![entry(1, 500); 100], 64).0, 64);
        assert_eq!(run(&fu_a(100), 1).0, 1);
        assert_eq!(run(&fu_a(60), 64).0, MAX_RUN_BYTES / 1222);
        // An empty datagram goes alone (a GSO segment size of 0 is invalid).
        assert_eq!(run(&[entry(1, 0), entry(1, 0)], 64), (1, 0));
    }

    /// Datagrams sent through a batch socket arrive whole and in order, one syscall per run
    /// where the kernel has UDP GSO. One thread: the flush task runs when the sender yields,
    /// as it does after the driver has taken a frame's packets.
    #[tokio::test(flavor = "current_thread")]
    async fn datagrams_arrive_whole_and_in_order_one_syscall_per_run() {
        let receiver = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = receiver.local_addr().unwrap();
        let std = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let inner = TokioRuntime.wrap_udp_socket(std).unwrap();
        let gso = inner.max_gso_segments() > 1;
        let metrics = Arc::new(Metrics::default());
        let socket = BatchSocket::new(
            inner,
            &tokio::runtime::Handle::current(),
            Arc::clone(&metrics),
        );
        // Two frames of a viewer: fragments of 1200 bytes and a shorter last one each.
        let mut sent = Vec::new();
        for frame in 0..2u8 {
            for i in 0..20u8 {
                let len = if i == 19 { 333 } else { 1200 };
                sent.push(vec![frame * 20 + i; len]);
            }
        }
        for d in &sent {
            let transmit = Transmit {
                destination: to,
                ecn: None,
                contents: d,
                segment_size: None,
                src_ip: None,
            };
            let n = std::future::poll_fn(|cx| socket.poll_send(cx, &transmit))
                .await
                .unwrap();
            assert_eq!(n, d.len());
        }
        let mut buf = vec![0u8; 2048];
        for (i, d) in sent.iter().enumerate() {
            let n = tokio::time::timeout(Duration::from_secs(5), receiver.recv(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("datagram {i} never arrived"))
                .unwrap();
            assert_eq!(&buf[..n], &d[..], "datagram {i}");
        }
        assert_eq!(metrics.udp_datagrams.load(Relaxed), 40);
        let calls = metrics.udp_send_calls.load(Relaxed);
        if gso {
            // Two frames, each a run that ends with its shorter last datagram.
            assert_eq!(calls, 2, "syscalls for 40 datagrams");
        } else {
            eprintln!("NOTE: no UDP GSO here: {calls} syscalls for 40 datagrams");
        }
        // Dropping the socket ends its flush task, which releases the real socket.
        let weak = Arc::downgrade(&socket.inner);
        drop(socket);
        tokio::time::timeout(Duration::from_secs(5), async {
            while weak.strong_count() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the flush task let go of the socket");
    }
}
