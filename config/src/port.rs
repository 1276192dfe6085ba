//! TCP ports, checked while deserializing so that the error names the range.

use serde::de::{self, Deserialize, Deserializer};

/// Deserializes a port in 1..=65535.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    in_range(i64::deserialize(d)?, 1)
}

/// Deserializes a port in 0..=65535, 0 meaning "off".
pub(crate) fn or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    in_range(i64::deserialize(d)?, 0)
}

fn in_range<E: de::Error>(n: i64, min: u16) -> Result<u16, E> {
    match u16::try_from(n) {
        Ok(port) if port >= min => Ok(port),
        _ => Err(E::custom(format!("not a port ({min}..=65535)"))),
    }
}
