//! A service's `ready` and `liveness` probes.
//!
//! A probe is a table with exactly one kind key (`shm`, `file`, `tcp`, `http`, `exec`, `log`)
//! and optional `interval`, `timeout`, `retries`. The two uses read the timing differently:
//!
//! | | `ready` (is it up yet?) | `liveness` (is it still working?) |
//! | --- | --- | --- |
//! | `interval` | between attempts, default 50ms (cheap checks; READY follows readiness closely) | between attempts, default 10s |
//! | `timeout` | total time the service has to become ready, default 30s | per attempt, default 5s |
//! | `retries` | failed attempts before giving up, 0 = unlimited within `timeout` (default 0) | consecutive failures before a restart, default 3 |
//! | `log` | allowed | not allowed (a log line is an event, not a state) |

use std::path::PathBuf;
use std::time::Duration;

use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize, Serializer};

/// A probe: what to check, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// What to check.
    pub kind: ProbeKind,
    /// Time between attempts.
    pub interval: Duration,
    /// `ready`: the total time the service has to become ready. `liveness`: the time one
    /// attempt may take.
    pub timeout: Duration,
    /// `ready`: the most failed attempts, 0 = unlimited (until `timeout`). `liveness`: the
    /// consecutive failed attempts that make the supervisor restart the service.
    pub retries: u32,
}

/// What a probe checks. The strings may use `{key}` interpolation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeKind {
    /// `shm = "/name"`: the POSIX shared-memory segment exists (in `/dev/shm`) and is not empty.
    Shm(String),
    /// `file = PATH`: the file exists (a relative path is from the service's `cwd`).
    File(PathBuf),
    /// `tcp = "host:port"`: a TCP connection succeeds.
    Tcp(String),
    /// `http = URL`: a GET answers 2xx.
    Http(String),
    /// `exec = [argv...]`: the command exits with status 0 (no shell).
    Exec(Vec<String>),
    /// `log = "regex"`: a line of the service's output matches (`ready` only; the regex is
    /// compiled by the supervisor).
    Log(String),
}

impl ProbeKind {
    /// The key that selects this kind: `"shm"`, `"tcp"`...
    pub fn key(&self) -> &'static str {
        match self {
            Self::Shm(_) => "shm",
            Self::File(_) => "file",
            Self::Tcp(_) => "tcp",
            Self::Http(_) => "http",
            Self::Exec(_) => "exec",
            Self::Log(_) => "log",
        }
    }
}

/// Which use a probe is for; sets its defaults and whether `log` is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeUse {
    Ready,
    Liveness,
}

/// A probe as written.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tcp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exec: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log: Option<String>,
    #[serde(
        default,
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    interval: Option<Duration>,
    #[serde(
        default,
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retries: Option<u32>,
}

const KINDS: &str = "shm, file, tcp, http, exec, log";

impl ProbeSpec {
    fn into_probe(self, usage: ProbeUse) -> Result<Probe, String> {
        let mut kinds = Vec::new();
        let candidates = [
            self.shm.map(ProbeKind::Shm),
            self.file.map(ProbeKind::File),
            self.tcp.map(ProbeKind::Tcp),
            self.http.map(ProbeKind::Http),
            self.exec.map(ProbeKind::Exec),
            self.log.map(ProbeKind::Log),
        ];
        kinds.extend(candidates.into_iter().flatten());
        if kinds.len() > 1 {
            let keys: Vec<_> = kinds.iter().map(ProbeKind::key).collect();
            return Err(format!(
                "a probe has exactly one of {KINDS}; this one has {}",
                keys.join(" and ")
            ));
        }
        let Some(kind) = kinds.pop() else {
            return Err(format!("a probe needs one of {KINDS}; this one has none"));
        };
        if usage == ProbeUse::Liveness && matches!(kind, ProbeKind::Log(_)) {
            return Err("a liveness probe cannot be `log` (use it for `ready`)".into());
        }
        let (interval, timeout, retries) = match usage {
            ProbeUse::Ready => (Duration::from_millis(50), Duration::from_secs(30), 0),
            ProbeUse::Liveness => (Duration::from_secs(10), Duration::from_secs(5), 3),
        };
        Ok(Probe {
            kind,
            interval: self.interval.unwrap_or(interval),
            timeout: self.timeout.unwrap_or(timeout),
            retries: self.retries.unwrap_or(retries),
        })
    }
}

impl From<&Probe> for ProbeSpec {
    fn from(p: &Probe) -> Self {
        let mut spec = Self {
            interval: Some(p.interval),
            timeout: Some(p.timeout),
            retries: Some(p.retries),
            ..Self::default()
        };
        match p.kind.clone() {
            ProbeKind::Shm(v) => spec.shm = Some(v),
            ProbeKind::File(v) => spec.file = Some(v),
            ProbeKind::Tcp(v) => spec.tcp = Some(v),
            ProbeKind::Http(v) => spec.http = Some(v),
            ProbeKind::Exec(v) => spec.exec = Some(v),
            ProbeKind::Log(v) => spec.log = Some(v),
        }
        spec
    }
}

fn deserialize<'de, D: Deserializer<'de>>(
    d: D,
    usage: ProbeUse,
) -> Result<Option<Probe>, D::Error> {
    let spec = ProbeSpec::deserialize(d)?;
    spec.into_probe(usage).map(Some).map_err(D::Error::custom)
}

/// Deserializes a `ready` probe.
pub(crate) fn ready<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Probe>, D::Error> {
    deserialize(d, ProbeUse::Ready)
}

/// Deserializes a `liveness` probe.
pub(crate) fn liveness<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Probe>, D::Error> {
    deserialize(d, ProbeUse::Liveness)
}

/// Serializes a probe as a table with its kind key and all three timings.
pub(crate) fn serialize<S: Serializer>(p: &Option<Probe>, s: S) -> Result<S::Ok, S::Error> {
    p.as_ref().map(ProbeSpec::from).serialize(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> ProbeSpec {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn kinds_and_defaults() {
        let p = spec("tcp = \"127.0.0.1:80\"")
            .into_probe(ProbeUse::Ready)
            .unwrap();
        assert_eq!(p.kind, ProbeKind::Tcp("127.0.0.1:80".into()));
        assert_eq!(
            (p.interval, p.timeout, p.retries),
            (Duration::from_millis(50), Duration::from_secs(30), 0)
        );
        let p = spec("exec = [\"true\"]\nretries = 5")
            .into_probe(ProbeUse::Liveness)
            .unwrap();
        assert_eq!(
            (p.interval, p.timeout, p.retries),
            (Duration::from_secs(10), Duration::from_secs(5), 5)
        );
    }

    #[test]
    fn exactly_one_kind() {
        let cases = [
            ("retries = 1", ProbeUse::Ready, "has none"),
            (
                "shm = \"/a\"\nfile = \"/b\"",
                ProbeUse::Ready,
                "has shm and file",
            ),
            ("log = \"up\"", ProbeUse::Liveness, "cannot be `log`"),
        ];
        for (text, usage, want) in cases {
            let err = spec(text).into_probe(usage).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
