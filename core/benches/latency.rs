//! Publish-to-bus latency and the reader's CPU cost, per torn-read guard.
//!
//! A writer thread publishes 1080p-sized H.264 access units (150 kB IDR every 30 frames, 33 kB
//! otherwise: 8 Mbit/s) with the board's protocol at 30 fps, stamping each frame with
//! `CLOCK_MONOTONIC` immediately before its `write_index` increment. A source thread reads them
//! into a bus; a subscriber records `now - timestamp` for each frame. The source thread's CPU time
//! comes from `/proc/self/task/<tid>/schedstat`.
//!
//! Run: `cargo bench -p stackctl-core --bench latency` (`-- --seconds N` to change the length of
//! each run, default 10).
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{percentile, thread_cpu_ns};
use stackctl_core::bus::{Bus, SubscribeOptions};
use stackctl_core::layout::{FrameHeader, PixelFormat, Timespec};
use stackctl_core::shm::{
    CopyMode, ShmWriter, SourceConfig, SourceHandle, SourceStats, TornReadGuard,
};
use stackctl_media::clock::monotonic_ns;

const FPS: u64 = 30;
const GOP: u64 = 30;

fn access_unit(idr: bool, seed: u64) -> Vec<u8> {
    let (nal, len) = if idr { (0x65, 150_000) } else { (0x41, 33_000) };
    let mut au = vec![0, 0, 0, 1, nal];
    au.extend((0..len).map(|i| 0x10 | ((i as u64 ^ seed).wrapping_mul(31) as u8 & 0x7f)));
    au
}

struct Run {
    latencies_us: Vec<u64>,
    /// How long each `publish` (fetch-add plus the 3 MB slot copy) took in the writer.
    copy_us: Vec<u64>,
    cpu_percent: f64,
    stats: Arc<SourceStats>,
}

fn run(guard: TornReadGuard, seconds: u64, subscribe: bool) -> Run {
    let name = format!("/stackctl-bench-latency-{}", std::process::id());
    let mut writer = ShmWriter::create(&name).expect("create segment");
    let frames: Vec<_> = (0..GOP).map(|i| access_unit(i == 0, i)).collect();
    let bus = Bus::new();
    let sub = subscribe.then(|| bus.subscribe(SubscribeOptions::new("bench").capacity(64)));
    let mut cfg = SourceConfig::new(&name);
    cfg.guard = guard;
    let source = SourceHandle::spawn(cfg, bus, Some(Duration::from_secs(5))).expect("source");
    let stop = Arc::new(AtomicBool::new(false));

    let done = stop.clone();
    let total = seconds * FPS;
    let writer_thread = std::thread::spawn(move || {
        let mut copy_us = Vec::new();
        let start = Instant::now();
        for n in 0..total {
            let due = start + Duration::from_nanos(n * 1_000_000_000 / FPS);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let header = FrameHeader {
                frame_number: n,
                timestamp: Timespec::from_nanos(monotonic_ns()),
                width: 1920,
                height: 1080,
                format: PixelFormat::H264.to_raw(),
                ..FrameHeader::default()
            };
            let au = &frames[(n % GOP) as usize];
            let t = Instant::now();
            writer
                .publish(&header, au, CopyMode::WholeSlot)
                .expect("publish");
            copy_us.push(t.elapsed().as_micros() as u64);
        }
        // Let the reader deliver the last frame before the segment goes.
        std::thread::sleep(Duration::from_millis(300));
        done.store(true, Ordering::SeqCst);
        writer.unlink().expect("unlink");
        copy_us
    });

    // Skip the first second: attach, page faults, the pacer learning the period.
    std::thread::sleep(Duration::from_secs(1));
    let cpu_start = thread_cpu_ns("shm-reader").expect("source thread");
    let wall_start = Instant::now();
    let mut latencies = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match &sub {
            Some(sub) => {
                if let Ok(frame) = sub.recv_timeout(Duration::from_millis(100)) {
                    let now = monotonic_ns();
                    if frame.meta().frame_number >= FPS {
                        latencies.push(now.saturating_sub(frame.meta().timestamp_ns) / 1_000);
                    }
                }
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let cpu = thread_cpu_ns("shm-reader").expect("source thread") - cpu_start;
    let wall = wall_start.elapsed();
    let mut copy_us = writer_thread.join().expect("writer");
    copy_us.sort_unstable();
    let stats = source.stats().clone();
    source.stop().expect("source ended cleanly");
    latencies.sort_unstable();
    Run {
        latencies_us: latencies,
        copy_us,
        cpu_percent: cpu as f64 / wall.as_nanos() as f64 * 100.0,
        stats,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    // `cargo bench` passes `--bench`; `cargo test --benches` runs us with no flag: keep that quick.
    let seconds = if args.iter().any(|a| a == "--bench") {
        seconds
    } else {
        2
    };
    println!(
        "publish -> bus latency, 1080p 8 Mbit/s at {FPS} fps, {seconds} s per run (microseconds)"
    );
    println!(
        "{:<22} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>6} {:>10}",
        "guard", "frames", "p50", "p90", "p99", "max", "cpu %", "torn", "late tears"
    );
    let guards = [
        ("off", TornReadGuard::Off),
        ("verify 500us (default)", TornReadGuard::default()),
        ("settled", TornReadGuard::Settled),
    ];
    for (label, guard) in guards {
        let r = run(guard, seconds, true);
        let l = &r.latencies_us;
        if l.is_empty() {
            println!("{label:<22} no frames");
            continue;
        }
        println!(
            "{label:<22} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9.3} {:>6} {:>10}",
            l.len(),
            percentile(l, 0.5),
            percentile(l, 0.9),
            percentile(l, 0.99),
            percentile(l, 1.0),
            r.cpu_percent,
            r.stats.torn_retries.load(Ordering::Relaxed),
            r.stats.late_tears.load(Ordering::Relaxed),
        );
    }
    let idle = run(TornReadGuard::default(), seconds, false);
    println!(
        "reader CPU with no subscriber (default guard): {:.3} % of a core",
        idle.cpu_percent
    );
    let c = &idle.copy_us;
    println!(
        "writer publish (fetch-add + 3 MB slot copy): p50 {} us, p99 {} us, max {} us",
        percentile(c, 0.5),
        percentile(c, 0.99),
        percentile(c, 1.0)
    );
}
