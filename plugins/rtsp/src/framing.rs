//! What a client sends on the RTSP connection, one message at a time: requests (parsed by
//! `rtsp-types`) and interleaved binary data (`$`, channel, length: RTCP from a client that
//! receives over TCP). Limits come first, so a hostile client cannot make the server buffer or
//! parse more than [`MAX_HEAD`] bytes of headers, [`MAX_HEADERS`] header lines or
//! [`MAX_BODY`] bytes of body.

use rtsp_types::{Message, ParseError, Request};

/// The most bytes of a request line and headers.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most header lines in a request.
pub const MAX_HEADERS: usize = 64;
/// The most bytes of a request body (clients send none, or a few parameter names).
pub const MAX_BODY: usize = 4 * 1024;

/// One message from the client.
#[derive(Debug)]
pub enum Incoming {
    /// A request.
    Request(Box<Request<Vec<u8>>>),
    /// Interleaved data on `channel` (its bytes are not kept).
    Data {
        /// The channel.
        channel: u8,
    },
    /// Blank lines between messages (some clients send them as keep-alives).
    Blank,
}

/// Why the connection's input cannot be read as RTSP. The connection is answered (when a
/// status fits) and closed: after this, where the next message starts is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// Request line and headers longer than [`MAX_HEAD`].
    #[error("request headers longer than {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// More than [`MAX_HEADERS`] header lines.
    #[error("more than {MAX_HEADERS} header lines")]
    TooManyHeaders,
    /// A `Content-Length` over [`MAX_BODY`], or not a number.
    #[error("request body longer than {MAX_BODY} bytes, or a bad Content-Length")]
    BodyTooLarge,
    /// Not an RTSP request (a response, bad syntax, a URI that does not parse).
    #[error("malformed request")]
    Malformed {
        /// The `CSeq` the request carried, if one can be found, to answer it.
        cseq: Option<String>,
        /// Its RTSP version was 1.x or 2.x: the message looked like RTSP.
        rtsp: bool,
    },
}

/// The next message at the start of `buf` and its length, `None` while it is incomplete.
pub fn next(buf: &[u8]) -> Result<Option<(Incoming, usize)>, FramingError> {
    match buf.first() {
        None => return Ok(None),
        Some(b'$') => {
            let Some(head) = buf.get(..4) else {
                return Ok(None);
            };
            let len = 4 + usize::from(u16::from_be_bytes([head[2], head[3]]));
            return Ok((buf.len() >= len).then_some((Incoming::Data { channel: head[1] }, len)));
        }
        Some(b'\r' | b'\n') => {
            let blank = buf
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            return Ok(Some((Incoming::Blank, blank)));
        }
        Some(_) => {}
    }
    let window = &buf[..buf.len().min(MAX_HEAD)];
    let Some(head_end) = find(window, b"\r\n\r\n") else {
        return if buf.len() >= MAX_HEAD {
            Err(FramingError::HeadTooLarge)
        } else {
            Ok(None)
        };
    };
    let head = &buf[..head_end];
    if head.split(|b| *b == b'\n').count() > MAX_HEADERS + 1 {
        return Err(FramingError::TooManyHeaders);
    }
    if let Some(len) = header(head, "content-length") {
        match len.trim().parse::<usize>() {
            Ok(n) if n <= MAX_BODY => {}
            _ => return Err(FramingError::BodyTooLarge),
        }
    }
    match Message::<Vec<u8>>::parse(buf) {
        Ok((Message::Request(request), used)) => {
            Ok(Some((Incoming::Request(Box::new(request)), used)))
        }
        Err(ParseError::Incomplete(_)) => Ok(None),
        Ok(_) | Err(ParseError::Error) => Err(FramingError::Malformed {
            cseq: header(head, "cseq").map(|v| v.trim().to_owned()),
            rtsp: first_line(head).contains(" RTSP/"),
        }),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn first_line(head: &[u8]) -> String {
    let end = find(head, b"\r\n").unwrap_or(head.len());
    String::from_utf8_lossy(&head[..end]).into_owned()
}

/// A header's value, found by a plain scan (for limits and error answers, before parsing).
fn header(head: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(head)
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| v.len() <= 32 && v.chars().all(|c| c.is_ascii_graphic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Result<Option<(Incoming, usize)>, FramingError> {
        next(text.as_bytes())
    }

    #[test]
    fn requests_data_and_blank_lines() {
        let text = "OPTIONS rtsp://h/live RTSP/1.0\r\nCSeq: 1\r\n\r\n";
        let (msg, used) = request(text).unwrap().unwrap();
        assert_eq!(used, text.len());
        assert!(matches!(msg, Incoming::Request(r) if *r.method() == rtsp_types::Method::Options));
        // Pipelined: only the first is taken.
        let two = format!("{text}{text}");
        assert_eq!(request(&two).unwrap().unwrap().1, text.len());
        // Interleaved RTCP.
        let data = [b'$', 1, 0, 3, 0x80, 0xc9, 0];
        assert!(matches!(next(&data[..6]), Ok(None)));
        assert!(matches!(
            next(&data),
            Ok(Some((Incoming::Data { channel: 1 }, 7)))
        ));
        assert!(matches!(
            next(b"\r\n\r\nOPT"),
            Ok(Some((Incoming::Blank, 4)))
        ));
    }

    #[test]
    fn incomplete_until_the_whole_request_is_there() {
        let text = "SET_PARAMETER rtsp://h/live RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 5\r\n\r\nab";
        assert!(matches!(request(text), Ok(None)));
        assert!(matches!(request(&text[..20]), Ok(None)));
        let (msg, _) = request(&format!("{text}cde")).unwrap().unwrap();
        assert!(matches!(msg, Incoming::Request(r) if r.body() == b"abcde"));
    }

    #[test]
    fn limits_and_garbage() {
        let long = format!("OPTIONS * RTSP/1.0\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(request(&long).unwrap_err(), FramingError::HeadTooLarge);
        let many = format!(
            "OPTIONS * RTSP/1.0\r\n{}\r\n",
            "X: y\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(request(&many).unwrap_err(), FramingError::TooManyHeaders);
        for cl in ["99999", "-1", "x"] {
            let big = format!("OPTIONS * RTSP/1.0\r\nCSeq: 3\r\nContent-Length: {cl}\r\n\r\n");
            assert_eq!(
                request(&big).unwrap_err(),
                FramingError::BodyTooLarge,
                "{cl}"
            );
        }
        assert_eq!(
            request("GARBAGE\r\nCSeq: 9\r\n\r\n").unwrap_err(),
            FramingError::Malformed {
                cseq: Some("9".into()),
                rtsp: false
            }
        );
        assert_eq!(
            request("DESCRIBE notaurl RTSP/1.0\r\n\r\n").unwrap_err(),
            FramingError::Malformed {
                cseq: None,
                rtsp: true
            }
        );
        assert!(matches!(
            request("RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n").unwrap_err(),
            FramingError::Malformed { .. }
        ));
        // Binary noise never panics.
        for seed in 0..200u32 {
            let noise: Vec<u8> = (0..300u32)
                .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 7919) >> 13) as u8)
                .chain(*b"\r\n\r\n")
                .collect();
            let _ = next(&noise);
        }
    }
}
