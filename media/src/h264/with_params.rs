//! Re-emitting an access unit with the parameter sets in front, for a consumer that joins
//! mid-stream and has never seen the SPS and PPS.

use std::io;
use std::iter::FusedIterator;
use std::slice;

use super::{AccessUnitInfo, H264Error, Nal, NalType, ParameterSets};

/// The 4-byte Annex-B start code written in front of every NAL unit.
pub const START_CODE: &[u8] = &[0, 0, 0, 1];

/// The pieces of `au` re-framed as Annex-B with `params` in front: an access unit delimiter
/// that opens the access unit stays first, then come the SPS and PPS, then the access unit's
/// other NAL units. In-band SPS and PPS are left out so they are not duplicated.
///
/// Fails if `info` was not made from `au`.
pub fn with_params<'a>(
    params: &'a ParameterSets,
    au: &'a [u8],
    info: &'a AccessUnitInfo,
) -> Result<WithParams<'a>, H264Error> {
    with_param_bytes(&params.sps, &params.pps, au, info)
}

/// [`with_params`] for parameter sets held as bytes (an SPS and a PPS NAL unit, header byte
/// included, no start code), e.g. the ones a plugin receives with a frame.
pub fn with_param_bytes<'a>(
    sps: &'a [u8],
    pps: &'a [u8],
    au: &'a [u8],
    info: &'a AccessUnitInfo,
) -> Result<WithParams<'a>, H264Error> {
    info.check_data(au)?;
    let mut rest = info.nals().iter();
    let aud = match info.nals().first() {
        Some(nal) if nal.nal_type() == NalType::Aud => {
            rest.next();
            nal.get(au)
        }
        _ => None,
    };
    let nals = NalsWithParams {
        head: [aud, Some(sps), Some(pps)],
        head_pos: 0,
        au,
        rest,
    };
    Ok(WithParams {
        nals,
        pending: None,
    })
}

/// Iterator over the byte slices of an access unit with parameter sets in front, made by
/// [`with_params`]: a [`START_CODE`], a NAL unit, a start code, ... Allocation-free;
/// concatenating the pieces gives the Annex-B stream.
#[derive(Debug, Clone)]
pub struct WithParams<'a> {
    nals: NalsWithParams<'a>,
    /// A NAL unit whose start code was just yielded.
    pending: Option<&'a [u8]>,
}

impl<'a> WithParams<'a> {
    /// Total number of bytes the pieces add up to.
    pub fn byte_len(&self) -> usize {
        self.clone().map(<[u8]>::len).sum()
    }

    /// The same NAL units without start codes, e.g. for an RTP packetizer.
    pub fn nal_units(self) -> NalsWithParams<'a> {
        self.nals
    }
}

impl<'a> Iterator for WithParams<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if let Some(nal) = self.pending.take() {
            return Some(nal);
        }
        self.pending = Some(self.nals.next()?);
        Some(START_CODE)
    }
}

impl FusedIterator for WithParams<'_> {}

/// Iterator over the NAL units (no start codes) of an access unit with parameter sets in
/// front, made by [`WithParams::nal_units`].
#[derive(Debug, Clone)]
pub struct NalsWithParams<'a> {
    /// The opening AUD if any, the SPS, the PPS.
    head: [Option<&'a [u8]>; 3],
    head_pos: usize,
    au: &'a [u8],
    /// The access unit's NAL units after the opening AUD.
    rest: slice::Iter<'a, Nal>,
}

impl<'a> Iterator for NalsWithParams<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while let Some(piece) = self.head.get(self.head_pos) {
            self.head_pos += 1;
            if piece.is_some() {
                return *piece;
            }
        }
        let au = self.au;
        self.rest
            .by_ref()
            .filter(|nal| !nal.nal_type().is_parameter_set())
            .find_map(|nal| nal.get(au))
    }
}

impl FusedIterator for NalsWithParams<'_> {}

/// Writes `au` as Annex-B with `params` in front, as described at [`with_params`].
pub fn write_annexb_with_params(
    out: &mut impl io::Write,
    params: &ParameterSets,
    au: &[u8],
    info: &AccessUnitInfo,
) -> io::Result<()> {
    let pieces = with_params(params, au, info)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    for piece in pieces {
        out.write_all(piece)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::testdata::{BASELINE_640X480_SPS, MAIN_720P_SPS, PPS, PPS_2, annexb};
    use crate::h264::{SpsInfo, analyse};

    const AUD: &[u8] = &[0x09, 0xf0];
    const SEI: &[u8] = &[0x06, 0x05, 0x01, 0xaa, 0x80];
    const IDR: &[u8] = &[0x65, 0x88, 0x80];

    fn params() -> ParameterSets {
        ParameterSets {
            sps: MAIN_720P_SPS.into(),
            pps: PPS_2.into(),
            info: SpsInfo::parse(MAIN_720P_SPS).unwrap(),
        }
    }

    fn written(au: &[u8]) -> Vec<u8> {
        let info = analyse(au).unwrap();
        let mut out = Vec::new();
        write_annexb_with_params(&mut out, &params(), au, &info).unwrap();
        let pieces: Vec<u8> = with_params(&params(), au, &info)
            .unwrap()
            .flatten()
            .copied()
            .collect();
        assert_eq!(pieces, out);
        assert_eq!(
            with_params(&params(), au, &info).unwrap().byte_len(),
            out.len()
        );
        out
    }

    #[test]
    fn in_band_parameter_sets_are_replaced_and_aud_stays_first() {
        let au = annexb(&[AUD, BASELINE_640X480_SPS, PPS, SEI, IDR]);
        assert_eq!(written(&au), annexb(&[AUD, MAIN_720P_SPS, PPS_2, SEI, IDR]));
    }

    #[test]
    fn parameter_sets_go_in_front_of_a_bare_slice() {
        let au = [0, 0, 1, 0x41, 0x9a, 0x01, 0, 0];
        assert_eq!(
            written(&au),
            annexb(&[MAIN_720P_SPS, PPS_2, &[0x41, 0x9a, 0x01]])
        );
    }

    #[test]
    fn pieces_are_borrowed_from_the_access_unit() {
        let au = annexb(&[IDR]);
        let info = analyse(&au).unwrap();
        let params = params();
        let pieces: Vec<&[u8]> = with_params(&params, &au, &info).unwrap().collect();
        assert_eq!(pieces.len(), 6);
        assert_eq!(pieces[5].as_ptr(), au[4..].as_ptr());
        let nals: Vec<&[u8]> = with_params(&params, &au, &info)
            .unwrap()
            .nal_units()
            .collect();
        assert_eq!(nals, [MAIN_720P_SPS, PPS_2, IDR]);
    }

    #[test]
    fn mismatched_info_is_an_error() {
        let au = annexb(&[IDR]);
        let info = analyse(&au).unwrap();
        assert!(with_params(&params(), &au[1..], &info).is_err());
        let mut out = Vec::new();
        let err = write_annexb_with_params(&mut out, &params(), &au[1..], &info).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(out.is_empty());
    }
}
