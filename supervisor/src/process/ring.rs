//! The bounded per-service log: the last lines for `stackctl logs`, and a feed for `logs -f`.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::broadcast;

/// How many lines a follower may fall behind before it sees `RecvError::Lagged`.
const FOLLOW_BACKLOG: usize = 1024;

/// Which pipe a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The child's stdout.
    Stdout,
    /// The child's stderr.
    Stderr,
}

impl Stream {
    /// `"stdout"` or `"stderr"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One line of a service's output (without its newline; a line longer than
/// [`output::MAX_LINE`](super::output::MAX_LINE) bytes arrives as several).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// When `stackctl` read it.
    pub at: SystemTime,
    /// The pipe it came from.
    pub stream: Stream,
    /// The text, invalid UTF-8 replaced by U+FFFD.
    pub text: String,
}

/// The last `capacity` lines of one service, across its restarts (the caller creates it once
/// per service and passes it to every spawn), plus a broadcast to followers.
#[derive(Debug)]
pub struct LogRing {
    capacity: usize,
    lines: Mutex<VecDeque<LogLine>>,
    followers: broadcast::Sender<LogLine>,
}

impl LogRing {
    /// An empty ring keeping at most `capacity` lines.
    pub fn new(capacity: usize) -> Self {
        LogRing {
            capacity,
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
            followers: broadcast::channel(FOLLOW_BACKLOG).0,
        }
    }

    /// Appends a line, dropping the oldest if the ring is full, and sends it to the followers.
    pub fn push(&self, line: LogLine) {
        if self.capacity > 0 {
            let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
            if lines.len() == self.capacity {
                lines.pop_front();
            }
            lines.push_back(line.clone());
        }
        // An error only means nobody follows.
        let _ = self.followers.send(line);
    }

    /// The last `last` lines (fewer if the ring holds fewer), oldest first.
    pub fn snapshot(&self, last: usize) -> Vec<LogLine> {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines
            .iter()
            .skip(lines.len().saturating_sub(last))
            .cloned()
            .collect()
    }

    /// Every line pushed from now on. A follower more than 1024 lines behind gets
    /// `RecvError::Lagged` with the number it missed, and then continues: the service is never
    /// slowed down by a slow follower.
    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.followers.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LogLine {
        LogLine {
            at: SystemTime::now(),
            stream: Stream::Stdout,
            text: text.into(),
        }
    }

    fn texts(lines: Vec<LogLine>) -> Vec<String> {
        lines.into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn keeps_the_last_capacity_lines() {
        let ring = LogRing::new(3);
        for text in ["a", "b", "c", "d", "e"] {
            ring.push(line(text));
        }
        assert_eq!(texts(ring.snapshot(10)), ["c", "d", "e"]);
        assert_eq!(texts(ring.snapshot(2)), ["d", "e"]);
        assert!(ring.snapshot(0).is_empty());
    }

    #[test]
    fn followers_get_new_lines_even_with_no_ring() {
        let ring = LogRing::new(0);
        let mut follower = ring.subscribe();
        ring.push(line("x"));
        assert!(ring.snapshot(5).is_empty());
        assert_eq!(follower.try_recv().map(|l| l.text), Ok("x".to_string()));
    }
}
