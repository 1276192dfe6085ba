//! Delivering one frame to one plugin through the C ABI, with the real host code
//! (`Plugin::deliver`: the frame view, the call through the table) and a minimal C sink that
//! reads the frame's last byte (`tests/c/bench_sink.c`).
//!
//! Two frame sizes, 33 kB (a P frame at 8 Mbit/s) and 150 kB (an IDR): if delivery copied the
//! frame, the larger one would cost more. Run: `cargo bench -p stackctl-plugin-host --bench plugin_abi`.
#![allow(clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use stackctl_core::frame::{Frame, FrameMeta};
use stackctl_media::h264::analyse;
use stackctl_plugin_host::{Plugin, loader};
use stackctl_tests::plugins::c_plugin;

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
    let path = c_plugin("sink_bench", "plugins/host/tests/c/bench_sink.c", &[])
        .expect("a C compiler (install gcc)");
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
