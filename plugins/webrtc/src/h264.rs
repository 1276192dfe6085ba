//! What the sink needs to know of H.264: NAL units of an Annex-B access unit, parameter sets
//! to put in front of an IDR, and which profile a camera's SPS is (to answer an offer with a
//! `profile-level-id` the browser can decode and the camera actually sends).

/// NAL unit types this module cares about.
pub mod nal {
    /// Coded slice of an IDR picture.
    pub const IDR: u8 = 5;
    /// Sequence parameter set.
    pub const SPS: u8 = 7;
    /// Picture parameter set.
    pub const PPS: u8 = 8;
}

/// The type of a NAL unit (its header's low five bits).
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |h| h & 0x1f)
}

/// The NAL units of an Annex-B access unit, without their start codes.
pub fn nal_units(annexb: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = annexb;
    // Skip whatever precedes the first start code (nothing, in a well-formed access unit).
    match find_start_code(rest) {
        Some((at, len)) => rest = &rest[at + len..],
        None => rest = &[],
    }
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (nal, next) = match find_start_code(rest) {
            Some((at, len)) => (&rest[..at], &rest[at + len..]),
            None => (rest, &[][..]),
        };
        rest = next;
        // A 4-byte start code leaves the previous NAL's trailing zero in it: trim it.
        let end = nal.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        Some(&nal[..end])
    })
    .filter(|nal| !nal.is_empty())
}

/// Offset and length (3 or 4) of the first start code in `data`.
fn find_start_code(data: &[u8]) -> Option<(usize, usize)> {
    let at = memchr::memmem::find(data, &[0, 0, 1])?;
    Some(if at > 0 && data[at - 1] == 0 {
        (at - 1, 4)
    } else {
        (at, 3)
    })
}

/// The NAL units to send for one access unit: its own, with the cached SPS and PPS put in
/// front of an IDR that lacks them (browsers cannot start decoding without them, and a
/// camera may send them only once, at start).
pub fn with_parameter_sets<'a>(
    annexb: &'a [u8],
    sps: Option<&'a [u8]>,
    pps: Option<&'a [u8]>,
) -> Vec<&'a [u8]> {
    let units: Vec<&[u8]> = nal_units(annexb).collect();
    let idr = units.iter().any(|n| nal_type(n) == nal::IDR);
    if !idr {
        return units;
    }
    let has = |t: u8| units.iter().any(|n| nal_type(n) == t);
    let mut out = Vec::with_capacity(units.len() + 2);
    if !has(nal::SPS)
        && let Some(sps) = sps
    {
        out.push(sps);
    }
    if !has(nal::PPS)
        && let Some(pps) = pps
    {
        out.push(pps);
    }
    out.extend(units);
    out
}

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
    if sps.len() < 4 || nal_type(sps) != nal::SPS {
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
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let au = [
            &[0, 0, 0, 1][..],
            SPS,
            &[0, 0, 1],
            PPS,
            &[0, 0, 0, 1, 0x65, 0x88, 0x00, 0x10],
        ]
        .concat();
        let units: Vec<&[u8]> = nal_units(&au).collect();
        assert_eq!(units, [SPS, PPS, &[0x65, 0x88, 0x00, 0x10][..]]);
        assert_eq!(nal_units(&[]).count(), 0);
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
    }

    #[test]
    fn parameter_sets_go_before_an_idr_that_lacks_them() {
        let idr = [0, 0, 0, 1, 0x65, 0x88];
        let units = with_parameter_sets(&idr, Some(SPS), Some(PPS));
        assert_eq!(units, [SPS, PPS, &[0x65, 0x88][..]]);
        // Present in-band: left alone, not doubled.
        let full = [&[0, 0, 0, 1][..], SPS, &[0, 0, 0, 1], PPS, &idr].concat();
        assert_eq!(with_parameter_sets(&full, Some(SPS), Some(PPS)).len(), 3);
        // Not an IDR: nothing added.
        let p = [0, 0, 0, 1, 0x41, 0x9a];
        assert_eq!(with_parameter_sets(&p, Some(SPS), Some(PPS)).len(), 1);
    }

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
