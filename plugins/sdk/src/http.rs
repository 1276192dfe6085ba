//! HTTP: a [`Request`] for one of the sink's routes (an owned copy) and the [`Responder`] that
//! answers it exactly once, now or later, from any thread.
#![allow(unsafe_code)] // Copies the host's request out of raw pointers.

use serde::Serialize;
use stackctl_plugin_abi as abi;

use crate::buf;
use crate::host::HostHandle;

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
