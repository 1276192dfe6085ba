//! The `[plugins.streaming]` section.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use stackctl_sink_sdk::Error;

/// The sink's configuration (stackctl's own keys, such as `path`, removed).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Viewers connected at once; one more gets `503` (legacy `--max-clients`,
    /// `STREAMING_MAX_CLIENTS`). An answered offer counts only once its viewer connects.
    pub max_clients: usize,
    /// Answered offers whose viewers have not connected yet, at most (they do not count
    /// against `max_clients`; one more gets `503` with `Retry-After: 1`). Unset: `max_clients`,
    /// at most [`MAX_PENDING_DEFAULT`].
    pub max_pending: Option<usize>,
    /// A viewer that has not connected this long after its answer is removed (and its pending
    /// slot freed).
    #[serde(with = "humantime_serde_compat")]
    pub connect_timeout: Duration,
    /// STUN (or TURN) server URLs advertised to viewers and used to gather server-reflexive
    /// candidates. A list, or the legacy comma-separated string. None is needed on a LAN.
    #[serde(deserialize_with = "url_list")]
    pub stun: Vec<String>,
    /// Addresses to gather host candidates on. `0.0.0.0` means every non-loopback IPv4
    /// interface; loopback must be named (`127.0.0.1`).
    pub bind: Vec<IpAddr>,
    /// One UDP port shared by every viewer (firewall and NAT friendly); 0: an ephemeral port
    /// per worker thread.
    pub udp_port: u16,
    /// Extra addresses advertised as host candidates, for a 1:1 NAT (a public IP that
    /// forwards to this board).
    pub nat_ips: Vec<IpAddr>,
    /// Resolve viewers' mDNS (`.local`) candidates. Accepted for compatibility; this sink does
    /// not resolve them (it says so at start): it learns each viewer's address from the
    /// viewer's own connectivity checks, which is how browsers connect anyway.
    pub mdns: bool,
    /// Frames a viewer may have waiting (beyond the GOP it starts with) before it skips to the
    /// next IDR.
    pub viewer_queue: usize,
    /// Start a new viewer with the frames since the last IDR, so it shows a picture at once
    /// instead of waiting for the next IDR.
    pub gop_cache: bool,
    /// How long a STUN server may take to tell the sink its public address before an answer
    /// goes out without it (the first answers after start, or after the address expired).
    #[serde(with = "humantime_serde_compat")]
    pub gather_timeout: Duration,
    /// No ICE traffic for this long: the viewer is `disconnected`.
    #[serde(with = "humantime_serde_compat")]
    pub disconnect_timeout: Duration,
    /// Disconnected for this long: the viewer is removed.
    #[serde(with = "humantime_serde_compat")]
    pub failed_timeout: Duration,
    /// Where RTP timestamps start: `random` (per viewer, RFC 3550) or `monotonic` (the
    /// camera's `CLOCK_MONOTONIC` at 90 kHz, so a viewer on this host can measure latency).
    pub rtp_timestamp_origin: TimestampOrigin,
    /// Largest offer accepted, in bytes.
    pub max_offer_bytes: usize,
    /// Worker threads driving the connections. Unset: one per [`VIEWERS_PER_THREAD`] of
    /// `max_clients`, at most one per core.
    pub threads: Option<usize>,
    /// Which offers to answer when the camera's H.264 profile is not among the offered ones.
    pub profile_policy: ProfilePolicy,
    /// Send the playout-delay header extension (min = max = 0) when the viewer offers it: the
    /// browser renders each frame as soon as it is decoded, with no smoothing buffer.
    pub playout_delay: bool,
    /// RTP packets kept per viewer to answer NACKs from (a power of two, up to 32768): at
    /// 8 Mbit/s, 1024 packets are about a second.
    pub nack_window: u16,
    /// WHIP publications (`[[plugins.streaming.publish]]`): the camera offered to SFUs.
    pub publish: Vec<crate::publish::PublishConfig>,
    /// Send the detector's results to viewers that open a data channel labelled `detections`
    /// ([`crate::overlay`]). `false`: such a channel is closed as soon as it opens.
    pub detections: bool,
}

/// What to answer when the offer lacks the camera's H.264 profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfilePolicy {
    /// The best offered format (the camera's profile, else the highest offered with
    /// packetization-mode 1), sending the camera's stream anyway: software decoders play a
    /// stream of a profile they did not name. Counted in `webrtc_profile_mismatch_total`.
    Best,
    /// Only a format whose profile decodes the camera's; an offer without one is refused (400).
    Strict,
}

/// The most pending offers by default (see [`Config::max_pending`]).
pub const MAX_PENDING_DEFAULT: usize = 32;

/// Viewers one worker thread is sized for when `threads` is unset. Measured: 50 viewers of a
/// 1080p30 8 Mbit/s stream take a quarter of an x86 server core; a Cortex-A55 is a few times
/// slower, so 25 leave a board's core about half idle.
pub const VIEWERS_PER_THREAD: usize = 25;

/// Where RTP timestamps start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampOrigin {
    /// A random offset per viewer.
    Random,
    /// None: the camera's monotonic clock at 90 kHz, modulo 2^32.
    Monotonic,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_clients: 10,
            max_pending: None,
            connect_timeout: Duration::from_secs(5),
            stun: Vec::new(),
            bind: vec![IpAddr::from([0, 0, 0, 0])],
            udp_port: 0,
            nat_ips: Vec::new(),
            mdns: false,
            viewer_queue: 90,
            gop_cache: true,
            gather_timeout: Duration::from_secs(2),
            disconnect_timeout: Duration::from_secs(5),
            failed_timeout: Duration::from_secs(10),
            rtp_timestamp_origin: TimestampOrigin::Random,
            max_offer_bytes: 64 * 1024,
            threads: None,
            profile_policy: ProfilePolicy::Best,
            playout_delay: true,
            nack_window: 1024,
            publish: Vec::new(),
            detections: true,
        }
    }
}

/// The most viewers a board is configured for: each costs ~0.3 MB and two file descriptors.
pub const MAX_CLIENTS: usize = 1000;

impl Config {
    /// Checks what serde cannot; errors name the key.
    pub fn validate(&self) -> Result<(), Error> {
        if !(1..=MAX_CLIENTS).contains(&self.max_clients) {
            return Err(Error::config(
                "max_clients",
                format_args!("{}: must be between 1 and {MAX_CLIENTS}", self.max_clients),
            ));
        }
        if self.bind.is_empty() {
            return Err(Error::config(
                "bind",
                "empty: name at least one address (0.0.0.0 for every interface)",
            ));
        }
        for (i, url) in self.stun.iter().enumerate() {
            let scheme = url.split(':').next().unwrap_or_default();
            if !matches!(scheme, "stun" | "stuns" | "turn" | "turns") || !url.contains(':') {
                return Err(Error::config(
                    format!("stun[{i}]"),
                    format_args!("{url:?}: expected a URL such as \"stun:stun.example.net:3478\""),
                ));
            }
        }
        if !(2..=10_000).contains(&self.viewer_queue) {
            return Err(Error::config(
                "viewer_queue",
                format_args!("{}: must be between 2 and 10000 frames", self.viewer_queue),
            ));
        }
        if let Some(pending) = self.max_pending
            && !(1..=MAX_CLIENTS).contains(&pending)
        {
            return Err(Error::config(
                "max_pending",
                format_args!("{pending}: must be between 1 and {MAX_CLIENTS}"),
            ));
        }
        if !self.nack_window.is_power_of_two() {
            return Err(Error::config(
                "nack_window",
                format_args!(
                    "{}: must be a power of two (1024, 2048, ...)",
                    self.nack_window
                ),
            ));
        }
        for (key, value) in [
            ("connect_timeout", self.connect_timeout),
            ("gather_timeout", self.gather_timeout),
            ("disconnect_timeout", self.disconnect_timeout),
            ("failed_timeout", self.failed_timeout),
        ] {
            if value.is_zero() || value > Duration::from_secs(600) {
                return Err(Error::config(
                    key,
                    format_args!(
                        "{}: must be more than 0 and at most 10 minutes",
                        humantime::format_duration(value)
                    ),
                ));
            }
        }
        if let Some(threads) = self.threads
            && !(1..=64).contains(&threads)
        {
            return Err(Error::config(
                "threads",
                format_args!("{threads}: must be between 1 and 64"),
            ));
        }
        if self.publish.len() > crate::publish::MAX_PUBLICATIONS {
            return Err(Error::config(
                "publish",
                format_args!(
                    "{} entries: at most {}",
                    self.publish.len(),
                    crate::publish::MAX_PUBLICATIONS
                ),
            ));
        }
        for (i, publication) in self.publish.iter().enumerate() {
            publication.validate(i)?;
        }
        if !(1024..=1024 * 1024).contains(&self.max_offer_bytes) {
            return Err(Error::config(
                "max_offer_bytes",
                format_args!("{}: must be between 1024 and 1048576", self.max_offer_bytes),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Pending offers allowed: `max_pending`, or `max_clients` up to [`MAX_PENDING_DEFAULT`].
    pub fn pending_limit(&self) -> usize {
        self.max_pending
            .unwrap_or_else(|| self.max_clients.min(MAX_PENDING_DEFAULT))
    }

    /// The STUN servers the sink gathers through: `stun`, and the publications' `stun:`
    /// servers.
    pub fn gathering_servers(&self) -> Vec<String> {
        let mut all = self.stun.clone();
        for server in self
            .publish
            .iter()
            .filter(|p| p.enabled)
            .flat_map(|p| &p.ice_servers)
        {
            if server.starts_with("stun:") && !all.contains(server) {
                all.push(server.clone());
            }
        }
        all
    }

    /// Worker threads for the connections: `threads`, or sized from `max_clients`.
    pub fn worker_threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            self.max_clients
                .div_ceil(VIEWERS_PER_THREAD)
                .clamp(1, cores)
        })
    }
}

/// A list of URLs, or one comma-separated string (the legacy form).
fn url_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Urls {
        One(String),
        Many(Vec<String>),
    }
    let urls = match Urls::deserialize(d)? {
        Urls::One(s) => s.split(',').map(str::to_owned).collect(),
        Urls::Many(v) => v,
    };
    Ok(urls
        .into_iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect())
}

/// Durations as humantime strings (`"5s"`, `"1m 30s"`).
pub(crate) mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de::Error};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| D::Error::custom(format!("{text:?}: {e} (e.g. \"5s\", \"500ms\")")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Error> {
        let config: Config = stackctl_sink_sdk::parse_config(text)?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn stun_accepts_a_list_or_the_legacy_comma_separated_string() {
        let list = parse(r#"stun = ["stun:a.example:3478", "stun:b.example:3478"]"#).unwrap();
        let legacy = parse(r#"stun = "stun:a.example:3478, stun:b.example:3478""#).unwrap();
        assert_eq!(list.stun, legacy.stun);
        assert_eq!(list.stun.len(), 2);
        assert!(parse(r#"stun = """#).unwrap().stun.is_empty());
    }

    #[test]
    fn errors_name_the_key() {
        for (text, key) in [
            ("max_clients = 0", "max_clients"),
            (r#"stun = ["a.example:3478"]"#, "stun[0]"),
            ("viewer_queue = 1", "viewer_queue"),
            (r#"failed_timeout = "0s""#, "failed_timeout"),
            (r#"gather_timeout = "soon""#, "gather_timeout"),
            ("bind = []", "bind"),
            ("threads = 0", "threads"),
            ("max_pending = 0", "max_pending"),
            (r#"connect_timeout = "0s""#, "connect_timeout"),
            ("nack_window = 1000", "nack_window"),
            (r#"profile_policy = "lenient""#, "profile_policy"),
            (r#"bind = ["nowhere"]"#, "bind"),
            ("colour = 1", ""),
            ("[[publish]]\nurl = \"ftp://x/\"", "publish[0].url"),
            ("[[publish]]\nurl = \"http://x/\"\nsecret = 1", "secret"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn threads_follow_max_clients_unless_set() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(parse("max_clients = 10").unwrap().worker_threads(), 1);
        assert_eq!(parse("max_clients = 25").unwrap().worker_threads(), 1);
        assert_eq!(
            parse("max_clients = 26").unwrap().worker_threads(),
            2.min(cores)
        );
        assert_eq!(
            parse("max_clients = 1000").unwrap().worker_threads(),
            cores.min(40)
        );
        assert_eq!(
            parse("max_clients = 10\nthreads = 3")
                .unwrap()
                .worker_threads(),
            3
        );
    }

    #[test]
    fn pending_offers_default_to_max_clients_up_to_a_bound() {
        assert_eq!(parse("max_clients = 10").unwrap().pending_limit(), 10);
        assert_eq!(parse("max_clients = 200").unwrap().pending_limit(), 32);
        assert_eq!(
            parse("max_clients = 200\nmax_pending = 50")
                .unwrap()
                .pending_limit(),
            50
        );
        let strict = parse(r#"profile_policy = "strict""#).unwrap();
        assert_eq!(strict.profile_policy, ProfilePolicy::Strict);
    }

    #[test]
    fn detections_are_on_unless_turned_off() {
        assert!(parse("").unwrap().detections);
        assert!(!parse("detections = false").unwrap().detections);
        let e = parse("detections = \"no\"").unwrap_err().to_string();
        assert!(e.contains("detections"), "{e}");
    }

    #[test]
    fn timestamp_origin() {
        let c = parse(r#"rtp_timestamp_origin = "monotonic""#).unwrap();
        assert_eq!(c.rtp_timestamp_origin, TimestampOrigin::Monotonic);
        assert!(parse(r#"rtp_timestamp_origin = "wall""#).is_err());
    }
}
