//! The moving test pattern, rendered straight into planar 4:2:0.
//!
//! Scrolling colour bars and a scrolling luma ramp make motion obvious; a bouncing box gives the
//! encoder real motion vectors; a burned-in `frame NNNNNN  HH:MM:SS.mmm` line lets a person (or a
//! screenshot) tell which frame and when. Motion follows the clock, not the frame count, so it
//! moves at the same speed at 30 fps and at 2 fps.

use std::time::Duration;

use crate::font;

/// 75 % colour bars in BT.601 limited range (Y, U, V): white, yellow, cyan, green, magenta, red,
/// blue, black.
const BARS: [(u8, u8, u8); 8] = [
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
    (16, 128, 128),
];
/// The bouncing box: orange.
const BOX: (u8, u8, u8) = crate::square::COLOUR;
const BLACK_Y: u8 = 16;
const WHITE_Y: u8 = 235;
const NEUTRAL_C: u8 = 128;

/// One I420 picture (Y plane, then U, then V) that is redrawn for every frame.
#[derive(Debug)]
pub struct Pattern {
    width: usize,
    height: usize,
    i420: Vec<u8>,
}

impl Pattern {
    /// A black picture of `width`×`height`; both must be even.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            i420: vec![0; width * height * 3 / 2],
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The three planes of the picture.
    pub fn planes(&self) -> (&[u8], &[u8], &[u8]) {
        let (y, chroma) = self.i420.split_at(self.width * self.height);
        let (u, v) = chroma.split_at(chroma.len() / 2);
        (y, u, v)
    }

    /// Redraws the picture for frame `frame_number` shown at `clock` since the start, with the
    /// orange square drawn when `object` is true. Returns where the square is (drawn or not).
    pub fn render(&mut self, frame_number: u64, clock: Duration, object: bool) -> Object {
        let (w, h) = (self.width, self.height);
        let (cw, ch) = (w / 2, h / 2);
        let ms = u64::try_from(clock.as_millis()).unwrap_or(u64::MAX);
        let (y, chroma) = self.i420.split_at_mut(w * h);
        let (u, v) = chroma.split_at_mut(cw * ch);

        // Bars fill the top two thirds and scroll one picture width every 4 s.
        let bars_ch = (ch * 2 / 3).max(1);
        let shift = (ms % 4000) as usize * cw / 4000;
        let bar_of = |cx: usize| BARS[(cx + shift) % cw * BARS.len() / cw];
        for cx in 0..cw {
            let (by, bu, bv) = bar_of(cx);
            y[2 * cx] = by;
            y[2 * cx + 1] = by;
            u[cx] = bu;
            v[cx] = bv;
        }
        replicate_row(y, w, 0, 1, bars_ch * 2);
        replicate_row(u, cw, 0, 1, bars_ch);
        replicate_row(v, cw, 0, 1, bars_ch);

        // A luma ramp below them, scrolling the other way.
        let ramp = bars_ch * 2;
        let ramp_shift = w - (ms % 3000) as usize * w / 3000;
        for x in 0..w {
            let level = (x + ramp_shift) % w * usize::from(WHITE_Y - BLACK_Y) / w;
            y[ramp * w + x] = BLACK_Y + level as u8;
        }
        replicate_row(y, w, ramp, ramp + 1, h);
        u[bars_ch * cw..].fill(NEUTRAL_C);
        v[bars_ch * cw..].fill(NEUTRAL_C);

        // The caption on a black band, scaled to fill most of the width.
        let caption = caption(frame_number, clock);
        let scale = ((w * 9 / 10) / font::text_width(&caption, 1)).clamp(1, 8);
        let margin = (2 * scale).max(4) & !1;
        let band_w = (font::text_width(&caption, scale) + 2 * margin).min(w) & !1;
        let band_h = (font::CELL_H * scale + 2 * margin).min(h) & !1;
        fill_rect(y, w, (0, 0), (band_w, band_h), BLACK_Y);
        fill_rect(u, cw, (0, 0), (band_w / 2, band_h / 2), NEUTRAL_C);
        fill_rect(v, cw, (0, 0), (band_w / 2, band_h / 2), NEUTRAL_C);
        font::draw_text(y, w, (margin, margin), scale, &caption, WHITE_Y);

        // The square goes on top of everything, so a detector sees all of it.
        let square = Object::at(w, h, clock);
        if object {
            let Object { x: bx, y: by, side } = square;
            fill_rect(y, w, (bx, by), (side, side), BOX.0);
            fill_rect(u, cw, (bx / 2, by / 2), (side / 2, side / 2), BOX.1);
            fill_rect(v, cw, (bx / 2, by / 2), (side / 2, side / 2), BOX.2);
        }

        add_sensor_noise(y, ms ^ frame_number.rotate_left(32));
        square
    }

    /// Writes the picture as NV12 (Y plane, then interleaved U/V) into `out`, replacing its
    /// contents.
    pub fn write_nv12(&self, out: &mut Vec<u8>) {
        let (y, u, v) = self.planes();
        out.clear();
        out.reserve(self.i420.len());
        out.extend_from_slice(y);
        for (cu, cv) in u.iter().zip(v) {
            out.extend_from_slice(&[*cu, *cv]);
        }
    }
}

/// Where the orange square is: it bounces diagonally, crossing the picture in about 2 s. Its
/// corner and side are even, so it covers whole 2x2 blocks and its chroma is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object {
    /// Left edge, pixels.
    pub x: usize,
    /// Top edge.
    pub y: usize,
    /// Side.
    pub side: usize,
}

impl Object {
    /// The square of a `w`x`h` picture at `clock` since the start.
    pub fn at(w: usize, h: usize, clock: Duration) -> Self {
        let ms = u64::try_from(clock.as_millis()).unwrap_or(u64::MAX);
        let side = (w.min(h) / 5).max(2) & !1;
        let x = triangle(ms.wrapping_mul(w as u64) / 2000, (w - side) as u64) & !1;
        let y = triangle(ms.wrapping_mul(h as u64) / 1700, (h - side) as u64) & !1;
        Self { x, y, side }
    }
}

/// `frame 000123  00:01:23.456`.
pub fn caption(frame_number: u64, clock: Duration) -> String {
    let ms = clock.as_millis();
    format!(
        "frame {:06}  {:02}:{:02}:{:02}.{:03}",
        frame_number % 1_000_000,
        ms / 3_600_000 % 100,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Copies row `src` of a plane of `stride`-byte rows over rows `from..to`.
fn replicate_row(plane: &mut [u8], stride: usize, src: usize, from: usize, to: usize) {
    for row in from..to {
        plane.copy_within(src * stride..(src + 1) * stride, row * stride);
    }
}

/// Fills a rectangle of a plane, clipped to the plane.
fn fill_rect(
    plane: &mut [u8],
    stride: usize,
    (x, y): (usize, usize),
    (w, h): (usize, usize),
    value: u8,
) {
    let rows = plane.len() / stride;
    let (x0, x1) = (x.min(stride), (x + w).min(stride));
    for row in y.min(rows)..(y + h).min(rows) {
        plane[row * stride + x0..row * stride + x1].fill(value);
    }
}

/// Adds a little luma noise, different every frame, as a real sensor does: without it the
/// pattern compresses so well that the stream stays far below the requested bit rate and the
/// encoder has unrealistically little work.
fn add_sensor_noise(luma: &mut [u8], seed: u64) {
    // xorshift64: fast and good enough to defeat prediction; never seeded with 0.
    let mut state = seed | 1;
    for chunk in luma.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        for (i, px) in chunk.iter_mut().enumerate() {
            // -4..=3 around the drawn value; drawn values stay within 16..=235, so no wrap.
            let offset = ((state >> (8 * i)) & 7) as u8;
            *px = px.wrapping_add(offset).wrapping_sub(4);
        }
    }
}

/// A position going 0 → `max` → 0 as `t` grows.
fn triangle(t: u64, max: u64) -> usize {
    if max == 0 {
        return 0;
    }
    let phase = t % (2 * max);
    (if phase <= max { phase } else { 2 * max - phase }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caption_matches_the_documented_format() {
        assert_eq!(
            caption(123, Duration::from_millis(83_456)),
            "frame 000123  00:01:23.456"
        );
    }

    #[test]
    fn renders_every_size_and_moves() {
        for (w, h) in [(16, 16), (320, 240), (640, 480), (1920, 1080), (1080, 1920)] {
            let mut p = Pattern::new(w, h);
            p.render(0, Duration::ZERO, true);
            let first = p.i420.clone();
            p.render(1, Duration::from_millis(33), true);
            // At 16x16 the caption covers everything and its visible part does not change.
            if w > 16 {
                assert_ne!(first, p.i420, "{w}x{h} did not change");
            }
            let mut nv12 = Vec::new();
            p.write_nv12(&mut nv12);
            assert_eq!(nv12.len(), w * h * 3 / 2);
            assert_eq!(nv12[w * h], p.planes().1[0]);
            assert_eq!(nv12[w * h + 1], p.planes().2[0]);
        }
    }

    #[test]
    fn the_square_is_drawn_where_it_says_and_only_when_visible() {
        let (w, h) = (320, 240);
        let mut p = Pattern::new(w, h);
        let clock = Duration::from_millis(1234);
        let o = p.render(7, clock, true);
        assert_eq!(o, Object::at(w, h, clock));
        assert_eq!((o.x % 2, o.y % 2, o.side), (0, 0, 48));
        let (_, u, v) = p.planes();
        let orange =
            |cx: usize, cy: usize| (u[cy * w / 2 + cx], v[cy * w / 2 + cx]) == (BOX.1, BOX.2);
        let count = (0..h / 2)
            .flat_map(|cy| (0..w / 2).map(move |cx| (cx, cy)))
            .filter(|&(cx, cy)| orange(cx, cy))
            .count();
        assert_eq!(count, (o.side / 2) * (o.side / 2), "exactly the square");
        assert!(orange(o.x / 2, o.y / 2) && orange((o.x + o.side) / 2 - 1, (o.y + o.side) / 2 - 1));
        p.render(7, clock, false);
        let (_, u, v) = p.planes();
        assert!(
            !u.iter().zip(v).any(|(&cu, &cv)| (cu, cv) == (BOX.1, BOX.2)),
            "hidden"
        );
    }

    #[test]
    fn triangle_bounces() {
        assert_eq!(triangle(0, 10), 0);
        assert_eq!(triangle(10, 10), 10);
        assert_eq!(triangle(15, 10), 5);
        assert_eq!(triangle(20, 10), 0);
        assert_eq!(triangle(7, 0), 0);
    }
}
