//! The one ICE candidate the tests' own peers offer: a host candidate for their loopback UDP
//! socket (no gathering, no STUN), so a connection is made on loopback at once.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::net::UdpSocket;

use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};

/// The host candidate of `socket`, ready for `add_local_candidate`.
pub fn loopback_host(socket: &UdpSocket) -> RTCIceCandidateInit {
    let local = socket.local_addr().unwrap();
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: local.ip().to_string(),
            port: local.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .unwrap();
    RTCIceCandidate::from(&candidate).to_json().unwrap()
}
