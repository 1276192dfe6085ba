//! Users and passwords: the hash made by `rtsp-passwd`, ffmpeg with credentials in the URL
//! over Digest and over Basic, the challenges a client without credentials gets, wrong
//! passwords refused and counted, and a connection closed after repeated failures.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::{Client, RtspStack, assert_silent, ffmpeg_decode, have_ffmpeg};

/// `rtsp-passwd NAME` with the password on standard input: the `users` entry it prints.
fn passwd(name: &str, password: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtsp-passwd"))
        .arg(name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rtsp-passwd");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn rtsp_passwd_prints_the_htdigest_hash() {
    // printf '%s' 'alice:stackctl:secret' | md5sum
    let md5 = Command::new("sh")
        .args(["-c", "printf '%s' 'alice:stackctl:secret' | md5sum"])
        .output()
        .unwrap();
    let want = String::from_utf8_lossy(&md5.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        passwd("alice", "secret"),
        format!("{{ name = \"alice\", password_hash = \"md5:{want}\" }}")
    );
}

fn stack(tag: &str, methods: &str) -> RtspStack {
    RtspStack::new(
        tag,
        &[],
        &format!("auth = {methods}\nusers = [{}]", passwd("alice", "secret")),
    )
}

#[test]
fn digest_and_basic_with_ffmpeg() {
    for (tag, methods, scheme) in [
        ("rtsp-digest", r#"["digest"]"#, "Digest "),
        ("rtsp-basic", r#"["basic"]"#, "Basic "),
        // The default: both offered, Digest first (ffmpeg takes the strongest).
        ("rtsp-both", r#"["digest", "basic"]"#, "Digest "),
    ] {
        let rtsp = stack(tag, methods);
        let _up = rtsp.up();
        let url = rtsp.url();

        // No credentials: OPTIONS is answered, DESCRIBE is challenged.
        let mut c = Client::connect(rtsp.port);
        assert_eq!(c.request("OPTIONS", &url, &[]).status, 200);
        let challenge = c.request("DESCRIBE", &url, &[]);
        assert_eq!(challenge.status, 401, "{challenge:?}");
        let offered = challenge.headers("WWW-Authenticate");
        assert_eq!(
            offered.len(),
            methods.matches(',').count() + 1,
            "{offered:?}"
        );
        assert!(offered[0].starts_with(scheme) && offered[0].contains("realm=\"stackctl\""));
        assert_eq!(
            rtsp.metric("rtsp_auth_failures_total"),
            0.0,
            "asking is no failure"
        );

        if have_ffmpeg("digest_and_basic_with_ffmpeg") {
            for transport in ["tcp", "udp"] {
                let out = ffmpeg_decode(&rtsp.url_with("alice", "secret"), transport, 2);
                assert_silent(&out, &format!("{scheme}{transport}"));
            }
            let wrong = ffmpeg_decode(&rtsp.url_with("alice", "guess"), "tcp", 2);
            assert!(
                !wrong.status.success(),
                "{scheme}: a wrong password is refused"
            );
            assert!(rtsp.metric("rtsp_auth_failures_total") >= 1.0);
            assert_eq!(rtsp.metric("rtsp_sessions_total{transport=\"tcp\"}"), 1.0);
        }
    }
}

#[test]
fn repeated_failures_close_the_connection() {
    let rtsp = stack("rtsp-authfail", r#"["digest", "basic"]"#);
    let _up = rtsp.up();
    let url = rtsp.url();
    let mut c = Client::connect(rtsp.port);
    let both = c.request("DESCRIBE", &url, &[]);
    let offered = both.headers("WWW-Authenticate");
    assert_eq!(offered.len(), 2);
    assert!(
        offered[0].starts_with("Digest ") && offered[1].starts_with("Basic "),
        "{offered:?}"
    );
    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:guess")
    );
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:secret")
    );
    assert_eq!(
        c.request("DESCRIBE", &url, &[("Authorization", &good)])
            .status,
        200
    );
    for _ in 0..4 {
        assert_eq!(
            c.request("DESCRIBE", &url, &[("Authorization", &bad)])
                .status,
            401
        );
    }
    // The fifth failure is answered, then the connection closes.
    assert_eq!(
        c.request("DESCRIBE", &url, &[("Authorization", &bad)])
            .status,
        401
    );
    assert!(c.closed_within(Duration::from_secs(20)));
    assert_eq!(rtsp.metric("rtsp_auth_failures_total"), 5.0);
}
