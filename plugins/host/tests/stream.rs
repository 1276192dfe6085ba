//! Streamed answers (ABI 1.2) through the real loader and a C sink (`c/stream_sink.c`): a body
//! four times the host's buffer arrives whole and in order, with back-pressure (the plugin is
//! told WOULD_BLOCK, then woken by `on_http_writable`); without a length it comes all the same;
//! an abort fails the body; a client that goes away, and an answer that is never ended (cut by
//! the write time-out), are reported to the plugin; a plugin streams at most
//! `STACKCTL_HTTP_STREAMS_MAX` answers at once. The real server (connection closed
//! mid-message, memory under stalled clients) is tested with the recorder:
//! plugins/recorder/tests/downloads.rs.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use stackctl_plugin_abi as abi;
use stackctl_plugin_host::{HttpError, Plugin, PluginBody, Refusal, StreamError, StreamOptions};
use stackctl_tests::plugins::c_plugin;
use stackctl_tests::up::EVENT_TIMEOUT;

fn get(uri: &str) -> Request<Bytes> {
    Request::builder().uri(uri).body(Bytes::new()).unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A counter of the sink's metrics.
fn counter(plugin: &Plugin, name: &str) -> u64 {
    plugin
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name}"))
}

/// Waits (polling the sink's metrics) until counter `name` reaches `at_least`.
async fn until(plugin: &Plugin, name: &str, at_least: u64) {
    tokio::time::timeout(EVENT_TIMEOUT, async {
        while counter(plugin, name) < at_least {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} stayed below {at_least}"));
}

async fn collect(body: PluginBody) -> Result<Vec<u8>, StreamError> {
    tokio::time::timeout(EVENT_TIMEOUT, body.collect())
        .await
        .expect("the body ends")
        .map(|c| c.to_bytes().to_vec())
}

fn start() -> Option<Arc<Plugin>> {
    let path = c_plugin("sink_stream", "plugins/host/tests/c/stream_sink.c", &[])?;
    let lib = stackctl_plugin_host::loader::load("stream", &path).expect("load the stream sink");
    assert_eq!(lib.abi(), (1, 2));
    Some(Plugin::start("stream", lib, "").expect("start"))
}

#[tokio::test]
async fn a_c_sink_streams_with_back_pressure_and_is_told_when_the_client_leaves_or_stalls() {
    let Some(plugin) = start() else {
        return;
    };
    let len = 4 * abi::HTTP_STREAM_BUFFER;
    let answer = plugin
        .http(get(&format!("/stream?{len}")))
        .await
        .expect("an answer");
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.body().size_hint().exact(), Some(len as u64));
    assert_eq!(answer.headers()["content-type"], "application/octet-stream");
    // Nobody reads yet: the plugin fills the buffer and is told to wait.
    until(&plugin, "stream_would_block_total", 1).await;
    assert_eq!(counter(&plugin, "stream_writable_total"), 0);
    let body = collect(answer.into_body()).await.expect("whole");
    assert!(
        body == pattern(len),
        "{} bytes, not the pattern",
        body.len()
    );
    assert!(counter(&plugin, "stream_writable_total") >= 1);
    until(&plugin, "stream_done_total", 1).await;

    let answer = plugin.http(get("/chunked?100000")).await.expect("answer");
    assert_eq!(answer.body().size_hint().exact(), None);
    assert_eq!(
        collect(answer.into_body()).await.expect("whole"),
        pattern(100_000)
    );

    let answer = plugin.http(get("/abort")).await.expect("answer");
    assert_eq!(
        collect(answer.into_body()).await,
        Err(StreamError::Aborted),
        "an aborted body fails: the server closes the connection mid-message"
    );

    let bad = plugin.http(get("/bad")).await;
    assert!(
        matches!(
            bad,
            Err(HttpError::BadAnswer {
                refusal: Refusal::Value(_),
                ..
            })
        ),
        "{bad:?}"
    );
    assert_eq!(counter(&plugin, "stream_invalid_total"), 1);
    assert_eq!(counter(&plugin, "stream_closed_total"), 0);
    assert_eq!(plugin.open_streams(), 0);

    // (One test: the C sink keeps its host in a static, one instance per process.)
    // The client reads one chunk and goes away: the plugin's writer learns it (CLOSED).
    let answer = plugin.http(get("/stream?100000000")).await.expect("answer");
    let mut body = answer.into_body();
    let first = body.frame().await.expect("a frame").expect("data");
    assert!(!first.into_data().expect("data").is_empty());
    drop(body);
    until(&plugin, "stream_closed_total", 1).await;
    assert_eq!(plugin.open_streams(), 0);

    // Never ended: the write time-out cuts it, and the plugin is told.
    let mut request = get("/never");
    request.extensions_mut().insert(StreamOptions {
        write_timeout: Duration::from_millis(300),
        close_connection: None,
    });
    let answer = plugin.http(request).await.expect("answer");
    let cut = collect(answer.into_body()).await;
    assert_eq!(cut, Err(StreamError::TimedOut(Duration::from_millis(300))));
    until(&plugin, "stream_closed_total", 2).await;
    assert_eq!(plugin.open_streams(), 0);

    // At most STACKCTL_HTTP_STREAMS_MAX open at once: the next client gets 503.
    let mut open = Vec::new();
    for _ in 0..abi::HTTP_STREAMS_MAX {
        let answer = plugin.http(get("/never")).await.expect("answer");
        assert!(answer.body().whole().is_none(), "streamed");
        open.push(answer);
    }
    assert_eq!(plugin.open_streams(), abi::HTTP_STREAMS_MAX);
    let refused = plugin.http(get("/never")).await.expect("answer");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "2");
    drop(open);
    assert_eq!(plugin.open_streams(), 0);
    plugin.stop();
}
