//! A worker thread (`webrtc-worker-N`): one loop that owns its viewers' peer connections and
//! drives them, with no async runtime.
//!
//! Each turn of the loop:
//! 1. takes what other threads sent it ([`Shared`]): new viewers, closes, trickled
//!    candidates, frames from the camera, datagrams another worker read for its viewers;
//! 2. reads its sockets in batches (`recvmmsg`, GRO) until they are empty, and routes each
//!    datagram ([`Router`]): by ICE username before a viewer's address is known, by address
//!    after;
//! 3. fires the timers that are due (the connections' own: ICE checks and consent, DTLS
//!    retransmissions, sender reports; a viewer that never connected);
//! 4. writes each frame's RTP to every viewer that may have it in one pass over the viewers,
//!    from payloads cut once ([`Feed`] decides which frames and when);
//! 5. drains every connection's pending datagrams into one [`Outbox`] and sends them as GSO
//!    runs;
//! 6. sleeps until something arrives or the earliest deadline (a connection's
//!    `poll_timeout`, a pacer's next frame, a connect timeout).
//!
//! With one shared UDP port (`udp_port`) every worker sends on the port's sockets and worker 0
//! reads them, handing other workers' datagrams over (incoming traffic is light: ICE checks,
//! DTLS, RTCP). Otherwise each worker has sockets of its own.

use std::collections::{HashMap, VecDeque};
use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use quinn_udp::RecvMeta;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::shared::{TransportContext, TransportProtocol};
use stackctl_media::rtp::NtpTime;
use stackctl_media::{monotonic_ns, unix_now_ns};

use crate::feed::{Feed, FeedConfig, Offered, Step};
use crate::frame::Packetized;
use crate::hub::{Hub, Removal, State, ViewerStats};
use crate::overlay::{self, Overlay, Sent};
use crate::peer::{Built, Candidate};
use crate::publish::relay::Relay;
use crate::route::Router;
use crate::stun::Gatherer;
use crate::udp::{Entry, Outbox, Socket};
use crate::viewer::{Happening, Path, Viewer};

/// Frames a worker may have waiting before newer ones are lost (its viewers then skip to the
/// next IDR): a worker that far behind is stuck.
const INBOX_FRAMES: usize = 120;
/// Datagrams handed over by another worker, waiting, before newer ones are dropped.
const INBOX_DATAGRAMS: usize = 4096;
/// Datagram buffers per receive call; each takes one datagram, or a GRO batch of them.
const RECV_BATCH: usize = 16;
/// Bytes per receive buffer (a GRO batch of full datagrams fits).
const RECV_BUFFER: usize = 64 * 1024;
/// Receive calls per socket per turn, so that a flood cannot hold up the frames.
const RECV_CALLS_PER_TURN: usize = 8;
/// How long after a full socket buffer sending is tried again.
const SEND_RETRY: Duration = Duration::from_millis(1);
/// How long after viewers leave their memory is given back to the system (removals in between
/// share the trim).
const TRIM_DELAY: Duration = Duration::from_secs(1);
/// The most frames the GOP cache holds; a longer GOP is not cached (new viewers wait for an
/// IDR).
const GOP_CACHE_FRAMES: usize = 300;
/// The most bytes the GOP cache holds.
const GOP_CACHE_BYTES: usize = 16 << 20;
/// Over how long the stream's rate is measured.
const RATE_WINDOW_NS: u64 = 2_000_000_000;

const WAKER: Token = Token(usize::MAX);
/// Every publication's TURN socket (each is read every turn: there are few).
const RELAYS: Token = Token(usize::MAX - 1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A viewer handed to a worker, its answer sent or about to be.
pub struct Adopt {
    /// Its id.
    pub id: String,
    /// Its key on the worker.
    pub key: u64,
    /// Its connection.
    pub built: Built,
    /// Its figures.
    pub stats: Arc<ViewerStats>,
    /// When its offer arrived.
    pub created: Instant,
}

/// What other threads ask of a worker.
pub enum Command {
    /// Take this viewer.
    Adopt(Box<Adopt>),
    /// Take this WHIP publication (a connection the sink offered): fed like a viewer, not in
    /// the hub (no viewer slot); its thread hears through the link when it connects or goes.
    /// With a TURN relay, what the connection sends from the relayed address goes through it.
    Publish(Box<Adopt>, Arc<crate::publish::Link>, Option<Box<Relay>>),
    /// Close this viewer (the caller removed it from the hub and counted it).
    Close(u64),
    /// Add trickled candidates to this viewer; the answer: was it there, or what went wrong.
    Trickle(
        u64,
        Vec<RTCIceCandidateInit>,
        std::sync::mpsc::Sender<Result<bool, String>>,
    ),
    /// Where the STUN servers are (resolved off the worker).
    StunServers(Vec<(String, SocketAddr)>),
    /// Close every viewer (the caller removed them from the hub) and end.
    Stop,
}

/// A datagram another worker read for one of this worker's viewers.
#[derive(Debug)]
struct Forwarded {
    key: u64,
    socket: usize,
    from: SocketAddr,
    dst_ip: Option<IpAddr>,
    data: BytesMut,
}

#[derive(Default)]
struct Inbox {
    frames: VecDeque<Arc<Packetized>>,
    overlays: VecDeque<Arc<Overlay>>,
    commands: VecDeque<Command>,
    datagrams: VecDeque<Forwarded>,
}

/// A worker as other threads see it: its inbox and how to wake it.
pub struct Shared {
    index: usize,
    inbox: Mutex<Inbox>,
    waker: Waker,
    woken: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("worker::Shared")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn wake(&self) {
        // One wake-up (an eventfd write) until the worker has looked at its inbox.
        if !self.woken.swap(true, Relaxed)
            && let Err(e) = self.waker.wake()
        {
            tracing::warn!(worker = self.index, "cannot wake worker: {e}");
        }
    }

    /// Hands a frame to the worker; `false` if its queue was full (the frame is lost for its
    /// viewers).
    pub fn push_frame(&self, frame: Arc<Packetized>) -> bool {
        let mut inbox = lock(&self.inbox);
        let room = inbox.frames.len() < INBOX_FRAMES;
        if room {
            inbox.frames.push_back(frame);
        }
        drop(inbox);
        self.wake();
        room
    }

    /// Hands a detection result to the worker, for its viewers with a detections channel;
    /// `false` if its queue was full (the result is lost for them).
    pub fn push_overlay(&self, result: Arc<Overlay>) -> bool {
        let mut inbox = lock(&self.inbox);
        let room = inbox.overlays.len() < overlay::INBOX_RESULTS;
        if room {
            inbox.overlays.push_back(result);
        }
        drop(inbox);
        self.wake();
        room
    }

    /// Sends the worker a command.
    pub fn command(&self, command: Command) {
        lock(&self.inbox).commands.push_back(command);
        self.wake();
    }

    fn forward(&self, datagram: Forwarded) {
        let mut inbox = lock(&self.inbox);
        if inbox.datagrams.len() < INBOX_DATAGRAMS {
            inbox.datagrams.push_back(datagram);
        }
        drop(inbox);
        self.wake();
    }
}

/// A set of sockets and the viewers reachable through them: one per worker, or one shared by
/// every worker (the shared UDP port).
#[derive(Debug)]
pub struct Group {
    /// The sockets.
    pub sockets: Vec<Arc<Socket>>,
    /// Which viewer each datagram is for.
    pub router: Mutex<Router<(usize, u64)>>,
    /// The worker that reads the sockets.
    pub reader: usize,
    /// The host addresses advertised (each with its socket's port).
    pub hosts: Vec<SocketAddr>,
    /// Public addresses advertised instead of the host's (1:1 NAT).
    pub nat: Vec<IpAddr>,
    reflexive: Mutex<Reflexive>,
    reflexive_changed: Condvar,
}

/// What the STUN servers said of this group's sockets.
#[derive(Debug, Default)]
struct Reflexive {
    candidates: Vec<Candidate>,
    /// No STUN server, or the gatherer gave up waiting: do not wait for it.
    settled: bool,
}

impl Group {
    /// A group of `sockets` read by worker `reader`, advertising `hosts` (their IPs; each
    /// socket's port is added), or `nat` instead.
    pub fn new(
        sockets: Vec<Arc<Socket>>,
        reader: usize,
        hosts: &[IpAddr],
        nat: Vec<IpAddr>,
        stun: bool,
    ) -> Self {
        let port_for = |ip: &IpAddr| {
            sockets
                .iter()
                .map(|s| s.local_addr())
                .find(|a| a.ip() == *ip)
                .or_else(|| {
                    sockets
                        .iter()
                        .map(|s| s.local_addr())
                        .find(|a| a.ip().is_unspecified() && a.is_ipv4() == ip.is_ipv4())
                })
                .map(|a| a.port())
        };
        let advertised: Vec<IpAddr> = if nat.is_empty() {
            hosts.to_vec()
        } else {
            nat.clone()
        };
        let hosts = advertised
            .iter()
            .filter_map(|ip| {
                let port = port_for(ip).or_else(|| {
                    // A NAT address: the port of a socket of its family (any, for a lone one).
                    sockets
                        .iter()
                        .map(|s| s.local_addr())
                        .find(|a| a.is_ipv4() == ip.is_ipv4())
                        .or_else(|| sockets.first().map(|s| s.local_addr()))
                        .map(|a| a.port())
                })?;
                Some(SocketAddr::new(*ip, port))
            })
            .collect();
        Self {
            sockets,
            router: Mutex::default(),
            reader,
            hosts,
            nat,
            reflexive: Mutex::new(Reflexive {
                candidates: Vec::new(),
                settled: !stun,
            }),
            reflexive_changed: Condvar::new(),
        }
    }

    /// The candidates to advertise: the hosts', and what STUN found, waiting for STUN at most
    /// `wait` if it has not answered yet.
    pub fn candidates(&self, wait: Duration) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = self.hosts.iter().map(|a| Candidate::Host(*a)).collect();
        let reflexive = lock(&self.reflexive);
        let (reflexive, _) = self
            .reflexive_changed
            .wait_timeout_while(reflexive, wait, |r| !r.settled && r.candidates.is_empty())
            .unwrap_or_else(PoisonError::into_inner);
        out.extend(reflexive.candidates.iter().copied());
        out
    }

    fn set_reflexive(&self, candidates: Vec<Candidate>, settled: bool) {
        let mut r = lock(&self.reflexive);
        r.candidates = candidates;
        r.settled |= settled;
        drop(r);
        self.reflexive_changed.notify_all();
    }

    /// The local address a connection sees a datagram arrive at: the advertised one (a NAT
    /// address, else the address it was sent to).
    fn present(&self, socket: usize, dst_ip: Option<IpAddr>) -> SocketAddr {
        let local = self.sockets[socket].local_addr();
        let real = match dst_ip {
            Some(ip) if local.ip().is_unspecified() => ip,
            _ => local.ip(),
        };
        let ip = self
            .nat
            .iter()
            .find(|n| n.is_ipv4() == real.is_ipv4())
            .or(self.nat.first())
            .copied()
            .unwrap_or(real);
        SocketAddr::new(ip, local.port())
    }

    /// Where a datagram a connection sends from `local` goes out: the socket of that address
    /// (a wildcard one sends from it), or, for a NAT address, the viewer's own path.
    fn path_for(&self, local: SocketAddr, viewer: Option<Path>) -> Option<Path> {
        if self.nat.contains(&local.ip()) {
            return viewer.or_else(|| {
                self.sockets
                    .iter()
                    .position(|s| s.local_addr().port() == local.port())
                    .map(|socket| Path {
                        socket,
                        src_ip: None,
                    })
            });
        }
        if let Some(socket) = self.sockets.iter().position(|s| s.local_addr() == local) {
            return Some(Path {
                socket,
                src_ip: None,
            });
        }
        self.sockets
            .iter()
            .position(|s| {
                let a = s.local_addr();
                a.ip().is_unspecified()
                    && a.port() == local.port()
                    && a.is_ipv4() == local.is_ipv4()
            })
            .map(|socket| Path {
                socket,
                src_ip: Some(local.ip()),
            })
            .or(viewer)
    }
}

/// Routes datagrams whose checks name `ufrag` to viewer `key` of worker `worker`: done before
/// the viewer's answer goes out.
pub fn register(group: &Group, ufrag: &str, worker: usize, key: u64) {
    lock(&group.router).register(ufrag, (worker, key));
}

/// How a worker feeds its viewers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Each viewer's feed.
    pub feed: FeedConfig,
    /// A viewer not connected this long after its offer is removed.
    pub connect_timeout: Duration,
    /// Whether to keep the frames since the last IDR for new viewers.
    pub gop_cache: bool,
    /// RTP timestamps are the camera's clock (no random origin).
    pub monotonic_timestamps: bool,
    /// Serve `detections` data channels (else they are closed as they open).
    pub detections: bool,
}

/// The bytes a second of the stream, over its last [`RATE_WINDOW_NS`].
#[derive(Debug, Default)]
struct RateMeter {
    frames: VecDeque<(u64, usize)>,
    bytes: usize,
}

impl RateMeter {
    fn add(&mut self, timestamp_ns: u64, bytes: usize) {
        self.frames.push_back((timestamp_ns, bytes));
        self.bytes += bytes;
        while let Some(&(t, b)) = self.frames.front() {
            if timestamp_ns.saturating_sub(t) <= RATE_WINDOW_NS || self.frames.len() <= 2 {
                break;
            }
            self.frames.pop_front();
            self.bytes -= b;
        }
    }

    fn rate(&self) -> f64 {
        let (Some(first), Some(last)) = (self.frames.front(), self.frames.back()) else {
            return 0.0;
        };
        let span = last.0.saturating_sub(first.0);
        if span == 0 {
            return 0.0;
        }
        // The first frame's bytes belong to the interval before it.
        (self.bytes - first.1) as f64 * 1e9 / span as f64
    }
}

/// One worker. See the [module docs](self).
pub struct Worker {
    index: usize,
    poll: Poll,
    me: Arc<Shared>,
    all: Arc<Vec<Arc<Shared>>>,
    group: Arc<Group>,
    hub: Arc<Hub>,
    settings: Settings,
    viewers: HashMap<u64, Viewer>,
    /// The viewers that are WHIP publications, and how to reach their threads.
    publications: HashMap<u64, Arc<crate::publish::Link>>,
    /// The TURN relays of the publications that have one.
    relays: HashMap<u64, Box<Relay>>,
    gop: Vec<Arc<Packetized>>,
    gop_bytes: usize,
    rate: RateMeter,
    last_seq: Option<u64>,
    outbox: Outbox,
    send_retry: Option<Instant>,
    trim_at: Option<Instant>,
    readable: Vec<bool>,
    recv: Vec<u8>,
    meta: Vec<RecvMeta>,
    happenings: Vec<Happening>,
    orphans: Vec<Forwarded>,
    gatherer: Gatherer,
    stopping: bool,
}

/// Creates the poll of a worker and what others use to reach it.
pub fn prepare(index: usize) -> std::io::Result<(Poll, Arc<Shared>)> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    Ok((
        poll,
        Arc::new(Shared {
            index,
            inbox: Mutex::default(),
            waker,
            woken: AtomicBool::new(false),
        }),
    ))
}

impl Worker {
    /// Worker `index` (its poll and inbox from [`prepare`]), on `group`'s sockets.
    pub fn new(
        poll: Poll,
        all: Arc<Vec<Arc<Shared>>>,
        index: usize,
        group: Arc<Group>,
        hub: Arc<Hub>,
        settings: Settings,
    ) -> std::io::Result<Self> {
        let me = Arc::clone(&all[index]);
        let reader = group.reader == index;
        if reader {
            for (i, socket) in group.sockets.iter().enumerate() {
                poll.registry().register(
                    &mut SourceFd(&socket.as_raw_fd()),
                    Token(i),
                    Interest::READABLE,
                )?;
            }
        }
        let readable = vec![reader; group.sockets.len()];
        Ok(Self {
            index,
            poll,
            me,
            all,
            group,
            hub,
            settings,
            viewers: HashMap::new(),
            publications: HashMap::new(),
            relays: HashMap::new(),
            gop: Vec::new(),
            gop_bytes: 0,
            rate: RateMeter::default(),
            last_seq: None,
            outbox: Outbox::default(),
            send_retry: None,
            trim_at: None,
            readable,
            recv: vec![0; if reader { RECV_BATCH * RECV_BUFFER } else { 0 }],
            meta: vec![RecvMeta::default(); RECV_BATCH],
            happenings: Vec::new(),
            orphans: Vec::new(),
            gatherer: Gatherer::default(),
            stopping: false,
        })
    }

    /// Runs until told to stop.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(64);
        while !self.stopping {
            let now = Instant::now();
            let busy = self.readable.iter().any(|r| *r);
            let timeout = if busy {
                Some(Duration::ZERO)
            } else {
                self.next_wake().map(|t| t.saturating_duration_since(now))
            };
            if let Err(e) = self.wait(&mut events, timeout) {
                tracing::error!(worker = self.index, "poll failed: {e}; the worker stops");
                break;
            }
            self.turn(Instant::now());
        }
        self.flush(Instant::now());
    }

    /// Waits at most `timeout` for a socket to be readable or the inbox to be written to.
    pub fn wait(&mut self, events: &mut Events, timeout: Option<Duration>) -> std::io::Result<()> {
        match self.poll.poll(events, timeout) {
            Err(e) if e.kind() != std::io::ErrorKind::Interrupted => return Err(e),
            _ => {}
        }
        for event in events.iter() {
            if event.token() != WAKER
                && let Some(r) = self.readable.get_mut(event.token().0)
            {
                *r = true;
            }
        }
        Ok(())
    }

    /// Whether it was told to stop.
    pub fn stopping(&self) -> bool {
        self.stopping
    }

    /// Viewers it holds.
    pub fn viewers(&self) -> usize {
        self.viewers.len()
    }

    /// One turn of the loop, at `now`.
    pub fn turn(&mut self, now: Instant) {
        self.take_inbox(now);
        self.read_sockets(now);
        self.read_relays(now);
        if !self.orphans.is_empty() {
            // Their viewer's adoption may have come in while the sockets were read.
            self.take_inbox(now);
            for d in std::mem::take(&mut self.orphans) {
                if self.viewers.contains_key(&d.key) {
                    self.deliver(now, d);
                }
            }
        }
        self.timers(now);
        self.service(now);
        self.pump(now);
        self.service(now);
        self.flush(now);
    }

    /// When it must run next at the latest (its viewers' timers, pacing, connect timeouts).
    pub fn next_wake(&self) -> Option<Instant> {
        let connect = self.settings.connect_timeout;
        self.viewers
            .values()
            .flat_map(|v| {
                [
                    v.deadline,
                    v.wait,
                    v.next_report,
                    (!v.connected).then_some(v.created + connect),
                ]
            })
            .chain(self.relays.values().map(|r| r.next_wake()))
            .chain([self.send_retry, self.trim_at, self.gatherer.next_wake()])
            .flatten()
            .min()
    }

    fn take_inbox(&mut self, now: Instant) {
        self.me.woken.store(false, Relaxed);
        let (frames, overlays, commands, datagrams) = {
            let mut inbox = lock(&self.me.inbox);
            (
                std::mem::take(&mut inbox.frames),
                std::mem::take(&mut inbox.overlays),
                std::mem::take(&mut inbox.commands),
                std::mem::take(&mut inbox.datagrams),
            )
        };
        for command in commands {
            self.command(now, command);
        }
        for frame in frames {
            self.frame(frame);
        }
        for result in overlays {
            self.overlay(now, &result);
        }
        for d in datagrams {
            self.deliver(now, d);
        }
    }

    fn command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Publish(adopt, link, relay) => {
                if let Some(relay) = relay {
                    let fd = relay.raw_fd();
                    match self.poll.registry().register(
                        &mut SourceFd(&fd),
                        RELAYS,
                        Interest::READABLE,
                    ) {
                        Ok(()) => {
                            self.relays.insert(adopt.key, relay);
                        }
                        Err(e) => {
                            tracing::warn!(publication = %adopt.id, "cannot watch the TURN socket: {e}");
                            link.lost(adopt.key, "cannot watch the TURN socket");
                            return;
                        }
                    }
                }
                self.publications.insert(adopt.key, link);
                self.adopt(now, *adopt);
            }
            Command::Adopt(adopt) => self.adopt(now, *adopt),
            Command::Close(key) => {
                if let Some(mut viewer) = self.viewers.remove(&key) {
                    self.forget(&mut viewer, now);
                }
            }
            Command::Trickle(key, candidates, reply) => {
                let result = match self.viewers.get_mut(&key) {
                    None => Ok(false),
                    Some(viewer) => candidates
                        .into_iter()
                        .try_for_each(|c| viewer.add_remote_candidate(c))
                        .map(|()| true)
                        .map_err(|e| e.to_string()),
                };
                let _ = reply.send(result);
            }
            Command::StunServers(servers) => {
                self.gatherer
                    .set_servers(servers, self.group.sockets.len(), now);
                if self.gatherer.is_empty() {
                    self.group.set_reflexive(Vec::new(), true);
                }
            }
            Command::Stop => {
                let keys: Vec<u64> = self.viewers.keys().copied().collect();
                for key in keys {
                    if let Some(mut viewer) = self.viewers.remove(&key) {
                        self.forget(&mut viewer, now);
                    }
                }
                self.stopping = true;
            }
        }
    }

    fn adopt(&mut self, now: Instant, adopt: Adopt) {
        let Adopt {
            id,
            key,
            built,
            stats,
            created,
        } = adopt;
        let origin = if self.settings.monotonic_timestamps {
            0
        } else {
            crate::hub::random_u32()
        };
        let feed = Feed::new(self.settings.feed.clone());
        let mut viewer = Viewer::new(id, key, built, feed, stats, created, origin);
        viewer.deadline = Some(now);
        self.viewers.insert(key, viewer);
    }

    /// A frame from the camera: kept for new viewers, offered to every viewer.
    fn frame(&mut self, frame: Arc<Packetized>) {
        if let Some(last) = self.last_seq
            && frame.seq != last + 1
        {
            // Frames were lost on the way here: the chain is broken for everyone.
            tracing::debug!(
                worker = self.index,
                "frames {}..{} lost",
                last + 1,
                frame.seq
            );
            for viewer in self.viewers.values_mut() {
                viewer.feed.lost();
            }
            self.gop.clear();
            self.gop_bytes = 0;
        }
        self.last_seq = Some(frame.seq);
        self.rate.add(frame.au.timestamp_ns, frame.bytes);
        if self.settings.gop_cache {
            if frame.au.idr {
                self.gop.clear();
                self.gop_bytes = 0;
            }
            let fits = self.gop.len() < GOP_CACHE_FRAMES
                && self.gop_bytes + frame.bytes <= GOP_CACHE_BYTES;
            if fits && (frame.au.idr || !self.gop.is_empty()) {
                self.gop.push(Arc::clone(&frame));
                self.gop_bytes += frame.bytes;
            } else if !fits {
                // Too long a GOP to cache: a new viewer waits for the next IDR instead.
                self.gop.clear();
                self.gop_bytes = 0;
            }
        }
        let metrics = &self.hub.metrics;
        for viewer in self.viewers.values_mut() {
            match viewer.feed.offer(Arc::clone(&frame)) {
                Offered::Skipped { counted: true } | Offered::Overflow => {
                    viewer.stats.frames_dropped.fetch_add(1, Relaxed);
                    metrics.frames_dropped.fetch_add(1, Relaxed);
                }
                _ => {}
            }
        }
    }

    /// A detection result: sent at once to every viewer with a detections channel (its
    /// frame went out already, or will when the viewer's feed gets to it; the page holds
    /// results until their frame shows).
    fn overlay(&mut self, now: Instant, result: &Overlay) {
        let metrics = &self.hub.metrics;
        for viewer in self.viewers.values_mut() {
            match viewer.send_overlay(now, result) {
                None => {}
                Some(Sent::Sent) => {
                    metrics.detections_sent.fetch_add(1, Relaxed);
                    viewer.deadline = Some(now);
                }
                Some(Sent::Full | Sent::Refused) => {
                    metrics.detections_dropped.fetch_add(1, Relaxed);
                }
            }
        }
    }

    fn read_sockets(&mut self, now: Instant) {
        for i in 0..self.readable.len() {
            if !self.readable[i] {
                continue;
            }
            for _ in 0..RECV_CALLS_PER_TURN {
                let socket = Arc::clone(&self.group.sockets[i]);
                let mut bufs: Vec<IoSliceMut<'_>> = self
                    .recv
                    .chunks_mut(RECV_BUFFER)
                    .map(IoSliceMut::new)
                    .collect();
                let n = match socket.recv(&mut bufs, &mut self.meta) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        self.readable[i] = false;
                        break;
                    }
                    Err(e) => {
                        // An ICMP error for an earlier send, say: nothing to read this time.
                        tracing::debug!(worker = self.index, "UDP receive: {e}");
                        continue;
                    }
                };
                drop(bufs);
                for m in 0..n {
                    let meta = self.meta[m];
                    let start = m * RECV_BUFFER;
                    let stride = meta.stride.max(1);
                    let mut offset = 0;
                    while offset < meta.len {
                        let end = (offset + stride).min(meta.len);
                        let data = BytesMut::from(&self.recv[start + offset..start + end]);
                        self.route(now, i, meta.addr, meta.dst_ip, data);
                        offset = end;
                    }
                }
            }
        }
    }

    /// Reads every TURN relay's socket and hands what the server relayed to its publication,
    /// as a datagram from the peer to the relayed address.
    fn read_relays(&mut self, now: Instant) {
        for (key, relay) in &mut self.relays {
            let relayed = relay.relayed();
            let Some(viewer) = self.viewers.get_mut(key) else {
                continue;
            };
            let mut any = false;
            relay.read(now, |from, data| {
                any = true;
                viewer.receive(
                    now,
                    TransportContext {
                        local_addr: relayed,
                        peer_addr: from,
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
                    },
                    data,
                );
            });
            if any {
                viewer.deadline = Some(now);
            }
        }
    }

    /// A datagram read on socket `socket`: to one of this worker's viewers, another worker's,
    /// a STUN server's answer, or nobody's.
    fn route(
        &mut self,
        now: Instant,
        socket: usize,
        from: SocketAddr,
        dst_ip: Option<IpAddr>,
        data: BytesMut,
    ) {
        let routed = lock(&self.group.router).route(from, &data);
        match routed {
            Some((worker, key)) => {
                let d = Forwarded {
                    key,
                    socket,
                    from,
                    dst_ip,
                    data,
                };
                if worker == self.index {
                    self.deliver(now, d);
                } else if let Some(other) = self.all.get(worker) {
                    other.forward(d);
                }
            }
            None => {
                if self.gatherer.answer(socket, from, &data).is_some() {
                    let locals: Vec<SocketAddr> =
                        self.group.sockets.iter().map(|s| s.local_addr()).collect();
                    let candidates = self.gatherer.candidates(&self.group.hosts, &locals);
                    self.group.set_reflexive(candidates, true);
                }
            }
        }
    }

    fn deliver(&mut self, now: Instant, d: Forwarded) {
        let local = self.group.present(d.socket, d.dst_ip);
        let wildcard = self.group.sockets[d.socket].is_wildcard();
        let Some(viewer) = self.viewers.get_mut(&d.key) else {
            if self.orphans.len() < 64 {
                self.orphans.push(d);
            }
            return;
        };
        viewer.path = Some(Path {
            socket: d.socket,
            src_ip: if wildcard { d.dst_ip } else { None },
        });
        viewer.receive(
            now,
            TransportContext {
                local_addr: local,
                peer_addr: d.from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            d.data,
        );
        viewer.deadline = Some(now);
    }

    fn timers(&mut self, now: Instant) {
        let mut never_connected = Vec::new();
        let (mono, unix) = (monotonic_ns(), unix_now_ns());
        for viewer in self.viewers.values_mut() {
            if viewer.deadline.is_some_and(|d| d <= now) {
                viewer.timeout(now);
                // Serviced below: its deadline is read again then.
                viewer.deadline = Some(now);
            }
            if viewer.next_report.is_some_and(|at| at <= now) {
                viewer.report(now, mono, unix);
                viewer.deadline = Some(now);
            }
            if !viewer.connected && now >= viewer.created + self.settings.connect_timeout {
                never_connected.push(viewer.key);
            }
        }
        for key in never_connected {
            if let Some(id) = self.viewers.get(&key).map(|v| v.id.clone()) {
                tracing::info!(viewer = %id, "viewer never connected: removed");
            }
            if let Some(link) = self.publications.get(&key) {
                link.lost(key, "ICE and DTLS did not connect within connect_timeout");
            }
            self.remove(key, Removal::Failed, now);
        }
        for relay in self.relays.values_mut() {
            if relay.next_wake().is_some_and(|t| t <= now) {
                relay.timeout(now);
            }
        }
        if self.send_retry.is_some_and(|t| t <= now) {
            self.send_retry = None;
        }
        if self.trim_at.is_some_and(|t| t <= now) {
            self.trim_at = None;
            crate::trim::trim();
        }
        if self.gatherer.next_wake().is_some_and(|t| t <= now) {
            let sockets: Vec<&Socket> = self.group.sockets.iter().map(|s| s.as_ref()).collect();
            let gave_up = self.gatherer.poll(now, &sockets, &mut self.outbox);
            if gave_up {
                self.group.set_reflexive(Vec::new(), true);
            }
        }
    }

    /// Lets every viewer whose connection was touched say what it has to say, and acts on it.
    fn service(&mut self, now: Instant) {
        let mut removals = Vec::new();
        let keys: Vec<u64> = self
            .viewers
            .values()
            .filter(|v| v.deadline.is_some_and(|d| d <= now))
            .map(|v| v.key)
            .collect();
        for key in keys {
            let Some(viewer) = self.viewers.get_mut(&key) else {
                continue;
            };
            let group = &self.group;
            let outbox = &mut self.outbox;
            let metrics = &self.hub.metrics;
            let path = viewer.path;
            let mut relay = self.relays.get_mut(&key).map(|r| &mut **r);
            self.happenings.clear();
            viewer.drain(&mut self.happenings, |transport, datagram| {
                send(
                    now,
                    relay.as_deref_mut(),
                    group,
                    outbox,
                    metrics,
                    path,
                    transport,
                    datagram,
                );
            });
            for happening in std::mem::take(&mut self.happenings) {
                match happening {
                    Happening::Connecting if !viewer.connected => {
                        viewer.stats.set_state(State::Connecting);
                    }
                    Happening::Connecting => {}
                    Happening::Connected if self.publications.contains_key(&key) => {
                        viewer.stats.set_state(State::Connected);
                        if !viewer.connected {
                            viewer.connected = true;
                            tracing::info!(publication = %viewer.id, "WHIP publication connected");
                            viewer.feed.start(now, &self.gop, self.rate.rate());
                            viewer.wait = None;
                            if let Some(link) = self.publications.get(&key) {
                                link.connected(key);
                            }
                        }
                    }
                    Happening::Disconnected | Happening::Failed | Happening::Closed
                        if self.publications.contains_key(&key) =>
                    {
                        // A publication is offered afresh rather than waited for.
                        let why = match happening {
                            Happening::Disconnected => "ICE disconnected",
                            Happening::Failed => "ICE failed",
                            _ => "the endpoint closed the connection",
                        };
                        if let Some(link) = self.publications.get(&key) {
                            link.lost(key, why);
                        }
                        removals.push((key, Some(Removal::Failed)));
                    }
                    Happening::Connected => match self.hub.connect(&viewer.id) {
                        Ok(()) => {
                            viewer.stats.set_state(State::Connected);
                            if !viewer.connected {
                                viewer.connected = true;
                                tracing::info!(viewer = %viewer.id, "viewer connected");
                                viewer.feed.start(now, &self.gop, self.rate.rate());
                                viewer.wait = None;
                            }
                        }
                        Err(crate::admission::Refused::Full(n)) => {
                            tracing::info!(
                                viewer = %viewer.id,
                                "viewer connected but {n} viewers are connected already: turned away"
                            );
                            removals.push((key, None));
                        }
                        Err(_) => removals.push((key, None)),
                    },
                    Happening::Disconnected => viewer.stats.set_state(State::Disconnected),
                    Happening::Failed => removals.push((key, Some(Removal::Failed))),
                    Happening::Closed => removals.push((key, Some(Removal::Closed))),
                    Happening::DetectionsOpened(id) => {
                        if !self.settings.detections {
                            tracing::debug!(viewer = %viewer.id, "detections = false: channel closed");
                            viewer.close_channel(id);
                            viewer.deadline = Some(now);
                        } else if viewer.accept_detections(id) {
                            tracing::info!(viewer = %viewer.id, "detections channel open");
                            metrics.detection_channels.fetch_add(1, Relaxed);
                        }
                    }
                    Happening::DetectionsClosed => {
                        tracing::debug!(viewer = %viewer.id, "detections channel closed");
                        metrics.detection_channels.fetch_sub(1, Relaxed);
                    }
                    Happening::Nacks(n, answer) => {
                        metrics.nack_requests.fetch_add(n, Relaxed);
                        metrics
                            .nack_packets_requested
                            .fetch_add(answer.requested, Relaxed);
                        metrics
                            .retransmitted_packets
                            .fetch_add(answer.retransmitted, Relaxed);
                    }
                    Happening::KeyframeRequests(n) => {
                        viewer.stats.keyframe_requests.fetch_add(n, Relaxed);
                        metrics.keyframe_requests.fetch_add(n, Relaxed);
                        tracing::debug!(
                            viewer = %viewer.id,
                            "keyframe requested; the camera cannot be asked for one"
                        );
                    }
                }
            }
        }
        for (key, why) in removals {
            match why {
                Some(why) => self.remove(key, why, now),
                None => {
                    if let Some(mut viewer) = self.viewers.remove(&key) {
                        // Refused or already ended: the hub forgot it; only close.
                        self.hub.remove(&viewer.id);
                        self.forget(&mut viewer, now);
                    }
                }
            }
        }
    }

    /// Sends every viewer what its feed lets out now.
    fn pump(&mut self, now: Instant) {
        let metrics = &self.hub.metrics;
        // The clocks, read once for every frame's abs-capture-time.
        let (mono, unix) = (monotonic_ns(), unix_now_ns());
        for viewer in self.viewers.values_mut() {
            if !viewer.feed.started() || viewer.wait.is_some_and(|w| w > now) {
                continue;
            }
            viewer.wait = None;
            let mut wrote = false;
            loop {
                match viewer.feed.next(now) {
                    Step::Send(frame) => {
                        let ntp = NtpTime::of_monotonic(frame.au.timestamp_ns, mono, unix);
                        match viewer.write_frame(now, &frame, ntp) {
                            Ok((packets, bytes)) => {
                                wrote = true;
                                viewer.stats.packets_sent.fetch_add(packets, Relaxed);
                                viewer.stats.bytes_sent.fetch_add(bytes, Relaxed);
                                viewer.stats.frames_sent.fetch_add(1, Relaxed);
                                metrics.frames_sent.fetch_add(1, Relaxed);
                                let first = viewer.feed.first_sent().is_none();
                                let live = viewer.feed.is_live();
                                viewer.feed.sent(now, &frame);
                                if first {
                                    metrics
                                        .ttff
                                        .observe(now.saturating_duration_since(viewer.created));
                                }
                                if !live && let Some(caught_up) = viewer.feed.catch_up_time() {
                                    metrics.catch_up.observe(caught_up);
                                    tracing::debug!(viewer = %viewer.id, ?caught_up, "viewer live");
                                }
                            }
                            Err(e) => {
                                tracing::debug!(viewer = %viewer.id, "write failed: {e}");
                                metrics.webrtc_errors.fetch_add(1, Relaxed);
                                break;
                            }
                        }
                    }
                    Step::Wait(at) => {
                        viewer.wait = Some(at);
                        break;
                    }
                    Step::Idle => break,
                }
            }
            viewer
                .stats
                .backlog
                .store(viewer.feed.backlog() as u64, Relaxed);
            if wrote {
                viewer.deadline = Some(now);
            }
        }
    }

    fn flush(&mut self, now: Instant) {
        for relay in self.relays.values_mut() {
            relay.send_pending();
        }
        if self.send_retry.is_some() || self.outbox.is_empty() {
            return;
        }
        let sockets: Vec<&Socket> = self.group.sockets.iter().map(|s| s.as_ref()).collect();
        if self.outbox.flush(&sockets, &self.hub.metrics) {
            self.send_retry = Some(now + SEND_RETRY);
        }
    }

    /// Removes a viewer for `why`, counting and logging it if this worker is the one that
    /// took it out of the hub.
    fn remove(&mut self, key: u64, why: Removal, now: Instant) {
        let Some(mut viewer) = self.viewers.remove(&key) else {
            return;
        };
        if let Some(entry) = self.hub.remove(&viewer.id) {
            self.hub.removed(&viewer.id, &entry, why);
        }
        self.forget(&mut viewer, now);
    }

    /// Lets go of a viewer taken out of the table: no more routing to it, its connection
    /// closed (the DTLS close_notify sent), its memory given back soon.
    fn forget(&mut self, viewer: &mut Viewer, now: Instant) {
        self.publications.remove(&viewer.key);
        if viewer.has_detections() {
            self.hub.metrics.detection_channels.fetch_sub(1, Relaxed);
        }
        lock(&self.group.router).remove((self.index, viewer.key));
        viewer.close();
        let group = &self.group;
        let outbox = &mut self.outbox;
        let metrics = &self.hub.metrics;
        let path = viewer.path;
        let mut ignored = Vec::new();
        let mut relay = self.relays.remove(&viewer.key);
        viewer.drain(&mut ignored, |transport, datagram| {
            send(
                now,
                relay.as_deref_mut(),
                group,
                outbox,
                metrics,
                path,
                transport,
                datagram,
            );
        });
        if let Some(mut relay) = relay {
            let fd = relay.raw_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            relay.close(now);
        }
        self.trim_at.get_or_insert(now + TRIM_DELAY);
    }
}

/// Sends one datagram a viewer's connection sends: through its TURN relay if it is from the
/// relayed address, else on the sockets.
#[allow(clippy::too_many_arguments)]
fn send(
    now: Instant,
    relay: Option<&mut Relay>,
    group: &Group,
    outbox: &mut Outbox,
    metrics: &crate::metrics::Metrics,
    path: Option<Path>,
    transport: &TransportContext,
    datagram: &[u8],
) {
    match relay {
        Some(relay) if transport.local_addr == relay.relayed() => {
            if !relay.send(now, transport.peer_addr, datagram) {
                metrics.udp_send_errors.fetch_add(1, Relaxed);
            }
        }
        _ => queue(group, outbox, metrics, path, transport, datagram),
    }
}

/// Queues one datagram a viewer's connection sends.
fn queue(
    group: &Group,
    outbox: &mut Outbox,
    metrics: &crate::metrics::Metrics,
    path: Option<Path>,
    transport: &TransportContext,
    datagram: &[u8],
) {
    let Some(path) = group.path_for(transport.local_addr, path) else {
        metrics.udp_send_errors.fetch_add(1, Relaxed);
        return;
    };
    let entry = Entry {
        socket: path.socket,
        destination: transport.peer_addr,
        src_ip: path.src_ip,
        len: datagram.len(),
    };
    if !outbox.push(entry, datagram) {
        metrics.udp_send_errors.fetch_add(1, Relaxed);
    }
}
