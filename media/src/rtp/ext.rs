//! RTP header extensions a live sender puts on its packets (RFC 8285), encoded: the payloads,
//! not the extension block around them (the RTP stack in use writes that, with the id the
//! SDP negotiated).
//!
//! - **playout-delay** (`http://www.webrtc.org/experiments/rtp-hdrext/playout-delay`): the
//!   sender's bounds on the receiver's playout delay. `min = max = 0` asks the receiver to
//!   render each frame as soon as it is decoded, without a smoothing jitter buffer: what a
//!   live camera on a LAN wants.
//! - **abs-capture-time** (`http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time`):
//!   when the frame was captured, as NTP time on the sender's clock, so the receiver can show
//!   capture-to-display latency (`requestVideoFrameCallback`'s `captureTime`).
//!
//! ```
//! use std::time::Duration;
//! use stackctl_media::rtp::{abs_capture_time, ntp_of_unix_ns, playout_delay};
//!
//! assert_eq!(playout_delay(Duration::ZERO, Duration::ZERO), [0, 0, 0]);
//! // 1970-01-01T00:00:00.5 as NTP: 2,208,988,800 s since 1900, and half a second.
//! let ntp = ntp_of_unix_ns(500_000_000);
//! assert_eq!(abs_capture_time(ntp), [0x83, 0xaa, 0x7e, 0x80, 0x80, 0, 0, 0]);
//! ```

use std::time::Duration;

/// The playout-delay extension's URI (as SDP's `a=extmap` names it).
pub const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// The abs-capture-time extension's URI.
pub const ABS_CAPTURE_TIME_URI: &str =
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";

/// The most playout-delay can say: 4095 units of 10 ms.
pub const MAX_PLAYOUT_DELAY: Duration = Duration::from_millis(40_950);

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// The playout-delay payload: `min` and `max` in 10 ms units, 12 bits each (rounded down,
/// clamped to [`MAX_PLAYOUT_DELAY`]).
pub fn playout_delay(min: Duration, max: Duration) -> [u8; 3] {
    let units = |d: Duration| (d.min(MAX_PLAYOUT_DELAY).as_millis() / 10) as u16;
    let (min, max) = (units(min), units(max));
    [
        (min >> 4) as u8,
        ((min & 0xf) << 4) as u8 | (max >> 8) as u8,
        max as u8,
    ]
}

/// The abs-capture-time payload without the optional clock offset: the 64-bit NTP timestamp
/// (Q32.32 seconds since 1900), big-endian.
pub fn abs_capture_time(ntp: u64) -> [u8; 8] {
    ntp.to_be_bytes()
}

/// A Unix time in nanoseconds as a 64-bit NTP timestamp (Q32.32 seconds since 1900).
pub fn ntp_of_unix_ns(unix_ns: u64) -> u64 {
    let secs = unix_ns / 1_000_000_000 + NTP_UNIX_OFFSET_SECS;
    let nanos = unix_ns % 1_000_000_000;
    // The fraction: nanos / 1e9 in units of 2^-32 s (fits: nanos < 2^30).
    let fraction = (nanos << 32) / 1_000_000_000;
    (secs << 32) | fraction
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
    fn playout_delay_packs_two_twelve_bit_fields() {
        let ms = Duration::from_millis;
        assert_eq!(playout_delay(ms(0), ms(0)), [0, 0, 0]);
        // 100 ms = 10 units (0x00a), 1 s = 100 units (0x064).
        assert_eq!(playout_delay(ms(100), ms(1000)), [0x00, 0xa0, 0x64]);
        assert_eq!(playout_delay(ms(40_950), ms(999_999)), [0xff, 0xff, 0xff]);
        assert_eq!(
            playout_delay(ms(19), ms(19)),
            [0x00, 0x10, 0x01],
            "rounded down"
        );
    }

    #[test]
    fn ntp_time_of_unix_and_monotonic_instants() {
        assert_eq!(ntp_of_unix_ns(0), NTP_UNIX_OFFSET_SECS << 32);
        assert_eq!(ntp_of_unix_ns(1_250_000_000) & 0xffff_ffff, 1 << 30);
        assert_eq!(
            ntp_of_unix_ns(1_250_000_000) >> 32,
            NTP_UNIX_OFFSET_SECS + 1
        );
        // The largest fraction stays within the second: no carry into the seconds.
        assert_eq!(ntp_of_unix_ns(999_999_999) >> 32, NTP_UNIX_OFFSET_SECS);
        assert_eq!(ntp_of_unix_ns(999_999_999) & 0xffff_ffff, 0xffff_fffb);
        // Captured 30 ms before now on the monotonic clock: 30 ms before now on the wall.
        assert_eq!(unix_ns_of_monotonic(970, 1_000, 5_000), 4_970);
        assert_eq!(unix_ns_of_monotonic(2_000, 1_000, 5_000), 5_000);
        assert_eq!(unix_ns_of_monotonic(0, 10_000, 5_000), 0);
    }
}
