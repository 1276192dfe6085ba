//! The host owns HTTP framing: what a plugin answers is checked and stripped of every header
//! that frames the message or concerns the connection, before the supervisor's server writes
//! it. A plugin that says `content-length: 999` over a 1-byte body, `transfer-encoding:
//! chunked` over a plain one, or `connection: close`, would otherwise desynchronise or cut a
//! keep-alive connection that is not its own.
//!
//! - Dropped (the server writes its own, from the body it actually sends): `content-length`,
//!   `transfer-encoding`, `connection`, `date`, `keep-alive`, `upgrade`, `te`, `trailer` and
//!   every `proxy-*` header. Said once per plugin, as a warning.
//! - Refused, the whole answer becoming a 502: a status outside 100-599, and a header whose
//!   name or value holds CR, LF or NUL (response splitting). Other headers that are not valid
//!   HTTP (a space in a name) are dropped, as before.

use http::header::{HeaderName, HeaderValue};
use http::{Response, StatusCode};

use crate::callbacks::PluginResponse;

/// Headers the host owns: the hop-by-hop ones and those that frame the message.
const HOST_OWNED: [&str; 8] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "date",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
];

/// Why a plugin's answer cannot be sent at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Its status is not an HTTP status.
    #[error("status {0} is outside 100-599")]
    Status(u16),
    /// A header name holds CR, LF or NUL.
    #[error("a header name holds CR, LF or NUL: {0:?}")]
    Name(String),
    /// A header value holds CR, LF or NUL.
    #[error("the value of header {0} holds CR, LF or NUL")]
    Value(String),
}

/// A plugin's answer, made safe to write.
#[derive(Debug)]
pub struct Checked {
    /// The response, without the host's headers.
    pub response: Response<Vec<u8>>,
    /// The host-owned headers it carried (lower-cased names), dropped.
    pub dropped: Vec<String>,
    /// A streamed answer's body, to follow (ABI 1.2).
    pub stream: Option<super::stream::PendingStream>,
}

/// True for a header the host owns (`name` lower-cased).
pub fn is_host_owned(name: &str) -> bool {
    HOST_OWNED.contains(&name) || name.starts_with("proxy-")
}

fn has_control(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// Checks a plugin's answer: `Err` when it must not be sent, else the response with the
/// host-owned headers dropped (and invalid ones, such as a name with a space).
pub fn check(answer: PluginResponse) -> Result<Checked, Refusal> {
    if !(100..=599).contains(&answer.status) {
        return Err(Refusal::Status(answer.status));
    }
    let status = StatusCode::from_u16(answer.status).map_err(|_| Refusal::Status(answer.status))?;
    let mut response = Response::new(answer.body);
    *response.status_mut() = status;
    let mut dropped = Vec::new();
    for (name, value) in answer.headers {
        if has_control(&name) {
            return Err(Refusal::Name(name));
        }
        if has_control(&value) {
            return Err(Refusal::Value(name.to_ascii_lowercase()));
        }
        let lower = name.to_ascii_lowercase();
        if is_host_owned(&lower) {
            dropped.push(lower);
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    Ok(Checked {
        response,
        dropped,
        stream: answer.stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)]) -> PluginResponse {
        PluginResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: b"x".to_vec(),
            stream: None,
        }
    }

    #[test]
    fn statuses() {
        for (status, ok) in [
            (0, false),
            (99, false),
            (100, true),
            (200, true),
            (599, true),
            (600, false),
            (1000, false),
        ] {
            assert_eq!(check(answer(status, &[])).is_ok(), ok, "{status}");
        }
    }

    #[test]
    fn host_owned_headers_are_dropped_and_the_rest_kept() {
        let checked = check(answer(
            200,
            &[
                ("Content-Length", "999"),
                ("Transfer-Encoding", "chunked"),
                ("Connection", "close"),
                ("Keep-Alive", "timeout=1"),
                ("DATE", "yesterday"),
                ("upgrade", "h2c"),
                ("TE", "trailers"),
                ("Trailer", "x"),
                ("Proxy-Authenticate", "Basic"),
                ("proxy-connection", "close"),
                ("Content-Type", "text/plain"),
                ("x-ok", "yes"),
                ("bad name", "dropped"),
            ],
        ))
        .expect("repairable");
        assert_eq!(checked.dropped.len(), 10, "{:?}", checked.dropped);
        let h = checked.response.headers();
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!(h["content-type"], "text/plain");
        assert_eq!(h["x-ok"], "yes");
        assert_eq!(checked.response.body(), b"x");
    }

    #[test]
    fn control_characters_refuse_the_answer() {
        for (name, value, refusal) in [
            ("x-a", "1\r\nx-injected: 1", Refusal::Value("x-a".into())),
            ("x-a", "1\n", Refusal::Value("x-a".into())),
            ("x-a", "a\0b", Refusal::Value("x-a".into())),
            ("x-\0a", "1", Refusal::Name("x-\0a".into())),
            ("x-a\r\nx-b", "1", Refusal::Name("x-a\r\nx-b".into())),
        ] {
            assert_eq!(
                check(answer(200, &[(name, value)])).err(),
                Some(refusal),
                "{name:?}: {value:?}"
            );
        }
    }
}
