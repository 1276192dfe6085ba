//! WHIP egress against a WHIP endpoint written here (hyper, and webrtc-rs's sans-IO `rtc` as
//! the receiving peer, on loopback), with the real stackctl, the sink and camsim:
//!
//! - the endpoint refuses (400, 503), never answers, redirects (307), then accepts: the
//!   publisher comes through each without a restart, and the endpoint receives the camera's
//!   access units byte for byte from an IDR;
//! - the endpoint drops ICE: the old session is deleted and a new one published;
//! - the endpoint disappears (connections refused) and comes back: published again;
//! - stackctl stops: the session is deleted;
//! - a wrong token and an unreachable host are clear errors in `GET /publish` and the
//!   metrics, and the sink carries on;
//! - https: an endpoint whose certificate a private CA signed (made here with `rcgen`) takes a
//!   publication that trusts the CA (`ca_file`); without it the certificate is not trusted, at
//!   a host name the certificate does not name it is refused, and a redirect from https to
//!   http is not followed.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
#[path = "common/whip_endpoint.rs"]
mod whip_endpoint;

use std::time::Duration;

use common::{Streaming, assert_matches_camera};
use stackctl_tests::plugins::{http_get, poll};
use whip_endpoint::{Endpoint, Mode, Session};

const WAIT: Duration = Duration::from_secs(30);

fn publications(stream: &Streaming) -> Vec<serde_json::Value> {
    let (code, body) = http_get(stream.port, "/publish");
    assert_eq!(code, 200, "/publish: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["publications"].as_array().unwrap().clone()
}

fn frames_of(session: &Session, what: &str) -> Vec<Vec<u8>> {
    let frames = session.frames.lock().unwrap();
    for (i, f) in frames.iter().enumerate() {
        assert!(f.complete, "{what}: frame {i} lost packets on loopback");
    }
    frames.iter().map(|f| f.annexb.clone()).collect()
}

#[test]
fn publishes_the_camera_and_recovers_from_every_failure() {
    let mut endpoint = Endpoint::start(Some("t0k"));
    endpoint.script(&[
        Mode::Status(400),
        Mode::Status(503),
        Mode::Hang,
        Mode::Redirect("/cam2/whip".to_owned()),
    ]);
    let url = endpoint.url("/cam/whip");
    let stream = Streaming::start(
        "whip-publish",
        &["--gop", "15"],
        &format!(
            r#"disconnect_timeout = "3s"
failed_timeout = "1s"

[[plugins.streaming.publish]]
url = "{url}?key=secret"
token = "t0k"
timeout = "1s"
backoff = "100ms"
backoff_max = "400ms"
"#
        ),
    );
    // Refused twice, no answer, redirected, then accepted at the redirect's target.
    let first = endpoint.wait_frames(1, 45, WAIT);
    {
        let state = endpoint.shared.state.lock().unwrap();
        let paths: Vec<&str> = state.posts.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/cam/whip",
                "/cam/whip",
                "/cam/whip",
                "/cam/whip",
                "/cam2/whip"
            ]
        );
        for post in &state.posts {
            assert_eq!(post.authorization.as_deref(), Some("Bearer t0k"));
            assert_eq!(post.content_type.as_deref(), Some("application/sdp"));
            assert!(post.offer.contains("a=sendonly"), "{}", post.offer);
            assert!(post.offer.contains("H264/90000"), "{}", post.offer);
            assert!(
                post.offer.contains("packetization-mode=1"),
                "{}",
                post.offer
            );
        }
    }
    let status = &publications(&stream)[0];
    assert_eq!(status["state"], "live", "{status}");
    assert_eq!(status["url"], url, "shown without its query: {status}");
    // Three offers again after failures (400, 503, no answer; the redirect is followed within
    // its offer), more if the camera's first SPS came later than the publication waits for it
    // before its first offer (an offer then fails for want of it).
    assert!(status["reconnects"].as_u64() >= Some(3), "{status}");
    assert_eq!(status["error"], serde_json::Value::Null, "{status}");
    let (code, health) = http_get(stream.port, "/health");
    assert_eq!(code, 200, "{health}");
    assert!(
        health.contains("\"whip_publications\":1")
            && health.contains("\"whip_publications_live\":1"),
        "{health}"
    );
    assert_eq!(
        stream.metric(&format!("whip_publish_state{{url=\"{url}\"}}")),
        Some(3.0)
    );
    // Its viewer slot is not taken.
    assert_eq!(stream.metric("streaming_active_clients"), Some(0.0));

    // The endpoint drops ICE: the session is deleted, and another one published.
    first.drop_ice();
    let second = endpoint.wait_frames(2, 30, WAIT);
    assert!(
        endpoint
            .shared
            .state
            .lock()
            .unwrap()
            .deletes
            .contains(&"/cam2/session/1".to_owned()),
        "the dropped session is deleted (its Location resolved against the redirect)"
    );

    // The endpoint disappears: a clear error while it is gone; published again once it is back.
    endpoint.disappear();
    let error = poll("the publication failing", WAIT, || {
        let p = &publications(&stream)[0];
        match p["error"].as_str() {
            Some(e) if e.contains("cannot connect") => Ok(e.to_owned()),
            _ => Err(p.to_string()),
        }
    });
    eprintln!("while the endpoint is gone: {error}");
    assert_eq!(
        stream.metric(&format!("whip_publish_state{{url=\"{url}\"}}")),
        Some(4.0),
        "retrying"
    );
    endpoint.come_back();
    let third = endpoint.wait_frames(3, 30, WAIT);
    let bytes = stream
        .metric(&format!("whip_publish_bytes_sent_total{{url=\"{url}\"}}"))
        .unwrap();
    assert!(bytes > 10_000.0, "{bytes} bytes sent");
    let reconnects = stream
        .metric(&format!("whip_publish_reconnects_total{{url=\"{url}\"}}"))
        .unwrap();
    assert!(reconnects >= 6.0, "{reconnects} reconnects");

    // Stopping stackctl deletes the session.
    let camera = stream.stop();
    endpoint.shared.wait("the DELETE on stop", WAIT, |s| {
        s.deletes
            .contains(&"/cam/session/3".to_owned())
            .then_some(())
    });
    assert_matches_camera(&frames_of(&first, "session 1"), &camera, "session 1");
    assert_matches_camera(&frames_of(&second, "session 2"), &camera, "session 2");
    assert_matches_camera(&frames_of(&third, "session 3"), &camera, "session 3");
}

#[test]
fn a_wrong_token_or_an_unreachable_host_is_an_error_in_status_not_a_crash() {
    let endpoint = Endpoint::start(Some("right"));
    let url = endpoint.url("/cam/whip");
    let stream = Streaming::start(
        "whip-errors",
        &[],
        &format!(
            r#"
[[plugins.streaming.publish]]
url = "{url}"
token = "wrong"
timeout = "1s"
backoff = "100ms"
backoff_max = "200ms"

[[plugins.streaming.publish]]
url = "http://127.0.0.1:1/whip"
timeout = "1s"
backoff = "100ms"
backoff_max = "200ms"

[[plugins.streaming.publish]]
url = "http://127.0.0.1:1/off"
enabled = false
"#
        ),
    );
    let list = poll("both publications failing", WAIT, || {
        let list = publications(&stream);
        let failing = list[..2]
            .iter()
            .all(|p| p["error"].is_string() && p["reconnects"].as_u64() >= Some(2));
        if failing {
            Ok(list)
        } else {
            Err(format!("{list:?}"))
        }
    });
    let token_error = list[0]["error"].as_str().unwrap();
    assert!(
        token_error.contains("401") && token_error.contains("publish.token"),
        "{token_error}"
    );
    let host_error = list[1]["error"].as_str().unwrap();
    assert!(
        host_error.contains("cannot connect to 127.0.0.1:1"),
        "{host_error}"
    );
    assert_eq!(list[2]["state"], "disabled");
    assert_eq!(
        stream.metric("whip_publish_state{url=\"http://127.0.0.1:1/off\"}"),
        Some(0.0)
    );
    assert_eq!(stream.metric("whip_publications_live"), Some(0.0));
    // The endpoint refused every offer; nothing was accepted; the sink still serves.
    assert!(endpoint.shared.state.lock().unwrap().sessions.is_empty());
    let (code, health) = http_get(stream.port, "/health");
    assert_eq!(code, 200, "{health}");
    let (code, status) = http_get(stream.port, "/api/status");
    assert_eq!(code, 200);
    assert!(!status.contains("\"failed\""), "{status}");
    stream.stop();
}

/// A private CA and a certificate it signed for `localhost` (not for 127.0.0.1).
struct Pki {
    ca_pem: String,
    chain_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "stackctl test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        chain_pem: format!("{}{}", leaf.pem(), ca.pem()),
        key_pem: key.serialize_pem(),
    }
}

#[test]
fn publishes_over_https_to_a_private_ca_and_refuses_what_it_cannot_trust() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let ca_file = ca_file.display().to_string();
    let secure = Endpoint::start_tls(Some("t0k"), &pki.chain_pem, &pki.key_pem);
    // Redirects every offer to plain http, where nothing may arrive.
    let plain = Endpoint::start(None);
    let downgrading = Endpoint::start_tls(None, &pki.chain_pem, &pki.key_pem);
    downgrading.script(&vec![Mode::Redirect(plain.url("/cam/whip")); 1000]);
    let trusted = secure.url_at("localhost", "/cam/whip");
    let untrusted = secure.url_at("localhost", "/untrusted/whip");
    let by_ip = secure.url("/by-ip/whip");
    let down = downgrading.url_at("localhost", "/cam/whip");
    let stream = Streaming::start(
        "whip-https",
        &["--gop", "15"],
        &format!(
            r#"
[[plugins.streaming.publish]]
url = "{trusted}"
token = "t0k"
ca_file = "{ca_file}"
timeout = "2s"
backoff = "100ms"
backoff_max = "400ms"

[[plugins.streaming.publish]]
url = "{untrusted}"
timeout = "2s"
backoff = "100ms"
backoff_max = "200ms"

[[plugins.streaming.publish]]
url = "{by_ip}"
ca_file = "{ca_file}"
timeout = "2s"
backoff = "100ms"
backoff_max = "200ms"

[[plugins.streaming.publish]]
url = "{down}"
ca_file = "{ca_file}"
timeout = "2s"
backoff = "100ms"
backoff_max = "200ms"
"#
        ),
    );
    let session = secure.wait_frames(1, 30, WAIT);
    let list = poll("the three refused publications failing", WAIT, || {
        let list = publications(&stream);
        let failing = list[1..]
            .iter()
            .all(|p| p["error"].is_string() && p["reconnects"].as_u64() >= Some(1));
        if failing && list[0]["state"] == "live" {
            Ok(list)
        } else {
            Err(format!("{list:?}"))
        }
    });
    assert_eq!(list[0]["url"], trusted);
    assert_eq!(list[0]["error"], serde_json::Value::Null, "{}", list[0]);
    let error = |i: usize| list[i]["error"].as_str().unwrap().to_owned();
    eprintln!(
        "untrusted: {}\nby IP: {}\ndowngrade: {}",
        error(1),
        error(2),
        error(3)
    );
    assert!(
        error(1).contains("certificate is not trusted") && error(1).contains("ca_file"),
        "{}",
        error(1)
    );
    assert!(error(2).contains("not valid for 127.0.0.1"), "{}", error(2));
    assert!(error(3).contains("from https to http"), "{}", error(3));
    for p in &list[1..] {
        // Between two offers, or making one.
        assert!(p["state"] == "retrying" || p["state"] == "offering", "{p}");
    }
    {
        // Only the trusted publication's offers got through the handshake; nothing went to
        // plain http.
        let state = secure.shared.state.lock().unwrap();
        assert!(
            state.posts.iter().all(|p| p.path == "/cam/whip"),
            "{:?}",
            state.posts.iter().map(|p| &p.path).collect::<Vec<_>>()
        );
        assert_eq!(state.posts[0].authorization.as_deref(), Some("Bearer t0k"));
        assert!(!downgrading.shared.state.lock().unwrap().posts.is_empty());
        assert!(plain.shared.state.lock().unwrap().posts.is_empty());
    }
    // Stopping deletes the session, over https.
    let camera = stream.stop();
    secure.shared.wait("the DELETE on stop", WAIT, |s| {
        s.deletes
            .contains(&"/cam/session/1".to_owned())
            .then_some(())
    });
    assert_matches_camera(
        &frames_of(&session, "https session"),
        &camera,
        "https session",
    );
}
