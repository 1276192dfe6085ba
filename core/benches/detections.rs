//! Detector write to bus latency, and the detection source's CPU cost.
//!
//! A writer thread writes a result of four detections with the board's protocol every 33 ms
//! (a detector keeping up with 30 fps), stamping each with `CLOCK_MONOTONIC` just before its
//! `version` increment (in the record's timestamp field). The source thread publishes them
//! into a bus; a detection subscriber records `now - timestamp` for each. The source thread's
//! CPU time comes from `/proc/self/task/<tid>/schedstat`.
//!
//! Run: `cargo bench -p stackctl-core --bench detections` (`-- --seconds N`, default 10).
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::{percentile, thread_cpu_ns};
use stackctl_core::bus::{Bus, SubscribeOptions};
use stackctl_core::detections::{
    Detection, DetectionConfig, DetectionHandle, DetectionWriter, WriteMode,
};
use stackctl_media::clock::monotonic_ns;

fn main() {
    let seconds: u64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let name = format!("/stackctl-bench-detections-{}", std::process::id());
    let mut writer = DetectionWriter::create(&name).expect("segment");
    let bus = Bus::new();
    let results = bus.subscribe_detections(SubscribeOptions::new("bench").capacity(1024));
    let handle = DetectionHandle::spawn(DetectionConfig::new(&name), bus.clone()).expect("source");
    let items: Vec<Detection> = (0..4)
        .map(|i| Detection {
            class: "cat".into(),
            confidence: 0.9,
            x: i * 100,
            y: 50,
            w: 80,
            h: 60,
        })
        .collect();
    // Let the source attach before the measurement.
    std::thread::sleep(Duration::from_millis(300));
    let cpu_start = thread_cpu_ns("detections").expect("source thread");
    let start = Instant::now();
    let n = seconds * 30;
    for k in 0..n {
        let due = start + Duration::from_millis(k * 1000 / 30);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        writer
            .write(k, monotonic_ns(), &items, WriteMode::Whole)
            .expect("write");
    }
    std::thread::sleep(Duration::from_millis(100));
    let wall = start.elapsed();
    let cpu = thread_cpu_ns("detections").expect("source thread") - cpu_start;
    let mut latency: Vec<u64> = std::iter::from_fn(|| results.try_recv().ok())
        .map(|d| d.received_ns.saturating_sub(d.timestamp_ns))
        .collect();
    latency.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "detections: {} of {n} results, write -> bus p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs; source thread {:.2} % of a core",
        latency.len(),
        us(percentile(&latency, 0.5)),
        us(percentile(&latency, 0.9)),
        us(percentile(&latency, 0.99)),
        us(*latency.last().expect("results")),
        cpu as f64 / wall.as_nanos() as f64 * 100.0
    );
    let stats = handle.stats();
    println!(
        "  torn retries {}, missed {}",
        stats
            .torn_retries
            .load(std::sync::atomic::Ordering::Relaxed),
        stats.missed.load(std::sync::atomic::Ordering::Relaxed)
    );
    drop(handle);
    let _ = writer.unlink();
}
