//! Durations, written as humantime strings (`"250ms"`, `"10s"`, `"1m 30s"`).
//!
//! For `#[serde(with = "crate::duration")]` on `Duration` fields, and [`option`] on
//! `Option<Duration>` fields.

use std::fmt;
use std::time::Duration;

use serde::Serializer;
use serde::de::{self, Deserializer, Visitor};

/// What a duration looks like, for error messages.
pub(crate) const EXPECTED: &str = r#"a duration (e.g. "500ms", "10s")"#;

/// Writes a duration the way it is read back: `"1m 30s"`.
pub(crate) fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Serializes a duration as a humantime string.
pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

/// Deserializes a duration from a humantime string.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_str(DurationVisitor)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        humantime::parse_duration(v).map_err(|_| E::custom(format!("not {EXPECTED}")))
    }
}

/// The same for `Option<Duration>` (with `#[serde(default)]`).
pub(crate) mod option {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    /// Serializes `Some` as a humantime string (skip `None` with `skip_serializing_if`).
    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Deserializes a present value as a humantime string.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_what_it_parses() {
        for text in [
            "250ms", "10s", "1m", "1m 30s", "1h", "2s 500ms", "0s", "1us",
        ] {
            let d = humantime::parse_duration(text).unwrap();
            assert_eq!(humantime::parse_duration(&format(d)).unwrap(), d, "{text}");
        }
        assert_eq!(format(Duration::from_millis(500)), "500ms");
    }
}
