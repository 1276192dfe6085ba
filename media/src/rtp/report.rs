//! RTCP sender reports (RFC 3550 §6.4.1) for a stream whose RTP clock is the camera's
//! `CLOCK_MONOTONIC` (plus an origin): the report maps RTP time to wall-clock (NTP) time, so a
//! receiver knows when each frame was captured and can show capture-to-display latency.
//!
//! The mapping is read off the clocks at the instant of the report, not off the last packet
//! sent: a frame sent late (a new viewer's replay of the GOP) does not skew it.
//!
//! ```
//! use stackctl_media::rtp::{NTP_UNIX_OFFSET_SECS, report_times, sender_report};
//!
//! // Monotonic 10 s, wall clock 1970-01-01T00:01:40: RTP time is 10 s of 90 kHz ticks.
//! let (ntp, rtp) = report_times(10_000_000_000, 100_000_000_000, 0);
//! assert_eq!((ntp >> 32, rtp), (NTP_UNIX_OFFSET_SECS + 100, 900_000));
//! let sr = sender_report(0x1234_5678, ntp, rtp, 10, 12_000);
//! assert_eq!(&sr[..4], &[0x80, 200, 0, 6]);
//! ```

use super::clock::rtp_timestamp;
use super::ext::ntp_of_unix_ns;

/// The RTCP packet type of a sender report.
pub use super::sender_report::RTCP_SR;

/// NTP and RTP time of the instant both clocks were read: `now_monotonic_ns` on
/// `CLOCK_MONOTONIC`, `now_unix_ns` on the wall clock, for a stream with RTP origin `origin`.
pub fn report_times(now_monotonic_ns: u64, now_unix_ns: u64, origin: u32) -> (u64, u32) {
    (
        ntp_of_unix_ns(now_unix_ns),
        rtp_timestamp(now_monotonic_ns, origin),
    )
}

/// A sender report without report blocks (a send-only stream receives nothing to report on):
/// 28 bytes, `packets` and `octets` (payload bytes) sent so far, modulo 2^32.
pub fn sender_report(ssrc: u32, ntp: u64, rtp: u32, packets: u32, octets: u32) -> [u8; 28] {
    let mut sr = [0u8; 28];
    // Version 2, no padding, no report block; length in 32-bit words minus one.
    sr[0] = 0x80;
    sr[1] = RTCP_SR;
    sr[2..4].copy_from_slice(&6u16.to_be_bytes());
    sr[4..8].copy_from_slice(&ssrc.to_be_bytes());
    sr[8..16].copy_from_slice(&ntp.to_be_bytes());
    sr[16..20].copy_from_slice(&rtp.to_be_bytes());
    sr[20..24].copy_from_slice(&packets.to_be_bytes());
    sr[24..28].copy_from_slice(&octets.to_be_bytes());
    sr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_follows_the_clocks_and_the_origin() {
        let (ntp, rtp) = report_times(1_000_000_000, 1_500_000_000, 7);
        assert_eq!(rtp, 90_007);
        assert_eq!(ntp & 0xffff_ffff, 1 << 31, "half a second");
        // Later reports keep RTP time and NTP time in step.
        let (ntp2, rtp2) = report_times(3_000_000_000, 3_500_000_000, 7);
        assert_eq!(rtp2.wrapping_sub(rtp), 180_000);
        assert_eq!((ntp2 - ntp) >> 32, 2);
    }

    #[test]
    fn layout() {
        let sr = sender_report(1, 2 << 32 | 3, 4, 5, 6);
        assert_eq!(
            sr,
            [
                0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0,
                0, 6
            ]
        );
    }
}
