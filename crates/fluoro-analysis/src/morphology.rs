//! Binary morphology over (2r+1)^2 squares, separable with running counts (O(1) per pixel
//! whatever `r`); windows are clipped at the image border. Masks hold 0 and 1.

use fluoro_core::Frame;

/// Dilation of `src` into `dst` (`tmp` holds the horizontal pass); buffers are reused.
pub fn dilate_into(src: &Frame<u8>, r: usize, tmp: &mut Frame<u8>, dst: &mut Frame<u8>) {
    let (w, h) = src.size();
    tmp.reshape(w, h);
    dst.reshape(w, h);
    for y in 0..h {
        running_max(w, r, |i| src.get(i, y), |i, v| tmp.set(i, y, v));
    }
    for x in 0..w {
        running_max(h, r, |i| tmp.get(x, i), |i, v| dst.set(x, i, v));
    }
}

fn running_max(n: usize, r: usize, at: impl Fn(usize) -> u8, mut put: impl FnMut(usize, u8)) {
    let mut count = 0usize;
    for i in 0..r.min(n) {
        count += usize::from(at(i));
    }
    for i in 0..n {
        if i + r < n {
            count += usize::from(at(i + r));
        }
        if i > r {
            count -= usize::from(at(i - r - 1));
        }
        put(i, u8::from(count > 0));
    }
}

/// Dilation of `m` (any pixel set within the window).
pub fn dilate(m: &Frame<u8>, r: usize) -> Frame<u8> {
    let (mut tmp, mut out) = (Frame::new(0, 0), Frame::new(0, 0));
    dilate_into(m, r, &mut tmp, &mut out);
    out
}

/// Erosion of `m` (every pixel of the window set), as the complement of the complement's
/// dilation.
pub fn erode(m: &Frame<u8>, r: usize) -> Frame<u8> {
    dilate(&m.map(|v| 1 - v), r).map(|v| 1 - v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dilation_and_erosion_match_a_direct_window_scan() {
        let m = Frame::from_fn(23, 17, |x, y| u8::from((x * 7 + y * 13) % 11 == 0));
        for r in [0usize, 1, 2, 4] {
            let (d, e) = (dilate(&m, r), erode(&m, r));
            for y in 0..17usize {
                for x in 0..23usize {
                    let win = (y.saturating_sub(r)..(y + r + 1).min(17)).flat_map(|yy| {
                        (x.saturating_sub(r)..(x + r + 1).min(23)).map(move |xx| (xx, yy))
                    });
                    let any = win.clone().any(|(xx, yy)| m.get(xx, yy) != 0);
                    let all = win.clone().all(|(xx, yy)| m.get(xx, yy) != 0);
                    assert_eq!(d.get(x, y), u8::from(any), "dilate r={r} ({x},{y})");
                    assert_eq!(e.get(x, y), u8::from(all), "erode r={r} ({x},{y})");
                }
            }
        }
    }
}
