//! Real clients read the sink in the real `stackctl up`, fed by the real camsim: Debian's
//! ffmpeg over TCP and over UDP (frames decode without a word, their count matches the time,
//! the first is an IDR), the camera's 30 ↔ 2 fps switch played at true speed, and GStreamer's
//! `rtspsrc` when it is installed.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{
    RtspStack, assert_silent, decoded_frames, ffmpeg_copy, ffmpeg_decode, have_ffmpeg, packet_times,
};

#[test]
fn ffmpeg_reads_over_tcp_and_udp() {
    if !have_ffmpeg("ffmpeg_reads_over_tcp_and_udp") {
        return;
    }
    let rtsp = RtspStack::new("rtsp-ff", &[], "");
    let _up = rtsp.up();
    let dir = tempfile::tempdir().unwrap();
    for transport in ["tcp", "udp"] {
        // Decoded: not a word from the decoder.
        assert_silent(&ffmpeg_decode(&rtsp.url(), transport, 3), transport);

        // Copied for 4 s of media: 30 frames a second, starting on an IDR.
        let file = dir.path().join(format!("{transport}.mkv"));
        let out = ffmpeg_copy(&rtsp.url(), transport, 4, &file, &[]);
        assert_silent(&out, transport);
        let packets = packet_times(&file);
        assert!(
            packets.first().is_some_and(|p| p.1),
            "{transport}: the first frame is a key frame: {packets:?}"
        );
        let frames = decoded_frames(&file);
        // (A camera on a loaded machine may skip a frame now and then.)
        assert!(
            (100..=126).contains(&frames),
            "{transport}: {frames} frames in 4 s of 30 fps"
        );
        // Frames 1/30 s apart on the camera's clock. (ffmpeg's RTSP demuxer leaves the first
        // packet without a time, whatever the server: from the second on.)
        let mut steps: Vec<f64> = packets[1..].windows(2).map(|p| p[1].0 - p[0].0).collect();
        assert!(
            steps.iter().all(|s| (0.0..0.2).contains(s)),
            "{transport}: {steps:?}"
        );
        steps.sort_by(f64::total_cmp);
        let median = steps[steps.len() / 2];
        assert!(
            (0.030..0.037).contains(&median),
            "{transport}: median step {median} s"
        );
    }
    assert_eq!(rtsp.metric("rtsp_sessions_total{transport=\"tcp\"}"), 2.0);
    assert_eq!(rtsp.metric("rtsp_sessions_total{transport=\"udp\"}"), 2.0);
    assert!(rtsp.metric("rtsp_sender_reports_total") >= 1.0);
    assert_eq!(rtsp.metric("rtsp_frames_dropped_total"), 0.0);
    assert_eq!(
        rtsp.metric("rtsp_sessions_closed_total{reason=\"teardown\"}"),
        4.0
    );
}

/// The day/night switcher changes the frame rate at run time: RTP time follows the camera's
/// clock, so frames are 1/30 s apart by day and 1/2 s apart by night, not one assumed rate.
#[test]
fn a_rate_switch_plays_at_true_speed() {
    if !have_ffmpeg("a_rate_switch_plays_at_true_speed") {
        return;
    }
    // Switches every 2 s; an IDR every 4 frames so the cache never holds long.
    let rtsp = RtspStack::new("rtsp-rate", &["--interval-switch", "2", "--gop", "4"], "");
    let _up = rtsp.up();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rate.mkv");
    assert_silent(&ffmpeg_copy(&rtsp.url(), "tcp", 7, &file, &[]), "copy");
    let times = &packet_times(&file)[1..];
    let steps: Vec<f64> = times.windows(2).map(|p| p[1].0 - p[0].0).collect();
    let fast = steps.iter().filter(|s| (0.020..0.050).contains(*s)).count();
    let slow = steps.iter().filter(|s| (0.40..0.60).contains(*s)).count();
    assert!(
        fast >= 20 && slow >= 2,
        "30 fps and 2 fps steps, seen: {steps:?}"
    );
    assert!(
        steps.iter().all(|s| *s > 0.0),
        "time goes forward: {steps:?}"
    );
    let span = times.last().unwrap().0 - times.first().unwrap().0;
    assert!((6.0..7.5).contains(&span), "7 s of media: {span} s");
}

#[test]
fn gstreamer_rtspsrc_reads_over_tcp_and_udp() {
    let has_rtspsrc = Command::new("gst-inspect-1.0")
        .arg("rtspsrc")
        .output()
        .is_ok_and(|o| o.status.success());
    let has_decoder = ["avdec_h264", "h264parse", "rtph264depay"]
        .iter()
        .all(|element| {
            Command::new("gst-inspect-1.0")
                .arg(element)
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if !(has_rtspsrc && has_decoder) {
        eprintln!(
            "SKIPPED: gstreamer_rtspsrc_reads_over_tcp_and_udp: gst-launch-1.0 with rtspsrc, rtph264depay, h264parse and avdec_h264 not installed (gstreamer1.0-tools, -plugins-good, -plugins-bad, -libav)"
        );
        return;
    }
    let rtsp = RtspStack::new("rtsp-gst", &[], "");
    let _up = rtsp.up();
    for protocols in ["tcp", "udp"] {
        let out = Command::new("timeout")
            .args(["60", "gst-launch-1.0", "-q"])
            .arg("rtspsrc")
            .arg(format!("location={}", rtsp.url()))
            .arg(format!("protocols={protocols}"))
            .args([
                "!",
                "rtph264depay",
                "!",
                "h264parse",
                "!",
                "avdec_h264",
                "!",
            ])
            .args(["fakesink", "num-buffers=60", "sync=false"])
            .output()
            .expect("run gst-launch-1.0");
        assert!(
            out.status.success(),
            "{protocols}: gst-launch-1.0 exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(rtsp.metric("rtsp_sessions_total{transport=\"tcp\"}"), 1.0);
    assert_eq!(rtsp.metric("rtsp_sessions_total{transport=\"udp\"}"), 1.0);
}
