/*
 * stackctl_sink.h: the sink plugin ABI of stackctl. This header is the specification.
 *
 * A sink is a shared library that exports ONE symbol, `stackctl_sink_entry`, returning a
 * pointer to a static `stackctl_sink` table. stackctl loads it at start, checks the table,
 * creates one instance with the plugin's own TOML section, starts it, then hands it every
 * H.264 access unit the camera produces, and routes HTTP requests for the paths it declares.
 * A plugin is never unloaded (dlclose) while stackctl runs.
 *
 * Versioning: `STACKCTL_SINK_ABI_MAJOR` changes when anything existing changes meaning or
 * layout; the host refuses a plugin of another major. `STACKCTL_SINK_ABI_MINOR` grows when
 * fields are APPENDED to a struct; every struct that can grow starts with its own size, so both
 * sides read only the fields the other one has. Fields are never removed, reordered or resized.
 * A field appended in a minor version is read only when the other side's `struct_size` covers
 * it (offsetof(field) + sizeof(field) <= struct_size); otherwise the reader behaves as the older
 * minor did. A 1.0 plugin therefore keeps working with a 1.2 host, and a 1.2 plugin that reads
 * nothing past 1.0 works with a 1.0 host.
 *
 * `struct_size` rules, for both sides:
 *   - the writer of a struct sets `struct_size` to its own sizeof (never less than 1.0's size);
 *   - the reader reads a field only when `struct_size` covers it, as above, and treats an
 *     uncovered function pointer as NULL and an uncovered value as absent;
 *   - a covered function pointer that is NULL means "not offered" (the fields that may be NULL
 *     say so), never "call anyway";
 *   - a reader never reads past its own sizeof, even when the other side's `struct_size` is
 *     larger (fields of a newer minor are not its to read).
 * Example: a 1.2 plugin checks
 *     host->struct_size >= offsetof(stackctl_host, http_respond_abort) + sizeof(void (*)(void))
 * (STACKCTL_HOST_SIZE_1_2) before it calls any of the four streaming functions, and answers with
 * `http_respond` otherwise.
 *
 * History:
 *   1.0  frames, HTTP, metrics, logs, frame retain/release.
 *   1.1  `stackctl_sink.on_detections` (the detector's results, on the delivery thread);
 *        `stackctl_host.config` (the plugin's section pre-parsed: no TOML parser needed).
 *   1.2  streamed HTTP responses: `stackctl_host.http_respond_start`, `http_respond_chunk`,
 *        `http_respond_end`, `http_respond_abort`; `stackctl_sink.on_http_writable`.
 *
 * Threads (CLAP style, on every function pointer):
 *   [load]       called once on stackctl's control thread, before any other call;
 *   [control]    called on stackctl's control thread, never concurrently with another [control];
 *   [delivery]   called on the plugin's own delivery thread (one per plugin, created by the host);
 *   [any-thread] may be called from any thread, concurrently.
 * A slow `on_frame` only delays this plugin's own queue: the host drops whole GOPs for it (and
 * counts them) rather than wait. It must still not block for long: do I/O on your own threads.
 *
 * Ownership: every pointer says who owns it and how long it stays valid. Memory allocated by the
 * plugin is freed by the plugin (`free_buf`); memory allocated by the host is freed by the host.
 * Never free the other side's memory with your own allocator.
 *
 * Strings are `stackctl_str`: UTF-8, NOT nul-terminated, borrowed.
 *
 * Compiles as C99 and C++ with -Wall -Wextra -pedantic.
 */
#ifndef STACKCTL_SINK_H
#define STACKCTL_SINK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "SINK" in little-endian ASCII: the first field of `stackctl_sink`. */
#define STACKCTL_SINK_MAGIC 0x4B4E4953u
#define STACKCTL_SINK_ABI_MAJOR 1u
#define STACKCTL_SINK_ABI_MINOR 2u
/* The one symbol a plugin exports. */
#define STACKCTL_SINK_ENTRY_SYMBOL "stackctl_sink_entry"

/* A borrowed UTF-8 string (not nul-terminated). `ptr` may be NULL when `len` is 0. */
typedef struct stackctl_str {
    const char *ptr;
    size_t len;
} stackctl_str;

/* A buffer the PLUGIN allocated; the host gives it back through `stackctl_sink.free_buf`. */
typedef struct stackctl_buf {
    uint8_t *ptr;
    size_t len;
    size_t cap; /* for the plugin's allocator; the host never reads it */
} stackctl_buf;

/* Outcome of a call. On anything but STACKCTL_OK the plugin may fill the `error` out-parameter
 * of the call with a message (a plugin-owned buffer, freed with `free_buf`). */
typedef enum stackctl_status {
    STACKCTL_OK = 0,
    STACKCTL_ERR_CONFIG = 1,  /* its configuration section is wrong: the message names the key */
    STACKCTL_ERR_FAILED = 2,  /* anything else went wrong */
    STACKCTL_ERR_PANIC = 3    /* a Rust panic was caught at the boundary */
} stackctl_status;

typedef enum stackctl_log_level {
    STACKCTL_LOG_ERROR = 1,
    STACKCTL_LOG_WARN = 2,
    STACKCTL_LOG_INFO = 3,
    STACKCTL_LOG_DEBUG = 4,
    STACKCTL_LOG_TRACE = 5
} stackctl_log_level;

/* Frame flags. */
#define STACKCTL_FRAME_IDR 0x1u            /* an IDR access unit: a decoder can start here */
#define STACKCTL_FRAME_INBAND_PARAMS 0x2u  /* it carries its own SPS and PPS */

/*
 * One H.264 access unit, owned by the host.
 * Valid until `on_frame` returns, or, if the plugin called `host->frame_retain(host_ctx, frame)`
 * during `on_frame`, until its matching `frame_release`: then the struct AND the bytes it points
 * to stay valid and unchanged, on any thread, without a copy. Read-only.
 */
typedef struct stackctl_frame {
    uint32_t struct_size;     /* sizeof(stackctl_frame) of the host */
    uint32_t flags;           /* STACKCTL_FRAME_* */
    const uint8_t *data;      /* the access unit in Annex-B, exactly as the camera wrote it */
    size_t len;
    uint64_t frame_number;    /* the camera's counter */
    uint64_t timestamp_ns;    /* capture time, CLOCK_MONOTONIC: media time comes from here */
    uint32_t width;
    uint32_t height;
    uint32_t sequence;        /* the writer's index: consecutive within one generation */
    uint32_t generation;      /* incremented when the camera restarted */
    int32_t camera_id;        /* 0 day, 1 night */
    uint32_t reserved;
    /* The latest SPS and PPS seen on the stream (NAL units without start codes), or NULL/0
     * before the first pair. Put them in front of an IDR that lacks them. */
    const uint8_t *sps;
    size_t sps_len;
    const uint8_t *pps;
    size_t pps_len;
} stackctl_frame;

/* Limits of `stackctl_detections` (see there). */
#define STACKCTL_DETECTIONS_MAX 64u
#define STACKCTL_CLASS_NAME_MAX 63u

/*
 * One object the detector found, owned by the host (inside a `stackctl_detections`).
 */
typedef struct stackctl_detection {
    stackctl_str class_name;   /* UTF-8, not NUL-terminated */
    float confidence;          /* 0..1 */
    int32_t x, y, w, h;        /* box in pixels of the camera picture */
} stackctl_detection;

/*
 * One result of the detector: what it found in one camera frame (possibly nothing), owned by
 * the host. Valid until `on_detections` returns: copy what you need. Read-only. [ABI 1.1]
 *
 * The host checks what it hands over (the detector is another process): `count` is at most
 * STACKCTL_DETECTIONS_MAX; every class name is non-empty UTF-8 of at most
 * STACKCTL_CLASS_NAME_MAX bytes; `confidence` lies in 0..1; `w` and `h` are positive and `x`, `y`
 * not negative. Items that fail are left out (the result itself is still delivered). A plugin
 * should still check what it relies on: a plugin cannot tell a broken host from a good one.
 */
typedef struct stackctl_detections {
    uint32_t struct_size;      /* sizeof(stackctl_detections) of the host */
    uint64_t frame_number;     /* the frame the detector ran on */
    uint64_t timestamp_ns;     /* that frame's capture time, CLOCK_MONOTONIC */
    const stackctl_detection *items;  /* `count` entries; NULL when count is 0 */
    uint32_t count;
} stackctl_detections;

typedef struct stackctl_header {
    stackctl_str name;
    stackctl_str value;
} stackctl_header;

/*
 * HTTP, the rules the host applies (stackctl's own HTTP server, shared by every plugin):
 *
 * Routes. `stackctl_sink.routes` are path prefixes matched by whole path segments: "/stats"
 * serves "/stats" and "/stats/day", never "/statsx"; a route ending in '/' ("/files/") serves
 * everything below it. The longest matching route wins. stackctl's own paths (/health,
 * /metrics, /api/status and those the supervisor adds under /api/ and /snapshot.jpg) are
 * answered before any plugin's. Two plugins declaring the same route (compared without a
 * trailing '/') conflict: the one configured later is refused when stackctl starts, right after
 * its `start` (so a configuration error is reported first; it is then stopped and gets no frame
 * or request): "plugin NAME: route /x is already served by plugin OTHER"; a `required` one
 * stops the start-up. A route must start
 * with '/'; others are ignored. A request reaching a failed (detached) plugin gets 503.
 *
 * Requests. The host reads the body whole before `on_http`: at most STACKCTL_HTTP_BODY_MAX
 * bytes, within STACKCTL_HTTP_BODY_TIMEOUT_MS (larger or slower: 413 or 408, and the plugin is
 * not called). Header names are lower case; headers that are not valid UTF-8 are left out.
 *
 * Answers. `http_respond` must come within STACKCTL_HTTP_ANSWER_TIMEOUT_MS of the call to
 * `on_http` (whether on_http already returned or not); after that the client gets 504 and a
 * late answer is ignored. The status must be 100..999 (else 500). Header names and values
 * must be valid HTTP (an invalid one is dropped). The host owns the framing headers and drops
 * them from the plugin's answer, setting its own: content-length, transfer-encoding,
 * connection, keep-alive, date, upgrade, proxy-connection, te, trailer (the hop-by-hop
 * headers). Everything else (content-type, cache-control, location, ...) is the plugin's.
 */
#define STACKCTL_HTTP_BODY_MAX (1024u * 1024u)
#define STACKCTL_HTTP_BODY_TIMEOUT_MS 10000u
#define STACKCTL_HTTP_ANSWER_TIMEOUT_MS 30000u

/*
 * Streamed answers [ABI 1.2]: a body of any size, sent as the plugin produces it (a file read
 * from disk, a live feed), with bounded memory on both sides.
 *
 *   http_respond_start(id, status, headers, length)  instead of http_respond: the status and
 *       headers now, the body to follow. `length` is the body's size when the plugin knows it
 *       (the host then sends Content-Length and checks it), or -1 (the host sends it chunked).
 *       The framing stays the host's: the same headers are dropped as for http_respond. At
 *       most STACKCTL_HTTP_STREAMS_MAX answers of one plugin stream at once: beyond, it returns
 *       STACKCTL_STREAM_CLOSED and the client gets 503 with Retry-After.
 *   http_respond_chunk(id, bytes, len)  the next bytes of the body, copied before it returns:
 *       STACKCTL_STREAM_OK         taken, all of it;
 *       STACKCTL_STREAM_WOULD_BLOCK nothing taken: the response's buffer (at most
 *                                  STACKCTL_HTTP_STREAM_BUFFER bytes, the bytes taken and not
 *                                  yet handed to the connection) has no room for `len` bytes;
 *                                  try again after `on_http_writable(id)`;
 *       STACKCTL_STREAM_CLOSED     the response is over: the client went away, the write
 *                                  time-out cut it, it was ended or aborted, or the id is
 *                                  unknown. Stop producing (close the file);
 *       STACKCTL_STREAM_INVALID    `len` is larger than STACKCTL_HTTP_STREAM_BUFFER, or more
 *                                  than the announced length: the response is aborted.
 *   http_respond_end(id)  the body is complete. With an announced length, ending short of it
 *       aborts instead.
 *   http_respond_abort(id)  the body cannot be completed (a read error): the host closes the
 *       connection without finishing the message, so the client sees it incomplete (never a
 *       short body that looks whole).
 *
 * Back-pressure is a notification, not a poll: `stackctl_sink.on_http_writable(instance, id)`
 * is called, on any thread, once room comes back after a WOULD_BLOCK (the buffer drained to
 * half), and once when the response is closed under the plugin (client gone, write time-out);
 * the next http_respond_chunk then tells which. A notification lets a plugin park its reading
 * thread on a condition variable, or wake an async task, and costs nothing while a client reads
 * at full speed; a poll would spin a timer for every slow client. A plugin that leaves
 * `on_http_writable` NULL may poll instead (retry after a few milliseconds). Notifications may
 * arrive late, twice, or for an id already ended: ignore those.
 *
 * Write time-out: a streamed response that sends nothing to the client for the host's write
 * time-out (`http.write_timeout`, default STACKCTL_HTTP_WRITE_TIMEOUT_MS) is cut: the client
 * stopped reading, or the plugin stopped producing without ending it. The connection is closed
 * and the plugin told (on_http_writable, then CLOSED). `http_respond_start` itself must come
 * within STACKCTL_HTTP_ANSWER_TIMEOUT_MS, like any answer. Every id is answered once: either
 * http_respond, or http_respond_start followed by chunks and exactly one of end or abort.
 */
#define STACKCTL_HTTP_STREAM_BUFFER (128u * 1024u)
#define STACKCTL_HTTP_WRITE_TIMEOUT_MS 30000u
/* Streamed answers one plugin may have open at once; a start beyond gets CLOSED, and its
 * client 503 with Retry-After (so its memory is bounded: 64 x 128 KiB). */
#define STACKCTL_HTTP_STREAMS_MAX 64u

typedef enum stackctl_stream_status {
    STACKCTL_STREAM_OK = 0,
    STACKCTL_STREAM_WOULD_BLOCK = 1,
    STACKCTL_STREAM_CLOSED = 2,
    STACKCTL_STREAM_INVALID = 3
} stackctl_stream_status;

/*
 * An HTTP request for a path the plugin declared, owned by the host.
 * Valid until `on_http` returns: copy what you need to answer later.
 */
typedef struct stackctl_http_request {
    uint32_t struct_size;
    uint32_t reserved;
    uint64_t id;                     /* pass to `host->http_respond` exactly once */
    stackctl_str method;             /* "GET", "POST", ... */
    stackctl_str path;               /* e.g. "/stats" (percent-decoding is the plugin's) */
    stackctl_str query;              /* after '?', without it; empty when none */
    const stackctl_header *headers;  /* header_count entries, names in lower case */
    size_t header_count;
    const uint8_t *body;             /* at most the host's body limit */
    size_t body_len;
} stackctl_http_request;

/*
 * Configuration as data [ABI 1.1]: the plugin's `[plugins.NAME]` section (host keys removed),
 * flattened into one borrowed list of typed values, so a plugin needs no TOML parser:
 *
 *   - a key inside a table is dotted: `[plugins.meta] limits = { max = 3 }` gives `limits.max`;
 *   - an array gives one entry per element, its index as the last part: `bind = ["a", "b"]`
 *     gives `bind.0` and `bind.1`; an array of tables gives `cams.0.name`, ...; an empty array
 *     or table gives no entry (a plugin needing to tell "empty" from "absent" reads the text);
 *   - a date or time is a STRING holding its TOML text (e.g. "1979-05-27T07:32:00Z");
 *   - a key segment that itself contains a '.' appears verbatim (ambiguous: avoid such keys);
 *   - entries come in no particular order: look keys up by name. Keys are unique.
 * At most STACKCTL_CONFIG_MAX_VALUES entries, nested at most STACKCTL_CONFIG_MAX_DEPTH levels:
 * a larger section is refused by the host before `create` (plugin NAME: configuration refused).
 * The TOML text stays the `config_toml` argument of `create`: both describe the same section.
 */
#define STACKCTL_CONFIG_MAX_VALUES 1024u
#define STACKCTL_CONFIG_MAX_DEPTH 16u

typedef enum stackctl_value_type {
    STACKCTL_VALUE_STRING = 1,
    STACKCTL_VALUE_INTEGER = 2,
    STACKCTL_VALUE_FLOAT = 3,
    STACKCTL_VALUE_BOOL = 4
} stackctl_value_type;

typedef struct stackctl_config_value {
    stackctl_str key;      /* dotted, as above; UTF-8 */
    uint32_t type;         /* a stackctl_value_type */
    uint32_t reserved;
    stackctl_str string;   /* STRING: the value (UTF-8); empty for other types */
    int64_t integer;       /* INTEGER: the value; BOOL: 1 or 0; 0 otherwise */
    double number;         /* FLOAT: the value; INTEGER: the value as a double; 0 otherwise */
} stackctl_config_value;

/*
 * Errors of `create` and `start`: the plugin writes ONE line, no trailing newline, no
 * "plugin NAME" (the host adds it). For STACKCTL_ERR_CONFIG the line starts with the dotted
 * key it is about, as in `stackctl_config_value.key`, then ": " and what is wrong, e.g.
 *     output: missing: set output = "/path/to/file"
 *     limits.max: expected an integer from 1 to 10, got 0
 * and stackctl shows it as
 *     plugin NAME: configuration refused: limits.max: expected ... (plugins.NAME.limits.max = 0)
 * (the host adds the key's full name and value when the key is in the section). A message about
 * the section as a whole starts with ": ". Failures of `start` are one line too (no key needed).
 * `on_frame`, `on_detections` and `on_http` have no error out-parameter: a plugin about to
 * return non-OK from one of them may first call `host->fail_reason` (ABI 1.1) with one line,
 * which stackctl shows with the failure ("on_frame returned a failure: disk full").
 * Messages are truncated at STACKCTL_MESSAGE_MAX bytes; invalid UTF-8 is replaced.
 */
#define STACKCTL_MESSAGE_MAX 1024u

/*
 * What the host offers, owned by the host, valid until `destroy` returns.
 */
typedef struct stackctl_host {
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;
    void *host_ctx;                  /* the first argument of every callback below */
    uint32_t max_log_level;          /* a stackctl_log_level: skip building messages above it */
    uint32_t reserved;
    /* [any-thread] Writes a line to stackctl's log, attributed to this plugin. `target` names
     * the module (may be empty). Copied before it returns. */
    void (*log)(void *host_ctx, uint32_t level, stackctl_str target, stackctl_str message);
    /* [any-thread] Answers request `request_id`, now (inside on_http) or later, exactly once.
     * Headers and body are copied before it returns. An unknown or already answered id is
     * ignored. A request not answered within the host's time limit gets a 504. */
    void (*http_respond)(void *host_ctx, uint64_t request_id, uint16_t status,
                         const stackctl_header *headers, size_t header_count,
                         const uint8_t *body, size_t body_len);
    /* [delivery] during on_frame: keep `frame` beyond on_frame, without copying it. */
    void (*frame_retain)(void *host_ctx, const stackctl_frame *frame);
    /* [any-thread] Ends one retain of `frame`; the frame may be freed right after. */
    void (*frame_release)(void *host_ctx, const stackctl_frame *frame);

    /* ---- ABI 1.1: read only when `struct_size` covers the field ---- */

    /* The plugin's section pre-parsed (see stackctl_config_value): `config_count` entries,
     * valid until `destroy` returns, read-only. NULL/0 for an empty section. */
    const stackctl_config_value *config;
    size_t config_count;
    /* [any-thread] Why the plugin is about to return non-OK from on_frame, on_detections or
     * on_http: one line, copied before it returns; the last one given is shown with the failure.
     * Calling it does not fail the plugin by itself. */
    void (*fail_reason)(void *host_ctx, stackctl_str message);

    /* ---- ABI 1.2: read only when `struct_size` covers the field (see "Streamed answers") ---- */

    /* [any-thread] Starts a streamed answer to `request_id` instead of `http_respond`: status
     * and headers (copied before it returns), `content_length` the body's size or -1. Returns
     * STACKCTL_STREAM_OK; CLOSED when the id is unknown or answered (e.g. it timed out);
     * INVALID when the status or a header cannot be sent (the client gets 502). */
    int32_t (*http_respond_start)(void *host_ctx, uint64_t request_id, uint16_t status,
                                  const stackctl_header *headers, size_t header_count,
                                  int64_t content_length);
    /* [any-thread] The next `len` bytes of the body (copied before it returns): a
     * stackctl_stream_status. Calls for one id must not overlap. */
    int32_t (*http_respond_chunk)(void *host_ctx, uint64_t request_id, const uint8_t *data,
                                  size_t len);
    /* [any-thread] The body is complete. */
    void (*http_respond_end)(void *host_ctx, uint64_t request_id);
    /* [any-thread] The body cannot be completed: the connection is closed mid-message. */
    void (*http_respond_abort)(void *host_ctx, uint64_t request_id);
} stackctl_host;

/* The end of `http_respond_abort`: a host whose struct_size is at least this streams. */
#define STACKCTL_HOST_SIZE_1_2 (offsetof(stackctl_host, http_respond_abort) + sizeof(void (*)(void)))

/*
 * The plugin's table, static in the plugin (valid for the life of the process). No function
 * pointer of ABI 1.0 may be NULL: a sink with nothing to do in one provides a function that does
 * nothing. Those appended later say whether they may be NULL.
 */
typedef struct stackctl_sink {
    uint32_t magic;                  /* STACKCTL_SINK_MAGIC */
    uint16_t abi_major;              /* STACKCTL_SINK_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor;              /* STACKCTL_SINK_ABI_MINOR the plugin was built with */
    uint32_t struct_size;            /* sizeof(stackctl_sink) of the plugin */
    uint32_t reserved;
    stackctl_str name;               /* e.g. "stats" */
    stackctl_str version;            /* the plugin's own version, e.g. "1.2.0" */
    const stackctl_str *routes;      /* path prefixes it serves, e.g. "/stats"; static */
    size_t route_count;

    /* [control] Creates an instance configured by `config_toml`, the TOML text of its
     * `[plugins.NAME]` section (host keys such as `path` removed). `host` stays valid until
     * destroy. On error returns non-OK and may set `*error`. */
    stackctl_status (*create)(const stackctl_host *host, stackctl_str config_toml,
                              void **instance, stackctl_buf *error);
    /* [control] Starts it: open files, spawn threads. Frames and requests come after this. */
    stackctl_status (*start)(void *instance, stackctl_buf *error);
    /* [delivery] One access unit. Must not block for long (see above). Anything but
     * STACKCTL_OK (e.g. STACKCTL_ERR_PANIC after a caught panic) detaches the plugin: the host
     * marks it failed, stops delivering to it and stops it; stackctl and other plugins go on.
     * The failure may carry a message: call host->fail_reason first (ABI 1.1). */
    stackctl_status (*on_frame)(void *instance, const stackctl_frame *frame);
    /* [any-thread] A request for one of `routes` (see "HTTP" above for matching, limits and
     * time-outs): answer through host->http_respond. A non-OK return means it will not answer:
     * the host answers 500 and detaches the plugin; host->fail_reason (ABI 1.1) says why. */
    stackctl_status (*on_http)(void *instance, const stackctl_http_request *request);
    /* [any-thread] Prometheus text exposition of its metrics, into a plugin-owned buffer
     * (`*out`, freed with free_buf); STACKCTL_OK with an empty buffer when it has none. */
    stackctl_status (*metrics)(void *instance, stackctl_buf *out);
    /* [control], or [delivery] right after a failure detached the plugin; never concurrently
     * with any other call into the instance. Stops it: no on_frame or on_http is called after
     * stop returns, except answers still owed may be given. */
    void (*stop)(void *instance);
    /* Same thread rule as stop, right after it. Frees it. The instance pointer is dead
     * afterwards. */
    void (*destroy)(void *instance);
    /* [any-thread] Frees a buffer this plugin allocated. */
    void (*free_buf)(stackctl_buf buf);

    /* ---- ABI 1.1: read by the host only when `struct_size` covers the field ---- */

    /* [delivery] One result of the detector. Optional: NULL means not wanted, and then the
     * host does not queue results for this plugin at all. Called on the same delivery thread
     * as `on_frame`, never concurrently with it, in timestamp order with the frames: a result
     * comes after every frame whose timestamp is not later than its own that this plugin gets
     * (usually right after the frame it was computed on), and never before one of those. The
     * frames and results share the plugin's queue: when it is full, results are dropped (and
     * counted) like frames. A result whose frame never comes (a frame this plugin lost, or a
     * detector on another clock) is delivered after at most 500 ms. Results with no objects
     * are delivered too (the object left the picture). Anything but STACKCTL_OK detaches the
     * plugin, as for on_frame. */
    stackctl_status (*on_detections)(void *instance, const stackctl_detections *detections);

    /* ---- ABI 1.2: read by the host only when `struct_size` covers the field ---- */

    /* [any-thread] A streamed answer to `request_id` has room again after a WOULD_BLOCK, or
     * was closed under the plugin (see "Streamed answers"). Must return at once: wake the
     * thread or task that writes the body. Optional: NULL means the plugin polls. Never called
     * after `stop` returns. */
    void (*on_http_writable)(void *instance, uint64_t request_id);
} stackctl_sink;

/* sizeof(stackctl_sink) of ABI 1.0: a table at least this long is a usable 1.0 table. */
#define STACKCTL_SINK_SIZE_1_0 offsetof(stackctl_sink, on_detections)

/* The one exported symbol. Returns a pointer to a static table; never NULL. [load] */
typedef const stackctl_sink *(*stackctl_sink_entry_fn)(void);
const stackctl_sink *stackctl_sink_entry(void);

#ifdef __cplusplus
}
#endif

#endif /* STACKCTL_SINK_H */
