//! An event clip's thumbnail: the frame with the most confident detection, as a JPEG with the
//! detection's box drawn on it.
//!
//! The frame is decoded with OpenH264 from the IDR before it (the frames are still held by the
//! pre-roll ring, retained, when the detection arrives). The camera's NV12 ring would be
//! cheaper, but it holds only the newest picture: by the time a detection reaches the recorder
//! (the detector's latency, 100 ms or more) that picture is a later frame, and the box would
//! not match it. Decoding costs one GOP prefix (at most a GOP's frames) once per clip, on the
//! recorder's thread, when the clip closes.

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use stackctl_core::snapshot::{Nv12, encode};
use stackctl_media::h264::START_CODE;

use crate::unit::AccessUnit;
use crate::writer::params_of;

/// Width of the thumbnails, pixels (smaller pictures are kept at their size).
pub const WIDTH: usize = 640;

/// Why there is no thumbnail.
#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    /// No frame to decode.
    #[error("no frame held for the thumbnail")]
    NoFrames,
    /// OpenH264 refused the stream.
    #[error("cannot decode the thumbnail's frame: {0}")]
    Decode(String),
    /// The decoder gave no picture for the last frame.
    #[error("the decoder gave no picture")]
    NoPicture,
    /// The JPEG encoder failed.
    #[error("cannot encode the thumbnail: {0}")]
    Encode(String),
}

/// The last of `frames` (an IDR and the frames after it) as a JPEG at most [`WIDTH`] wide, with
/// `bbox` (`[x, y, w, h]` in the picture's pixels) outlined.
pub fn jpeg<F: AccessUnit>(frames: &[F], bbox: [i32; 4]) -> Result<Vec<u8>, ThumbError> {
    if frames.is_empty() {
        return Err(ThumbError::NoFrames);
    }
    let mut decoder = Decoder::new().map_err(|e| ThumbError::Decode(e.to_string()))?;
    let mut picture = None;
    let mut unit = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        unit.clear();
        if frame.is_idr()
            && !frame.has_inband_params()
            && let Some((sps, pps)) = params_of(frame)
        {
            for p in [&sps, &pps] {
                unit.extend_from_slice(START_CODE);
                unit.extend_from_slice(p);
            }
        }
        unit.extend_from_slice(frame.data());
        let decoded = decoder
            .decode(&unit)
            .map_err(|e| ThumbError::Decode(e.to_string()))?;
        if i + 1 == frames.len() {
            picture = decoded.map(|yuv| to_nv12(&yuv));
        }
    }
    let (mut nv12, width, height) = picture.ok_or(ThumbError::NoPicture)?;
    outline(&mut nv12, width, height, bbox);
    encode(
        Nv12 {
            data: &nv12,
            width,
            height,
        },
        WIDTH,
    )
    .map_err(|e| ThumbError::Encode(e.to_string()))
}

/// A decoded I420 picture as NV12 (even width and height), with its size.
fn to_nv12(yuv: &impl YUVSource) -> (Vec<u8>, usize, usize) {
    let (w, h) = yuv.dimensions();
    let (w, h) = (w & !1, h & !1);
    let (ys, us, vs) = yuv.strides();
    let (y, u, v) = (yuv.y(), yuv.u(), yuv.v());
    let mut out = vec![0u8; w * h * 3 / 2];
    for row in 0..h {
        if let (Some(dst), Some(src)) = (
            out.get_mut(row * w..(row + 1) * w),
            y.get(row * ys..row * ys + w),
        ) {
            dst.copy_from_slice(src);
        }
    }
    let (cw, ch) = (w / 2, h / 2);
    for row in 0..ch {
        for col in 0..cw {
            let at = w * h + row * w + col * 2;
            out[at] = u.get(row * us + col).copied().unwrap_or(128);
            out[at + 1] = v.get(row * vs + col).copied().unwrap_or(128);
        }
    }
    (out, w, h)
}

/// Draws the box's outline (white, 2 pixels, clipped to the picture) into the luma plane.
fn outline(nv12: &mut [u8], width: usize, height: usize, bbox: [i32; 4]) {
    let [x, y, w, h] = bbox;
    if w <= 0 || h <= 0 || width == 0 || height == 0 {
        return;
    }
    let clamp_x = |v: i32| usize::try_from(v.max(0)).unwrap_or(0).min(width - 1);
    let clamp_y = |v: i32| usize::try_from(v.max(0)).unwrap_or(0).min(height - 1);
    let (x0, x1) = (clamp_x(x), clamp_x(x.saturating_add(w) - 1));
    let (y0, y1) = (clamp_y(y), clamp_y(y.saturating_add(h) - 1));
    let mut set = |px: usize, py: usize| {
        if let Some(p) = nv12.get_mut(py * width + px) {
            *p = 235;
        }
    };
    for t in 0..2 {
        for px in x0..=x1 {
            set(px, (y0 + t).min(height - 1));
            set(px, y1.saturating_sub(t));
        }
        for py in y0..=y1 {
            set((x0 + t).min(width - 1), py);
            set(x1.saturating_sub(t), py);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outline_stays_inside_the_picture() {
        let (w, h) = (16, 8);
        let mut p = vec![16u8; w * h * 3 / 2];
        outline(&mut p, w, h, [-5, 2, 100, 3]);
        // Rows 2 and 4 are the box's top and bottom edges, across the whole width.
        assert!(p[2 * w..3 * w].iter().all(|&v| v == 235));
        assert!(p[4 * w..5 * w].iter().all(|&v| v == 235));
        assert!(p[..w].iter().all(|&v| v == 16));
        assert!(p[w * h..].iter().all(|&v| v == 16), "chroma untouched");
        outline(&mut p, w, h, [0, 0, 0, 0]);
    }

    #[test]
    fn nothing_to_decode_is_an_error() {
        let e = jpeg::<crate::unit::OwnedUnit>(&[], [0, 0, 1, 1]).expect_err("empty");
        assert!(matches!(e, ThumbError::NoFrames));
    }
}
