//! The sink's UDP sockets: batched receives (`recvmmsg`, GRO), batched sends (GSO runs), and
//! the addresses they are bound to and advertised at.
//!
//! `quinn-udp` does the system calls: it receives many datagrams per call (and, with GRO,
//! many per buffer), tells which local address each arrived at (`IP_PKTINFO`), and sends a run
//! of equal-sized datagrams to one address in one call (UDP GSO, Linux 4.18 and later; one call
//! per datagram before that).
//!
//! [`Outbox`] keeps a worker's datagrams in order, their bytes back to back, and sends them as
//! runs: consecutive datagrams to one address, all of one size but a shorter last. A full
//! socket buffer leaves the rest queued for when the socket is writable; a bounded queue drops
//! (and counts) what does not fit.

use std::collections::BTreeSet;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};

use crate::metrics::Metrics;

/// The most one GSO send may carry: the largest UDP payload.
pub const MAX_RUN_BYTES: usize = 65_507;
/// The most segments one GSO send may carry (the kernel's `UDP_MAX_SEGMENTS` is 64, or 128).
pub const MAX_RUN_SEGMENTS: usize = 64;
/// Bytes a worker may have queued for sending; beyond, datagrams are dropped and counted.
pub const MAX_QUEUED_BYTES: usize = 16 << 20;
/// Each socket's send buffer: a few 1080p IDR frames for many viewers, so a burst of sends
/// rarely finds it full.
const SEND_BUFFER: usize = 4 << 20;
/// Each socket's receive buffer.
const RECV_BUFFER: usize = 1 << 20;

/// One bound UDP socket.
#[derive(Debug)]
pub struct Socket {
    socket: UdpSocket,
    state: UdpSocketState,
    local: SocketAddr,
}

impl Socket {
    /// Binds `addr` (port 0: an ephemeral one), non-blocking, with large buffers; an IPv6
    /// wildcard takes IPv6 only (the IPv4 one is bound apart).
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let domain = socket2::Domain::for_address(addr);
        let raw = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        if addr.is_ipv6() {
            raw.set_only_v6(true)?;
        }
        raw.bind(&addr.into())?;
        let socket: UdpSocket = raw.into();
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        // Best effort: beyond the system's maximum the kernel caps them.
        let _ = state.set_send_buffer_size(UdpSockRef::from(&socket), SEND_BUFFER);
        let _ = state.set_recv_buffer_size(UdpSockRef::from(&socket), RECV_BUFFER);
        let local = socket.local_addr()?;
        Ok(Self {
            socket,
            state,
            local,
        })
    }

    /// The address it is bound to (its IP may be a wildcard).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Whether it is bound to a wildcard address (so it tells, per datagram, which address a
    /// datagram was sent to, and sends from the address it is told).
    pub fn is_wildcard(&self) -> bool {
        self.local.ip().is_unspecified()
    }

    /// Receives what is waiting, into `bufs`; `Ok(0)`-free: `WouldBlock` when nothing is.
    pub fn recv(&self, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> io::Result<usize> {
        self.state.recv(UdpSockRef::from(&self.socket), bufs, meta)
    }

    /// Sends one datagram, or one GSO run.
    pub fn send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.state
            .try_send(UdpSockRef::from(&self.socket), transmit)
    }

    /// Datagrams one GSO send may carry here (1 without GSO).
    pub fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments().clamp(1, MAX_RUN_SEGMENTS)
    }

    /// Datagrams one receive buffer may carry here (1 without GRO).
    pub fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// The addresses to bind for `bind`: a wildcard covers the named addresses of its family.
pub fn bind_plan(bind: &[IpAddr]) -> Vec<IpAddr> {
    let wild4 = bind.contains(&IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let wild6 = bind.contains(&IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let mut plan = Vec::new();
    for ip in bind {
        let covered = match ip {
            IpAddr::V4(_) => wild4 && !ip.is_unspecified(),
            IpAddr::V6(_) => wild6 && !ip.is_unspecified(),
        };
        if !covered && !plan.contains(ip) {
            plan.push(*ip);
        }
    }
    plan
}

/// The host addresses to advertise for `bind`: each named address, and for a wildcard every
/// address of that family on an interface that is up, but loopback and IPv6 link-local ones
/// (loopback must be named).
pub fn host_addresses(bind: &[IpAddr], interfaces: &[IpAddr]) -> Vec<IpAddr> {
    let mut out = BTreeSet::new();
    for ip in bind {
        if !ip.is_unspecified() {
            out.insert(*ip);
            continue;
        }
        for i in interfaces {
            let usable = match (ip, i) {
                (IpAddr::V4(_), IpAddr::V4(v4)) => !v4.is_loopback() && !v4.is_unspecified(),
                (IpAddr::V6(_), IpAddr::V6(v6)) => {
                    !v6.is_loopback()
                        && !v6.is_unspecified()
                        && (v6.segments()[0] & 0xffc0) != 0xfe80
                }
                _ => false,
            };
            if usable {
                out.insert(*i);
            }
        }
    }
    out.into_iter().collect()
}

/// The addresses of the machine's interfaces that are up.
pub fn interface_addresses() -> Vec<IpAddr> {
    use nix::net::if_::InterfaceFlags;
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter(|a| a.flags.contains(InterfaceFlags::IFF_UP))
        .filter_map(|a| {
            let addr = a.address?;
            if let Some(v4) = addr.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                addr.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect()
}

/// One datagram waiting in an [`Outbox`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The socket to send it from (an index into the worker's sockets).
    pub socket: usize,
    /// Where to.
    pub destination: SocketAddr,
    /// The local address to send it from (on a wildcard socket), else the socket's own.
    pub src_ip: Option<IpAddr>,
    /// Its size.
    pub len: usize,
}

/// A worker's datagrams waiting to be sent, in order. See the [module docs](self).
#[derive(Debug, Default)]
pub struct Outbox {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    /// Entries before this one are sent.
    next: usize,
    /// Bytes before this offset are sent.
    offset: usize,
}

impl Outbox {
    /// Queues one datagram; `false` (and nothing queued) when the queue is full.
    pub fn push(&mut self, entry: Entry, datagram: &[u8]) -> bool {
        if self.queued_bytes() + datagram.len() > MAX_QUEUED_BYTES {
            return false;
        }
        self.bytes.extend_from_slice(datagram);
        self.entries.push(Entry {
            len: datagram.len(),
            ..entry
        });
        true
    }

    /// Bytes waiting.
    pub fn queued_bytes(&self) -> usize {
        self.bytes.len() - self.offset
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.next == self.entries.len()
    }

    /// Sends what is queued, as runs, through `sockets`; stops at a full socket buffer and
    /// returns `true` if datagrams are still waiting for it. A run the kernel refuses is lost
    /// (and counted).
    pub fn flush(&mut self, sockets: &[&Socket], stats: &Metrics) -> bool {
        while self.next < self.entries.len() {
            let entry = self.entries[self.next];
            let Some(socket) = sockets.get(entry.socket) else {
                // No such socket (cannot happen: the worker made the entry): drop it.
                self.offset += entry.len;
                self.next += 1;
                continue;
            };
            let (count, bytes) = run(&self.entries[self.next..], socket.max_gso_segments());
            let transmit = Transmit {
                destination: entry.destination,
                ecn: None,
                contents: &self.bytes[self.offset..self.offset + bytes],
                segment_size: (count > 1).then_some(entry.len),
                src_ip: entry.src_ip,
            };
            match socket.send(&transmit) {
                Ok(()) => {
                    stats.udp_send_calls.fetch_add(1, Relaxed);
                    stats.udp_datagrams.fetch_add(count as u64, Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) => {
                    // The datagrams are lost, the viewers carry on (RTP recovers from loss; ICE
                    // notices a dead path).
                    stats.udp_send_calls.fetch_add(1, Relaxed);
                    stats.udp_send_errors.fetch_add(1, Relaxed);
                    tracing::debug!(to = %entry.destination, "UDP send of {count} datagrams failed: {e}");
                }
            }
            self.offset += bytes;
            self.next += count;
        }
        self.bytes.clear();
        self.entries.clear();
        self.next = 0;
        self.offset = 0;
        // Keep a moderate buffer, not the largest burst ever queued.
        if self.bytes.capacity() > 4 << 20 {
            self.bytes.shrink_to(1 << 20);
            self.entries.shrink_to(1024);
        }
        false
    }
}

/// The run at the start of `entries` (datagrams and bytes): one socket, address and source,
/// every datagram `entries[0].len` bytes except a shorter last one.
pub fn run(entries: &[Entry], max_segments: usize) -> (usize, usize) {
    let first = entries[0];
    let mut count = 1;
    let mut bytes = first.len;
    if first.len == 0 {
        return (count, bytes);
    }
    for e in &entries[1..] {
        if count == max_segments
            || e.socket != first.socket
            || e.destination != first.destination
            || e.src_ip != first.src_ip
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(port: u16, len: usize) -> Entry {
        Entry {
            socket: 0,
            destination: SocketAddr::from(([127, 0, 0, 1], port)),
            src_ip: None,
            len,
        }
    }

    #[test]
    fn a_run_is_one_address_and_one_size_but_a_shorter_last() {
        let fu_a = |n| vec![entry(1, 1222); n];
        let mut q = fu_a(5);
        q.push(entry(1, 700));
        q.push(entry(2, 1222));
        assert_eq!(run(&q, 64), (6, 5 * 1222 + 700));
        assert_eq!(run(&q[6..], 64), (1, 1222));
        assert_eq!(run(&[entry(1, 100), entry(1, 200)], 64), (1, 100));
        assert_eq!(run(&[entry(1, 100), entry(2, 100)], 64), (1, 100));
        let other_socket = Entry {
            socket: 1,
            ..entry(1, 100)
        };
        assert_eq!(run(&[entry(1, 100), other_socket], 64), (1, 100));
        assert_eq!(run(&vec![entry(1, 500); 100], 64).0, 64);
        assert_eq!(run(&fu_a(100), 1).0, 1);
        assert_eq!(run(&fu_a(60), 64).0, MAX_RUN_BYTES / 1222);
        assert_eq!(run(&[entry(1, 0), entry(1, 0)], 64), (1, 0));
    }

    #[test]
    fn wildcards_cover_their_family_and_expand_to_interfaces() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let bind = [ip("0.0.0.0"), ip("127.0.0.1"), ip("::1")];
        assert_eq!(bind_plan(&bind), [ip("0.0.0.0"), ip("::1")]);
        let interfaces = [
            ip("127.0.0.1"),
            ip("192.168.1.20"),
            ip("10.0.0.5"),
            ip("fe80::1"),
            ip("2001:db8::5"),
        ];
        assert_eq!(
            host_addresses(&bind, &interfaces),
            [
                ip("10.0.0.5"),
                ip("127.0.0.1"),
                ip("192.168.1.20"),
                ip("::1")
            ]
        );
        assert_eq!(
            host_addresses(&[ip("::")], &interfaces),
            [ip("2001:db8::5")]
        );
    }

    /// Datagrams queued in an outbox arrive whole and in order, one syscall per run where the
    /// kernel has UDP GSO.
    #[test]
    fn datagrams_arrive_whole_and_in_order_one_syscall_per_run() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let to = receiver.local_addr().unwrap();
        let socket = Socket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let gso = socket.max_gso_segments() > 1;
        let metrics = Metrics::default();
        let mut outbox = Outbox::default();
        let mut sent = Vec::new();
        for frame in 0..2u8 {
            for i in 0..20u8 {
                let len = if i == 19 { 333 } else { 1200 };
                sent.push(vec![frame * 20 + i; len]);
            }
        }
        for d in &sent {
            let e = Entry {
                socket: 0,
                destination: to,
                src_ip: None,
                len: 0,
            };
            assert!(outbox.push(e, d));
        }
        assert!(!outbox.flush(&[&socket], &metrics));
        assert!(outbox.is_empty());
        let mut buf = vec![0u8; 2048];
        for (i, d) in sent.iter().enumerate() {
            let n = receiver
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("datagram {i}: {e}"));
            assert_eq!(&buf[..n], &d[..], "datagram {i}");
        }
        assert_eq!(metrics.udp_datagrams.load(Relaxed), 40);
        let calls = metrics.udp_send_calls.load(Relaxed);
        if gso {
            assert_eq!(calls, 2, "syscalls for 40 datagrams");
        } else {
            eprintln!("NOTE: no UDP GSO here: {calls} syscalls for 40 datagrams");
        }
    }
}
