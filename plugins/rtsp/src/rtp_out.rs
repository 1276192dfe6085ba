//! One client's RTP: its own header in front of each shared payload, framed for the RTSP
//! connection (`$`, channel, length: RFC 2326 §10.12) or as UDP datagrams; and its RTCP
//! sender reports.

use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use stackctl_media::monotonic_ns;
use stackctl_media::rtp::{NtpTime, RtpHeader, SenderReport, rtp_timestamp};

use crate::feed::{ClientStats, Queued};
use crate::sdp::PAYLOAD_TYPE;

/// The CNAME of every sender report.
const CNAME: &str = "stackctl";

/// A client's RTP stream identity, random per session (RFC 3550 §5.1, §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpIdentity {
    /// Its SSRC.
    pub ssrc: u32,
    /// Added to the 90 kHz capture clock to make its RTP timestamps.
    pub ts_origin: u32,
}

impl RtpIdentity {
    /// The RTP timestamp of a capture time.
    pub fn timestamp(&self, capture_ns: u64) -> u32 {
        rtp_timestamp(capture_ns, self.ts_origin)
    }

    /// The headers of a queued frame's packets, in order, with their payloads.
    pub fn packets<'a>(
        &self,
        q: &'a Queued,
    ) -> impl Iterator<Item = (RtpHeader, &'a bytes::Bytes)> + 'a {
        let ts = self.timestamp(q.au.timestamp_ns);
        let ssrc = self.ssrc;
        let last = q.au.payloads.len().saturating_sub(1);
        q.au.payloads.iter().enumerate().map(move |(i, payload)| {
            (
                RtpHeader {
                    payload_type: PAYLOAD_TYPE,
                    marker: i == last,
                    // Wraps, as RTP numbers do.
                    sequence: q.seq.wrapping_add(i as u16),
                    timestamp: ts,
                    ssrc,
                },
                payload,
            )
        })
    }

    /// Appends a frame's packets to `out`, each framed for interleaving on `channel`, and
    /// counts them in `stats`. Returns the bytes appended.
    pub fn interleave_frame(
        &self,
        out: &mut Vec<u8>,
        q: &Queued,
        channel: u8,
        stats: &ClientStats,
    ) -> usize {
        let start = out.len();
        let mut payload_bytes = 0;
        for (header, payload) in self.packets(q) {
            let len = (stackctl_media::rtp::RTP_HEADER_LEN + payload.len()) as u16;
            out.extend_from_slice(&[b'$', channel]);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&header.to_bytes());
            out.extend_from_slice(payload);
            payload_bytes += payload.len();
        }
        stats
            .packets_sent
            .fetch_add(q.au.payloads.len() as u64, Relaxed);
        stats
            .payload_bytes_sent
            .fetch_add(payload_bytes as u64, Relaxed);
        let written = out.len() - start;
        stats.bytes_sent.fetch_add(written as u64, Relaxed);
        written
    }

    /// The compound RTCP packet (SR + SDES) for now, from the counts in `stats`.
    pub fn sender_report(&self, stats: &ClientStats) -> Vec<u8> {
        SenderReport {
            ssrc: self.ssrc,
            ntp: NtpTime::from_system_time(SystemTime::now()),
            rtp_timestamp: self.timestamp(monotonic_ns()),
            // RTCP's counts are 32 bits and wrap.
            packet_count: stats.packets_sent.load(Relaxed) as u32,
            octet_count: stats.payload_bytes_sent.load(Relaxed) as u32,
        }
        .compound(CNAME)
    }
}

/// Appends `data` framed for interleaving on `channel` (at most 65,535 bytes of it).
pub fn interleave(out: &mut Vec<u8>, channel: u8, data: &[u8]) {
    let data = &data[..data.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&[b'$', channel]);
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use stackctl_media::rtp::{MAX_PAYLOAD, RtpAccessUnit};

    #[test]
    fn interleaved_packets_carry_consecutive_numbers_and_one_marker() {
        let mut data = vec![0, 0, 0, 1, 0x41];
        data.resize(3000, 7);
        let au = RtpAccessUnit::new(&data, None, None, 1_000_000_000, MAX_PAYLOAD).unwrap();
        let q = Queued {
            au: Arc::new(au),
            seq: 65_535,
        };
        let id = RtpIdentity {
            ssrc: 9,
            ts_origin: 10,
        };
        let stats = ClientStats::default();
        let mut out = Vec::new();
        let n = id.interleave_frame(&mut out, &q, 4, &stats);
        assert_eq!(n, out.len());
        let mut rest = &out[..];
        let mut seen = Vec::new();
        while !rest.is_empty() {
            assert_eq!((rest[0], rest[1]), (b'$', 4));
            let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            let h = RtpHeader::parse(&rest[4..4 + len]).unwrap();
            assert_eq!((h.ssrc, h.timestamp, h.payload_type), (9, 90_010, 96));
            seen.push((h.sequence, h.marker));
            rest = &rest[4 + len..];
        }
        assert_eq!(seen, [(65_535, false), (0, false), (1, true)]);
        assert_eq!(stats.packets_sent.load(Relaxed), 3);
        assert_eq!(stats.bytes_sent.load(Relaxed), out.len() as u64);
        assert_eq!(
            stats.payload_bytes_sent.load(Relaxed),
            q.au.payload_bytes() as u64
        );
        let sr = id.sender_report(&stats);
        assert_eq!((sr[1], &sr[20..24]), (200, &3u32.to_be_bytes()[..]));
        let mut framed = Vec::new();
        interleave(&mut framed, 1, &sr);
        assert_eq!(&framed[..4], &[b'$', 1, 0, sr.len() as u8]);
    }
}
