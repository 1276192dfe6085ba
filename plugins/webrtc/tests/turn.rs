//! WHIP egress through a TURN relay: a real TURN server (coturn's `turnserver`, started here on
//! loopback with a static user), the real stackctl, the sink and camsim, and the WHIP endpoint
//! of `common/whip_endpoint.rs`.
//!
//! The publication has `ice_transport_policy = "relay"`: its offer carries the relay candidate
//! only, so the endpoint can reach the sink through the TURN server alone, and the sink reaches
//! the endpoint only from its allocation. The endpoint still receives the camera's access
//! units byte for byte from an IDR; a dropped connection is published again on a new allocation,
//! and every allocation is released (coturn's log says so). Wrong credentials are a clear error
//! in `GET /publish`. A relay driven by hand shows its refresh timer and coturn granting it.
//!
//! Skipped (loudly) without `turnserver` (`apt-get install coturn`; `.ci/run` installs it).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
#[path = "common/whip_endpoint.rs"]
mod whip_endpoint;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Streaming, assert_matches_camera};
use stackctl_tests::plugins::{http_get, poll};
use stackctl_tests::up::free_port;
use whip_endpoint::Endpoint;

const WAIT: Duration = Duration::from_secs(30);
/// What coturn logs when an allocation is released.
const RELEASED: &str = "refreshed, realm=<stackctl>, username=<u>, lifetime=0";

/// coturn on 127.0.0.1, relaying on 127.0.0.1 between `min_port` and `max_port`; killed on drop.
struct Turn {
    child: Child,
    log: tempfile::NamedTempFile,
    port: u16,
    relay_ports: (u16, u16),
}

impl Turn {
    fn start(test: &str) -> Option<Self> {
        if Command::new("turnserver")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!("SKIPPED: {test}: turnserver not installed (apt-get install coturn)");
            return None;
        }
        let port = free_port();
        // A relay range of its own, away from the ephemeral ports and from `port`.
        let min = 20_000 + (port % 100) * 100;
        let relay_ports = (min, min + 99);
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let child = Command::new("turnserver")
            .args([
                "-n",
                "--log-file",
                "stdout",
                "--no-cli",
                "--no-tls",
                "--no-dtls",
            ])
            .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
            .args(["--listening-port", &port.to_string()])
            .args(["--min-port", &relay_ports.0.to_string()])
            .args(["--max-port", &relay_ports.1.to_string()])
            .args(["--lt-cred-mech", "--user", "u:p", "--realm", "stackctl"])
            // The endpoint is on loopback too.
            .arg("--allow-loopback-peers")
            // Its log says what became of each allocation.
            .arg("--verbose")
            .stdout(log.reopen().expect("the log file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start turnserver");
        Some(Self {
            child,
            log,
            port,
            relay_ports,
        })
    }
}

impl Turn {
    /// Lines of its log containing `text`.
    fn logged(&self, text: &str) -> usize {
        std::fs::read_to_string(self.log.path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(text))
            .count()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn publications(stream: &Streaming) -> Vec<serde_json::Value> {
    let (code, body) = http_get(stream.port, "/publish");
    assert_eq!(code, 200, "/publish: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["publications"].as_array().unwrap().clone()
}

/// The `typ` and address of each candidate (component 1: RTP and RTCP are multiplexed) in an
/// SDP.
fn candidates(sdp: &str) -> Vec<(String, SocketAddr)> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a=candidate:"))
        .map(|c| c.split_whitespace().collect::<Vec<&str>>())
        .filter(|f| f[1] == "1")
        .map(|f| {
            let addr = SocketAddr::new(f[4].parse().unwrap(), f[5].parse().unwrap());
            (f[7].to_owned(), addr)
        })
        .collect()
}

#[test]
fn publishes_through_a_turn_relay_only() {
    let Some(turn) = Turn::start("publishes_through_a_turn_relay_only") else {
        return;
    };
    let endpoint = Endpoint::start(None);
    let url = endpoint.url("/cam/whip");
    // Until coturn listens, allocations fail and the publication offers again.
    let stream = Streaming::start(
        "whip-turn",
        &["--gop", "15"],
        &format!(
            r#"
[[plugins.streaming.publish]]
url = "{url}"
ice_servers = ["turn:127.0.0.1:{port}?transport=udp"]
turn_username = "u"
turn_password = "p"
ice_transport_policy = "relay"
timeout = "2s"
backoff = "100ms"
backoff_max = "400ms"
"#,
            port = turn.port
        ),
    );
    let first = endpoint.wait_frames(1, 45, WAIT);
    let relayed = |n: usize| {
        let offer = endpoint.shared.state.lock().unwrap().posts[n].offer.clone();
        let offered = candidates(&offer);
        assert_eq!(offered.len(), 1, "one candidate, the relay's: {offer}");
        let (typ, relayed) = offered[0].clone();
        assert_eq!(typ, "relay", "{offer}");
        assert_eq!(relayed.ip().to_string(), "127.0.0.1");
        assert!(
            (turn.relay_ports.0..=turn.relay_ports.1).contains(&relayed.port()),
            "the relayed address is coturn's ({:?}): {relayed}",
            turn.relay_ports
        );
        relayed
    };
    let posts = endpoint.shared.state.lock().unwrap().posts.len();
    let first_relayed = relayed(posts - 1);

    // The endpoint drops ICE: published again, on a new allocation.
    first.drop_ice();
    let second = endpoint.wait_frames(2, 30, WAIT);
    let posts = endpoint.shared.state.lock().unwrap().posts.len();
    assert_ne!(
        relayed(posts - 1),
        first_relayed,
        "each offer allocates afresh"
    );
    // The first connection's allocation was released when it went.
    poll("the first allocation released", WAIT, || {
        let n = turn.logged(RELEASED);
        if n >= 1 {
            Ok(())
        } else {
            Err(format!("{n} released"))
        }
    });
    let status = &publications(&stream)[0];
    assert_eq!(status["state"], "live", "{status}");
    let posts = endpoint.shared.state.lock().unwrap().posts.len();
    assert_eq!(
        status["relay"],
        relayed(posts - 1).to_string(),
        "GET /publish shows the relayed address: {status}"
    );
    assert!(
        stream
            .metric(&format!("whip_publish_bytes_sent_total{{url=\"{url}\"}}"))
            .unwrap()
            > 10_000.0
    );
    let camera = stream.stop();
    // Stopping releases the second allocation.
    poll("both allocations released", WAIT, || {
        let n = turn.logged(RELEASED);
        if n >= 2 {
            Ok(())
        } else {
            Err(format!("{n} released"))
        }
    });
    for (session, what) in [(&first, "session 1"), (&second, "session 2")] {
        let frames = session.frames.lock().unwrap();
        for (i, f) in frames.iter().enumerate() {
            assert!(f.complete, "{what}: frame {i} lost packets on loopback");
        }
        let received: Vec<Vec<u8>> = frames.iter().map(|f| f.annexb.clone()).collect();
        assert_matches_camera(&received, &camera, what);
    }
}

#[test]
fn wrong_turn_credentials_are_an_error_in_status() {
    let Some(turn) = Turn::start("wrong_turn_credentials_are_an_error_in_status") else {
        return;
    };
    let endpoint = Endpoint::start(None);
    let url = endpoint.url("/cam/whip");
    let stream = Streaming::start(
        "whip-turn-refused",
        &[],
        &format!(
            r#"
[[plugins.streaming.publish]]
url = "{url}"
ice_servers = ["turn:127.0.0.1:{port}"]
turn_username = "u"
turn_password = "wrong"
ice_transport_policy = "relay"
timeout = "2s"
backoff = "100ms"
backoff_max = "200ms"
"#,
            port = turn.port
        ),
    );
    let error = poll("the publication failing", WAIT, || {
        let p = &publications(&stream)[0];
        match p["error"].as_str() {
            Some(e) if e.contains("refused the allocation") => Ok(e.to_owned()),
            _ => Err(p.to_string()),
        }
    });
    assert!(
        error.contains(&format!("127.0.0.1:{}", turn.port)),
        "{error}"
    );
    // Nothing was offered: the allocation comes first.
    assert!(endpoint.shared.state.lock().unwrap().posts.is_empty());
    stream.stop();
}

#[test]
fn a_relay_refreshes_its_allocation_on_its_timers() {
    use sink_webrtc::publish::relay::{Relay, TurnServer};
    let Some(turn) = Turn::start("a_relay_refreshes_its_allocation_on_its_timers") else {
        return;
    };
    let server = TurnServer {
        server: format!("127.0.0.1:{}", turn.port),
        username: "u".to_owned(),
        password: "p".to_owned(),
    };
    // Until coturn listens, allocations fail.
    let mut relay = poll("an allocation", WAIT, || {
        Relay::allocate(&server, Duration::from_secs(1)).map_err(|e| e.to_string())
    });
    relay.send_pending();
    let start = Instant::now();
    let due = relay.next_wake().expect("a refresh is scheduled");
    // coturn grants 600 s; the client refreshes well within it (permissions every 120 s, the
    // allocation at half its lifetime).
    assert!(
        due > start + Duration::from_secs(60) && due < start + Duration::from_secs(301),
        "next refresh in {:?}",
        due - start
    );
    // Its timers as the worker runs them, 301 s on: the allocation is refreshed for 600 s more.
    let later = start + Duration::from_secs(301);
    relay.timeout(later);
    relay.send_pending();
    poll("the refresh", WAIT, || {
        relay.read(Instant::now(), |_, _| {});
        let n = turn.logged("refreshed, realm=<stackctl>, username=<u>, lifetime=600");
        if n >= 1 {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    });
    relay.send_pending();
    // Not due again at once: scheduled from the server's answer.
    assert!(
        relay
            .next_wake()
            .is_some_and(|t| t > Instant::now() + Duration::from_secs(60)),
        "the next refresh is minutes away"
    );
    relay.close(Instant::now());
    poll("the release", WAIT, || {
        let n = turn.logged(RELEASED);
        if n >= 1 {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    });
}

#[test]
fn with_every_candidate_the_relay_is_offered_besides_the_host() {
    let Some(turn) = Turn::start("with_every_candidate_the_relay_is_offered_besides_the_host")
    else {
        return;
    };
    let endpoint = Endpoint::start(None);
    let url = endpoint.url("/cam/whip");
    let stream = Streaming::start(
        "whip-turn-all",
        &["--gop", "15"],
        &format!(
            r#"
[[plugins.streaming.publish]]
url = "{url}"
ice_servers = ["turn:127.0.0.1:{port}"]
turn_username = "u"
turn_password = "p"
timeout = "2s"
backoff = "100ms"
backoff_max = "400ms"
"#,
            port = turn.port
        ),
    );
    let session = endpoint.wait_frames(1, 30, WAIT);
    let offer = {
        let state = endpoint.shared.state.lock().unwrap();
        state.posts.last().unwrap().offer.clone()
    };
    let mut types: Vec<String> = candidates(&offer).into_iter().map(|(t, _)| t).collect();
    types.sort();
    types.dedup();
    assert_eq!(types, ["host", "relay"], "{offer}");
    let camera = stream.stop();
    let received: Vec<Vec<u8>> = session
        .frames
        .lock()
        .unwrap()
        .iter()
        .map(|f| f.annexb.clone())
        .collect();
    assert_matches_camera(&received, &camera, "host and relay offered");
}
