//! What a sequence parameter set says about the stream: profile, level, picture size.
//!
//! The bit-level parsing (Exp-Golomb codes, emulation-prevention removal, VUI) is done by the
//! `h264-reader` crate; this file keeps the few fields consumers need.

use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::rbsp::{BitReader, ByteReader};

use super::{H264Error, NalHeader, NalType};

/// VUI timing: the stream's clock, when the encoder states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpsTiming {
    /// Clock ticks per field (two per frame).
    pub num_units_in_tick: u32,
    /// Clock ticks per second.
    pub time_scale: u32,
    /// Whether the frame rate is constant.
    pub fixed_frame_rate: bool,
}

/// The parts of an SPS that describe the stream to consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpsInfo {
    /// `profile_idc` (66 Baseline, 77 Main, 100 High, ...).
    pub profile_idc: u8,
    /// The constraint_set0..5 flags and 2 reserved bits, as one byte (set0 is the top bit).
    pub constraint_flags: u8,
    /// `level_idc`: ten times the level number (31 is level 3.1).
    pub level_idc: u8,
    /// `seq_parameter_set_id` (0..=31).
    pub seq_parameter_set_id: u8,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// Luma sample bit depth (8..=14).
    pub bit_depth_luma: u8,
    /// Chroma sample bit depth (8..=14).
    pub bit_depth_chroma: u8,
    /// Whether every picture is a frame (`frame_mbs_only_flag`): no interlaced fields.
    pub frame_mbs_only: bool,
    /// Picture width in pixels, after frame cropping.
    pub width: u32,
    /// Picture height in pixels, after frame cropping.
    pub height: u32,
    /// The VUI timing information, if present.
    pub timing: Option<SpsTiming>,
}

impl SpsInfo {
    /// Parses an SPS NAL unit (header byte included, emulation-prevention bytes still in).
    pub fn parse(nal: &[u8]) -> Result<Self, H264Error> {
        let Some(&byte) = nal.first() else {
            return Err(invalid("empty NAL unit"));
        };
        let header = NalHeader::new(byte);
        if header.forbidden_zero_bit() {
            return Err(H264Error::ForbiddenBit { offset: 0 });
        }
        if header.nal_type() != NalType::Sps {
            return Err(H264Error::NotSps {
                nal_unit_type: header.nal_unit_type(),
            });
        }
        let bits = BitReader::new(ByteReader::skipping_h264_header(nal));
        let sps = SeqParameterSet::from_bits(bits).map_err(|e| invalid(format!("{e:?}")))?;
        let (width, height) = sps
            .pixel_dimensions()
            .map_err(|e| invalid(format!("{e:?}")))?;
        if width == 0 || height == 0 {
            return Err(invalid("frame cropping leaves no picture"));
        }
        let chroma = &sps.chroma_info;
        let chroma_format_idc = u8::try_from(chroma.chroma_format.to_u32())
            .ok()
            .filter(|&idc| idc <= 3)
            .ok_or_else(|| invalid("chroma_format_idc above 3"))?;
        let timing = sps.vui_parameters.as_ref().and_then(|vui| {
            vui.timing_info.as_ref().map(|t| SpsTiming {
                num_units_in_tick: t.num_units_in_tick,
                time_scale: t.time_scale,
                fixed_frame_rate: t.fixed_frame_rate_flag,
            })
        });
        Ok(Self {
            profile_idc: sps.profile_idc.into(),
            constraint_flags: sps.constraint_flags.into(),
            level_idc: sps.level_idc,
            seq_parameter_set_id: sps.seq_parameter_set_id.id(),
            chroma_format_idc,
            bit_depth_luma: chroma.bit_depth_luma_minus8.saturating_add(8),
            bit_depth_chroma: chroma.bit_depth_chroma_minus8.saturating_add(8),
            frame_mbs_only: matches!(
                sps.frame_mbs_flags,
                h264_reader::nal::sps::FrameMbsFlags::Frames
            ),
            width,
            height,
            timing,
        })
    }

    /// The RFC 6184 `profile-level-id`: profile_idc, constraint flags and level_idc as six
    /// lower-case hex digits, e.g. `42e01f`.
    pub fn profile_level_id(&self) -> String {
        format!(
            "{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }

    /// The RFC 6381 codec string for MIME types and HLS/DASH manifests, e.g. `avc1.42e01f`.
    pub fn codec_string(&self) -> String {
        format!("avc1.{}", self.profile_level_id())
    }

    /// Whether constraint_set`n`_flag is set (`n` in 0..=5).
    pub const fn constraint_set(&self, n: u8) -> bool {
        n < 6 && self.constraint_flags & (0x80 >> n) != 0
    }

    /// The profile's name from H.264 Annex A, e.g. `"Constrained Baseline"` or `"High"`.
    pub const fn profile_name(&self) -> &'static str {
        let (cs1, cs3) = (self.constraint_set(1), self.constraint_set(3));
        let (cs4, cs5) = (self.constraint_set(4), self.constraint_set(5));
        match self.profile_idc {
            66 if cs1 => "Constrained Baseline",
            66 => "Baseline",
            77 => "Main",
            88 => "Extended",
            100 if cs4 && cs5 => "Constrained High",
            100 if cs4 => "Progressive High",
            100 => "High",
            110 if cs3 => "High 10 Intra",
            110 if cs4 => "Progressive High 10",
            110 => "High 10",
            122 if cs3 => "High 4:2:2 Intra",
            122 => "High 4:2:2",
            244 if cs3 => "High 4:4:4 Intra",
            244 => "High 4:4:4 Predictive",
            44 => "CAVLC 4:4:4 Intra",
            83 => "Scalable Baseline",
            86 => "Scalable High",
            118 => "Multiview High",
            128 => "Stereo High",
            _ => "Unknown",
        }
    }

    /// The level's name as in H.264 Table A-1: `"1b"`, `"3"`, `"3.1"`, ...; `"unknown"` for
    /// a `level_idc` the table does not list.
    pub const fn level_name(&self) -> &'static str {
        // Level 1b: level_idc 11 with constraint_set3 in Baseline/Main/Extended, else 9.
        let level_1b = matches!(self.profile_idc, 66 | 77 | 88) && self.constraint_set(3);
        match self.level_idc {
            9 => "1b",
            11 if level_1b => "1b",
            10 => "1",
            11 => "1.1",
            12 => "1.2",
            13 => "1.3",
            20 => "2",
            21 => "2.1",
            22 => "2.2",
            30 => "3",
            31 => "3.1",
            32 => "3.2",
            40 => "4",
            41 => "4.1",
            42 => "4.2",
            50 => "5",
            51 => "5.1",
            52 => "5.2",
            60 => "6",
            61 => "6.1",
            62 => "6.2",
            _ => "unknown",
        }
    }

    /// Frames per second from the VUI timing (`time_scale / (2 * num_units_in_tick)`).
    pub fn frame_rate(&self) -> Option<f64> {
        let timing = self.timing?;
        (timing.num_units_in_tick > 0)
            .then(|| f64::from(timing.time_scale) / (2.0 * f64::from(timing.num_units_in_tick)))
    }
}

fn invalid(reason: impl Into<String>) -> H264Error {
    H264Error::InvalidSps {
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::testdata::{BASELINE_640X480_SPS, HIGH_1080P_SPS, MAIN_720P_SPS, PPS};

    #[test]
    fn baseline_640x480() {
        let sps = SpsInfo::parse(BASELINE_640X480_SPS).unwrap();
        assert_eq!((sps.width, sps.height), (640, 480));
        assert_eq!(sps.profile_level_id(), "42c01e");
        assert_eq!(sps.codec_string(), "avc1.42c01e");
        assert_eq!(sps.profile_name(), "Constrained Baseline");
        assert_eq!(sps.level_name(), "3");
        assert_eq!((sps.seq_parameter_set_id, sps.chroma_format_idc), (0, 1));
        assert!(sps.frame_mbs_only);
        assert_eq!(sps.timing, None);
        assert_eq!(sps.frame_rate(), None);
    }

    #[test]
    fn high_1080p_is_cropped_and_needs_emulation_prevention_removed() {
        let sps = SpsInfo::parse(HIGH_1080P_SPS).unwrap();
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.profile_level_id(), "640028");
        assert_eq!((sps.profile_name(), sps.level_name()), ("High", "4"));
        assert_eq!((sps.bit_depth_luma, sps.bit_depth_chroma), (8, 8));
        let timing = sps.timing.unwrap();
        assert_eq!((timing.num_units_in_tick, timing.time_scale), (1, 60));
        assert!(timing.fixed_frame_rate);
        assert_eq!(sps.frame_rate(), Some(30.0));
    }

    #[test]
    fn emulation_prevention_bytes_are_not_payload() {
        // The same SPS with its `03` bytes removed is not valid NAL data (`00 00 00`).
        let raw: Vec<u8> = [
            &HIGH_1080P_SPS[..14],
            &HIGH_1080P_SPS[15..19],
            &HIGH_1080P_SPS[20..],
        ]
        .concat();
        assert!(matches!(
            SpsInfo::parse(&raw),
            Err(H264Error::InvalidSps { .. })
        ));
    }

    #[test]
    fn main_720p_with_id_1() {
        let sps = SpsInfo::parse(MAIN_720P_SPS).unwrap();
        assert_eq!((sps.width, sps.height), (1280, 720));
        assert_eq!(sps.profile_level_id(), "4d401f");
        assert_eq!((sps.profile_name(), sps.level_name()), ("Main", "3.1"));
        assert_eq!(sps.seq_parameter_set_id, 1);
    }

    #[test]
    fn rejects_bad_nal_units() {
        assert!(matches!(
            SpsInfo::parse(&[]),
            Err(H264Error::InvalidSps { .. })
        ));
        assert_eq!(
            SpsInfo::parse(PPS),
            Err(H264Error::NotSps { nal_unit_type: 8 })
        );
        let mut forbidden = BASELINE_640X480_SPS.to_vec();
        forbidden[0] |= 0x80;
        assert_eq!(
            SpsInfo::parse(&forbidden),
            Err(H264Error::ForbiddenBit { offset: 0 })
        );
        for len in 1..BASELINE_640X480_SPS.len() {
            let truncated = &BASELINE_640X480_SPS[..len];
            assert!(SpsInfo::parse(truncated).is_err(), "{len} bytes");
        }
        // 16x16 coded, cropped by 16 pixels horizontally: nothing left.
        let cropped_away = [0x67, 0x42, 0xc0, 0x1e, 0xda, 0x7c, 0xa5, 0xd0];
        assert!(matches!(
            SpsInfo::parse(&cropped_away),
            Err(H264Error::InvalidSps { .. })
        ));
    }

    #[test]
    fn profile_and_level_names() {
        let base = SpsInfo::parse(BASELINE_640X480_SPS).unwrap();
        let with = |profile_idc, constraint_flags, level_idc| SpsInfo {
            profile_idc,
            constraint_flags,
            level_idc,
            ..base
        };
        assert_eq!(with(66, 0x00, 11).profile_name(), "Baseline");
        assert_eq!(with(66, 0x10, 11).level_name(), "1b");
        assert_eq!(with(100, 0x10, 11).level_name(), "1.1");
        assert_eq!(with(100, 0x00, 9).level_name(), "1b");
        assert_eq!(with(100, 0x0c, 51).profile_name(), "Constrained High");
        assert_eq!(with(100, 0x08, 51).profile_name(), "Progressive High");
        assert_eq!(with(110, 0x10, 52).profile_name(), "High 10 Intra");
        assert_eq!(with(244, 0x00, 62).level_name(), "6.2");
        assert_eq!(with(1, 0x00, 99).profile_name(), "Unknown");
        assert_eq!(with(1, 0x00, 99).level_name(), "unknown");
        assert!(with(77, 0x40, 31).constraint_set(1));
        assert!(!with(77, 0x40, 31).constraint_set(0));
        assert!(!with(77, 0xff, 31).constraint_set(6));
    }
}
