//! Access units of an Annex-B stream: where each begins, and dropping parameter sets.

use std::ops::Range;

use stackctl_media::h264::{NalHeader, NalType, split_annexb};

/// Whether a NAL unit can only begin a new access unit once a picture's slices have been seen
/// (H.264 7.4.1.2.3): AUD, SPS, PPS, SEI, and the prefix/subset-SPS/reserved types 14 to 18.
fn starts_au_after_slice(nal_type: NalType) -> bool {
    matches!(
        nal_type,
        NalType::Aud | NalType::Sps | NalType::Pps | NalType::Sei
    ) || matches!(nal_type.nal_unit_type(), 14..=18)
}

/// Splits an Annex-B stream into access units, as byte ranges that tile `data` exactly: each
/// range begins with its first NAL unit's start code (the first one at offset 0), so
/// concatenating them gives `data` back byte for byte.
///
/// A new access unit begins at an AUD/SPS/PPS/SEI that follows a slice, or at a slice whose
/// `first_mb_in_slice` is 0 (the first bit after the NAL header is 1) that follows a slice.
pub fn split_access_units(data: &[u8]) -> Vec<Range<usize>> {
    let mut units = Vec::new();
    let mut au_start = 0;
    let mut prev_end = 0;
    let mut seen_slice = false;
    for nal in split_annexb(data) {
        let Some(&byte) = data.get(nal.start) else {
            continue;
        };
        let nal_type = NalHeader::new(byte).nal_type();
        let is_slice = nal_type.is_vcl();
        // ue(v) 0 is coded as a single 1 bit.
        let first_slice = is_slice && data.get(nal.start + 1).is_some_and(|b| b & 0x80 != 0);
        if seen_slice && (first_slice || starts_au_after_slice(nal_type)) {
            // The start code (and any trailing zeros) between the NAL units opens the new unit.
            units.push(au_start..prev_end);
            au_start = prev_end;
            seen_slice = false;
        }
        seen_slice |= is_slice;
        prev_end = nal.end;
    }
    if prev_end > 0 {
        units.push(au_start..data.len());
    }
    units
}

/// Appends `au` to `out` without its SPS and PPS NAL units (start codes included), every other
/// byte unchanged.
pub fn append_without_parameter_sets(au: &[u8], out: &mut Vec<u8>) {
    // Each NAL unit owns the bytes since the previous one's end: its start code and any zeros.
    let mut prev_end = 0;
    for nal in split_annexb(au) {
        let is_param = au
            .get(nal.start)
            .is_some_and(|&b| NalHeader::new(b).nal_type().is_parameter_set());
        if !is_param {
            out.extend_from_slice(&au[prev_end..nal.end]);
        }
        prev_end = nal.end;
    }
    out.extend_from_slice(&au[prev_end..]);
}

/// The NAL unit types in `au`, in order (for tests and verbose logs).
pub fn nal_types(au: &[u8]) -> Vec<NalType> {
    split_annexb(au)
        .filter_map(|nal| au.get(nal.start).map(|&b| NalHeader::new(b).nal_type()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0, 0, 0, 1, 0x67, 0x42];
    const PPS: &[u8] = &[0, 0, 0, 1, 0x68, 0xce];
    const IDR: &[u8] = &[0, 0, 0, 1, 0x65, 0x88, 0x10];
    /// A P slice with first_mb_in_slice == 0, then one with first_mb_in_slice == 1.
    const P0: &[u8] = &[0, 0, 1, 0x41, 0x9a, 0x20];
    const P1: &[u8] = &[0, 0, 1, 0x41, 0x40, 0x20];
    const AUD: &[u8] = &[0, 0, 0, 1, 0x09, 0xf0];

    fn units(parts: &[&[u8]]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let data = parts.concat();
        let aus = split_access_units(&data)
            .into_iter()
            .map(|r| data[r].to_vec())
            .collect();
        (data, aus)
    }

    #[test]
    fn splits_at_parameter_sets_and_first_slices_and_tiles_the_input() {
        let (data, aus) = units(&[SPS, PPS, IDR, P0, P1, AUD, P0, SPS, PPS, IDR, &[0, 0]]);
        assert_eq!(aus.len(), 4);
        assert_eq!(aus[0], [SPS, PPS, IDR].concat());
        assert_eq!(aus[1], [P0, P1].concat());
        assert_eq!(aus[2], [AUD, P0].concat());
        assert_eq!(aus[3], [SPS, PPS, IDR, &[0, 0]].concat());
        assert_eq!(aus.concat(), data);
    }

    #[test]
    fn no_nal_units_means_no_access_units() {
        assert!(split_access_units(&[]).is_empty());
        assert!(split_access_units(&[1, 2, 3, 0, 0]).is_empty());
    }

    #[test]
    fn drops_only_parameter_sets() {
        let mut out = Vec::new();
        append_without_parameter_sets(&[SPS, PPS, IDR].concat(), &mut out);
        assert_eq!(out, IDR);
        out.clear();
        append_without_parameter_sets(&[AUD, SPS, P0].concat(), &mut out);
        assert_eq!(out, [AUD, P0].concat());
        assert_eq!(nal_types(&out), [NalType::Aud, NalType::NonIdr]);
    }
}
