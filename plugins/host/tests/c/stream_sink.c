/*
 * stream_sink.c: a sink that answers through the streamed calls of ABI 1.2, for
 * tests/stream.rs. Every body byte i is (i % 251), so a lost, doubled or moved chunk shows.
 *
 *   /stream?N   N bytes with an announced length, written by a thread of its own in 16 KiB
 *               chunks; on WOULD_BLOCK it waits for on_http_writable
 *   /chunked?N  the same without a length (the host sends it chunked)
 *   /abort      10 bytes, then http_respond_abort
 *   /never      1 byte, then nothing: never ended (the host's write time-out cuts it)
 *   /bad        a head with CR LF in a header value: refused (INVALID)
 *
 * Its metrics count what the host said: stream_would_block_total, stream_writable_total (calls
 * of on_http_writable), stream_closed_total (CLOSED answers, i.e. the plugin learnt that the
 * client went away or the answer was cut), stream_done_total (bodies ended), stream_invalid_total.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stackctl_sink.h"

#define STR(s) { s, sizeof(s) - 1 }
#define CHUNK (16u * 1024u)

static const stackctl_host *host;
static int instance;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static unsigned long wakeups; /* on_http_writable calls, under `lock` */
static unsigned long would_block, closed, done, invalid;
static uint64_t never_id; /* the /never answer, waiting to be told */

static void count(unsigned long *c) {
    pthread_mutex_lock(&lock);
    (*c)++;
    pthread_mutex_unlock(&lock);
}

static stackctl_status create(const stackctl_host *h, stackctl_str c, void **i, stackctl_buf *e) {
    (void)c;
    (void)e;
    if (h->struct_size < STACKCTL_HOST_SIZE_1_2) {
        return STACKCTL_ERR_FAILED; /* this sink needs a streaming host */
    }
    host = h;
    *i = &instance;
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

struct job {
    uint64_t id;
    size_t total;
};

/* Writes one chunk, waiting for on_http_writable while the host's buffer is full.
 * Returns the last status (OK, CLOSED or INVALID). */
static int32_t write_chunk(uint64_t id, const uint8_t *data, size_t len) {
    for (;;) {
        unsigned long seen;
        int32_t st;
        pthread_mutex_lock(&lock);
        seen = wakeups;
        pthread_mutex_unlock(&lock);
        st = host->http_respond_chunk(host->host_ctx, id, data, len);
        if (st != STACKCTL_STREAM_WOULD_BLOCK) {
            return st;
        }
        count(&would_block);
        pthread_mutex_lock(&lock);
        while (wakeups == seen) {
            pthread_cond_wait(&wake, &lock);
        }
        pthread_mutex_unlock(&lock);
    }
}

static void *writer(void *arg) {
    struct job job = *(struct job *)arg;
    uint8_t buf[CHUNK];
    size_t sent = 0;
    free(arg);
    while (sent < job.total) {
        size_t n = job.total - sent < CHUNK ? job.total - sent : CHUNK;
        size_t k;
        int32_t st;
        for (k = 0; k < n; k++) {
            buf[k] = (uint8_t)((sent + k) % 251u);
        }
        st = write_chunk(job.id, buf, n);
        if (st == STACKCTL_STREAM_CLOSED) {
            count(&closed);
            return NULL; /* the client went away: stop producing */
        }
        if (st != STACKCTL_STREAM_OK) {
            count(&invalid);
            return NULL;
        }
        sent += n;
    }
    host->http_respond_end(host->host_ctx, job.id);
    count(&done);
    return NULL;
}

static stackctl_status stream(const stackctl_http_request *r, int announce) {
    char query[32];
    struct job *job;
    pthread_t thread;
    size_t total;
    const stackctl_header type[1] = { { STR("content-type"), STR("application/octet-stream") } };
    size_t qlen = r->query.len < sizeof query - 1 ? r->query.len : sizeof query - 1;
    memcpy(query, r->query.ptr, qlen);
    query[qlen] = 0;
    total = (size_t)strtoull(query, NULL, 10);
    if (host->http_respond_start(host->host_ctx, r->id, 200, type, 1,
                                 announce ? (int64_t)total : -1) != STACKCTL_STREAM_OK) {
        count(&invalid);
        return STACKCTL_OK;
    }
    job = malloc(sizeof *job);
    if (job == NULL) {
        host->http_respond_abort(host->host_ctx, r->id);
        return STACKCTL_OK;
    }
    job->id = r->id;
    job->total = total;
    if (pthread_create(&thread, NULL, writer, job) != 0) {
        free(job);
        host->http_respond_abort(host->host_ctx, r->id);
        return STACKCTL_OK;
    }
    pthread_detach(thread);
    return STACKCTL_OK;
}

static stackctl_status on_http(void *i, const stackctl_http_request *r) {
    static const uint8_t ten[10] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    (void)i;
    if (is(r->path, "/stream")) {
        return stream(r, 1);
    }
    if (is(r->path, "/chunked")) {
        return stream(r, 0);
    }
    if (is(r->path, "/abort")) {
        host->http_respond_start(host->host_ctx, r->id, 200, NULL, 0, -1);
        host->http_respond_chunk(host->host_ctx, r->id, ten, sizeof ten);
        host->http_respond_abort(host->host_ctx, r->id);
        return STACKCTL_OK;
    }
    if (is(r->path, "/never")) {
        host->http_respond_start(host->host_ctx, r->id, 200, NULL, 0, -1);
        host->http_respond_chunk(host->host_ctx, r->id, ten, 1);
        pthread_mutex_lock(&lock);
        never_id = r->id;
        pthread_mutex_unlock(&lock);
        return STACKCTL_OK;
    }
    if (is(r->path, "/bad")) {
        const stackctl_header split[1] = { { STR("x-a"), STR("1\r\nx-injected: 1") } };
        if (host->http_respond_start(host->host_ctx, r->id, 200, split, 1, -1) ==
            STACKCTL_STREAM_INVALID) {
            count(&invalid);
        }
        return STACKCTL_OK;
    }
    host->http_respond(host->host_ctx, r->id, 404, NULL, 0, NULL, 0);
    return STACKCTL_OK;
}

static void on_http_writable(void *i, uint64_t id) {
    uint64_t never;
    (void)i;
    pthread_mutex_lock(&lock);
    wakeups++;
    never = never_id;
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);
    /* The answer nobody writes to: find out why we were called. */
    if (id == never &&
        host->http_respond_chunk(host->host_ctx, id, NULL, 0) == STACKCTL_STREAM_CLOSED) {
        count(&closed);
    }
}

static stackctl_status metrics(void *i, stackctl_buf *o) {
    char *text = malloc(512);
    int n;
    (void)i;
    if (text == NULL) {
        return STACKCTL_ERR_FAILED;
    }
    pthread_mutex_lock(&lock);
    n = snprintf(text, 512,
                 "stream_would_block_total %lu\nstream_writable_total %lu\n"
                 "stream_closed_total %lu\nstream_done_total %lu\nstream_invalid_total %lu\n",
                 would_block, wakeups, closed, done, invalid);
    pthread_mutex_unlock(&lock);
    o->ptr = (uint8_t *)text;
    o->len = n > 0 ? (size_t)n : 0;
    o->cap = 512;
    return STACKCTL_OK;
}

static void stop(void *i) { (void)i; }
static void destroy(void *i) { (void)i; }
static void free_buf(stackctl_buf b) { free(b.ptr); }

static const stackctl_str routes[] = { STR("/") };

static const stackctl_sink table = {
    STACKCTL_SINK_MAGIC, STACKCTL_SINK_ABI_MAJOR, STACKCTL_SINK_ABI_MINOR, sizeof(stackctl_sink),
    0, STR("stream"), STR("1.0"), routes, 1,
    create, start, on_frame, on_http, metrics, stop, destroy, free_buf,
    NULL, /* on_detections */
    on_http_writable,
};

const stackctl_sink *stackctl_sink_entry(void) { return &table; }
