//! One access unit on its way to the workers: the workspace's [`RtpAccessUnit`] (cut into RTP
//! payloads once, shared by every viewer) with its place in the stream and its arrival time.

use std::time::Instant;

use bytes::Bytes;
use stackctl_media::rtp::{self, RtpAccessUnit};

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
    /// When the sink received it: the start of its time in the sink's queues.
    pub received: Instant,
    /// The access unit: capture time, IDR or not (an IDR with SPS and PPS in front), the
    /// payloads in order (the marker bit goes on the last).
    pub au: RtpAccessUnit,
    /// The payloads' total size (read per viewer per frame by the pacer: summed once).
    pub bytes: usize,
}

impl Packetized {
    /// Cuts an Annex-B access unit ([`RtpAccessUnit::new`], payloads of at most
    /// [`MAX_PAYLOAD`]), putting `sps` and `pps` in front of an IDR. `None` when there is no
    /// NAL unit in it.
    pub fn new(
        annexb: &[u8],
        sps: Option<&[u8]>,
        pps: Option<&[u8]>,
        timestamp_ns: u64,
        received: Instant,
    ) -> Option<Self> {
        let au = RtpAccessUnit::new(annexb, sps, pps, timestamp_ns, MAX_PAYLOAD).ok()?;
        if au.payloads.is_empty() {
            return None;
        }
        Some(Self::of(0, received, au))
    }

    /// A frame of ready payloads (tests and benchmarks make frames of any shape with it).
    pub fn from_payloads(
        seq: u64,
        timestamp_ns: u64,
        received: Instant,
        idr: bool,
        payloads: Vec<Bytes>,
    ) -> Self {
        let au = RtpAccessUnit {
            timestamp_ns,
            idr,
            payloads,
        };
        Self::of(seq, received, au)
    }

    fn of(seq: u64, received: Instant, au: RtpAccessUnit) -> Self {
        Self {
            seq,
            received,
            bytes: au.payload_bytes(),
            au,
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
        assert!(f.au.idr);
        assert_eq!(f.au.payloads[0][0] & 0x1f, rtp::STAP_A, "SPS and PPS first");
        assert!(f.au.payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        assert_eq!(f.bytes, f.au.payload_bytes());
        assert!(Packetized::new(b"no start code", None, None, 0, Instant::now()).is_none());
    }
}
