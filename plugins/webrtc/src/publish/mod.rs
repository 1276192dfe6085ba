//! WHIP egress (RFC 9725): the camera published to an SFU or media server, each
//! `[[plugins.streaming.publish]]` entry one publication.
//!
//! A publication is a connection the sink offers instead of answering, and from then on it is a
//! viewer like any other on a worker thread: the same loop, GOP cache (it starts on an IDR),
//! pacing, passthrough RTP and NACK responder. It does not take a viewer slot. Each
//! publication has a thread of its own (`webrtc-publish-N`) that does its HTTP (hyper,
//! [`client`]) and follows a pure state machine ([`state`]): offer, wait for ICE and DTLS,
//! and on any failure delete the old session and offer again after a growing, jittered delay
//! ([`backoff`]), forever, until the sink stops (then the session is deleted, in bounded
//! time).

pub mod backoff;
pub mod client;
pub mod relay;
pub mod state;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtc::peer_connection::sdp::RTCSessionDescription;
use serde::Deserialize;
use stackctl_sink_sdk::{Error, MetricsText};
use url::Url;

use crate::hub::ViewerStats;
use crate::sessions::Sessions;
use backoff::Backoff;
use client::{Client, redact};
use relay::{Relay, TurnServer};
use state::{Action, Input, Log, Machine, Output, Phase};

/// How long an offer may wait for the endpoint's answer, by default.
pub const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a session's DELETE may take (on stop, and before offering again).
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(2);
/// The payload type of the camera's H.264 in the offer.
pub const PAYLOAD_TYPE: u8 = 96;
/// The most publications.
pub const MAX_PUBLICATIONS: usize = 16;
/// How long a publication waits for the camera's first frame before its first offer (beyond,
/// it offers and reports "no video from the camera yet" until there is some).
pub const CAMERA_WAIT: Duration = Duration::from_secs(5);

/// One `[[plugins.streaming.publish]]` entry.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// The WHIP endpoint (`http://host:8889/cam/whip` for mediamtx; `https://` for a service
    /// on the internet).
    pub url: String,
    /// Sent as `Authorization: Bearer <token>`, if set.
    #[serde(default)]
    pub token: Option<String>,
    /// A PEM file of CA certificates trusted for this publication's `https://` besides the
    /// system's roots (a private CA, a self-signed endpoint's own certificate).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// STUN servers (`stun:host:port`) the sink asks for its public address (added to the
    /// sink's `stun`), and at most one TURN server (`turn:host[:port][?transport=udp]`, with
    /// `turn_username` and `turn_password`) the publication allocates a relay on and offers
    /// as a relay candidate. `turns:`, `stuns:` and TURN over TCP are refused (see the
    /// README's TURN section).
    #[serde(default)]
    pub ice_servers: Vec<String>,
    /// The TURN server's long-term credential: its username.
    #[serde(default)]
    pub turn_username: Option<String>,
    /// The TURN server's long-term credential: its password.
    #[serde(default)]
    pub turn_password: Option<String>,
    /// `"all"`: host, server-reflexive and relay candidates are offered; `"relay"`: only the
    /// TURN relay's (the endpoint is reached through the TURN server only).
    #[serde(default)]
    pub ice_transport_policy: IceTransportPolicy,
    /// `false`: configured but not published.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// How long an offer may wait for the endpoint's answer.
    #[serde(
        default = "post_timeout",
        with = "crate::config::humantime_serde_compat"
    )]
    pub timeout: Duration,
    /// The first delay before offering again after a failure (doubling per failure, with
    /// jitter).
    #[serde(
        default = "backoff_initial",
        with = "crate::config::humantime_serde_compat"
    )]
    pub backoff: Duration,
    /// The longest delay before offering again.
    #[serde(
        default = "backoff_max",
        with = "crate::config::humantime_serde_compat"
    )]
    pub backoff_max: Duration,
}

/// Which of its candidates a publication offers (`ice_transport_policy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IceTransportPolicy {
    /// Every candidate: host, server-reflexive, relay.
    #[default]
    All,
    /// The TURN relay's only.
    Relay,
}

fn enabled() -> bool {
    true
}

fn post_timeout() -> Duration {
    POST_TIMEOUT
}

fn backoff_initial() -> Duration {
    Backoff::default().initial
}

fn backoff_max() -> Duration {
    Backoff::default().max
}

impl std::fmt::Debug for PublishConfig {
    // The token is a secret: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishConfig")
            .field("url", &Url::parse(&self.url).map(|u| redact(&u)))
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("ca_file", &self.ca_file)
            .field("ice_servers", &self.ice_servers)
            .field("turn_username", &self.turn_username)
            .field(
                "turn_password",
                &self.turn_password.as_ref().map(|_| "<set>"),
            )
            .field("ice_transport_policy", &self.ice_transport_policy)
            .field("enabled", &self.enabled)
            .field("timeout", &self.timeout)
            .field("backoff", &self.backoff)
            .field("backoff_max", &self.backoff_max)
            .finish()
    }
}

impl PublishConfig {
    /// Checks entry `i`; errors name the key (`publish[0].url`) and the value.
    pub fn validate(&self, i: usize) -> Result<Url, Error> {
        let key = |k: &str| format!("publish[{i}].{k}");
        let url = Url::parse(&self.url).map_err(|e| {
            Error::config(
                key("url"),
                format_args!(
                    "{:?}: {e} (e.g. \"http://sfu.lan:8889/cam/whip\")",
                    self.url
                ),
            )
        })?;
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(Error::config(
                    key("url"),
                    format_args!(
                        "{:?}: scheme {other:?}: expected http:// or https://",
                        redact(&url)
                    ),
                ));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::config(
                key("url"),
                format_args!("{:?}: no host", self.url),
            ));
        }
        if let Some(token) = &self.token
            && (token.is_empty()
                || token.len() > 4096
                || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(Error::config(
                key("token"),
                "must be 1 to 4096 printable ASCII characters without spaces (sent as \
                 `Authorization: Bearer <token>`)",
            ));
        }
        for (k, value) in [
            ("timeout", self.timeout),
            ("backoff", self.backoff),
            ("backoff_max", self.backoff_max),
        ] {
            if value < Duration::from_millis(10) || value > Duration::from_secs(600) {
                return Err(Error::config(
                    key(k),
                    format_args!(
                        "{}: must be between 10ms and 10 minutes",
                        humantime::format_duration(value)
                    ),
                ));
            }
        }
        if self.backoff_max < self.backoff {
            return Err(Error::config(
                key("backoff_max"),
                format_args!(
                    "{}: must be at least backoff ({})",
                    humantime::format_duration(self.backoff_max),
                    humantime::format_duration(self.backoff)
                ),
            ));
        }
        self.turn_server(i)?;
        for (j, server) in self.ice_servers.iter().enumerate() {
            let scheme = server.split(':').next().unwrap_or_default();
            let key = format!("publish[{i}].ice_servers[{j}]");
            match scheme {
                "stun" if server.len() > "stun:".len() => {}
                "turn" => {}
                "turns" | "stuns" => {
                    return Err(Error::config(
                        key,
                        format_args!(
                            "{server:?}: {scheme}: servers are not supported for publications: the \
                             sink reaches STUN and TURN servers over UDP only (see the sink's \
                             README, TURN); use a turn: or stun: URL"
                        ),
                    ));
                }
                _ => {
                    return Err(Error::config(
                        key,
                        format_args!(
                            "{server:?}: expected a URL such as \"stun:stun.example.net:3478\""
                        ),
                    ));
                }
            }
        }
        self.ca_certificates(i)?;
        Ok(url)
    }

    /// The TURN server of `ice_servers` with its credential, if there is one; errors name the
    /// key and the value.
    pub fn turn_server(&self, i: usize) -> Result<Option<TurnServer>, Error> {
        let mut found: Option<(usize, String)> = None;
        for (j, url) in self.ice_servers.iter().enumerate() {
            if !url.starts_with("turn:") {
                continue;
            }
            let key = format!("publish[{i}].ice_servers[{j}]");
            let server = relay::parse_turn_url(url).map_err(|e| {
                Error::config(
                    &key,
                    format_args!("{url:?}: {e} (e.g. \"turn:turn.example.net:3478\")"),
                )
            })?;
            if let Some((first, _)) = &found {
                return Err(Error::config(
                    key,
                    format_args!(
                        "{url:?}: a second TURN server; a publication relays through one \
                         (ice_servers[{first}])"
                    ),
                ));
            }
            found = Some((j, server));
        }
        let credential = |k: &str, v: &Option<String>| -> Result<Option<String>, Error> {
            match v {
                Some(v) if v.is_empty() || v.len() > 512 || v.chars().any(char::is_control) => {
                    Err(Error::config(
                        format!("publish[{i}].{k}"),
                        "must be 1 to 512 characters, no control characters",
                    ))
                }
                v => Ok(v.clone()),
            }
        };
        let username = credential("turn_username", &self.turn_username)?;
        let password = credential("turn_password", &self.turn_password)?;
        match (found, username, password) {
            (Some((_, server)), Some(username), Some(password)) => Ok(Some(TurnServer {
                server,
                username,
                password,
            })),
            (Some((j, _)), username, _) => Err(Error::config(
                format!(
                    "publish[{i}].{}",
                    if username.is_none() {
                        "turn_username"
                    } else {
                        "turn_password"
                    }
                ),
                format_args!(
                    "not set: the TURN server {:?} (ice_servers[{j}]) needs turn_username and \
                     turn_password",
                    self.ice_servers[j]
                ),
            )),
            (None, Some(_), _) | (None, _, Some(_)) => Err(Error::config(
                format!(
                    "publish[{i}].{}",
                    if self.turn_username.is_some() {
                        "turn_username"
                    } else {
                        "turn_password"
                    }
                ),
                "set, but ice_servers has no turn: server to use it with",
            )),
            (None, None, None) if self.ice_transport_policy == IceTransportPolicy::Relay => {
                Err(Error::config(
                    format!("publish[{i}].ice_transport_policy"),
                    "\"relay\": ice_servers has no turn: server to relay through",
                ))
            }
            (None, None, None) => Ok(None),
        }
    }

    /// The certificates of `ca_file` (none without it); the error names the key and the file.
    pub fn ca_certificates(
        &self,
        i: usize,
    ) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, Error> {
        let Some(path) = &self.ca_file else {
            return Ok(Vec::new());
        };
        client::read_ca_file(path).map_err(|e| {
            Error::config(
                format!("publish[{i}].ca_file"),
                format_args!("{}: {e}", path.display()),
            )
        })
    }

    /// What the publication trusts for https: the system's roots and `ca_file`. An `https://`
    /// URL with nothing to trust is a configuration error; an `http://` one gets a client
    /// that refuses every certificate should it be redirected to https.
    fn tls(&self, i: usize, url: &Url) -> Result<Arc<rustls::ClientConfig>, Error> {
        let extra = self.ca_certificates(i)?;
        match client::tls_config(&extra) {
            Ok(config) => Ok(config),
            Err(client::TlsSetupError::NoRoots) if url.scheme() == "http" => {
                client::tls_config_trusting_nothing()
                    .map_err(|e| Error::failed(format!("publish[{i}]: TLS: {e}")))
            }
            Err(e) => Err(Error::config(
                format!("publish[{i}].url"),
                format_args!("{:?}: {e}", redact(url)),
            )),
        }
    }
}

/// What the worker tells a publication's thread.
#[derive(Debug)]
enum Signal {
    /// Connection `key` connected.
    Connected(u64),
    /// Connection `key` is gone (the worker removed it), and why.
    Lost(u64, String),
    /// The sink is stopping.
    Stop,
}

/// How a worker reaches a publication's thread.
#[derive(Debug)]
pub struct Link {
    tx: Sender<Signal>,
}

impl Link {
    /// Connection `key` connected.
    pub fn connected(&self, key: u64) {
        let _ = self.tx.send(Signal::Connected(key));
    }

    /// Connection `key` is gone, for `reason`.
    pub fn lost(&self, key: u64, reason: &str) {
        let _ = self.tx.send(Signal::Lost(key, reason.to_owned()));
    }
}

/// What the status and the metrics show of a publication.
#[derive(Debug, Clone)]
struct Report {
    phase: Phase,
    error: Option<String>,
    resource: Option<String>,
    reconnects: u64,
    /// The relayed address of the last offer's TURN allocation.
    relay: Option<SocketAddr>,
}

struct Publication {
    shown: String,
    report: Arc<Mutex<Report>>,
    stats: Arc<ViewerStats>,
    tx: Sender<Signal>,
    thread: Mutex<Option<(JoinHandle<()>, Receiver<()>)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every publication. See the [module docs](self).
pub struct Publishers {
    list: Vec<Publication>,
}

impl std::fmt::Debug for Publishers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publishers")
            .field("count", &self.list.len())
            .finish_non_exhaustive()
    }
}

impl Publishers {
    /// Starts a thread per enabled entry of `configs` (validated already).
    pub fn start(sessions: &Arc<Sessions>, configs: &[PublishConfig]) -> Result<Self, Error> {
        let mut list = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            let url = config.validate(i)?;
            let shown = redact(&url);
            let (tx, rx) = channel();
            let report = Arc::new(Mutex::new(Report {
                phase: if config.enabled {
                    Phase::Offering
                } else {
                    Phase::Disabled
                },
                error: None,
                resource: None,
                reconnects: 0,
                relay: None,
            }));
            let stats = Arc::new(ViewerStats::default());
            let thread = if config.enabled {
                let client = Client::new(config.tls(i, &url)?)
                    .map_err(|e| Error::failed(format!("publish[{i}]: no HTTP runtime: {e}")))?;
                let driver = Driver {
                    index: i,
                    url,
                    shown: shown.clone(),
                    token: config.token.clone(),
                    gather_timeout: sessions.config().gather_timeout,
                    turn: config.turn_server(i)?,
                    relay_only: config.ice_transport_policy == IceTransportPolicy::Relay,
                    relayed: None,
                    sessions: Arc::clone(sessions),
                    client,
                    link: Arc::new(Link { tx: tx.clone() }),
                    rx,
                    timeout: config.timeout,
                    machine: Machine::new(Backoff {
                        initial: config.backoff,
                        max: config.backoff_max,
                    }),
                    report: Arc::clone(&report),
                    stats: Arc::clone(&stats),
                    current: None,
                    connection: 0,
                };
                let (done_tx, done_rx) = channel::<()>();
                let handle = std::thread::Builder::new()
                    .name(format!("webrtc-publish-{i}"))
                    .spawn(move || {
                        driver.run();
                        let _ = done_tx.send(());
                    })
                    .map_err(|e| {
                        Error::failed(format!("publish[{i}]: cannot start its thread: {e}"))
                    })?;
                tracing::info!(url = %shown, "publishing the camera over WHIP");
                Some((handle, done_rx))
            } else {
                tracing::info!(url = %shown, "publication disabled (enabled = false)");
                None
            };
            list.push(Publication {
                shown,
                report,
                stats,
                tx,
                thread: Mutex::new(thread),
            });
        }
        Ok(Self { list })
    }

    /// Stops every publication (each deletes its session, within [`DELETE_TIMEOUT`]), waiting
    /// at most `grace` in all.
    pub fn stop(&self, grace: Duration) {
        for p in &self.list {
            let _ = p.tx.send(Signal::Stop);
        }
        let deadline = Instant::now() + grace;
        for p in &self.list {
            let Some((handle, done)) = lock(&p.thread).take() else {
                continue;
            };
            match done.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                    let _ = handle.join();
                }
                Err(RecvTimeoutError::Timeout) => {
                    tracing::warn!(url = %p.shown, "the publication did not stop within {grace:?}; leaving it behind");
                }
            }
        }
    }

    /// Whether there is any.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `GET /publish`: each publication's URL (without its query), state, last error, session,
    /// re-publications, TURN relayed address and bytes sent.
    pub fn status(&self) -> serde_json::Value {
        let list: Vec<serde_json::Value> = self
            .list
            .iter()
            .map(|p| {
                let r = lock(&p.report).clone();
                serde_json::json!({
                    "url": p.shown,
                    "state": r.phase.name(),
                    "state_code": r.phase as u8,
                    "error": r.error,
                    "resource": r.resource.as_deref().and_then(|u| Url::parse(u).ok()).map(|u| redact(&u)),
                    "reconnects": r.reconnects,
                    "relay": r.relay.map(|a| a.to_string()),
                    "bytes_sent": p.stats.bytes_sent.load(Relaxed),
                    "frames_sent": p.stats.frames_sent.load(Relaxed),
                })
            })
            .collect();
        serde_json::json!({ "publications": list })
    }

    /// The metrics: `whip_publish_state{url}` (0 disabled, 1 offering, 2 connecting, 3 live,
    /// 4 retrying, 5 stopped), `whip_publish_reconnects_total{url}`,
    /// `whip_publish_bytes_sent_total{url}`, and `whip_publications_live`.
    pub fn render(&self) -> String {
        if self.list.is_empty() {
            return String::new();
        }
        let reports: Vec<Report> = self.list.iter().map(|p| lock(&p.report).clone()).collect();
        let labels: Vec<[(&str, &str); 1]> = self
            .list
            .iter()
            .map(|p| [("url", p.shown.as_str())])
            .collect();
        let mut m = MetricsText::new();
        m.gauges(
            "whip_publish_state",
            "WHIP publication state: 0 disabled, 1 offering, 2 connecting, 3 live, 4 retrying, 5 stopped.",
            labels.iter().zip(&reports).map(|(l, r)| (&l[..], f64::from(r.phase as u8))),
        )
        .gauge(
            "whip_publications_live",
            "WHIP publications live.",
            reports.iter().filter(|r| r.phase == Phase::Live).count() as f64,
        )
        .counters(
            "whip_publish_reconnects_total",
            "WHIP offers made again after a failure.",
            labels.iter().zip(&reports).map(|(l, r)| (&l[..], r.reconnects)),
        )
        .counters(
            "whip_publish_bytes_sent_total",
            "RTP bytes (headers included) sent to the WHIP endpoint.",
            labels
                .iter()
                .zip(&self.list)
                .map(|(l, p)| (&l[..], p.stats.bytes_sent.load(Relaxed))),
        );
        m.finish()
    }
}

/// A publication's thread: does what its [`Machine`] says.
struct Driver {
    index: usize,
    url: Url,
    shown: String,
    token: Option<String>,
    gather_timeout: Duration,
    /// The TURN server each offer allocates a relay on, if any.
    turn: Option<TurnServer>,
    /// `ice_transport_policy = "relay"`: only the relay candidate is offered.
    relay_only: bool,
    /// The relayed address of the last offer's allocation.
    relayed: Option<SocketAddr>,
    timeout: Duration,
    sessions: Arc<Sessions>,
    client: Client,
    link: Arc<Link>,
    rx: Receiver<Signal>,
    machine: Machine,
    report: Arc<Mutex<Report>>,
    stats: Arc<ViewerStats>,
    /// The connection on its worker: (worker, key).
    current: Option<(usize, u64)>,
    connection: u64,
}

impl Driver {
    /// Waits (at most [`CAMERA_WAIT`], or until told to stop) for the camera's first frame, so
    /// that a publication starting with stackctl does not offer before there is video and
    /// report that as a failure. Whether it was told to stop.
    fn wait_for_the_camera(&self) -> bool {
        let deadline = Instant::now() + CAMERA_WAIT;
        while self.sessions.hub().camera().is_none() && Instant::now() < deadline {
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return true,
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            }
        }
        false
    }

    fn run(mut self) {
        if self.wait_for_the_camera() {
            // Nothing was offered: nothing to delete.
            let out = self.machine.on(Instant::now(), jitter(), Input::Stop);
            self.apply(out, &mut VecDeque::new());
            return;
        }
        let mut todo: VecDeque<Action> = VecDeque::new();
        let start = self.machine.start();
        self.apply(start, &mut todo);
        loop {
            while let Some(action) = todo.pop_front() {
                match action {
                    Action::Post => {
                        let input = self.post();
                        let out = self.machine.on(Instant::now(), jitter(), input);
                        self.apply(out, &mut todo);
                    }
                    Action::Delete(resource) => self.delete(&resource),
                }
            }
            self.show();
            if self.machine.phase() == Phase::Stopped {
                break;
            }
            let now = Instant::now();
            let wait = self
                .machine
                .retry_at()
                .map_or(Duration::from_secs(3600), |t| {
                    t.saturating_duration_since(now)
                });
            let out = match self.rx.recv_timeout(wait) {
                Ok(Signal::Connected(key)) if self.is_current(key) => {
                    self.machine.on(Instant::now(), jitter(), Input::Connected)
                }
                Ok(Signal::Lost(key, reason)) if self.is_current(key) => {
                    self.current = None;
                    self.machine
                        .on(Instant::now(), jitter(), Input::Lost { reason })
                }
                // News of a connection given up already.
                Ok(Signal::Connected(_) | Signal::Lost(..)) => Output::default(),
                Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    if let Some((worker, key)) = self.current.take() {
                        self.sessions.close_publication(worker, key);
                    }
                    self.machine.on(Instant::now(), jitter(), Input::Stop)
                }
                Err(RecvTimeoutError::Timeout) => self.machine.tick(Instant::now()),
            };
            self.apply(out, &mut todo);
        }
    }

    fn is_current(&self, key: u64) -> bool {
        self.current.is_some_and(|(_, k)| k == key)
    }

    fn apply(&mut self, out: Output, todo: &mut VecDeque<Action>) {
        match out.log {
            Some(Log::Info(line)) => tracing::info!(url = %self.shown, "WHIP publication {line}"),
            Some(Log::Warn(line)) => tracing::warn!(url = %self.shown, "WHIP publication: {line}"),
            None => {}
        }
        todo.extend(out.actions);
        self.show();
    }

    fn show(&self) {
        *lock(&self.report) = Report {
            phase: self.machine.phase(),
            error: self.machine.error().map(str::to_owned),
            resource: self.machine.resource().map(str::to_owned),
            reconnects: self.machine.reconnects(),
            relay: self.relayed,
        };
    }

    fn delete(&self, resource: &str) {
        let Ok(url) = Url::parse(resource) else {
            return;
        };
        match self
            .client
            .delete(&url, self.token.as_deref(), DELETE_TIMEOUT)
        {
            Ok(status) => {
                tracing::debug!(resource = %redact(&url), %status, "WHIP session deleted")
            }
            Err(e) => tracing::debug!(resource = %redact(&url), "WHIP session not deleted: {e}"),
        }
    }

    /// Offers the camera; on a 201, hands the connection to its worker.
    fn post(&mut self) -> Input {
        let refused = |error: String| Input::Refused {
            error,
            retry_after: None,
            resource: None,
        };
        let Some(camera) = self.sessions.hub().camera() else {
            return refused("no video from the camera yet".to_owned());
        };
        let fmtp = format!(
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={}",
            camera.profile_level_id
        );
        let worker = self.sessions.publication_worker();
        let mut candidates = if self.relay_only {
            Vec::new()
        } else {
            self.sessions.candidates(worker, self.gather_timeout)
        };
        self.relayed = None;
        let mut relay = match &self.turn {
            None => None,
            Some(turn) => match Relay::allocate(turn, self.timeout) {
                Ok(relay) => {
                    tracing::debug!(url = %self.shown, relayed = %relay.relayed(), "TURN allocation");
                    self.relayed = Some(relay.relayed());
                    candidates.push(crate::peer::Candidate::Relay {
                        addr: relay.relayed(),
                        base: relay.local(),
                    });
                    Some(relay)
                }
                Err(e) => return refused(e.to_string()),
            },
        };
        let built =
            match self
                .sessions
                .factory()
                .offer(Instant::now(), &fmtp, PAYLOAD_TYPE, &candidates)
            {
                Ok(built) => built,
                Err(e) => return refused(format!("cannot build the offer: {e}")),
            };
        let reply = match self.client.post_offer(
            &self.url,
            self.token.as_deref(),
            &built.answer,
            self.timeout,
        ) {
            Ok(reply) => reply,
            Err(e) => return refused(e.to_string()),
        };
        let status = reply.status;
        if status != hyper::StatusCode::CREATED {
            return Input::Refused {
                error: describe(status, &reply.body),
                retry_after: reply.retry_after,
                resource: None,
            };
        }
        let Some(location) = reply.location else {
            return refused(format!(
                "{status} without a Location header (RFC 9725 requires one)"
            ));
        };
        if reply.url.scheme() == "https" && location.scheme() != "https" {
            // Its DELETE would carry the token in clear: the session is left to expire.
            return refused(format!(
                "the session's Location {} is not https:// although the endpoint is: refused",
                redact(&location)
            ));
        }
        let resource = location.to_string();
        let bad = |error: String| Input::Refused {
            error,
            retry_after: None,
            resource: Some(resource.clone()),
        };
        if reply.content_type.as_deref() != Some("application/sdp") {
            return bad(format!(
                "the answer's Content-Type is {:?}, not application/sdp",
                reply.content_type.unwrap_or_default()
            ));
        }
        let Ok(answer) = String::from_utf8(reply.body.to_vec()) else {
            return bad("the answer is not UTF-8 text".to_owned());
        };
        let remote = remote_addresses(&answer);
        if let Some(relay) = relay.as_mut() {
            // A relay relays within its address family only.
            let reachable: Vec<SocketAddr> = remote
                .iter()
                .copied()
                .filter(|a| a.is_ipv4() == relay.relayed().is_ipv4())
                .collect();
            if reachable.is_empty() && self.relay_only {
                return bad(format!(
                    "the answer has no UDP candidate the TURN relay {} can reach (its address \
                     family), and ice_transport_policy = \"relay\"",
                    relay.relayed()
                ));
            }
            if let Err(e) = relay.permit(&reachable, self.timeout) {
                return bad(e.to_string());
            }
        }
        let mut built = built;
        let description = match RTCSessionDescription::answer(answer) {
            Ok(d) => d,
            Err(e) => return bad(format!("the answer is not valid SDP: {e}")),
        };
        if let Err(e) = built.pc.set_remote_description(Instant::now(), description) {
            return bad(format!("the answer cannot be used: {e}"));
        }
        self.connection += 1;
        let id = format!("whip-{}-{}", self.index, self.connection);
        let key = self.sessions.adopt_publication(
            worker,
            id,
            built,
            Arc::clone(&self.stats),
            Arc::clone(&self.link),
            &remote,
            relay.map(Box::new),
        );
        self.current = Some((worker, key));
        Input::Answered { resource }
    }
}

/// A status line from an endpoint's refusal: its code, a hint for the usual ones, and the
/// start of its body.
fn describe(status: hyper::StatusCode, body: &[u8]) -> String {
    let hint = match status.as_u16() {
        401 | 403 => " (the endpoint refused the token: check publish.token)",
        404 => " (no such stream or path: check publish.url)",
        405 => " (this URL does not take WHIP offers: check publish.url)",
        _ => "",
    };
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        format!("the endpoint answered {status}{hint}")
    } else {
        format!("the endpoint answered {status}{hint}: {text}")
    }
}

/// The UDP addresses in an answer's candidates (an ICE-lite endpoint never sends a check of
/// its own, so its answers to ours are routed by these).
pub fn remote_addresses(sdp: &str) -> Vec<SocketAddr> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a=candidate:"))
        .filter_map(|c| {
            let f: Vec<&str> = c.split_whitespace().collect();
            if !f.get(2)?.eq_ignore_ascii_case("udp") {
                return None;
            }
            let ip: IpAddr = f.get(4)?.parse().ok()?;
            let port: u16 = f.get(5)?.parse().ok()?;
            Some(SocketAddr::new(ip, port))
        })
        .take(crate::route::MAX_ADDRESSES_PER_VIEWER)
        .collect()
}

/// A number in `[0, 1)` for the back-off's jitter.
fn jitter() -> f64 {
    f64::from(crate::hub::random_u32()) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Url, String> {
        let config: PublishConfig =
            stackctl_sink_sdk::parse_config(text).map_err(|e| e.to_string())?;
        config.validate(2).map_err(|e| e.to_string())
    }

    #[test]
    fn errors_name_the_key_and_the_value() {
        assert!(check(r#"url = "http://sfu.lan:8889/cam/whip""#).is_ok());
        assert!(check(r#"url = "https://sfu.example.net/whip""#).is_ok());
        for (text, key, value) in [
            (r#"url = "sfu.lan/whip""#, "publish[2].url", "sfu.lan/whip"),
            (r#"url = "rtmp://sfu.lan/live""#, "publish[2].url", "rtmp"),
            (
                "url = \"https://sfu.lan/whip\"\nca_file = \"/nonexistent/ca.pem\"",
                "publish[2].ca_file",
                "/nonexistent/ca.pem: cannot read it",
            ),
            (
                "url = \"https://sfu.lan/whip\"\nca_file = \"Cargo.toml\"",
                "publish[2].ca_file",
                "Cargo.toml: no certificate in it",
            ),
            (
                "url = \"http://sfu.lan/whip\"\nice_servers = [\"turns:turn.lan:5349\"]",
                "publish[2].ice_servers[0]",
                "turns:turn.lan:5349\": turns: servers are not supported",
            ),
            (
                "url = \"http://sfu.lan/whip\"\nice_servers = [\"turn:turn.lan:3478\"]",
                "publish[2].turn_username",
                "not set: the TURN server \"turn:turn.lan:3478\" (ice_servers[0])",
            ),
            (
                "url = \"http://sfu.lan/whip\"\nice_servers = [\"turn:t?transport=tcp\"]\n\
                 turn_username = \"u\"\nturn_password = \"p\"",
                "publish[2].ice_servers[0]",
                "only UDP",
            ),
            (
                "url = \"http://sfu.lan/whip\"\nice_servers = [\"turn:a\", \"turn:b\"]\n\
                 turn_username = \"u\"\nturn_password = \"p\"",
                "publish[2].ice_servers[1]",
                "a second TURN server",
            ),
            (
                "url = \"http://sfu.lan/whip\"\nturn_password = \"p\"",
                "publish[2].turn_password",
                "no turn: server",
            ),
            (
                "url = \"http://sfu.lan/whip\"\nice_transport_policy = \"relay\"",
                "publish[2].ice_transport_policy",
                "no turn: server",
            ),
            (
                "url = \"http://sfu.lan/whip\"\nice_servers = [\"stun:\"]",
                "publish[2].ice_servers[0]",
                "expected a URL",
            ),
            (
                "url = \"http://sfu.lan/whip\"\ntoken = \"a b\"",
                "publish[2].token",
                "printable",
            ),
            (
                "url = \"http://sfu.lan/whip\"\nice_servers = [\"stun.lan\"]",
                "publish[2].ice_servers[0]",
                "stun.lan",
            ),
        ] {
            let e = check(text).unwrap_err();
            assert!(e.contains(key) && e.contains(value), "{text}: {e}");
        }
        assert!(check("url = \"http://a/\"\ncolour = 1").is_err());
        assert!(check("url = \"http://a/\"\nice_transport_policy = \"none\"").is_err());
        assert!(
            check(
                "url = \"http://a/\"\nice_servers = [\"stun:s\", \"turn:t:3479\"]\n\
                 turn_username = \"u\"\nturn_password = \"p\"\nice_transport_policy = \"relay\""
            )
            .is_ok()
        );
    }

    #[test]
    fn the_token_is_never_shown() {
        let config: PublishConfig = stackctl_sink_sdk::parse_config(
            "url = \"http://u:p@sfu/whip?key=k\"\ntoken = \"s3cret\"",
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("key=k") && !shown.contains(":p@"),
            "{shown}"
        );
    }

    #[test]
    fn remote_addresses_are_the_udp_candidates() {
        let sdp = "v=0\r\na=candidate:1 1 UDP 2130706431 192.0.2.1 8189 typ host\r\n\
                   a=candidate:2 1 tcp 1 192.0.2.1 8189 typ host tcptype passive\r\n\
                   a=candidate:3 1 udp 1 abc.local 9 typ host\r\n\
                   a=candidate:4 1 udp 1 2001:db8::1 5000 typ srflx raddr 0.0.0.0 rport 0\r\n";
        assert_eq!(
            remote_addresses(sdp),
            vec![
                "192.0.2.1:8189".parse::<SocketAddr>().unwrap(),
                "[2001:db8::1]:5000".parse().unwrap()
            ]
        );
    }

    #[test]
    fn refusals_say_what_to_check() {
        let e = describe(hyper::StatusCode::UNAUTHORIZED, b"bad token\n");
        assert_eq!(
            e,
            "the endpoint answered 401 Unauthorized (the endpoint refused the token: check publish.token): bad token"
        );
        assert_eq!(
            describe(hyper::StatusCode::SERVICE_UNAVAILABLE, b""),
            "the endpoint answered 503 Service Unavailable"
        );
    }
}
