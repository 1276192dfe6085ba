//! HTTP across the plugin boundary, through the real loader and a C sink (`c/echo_sink.c`): the
//! request arrives whole (method, path, query, headers, body), the answer comes back, and what
//! a plugin gets wrong (an invalid status, an invalid header, a refusal) is contained by the host.
//! The framing itself (host-owned headers, CR/LF/NUL) is tested through the real server in
//! tests/e2e/plugins_boundary.rs.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use http::{Request, StatusCode};
use stackctl_plugin_host::{HttpError, Plugin, Refusal, loader};
use stackctl_tests::plugins::c_plugin;

fn request(method: &str, uri: &str, body: &'static str) -> Request<Bytes> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "text/plain")
        .body(Bytes::from_static(body.as_bytes()))
        .unwrap()
}

#[tokio::test]
async fn requests_cross_whole_and_what_a_plugin_gets_wrong_is_contained() {
    let Some(path) = c_plugin("sink_echo", "plugins/host/tests/c/echo_sink.c", &[]) else {
        return;
    };
    let lib = loader::load("echo", &path).expect("load the echo sink");
    assert_eq!(lib.routes(), ["/"]);
    let plugin = Plugin::start("echo", lib, "").expect("start");

    let answer = plugin
        .http(request("POST", "/echo?a=1&b=2", "hello"))
        .await
        .expect("an answer");
    assert_eq!(answer.status(), StatusCode::CREATED);
    assert_eq!(
        String::from_utf8_lossy(answer.body().whole().expect("a whole answer")),
        "POST /echo ?a=1&b=2 type=text/plain body=hello"
    );
    assert_eq!(answer.headers()["x-echo"], "yes");
    assert_eq!(answer.headers().len(), 1, "the invalid header is dropped");

    // Status 1000 is no HTTP status: the answer is refused (the server makes it a 502).
    let refused = plugin.http(request("GET", "/bad-status", "")).await;
    assert_eq!(
        refused.err(),
        Some(HttpError::BadAnswer {
            plugin: "echo".into(),
            refusal: Refusal::Status(1000)
        })
    );

    // A refusal detaches the plugin: it gets no more requests.
    let refused = plugin.http(request("GET", "/other", "")).await;
    assert_eq!(refused.err(), Some(HttpError::Failed("echo".into())));
    assert!(plugin.is_failed());
    let after = plugin.http(request("POST", "/echo", "again")).await;
    assert_eq!(after.err(), Some(HttpError::Failed("echo".into())));
    plugin.stop();
}
