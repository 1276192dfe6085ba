//! One UDP port for every viewer (`udp_port`), firewall and NAT friendly.
//!
//! webrtc-rs binds a socket per connection and has no UDP mux yet, but it creates every
//! socket through its [`Runtime`](webrtc::runtime::Runtime): [`MuxConnection`] drops the
//! connection's own socket and hands back a [`VirtualSocket`] on the shared one instead.
//! Datagrams arriving on the shared port are demultiplexed:
//! - by source address, once a viewer's address is known;
//! - a STUN request by its `USERNAME` (`<our ufrag>:<theirs>`): each connection gets its own
//!   ufrag (set with `SettingEngine::with_ice_credentials`), so a viewer's first check says
//!   whose it is;
//! - a STUN response by the transaction id of the request it answers.
//!
//! The connection still believes its socket is the ephemeral one it bound, so its host
//! candidates carry that port: [`UdpMux::rewrite_candidates`] puts the shared port in the
//! answer instead.

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use webrtc::runtime::{AsyncUdpSocket, RecvMeta, Runtime, TokioRuntime, Transmit};

/// Datagrams queued for one connection before newer ones are dropped (a connection that does
/// not read is stuck anyway; this bounds what it can pin).
const INBOX_DATAGRAMS: usize = 1024;
/// STUN transactions remembered for routing their responses.
const MAX_TRANSACTIONS: usize = 4096;
/// The largest datagram read.
const MAX_DATAGRAM: usize = 2048;
/// STUN's magic cookie (RFC 5389).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

/// The shared sockets and the routing table.
#[derive(Debug)]
pub struct UdpMux {
    /// webrtc-rs's own socket type (quinn-udp underneath): GSO sends, GRO receives.
    sockets: Vec<Arc<dyn AsyncUdpSocket>>,
    port: u16,
    routes: Mutex<Routes>,
}

#[derive(Debug, Default)]
struct Routes {
    by_ufrag: HashMap<String, Weak<Inbox>>,
    by_addr: HashMap<SocketAddr, Weak<Inbox>>,
    by_transaction: HashMap<[u8; 12], Weak<Inbox>>,
}

/// One connection's received datagrams.
#[derive(Debug, Default)]
struct Inbox {
    queue: Mutex<VecDeque<(Vec<u8>, SocketAddr)>>,
    waker: Mutex<Option<Waker>>,
}

impl Inbox {
    fn push(&self, datagram: &[u8], from: SocketAddr) {
        let mut queue = lock(&self.queue);
        if queue.len() < INBOX_DATAGRAMS {
            queue.push_back((datagram.to_vec(), from));
        }
        drop(queue);
        if let Some(waker) = lock(&self.waker).take() {
            waker.wake();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl UdpMux {
    /// Binds `port` on each of `ips` (a wildcard serves every interface) and starts reading.
    pub fn bind(
        ips: &[IpAddr],
        port: u16,
        runtime: &tokio::runtime::Handle,
    ) -> io::Result<Arc<Self>> {
        let _enter = runtime.enter();
        let mut sockets = Vec::new();
        for ip in ips {
            let std = std::net::UdpSocket::bind(SocketAddr::new(*ip, port)).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot bind UDP {ip}:{port}: {e}"))
            })?;
            sockets.push(TokioRuntime.wrap_udp_socket(std)?);
        }
        let mux = Arc::new(Self {
            sockets,
            port,
            routes: Mutex::default(),
        });
        for socket in &mux.sockets {
            let weak = Arc::downgrade(&mux);
            let socket = Arc::clone(socket);
            runtime.spawn(async move {
                // Room for as many coalesced datagrams as the kernel may hand over at once.
                let mut buf = vec![0u8; MAX_DATAGRAM * socket.max_gro_segments().max(1)];
                loop {
                    let mut meta = [RecvMeta::default()];
                    let received = std::future::poll_fn(|cx| {
                        let mut bufs = [IoSliceMut::new(&mut buf)];
                        socket.poll_recv(cx, &mut bufs, &mut meta)
                    })
                    .await;
                    let Some(mux) = weak.upgrade() else { return };
                    match received {
                        Ok(n) if n > 0 => {
                            let [m] = meta;
                            // GRO: consecutive datagrams of one sender, `stride` bytes each.
                            for datagram in buf[..m.len].chunks(m.stride.max(1)) {
                                mux.route(datagram, m.addr);
                            }
                        }
                        Ok(_) => {}
                        // ICMP errors surface here as ECONNREFUSED: not fatal for the others.
                        Err(e) if is_transient(&e) => {}
                        Err(e) => {
                            tracing::error!("shared UDP port {}: {e}", mux.port);
                            return;
                        }
                    }
                }
            });
        }
        Ok(mux)
    }

    /// The shared port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn route(&self, datagram: &[u8], from: SocketAddr) {
        let mut routes = lock(&self.routes);
        let inbox = match routes.by_addr.get(&from).and_then(Weak::upgrade) {
            Some(inbox) => Some(inbox),
            None => match stun(datagram) {
                Some(Stun::Request {
                    ufrag: Some(ufrag), ..
                }) => {
                    let inbox = routes.by_ufrag.get(ufrag).and_then(Weak::upgrade);
                    if let Some(inbox) = &inbox {
                        routes.by_addr.insert(from, Arc::downgrade(inbox));
                    }
                    inbox
                }
                Some(Stun::Response { transaction }) => routes
                    .by_transaction
                    .remove(&transaction)
                    .and_then(|w| w.upgrade()),
                Some(Stun::Request { ufrag: None, .. }) | None => None,
            },
        };
        drop(routes);
        // Nobody's: a stray or late datagram, dropped.
        if let Some(inbox) = inbox {
            inbox.push(datagram, from);
        }
    }

    fn socket_for(&self, ip: IpAddr) -> Option<&Arc<dyn AsyncUdpSocket>> {
        let local = |s: &&Arc<dyn AsyncUdpSocket>| s.local_addr().ok();
        self.sockets
            .iter()
            .find(|s| local(s).is_some_and(|a| a.ip() == ip))
            .or_else(|| {
                self.sockets.iter().find(|s| {
                    local(s).is_some_and(|a| a.ip().is_unspecified() && a.is_ipv4() == ip.is_ipv4())
                })
            })
    }

    /// The host candidates of an answer, with the connection's own ports replaced by the
    /// shared one.
    pub fn rewrite_candidates(&self, sdp: &str, bound: &[SocketAddr]) -> String {
        let mut out = String::with_capacity(sdp.len());
        for line in sdp.split_inclusive('\n') {
            let body = line.trim_end_matches(['\r', '\n']);
            let ending = &line[body.len()..];
            let mut fields: Vec<&str> = body.split(' ').collect();
            let rewritten = body.starts_with("a=candidate:")
                && fields.len() > 7
                && fields[7] == "host"
                && bound.iter().any(|a| {
                    fields[4].parse::<IpAddr>().is_ok_and(|ip| ip == a.ip())
                        && fields[5] == a.port().to_string()
                });
            if rewritten {
                let port = self.port.to_string();
                fields[5] = &port;
                out.push_str(&fields.join(" "));
                out.push_str(ending);
            } else {
                out.push_str(line);
            }
        }
        out
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    )
}

/// What routing needs of a STUN message.
#[derive(Debug, PartialEq, Eq)]
enum Stun<'a> {
    /// A request (or indication): its transaction id, and our ufrag from `USERNAME` when it
    /// is a connectivity check.
    Request {
        transaction: [u8; 12],
        ufrag: Option<&'a str>,
    },
    /// A success or error response: its transaction id.
    Response { transaction: [u8; 12] },
}

/// Parses the little of STUN that routing needs; `None` for anything else (DTLS, SRTP).
fn stun(datagram: &[u8]) -> Option<Stun<'_>> {
    if datagram.len() < 20 || datagram[0] & 0xc0 != 0 || datagram[4..8] != MAGIC_COOKIE {
        return None;
    }
    let kind = u16::from_be_bytes([datagram[0], datagram[1]]);
    let class = ((kind >> 7) & 0x2) | ((kind >> 4) & 0x1);
    let transaction: [u8; 12] = datagram[8..20].try_into().ok()?;
    if class == 0b10 || class == 0b11 {
        return Some(Stun::Response { transaction });
    }
    let mut ufrag = None;
    let mut rest = &datagram[20..];
    while rest.len() >= 4 {
        let attr = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let Some(value) = rest.get(4..4 + len) else {
            break;
        };
        if attr == 0x0006 {
            ufrag = std::str::from_utf8(value)
                .ok()
                .and_then(|username| username.split(':').next());
            break;
        }
        rest = rest.get(4 + len.next_multiple_of(4)..).unwrap_or_default();
    }
    Some(Stun::Request { transaction, ufrag })
}

/// A connection's socket on the shared port.
#[derive(Debug)]
pub struct VirtualSocket {
    mux: Arc<UdpMux>,
    socket: Arc<dyn AsyncUdpSocket>,
    inbox: Arc<Inbox>,
    local: SocketAddr,
    ufrag: String,
}

impl AsyncUdpSocket for VirtualSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        // A STUN request of ours (a check, or to a STUN server): its answer is routed back here.
        // A GSO run holds several datagrams, each `segment_size` bytes.
        let segment = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        for datagram in transmit.contents.chunks(segment) {
            if let Some(Stun::Request { transaction, .. }) = stun(datagram) {
                let mut routes = lock(&self.mux.routes);
                if routes.by_transaction.len() >= MAX_TRANSACTIONS {
                    routes.by_transaction.retain(|_, w| w.strong_count() > 0);
                    if routes.by_transaction.len() >= MAX_TRANSACTIONS {
                        routes.by_transaction.clear();
                    }
                }
                routes
                    .by_transaction
                    .insert(transaction, Arc::downgrade(&self.inbox));
            }
        }
        self.socket.poll_send(cx, transmit)
    }

    fn max_gso_segments(&self) -> usize {
        self.socket.max_gso_segments()
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(m)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        let mut queue = lock(&self.inbox.queue);
        let Some((datagram, from)) = queue.pop_front() else {
            // Registered under the queue's lock: a push after this sees the waker.
            *lock(&self.inbox.waker) = Some(cx.waker().clone());
            return Poll::Pending;
        };
        drop(queue);
        let n = datagram.len().min(buf.len());
        buf[..n].copy_from_slice(&datagram[..n]);
        let mut received = RecvMeta::default();
        received.addr = from;
        received.len = n;
        received.stride = n.max(1);
        received.dst_ip = Some(self.local.ip());
        *m = received;
        Poll::Ready(Ok(1))
    }
}

impl Drop for VirtualSocket {
    fn drop(&mut self) {
        let mut routes = lock(&self.mux.routes);
        routes.by_ufrag.remove(&self.ufrag);
        let ours = Arc::downgrade(&self.inbox);
        let keep = |w: &Weak<Inbox>| w.strong_count() > 0 && !Weak::ptr_eq(w, &ours);
        routes.by_addr.retain(|_, w| keep(w));
        routes.by_transaction.retain(|_, w| keep(w));
    }
}

/// One connection's sockets on the shared port. It knows the connection's ufrag, and what the
/// connection bound (and believes are its candidates). [`crate::batch::SinkRuntime`] asks it
/// for the connection's sockets.
#[derive(Debug)]
pub struct MuxConnection {
    mux: Arc<UdpMux>,
    ufrag: String,
    bound: Mutex<Vec<SocketAddr>>,
}

impl MuxConnection {
    /// The sockets of the connection whose ICE ufrag is `ufrag`.
    pub fn new(mux: Arc<UdpMux>, ufrag: String) -> Arc<Self> {
        Arc::new(Self {
            mux,
            ufrag,
            bound: Mutex::default(),
        })
    }

    /// The addresses the connection bound (and believes are its candidates).
    pub fn bound(&self) -> Vec<SocketAddr> {
        lock(&self.bound).clone()
    }

    /// In place of the socket the connection bound: a [`VirtualSocket`] on the shared port
    /// (the bound one is closed), or the socket itself on an address the mux does not serve.
    pub fn wrap_udp_socket(
        &self,
        socket: std::net::UdpSocket,
    ) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let local = socket.local_addr()?;
        let Some(shared) = self.mux.socket_for(local.ip()) else {
            // An address the mux does not serve (mDNS, say): a socket of its own.
            return TokioRuntime.wrap_udp_socket(socket);
        };
        drop(socket);
        lock(&self.bound).push(local);
        let inbox = Arc::new(Inbox::default());
        lock(&self.mux.routes)
            .by_ufrag
            .insert(self.ufrag.clone(), Arc::downgrade(&inbox));
        Ok(Arc::new(VirtualSocket {
            mux: Arc::clone(&self.mux),
            socket: Arc::clone(shared),
            inbox,
            local: SocketAddr::new(local.ip(), self.mux.port),
            ufrag: self.ufrag.clone(),
        }))
    }
}

/// A random ICE ufrag (8 characters) and password (24), for [`MuxConnection`].
pub fn ice_credentials() -> (String, String) {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = [0u8; 32];
    // Without randomness the ufrags would repeat: fall back to the time, still unique enough
    // per connection for routing.
    if getrandom::getrandom(&mut bytes).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..16].copy_from_slice(&t.to_le_bytes());
    }
    let text: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    (text[..8].to_owned(), text[8..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &str, transaction: [u8; 12]) -> Vec<u8> {
        let mut m = vec![0x00, 0x01, 0, 0];
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&transaction);
        m.extend_from_slice(&[0x00, 0x06]);
        m.extend_from_slice(&(username.len() as u16).to_be_bytes());
        m.extend_from_slice(username.as_bytes());
        m.resize(m.len().next_multiple_of(4), 0);
        let len = (m.len() - 20) as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    }

    #[test]
    fn stun_requests_name_their_ufrag_and_responses_their_transaction() {
        let req = binding_request("abcd1234:remote99", [7; 12]);
        assert_eq!(
            stun(&req),
            Some(Stun::Request {
                transaction: [7; 12],
                ufrag: Some("abcd1234")
            })
        );
        let mut response = req.clone();
        response[0] = 0x01; // binding success response: class bits 0b10
        response[1] = 0x01;
        assert_eq!(
            stun(&response),
            Some(Stun::Response {
                transaction: [7; 12]
            })
        );
        // DTLS and RTP are not STUN.
        assert_eq!(
            stun(&[
                22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            ]),
            None
        );
        assert_eq!(stun(&[0x80; 40]), None);
    }

    #[test]
    fn candidates_get_the_shared_port() {
        let mux = UdpMux {
            sockets: Vec::new(),
            port: 8555,
            routes: Mutex::default(),
        };
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40001 typ host\r\n\
                   a=candidate:2 1 udp 1694498815 203.0.113.5 61000 typ srflx raddr 127.0.0.1 rport 40001\r\n\
                   a=candidate:3 1 udp 2130706431 10.0.0.2 40001 typ host\r\n";
        let out = mux.rewrite_candidates(sdp, &["127.0.0.1:40001".parse().unwrap()]);
        assert!(out.contains("127.0.0.1 8555 typ host\r\n"), "{out}");
        assert!(out.contains("203.0.113.5 61000 typ srflx"), "{out}");
        assert!(out.contains("10.0.0.2 40001 typ host"), "not ours: {out}");
    }

    #[test]
    fn credentials_are_long_enough_for_ice() {
        let (ufrag, pwd) = ice_credentials();
        assert_eq!((ufrag.len(), pwd.len()), (8, 24));
        assert_ne!(ice_credentials().0, ufrag);
    }
}
