//! An access unit as RTP payloads: the parameter sets put in front of an IDR, the NAL units
//! cut once ([`packetize`](super::packetize)), the capture time kept for the RTP timestamp.

use bytes::Bytes;

use crate::h264::{self, H264Error};

use super::packetize;

/// One access unit cut into RTP payloads, to be shared by every receiver (each writes only
/// its own RTP header in front of each payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpAccessUnit {
    /// Capture time, `CLOCK_MONOTONIC` nanoseconds: the RTP timestamp comes from here.
    pub timestamp_ns: u64,
    /// An IDR: a receiver can start here (with SPS and PPS in front when they were known).
    pub idr: bool,
    /// The payloads, in order; the marker bit goes on the last one.
    pub payloads: Vec<Bytes>,
}

impl RtpAccessUnit {
    /// Cuts an Annex-B access unit into payloads of at most `max_payload` bytes. An IDR gets
    /// `sps` and `pps` in front (its own in-band copies are left out, so they are not sent
    /// twice); without both, the access unit goes as it is.
    ///
    /// Fails when the access unit holds no NAL unit.
    pub fn new(
        annexb: &[u8],
        sps: Option<&[u8]>,
        pps: Option<&[u8]>,
        timestamp_ns: u64,
        max_payload: usize,
    ) -> Result<Self, H264Error> {
        let info = h264::analyse(annexb)?;
        let idr = info.is_idr();
        let units: Vec<&[u8]> = match (idr, sps, pps) {
            (true, Some(sps), Some(pps)) => h264::with_param_bytes(sps, pps, annexb, &info)?
                .nal_units()
                .collect(),
            _ => info
                .nals()
                .iter()
                .filter_map(|nal| nal.get(annexb))
                .collect(),
        };
        Ok(Self {
            timestamp_ns,
            idr,
            payloads: packetize(&units, max_payload),
        })
    }

    /// The payloads' total size in bytes.
    pub fn payload_bytes(&self) -> usize {
        self.payloads.iter().map(Bytes::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{MAX_PAYLOAD, STAP_A};

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    #[test]
    fn an_idr_gets_the_parameter_sets_in_front_and_a_p_frame_does_not() {
        let idr = RtpAccessUnit::new(
            &[0, 0, 0, 1, 0x65, 0x88, 0x80],
            Some(SPS),
            Some(PPS),
            7,
            MAX_PAYLOAD,
        )
        .unwrap();
        assert!(idr.idr);
        assert_eq!(idr.timestamp_ns, 7);
        // SPS, PPS and the small IDR in one STAP-A.
        assert_eq!(idr.payloads.len(), 1);
        assert_eq!(idr.payloads[0][0] & 0x1f, STAP_A);
        assert_eq!(&idr.payloads[0][3..3 + SPS.len()], SPS);
        assert_eq!(idr.payload_bytes(), 1 + 2 + 5 + 2 + 4 + 2 + 3);

        let p = RtpAccessUnit::new(&[0, 0, 1, 0x41, 0x9a], Some(SPS), Some(PPS), 8, MAX_PAYLOAD)
            .unwrap();
        assert!(!p.idr);
        assert_eq!(p.payloads, [Bytes::from_static(&[0x41, 0x9a])]);

        // Without parameter sets the IDR goes as the camera wrote it.
        let bare =
            RtpAccessUnit::new(&[0, 0, 1, 0x65, 0x88], None, Some(PPS), 9, MAX_PAYLOAD).unwrap();
        assert_eq!(bare.payloads, [Bytes::from_static(&[0x65, 0x88])]);
        assert!(RtpAccessUnit::new(&[1, 2, 3], None, None, 0, MAX_PAYLOAD).is_err());
    }
}
