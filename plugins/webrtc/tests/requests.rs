//! The sink's signalling against the real stackctl: malformed requests get clear 4xx errors
//! and leave nothing allocated, `max_clients` refuses one more viewer with 503 and
//! `Retry-After`, `DELETE` ends a session, and a viewer that vanishes without `DELETE` is
//! removed once ICE gives up on it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Streaming, runtime};
use stackctl_tests::plugins::{http_json, poll};
use stackctl_tests::up::EVENT_TIMEOUT;
use stackctl_tests::{Proc, bin};
use viewerload::signalling::{post_raw, request};
use viewerload::{Viewer, ViewerOptions};

const AUDIO_ONLY: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
    m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
const VP8_ONLY: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n";

#[test]
fn bad_requests_full_server_and_delete() {
    let stream = Streaming::start(
        "webrtc-requests",
        &[],
        "max_clients = 2\nmax_offer_bytes = 8192",
    );
    let url = stream.url();
    let rt = runtime();
    rt.block_on(async {
        // Malformed: each refused with its status and a JSON error that says why.
        let cases: [(&str, &str, Vec<u8>, u16, &str); 9] = [
            (
                "/whep",
                "text/plain",
                b"v=0".to_vec(),
                415,
                "application/sdp",
            ),
            (
                "/whep",
                "application/sdp",
                b"hello".to_vec(),
                400,
                "malformed SDP",
            ),
            (
                "/whep",
                "application/sdp",
                AUDIO_ONLY.into(),
                400,
                "no video",
            ),
            ("/whep", "application/sdp", VP8_ONLY.into(), 400, "no H.264"),
            (
                "/whep",
                "application/sdp",
                vec![b'v'; 9000],
                413,
                "limit is 8192",
            ),
            (
                "/offer",
                "application/json",
                b"{".to_vec(),
                400,
                "expected {\"type\":\"offer\"",
            ),
            (
                "/offer",
                "application/json",
                br#"{"type":"answer","sdp":"v=0"}"#.to_vec(),
                400,
                "expected \"offer\"",
            ),
            (
                "/api/webrtc/offer",
                "application/xml",
                b"<offer/>".to_vec(),
                415,
                "application/json",
            ),
            (
                "/offer",
                "application/json",
                serde_json::json!({"type": "offer", "sdp": VP8_ONLY})
                    .to_string()
                    .into_bytes(),
                400,
                "no H.264",
            ),
        ];
        for (path, content_type, body, status, needle) in cases {
            let r = post_raw(&url, path, content_type, body)
                .await
                .expect("an answer");
            let error = r
                .json_error()
                .unwrap_or_else(|| panic!("{path}: not a JSON error: {}", r.text()));
            assert_eq!(r.status, status, "{path} {content_type}: {error}");
            assert!(
                error.contains(needle),
                "{path} {content_type}: {error:?} lacks {needle:?}"
            );
        }
        let r = request(hyper::Method::GET, &format!("{url}/whep"), None, Vec::new())
            .await
            .unwrap();
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("POST"));
        let r = request(
            hyper::Method::DELETE,
            &format!("{url}/whep/0123456789abcdef"),
            None,
            Vec::new(),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 404, "{}", r.text());
        let r = request(
            hyper::Method::GET,
            &format!("{url}/favicon.ico"),
            None,
            Vec::new(),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 404, "{}", r.text());
    });
    assert_eq!(
        stream.metric("webrtc_offers_rejected_total{reason=\"invalid\"}"),
        Some(9.0)
    );
    for state in ["new", "connecting", "connected", "disconnected"] {
        assert_eq!(
            stream.metric(&format!("webrtc_connections{{state=\"{state}\"}}")),
            Some(0.0),
            "{state}"
        );
    }

    // Full: two viewers, the third refused with 503, a JSON error and Retry-After.
    let (first, second) = rt.block_on(async {
        let options = ViewerOptions::new(&url);
        let a = Viewer::connect(&options).await.expect("first viewer");
        let b = Viewer::connect(&options).await.expect("second viewer");
        a.wait_connected(Duration::from_secs(10))
            .await
            .expect("first connects");
        b.wait_connected(Duration::from_secs(10))
            .await
            .expect("second connects");
        let Err(refused) = Viewer::connect(&options).await else {
            panic!("a third viewer is refused");
        };
        assert_eq!(refused.status(), Some(503), "{refused}");
        assert_eq!(
            refused.server_message(),
            Some("maximum clients reached (2)")
        );
        assert!(refused.retry_after().is_some(), "no Retry-After: {refused}");
        (a, b)
    });
    stream.wait_metric("streaming_active_clients", 2.0);
    assert_eq!(http_json(stream.port, "/health")["webrtc_clients"], 2);
    assert_eq!(
        stream.metric("webrtc_offers_rejected_total{reason=\"full\"}"),
        Some(1.0)
    );

    // A keyframe request (PLI) is counted; the camera cannot honour it.
    rt.block_on(first.request_keyframe()).expect("send a PLI");
    poll("a keyframe request counted", EVENT_TIMEOUT, || match stream
        .metric("webrtc_keyframe_requests_total")
    {
        Some(n) if n >= 1.0 => Ok(()),
        other => Err(format!("{other:?}")),
    });

    // DELETE: the session ends, its slot is free again, and a second DELETE is a 404.
    let session = first.session_url().unwrap().to_owned();
    rt.block_on(first.close()).expect("DELETE");
    stream.wait_metric("streaming_active_clients", 1.0);
    stream.wait_metric("webrtc_viewers_removed_total{reason=\"closed\"}", 1.0);
    rt.block_on(async {
        let r = request(hyper::Method::DELETE, &session, None, Vec::new())
            .await
            .unwrap();
        assert_eq!(r.status, 404, "{}", r.text());
        let third = Viewer::connect(&ViewerOptions::new(&url))
            .await
            .expect("room again");
        third.close().await.unwrap();
    });
    stream.wait_metric("streaming_active_clients", 1.0);
    stream.wait_metric("webrtc_viewers_removed_total{reason=\"closed\"}", 2.0);

    // stackctl stops: the last viewer is closed by the sink, not left to time out.
    let mut stream = stream;
    stream.up.terminate();
    let removed = stream
        .up
        .lines()
        .iter()
        .filter(|l| l.contains("viewer removed") && l.contains("reason=Closed"))
        .count();
    assert_eq!(removed, 3, "{}", stream.up.log());
    rt.block_on(async {
        let mut state = second.state();
        tokio::time::timeout(
            Duration::from_secs(10),
            state.wait_for(|s| *s != viewerload::ConnectionState::Connected),
        )
        .await
        .expect("the viewer sees the end within 10 s")
        .expect("state watch");
    });
}

#[test]
fn a_viewer_that_vanishes_without_delete_is_removed_when_ice_times_out() {
    let stream = Streaming::start(
        "webrtc-vanish",
        &[],
        "disconnect_timeout = \"1s\"\nfailed_timeout = \"2s\"",
    );
    // A viewer in its own process, killed with SIGKILL: no DELETE, no DTLS close, nothing.
    let mut cmd = Command::new(bin("viewerload"));
    cmd.args(["--url", &stream.url(), "--viewers", "1", "--duration", "5m"])
        .stdout(Stdio::null());
    let viewer = Proc::spawn(cmd);
    stream.wait_metric("streaming_active_clients", 1.0);
    let pid = viewer.id();
    stackctl_tests::up::kill(pid, 9); // SIGKILL
    drop(viewer);
    stream.wait_metric("streaming_active_clients", 0.0);
    stream.wait_metric("webrtc_viewers_removed_total{reason=\"failed\"}", 1.0);
    for state in ["new", "connecting", "connected", "disconnected"] {
        assert_eq!(
            stream.metric(&format!("webrtc_connections{{state=\"{state}\"}}")),
            Some(0.0),
            "{state}"
        );
    }
    stream.stop();
}

/// A browser's offer whose one candidate answers nothing (the discard port): answered, it never
/// connects. `n` makes its ICE credentials its own.
fn squatter_offer(n: usize) -> String {
    let fingerprint: Vec<String> = (0..32)
        .map(|i| format!("{:02X}", (i * 7 + n) % 256))
        .collect();
    format!(
        "v=0\r\no=- {n} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\n\
         a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n\
         a=ice-ufrag:sq{n:04}\r\na=ice-pwd:squattersquattersquatter{n:04}\r\n\
         a=fingerprint:sha-256 {}\r\na=setup:actpass\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n\
         a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack\r\na=rtcp-fb:102 nack pli\r\n\
         a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
        fingerprint.join(":")
    )
}

/// Viewer-slot squatting: offers that never connect hold only pending slots (a separate, small
/// budget), not `max_clients`, and only until `connect_timeout`; real viewers still get in.
#[test]
fn offers_that_never_connect_do_not_lock_viewers_out() {
    let stream = Streaming::start(
        "webrtc-squat",
        &[],
        "max_clients = 2\nmax_pending = 3\nconnect_timeout = \"2s\"",
    );
    let url = stream.url();
    let rt = runtime();
    let squat = |n: usize| {
        let url = url.clone();
        async move {
            post_raw(
                &url,
                "/whep",
                "application/sdp",
                squatter_offer(n).into_bytes(),
            )
            .await
            .expect("an answer")
        }
    };
    let (first, second) = rt.block_on(async {
        // Two offers that will never connect: answered (they hold pending slots)...
        for n in 0..2 {
            let r = squat(n).await;
            assert_eq!(r.status, 201, "squatter {n}: {}", r.text());
        }
        // ...and a real viewer still gets in while they wait: max_clients is 2.
        let options = ViewerOptions::new(&url);
        let first = Viewer::connect(&options)
            .await
            .expect("a real viewer is answered");
        first
            .wait_connected(Duration::from_secs(10))
            .await
            .expect("and connects");
        // The pending budget (3) is small and its own: a third squatter fills it, a fourth
        // offer is told to come back in a second.
        let r = squat(2).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = squat(3).await;
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(
            r.json_error()
                .is_some_and(|e| e.contains("connecting already")),
            "{}",
            r.text()
        );
        (first, options)
    });
    // The squatters are removed after connect_timeout, freeing the pending slots.
    stream.wait_metric("webrtc_viewers_removed_total{reason=\"failed\"}", 3.0);
    stream.wait_metric("webrtc_pending_offers", 0.0);
    assert_eq!(
        stream.metric("webrtc_offers_rejected_total{reason=\"busy\"}"),
        Some(1.0)
    );
    let mut stream = stream;
    for _ in 0..3 {
        stream.up.wait_line(&["viewer never connected: removed"]);
    }
    rt.block_on(async {
        let second = Viewer::connect(&second).await.expect("a second viewer");
        second
            .wait_connected(Duration::from_secs(10))
            .await
            .expect("connects");
        // Two connected: full, whatever the pending budget says. The viewer may see its
        // connection up a moment before the sink's worker does.
        stream.wait_metric("streaming_active_clients", 2.0);
        let Err(refused) = Viewer::connect(&ViewerOptions::new(&url)).await else {
            panic!("a third viewer is refused");
        };
        assert_eq!(refused.status(), Some(503), "{refused}");
        assert_eq!(
            refused.server_message(),
            Some("maximum clients reached (2)")
        );
        second.close().await.expect("close");
        first.close().await.expect("close");
    });
    stream.wait_metric("streaming_active_clients", 0.0);
    stream.stop();
}
