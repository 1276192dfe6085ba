//! Delivering one frame to one plugin through the C ABI, with the real host code
//! (`Plugin::deliver`: the frame view, the call through the table) and a minimal C sink that
//! reads the frame's last byte.
//!
//! Two frame sizes, 33 kB (a P frame at 8 Mbit/s) and 150 kB (an IDR): if delivery copied the
//! frame, the larger one would cost more. Run: `cargo bench -p stackctl-plugin-host --bench plugin_abi`.
#![allow(clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use stackctl_core::frame::{Frame, FrameMeta};
use stackctl_media::h264::analyse;
use stackctl_plugin_host::{Plugin, loader};

const SINK: &str = r#"
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
"#;

fn frame(len: usize) -> Arc<Frame> {
    let mut data = vec![0, 0, 0, 1, 0x41];
    data.resize(len, 0x5a);
    let info = analyse(&data).expect("valid access unit");
    let meta = FrameMeta {
        frame_number: 1,
        sequence: 1,
        timestamp_ns: 1,
        received_ns: 1,
        camera_id: 0,
        width: 1920,
        height: 1080,
        generation: 0,
    };
    Arc::new(Frame::new(meta, data.into_boxed_slice(), info, None))
}

fn deliver(c: &mut Criterion) {
    let path = common::c_sink("sink_bench", SINK).expect("a C compiler (install gcc)");
    let lib = loader::load("bench", &path).expect("load the bench sink");
    let plugin = Plugin::start("bench", lib, "").expect("start the bench sink");
    let mut group = c.benchmark_group("plugin_deliver");
    for len in [33_000usize, 150_000] {
        let f = frame(len);
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(len), &f, |b, f| {
            b.iter(|| plugin.deliver(black_box(f.clone())));
        });
    }
    group.finish();
    plugin.stop();
}

criterion_group!(benches, deliver);
criterion_main!(benches);
