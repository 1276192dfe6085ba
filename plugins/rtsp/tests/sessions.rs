//! Sessions over time, in the real `stackctl up` with the real camsim: time-outs (a silent
//! client is dropped, one that keeps alive stays, ffmpeg's own keep-alives work),
//! `max_clients`, a slow TCP client that skips to the next IDR without slowing ffmpeg, and a
//! camera restart under a playing session.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{Client, RtspStack, assert_silent, ffmpeg_decode, have_ffmpeg, nal_type};

#[test]
fn silent_clients_time_out_and_keep_alives_keep_them() {
    let rtsp = RtspStack::new("rtsp-timeout", &[], "session_timeout = \"2s\"");
    let _up = rtsp.up();
    let url = rtsp.url();

    // Plays, reads, never says a word again: ended after 2 s, its connection closed.
    let mut silent = Client::connect(rtsp.port);
    silent.play_tcp(&url);
    assert!(
        silent.closed_within(Duration::from_secs(20)),
        "a silent client is dropped"
    );
    assert_eq!(
        rtsp.metric("rtsp_sessions_closed_total{reason=\"timeout\"}"),
        1.0
    );

    // Keeps alive with GET_PARAMETER every half second for 5 s: still served after.
    let mut alive = Client::connect(rtsp.port);
    let session = alive.play_tcp(&url);
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        thread::sleep(Duration::from_millis(500));
        let r = alive.request("GET_PARAMETER", &url, &[("Session", &session)]);
        assert_eq!(r.status, 200, "{r:?}");
    }
    alive.packets.clear();
    assert!(!alive.read_rtp(0, 30).is_empty());
    assert_eq!(
        rtsp.metric("rtsp_sessions_closed_total{reason=\"timeout\"}"),
        1.0
    );
    drop(alive);

    // An idle connection without a session is closed too.
    let mut idle = Client::connect(rtsp.port);
    assert!(
        idle.closed_within(Duration::from_secs(20)),
        "an idle connection is closed"
    );

    // ffmpeg keeps its session alive on its own (it reads timeout= and sends keep-alives).
    if have_ffmpeg("silent_clients_time_out_and_keep_alives_keep_them (ffmpeg part)") {
        for transport in ["tcp", "udp"] {
            assert_silent(&ffmpeg_decode(&url, transport, 6), transport);
        }
        assert_eq!(
            rtsp.metric("rtsp_sessions_closed_total{reason=\"timeout\"}"),
            1.0
        );
    }
}

#[test]
fn max_clients_are_served_and_one_more_gets_503() {
    let rtsp = RtspStack::new("rtsp-max", &[], "max_clients = 2");
    let _up = rtsp.up();
    let url = rtsp.url();
    let track = format!("{url}/trackID=0");
    let tcp = [("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")];
    let mut a = Client::connect(rtsp.port);
    let mut b = Client::connect(rtsp.port);
    let mut c = Client::connect(rtsp.port);
    let sa = a.request("SETUP", &track, &tcp).session();
    assert_eq!(b.request("SETUP", &track, &tcp).status, 200);
    let full = c.request("SETUP", &track, &tcp);
    assert_eq!(full.status, 503, "{full:?}");
    assert!(full.header("Retry-After").is_some());
    assert_eq!(rtsp.metric("rtsp_clients"), 2.0);
    assert_eq!(a.request("TEARDOWN", &url, &[("Session", &sa)]).status, 200);
    assert_eq!(
        c.request("SETUP", &track, &tcp).status,
        200,
        "a place freed"
    );
    assert_eq!(rtsp.metric("rtsp_responses_total{status=\"503\"}"), 1.0);
}

/// A client that stops reading fills its socket, then its queue: it loses whole GOPs and
/// resumes on an IDR; an ffmpeg client at the same time decodes every frame cleanly.
#[test]
fn a_slow_tcp_client_skips_to_the_next_idr_and_slows_nobody() {
    if !have_ffmpeg("a_slow_tcp_client_skips_to_the_next_idr_and_slows_nobody") {
        return;
    }
    // A bigger picture and bitrate, so a stalled reader fills its buffers in a few seconds.
    let rtsp = RtspStack::new(
        "rtsp-slow",
        &["--size", "640x480", "--bitrate", "4000"],
        "client_queue = 10",
    );
    let _up = rtsp.up();
    let url = rtsp.url();
    let mut slow = Client::connect(rtsp.port);
    socket2::SockRef::from(&slow.stream)
        .set_recv_buffer_size(4096)
        .unwrap();
    slow.play_tcp(&url);
    let fast = thread::spawn({
        let url = url.clone();
        move || ffmpeg_decode(&url, "tcp", 6)
    });
    // Stops reading for 5 s while the other client plays (less than the 10 s after which a
    // connection that takes nothing is closed).
    thread::sleep(Duration::from_secs(5));
    assert!(
        rtsp.metric("rtsp_frames_dropped_total") > 0.0,
        "the slow client lost frames"
    );

    // Reading again: after the gap, the stream resumes on an IDR with its parameter sets.
    slow.packets.clear();
    // What the socket buffers held, then the gap: read until it shows.
    let is_gap = |w: &[stackctl_media::rtp::RtpHeader]| {
        w[1].timestamp.wrapping_sub(w[0].timestamp) > 90_000 / 5
    };
    let mut wanted = 100;
    let headers = loop {
        let headers = slow.read_rtp(0, wanted);
        if let Some(at) = headers.windows(2).position(is_gap)
            && at + 2 < headers.len()
        {
            break headers;
        }
        assert!(
            wanted < 5000,
            "no gap of more than 200 ms in the slow client's stream"
        );
        wanted = headers.len() + 20;
    };
    let packets: Vec<&[u8]> = slow
        .packets
        .iter()
        .filter(|p| p.channel == 0)
        .map(|p| &p.data[12..])
        .collect();
    let gap = headers.windows(2).position(is_gap).unwrap();
    assert_eq!(
        nal_type(packets[gap + 1]),
        7,
        "after the gap: SPS, PPS, IDR"
    );
    assert_silent(&fast.join().unwrap(), "the fast client");
    for w in headers.windows(2) {
        assert_eq!(
            w[1].sequence,
            w[0].sequence.wrapping_add(1),
            "no packet lost inside a frame"
        );
    }
}

/// The camera daemon restarts (its segment unlinked and recreated): clients keep their
/// session and their decoder keeps decoding.
#[test]
fn a_camera_restart_keeps_the_sessions() {
    if !have_ffmpeg("a_camera_restart_keeps_the_sessions") {
        return;
    }
    let rtsp = RtspStack::new("rtsp-restart", &["--restart-every", "2"], "");
    let mut up = rtsp.up();
    let url = rtsp.url();
    let mut raw = Client::connect(rtsp.port);
    let session = raw.play_tcp(&url);
    for transport in ["tcp", "udp"] {
        assert_silent(&ffmpeg_decode(&url, transport, 6), transport);
    }
    // The camera did restart meanwhile.
    up.first_line(&["attached to shared memory", "restarted=true"]);
    // The raw client's session went on through it.
    raw.packets.clear();
    assert!(!raw.read_rtp(0, 30).is_empty());
    assert_eq!(
        raw.request("GET_PARAMETER", &url, &[("Session", &session)])
            .status,
        200
    );
    assert_eq!(
        rtsp.metric("rtsp_sessions_closed_total{reason=\"timeout\"}"),
        0.0
    );
    assert_eq!(
        rtsp.metric("rtsp_sessions_closed_total{reason=\"disconnect\"}"),
        0.0
    );
    assert_eq!(
        rtsp.metric("rtsp_sessions_closed_total{reason=\"teardown\"}"),
        2.0
    );
}
