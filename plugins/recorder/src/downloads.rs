//! Downloads stream from disk: a thread per download reads the file in [`CHUNK`]s and hands
//! each to the host's streamed answer, waiting when the client reads slower than the disk
//! (the host's buffer is bounded), so a download holds one chunk in the recorder whatever the
//! file's size. At most `max_downloads` run at once; more get 503 with `Retry-After`.
//!
//! A download ends when the file is sent, when the host closes the answer (the client went
//! away, or stopped reading for the host's write time-out: the thread then stops reading the
//! disk), or when the recorder stops (the answer is aborted).

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use stackctl_sink_sdk::{Responder, ResponseStream, StreamError, Written};

use crate::http::{Answer, Download};

/// Bytes read from disk and handed to the host at a time.
pub const CHUNK: usize = 64 * 1024;

/// How long a download waits for room before it looks at the recorder's stop flag again (the
/// host's write time-out ends a stalled one for good).
const WAIT_SLICE: Duration = Duration::from_secs(1);

/// Seconds a client refused for too many downloads is told to wait.
pub const RETRY_AFTER_SECS: u64 = 2;

/// The downloads under way.
#[derive(Debug)]
pub struct Downloads {
    max: usize,
    active: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
    /// Downloads refused (503).
    pub refused: AtomicU64,
    /// Downloads that ended before their end (client gone, cut, read error, stop).
    pub cut: Arc<AtomicU64>,
}

impl Downloads {
    /// At most `max` at once.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            active: Arc::default(),
            stopping: Arc::default(),
            refused: AtomicU64::new(0),
            cut: Arc::default(),
        }
    }

    /// Downloads under way.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Aborts every download under way (at its next chunk) and refuses new ones.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// A slot, unless `max` downloads run already.
    fn acquire(&self) -> Option<Slot> {
        let mut n = self.active.load(Ordering::Acquire);
        loop {
            if n >= self.max {
                return None;
            }
            match self
                .active
                .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(Slot(self.active.clone())),
                Err(now) => n = now,
            }
        }
    }

    /// Streams `download` to the client of `responder` on a thread of its own, or answers 503
    /// when `max` downloads run already.
    pub fn serve(&self, download: Download, responder: Responder) {
        let stopping = self.stopping.load(Ordering::Acquire);
        let Some(slot) = self.acquire().filter(|_| !stopping) else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            let why = if stopping {
                "the recorder is stopping".to_owned()
            } else {
                format!(
                    "{} downloads are under way, the most max_downloads allows: try again later",
                    self.max
                )
            };
            let a = Answer::error(503, &why);
            let retry = RETRY_AFTER_SECS.to_string();
            let mut headers: Vec<(&str, &str)> =
                a.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            headers.push(("retry-after", &retry));
            responder.respond(a.status, &headers, &a.body);
            return;
        };
        let headers: Vec<(&str, &str)> = download
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        let stream = match responder.stream(download.status, &headers, Some(download.len)) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!("download not started: {e}");
                return;
            }
        };
        let stopping = self.stopping.clone();
        let cut = self.cut.clone();
        let spawned = std::thread::Builder::new()
            .name("recorder-download".to_owned())
            .spawn(move || {
                let _slot = slot;
                if let Err(e) = pump(&download, stream, &stopping) {
                    cut.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("download ended early: {e}");
                }
            });
        if let Err(e) = spawned {
            // The closure, and with it the stream (aborted) and the slot, is dropped.
            self.cut.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("cannot start a download thread: {e}");
        }
    }
}

/// A download slot, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a download ended early.
#[derive(Debug, thiserror::Error)]
enum PumpError {
    #[error("the answer closed: {0}")]
    Stream(#[from] StreamError),
    #[error("reading the recording: {0}")]
    Read(#[from] std::io::Error),
    #[error("the recorder is stopping")]
    Stopping,
}

/// Sends the download's bytes, one chunk at a time, then ends the answer. On a read error or a
/// stop the answer is aborted (the stream is dropped unended); a closed answer just ends it.
fn pump(d: &Download, stream: ResponseStream, stopping: &AtomicBool) -> Result<(), PumpError> {
    let mut buf = vec![0u8; CHUNK];
    let end = d.start + d.len;
    let mut offset = d.start;
    while offset < end {
        let n = usize::try_from(end - offset).map_or(CHUNK, |left| left.min(CHUNK));
        let chunk = &mut buf[..n];
        d.file.read_exact_at(chunk, offset)?;
        loop {
            if stopping.load(Ordering::Acquire) {
                return Err(PumpError::Stopping);
            }
            let token = stream.token();
            match stream.write(chunk)? {
                Written::Accepted => break,
                Written::WouldBlock => {
                    stream.wait_writable(token, WAIT_SLICE);
                }
            }
        }
        offset += n as u64;
    }
    stream.end();
    Ok(())
}
