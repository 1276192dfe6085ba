//! Camera frames as str0m writes them: the bus bridged into the runtime, and each access unit
//! made ready once for every viewer (parameter sets in front of an IDR that lacks them, RTP time
//! from the capture clock).

use std::sync::Arc;
use std::time::{Duration, Instant};

use stackctl_core::Frame;
use stackctl_core::bus::Subscription;
use stackctl_media::h264::with_params;
use str0m::media::{Frequency, MediaTime};
use tokio::sync::mpsc;

/// Frames in flight between the bridge thread and the runtime. When the loop falls this far
/// behind, the bridge blocks, the bus queue fills, and the bus itself skips to the next IDR.
const BRIDGE_QUEUE: usize = 8;

/// Starts a thread that moves every frame of `subscription` into the returned channel; the
/// channel closes when the bus does (the camera's reader ended).
pub fn bridge(subscription: Subscription) -> std::io::Result<mpsc::Receiver<Arc<Frame>>> {
    let (tx, rx) = mpsc::channel(BRIDGE_QUEUE);
    std::thread::Builder::new()
        .name("frame-bridge".into())
        .spawn(move || {
            while let Ok(frame) = subscription.recv() {
                if tx.blocking_send(frame).is_err() {
                    break;
                }
            }
        })?;
    Ok(rx)
}

/// One access unit ready to be written to every viewer.
#[derive(Debug, Clone)]
pub struct Media {
    /// Annex-B, with the cached SPS and PPS in front when it is an IDR without them. Shared
    /// by every viewer: str0m takes an `Arc<[u8]>`.
    pub data: Arc<[u8]>,
    /// The capture time at 90 kHz.
    pub rtp_time: MediaTime,
    /// The capture time as an `Instant` (str0m maps RTP time to it in sender reports).
    pub wallclock: Instant,
    /// A viewer may start here: an IDR with its parameter sets.
    pub starts_stream: bool,
    /// `profile_idc` of the stream's SPS, to pick the matching H.264 format.
    pub profile_idc: Option<u8>,
}

impl Media {
    /// Prepares `frame`, whose data is copied once here.
    pub fn new(frame: &Frame) -> Self {
        let meta = frame.meta();
        let params = frame.params();
        let inband = frame.has_inband_params();
        let data: Arc<[u8]> = match params {
            Some(params) if frame.is_idr() && !inband => {
                match with_params(params, frame.data(), frame.info()) {
                    Ok(pieces) => {
                        let mut out = Vec::with_capacity(pieces.byte_len());
                        pieces.for_each(|piece| out.extend_from_slice(piece));
                        out.into()
                    }
                    // Cannot happen for a frame the source analysed; send it as it is.
                    Err(_) => frame.data().into(),
                }
            }
            _ => frame.data().into(),
        };
        let now_ns = stackctl_media::clock::monotonic_ns();
        let age = Duration::from_nanos(now_ns.saturating_sub(meta.timestamp_ns));
        let now = Instant::now();
        Self {
            data,
            rtp_time: rtp_time(meta.timestamp_ns),
            wallclock: now.checked_sub(age).unwrap_or(now),
            starts_stream: frame.is_idr() && (inband || params.is_some()),
            profile_idc: params.map(|p| p.sps.get(1).copied().unwrap_or(0)),
        }
    }
}

/// A `CLOCK_MONOTONIC` instant in 90 kHz ticks. str0m puts `numer() as u32` (mod 2^32) in the
/// RTP header unchanged: no random offset is added (checked in str0m 0.25's payloader and
/// `StreamTx::write_rtp`), so the wire carries `ns * 90000 / 1e9 mod 2^32`.
pub fn rtp_time(monotonic_ns: u64) -> MediaTime {
    let ticks = u128::from(monotonic_ns) * 90_000 / 1_000_000_000;
    // u64 ticks last 6.5 million years of uptime.
    MediaTime::new(
        u64::try_from(ticks).unwrap_or(u64::MAX),
        Frequency::NINETY_KHZ,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_time_is_the_monotonic_clock_at_90_khz() {
        // 1234.5 s → 111,105,000 ticks.
        assert_eq!(rtp_time(1_234_500_000_000).numer(), 111_105_000);
        // Past 2^32 ticks (~13.3 h): the full count here, truncated on the wire.
        let t = rtp_time(50_000 * 1_000_000_000);
        assert_eq!(t.numer(), 4_500_000_000);
        assert_eq!(t.numer() as u32, (4_500_000_000u64 % (1 << 32)) as u32);
    }
}
