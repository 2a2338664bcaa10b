//! Binary morphology over (2r+1)^2 squares, separable: each pass sums the window's shifted
//! rows (O(r) per pixel, vectorised; the windows used are a few pixels), or for windows
//! too wide for 8-bit sums keeps running counts (O(1) per pixel); windows are clipped at
//! the image border. Masks hold 0 and 1.

use fluoro_core::Frame;

/// Dilation of `src` into `dst` (`tmp` holds the horizontal pass); buffers are reused.
pub fn dilate_into(src: &Frame<u8>, r: usize, tmp: &mut Frame<u8>, dst: &mut Frame<u8>) {
    separable(src, r, tmp, dst, |count, _| count > 0);
}

/// Erosion of `src` into `dst` (every pixel of the window set; windows clipped at the
/// border), buffers reused like [`dilate_into`].
pub fn erode_into(src: &Frame<u8>, r: usize, tmp: &mut Frame<u8>, dst: &mut Frame<u8>) {
    separable(src, r, tmp, dst, |count, len| count == len);
}

/// Opening of `src` into `dst`: erosion then dilation, which removes whatever a
/// `(2r+1)^2` square cannot fit inside (thin strands, specks) and keeps the rest.
pub fn open_into(
    src: &Frame<u8>,
    r: usize,
    tmp: &mut Frame<u8>,
    eroded: &mut Frame<u8>,
    dst: &mut Frame<u8>,
) {
    erode_into(src, r, tmp, eroded);
    dilate_into(eroded, r, tmp, dst);
}

/// A square window's rows then columns: `set(count, len)` decides each pixel from the set
/// pixels in its (clipped) window of `len`. Each pass adds the window's shifted copies of
/// whole rows (8-bit sums of 0 or 1), which vectorises: a running count down each column
/// read a cache line per pixel, and one along each row went a pixel at a time. Windows
/// wider than 8-bit sums allow take the running counts.
fn separable(
    src: &Frame<u8>,
    r: usize,
    tmp: &mut Frame<u8>,
    dst: &mut Frame<u8>,
    set: impl Fn(usize, usize) -> bool + Copy,
) {
    let (w, h) = src.size();
    tmp.reshape(w, h);
    dst.reshape(w, h);
    if 2 * r + 1 > usize::from(u8::MAX) {
        // a window too wide for 8-bit sums: running counts along each row and column
        for y in 0..h {
            let (s, t) = (src.row(y), tmp.row_mut(y));
            running(w, r, |i| s[i], |i, v| t[i] = v, set);
        }
        for x in 0..w {
            running(h, r, |i| tmp.get(x, i), |i, v| dst.set(x, i, v), set);
        }
        return;
    }
    // rows: the window's shifted copies of the row added (set pixels as 1)
    for y in 0..h {
        let (s, t) = (src.row(y), tmp.row_mut(y));
        t.fill(0);
        for d in 0..=2 * r {
            let (to, from) = if d >= r { (0, d - r) } else { (r - d, 0) };
            if to.max(from) >= w {
                continue;
            }
            let n = w - to.max(from);
            for (a, &b) in t[to..to + n].iter_mut().zip(&s[from..from + n]) {
                *a += u8::from(b != 0);
            }
        }
        for (x, a) in t.iter_mut().enumerate() {
            let len = (x + r + 1).min(w) - x.saturating_sub(r);
            *a = u8::from(set(usize::from(*a), len));
        }
    }
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        let sum = dst.row_mut(y);
        sum.copy_from_slice(tmp.row(y0));
        for yy in y0 + 1..y1 {
            for (a, &b) in sum.iter_mut().zip(tmp.row(yy)) {
                *a += b;
            }
        }
        let len = y1 - y0;
        for a in sum.iter_mut() {
            *a = u8::from(set(usize::from(*a), len));
        }
    }
}

/// One line of `n` values with a running count over `i - r ..= i + r` (clipped).
fn running(
    n: usize,
    r: usize,
    at: impl Fn(usize) -> u8,
    mut put: impl FnMut(usize, u8),
    set: impl Fn(usize, usize) -> bool,
) {
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
        let len = (i + r + 1).min(n) - i.saturating_sub(r);
        put(i, u8::from(set(count, len)));
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
        // 30: wider than the frame; 130: too wide for 8-bit sums (the running counts)
        for r in [0usize, 1, 2, 4, 30, 130] {
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
            // into reused buffers: the same erosion, and opening as erosion then dilation
            let (mut tmp, mut eroded, mut opened) =
                (Frame::new(0, 0), Frame::new(0, 0), Frame::new(0, 0));
            erode_into(&m, r, &mut tmp, &mut eroded);
            assert!(eroded == e, "erode_into r={r}");
            open_into(&m, r, &mut tmp, &mut eroded, &mut opened);
            assert!(opened == dilate(&e, r), "open_into r={r}");
        }
    }
}
