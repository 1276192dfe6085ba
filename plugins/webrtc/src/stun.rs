//! Server-reflexive candidates: the public address a STUN server sees for each of the sink's
//! sockets (`stun = ["stun:host:port"]`), asked once at start and refreshed, so that a viewer
//! outside the board's NAT can reach it.
//!
//! The sink gathers once for all its viewers, on the sockets they share, instead of once per
//! viewer. `turn:` and `stuns:` URLs are advertised to viewers (their browser may relay through
//! them) but not used by the sink itself.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use rtc::stun::message::{
    BINDING_REQUEST, BINDING_SUCCESS, Getter, Message, Setter, TransactionId,
};
use rtc::stun::xoraddr::XorMappedAddress;

use crate::peer::Candidate;
use crate::udp::{Entry, Outbox, Socket};

/// Between requests while no server has answered.
const RETRY: Duration = Duration::from_millis(500);
/// Between requests once one has (NAT bindings expire when idle).
const REFRESH: Duration = Duration::from_secs(30);
/// Requests without an answer before answers stop waiting for one.
const GIVE_UP_AFTER: u32 = 4;
/// Transactions remembered.
const MAX_PENDING: usize = 256;

/// The default STUN port.
const STUN_PORT: u16 = 3478;

/// The host and port of a `stun:` URL (RFC 7064: `stun:host[:port]`); `None` for other
/// schemes.
pub fn stun_host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("stun:")?;
    let rest = rest.split('?').next()?;
    if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => STUN_PORT,
        };
        return Some((host.to_owned(), port));
    }
    match rest.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((rest.to_owned(), STUN_PORT)),
    }
}

/// Resolves the `stun:` URLs among `urls` (a blocking DNS lookup: call it off the workers).
pub fn resolve(urls: &[String]) -> Vec<(String, SocketAddr)> {
    let mut out = Vec::new();
    for url in urls {
        let Some((host, port)) = stun_host_port(url) else {
            continue;
        };
        match (host.as_str(), port).to_socket_addrs() {
            Ok(addrs) => out.extend(addrs.map(|a| (url.clone(), a))),
            Err(e) => tracing::warn!("STUN server {url}: cannot resolve {host}: {e}"),
        }
    }
    out
}

/// Asks the STUN servers for each socket's public address. Pure but for the datagrams it
/// queues; the worker that reads the sockets owns it.
#[derive(Debug, Default)]
pub struct Gatherer {
    servers: Vec<(String, SocketAddr)>,
    pending: HashMap<[u8; 12], usize>,
    found: Vec<Option<SocketAddr>>,
    next: Option<Instant>,
    unanswered: u32,
    gave_up: bool,
}

impl Gatherer {
    /// Starts asking `servers` for each of `sockets` sockets, from `now`.
    pub fn set_servers(
        &mut self,
        servers: Vec<(String, SocketAddr)>,
        sockets: usize,
        now: Instant,
    ) {
        self.next = (!servers.is_empty()).then_some(now);
        self.servers = servers;
        self.found = vec![None; sockets];
    }

    /// Whether there is no server to ask.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// When to ask next.
    pub fn next_wake(&self) -> Option<Instant> {
        self.next
    }

    /// Queues a request to each server from each socket of its family. Returns `true` once,
    /// when no server has answered after a few tries (answers then stop waiting for it).
    pub fn poll(&mut self, now: Instant, sockets: &[&Socket], outbox: &mut Outbox) -> bool {
        if self.pending.len() > MAX_PENDING {
            self.pending.clear();
        }
        for (i, socket) in sockets.iter().enumerate() {
            let v4 = socket.local_addr().is_ipv4();
            for (_, server) in self.servers.iter().filter(|(_, s)| s.is_ipv4() == v4) {
                let mut m = Message::new();
                let transaction = TransactionId::new();
                if m.build(&[
                    Box::new(BINDING_REQUEST),
                    Box::new(transaction) as Box<dyn Setter>,
                ])
                .is_err()
                {
                    continue;
                }
                self.pending.insert(transaction.0, i);
                let entry = Entry {
                    socket: i,
                    destination: *server,
                    src_ip: None,
                    len: m.raw.len(),
                };
                outbox.push(entry, &m.raw);
            }
        }
        let answered = self.found.iter().any(Option::is_some);
        self.unanswered = if answered { 0 } else { self.unanswered + 1 };
        self.next = Some(now + if answered { REFRESH } else { RETRY });
        if !answered && self.unanswered >= GIVE_UP_AFTER && !self.gave_up {
            self.gave_up = true;
            tracing::warn!(
                servers = ?self.servers.iter().map(|s| &s.0).collect::<Vec<_>>(),
                "no STUN server answered: answering viewers with host candidates only (still asking)"
            );
            return true;
        }
        false
    }

    /// A datagram nobody else claimed, read on socket `socket` from `from`: the public address
    /// of that socket if it is a STUN server's answer to one of our requests.
    pub fn answer(
        &mut self,
        socket: usize,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Option<SocketAddr> {
        if !self.servers.iter().any(|(_, s)| *s == from) {
            return None;
        }
        let mut m = Message::new();
        m.unmarshal_binary(datagram).ok()?;
        if m.typ != BINDING_SUCCESS || self.pending.remove(&m.transaction_id.0) != Some(socket) {
            return None;
        }
        let mut mapped = XorMappedAddress::default();
        mapped.get_from(&m).ok()?;
        let addr = SocketAddr::new(mapped.ip, mapped.port);
        let slot = self.found.get_mut(socket)?;
        if *slot != Some(addr) {
            tracing::info!(public = %addr, "STUN: the sink's public address");
        }
        *slot = Some(addr);
        Some(addr)
    }

    /// The server-reflexive candidates found so far (one per socket whose public address is
    /// not one of `hosts` already), based on the host address of each socket's port.
    pub fn candidates(&self, hosts: &[SocketAddr], sockets: &[SocketAddr]) -> Vec<Candidate> {
        self.found
            .iter()
            .zip(sockets)
            .filter_map(|(found, local)| {
                let addr = (*found)?;
                if hosts.contains(&addr) {
                    return None;
                }
                let base = hosts
                    .iter()
                    .find(|h| h.port() == local.port() && h.is_ipv4() == local.is_ipv4())
                    .copied()
                    .unwrap_or_else(|| {
                        let ip = if local.ip().is_unspecified() {
                            addr.ip()
                        } else {
                            local.ip()
                        };
                        SocketAddr::new(ip, local.port())
                    });
                Some(Candidate::Reflexive { addr, base })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_urls() {
        let hp = |u: &str| stun_host_port(u);
        assert_eq!(
            hp("stun:stun.example.net:3479"),
            Some(("stun.example.net".into(), 3479))
        );
        assert_eq!(
            hp("stun:stun.example.net"),
            Some(("stun.example.net".into(), 3478))
        );
        assert_eq!(
            hp("stun:[2001:db8::1]:19302"),
            Some(("2001:db8::1".into(), 19302))
        );
        assert_eq!(hp("stun:[2001:db8::1]"), Some(("2001:db8::1".into(), 3478)));
        assert_eq!(hp("turn:relay.example.net:3478"), None);
        assert_eq!(hp("stuns:secure.example.net"), None);
        assert_eq!(hp("stun:host:port"), None);
    }

    /// A STUN server on loopback answers; the gatherer finds the socket's address (on
    /// loopback, the socket's own) and asks again later.
    #[test]
    fn a_server_answer_gives_the_public_address() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let socket = Socket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let metrics = crate::metrics::Metrics::default();
        let mut g = Gatherer::default();
        let t0 = Instant::now();
        g.set_servers(
            vec![("stun:test".into(), server.local_addr().unwrap())],
            1,
            t0,
        );
        assert_eq!(g.next_wake(), Some(t0));
        let mut outbox = Outbox::default();
        assert!(!g.poll(t0, &[&socket], &mut outbox));
        outbox.flush(&[&socket], &metrics);
        let mut buf = [0u8; 1500];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        let mut request = Message::new();
        request.unmarshal_binary(&buf[..n]).unwrap();
        assert_eq!(request.typ, BINDING_REQUEST);
        let mut reply = Message::new();
        reply
            .build(&[
                Box::new(BINDING_SUCCESS),
                Box::new(request.transaction_id),
                Box::new(XorMappedAddress {
                    ip: from.ip(),
                    port: from.port(),
                }) as Box<dyn Setter>,
            ])
            .unwrap();
        // Not from the server: ignored. From it: the address.
        assert_eq!(g.answer(0, from, &reply.raw), None);
        assert_eq!(
            g.answer(0, server.local_addr().unwrap(), &reply.raw),
            Some(from)
        );
        assert_eq!(
            g.answer(0, server.local_addr().unwrap(), &reply.raw),
            None,
            "once"
        );
        // Its own host address: no extra candidate.
        assert!(g.candidates(&[from], &[from]).is_empty());
        let public: SocketAddr = "203.0.113.7:40000".parse().unwrap();
        g.found[0] = Some(public);
        assert_eq!(
            g.candidates(&[from], &[from]),
            [Candidate::Reflexive {
                addr: public,
                base: from
            }]
        );
        assert!(!g.poll(t0, &[&socket], &mut outbox));
        assert_eq!(g.next_wake(), Some(t0 + REFRESH));
    }

    #[test]
    fn it_gives_up_waiting_once_but_keeps_asking() {
        let socket = Socket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut g = Gatherer::default();
        let t0 = Instant::now();
        g.set_servers(
            vec![("stun:x".into(), "127.0.0.1:9".parse().unwrap())],
            1,
            t0,
        );
        let mut outbox = Outbox::default();
        let gave_up: Vec<bool> = (0..6)
            .map(|_| g.poll(t0, &[&socket], &mut outbox))
            .collect();
        assert_eq!(gave_up, [false, false, false, true, false, false]);
        assert_eq!(g.next_wake(), Some(t0 + RETRY));
    }
}
