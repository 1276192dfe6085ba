//! systemd's notification protocol (`sd_notify`), without libsystemd: datagrams of `KEY=VALUE`
//! lines to the socket named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
//!
//! stackctl sends `READY=1` once every required service is ready, `STATUS=` on state changes,
//! `WATCHDOG=1` from its main loop at half of `WATCHDOG_USEC`, and `STOPPING=1` on shutdown.
//! Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A connection to the service manager, or nothing when not run by one.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` through `var` (the process
    /// environment in production). A watchdog meant for another pid is ignored, as systemd asks.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> io::Result<Self> {
        let target = match var("NOTIFY_SOCKET").filter(|s| !s.is_empty()) {
            Some(name) => {
                let addr = match name.strip_prefix('@') {
                    Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name)?,
                    None => SocketAddr::from_pathname(&name)?,
                };
                Some((UnixDatagram::unbound()?, addr))
            }
            None => None,
        };
        let for_us = var("WATCHDOG_PID")
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_none_or(|pid| pid == std::process::id());
        let watchdog = var("WATCHDOG_USEC")
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|&usec| usec > 0 && for_us)
            .map(Duration::from_micros);
        Ok(Self { target, watchdog })
    }

    /// True when a service manager listens.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// How often to send `WATCHDOG=1`: half the manager's timeout, or `None` without a watchdog.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.is_enabled()).map(|t| t / 2)
    }

    /// Sends one message (lines of `KEY=VALUE`).
    pub fn send(&self, message: &str) -> io::Result<()> {
        match &self.target {
            Some((socket, addr)) => socket.send_to_addr(message.as_bytes(), addr).map(drop),
            None => Ok(()),
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) -> io::Result<()> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// `STATUS=...`.
    pub fn status(&self, status: &str) -> io::Result<()> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    /// `WATCHDOG=1`.
    pub fn watchdog(&self) -> io::Result<()> {
        self.send("WATCHDOG=1")
    }

    /// `STOPPING=1` with a status line.
    pub fn stopping(&self, status: &str) -> io::Result<()> {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)))
    }
}

/// A status must stay one line or it would be read as further assignments.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).expect("bind");
        let vars = [
            ("NOTIFY_SOCKET", path.display().to_string()),
            ("WATCHDOG_USEC", "4000000".to_owned()),
        ];
        let n = Notifier::from_env(env(&vars)).expect("notifier");
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(2)));
        n.ready("3 services\nready").expect("send");
        assert_eq!(recv(&listener), "READY=1\nSTATUS=3 services ready");
        n.watchdog().expect("send");
        assert_eq!(recv(&listener), "WATCHDOG=1");
        n.stopping("bye").expect("send");
        assert_eq!(recv(&listener), "STOPPING=1\nSTATUS=bye");
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        let name = format!("stackctl-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(&name).expect("abstract name");
        let listener = UnixDatagram::bind_addr(&addr).expect("bind");
        let vars = [("NOTIFY_SOCKET", format!("@{name}"))];
        let n = Notifier::from_env(env(&vars)).expect("notifier");
        n.status("starting").expect("send");
        assert_eq!(recv(&listener), "STATUS=starting");
    }

    #[test]
    fn without_a_manager_nothing_is_sent_and_a_foreign_watchdog_is_ignored() {
        let n = Notifier::from_env(|_| None).expect("notifier");
        assert!(!n.is_enabled());
        n.ready("x").expect("a no-op succeeds");
        let vars = [
            ("NOTIFY_SOCKET", "@x".to_owned()),
            ("WATCHDOG_USEC", "1000".to_owned()),
            ("WATCHDOG_PID", "1".to_owned()),
        ];
        assert_eq!(
            Notifier::from_env(env(&vars))
                .expect("n")
                .watchdog_interval(),
            None
        );
    }
}
