/*
 * Prints the layout of every struct in stackctl_sink.h and the value of every constant, one
 * fact per line, for tests/layout.rs to compare with the Rust mirror:
 *   size   TYPE SIZEOF ALIGNOF
 *   field  TYPE FIELD OFFSETOF SIZEOF
 *   const  NAME VALUE
 */
#include <stdio.h>
#include <stddef.h>

#include "stackctl_sink.h"

#define ALIGN_OF(T) offsetof(struct { char c; T t; }, t)
#define SIZE(T) printf("size %s %zu %zu\n", #T, sizeof(T), ALIGN_OF(T))
#define FIELD(T, f) printf("field %s %s %zu %zu\n", #T, #f, offsetof(T, f), sizeof(((T *)0)->f))
#define CONST(c) printf("const %s %llu\n", #c, (unsigned long long)(c))

int main(void) {
    SIZE(stackctl_str);
    FIELD(stackctl_str, ptr);
    FIELD(stackctl_str, len);

    SIZE(stackctl_buf);
    FIELD(stackctl_buf, ptr);
    FIELD(stackctl_buf, len);
    FIELD(stackctl_buf, cap);

    SIZE(stackctl_status);
    SIZE(stackctl_log_level);

    SIZE(stackctl_frame);
    FIELD(stackctl_frame, struct_size);
    FIELD(stackctl_frame, flags);
    FIELD(stackctl_frame, data);
    FIELD(stackctl_frame, len);
    FIELD(stackctl_frame, frame_number);
    FIELD(stackctl_frame, timestamp_ns);
    FIELD(stackctl_frame, width);
    FIELD(stackctl_frame, height);
    FIELD(stackctl_frame, sequence);
    FIELD(stackctl_frame, generation);
    FIELD(stackctl_frame, camera_id);
    FIELD(stackctl_frame, reserved);
    FIELD(stackctl_frame, sps);
    FIELD(stackctl_frame, sps_len);
    FIELD(stackctl_frame, pps);
    FIELD(stackctl_frame, pps_len);

    SIZE(stackctl_detection);
    FIELD(stackctl_detection, class_name);
    FIELD(stackctl_detection, confidence);
    FIELD(stackctl_detection, x);
    FIELD(stackctl_detection, y);
    FIELD(stackctl_detection, w);
    FIELD(stackctl_detection, h);

    SIZE(stackctl_detections);
    FIELD(stackctl_detections, struct_size);
    FIELD(stackctl_detections, frame_number);
    FIELD(stackctl_detections, timestamp_ns);
    FIELD(stackctl_detections, items);
    FIELD(stackctl_detections, count);

    SIZE(stackctl_header);
    FIELD(stackctl_header, name);
    FIELD(stackctl_header, value);

    SIZE(stackctl_http_request);
    FIELD(stackctl_http_request, struct_size);
    FIELD(stackctl_http_request, reserved);
    FIELD(stackctl_http_request, id);
    FIELD(stackctl_http_request, method);
    FIELD(stackctl_http_request, path);
    FIELD(stackctl_http_request, query);
    FIELD(stackctl_http_request, headers);
    FIELD(stackctl_http_request, header_count);
    FIELD(stackctl_http_request, body);
    FIELD(stackctl_http_request, body_len);

    SIZE(stackctl_value_type);
    SIZE(stackctl_config_value);
    FIELD(stackctl_config_value, key);
    FIELD(stackctl_config_value, type);
    FIELD(stackctl_config_value, reserved);
    FIELD(stackctl_config_value, string);
    FIELD(stackctl_config_value, integer);
    FIELD(stackctl_config_value, number);

    SIZE(stackctl_host);
    FIELD(stackctl_host, struct_size);
    FIELD(stackctl_host, abi_major);
    FIELD(stackctl_host, abi_minor);
    FIELD(stackctl_host, host_ctx);
    FIELD(stackctl_host, max_log_level);
    FIELD(stackctl_host, reserved);
    FIELD(stackctl_host, log);
    FIELD(stackctl_host, http_respond);
    FIELD(stackctl_host, frame_retain);
    FIELD(stackctl_host, frame_release);
    FIELD(stackctl_host, config);
    FIELD(stackctl_host, config_count);
    FIELD(stackctl_host, fail_reason);
    FIELD(stackctl_host, http_respond_start);
    FIELD(stackctl_host, http_respond_chunk);
    FIELD(stackctl_host, http_respond_end);
    FIELD(stackctl_host, http_respond_abort);

    SIZE(stackctl_sink);
    FIELD(stackctl_sink, magic);
    FIELD(stackctl_sink, abi_major);
    FIELD(stackctl_sink, abi_minor);
    FIELD(stackctl_sink, struct_size);
    FIELD(stackctl_sink, reserved);
    FIELD(stackctl_sink, name);
    FIELD(stackctl_sink, version);
    FIELD(stackctl_sink, routes);
    FIELD(stackctl_sink, route_count);
    FIELD(stackctl_sink, create);
    FIELD(stackctl_sink, start);
    FIELD(stackctl_sink, on_frame);
    FIELD(stackctl_sink, on_http);
    FIELD(stackctl_sink, metrics);
    FIELD(stackctl_sink, stop);
    FIELD(stackctl_sink, destroy);
    FIELD(stackctl_sink, free_buf);
    FIELD(stackctl_sink, on_detections);
    FIELD(stackctl_sink, on_http_writable);

    CONST(STACKCTL_SINK_MAGIC);
    CONST(STACKCTL_SINK_ABI_MAJOR);
    CONST(STACKCTL_SINK_ABI_MINOR);
    CONST(STACKCTL_OK);
    CONST(STACKCTL_ERR_CONFIG);
    CONST(STACKCTL_ERR_FAILED);
    CONST(STACKCTL_ERR_PANIC);
    CONST(STACKCTL_LOG_ERROR);
    CONST(STACKCTL_LOG_WARN);
    CONST(STACKCTL_LOG_INFO);
    CONST(STACKCTL_LOG_DEBUG);
    CONST(STACKCTL_LOG_TRACE);
    CONST(STACKCTL_FRAME_IDR);
    CONST(STACKCTL_FRAME_INBAND_PARAMS);
    CONST(STACKCTL_DETECTIONS_MAX);
    CONST(STACKCTL_CLASS_NAME_MAX);
    CONST(STACKCTL_SINK_SIZE_1_0);
    CONST(STACKCTL_CONFIG_MAX_VALUES);
    CONST(STACKCTL_CONFIG_MAX_DEPTH);
    CONST(STACKCTL_MESSAGE_MAX);
    CONST(STACKCTL_HTTP_BODY_MAX);
    CONST(STACKCTL_HTTP_BODY_TIMEOUT_MS);
    CONST(STACKCTL_HTTP_ANSWER_TIMEOUT_MS);
    CONST(STACKCTL_HTTP_STREAM_BUFFER);
    CONST(STACKCTL_HTTP_WRITE_TIMEOUT_MS);
    CONST(STACKCTL_HTTP_STREAMS_MAX);
    CONST(STACKCTL_HOST_SIZE_1_2);
    CONST(STACKCTL_STREAM_OK);
    CONST(STACKCTL_STREAM_WOULD_BLOCK);
    CONST(STACKCTL_STREAM_CLOSED);
    CONST(STACKCTL_STREAM_INVALID);
    CONST(STACKCTL_VALUE_STRING);
    CONST(STACKCTL_VALUE_INTEGER);
    CONST(STACKCTL_VALUE_FLOAT);
    CONST(STACKCTL_VALUE_BOOL);
    printf("string STACKCTL_SINK_ENTRY_SYMBOL %s\n", STACKCTL_SINK_ENTRY_SYMBOL);
    return 0;
}
