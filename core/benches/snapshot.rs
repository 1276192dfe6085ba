//! Snapshots: what a cache miss costs (copy of the newest NV12 frame out of shared memory plus
//! the JPEG encode) at 1920x1080, at 1920x1080 scaled to 640 wide, and at 640x480; and what a
//! cached request costs, from one thread and from four at once (all requests contend for the
//! one lock).
//!
//! The picture is synthetic but camera-like: colour bars, a luma ramp, a square, and the same
//! ±4 luma noise camsim adds (noise is what makes JPEG work hard).
//!
//! Run: `cargo bench -p stackctl-core --bench snapshot`.
#![allow(clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use stackctl_core::layout::{FrameHeader, PixelFormat, Timespec};
use stackctl_core::shm::{CopyMode, ShmWriter};
use stackctl_core::snapshot::Snapshotter;

/// A camera-like NV12 picture.
fn picture(w: usize, h: usize, seed: u64) -> Vec<u8> {
    let mut p = vec![0u8; w * h * 3 / 2];
    let mut state = seed | 1;
    for y in 0..h {
        for x in 0..w {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let base = if y < h * 2 / 3 {
                40 + (x * 8 / w) as u8 * 22
            } else {
                16 + (x * 219 / w) as u8
            };
            let square = (x / 8 + y / 8) % 37 == 0;
            p[y * w + x] = if square { 146 } else { base } + (state & 7) as u8;
        }
    }
    for (i, c) in p[w * h..].iter_mut().enumerate() {
        *c = 128u8
            .wrapping_add(((i % w) * 64 / w) as u8)
            .wrapping_sub(32);
    }
    p
}

struct Camera {
    writer: ShmWriter,
    w: usize,
    h: usize,
    n: u64,
    frames: [Vec<u8>; 2],
}

impl Camera {
    fn new(tag: &str, w: usize, h: usize) -> Self {
        let name = format!("/stackctl-bench-snapshot-{tag}-{}", std::process::id());
        let mut cam = Self {
            writer: ShmWriter::create(&name).expect("segment"),
            w,
            h,
            n: 0,
            frames: [picture(w, h, 1), picture(w, h, 2)],
        };
        cam.publish();
        cam.publish();
        cam
    }

    fn name(&self) -> String {
        self.writer.name().to_owned()
    }

    fn publish(&mut self) {
        let header = FrameHeader {
            frame_number: self.n,
            timestamp: Timespec::from_nanos(self.n + 1),
            width: self.w as i32,
            height: self.h as i32,
            format: PixelFormat::Nv12.to_raw(),
            ..FrameHeader::default()
        };
        let data = &self.frames[(self.n % 2) as usize];
        self.writer
            .publish(&header, data, CopyMode::WholeSlot)
            .expect("publish");
        self.n += 1;
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.writer.unlink();
    }
}

fn misses(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot_miss");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    for (label, (w, h), width) in [
        ("1920x1080", (1920, 1080), None),
        ("1920x1080_to_640", (1920, 1080), Some(640)),
        ("640x480", (640, 480), None),
    ] {
        let mut cam = Camera::new(label, w, h);
        let snapshots = Snapshotter::new(cam.name());
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    cam.publish(); // a new frame: the cache misses
                    let start = Instant::now();
                    black_box(snapshots.jpeg(width).expect("snapshot"));
                    spent += start.elapsed();
                }
                spent
            });
        });
        let size = snapshots.jpeg(width).expect("snapshot").len();
        eprintln!("snapshot_miss/{label}: {size} bytes of JPEG");
    }
    group.finish();
}

fn hits(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot_hit");
    let cam = Camera::new("hit", 1920, 1080);
    let snapshots = Arc::new(Snapshotter::new(cam.name()));
    snapshots.jpeg(None).expect("the one encode");
    for threads in [1usize, 4] {
        group.bench_with_input(
            BenchmarkId::new("threads", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let per = iters.div_ceil(threads as u64);
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for _ in 0..threads {
                            let snapshots = &snapshots;
                            s.spawn(move || {
                                for _ in 0..per {
                                    black_box(snapshots.jpeg(None).expect("cached"));
                                }
                            });
                        }
                    });
                    // Wall time for all `iters` requests: criterion reports it per request.
                    start.elapsed()
                });
            },
        );
    }
    group.finish();
    let stats = snapshots.stats();
    assert_eq!(
        stats.encodes.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "cached requests must not encode"
    );
    drop(cam);
}

criterion_group!(benches, misses, hits);
criterion_main!(benches);
