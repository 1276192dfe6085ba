//! Detector write → message on the `detections` data channel, through the real `stackctl up`
//! and the real sink, to a webrtc-rs viewer (`rtc`, the tests' client) on loopback.
//!
//! This program plays the detector on its own clock (open loop): every 33 ms it writes a result
//! into a detection segment with the board's writer protocol (`DetectionWriter`), stamping
//! `CLOCK_MONOTONIC` just before the write. The result's capture time is 50 ms in the past, so
//! that its frame (camsim's, 30 fps) has always been published already and the bus releases it at
//! once, as for a real detector, which looks at frames the camera published before. The viewer
//! stamps each message as it is read from its socket. `WARM_UP` results first, then `RESULTS`.
//!
//! Run: `cargo build --release -p stackctl -p camsim -p sink-webrtc && cargo bench -p
//! sink-webrtc --bench detections` (stackctl, camsim and the plugin of the bench's profile;
//! `cargo bench --profile dev ...` measures debug builds, the plugin then built by the bench).
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

#[path = "../tests/common/rtc_client.rs"]
mod rtc_client;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rtc::data_channel::RTCDataChannelInit;
use rtc_client::Client;
use stackctl_core::detections::DetectionWriter;
use stackctl_media::monotonic_ns;
use stackctl_tests::plugins::{camera_config, rust_plugin, toml_path};
use stackctl_tests::unique_shm;
use stackctl_tests::up::Stack;
use stackctl_tests::vision::{FIRST_FRAME, write_open_loop};

const WARM_UP: u64 = 30;
const RESULTS: u64 = 900;
const PERIOD: Duration = Duration::from_millis(33);

/// The plugin of the bench's profile: the release build's (built beforehand), or a debug one.
fn plugin() -> std::path::PathBuf {
    if cfg!(debug_assertions) {
        rust_plugin("sink-webrtc")
    } else {
        stackctl_tests::bin("libsink_webrtc.so")
    }
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let results = if quick { 90 } else { RESULTS };
    let camera = unique_shm("dc-bench-cam");
    let name = unique_shm("dc-bench-det");
    let writer = DetectionWriter::create(name.as_str()).expect("detection segment");
    let camera_toml = camera_config(&camera).replacen(
        "[source]\n",
        &format!("[source]\ndetections = \"{}\"\n", name.as_str()),
        1,
    );
    let stack = Stack::new(&format!(
        "{camera_toml}\n[plugins.streaming]\npath = {}\nbind = [\"127.0.0.1\"]\n",
        toml_path(&plugin())
    ));
    let port = stack.http_port().expect("port");
    let mut up = stack.up(&[], &[]);
    up.first_line(&["stack ready"]);

    let (mut client, offer) = Client::with_channel(
        Instant::now(),
        Some((
            "detections",
            RTCDataChannelInit {
                ordered: false,
                max_retransmits: Some(0),
                ..Default::default()
            },
        )),
    );
    client.answer(Instant::now(), rtc_client::whep(port, &offer));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.channel_open {
        assert!(Instant::now() < deadline, "the channel did not open");
        client.pump_real(Duration::from_millis(10));
    }

    let total = WARM_UP + results;
    let writes = write_open_loop(writer, FIRST_FRAME, total, PERIOD, 50_000_000);
    let mut arrivals: HashMap<u64, u64> = HashMap::new();
    let last = FIRST_FRAME + total - 1;
    let end = Instant::now() + PERIOD * total as u32 + Duration::from_secs(5);
    let mut seen = 0;
    while Instant::now() < end && !arrivals.contains_key(&last) {
        client.pump_real(Duration::from_millis(50));
        let now = monotonic_ns();
        for (_, text) in &client.messages[seen..] {
            let m: serde_json::Value = serde_json::from_str(text).expect("JSON");
            arrivals.insert(m["frame_number"].as_u64().unwrap(), now);
        }
        seen = client.messages.len();
    }
    let stamps = writes.join().expect("writer");
    up.terminate();
    let mut latencies: Vec<u64> = stamps
        .iter()
        .enumerate()
        .skip(WARM_UP as usize)
        .filter_map(|(i, w)| Some(arrivals.get(&(FIRST_FRAME + i as u64))? - w))
        .collect();
    let missed = results as usize - latencies.len();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize] as f64 / 1e6;
    println!(
        "detector write -> detections message at the viewer ({} build, {} results, one every {} \
         ms, {missed} not seen): p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        latencies.len(),
        PERIOD.as_millis(),
        pct(0.5),
        pct(0.95),
        pct(0.99),
        pct(1.0)
    );
}
