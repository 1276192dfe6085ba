//! DESCRIBE's answer: the SDP of the one H.264 stream (RFC 6184 §8.2.1; RFC 2326 Appendix C).

use std::fmt::Write as _;

use base64::Engine as _;

use crate::feed::CameraParams;

/// The RTP payload type of the video.
pub const PAYLOAD_TYPE: u8 = 96;

/// The media-level control of the one track, relative to the `Content-Base`.
pub const TRACK: &str = "trackID=0";

/// The session description of the stream. `session_id` is the `o=` line's id (the same for
/// every DESCRIBE of this server's life), `address` the server's address as the client
/// reached it.
pub fn describe(params: &CameraParams, session_id: u64, address: std::net::IpAddr) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let ip = if address.is_ipv4() { "IP4" } else { "IP6" };
    let unspecified = if address.is_ipv4() { "0.0.0.0" } else { "::" };
    let mut sdp = String::with_capacity(512);
    // `let _ =`: writing to a String cannot fail.
    let _ = write!(
        sdp,
        "v=0\r\n\
         o=- {session_id} 1 IN {ip} {address}\r\n\
         s=stackctl\r\n\
         c=IN {ip} {unspecified}\r\n\
         t=0 0\r\n\
         a=tool:stackctl {version}\r\n\
         a=range:npt=now-\r\n\
         a=control:*\r\n\
         m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\n\
         a=rtpmap:{PAYLOAD_TYPE} H264/90000\r\n\
         a=fmtp:{PAYLOAD_TYPE} packetization-mode=1;profile-level-id={plid};sprop-parameter-sets={sps},{pps}\r\n",
        version = env!("CARGO_PKG_VERSION"),
        plid = params.profile_level_id,
        sps = b64(&params.sps),
        pps = b64(&params.pps),
    );
    if let Some((w, h)) = params.size {
        let _ = write!(sdp, "a=x-dimensions:{w},{h}\r\n");
    }
    let _ = write!(sdp, "a=control:{TRACK}\r\n");
    sdp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_profile_and_carries_the_parameter_sets() {
        let params = CameraParams {
            sps: vec![0x67, 0x64, 0x00, 0x28, 0xac],
            pps: vec![0x68, 0xee, 0x3c, 0x80],
            profile_level_id: "640028".into(),
            size: Some((1920, 1080)),
        };
        let sdp = describe(&params, 42, "192.0.2.7".parse().unwrap());
        assert!(
            sdp.starts_with("v=0\r\no=- 42 1 IN IP4 192.0.2.7\r\n"),
            "{sdp}"
        );
        assert!(sdp.contains(
            "a=fmtp:96 packetization-mode=1;profile-level-id=640028;sprop-parameter-sets=Z2QAKKw=,aO48gA==\r\n"
        ), "{sdp}");
        assert!(
            sdp.contains("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"),
            "{sdp}"
        );
        assert!(sdp.contains("a=control:*\r\n"), "{sdp}");
        assert!(
            sdp.ends_with("a=x-dimensions:1920,1080\r\na=control:trackID=0\r\n"),
            "{sdp}"
        );
        assert!(describe(&params, 1, "::1".parse().unwrap()).contains("IN IP6 ::1"));
    }
}
