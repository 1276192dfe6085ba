//! The viewer page (`assets/viewer.html`) in headless Chromium.
//!
//! - Against a scripted WHEP endpoint (a small HTTP server in this file): what the page sends
//!   (a complete, non-trickle recvonly offer, to `./whep` relative to the page or to `?whep=`),
//!   how it takes a full server (503: the server's message shown, `Retry-After` honoured), ICE
//!   servers in `Link` headers, and a session that fails (`DELETE`d before the next offer).
//! - End to end: `stackctl up` with camsim and this sink, the page served at `/` playing the
//!   camera: frames decoded at camsim's size, no errors, and the session removed on leaving.
//!
//! - The detector's boxes: camsim's square found by detector-sim, sent on the page's
//!   `detections` channel, drawn over the frame it belongs to: a screenshot of a paused frame
//!   shows the box's outline around the square (pixels, with a tolerance), and no outline once
//!   the toggle is off (remembered across a reload).
//!
//! Each test skips (passes, after a loud `SKIPPED:` line) without Chromium.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use serde_json::Value;
use stackctl_tests::browser::Browser;
use stackctl_tests::plugins::{camera_config, http_get, poll, rust_plugin, toml_path};
use stackctl_tests::unique_shm;
use stackctl_tests::up::{EVENT_TIMEOUT, Stack};

const PAGE: &str = include_str!("../assets/viewer.html");

/// One request the scripted server received.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted HTTP server on 127.0.0.1: the page at `/cam/` (a path prefix, as behind a reverse
/// proxy), and `POST /cam/whep` answered `503` with a JSON error and `Retry-After: 1`. Every
/// request is reported on the returned channel.
fn scripted_server() -> (u16, Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let tx = tx.clone();
            std::thread::spawn(move || serve(stream, &tx));
        }
    });
    (port, rx)
}

fn serve(stream: TcpStream, tx: &Sender<Seen>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let seen = Seen {
        at: Instant::now(),
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let route = seen.path.split('?').next().unwrap_or("");
    let (status, extra, content_type, reply) = match (seen.method.as_str(), route) {
        ("GET", "/cam/") => (200, "", "text/html; charset=utf-8", PAGE.to_owned()),
        ("POST", "/cam/whep") => (
            503,
            "Retry-After: 1\r\n",
            "application/json",
            r#"{"error":"10 viewers already: the limit is 10"}"#.to_owned(),
        ),
        // A session whose answer is no SDP: the page must give up on it (DELETE) and offer
        // again, with the ICE servers of the Link headers (on loopback: nothing is contacted).
        ("POST", "/link/whep") => (
            201,
            concat!(
                "Location: /link/whep/s1\r\n",
                "Link: <stun:127.0.0.1:9>; rel=\"ice-server\"\r\n",
                "Link: <turn:127.0.0.1:9?transport=udp>; rel=\"ice-server\"; username=\"u\"; ",
                "credential=\"p;w,x\"; credential-type=\"password\"\r\n",
                "Link: </other>; rel=\"help\"\r\n",
            ),
            "application/sdp",
            "v=0\r\nnot an answer\r\n".to_owned(),
        ),
        ("DELETE", "/link/whep/s1") => (200, "", "text/plain", String::new()),
        _ => (404, "", "text/plain", "no".to_owned()),
    };
    let _ = tx.send(seen);
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{reply}",
        reply.len()
    );
}

/// The next request matching `method path`, skipping others.
fn next_request(rx: &Receiver<Seen>, method: &str, path: &str) -> Seen {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let seen = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no {method} {path} within {EVENT_TIMEOUT:?}: {e}"));
        if seen.method == method && seen.path == path {
            return seen;
        }
    }
}

#[test]
fn the_page_offers_to_whep_beside_it_and_waits_as_a_full_server_says() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let (port, rx) = scripted_server();
    browser.open(&format!("http://127.0.0.1:{port}/cam/"));
    assert_eq!(browser.evaluate("document.title"), "stackctl — live");
    assert_eq!(
        browser.evaluate("typeof window.stackctlViewer"),
        "object",
        "console: {:?}",
        browser.console()
    );

    // The offer: to ./whep relative to the page, as SDP, complete (gathered before sending:
    // the server does not wait for trickled candidates), receive-only video on one bundle.
    let first = next_request(&rx, "POST", "/cam/whep");
    assert_eq!(first.header("content-type"), Some("application/sdp"));
    let sdp = &first.body;
    assert!(sdp.starts_with("v=0\r\n"), "{sdp}");
    assert!(sdp.contains("m=video "), "{sdp}");
    assert!(!sdp.contains("m=audio"), "{sdp}");
    assert!(sdp.contains("a=recvonly"), "{sdp}");
    assert!(sdp.contains("a=group:BUNDLE"), "{sdp}");
    assert!(sdp.contains("a=rtcp-mux"), "{sdp}");
    assert!(sdp.contains("H264/90000"), "{sdp}");
    assert!(
        sdp.lines()
            .any(|l| l.starts_with("a=candidate:") && l.contains(" 127.0.0.1 ")),
        "no loopback candidate in the offer:\n{sdp}"
    );

    // 503: the server's own message shown, and the next offer after Retry-After (1 s), not at
    // once and not after the page's own backoff.
    let shown = browser.wait_for(
        "the server's message shown",
        "document.getElementById('notice').textContent.includes('the limit is 10') && window.stackctlViewer",
        Duration::from_secs(10),
    );
    assert_eq!(shown["state"], "waiting", "{shown:#}");
    assert!(shown["errors"]["whep"].as_u64() >= Some(1), "{shown:#}");
    assert_eq!(shown["errors"]["decode"], 0, "{shown:#}");
    assert!(
        shown["errors"]["last"]
            .as_str()
            .is_some_and(|m| m.starts_with("503") && m.contains("the limit is 10")),
        "{shown:#}"
    );
    let second = next_request(&rx, "POST", "/cam/whep");
    let gap = second.at - first.at;
    eprintln!("second offer {gap:?} after the first");
    assert!(
        gap >= Duration::from_millis(900) && gap < Duration::from_secs(4),
        "Retry-After: 1 not honoured: the second offer came {gap:?} after the first"
    );

    // Only the page's own server was asked for anything (no CDN, no font, no icon elsewhere).
    let own = format!("http://127.0.0.1:{port}/");
    let foreign: Vec<&String> = browser
        .requests()
        .iter()
        .filter(|r| {
            !r.split_once(' ')
                .is_some_and(|(_, url)| url.starts_with(&own))
        })
        .collect();
    assert!(foreign.is_empty(), "requests elsewhere: {foreign:?}");
}

#[test]
fn the_page_takes_ice_servers_from_link_headers_and_deletes_a_failed_session() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let (port, rx) = scripted_server();
    // ?whep= overrides ./whep.
    browser.open(&format!("http://127.0.0.1:{port}/cam/?whep=/link/whep"));
    next_request(&rx, "POST", "/link/whep");
    // The answer is refused: the session is deleted before the next offer.
    let deleted = next_request(&rx, "DELETE", "/link/whep/s1");
    let again = next_request(&rx, "POST", "/link/whep");
    assert!(again.at > deleted.at);
    let viewer = browser.wait_for(
        "the bad answer counted",
        "window.stackctlViewer.errors.whep > 0 && window.stackctlViewer",
        Duration::from_secs(10),
    );
    eprintln!("viewer: {viewer:#}");
    assert_eq!(
        viewer["iceServers"],
        serde_json::json!([
            {"urls": "stun:127.0.0.1:9"},
            {"urls": "turn:127.0.0.1:9?transport=udp", "username": "u", "credential": "p;w,x"},
        ]),
        "only rel=\"ice-server\" links, with their credentials: {viewer:#}"
    );
    assert_eq!(viewer["errors"]["decode"], 0, "{viewer:#}");
}

/// `/health`'s count of WebRTC viewers.
fn viewers(port: u16) -> u64 {
    let (code, body) = http_get(port, "/health");
    let health: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("/health ({code}) is not JSON: {e}: {body}"));
    health["webrtc_clients"]
        .as_u64()
        .unwrap_or_else(|| panic!("no webrtc_clients in /health: {body}"))
}

#[test]
fn chromium_plays_the_camera_from_the_page_at_the_root() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let library = rust_plugin("sink-webrtc");
    let shm = unique_shm("webrtc-browser");
    // camera_config: camsim at 320x240, 30 fps, OpenH264 constrained baseline.
    let stack = Stack::new(&format!(
        r#"{camera}
[plugins.streaming]
path = {library}
bind = ["127.0.0.1"]
"#,
        camera = camera_config(&shm),
        library = toml_path(&library),
    ));
    let port = stack.http_port().expect("the harness chose the HTTP port");
    let mut up = stack.up(&[], &[]);
    up.first_line(&["plugin started", "plugin=streaming"]);
    up.first_line(&["stack ready"]);

    browser.open(&format!("http://127.0.0.1:{port}/"));
    assert_eq!(browser.evaluate("document.title"), "stackctl — live");
    let viewer = browser.wait_for(
        "more than 30 frames decoded",
        "window.stackctlViewer.stats.framesDecoded > 30 && window.stackctlViewer",
        Duration::from_secs(20),
    );
    eprintln!("viewer: {viewer:#}");
    let stats = &viewer["stats"];
    assert_eq!(viewer["state"], "connected", "{viewer:#}");
    assert_eq!(
        (stats["width"].as_u64(), stats["height"].as_u64()),
        (Some(320), Some(240)),
        "camsim's --size: {viewer:#}"
    );
    assert_eq!(stats["codec"], "H264", "{viewer:#}");
    assert!(stats["keyFramesDecoded"].as_u64() >= Some(1), "{viewer:#}");
    for kind in ["decode", "connection", "whep"] {
        assert_eq!(viewer["errors"][kind], 0, "{kind} errors: {viewer:#}");
    }
    // The <video> plays what was decoded.
    let video = browser.evaluate(
        "({w: video.videoWidth, h: video.videoHeight, paused: video.paused, error: video.error && video.error.code})",
    );
    assert_eq!(
        video,
        serde_json::json!({"w": 320, "h": 240, "paused": false, "error": null}),
        "{video:#}"
    );
    // Still decoding a second later: frames keep coming, not one burst.
    let before = stats["framesDecoded"].as_u64().unwrap();
    browser.wait_for(
        "frames still decoded",
        &format!(
            "window.stackctlViewer.stats.framesDecoded > {}",
            before + 15
        ),
        Duration::from_secs(10),
    );
    assert_eq!(viewers(port), 1, "the page is one viewer");
    // How soon the picture came, in the page's own clock (ms since it started loading), and
    // the latency it shows. Timings are benchmark figures on this shared machine: shown, and
    // held only to a bound no working sink misses.
    let timing = browser.evaluate("window.stackctlViewer.timing");
    let at = |k: &str| {
        timing[k]
            .as_f64()
            .unwrap_or_else(|| panic!("no {k}: {timing:#}"))
    };
    let (posted, first) = (at("offerPosted"), at("firstFrame"));
    eprintln!(
        "page load -> offer posted {posted:.0} ms, answer applied {:.0} ms, connected {:.0} ms, \
         first frame {first:.0} ms: {:.0} ms from the offer to the first frame",
        at("answered"),
        at("connected"),
        first - posted
    );
    assert!(posted < first, "{timing:#}");
    assert!(first - posted < 5_000.0, "{timing:#}");
    let shown = browser.evaluate("window.stackctlViewer.stats");
    eprintln!(
        "latency shown: {} ms ({})",
        shown["latencyMs"], shown["latencySource"]
    );
    assert!(shown["latencyMs"].as_f64().is_some(), "{shown:#}");

    // Leaving the page DELETEs its session: the viewer is gone at once, not after the sink's
    // own timeouts (disconnected after 5 s, removed after 10 s). The event is dispatched rather
    // than the page left, so that the browser still reports the page's requests.
    let left = Instant::now();
    browser.evaluate("dispatchEvent(new PageTransitionEvent('pagehide', {persisted: false}))");
    poll(
        "the viewer removed",
        Duration::from_secs(4),
        || match viewers(port) {
            0 => Ok(()),
            n => Err(format!("{n} viewers")),
        },
    );
    eprintln!("viewer removed {:?} after pagehide", left.elapsed());
    let whep = format!("http://127.0.0.1:{port}/whep/");
    let requests = browser.requests().to_vec();
    assert!(
        requests.iter().any(|r| r
            .strip_prefix("DELETE ")
            .is_some_and(|url| url.starts_with(&whep))),
        "no DELETE of the session: {requests:?}"
    );
    let (_, metrics) = http_get(port, "/metrics");
    let metrics = stackctl_tests::plugins::unlabelled(&metrics);
    assert!(
        metrics.contains("webrtc_viewers_removed_total{reason=\"closed\"} 1"),
        "the viewer was not removed as closed:\n{metrics}"
    );
    // Nothing but the stack itself was asked for anything.
    let own = format!("http://127.0.0.1:{port}/");
    assert!(
        requests.iter().all(|r| r
            .split_once(' ')
            .is_some_and(|(_, url)| url.starts_with(&own))),
        "{requests:?}"
    );
    up.terminate();
}

/// Chromium's jitter-buffer delay per frame over `window`, once the page has played a while:
/// `(ms per frame, target ms per frame, frames)`, and whether its answer had playout-delay.
fn jitter_buffer(playout_delay: bool, window: Duration) -> Option<(f64, f64, u64, bool)> {
    let mut browser = Browser::launch()?;
    let library = rust_plugin("sink-webrtc");
    let shm = unique_shm("webrtc-jitter");
    let stack = Stack::new(&format!(
        "{camera}\n[plugins.streaming]\npath = {library}\nbind = [\"127.0.0.1\"]\nplayout_delay = {playout_delay}\n",
        camera = camera_config(&shm),
        library = toml_path(&library),
    ));
    let port = stack.http_port().expect("the harness chose the HTTP port");
    let mut up = stack.up(&[], &[]);
    up.first_line(&["stack ready"]);
    browser.open(&format!("http://127.0.0.1:{port}/"));
    browser.wait_for(
        "a second of frames",
        "window.stackctlViewer.stats.framesDecoded > 30",
        Duration::from_secs(20),
    );
    let sample = "(async () => { let s = null; (await window.stackctlPc.getStats()).forEach((r) => { \
        if (r.type === 'inbound-rtp' && r.kind === 'video') s = r; }); \
        return [s.jitterBufferDelay, s.jitterBufferTargetDelay, s.jitterBufferEmittedCount]; })()";
    let before = browser.evaluate(sample);
    std::thread::sleep(window);
    let after = browser.evaluate(sample);
    let answer = browser.evaluate("window.stackctlPc.remoteDescription.sdp");
    let delta = |i: usize| after[i].as_f64().unwrap_or(0.0) - before[i].as_f64().unwrap_or(0.0);
    let frames = delta(2).max(1.0);
    up.terminate();
    Some((
        delta(0) / frames * 1000.0,
        delta(1) / frames * 1000.0,
        frames as u64,
        answer.as_str().is_some_and(|s| s.contains("playout-delay")),
    ))
}

/// Chromium's jitter-buffer delay with and without the playout-delay extension (min = max =
/// 0): the figures the README quotes. The extension is answered only when enabled; the delays
/// are shown, not compared (they are benchmark figures on a shared machine).
#[test]
fn chromium_jitter_buffer_with_and_without_playout_delay() {
    let window = Duration::from_secs(5);
    let Some(with) = jitter_buffer(true, window) else {
        return;
    };
    let Some(without) = jitter_buffer(false, window) else {
        return;
    };
    for (name, (delay, target, frames, answered)) in [("with", with), ("without", without)] {
        eprintln!(
            "{name} playout-delay: jitter buffer {delay:.1} ms per frame (target {target:.1} ms) \
             over {frames} frames"
        );
        assert!(frames > 60, "{name}: {frames} frames in {window:?}");
        assert_eq!(
            answered,
            name == "with",
            "{name}: playout-delay in the answer"
        );
    }
}

/// A 640×360 libx264 **High** profile file, 3 s at 30 fps, an IDR a second, no B-frames (a
/// camera's encoder has none): what camsim loops in the High-profile tests. `None` (after a
/// loud SKIPPED) without ffmpeg or libx264.
fn high_profile_file(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    if !stackctl_tests::media::have_ffmpeg("High-profile stream") {
        return None;
    }
    let out = dir.join("high.h264");
    let made = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", "testsrc2=size=640x360:rate=30", "-t", "3"])
        .args([
            "-c:v",
            "libx264",
            "-profile:v",
            "high",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-bf", "0", "-g", "30", "-b:v", "1M", "-f", "h264"])
        .arg(&out)
        .output()
        .expect("ffmpeg runs");
    if !made.status.success() {
        eprintln!(
            "\n***\n*** SKIPPED: High-profile stream: ffmpeg cannot encode with libx264: {}\n***\n",
            String::from_utf8_lossy(&made.stderr)
        );
        return None;
    }
    let data = std::fs::read(&out).expect("the file ffmpeg wrote");
    let sps = stackctl_media::h264::nal_units(&data)
        .find(|n| n.first().is_some_and(|b| b & 0x1f == 7))
        .expect("an SPS");
    assert_eq!(sps[1], 100, "libx264 wrote High profile (profile_idc 100)");
    Some(out)
}

/// A stack whose camera loops `file`, with the sink.
fn stack_looping(file: &std::path::Path, tag: &str) -> (Stack, stackctl_tests::ShmName) {
    let library = rust_plugin("sink-webrtc");
    let shm = unique_shm(tag);
    let stack = Stack::new(&format!(
        r#"
[source]
shm = "{name}"

[services.camera]
command = {camsim}
args = ["--shm", "{name}", "--fps", "30", "--input", {input}]

[plugins.streaming]
path = {library}
bind = ["127.0.0.1"]
"#,
        name = shm.as_str(),
        camsim = toml_path(&stackctl_tests::bin("camsim")),
        input = toml_path(file),
        library = toml_path(&library),
    ));
    (stack, shm)
}

/// What the Chromium here offers for H.264: whether it names High profile at all.
fn chromium_offers_high(browser: &mut Browser) -> bool {
    let sdp = browser.evaluate(
        "(async () => { const pc = new RTCPeerConnection(); pc.addTransceiver('video', {direction: 'recvonly'}); \
         const o = await pc.createOffer(); pc.close(); return o.sdp; })()",
    );
    sdp.as_str()
        .is_some_and(|s| s.contains("profile-level-id=64"))
}

/// A camera sending High profile plays in Chromium through the viewer page, even though
/// Debian's Chromium offers no High-profile format: the sink answers with the best offered one,
/// sends the camera's stream, and counts the mismatch.
#[test]
fn a_high_profile_camera_plays_in_chromium_through_the_page() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(file) = high_profile_file(dir.path()) else {
        return;
    };
    let (stack, _shm) = stack_looping(&file, "webrtc-high-page");
    let port = stack.http_port().expect("the harness chose the HTTP port");
    let mut up = stack.up(&[], &[]);
    up.first_line(&["stack ready"]);
    browser.open(&format!("http://127.0.0.1:{port}/"));
    let offers_high = chromium_offers_high(&mut browser);
    let viewer = browser.wait_for(
        "more than 30 frames decoded",
        "window.stackctlViewer.stats.framesDecoded > 30 && window.stackctlViewer",
        Duration::from_secs(30),
    );
    eprintln!("High profile, viewer page (Chromium offers High: {offers_high}): {viewer:#}");
    let stats = &viewer["stats"];
    assert_eq!(
        (stats["width"].as_u64(), stats["height"].as_u64()),
        (Some(640), Some(360)),
        "{viewer:#}"
    );
    for kind in ["decode", "connection", "whep"] {
        assert_eq!(viewer["errors"][kind], 0, "{kind} errors: {viewer:#}");
    }
    let (_, metrics) = http_get(port, "/metrics");
    let metrics = stackctl_tests::plugins::unlabelled(&metrics);
    let mismatches = metrics
        .lines()
        .find_map(|l| l.strip_prefix("webrtc_profile_mismatch_total "))
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(
        mismatches,
        Some(if offers_high { 0.0 } else { 1.0 }),
        "{metrics}"
    );
    up.terminate();
    let once = up
        .lines()
        .iter()
        .filter(|l| l.contains("offered no format of the camera's H.264 profile"))
        .count();
    assert_eq!(once, usize::from(!offers_high), "logged once per viewer");
}

/// The board's legacy browser client (`POST /api/webrtc/offer` with `{sdp, type}`, a recvonly
/// transceiver, max-bundle, rtcp-mux, a STUN server, candidates gathered first) plays a
/// High-profile camera in Chromium too.
#[test]
fn a_high_profile_camera_plays_in_chromium_through_the_legacy_client() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(file) = high_profile_file(dir.path()) else {
        return;
    };
    let (stack, _shm) = stack_looping(&file, "webrtc-high-legacy");
    let port = stack.http_port().expect("the harness chose the HTTP port");
    let mut up = stack.up(&[], &[]);
    up.first_line(&["stack ready"]);
    // Any page of the server's origin: the client posts to it.
    browser.open(&format!("http://127.0.0.1:{port}/health"));
    let status = browser.evaluate(
        r#"(async () => {
            const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", rtcpMuxPolicy: "require",
                iceServers: [{ urls: "stun:127.0.0.1:9" }] });
            pc.addTransceiver("video", { direction: "recvonly" });
            const video = document.createElement("video");
            video.muted = true; video.autoplay = true; video.playsInline = true;
            document.body.append(video);
            pc.ontrack = (e) => { video.srcObject = e.streams[0] || new MediaStream([e.track]); video.play().catch(() => {}); };
            await pc.setLocalDescription(await pc.createOffer());
            await new Promise((resolve) => {
                const timer = setTimeout(resolve, 3000);
                pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); } };
            });
            const res = await fetch("/api/webrtc/offer", { method: "POST", headers: { "Content-Type": "application/json" },
                body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }) });
            const answer = await res.json();
            if (res.status === 200) await pc.setRemoteDescription(answer);
            window.legacy = { pc, video, errors: 0, stats: null };
            video.addEventListener("error", () => { window.legacy.errors += 1; });
            setInterval(async () => {
                (await pc.getStats()).forEach((r) => {
                    if (r.type === "inbound-rtp" && r.kind === "video") window.legacy.stats = {
                        framesDecoded: r.framesDecoded, width: r.frameWidth, height: r.frameHeight,
                        keyFramesDecoded: r.keyFramesDecoded, errors: window.legacy.errors };
                });
            }, 250);
            return res.status;
        })()"#,
    );
    assert_eq!(status, 200, "the legacy offer is answered");
    let stats = browser.wait_for(
        "more than 30 frames decoded",
        "window.legacy.stats && window.legacy.stats.framesDecoded > 30 && window.legacy.stats",
        Duration::from_secs(30),
    );
    eprintln!("High profile, legacy client: {stats:#}");
    assert_eq!(
        (stats["width"].as_u64(), stats["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(stats["errors"], 0, "{stats:#}");
    up.terminate();
}

/// Is this pixel the page's box outline (#00ff00)? camsim's green bar is (0, 190, 0).
fn outline(p: [u8; 3]) -> bool {
    p[1] >= 230 && p[0] <= 70 && p[2] <= 70
}

/// Is this pixel camsim's orange square (255, 128, 0 after decoding)?
fn orange(p: [u8; 3]) -> bool {
    p[0] >= 200 && (80..=180).contains(&p[1]) && p[2] <= 80
}

/// Pauses the page's video on a frame with a box, once that frame's own result has come (it
/// is drawn again then); tries frame after frame. Returns the page's `overlay.last`.
fn pause_on_a_box(browser: &mut Browser) -> Value {
    for _ in 0..40 {
        browser.evaluate(
            "(() => { const o = window.stackctlViewer.overlay; o.pausedTs = null; video.play(); o.pauseNext = true; return true; })()",
        );
        browser.wait_for(
            "the video paused on a frame",
            "video.paused && window.stackctlViewer.overlay.pausedTs !== null",
            Duration::from_secs(5),
        );
        // Its own result comes within a few milliseconds, if the detector ran on it.
        let deadline = Instant::now() + Duration::from_millis(600);
        while Instant::now() < deadline {
            let last = browser.evaluate(
                "(() => { const o = window.stackctlViewer.overlay; return o.last && o.last.exact && o.last.rtpTimestamp === o.pausedTs && o.last.boxes.length === 1 ? o.last : null; })()",
            );
            if !last.is_null() {
                // Let the compositor show the canvas drawn for it.
                browser.evaluate(
                    "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))",
                );
                return last;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("no frame with its own box within 40 tries");
}

/// The `<video>` element's box on the screen: (left, top, right, bottom), inclusive.
fn video_area(browser: &mut Browser) -> (usize, usize, usize, usize) {
    let r = browser.evaluate(
        "(() => { const r = video.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom, devicePixelRatio]; })()",
    );
    let v: Vec<f64> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(v[4], 1.0, "a scale factor of 1: {r}");
    (
        v[0] as usize,
        v[1] as usize,
        v[2] as usize - 1,
        v[3] as usize - 1,
    )
}

#[test]
fn chromium_draws_the_detectors_box_over_the_square_and_hides_it_when_toggled_off() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    // The square shows for a minute (the whole test); the detector looks every 10 ms.
    let vision = common::Vision::start("webrtc-boxes", "640x480", "60s:1s", "10ms", "");
    browser.open(&format!("http://127.0.0.1:{}/", vision.port));
    let viewer = browser.wait_for(
        "playing, with results on the detections channel",
        "window.stackctlViewer.stats.framesDecoded > 30 && window.stackctlViewer.overlay.channel === 'open' \
         && window.stackctlViewer.overlay.received > 10 && window.stackctlViewer",
        Duration::from_secs(20),
    );
    assert_eq!(
        viewer["overlay"]["events"][0]["class_name"], "cat",
        "{viewer:#}"
    );
    assert_eq!(vision.metric("webrtc_detection_channels"), Some(1.0));

    let area = video_area(&mut browser);
    // Chromium sometimes presents one more frame after pause() is called from the frame
    // callback (the square then lies a frame's move, about 10 px, off the box drawn for the
    // frame before): such a still is taken again, up to five times.
    let mut aligned = None;
    for attempt in 1..=5 {
        let last = pause_on_a_box(&mut browser);
        let shot = browser.screenshot();
        let drawn = shot
            .bounds(area, outline)
            .unwrap_or_else(|| panic!("no box outline on the screen; the page drew {last:#}"));
        // The square, looked for around the outline (the colour bars' edges blend into
        // orange elsewhere): an outline off the square finds it cut at this area's edge.
        let around = (
            drawn.0.saturating_sub(16).max(area.0),
            drawn.1.saturating_sub(16).max(area.1),
            (drawn.2 + 16).min(area.2),
            (drawn.3 + 16).min(area.3),
        );
        let square = shot
            .bounds(around, orange)
            .expect("the square on the screen");
        eprintln!("still {attempt}: square on screen {square:?}, outline {drawn:?}, result {last}");
        // The outline (2 px, centred on the box's edge) lies on the square's edge: within
        // 4 px (the detector's box is exact to a chroma sample, scaled to the screen).
        let near = |a: usize, b: usize| a.abs_diff(b) <= 4;
        if near(square.0, drawn.0)
            && near(square.1, drawn.1)
            && near(square.2, drawn.2)
            && near(square.3, drawn.3)
        {
            aligned = Some((shot, drawn));
            break;
        }
    }
    let (shot, drawn) = aligned.expect("the outline on the square's edges in one of five stills");
    // The outline is an outline: its pixels run along all four sides.
    let side = |a: (usize, usize, usize, usize)| shot.count(a, outline);
    let (l, t, r, b) = drawn;
    for (name, edge) in [
        ("left", (l, t, l + 2, b)),
        ("right", (r - 2, t, r, b)),
        ("top", (l, t, r, t + 2)),
        ("bottom", (l, b - 2, r, b)),
    ] {
        let run = if matches!(name, "left" | "right") {
            b - t
        } else {
            r - l
        };
        assert!(
            side(edge) >= run * 8 / 10,
            "{name} side: {} of {run}",
            side(edge)
        );
    }

    // Toggled off: no outline, the square still there; remembered across a reload.
    browser.evaluate("document.getElementById('boxes').click()");
    assert_eq!(
        browser.evaluate("localStorage.getItem('stackctl.boxes')"),
        "off"
    );
    let last = pause_on_a_box(&mut browser);
    let shot = browser.screenshot();
    assert!(
        shot.bounds(area, orange).is_some(),
        "the square is on the screen"
    );
    assert_eq!(
        shot.count(area, outline),
        0,
        "an outline with the boxes off: {last:#}"
    );
    browser.evaluate("location.reload()");
    browser.wait_for(
        "playing again",
        "window.stackctlViewer && window.stackctlViewer.stats.framesDecoded > 10",
        Duration::from_secs(20),
    );
    assert_eq!(
        browser.evaluate("document.getElementById('boxes').checked"),
        false
    );
}
