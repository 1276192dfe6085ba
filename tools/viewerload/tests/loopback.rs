//! The client against a real webrtc-rs sender on loopback: known access units, packetized as
//! single NAL / STAP-A / FU-A, must come out of `Viewer` byte for byte.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod fixture;

use std::time::Duration;

use fixture::{Config, Fixture, ScriptFrame};
use viewerload::load::{self, LoadOptions};
use viewerload::{ReceivedFrame, Signalling, Viewer, ViewerOptions, post_raw};

const WAIT: Duration = Duration::from_secs(15);

fn nal(header: u8, len: usize, seed: u8) -> Vec<u8> {
    // Bodies without zero bytes, so no accidental start code, as emulation prevention ensures.
    std::iter::once(header)
        .chain((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1))
        .collect()
}

fn stap_a(nals: &[&[u8]]) -> Vec<u8> {
    let mut p = vec![0x78];
    for n in nals {
        p.extend_from_slice(&(n.len() as u16).to_be_bytes());
        p.extend_from_slice(n);
    }
    p
}

fn fu_a(nal: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let indicator = (nal[0] & 0xe0) | 28;
    let chunks: Vec<&[u8]> = nal[1..].chunks(chunk).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut fu = nal[0] & 0x1f;
            if i == 0 {
                fu |= 0x80;
            }
            if i + 1 == chunks.len() {
                fu |= 0x40;
            }
            let mut p = vec![indicator, fu];
            p.extend_from_slice(c);
            p
        })
        .collect()
}

fn annexb(nals: &[&[u8]]) -> Vec<u8> {
    nals.iter()
        .flat_map(|n| [0, 0, 0, 1].iter().chain(n.iter()).copied())
        .collect()
}

/// Four access units covering the three packetizations, and what each must reassemble to.
fn script() -> (Vec<ScriptFrame>, Vec<Vec<u8>>) {
    let sps = nal(0x67, 12, 1);
    let pps = nal(0x68, 4, 2);
    let idr = nal(0x65, 2500, 3);
    let p1 = nal(0x41, 300, 4);
    let p2 = nal(0x41, 2000, 5);
    let s1 = nal(0x41, 40, 6);
    let s2 = nal(0x41, 50, 7);

    let mut au0 = vec![stap_a(&[&sps, &pps])];
    au0.extend(fu_a(&idr, 1000)); // 3 fragments
    let au1 = vec![p1.clone()];
    let au2 = fu_a(&p2, 1000); // 2 fragments
    let au3 = vec![stap_a(&[&s1, &s2])];
    let expected = vec![
        annexb(&[&sps, &pps, &idr]),
        annexb(&[&p1]),
        annexb(&[&p2]),
        annexb(&[&s1, &s2]),
    ];
    (vec![au0, au1, au2, au3], expected)
}

async fn next(viewer: &mut Viewer) -> ReceivedFrame {
    tokio::time::timeout(WAIT, viewer.next_frame())
        .await
        .expect("a frame in time")
        .expect("connection still up")
}

/// Skips to the first complete IDR frame (the stream may have started before we were ready).
async fn sync_on_idr(viewer: &mut Viewer) -> ReceivedFrame {
    loop {
        let frame = next(viewer).await;
        if frame.complete && frame.is_idr() {
            return frame;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_viewer_receives_access_units_byte_for_byte() {
    let (script, expected) = script();
    let packets_per_frame: Vec<u32> = script.iter().map(|f| f.len() as u32).collect();
    let fx = Fixture::start(Config {
        script,
        ..Config::default()
    })
    .await;

    let mut viewer = Viewer::connect(&ViewerOptions::new(&fx.base_url))
        .await
        .unwrap();
    assert_eq!(
        viewer.session_url(),
        Some(format!("{}/whep/1", fx.base_url).as_str())
    );
    viewer.wait_connected(WAIT).await.unwrap();

    let mut frames = vec![sync_on_idr(&mut viewer).await];
    for _ in 0..8 {
        frames.push(next(&mut viewer).await);
    }
    for (i, frame) in frames.iter().enumerate() {
        assert!(frame.complete, "frame {i} incomplete");
        assert_eq!(frame.annexb, expected[i % 4], "frame {i} differs");
        assert_eq!(frame.packets, packets_per_frame[i % 4]);
        assert!(frame.first_packet_ns <= frame.last_packet_ns);
        // The fixture stamps RTP with the monotonic origin: latency is real and small.
        let latency = frame.latency_ns().expect("plausible latency");
        assert!(latency < 1_000_000_000, "latency {latency} ns");
    }
    assert_eq!(frames[0].nal_types(), [7, 8, 5]);
    assert_eq!(frames[3].nal_types(), [1, 1]);
    // Timestamps advance by ~33 ms (3000 ticks) per frame, across any wrap.
    let step = frames[1]
        .rtp_timestamp
        .wrapping_sub(frames[0].rtp_timestamp);
    assert!((1500..6000).contains(&step), "step {step}");

    let stats = viewer.stats();
    assert_eq!(stats.lost_packets, 0);
    assert!(stats.incomplete_frames <= 1, "{stats:?}");
    assert!(stats.connected_at.is_some() && stats.first_idr_at.is_some());
    assert!(stats.frames >= 9);

    viewer.close().await.unwrap();
    assert_eq!(fx.deletes.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_offer_viewer_receives_frames() {
    let (script, expected) = script();
    let fx = Fixture::start(Config {
        script,
        ..Config::default()
    })
    .await;
    let opts = ViewerOptions {
        signalling: Signalling::Offer,
        ..ViewerOptions::new(&fx.base_url)
    };
    let mut viewer = Viewer::connect(&opts).await.unwrap();
    assert_eq!(viewer.session_url(), None);
    viewer.wait_connected(WAIT).await.unwrap();
    let idr = sync_on_idr(&mut viewer).await;
    assert_eq!(idr.annexb, expected[0]);
    assert_eq!(next(&mut viewer).await.annexb, expected[1]);
    viewer.close().await.unwrap();
    assert_eq!(fx.deletes.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_fu_a_fragment_is_counted_and_flags_the_frame() {
    let (script, expected) = script();
    let fx = Fixture::start(Config {
        script,
        // The IDR's middle fragment, every time round.
        drop: Some((0, 2)),
        ..Config::default()
    })
    .await;
    let mut viewer = Viewer::connect(&ViewerOptions::new(&fx.base_url))
        .await
        .unwrap();
    viewer.wait_connected(WAIT).await.unwrap();

    let mut incomplete = 0;
    let mut complete = 0;
    while incomplete < 3 {
        let frame = next(&mut viewer).await;
        if frame.complete {
            complete += 1;
            assert!(expected[1..].contains(&frame.annexb));
        } else {
            incomplete += 1;
            // SPS and PPS survive; the IDR with a hole is dropped, not glued together.
            assert_eq!(frame.nal_types(), [7, 8]);
            assert_eq!(frame.packets, 3);
        }
    }
    assert!(complete >= 6);
    let stats = viewer.stats();
    assert!(stats.lost_packets >= 3, "{stats:?}");
    assert!(stats.incomplete_frames >= 3);
    assert_eq!(stats.first_idr_at, None);
    viewer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_gives_a_typed_503_and_bad_requests_their_json_error() {
    let full = Fixture::start(Config {
        full: true,
        ..Config::default()
    })
    .await;
    let err = Viewer::connect(&ViewerOptions::new(&full.base_url))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.server_message(), Some("viewer limit reached (1)"));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));

    let fx = Fixture::start(Config::default()).await;
    let resp = post_raw(&fx.base_url, "/whep", "text/plain", "v=0\r\n")
        .await
        .unwrap();
    assert_eq!(resp.status, 415);
    assert_eq!(
        resp.json_error().as_deref(),
        Some("Content-Type must be application/sdp")
    );
    let resp = post_raw(&fx.base_url, "/whep", "application/sdp", "garbage")
        .await
        .unwrap();
    assert_eq!(resp.status, 400);
    assert!(resp.json_error().is_some());

    // Nothing listening: a connect error, not a hang.
    let closed = format!("http://127.0.0.1:{}", unused_port().await);
    let err = Viewer::connect(&ViewerOptions::new(closed))
        .await
        .unwrap_err();
    assert!(matches!(err, viewerload::Error::Connect { .. }), "{err}");
}

async fn unused_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_run_connects_every_viewer_and_measures_latency() {
    let (script, _) = script();
    let fx = Fixture::start(Config {
        script,
        ..Config::default()
    })
    .await;
    let report = load::run(&LoadOptions {
        viewer: ViewerOptions::new(&fx.base_url),
        viewers: 3,
        duration: Duration::from_secs(3),
        ramp: Duration::from_millis(50),
        warmup: Duration::from_secs(1),
    })
    .await;
    println!("{report}");
    assert!(report.success(), "{report}");
    assert_eq!(report.viewers_connected, 3);
    assert_eq!(report.lost_packets, 0);
    let latency = report.latency_ms.expect("latency measured");
    assert!(latency.samples > 20, "{report}");
    assert!(latency.p50 < 500.0, "{report}");
    let fps = report.fps.unwrap();
    assert!(fps.min > 15.0, "{report}");
    assert_eq!(fx.sessions.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(fx.deletes.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_a_json_report_and_exits_0() {
    let (script, _) = script();
    let fx = Fixture::start(Config {
        script,
        ..Config::default()
    })
    .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_viewerload"))
        .args(["--url", &fx.base_url, "--viewers", "2", "--duration", "2s"])
        .args(["--warmup", "500ms", "--ramp", "20ms", "--json"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["viewers_connected"], 2);
    assert!(report["latency_ms"]["p50"].as_f64().unwrap() < 500.0);
    assert_eq!(report["viewers"].as_array().unwrap().len(), 2);
    assert_eq!(fx.deletes.load(std::sync::atomic::Ordering::SeqCst), 2);

    // A full server: every viewer fails, exit status 1, the server's reason in the report.
    let full = Fixture::start(Config {
        full: true,
        ..Config::default()
    })
    .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_viewerload"))
        .args([
            "--url",
            &full.base_url,
            "--duration",
            "1s",
            "--warmup",
            "0s",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("HTTP 503: viewer limit reached (1)"),
        "{stdout}"
    );
}
