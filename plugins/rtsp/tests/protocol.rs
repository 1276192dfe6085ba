//! The protocol byte by byte, with a raw client on a real connection to the sink in the real
//! `stackctl up`: a whole session (DESCRIBE's SDP, SETUP, PLAY's `RTP-Info` against the
//! first RTP packet, PAUSE and PLAY again, TEARDOWN), and a hostile-request suite where every
//! bad request gets its RTSP error and the server goes on serving.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use common::{Client, RtspStack, nal_type};
use stackctl_tests::plugins::{http_json, plugin};

fn param<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    header
        .split(';')
        .find_map(|kv| kv.trim().strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn a_session_from_describe_to_teardown() {
    let rtsp = RtspStack::new("rtsp-proto", &[], "");
    let _up = rtsp.up();
    let url = rtsp.url();
    let mut c = Client::connect(rtsp.port);

    let options = c.request("OPTIONS", "*", &[]);
    assert_eq!(options.status, 200);
    let public = options.header("Public").unwrap();
    for m in [
        "DESCRIBE",
        "SETUP",
        "PLAY",
        "PAUSE",
        "TEARDOWN",
        "GET_PARAMETER",
    ] {
        assert!(public.contains(m), "{public}");
    }

    let describe = c.request("DESCRIBE", &url, &[("Accept", "application/sdp")]);
    assert_eq!(describe.status, 200, "{describe:?}");
    assert_eq!(describe.header("Content-Type"), Some("application/sdp"));
    assert_eq!(
        describe.header("Content-Base"),
        Some(format!("{url}/").as_str())
    );
    let sdp = String::from_utf8(describe.body.clone()).unwrap();
    let fmtp = sdp
        .lines()
        .find(|l| l.starts_with("a=fmtp:96 "))
        .unwrap_or_else(|| panic!("{sdp}"));
    let sets = param(fmtp, "sprop-parameter-sets").unwrap();
    let (sps, pps) = sets.split_once(',').unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).unwrap();
    let (sps, pps) = (b64(sps), b64(pps));
    assert_eq!((sps[0] & 0x1f, pps[0] & 0x1f), (7, 8));
    let plid = param(fmtp, "profile-level-id").unwrap();
    assert_eq!(plid, format!("{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3]));
    assert!(sdp.contains("a=rtpmap:96 H264/90000\r\n"), "{sdp}");
    assert!(sdp.contains("a=control:trackID=0\r\n"), "{sdp}");

    let setup = c.request(
        "SETUP",
        &format!("{url}/trackID=0"),
        &[("Transport", "RTP/AVP/TCP;unicast;interleaved=2-3")],
    );
    assert_eq!(setup.status, 200, "{setup:?}");
    let session = setup.session();
    assert!(setup.header("Session").unwrap().ends_with(";timeout=60"));
    let transport = setup.header("Transport").unwrap();
    assert!(
        transport.starts_with("RTP/AVP/TCP;unicast;interleaved=2-3;ssrc="),
        "{transport}"
    );
    let ssrc = u32::from_str_radix(param(transport, "ssrc").unwrap(), 16).unwrap();

    let play = c.request("PLAY", &url, &[("Session", &session)]);
    assert_eq!(play.status, 200, "{play:?}");
    let info = play.header("RTP-Info").unwrap();
    assert!(info.starts_with(&format!("url={url}/trackID=0;")), "{info}");
    let seq: u16 = param(info, "seq").unwrap().parse().unwrap();
    let rtptime: u32 = param(info, "rtptime").unwrap().parse().unwrap();

    let headers = c.read_rtp(2, 60);
    let first = &headers[0];
    assert_eq!(
        (first.sequence, first.timestamp, first.ssrc),
        (seq, rtptime, ssrc)
    );
    // The first packet opens an IDR access unit with its parameter sets.
    let payload = &c.packets.iter().find(|p| p.channel == 2).unwrap().data[12..];
    assert_eq!(nal_type(payload), 7, "SPS first (in a STAP-A)");
    for pair in headers.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
        let step = pair[1].timestamp.wrapping_sub(pair[0].timestamp);
        // Within a frame 0; between frames about 3000 ticks (1/30 s at 90 kHz).
        assert!(
            step == 0 && !pair[0].marker || pair[0].marker && (1..=18_000).contains(&step),
            "{pair:?}"
        );
    }

    assert_eq!(
        c.request("GET_PARAMETER", &url, &[("Session", &session)])
            .status,
        200
    );
    assert_eq!(
        c.request(
            "SETUP",
            &format!("{url}/trackID=0"),
            &[
                ("Transport", "RTP/AVP/TCP;unicast;interleaved=2-3"),
                ("Session", &session),
            ]
        )
        .status,
        455,
        "SETUP while playing"
    );
    assert_eq!(
        c.request("PAUSE", &url, &[("Session", &session)]).status,
        200
    );
    assert_eq!(
        c.request("PAUSE", &url, &[("Session", &session)]).status,
        455,
        "PAUSE while paused"
    );
    // Numbers go on from where the pause left them.
    let last = c.read_rtp(2, 0).last().unwrap().sequence;
    c.packets.clear();
    let again = c.request("PLAY", &url, &[("Session", &session)]);
    let seq2: u16 = param(again.header("RTP-Info").unwrap(), "seq")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(seq2, last.wrapping_add(1));
    assert_eq!(c.read_rtp(2, 1)[0].sequence, seq2);

    assert_eq!(
        c.request("TEARDOWN", &url, &[("Session", &session)]).status,
        200
    );
    assert_eq!(
        c.request("PLAY", &url, &[("Session", &session)]).status,
        454
    );
    assert_eq!(
        rtsp.metric("rtsp_sessions_closed_total{reason=\"teardown\"}"),
        1.0
    );
}

/// Every request a confused or hostile client might send gets an RTSP error, and the server
/// goes on serving everyone.
#[test]
fn hostile_requests_get_rtsp_errors() {
    let rtsp = RtspStack::new("rtsp-hostile", &[], "request_timeout = \"1s\"");
    let _up = rtsp.up();
    let url = rtsp.url();
    let track = format!("{url}/trackID=0");
    let tcp = "RTP/AVP/TCP;unicast;interleaved=0-1";

    // (request, status, the server closes the connection after it)
    let cases: Vec<(String, u16, bool)> = vec![
        (format!("OPTIONS {url} RTSP/1.0\r\n\r\n"), 400, false),
        (
            format!("OPTIONS {url} RTSP/1.0\r\nCSeq: abc\r\n\r\n"),
            400,
            false,
        ),
        ("GARBAGE\r\nCSeq: 1\r\n\r\n".into(), 400, true),
        (
            format!("DESCRIBE {url} HTTP/1.1\r\nCSeq: 1\r\n\r\n"),
            400,
            true,
        ),
        (
            "DESCRIBE /live RTSP/1.0\r\nCSeq: 1\r\n\r\n".into(),
            400,
            true,
        ),
        (
            format!("OPTIONS {url} RTSP/2.0\r\nCSeq: 1\r\n\r\n"),
            505,
            false,
        ),
        (
            format!("DESCRIBE {url}/other RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
            404,
            false,
        ),
        (
            format!(
                "DESCRIBE rtsp://127.0.0.1:{}/ RTSP/1.0\r\nCSeq: 1\r\n\r\n",
                rtsp.port
            ),
            404,
            false,
        ),
        (
            format!("ANNOUNCE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
            405,
            false,
        ),
        (
            format!("RECORD {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
            405,
            false,
        ),
        (
            format!(
                "SET_PARAMETER {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 9\r\n\r\nvolume: 1"
            ),
            451,
            false,
        ),
        (
            format!("PLAY {url} RTSP/1.0\r\nCSeq: 1\r\nSession: 0123456789ABCDEF\r\n\r\n"),
            454,
            false,
        ),
        (
            format!("PLAY {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
            454,
            false,
        ),
        (
            format!("TEARDOWN {url} RTSP/1.0\r\nCSeq: 1\r\nSession: nope\r\n\r\n"),
            454,
            false,
        ),
        (
            format!("SETUP {url} RTSP/1.0\r\nCSeq: 1\r\nTransport: {tcp}\r\n\r\n"),
            459,
            false,
        ),
        (
            format!("SETUP {track} RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;multicast\r\n\r\n"),
            461,
            false,
        ),
        (
            format!("SETUP {track} RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast\r\n\r\n"),
            461,
            false,
        ),
        (
            format!(
                "SETUP {track} RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/SAVP;unicast;client_port=5000-5001\r\n\r\n"
            ),
            461,
            false,
        ),
        (
            format!("SETUP {track} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
            400,
            false,
        ),
        (
            format!(
                "SETUP {track} RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;interleaved=999\r\n\r\n"
            ),
            400,
            false,
        ),
        (
            format!("FROBNICATE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
            501,
            false,
        ),
        (
            format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nRequire: play.basic\r\n\r\n"),
            551,
            false,
        ),
        (
            format!(
                "OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nX: {}\r\n\r\n",
                "a".repeat(9000)
            ),
            400,
            true,
        ),
        (
            format!(
                "OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n{}\r\n",
                "X: y\r\n".repeat(100)
            ),
            400,
            true,
        ),
        (
            format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 1000000\r\n\r\n"),
            413,
            true,
        ),
        // Half a request, then silence: 408 after request_timeout.
        (format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n"), 408, true),
    ];
    for (request, want, closes) in &cases {
        let mut c = Client::connect(rtsp.port);
        c.send_raw(request.as_bytes());
        let what = request.chars().take(60).collect::<String>();
        let reply = c.reply().unwrap_or_else(|| panic!("no answer to {what:?}"));
        assert_eq!(reply.status, *want, "{what:?}: {reply:?}");
        if *want == 405 {
            assert!(
                reply.header("Allow").is_some_and(|a| a.contains("PLAY")),
                "{reply:?}"
            );
        }
        if *want == 551 {
            assert_eq!(reply.header("Unsupported"), Some("play.basic"));
        }
        if *closes {
            assert!(
                c.closed_within(std::time::Duration::from_secs(20)),
                "{what:?}: still open"
            );
        } else {
            // The connection still answers.
            assert_eq!(c.request("OPTIONS", "*", &[]).status, 200, "{what:?}");
        }
    }

    // A second session on one connection; another connection's session; PAUSE when ready.
    let mut a = Client::connect(rtsp.port);
    let s = a.request("SETUP", &track, &[("Transport", tcp)]);
    assert_eq!(s.status, 200);
    let session = s.session();
    assert_eq!(
        a.request("SETUP", &track, &[("Transport", tcp)]).status,
        455
    );
    assert_eq!(
        a.request("PAUSE", &url, &[("Session", &session)]).status,
        455
    );
    let mut b = Client::connect(rtsp.port);
    assert_eq!(
        b.request("PLAY", &url, &[("Session", &session)]).status,
        454,
        "not its session"
    );

    // Noise: binary bytes, interleaved data for no session, a flood of blank lines.
    for noise in [
        (0..=255u8).cycle().take(5000).collect::<Vec<u8>>(),
        vec![b'$', 7, 0, 4, 1, 2, 3, 4],
        b"\r\n".repeat(5000),
    ] {
        let mut c = Client::connect(rtsp.port);
        c.send_raw(&noise);
        c.send_raw(b"\r\n\r\n");
        let _ = c.closed_within(std::time::Duration::from_millis(300));
    }

    // Everyone is still served, and the plugin never failed.
    let mut c = Client::connect(rtsp.port);
    let session = c.play_tcp(&url);
    assert!(!session.is_empty());
    assert!(!c.read_rtp(0, 10).is_empty());
    let status = http_json(rtsp.stack.http_port().unwrap(), "/api/status");
    assert_eq!(plugin(&status, "rtsp")["state"], "running", "{status:#}");
    assert!(rtsp.metric("rtsp_responses_total{status=\"454\"}") >= 4.0);
}
