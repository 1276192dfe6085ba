//! Known NAL units for the unit tests (built bit by bit from the H.264 syntax tables).

/// Constrained Baseline, level 3.0, 640x480, no VUI: `42c01e`.
pub const BASELINE_640X480_SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xf6, 0x40];

/// High, level 4.0, 1920x1088 coded, cropped to 1080, VUI timing 1/60 (30 fps): the timing
/// fields need two emulation-prevention bytes.
pub const HIGH_1080P_SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00,
    0x04, 0x00, 0x00, 0x03, 0x00, 0xf2, 0x10,
];

/// Main, level 3.1, constraint_set1, 1280x720, seq_parameter_set_id 1: `4d401f`.
pub const MAIN_720P_SPS: &[u8] = &[0x67, 0x4d, 0x40, 0x1f, 0x5b, 0x40, 0x28, 0x02, 0xdc, 0x80];

/// A PPS (id 0 referring to SPS 0).
pub const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

/// Another PPS, differing from [`PPS`] in one byte.
pub const PPS_2: &[u8] = &[0x68, 0xce, 0x38, 0x80];

/// The NAL units, each behind a 4-byte start code.
pub fn annexb(nals: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in nals {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    out
}
