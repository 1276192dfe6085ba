//! H.264 RTP payload depacketizer (RFC 6184, packetization-mode 1) producing Annex-B.
//!
//! Mode 1 (non-interleaved) allows exactly three payload structures: a single NAL unit
//! (types 1–23), STAP-A (24) and FU-A (28). Everything else (STAP-B, MTAP, FU-B) belongs to
//! the interleaved mode 2, which the viewer never offers, so it is rejected rather than guessed
//! at. Written here instead of using `rtc`'s `H264Packet` so that a loss inside a fragmented NAL
//! can be reported and the partial NAL thrown away instead of being glued to the next one.

/// The Annex-B start code written before every NAL unit.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

const NAL_TYPE_STAP_A: u8 = 24;
const NAL_TYPE_FU_A: u8 = 28;

/// Why an RTP payload could not be turned into NAL units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepacketizeError {
    /// The payload had no bytes at all.
    #[error("empty RTP payload")]
    Empty,
    /// A STAP-A aggregate whose length fields run past the end of the payload.
    #[error("truncated STAP-A aggregate")]
    TruncatedStapA,
    /// A FU-A packet shorter than its two header bytes.
    #[error("truncated FU-A fragment")]
    TruncatedFuA,
    /// A FU-A middle or end fragment without the start fragment (lost, or joined mid-NAL).
    #[error("FU-A fragment without its start fragment")]
    FuWithoutStart,
    /// A new NAL unit began while a FU-A was still open: its end fragment was lost.
    #[error("FU-A fragment interrupted before its end fragment")]
    FuInterrupted,
    /// A payload structure packetization-mode 1 does not allow (STAP-B, MTAP, FU-B, 0, 30, 31).
    #[error("NAL unit type {0} is not allowed in packetization-mode 1")]
    Unsupported(u8),
}

/// Turns the RTP payloads of one access unit, in sequence order, into Annex-B bytes.
///
/// Stateful only across the fragments of one FU-A NAL unit. After a sequence gap, call
/// [`Depacketizer::gap`] so a fragment in progress is discarded instead of being completed with
/// bytes from a later NAL.
#[derive(Debug, Default)]
pub struct Depacketizer {
    /// The NAL being reassembled from FU-A fragments (header byte included), if any.
    fragment: Option<Vec<u8>>,
}

impl Depacketizer {
    /// A depacketizer with no fragment in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a FU-A NAL unit has started and not yet ended.
    pub fn in_fragment(&self) -> bool {
        self.fragment.is_some()
    }

    /// Forgets a fragment in progress (after packet loss). Returns whether there was one.
    pub fn gap(&mut self) -> bool {
        self.fragment.take().is_some()
    }

    /// Appends the NAL units carried by `payload` to `out`, each behind a 4-byte start code.
    ///
    /// On error a fragment in progress is dropped and the caller can carry on with the next
    /// packet. Only [`DepacketizeError::FuInterrupted`] still appends this payload's own NAL
    /// units (the lost one was the earlier fragment); other errors append nothing.
    pub fn push(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), DepacketizeError> {
        let Some(&header) = payload.first() else {
            return Err(DepacketizeError::Empty);
        };
        let nal_type = header & 0x1f;
        if nal_type != NAL_TYPE_FU_A && self.fragment.take().is_some() {
            // The rest of this payload is still good, but the caller must know a NAL was lost.
            self.push_unfragmented(payload, nal_type, out)?;
            return Err(DepacketizeError::FuInterrupted);
        }
        self.push_unfragmented(payload, nal_type, out)
    }

    fn push_unfragmented(
        &mut self,
        payload: &[u8],
        nal_type: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), DepacketizeError> {
        match nal_type {
            1..=23 => {
                out.extend_from_slice(&START_CODE);
                out.extend_from_slice(payload);
                Ok(())
            }
            NAL_TYPE_STAP_A => push_stap_a(&payload[1..], out),
            NAL_TYPE_FU_A => self.push_fu_a(payload, out),
            // STAP-B (25), MTAP (26, 27), FU-B (29) and the reserved 0, 30, 31.
            _ => Err(DepacketizeError::Unsupported(nal_type)),
        }
    }

    fn push_fu_a(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), DepacketizeError> {
        let [indicator, fu_header, data @ ..] = payload else {
            self.fragment = None;
            return Err(DepacketizeError::TruncatedFuA);
        };
        let start = fu_header & 0x80 != 0;
        let end = fu_header & 0x40 != 0;
        if start {
            let interrupted = self.fragment.is_some();
            // The reconstructed NAL header: F and NRI from the indicator, type from the FU header.
            let mut nal = Vec::with_capacity(data.len() * 4 + 1);
            nal.push((indicator & 0xe0) | (fu_header & 0x1f));
            nal.extend_from_slice(data);
            self.fragment = Some(nal);
            if interrupted {
                self.finish_if(end, out);
                return Err(DepacketizeError::FuInterrupted);
            }
        } else {
            let Some(nal) = self.fragment.as_mut() else {
                return Err(DepacketizeError::FuWithoutStart);
            };
            nal.extend_from_slice(data);
        }
        self.finish_if(end, out);
        Ok(())
    }

    fn finish_if(&mut self, end: bool, out: &mut Vec<u8>) {
        if end && let Some(nal) = self.fragment.take() {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(&nal);
        }
    }
}

fn push_stap_a(mut rest: &[u8], out: &mut Vec<u8>) -> Result<(), DepacketizeError> {
    // Validate the whole aggregate before writing, so a truncated one appends nothing.
    let mut nals = Vec::new();
    while !rest.is_empty() {
        let [hi, lo, tail @ ..] = rest else {
            return Err(DepacketizeError::TruncatedStapA);
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if len == 0 || tail.len() < len {
            return Err(DepacketizeError::TruncatedStapA);
        }
        nals.push(&tail[..len]);
        rest = &tail[len..];
    }
    if nals.is_empty() {
        return Err(DepacketizeError::TruncatedStapA);
    }
    for nal in nals {
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(nal);
    }
    Ok(())
}

/// The NAL unit types in an Annex-B buffer, in order.
///
/// Splits on 3- and 4-byte start codes; emulation prevention guarantees neither occurs inside
/// a NAL unit.
pub fn nal_types(annexb: &[u8]) -> Vec<u8> {
    nal_units(annexb)
        .into_iter()
        .filter_map(|nal| nal.first().map(|h| h & 0x1f))
        .collect()
}

/// The NAL units (without start codes) in an Annex-B buffer, in order.
pub fn nal_units(annexb: &[u8]) -> Vec<&[u8]> {
    stackctl_media::h264::nal_units(annexb).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(payloads: &[&[u8]]) -> (Vec<u8>, Vec<Result<(), DepacketizeError>>) {
        let mut d = Depacketizer::new();
        let mut out = Vec::new();
        let results = payloads.iter().map(|p| d.push(p, &mut out)).collect();
        (out, results)
    }

    #[test]
    fn single_nal_gets_a_four_byte_start_code() {
        let (out, r) = run(&[&[0x65, 1, 2, 3]]);
        assert_eq!(out, [0, 0, 0, 1, 0x65, 1, 2, 3]);
        assert_eq!(r, [Ok(())]);
    }

    #[test]
    fn stap_a_splits_into_start_coded_nals() {
        let stap = [0x78, 0, 3, 0x67, 0xaa, 0xbb, 0, 2, 0x68, 0xcc];
        let (out, r) = run(&[&stap]);
        assert_eq!(out, [0, 0, 0, 1, 0x67, 0xaa, 0xbb, 0, 0, 0, 1, 0x68, 0xcc]);
        assert_eq!(r, [Ok(())]);
        assert_eq!(nal_types(&out), [7, 8]);
    }

    #[test]
    fn truncated_stap_a_appends_nothing() {
        let (out, r) = run(&[&[0x78, 0, 5, 0x67, 0xaa]]);
        assert!(out.is_empty());
        assert_eq!(r, [Err(DepacketizeError::TruncatedStapA)]);
    }

    #[test]
    fn fu_a_start_middle_end_rebuilds_header_and_body() {
        // NRI 3 (0x60) in the indicator, type 5 in the FU header.
        let (out, r) = run(&[&[0x7c, 0x85, 1, 2], &[0x7c, 0x05, 3, 4], &[0x7c, 0x45, 5]]);
        assert_eq!(out, [0, 0, 0, 1, 0x65, 1, 2, 3, 4, 5]);
        assert_eq!(r, [Ok(()), Ok(()), Ok(())]);
    }

    #[test]
    fn fu_a_without_start_is_rejected() {
        let (out, r) = run(&[&[0x7c, 0x05, 3, 4], &[0x7c, 0x45, 5]]);
        assert!(out.is_empty());
        assert_eq!(
            r,
            [
                Err(DepacketizeError::FuWithoutStart),
                Err(DepacketizeError::FuWithoutStart)
            ]
        );
    }

    #[test]
    fn fu_a_interrupted_by_single_nal_drops_the_fragment_keeps_the_nal() {
        let (out, r) = run(&[&[0x7c, 0x85, 1, 2], &[0x41, 9]]);
        assert_eq!(out, [0, 0, 0, 1, 0x41, 9]);
        assert_eq!(r, [Ok(()), Err(DepacketizeError::FuInterrupted)]);
    }

    #[test]
    fn gap_discards_fragment_in_progress() {
        let mut d = Depacketizer::new();
        let mut out = Vec::new();
        assert_eq!(d.push(&[0x7c, 0x85, 1], &mut out), Ok(()));
        assert!(d.in_fragment());
        assert!(d.gap());
        assert_eq!(
            d.push(&[0x7c, 0x45, 2], &mut out),
            Err(DepacketizeError::FuWithoutStart)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn interleaved_mode_structures_are_unsupported() {
        for t in [25u8, 26, 27, 29, 0, 30, 31] {
            let (_, r) = run(&[&[t, 0, 0, 0]]);
            assert_eq!(r, [Err(DepacketizeError::Unsupported(t))]);
        }
        assert_eq!(run(&[&[]]).1, [Err(DepacketizeError::Empty)]);
        assert_eq!(run(&[&[0x7c]]).1, [Err(DepacketizeError::TruncatedFuA)]);
    }

    #[test]
    fn nal_units_handles_three_and_four_byte_codes() {
        let buf = [0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65];
        assert_eq!(
            nal_units(&buf),
            [&[0x67u8, 1][..], &[0x68, 2][..], &[0x65][..]]
        );
        assert_eq!(nal_types(&buf), [7, 8, 5]);
        assert!(nal_types(&[]).is_empty());
    }
}
