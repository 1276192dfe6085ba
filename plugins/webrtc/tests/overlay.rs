//! The `detections` data channel on a real worker, driven on simulated time against a real
//! webrtc-rs viewer (`rtc`, sans-IO), as in `loop_time.rs`:
//!
//! - a viewer that opens a channel labelled `detections` receives every result, as JSON with
//!   the RTP timestamp its own frame of that result carried; a viewer that does not ask gets
//!   nothing and costs nothing (no result is even made while nobody asks);
//! - a viewer whose channel stops draining (its SCTP hears nothing: every DTLS datagram
//!   dropped) has its results dropped and counted once its channel holds 16 KiB, while its
//!   video keeps coming, every frame;
//! - with `detections = false` the channel is closed as soon as it opens.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "common/rig.rs"]
mod rig;
#[path = "common/rtc_client.rs"]
mod rtc_client;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rig::Rig;
use rtc::data_channel::RTCDataChannelInit;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc_client::Client;
use sink_webrtc::frame::Packetized;
use sink_webrtc::overlay::{Item, Overlay};

const MS: Duration = Duration::from_millis(1);
/// 30 fps.
const FRAME: Duration = Duration::from_nanos(33_333_333);

/// Frame `n` of a 30 fps camera whose clock started at 0: an IDR every 30 frames.
fn frame(n: u64, t0: Instant) -> Packetized {
    let idr = n.is_multiple_of(30);
    let payloads = (0..if idr { 20 } else { 3 })
        .map(|_| Bytes::from(vec![n as u8; 1000]))
        .collect();
    Packetized::from_payloads(n, n * 33_333_333, t0 + FRAME * n as u32, idr, payloads)
}

/// The detector's result for frame `n`: a cat moving right on odd frames, nothing on even
/// ones; `boxes` objects.
fn result(n: u64, boxes: usize, now: Instant) -> Overlay {
    let items: Vec<Item<'_>> = (0..if n % 2 == 1 { boxes } else { 0 })
        .map(|i| Item {
            class: "cat",
            confidence: 0.5,
            bbox: (n as i32, i as i32, 40, 30),
        })
        .collect();
    Overlay::new(n, n * 33_333_333, &items, now)
}

/// Frame `n`'s RTP timestamp (the rig's origin is 0).
fn rtp_of(n: u64) -> u32 {
    stackctl_media::rtp::rtp_timestamp(n * 33_333_333, 0)
}

/// What the page asks for: unordered, no retransmission.
fn unreliable() -> RTCDataChannelInit {
    RTCDataChannelInit {
        ordered: false,
        max_retransmits: Some(0),
        ..Default::default()
    }
}

/// Runs the rig and its viewers for `frames` frames from frame `from`, a result `delay` after
/// each frame (through `publish`, which decides whether to hand it over).
fn run(
    rig: &mut Rig,
    clients: &mut [&mut Client],
    t0: Instant,
    from: u64,
    frames: u64,
    mut publish: impl FnMut(&Rig, u64, Instant),
) -> Instant {
    let delay = 10 * MS;
    let mut now = t0 + FRAME * from as u32;
    let (mut next, mut next_result) = (from, from);
    let end = t0 + FRAME * (from + frames) as u32;
    while now < end {
        while t0 + FRAME * next as u32 <= now {
            rig.shared.push_frame(Arc::new(frame(next, t0)));
            next += 1;
        }
        while t0 + FRAME * next_result as u32 + delay <= now {
            publish(rig, next_result, now);
            next_result += 1;
        }
        for c in clients.iter_mut() {
            c.pump(now);
        }
        rig.step(now);
        for c in clients.iter_mut() {
            c.pump(now);
        }
        now += MS;
    }
    now
}

/// Hands a result to the worker as `Sessions::publish_overlay` does: only while some viewer
/// has a channel.
fn publish(rig: &Rig, n: u64, now: Instant, boxes: usize) {
    if rig.hub.metrics.detection_channels.load(Relaxed) > 0 {
        rig.shared.push_overlay(Arc::new(result(n, boxes, now)));
    }
}

#[test]
fn every_result_reaches_the_viewer_that_asks_with_its_frames_rtp_timestamp() {
    let mut rig = Rig::new("", true);
    let t0 = Instant::now();
    let (mut asks, _) = rig.join_with(t0, Some(("detections", unreliable())));
    let (mut silent, _) = rig.join(t0);
    // Connect, and let the channel open (SCTP after DTLS).
    let mut results = 0;
    run(
        &mut rig,
        &mut [&mut asks, &mut silent],
        t0,
        0,
        30,
        |rig, n, now| publish(rig, n, now, 1),
    );
    assert_eq!(asks.state, RTCPeerConnectionState::Connected);
    assert_eq!(silent.state, RTCPeerConnectionState::Connected);
    assert!(asks.channel_open, "the detections channel opened");
    assert_eq!(rig.hub.metrics.detection_channels.load(Relaxed), 1);
    let before = asks.messages.len();
    // The first run pushed frames 0-29 and their results.
    let first = 30;
    run(
        &mut rig,
        &mut [&mut asks, &mut silent],
        t0,
        first,
        60,
        |rig, n, now| {
            if n >= first {
                results += 1;
            }
            publish(rig, n, now, 1)
        },
    );
    let frames = asks.frame_timestamps();
    let mut numbers = Vec::new();
    for (at, text) in &asks.messages[before..] {
        let m: serde_json::Value = serde_json::from_str(text).unwrap();
        let n = m["frame_number"].as_u64().unwrap();
        numbers.push(n);
        // The rig's timestamps are the camera's clock (origin 0).
        let rtp = m["rtp_timestamp"].as_u64().unwrap() as u32;
        assert_eq!(rtp, rtp_of(n), "{text}");
        assert!(
            frames.contains(&rtp),
            "{text}: no frame with this RTP timestamp"
        );
        assert_eq!(m["timestamp_ns"].as_u64(), Some(n * 33_333_333));
        let detections = m["detections"].as_array().unwrap();
        if n % 2 == 1 {
            assert_eq!(
                detections[..],
                [serde_json::json!({"class_name": "cat", "confidence": 0.5,
                    "bbox": {"x": n, "y": 0, "w": 40, "h": 30}})]
            );
        } else {
            assert!(detections.is_empty(), "{text}");
        }
        // Sent as it came: within a few simulated milliseconds of its result.
        let due = t0 + FRAME * n as u32 + 10 * MS;
        assert!(
            *at - due <= 3 * MS,
            "frame {n}'s result came {:?} late",
            *at - due
        );
    }
    assert_eq!(
        numbers,
        (first..first + results).collect::<Vec<_>>(),
        "every result, once, in order"
    );
    assert!(silent.messages.is_empty());
    let metrics = &rig.hub.metrics;
    assert_eq!(
        metrics.detections_sent.load(Relaxed),
        asks.messages.len() as u64,
        "one message per result for the viewer that asked, none for the other"
    );
    assert_eq!(metrics.detections_dropped.load(Relaxed), 0);
    let text = metrics.render(&rig.hub.snapshot());
    assert!(text.contains("webrtc_detection_channels 1\n"), "{text}");
}

#[test]
fn a_viewer_whose_channel_does_not_drain_misses_results_not_frames() {
    let mut rig = Rig::new("", true);
    let t0 = Instant::now();
    // A reliable channel: what it sends stays buffered until the viewer acknowledges it.
    let (mut client, id) = rig.join_with(t0, Some(("detections", RTCDataChannelInit::default())));
    run(&mut rig, &mut [&mut client], t0, 0, 30, |rig, n, now| {
        publish(rig, n, now, 1)
    });
    assert!(client.channel_open);
    let stats = rig.hub.find(&id).unwrap().stats;
    let frames_before = stats.frames_sent.load(Relaxed);
    let sent_before = rig.hub.metrics.detections_sent.load(Relaxed);
    // From now on the viewer hears nothing and says nothing (a stalled tab): its SCTP
    // acknowledges nothing. Results of 20 boxes (about 2 kB each): 16 KiB fill within 10.
    run(&mut rig, &mut [], t0, 30, 90, |rig, n, now| {
        // Every result with 20 boxes (odd and even frames alike).
        publish(rig, n | 1, now, 20)
    });
    let metrics = &rig.hub.metrics;
    let dropped = metrics.detections_dropped.load(Relaxed);
    let sent = metrics.detections_sent.load(Relaxed) - sent_before;
    assert!(
        (5..=10).contains(&sent) && sent + dropped == 90,
        "{sent} results sent, {dropped} dropped"
    );
    // The video did not wait: every frame of those three seconds went out to it.
    let frames = stats.frames_sent.load(Relaxed) - frames_before;
    assert_eq!(frames, 90, "frames written while its channel was full");
    let text = metrics.render(&rig.hub.snapshot());
    assert!(
        text.contains(&format!("webrtc_detections_dropped_total {dropped}\n")),
        "{text}"
    );
}

#[test]
fn with_detections_off_the_channel_is_closed() {
    let mut rig = Rig::new("detections = false", true);
    let t0 = Instant::now();
    let (mut client, _) = rig.join_with(t0, Some(("detections", unreliable())));
    run(&mut rig, &mut [&mut client], t0, 0, 45, |rig, n, now| {
        // As the sink does with detections off: nothing handed over. Pushed here anyway, to
        // show the worker would not send it on a closed channel.
        rig.shared.push_overlay(Arc::new(result(n, 1, now)));
    });
    assert_eq!(client.state, RTCPeerConnectionState::Connected);
    assert!(client.channel_closed, "the sink closed the channel");
    assert!(client.messages.is_empty());
    assert_eq!(rig.hub.metrics.detection_channels.load(Relaxed), 0);
    assert_eq!(rig.hub.metrics.detections_sent.load(Relaxed), 0);
    assert!(!client.frame_timestamps().is_empty(), "the video plays");
}
