//! The viewers' runtime: tokio, with a larger UDP receive buffer on each viewer's socket.
//!
//! Many viewers in one process share its CPU; when they connect together, each is sent the
//! frames since the last IDR at once, and a socket with the default 208 kB buffer overflows
//! before its viewer is scheduled (`RcvbufErrors` in /proc/net/snmp). A browser on its own
//! machine does not have that problem, so the tool should not measure it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

/// Tokio, with each UDP socket's receive buffer set to `recv_buffer` bytes.
#[derive(Debug)]
pub struct ViewerRuntime {
    recv_buffer: usize,
}

impl ViewerRuntime {
    /// A runtime whose sockets get a `recv_buffer`-byte receive buffer (0: the system's).
    pub fn new(recv_buffer: usize) -> Arc<Self> {
        Arc::new(Self { recv_buffer })
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
        TokioRuntime.wrap_udp_socket(socket)
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
