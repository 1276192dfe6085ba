/*
 * meta_sink.c: an example stackctl sink in C99, to copy.
 *
 * It appends one line per H.264 access unit to a file, flushed per line:
 *
 *     frame_number timestamp_ns size idr width height
 *
 * and reports `sink_meta_lines_total` on stackctl's /metrics. It serves no HTTP routes. With
 * stackctl's detector results (ABI 1.1, `on_detections`) it logs when objects appear and leave
 * (INFO), and every result with objects (DEBUG: `stackctl up -v`).
 *
 * Configuration: its section of stackctl's config. stackctl keeps its own keys (`path`, the
 * library file; `enabled`; `required`) and passes the rest as TOML text:
 *
 *     [plugins.meta]
 *     path = "libsink_meta.so"
 *     output = "/var/lib/stackctl/meta.txt"
 *
 * Build: `make` (see the Makefile); test: `make test`.
 *
 * Threads, as stackctl_sink.h specifies them: create/start/stop/destroy run on stackctl's
 * control thread, on_frame on this plugin's delivery thread, metrics and on_http on any thread.
 * The file is touched by start, on_frame and stop only, which never run at the same time; the
 * line counter is also read by metrics, so it is guarded by a mutex.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stackctl_sink.h"

#if defined(__GNUC__)
#define META_EXPORT __attribute__((visibility("default")))
#else
#define META_EXPORT
#endif

/* A stackctl_str from a string literal. */
#define META_STR(s) { s, sizeof(s) - 1 }

typedef struct meta_sink {
    const stackctl_host *host; /* valid until destroy returns */
    char *output;              /* the file name, nul-terminated */
    FILE *file;                /* open from start to stop */
    int write_failed;          /* a write error was logged already (delivery thread only) */
    int objects_seen;          /* the last result had objects (delivery thread only) */
    pthread_mutex_t lock;      /* guards `lines` */
    uint64_t lines;
} meta_sink;

/* ---- buffers and messages ------------------------------------------------------------------ */

/* A plugin-owned buffer holding the formatted text; the host gives it back through free_buf. */
static stackctl_buf meta_buf(const char *format, ...) {
    stackctl_buf buf = { NULL, 0, 0 };
    va_list args;
    int len;
    va_start(args, format);
    len = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (len < 0) {
        return buf;
    }
    buf.ptr = (uint8_t *)malloc((size_t)len + 1);
    if (buf.ptr == NULL) {
        return buf;
    }
    va_start(args, format);
    vsnprintf((char *)buf.ptr, (size_t)len + 1, format, args);
    va_end(args);
    buf.len = (size_t)len;
    buf.cap = (size_t)len + 1;
    return buf;
}

static void meta_free_buf(stackctl_buf buf) {
    free(buf.ptr);
}

static void meta_log(const meta_sink *sink, uint32_t level, const char *message) {
    stackctl_str target = META_STR("meta");
    stackctl_str text;
    if (level > sink->host->max_log_level) {
        return;
    }
    text.ptr = message;
    text.len = strlen(message);
    sink->host->log(sink->host->host_ctx, level, target, text);
}

/* ---- configuration: the one key `output` ---------------------------------------------------- */

typedef struct meta_cursor {
    const char *p;
    const char *end;
} meta_cursor;

static void skip_blanks(meta_cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) {
        c->p++;
    }
}

/* Reads a one-line TOML string at the cursor ("basic" with simple escapes, or 'literal') into
 * a new nul-terminated string. Returns NULL when it is not one. */
static char *read_string(meta_cursor *c) {
    char quote;
    char *out;
    size_t n = 0;
    if (c->p >= c->end || (*c->p != '"' && *c->p != '\'')) {
        return NULL;
    }
    quote = *c->p++;
    out = (char *)malloc((size_t)(c->end - c->p) + 1); /* never longer than the rest */
    if (out == NULL) {
        return NULL;
    }
    while (c->p < c->end && *c->p != quote && *c->p != '\n') {
        char ch = *c->p++;
        if (quote == '"' && ch == '\\') {
            if (c->p >= c->end) {
                break;
            }
            ch = *c->p++;
            switch (ch) {
            case '"': case '\\': break;
            case 'n': ch = '\n'; break;
            case 't': ch = '\t'; break;
            case 'r': ch = '\r'; break;
            default: free(out); return NULL; /* \u, \b, \f: not in a file name here */
            }
        }
        out[n++] = ch;
    }
    if (c->p >= c->end || *c->p != quote) {
        free(out);
        return NULL;
    }
    c->p++;
    out[n] = '\0';
    return out;
}

/* Finds `output = "..."` among the top-level keys of `toml`. On success returns
 * STACKCTL_OK and sets *output (malloc'd); otherwise sets *error to a message naming the key. */
static stackctl_status parse_output(stackctl_str toml, char **output, stackctl_buf *error) {
    static const char key[] = "output";
    const size_t key_len = sizeof(key) - 1;
    meta_cursor c;
    c.p = toml.ptr;
    c.end = toml.ptr + toml.len;
    while (c.p != NULL && c.p < c.end) {
        const char *line_end = (const char *)memchr(c.p, '\n', (size_t)(c.end - c.p));
        meta_cursor line;
        line.p = c.p;
        line.end = line_end != NULL ? line_end : c.end;
        c.p = line_end != NULL ? line_end + 1 : c.end;
        skip_blanks(&line);
        if (line.p < line.end && *line.p == '[') {
            break; /* a sub-table starts: its keys are not ours */
        }
        if ((size_t)(line.end - line.p) < key_len || memcmp(line.p, key, key_len) != 0) {
            continue;
        }
        line.p += key_len;
        skip_blanks(&line);
        if (line.p >= line.end || *line.p != '=') {
            continue; /* another key that starts with "output" */
        }
        line.p++;
        skip_blanks(&line);
        *output = read_string(&line);
        skip_blanks(&line);
        if (*output == NULL || (line.p < line.end && *line.p != '#' && *line.p != '\r')) {
            free(*output);
            *output = NULL;
            if (error != NULL) {
                *error = meta_buf("output: expected a one-line string, e.g. "
                                  "output = \"/var/lib/stackctl/meta.txt\"");
            }
            return STACKCTL_ERR_CONFIG;
        }
        if ((*output)[0] == '\0') {
            free(*output);
            *output = NULL;
            if (error != NULL) {
                *error = meta_buf("output: must name a file, not be empty");
            }
            return STACKCTL_ERR_CONFIG;
        }
        return STACKCTL_OK;
    }
    if (error != NULL) {
        *error = meta_buf("output: missing: set output = \"/path/to/file\" in the plugin's "
                          "section");
    }
    return STACKCTL_ERR_CONFIG;
}

/* ---- the table's functions ------------------------------------------------------------------ */

/* [control] */
static stackctl_status meta_create(const stackctl_host *host, stackctl_str config_toml,
                                   void **instance, stackctl_buf *error) {
    meta_sink *sink;
    char *output = NULL;
    stackctl_status status;
    /* Read only what the host has: ABI 1.0 ends after frame_release. */
    if (host == NULL || instance == NULL || host->abi_major != STACKCTL_SINK_ABI_MAJOR ||
        host->struct_size < offsetof(stackctl_host, frame_release) + sizeof(host->frame_release)) {
        if (error != NULL) {
            *error = meta_buf("meta: unusable host (NULL, another ABI major, or too short)");
        }
        return STACKCTL_ERR_FAILED;
    }
    status = parse_output(config_toml, &output, error);
    if (status != STACKCTL_OK) {
        return status;
    }
    sink = (meta_sink *)calloc(1, sizeof *sink);
    if (sink == NULL || pthread_mutex_init(&sink->lock, NULL) != 0) {
        free(sink);
        free(output);
        if (error != NULL) {
            *error = meta_buf("meta: out of memory");
        }
        return STACKCTL_ERR_FAILED;
    }
    sink->host = host;
    sink->output = output;
    *instance = sink;
    return STACKCTL_OK;
}

/* [control] */
static stackctl_status meta_start(void *instance, stackctl_buf *error) {
    meta_sink *sink = (meta_sink *)instance;
    sink->file = fopen(sink->output, "a");
    if (sink->file == NULL) {
        if (error != NULL) {
            *error = meta_buf("cannot open %s (output) for appending: %s", sink->output,
                              strerror(errno));
        }
        return STACKCTL_ERR_FAILED;
    }
    meta_log(sink, STACKCTL_LOG_INFO, "appending one line per frame");
    return STACKCTL_OK;
}

/* [delivery] No allocation here beyond stdio's own buffer. */
static stackctl_status meta_on_frame(void *instance, const stackctl_frame *frame) {
    meta_sink *sink = (meta_sink *)instance;
    int written;
    if (sink->file == NULL) {
        return STACKCTL_OK;
    }
    if (frame->struct_size < offsetof(stackctl_frame, height) + sizeof(frame->height)) {
        return STACKCTL_ERR_FAILED; /* a broken host: detach us */
    }
    written = fprintf(sink->file, "%" PRIu64 " %" PRIu64 " %zu %d %" PRIu32 " %" PRIu32 "\n",
                      frame->frame_number, frame->timestamp_ns, frame->len,
                      (frame->flags & STACKCTL_FRAME_IDR) != 0, frame->width, frame->height);
    if (written < 0 || fflush(sink->file) != 0) {
        if (!sink->write_failed) {
            char message[160];
            snprintf(message, sizeof message, "cannot write %.100s (errno %d); going on",
                     sink->output, errno);
            meta_log(sink, STACKCTL_LOG_ERROR, message);
            sink->write_failed = 1;
        }
        return STACKCTL_OK; /* the disk may come back: keep the plugin attached */
    }
    pthread_mutex_lock(&sink->lock);
    sink->lines++;
    pthread_mutex_unlock(&sink->lock);
    return STACKCTL_OK;
}

/* [delivery] ABI 1.1: one result of the detector, in order with the frames. Logged: at INFO
 * when objects appear or all leave, each result with objects at DEBUG. Never called by a 1.0
 * host (it does not read the field). Everything is checked: the host is another program. */
static stackctl_status meta_on_detections(void *instance, const stackctl_detections *detections) {
    meta_sink *sink = (meta_sink *)instance;
    char message[512];
    size_t used = 0;
    uint32_t i;
    int seen;
    if (detections == NULL ||
        detections->struct_size < offsetof(stackctl_detections, count) + sizeof(detections->count) ||
        detections->count > STACKCTL_DETECTIONS_MAX ||
        (detections->count > 0 && detections->items == NULL)) {
        return STACKCTL_OK; /* unusable: skip it, frames go on */
    }
    seen = detections->count > 0;
    if (seen == sink->objects_seen && (!seen || sink->host->max_log_level < STACKCTL_LOG_DEBUG)) {
        return STACKCTL_OK; /* nothing worth a line */
    }
    used = (size_t)snprintf(message, sizeof message, "frame %" PRIu64 " (%" PRIu64 " ns): %s",
                            detections->frame_number, detections->timestamp_ns,
                            seen ? "" : "no objects");
    for (i = 0; i < detections->count && used < sizeof message; i++) {
        const stackctl_detection *d = &detections->items[i];
        int len = d->class_name.len <= STACKCTL_CLASS_NAME_MAX ? (int)d->class_name.len : 0;
        used += (size_t)snprintf(message + used, sizeof message - used,
                                 "%s%.*s %.2f at %" PRId32 ",%" PRId32 " %" PRId32 "x%" PRId32,
                                 i > 0 ? "; " : "", len, d->class_name.ptr,
                                 (double)d->confidence, d->x, d->y, d->w, d->h);
    }
    meta_log(sink, seen != sink->objects_seen ? STACKCTL_LOG_INFO : STACKCTL_LOG_DEBUG, message);
    sink->objects_seen = seen;
    return STACKCTL_OK;
}

/* [any-thread] No routes are declared, so this is never called; answer 404 all the same. */
static stackctl_status meta_on_http(void *instance, const stackctl_http_request *request) {
    meta_sink *sink = (meta_sink *)instance;
    static const char body[] = "{\"error\":\"not found\"}";
    stackctl_header header;
    header.name.ptr = "content-type";
    header.name.len = strlen(header.name.ptr);
    header.value.ptr = "application/json";
    header.value.len = strlen(header.value.ptr);
    sink->host->http_respond(sink->host->host_ctx, request->id, 404, &header, 1,
                             (const uint8_t *)body, sizeof body - 1);
    return STACKCTL_OK;
}

/* [any-thread] */
static stackctl_status meta_metrics(void *instance, stackctl_buf *out) {
    meta_sink *sink = (meta_sink *)instance;
    uint64_t lines;
    pthread_mutex_lock(&sink->lock);
    lines = sink->lines;
    pthread_mutex_unlock(&sink->lock);
    *out = meta_buf("# HELP sink_meta_lines_total Lines appended to the output file.\n"
                    "# TYPE sink_meta_lines_total counter\n"
                    "sink_meta_lines_total %" PRIu64 "\n",
                    lines);
    return out->ptr != NULL ? STACKCTL_OK : STACKCTL_ERR_FAILED;
}

/* [control] */
static void meta_stop(void *instance) {
    meta_sink *sink = (meta_sink *)instance;
    if (sink->file != NULL) {
        fclose(sink->file);
        sink->file = NULL;
    }
}

/* [control] */
static void meta_destroy(void *instance) {
    meta_sink *sink = (meta_sink *)instance;
    if (sink == NULL) {
        return;
    }
    meta_stop(sink);
    pthread_mutex_destroy(&sink->lock);
    free(sink->output);
    free(sink);
}

static const stackctl_sink META_TABLE = {
    .magic = STACKCTL_SINK_MAGIC,
    .abi_major = STACKCTL_SINK_ABI_MAJOR,
    .abi_minor = STACKCTL_SINK_ABI_MINOR,
    .struct_size = sizeof(stackctl_sink),
    .name = META_STR("meta"),
    .version = META_STR("0.1.0"),
    .routes = NULL, /* none */
    .route_count = 0,
    .create = meta_create,
    .start = meta_start,
    .on_frame = meta_on_frame,
    .on_http = meta_on_http,
    .metrics = meta_metrics,
    .stop = meta_stop,
    .destroy = meta_destroy,
    .free_buf = meta_free_buf,
    .on_detections = meta_on_detections, /* ABI 1.1; NULL if detections are not wanted */
};

/* [load] The one exported symbol. */
META_EXPORT const stackctl_sink *stackctl_sink_entry(void) {
    return &META_TABLE;
}
