//! A wide Gaussian blur (background estimation) at reduced resolution, for the whole frame
//! or sampled in a rectangle: analysis stages that need the background only near the
//! instrument pay for the small image and their rectangle, not for the full frame.

use crate::gaussian::{blur, kernel};
use crate::par::{par_chunks_with, zeroed};
use fluoro_core::Frame;
use rayon::prelude::*;

/// Buffers of [`blur_large`] and, after [`LargeBlurScratch::prepare`], the reduced-resolution
/// blurred frame that [`LargeBlurScratch::sample_rect`] interpolates.
#[derive(Debug, Default)]
pub struct LargeBlurScratch {
    small: Frame<f32>,
    small_blur: Frame<f32>,
    tmp: Frame<f32>,
    kernel: Vec<f32>,
    key: (usize, u32),
    cols: Vec<(u32, u32, f32)>,
    rows: Vec<Vec<f32>>,
    wide: Frame<f32>,
    /// Full-resolution blur when no reduction applies (`k == 1`).
    full: Frame<f32>,
    /// Reduction factor and source size of the last `prepare`.
    k: usize,
    size: (usize, usize),
    /// The reduced grid's size, and the cell of it that `small_blur`'s first pixel is
    /// (`small_blur` may cover only part of the grid: [`LargeBlurScratch::prepare_around`]).
    grid: (usize, usize),
    origin: (usize, usize),
    /// [`LargeBlurScratch::sample_rect`]'s small-blur rows, widened to the rectangle.
    rect_wide: Frame<f32>,
}

/// The reduction: the largest power of two keeping at least 3 px of sigma (and 8 px of frame).
fn factor(w: usize, h: usize, sigma: f32) -> usize {
    let mut k = 1usize;
    while sigma / (2 * k) as f32 >= 3.0 && w / (2 * k) >= 8 && h / (2 * k) >= 8 {
        k *= 2;
    }
    k
}

/// The mean of each `k` x `k` block of `src` into `dst`, `size` blocks across and down (at
/// most `src`'s size divided by `k`, rounded up; a block cut by the right or bottom edge
/// averages the pixels it holds). Each block row's `k` frame rows are summed column-wise
/// (contiguous, vectorised), then each group of `k` column sums; `rows` is per-band scratch.
pub fn box_average(
    src: &Frame<f32>,
    k: usize,
    size: (usize, usize),
    rows: &mut Vec<Vec<f32>>,
    dst: &mut Frame<f32>,
) {
    box_average_cells(src, k, (0, 0), size, rows, dst);
}

/// [`box_average`]'s blocks `first .. first + size` only (block columns and rows), into
/// `dst` (`size`): each holds the bits [`box_average`] gives it.
fn box_average_cells(
    src: &Frame<f32>,
    k: usize,
    first: (usize, usize),
    size: (usize, usize),
    rows: &mut Vec<Vec<f32>>,
    dst: &mut Frame<f32>,
) {
    let (w, h) = src.size();
    dst.reshape(size.0, size.1);
    let (xa, xb) = ((first.0 * k).min(w), ((first.0 + size.0) * k).min(w));
    par_chunks_with(
        dst.data_mut(),
        size.0.max(1),
        rows,
        |j, row, acc: &mut Vec<f32>| {
            let acc = zeroed(acc, xb - xa);
            let by = first.1 + j;
            let (y0, y1) = (by * k, ((by + 1) * k).min(h));
            block_row(src, k, xa..xb, y0..y1, acc, row);
        },
    );
}

/// One output row of [`box_average`]: columns `cols` of frame rows `rows` summed
/// column-wise into `acc` (zeros, as long as `cols`), then each group of `k` column sums
/// averaged.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn block_row(
    src: &Frame<f32>,
    k: usize,
    cols: std::ops::Range<usize>,
    rows: std::ops::Range<usize>,
    acc: &mut [f32],
    out: &mut [f32],
) {
    let n = rows.len() as f32;
    for y in rows {
        for (a, &v) in acc.iter_mut().zip(&src.row(y)[cols.clone()]) {
            *a += v;
        }
    }
    for (o, group) in out.iter_mut().zip(acc.chunks(k)) {
        *o = group.iter().sum::<f32>() / (n * group.len() as f32);
    }
}

/// The bilinear sources ([`source`]) of output columns `xs` over `sw` small columns, as
/// `(lower, upper, weight of the upper)`, into `cols`.
fn column_table(xs: std::ops::Range<usize>, k: usize, sw: usize, cols: &mut Vec<(u32, u32, f32)>) {
    cols.clear();
    cols.extend(xs.map(|x| {
        let (i0, i1, ax) = source(x, k, sw);
        (i0 as u32, i1 as u32, ax)
    }));
}

/// A small row interpolated at the columns of a [`column_table`], the row's first value
/// being column `origin`'s.
fn widen_row(src: &[f32], cols: &[(u32, u32, f32)], out: &mut [f32], origin: usize) {
    for (o, &(x0, x1, ax)) in out.iter_mut().zip(cols) {
        let (a, c) = (src[x0 as usize - origin], src[x1 as usize - origin]);
        *o = a + ax * (c - a);
    }
}

/// `out = a + ay (c - a)`: an output row between two widened rows.
fn blend_rows(a: &[f32], c: &[f32], ay: f32, out: &mut [f32]) {
    for ((o, &a), &c) in out.iter_mut().zip(a).zip(c) {
        *o = a + ay * (c - a);
    }
}

/// The bilinear source of output coordinate `t` at reduction `k` over `n` small samples:
/// lower index, upper index, weight of the upper.
fn source(t: usize, k: usize, n: usize) -> (usize, usize, f32) {
    let f = ((t as f32 + 0.5) / k as f32 - 0.5).clamp(0.0, (n - 1) as f32);
    let i = f as usize;
    (i, (i + 1).min(n - 1), f - i as f32)
}

impl LargeBlurScratch {
    /// The Gaussian kernel of `sigma` (px of the image it runs on) at reduction `k`, made
    /// only when either changed.
    fn cache_kernel(&mut self, k: usize, sigma: f32) {
        if self.key != (k, sigma.to_bits()) {
            self.kernel = kernel(sigma);
            self.key = (k, sigma.to_bits());
        }
    }

    /// Box-averages `src` by `k` and blurs the small image with the remaining sigma: the
    /// cells whose blur sampling the full-resolution rectangle `area` (`x0, y0, x1, y1`,
    /// ends excluded) needs, with the kernel's radius of cells around them (or up to the
    /// grid's edge), so that those cells get the whole grid's values bit for bit.
    fn reduce(&mut self, src: &Frame<f32>, sigma: f32, k: usize, area: [usize; 4]) {
        let (w, h) = src.size();
        let (sw, sh) = (w.div_ceil(k), h.div_ceil(k));
        // box averaging over k already blurs by sigma^2 = (k^2 - 1) / 12 (full-res px)
        let rest = (sigma * sigma - ((k * k) as f32 - 1.0) / 12.0)
            .max(0.25)
            .sqrt()
            / k as f32;
        self.cache_kernel(k, rest);
        let r = self.kernel.len() / 2;
        let [x0, y0, x1, y1] = area;
        // more than 2r cells: rows of at most 2r take the blur's plain per-tap sums, whose
        // order differs from its paired taps' (a different last bit)
        // (an area partly or wholly outside the frame is clipped to it, at least a pixel)
        let cells = |a: usize, b: usize, n: usize, len: usize| {
            let a = a.min(len - 1);
            let (lo, hi) = (source(a, k, n).0, source(b.clamp(a + 1, len) - 1, k, n).1);
            let (lo, hi) = (lo.saturating_sub(r), (hi + 1 + r).min(n));
            let hi = hi.max((lo + 2 * r + 1).min(n));
            (hi.saturating_sub(2 * r + 1).min(lo), hi)
        };
        let (cx0, cx1) = cells(x0, x1, sw, w);
        let (cy0, cy1) = cells(y0, y1, sh, h);
        box_average_cells(
            src,
            k,
            (cx0, cy0),
            (cx1 - cx0, cy1 - cy0),
            &mut self.rows,
            &mut self.small,
        );
        (self.grid, self.origin) = ((sw, sh), (cx0, cy0));
        blur(
            &self.small,
            &self.kernel,
            &mut self.tmp,
            &mut self.small_blur,
        );
    }

    /// Prepares [`LargeBlurScratch::sample_rect`] for `src`: the reduced-resolution blur (or
    /// the full blur where sigma is too small to reduce).
    pub fn prepare(&mut self, src: &Frame<f32>, sigma: f32) {
        self.prepare_around(src, sigma, [0, 0, src.width(), src.height()]);
    }

    /// [`LargeBlurScratch::prepare`] for rectangles inside `area` only (`x0, y0, x1, y1`
    /// in full-resolution pixels, ends excluded): the reduced blur is made over the cells
    /// they sample and a kernel's radius around them, not the whole frame, and gives the
    /// whole-frame values there bit for bit. Sampling outside `area` panics. For a stage
    /// that needs the background in a few discs near the instrument.
    pub fn prepare_around(&mut self, src: &Frame<f32>, sigma: f32, area: [usize; 4]) {
        let (w, h) = src.size();
        let k = factor(w, h, sigma);
        (self.k, self.size) = (k, (w, h));
        if k == 1 || w == 0 || h == 0 {
            self.cache_kernel(1, sigma);
            blur(src, &self.kernel, &mut self.tmp, &mut self.full);
        } else {
            self.reduce(src, sigma, k, area);
        }
    }

    /// The prepared blur in the rectangle at `(x0, y0)` of size `rw` x `rh` (inside the
    /// prepared frame) into `dst`: the same values as [`blur_large`] gives there. Each
    /// small-blur row the rectangle needs is widened to the rectangle's columns once (about
    /// `rh / k` rows, not `rh`), then every output row is a blend of two of them.
    pub fn sample_rect(
        &mut self,
        x0: usize,
        y0: usize,
        rw: usize,
        rh: usize,
        dst: &mut Frame<f32>,
    ) {
        dst.reshape(rw, rh);
        let (w, h) = self.size;
        assert!(
            x0 + rw <= w && y0 + rh <= h,
            "rectangle outside the prepared frame"
        );
        if rw == 0 || rh == 0 {
            return;
        }
        if self.k == 1 {
            for yy in 0..rh {
                let src = &self.full.row(y0 + yy)[x0..x0 + rw];
                dst.row_mut(yy).copy_from_slice(src);
            }
            return;
        }
        let (k, small) = (self.k, &self.small_blur);
        let ((sw, sh), (ox, oy)) = (self.grid, self.origin);
        column_table(x0..x0 + rw, k, sw, &mut self.cols);
        // the small rows blended by the rectangle's first and last rows, and all between
        let (first, last) = (source(y0, k, sh).0, source(y0 + rh - 1, k, sh).1);
        let (c0, c1) = (self.cols[0].0 as usize, self.cols[rw - 1].1 as usize);
        assert!(
            (ox..ox + small.width()).contains(&c0)
                && (ox..ox + small.width()).contains(&c1)
                && (oy..oy + small.height()).contains(&first)
                && (oy..oy + small.height()).contains(&last),
            "rectangle outside the prepared area"
        );
        self.rect_wide.reshape(rw, last - first + 1);
        for (j, out) in self.rect_wide.data_mut().chunks_exact_mut(rw).enumerate() {
            widen_row(small.row(first - oy + j), &self.cols, out, ox);
        }
        for yy in 0..rh {
            let (r0, r1, ay) = source(y0 + yy, k, sh);
            let wide = &self.rect_wide;
            blend_rows(
                wide.row(r0 - first),
                wide.row(r1 - first),
                ay,
                dst.row_mut(yy),
            );
        }
    }
}

impl LargeBlurScratch {
    /// Prepares [`LargeBlurScratch::rows_at`] for `src`: the reduced-resolution blur with
    /// each of its rows widened to full width (or the full blur where sigma is too small to
    /// reduce). A pass that needs the background row by row then blends it where it is
    /// used, and the full-resolution background is never written.
    pub fn prepare_rows(&mut self, src: &Frame<f32>, sigma: f32) {
        self.prepare(src, sigma);
        let (k, w) = (self.k, src.width());
        if k == 1 {
            return;
        }
        let sw = self.small_blur.width();
        // bilinear upsampling, separable: each small row is first widened to full width (a
        // table gather on 1/k of the rows), then every output row is a contiguous blend of
        // two widened rows
        column_table(0..w, k, sw, &mut self.cols);
        self.wide.reshape(w, self.small_blur.height());
        let (small, cols) = (&self.small_blur, &self.cols);
        self.wide
            .data_mut()
            .par_chunks_mut(w)
            .enumerate()
            .for_each(|(sy, row)| widen_row(small.row(sy), cols, row, 0));
    }

    /// Row `y` of the prepared blur as two full-width rows and a weight: the blur is
    /// `a + ay * (c - a)` for `a`, `c` at the same column (exactly `a` where no reduction
    /// applied: then both rows are the blurred row and `ay` is 0).
    pub fn rows_at(&self, y: usize) -> (&[f32], &[f32], f32) {
        if self.k == 1 {
            let r = self.full.row(y);
            return (r, r, 0.0);
        }
        let (y0, y1, ay) = source(y, self.k, self.wide.height());
        (self.wide.row(y0), self.wide.row(y1), ay)
    }
}

/// A wide Gaussian blur (background estimation) computed at reduced resolution: the source is
/// box-averaged by `k` (the largest power of two keeping at least 3 px of sigma), blurred
/// with the remaining sigma, and bilinearly interpolated back. Within a few percent of the
/// full-resolution blur for smooth backgrounds, at about 1/k^2 of the cost.
pub fn blur_large(src: &Frame<f32>, sigma: f32, s: &mut LargeBlurScratch, dst: &mut Frame<f32>) {
    let (w, h) = src.size();
    if factor(w, h, sigma) == 1 {
        // no reduction: the full blur straight into `dst` (no copy through `full`, so
        // `sample_rect` needs a `prepare` after this)
        s.cache_kernel(1, sigma);
        blur(src, &s.kernel, &mut s.tmp, dst);
        s.size = (0, 0);
        return;
    }
    s.prepare_rows(src, sigma);
    dst.reshape(w, h);
    let s = &*s;
    dst.data_mut()
        .par_chunks_mut(w)
        .enumerate()
        .for_each(|(y, row)| {
            let (r0, r1, ay) = s.rows_at(y);
            blend_rows(r0, r1, ay, row);
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian::tests::{random_frame, reference};

    #[test]
    fn large_blur_is_close_to_the_full_blur_on_smooth_data() {
        let src = Frame::from_fn(256, 200, |x, y| {
            1000.0
                + 300.0 * ((x as f32) / 40.0).sin() * ((y as f32) / 55.0).cos()
                + if x > 128 { 200.0 } else { 0.0 }
        });
        let (mut tmp, mut full, mut fast) = (Frame::new(0, 0), Frame::new(0, 0), Frame::new(0, 0));
        blur(&src, &kernel(16.0), &mut tmp, &mut full);
        blur_large(&src, 16.0, &mut LargeBlurScratch::default(), &mut fast);
        // interior (borders differ in handling)
        let mut worst = 0.0f32;
        for y in 40..160 {
            for x in 40..216 {
                worst = worst.max((full.get(x, y) - fast.get(x, y)).abs());
            }
        }
        assert!(worst < 8.0, "max difference {worst} on a 800-unit signal");
    }

    /// The reduced-resolution blur is exactly its definition: box average by k (partial
    /// blocks at the right and bottom averaged over the pixels they hold), Gaussian of the
    /// remaining sigma (reflect-101), bilinear interpolation back (clamped at the ends);
    /// here in float64, written out directly.
    #[test]
    fn large_blur_is_box_average_blur_and_bilinear_upsampling() {
        for (w, h, sigma) in [(203, 157, 13.0f32), (256, 96, 25.0)] {
            let src = random_frame(w, h, 9);
            let mut k = 1usize;
            while sigma / (2 * k) as f32 >= 3.0 && w / (2 * k) >= 8 && h / (2 * k) >= 8 {
                k *= 2;
            }
            assert!(k >= 2);
            let (sw, sh) = (w.div_ceil(k), h.div_ceil(k));
            let small = Frame::from_fn(sw, sh, |bx, by| {
                let (mut acc, mut n) = (0.0f64, 0.0f64);
                for y in by * k..((by + 1) * k).min(h) {
                    for x in bx * k..((bx + 1) * k).min(w) {
                        acc += f64::from(src.get(x, y));
                        n += 1.0;
                    }
                }
                (acc / n) as f32
            });
            let rest = (sigma * sigma - ((k * k) as f32 - 1.0) / 12.0)
                .max(0.25)
                .sqrt()
                / k as f32;
            let blurred = reference(&small, rest);
            let at = |t: usize, n: usize| {
                let f = ((t as f64 + 0.5) / k as f64 - 0.5).clamp(0.0, (n - 1) as f64);
                let i = f as usize;
                (i, (i + 1).min(n - 1), f - i as f64)
            };
            let mut fast = Frame::new(0, 0);
            blur_large(&src, sigma, &mut LargeBlurScratch::default(), &mut fast);
            let mut worst = 0.0f64;
            for y in 0..h {
                let (y0, y1, ay) = at(y, sh);
                for x in 0..w {
                    let (x0, x1, ax) = at(x, sw);
                    let row =
                        |yy| blurred.get(x0, yy) + ax * (blurred.get(x1, yy) - blurred.get(x0, yy));
                    let want = row(y0) + ay * (row(y1) - row(y0));
                    worst = worst.max((want - f64::from(fast.get(x, y))).abs());
                }
            }
            // on values up to 4000: float32 rounding only
            assert!(worst < 0.01, "{w}x{h} sigma {sigma}: {worst}");
        }
    }

    /// A rectangle sampled after `prepare`, or after `prepare_around` it, holds exactly
    /// what the whole-frame blur holds there, reduced or not, at the frame's edges and
    /// inside.
    #[test]
    fn a_sampled_rectangle_equals_the_whole_frame_blur_there() {
        for (w, h, sigma) in [(203, 157, 13.0f32), (256, 96, 25.0), (120, 90, 4.0)] {
            let src = random_frame(w, h, 5);
            let mut whole = Frame::new(0, 0);
            blur_large(&src, sigma, &mut LargeBlurScratch::default(), &mut whole);
            let mut s = LargeBlurScratch::default();
            s.prepare(&src, sigma);
            let (mut part, mut around) = (Frame::new(0, 0), LargeBlurScratch::default());
            for (x0, y0, rw, rh) in [(0, 0, 40, 30), (17, 23, 61, 44), (w - 50, h - 37, 50, 37)] {
                // prepared for the whole frame, then around the rectangle only (a part of
                // the grid, whose blur may take another path than the whole grid's)
                around.prepare_around(&src, sigma, [x0, y0, x0 + rw, y0 + rh]);
                for (how, prepared) in [("whole", &mut s), ("around", &mut around)] {
                    prepared.sample_rect(x0, y0, rw, rh, &mut part);
                    for yy in 0..rh {
                        assert_eq!(
                            part.row(yy),
                            &whole.row(y0 + yy)[x0..x0 + rw],
                            "{w}x{h} sigma {sigma} rect at ({x0}, {y0}) row {yy}, {how}"
                        );
                    }
                }
            }
            // an area outside the frame, or inverted, is clipped to it: no panic
            for area in [
                [w + 5, h + 9, w + 20, h + 30],
                [40, 30, 10, 5],
                [0, 0, 0, 0],
            ] {
                around.prepare_around(&src, sigma, area);
            }
            // and the rows blended where they are used give the same values (4.0: no
            // reduction, the rows are the full blur's)
            s.prepare_rows(&src, sigma);
            for y in 0..h {
                let (a, c, ay) = s.rows_at(y);
                let row: Vec<f32> = a.iter().zip(c).map(|(&a, &c)| a + ay * (c - a)).collect();
                assert_eq!(&row[..], whole.row(y), "{w}x{h} sigma {sigma} row {y}");
            }
        }
    }
}
