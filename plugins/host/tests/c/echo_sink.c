/*
 * echo_sink.c: a sink that serves `/` for tests/http.rs. It answers `/echo` with 201, the
 * request echoed in the body and two headers (one of them not a valid header), `/bad-status`
 * with status 1000, and refuses any other path (STACKCTL_ERR_FAILED). Each instance keeps its own
 * host table, so two instances of it can run at once.
 */
#include <stdio.h>
#include <string.h>

#include "stackctl_sink.h"

#define STR(s) { s, sizeof(s) - 1 }

static stackctl_status create(const stackctl_host *h, stackctl_str c, void **i, stackctl_buf *e) {
    (void)c;
    (void)e;
    /* The instance is its host table: it lives as long as the instance. */
    *i = (void *)h;
    return STACKCTL_OK;
}

static stackctl_status start(void *i, stackctl_buf *e) {
    (void)i;
    (void)e;
    return STACKCTL_OK;
}

static stackctl_status on_frame(void *i, const stackctl_frame *f) {
    (void)i;
    (void)f;
    return STACKCTL_OK;
}

static int is(stackctl_str s, const char *text) {
    return s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

static stackctl_status on_http(void *i, const stackctl_http_request *r) {
    const stackctl_host *host = i;
    if (is(r->path, "/echo")) {
        stackctl_str type = STR("");
        stackctl_str prefix = STR("");
        char body[512];
        int n;
        size_t h;
        const stackctl_header headers[2] = {
            { STR("x-echo"), STR("yes") },
            { STR("bad name"), STR("dropped") },
        };
        for (h = 0; h < r->header_count; h++) {
            if (is(r->headers[h].name, "content-type")) {
                type = r->headers[h].value;
            }
            if (is(r->headers[h].name, "x-forwarded-prefix")) {
                prefix = r->headers[h].value;
            }
        }
        n = snprintf(body, sizeof body, "%.*s %.*s ?%.*s type=%.*s body=%.*s%s%.*s",
                     (int)r->method.len, r->method.ptr, (int)r->path.len, r->path.ptr,
                     (int)r->query.len, r->query.ptr, (int)type.len, type.ptr,
                     (int)r->body_len, (const char *)r->body, prefix.len ? " prefix=" : "",
                     (int)prefix.len, prefix.ptr);
        host->http_respond(host->host_ctx, r->id, 201, headers, 2, (const uint8_t *)body,
                           (size_t)n);
        return STACKCTL_OK;
    }
    if (is(r->path, "/bad-status")) {
        host->http_respond(host->host_ctx, r->id, 1000, NULL, 0, NULL, 0);
        return STACKCTL_OK;
    }
    return STACKCTL_ERR_FAILED;
}

static stackctl_status metrics(void *i, stackctl_buf *o) {
    (void)i;
    o->ptr = NULL;
    o->len = 0;
    o->cap = 0;
    return STACKCTL_OK;
}

static void stop(void *i) { (void)i; }
static void destroy(void *i) { (void)i; }
static void free_buf(stackctl_buf b) { (void)b; }

static const stackctl_str routes[] = { STR("/") };

static const stackctl_sink table = {
    STACKCTL_SINK_MAGIC, STACKCTL_SINK_ABI_MAJOR, STACKCTL_SINK_ABI_MINOR, sizeof(stackctl_sink),
    0, STR("echo"), STR("1.0"), routes, 1,
    create, start, on_frame, on_http, metrics, stop, destroy, free_buf,
};

const stackctl_sink *stackctl_sink_entry(void) { return &table; }
