//! Annex-B H.264: splitting an access unit into NAL units, and what the recorder needs to know
//! about them.

use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::rbsp::{BitReader, decode_nal};
use memchr::memmem;

/// NAL unit type of an IDR slice.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;

/// The 4-byte start code the recorder writes before the parameter sets it inserts.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The NAL units of an Annex-B buffer, without their start codes (and without the zero bytes
/// that may pad a unit before the next start code). Bytes before the first start code are
/// skipped.
pub fn nal_units(data: &[u8]) -> NalUnits<'_> {
    let finder = memmem::Finder::new(&[0, 0, 1]);
    let pos = finder.find(data).map_or(data.len(), |p| p + 3);
    NalUnits { data, pos }
}

/// Iterator returned by [`nal_units`].
#[derive(Debug, Clone)]
pub struct NalUnits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.pos < self.data.len() {
            let rest = &self.data[self.pos..];
            let (unit, advance) = match memmem::find(rest, &[0, 0, 1]) {
                Some(p) => (&rest[..p], p + 3),
                None => (rest, rest.len()),
            };
            self.pos += advance;
            // A NAL unit ends with a non-zero byte: zeros before a start code are padding (or
            // the first byte of a 4-byte start code).
            let end = unit.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            if end > 0 {
                return Some(&unit[..end]);
            }
        }
        None
    }
}

/// The type of a NAL unit (its first byte's low five bits).
pub fn nal_type(unit: &[u8]) -> u8 {
    unit.first().map_or(0, |b| b & 0x1f)
}

/// Whether a NAL unit is a parameter set or delimiter: what the MP4 samples leave out, since
/// the sample entry carries the parameter sets.
pub fn is_out_of_band(unit: &[u8]) -> bool {
    matches!(nal_type(unit), NAL_SPS | NAL_PPS | NAL_AUD)
}

/// Whether the access unit carries both an SPS and a PPS itself.
pub fn has_parameter_sets(data: &[u8]) -> bool {
    let (mut sps, mut pps) = (false, false);
    for unit in nal_units(data) {
        match nal_type(unit) {
            NAL_SPS => sps = true,
            NAL_PPS => pps = true,
            _ => {}
        }
    }
    sps && pps
}

/// The picture size an SPS (without start code) describes, cropping applied.
pub fn sps_dimensions(sps: &[u8]) -> Option<(u32, u32)> {
    let rbsp = decode_nal(sps).ok()?;
    let parsed = SeqParameterSet::from_bits(BitReader::new(&*rbsp)).ok()?;
    parsed.pixel_dimensions().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 320x240 Constrained Baseline SPS (OpenH264's).
    pub(crate) const SPS_320X240: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0x8c, 0x8d, 0x40, 0xa0, 0xfd, 0x00, 0xf0, 0x88, 0x46, 0xa0,
    ];

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 4, 5, 0, 0, 3, 1,
        ];
        let units: Vec<&[u8]> = nal_units(&data).collect();
        assert_eq!(
            units,
            [&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4, 5, 0, 0, 3, 1]]
        );
        assert_eq!(nal_type(units[2]), NAL_IDR);
        assert!(has_parameter_sets(&data));
        assert!(!has_parameter_sets(&[0, 0, 1, 0x65, 1]));
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
        assert_eq!(nal_units(&[]).count(), 0);
    }

    #[test]
    fn reads_the_picture_size_of_an_sps() {
        assert_eq!(sps_dimensions(SPS_320X240), Some((320, 240)));
        assert_eq!(sps_dimensions(&[0x67]), None);
    }
}
