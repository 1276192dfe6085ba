//! The viewers' sessions as the signalling sees them: answering an offer (on the thread that
//! took the request), ending a session, trickling candidates, and the worker threads and
//! sockets behind them.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtc::peer_connection::transport::RTCIceCandidateInit;
use stackctl_sink_sdk::Error;

use crate::admission::Refused;
use crate::config::{Config, TimestampOrigin};
use crate::feed::FeedConfig;
use crate::frame::Packetized;
use crate::hub::{Hub, Removal, new_id};
use crate::peer::{Factory, PeerError};
use crate::sdp::{self, Fit, OfferError};
use crate::udp::{Socket, bind_plan, host_addresses, interface_addresses};
use crate::worker::{self, Adopt, Command, Group, Settings, Worker};

/// How long a trickle waits for the viewer's worker.
const TRICKLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an offer got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The offer itself is wrong (400).
    #[error(transparent)]
    Offer(#[from] OfferError),
    /// The hub refused (503).
    #[error(transparent)]
    Refused(#[from] Refused),
    /// WebRTC failed to build the connection or the answer (500).
    #[error("WebRTC: {0}")]
    WebRtc(String),
}

impl From<PeerError> for SessionError {
    fn from(e: PeerError) -> Self {
        match e {
            PeerError::Offer(e) => Self::Offer(e),
            PeerError::WebRtc(e) => Self::WebRtc(e),
        }
    }
}

/// A new viewer's answer.
#[derive(Debug)]
pub struct Answer {
    /// Its id.
    pub id: String,
    /// The answer SDP, with every candidate.
    pub sdp: String,
}

/// The sessions, the workers and their sockets.
#[derive(Debug)]
pub struct Sessions {
    hub: Arc<Hub>,
    config: Config,
    factory: Factory,
    workers: Arc<Vec<Arc<worker::Shared>>>,
    /// The socket group each worker is on.
    groups: Vec<Arc<Group>>,
    next_key: AtomicU64,
    next_seq: AtomicU64,
    threads: Mutex<Vec<(JoinHandle<()>, Receiver<()>)>>,
}

impl Sessions {
    /// Binds the sockets and starts the worker threads.
    pub fn start(hub: Arc<Hub>, config: Config) -> Result<Arc<Self>, Error> {
        let factory = Factory::new(&config).map_err(|e| Error::failed(e.to_string()))?;
        let threads = config.worker_threads();
        let mut polls = Vec::new();
        let mut shared = Vec::new();
        for i in 0..threads {
            let (poll, me) = worker::prepare(i)
                .map_err(|e| Error::failed(format!("worker {i}: cannot create its poll: {e}")))?;
            polls.push(poll);
            shared.push(me);
        }
        let hosts = host_addresses(&config.bind, &interface_addresses());
        if hosts.is_empty() && config.nat_ips.is_empty() {
            return Err(Error::config(
                "bind",
                format_args!(
                    "{:?}: no address to advertise (a wildcard covers no interface that is up but \
                     loopback, which must be named: 127.0.0.1)",
                    config.bind
                ),
            ));
        }
        let stun = config.stun.iter().any(|u| u.starts_with("stun:"));
        if config.mdns {
            tracing::warn!(
                "mdns = true: this sink does not resolve viewers' .local candidates; it learns \
                 every viewer's address from the viewer's own checks (browsers connect so)"
            );
        }
        let relays: Vec<&String> = config
            .stun
            .iter()
            .filter(|u| !u.starts_with("stun:"))
            .collect();
        if !relays.is_empty() {
            tracing::info!(
                ?relays,
                "TURN and STUN-over-TLS servers are advertised to viewers (their browsers may relay \
                 through them); the sink gathers only through stun: servers"
            );
        }
        let bind_group = |port: u16, reader: usize| -> Result<Arc<Group>, Error> {
            let mut sockets = Vec::new();
            for ip in bind_plan(&config.bind) {
                let socket = Socket::bind(SocketAddr::new(ip, port)).map_err(|e| {
                    if port == 0 {
                        Error::config("bind", format_args!("{ip}: cannot bind a UDP socket: {e}"))
                    } else {
                        Error::config("udp_port", format_args!("{port} on {ip}: {e}"))
                    }
                })?;
                sockets.push(Arc::new(socket));
            }
            Ok(Arc::new(Group::new(
                sockets,
                reader,
                &hosts,
                config.nat_ips.clone(),
                stun,
            )))
        };
        let groups: Vec<Arc<Group>> = match config.udp_port {
            0 => (0..threads)
                .map(|i| bind_group(0, i))
                .collect::<Result<_, _>>()?,
            port => {
                let group = bind_group(port, 0)?;
                vec![group; threads]
            }
        };
        let workers = Arc::new(shared);
        let settings = Settings {
            feed: FeedConfig {
                max_backlog: config.viewer_queue,
                ..FeedConfig::default()
            },
            connect_timeout: config.connect_timeout,
            gop_cache: config.gop_cache,
            monotonic_timestamps: config.rtp_timestamp_origin == TimestampOrigin::Monotonic,
            detections: config.detections,
        };
        let mut handles = Vec::new();
        for (i, poll) in polls.into_iter().enumerate() {
            let worker = Worker::new(
                poll,
                Arc::clone(&workers),
                i,
                Arc::clone(&groups[i]),
                Arc::clone(&hub),
                settings.clone(),
            )
            .map_err(|e| Error::failed(format!("worker {i}: {e}")))?;
            let (done_tx, done_rx): (Sender<()>, Receiver<()>) = channel();
            let handle = std::thread::Builder::new()
                .name(format!("webrtc-worker-{i}"))
                .spawn(move || {
                    worker.run();
                    let _ = done_tx.send(());
                })
                .map_err(|e| Error::failed(format!("cannot start worker thread {i}: {e}")))?;
            handles.push((handle, done_rx));
        }
        let sessions = Arc::new(Self {
            hub,
            factory,
            workers,
            groups,
            next_key: AtomicU64::new(1),
            next_seq: AtomicU64::new(0),
            threads: Mutex::new(handles),
            config,
        });
        if stun {
            sessions.resolve_stun();
        }
        let ports: Vec<SocketAddr> = sessions
            .groups
            .iter()
            .flat_map(|g| g.sockets.iter().map(|s| s.local_addr()))
            .collect();
        tracing::info!(
            workers = threads,
            udp = ?ports,
            advertised = ?sessions.groups.first().map(|g| g.hosts.clone()),
            "WebRTC workers started"
        );
        Ok(sessions)
    }

    /// Resolves the STUN servers off the workers (DNS may take a while), then tells the
    /// workers that read sockets.
    fn resolve_stun(self: &Arc<Self>) {
        let urls = self.config.stun.clone();
        let readers: Vec<Arc<worker::Shared>> = self
            .groups
            .iter()
            .map(|g| g.reader)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter_map(|i| self.workers.get(i).cloned())
            .collect();
        let spawned = std::thread::Builder::new()
            .name("webrtc-stun".to_owned())
            .spawn(move || {
                let servers = crate::stun::resolve(&urls);
                for reader in readers {
                    reader.command(Command::StunServers(servers.clone()));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot resolve the STUN servers: {e}");
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The hub.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Counts a malformed request.
    pub fn count_invalid(&self) {
        self.hub.metrics.rejected_invalid.fetch_add(1, Relaxed);
    }

    /// Hands one access unit (cut once) to every worker.
    pub fn publish(&self, mut frame: Packetized) {
        frame.seq = self.next_seq.fetch_add(1, Relaxed);
        let frame = Arc::new(frame);
        for worker in self.workers.iter() {
            if !worker.push_frame(Arc::clone(&frame)) {
                self.hub.metrics.worker_frames_lost.fetch_add(1, Relaxed);
            }
        }
    }

    /// Hands one detection result (JSON made once) to every worker, for the viewers with a
    /// detections channel. Nothing is done while no viewer has one.
    pub fn publish_overlay(&self, result: crate::overlay::Overlay) {
        let metrics = &self.hub.metrics;
        if metrics.detection_channels.load(Relaxed) == 0 {
            return;
        }
        let result = Arc::new(result);
        for worker in self.workers.iter() {
            if !worker.push_overlay(Arc::clone(&result)) {
                metrics.detections_dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Answers an offer: checks it, builds the viewer's connection with every candidate, admits
    /// it, and hands it to the least busy worker. On any error nothing stays allocated.
    pub fn open(&self, offer: &str) -> Result<Answer, SessionError> {
        let created = Instant::now();
        let video = sdp::read_video(offer)?;
        let camera = self
            .hub
            .check()
            .inspect_err(|e| self.hub.count_refused(e))?;
        let (format, fit) =
            sdp::choose_by(&video.formats, camera.profile, self.config.profile_policy)?;
        let load = self.hub.load(self.workers.len());
        let worker = (0..load.len()).min_by_key(|i| load[*i]).unwrap_or(0);
        let group = &self.groups[worker];
        let candidates = group.candidates(self.config.gather_timeout);
        let built = self
            .factory
            .answer(created, offer, &video, format, &candidates)
            .inspect_err(|e| {
                if matches!(e, PeerError::WebRtc(_)) {
                    self.hub.metrics.webrtc_errors.fetch_add(1, Relaxed);
                }
            })?;
        let id = new_id();
        let key = self.next_key.fetch_add(1, Relaxed);
        let stats = self.hub.admit(&id, worker, key)?;
        if fit == Fit::Mismatch {
            self.hub.metrics.profile_mismatch.fetch_add(1, Relaxed);
            tracing::info!(
                viewer = %id,
                camera = %camera.profile_level_id,
                answered = %format.fmtp,
                "the viewer offered no format of the camera's H.264 profile: answered with the \
                 highest it offered; sending the camera's stream (software decoders play it)"
            );
        }
        crate::worker::register(group, &built.ufrag, worker, key);
        let answer = built.answer.clone();
        self.workers[worker].command(Command::Adopt(Box::new(Adopt {
            id: id.clone(),
            key,
            built,
            stats,
            created,
        })));
        Ok(Answer { id, sdp: answer })
    }

    /// Ends a session (WHEP `DELETE`); `true` if it was there.
    pub fn close(&self, id: &str, why: Removal) -> bool {
        let Some(entry) = self.hub.remove(id) else {
            return false;
        };
        self.hub.removed(id, &entry, why);
        if let Some(worker) = self.workers.get(entry.worker) {
            worker.command(Command::Close(entry.key));
        }
        true
    }

    /// Adds trickled candidates (a WHEP `PATCH`): `Ok(false)` for an unknown session.
    pub fn add_candidates(
        &self,
        id: &str,
        candidates: Vec<RTCIceCandidateInit>,
    ) -> Result<bool, String> {
        let Some(entry) = self.hub.find(id) else {
            return Ok(false);
        };
        let Some(worker) = self.workers.get(entry.worker) else {
            return Ok(false);
        };
        let (tx, rx) = channel();
        worker.command(Command::Trickle(entry.key, candidates, tx));
        match rx.recv_timeout(TRICKLE_TIMEOUT) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err("the viewer's worker did not answer".into()),
            Err(RecvTimeoutError::Disconnected) => Ok(false),
        }
    }

    /// Closes every viewer and stops the workers, waiting at most `grace` for them.
    pub fn stop(&self, grace: Duration) {
        for id in self.hub.ids() {
            if let Some(entry) = self.hub.remove(&id) {
                self.hub.removed(&id, &entry, Removal::Closed);
            }
        }
        for worker in self.workers.iter() {
            worker.command(Command::Stop);
        }
        let deadline = Instant::now() + grace;
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for (handle, done) in threads {
            let left = deadline.saturating_duration_since(Instant::now());
            match done.recv_timeout(left) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                    let _ = handle.join();
                }
                Err(RecvTimeoutError::Timeout) => {
                    tracing::warn!(
                        "a WebRTC worker is still busy after {grace:?}; leaving it behind"
                    );
                }
            }
        }
    }

    /// The UDP addresses the sockets are bound to (tests read them).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.groups
            .iter()
            .flat_map(|g| g.sockets.iter().map(|s| s.local_addr()))
            .collect()
    }

    /// The host addresses advertised.
    pub fn advertised(&self) -> Vec<IpAddr> {
        self.groups
            .first()
            .map(|g| g.hosts.iter().map(SocketAddr::ip).collect())
            .unwrap_or_default()
    }

    /// The worker a WHIP publication goes to: the one with the fewest viewers.
    pub(crate) fn publication_worker(&self) -> usize {
        let load = self.hub.load(self.workers.len());
        (0..load.len()).min_by_key(|i| load[*i]).unwrap_or(0)
    }

    /// The candidates of `worker`'s sockets (waiting at most `wait` for STUN).
    pub(crate) fn candidates(&self, worker: usize, wait: Duration) -> Vec<crate::peer::Candidate> {
        self.groups
            .get(worker)
            .map(|g| g.candidates(wait))
            .unwrap_or_default()
    }

    /// What builds the connections.
    pub(crate) fn factory(&self) -> &Factory {
        &self.factory
    }

    /// Hands an answered WHIP publication to `worker`: routed by its ICE username and by the
    /// endpoint's `remote` addresses, fed like a viewer, not counted against `max_clients`;
    /// what becomes of it is told through `link`; with `relay`, what it sends from the relayed
    /// address goes through that TURN allocation. Its key on the worker.
    // The connection and everything that goes with it to the worker: one call, one command.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn adopt_publication(
        &self,
        worker: usize,
        id: String,
        built: crate::peer::Built,
        stats: Arc<crate::hub::ViewerStats>,
        link: Arc<crate::publish::Link>,
        remote: &[SocketAddr],
        relay: Option<Box<crate::publish::relay::Relay>>,
    ) -> u64 {
        let key = self.next_key.fetch_add(1, Relaxed);
        let worker = worker.min(self.workers.len().saturating_sub(1));
        if let Some(group) = self.groups.get(worker) {
            crate::worker::register(group, &built.ufrag, worker, key);
            let mut router = group.router.lock().unwrap_or_else(PoisonError::into_inner);
            for addr in remote {
                router.learn(*addr, (worker, key));
            }
        }
        if let Some(w) = self.workers.get(worker) {
            w.command(Command::Publish(
                Box::new(Adopt {
                    id,
                    key,
                    built,
                    stats,
                    created: Instant::now(),
                }),
                link,
                relay,
            ));
        }
        key
    }

    /// Closes a publication's connection (its thread deletes the session).
    pub(crate) fn close_publication(&self, worker: usize, key: u64) {
        if let Some(w) = self.workers.get(worker) {
            w.command(Command::Close(key));
        }
    }
}
