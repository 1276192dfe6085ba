//! Micro-benchmarks of the sink's hot path, in process:
//!
//! - `packetize`: one 1080p access unit (an IDR of ~150 kB with SPS and PPS put in front, a
//!   P-frame of ~30 kB) cut into RTP payloads, once for every viewer;
//! - `loop`: one worker turn that takes one such frame and writes it to 1, 10 and 50 connected
//!   viewers (their own RTP headers, SRTP, the NACK window) and sends it as GSO runs on
//!   loopback: the per-frame cost that sets the sink's CPU.
//!
//! The viewers are sans-IO webrtc-rs peers (`rtc`) connected through the worker's real socket
//! first; their sockets are drained between iterations, outside the measurement.
//!
//! Run with `cargo bench -p sink-webrtc --bench fanout`. The load test of the whole stack is
//! `tools/loadbench`.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

#[path = "../tests/common/rig.rs"]
mod rig;
#[path = "../tests/common/rtc_client.rs"]
mod rtc_client;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rig::Rig;
use rtc_client::Client;
use sink_webrtc::frame::Packetized;

const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x28, 0xda, 0x01, 0xe0, 0x08, 0x9f, 0x95];
const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

/// An access unit of one slice of `len` bytes (no start-code look-alikes in it).
fn access_unit(idr: bool, len: usize) -> Vec<u8> {
    let mut au = vec![0, 0, 0, 1, if idr { 0x65 } else { 0x41 }];
    au.extend((0..len).map(|i| (i % 250) as u8 + 3));
    au
}

fn packetize(c: &mut Criterion) {
    let mut group = c.benchmark_group("packetize");
    for (name, idr, len) in [("idr_150k", true, 150_000), ("p_30k", false, 30_000)] {
        let au = access_unit(idr, len);
        group.throughput(Throughput::Bytes(au.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                Packetized::new(black_box(&au), Some(SPS), Some(PPS), 0, Instant::now()).unwrap()
            })
        });
    }
    group.finish();
}

/// A worker with `n` connected viewers, on simulated time.
struct Fanout {
    rig: Rig,
    clients: Vec<Client>,
    now: Instant,
    seq: u64,
}

impl Fanout {
    fn new(n: usize) -> Self {
        let mut rig = Rig::new(
            "max_clients = 100\nmax_pending = 100\nconnect_timeout = \"30s\"",
            false,
        );
        let now = Instant::now();
        let clients = (0..n).map(|_| rig.join(now).0).collect();
        let mut f = Self {
            rig,
            clients,
            now,
            seq: 0,
        };
        // Connect everyone: a millisecond of simulated time at a time.
        while f.rig.hub.snapshot().active < n as u64 {
            assert!(f.now < now + Duration::from_secs(10), "viewers connect");
            f.step();
            f.now += Duration::from_millis(1);
        }
        // The first IDR, so that every feed is live.
        f.frame(true, 150_000);
        f
    }

    fn step(&mut self) {
        for client in &mut self.clients {
            client.pump(self.now);
        }
        self.rig.step(self.now);
    }

    /// One frame in, one worker turn: the measured part.
    fn frame(&mut self, idr: bool, len: usize) -> Duration {
        let au = access_unit(idr, len);
        let mut f =
            Packetized::new(&au, Some(SPS), Some(PPS), self.seq * 33_333_333, self.now).unwrap();
        f.seq = self.seq;
        self.seq += 1;
        self.rig.shared.push_frame(Arc::new(f));
        let started = Instant::now();
        self.rig.step(self.now);
        let took = started.elapsed();
        self.now += Duration::from_nanos(33_333_333);
        // The viewers take what came, outside the measurement.
        for client in &mut self.clients {
            client.pump(self.now);
            client.received.clear();
        }
        took
    }
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("loop");
    group.sample_size(20);
    for n in [1, 10, 50] {
        let mut rig = Fanout::new(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("p_frame_30k_to_viewers", n), &n, |b, _| {
            b.iter_custom(|iters| (0..iters).map(|_| rig.frame(false, 30_000)).sum())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = packetize, fanout
}
criterion_main!(benches);
