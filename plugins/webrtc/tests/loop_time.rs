//! The worker loop on simulated time: a real worker (its sockets on loopback, its peer
//! connections, its feeds) and a real webrtc-rs viewer (`rtc`, sans-IO), both told what time it
//! is by the test, which moves the clock a millisecond at a time, or seconds at once. Nothing
//! sleeps: ICE, DTLS, the pacer and the timeouts all run on the test's clock.
//!
//! - a viewer joining mid-GOP gets every frame from the GOP's IDR on, in order, none missing;
//!   the GOP is paced (not sent at one instant) and the viewer is live within a second;
//! - a viewer that never connects is removed at `connect_timeout`, not a millisecond before;
//! - a viewer that goes silent is removed once ICE has given up (`disconnect_timeout` +
//!   `failed_timeout`).
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "common/rig.rs"]
mod rig;
#[path = "common/rtc_client.rs"]
mod rtc_client;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rig::Rig;
use rtc::peer_connection::state::RTCPeerConnectionState;
use sink_webrtc::frame::Packetized;
use sink_webrtc::worker::Command;

const MS: Duration = Duration::from_millis(1);
/// 30 fps.
const FRAME: Duration = Duration::from_nanos(33_333_333);

/// Frames from one IDR to the next: 2 s.
const GOP: u64 = 60;

/// Frame `n` of a 30 fps camera whose clock started at `t0`: an IDR every [`GOP`] frames of 60
/// payloads (66 kB), P-frames of 5 (5.5 kB), each payload filled with the frame's number.
fn frame(n: u64, t0: Instant) -> Packetized {
    let idr = n.is_multiple_of(GOP);
    let payloads = (0..if idr { 60 } else { 5 })
        .map(|_| Bytes::from(vec![n as u8; 1100]))
        .collect();
    Packetized::from_payloads(n, n * 33_333_333, t0 + FRAME * n as u32, idr, payloads)
}

#[test]
fn a_viewer_joining_mid_gop_gets_every_frame_paced_then_live() {
    let mut rig = Rig::new("", true);
    let t0 = Instant::now();
    // The camera has been running for 28 frames: the GOP cache holds frames 0-27 (214 kB,
    // more than the pacer's 64 kB burst), and more by the time the viewer has connected (the
    // viewer's own ICE checks take a few hundred milliseconds).
    for n in 0..28 {
        rig.shared.push_frame(Arc::new(frame(n, t0)));
    }
    let mut now = t0 + FRAME * 27;
    rig.step(now);
    let (mut client, _) = rig.join(now);
    let mut next = 28;
    let end = t0 + FRAME * 120;
    while now < end {
        while t0 + FRAME * next as u32 <= now {
            rig.shared.push_frame(Arc::new(frame(next, t0)));
            next += 1;
        }
        client.pump(now);
        rig.step(now);
        client.pump(now);
        now += MS;
    }
    assert_eq!(client.state, RTCPeerConnectionState::Connected);
    // Frames by RTP time (the camera's clock at 90 kHz): every one from the GOP's IDR on.
    let mut frames: BTreeMap<u32, Vec<&rtc_client::Received>> = BTreeMap::new();
    for p in &client.received {
        frames.entry(p.timestamp).or_default().push(p);
    }
    let numbers: Vec<u64> = frames
        .keys()
        .map(|ts| (u64::from(*ts) + 1_500) / 3_000)
        .collect();
    assert_eq!(
        numbers,
        (0..next).collect::<Vec<_>>(),
        "every frame, none missing"
    );
    // In order, with no gap in the sequence numbers: nothing lost, nothing reordered.
    for pair in client.received.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
        assert!(pair[1].timestamp >= pair[0].timestamp, "frames in order");
    }
    for (n, packets) in frames.values().enumerate() {
        let want = if (n as u64).is_multiple_of(GOP) {
            60
        } else {
            5
        };
        assert_eq!(packets.len(), want, "frame {n}");
        assert!(
            packets.last().unwrap().marker,
            "frame {n} ends with the marker"
        );
    }
    // Paced: the GOP took time to go out...
    let arrival = |n: usize| frames.values().nth(n).unwrap()[0].at;
    let replay = arrival(27) - arrival(0);
    assert!(replay > 50 * MS, "the GOP went out in {replay:?}");
    // ...and the viewer was live within a second of its first frame: every frame that came
    // after that went out as it came.
    let live_by = arrival(0) + Duration::from_secs(1);
    let live: Vec<usize> = (0..next as usize)
        .filter(|n| t0 + FRAME * *n as u32 >= live_by)
        .collect();
    assert!(
        live.len() > 20,
        "{} frames after the first second",
        live.len()
    );
    for n in live {
        let late = arrival(n) - (t0 + FRAME * n as u32);
        assert!(late <= 2 * MS, "frame {n} went out {late:?} after it came");
    }
    let catch_up = &rig.hub.metrics.catch_up;
    assert_eq!(catch_up.count(), 1);
    let text = rig.hub.metrics.render(&rig.hub.snapshot());
    assert!(
        text.contains("webrtc_catch_up_seconds_bucket{le=\"1\"} 1"),
        "{text}"
    );
    eprintln!("GOP replayed in {replay:?} of simulated time");
}

#[test]
fn a_viewer_that_never_connects_is_removed_at_connect_timeout() {
    let mut rig = Rig::new("connect_timeout = \"3s\"", true);
    let t0 = Instant::now();
    rig.shared.push_frame(Arc::new(frame(0, t0)));
    // The viewer offers, is answered, and is never heard from (its client never runs).
    let (_client, id) = rig.join(t0);
    let mut now = t0;
    while now < t0 + Duration::from_secs(3) - MS {
        rig.step(now);
        assert_eq!(rig.worker.viewers(), 1, "still there at {:?}", now - t0);
        now += 100 * MS;
    }
    rig.step(t0 + Duration::from_secs(3));
    assert_eq!(rig.worker.viewers(), 0);
    assert!(rig.hub.find(&id).is_none());
    assert_eq!(rig.hub.metrics.removed_failed.load(Relaxed), 1);
    assert_eq!(rig.hub.snapshot().pending, 0, "its pending slot is free");
}

#[test]
fn a_viewer_that_goes_silent_is_removed_when_ice_gives_up() {
    let mut rig = Rig::new("disconnect_timeout = \"2s\"\nfailed_timeout = \"3s\"", true);
    let t0 = Instant::now();
    rig.shared.push_frame(Arc::new(frame(0, t0)));
    let (mut client, id) = rig.join(t0);
    let mut now = t0;
    while client.state != RTCPeerConnectionState::Connected || rig.hub.snapshot().active == 0 {
        assert!(now < t0 + Duration::from_secs(2), "connected within 2 s");
        client.pump(now);
        rig.step(now);
        client.pump(now);
        now += MS;
    }
    assert_eq!(rig.hub.snapshot().active, 1);
    // The viewer vanishes: its client never runs again.
    let silent = now;
    while rig.worker.viewers() == 1 {
        assert!(
            now < silent + Duration::from_secs(30),
            "removed within 30 s"
        );
        now += 50 * MS;
        rig.step(now);
    }
    let after = now - silent;
    eprintln!("removed {after:?} after the viewer went silent");
    // ICE counts from the last datagram it heard, a little before the test stopped the
    // viewer: not before disconnect + failed less a keepalive interval (2 s), nor long after.
    assert!(
        after >= Duration::from_secs(4) && after <= Duration::from_secs(10),
        "removed {after:?} after going silent (disconnect 2 s + failed 3 s)"
    );
    assert!(rig.hub.find(&id).is_none());
    assert_eq!(rig.hub.metrics.removed_failed.load(Relaxed), 1);
    assert_eq!(rig.hub.snapshot().active, 0);
    // The worker also honours a stop.
    rig.shared.command(Command::Stop);
    rig.step(now);
    assert!(rig.worker.stopping());
}
