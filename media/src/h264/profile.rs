//! H.264 profiles as SDP names them: the `profile-level-id` of RFC 6184 §8.1, what a
//! decoder of one profile can decode, and the profile of a camera's SPS. A WebRTC answer and an
//! RTSP `DESCRIBE` both name the camera's stream this way.

use super::{NalHeader, NalType};

/// The H.264 profiles a WebRTC answer can name (RFC 6184 §8.1; RFC 6184's table of
/// `profile_idc` and constraint flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Constrained Baseline: what every WebRTC endpoint decodes.
    ConstrainedBaseline,
    /// Baseline.
    Baseline,
    /// Main.
    Main,
    /// Constrained High.
    ConstrainedHigh,
    /// High.
    High,
}

impl Profile {
    /// Classifies the first two bytes of a `profile-level-id` (profile_idc, constraint
    /// flags), as in an SPS's bytes 1 and 2. `None` for profiles WebRTC does not negotiate.
    pub fn classify(profile_idc: u8, constraints: u8) -> Option<Self> {
        let cs0 = constraints & 0x80 != 0;
        let cs1 = constraints & 0x40 != 0;
        let cs3 = constraints & 0x10 != 0;
        let cs4_cs5 = constraints & 0x0c == 0x0c;
        Some(match profile_idc {
            // Baseline with constraint_set1 (or Main-compatible): Constrained Baseline.
            0x42 if cs1 => Self::ConstrainedBaseline,
            0x42 => Self::Baseline,
            0x4d if cs0 => Self::ConstrainedBaseline,
            0x4d => Self::Main,
            0x58 if cs0 && cs1 => Self::ConstrainedBaseline,
            0x58 if cs0 => Self::Baseline,
            0x64 if cs4_cs5 && !cs3 => Self::ConstrainedHigh,
            0x64 => Self::High,
            _ => return None,
        })
    }

    /// The profile of a `profile-level-id` hex string (`"42e01f"`).
    pub fn of_profile_level_id(hex: &str) -> Option<Self> {
        let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        if hex.len() != 6 {
            return None;
        }
        Self::classify(byte(0)?, byte(2)?)
    }

    /// Whether a decoder of `self` decodes a stream of `stream`: every profile decodes
    /// Constrained Baseline, High decodes Main and Constrained High.
    pub fn decodes(self, stream: Profile) -> bool {
        use Profile::*;
        self == stream
            || stream == ConstrainedBaseline
            || (self == High && matches!(stream, Main | ConstrainedHigh))
    }
}

/// Profile and `profile-level-id` of an SPS (a NAL unit without start code).
pub fn sps_profile(sps: &[u8]) -> Option<(Profile, String)> {
    if sps.len() < 4 || NalHeader::new(sps[0]).nal_type() != NalType::Sps {
        return None;
    }
    let profile = Profile::classify(sps[1], sps[2])?;
    Some((
        profile,
        format!("{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda];

    #[test]
    fn profiles_follow_rfc_6184() {
        use Profile::*;
        for (plid, profile) in [
            ("42e01f", ConstrainedBaseline),
            ("42c01f", ConstrainedBaseline),
            ("42001f", Baseline),
            ("4d001f", Main),
            ("4d801f", ConstrainedBaseline),
            ("640032", High),
            ("640c32", ConstrainedHigh),
        ] {
            assert_eq!(Profile::of_profile_level_id(plid), Some(profile), "{plid}");
        }
        assert_eq!(Profile::of_profile_level_id("f4001f"), None);
        assert_eq!(Profile::of_profile_level_id("42e0"), None);
        assert!(High.decodes(Main));
        assert!(Baseline.decodes(ConstrainedBaseline));
        assert!(!ConstrainedBaseline.decodes(High));
        assert!(!Main.decodes(High));
        assert_eq!(
            sps_profile(SPS),
            Some((ConstrainedBaseline, "42c01f".to_owned()))
        );
    }
}
