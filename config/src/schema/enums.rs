//! The configuration's enumerations, each written as a fixed set of strings.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Defines a `Copy` enum whose values are written as fixed strings in the configuration, with
/// `as_str`, `from_name`, `Display`, `Serialize` and `Deserialize` (strings only, so that
/// `restart = 1` is a type error rather than a variant index).
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            /// Every value, as written in the configuration.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The value as written in the configuration.
            pub fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $text ),+ }
            }

            /// Parses a value as written in the configuration.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $( $text => Some(Self::$variant), )+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(NameVisitor {
                    names: Self::NAMES,
                    parse: Self::from_name,
                })
            }
        }
    };
}

/// Deserializes one of a fixed set of names.
struct NameVisitor<T> {
    names: &'static [&'static str],
    parse: fn(&str) -> Option<T>,
}

impl<T> Visitor<'_> for NameVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of {}", quoted_list(self.names))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v)
            .ok_or_else(|| E::custom(format!("expected one of {}", quoted_list(self.names))))
    }
}

/// `"a", "b", "c"`.
pub(crate) fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

string_enum! {
    /// `log.format`: how the supervisor writes its own log lines.
    pub enum LogFormat {
        /// Human-readable lines.
        Text = "text",
        /// One JSON object per line.
        Json = "json",
    }
}

string_enum! {
    /// `services.NAME.stderr_level`: the level a service's standard error is logged at.
    /// Programs write progress and warnings alike to stderr, so the default is `info`: only a
    /// service known to write nothing but errors there deserves `warn` or `error`.
    pub enum OutputLevel {
        /// `trace`.
        Trace = "trace",
        /// `debug`.
        Debug = "debug",
        /// `info` (the default).
        Info = "info",
        /// `warn`.
        Warn = "warn",
        /// `error`.
        Error = "error",
    }
}

// By hand: `string_enum!` fixes the derives.
#[allow(clippy::derivable_impls)]
impl Default for OutputLevel {
    fn default() -> Self {
        Self::Info
    }
}

string_enum! {
    /// `source.guard`: the torn-read guard used when reading the camera's shared-memory ring
    /// (see `stackctl_core::shm::TornReadGuard`).
    pub enum ShmGuard {
        /// Verify each slot after copying it (the default).
        Verify = "verify",
        /// Only read a slot once the writer has moved on to the next one.
        Settled = "settled",
    }
}

string_enum! {
    /// `detector.model`: the YOLO model the detector loads.
    pub enum YoloModel {
        /// YOLOv8n.
        V8n = "v8n",
        /// YOLO11n (the default).
        V11n = "v11n",
        /// YOLOv13n.
        V13n = "v13n",
    }
}

impl YoloModel {
    /// The model's file name in `detector.model_dir`.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::V8n => "yolov8n_detect_bayese_640x640_nv12.bin",
            Self::V11n => "yolo11n_detect_bayese_640x640_nv12.bin",
            Self::V13n => "yolov13n_detect_bayese_640x640_nv12.bin",
        }
    }
}

string_enum! {
    /// `services.NAME.restart`: when a service that exited is started again.
    pub enum RestartPolicy {
        /// Never.
        No = "no",
        /// When it exited with a non-zero status or was killed by a signal (the default).
        OnFailure = "on-failure",
        /// Whenever it exits.
        Always = "always",
    }
}

string_enum! {
    /// `services.NAME.on_failure`: what happens once a service is FAILED (it exhausted
    /// `max_restarts` within `restart_window`, or exited with `restart = "no"` on failure).
    pub enum OnFailure {
        /// Leave it FAILED; the rest of the stack keeps running (the default).
        Ignore = "ignore",
        /// Stop the whole stack, in reverse start order, and keep the supervisor running.
        StopStack = "stop-stack",
        /// Stop the whole stack and exit the supervisor with a non-zero status.
        Exit = "exit",
    }
}

string_enum! {
    /// `services.NAME.depends_on.OTHER`: what `OTHER` must have reached before `NAME` starts.
    pub enum DependencyCondition {
        /// `OTHER`'s process has been spawned.
        Started = "started",
        /// `OTHER`'s `ready` probe has passed (a service without one is ready once started).
        Ready = "ready",
        /// `OTHER` has exited with status 0 (a one-shot task).
        Completed = "completed",
    }
}

/// `services.NAME.stop_signal`: the signal that asks a service to stop. Written with or
/// without the `SIG` prefix, in any case; printed with it (`"SIGTERM"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Signal {
    /// SIGHUP.
    Hup,
    /// SIGINT.
    Int,
    /// SIGQUIT.
    Quit,
    /// SIGKILL.
    Kill,
    /// SIGUSR1.
    Usr1,
    /// SIGUSR2.
    Usr2,
    /// SIGTERM (the default).
    #[default]
    Term,
}

impl Signal {
    /// Every accepted signal, by its full name.
    pub const NAMES: &'static [&'static str] = &[
        "SIGHUP", "SIGINT", "SIGQUIT", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGTERM",
    ];
    const ALL: [Self; 7] = [
        Self::Hup,
        Self::Int,
        Self::Quit,
        Self::Kill,
        Self::Usr1,
        Self::Usr2,
        Self::Term,
    ];

    /// The full name, e.g. `"SIGTERM"` (what `nix::sys::signal::Signal::from_str` accepts).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hup => "SIGHUP",
            Self::Int => "SIGINT",
            Self::Quit => "SIGQUIT",
            Self::Kill => "SIGKILL",
            Self::Usr1 => "SIGUSR1",
            Self::Usr2 => "SIGUSR2",
            Self::Term => "SIGTERM",
        }
    }

    /// Parses `TERM`, `SIGTERM`, `sigterm`...
    pub fn from_name(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        let short = upper.strip_prefix("SIG").unwrap_or(&upper);
        Self::ALL.into_iter().find(|s| &s.as_str()[3..] == short)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Signal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Signal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(NameVisitor {
            names: Self::NAMES,
            parse: Self::from_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in RestartPolicy::NAMES {
            assert_eq!(
                RestartPolicy::from_name(name).map(|r| r.as_str()),
                Some(*name)
            );
        }
        for name in Signal::NAMES {
            assert_eq!(Signal::from_name(name).map(|s| s.as_str()), Some(*name));
        }
    }

    #[test]
    fn signals_with_or_without_prefix() {
        let cases = [
            ("TERM", Some(Signal::Term)),
            ("SIGTERM", Some(Signal::Term)),
            ("sigint", Some(Signal::Int)),
            ("usr1", Some(Signal::Usr1)),
            ("SIGSTOP", None),
            ("SIG", None),
            ("", None),
        ];
        for (name, want) in cases {
            assert_eq!(Signal::from_name(name), want, "{name}");
        }
    }

    #[test]
    fn model_files() {
        assert_eq!(
            YoloModel::V11n.file_name(),
            "yolo11n_detect_bayese_640x640_nv12.bin"
        );
        assert_eq!(YoloModel::from_name("v9n"), None);
    }
}
