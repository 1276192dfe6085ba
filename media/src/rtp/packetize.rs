//! RTP payloads for H.264 (RFC 6184, packetization-mode 1): each access unit is cut into
//! payloads once, shared by every receiver; each receiver only writes its own RTP header.

use bytes::{BufMut, Bytes, BytesMut};

/// The `nal_unit_type` of a NAL unit or of an RTP payload's first byte (0 if empty).
fn nal_type(unit: &[u8]) -> u8 {
    unit.first().map_or(0, |h| h & 0x1f)
}

/// The largest RTP payload: 1200-byte packets (the common WebRTC choice) minus the
/// 12-byte RTP header, so SRTP's tag still fits any path MTU of 1280 or more.
pub const MAX_PAYLOAD: usize = 1188;

/// The payload type of a single-time aggregation packet (RFC 6184 §5.7.1).
pub const STAP_A: u8 = 24;
/// The payload type of a fragmentation unit (RFC 6184 §5.8).
pub const FU_A: u8 = 28;

/// Cuts the NAL units of one access unit into RTP payloads: small consecutive units
/// aggregated in STAP-A packets (SPS, PPS and SEI travel together), units that fit sent
/// whole, larger ones fragmented in FU-A packets. The last payload ends the access unit
/// (the marker bit goes on it). Empty units are skipped.
pub fn packetize(units: &[&[u8]], max_payload: usize) -> Vec<Bytes> {
    // A payload must hold at least an FU header pair and one byte.
    let max_payload = max_payload.max(3);
    let units: Vec<&[u8]> = units.iter().copied().filter(|u| !u.is_empty()).collect();
    let units = &units[..];
    let size: usize = units.iter().map(|u| u.len() + 4).sum();
    let mut buf = BytesMut::with_capacity(size + size / max_payload * 2 + 16);
    let mut ends = Vec::new();
    let mut i = 0;
    while i < units.len() {
        // How many of the following units fit in one STAP-A with this one.
        let mut stap_len = 1;
        let mut n = 0;
        while i + n < units.len() && stap_len + 2 + units[i + n].len() <= max_payload {
            stap_len += 2 + units[i + n].len();
            n += 1;
        }
        if n >= 2 {
            let nri = units[i..i + n]
                .iter()
                .map(|u| u[0] & 0x60)
                .max()
                .unwrap_or(0);
            buf.put_u8(nri | STAP_A);
            for unit in &units[i..i + n] {
                buf.put_u16(unit.len() as u16);
                buf.put_slice(unit);
            }
            ends.push(buf.len());
            i += n;
            continue;
        }
        let unit = units[i];
        if unit.len() <= max_payload {
            buf.put_slice(unit);
            ends.push(buf.len());
        } else {
            let indicator = (unit[0] & 0xe0) | FU_A;
            let kind = nal_type(unit);
            let body = &unit[1..];
            let chunks = body.chunks(max_payload - 2);
            let last = chunks.len() - 1;
            for (k, chunk) in chunks.enumerate() {
                let start = if k == 0 { 0x80 } else { 0 };
                let end = if k == last { 0x40 } else { 0 };
                buf.put_u8(indicator);
                buf.put_u8(start | end | kind);
                buf.put_slice(chunk);
                ends.push(buf.len());
            }
        }
        i += 1;
    }
    let all = buf.freeze();
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let payload = all.slice(start..end);
            start = end;
            payload
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NAL units back from payloads, as a receiver reassembles them.
    fn depacketize(payloads: &[Bytes]) -> Vec<Vec<u8>> {
        let mut units = Vec::new();
        let mut fu: Option<Vec<u8>> = None;
        for p in payloads {
            match nal_type(p) {
                STAP_A => {
                    let mut rest = &p[1..];
                    while rest.len() >= 2 {
                        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                        units.push(rest[2..2 + len].to_vec());
                        rest = &rest[2 + len..];
                    }
                    assert!(rest.is_empty());
                }
                FU_A => {
                    let (start, end) = (p[1] & 0x80 != 0, p[1] & 0x40 != 0);
                    if start {
                        assert!(fu.is_none());
                        fu = Some(vec![(p[0] & 0xe0) | (p[1] & 0x1f)]);
                    }
                    fu.as_mut().unwrap().extend_from_slice(&p[2..]);
                    if end {
                        units.push(fu.take().unwrap());
                    }
                }
                _ => units.push(p.to_vec()),
            }
        }
        assert!(fu.is_none(), "unfinished FU-A");
        units
    }

    fn unit(kind: u8, len: usize) -> Vec<u8> {
        let mut u = vec![0x60 | kind];
        u.extend((0..len - 1).map(|i| (i % 251) as u8 + 1));
        u
    }

    #[test]
    fn round_trips_every_shape() {
        let sps = unit(7, 20);
        let pps = unit(8, 5);
        let idr = unit(5, 5000);
        let small = unit(1, 300);
        let exact = unit(1, 1188);
        let one_over = unit(1, 1189);
        for units in [
            vec![&sps[..], &pps, &idr],
            vec![&small[..]],
            vec![&exact[..]],
            vec![&one_over[..]],
            vec![&small[..], &small, &small, &small, &small],
            vec![&sps[..], &pps, &small, &idr, &small],
        ] {
            let payloads = packetize(&units, MAX_PAYLOAD);
            assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
            let back = depacketize(&payloads);
            let want: Vec<Vec<u8>> = units.iter().map(|u| u.to_vec()).collect();
            assert_eq!(back, want);
        }
    }

    #[test]
    fn parameter_sets_share_a_stap_a_and_large_units_fragment() {
        let (sps, pps, idr) = (unit(7, 20), unit(8, 5), unit(5, 5000));
        let payloads = packetize(&[&sps, &pps, &idr], MAX_PAYLOAD);
        assert_eq!(nal_type(&payloads[0]), STAP_A);
        // SPS + PPS + as much as fits? No: the IDR does not fit, so it is fragmented alone.
        assert_eq!(payloads[0].len(), 1 + 2 + 20 + 2 + 5);
        assert_eq!(payloads.len(), 1 + 4999usize.div_ceil(MAX_PAYLOAD - 2));
        assert!(payloads[1..].iter().all(|p| nal_type(p) == FU_A));
        assert_eq!(payloads[1][1], 0x80 | 5);
        assert_eq!(payloads.last().unwrap()[1], 0x40 | 5);
    }
}
