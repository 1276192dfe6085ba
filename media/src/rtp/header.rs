//! The 12-byte RTP fixed header (RFC 3550 §5.1), written in front of a shared payload.
//!
//! Each receiver of a stream (an RTSP session, a WebRTC viewer) has its own SSRC, sequence
//! numbers and timestamp origin, so the header is the one part of a packet written per
//! receiver; the payload is cut once and shared.

/// Length of the fixed header without CSRCs or extensions.
pub const RTP_HEADER_LEN: usize = 12;

/// An RTP fixed header: version 2, no padding, no extension, no CSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtpHeader {
    /// The payload type (7 bits; dynamic types are 96..=127).
    pub payload_type: u8,
    /// The marker bit: for H.264, set on the last packet of an access unit.
    pub marker: bool,
    /// The sequence number.
    pub sequence: u16,
    /// The media timestamp (90 kHz for video).
    pub timestamp: u32,
    /// The synchronization source.
    pub ssrc: u32,
}

impl RtpHeader {
    /// The header's 12 bytes.
    pub fn to_bytes(&self) -> [u8; RTP_HEADER_LEN] {
        let mut out = [0u8; RTP_HEADER_LEN];
        out[0] = 0x80; // V=2, P=0, X=0, CC=0
        out[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7f);
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        out
    }

    /// Reads a header back (version 2 only; CSRCs and extensions are not interpreted).
    /// `None` if `packet` is shorter than 12 bytes or not version 2.
    pub fn parse(packet: &[u8]) -> Option<Self> {
        let head = packet.get(..RTP_HEADER_LEN)?;
        if head[0] >> 6 != 2 {
            return None;
        }
        Some(Self {
            payload_type: head[1] & 0x7f,
            marker: head[1] & 0x80 != 0,
            sequence: u16::from_be_bytes([head[2], head[3]]),
            timestamp: u32::from_be_bytes([head[4], head[5], head[6], head[7]]),
            ssrc: u32::from_be_bytes([head[8], head[9], head[10], head[11]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_rfc_3550_layout_and_reads_it_back() {
        let header = RtpHeader {
            payload_type: 96,
            marker: true,
            sequence: 0xabcd,
            timestamp: 0x0102_0304,
            ssrc: 0xdead_beef,
        };
        let bytes = header.to_bytes();
        assert_eq!(
            bytes,
            [
                0x80, 0xe0, 0xab, 0xcd, 0x01, 0x02, 0x03, 0x04, 0xde, 0xad, 0xbe, 0xef
            ]
        );
        assert_eq!(RtpHeader::parse(&bytes), Some(header));
        let plain = RtpHeader {
            marker: false,
            ..header
        };
        assert_eq!(plain.to_bytes()[1], 96);
        assert_eq!(RtpHeader::parse(&bytes[..11]), None);
        assert_eq!(RtpHeader::parse(&[0x40; 12]), None, "version 1");
    }
}
