//! A tiny 5×7 bitmap font, just enough for `frame 000123  00:01:23.456`.

/// Glyph cell width in font pixels, including one column of spacing.
pub const CELL_W: usize = 6;
/// Glyph cell height in font pixels, including one row of spacing.
pub const CELL_H: usize = 8;

/// Rows of a glyph, top first; bit 4 is the leftmost column.
type Glyph = [u8; 7];

fn glyph(c: char) -> Glyph {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        'a' => [0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F],
        'e' => [0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E],
        'f' => [0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08],
        'm' => [0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11],
        'r' => [0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10],
        // Anything else, including space, is blank.
        _ => [0; 7],
    }
}

/// Width in pixels of `text` drawn at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    text.chars().count() * CELL_W * scale
}

/// Draws `text` into an 8-bit plane with its top-left corner at (`x`, `y`), each font pixel
/// `scale`×`scale` plane pixels set to `value`. Parts outside the plane are clipped.
pub fn draw_text(
    plane: &mut [u8],
    stride: usize,
    (x, y): (usize, usize),
    scale: usize,
    text: &str,
    value: u8,
) {
    let rows = plane.len() / stride.max(1);
    for (i, c) in text.chars().enumerate() {
        let left = x + i * CELL_W * scale;
        for (gy, bits) in glyph(c).iter().enumerate() {
            for gx in 0..5 {
                if bits & (0x10 >> gx) == 0 {
                    continue;
                }
                let px = left + gx * scale;
                let py = y + gy * scale;
                for row in py..(py + scale).min(rows) {
                    let start = row * stride + px.min(stride);
                    let end = row * stride + (px + scale).min(stride);
                    plane[start..end].fill(value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_one_at_scale_two_and_clips() {
        let stride = 12;
        let mut plane = vec![0u8; stride * 16];
        draw_text(&mut plane, stride, (0, 0), 2, "1", 9);
        // Top row of '1' is the middle column: font x 2 → plane x 4..6.
        assert_eq!(&plane[..stride], &[0, 0, 0, 0, 9, 9, 0, 0, 0, 0, 0, 0]);
        // Bottom row of '1' is columns 1..4 → plane x 2..8 at plane rows 12 and 13.
        assert_eq!(
            &plane[12 * stride..12 * stride + 8],
            &[0, 0, 9, 9, 9, 9, 9, 9]
        );
        assert_eq!(text_width("12", 2), 24);
        // Mostly off the plane: must not panic.
        draw_text(&mut plane, stride, (10, 14), 3, "88", 1);
    }
}
