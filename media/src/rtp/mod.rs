//! H.264 over RTP: the packetizer (RFC 6184, packetization-mode 1), the 90 kHz clock, the RTP
//! header, the header extensions a live sender adds ([`playout_delay`], [`abs_capture_time`]),
//! NTP time and RTCP sender reports.
//!
//! An access unit is cut into payloads once and the payloads are shared by every receiver
//! (WebRTC viewers, RTSP clients, a WHIP publication); each receiver writes only its own
//! 12-byte RTP header in front.
//!
//! ```
//! use stackctl_media::rtp::{MAX_PAYLOAD, packetize, rtp_timestamp};
//!
//! let sps = [0x67, 0x42, 0xc0, 0x1e, 0xda];
//! let pps = [0x68, 0xce, 0x3c, 0x80];
//! let idr = vec![0x65; 3000];
//! let payloads = packetize(&[&sps, &pps, &idr], MAX_PAYLOAD);
//! // SPS and PPS in one STAP-A, the IDR in three FU-A fragments.
//! assert_eq!(payloads.len(), 4);
//! assert_eq!(rtp_timestamp(1_000_000_000, 0), 90_000);
//! ```

mod access_unit;
mod clock;
mod ext;
mod header;
mod packetize;
mod report;
mod sender_report;

pub use access_unit::RtpAccessUnit;
pub use clock::{RTP_CLOCK_HZ, rtp_timestamp, ticks_of_ns};
pub use ext::{
    ABS_CAPTURE_TIME_URI, MAX_PLAYOUT_DELAY, NTP_UNIX_OFFSET_SECS, PLAYOUT_DELAY_URI,
    abs_capture_time, ntp_of_unix_ns, playout_delay, unix_ns_of_monotonic,
};
pub use header::{RTP_HEADER_LEN, RtpHeader};
pub use packetize::{FU_A, MAX_PAYLOAD, STAP_A, packetize};
pub use report::{report_times, sender_report};
pub use sender_report::{NtpTime, RTCP_SDES, RTCP_SR, SenderReport};
