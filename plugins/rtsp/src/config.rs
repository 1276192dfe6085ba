//! The `[plugins.rtsp]` section.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;
use stackctl_sink_sdk::Error;

use crate::auth::{self, AuthMethod};

/// The sink's configuration (stackctl's own keys removed). `path` is stackctl's key (the
/// plugin file), so the stream's path is `mount`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The RTSP port (TCP).
    pub port: u16,
    /// The address to listen on (RTSP and RTP/RTCP over UDP); `0.0.0.0` for every interface.
    pub bind: IpAddr,
    /// The stream's path: `rtsp://board:8554/<mount>`. (`path` is stackctl's key for the
    /// plugin file, hence the name.)
    pub mount: String,
    /// Clients (RTSP sessions) at once; one more gets `503 Service Unavailable`.
    pub max_clients: usize,
    /// A session with no request and no RTCP from its client for this long is closed.
    #[serde(with = "humantime_serde_compat")]
    pub session_timeout: Duration,
    /// A request must arrive whole within this time from its first byte (a slow or
    /// half-open client is answered 408 and closed).
    #[serde(with = "humantime_serde_compat")]
    pub request_timeout: Duration,
    /// Server ports for RTP over UDP, `[first, last]` inclusive, one even/odd pair (RTP,
    /// RTCP) per UDP client; `[]` offers TCP only.
    pub udp_ports: Vec<u16>,
    /// Who may watch: `[{ name, password_hash }]`; empty: anyone.
    pub users: Vec<User>,
    /// The schemes offered to clients when `users` is set, strongest first.
    pub auth: Vec<AuthMethod>,
    /// The realm of the challenges; part of every password hash (change it, and the hashes).
    pub realm: String,
    /// Frames a client may have queued before it skips to the next IDR.
    pub client_queue: usize,
    /// Start a new client with the frames since the last IDR (at once), instead of waiting
    /// for the next IDR.
    pub gop_cache: bool,
    /// Worker threads. Unset: one per [`CLIENTS_PER_THREAD`] of `max_clients`, at most one
    /// per core.
    pub threads: Option<usize>,
}

/// One user who may watch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The user name (no `:`).
    pub name: String,
    /// `md5:` and the hex MD5 of `name:realm:password` (see [`auth`](crate::auth)).
    pub password_hash: String,
}

/// Clients one worker thread is sized for when `threads` is unset.
pub const CLIENTS_PER_THREAD: usize = 50;

/// The most clients a board is configured for.
pub const MAX_CLIENTS: usize = 1000;

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 8554,
            bind: IpAddr::from([0, 0, 0, 0]),
            mount: "live".to_owned(),
            max_clients: 10,
            session_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            udp_ports: vec![8600, 8699],
            users: Vec::new(),
            auth: vec![AuthMethod::Digest, AuthMethod::Basic],
            realm: "stackctl".to_owned(),
            client_queue: 60,
            gop_cache: true,
            threads: None,
        }
    }
}

impl Config {
    /// Checks what serde cannot, and normalises `mount` (no leading or trailing `/`);
    /// errors name the key.
    pub fn validate(mut self) -> Result<Self, Error> {
        if self.port == 0 {
            return Err(Error::config("port", "0: name a port (8554 is RTSP's)"));
        }
        let mount = self.mount.trim_matches('/').to_owned();
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~/".contains(c);
        if mount.is_empty() || !mount.chars().all(allowed) || mount.contains("//") {
            return Err(Error::config(
                "mount",
                format_args!(
                    "{:?}: expected a path such as \"live\" or \"cam/main\" (letters, digits, - . _ ~ /)",
                    self.mount
                ),
            ));
        }
        if mount
            .split('/')
            .any(|s| s.starts_with("trackID=") || s == "." || s == "..")
        {
            return Err(Error::config(
                "mount",
                format_args!("{:?}: a segment of it is reserved", self.mount),
            ));
        }
        self.mount = mount;
        if !(1..=MAX_CLIENTS).contains(&self.max_clients) {
            return Err(Error::config(
                "max_clients",
                format_args!("{}: must be between 1 and {MAX_CLIENTS}", self.max_clients),
            ));
        }
        if self.session_timeout < Duration::from_secs(1)
            || self.session_timeout > Duration::from_secs(3600)
        {
            return Err(Error::config(
                "session_timeout",
                format_args!(
                    "{}: must be between 1 s and 1 h",
                    humantime::format_duration(self.session_timeout)
                ),
            ));
        }
        if self.request_timeout < Duration::from_millis(100)
            || self.request_timeout > Duration::from_secs(600)
        {
            return Err(Error::config(
                "request_timeout",
                format_args!(
                    "{}: must be between 100 ms and 10 min",
                    humantime::format_duration(self.request_timeout)
                ),
            ));
        }
        match self.udp_ports[..] {
            [] => {}
            [first, last] if first % 2 == 0 && first > 0 && last > first => {}
            _ => {
                return Err(Error::config(
                    "udp_ports",
                    format_args!(
                        "{:?}: expected [first, last] with an even first port below last (e.g. [8600, 8699]), or [] for TCP only",
                        self.udp_ports
                    ),
                ));
            }
        }
        if self.realm.is_empty() || self.realm.chars().any(|c| c == '"' || c.is_control()) {
            return Err(Error::config(
                "realm",
                format_args!("{:?}: must be non-empty, without quotes", self.realm),
            ));
        }
        if !self.users.is_empty() && self.auth.is_empty() {
            return Err(Error::config(
                "auth",
                "empty while users are set: offer \"digest\", \"basic\" or both",
            ));
        }
        for (i, user) in self.users.iter().enumerate() {
            if user.name.is_empty() || user.name.contains(':') || user.name.contains('"') {
                return Err(Error::config(
                    format!("users[{i}].name"),
                    format_args!("{:?}: must be non-empty, without ':' or '\"'", user.name),
                ));
            }
            if self.users[..i].iter().any(|u| u.name == user.name) {
                return Err(Error::config(
                    format!("users[{i}].name"),
                    format_args!("{:?}: named twice", user.name),
                ));
            }
            auth::parse_password_hash(&user.password_hash)
                .map_err(|why| Error::config(format!("users[{i}].password_hash"), why))?;
        }
        if !(2..=10_000).contains(&self.client_queue) {
            return Err(Error::config(
                "client_queue",
                format_args!("{}: must be between 2 and 10000 frames", self.client_queue),
            ));
        }
        if let Some(threads) = self.threads
            && !(1..=64).contains(&threads)
        {
            return Err(Error::config(
                "threads",
                format_args!("{threads}: must be between 1 and 64"),
            ));
        }
        Ok(self)
    }

    /// Worker threads: `threads`, or sized from `max_clients`.
    pub fn worker_threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            self.max_clients
                .div_ceil(CLIENTS_PER_THREAD)
                .clamp(1, cores)
        })
    }

    /// The UDP server port pairs, as `(first even port, last port)`; `None` for TCP only.
    pub fn udp_range(&self) -> Option<(u16, u16)> {
        match self.udp_ports[..] {
            [first, last] => Some((first, last)),
            _ => None,
        }
    }
}

/// Durations as humantime strings (`"60s"`, `"1m 30s"`).
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de::Error};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| D::Error::custom(format!("{text:?}: {e} (e.g. \"60s\", \"2m\")")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Error> {
        let config: Config = stackctl_sink_sdk::parse_config(text)?;
        config.validate()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(parse("").unwrap(), Config::default());
        assert_eq!(Config::default().udp_range(), Some((8600, 8699)));
    }

    #[test]
    fn mount_is_normalised() {
        assert_eq!(parse(r#"mount = "/cam/main/""#).unwrap().mount, "cam/main");
    }

    #[test]
    fn errors_name_the_key() {
        let hash = auth::password_hash("a", "stackctl", "pw");
        for (text, key) in [
            ("port = 0", "port"),
            (r#"mount = "/""#, "mount"),
            (r#"mount = "a b""#, "mount"),
            (r#"mount = "live/trackID=0""#, "mount"),
            (r#"mount = "a/../b""#, "mount"),
            ("max_clients = 0", "max_clients"),
            (r#"session_timeout = "0s""#, "session_timeout"),
            (r#"session_timeout = "soon""#, "session_timeout"),
            (r#"request_timeout = "1ms""#, "request_timeout"),
            ("udp_ports = [8601, 8700]", "udp_ports"),
            ("udp_ports = [8600]", "udp_ports"),
            ("udp_ports = [8600, 8600]", "udp_ports"),
            (r#"realm = """#, "realm"),
            ("client_queue = 1", "client_queue"),
            ("threads = 0", "threads"),
            (
                r#"users = [{ name = "a:b", password_hash = "md5:00000000000000000000000000000000" }]"#,
                "users[0].name",
            ),
            (
                r#"users = [{ name = "a", password_hash = "secret" }]"#,
                "users[0].password_hash",
            ),
            (
                &format!(
                    r#"users = [{{ name = "a", password_hash = "{hash}" }}, {{ name = "a", password_hash = "{hash}" }}]"#
                ),
                "users[1].name",
            ),
            (
                &format!(
                    r#"auth = []
users = [{{ name = "a", password_hash = "{hash}" }}]"#
                ),
                "auth",
            ),
            (r#"auth = ["ntlm"]"#, "auth"),
            ("colour = 1", "colour"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn threads_follow_max_clients_unless_set() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(parse("max_clients = 50").unwrap().worker_threads(), 1);
        assert_eq!(
            parse("max_clients = 51").unwrap().worker_threads(),
            2.min(cores)
        );
        assert_eq!(parse("threads = 3").unwrap().worker_threads(), 3);
    }
}
