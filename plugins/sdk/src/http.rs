//! HTTP: a [`Request`] for one of the sink's routes (an owned copy) and the [`Responder`] that
//! answers it exactly once, now or later, from any thread.
#![allow(unsafe_code)] // Copies the host's request out of raw pointers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use stackctl_plugin_abi as abi;

use crate::buf;
use crate::host::{HostHandle, Signal};

/// An HTTP request for one of [`Sink::ROUTES`](crate::Sink::ROUTES): an owned copy, free to
/// move to another thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request built by hand, for a sink's tests: `target` is the path, with an optional
    /// `?query`.
    pub fn new(method: &str, target: &str) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            ..Self::default()
        }
    }

    /// Adds a header (the name is lower-cased, as the host does).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Copies the host's request.
    ///
    /// # Safety
    /// `raw` is the request of the running `on_http` call, its `struct_size` covering ABI 1.0.
    pub(crate) unsafe fn copy_from(raw: &abi::HttpRequest) -> Self {
        // SAFETY: valid until `on_http` returns (the caller's promise); copied right here.
        let headers: &[abi::Header] = if raw.headers.is_null() || raw.header_count == 0 {
            &[]
        } else {
            // SAFETY: as above: `header_count` headers at `headers`.
            unsafe { std::slice::from_raw_parts(raw.headers, raw.header_count) }
        };
        // SAFETY: every string and the body are borrowed for the call, as above.
        unsafe {
            Self {
                method: buf::string(raw.method),
                path: buf::string(raw.path),
                query: buf::string(raw.query),
                headers: headers
                    .iter()
                    .map(|h| (buf::string(h.name), buf::string(h.value)))
                    .collect(),
                body: buf::bytes(raw.body, raw.body_len).to_vec(),
            }
        }
    }

    /// The method: `"GET"`, `"POST"`, ...
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path, e.g. `"/stats"` (still percent-encoded).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query string, after `?` and without it; empty when none.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The headers, names in lower case, in the order received.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body (at most the host's body limit).
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// Answers one request, exactly once: [`respond`](Self::respond) or [`json`](Self::json)
/// consume it. Send it to another thread (or a task) to answer later; stackctl answers 504 for
/// a request not answered within its time limit.
///
/// Dropped without an answer (including when `on_http` panics), it answers 500 with a JSON
/// error, so a request is never left hanging.
#[derive(Debug)]
pub struct Responder {
    host: HostHandle,
    id: u64,
    answered: bool,
}

impl Responder {
    pub(crate) fn new(host: HostHandle, id: u64) -> Self {
        Self {
            host,
            id,
            answered: false,
        }
    }

    /// Answers with `status`, `headers` (name, value) and `body`.
    pub fn respond(mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        self.answered = true;
        let headers: Vec<abi::Header> = headers
            .iter()
            .map(|(name, value)| abi::Header {
                name: abi::Str::new(name),
                value: abi::Str::new(value),
            })
            .collect();
        self.host.respond(self.id, status, &headers, body);
    }

    /// Whether [`stream`](Self::stream) is available (the host speaks ABI 1.2). Without it,
    /// answer whole with [`respond`](Self::respond).
    pub fn can_stream(&self) -> bool {
        self.host.can_stream()
    }

    /// Starts a streamed answer: `status` and `headers` now, the body through the returned
    /// [`ResponseStream`], written from any thread, as it is produced. `length` is the body's
    /// size when known (sent as `content-length` and held to), else the host sends it chunked.
    ///
    /// The host refuses a head it cannot send (the client gets 502: [`StreamError::Invalid`])
    /// and a request already answered or timed out ([`StreamError::Closed`]); a host that does
    /// not stream gets a 500 ([`StreamError::Unsupported`]): check
    /// [`can_stream`](Self::can_stream) first.
    pub fn stream(
        mut self,
        status: u16,
        headers: &[(&str, &str)],
        length: Option<u64>,
    ) -> Result<ResponseStream, StreamError> {
        if !self.host.can_stream() {
            return Err(StreamError::Unsupported);
        }
        let headers: Vec<abi::Header> = headers
            .iter()
            .map(|(name, value)| abi::Header {
                name: abi::Str::new(name),
                value: abi::Str::new(value),
            })
            .collect();
        let (code, signal) = self.host.stream_start(self.id, status, &headers, length);
        // Answered either way: a refused head is the host's to answer (502), a closed id
        // needs no answer.
        self.answered = true;
        match (code, signal) {
            (abi::stream::OK, Some(signal)) => Ok(ResponseStream {
                host: self.host.clone(),
                id: self.id,
                signal,
                finished: false,
            }),
            (abi::stream::INVALID, _) => Err(StreamError::Invalid),
            _ => Err(StreamError::Closed),
        }
    }

    /// Answers with `status` and `value` as JSON (`content-type: application/json`).
    pub fn json<T: Serialize + ?Sized>(self, status: u16, value: &T) {
        match serde_json::to_vec(value) {
            Ok(body) => self.respond(status, &[JSON], &body),
            Err(e) => self.respond(500, &[JSON], &error_body(&format!("cannot encode: {e}"))),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.answered {
            let body = error_body("the plugin dropped the request without answering it");
            self.host
                .respond(self.id, 500, &[header(JSON.0, JSON.1)], &body);
        }
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// What a [`ResponseStream::write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The bytes were taken, all of them.
    Accepted,
    /// Nothing was taken: the host's buffer for this answer is full (the client reads slower
    /// than the sink writes). Wait with [`ResponseStream::wait_writable`], then write again.
    WouldBlock,
}

/// Why a streamed answer cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The answer is over: the client went away, the host's write time-out cut it, or the
    /// request was answered already. Stop producing it.
    #[error("the answer is closed (the client went away or the host cut it)")]
    Closed,
    /// The host refused it: a head that cannot be sent, a chunk larger than
    /// [`ResponseStream::MAX_CHUNK`], or more bytes than announced.
    #[error("the host refused the streamed answer")]
    Invalid,
    /// The host does not stream (it speaks ABI 1.1 or older).
    #[error("the host does not stream answers (ABI 1.2)")]
    Unsupported,
    /// [`ResponseStream::write_all`] waited longer than it was allowed.
    #[error("the client did not take the bytes in time")]
    TimedOut,
}

/// A streamed answer's body, started by [`Responder::stream`]: written from any one thread at a
/// time, with back-pressure, without an async runtime.
///
/// The host holds at most [`MAX_CHUNK`](Self::MAX_CHUNK) bytes of it
/// (`STACKCTL_HTTP_STREAM_BUFFER`); [`write`](Self::write) says
/// [`WouldBlock`](Written::WouldBlock) beyond, and [`wait_writable`](Self::wait_writable)
/// returns once the host has room again (or the answer closed). [`end`](Self::end) completes
/// the body; dropped without it, the answer is aborted (the client sees it incomplete).
#[derive(Debug)]
pub struct ResponseStream {
    host: HostHandle,
    id: u64,
    signal: Arc<Signal>,
    finished: bool,
}

impl ResponseStream {
    /// The largest chunk one [`write`](Self::write) takes (`STACKCTL_HTTP_STREAM_BUFFER`);
    /// [`write_all`](Self::write_all) cuts larger ones. Smaller chunks (64 KiB) keep the
    /// buffer moving.
    pub const MAX_CHUNK: usize = abi::HTTP_STREAM_BUFFER;

    /// The request it answers.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Hands `data` to the host, all of it or nothing. Never blocks.
    pub fn write(&self, data: &[u8]) -> Result<Written, StreamError> {
        match self.host.stream_chunk(self.id, data) {
            abi::stream::OK => Ok(Written::Accepted),
            abi::stream::WOULD_BLOCK => Ok(Written::WouldBlock),
            abi::stream::INVALID => Err(StreamError::Invalid),
            _ => Err(StreamError::Closed),
        }
    }

    /// A token for [`wait_writable`](Self::wait_writable): take it *before* the
    /// [`write`](Self::write) that may say `WouldBlock`, so a wake-up in between is not lost.
    pub fn token(&self) -> u64 {
        self.signal.seen()
    }

    /// Blocks the calling thread until the host says there is room again (or the answer
    /// closed) after `token`, for at most `timeout`: whether it did. The next
    /// [`write`](Self::write) tells which.
    pub fn wait_writable(&self, token: u64, timeout: Duration) -> bool {
        self.signal.wait(token, timeout)
    }

    /// Writes all of `data`, in chunks of at most [`MAX_CHUNK`](Self::MAX_CHUNK), waiting
    /// for room as needed, for at most `timeout` in all.
    pub fn write_all(&self, data: &[u8], timeout: Duration) -> Result<(), StreamError> {
        let deadline = Instant::now() + timeout;
        for chunk in data.chunks(Self::MAX_CHUNK) {
            loop {
                let token = self.token();
                match self.write(chunk)? {
                    Written::Accepted => break,
                    Written::WouldBlock => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(StreamError::TimedOut);
                        }
                        self.wait_writable(token, left);
                    }
                }
            }
        }
        Ok(())
    }

    /// Completes the body. With an announced length, ending short of it aborts instead.
    pub fn end(mut self) {
        self.finished = true;
        self.host.stream_finish(self.id, false);
    }

    /// Gives up: the host closes the connection mid-message, so the client sees the body
    /// incomplete (a read error, say).
    pub fn abort(mut self) {
        self.finished = true;
        self.host.stream_finish(self.id, true);
    }
}

impl Drop for ResponseStream {
    fn drop(&mut self) {
        if !self.finished {
            self.host.stream_finish(self.id, true);
        }
    }
}

fn header(name: &'static str, value: &'static str) -> abi::Header {
    abi::Header {
        name: abi::Str::new(name),
        value: abi::Str::new(value),
    }
}

/// `{"error": message}`.
pub(crate) fn error_body(message: &str) -> Vec<u8> {
    serde_json::json!({ "error": message })
        .to_string()
        .into_bytes()
}

/// Answers request `id` with `status` and `{"error": message}`, without a [`Responder`].
pub(crate) fn answer_error(host: &HostHandle, id: u64, status: u16, message: &str) {
    host.respond(id, status, &[header(JSON.0, JSON.1)], &error_body(message));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_made_request_splits_its_query_and_finds_headers() {
        let r = Request::new("GET", "/stats?pretty=1")
            .with_header("Accept", "application/json")
            .with_body("x");
        assert_eq!(
            (r.method(), r.path(), r.query()),
            ("GET", "/stats", "pretty=1")
        );
        assert_eq!(r.header("ACCEPT"), Some("application/json"));
        assert_eq!(r.header("x"), None);
        assert_eq!(r.body(), b"x");
        assert_eq!(Request::new("GET", "/a").query(), "");
    }
}
