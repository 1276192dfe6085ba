//! Streamed plugin answers (ABI 1.2) through the real `stackctl up` and its HTTP server, from
//! the C sink `plugins/host/tests/c/stream_sink.c`, read by a raw HTTP/1.1 client: a body with
//! an announced length comes with `content-length` and keeps a keep-alive connection usable;
//! one without comes chunked; an aborted answer and one never ended (cut by
//! `http.write_timeout`) end with the connection closed before the last chunk, so the client
//! sees them incomplete.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;

use stackctl_tests::plugins::{c_plugin, camera_config, toml_path};
use stackctl_tests::unique_shm;
use stackctl_tests::up::{EVENT_TIMEOUT, Stack};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Sends `GET target` and reads the head: status, lower-cased headers.
fn head(s: &mut TcpStream, target: &str, close: bool) -> (u16, Vec<(String, String)>) {
    let connection = if close { "Connection: close\r\n" } else { "" };
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{connection}\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte)
            .unwrap_or_else(|e| panic!("{target}: the head: {e}"));
        raw.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = text.lines();
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (code, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Decodes a chunked body from `raw`: the data, and whether the last (empty) chunk came.
fn dechunk(raw: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let Some(eol) = raw[at..].windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size = std::str::from_utf8(&raw[at..at + eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok());
        let Some(size) = size else {
            return (out, false);
        };
        at += eol + 2;
        if size == 0 {
            return (out, raw[at..].starts_with(b"\r\n"));
        }
        if raw.len() < at + size + 2 {
            out.extend_from_slice(&raw[at.min(raw.len())..]);
            return (out, false);
        }
        out.extend_from_slice(&raw[at..at + size]);
        at += size + 2;
    }
}

#[test]
fn streamed_answers_are_framed_by_the_host_and_cut_ones_look_incomplete() {
    let Some(sink) = c_plugin("sink_stream", "plugins/host/tests/c/stream_sink.c", &[]) else {
        return;
    };
    let shm = unique_shm("stream");
    let stack = Stack::new(&format!(
        "{}\n[plugins.stream]\npath = {}\n",
        camera_config(&shm),
        toml_path(&sink)
    ));
    let port = stack.http_port().expect("port");
    let mut up = stack.up(&[], &[("STACKCTL_HTTP__WRITE_TIMEOUT", "1s")]);
    up.wait_line(&["stack ready"]);
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(EVENT_TIMEOUT)).expect("timeout");
        s
    };

    // An announced length: content-length, and the connection stays usable.
    let mut s = connect();
    for _ in 0..2 {
        let (code, headers) = head(&mut s, "/stream?3000000", false);
        assert_eq!(code, 200);
        assert_eq!(header(&headers, "content-length"), Some("3000000"));
        assert_eq!(header(&headers, "transfer-encoding"), None);
        let mut body = vec![0u8; 3_000_000];
        s.read_exact(&mut body).expect("the body");
        assert!(body == pattern(3_000_000));
    }

    // No length: chunked, ending with the last chunk.
    let mut s = connect();
    let (code, headers) = head(&mut s, "/chunked?1000000", true);
    assert_eq!(code, 200);
    assert_eq!(header(&headers, "transfer-encoding"), Some("chunked"));
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("the body");
    let (body, complete) = dechunk(&raw);
    assert!(complete, "no last chunk");
    assert!(body == pattern(1_000_000), "{} bytes", body.len());

    // Aborted, and never ended: the connection closes before the last chunk. (An answer
    // aborted before its first byte reached the server closes before its head: an empty reply.)
    for target in ["/abort", "/never"] {
        let mut s = connect();
        write!(
            s,
            "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("EOF");
        if raw.is_empty() && target == "/abort" {
            continue;
        }
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("{target}: no head in {raw:?}"));
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{target}: {head}");
        assert!(
            head.contains("transfer-encoding: chunked"),
            "{target}: {head}"
        );
        let (body, complete) = dechunk(&raw[split + 4..]);
        assert!(!complete, "{target}: the body looks whole: {raw:?}");
        assert!(body.len() <= 10, "{target}: {body:?}");
    }
    up.wait_line(&["streamed answer cut: nothing sent for 1s (write time-out)"]);
    up.terminate();
}
