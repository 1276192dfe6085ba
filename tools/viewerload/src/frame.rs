//! A received access unit and its end-to-end latency on the shared monotonic clock.

use crate::depacketize;

/// The RTP clock rate of H.264 video.
pub const RTP_CLOCK_HZ: u64 = 90_000;

/// Latencies at or above this are taken as "the server's RTP timestamps are not on our clock".
pub const MAX_PLAUSIBLE_LATENCY_NS: u64 = 10_000_000_000;

const NANOS_PER_SEC: u64 = 1_000_000_000;
const TICKS_MODULO: u64 = 1 << 32;

/// One access unit (all RTP packets sharing a timestamp), reassembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFrame {
    /// The NAL units, each behind a 4-byte start code `00 00 00 01`. For an incomplete frame,
    /// only the NAL units that arrived intact.
    pub annexb: Vec<u8>,
    /// The RTP timestamp (90 kHz) shared by the frame's packets.
    pub rtp_timestamp: u32,
    /// `CLOCK_MONOTONIC` (ns) when the frame's first packet reached the viewer.
    pub first_packet_ns: u64,
    /// `CLOCK_MONOTONIC` (ns) when the frame's last packet reached the viewer.
    pub last_packet_ns: u64,
    /// RTP packets received for this frame (duplicates not counted).
    pub packets: u32,
    /// False if a packet of the frame was lost or a payload was malformed.
    pub complete: bool,
}

impl ReceivedFrame {
    /// End-to-end latency in ns: last packet arrival minus the capture time in the RTP
    /// timestamp.
    ///
    /// Meaningful only when the server runs with `rtp_timestamp_origin = "monotonic"` on this
    /// host; `None` when the result is implausible (negative or ≥ 10 s), which is what a
    /// random-origin timestamp gives.
    pub fn latency_ns(&self) -> Option<u64> {
        latency_ns(self.rtp_timestamp, self.last_packet_ns)
    }

    /// Whether the frame holds an IDR slice (NAL type 5).
    pub fn is_idr(&self) -> bool {
        self.nal_types().contains(&5)
    }

    /// The NAL unit types in the frame, in order.
    pub fn nal_types(&self) -> Vec<u8> {
        depacketize::nal_types(&self.annexb)
    }
}

/// RTP timestamp (90 kHz, mod 2^32) of a `CLOCK_MONOTONIC` instant, as the server computes it
/// in monotonic-origin mode.
pub fn rtp_timestamp_of(monotonic_ns: u64) -> u32 {
    let ticks = u128::from(monotonic_ns) * u128::from(RTP_CLOCK_HZ) / u128::from(NANOS_PER_SEC);
    // Truncation is the mod 2^32 the server applies.
    (ticks % u128::from(TICKS_MODULO)) as u32
}

/// Age in ns, at `now_ns`, of a frame stamped `rtp_timestamp` in monotonic-origin mode.
///
/// The timestamp only keeps the low 32 bits of the 90 kHz tick count (it wraps every ~13.3 h),
/// so it is unwrapped against `now`: the frame is taken to be the latest instant before `now`
/// with those low bits. The result is rounded to the tick (11.1 µs). `None` if that age is
/// ≥ [`MAX_PLAUSIBLE_LATENCY_NS`] — a frame from the future wraps to a huge age and lands there
/// too.
pub fn latency_ns(rtp_timestamp: u32, now_ns: u64) -> Option<u64> {
    let now_ticks = u128::from(now_ns) * u128::from(RTP_CLOCK_HZ) / u128::from(NANOS_PER_SEC);
    let now_low = (now_ticks % u128::from(TICKS_MODULO)) as u32;
    let age_ticks = now_low.wrapping_sub(rtp_timestamp);
    let frame_ticks = now_ticks.checked_sub(u128::from(age_ticks))?;
    // The camera's instant is somewhere in [frame_ticks, frame_ticks + 1) ticks; its start,
    // rounded up to a whole ns, is the closest bound that never makes the latency negative.
    let frame_ns = (frame_ticks * u128::from(NANOS_PER_SEC)).div_ceil(u128::from(RTP_CLOCK_HZ));
    let age = u128::from(now_ns).checked_sub(frame_ns)?;
    let age = u64::try_from(age).ok()?;
    (age < MAX_PLAUSIBLE_LATENCY_NS).then_some(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn latency_matches_a_known_delay() {
        let capture = 1_234 * NANOS_PER_SEC + 567 * MS;
        let ts = rtp_timestamp_of(capture);
        let l = latency_ns(ts, capture + 42 * MS).unwrap();
        assert!(l.abs_diff(42 * MS) <= 12_000, "{l}");
    }

    #[test]
    fn latency_unwraps_across_the_32_bit_timestamp_wrap() {
        // 2^32 ticks at 90 kHz is 47721.858... s; pick a capture just before the 3rd wrap and a
        // reception just after it, so the timestamp is near u32::MAX and now's low bits near 0.
        let wrap_ns = (3 * TICKS_MODULO) as u128 * NANOS_PER_SEC as u128 / RTP_CLOCK_HZ as u128;
        let capture = wrap_ns as u64 - 5 * MS;
        let ts = rtp_timestamp_of(capture);
        assert!(ts > u32::MAX - 1_000, "{ts}");
        let now = capture + 30 * MS;
        assert!(rtp_timestamp_of(now) < 10_000);
        let l = latency_ns(ts, now).unwrap();
        assert!(l.abs_diff(30 * MS) <= 12_000, "{l}");
    }

    #[test]
    fn zero_latency_is_plausible() {
        let t = 99 * NANOS_PER_SEC;
        assert!(latency_ns(rtp_timestamp_of(t), t).unwrap() < 12_000);
    }

    #[test]
    fn random_origin_and_future_timestamps_are_implausible() {
        let now = 5_000 * NANOS_PER_SEC;
        // A frame "from the future" wraps to ~13 h.
        assert_eq!(latency_ns(rtp_timestamp_of(now + 50 * MS), now), None);
        // 11 s old: over the limit.
        assert_eq!(
            latency_ns(rtp_timestamp_of(now - 11 * NANOS_PER_SEC), now),
            None
        );
        // An arbitrary random-origin timestamp is almost surely implausible.
        assert_eq!(
            latency_ns(rtp_timestamp_of(now).wrapping_add(0x4000_0000), now),
            None
        );
    }

    #[test]
    fn early_after_boot_never_underflows() {
        assert_eq!(latency_ns(u32::MAX, 1_000), None);
    }

    #[test]
    fn frame_helpers_read_nal_types() {
        let f = ReceivedFrame {
            annexb: vec![0, 0, 0, 1, 0x67, 0, 0, 0, 1, 0x68, 0, 0, 0, 1, 0x65, 9],
            rtp_timestamp: 0,
            first_packet_ns: 0,
            last_packet_ns: 0,
            packets: 1,
            complete: true,
        };
        assert_eq!(f.nal_types(), [7, 8, 5]);
        assert!(f.is_idr());
    }
}
