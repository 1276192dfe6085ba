//! Viewers joining at the same instant lose nothing: 10 and then 50 webrtc-rs viewers
//! (`viewerload`, in this process) connect together to the real stackctl with the sink, with 1,
//! 2 and 4 worker threads. Every viewer receives every access unit from its first IDR on, byte
//! for byte, in order, none missing; and each is live (the GOP it joined in replayed, frames
//! going out as they come) within a second of its first frame, by the sink's own measure.
//!
//! The three thread counts run one after the other (a lock), so that each has the machine.
//! The stream is small (320×240, 400 kbit/s): fifty webrtc-rs viewers share this process.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{Streaming, assert_matches_camera, runtime};
use viewerload::{Viewer, ViewerOptions};

/// Frames each viewer collects: more than a GOP (camsim's is 60 frames, 2 s, more than the
/// pacer's burst, so the replay is paced), so each sees the replay end and live frames follow.
const FRAMES: usize = 75;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `n` viewers connect at once (their offers within a few milliseconds of each other), each
/// collects [`FRAMES`] frames, and all close. Returns each viewer's frames and the latency of
/// its frames a second after its first.
async fn join_at_once(url: &str, n: usize) -> Vec<(Vec<Vec<u8>>, Vec<u64>)> {
    let options = ViewerOptions::new(url);
    let connects = (0..n).map(|_| {
        let options = options.clone();
        tokio::spawn(async move {
            let viewer = Viewer::connect(&options).await?;
            viewer.wait_connected(Duration::from_secs(30)).await?;
            Ok::<_, viewerload::Error>(viewer)
        })
    });
    let mut viewers = Vec::new();
    for (i, joined) in futures_join(connects).await.into_iter().enumerate() {
        let viewer = joined
            .expect("viewer task")
            .unwrap_or_else(|e| panic!("viewer {i} of {n} did not connect: {e}"));
        viewers.push(viewer);
    }
    let collects = viewers.into_iter().enumerate().map(|(i, mut viewer)| {
        tokio::spawn(async move {
            let frames = viewer
                .frames(FRAMES, Duration::from_secs(20))
                .await
                .unwrap_or_else(|e| panic!("viewer {i}: {e}"));
            let stats = viewer.stats();
            viewer.close().await.expect("close");
            (frames, stats)
        })
    });
    futures_join(collects)
        .await
        .into_iter()
        .enumerate()
        .map(|(i, frames)| {
            let (frames, stats) = frames.expect("viewer task");
            for (f, frame) in frames.iter().enumerate() {
                assert!(
                    frame.complete,
                    "viewer {i} of {n}: frame {f} lost packets ({} packets, RTP time {}; {stats:?})",
                    frame.packets, frame.rtp_timestamp
                );
            }
            let first = frames[0].last_packet_ns;
            let late: Vec<u64> = frames
                .iter()
                .filter(|f| f.last_packet_ns > first + 1_000_000_000)
                .filter_map(|f| f.latency_ns())
                .collect();
            (frames.into_iter().map(|f| f.annexb).collect(), late)
        })
        .collect()
}

/// Awaits every task, in order.
async fn futures_join<T>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        out.push(task.await);
    }
    out
}

fn joining_loses_nothing(threads: usize) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let stream = Streaming::start(
        &format!("webrtc-join-{threads}"),
        // 400 kbit/s: the viewers here are webrtc-rs stacks sharing this process's CPU, and
        // webrtc-rs drops what a starved viewer's reader has not taken (256 packets): the
        // sink's figure is what is measured, not how many packets a debug build can decrypt.
        &["--gop", "60", "--bitrate", "400"],
        &format!(
            "threads = {threads}\nmax_clients = 60\nmax_pending = 60\n\
             rtp_timestamp_origin = \"monotonic\""
        ),
    );
    let url = stream.url();
    let rt = runtime();
    let mut received = Vec::new();
    for n in [10, 50] {
        let started = Instant::now();
        let viewers = rt.block_on(join_at_once(&url, n));
        eprintln!(
            "threads = {threads}: {n} viewers joined and watched in {:?}",
            started.elapsed()
        );
        received.push((n, viewers));
        stream.wait_metric("streaming_active_clients", 0.0);
    }
    // The sink's own measure: every viewer went live within a second of its first frame.
    let count = stream.metric("webrtc_catch_up_seconds_count").unwrap();
    let within = stream
        .metric("webrtc_catch_up_seconds_bucket{le=\"1\"}")
        .unwrap();
    let sum = stream.metric("webrtc_catch_up_seconds_sum").unwrap();
    eprintln!(
        "threads = {threads}: {count} viewers live, {within} within 1 s, mean catch-up {:.0} ms",
        sum / count.max(1.0) * 1000.0
    );
    assert_eq!(count, 60.0, "every viewer went live");
    assert_eq!(
        within, 60.0,
        "every viewer went live within a second of its first frame"
    );
    assert_eq!(stream.metric("streaming_frames_dropped_total"), Some(0.0));
    assert_eq!(stream.metric("webrtc_worker_frames_lost_total"), Some(0.0));
    let camera = stream.stop();
    for (n, viewers) in received {
        let mut worst_late = 0;
        for (i, (frames, late)) in viewers.iter().enumerate() {
            assert_matches_camera(
                frames,
                &camera,
                &format!("threads = {threads}, viewer {i} of {n}"),
            );
            worst_late = worst_late.max(late.iter().copied().max().unwrap_or(0));
        }
        // On a loaded machine this includes the viewers' own scheduling: shown, not asserted.
        eprintln!(
            "threads = {threads}, {n} viewers: worst latency a second after the first frame: {:.1} ms",
            worst_late as f64 / 1e6
        );
    }
}

#[test]
fn ten_then_fifty_viewers_join_at_once_on_one_worker() {
    joining_loses_nothing(1);
}

#[test]
fn ten_then_fifty_viewers_join_at_once_on_two_workers() {
    joining_loses_nothing(2);
}

#[test]
fn ten_then_fifty_viewers_join_at_once_on_four_workers() {
    joining_loses_nothing(4);
}
