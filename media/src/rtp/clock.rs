//! The 90 kHz RTP clock of H.264 video, derived from the camera's `CLOCK_MONOTONIC` stamps.
//!
//! Media time always comes from the camera's own timestamp, never from an assumed frame rate:
//! the board's camera switcher changes the rate at run time (30 fps by day, 2 fps by night).

/// The RTP clock rate of H.264 video (RFC 6184 §8.2.1).
pub const RTP_CLOCK_HZ: u64 = 90_000;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// 90 kHz ticks of `ns` nanoseconds, truncated (the tick that contains the instant).
pub fn ticks_of_ns(ns: u64) -> u64 {
    // Fits: u64::MAX ns is 584 years, times 90,000 stays far below u128::MAX.
    (u128::from(ns) * u128::from(RTP_CLOCK_HZ) / NANOS_PER_SEC) as u64
}

/// The RTP timestamp (90 kHz, modulo 2^32) of a `CLOCK_MONOTONIC` instant, plus `origin`
/// (a random offset per stream, or 0 to put capture time on the wire).
pub fn rtp_timestamp(monotonic_ns: u64, origin: u32) -> u32 {
    // Truncation to 32 bits is the modulo RTP applies.
    (ticks_of_ns(monotonic_ns) as u32).wrapping_add(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_follow_the_camera_clock() {
        assert_eq!(ticks_of_ns(0), 0);
        assert_eq!(ticks_of_ns(1_000_000_000), 90_000);
        assert_eq!(ticks_of_ns(33_333_333), 2_999);
        assert_eq!(ticks_of_ns(500_000_000), 45_000);
        // 2^32 ticks is about 13.25 h: the timestamp wraps, the tick count does not.
        let wrap_ns = (1u64 << 32) * 1_000_000_000 / 90_000 + 1;
        assert_eq!(rtp_timestamp(wrap_ns, 0), 0);
        assert_eq!(rtp_timestamp(1_000_000_000, u32::MAX), 89_999);
    }
}
