//! What a viewer's NACKs asked for, and how much of it the sink could send again.
//!
//! rtc's NACK responder answers a viewer's generic NACK (RFC 4585) from the last `nack_window`
//! packets written to its stream, silently: it says neither what was asked nor what it found.
//! The NACKs also reach the sink (see [`crate::keyframe`]), which knows every sequence number
//! it wrote, so it works out the same answer here and counts it
//! (`webrtc_nack_requests_total`, `webrtc_nack_packets_requested_total`,
//! `webrtc_retransmitted_packets_total`): a repair that does not happen then shows as packets
//! asked for and not sent again (too old for the window), or as packets sent again that the
//! viewer still misses (lost on the way, or refused on arrival).

use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

/// Half the sequence space: a distance beyond it is taken as ahead, not behind.
const HALF: u16 = 1 << 15;

/// The sending side of one stream as the NACK responder's history sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// The stream's SSRC (a NACK for another is not answered).
    pub ssrc: u32,
    /// The sequence number the next packet will carry.
    pub next_sequence: u16,
    /// Packets written so far.
    pub written: u64,
    /// Packets the responder keeps (`nack_window`, a power of two).
    pub window: u16,
}

impl History {
    /// Whether packet `seq` is still in the responder's history: written, and at most
    /// `window - 1` packets older than the newest.
    pub fn has(&self, seq: u16) -> bool {
        let newest = self.next_sequence.wrapping_sub(1);
        let behind = newest.wrapping_sub(seq);
        behind < HALF && u64::from(behind) < self.written.min(u64::from(self.window))
    }

    /// What `nack` asks of this stream: packets requested and packets the responder sends
    /// again (it sends one for every request it finds, repeats included, as counted here).
    pub fn answer(&self, nack: &TransportLayerNack) -> Answer {
        let mut answer = Answer::default();
        if nack.media_ssrc != self.ssrc {
            return answer;
        }
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                answer.requested += 1;
                if self.has(seq) {
                    answer.retransmitted += 1;
                }
            }
        }
        answer
    }
}

/// The outcome of one NACK.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// Packets it asked for.
    pub requested: u64,
    /// Packets sent again (the rest were too old, or never written).
    pub retransmitted: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
        NackPair, nack_pairs_from_sequence_numbers,
    };

    fn nack(ssrc: u32, seqs: &[u16]) -> TransportLayerNack {
        TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: ssrc,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        }
    }

    #[test]
    fn packets_are_found_while_the_window_holds_them() {
        // (next sequence, written, window, asked) -> in the history
        let table: &[(u16, u64, u16, u16, bool)] = &[
            (100, 100, 1024, 99, true),    // the newest
            (100, 100, 1024, 0, true),     // the first ever
            (100, 100, 1024, 100, false),  // not written yet
            (100, 50, 1024, 49, false),    // before the stream's first packet
            (100, 50, 1024, 50, true),     // its first packet
            (2000, 2000, 1024, 976, true), // the oldest the window holds
            (2000, 2000, 1024, 975, false),
            (5, 70_000, 1024, 65_535, true), // across the wrap
            (5, 70_000, 1024, 64_517, true),
            (5, 70_000, 1024, 64_516, false),
            (5, 70_000, 1024, 40_000, false), // far ahead or far behind: never
        ];
        for &(next_sequence, written, window, seq, found) in table {
            let history = History {
                ssrc: 7,
                next_sequence,
                written,
                window,
            };
            assert_eq!(
                history.has(seq),
                found,
                "next {next_sequence}, written {written}, window {window}, seq {seq}"
            );
        }
    }

    #[test]
    fn a_nack_is_counted_packet_by_packet() {
        let history = History {
            ssrc: 7,
            next_sequence: 2000,
            written: 2000,
            window: 1024,
        };
        // One pair with its bitmap (three packets), one far-off packet, one too old.
        let asked = history.answer(&nack(7, &[1990, 1992, 1993, 1500, 900]));
        assert_eq!(
            asked,
            Answer {
                requested: 5,
                retransmitted: 4
            }
        );
        // The same packet asked twice in one NACK goes out twice.
        let twice = TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 7,
            nacks: vec![NackPair::new(1990), NackPair::new(1990)],
        };
        assert_eq!(history.answer(&twice).retransmitted, 2);
        // Another stream's NACK is not this one's business.
        assert_eq!(history.answer(&nack(8, &[1990])), Answer::default());
    }
}
