//! stackctl's own log, on standard error: every line of the supervisor, of its plugins and of
//! its services' output (which [`crate::process`] logs as `output` events with the service's
//! name), so all of them follow the same rules.
//!
//! | format | where | a line |
//! | --- | --- | --- |
//! | `text` | a terminal or a file | `2026-01-02T03:04:05.678Z  INFO output: hello service=web stream="stdout"` |
//! | `text` | the journal | `<6>INFO output: hello service=web stream="stdout"` |
//! | `json` | anywhere | `{"timestamp":"...","level":"INFO","message":"hello","service":"web","stream":"stdout","target":"output"}` |
//!
//! In the journal the timestamp is left out, because journald stamps every line itself, and
//! each line starts with the `<N>` syslog priority that journald reads and strips (the
//! `sd-daemon.h` convention), so `journalctl -p warning -u stackctl` shows warnings and errors.
//! The level word stays, for `journalctl -o cat`. JSON lines keep their timestamp and never get
//! a prefix: whatever reads them expects one object per line.
//!
//! "The journal" means what systemd documents for `JOURNAL_STREAM`: the variable names the
//! device and inode of the stream it connected, and standard error is still that stream. A
//! variable inherited by a process whose standard error was redirected since (a shell started
//! from a service, piping into a file) does not count.

use std::io::IsTerminal;

use stackctl_config::LogFormat;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// How the log is written: the configuration's format, and whether standard error is the
/// journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// `log.format`, or `--log-format`.
    pub format: LogFormat,
    /// Standard error is connected to the journal (see the module documentation).
    pub journal: bool,
}

impl Style {
    /// The style for `format` on this process's standard error.
    pub fn detect(format: LogFormat) -> Self {
        let journal = std::env::var("JOURNAL_STREAM")
            .ok()
            .is_some_and(|value| stderr_is(&value));
        Self { format, journal }
    }
}

/// `RUST_LOG` or `log.level` is not a `tracing` filter.
#[derive(Debug, thiserror::Error)]
#[error("{key} = {value:?}: not a log filter: {error}")]
pub struct FilterError {
    /// `RUST_LOG` or `log.level`.
    key: &'static str,
    /// The filter as given.
    value: String,
    /// What is wrong with it.
    error: tracing_subscriber::filter::ParseError,
}

/// Installs the global subscriber: `RUST_LOG` if set (it wins, so a one-off debug run needs no
/// edit of the file), else `level` (the configuration's `log.level`), else `info`.
pub fn init(level: Option<&str>, style: Style) -> Result<(), FilterError> {
    let parse = |key, value: &str| {
        EnvFilter::try_new(value).map_err(|error| FilterError {
            key,
            value: value.to_owned(),
            error,
        })
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => parse("RUST_LOG", &env)?,
        _ => parse("log.level", level.unwrap_or("info"))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` fails only if a subscriber is already installed: not an error of the user's,
    // and logging then still works, so it is ignored.
    let _ = match (style.format, style.journal) {
        (LogFormat::Json, _) => builder
            .json()
            // `message` and the event's fields at the top level, where `jq .message` and log
            // shippers look for them.
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        (LogFormat::Text, true) => builder
            .with_ansi(false)
            .event_format(Journal(
                format::format()
                    .without_time()
                    .with_level(false)
                    .with_ansi(false),
            ))
            .try_init(),
        (LogFormat::Text, false) => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    Ok(())
}

/// Text for the journal: `<N>LEVEL ` in front of the inner format (which leaves out the time
/// and the level).
struct Journal<F>(F);

impl<S, N, F> FormatEvent<S, N> for Journal<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let level = *event.metadata().level();
        write!(writer, "<{}>{level} ", priority(level))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// The syslog priority journald records for a level (`sd-daemon.h`: `SD_ERR` is 3 ...).
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// True when `journal_stream` (`JOURNAL_STREAM`'s `DEVICE:INODE`, both decimal) names this
/// process's standard error.
fn stderr_is(journal_stream: &str) -> bool {
    let Some((dev, ino)) = journal_stream.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.trim().parse::<u64>(), ino.trim().parse::<u64>()) else {
        return false;
    };
    match nix::sys::stat::fstat(std::io::stderr()) {
        // `as u64`: `dev_t` and `ino_t` are 64-bit on every Linux target; the casts only change
        // the type's name.
        #[allow(clippy::unnecessary_cast)]
        Ok(stat) => stat.st_dev as u64 == dev && stat.st_ino as u64 == ino,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_sd_daemon() {
        let cases = [
            (Level::ERROR, 3),
            (Level::WARN, 4),
            (Level::INFO, 6),
            (Level::DEBUG, 7),
            (Level::TRACE, 7),
        ];
        for (level, want) in cases {
            assert_eq!(priority(level), want, "{level}");
        }
    }

    #[test]
    fn journal_stream_must_name_stderr() {
        let stat = nix::sys::stat::fstat(std::io::stderr()).expect("fstat stderr");
        let ours = format!("{}:{}", stat.st_dev, stat.st_ino);
        assert!(stderr_is(&ours), "{ours}");
        let other = format!("{}:{}", stat.st_dev, stat.st_ino.wrapping_add(1));
        for bad in [other.as_str(), "", "8", "8:", ":1", "a:b", "1:2:3"] {
            assert!(!stderr_is(bad), "{bad:?}");
        }
    }
}
