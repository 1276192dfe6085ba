//! Configuration errors. [`crate::load`] collects all of them before it returns.

use std::fmt;
use std::path::PathBuf;

use crate::origin::Origin;

/// One configuration error. Each names the key, the value as written (TOML syntax) and where
/// it came from:
///
/// ```text
/// services.web_monitor.ready.timeout = "ten seconds": not a duration (e.g. "500ms", "10s"), from /etc/stackctl/stackctl.toml line 42
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file cannot be found, read or parsed.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line and column of a syntax error.
        message: String,
    },
    /// An environment variable or `--set` argument that does not name a key at all.
    #[error("{origin}: {message}")]
    Source {
        /// The variable or flag.
        origin: Origin,
        /// What is wrong.
        message: String,
    },
    /// A key the schema does not have.
    #[error("{key} = {value}: unknown key{hint}, from {origin}")]
    UnknownKey {
        /// The key, dotted.
        key: String,
        /// Its value, in TOML syntax.
        value: String,
        /// `; did you mean "port"?`, or empty.
        hint: String,
        /// Where it came from.
        origin: Origin,
    },
    /// A key that must be there and is not (a plugin section's `path`).
    #[error("{key}: missing ({what}), from {origin}")]
    Missing {
        /// The key, dotted.
        key: String,
        /// What it should hold.
        what: String,
        /// Where the table that lacks it came from.
        origin: Origin,
    },
    /// A value that is not valid for its key: wrong type, bad duration, port or threshold out
    /// of range, unknown enumeration value, a probe with zero or several kinds...
    #[error("{key} = {value}: {problem}, from {origin}")]
    Invalid {
        /// The key, dotted (`services.web.args[1]` for an element).
        key: String,
        /// Its value, in TOML syntax.
        value: String,
        /// What is wrong with it.
        problem: String,
        /// Where it came from.
        origin: Origin,
    },
    /// A `{reference}` in a service field that names no scalar of the configuration.
    #[error("{key} = {value}: {problem}, from {origin}")]
    Reference {
        /// The service field, dotted.
        key: String,
        /// Its value, in TOML syntax.
        value: String,
        /// The reference, without braces.
        reference: String,
        /// What is wrong with it.
        problem: String,
        /// Where the field's value came from.
        origin: Origin,
    },
    /// A `depends_on` entry naming a service that does not exist, or is disabled while the
    /// dependent is enabled.
    #[error("{key} = {value}: {problem}, from {origin}")]
    Dependency {
        /// `services.NAME.depends_on.OTHER`.
        key: String,
        /// The condition, in TOML syntax.
        value: String,
        /// What is wrong.
        problem: String,
        /// Where the entry came from.
        origin: Origin,
    },
    /// Services that depend on each other in a circle.
    #[error("{key}: dependency cycle {}, from {origin}", cycle.join(" -> "))]
    Cycle {
        /// `services.NAME.depends_on` of the cycle's first service.
        key: String,
        /// The services, the first repeated at the end: `["a", "b", "a"]`.
        cycle: Vec<String>,
        /// Where the first service's dependency on the second came from.
        origin: Origin,
    },
    /// A failure of this crate itself (please report it).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ConfigError {
    /// The key the error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::UnknownKey { key, .. }
            | Self::Missing { key, .. }
            | Self::Invalid { key, .. }
            | Self::Reference { key, .. }
            | Self::Dependency { key, .. }
            | Self::Cycle { key, .. } => Some(key),
            Self::File { .. } | Self::Source { .. } | Self::Internal(_) => None,
        }
    }

    /// Where the erroneous value came from, if known.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            Self::Source { origin, .. }
            | Self::UnknownKey { origin, .. }
            | Self::Missing { origin, .. }
            | Self::Invalid { origin, .. }
            | Self::Reference { origin, .. }
            | Self::Dependency { origin, .. }
            | Self::Cycle { origin, .. } => Some(origin),
            Self::File { .. } | Self::Internal(_) => None,
        }
    }
}

/// All the errors of one [`crate::load`], never empty. Its `Display` prints one error per
/// line, in key order.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Wraps a list of errors.
    pub(crate) fn new(errors: Vec<ConfigError>) -> Self {
        Self { errors }
    }

    /// The errors.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether there are none (never true for an error returned by [`crate::load`]).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Edit distance by characters, a swap of neighbours counting as one edit (`prot` → `port`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: the distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["host", "port", "cors_origins"];
        assert_eq!(suggest("prot", keys), Some("port"));
        assert_eq!(suggest("cors_origin", keys), Some("cors_origins"));
        assert_eq!(suggest("zzzz", keys), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn one_error_per_line() {
        let errors = ConfigErrors::new(vec![
            ConfigError::Internal("a".into()),
            ConfigError::Cycle {
                key: "services.a.depends_on".into(),
                cycle: vec!["a".into(), "b".into(), "a".into()],
                origin: Origin::Default,
            },
        ]);
        assert_eq!(
            errors.to_string(),
            "internal error: a\nservices.a.depends_on: dependency cycle a -> b -> a, from default"
        );
    }
}
