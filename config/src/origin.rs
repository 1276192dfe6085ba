//! Where a configuration value came from.

use std::fmt;
use std::path::PathBuf;

/// Where a value of the effective configuration came from: the layer that set it last.
///
/// Its `Display` is the text used in error messages and by `stackctl config --explain`:
/// `default`, `/etc/stackctl/stackctl.toml line 42`, `env MONITOR_PORT`,
/// `flag --monitor-port`, `flag --set http.port=8082`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The configuration file.
    File {
        /// The file, as it was given or found.
        path: PathBuf,
        /// The 1-based line of the key (`None` when it cannot be told, e.g. an implicit table).
        line: Option<usize>,
    },
    /// An environment variable, by its actual name (legacy, e.g. `MONITOR_PORT`, or
    /// `STACKCTL_*`).
    Env {
        /// The variable's name.
        var: String,
    },
    /// A command-line flag.
    Flag {
        /// The flag as typed: `--monitor-port`, or `--set key.path=value` in full.
        flag: String,
    },
    /// Computed from other keys; only `detector.model_path`, from `detector.model_dir` and
    /// `detector.model`.
    Derived {
        /// The keys it is computed from.
        from: Vec<String>,
    },
}

impl Origin {
    /// An origin for a command-line flag.
    pub(crate) fn flag(flag: impl Into<String>) -> Self {
        Self::Flag { flag: flag.into() }
    }

    /// An origin for an environment variable.
    pub(crate) fn env(var: impl Into<String>) -> Self {
        Self::Env { var: var.into() }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File {
                path,
                line: Some(line),
            } => write!(f, "{} line {line}", path.display()),
            Self::File { path, line: None } => write!(f, "{}", path.display()),
            Self::Env { var } => write!(f, "env {var}"),
            Self::Flag { flag } => write!(f, "flag {flag}"),
            Self::Derived { from } => write!(f, "derived from {}", from.join(" and ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        let cases = [
            (Origin::Default, "default"),
            (
                Origin::File {
                    path: "/etc/stackctl/stackctl.toml".into(),
                    line: Some(42),
                },
                "/etc/stackctl/stackctl.toml line 42",
            ),
            (
                Origin::File {
                    path: "a.toml".into(),
                    line: None,
                },
                "a.toml",
            ),
            (Origin::env("MONITOR_PORT"), "env MONITOR_PORT"),
            (Origin::flag("--set http.port=1"), "flag --set http.port=1"),
            (
                Origin::Derived {
                    from: vec!["a".into(), "b".into()],
                },
                "derived from a and b",
            ),
        ];
        for (origin, text) in cases {
            assert_eq!(origin.to_string(), text);
        }
    }
}
