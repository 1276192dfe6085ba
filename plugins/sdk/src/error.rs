//! The error a sink returns from `start` (and the SDK from `create`), and the status it becomes.

use std::fmt;

use stackctl_plugin_abi as abi;

/// Why a sink could not be created or started. Its text goes to the host as the call's error
/// message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The sink's configuration section is wrong (`STACKCTL_ERR_CONFIG`).
    #[error("{}", config_text(.key, .message))]
    Config {
        /// The offending key, dotted from the section (`output.dir`, `hosts[1]`), or empty when
        /// the section as a whole is wrong (a TOML syntax error, a missing key named in
        /// `message`).
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// Anything else (`STACKCTL_ERR_FAILED`).
    #[error("{0}")]
    Failed(String),
}

fn config_text(key: &str, message: &str) -> String {
    if key.is_empty() {
        message.to_owned()
    } else {
        format!("{key}: {message}")
    }
}

impl Error {
    /// The configuration key `key` is wrong, because `message`.
    pub fn config(key: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::Config {
            key: key.into(),
            message: message.to_string(),
        }
    }

    /// Something other than the configuration failed.
    pub fn failed(message: impl fmt::Display) -> Self {
        Self::Failed(message.to_string())
    }

    /// The status this error is reported as.
    pub(crate) fn status(&self) -> abi::Status {
        match self {
            Self::Config { .. } => abi::STATUS_ERR_CONFIG,
            Self::Failed(_) => abi::STATUS_ERR_FAILED,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Failed(e.to_string())
    }
}
