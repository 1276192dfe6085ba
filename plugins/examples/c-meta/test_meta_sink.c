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

static stackctl_str str(const char *s) {
    stackctl_str out;
    out.ptr = s;
    out.len = strlen(s);
    return out;
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

/* Creating with `config` fails with ERR_CONFIG and a message containing `needle`. */
static void expect_config_error(const stackctl_sink *sink, const stackctl_host *host,
                                const char *config, const char *needle) {
    void *instance = NULL;
    stackctl_buf error = { NULL, 0, 0 };
    stackctl_status status = sink->create(host, str(config), &instance, &error);
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
    char config[1024];
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
    expect_config_error(sink, &host, "", "output: missing");
    expect_config_error(sink, &host, "outputs = \"x\"\n", "output: missing");
    expect_config_error(sink, &host, "output = 5\n", "output: expected a one-line string");
    expect_config_error(sink, &host, "output = \"unterminated\n", "output: expected");
    expect_config_error(sink, &host, "output = \"\"\n", "output: must name a file");
    expect_config_error(sink, &host, "[sub]\noutput = \"x\"\n", "output: missing");

    /* A file that cannot be opened fails start, with the reason. */
    CHECK(sink->create(&host, str("output = \"/nonexistent-dir/x/y\""), &instance, &buf) ==
          STACKCTL_OK);
    CHECK(sink->start(instance, &buf) == STACKCTL_ERR_FAILED);
    CHECK(take_contains(sink, buf, "cannot open /nonexistent-dir/x/y (output)"));
    sink->destroy(instance);

    /* A life: other keys, comments and sub-tables around the key are fine. */
    snprintf(config, sizeof config,
             "# stackctl passes the section as TOML\nwindow = 3\n  output = '%s'  # here\n"
             "[extra]\noutput = \"not this one\"\n",
             argv[1]);
    buf.ptr = NULL;
    CHECK(sink->create(&host, str(config), &instance, &buf) == STACKCTL_OK);
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

    /* A "basic" string and a CRLF line end name the same file: it appends. */
    snprintf(config, sizeof config, "output = \"%s\"\r\n", argv[1]);
    CHECK(sink->create(&host, str(config), &instance, &buf) == STACKCTL_OK);
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
