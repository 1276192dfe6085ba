/*
 * Uses every type and macro of stackctl_sink.h once, so that compiling this file as C99 and as
 * C++ with -Wall -Wextra -pedantic -Werror checks the header itself (tests/layout.rs).
 */
#include "stackctl_sink.h"

#ifdef __cplusplus
#define PROBE_EXTERN extern "C"
#else
#define PROBE_EXTERN
#endif

PROBE_EXTERN size_t stackctl_probe_sizes(void);
PROBE_EXTERN const stackctl_sink *stackctl_probe_entry(stackctl_sink_entry_fn entry);

size_t stackctl_probe_sizes(void) {
    stackctl_status status = STACKCTL_OK;
    stackctl_log_level level = STACKCTL_LOG_TRACE;
    stackctl_value_type value = STACKCTL_VALUE_BOOL;
    return sizeof(stackctl_str) + sizeof(stackctl_buf) + sizeof(stackctl_frame) +
           sizeof(stackctl_header) + sizeof(stackctl_http_request) + sizeof(stackctl_host) +
           sizeof(stackctl_sink) + (size_t)status + (size_t)level +
           (size_t)STACKCTL_ERR_CONFIG + (size_t)STACKCTL_ERR_FAILED +
           (size_t)STACKCTL_ERR_PANIC + (size_t)STACKCTL_LOG_ERROR + (size_t)STACKCTL_LOG_WARN +
           (size_t)STACKCTL_LOG_INFO + (size_t)STACKCTL_LOG_DEBUG + STACKCTL_SINK_MAGIC +
           STACKCTL_SINK_ABI_MAJOR + STACKCTL_SINK_ABI_MINOR + STACKCTL_FRAME_IDR +
           STACKCTL_FRAME_INBAND_PARAMS + sizeof(STACKCTL_SINK_ENTRY_SYMBOL) +
           sizeof(stackctl_detection) + sizeof(stackctl_detections) +
           sizeof(stackctl_config_value) + (size_t)value + STACKCTL_DETECTIONS_MAX +
           STACKCTL_CLASS_NAME_MAX + STACKCTL_SINK_SIZE_1_0 + STACKCTL_CONFIG_MAX_VALUES +
           STACKCTL_CONFIG_MAX_DEPTH + STACKCTL_MESSAGE_MAX + (size_t)STACKCTL_VALUE_STRING +
           (size_t)STACKCTL_VALUE_INTEGER + (size_t)STACKCTL_VALUE_FLOAT +
           STACKCTL_HTTP_BODY_MAX + STACKCTL_HTTP_BODY_TIMEOUT_MS +
           STACKCTL_HTTP_ANSWER_TIMEOUT_MS;
}

const stackctl_sink *stackctl_probe_entry(stackctl_sink_entry_fn entry) {
    return entry != NULL ? entry() : stackctl_sink_entry();
}
