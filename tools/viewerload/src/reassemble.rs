//! Groups RTP packets into access units, detects loss, and depacketizes each frame.
//!
//! A frame is every packet with one RTP timestamp. It ends at the packet with the marker bit,
//! or — if the marker packet never comes — when a packet with another timestamp arrives. It
//! is *complete* only if every sequence number from the one after the previous frame's last
//! packet through its own last packet arrived and depacketized cleanly; otherwise it is still
//! delivered, flagged `complete: false`, with the NAL units that did survive. Loss just before
//! a frame makes that frame incomplete even if the lost packets were the tail of the previous
//! one: from sequence numbers alone the two cannot be told apart, and a decoder cannot use
//! either frame anyway.
//!
//! Packets arriving after their frame was closed (reordered, or repaired by a NACK
//! retransmission too late) are counted as late and dropped.

use crate::depacketize::Depacketizer;
use crate::frame::ReceivedFrame;

/// One RTP packet as the reassembler needs it.
#[derive(Debug, Clone, Copy)]
pub struct RtpIn<'a> {
    /// RTP sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// RTP marker bit: last packet of the access unit.
    pub marker: bool,
    /// RTP payload (H.264 payload format).
    pub payload: &'a [u8],
    /// `CLOCK_MONOTONIC` (ns) at which the packet reached the viewer.
    pub arrival_ns: u64,
}

/// Running totals of one stream's reassembly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReassemblyCounters {
    /// RTP packets received, late and duplicate ones included.
    pub packets: u64,
    /// RTP payload bytes received.
    pub bytes: u64,
    /// Packets never received: the sequence numbers spanned so far minus those that arrived
    /// (RFC 3550's cumulative loss, floored at 0).
    pub lost_packets: u64,
    /// Packets that arrived after their frame had been closed, and were dropped.
    pub late_packets: u64,
    /// Packets received twice within a frame.
    pub duplicate_packets: u64,
    /// Frames delivered, complete or not.
    pub frames: u64,
    /// Frames delivered with `complete: false`.
    pub incomplete_frames: u64,
}

#[derive(Debug)]
struct FrameBuf {
    timestamp: u32,
    /// (extended sequence number, payload), in arrival order.
    packets: Vec<(u64, Vec<u8>)>,
    first_ns: u64,
    last_ns: u64,
}

/// Turns a stream of RTP packets (one SSRC) into [`ReceivedFrame`]s.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// Highest extended sequence number seen.
    highest: Option<u64>,
    /// Extended sequence number of the first packet seen.
    base: u64,
    /// Packets counted against the sequence space (not duplicates, not older than `base`).
    received: u64,
    current: Option<FrameBuf>,
    /// Extended sequence number of the last packet of the last frame closed.
    last_closed: Option<u64>,
    counters: ReassemblyCounters,
}

impl Reassembler {
    /// A reassembler that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The totals so far.
    pub fn counters(&self) -> ReassemblyCounters {
        let mut c = self.counters;
        if let Some(highest) = self.highest {
            c.lost_packets = (highest - self.base + 1).saturating_sub(self.received);
        }
        c
    }

    /// Feeds one packet; returns the frames it closed (zero, one, or two when a timestamp
    /// change closes the previous frame and this packet's marker closes its own).
    pub fn push(&mut self, p: RtpIn<'_>) -> Vec<ReceivedFrame> {
        self.counters.packets += 1;
        self.counters.bytes += p.payload.len() as u64;
        let ext = self.extend(p.sequence_number);
        if ext < self.base || self.last_closed.is_some_and(|last| ext <= last) {
            if ext >= self.base {
                self.received += 1;
            }
            self.counters.late_packets += 1;
            return Vec::new();
        }

        let mut out = Vec::new();
        if self
            .current
            .as_ref()
            .is_some_and(|f| f.timestamp != p.timestamp)
            && let Some(frame) = self.current.take()
        {
            // No marker: complete only if nothing is missing between it and this packet.
            let tail_ok = frame
                .packets
                .iter()
                .map(|(s, _)| *s)
                .max()
                .is_some_and(|max| ext == max + 1);
            out.push(self.close(frame, tail_ok));
        }

        let frame = self.current.get_or_insert_with(|| FrameBuf {
            timestamp: p.timestamp,
            packets: Vec::new(),
            first_ns: p.arrival_ns,
            last_ns: p.arrival_ns,
        });
        if frame.packets.iter().any(|(s, _)| *s == ext) {
            self.counters.duplicate_packets += 1;
            return out;
        }
        self.received += 1;
        frame.packets.push((ext, p.payload.to_vec()));
        frame.last_ns = p.arrival_ns;

        if p.marker
            && let Some(frame) = self.current.take()
        {
            out.push(self.close(frame, true));
        }
        out
    }

    /// Extends a 16-bit sequence number to 64 bits against the highest one seen.
    fn extend(&mut self, seq: u16) -> u64 {
        let Some(highest) = self.highest else {
            // Start well above 0 so packets reordered before the first one stay representable.
            let ext = (1u64 << 32) + u64::from(seq);
            self.highest = Some(ext);
            self.base = ext;
            return ext;
        };
        // Truncation to 16 bits, then the signed distance, is the RFC 3550 unwrap.
        let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
        let ext = highest.saturating_add_signed(delta);
        if ext > highest {
            self.highest = Some(ext);
        }
        ext
    }

    fn close(&mut self, mut frame: FrameBuf, tail_ok: bool) -> ReceivedFrame {
        frame.packets.sort_unstable_by_key(|(s, _)| *s);
        let mut complete = tail_ok;
        let mut expected = self.last_closed.map(|last| last + 1);
        let mut depacketizer = Depacketizer::new();
        let mut annexb = Vec::new();
        for (seq, payload) in &frame.packets {
            if expected.is_some_and(|e| e != *seq) {
                complete = false;
                depacketizer.gap();
            }
            expected = Some(seq + 1);
            if depacketizer.push(payload, &mut annexb).is_err() {
                complete = false;
            }
        }
        if depacketizer.in_fragment() {
            complete = false;
        }
        if let Some((last, _)) = frame.packets.last() {
            self.last_closed = Some(self.last_closed.map_or(*last, |l| l.max(*last)));
        }
        self.counters.frames += 1;
        if !complete {
            self.counters.incomplete_frames += 1;
        }
        ReceivedFrame {
            annexb,
            rtp_timestamp: frame.timestamp,
            first_packet_ns: frame.first_ns,
            last_packet_ns: frame.last_ns,
            packets: u32::try_from(frame.packets.len()).unwrap_or(u32::MAX),
            complete,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test packet: (seq, ts, marker, payload).
    fn feed(r: &mut Reassembler, pkts: &[(u16, u32, bool, &[u8])]) -> Vec<ReceivedFrame> {
        pkts.iter()
            .enumerate()
            .flat_map(|(i, &(seq, ts, marker, payload))| {
                r.push(RtpIn {
                    sequence_number: seq,
                    timestamp: ts,
                    marker,
                    payload,
                    arrival_ns: 1_000 + i as u64,
                })
            })
            .collect()
    }

    const IDR_START: &[u8] = &[0x7c, 0x85, 1, 2];
    const IDR_MID: &[u8] = &[0x7c, 0x05, 3];
    const IDR_END: &[u8] = &[0x7c, 0x45, 4];
    const SPS_PPS: &[u8] = &[0x78, 0, 2, 0x67, 0xa, 0, 2, 0x68, 0xb];
    const P_SLICE: &[u8] = &[0x41, 7, 7];

    #[test]
    fn stap_a_then_fu_a_make_one_complete_idr_frame() {
        let mut r = Reassembler::new();
        let frames = feed(
            &mut r,
            &[
                (10, 900, false, SPS_PPS),
                (11, 900, false, IDR_START),
                (12, 900, false, IDR_MID),
                (13, 900, true, IDR_END),
            ],
        );
        assert_eq!(frames.len(), 1);
        let f = &frames[0];
        assert!(f.complete);
        assert_eq!(f.packets, 4);
        assert_eq!(f.rtp_timestamp, 900);
        assert_eq!((f.first_packet_ns, f.last_packet_ns), (1_000, 1_003));
        assert_eq!(
            f.annexb,
            [
                0, 0, 0, 1, 0x67, 0xa, 0, 0, 0, 1, 0x68, 0xb, 0, 0, 0, 1, 0x65, 1, 2, 3, 4
            ]
        );
        assert_eq!(f.nal_types(), [7, 8, 5]);
        assert!(f.is_idr());
        let c = r.counters();
        assert_eq!((c.frames, c.incomplete_frames, c.lost_packets), (1, 0, 0));
    }

    #[test]
    fn single_nal_frames_across_the_sequence_wrap() {
        let mut r = Reassembler::new();
        let frames = feed(
            &mut r,
            &[
                (65534, 0, true, P_SLICE),
                (65535, 3000, true, P_SLICE),
                (0, 6000, true, P_SLICE),
                (1, 9000, true, P_SLICE),
            ],
        );
        assert_eq!(frames.len(), 4);
        assert!(frames.iter().all(|f| f.complete && f.packets == 1));
        assert_eq!(r.counters().lost_packets, 0);
        assert_eq!(r.counters().incomplete_frames, 0);
    }

    #[test]
    fn lost_fu_a_middle_makes_the_frame_incomplete_and_counts_one_loss() {
        let mut r = Reassembler::new();
        let frames = feed(
            &mut r,
            &[
                (100, 0, false, SPS_PPS),
                (101, 0, false, IDR_START),
                // 102 lost
                (103, 0, true, IDR_END),
                (104, 3000, true, P_SLICE),
            ],
        );
        assert_eq!(frames.len(), 2);
        assert!(!frames[0].complete);
        // The SPS and PPS survive; the broken IDR is dropped, not glued together.
        assert_eq!(frames[0].nal_types(), [7, 8]);
        assert!(frames[1].complete);
        let c = r.counters();
        assert_eq!((c.lost_packets, c.incomplete_frames, c.frames), (1, 1, 2));
    }

    #[test]
    fn loss_before_a_frame_marks_it_incomplete() {
        let mut r = Reassembler::new();
        let frames = feed(
            &mut r,
            &[
                (1, 0, true, P_SLICE),
                // 2, 3 lost (a whole frame, or the head of the next: indistinguishable)
                (4, 6000, true, P_SLICE),
                (5, 9000, true, P_SLICE),
            ],
        );
        assert_eq!(
            frames.iter().map(|f| f.complete).collect::<Vec<_>>(),
            [true, false, true]
        );
        assert_eq!(r.counters().lost_packets, 2);
    }

    #[test]
    fn timestamp_change_closes_a_frame_without_marker() {
        let mut r = Reassembler::new();
        let frames = feed(
            &mut r,
            &[
                (7, 0, false, P_SLICE),
                (8, 3000, false, P_SLICE),
                // 9 lost: frame 3000 had a tail we never saw.
                (10, 6000, true, P_SLICE),
            ],
        );
        assert_eq!(
            frames.iter().map(|f| f.complete).collect::<Vec<_>>(),
            [true, false, false]
        );
    }

    #[test]
    fn reordering_within_a_frame_is_repaired() {
        let mut r = Reassembler::new();
        let frames = feed(
            &mut r,
            &[
                (20, 0, false, IDR_START),
                (22, 0, false, IDR_END),
                (21, 0, true, IDR_MID),
            ],
        );
        // The marker was on the reordered middle packet: the frame closes at it, sorted.
        assert_eq!(frames.len(), 1);
        assert!(frames[0].complete);
        assert_eq!(frames[0].annexb, [0, 0, 0, 1, 0x65, 1, 2, 3, 4]);
    }

    #[test]
    fn late_and_duplicate_packets_are_counted_not_delivered() {
        let mut r = Reassembler::new();
        let frames = feed(
            &mut r,
            &[
                (50, 0, false, IDR_START),
                (50, 0, false, IDR_START),
                (52, 0, true, IDR_END),
                (51, 0, false, IDR_MID),
                (53, 3000, true, P_SLICE),
            ],
        );
        assert_eq!(frames.len(), 2);
        assert!(!frames[0].complete);
        assert!(frames[1].complete);
        let c = r.counters();
        assert_eq!(c.duplicate_packets, 1);
        assert_eq!(c.late_packets, 1);
        // The late packet did arrive: nothing is lost in the end.
        assert_eq!(c.lost_packets, 0);
        assert_eq!(c.packets, 5);
    }

    #[test]
    fn joining_mid_fu_a_gives_an_incomplete_first_frame() {
        let mut r = Reassembler::new();
        let frames = feed(&mut r, &[(5, 0, true, IDR_END), (6, 3000, true, P_SLICE)]);
        assert!(!frames[0].complete);
        assert!(frames[0].annexb.is_empty());
        assert!(frames[1].complete);
    }
}
