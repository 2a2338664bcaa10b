//! A wide Gaussian blur (background estimation) at reduced resolution, for the whole frame
//! or sampled in a rectangle: analysis stages that need the background only near the
//! instrument pay for the small image and their rectangle, not for the full frame.

use crate::field::FieldSpans;
use crate::gaussian::{Finishing, blur, blur_finishing, blur_in_field, kernel};
use crate::par::{par_chunks_with, reused, zeroed};
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
    /// [`LargeBlurScratch::blur_and_prepare_rows`]'s blocks, per band of the blur.
    bands: Vec<BandBlocks>,
}

/// One band's share of [`LargeBlurScratch::blur_and_prepare_rows`]'s box averages, made
/// from the blurred rows as the blur finishes them (a band's rows come in order, strip of
/// columns by strip; its first row and each strip's first column are multiples of `k`).
#[derive(Debug, Default)]
struct BandBlocks {
    /// The column sums of the current block row over the current strip.
    acc: Vec<f32>,
    /// The band's first block row, once it has one.
    first: Option<usize>,
    /// The band's block means, grid rows from `first` on.
    rows: Vec<f32>,
}

impl BandBlocks {
    /// Takes blurred row `y`'s columns `x0 ..` (`piece`) of a `w` x `h` frame reduced by
    /// `k`: added to the block row's column sums (started from 0 on its first row), and on
    /// its last row the strip's block means written, each as [`box_average`] makes it.
    fn take(&mut self, (y, x0, piece): (usize, usize, &[f32]), k: usize, (w, h): (usize, usize)) {
        let j = y / k;
        let first = *self.first.get_or_insert(j);
        let acc = reused(&mut self.acc, piece.len());
        if y % k == 0 {
            acc.fill(0.0);
        }
        let end = ((j + 1) * k).min(h);
        let gw = w.div_ceil(k);
        let at = (j - first) * gw;
        if y + 1 == end && self.rows.len() < at + gw {
            self.rows.resize(at + gw, 0.0);
        }
        let out = (y + 1 == end).then(|| {
            let cells = x0 / k..(x0 + piece.len()).div_ceil(k);
            &mut self.rows[at + cells.start..at + cells.end]
        });
        block_piece(acc, piece, (k, end - j * k), out);
    }
}

/// [`BandBlocks::take`]'s arithmetic: `piece` added to `acc`, then, with `out`, the groups
/// of `k` sums of `n` rows averaged into it.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn block_piece(acc: &mut [f32], piece: &[f32], (k, n): (usize, usize), out: Option<&mut [f32]>) {
    add_row(acc, piece);
    if let Some(out) = out {
        average_groups(acc, k, n, out);
    }
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
    let n = rows.len();
    for y in rows {
        add_row(acc, &src.row(y)[cols.clone()]);
    }
    average_groups(acc, k, n, out);
}

/// `acc += row`, element by element.
#[inline(always)]
fn add_row(acc: &mut [f32], row: &[f32]) {
    for (a, &v) in acc.iter_mut().zip(row) {
        *a += v;
    }
}

/// Each group of `k` column sums of `n` rows (the last group may be shorter) as the mean
/// of its pixels.
#[inline(always)]
fn average_groups(acc: &[f32], k: usize, n: usize, out: &mut [f32]) {
    let n = n as f32;
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

    /// The kernel of the sigma left to blur after box averaging by `k` (which already blurs
    /// by `sigma^2 = (k^2 - 1) / 12` full-resolution px), in small pixels.
    fn cache_rest_kernel(&mut self, k: usize, sigma: f32) {
        let rest = (sigma * sigma - ((k * k) as f32 - 1.0) / 12.0)
            .max(0.25)
            .sqrt()
            / k as f32;
        self.cache_kernel(k, rest);
    }

    /// Box-averages `src` by `k` and blurs the small image with the remaining sigma: the
    /// cells whose blur sampling the full-resolution rectangle `area` (`x0, y0, x1, y1`,
    /// ends excluded) needs, with the kernel's radius of cells around them (or up to the
    /// grid's edge), so that those cells get the whole grid's values bit for bit.
    fn reduce(&mut self, src: &Frame<f32>, sigma: f32, k: usize, area: [usize; 4]) {
        let (w, h) = src.size();
        let (sw, sh) = (w.div_ceil(k), h.div_ceil(k));
        self.cache_rest_kernel(k, sigma);
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
        self.widen_rows(src.width());
    }

    /// [`LargeBlurScratch::prepare_rows`]'s last step: each row of the small blur widened
    /// to full width `w` (nothing where no reduction applied).
    fn widen_rows(&mut self, w: usize) {
        if self.k == 1 {
            return;
        }
        let sw = self.small_blur.width();
        // bilinear upsampling, separable: each small row is first widened to full width (a
        // table gather on 1/k of the rows), then every output row is a contiguous blend of
        // two widened rows
        column_table(0..w, self.k, sw, &mut self.cols);
        self.wide.reshape(w, self.small_blur.height());
        let (small, cols) = (&self.small_blur, &self.cols);
        self.wide
            .data_mut()
            .par_chunks_mut(w)
            .enumerate()
            .for_each(|(sy, row)| widen_row(small.row(sy), cols, row, 0));
    }

    /// [`crate::gaussian::blur_in_field`] of `src` (with `mask`; the plain blur without)
    /// into `dst`, then [`LargeBlurScratch::prepare_rows`] of `dst` for `sigma`, with the
    /// same bits, but each `k` x `k` block's mean is taken from the blurred rows as the
    /// blur finishes them, in cache, instead of reading the blurred frame back. For a
    /// detector whose background is a wide blur of its fine blur.
    pub fn blur_and_prepare_rows(
        &mut self,
        src: &Frame<f32>,
        mask: Option<&Frame<u8>>,
        spans: &mut FieldSpans,
        kernel: &[f32],
        (tmp, dst): (&mut Frame<f32>, &mut Frame<f32>),
        sigma: f32,
    ) {
        let (w, h) = src.size();
        let k = factor(w, h, sigma);
        // a strip's first column is a multiple of 64 (or the strip is the whole row)
        if k == 1 || 64 % k != 0 {
            match mask {
                Some(m) => blur_in_field(src, m, spans, kernel, tmp, dst),
                None => blur(src, kernel, tmp, dst),
            }
            return self.prepare_rows(dst, sigma);
        }
        for b in &mut self.bands {
            b.first = None;
            b.rows.clear();
        }
        let finishing = Finishing {
            states: &mut self.bands,
            step: |b: &mut BandBlocks, y, x0, piece: &mut [f32]| b.take((y, x0, piece), k, (w, h)),
            rows_multiple: k,
        };
        let mask = mask.filter(|m| m.size() == src.size());
        if let Some(m) = mask {
            spans.update(Some(m), w, h);
        }
        let field = mask.map(|m| (m, &*spans));
        blur_finishing(src, field, kernel, (tmp, dst), finishing);
        let (gw, gh) = (w.div_ceil(k), h.div_ceil(k));
        self.small.reshape(gw, gh);
        for b in &self.bands {
            if let Some(first) = b.first {
                let at = first * gw;
                self.small.data_mut()[at..at + b.rows.len()].copy_from_slice(&b.rows);
            }
        }
        (self.k, self.size) = (k, (w, h));
        (self.grid, self.origin) = ((gw, gh), (0, 0));
        self.cache_rest_kernel(k, sigma);
        blur(
            &self.small,
            &self.kernel,
            &mut self.tmp,
            &mut self.small_blur,
        );
        self.widen_rows(w);
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
mod tests;
