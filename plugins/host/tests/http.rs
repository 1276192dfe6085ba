//! HTTP across the plugin boundary, through the real loader and a C sink: the request arrives
//! whole (method, path, query, headers, body), the answer comes back, and what a plugin gets
//! wrong (an invalid status, an invalid header, a refusal) is contained by the host.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

mod common;

use bytes::Bytes;
use http::{Request, StatusCode};
use stackctl_plugin_host::{HttpError, Plugin, loader};

/// Answers `/echo` with 201, the request echoed in the body and two headers (one invalid),
/// `/bad-status` with status 1000, and refuses anything else.
const SINK: &str = r#"
#include "stackctl_sink.h"
#include <stdio.h>
#include <string.h>
static const stackctl_host *host;
static int instance;
static stackctl_status create(const stackctl_host *h, stackctl_str c, void **i, stackctl_buf *e) {
    (void)c; (void)e; host = h; *i = &instance; return STACKCTL_OK; }
static stackctl_status start(void *i, stackctl_buf *e) { (void)i; (void)e; return STACKCTL_OK; }
static stackctl_status on_frame(void *i, const stackctl_frame *f) { (void)i; (void)f; return STACKCTL_OK; }
static int is(stackctl_str s, const char *text) {
    return s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0; }
static stackctl_status on_http(void *i, const stackctl_http_request *r) {
    (void)i;
    if (is(r->path, "/echo")) {
        char body[512];
        const char *type = "";
        size_t type_len = 0;
        for (size_t h = 0; h < r->header_count; h++) {
            if (is(r->headers[h].name, "content-type")) {
                type = (const char *)r->headers[h].value.ptr; type_len = r->headers[h].value.len; }
        }
        int n = snprintf(body, sizeof body, "%.*s %.*s ?%.*s type=%.*s body=%.*s",
            (int)r->method.len, (const char *)r->method.ptr, (int)r->path.len, (const char *)r->path.ptr,
            (int)r->query.len, (const char *)r->query.ptr, (int)type_len, type,
            (int)r->body_len, (const char *)r->body);
        stackctl_header headers[2] = {
            { { (const uint8_t *)"x-echo", 6 }, { (const uint8_t *)"yes", 3 } },
            { { (const uint8_t *)"bad name", 8 }, { (const uint8_t *)"dropped", 7 } },
        };
        host->http_respond(host->host_ctx, r->id, 201, headers, 2, (const uint8_t *)body, (size_t)n);
        return STACKCTL_OK;
    }
    if (is(r->path, "/bad-status")) {
        host->http_respond(host->host_ctx, r->id, 1000, NULL, 0, NULL, 0);
        return STACKCTL_OK;
    }
    return STACKCTL_ERR_FAILED;
}
static stackctl_status metrics(void *i, stackctl_buf *o) { (void)i; o->ptr = NULL; o->len = 0; o->cap = 0; return STACKCTL_OK; }
static void stop(void *i) { (void)i; }
static void destroy(void *i) { (void)i; }
static void free_buf(stackctl_buf b) { (void)b; }
static const stackctl_str routes[] = { { (const uint8_t *)"/", 1 } };
static const stackctl_sink table = { STACKCTL_SINK_MAGIC, STACKCTL_SINK_ABI_MAJOR, STACKCTL_SINK_ABI_MINOR,
    sizeof(stackctl_sink), 0, { (const uint8_t *)"echo", 4 }, { (const uint8_t *)"1.0", 3 }, routes, 1,
    create, start, on_frame, on_http, metrics, stop, destroy, free_buf };
const stackctl_sink *stackctl_sink_entry(void) { return &table; }
"#;

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
    let Some(path) = common::c_sink("sink_echo", SINK) else {
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
        String::from_utf8_lossy(answer.body()),
        "POST /echo ?a=1&b=2 type=text/plain body=hello"
    );
    assert_eq!(answer.headers()["x-echo"], "yes");
    assert_eq!(answer.headers().len(), 1, "the invalid header is dropped");

    let answer = plugin
        .http(request("GET", "/bad-status", ""))
        .await
        .expect("an answer");
    assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);

    // A refusal detaches the plugin: it gets no more requests.
    let refused = plugin.http(request("GET", "/other", "")).await;
    assert_eq!(refused.err(), Some(HttpError::Failed("echo".into())));
    assert!(plugin.is_failed());
    let after = plugin.http(request("POST", "/echo", "again")).await;
    assert_eq!(after.err(), Some(HttpError::Failed("echo".into())));
    plugin.stop();
}
