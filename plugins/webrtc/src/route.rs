//! Which viewer a datagram is for, when many viewers share one UDP socket.
//!
//! Each viewer's connection has its own ICE username fragment, registered before its answer
//! goes out. A viewer's first datagram is an ICE connectivity check (a STUN Binding request)
//! whose `USERNAME` is `<our ufrag>:<theirs>`: that names the viewer, and the address it came
//! from is learnt. Everything else (DTLS, SRTP, SRTCP) is routed by the address it comes from,
//! the 5-tuple ICE has bound. A Binding request is always routed by its username, so a new
//! viewer reusing a departed one's address is never taken for it.
//!
//! Pure: the worker that reads a socket asks; the message integrity of a check is verified by
//! the viewer's own ICE agent, not here.

use std::collections::HashMap;
use std::net::SocketAddr;

use rtc::stun::attributes::{ATTR_USE_CANDIDATE, ATTR_USERNAME};
use rtc::stun::message::{BINDING_REQUEST, Message, is_stun_message};
use rtc::stun::textattrs::TextAttribute;

/// The most addresses one viewer may be known by (its candidates); more are not learnt.
pub const MAX_ADDRESSES_PER_VIEWER: usize = 16;

/// The routing table of one socket. `K` names a viewer (its worker and its key there).
#[derive(Debug)]
pub struct Router<K> {
    by_ufrag: HashMap<String, K>,
    by_addr: HashMap<SocketAddr, K>,
}

impl<K> Default for Router<K> {
    fn default() -> Self {
        Self {
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
        }
    }
}

impl<K: Copy + Eq> Router<K> {
    /// Datagrams whose checks name `ufrag` go to `key`.
    pub fn register(&mut self, ufrag: &str, key: K) {
        self.by_ufrag.insert(ufrag.to_owned(), key);
    }

    /// Forgets `key`: its username and every address it was known by.
    pub fn remove(&mut self, key: K) {
        self.by_ufrag.retain(|_, k| *k != key);
        self.by_addr.retain(|_, k| *k != key);
    }

    /// Datagrams from `addr` go to `key`: a peer whose addresses are known before it sends
    /// anything (a WHIP endpoint's candidates; an ICE-lite one never sends a check to learn it
    /// by). A check naming another viewer still goes to that viewer.
    pub fn learn(&mut self, addr: SocketAddr, key: K) {
        let known = self.by_addr.values().filter(|k| **k == key).count();
        if known < MAX_ADDRESSES_PER_VIEWER {
            self.by_addr.insert(addr, key);
        }
    }

    /// The viewer a datagram from `from` is for, learning `from` when it is a check naming one.
    pub fn route(&mut self, from: SocketAddr, datagram: &[u8]) -> Option<K> {
        if let Some(ufrag) = binding_request_ufrag(datagram) {
            let key = *self.by_ufrag.get(ufrag.as_str())?;
            if self.by_addr.get(&from) != Some(&key) {
                let known = self.by_addr.values().filter(|k| **k == key).count();
                if known < MAX_ADDRESSES_PER_VIEWER {
                    self.by_addr.insert(from, key);
                }
            }
            return Some(key);
        }
        self.by_addr.get(&from).copied()
    }

    /// Viewers registered.
    pub fn len(&self) -> usize {
        self.by_ufrag.len()
    }

    /// Whether no viewer is registered.
    pub fn is_empty(&self) -> bool {
        self.by_ufrag.is_empty()
    }
}

/// Our username fragment in a STUN Binding request (`USERNAME` = `<ours>:<theirs>`), if the
/// datagram is one.
pub fn binding_request_ufrag(datagram: &[u8]) -> Option<String> {
    if !is_stun_message(datagram) {
        return None;
    }
    let mut message = Message::new();
    message.unmarshal_binary(datagram).ok()?;
    if message.typ != BINDING_REQUEST {
        return None;
    }
    let username = TextAttribute::get_from_as(&message, ATTR_USERNAME).ok()?;
    let ours = username.text.split(':').next()?;
    (!ours.is_empty()).then(|| ours.to_owned())
}

/// Whether a datagram is a STUN Binding request that nominates its pair (`USE-CANDIDATE`).
pub fn is_nominating_check(datagram: &[u8]) -> bool {
    if !is_stun_message(datagram) {
        return false;
    }
    let mut message = Message::new();
    message.unmarshal_binary(datagram).is_ok()
        && message.typ == BINDING_REQUEST
        && message.contains(ATTR_USE_CANDIDATE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::stun::message::BINDING_SUCCESS;
    use rtc::stun::message::{Setter, TransactionId};

    fn check(username: &str) -> Vec<u8> {
        let mut m = Message::new();
        m.build(&[
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId::new()),
            Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())) as Box<dyn Setter>,
        ])
        .unwrap();
        m.raw
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn checks_name_the_viewer_and_teach_its_address() {
        let mut r = Router::default();
        r.register("aaaa", 1);
        r.register("bbbb", 2);
        let dtls = [22u8, 254, 253, 0, 0];
        // Before its check, a viewer's address means nothing.
        assert_eq!(r.route(addr(5000), &dtls), None);
        assert_eq!(r.route(addr(5000), &check("aaaa:xyz")), Some(1));
        assert_eq!(r.route(addr(5000), &dtls), Some(1));
        assert_eq!(r.route(addr(6000), &check("bbbb:q")), Some(2));
        assert_eq!(r.route(addr(6000), &dtls), Some(2));
        // An unknown username, or no username: nobody's.
        assert_eq!(r.route(addr(7000), &check("cccc:q")), None);
        assert_eq!(r.route(addr(7000), &dtls), None);
        // A new viewer at a departed one's address: its check names it.
        r.remove(1);
        assert_eq!(r.route(addr(5000), &dtls), None);
        r.register("dddd", 3);
        assert_eq!(r.route(addr(5000), &check("dddd:z")), Some(3));
        assert_eq!(r.route(addr(5000), &dtls), Some(3));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn a_viewer_is_known_by_a_bounded_number_of_addresses() {
        let mut r = Router::default();
        r.register("aaaa", 1);
        for port in 0..100 {
            assert_eq!(r.route(addr(port), &check("aaaa:x")), Some(1));
        }
        let known = (0..100)
            .filter(|p| r.route(addr(*p), b"x").is_some())
            .count();
        assert_eq!(known, MAX_ADDRESSES_PER_VIEWER);
    }

    #[test]
    fn nominating_checks_are_told_apart() {
        let mut m = Message::new();
        m.build(&[
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId::new()),
            Box::new(TextAttribute::new(ATTR_USERNAME, "a:b".to_owned())) as Box<dyn Setter>,
            Box::new(rtc::ice::attributes::use_candidate::UseCandidateAttr::new()),
        ])
        .unwrap();
        assert!(is_nominating_check(&m.raw));
        assert!(!is_nominating_check(&check("a:b")));
        assert!(!is_nominating_check(b"\x16\xfe\xfd"));
    }

    #[test]
    fn only_binding_requests_carry_a_ufrag() {
        assert_eq!(
            binding_request_ufrag(&check("ab:cd")),
            Some("ab".to_owned())
        );
        assert_eq!(binding_request_ufrag(&check(":cd")), None);
        let mut m = Message::new();
        m.build(&[Box::new(BINDING_SUCCESS), Box::new(TransactionId::new())])
            .unwrap();
        assert_eq!(binding_request_ufrag(&m.raw), None);
        assert_eq!(binding_request_ufrag(b"garbage garbage garbage"), None);
        let mut truncated = check("ab:cd");
        truncated.truncate(24);
        assert_eq!(binding_request_ufrag(&truncated), None);
    }
}
