//! Wall-clock time as RTP's control protocol carries it: 64-bit NTP timestamps (RFC 3550 §4),
//! and the wall-clock time of a camera's `CLOCK_MONOTONIC` capture instant. Sender reports
//! ([`SenderReport`](super::SenderReport)) and the abs-capture-time extension
//! ([`abs_capture_time`](super::abs_capture_time)) both say time this way.
//!
//! ```
//! use stackctl_media::rtp::{NTP_UNIX_OFFSET_SECS, NtpTime};
//!
//! // 1970-01-01T00:00:00.5: 2,208,988,800 s since 1900, and half a second.
//! let ntp = NtpTime::from_unix_ns(500_000_000);
//! assert_eq!(ntp.0, (NTP_UNIX_OFFSET_SECS << 32) | 0x8000_0000);
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp: seconds since 1900 in the high 32 bits, the fraction in the low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// The NTP time of a Unix time in nanoseconds.
    pub fn from_unix_ns(unix_ns: u64) -> Self {
        let secs = unix_ns / 1_000_000_000 + NTP_UNIX_OFFSET_SECS;
        let nanos = unix_ns % 1_000_000_000;
        // The fraction: nanos / 1e9 in units of 2^-32 s (fits: nanos < 2^30).
        let fraction = (nanos << 32) / 1_000_000_000;
        // NTP seconds wrap in 2036 (era 1): truncation is the wire format.
        Self(((secs & 0xffff_ffff) << 32) | fraction)
    }

    /// The NTP time of a wall-clock instant (instants before 1970 count as 1970).
    pub fn from_system_time(t: SystemTime) -> Self {
        let since_unix = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Self::from_unix_ns(u64::try_from(since_unix.as_nanos()).unwrap_or(u64::MAX))
    }

    /// The NTP time of a `CLOCK_MONOTONIC` instant `capture_ns` (the camera stamps frames on
    /// that clock), given both clocks read now. See [`unix_ns_of_monotonic`].
    pub fn of_monotonic(capture_ns: u64, now_monotonic_ns: u64, now_unix_ns: u64) -> Self {
        Self::from_unix_ns(unix_ns_of_monotonic(
            capture_ns,
            now_monotonic_ns,
            now_unix_ns,
        ))
    }

    /// The middle 32 bits, as a receiver report's "last SR" field names a report.
    pub fn middle(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// The Unix time (ns) of a `CLOCK_MONOTONIC` instant `capture_ns`, given both clocks read now:
/// the camera stamps frames on the monotonic clock, NTP time is wall-clock time. A capture
/// "in the future" (a clock read before the camera's) maps to `now_unix_ns`.
pub fn unix_ns_of_monotonic(capture_ns: u64, now_monotonic_ns: u64, now_unix_ns: u64) -> u64 {
    now_unix_ns.saturating_sub(now_monotonic_ns.saturating_sub(capture_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_time_of_unix_and_monotonic_instants() {
        assert_eq!(NtpTime::from_unix_ns(0).0, NTP_UNIX_OFFSET_SECS << 32);
        let t = NtpTime::from_unix_ns(1_250_000_000).0;
        assert_eq!(t & 0xffff_ffff, 1 << 30);
        assert_eq!(t >> 32, NTP_UNIX_OFFSET_SECS + 1);
        // The largest fraction stays within the second: no carry into the seconds.
        let t = NtpTime::from_unix_ns(999_999_999).0;
        assert_eq!(t >> 32, NTP_UNIX_OFFSET_SECS);
        assert_eq!(t & 0xffff_ffff, 0xffff_fffb);
        // Captured 30 ms before now on the monotonic clock: 30 ms before now on the wall.
        assert_eq!(unix_ns_of_monotonic(970, 1_000, 5_000), 4_970);
        assert_eq!(unix_ns_of_monotonic(2_000, 1_000, 5_000), 5_000);
        assert_eq!(unix_ns_of_monotonic(0, 10_000, 5_000), 0);
        assert_eq!(
            NtpTime::of_monotonic(1_000_000_000, 1_500_000_000, 2_000_000_000),
            NtpTime::from_unix_ns(1_500_000_000)
        );
    }

    #[test]
    fn system_time_and_the_2036_wrap() {
        assert_eq!(
            NtpTime::from_system_time(UNIX_EPOCH + Duration::from_millis(1500)).0,
            ((NTP_UNIX_OFFSET_SECS + 1) << 32) | 0x8000_0000
        );
        assert_eq!(
            NtpTime::from_system_time(UNIX_EPOCH - Duration::from_secs(1)),
            NtpTime::from_unix_ns(0)
        );
        // 2036-02-07T06:28:16Z is NTP second 2^32: era 1 starts again at 0.
        let era1 = (1u64 << 32) - NTP_UNIX_OFFSET_SECS;
        assert_eq!(NtpTime::from_unix_ns(era1 * 1_000_000_000 + 7).0 >> 32, 0);
        assert_eq!(NtpTime(0x0123_4567_89ab_cdef).middle(), 0x4567_89ab);
    }
}
