/*
 * test_meta_sink.c: drives meta_sink.c through its stackctl_sink table the way stackctl does,
 * with a fake host that records what the plugin calls. Usage: test_meta_sink OUTPUT_FILE
 * (the file is overwritten). Prints "N passed, N failed"; exits non-zero on a failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stackctl_sink.h"

static int passed, failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            passed++;                                                                \
        } else {                                                                     \
            failed++;                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* ---- the fake host ------------------------------------------------------------------------ */

static int log_lines;
static int last_status;
static char last_log[256];

static void host_log(void *ctx, uint32_t level, stackctl_str target, stackctl_str message) {
    (void)ctx;
    log_lines++;
    snprintf(last_log, sizeof last_log, "%.*s", (int)message.len, message.ptr);
    fprintf(stderr, "  [plugin log %u %.*s] %s\n", level, (int)target.len, target.ptr, last_log);
}

static void host_respond(void *ctx, uint64_t id, uint16_t status, const stackctl_header *headers,
                         size_t header_count, const uint8_t *body, size_t body_len) {
    (void)ctx, (void)id, (void)headers, (void)header_count, (void)body, (void)body_len;
    last_status = status;
}

static void host_frame(void *ctx, const stackctl_frame *frame) {
    (void)ctx, (void)frame;
}

static stackctl_str str(const char *s) {
    stackctl_str out;
    out.ptr = s;
    out.len = strlen(s);
    return out;
}

/* One pre-parsed value, as stackctl hands them over (ABI 1.1). */
static stackctl_config_value string_value(const char *key, const char *value) {
    stackctl_config_value v;
    memset(&v, 0, sizeof v);
    v.key = str(key);
    v.type = STACKCTL_VALUE_STRING;
    v.string = str(value);
    return v;
}

static stackctl_config_value integer_value(const char *key, int64_t value) {
    stackctl_config_value v;
    memset(&v, 0, sizeof v);
    v.key = str(key);
    v.type = STACKCTL_VALUE_INTEGER;
    v.integer = value;
    v.number = (double)value;
    return v;
}

static stackctl_host make_host(void) {
    stackctl_host host;
    memset(&host, 0, sizeof host);
    host.struct_size = sizeof host;
    host.abi_major = STACKCTL_SINK_ABI_MAJOR;
    host.abi_minor = STACKCTL_SINK_ABI_MINOR;
    host.max_log_level = STACKCTL_LOG_INFO;
    host.log = host_log;
    host.http_respond = host_respond;
    host.frame_retain = host_frame;
    host.frame_release = host_frame;
    return host;
}


/* Whether the plugin buffer's text contains `needle`; frees the buffer. */
static int take_contains(const stackctl_sink *sink, stackctl_buf buf, const char *needle) {
    char text[512];
    snprintf(text, sizeof text, "%.*s", (int)buf.len, buf.ptr != NULL ? (const char *)buf.ptr : "");
    sink->free_buf(buf);
    if (strstr(text, needle) == NULL) {
        fprintf(stderr, "  %s: no \"%s\" in it\n", text, needle);
        return 0;
    }
    return 1;
}

/* Creating with the `count` values of `config` fails with ERR_CONFIG and a message containing
 * `needle`. */
static void expect_config_error(const stackctl_sink *sink, const stackctl_host *base,
                                const stackctl_config_value *config, size_t count,
                                const char *needle) {
    void *instance = NULL;
    stackctl_buf error = { NULL, 0, 0 };
    stackctl_host host = *base;
    stackctl_status status;
    host.config = config;
    host.config_count = count;
    status = sink->create(&host, str("# the TOML text is not read"), &instance, &error);
    CHECK(status == STACKCTL_ERR_CONFIG);
    CHECK(instance == NULL);
    CHECK(take_contains(sink, error, needle));
}

static void send_frame(const stackctl_sink *sink, void *instance, uint64_t number, int idr,
                       size_t len) {
    static const uint8_t bytes[4096];
    stackctl_frame frame;
    memset(&frame, 0, sizeof frame);
    frame.struct_size = sizeof frame;
    frame.flags = idr ? STACKCTL_FRAME_IDR : 0;
    frame.data = bytes;
    frame.len = len;
    frame.frame_number = number;
    frame.timestamp_ns = 1000000000u + number * 40000000u;
    frame.width = 1280;
    frame.height = 720;
    CHECK(sink->on_frame(instance, &frame) == STACKCTL_OK);
}

int main(int argc, char **argv) {
    const stackctl_sink *sink = stackctl_sink_entry();
    stackctl_host host = make_host();
    stackctl_config_value config[3];
    void *instance = NULL;
    stackctl_buf buf = { NULL, 0, 0 };
    FILE *file;
    char lines[4][128];
    int n = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTPUT_FILE\n", argv[0]);
        return 2;
    }
    remove(argv[1]);

    /* The table. */
    CHECK(sink->magic == STACKCTL_SINK_MAGIC);
    CHECK(sink->abi_major == STACKCTL_SINK_ABI_MAJOR);
    CHECK(sink->struct_size == sizeof(stackctl_sink));
    CHECK(sink->name.len == 4 && memcmp(sink->name.ptr, "meta", 4) == 0);
    CHECK(sink->route_count == 0);

    /* Configuration errors name the key. */
    {
        stackctl_config_value values[3];
        stackctl_host old = make_host();
        values[0] = string_value("outputs", "x");
        values[1] = integer_value("output", 5);
        values[2] = string_value("output", "");
        expect_config_error(sink, &host, NULL, 0, "output: missing");
        expect_config_error(sink, &host, values, 1, "output: missing");
        expect_config_error(sink, &host, values + 1, 1, "output: expected a string");
        expect_config_error(sink, &host, values + 2, 1, "output: must name a file");
        /* A 1.0 host has no pre-parsed section. */
        old.struct_size = (uint32_t)offsetof(stackctl_host, config);
        expect_config_error(sink, &old, values, 1, "output: this plugin needs stackctl with sink "
                                                   "ABI 1.1");
    }

    /* A file that cannot be opened fails start, with the reason. */
    {
        stackctl_config_value bad = string_value("output", "/nonexistent-dir/x/y");
        host.config = &bad;
        host.config_count = 1;
        CHECK(sink->create(&host, str(""), &instance, &buf) == STACKCTL_OK);
        CHECK(sink->start(instance, &buf) == STACKCTL_ERR_FAILED);
        CHECK(take_contains(sink, buf, "cannot open /nonexistent-dir/x/y (output)"));
        sink->destroy(instance);
    }

    /* A life: other keys around the one it reads are fine. */
    config[0] = integer_value("window", 3);
    config[1] = string_value("extra.output", "not this one");
    config[2] = string_value("output", argv[1]);
    host.config = config;
    host.config_count = 3;
    buf.ptr = NULL;
    CHECK(sink->create(&host, str(""), &instance, &buf) == STACKCTL_OK);
    CHECK(buf.ptr == NULL);
    CHECK(sink->start(instance, &buf) == STACKCTL_OK);
    CHECK(strstr(last_log, "appending one line per frame") != NULL);
    send_frame(sink, instance, 7, 1, 1000);
    send_frame(sink, instance, 8, 0, 200);
    send_frame(sink, instance, 9, 0, 150);
    CHECK(sink->metrics(instance, &buf) == STACKCTL_OK);
    CHECK(take_contains(sink, buf, "\nsink_meta_lines_total 3\n"));
    {
        stackctl_http_request request;
        memset(&request, 0, sizeof request);
        request.struct_size = sizeof request;
        request.id = 1;
        CHECK(sink->on_http(instance, &request) == STACKCTL_OK);
        CHECK(last_status == 404);
    }
    /* Detector results (ABI 1.1) are logged when objects come and go. */
    CHECK(sink->on_detections != NULL);
    {
        stackctl_detection cat;
        stackctl_detections result;
        memset(&cat, 0, sizeof cat);
        cat.class_name = str("cat");
        cat.confidence = 0.9f;
        cat.x = 10, cat.y = 20, cat.w = 30, cat.h = 40;
        memset(&result, 0, sizeof result);
        result.struct_size = sizeof result;
        result.frame_number = 9;
        result.timestamp_ns = 1360000000u;
        result.items = &cat;
        result.count = 1;
        CHECK(sink->on_detections(instance, &result) == STACKCTL_OK);
        CHECK(strstr(last_log, "frame 9 (1360000000 ns): cat 0.90 at 10,20 30x40") != NULL);
        result.items = NULL;
        result.count = 0;
        CHECK(sink->on_detections(instance, &result) == STACKCTL_OK);
        CHECK(strstr(last_log, "frame 9 (1360000000 ns): no objects") != NULL);
        result.count = STACKCTL_DETECTIONS_MAX + 1; /* a broken host: ignored */
        CHECK(sink->on_detections(instance, &result) == STACKCTL_OK);
    }
    sink->stop(instance);
    sink->destroy(instance);

    /* The file: one line per frame. */
    file = fopen(argv[1], "r");
    CHECK(file != NULL);
    while (file != NULL && n < 4 && fgets(lines[n], sizeof lines[n], file) != NULL) {
        n++;
    }
    if (file != NULL) {
        fclose(file);
    }
    CHECK(n == 3);
    CHECK(n > 0 && strcmp(lines[0], "7 1280000000 1000 1 1280 720\n") == 0);
    CHECK(n > 1 && strcmp(lines[1], "8 1320000000 200 0 1280 720\n") == 0);
    CHECK(n > 2 && strcmp(lines[2], "9 1360000000 150 0 1280 720\n") == 0);

    /* The same file again: it appends. */
    host.config = config + 2;
    host.config_count = 1;
    CHECK(sink->create(&host, str(""), &instance, &buf) == STACKCTL_OK);
    CHECK(sink->start(instance, &buf) == STACKCTL_OK);
    send_frame(sink, instance, 10, 1, 10);
    CHECK(sink->metrics(instance, &buf) == STACKCTL_OK);
    CHECK(take_contains(sink, buf, "sink_meta_lines_total 1\n"));
    sink->stop(instance);
    sink->destroy(instance);
    remove(argv[1]);

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
