//! The `[plugins.streaming]` section.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use stackctl_sink_sdk::Error;

/// The sink's configuration (stackctl's own keys, such as `path`, removed).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Viewers at once; one more gets `503` (legacy `--max-clients`, `STREAMING_MAX_CLIENTS`).
    pub max_clients: usize,
    /// STUN (or TURN) server URLs advertised to viewers and used to gather server-reflexive
    /// candidates. A list, or the legacy comma-separated string. None is needed on a LAN.
    #[serde(deserialize_with = "url_list")]
    pub stun: Vec<String>,
    /// Addresses to gather host candidates on. `0.0.0.0` means every non-loopback IPv4
    /// interface; loopback must be named (`127.0.0.1`).
    pub bind: Vec<IpAddr>,
    /// One UDP port shared by every viewer (firewall and NAT friendly); 0: an ephemeral port
    /// per viewer.
    pub udp_port: u16,
    /// Extra addresses advertised as host candidates, for a 1:1 NAT (a public IP that
    /// forwards to this board).
    pub nat_ips: Vec<IpAddr>,
    /// Resolve viewers' mDNS (`.local`) candidates: one more socket per viewer, and not needed
    /// for a browser to connect (its connectivity checks reveal its address).
    pub mdns: bool,
    /// Frames a viewer may have queued before it skips to the next IDR.
    pub viewer_queue: usize,
    /// Start a new viewer with the frames since the last IDR, so it shows a picture at once
    /// instead of waiting for the next IDR.
    pub gop_cache: bool,
    /// How long ICE gathering may take before the answer is sent with what was gathered.
    #[serde(with = "humantime_serde_compat")]
    pub gather_timeout: Duration,
    /// No ICE traffic for this long: the viewer is `disconnected`.
    #[serde(with = "humantime_serde_compat")]
    pub disconnect_timeout: Duration,
    /// Disconnected for this long (or never connected within it): the viewer is removed.
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
}

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
        for (key, value) in [
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
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de::Error};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
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
            (r#"bind = ["nowhere"]"#, "bind"),
            ("colour = 1", ""),
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
    fn timestamp_origin() {
        let c = parse(r#"rtp_timestamp_origin = "monotonic""#).unwrap();
        assert_eq!(c.rtp_timestamp_origin, TimestampOrigin::Monotonic);
        assert!(parse(r#"rtp_timestamp_origin = "wall""#).is_err());
    }
}
