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
//! use stackctl_media::rtp::{NtpTime, abs_capture_time, playout_delay};
//!
//! assert_eq!(playout_delay(Duration::ZERO, Duration::ZERO), [0, 0, 0]);
//! // 1970-01-01T00:00:00.5 as NTP: 2,208,988,800 s since 1900, and half a second.
//! let ntp = NtpTime::from_unix_ns(500_000_000);
//! assert_eq!(abs_capture_time(ntp), [0x83, 0xaa, 0x7e, 0x80, 0x80, 0, 0, 0]);
//! ```

use std::time::Duration;

use super::ntp::NtpTime;

/// The playout-delay extension's URI (as SDP's `a=extmap` names it).
pub const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// The abs-capture-time extension's URI.
pub const ABS_CAPTURE_TIME_URI: &str =
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";

/// The most playout-delay can say: 4095 units of 10 ms.
pub const MAX_PLAYOUT_DELAY: Duration = Duration::from_millis(40_950);

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
pub fn abs_capture_time(ntp: NtpTime) -> [u8; 8] {
    ntp.0.to_be_bytes()
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
    fn abs_capture_time_is_the_ntp_timestamp_big_endian() {
        let ntp = NtpTime(0x0102_0304_0506_0708);
        assert_eq!(abs_capture_time(ntp), [1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
