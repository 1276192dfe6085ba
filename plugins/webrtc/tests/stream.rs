//! A real WebRTC viewer (webrtc-rs, through `viewerload`) against the real stackctl with the
//! sink, fed by camsim: over WHEP and over the legacy offer, the access units it receives are
//! the camera's, byte for byte, in order, from an IDR with SPS and PPS, even though the camera
//! sends its parameter sets only once.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Streaming, assert_matches_camera, runtime};
use viewerload::{Signalling, Viewer, ViewerOptions};

/// Frames each viewer collects.
const FRAMES: usize = 45;

async fn receive(url: &str, signalling: Signalling, path: &str) -> (Vec<Vec<u8>>, Option<String>) {
    let mut options = ViewerOptions::new(url);
    options.signalling = signalling;
    options.offer_path = path.to_owned();
    let mut viewer = Viewer::connect(&options).await.expect("viewer connects");
    let session = viewer.session_url().map(str::to_owned);
    viewer
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("ICE and DTLS connect");
    let frames = viewer
        .frames(FRAMES, Duration::from_secs(10))
        .await
        .expect("frames keep coming");
    for (i, frame) in frames.iter().enumerate() {
        assert!(frame.complete, "frame {i} lost packets on loopback");
    }
    let frames = frames.into_iter().map(|f| f.annexb).collect();
    viewer.close().await.expect("close");
    (frames, session)
}

#[test]
fn whep_and_the_legacy_offer_deliver_the_camera_byte_for_byte() {
    let stream = Streaming::start("webrtc-stream", &["--params", "first", "--gop", "15"], "");
    let url = stream.url();
    let rt = runtime();
    let (whep, session) = rt.block_on(receive(&url, Signalling::Whep, "/offer"));
    let session = session.expect("WHEP gives a session URL");
    assert!(session.contains("/whep/"), "{session}");
    let (legacy, _) = rt.block_on(receive(&url, Signalling::Offer, "/api/webrtc/offer"));
    let (legacy_short, _) = rt.block_on(receive(&url, Signalling::Offer, "/offer"));
    // Both WHEP sessions and the legacy ones were closed by the viewers.
    stream.wait_metric("streaming_active_clients", 0.0);
    assert_batched(&stream);
    let camera = stream.stop();
    assert_matches_camera(&whep, &camera, "WHEP");
    assert_matches_camera(&legacy, &camera, "POST /api/webrtc/offer");
    assert_matches_camera(&legacy_short, &camera, "POST /offer");
}

/// The sink sent its datagrams in fewer syscalls than datagrams (UDP GSO, Linux 4.18 and
/// later), and the kernel refused none.
fn assert_batched(stream: &Streaming) {
    let datagrams = stream.metric("webrtc_udp_datagrams_sent_total").unwrap();
    let calls = stream.metric("webrtc_udp_send_calls_total").unwrap();
    assert!(
        calls * 2.0 < datagrams,
        "{datagrams} datagrams in {calls} sends"
    );
    assert_eq!(stream.metric("webrtc_udp_send_errors_total"), Some(0.0));
}

/// The UDP sockets of process `pid`, as their local ports (from `/proc`).
fn udp_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| text.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = u16::from_str_radix(fields.get(1)?.rsplit(':').next()?, 16).ok()?;
            inodes
                .contains(&(*fields.get(9)?).to_owned())
                .then_some(port)
        })
        .collect()
}

#[test]
fn one_shared_udp_port_serves_every_viewer() {
    let port = stackctl_tests::up::free_port();
    // The day/night switcher's rate changes (30 fps <-> 2 fps every second): RTP time follows
    // the camera's clock, so every frame's latency stays small (a per-frame increment would
    // drift by seconds).
    let stream = Streaming::start(
        "webrtc-mux",
        &["--interval-switch", "1"],
        &format!("udp_port = {port}\nrtp_timestamp_origin = \"monotonic\""),
    );
    let url = stream.url();
    let rt = runtime();
    let viewers = rt.block_on(async {
        let options = ViewerOptions::new(&url);
        let mut viewers = Vec::new();
        for _ in 0..3 {
            let viewer = Viewer::connect(&options).await.expect("viewer connects");
            viewer
                .wait_connected(Duration::from_secs(10))
                .await
                .expect("ICE over the shared port");
            viewers.push(viewer);
        }
        for viewer in &mut viewers {
            // A viewer starts with the frames since the last IDR (the GOP cache), sent faster
            // than live until it catches up: their latency is their age, up to a GOP (here 30
            // frames over a 2 fps spell: up to 2 s), the more so the later in the GOP it
            // joined and the busier the machine. Those are skipped until a frame comes live
            // (under 250 ms); from then on every frame must stay under a second: RTP time
            // keeps to the camera's clock (a per-frame increment would drift by seconds).
            let mut skipped = Vec::new();
            loop {
                let frame = viewer
                    .frames(1, Duration::from_secs(10))
                    .await
                    .expect("frames keep coming")
                    .remove(0);
                assert!(frame.complete);
                let latency = frame.latency_ns().expect("monotonic RTP timestamps");
                if latency < 250_000_000 {
                    break;
                }
                skipped.push(latency / 1_000_000);
                assert!(
                    skipped.len() < 150,
                    "never live: latencies (ms) {skipped:?}"
                );
            }
            let frames = viewer
                .frames(15, Duration::from_secs(10))
                .await
                .expect("frames keep coming");
            let ms: Vec<u64> = frames
                .iter()
                .map(|f| f.latency_ns().expect("monotonic RTP timestamps") / 1_000_000)
                .collect();
            assert!(frames.iter().all(|f| f.complete));
            assert!(
                ms.iter().all(|&ms| ms < 1000),
                "latencies (ms): {skipped:?} skipped, then {ms:?}"
            );
        }
        viewers
    });
    // Three live connections, and stackctl has one UDP socket: the shared port.
    let ports = udp_ports(stream.up.pid());
    assert_eq!(ports, [port], "stackctl's UDP sockets");
    // Through it, each viewer's packets went out in GSO runs, not one syscall each.
    assert_batched(&stream);
    rt.block_on(async {
        for viewer in viewers {
            viewer.close().await.expect("close");
        }
    });
    stream.wait_metric("streaming_active_clients", 0.0);
    stream.stop();
}

/// A lossy network: the viewer loses every 20th RTP datagram and asks for it again (NACK); the
/// sink answers from its history, so the lost packets arrive after all (late, as a jitter
/// buffer would still take them) and few stay lost.
#[test]
fn lost_packets_are_sent_again_when_the_viewer_asks() {
    let stream = Streaming::start("webrtc-nack", &[], "");
    let url = stream.url();
    let rt = runtime();
    let stats = rt.block_on(async {
        let mut options = ViewerOptions::new(&url);
        options.lose_every = 20;
        let mut viewer = Viewer::connect(&options).await.expect("viewer connects");
        viewer
            .wait_connected(Duration::from_secs(10))
            .await
            .expect("ICE and DTLS connect despite the loss");
        viewer
            .frames(60, Duration::from_secs(10))
            .await
            .expect("frames keep coming despite the loss");
        let stats = viewer.stats();
        viewer.close().await.expect("close");
        stats
    });
    // The sink's side: the NACKs it heard, what they asked for, what it sent again.
    let nacks = stream.metric("webrtc_nack_requests_total").unwrap_or(0.0);
    let requested = stream
        .metric("webrtc_nack_packets_requested_total")
        .unwrap_or(0.0);
    let resent = stream
        .metric("webrtc_retransmitted_packets_total")
        .unwrap_or(0.0);
    stream.stop();
    let dropped = stats.packets / 20;
    let figures = format!(
        "{} packets received, ~{dropped} lost on purpose: {} came again late, {} stayed lost; \
         the sink heard {nacks} NACKs for {requested} packets and sent {resent} again",
        stats.packets, stats.late_packets, stats.lost_packets
    );
    eprintln!("{figures}");
    assert!(
        stats.late_packets > 0 && stats.lost_packets * 4 < dropped,
        "{figures}"
    );
    // Every packet that came again was sent again, and nothing asked for was too old for
    // the history (1024 packets, seconds of this stream).
    assert!(
        nacks > 0.0 && resent >= stats.late_packets as f64 && resent == requested,
        "{figures}"
    );
}
