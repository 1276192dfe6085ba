/*
 * bench_sink.c: the smallest sink, for the plugin ABI benchmark (benches/plugin_abi.rs): it
 * counts frames and bytes and reads each frame's last byte, so delivery cannot be optimised
 * away and a copied frame would show in the figures.
 */
#include "stackctl_sink.h"
#include <stddef.h>
static uint64_t frames, bytes; static uint8_t last;
static stackctl_status create(const stackctl_host *h, stackctl_str c, void **i, stackctl_buf *e) {
    (void)h; (void)c; (void)e; *i = &frames; return STACKCTL_OK; }
static stackctl_status start(void *i, stackctl_buf *e) { (void)i; (void)e; return STACKCTL_OK; }
static stackctl_status on_frame(void *i, const stackctl_frame *f) {
    (void)i; frames++; bytes += f->len; last ^= f->data[f->len - 1]; return STACKCTL_OK; }
static stackctl_status on_http(void *i, const stackctl_http_request *r) { (void)i; (void)r; return STACKCTL_ERR_FAILED; }
static stackctl_status metrics(void *i, stackctl_buf *o) { (void)i; o->ptr = NULL; o->len = 0; o->cap = 0; return STACKCTL_OK; }
static void stop(void *i) { (void)i; }
static void destroy(void *i) { (void)i; }
static void free_buf(stackctl_buf b) { (void)b; }
static const stackctl_sink table = { STACKCTL_SINK_MAGIC, STACKCTL_SINK_ABI_MAJOR, STACKCTL_SINK_ABI_MINOR,
    sizeof(stackctl_sink), 0, {"bench", 5}, {"1.0", 3}, NULL, 0,
    create, start, on_frame, on_http, metrics, stop, destroy, free_buf };
const stackctl_sink *stackctl_sink_entry(void) { return &table; }
