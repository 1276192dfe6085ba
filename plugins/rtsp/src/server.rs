//! The server: its listener, its sessions, and the reaper that ends sessions whose clients
//! went silent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::Auth;
use crate::config::Config;
use crate::feed::Feed;
use crate::machine::State;
use crate::metrics::{CloseReason, Metrics, Snapshot};
use crate::session::{Session, Transport};
use crate::udp::PortPool;

/// How often sessions are checked for their time-out.
const REAP_EVERY: Duration = Duration::from_millis(250);

/// Connections open at once beyond `max_clients` (clients that DESCRIBE only, probes).
const SPARE_CONNECTIONS: usize = 16;

/// Why a session could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("maximum clients reached ({0})")]
pub struct Full(pub usize);

/// Everything the connections share.
pub struct Server {
    /// The configuration, validated.
    pub config: Config,
    /// The frames.
    pub feed: Feed,
    /// The counters.
    pub metrics: Metrics,
    /// Users, when set.
    pub auth: Option<Auth>,
    /// UDP port pairs, when UDP is offered.
    pub ports: Option<Arc<Mutex<PortPool>>>,
    /// The `o=` id of the SDP.
    pub sdp_session_id: u64,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    connections: AtomicUsize,
    next_id: AtomicU64,
    stopping: watch::Sender<bool>,
}

impl Server {
    /// A server for `config` (validated).
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(Self {
            feed: Feed::new(config.client_queue, config.gop_cache),
            metrics: Metrics::default(),
            auth: Auth::new(&config.users, &config.realm, &config.auth),
            ports: config
                .udp_range()
                .map(|(first, last)| Arc::new(Mutex::new(PortPool::new(first, last)))),
            sdp_session_id: u64::from(crate::random::u32()),
            sessions: Mutex::default(),
            connections: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            stopping: watch::Sender::new(false),
            config,
        })
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh id for a connection or a session's feed key.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Relaxed)
    }

    /// Accepts connections until [`stop`](Self::stop), and ends silent sessions.
    pub async fn run(self: Arc<Self>, listener: TcpListener) {
        let mut stopping = self.stopping.subscribe();
        let mut reap = tokio::time::interval(REAP_EVERY);
        reap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let max_connections = self.config.max_clients + SPARE_CONNECTIONS;
        loop {
            tokio::select! {
                () = until_set(&mut stopping) => break,
                _ = reap.tick() => self.reap(Instant::now()),
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        self.metrics.connections_total.fetch_add(1, Relaxed);
                        if self.connections.load(Relaxed) >= max_connections {
                            self.metrics.connections_refused.fetch_add(1, Relaxed);
                            tracing::warn!(%peer, max_connections, "too many RTSP connections: closing the new one");
                            drop(stream);
                            continue;
                        }
                        self.connections.fetch_add(1, Relaxed);
                        let server = Arc::clone(&self);
                        tokio::spawn(async move {
                            crate::conn::serve(Arc::clone(&server), stream, peer).await;
                            server.connections.fetch_sub(1, Relaxed);
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors, usually: wait a little rather than spin.
                        tracing::warn!(error = %e, "RTSP accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }

    /// Whether the server is stopping.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Adds a session, unless `max_clients` are there.
    pub fn add_session(&self, session: Arc<Session>) -> Result<(), Full> {
        let mut sessions = self.sessions();
        if sessions.len() >= self.config.max_clients {
            return Err(Full(self.config.max_clients));
        }
        match session.transport {
            Transport::Tcp { .. } => &self.metrics.sessions_tcp_total,
            Transport::Udp { .. } => &self.metrics.sessions_udp_total,
        }
        .fetch_add(1, Relaxed);
        sessions.insert(session.id.clone(), session);
        Ok(())
    }

    /// The session `id`.
    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions().get(id).cloned()
    }

    /// Ends the session `id`: no more frames, its ports freed, its connection closed if its
    /// RTP went over it and the client went silent. `false` if there was none.
    pub fn close_session(&self, id: &str, reason: CloseReason) -> bool {
        let Some(session) = self.sessions().remove(id) else {
            return false;
        };
        self.feed.unsubscribe(session.key);
        session.end();
        if matches!(session.transport, Transport::Tcp { .. })
            && matches!(reason, CloseReason::Timeout | CloseReason::Stalled)
        {
            session.conn_closer.send_replace(true);
        }
        self.metrics.closed(reason);
        tracing::info!(
            session = %session.id,
            transport = session.transport.name(),
            reason = reason.name(),
            seconds = session.created.elapsed().as_secs(),
            "RTSP session ended"
        );
        true
    }

    /// The connection `conn` closed: its interleaved sessions end with it. Its UDP sessions
    /// go on until their time-out or a TEARDOWN on another connection.
    pub fn connection_closed(&self, conn: u64, reason: CloseReason) {
        let ids: Vec<String> = self
            .sessions()
            .values()
            .filter(|s| s.conn == conn && matches!(s.transport, Transport::Tcp { .. }))
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            self.close_session(&id, reason);
        }
    }

    /// Ends the sessions whose clients were silent too long.
    pub fn reap(&self, now: Instant) {
        let expired: Vec<String> = self
            .sessions()
            .values()
            .filter(|s| s.machine().expired(now))
            .map(|s| s.id.clone())
            .collect();
        for id in expired {
            self.close_session(&id, CloseReason::Timeout);
        }
    }

    /// Ends every session and stops accepting.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
        let ids: Vec<String> = self.sessions().keys().cloned().collect();
        for id in ids {
            if let Some(session) = self.session(&id) {
                session.conn_closer.send_replace(true);
            }
            self.close_session(&id, CloseReason::Stopped);
        }
    }

    /// The live figures for the metrics.
    pub fn snapshot(&self) -> Snapshot {
        let sessions = self.sessions();
        let mut snapshot = Snapshot {
            connections: self.connections.load(Relaxed),
            frames_dropped: self.feed.stats.frames_dropped.load(Relaxed),
            queue_usage_percent: self.feed.load().1,
            ..Snapshot::default()
        };
        for s in sessions.values() {
            let state = match s.machine().state() {
                State::Ready => "ready",
                State::Playing => "playing",
            };
            *snapshot
                .sessions
                .entry((s.transport.name(), state))
                .or_default() += 1;
            snapshot.clients.push((
                s.id.clone(),
                s.transport.name(),
                s.stats.bytes_sent.load(Relaxed),
                s.stats.packets_sent.load(Relaxed),
                s.stats.frames_dropped.load(Relaxed),
            ));
        }
        snapshot.clients.sort();
        snapshot
    }

    /// Sessions set up.
    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }
}

/// Resolves once the flag is set (or its sender is gone).
pub async fn until_set(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}
