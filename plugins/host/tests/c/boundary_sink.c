/*
 * boundary_sink.c: a sink that gets the HTTP and metrics boundary wrong on purpose, for the
 * tests of the host's side of it (tests/e2e/plugins_boundary.rs, plugins/host/tests/*.rs).
 * It serves `/b`:
 *   /b/lie      200, body "x", with `content-length: 999` and every other hop-by-hop header
 *               a host owns (transfer-encoding, connection, keep-alive, date, upgrade, ...);
 *   /b/crlf     a header value with CR LF in it (a response-splitting attempt);
 *   /b/nul      a header name with a NUL in it;
 *   /b/status99, /b/status600: statuses outside 100-599;
 *   /b/fail     refuses the request (STACKCTL_ERR_FAILED): the host detaches the plugin;
 *   anything else: 200 "ok".
 * Its metrics are garbage lines, a family of the host's (`stackctl_ready`), a `plugin` label
 * of its own, and one valid family, `boundary_requests_total`. A configuration with the word
 * `refuse` in it is refused (STACKCTL_ERR_CONFIG) with the message
 * "refuse: this instance was told to refuse".
 */
#include <stdlib.h>
#include <string.h>

#include "stackctl_sink.h"

#define STR(s) { s, sizeof(s) - 1 }

typedef struct {
    const stackctl_host *host;
} boundary;

static const char refused[] = "refuse: this instance was told to refuse";

static stackctl_status create(const stackctl_host *h, stackctl_str c, void **i, stackctl_buf *e) {
    boundary *b;
    size_t k;
    for (k = 0; c.len >= 6 && k + 6 <= c.len; k++) {
        if (memcmp(c.ptr + k, "refuse", 6) == 0) {
            e->ptr = (uint8_t *)malloc(sizeof refused);
            if (e->ptr != NULL) {
                memcpy(e->ptr, refused, sizeof refused - 1);
                e->len = sizeof refused - 1;
                e->cap = sizeof refused;
            }
            return STACKCTL_ERR_CONFIG;
        }
    }
    b = (boundary *)calloc(1, sizeof *b);
    if (b == NULL) {
        return STACKCTL_ERR_FAILED;
    }
    b->host = h;
    *i = b;
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
    const stackctl_host *host = ((boundary *)i)->host;
    static const uint8_t x[] = "x";
    static const uint8_t ok[] = "ok";
    if (is(r->path, "/b/lie")) {
        const stackctl_header headers[] = {
            { STR("Content-Length"), STR("999") },
            { STR("Transfer-Encoding"), STR("chunked") },
            { STR("Connection"), STR("close") },
            { STR("Keep-Alive"), STR("timeout=1") },
            { STR("Date"), STR("yesterday") },
            { STR("Upgrade"), STR("websocket") },
            { STR("TE"), STR("trailers") },
            { STR("Trailer"), STR("x-late") },
            { STR("Proxy-Authenticate"), STR("Basic") },
            { STR("X-Kept"), STR("yes") },
        };
        host->http_respond(host->host_ctx, r->id, 200, headers,
                           sizeof headers / sizeof headers[0], x, 1);
    } else if (is(r->path, "/b/crlf")) {
        const stackctl_header headers[] = { { STR("X-Split"), STR("a\r\nX-Injected: 1") } };
        host->http_respond(host->host_ctx, r->id, 200, headers, 1, x, 1);
    } else if (is(r->path, "/b/nul")) {
        const stackctl_header headers[] = { { STR("X-N\0ul"), STR("v") } };
        host->http_respond(host->host_ctx, r->id, 200, headers, 1, x, 1);
    } else if (is(r->path, "/b/status99")) {
        host->http_respond(host->host_ctx, r->id, 99, NULL, 0, x, 1);
    } else if (is(r->path, "/b/status600")) {
        host->http_respond(host->host_ctx, r->id, 600, NULL, 0, x, 1);
    } else if (is(r->path, "/b/fail")) {
        return STACKCTL_ERR_FAILED;
    } else {
        host->http_respond(host->host_ctx, r->id, 200, NULL, 0, ok, 2);
    }
    return STACKCTL_OK;
}

static const char exposition[] =
    "# HELP boundary_requests_total Requests answered.\n"
    "# TYPE boundary_requests_total counter\n"
    "boundary_requests_total{path=\"/b\"} 3\n"
    "this is not a metric\n"
    "broken{label=\"unterminated} 1\n"
    "# TYPE stackctl_ready gauge\n"
    "stackctl_ready 0\n"
    "boundary_spoofed{plugin=\"someone_else\"} 1\n"
    "boundary_values 1 2 3\n"
    "boundary_nan_ish one\n";

static stackctl_status metrics(void *i, stackctl_buf *o) {
    (void)i;
    o->ptr = (uint8_t *)malloc(sizeof exposition);
    if (o->ptr == NULL) {
        return STACKCTL_ERR_FAILED;
    }
    memcpy(o->ptr, exposition, sizeof exposition - 1);
    o->len = sizeof exposition - 1;
    o->cap = sizeof exposition;
    return STACKCTL_OK;
}

static void stop(void *i) { (void)i; }
static void destroy(void *i) { free(i); }
static void free_buf(stackctl_buf b) { free(b.ptr); }

/* A second build with -DBOUNDARY_ROUTE="/c" is a second instance of the same library (same
 * name) that may run beside the first: two plugins may not declare the same route. */
#ifndef BOUNDARY_ROUTE
#define BOUNDARY_ROUTE "/b"
#endif
static const stackctl_str routes[] = { STR(BOUNDARY_ROUTE) };

static const stackctl_sink table = {
    STACKCTL_SINK_MAGIC, STACKCTL_SINK_ABI_MAJOR, STACKCTL_SINK_ABI_MINOR, sizeof(stackctl_sink),
    0, STR("boundary"), STR("1.0"), routes, 1,
    create, start, on_frame, on_http, metrics, stop, destroy, free_buf,
};

const stackctl_sink *stackctl_sink_entry(void) { return &table; }
