/*
 * probe_sink.c: a test-only stackctl sink in C99 that records what the host hands it, and
 * misbehaves on request. Built by tests/support/plugins.rs; used by tests/e2e/plugins_*.rs.
 *
 * Keys of its `[plugins.NAME]` section (all optional; every instance has its own state, so two
 * sections may load the same file):
 *
 *     output = "/path"    one line per event, flushed per line (see below)
 *     retain = N          keep the last N frames with frame_retain (release the oldest when an
 *                         N+1-th comes, the rest at stop), checking at release that their bytes
 *                         did not change since on_frame
 *     block_every = N     on every N-th frame, sleep block_ms milliseconds inside on_frame
 *     block_ms = M
 *     fail_after = N      return STACKCTL_ERR_FAILED from the N-th on_frame, after telling the
 *                         host why (fail_reason, ABI 1.1): "told to fail at frame N"
 *     refuse = "KEY"      create refuses the configuration: "KEY: refused on request"
 *                         (read from the pre-parsed section, ABI 1.1)
 *     start_gate = "/fifo" start writes `W` to output, then blocks until something opens the
 *                         named pipe for writing (holds `up` before its service driver runs)
 *
 * Lines of `output` (times are CLOCK_MONOTONIC nanoseconds, like the frames' timestamps):
 *
 *     F frame_number sequence data_pointer len idr received_ns timestamp_ns   each on_frame
 *     B frame_number ns                                               a block starts
 *     U frame_number ns                                               a block ends
 *     R frame_number sequence ok|CORRUPT                              a retained frame released
 *     S retained_at_stop                                              stop was called
 *     C key type value                                                at start, one per value
 *                                                                     of the pre-parsed section
 *     D frame_number timestamp_ns received_ns count [class confidence x y w h]...
 *                                                                     each on_detections
 *
 * Compile-time variants that the host must refuse (tests of the loader):
 *     -DPROBE_ABI_MAJOR=99    the table claims another ABI major
 *     -DPROBE_NO_ENTRY        no `stackctl_sink_entry` symbol
 *     -DPROBE_NULL_ON_HTTP    the table's `on_http` is NULL
 * and one it must still accept:
 *     -DPROBE_ABI_1_0         built against the ABI 1.0 header (plugins/host/tests/c/): its
 *                             table is 1.0's size and has no on_detections
 * Without PROBE_ABI_1_0 the table has on_detections (ABI 1.1).
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef PROBE_ABI_1_0
#include "../../plugins/host/tests/c/stackctl_sink_1_0.h"
#else
#include "stackctl_sink.h"
#endif

#ifndef PROBE_ABI_MAJOR
#define PROBE_ABI_MAJOR STACKCTL_SINK_ABI_MAJOR
#endif

#define PROBE_EXPORT __attribute__((visibility("default")))
#define PROBE_STR(s) { s, sizeof(s) - 1 }

#ifndef PROBE_ABI_1_0
static stackctl_str probe_str_of(const char *s) {
    stackctl_str out;
    out.ptr = s;
    out.len = strlen(s);
    return out;
}
#define PROBE_STR_OF(s) probe_str_of(s)
#endif
#define PROBE_MAX_RETAIN 1024

typedef struct retained {
    const stackctl_frame *frame;
    uint64_t frame_number; /* copied at retain time */
    uint32_t sequence;     /* copied at retain time */
    uint64_t hash;         /* of the bytes at retain time */
} retained;

typedef struct probe {
    const stackctl_host *host;
    char *output;
    char *start_gate;
    FILE *file;
    uint64_t retain, block_every, block_ms, fail_after;
    uint64_t frames; /* on_frame calls */
    retained held[PROBE_MAX_RETAIN];
    uint64_t held_count; /* a FIFO: held[0] is the oldest */
    int corrupt;         /* a released frame had changed */
} probe;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t fnv1a(const uint8_t *p, size_t len) {
    uint64_t h = 14695981039346656037u;
    size_t i;
    for (i = 0; i < len; i++) {
        h = (h ^ p[i]) * 1099511628211u;
    }
    return h;
}

/* Appends one line to `output`, if set, flushed at once. */
__attribute__((format(printf, 2, 3))) static void line(probe *p, const char *format, ...) {
    va_list args;
    if (p->file == NULL) {
        return;
    }
    va_start(args, format);
    vfprintf(p->file, format, args);
    va_end(args);
    fflush(p->file);
}

static stackctl_buf message(const char *text) {
    stackctl_buf buf = { NULL, 0, 0 };
    size_t len = strlen(text);
    buf.ptr = (uint8_t *)malloc(len + 1);
    if (buf.ptr != NULL) {
        memcpy(buf.ptr, text, len + 1);
        buf.len = len;
        buf.cap = len + 1;
    }
    return buf;
}

static void probe_free_buf(stackctl_buf buf) {
    free(buf.ptr);
}

/* The value of `key` in the host's TOML text: a one-line "string" (no escapes) or an integer.
 * Returns a new nul-terminated string, or NULL when the key is absent. */
static char *value_of(stackctl_str toml, const char *key) {
    const char *p = toml.ptr, *end = toml.ptr + toml.len;
    size_t key_len = strlen(key);
    while (p != NULL && p < end) {
        const char *eol = (const char *)memchr(p, '\n', (size_t)(end - p));
        const char *q = p, *line_end = eol != NULL ? eol : end;
        p = eol != NULL ? eol + 1 : end;
        while (q < line_end && (*q == ' ' || *q == '\t')) q++;
        if ((size_t)(line_end - q) <= key_len || memcmp(q, key, key_len) != 0) continue;
        q += key_len;
        while (q < line_end && (*q == ' ' || *q == '\t')) q++;
        if (q >= line_end || *q != '=') continue;
        q++;
        while (q < line_end && (*q == ' ' || *q == '\t')) q++;
        if (q < line_end && (*q == '"' || *q == '\'')) {
            char quote = *q++;
            const char *close = (const char *)memchr(q, quote, (size_t)(line_end - q));
            size_t n;
            char *out;
            if (close == NULL) return NULL;
            n = (size_t)(close - q);
            out = (char *)malloc(n + 1);
            if (out == NULL) return NULL;
            memcpy(out, q, n);
            out[n] = '\0';
            return out;
        } else {
            size_t n = (size_t)(line_end - q);
            char *out = (char *)malloc(n + 1);
            if (out == NULL) return NULL;
            memcpy(out, q, n);
            out[n] = '\0';
            return out;
        }
    }
    return NULL;
}

static uint64_t number_of(stackctl_str toml, const char *key) {
    char *text = value_of(toml, key);
    uint64_t n = text != NULL ? strtoull(text, NULL, 10) : 0;
    free(text);
    return n;
}

static stackctl_status probe_create(const stackctl_host *host, stackctl_str config,
                                    void **instance, stackctl_buf *error) {
    probe *p = (probe *)calloc(1, sizeof *p);
    if (p == NULL) {
        *error = message("probe: out of memory");
        return STACKCTL_ERR_FAILED;
    }
    p->host = host;
    p->output = value_of(config, "output");
    p->start_gate = value_of(config, "start_gate");
    p->retain = number_of(config, "retain");
    p->block_every = number_of(config, "block_every");
    p->block_ms = number_of(config, "block_ms");
    p->fail_after = number_of(config, "fail_after");
#ifndef PROBE_ABI_1_0
    if (host->struct_size >= offsetof(stackctl_host, config_count) + sizeof(size_t)) {
        size_t i;
        for (i = 0; i < host->config_count; i++) {
            const stackctl_config_value *v = &host->config[i];
            if (v->key.len == 6 && memcmp(v->key.ptr, "refuse", 6) == 0 &&
                v->type == STACKCTL_VALUE_STRING) {
                char text[256];
                snprintf(text, sizeof text, "%.*s: refused on request", (int)v->string.len,
                         v->string.ptr);
                free(p->output);
                free(p->start_gate);
                free(p);
                *error = message(text);
                return STACKCTL_ERR_CONFIG;
            }
        }
    }
#endif
    if (p->retain > PROBE_MAX_RETAIN) {
        free(p->output);
        free(p->start_gate);
        free(p);
        *error = message("retain: at most 1024 frames");
        return STACKCTL_ERR_CONFIG;
    }
    *instance = p;
    return STACKCTL_OK;
}

static stackctl_status probe_start(void *instance, stackctl_buf *error) {
    probe *p = (probe *)instance;
    if (p->output != NULL) {
        p->file = fopen(p->output, "a");
        if (p->file == NULL) {
            *error = message("probe: cannot open output");
            return STACKCTL_ERR_FAILED;
        }
    }
    if (p->start_gate != NULL) {
        FILE *gate;
        line(p, "W\n");
        gate = fopen(p->start_gate, "r"); /* a FIFO: blocks until a writer opens it */
        if (gate != NULL) {
            fclose(gate);
        }
    }
#ifndef PROBE_ABI_1_0
    if (p->host->struct_size >= offsetof(stackctl_host, config_count) + sizeof(size_t)) {
        size_t i;
        for (i = 0; i < p->host->config_count; i++) {
            const stackctl_config_value *v = &p->host->config[i];
            switch (v->type) {
            case STACKCTL_VALUE_STRING:
                line(p, "C %.*s string %.*s\n", (int)v->key.len, v->key.ptr, (int)v->string.len,
                     v->string.ptr);
                break;
            case STACKCTL_VALUE_INTEGER:
                line(p, "C %.*s integer %lld\n", (int)v->key.len, v->key.ptr,
                     (long long)v->integer);
                break;
            case STACKCTL_VALUE_FLOAT:
                line(p, "C %.*s float %g\n", (int)v->key.len, v->key.ptr, v->number);
                break;
            case STACKCTL_VALUE_BOOL:
                line(p, "C %.*s bool %lld\n", (int)v->key.len, v->key.ptr, (long long)v->integer);
                break;
            default:
                line(p, "C %.*s unknown\n", (int)v->key.len, v->key.ptr);
            }
        }
    }
#endif
    return STACKCTL_OK;
}

/* Releases the oldest retained frame, checking its bytes. */
static void release_oldest(probe *p) {
    retained r = p->held[0];
    int ok = fnv1a(r.frame->data, r.frame->len) == r.hash &&
             r.frame->frame_number == r.frame_number && r.frame->sequence == r.sequence;
    memmove(&p->held[0], &p->held[1], (size_t)(p->held_count - 1) * sizeof p->held[0]);
    p->held_count--;
    if (!ok) {
        p->corrupt = 1;
    }
    line(p, "R %" PRIu64 " %" PRIu32 " %s\n", r.frame_number, r.sequence, ok ? "ok" : "CORRUPT");
    p->host->frame_release(p->host->host_ctx, r.frame);
}

static stackctl_status probe_on_frame(void *instance, const stackctl_frame *frame) {
    probe *p = (probe *)instance;
    uint64_t received = now_ns();
    p->frames++;
    line(p, "F %" PRIu64 " %" PRIu32 " %p %zu %d %" PRIu64 " %" PRIu64 "\n", frame->frame_number,
         frame->sequence, (const void *)frame->data, frame->len,
         (frame->flags & STACKCTL_FRAME_IDR) != 0, received, frame->timestamp_ns);
    if (p->retain > 0) {
        if (p->held_count == p->retain) {
            release_oldest(p);
        }
        p->host->frame_retain(p->host->host_ctx, frame);
        p->held[p->held_count].frame = frame;
        p->held[p->held_count].frame_number = frame->frame_number;
        p->held[p->held_count].sequence = frame->sequence;
        p->held[p->held_count].hash = fnv1a(frame->data, frame->len);
        p->held_count++;
    }
    if (p->block_every > 0 && p->frames % p->block_every == 0) {
        struct timespec pause;
        pause.tv_sec = (time_t)(p->block_ms / 1000);
        pause.tv_nsec = (long)(p->block_ms % 1000) * 1000000L;
        line(p, "B %" PRIu64 " %" PRIu64 "\n", frame->frame_number, now_ns());
        while (nanosleep(&pause, &pause) != 0) {
        }
        line(p, "U %" PRIu64 " %" PRIu64 "\n", frame->frame_number, now_ns());
    }
    if (p->corrupt || (p->fail_after > 0 && p->frames == p->fail_after)) {
#ifndef PROBE_ABI_1_0
        if (p->host->struct_size >= offsetof(stackctl_host, fail_reason) + sizeof(void *) &&
            p->host->fail_reason != NULL) {
            char text[64];
            snprintf(text, sizeof text, "told to fail at frame %" PRIu64, p->frames);
            p->host->fail_reason(p->host->host_ctx, PROBE_STR_OF(text));
        }
#endif
        return STACKCTL_ERR_FAILED;
    }
    return STACKCTL_OK;
}

#ifndef PROBE_ABI_1_0
static stackctl_status probe_on_detections(void *instance, const stackctl_detections *d) {
    probe *p = (probe *)instance;
    uint64_t received = now_ns();
    uint32_t i;
    if (p->file == NULL) {
        return STACKCTL_OK;
    }
    fprintf(p->file, "D %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu32, d->frame_number,
            d->timestamp_ns, received, d->count);
    for (i = 0; i < d->count; i++) {
        const stackctl_detection *o = &d->items[i];
        fprintf(p->file, " %.*s %.3f %" PRId32 " %" PRId32 " %" PRId32 " %" PRId32,
                (int)o->class_name.len, o->class_name.ptr, (double)o->confidence, o->x, o->y,
                o->w, o->h);
    }
    fputc('\n', p->file);
    fflush(p->file);
    return STACKCTL_OK;
}
#endif

/* Unused in the PROBE_NULL_ON_HTTP variant. */
__attribute__((unused)) static stackctl_status probe_on_http(void *instance,
                                                            const stackctl_http_request *request) {
    probe *p = (probe *)instance;
    p->host->http_respond(p->host->host_ctx, request->id, 404, NULL, 0, NULL, 0);
    return STACKCTL_OK;
}

static stackctl_status probe_metrics(void *instance, stackctl_buf *out) {
    (void)instance;
    out->ptr = NULL;
    out->len = 0;
    out->cap = 0;
    return STACKCTL_OK;
}

static void probe_stop(void *instance) {
    probe *p = (probe *)instance;
    line(p, "S %" PRIu64 "\n", p->held_count);
    while (p->held_count > 0) {
        release_oldest(p);
    }
    if (p->file != NULL) {
        fclose(p->file);
        p->file = NULL;
    }
}

static void probe_destroy(void *instance) {
    probe *p = (probe *)instance;
    if (p->file != NULL) {
        fclose(p->file);
    }
    free(p->output);
    free(p->start_gate);
    free(p);
}

static const stackctl_sink PROBE_TABLE = {
    .magic = STACKCTL_SINK_MAGIC,
    .abi_major = PROBE_ABI_MAJOR,
    .abi_minor = STACKCTL_SINK_ABI_MINOR,
    .struct_size = sizeof(stackctl_sink),
    .name = PROBE_STR("probe"),
    .version = PROBE_STR("0.0.1-test"),
    .routes = NULL, /* none */
    .route_count = 0,
    .create = probe_create,
    .start = probe_start,
    .on_frame = probe_on_frame,
#ifdef PROBE_NULL_ON_HTTP
    .on_http = NULL,
#else
    .on_http = probe_on_http,
#endif
    .metrics = probe_metrics,
    .stop = probe_stop,
    .destroy = probe_destroy,
    .free_buf = probe_free_buf,
#ifndef PROBE_ABI_1_0
    .on_detections = probe_on_detections,
#endif
};

#ifdef PROBE_NO_ENTRY
PROBE_EXPORT const stackctl_sink *probe_entry_under_another_name(void) {
    return &PROBE_TABLE;
}
#else
PROBE_EXPORT const stackctl_sink *stackctl_sink_entry(void) {
    return &PROBE_TABLE;
}
#endif
