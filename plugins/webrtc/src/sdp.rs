//! Just enough SDP reading to judge an offer before building a connection for it: does it
//! receive video, and which of its H.264 formats can carry what the camera sends.

use stackctl_media::h264::Profile;

/// One H.264 format of an offer's first video section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H264Format {
    /// Its payload type.
    pub payload_type: u8,
    /// Its `a=fmtp` parameters, as offered.
    pub fmtp: String,
    /// Its `packetization-mode` (0 when absent).
    pub packetization_mode: u8,
    /// Its profile, from `profile-level-id` (Constrained Baseline 42001f when absent:
    /// RFC 6184's default is Baseline level 1.0; browsers treat it as constrained).
    pub profile: Option<Profile>,
}

/// Why an offer was refused before any connection was built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// Not SDP at all.
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// No video section that receives.
    #[error("the offer has no video to receive (add a recvonly video transceiver)")]
    NoVideo,
    /// Video, but no H.264 format that can carry the camera's stream.
    #[error(
        "the offer has no H.264 format with packetization-mode=1 that decodes the camera's {camera:?} profile (offered: {offered})"
    )]
    NoCodec {
        /// The camera's profile.
        camera: Profile,
        /// What the offer had.
        offered: String,
    },
}

/// The H.264 formats of the first video section that receives, in the offer's order of
/// preference.
pub fn video_h264(offer: &str) -> Result<Vec<H264Format>, OfferError> {
    let mut lines = offer.lines().map(str::trim_end);
    if lines.next() != Some("v=0") {
        return Err(OfferError::Malformed("it does not start with v=0".into()));
    }
    if !offer.lines().any(|l| l.starts_with("o=")) {
        return Err(OfferError::Malformed("no o= line".into()));
    }
    // Sections: split at m= lines.
    let mut sections: Vec<Vec<&str>> = Vec::new();
    for line in offer.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            sections.push(vec![line]);
        } else if let Some(section) = sections.last_mut() {
            section.push(line);
        }
    }
    let video = sections
        .iter()
        .find(|s| {
            let m = s[0];
            let port_nonzero = m.split(' ').nth(1).is_some_and(|p| p != "0");
            m.starts_with("m=video ")
                && port_nonzero
                && !s.iter().any(|l| *l == "a=sendonly" || *l == "a=inactive")
        })
        .ok_or(OfferError::NoVideo)?;
    let order: Vec<u8> = video[0]
        .split(' ')
        .skip(3)
        .filter_map(|pt| pt.parse().ok())
        .collect();
    let attr = |name: &str, pt: u8| -> Option<&str> {
        let prefix = format!("a={name}:{pt} ");
        video
            .iter()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map(str::trim)
    };
    Ok(order
        .into_iter()
        .filter(|pt| attr("rtpmap", *pt).is_some_and(|m| m.eq_ignore_ascii_case("H264/90000")))
        .map(|pt| {
            let fmtp = attr("fmtp", pt).unwrap_or("").to_owned();
            let param = |key: &str| {
                fmtp.split(';')
                    .filter_map(|kv| kv.trim().split_once('='))
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v.trim().to_owned())
            };
            H264Format {
                payload_type: pt,
                packetization_mode: param("packetization-mode")
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(0),
                profile: Profile::of_profile_level_id(
                    &param("profile-level-id").unwrap_or_else(|| "42e00a".to_owned()),
                ),
                fmtp,
            }
        })
        .collect())
}

/// The offered format to answer with for a camera of profile `camera`: the first with
/// packetization-mode 1 and the camera's own profile, else the first whose decoder decodes it.
pub fn choose(formats: &[H264Format], camera: Profile) -> Result<&H264Format, OfferError> {
    let usable = || formats.iter().filter(|f| f.packetization_mode == 1);
    usable()
        .find(|f| f.profile == Some(camera))
        .or_else(|| usable().find(|f| f.profile.is_some_and(|p| p.decodes(camera))))
        .ok_or_else(|| OfferError::NoCodec {
            camera,
            offered: if formats.is_empty() {
                "no H.264".to_owned()
            } else {
                formats
                    .iter()
                    .map(|f| format!("{} [{}]", f.payload_type, f.fmtp))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The video section of a Chromium offer, trimmed.
    const CHROME: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 102 103 104 106 108 112\r\n\
        a=recvonly\r\n\
        a=rtpmap:96 VP8/90000\r\n\
        a=rtpmap:102 H264/90000\r\n\
        a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
        a=rtpmap:103 rtx/90000\r\n\
        a=rtpmap:104 H264/90000\r\n\
        a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n\
        a=rtpmap:106 H264/90000\r\n\
        a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
        a=rtpmap:108 H264/90000\r\n\
        a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\n\
        a=rtpmap:112 H264/90000\r\n\
        a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032\r\n";

    #[test]
    fn picks_the_camera_profile_then_a_decoder_that_decodes_it() {
        let formats = video_h264(CHROME).unwrap();
        assert_eq!(
            formats.iter().map(|f| f.payload_type).collect::<Vec<_>>(),
            [102, 104, 106, 108, 112]
        );
        assert_eq!(
            choose(&formats, Profile::ConstrainedBaseline)
                .unwrap()
                .payload_type,
            106
        );
        assert_eq!(choose(&formats, Profile::High).unwrap().payload_type, 112);
        assert_eq!(choose(&formats, Profile::Main).unwrap().payload_type, 108);
        assert_eq!(
            choose(&formats, Profile::ConstrainedHigh)
                .unwrap()
                .payload_type,
            112
        );
        let baseline_only: Vec<H264Format> = formats[..1].to_vec();
        let e = choose(&baseline_only, Profile::High).unwrap_err();
        assert!(e.to_string().contains("102 [level-asymmetry"), "{e}");
    }

    #[test]
    fn refuses_what_is_not_an_offer_for_video() {
        assert_eq!(
            video_h264("hello").unwrap_err(),
            OfferError::Malformed("it does not start with v=0".into())
        );
        let audio =
            "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
        assert_eq!(video_h264(audio).unwrap_err(), OfferError::NoVideo);
        let sending = CHROME.replace("a=recvonly", "a=sendonly");
        assert_eq!(video_h264(&sending).unwrap_err(), OfferError::NoVideo);
        let vp8 = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
        assert!(video_h264(vp8).unwrap().is_empty());
    }
}
