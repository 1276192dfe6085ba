//! A publication's TURN relay (RFC 8656, UDP): an allocation on a TURN server through which
//! the publication's connection reaches an endpoint it cannot reach directly.
//!
//! rtc's ICE agent takes relay candidates but never talks to a TURN server itself; its sans-IO
//! TURN client ([`rtc::turn::client::Client`]) does, and this drives it. Each offer allocates
//! afresh on the publication's thread (blocking, bounded by a timeout) on a UDP socket of its
//! own; once the answer names the endpoint's addresses, permissions for them are created there
//! too. Then the relay goes to the worker with the connection: the worker reads the socket
//! (every datagram on it is the TURN server's), hands what the server relays to the connection
//! as if it came from the peer to the relayed address, wraps what the connection sends from the
//! relayed address (a Send indication, then ChannelData once a channel is bound), and refreshes
//! the allocation and the permissions on its timers. Closing it releases the allocation.
//!
//! A socket of its own, rather than the sink's shared ones, keeps the TURN server's datagrams
//! apart from every viewer's without a routing rule, and is what a browser does too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::turn::client::{Client, ClientConfig, Event};

/// The largest datagram read from the TURN server.
const MAX_DATAGRAM: usize = 2048;
/// Datagrams read from the server per worker turn, so that a flood cannot hold up the frames.
const READS_PER_TURN: usize = 256;

/// Why a relay could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The server's name did not resolve.
    #[error("TURN server {server}: cannot resolve it: {reason}")]
    Resolve {
        /// `host:port`.
        server: String,
        /// Why.
        reason: String,
    },
    /// A socket call failed.
    #[error("TURN: UDP socket: {0}")]
    Socket(#[from] std::io::Error),
    /// The TURN client refused (bad attribute, no allocation, ...).
    #[error("TURN: {0}")]
    Client(String),
    /// The server refused the allocation (wrong credentials, quota) or a permission.
    #[error("TURN server {server} refused {what}: {reason}")]
    Refused {
        /// `host:port`.
        server: String,
        /// "the allocation", "a permission for <addr>".
        what: String,
        /// The server's error.
        reason: String,
    },
    /// No answer in time.
    #[error("TURN server {server}: no answer to {what} within {timeout:?}")]
    Timeout {
        /// `host:port`.
        server: String,
        /// What was asked.
        what: String,
        /// How long it was waited for.
        timeout: Duration,
    },
}

/// Where a publication's relay is and how to log in (from `ice_servers`, `turn_username` and
/// `turn_password`).
#[derive(Clone, PartialEq, Eq)]
pub struct TurnServer {
    /// `host:port`.
    pub server: String,
    /// The long-term credential's username.
    pub username: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for TurnServer {
    // The password is a secret: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnServer")
            .field("server", &self.server)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `host:port` of a `turn:host[:port][?transport=udp]` URL (port 3478 by default), or why not.
pub fn parse_turn_url(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("turn:")
        .ok_or_else(|| "expected turn:host[:port]".to_owned())?;
    let (hostport, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    match query {
        None | Some("transport=udp") => {}
        Some(q) => {
            return Err(format!(
                "{q:?}: only UDP to the TURN server is supported (transport=udp, or nothing)"
            ));
        }
    }
    if hostport.is_empty() || hostport.contains('/') || hostport.contains('@') {
        return Err("expected turn:host[:port]".to_owned());
    }
    // An IPv6 literal is bracketed; a port follows the last colon outside brackets.
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| "unclosed [ in the host".to_owned())?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("no host".to_owned());
    }
    let port = match port {
        None => 3478,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{p:?} is not a port"))?,
    };
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// An allocation on a TURN server and the socket it is reached through. See the
/// [module docs](self).
pub struct Relay {
    socket: UdpSocket,
    local: SocketAddr,
    server: SocketAddr,
    shown: String,
    client: Client,
    relayed: SocketAddr,
    buf: Vec<u8>,
    /// The client's next timer, as of the last [`Relay::send_pending`].
    wake: Option<Instant>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("server", &self.server)
            .field("relayed", &self.relayed)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Allocates a relayed address on `turn`, waiting at most `timeout`.
    pub fn allocate(turn: &TurnServer, timeout: Duration) -> Result<Self, RelayError> {
        let shown = turn.server.clone();
        let server = turn
            .server
            .to_socket_addrs()
            .map_err(|e| RelayError::Resolve {
                server: shown.clone(),
                reason: e.to_string(),
            })?
            .next()
            .ok_or_else(|| RelayError::Resolve {
                server: shown.clone(),
                reason: "no address".to_owned(),
            })?;
        let any = if server.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        let socket = UdpSocket::bind(SocketAddr::new(any, 0))?;
        // The address the server sees us at, for the candidate's raddr.
        socket.connect(server)?;
        let local = socket.local_addr()?;
        let crypto =
            rtc::crypto::default_provider().map_err(|e| RelayError::Client(e.to_string()))?;
        let mut client = Client::new(
            ClientConfig {
                stun_serv_addr: server.to_string(),
                turn_serv_addr: server.to_string(),
                local_addr: local,
                transport_protocol: TransportProtocol::UDP,
                username: turn.username.clone(),
                password: turn.password.clone(),
                realm: String::new(),
                software: String::new(),
                rto_in_ms: 0,
                allocation_refresh_interval_cap: None,
            },
            crypto,
        )
        .map_err(|e| RelayError::Client(e.to_string()))?;
        let tid = client
            .allocate(Instant::now())
            .map_err(|e| RelayError::Client(e.to_string()))?;
        let mut relay = Self {
            socket,
            local,
            server,
            shown,
            client,
            relayed: local,
            buf: vec![0; MAX_DATAGRAM],
            wake: None,
        };
        let what = "the allocation";
        let relayed = relay.wait(timeout, what, |event| match event {
            Event::AllocateResponse(t, addr) if *t == tid => Some(Ok(*addr)),
            Event::AllocateError(_, e) => Some(Err(e.to_string())),
            Event::TransactionTimeout(t) if *t == tid => Some(Err("no answer".to_owned())),
            _ => None,
        })?;
        relay.relayed = relayed;
        relay.socket.set_nonblocking(true)?;
        Ok(relay)
    }

    /// Permits traffic to and from each of `peers` (the endpoint's candidates), waiting at
    /// most `timeout` for the server to grant them all.
    pub fn permit(&mut self, peers: &[SocketAddr], timeout: Duration) -> Result<(), RelayError> {
        let relayed = self.relayed;
        let now = Instant::now();
        let mut pending = Vec::new();
        for peer in peers {
            let mut relay = self
                .client
                .relay(relayed)
                .map_err(|e| RelayError::Client(e.to_string()))?;
            if let Some(tid) = relay
                .create_permission(now, *peer)
                .map_err(|e| RelayError::Client(e.to_string()))?
            {
                pending.push(tid);
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        self.socket.set_nonblocking(false)?;
        let what = format!("a permission for {peers:?}");
        let result = self.wait(timeout, &what, |event| match event {
            Event::CreatePermissionResponse(t, _) => {
                pending.retain(|p| p != t);
                pending.is_empty().then_some(Ok(()))
            }
            Event::CreatePermissionError(_, e) => Some(Err(e.to_string())),
            Event::TransactionTimeout(t) if pending.contains(t) => {
                Some(Err("no answer".to_owned()))
            }
            _ => None,
        });
        self.socket.set_nonblocking(true)?;
        if pending.is_empty() { Ok(()) } else { result }
    }

    /// Drives the client on a blocking socket until `done` says so, or `timeout`.
    fn wait<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&Event) -> Option<Result<T, String>>,
    ) -> Result<T, RelayError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.send_pending();
            while let Some(event) = self.client.poll_event() {
                if let Some(result) = done(&event) {
                    return result.map_err(|reason| RelayError::Refused {
                        server: self.shown.clone(),
                        what: what.to_owned(),
                        reason,
                    });
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(RelayError::Timeout {
                    server: self.shown.clone(),
                    what: what.to_owned(),
                    timeout,
                });
            }
            let next = self
                .client
                .poll_timeout()
                .map_or(deadline, |t| t.min(deadline));
            let wait = next
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            self.socket.set_read_timeout(Some(wait))?;
            match self.socket.recv(&mut self.buf) {
                Ok(n) => self.hand_in(Instant::now(), n),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // An ICMP error for an earlier send (the server is not there): retransmitted
                // on the client's timer until its transaction times out.
                Err(_) => {}
            }
            let now = Instant::now();
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                let _ = self.client.handle_timeout(now);
            }
        }
    }

    fn hand_in(&mut self, now: Instant, n: usize) {
        let message = BytesMut::from(&self.buf[..n]);
        if let Err(e) = self.client.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.local,
                peer_addr: self.server,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message,
        }) {
            tracing::debug!(server = %self.shown, "TURN: a datagram from the server refused: {e}");
        }
    }

    /// The relayed address (the relay candidate's).
    pub fn relayed(&self) -> SocketAddr {
        self.relayed
    }

    /// The local socket's address (the relay candidate's base).
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The socket's descriptor, for the worker's poll.
    pub fn raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Reads what the server sent (until the socket is empty, or a bounded number), and hands
    /// what it relayed from peers to `deliver` (the peer's address, the payload).
    pub fn read(&mut self, now: Instant, mut deliver: impl FnMut(SocketAddr, BytesMut)) {
        for _ in 0..READS_PER_TURN {
            match self.socket.recv(&mut self.buf) {
                Ok(n) => self.hand_in(now, n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(server = %self.shown, "TURN: UDP receive: {e}");
                }
            }
        }
        // At most one event per datagram read: bounded like the reads.
        while let Some(event) = self.client.poll_event() {
            match event {
                Event::DataIndicationOrChannelData(_, from, data) => deliver(from, data),
                Event::AllocateError(_, e) | Event::CreatePermissionError(_, e) => {
                    tracing::warn!(server = %self.shown, "TURN: refresh refused: {e}");
                }
                _ => {}
            }
        }
    }

    /// Sends `datagram` to `peer` through the relay; `false` if it could not be (no
    /// permission for that address).
    pub fn send(&mut self, now: Instant, peer: SocketAddr, datagram: &[u8]) -> bool {
        match self.client.relay(self.relayed) {
            Ok(mut relay) => relay.send_to(now, datagram, peer).is_ok(),
            Err(_) => false,
        }
    }

    /// Writes what the client has queued to the server (a full socket buffer drops it, as any
    /// UDP loss), and notes when its timers are due.
    pub fn send_pending(&mut self) {
        while let Some(out) = self.client.poll_write() {
            if let Err(e) = self.socket.send(&out.message) {
                tracing::debug!(server = %self.shown, "TURN: UDP send: {e}");
            }
        }
        self.wake = self.client.poll_timeout();
    }

    /// When the client must run next (a retransmission, a refresh), as of the last
    /// [`Relay::send_pending`].
    pub fn next_wake(&self) -> Option<Instant> {
        self.wake
    }

    /// Runs the client's timers due at `now` (retransmissions, refreshes).
    pub fn timeout(&mut self, now: Instant) {
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            let _ = self.client.handle_timeout(now);
        }
    }

    /// Releases the allocation (a Refresh with lifetime 0, not waited for).
    pub fn close(&mut self, now: Instant) {
        if let Ok(mut relay) = self.client.relay(self.relayed) {
            let _ = relay.close(now);
        }
        self.send_pending();
        let _ = self.client.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_urls() {
        for (url, want) in [
            ("turn:turn.lan", Ok("turn.lan:3478")),
            ("turn:turn.lan:3479", Ok("turn.lan:3479")),
            ("turn:127.0.0.1:5000?transport=udp", Ok("127.0.0.1:5000")),
            ("turn:[::1]:5000", Ok("[::1]:5000")),
            ("turn:[::1]", Ok("[::1]:3478")),
            ("turn:turn.lan?transport=tcp", Err("only UDP")),
            ("turn:", Err("expected")),
            ("turn::3478", Err("no host")),
            ("turn:turn.lan:0", Err("not a port")),
            ("turn:turn.lan:x", Err("not a port")),
            ("turn:u@turn.lan", Err("expected")),
            ("turns:turn.lan", Err("expected")),
        ] {
            match (parse_turn_url(url), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{url}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{url}: {got}"),
                (got, want) => panic!("{url}: {got:?}, expected {want:?}"),
            }
        }
    }

    #[test]
    fn the_password_is_never_shown() {
        let t = TurnServer {
            server: "t:1".to_owned(),
            username: "u".to_owned(),
            password: "s3cret".to_owned(),
        };
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
