//! RTCP sender reports (RFC 3550 §6.4.1), sent with an SDES CNAME as a compound packet
//! (§6.1): what lets a receiver map a stream's RTP timestamps to wall-clock time, and what
//! RTSP and WebRTC receivers expect from a sender every few seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The RTCP packet type of a sender report.
pub const RTCP_SR: u8 = 200;
/// The RTCP packet type of source descriptions.
pub const RTCP_SDES: u8 = 202;

/// A 64-bit NTP timestamp: seconds since 1900 in the high 32 bits, the fraction in the low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// The NTP time of a wall-clock instant (instants before 1970 count as 1970).
    pub fn from_system_time(t: SystemTime) -> Self {
        let since_unix = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let secs = since_unix.as_secs() + NTP_UNIX_OFFSET;
        // The fraction in units of 2^-32 s.
        let frac = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
        // NTP seconds wrap in 2036 (era 1): truncation is the wire format.
        Self(((secs & 0xffff_ffff) << 32) | frac)
    }

    /// The middle 32 bits, as a receiver report's "last SR" field names a report.
    pub fn middle(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// One sender report of a source that receives nothing itself (no report blocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SenderReport {
    /// The sender's SSRC.
    pub ssrc: u32,
    /// Wall-clock time of the report.
    pub ntp: NtpTime,
    /// The RTP timestamp of the same instant, on the stream's media clock.
    pub rtp_timestamp: u32,
    /// RTP packets sent since the stream started.
    pub packet_count: u32,
    /// RTP payload bytes (headers excluded) sent since the stream started.
    pub octet_count: u32,
}

impl SenderReport {
    /// The 28-byte SR packet alone.
    pub fn to_bytes(&self) -> [u8; 28] {
        let mut out = [0u8; 28];
        out[0] = 0x80; // V=2, P=0, RC=0
        out[1] = RTCP_SR;
        out[2..4].copy_from_slice(&6u16.to_be_bytes()); // length in 32-bit words, minus one
        out[4..8].copy_from_slice(&self.ssrc.to_be_bytes());
        out[8..16].copy_from_slice(&self.ntp.0.to_be_bytes());
        out[16..20].copy_from_slice(&self.rtp_timestamp.to_be_bytes());
        out[20..24].copy_from_slice(&self.packet_count.to_be_bytes());
        out[24..28].copy_from_slice(&self.octet_count.to_be_bytes());
        out
    }

    /// The compound packet RFC 3550 §6.1 requires: this SR, then an SDES chunk with the
    /// source's CNAME (at most 255 bytes of it are sent).
    pub fn compound(&self, cname: &str) -> Vec<u8> {
        let cname = &cname.as_bytes()[..cname.len().min(255)];
        // SSRC, CNAME item (type, length, text), the terminating null item, then zero
        // padding to a 32-bit boundary (at least one null byte ends the item list).
        let chunk = 4 + 2 + cname.len();
        let chunk_padded = (chunk + 1).div_ceil(4) * 4;
        let sdes_len = 4 + chunk_padded;
        let mut out = Vec::with_capacity(28 + sdes_len);
        out.extend_from_slice(&self.to_bytes());
        out.push(0x81); // V=2, P=0, SC=1
        out.push(RTCP_SDES);
        out.extend_from_slice(&((sdes_len / 4 - 1) as u16).to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.push(1); // CNAME
        out.push(cname.len() as u8);
        out.extend_from_slice(cname);
        out.resize(28 + sdes_len, 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_time_of_known_instants() {
        assert_eq!(
            NtpTime::from_system_time(UNIX_EPOCH).0,
            NTP_UNIX_OFFSET << 32
        );
        let half = UNIX_EPOCH + Duration::from_millis(1500);
        assert_eq!(
            NtpTime::from_system_time(half).0,
            ((NTP_UNIX_OFFSET + 1) << 32) | 0x8000_0000
        );
        assert_eq!(NtpTime(0x0123_4567_89ab_cdef).middle(), 0x4567_89ab);
    }

    #[test]
    fn sender_report_layout() {
        let sr = SenderReport {
            ssrc: 0x1122_3344,
            ntp: NtpTime(0xaabb_ccdd_eeff_0011),
            rtp_timestamp: 90_000,
            packet_count: 7,
            octet_count: 8400,
        };
        let bytes = sr.to_bytes();
        assert_eq!(&bytes[..8], &[0x80, 200, 0, 6, 0x11, 0x22, 0x33, 0x44]);
        assert_eq!(&bytes[8..16], &0xaabb_ccdd_eeff_0011u64.to_be_bytes());
        assert_eq!(&bytes[16..20], &90_000u32.to_be_bytes());
        assert_eq!(&bytes[20..24], &7u32.to_be_bytes());
        assert_eq!(&bytes[24..28], &8400u32.to_be_bytes());
    }

    /// Every RTCP packet of the compound is whole: its length field covers it exactly, and
    /// the SDES chunk ends with a null item and padding to 32 bits.
    #[test]
    fn compound_packets_are_well_formed_for_every_cname_length() {
        let sr = SenderReport {
            ssrc: 5,
            ntp: NtpTime(1),
            rtp_timestamp: 2,
            packet_count: 3,
            octet_count: 4,
        };
        for len in [0, 1, 2, 3, 4, 5, 6, 10, 255, 300] {
            let cname = "c".repeat(len);
            let packet = sr.compound(&cname);
            assert_eq!(packet.len() % 4, 0, "cname of {len}");
            let mut rest = &packet[..];
            let mut types = Vec::new();
            while !rest.is_empty() {
                assert_eq!(rest[0] >> 6, 2);
                let words = usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1;
                types.push(rest[1]);
                if rest[1] == RTCP_SDES {
                    let sent = len.min(255);
                    assert_eq!(&rest[4..8], &5u32.to_be_bytes());
                    assert_eq!((rest[8], usize::from(rest[9])), (1, sent));
                    assert!(rest[10 + sent..words * 4].iter().all(|b| *b == 0));
                    assert!(words * 4 > 10 + sent, "a null item ends the list");
                }
                rest = &rest[words * 4..];
            }
            assert_eq!(types, [RTCP_SR, RTCP_SDES]);
        }
    }
}
