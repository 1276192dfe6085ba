//! The `detections` data channel end to end, with real detections: camsim draws its orange
//! square on a schedule (shown 1 s, hidden 1 s) and writes where it drew it; detector-sim finds
//! it and writes results into the board's detection segment; `stackctl up` reads frames and
//! results and hands both to the sink. A webrtc-rs viewer (`rtc`, the client of
//! `tests/common/rtc_client.rs`, on real time) offers over WHEP with a channel labelled
//! `detections`.
//!
//! Checked: every message names a frame camsim published, with that frame's capture time; its
//! box is the square camsim drew (within 2 px), its list empty while the square hides; its
//! `rtp_timestamp` is that of an access unit the viewer received, and the same mapping holds
//! for every message (one origin: this viewer's random one); results arrive within a few
//! milliseconds of the frame's capture on loopback (printed: the latency figure of the README
//! comes from the benchmark); the metrics count one channel and the messages sent.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
#[path = "common/rtc_client.rs"]
mod rtc_client;

use std::time::{Duration, Instant};

use rtc::data_channel::RTCDataChannelInit;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc_client::Client;
use stackctl_media::monotonic_ns;

#[test]
fn results_reach_the_channel_with_the_rtp_timestamp_of_their_frame() {
    let vision = common::Vision::start("webrtc-dc", "320x240", "1s:1s", "20ms", "");
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
    assert!(offer.contains("m=application"), "{offer}");
    let answer = rtc_client::whep(vision.port, &offer);
    assert!(answer.contains("m=application"), "{answer}");
    client.answer(Instant::now(), answer);
    // Arrival of each message on the camera's clock (the same host: CLOCK_MONOTONIC).
    let mut arrivals: Vec<u64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && client.messages.len() < 120 {
        let before = client.messages.len();
        client.pump_real(Duration::from_millis(20));
        let now = monotonic_ns();
        arrivals.extend(std::iter::repeat_n(now, client.messages.len() - before));
    }
    assert_eq!(client.state, RTCPeerConnectionState::Connected);
    assert!(client.channel_open, "the channel opened");
    assert!(
        client.messages.len() >= 120,
        "{} messages in 20 s",
        client.messages.len()
    );
    // A little longer, so that every frame a message named has arrived whole.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        client.pump_real(Duration::from_millis(20));
    }
    let frames = client.frame_timestamps();
    let first_frame = client.received.first().unwrap().timestamp;
    let mut origin = None;
    let (mut with_cat, mut empty, mut latencies) = (0, 0, Vec::new());
    for ((_, text), arrival) in client.messages.iter().zip(&arrivals) {
        let m: serde_json::Value = serde_json::from_str(text).unwrap();
        let n = m["frame_number"].as_u64().unwrap();
        let ts = m["timestamp_ns"].as_u64().unwrap();
        let rtp = m["rtp_timestamp"].as_u64().unwrap() as u32;
        let truth = vision.rig.wait_truth(n);
        let (true_ts, x, y, side, visible) = (
            truth.timestamp_ns,
            truth.x,
            truth.y,
            truth.side,
            truth.visible,
        );
        assert_eq!(ts, true_ts, "frame {n}'s capture time: {text}");
        // One origin for every message: this viewer's (random) one.
        let this = rtp.wrapping_sub(stackctl_media::rtp::rtp_timestamp(ts, 0));
        assert_eq!(*origin.get_or_insert(this), this, "{text}");
        // Its frame came on the video track with this very timestamp (results for frames
        // before the viewer's first, the IDR it started on, excepted).
        if (rtp.wrapping_sub(first_frame) as i32) >= 0 {
            assert!(
                frames.contains(&rtp),
                "{text}: no access unit with this RTP timestamp"
            );
        }
        let detections = m["detections"].as_array().unwrap();
        if visible {
            assert_eq!(detections.len(), 1, "{text}");
            let d = &detections[0];
            assert_eq!(d["class_name"], "cat");
            let b = &d["bbox"];
            let near = |k: &str, want: i64| (b[k].as_i64().unwrap() - want).abs() <= 2;
            assert!(
                near("x", x) && near("y", y) && near("w", side) && near("h", side),
                "frame {n}: square at {x},{y} side {side}: {text}"
            );
            with_cat += 1;
        } else {
            assert!(detections.is_empty(), "{text}");
            empty += 1;
        }
        latencies.push(arrival.saturating_sub(ts) as f64 / 1e6);
    }
    assert!(
        with_cat > 10 && empty > 10,
        "{with_cat} with the cat, {empty} empty"
    );
    latencies.sort_by(f64::total_cmp);
    eprintln!(
        "{} messages: capture to message at the viewer p50 {:.1} ms, p95 {:.1} ms (debug build, \
         detector-sim every 20 ms)",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 95 / 100]
    );
    assert_eq!(vision.metric("webrtc_detection_channels"), Some(1.0));
    let sent = vision.metric("webrtc_detections_sent_total").unwrap();
    assert!(sent >= client.messages.len() as f64, "{sent} sent");
}
