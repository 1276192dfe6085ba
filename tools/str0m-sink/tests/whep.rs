//! `str0m-sink` end to end, so the str0m side of the streaming comparison stays honest: camsim
//! publishes into a segment, `str0m-sink` serves it, and one `viewerload` viewer (webrtc-rs)
//! over WHEP receives the camera's access units byte for byte, from an IDR, with SPS and PPS in
//! front of every IDR although the camera sends them only once, and with monotonic RTP
//! timestamps; its `DELETE` ends the session, and SIGTERM stops the sink cleanly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use stackctl_tests::up::{EVENT_TIMEOUT, Stray, free_port, kill, line_reader};
use stackctl_tests::{Proc, assert_success, bin, unique_shm};
use viewerload::depacketize::nal_units;
use viewerload::{Viewer, ViewerOptions};

/// Frames the viewer collects.
const FRAMES: usize = 45;

fn nal_type(nal: &[u8]) -> u8 {
    nal[0] & 0x1f
}

/// Waits for a line of `lines` that contains every needle; returns it.
fn wait_line(lines: &Receiver<String>, needles: &[&str], seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if needles.iter().all(|n| line.contains(n)) {
                    return line;
                }
            }
            Err(e) => panic!(
                "no line with {needles:?} from str0m-sink ({e}); it said:\n{}",
                seen.join("\n")
            ),
        }
    }
}

#[test]
fn a_whep_viewer_gets_the_camera_from_an_idr_and_delete_ends_the_session() {
    let shm = unique_shm("str0m-sink");
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("camera.h264");
    let mut camsim = Command::new(bin("camsim"));
    camsim
        .args(["--shm", shm.as_str(), "--size", "320x240", "--fps", "30"])
        .args(["--params", "first", "--gop", "15", "--dump"])
        .arg(&dump);
    let camsim = Proc::spawn(camsim);

    let port = free_port();
    let mut sink = Command::new(bin("str0m-sink"))
        .args([
            "--shm",
            shm.as_str(),
            "--http",
            &format!("127.0.0.1:{port}"),
        ])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start str0m-sink");
    let _stray = Stray(sink.id());
    let lines = line_reader(sink.stderr.take().unwrap());
    let mut said = Vec::new();
    wait_line(&lines, &["str0m-sink ready"], &mut said);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let (frames, session) = rt.block_on(async {
        let mut viewer = Viewer::connect(&ViewerOptions::new(&url))
            .await
            .expect("WHEP offer answered");
        let session = viewer.session_url().expect("a Location").to_owned();
        viewer
            .wait_connected(Duration::from_secs(10))
            .await
            .expect("ICE and DTLS connect");
        let frames = viewer
            .frames(FRAMES, Duration::from_secs(10))
            .await
            .expect("frames keep coming");
        for (i, frame) in frames.iter().enumerate() {
            assert!(frame.complete, "frame {i} lost packets");
            let latency = frame.latency_ns().expect("RTP time is the monotonic clock");
            assert!(latency < 1_000_000_000, "latency {latency} ns");
        }
        let frames: Vec<Vec<u8>> = frames.into_iter().map(|f| f.annexb).collect();
        // WHEP DELETE (it fails unless 2xx).
        viewer.close().await.expect("DELETE the session");
        (frames, session)
    });
    assert!(session.contains("/whep/"), "{session}");
    let id = session.rsplit('/').next().unwrap();
    wait_line(&lines, &["viewer removed", id, "reason=Deleted"], &mut said);
    // The session is gone: a second DELETE finds nothing.
    let again = rt
        .block_on(viewerload::signalling::request(
            hyper::Method::DELETE,
            &session,
            None,
            Vec::new(),
        ))
        .expect("HTTP");
    assert_eq!(again.status, 404, "{}", again.text());

    // SIGTERM: a clean stop.
    kill(sink.id(), 15);
    let status = sink.wait().expect("wait for str0m-sink");
    assert!(status.success(), "str0m-sink exited with {status}");
    kill(camsim.id(), 15);
    let out = camsim.wait();
    assert_success(&out, "camsim");

    // From an IDR, SPS and PPS in front of every IDR.
    let camera = std::fs::read(&dump).expect("camsim's dump");
    let camera_nals = nal_units(&camera);
    let sps = camera_nals.iter().find(|n| nal_type(n) == 7).unwrap();
    let pps = camera_nals.iter().find(|n| nal_type(n) == 8).unwrap();
    assert_eq!(
        camera_nals.iter().filter(|n| nal_type(n) == 7).count(),
        1,
        "camsim --params first sends the SPS once"
    );
    let mut idrs = 0;
    for (i, frame) in frames.iter().enumerate() {
        let nals = nal_units(frame);
        let types: Vec<u8> = nals.iter().map(|n| nal_type(n)).collect();
        if i == 0 {
            assert_eq!(&types[..2], [7, 8], "the first frame starts with SPS, PPS");
        }
        if types.contains(&5) {
            idrs += 1;
            assert_eq!(&types[..2], [7, 8], "frame {i}: an IDR without SPS and PPS");
            assert_eq!(nals[0], *sps, "frame {i}: the camera's SPS");
            assert_eq!(nals[1], *pps, "frame {i}: the camera's PPS");
        }
    }
    assert!(
        idrs >= 2,
        "{FRAMES} frames at GOP 15 hold several IDRs ({idrs})"
    );
    assert!(nal_units(&frames[0]).iter().any(|n| nal_type(n) == 5));

    // Byte for byte: the slices received are consecutive slices of the camera.
    let slices = |nals: Vec<&[u8]>| -> Vec<Vec<u8>> {
        nals.into_iter()
            .filter(|n| matches!(nal_type(n), 1 | 5))
            .map(<[u8]>::to_vec)
            .collect()
    };
    let received: Vec<Vec<u8>> = frames.iter().flat_map(|f| slices(nal_units(f))).collect();
    let camera_slices = slices(camera_nals);
    let at = camera_slices
        .iter()
        .position(|s| *s == received[0])
        .expect("the first slice received is one the camera sent");
    assert!(
        camera_slices[at..].starts_with(&received),
        "the slices received are the camera's, in order, none missing"
    );
}
