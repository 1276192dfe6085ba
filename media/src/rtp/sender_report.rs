//! RTCP sender reports (RFC 3550 §6.4.1), sent with an SDES CNAME as a compound packet
//! (§6.1): what lets a receiver map a stream's RTP timestamps to wall-clock time, and what
//! RTSP and WebRTC receivers expect from a sender every few seconds.
//!
//! The stream's RTP clock is the camera's `CLOCK_MONOTONIC` (plus an origin per receiver), so
//! the mapping is read off both clocks at the instant of the report ([`SenderReport::at`]),
//! not off the last packet sent: a frame sent late (a new viewer's replay of the GOP) does
//! not skew it.
//!
//! ```
//! use stackctl_media::rtp::{NTP_UNIX_OFFSET_SECS, SenderReport};
//!
//! // Monotonic 10 s, wall clock 1970-01-01T00:01:40: RTP time is 10 s of 90 kHz ticks.
//! let sr = SenderReport::at(0x1234_5678, 0, 10_000_000_000, 100_000_000_000, 10, 12_000);
//! assert_eq!((sr.ntp.0 >> 32, sr.rtp_timestamp), (NTP_UNIX_OFFSET_SECS + 100, 900_000));
//! assert_eq!(&sr.to_bytes()[..4], &[0x80, 200, 0, 6]);
//! ```

use super::clock::rtp_timestamp;
use super::ntp::NtpTime;

/// The RTCP packet type of a sender report.
pub const RTCP_SR: u8 = 200;
/// The RTCP packet type of source descriptions.
pub const RTCP_SDES: u8 = 202;

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
    /// The report of a stream with RTP origin `origin` at the instant both clocks were read:
    /// `now_monotonic_ns` on `CLOCK_MONOTONIC` (the camera's clock, which the RTP timestamps
    /// follow), `now_unix_ns` on the wall clock; `packets` and `octets` (payload bytes) sent
    /// so far, modulo 2^32 as RTCP counts them.
    pub fn at(
        ssrc: u32,
        origin: u32,
        now_monotonic_ns: u64,
        now_unix_ns: u64,
        packets: u32,
        octets: u32,
    ) -> Self {
        Self {
            ssrc,
            ntp: NtpTime::from_unix_ns(now_unix_ns),
            rtp_timestamp: rtp_timestamp(now_monotonic_ns, origin),
            packet_count: packets,
            octet_count: octets,
        }
    }

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
    fn the_mapping_follows_the_clocks_and_the_origin() {
        let sr = SenderReport::at(1, 7, 1_000_000_000, 1_500_000_000, 2, 3);
        assert_eq!(sr.rtp_timestamp, 90_007);
        assert_eq!(sr.ntp.0 & 0xffff_ffff, 1 << 31, "half a second");
        assert_eq!((sr.ssrc, sr.packet_count, sr.octet_count), (1, 2, 3));
        // Later reports keep RTP time and NTP time in step.
        let later = SenderReport::at(1, 7, 3_000_000_000, 3_500_000_000, 2, 3);
        assert_eq!(later.rtp_timestamp.wrapping_sub(sr.rtp_timestamp), 180_000);
        assert_eq!((later.ntp.0 - sr.ntp.0) >> 32, 2);
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
