//! Analysing one access unit: its NAL units, and whether it starts a decodable sequence.

use super::{H264Error, Nal, NalHeader, NalType, split_annexb_checked};

/// What an access unit contains, as ranges into its buffer (no byte is copied).
///
/// Made by [`analyse`] or [`analyse_into`]; only meaningful together with the same data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessUnitInfo {
    nals: Vec<Nal>,
    au_len: usize,
    is_idr: bool,
    has_sps: bool,
    has_pps: bool,
}

impl AccessUnitInfo {
    /// The NAL units, in stream order.
    pub fn nals(&self) -> &[Nal] {
        &self.nals
    }

    /// Length in bytes of the analysed access unit.
    pub const fn au_len(&self) -> usize {
        self.au_len
    }

    /// Whether any NAL unit is an IDR slice (type 5): a decoder can start here.
    pub const fn is_idr(&self) -> bool {
        self.is_idr
    }

    /// Whether the access unit carries an SPS.
    pub const fn has_sps(&self) -> bool {
        self.has_sps
    }

    /// Whether the access unit carries a PPS.
    pub const fn has_pps(&self) -> bool {
        self.has_pps
    }

    /// The first NAL unit of type `nal_type`.
    pub fn first(&self, nal_type: NalType) -> Option<&Nal> {
        self.nals.iter().find(|n| n.nal_type() == nal_type)
    }

    /// The last NAL unit of type `nal_type`.
    pub fn last(&self, nal_type: NalType) -> Option<&Nal> {
        self.nals.iter().rev().find(|n| n.nal_type() == nal_type)
    }

    /// Checks that `data` can be the access unit this describes (same length), so that every
    /// range fits in it.
    pub const fn check_data(&self, data: &[u8]) -> Result<(), H264Error> {
        if data.len() == self.au_len {
            Ok(())
        } else {
            Err(H264Error::InfoMismatch {
                expected: self.au_len,
                actual: data.len(),
            })
        }
    }

    fn clear(&mut self) {
        self.nals.clear();
        self.au_len = 0;
        self.is_idr = false;
        self.has_sps = false;
        self.has_pps = false;
    }
}

/// Splits and classifies the access unit `data` (Annex-B, one picture).
///
/// Fails on empty data, data not starting with a start code, an empty (truncated) NAL unit,
/// a NAL unit with the forbidden_zero_bit set, or data without any NAL unit.
pub fn analyse(data: &[u8]) -> Result<AccessUnitInfo, H264Error> {
    let mut info = AccessUnitInfo::default();
    analyse_into(data, &mut info)?;
    Ok(info)
}

/// Like [`analyse`], but reuses `info`'s allocation: no allocation once it has grown to the
/// stream's NAL count. On error, `info` is left empty.
pub fn analyse_into(data: &[u8], info: &mut AccessUnitInfo) -> Result<(), H264Error> {
    info.clear();
    let result = fill(data, info);
    if result.is_err() {
        info.clear();
    }
    result
}

fn fill(data: &[u8], info: &mut AccessUnitInfo) -> Result<(), H264Error> {
    for range in split_annexb_checked(data) {
        let range = range?;
        let Some(&byte) = data.get(range.start) else {
            return Err(H264Error::EmptyNal {
                offset: range.start,
            });
        };
        let header = NalHeader::new(byte);
        if header.forbidden_zero_bit() {
            return Err(H264Error::ForbiddenBit {
                offset: range.start,
            });
        }
        match header.nal_type() {
            NalType::Idr => info.is_idr = true,
            NalType::Sps => info.has_sps = true,
            NalType::Pps => info.has_pps = true,
            _ => {}
        }
        info.nals.push(Nal { range, header });
    }
    if info.nals.is_empty() {
        return Err(H264Error::NoNalUnits);
    }
    info.au_len = data.len();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::NalRange;
    use crate::h264::testdata::{BASELINE_640X480_SPS, PPS, annexb};

    #[test]
    fn aud_sps_pps_idr() {
        let idr: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x33];
        let data = annexb(&[&[0x09, 0xf0], BASELINE_640X480_SPS, PPS, idr]);
        let info = analyse(&data).unwrap();
        let types: Vec<_> = info.nals().iter().map(Nal::nal_type).collect();
        assert_eq!(
            types,
            [NalType::Aud, NalType::Sps, NalType::Pps, NalType::Idr]
        );
        assert!(info.is_idr() && info.has_sps() && info.has_pps());
        assert_eq!(info.au_len(), data.len());
        assert_eq!(info.nals()[0].range, NalRange { start: 4, end: 6 });
        assert_eq!(
            info.first(NalType::Sps).unwrap().get(&data),
            Some(BASELINE_640X480_SPS)
        );
        assert_eq!(info.last(NalType::Idr).unwrap().get(&data), Some(idr));
        assert_eq!(info.nals()[3].header.nal_ref_idc(), 3);
        assert!(info.check_data(&data).is_ok());
    }

    #[test]
    fn p_frame_is_not_idr() {
        let data = annexb(&[&[0x41, 0x9a, 0x02]]);
        let info = analyse(&data).unwrap();
        assert!(!info.is_idr() && !info.has_sps() && !info.has_pps());
        assert_eq!(info.first(NalType::Sps), None);
    }

    #[test]
    fn malformed_access_units() {
        assert_eq!(analyse(&[]), Err(H264Error::Empty));
        assert_eq!(analyse(&[0x65, 0x88]), Err(H264Error::NoStartCode));
        assert_eq!(analyse(&[0, 0, 0]), Err(H264Error::NoNalUnits));
        assert_eq!(
            analyse(&[0, 0, 0, 1]),
            Err(H264Error::EmptyNal { offset: 4 })
        );
        let truncated = [0, 0, 1, 0x67, 0x42, 0, 0, 1];
        assert_eq!(analyse(&truncated), Err(H264Error::EmptyNal { offset: 8 }));
        let forbidden = [0, 0, 1, 0x67, 0x42, 0, 0, 1, 0xe5, 0x01];
        assert_eq!(
            analyse(&forbidden),
            Err(H264Error::ForbiddenBit { offset: 8 })
        );
    }

    #[test]
    fn analyse_into_reuses_and_clears() {
        let mut info = AccessUnitInfo::default();
        let data = annexb(&[BASELINE_640X480_SPS, PPS, &[0x65, 0x01]]);
        analyse_into(&data, &mut info).unwrap();
        assert_eq!(info.nals().len(), 3);
        analyse_into(&annexb(&[&[0x41, 0x01]]), &mut info).unwrap();
        assert_eq!(info.nals().len(), 1);
        assert!(!info.is_idr());
        assert!(analyse_into(&[1, 2, 3], &mut info).is_err());
        assert_eq!(info, AccessUnitInfo::default());
        assert_eq!(
            info.check_data(&data),
            Err(H264Error::InfoMismatch {
                expected: 0,
                actual: data.len()
            })
        );
    }
}
