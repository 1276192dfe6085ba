//! NV12 to JPEG, with an optional downscale.
//!
//! The camera's NV12 is BT.601 *limited* range (Y 16..=235, chroma 16..=240); JFIF's YCbCr is
//! full range, so samples are stretched on the way (without it the picture looks washed out).
//! Downscaling averages the luma over each output pixel's footprint (a box filter: no
//! aliasing shimmer on the sensor noise) and takes the chroma at its centre.

use jpeg_encoder::{Encoder, EncodingError, ImageBuffer, JpegColorType, SamplingFactor};

/// JPEG quality, 1..=100: 80 keeps the burned-in text sharp at a tenth of the NV12 size.
pub const QUALITY: u8 = 80;

/// An NV12 picture to encode: `width`x`height`, the luma plane then interleaved U/V.
#[derive(Debug, Clone, Copy)]
pub struct Nv12<'a> {
    /// The bytes: at least `width * height * 3 / 2`.
    pub data: &'a [u8],
    /// Width in pixels, even.
    pub width: usize,
    /// Height in pixels, even.
    pub height: usize,
}

/// Encodes `picture` as a JPEG `out_width` pixels wide (the height follows the aspect, both
/// rounded to even; `out_width` is clamped to `16..=picture.width`).
pub fn encode(picture: Nv12<'_>, out_width: usize) -> Result<Vec<u8>, EncodingError> {
    let (w, h) = output_size(picture.width, picture.height, out_width);
    let mut out = Vec::with_capacity(w * h / 4);
    let mut encoder = Encoder::new(&mut out, QUALITY);
    encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
    encoder.encode_image(Scaled::new(picture, w, h))?;
    Ok(out)
}

/// The output size for a picture of `width`x`height` asked at `out_width`.
pub fn output_size(width: usize, height: usize, out_width: usize) -> (usize, usize) {
    let w = out_width.clamp(16.min(width), width) & !1;
    let h = (height * w / width.max(1)).max(2) & !1;
    (w.max(2), h)
}

/// Full-range stretch of limited-range samples: (luma, chroma).
struct Range {
    y: [u8; 256],
    c: [u8; 256],
}

impl Range {
    fn new() -> Self {
        let stretch = |v: usize, lo: f32, span: f32, mid: f32| {
            ((v as f32 - lo) * 255.0 / span + mid)
                .round()
                .clamp(0.0, 255.0) as u8
        };
        let mut y = [0; 256];
        let mut c = [0; 256];
        for v in 0..256 {
            y[v] = stretch(v, 16.0, 219.0, 0.0);
            c[v] = stretch(v, 128.0, 224.0, 128.0);
        }
        Self { y, c }
    }
}

/// The picture as the encoder reads it: row by row, scaled.
struct Scaled<'a> {
    src: Nv12<'a>,
    w: usize,
    h: usize,
    /// For each output column, the first source column of its footprint (and one past the
    /// last, at `w`).
    cols: Vec<usize>,
    range: Range,
}

impl<'a> Scaled<'a> {
    fn new(src: Nv12<'a>, w: usize, h: usize) -> Self {
        let cols = (0..=w).map(|x| x * src.width / w).collect();
        Self {
            src,
            w,
            h,
            cols,
            range: Range::new(),
        }
    }
}

impl Scaled<'_> {
    /// Row `y` at full size: the luma row and each chroma sample twice, through the range
    /// tables.
    fn fill_unscaled(&self, y: usize, buffers: &mut [Vec<u8>; 4]) {
        let sw = self.src.width;
        let luma = &self.src.data[y * sw..(y + 1) * sw];
        buffers[0].extend(luma.iter().map(|&v| self.range.y[usize::from(v)]));
        let at = sw * self.src.height + (y / 2) * sw;
        for uv in self.src.data[at..at + sw].chunks_exact(2) {
            let (u, v) = (
                self.range.c[usize::from(uv[0])],
                self.range.c[usize::from(uv[1])],
            );
            buffers[1].extend([u, u]);
            buffers[2].extend([v, v]);
        }
    }

    /// Row `y` scaled: luma averaged over each output pixel's footprint, chroma at its centre.
    fn fill_scaled(&self, y: usize, buffers: &mut [Vec<u8>; 4]) {
        let (sw, sh) = (self.src.width, self.src.height);
        let (r0, r1) = (
            y * sh / self.h,
            ((y + 1) * sh / self.h).max(y * sh / self.h + 1),
        );
        let luma = &self.src.data[..sw * sh];
        let chroma = &self.src.data[sw * sh..];
        let cy = ((r0 + r1) / 2).min(sh - 1) / 2;
        for x in 0..self.w {
            let (c0, c1) = (self.cols[x], self.cols[x + 1].max(self.cols[x] + 1));
            let mut sum = 0u32;
            for row in r0..r1 {
                sum += luma[row * sw + c0..row * sw + c1]
                    .iter()
                    .map(|&v| u32::from(v))
                    .sum::<u32>();
            }
            let n = ((r1 - r0) * (c1 - c0)) as u32;
            let cx = ((c0 + c1) / 2).min(sw - 1) / 2;
            let at = cy * sw + cx * 2;
            buffers[0].push(self.range.y[(sum / n) as usize]);
            buffers[1].push(self.range.c[usize::from(chroma[at])]);
            buffers[2].push(self.range.c[usize::from(chroma[at + 1])]);
        }
    }
}

impl ImageBuffer for Scaled<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        u16::try_from(self.w).unwrap_or(u16::MAX)
    }

    fn height(&self) -> u16 {
        u16::try_from(self.h).unwrap_or(u16::MAX)
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let y = usize::from(y);
        if (self.w, self.h) == (self.src.width, self.src.height) {
            self.fill_unscaled(y, buffers);
        } else {
            self.fill_scaled(y, buffers);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_keep_the_aspect_and_stay_even() {
        assert_eq!(output_size(1920, 1080, 1920), (1920, 1080));
        assert_eq!(output_size(1920, 1080, 640), (640, 360));
        assert_eq!(output_size(1920, 1080, 5000), (1920, 1080), "no upscale");
        assert_eq!(output_size(1280, 720, 333), (332, 186));
        assert_eq!(output_size(640, 480, 1), (16, 12));
    }

    #[test]
    fn the_full_size_fast_path_reads_what_the_scaler_reads() {
        let (w, h) = (32, 16);
        let data: Vec<u8> = (0..w * h * 3 / 2).map(|i| (i * 7 % 251) as u8).collect();
        let full = Scaled::new(
            Nv12 {
                data: &data,
                width: w,
                height: h,
            },
            w,
            h,
        );
        for y in 0..h {
            let mut fast: [Vec<u8>; 4] = Default::default();
            full.fill_unscaled(y, &mut fast);
            let mut general: [Vec<u8>; 4] = Default::default();
            full.fill_scaled(y, &mut general);
            assert_eq!(fast, general, "row {y}");
        }
    }

    #[test]
    fn the_range_is_stretched() {
        let r = Range::new();
        assert_eq!((r.y[16], r.y[235], r.y[0], r.y[255]), (0, 255, 0, 255));
        assert_eq!((r.c[128], r.c[240]), (128, 255));
        assert!(r.c[16] <= 1, "{}", r.c[16]);
    }

    #[test]
    fn encodes_a_valid_jpeg_of_the_asked_size() {
        let (w, h) = (64, 48);
        let mut data = vec![128u8; w * h * 3 / 2];
        data[..w * h]
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = (i % 200) as u8 + 16);
        let jpeg = encode(
            Nv12 {
                data: &data,
                width: w,
                height: h,
            },
            32,
        )
        .expect("encode");
        assert_eq!(&jpeg[..2], &[0xff, 0xd8], "SOI");
        assert_eq!(&jpeg[jpeg.len() - 2..], &[0xff, 0xd9], "EOI");
        let mut d = jpeg_decoder::Decoder::new(&jpeg[..]);
        d.decode().expect("decodes");
        let info = d.info().expect("info");
        assert_eq!((info.width, info.height), (32, 24));
    }
}
