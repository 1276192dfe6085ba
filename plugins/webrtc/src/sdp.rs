//! Just enough SDP reading to judge an offer before building a connection for it: does it
//! receive video, which of its H.264 formats to answer with for what the camera sends, and
//! which header extensions it offers.

use stackctl_media::h264::Profile;

use crate::config::ProfilePolicy;

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
    /// Video, but no H.264 format with packetization-mode 1 (or, with `profile_policy =
    /// "strict"`, none whose profile decodes the camera's).
    #[error(
        "the offer has no H.264 format with packetization-mode=1{} (offered: {offered})",
        if *strict { format!(" that decodes the camera's {camera:?} profile") } else { String::new() }
    )]
    NoCodec {
        /// Whether the strict policy refused it.
        strict: bool,
        /// The camera's profile.
        camera: Profile,
        /// What the offer had.
        offered: String,
    },
}

/// What an offer's first receiving video section says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoOffer {
    /// Its H.264 formats, in the offer's order of preference.
    pub formats: Vec<H264Format>,
    /// Its header extensions: `(id, uri)`.
    pub extensions: Vec<(u8, String)>,
}

impl VideoOffer {
    /// The id the offer gives the header extension `uri`.
    pub fn extension(&self, uri: &str) -> Option<u8> {
        self.extensions
            .iter()
            .find(|(_, u)| u == uri)
            .map(|(id, _)| *id)
    }
}

/// The H.264 formats of the first video section that receives, in the offer's order of
/// preference.
pub fn video_h264(offer: &str) -> Result<Vec<H264Format>, OfferError> {
    Ok(read_video(offer)?.formats)
}

/// The first video section that receives: its H.264 formats and header extensions.
pub fn read_video(offer: &str) -> Result<VideoOffer, OfferError> {
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
    // Session-level extmaps apply to every section; the section's own come after them.
    let extmap = |line: &str| -> Option<(u8, String)> {
        let rest = line.strip_prefix("a=extmap:")?;
        let (id, rest) = rest.split_once(' ')?;
        // "7/sendonly": the direction is not ours to check; one-byte ids are 1-14.
        let id: u8 = id.split('/').next()?.parse().ok()?;
        let uri = rest.split_whitespace().next()?;
        (1..=14).contains(&id).then(|| (id, uri.to_owned()))
    };
    let session_extmaps = offer
        .lines()
        .map(str::trim_end)
        .take_while(|l| !l.starts_with("m="))
        .filter_map(extmap);
    let extensions = session_extmaps
        .chain(video.iter().copied().filter_map(extmap))
        .collect();
    let formats = order
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
        .collect();
    Ok(VideoOffer {
        formats,
        extensions,
    })
}

/// How the chosen format fits the camera's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// The camera's own profile.
    Exact,
    /// A profile whose decoder decodes the camera's (High for Main, anything for Constrained
    /// Baseline).
    Decodes,
    /// A profile whose decoder is not required to decode the camera's: the stream is sent all
    /// the same (browsers' software decoders play it), and the mismatch is counted.
    Mismatch,
}

/// How far up a profile is, for "the highest offered": High above Main above Baseline.
fn rank(profile: Option<Profile>) -> u8 {
    match profile {
        Some(Profile::High) => 5,
        Some(Profile::ConstrainedHigh) => 4,
        Some(Profile::Main) => 3,
        Some(Profile::Baseline) => 2,
        Some(Profile::ConstrainedBaseline) => 1,
        None => 0,
    }
}

/// The offered format to answer with for a camera of profile `camera`, and how it fits. Only
/// formats with packetization-mode 1 count. The camera's own profile first; then, with
/// [`ProfilePolicy::Best`], the highest offered profile (the first of equals); with
/// [`ProfilePolicy::Strict`], the first whose decoder decodes the camera's, or none.
pub fn choose_by(
    formats: &[H264Format],
    camera: Profile,
    policy: ProfilePolicy,
) -> Result<(&H264Format, Fit), OfferError> {
    let usable = || formats.iter().filter(|f| f.packetization_mode == 1);
    let fit = |f: &H264Format| match f.profile {
        Some(p) if p == camera => Fit::Exact,
        Some(p) if p.decodes(camera) => Fit::Decodes,
        _ => Fit::Mismatch,
    };
    let chosen = usable()
        .find(|f| f.profile == Some(camera))
        .or_else(|| match policy {
            ProfilePolicy::Strict => {
                usable().find(|f| f.profile.is_some_and(|p| p.decodes(camera)))
            }
            // max_by_key keeps the last of equals: reversed, the first.
            ProfilePolicy::Best => usable().rev().max_by_key(|f| rank(f.profile)),
        });
    chosen
        .map(|f| (f, fit(f)))
        .ok_or_else(|| OfferError::NoCodec {
            strict: policy == ProfilePolicy::Strict,
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

/// [`choose_by`] with the strict policy: the camera's profile, else a decoder that decodes it.
pub fn choose(formats: &[H264Format], camera: Profile) -> Result<&H264Format, OfferError> {
    choose_by(formats, camera, ProfilePolicy::Strict).map(|(f, _)| f)
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

    /// Debian's Chromium: no High profile offered.
    const DEBIAN_CHROMIUM: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=extmap-allow-mixed\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 102 104 108 110 45\r\n\
        a=extmap:1 urn:ietf:params:rtp-hdrext:toffset\r\n\
        a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n\
        a=extmap:13/recvonly http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time\r\n\
        a=extmap:15 urn:example:two-byte-only\r\n\
        a=recvonly\r\n\
        a=rtpmap:102 H264/90000\r\n\
        a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
        a=rtpmap:104 H264/90000\r\n\
        a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
        a=rtpmap:108 H264/90000\r\n\
        a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\n\
        a=rtpmap:110 H264/90000\r\n\
        a=fmtp:110 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=f4001f\r\n\
        a=rtpmap:45 AV1/90000\r\n";

    #[test]
    fn best_answers_the_highest_offered_profile_and_says_how_it_fits() {
        use ProfilePolicy::*;
        let offer = read_video(DEBIAN_CHROMIUM).unwrap();
        let f = &offer.formats;
        let pick =
            |camera, policy| choose_by(f, camera, policy).map(|(f, fit)| (f.payload_type, fit));
        // A High-profile camera: Main is the highest offered; the stream goes all the same.
        assert_eq!(pick(Profile::High, Best), Ok((108, Fit::Mismatch)));
        assert!(matches!(
            pick(Profile::High, Strict),
            Err(OfferError::NoCodec { strict: true, .. })
        ));
        assert_eq!(pick(Profile::Main, Best), Ok((108, Fit::Exact)));
        assert_eq!(
            pick(Profile::ConstrainedBaseline, Best),
            Ok((104, Fit::Exact))
        );
        assert_eq!(
            pick(Profile::ConstrainedBaseline, Strict),
            Ok((104, Fit::Exact))
        );
        // Only formats with packetization-mode 1 count.
        let mode0: Vec<H264Format> = f
            .iter()
            .map(|f| H264Format {
                packetization_mode: 0,
                ..f.clone()
            })
            .collect();
        let e = choose_by(&mode0, Profile::High, Best).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "the offer has no H.264 format with packetization-mode=1 (offered: 102"
            ),
            "{e}"
        );
        let chrome = video_h264(CHROME).unwrap();
        assert_eq!(
            choose_by(&chrome, Profile::Main, Best).map(|(f, fit)| (f.payload_type, fit)),
            Ok((108, Fit::Exact))
        );
        // High decodes Main: no mismatch when High is the best there is.
        let high_only: Vec<H264Format> = chrome[4..].to_vec();
        assert_eq!(
            choose_by(&high_only, Profile::Main, Best).map(|(f, fit)| (f.payload_type, fit)),
            Ok((112, Fit::Decodes))
        );
    }

    #[test]
    fn header_extensions_are_read_with_their_ids() {
        let offer = read_video(DEBIAN_CHROMIUM).unwrap();
        assert_eq!(
            offer.extension(stackctl_media::rtp::PLAYOUT_DELAY_URI),
            Some(6)
        );
        assert_eq!(
            offer.extension(stackctl_media::rtp::ABS_CAPTURE_TIME_URI),
            Some(13)
        );
        assert_eq!(
            offer.extension("urn:example:two-byte-only"),
            None,
            "id 15 is not one-byte"
        );
        assert_eq!(read_video(CHROME).unwrap().extensions, []);
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
