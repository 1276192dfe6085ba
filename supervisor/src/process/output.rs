//! Reading a child's stdout and stderr: lines to `tracing`, to the service's [`LogRing`] and to
//! its followers.
//!
//! One task per pipe, on the caller's runtime, never blocking anything: a child that writes a
//! megabyte without a newline gets it split into [`MAX_LINE`]-byte lines; invalid UTF-8 is
//! replaced. The tracing events have the target `output` (so `RUST_LOG=info,output=warn` quiets
//! the services' stdout) and the fields `service` and `stream`. Standard output is logged at
//! INFO; standard error at the service's `stderr_level`, INFO unless set: programs write
//! progress to stderr as often as errors, and a WARN on every line of it drowns real warnings.
//!
//! The readers do not decide that a child exited: a grandchild may hold the pipe open long after
//! its parent died. They end at EOF, or once the pipe is idle [`DRAIN`] after the reaper saw the
//! exit (whatever the child wrote before dying is still read), and at the latest [`DRAIN_MAX`]
//! after the exit, whatever a surviving grandchild keeps writing.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::SystemTime;

use stackctl_config::OutputLevel;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};

use super::exit::Exit;
use super::ring::{LogLine, LogRing, Stream};

/// The longest line kept whole, in bytes; longer lines are split.
pub const MAX_LINE: usize = 16 * 1024;

/// How long a reader keeps reading an idle pipe after the child exited.
pub const DRAIN: Duration = Duration::from_millis(100);

/// How long a reader keeps reading after the child exited, at most.
pub const DRAIN_MAX: Duration = Duration::from_secs(1);

/// Starts the tasks reading the child's stdout and stderr (the read ends of its pipes).
///
/// Must be called within a tokio runtime with IO enabled.
pub(super) fn start(
    service: &Arc<str>,
    stderr_level: OutputLevel,
    stdout: OwnedFd,
    stderr: OwnedFd,
    ring: &Arc<LogRing>,
    exit: &watch::Receiver<Option<Exit>>,
) -> io::Result<Vec<JoinHandle<()>>> {
    let pipes = [
        (
            Stream::Stdout,
            OutputLevel::Info,
            pipe::Receiver::from_owned_fd(stdout)?,
        ),
        (
            Stream::Stderr,
            stderr_level,
            pipe::Receiver::from_owned_fd(stderr)?,
        ),
    ];
    Ok(pipes
        .into_iter()
        .map(|(stream, level, pipe)| {
            let task = pump(
                Arc::clone(service),
                stream,
                level,
                pipe,
                Arc::clone(ring),
                exit.clone(),
            );
            tokio::spawn(task)
        })
        .collect())
}

async fn pump(
    service: Arc<str>,
    stream: Stream,
    level: OutputLevel,
    mut pipe: pipe::Receiver,
    ring: Arc<LogRing>,
    mut exit: watch::Receiver<Option<Exit>>,
) {
    let mut emit = |text: String| deliver(&service, stream, level, &ring, text);
    let mut lines = LineSplitter::new(MAX_LINE);
    let mut buf = vec![0; 8192];
    let mut exited_at: Option<Instant> = None;
    let mut reaper_gone = false;
    loop {
        let idle_deadline = exited_at.unwrap_or_else(Instant::now) + DRAIN;
        // `biased`: data already in the pipe is always read before the drain deadline counts.
        tokio::select! {
            biased;
            read = pipe.read(&mut buf) => match read {
                Ok(0) => break,
                Ok(n) => {
                    lines.push(&buf[..n], &mut emit);
                    if exited_at.is_some_and(|at| at.elapsed() >= DRAIN_MAX) {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(service = &*service, stream = stream.as_str(), "reading output: {err}");
                    break;
                }
            },
            seen = exit.wait_for(Option::is_some), if exited_at.is_none() && !reaper_gone => {
                match seen {
                    Ok(_) => exited_at = Some(Instant::now()),
                    Err(_) => reaper_gone = true,
                }
            },
            () = tokio::time::sleep_until(idle_deadline), if exited_at.is_some() => break,
        }
    }
    lines.finish(&mut emit);
}

fn deliver(service: &str, stream: Stream, level: OutputLevel, ring: &LogRing, text: String) {
    // `tracing`'s macros take a constant level: one arm per level.
    macro_rules! emit {
        ($mac:ident) => {
            tracing::$mac!(target: "output", service = %service, stream = stream.as_str(), "{text}")
        };
    }
    match level {
        OutputLevel::Trace => emit!(trace),
        OutputLevel::Debug => emit!(debug),
        OutputLevel::Info => emit!(info),
        OutputLevel::Warn => emit!(warn),
        OutputLevel::Error => emit!(error),
    }
    ring.push(LogLine {
        at: SystemTime::now(),
        stream,
        text,
    });
}

/// Cuts a byte stream into lines of at most `max` bytes (a trailing `\r` is dropped).
#[derive(Debug)]
pub(super) struct LineSplitter {
    pending: Vec<u8>,
    max: usize,
}

impl LineSplitter {
    /// A splitter cutting lines longer than `max` bytes (at least 4, so a character fits).
    pub(super) fn new(max: usize) -> Self {
        LineSplitter {
            pending: Vec::new(),
            max: max.max(4),
        }
    }

    /// Feeds `data`, calling `emit` for every complete line.
    pub(super) fn push(&mut self, data: &[u8], emit: &mut impl FnMut(String)) {
        for piece in data.split_inclusive(|&b| b == b'\n') {
            let (body, ended) = match piece.split_last() {
                Some((b'\n', body)) => (body, true),
                _ => (piece, false),
            };
            self.pending.extend_from_slice(body);
            while self.pending.len() > self.max {
                let cut = char_boundary(&self.pending[..self.max]);
                let rest = self.pending.split_off(cut);
                emit(lossy(std::mem::replace(&mut self.pending, rest)));
            }
            if ended {
                if self.pending.last() == Some(&b'\r') {
                    self.pending.pop();
                }
                emit(lossy(std::mem::take(&mut self.pending)));
            }
        }
    }

    /// Emits the last line if it had no newline.
    pub(super) fn finish(&mut self, emit: &mut impl FnMut(String)) {
        if !self.pending.is_empty() {
            emit(lossy(std::mem::take(&mut self.pending)));
        }
    }
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into())
}

/// Where to cut `chunk` so as not to split its last UTF-8 character: before that character if
/// it is incomplete, else at the end.
fn char_boundary(chunk: &[u8]) -> usize {
    let len = chunk.len();
    for start in (len.saturating_sub(3)..len).rev() {
        if chunk[start] & 0xC0 != 0x80 {
            return match std::str::from_utf8(&chunk[start..]) {
                Err(err) if err.error_len().is_none() && start > 0 => start,
                _ => len,
            };
        }
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        let mut splitter = LineSplitter::new(max);
        let mut emit = |line: String| out.push(line);
        for chunk in chunks {
            splitter.push(chunk, &mut emit);
        }
        splitter.finish(&mut emit);
        out
    }

    #[test]
    fn joins_lines_across_reads() {
        assert_eq!(
            split(100, &[b"one\ntw", b"o\r\n\nthr", b"ee"]),
            ["one", "two", "", "three"]
        );
    }

    #[test]
    fn splits_long_lines_at_max() {
        assert_eq!(
            split(4, &[b"abcdefghij\nxy", b"zw\n"]),
            ["abcd", "efgh", "ij", "xyzw"]
        );
    }

    #[test]
    fn does_not_cut_a_character_in_half() {
        // "aé" is 3 bytes; with max 4, "aéé" (5 bytes) is cut after "aé", not inside the 2nd é.
        assert_eq!(split(4, &["aéé\n".as_bytes()]), ["aé", "é"]);
    }

    #[test]
    fn replaces_invalid_utf8() {
        assert_eq!(split(100, &[b"bad \xff byte\n"]), ["bad \u{FFFD} byte"]);
    }
}
