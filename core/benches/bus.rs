//! Fan-out cost of the bus: publishing one frame to 1, 10 and 50 subscribers (time of
//! `Bus::publish` alone; the subscribers' queues are drained outside the measurement).
//!
//! Run: `cargo bench -p stackctl-core --bench bus`.
#![allow(clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use stackctl_core::bus::{Bus, SubscribeOptions};
use stackctl_core::frame::{Frame, FrameMeta};
use stackctl_media::h264::analyse;

fn frame() -> Arc<Frame> {
    let mut data = vec![0, 0, 0, 1, 0x41];
    data.resize(33_000, 0x5a);
    let info = analyse(&data).expect("valid access unit");
    let meta = FrameMeta {
        frame_number: 0,
        sequence: 0,
        timestamp_ns: 0,
        received_ns: 0,
        camera_id: 0,
        width: 1920,
        height: 1080,
        generation: 0,
    };
    Arc::new(Frame::new(meta, data.into_boxed_slice(), info, None))
}

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("bus_publish");
    let frame = frame();
    for subscribers in [1usize, 10, 50] {
        let bus = Bus::new();
        let subs: Vec<_> = (0..subscribers)
            .map(|i| bus.subscribe(SubscribeOptions::new(format!("s{i}")).capacity(1024)))
            .collect();
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, _| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let batch = left.min(512);
                        let start = Instant::now();
                        for _ in 0..batch {
                            black_box(bus.publish(frame.clone()));
                        }
                        spent += start.elapsed();
                        for sub in &subs {
                            while sub.try_recv().is_ok() {}
                        }
                        left -= batch;
                    }
                    spent
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
