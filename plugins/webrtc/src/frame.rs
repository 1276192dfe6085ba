//! One access unit, cut into RTP payloads once and shared by every viewer.

use std::time::Instant;

use bytes::Bytes;
use stackctl_media::h264;
use stackctl_media::rtp;

/// Room left in each packet for the header extensions of a frame's first packet (one-byte
/// form: a 4-byte block header, abs-capture-time 1 + 8, playout-delay 1 + 3, padding), so that
/// every packet stays within 1200 bytes of RTP, as browsers send.
pub const EXTENSION_ROOM: usize = 20;

/// The largest payload cut: [`rtp::MAX_PAYLOAD`] less [`EXTENSION_ROOM`].
pub const MAX_PAYLOAD: usize = rtp::MAX_PAYLOAD - EXTENSION_ROOM;

/// One access unit, cut into RTP payloads, shared by every viewer.
#[derive(Debug)]
pub struct Packetized {
    /// Its place in the stream: one more than the frame before (a gap means frames were lost
    /// on the way to a worker).
    pub seq: u64,
    /// Capture time, `CLOCK_MONOTONIC` ns.
    pub timestamp_ns: u64,
    /// When the sink received it: the start of its time in the sink's queues.
    pub received: Instant,
    /// An IDR (with SPS and PPS in front).
    pub idr: bool,
    /// The payloads, in order; the marker bit goes on the last.
    pub payloads: Vec<Bytes>,
    /// Their total size.
    pub bytes: usize,
}

impl Packetized {
    /// Cuts an Annex-B access unit, putting `sps` and `pps` in front of an IDR that lacks
    /// them. `None` when there is no NAL unit in it.
    pub fn new(
        annexb: &[u8],
        sps: Option<&[u8]>,
        pps: Option<&[u8]>,
        timestamp_ns: u64,
        received: Instant,
    ) -> Option<Self> {
        let info = h264::analyse(annexb).ok()?;
        let idr = info.is_idr();
        let units: Vec<&[u8]> = match (idr, sps, pps) {
            (true, Some(sps), Some(pps)) => h264::with_param_bytes(sps, pps, annexb, &info)
                .ok()?
                .nal_units()
                .collect(),
            _ => info
                .nals()
                .iter()
                .filter_map(|nal| nal.get(annexb))
                .collect(),
        };
        if units.is_empty() {
            return None;
        }
        let payloads = rtp::packetize(&units, MAX_PAYLOAD);
        Some(Self::from_payloads(
            0,
            timestamp_ns,
            received,
            idr,
            payloads,
        ))
    }

    /// A frame of ready payloads (tests and benchmarks make frames of any shape with it).
    pub fn from_payloads(
        seq: u64,
        timestamp_ns: u64,
        received: Instant,
        idr: bool,
        payloads: Vec<Bytes>,
    ) -> Self {
        let bytes = payloads.iter().map(Bytes::len).sum();
        Self {
            seq,
            timestamp_ns,
            received,
            idr,
            payloads,
            bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    #[test]
    fn an_idr_gets_the_parameter_sets_and_payloads_leave_room_for_extensions() {
        let mut au = vec![0, 0, 0, 1, 0x65];
        au.extend(std::iter::repeat_n(7u8, 5000));
        let f = Packetized::new(&au, Some(SPS), Some(PPS), 9, Instant::now()).unwrap();
        assert!(f.idr);
        assert_eq!(f.payloads[0][0] & 0x1f, rtp::STAP_A, "SPS and PPS first");
        assert!(f.payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        assert_eq!(f.bytes, f.payloads.iter().map(Bytes::len).sum::<usize>());
        assert!(Packetized::new(b"no start code", None, None, 0, Instant::now()).is_none());
    }
}
