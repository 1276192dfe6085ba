//! A minimal fragmented-MP4 muxer for one H.264 video track: the init segment (`ftyp` +
//! `moov` with `mvex`), then `moof` + `mdat` fragments.
//!
//! Hand-written because it is small and exact: every fragment is built in memory and written
//! with one `write`, so a file cut short by a crash ends on a fragment boundary (see
//! `writer.rs`). Samples are AVCC (4-byte big-endian lengths); parameter sets and delimiters
//! are left out of them, the sample entry (`avc1` + `avcC`) carries SPS and PPS.

/// The track's media timescale: 90 kHz, as RTP and MPEG-TS.
pub const TIMESCALE: u32 = 90_000;
/// The movie's timescale (only `mvhd`, whose duration is 0 in a fragmented file).
const MOVIE_TIMESCALE: u32 = 1_000;
/// The one track's id.
const TRACK_ID: u32 = 1;

/// `trun` sample flags of a sync sample: `sample_depends_on` = 2 (depends on no other).
pub const FLAGS_SYNC: u32 = 0x0200_0000;
/// `trun` sample flags of another sample: depends on others, `sample_is_non_sync_sample`.
pub const FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// Nanoseconds to 90 kHz ticks, rounded to nearest.
pub fn ns_to_ticks(ns: u64) -> u64 {
    ns_to_ticks_at(ns, u64::from(TIMESCALE))
}

/// Nanoseconds to ticks of a `timescale`-per-second clock, rounded to the nearest.
pub fn ns_to_ticks_at(ns: u64, timescale: u64) -> u64 {
    let ticks = (u128::from(ns) * u128::from(timescale) + 500_000_000) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// The video track's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// SPS, without start code.
    pub sps: Vec<u8>,
    /// PPS, without start code.
    pub pps: Vec<u8>,
}

/// One sample of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Duration in [`TIMESCALE`] ticks.
    pub duration: u32,
    /// Size of its AVCC data in bytes.
    pub size: u32,
    /// Whether it is a sync sample (IDR).
    pub sync: bool,
}

/// Appends a box: 32-bit size, type, then what `body` writes.
fn boxed(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(kind);
    body(out);
    let size = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Appends a full box (with version and 24-bit flags).
fn full(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    boxed(out, kind, |o| {
        o.push(version);
        o.extend_from_slice(&flags.to_be_bytes()[1..]);
        body(o);
    });
}

fn u16b(o: &mut Vec<u8>, v: u16) {
    o.extend_from_slice(&v.to_be_bytes());
}
fn u32b(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_be_bytes());
}
fn u64b(o: &mut Vec<u8>, v: u64) {
    o.extend_from_slice(&v.to_be_bytes());
}

/// The unity transformation matrix of `mvhd` and `tkhd`.
fn matrix(o: &mut Vec<u8>) {
    for v in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000_u32] {
        u32b(o, v);
    }
}

/// `ftyp` + `moov`: what a player needs before the first fragment.
pub fn init_segment(track: &Track) -> Vec<u8> {
    let mut o = Vec::with_capacity(768 + track.sps.len() + track.pps.len());
    boxed(&mut o, b"ftyp", |o| {
        o.extend_from_slice(b"iso5");
        u32b(o, 512);
        for brand in [b"iso5", b"iso6", b"mp41", b"avc1"] {
            o.extend_from_slice(brand);
        }
    });
    boxed(&mut o, b"moov", |o| {
        full(o, b"mvhd", 0, 0, |o| {
            u32b(o, 0); // creation time
            u32b(o, 0); // modification time
            u32b(o, MOVIE_TIMESCALE);
            u32b(o, 0); // duration: unknown, in fragments
            u32b(o, 0x0001_0000); // rate 1.0
            u16b(o, 0x0100); // volume 1.0
            o.extend_from_slice(&[0; 10]);
            matrix(o);
            o.extend_from_slice(&[0; 24]); // pre_defined
            u32b(o, TRACK_ID + 1); // next track id
        });
        boxed(o, b"trak", |o| {
            full(o, b"tkhd", 0, 0x3, |o| {
                u32b(o, 0);
                u32b(o, 0);
                u32b(o, TRACK_ID);
                u32b(o, 0); // reserved
                u32b(o, 0); // duration
                o.extend_from_slice(&[0; 8]);
                u16b(o, 0); // layer
                u16b(o, 0); // alternate group
                u16b(o, 0); // volume: video
                u16b(o, 0);
                matrix(o);
                u32b(o, track.width << 16);
                u32b(o, track.height << 16);
            });
            boxed(o, b"mdia", |o| {
                full(o, b"mdhd", 0, 0, |o| {
                    u32b(o, 0);
                    u32b(o, 0);
                    u32b(o, TIMESCALE);
                    u32b(o, 0);
                    u16b(o, 0x55c4); // language "und"
                    u16b(o, 0);
                });
                full(o, b"hdlr", 0, 0, |o| {
                    u32b(o, 0);
                    o.extend_from_slice(b"vide");
                    o.extend_from_slice(&[0; 12]);
                    o.extend_from_slice(b"stackctl video\0");
                });
                boxed(o, b"minf", |o| {
                    full(o, b"vmhd", 0, 1, |o| o.extend_from_slice(&[0; 8]));
                    boxed(o, b"dinf", |o| {
                        full(o, b"dref", 0, 0, |o| {
                            u32b(o, 1);
                            full(o, b"url ", 0, 1, |_| {});
                        });
                    });
                    boxed(o, b"stbl", |o| {
                        full(o, b"stsd", 0, 0, |o| {
                            u32b(o, 1);
                            avc1(o, track);
                        });
                        full(o, b"stts", 0, 0, |o| u32b(o, 0));
                        full(o, b"stsc", 0, 0, |o| u32b(o, 0));
                        full(o, b"stsz", 0, 0, |o| {
                            u32b(o, 0);
                            u32b(o, 0);
                        });
                        full(o, b"stco", 0, 0, |o| u32b(o, 0));
                    });
                });
            });
        });
        boxed(o, b"mvex", |o| {
            full(o, b"trex", 0, 0, |o| {
                u32b(o, TRACK_ID);
                u32b(o, 1); // default sample description index
                u32b(o, 0);
                u32b(o, 0);
                u32b(o, 0);
            });
        });
    });
    o
}

/// The `avc1` sample entry with its `avcC`.
fn avc1(o: &mut Vec<u8>, track: &Track) {
    boxed(o, b"avc1", |o| {
        o.extend_from_slice(&[0; 6]);
        u16b(o, 1); // data reference index
        o.extend_from_slice(&[0; 16]);
        u16b(o, u16::try_from(track.width).unwrap_or(u16::MAX));
        u16b(o, u16::try_from(track.height).unwrap_or(u16::MAX));
        u32b(o, 0x0048_0000); // 72 dpi
        u32b(o, 0x0048_0000);
        u32b(o, 0);
        u16b(o, 1); // frame count
        o.extend_from_slice(&[0; 32]); // compressor name
        u16b(o, 0x0018); // depth
        u16b(o, 0xffff); // pre_defined = -1
        boxed(o, b"avcC", |o| {
            let sps = &track.sps;
            o.push(1);
            o.push(sps.get(1).copied().unwrap_or(66)); // profile
            o.push(sps.get(2).copied().unwrap_or(0)); // compatibility
            o.push(sps.get(3).copied().unwrap_or(30)); // level
            o.push(0xff); // 4-byte NAL lengths
            o.push(0xe1); // one SPS
            u16b(o, u16::try_from(sps.len()).unwrap_or(u16::MAX));
            o.extend_from_slice(sps);
            o.push(1); // one PPS
            u16b(o, u16::try_from(track.pps.len()).unwrap_or(u16::MAX));
            o.extend_from_slice(&track.pps);
        });
    });
}

/// Size of the `moof` [`fragment_header`] writes for `n` samples.
pub fn moof_size(n: usize) -> usize {
    // moof 8 + mfhd 16 + traf 8 + tfhd 16 + tfdt 20 + trun 20 + 12 per sample.
    88 + 12 * n
}

/// Appends `moof` and the `mdat` header of a fragment: `samples` whose AVCC data
/// (`payload_len` bytes, in order) follows right after; the first decodes at `base_dts`.
pub fn fragment_header(
    out: &mut Vec<u8>,
    sequence: u32,
    base_dts: u64,
    samples: &[Sample],
    payload_len: usize,
) {
    let start = out.len();
    let moof = moof_size(samples.len());
    boxed(out, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| u32b(o, sequence));
        boxed(o, b"traf", |o| {
            // default-base-is-moof: data offsets count from this fragment's moof.
            full(o, b"tfhd", 0, 0x02_0000, |o| u32b(o, TRACK_ID));
            full(o, b"tfdt", 1, 0, |o| u64b(o, base_dts));
            // data offset, then duration, size and flags per sample.
            full(o, b"trun", 0, 0x0701, |o| {
                u32b(o, u32::try_from(samples.len()).unwrap_or(u32::MAX));
                u32b(o, u32::try_from(moof + 8).unwrap_or(u32::MAX));
                for s in samples {
                    u32b(o, s.duration);
                    u32b(o, s.size);
                    u32b(o, if s.sync { FLAGS_SYNC } else { FLAGS_NON_SYNC });
                }
            });
        });
    });
    debug_assert_eq!(out.len() - start, moof);
    u32b(out, u32::try_from(payload_len + 8).unwrap_or(u32::MAX));
    out.extend_from_slice(b"mdat");
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The boxes at the top level of `data`: (type, size).
    pub(crate) fn top_boxes(data: &[u8]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos + 8 <= data.len() {
            let size = u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]])
                as usize;
            out.push((
                String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned(),
                size,
            ));
            if size < 8 {
                break;
            }
            pos += size;
        }
        out
    }

    #[test]
    fn the_init_segment_is_ftyp_then_moov_with_avcc() {
        let track = Track {
            width: 320,
            height: 240,
            sps: vec![0x67, 0x42, 0xc0, 0x0d, 1, 2],
            pps: vec![0x68, 0xce, 0x3c, 0x80],
        };
        let init = init_segment(&track);
        let boxes = top_boxes(&init);
        assert_eq!(boxes.len(), 2);
        assert_eq!(boxes[0].0, "ftyp");
        assert_eq!(boxes[1].0, "moov");
        assert_eq!(boxes[0].1 + boxes[1].1, init.len());
        let avcc = init
            .windows(4)
            .position(|w| w == b"avcC")
            .expect("an avcC box");
        assert_eq!(
            &init[avcc + 4..avcc + 10],
            &[1, 0x42, 0xc0, 0x0d, 0xff, 0xe1]
        );
        assert!(init.windows(4).any(|w| w == b"trex"));
    }

    #[test]
    fn a_fragment_header_has_the_announced_size_and_offsets() {
        let samples = [
            Sample {
                duration: 3000,
                size: 10,
                sync: true,
            },
            Sample {
                duration: 3003,
                size: 5,
                sync: false,
            },
        ];
        let mut out = Vec::new();
        fragment_header(&mut out, 7, 90_000, &samples, 15);
        assert_eq!(out.len(), moof_size(2) + 8);
        let boxes = top_boxes(&out);
        assert_eq!(boxes[0], ("moof".to_owned(), moof_size(2)));
        assert_eq!(boxes[1], ("mdat".to_owned(), 23));
        let trun = out.windows(4).position(|w| w == b"trun").expect("trun");
        // flags, count, data offset (past moof and the mdat header), then the first sample.
        assert_eq!(&out[trun + 4..trun + 8], &[0, 0, 7, 1]);
        assert_eq!(&out[trun + 8..trun + 12], &2u32.to_be_bytes());
        assert_eq!(
            &out[trun + 12..trun + 16],
            &((moof_size(2) + 8) as u32).to_be_bytes()
        );
        assert_eq!(&out[trun + 16..trun + 20], &3000u32.to_be_bytes());
        assert_eq!(&out[trun + 24..trun + 28], &FLAGS_SYNC.to_be_bytes());
        assert_eq!(&out[trun + 36..trun + 40], &FLAGS_NON_SYNC.to_be_bytes());
    }

    #[test]
    fn ticks_round_to_nearest() {
        assert_eq!(ns_to_ticks(1_000_000_000), 90_000);
        assert_eq!(ns_to_ticks(33_333_333), 3000);
        assert_eq!(ns_to_ticks(500_000_000), 45_000);
        assert_eq!(ns_to_ticks(0), 0);
    }
}
