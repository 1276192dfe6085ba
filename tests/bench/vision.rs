//! What the camera-facing routes cost, on the real `stackctl up` over loopback.
//!
//! 1. **Detector write → server-sent event.** This program plays the detector, on its own clock
//!    (open loop): it writes a result into a detection segment with the
//!    board's writer protocol (`DetectionWriter`, `version` incremented last), stamping
//!    `CLOCK_MONOTONIC` just before the write; it reads `/api/detections/stream` over a plain TCP
//!    connection and stamps the arrival of the event carrying that result's frame number. One
//!    result every 33 ms (a detector keeping up with 30 fps), `RESULTS` of them after a warm-up.
//! 2. **`/snapshot.jpg`.** camsim writes ten NV12 frames (1920x1080, then 640x480) and stops,
//!    leaving the last one newest: the first request's time (copy + encode + HTTP), then
//!    requests a second from the cache, 4 client threads, a connection per request.
//!
//! Run: `cargo bench -p stackctl-tests --bench vision` (the bench uses the `stackctl` binary of
//! the profile it is built with: `cargo build -p stackctl --release` first for release figures;
//! `cargo bench --profile dev ...` measures the debug build).
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use stackctl_core::detections::DetectionWriter;
use stackctl_media::clock::monotonic_ns;
use stackctl_tests::plugins::request;
use stackctl_tests::up::Stack;
use stackctl_tests::vision::{FIRST_FRAME, write_open_loop};
use stackctl_tests::{Proc, assert_success, bin, unique_shm};

const WARM_UP: u64 = 30;
const RESULTS: u64 = 600;
const PERIOD: Duration = Duration::from_millis(33);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = !args.iter().any(|a| a == "--bench");
    let results = if quick { 60 } else { RESULTS };
    let name = unique_shm("sse-bench");
    let nv12 = unique_shm("snap-bench");
    let writer = DetectionWriter::create(name.as_str()).expect("detection segment");
    let stack = Stack::new(&format!(
        "[source]\ndetections = \"{}\"\nnv12 = \"{}\"\n\n[services.idle]\ncommand = \"sleep\"\nargs = [\"1000\"]\n",
        name.as_str(),
        nv12.as_str()
    ));
    let port = stack.http_port().expect("port");
    let mut up = stack.up(&[], &[]);
    up.wait_line(&["stack ready"]);

    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET /api/detections/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("request");
    let mut reader = BufReader::new(stream);
    // Open loop, as on the board: the detector writes on its own clock, whatever the browser
    // does (a writer that waited for each event would let one slow event set the pace).
    let total = WARM_UP + results;
    let writes = write_open_loop(writer, FIRST_FRAME, total, PERIOD, 0);
    let mut arrivals = vec![0u64; total as usize];
    let last = FIRST_FRAME + total - 1;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("an event within 10 s");
        assert!(n > 0, "the stream ended");
        let Some(json) = line.trim_end().strip_prefix("data: ") else {
            continue;
        };
        let now = monotonic_ns();
        let event: serde_json::Value = serde_json::from_str(json).expect("JSON");
        let frame = event["frame_number"].as_u64().expect("frame_number");
        if let Some(slot) = frame
            .checked_sub(FIRST_FRAME)
            .and_then(|i| arrivals.get_mut(i as usize))
        {
            *slot = now;
        }
        if frame == last {
            break;
        }
    }
    let stamps = writes.join().expect("writer");
    let mut latencies: Vec<u64> = stamps
        .iter()
        .zip(&arrivals)
        .skip(WARM_UP as usize)
        .filter(|(_, at)| **at > 0)
        .map(|(w, at)| at - w)
        .collect();
    let missed = results as usize - latencies.len();
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    for size in ["1920x1080", "640x480"] {
        snapshots(port, &nv12, size, build, if quick { 500 } else { 5_000 });
    }
    up.terminate();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize] as f64 / 1e6;
    println!(
        "detector write -> SSE event ({} build of stackctl, {} results, one every {} ms, {missed} not seen: overwritten before read): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        latencies.len(),
        PERIOD.as_millis(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
}

/// camsim leaves ten frames of `size` in `nv12`; one request encodes, then `n` are cached.
fn snapshots(port: u16, nv12: &stackctl_tests::ShmName, size: &str, build: &str, n: usize) {
    let stream = unique_shm("snap-bench-stream");
    let mut cam = Command::new(bin("camsim"));
    cam.args(["--shm", stream.as_str(), "--nv12-shm", nv12.as_str()])
        .args(["--size", size, "--fps", "30", "--frames", "10", "--keep"]);
    assert_success(&Proc::spawn(cam).wait(), "camsim");
    let start = Instant::now();
    let first = request(port, "GET", "/snapshot.jpg", &[]);
    let encode = start.elapsed();
    assert_eq!(first.code, 200, "{}", first.text());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..n / 4 {
                    assert_eq!(request(port, "GET", "/snapshot.jpg", &[]).code, 200);
                }
            });
        }
    });
    let per_second = (n / 4 * 4) as f64 / start.elapsed().as_secs_f64();
    println!(
        "/snapshot.jpg {size} ({build} build): first request (copy + encode + HTTP) {:.1} ms, {} kB; from the cache {per_second:.0} requests/s (4 threads, a connection each)",
        encode.as_secs_f64() * 1e3,
        first.body.len() / 1000
    );
}
