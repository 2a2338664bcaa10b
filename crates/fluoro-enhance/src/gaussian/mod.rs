//! Separable Gaussian blur, row-parallel, reflect-101 borders.

use crate::border::reflect101;
use crate::field::{FieldSpans, keep_outside_row};
pub use crate::large_blur::{LargeBlurScratch, blur_large};
use fluoro_core::Frame;
use rayon::prelude::*;

/// A normalised 1D Gaussian kernel of radius `ceil(3 sigma)` (at least 1).
pub fn kernel(sigma: f32) -> Vec<f32> {
    let r = (3.0 * sigma).ceil().max(1.0) as i32;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f32 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

/// Blurs `src` into `dst` with a symmetric `kernel`, using `tmp` as the intermediate (both
/// resized as needed; no allocation once they have the right size).
///
/// Large frames run in bands of rows, each keeping only the `2r + 1` horizontally filtered
/// rows its next output row needs (a ring in `tmp`), one strip of columns at a time so the
/// ring fits in L1: the intermediate never goes out to memory, which halves the traffic of
/// a blur that is memory-bound. A strip reads a short span of each row, a new page every
/// row, which the hardware prefetcher does not follow; the next row's spans are prefetched
/// while the current one is filtered.
/// Small frames, where the `2r` rows each band recomputes would cost more than that saves,
/// filter the whole frame horizontally first. Both give the same values (same sums in the
/// same order).
pub fn blur(src: &Frame<f32>, kernel: &[f32], tmp: &mut Frame<f32>, dst: &mut Frame<f32>) {
    blur_with(src, None, kernel, tmp, dst, None::<Finishing<(), NoFinish>>);
}

/// The step of blurs that have none.
type NoFinish = fn(&mut (), usize, usize, &mut [f32]);

/// A stage's work on each finished piece of a blur ([`blur_finishing`]).
pub(crate) struct Finishing<'a, S, F> {
    /// One value per band of rows (grown with `S::default()`, kept across calls).
    pub states: &'a mut Vec<S>,
    /// `step(state, y, x0, piece)`: output row `y`'s columns `x0 .. x0 + piece.len()`,
    /// holding their final blurred values (the field's outside restored); it may rewrite
    /// them.
    pub step: F,
    /// Every band's first row is a multiple of this, and so is every column strip's
    /// first column where it divides 64 (for steps that gather blocks of rows and columns).
    pub rows_multiple: usize,
}

/// [`blur_in_field`] (with `field`: the mask, of `src`'s size, and its spans already
/// updated from it; [`blur`] without) that hands each finished piece of the output to
/// `finishing.step` while it is in cache. A stage that combines the blur with other
/// frames pixel by pixel thus never writes the blur out and reads it back. Every piece of
/// every row is handed over once, a band's rows in order, strip by strip.
pub(crate) fn blur_finishing<S, F>(
    src: &Frame<f32>,
    field: Option<(&Frame<u8>, &FieldSpans)>,
    kernel: &[f32],
    (tmp, dst): (&mut Frame<f32>, &mut Frame<f32>),
    finishing: Finishing<S, F>,
) where
    S: Send + Default,
    F: Fn(&mut S, usize, usize, &mut [f32]) + Sync,
{
    debug_assert!(field.is_none_or(|(m, _)| m.size() == src.size()));
    blur_with(src, field, kernel, tmp, dst, Some(finishing));
}

/// [`blur`] inside the field only: pixels where `mask` is 0 keep the source's value, and
/// each row is filtered only from its first to its last field pixel (`spans`, made here
/// from the mask; a round field leaves about a quarter of the frame outside). Field pixels
/// get exactly [`blur`]'s values: their neighbours outside the field are read as they are.
/// A mask of another size than `src` is ignored (every pixel blurred).
pub fn blur_in_field(
    src: &Frame<f32>,
    mask: &Frame<u8>,
    spans: &mut FieldSpans,
    kernel: &[f32],
    tmp: &mut Frame<f32>,
    dst: &mut Frame<f32>,
) {
    if mask.size() != src.size() {
        return blur(src, kernel, tmp, dst);
    }
    spans.update(Some(mask), src.width(), src.height());
    let none = None::<Finishing<(), NoFinish>>;
    blur_with(src, Some((mask, spans)), kernel, tmp, dst, none);
}

/// The blur, each finished piece handed to `finish` with its band's state (see
/// [`blur_finishing`]).
fn blur_with<S, F>(
    src: &Frame<f32>,
    field: Option<(&Frame<u8>, &FieldSpans)>,
    kernel: &[f32],
    tmp: &mut Frame<f32>,
    dst: &mut Frame<f32>,
    finishing: Option<Finishing<S, F>>,
) where
    S: Send + Default,
    F: Fn(&mut S, usize, usize, &mut [f32]) + Sync,
{
    let (w, h) = src.size();
    dst.reshape(w, h);
    let r = kernel.len() / 2;
    let ring = 2 * r + 1;
    let bands = (rayon::current_num_threads() * 4).clamp(1, h.max(1));
    let multiple = finishing.as_ref().map_or(1, |f| f.rows_multiple.max(1));
    let per_band = h.div_ceil(bands).max(1).next_multiple_of(multiple);
    let bands = h.div_ceil(per_band);
    // without a finishing step, the states are () (no allocation)
    let mut unused = Vec::new();
    let (states, finish) = match finishing {
        Some(f) => (f.states, Some(f.step)),
        None => (&mut unused, None),
    };
    if states.len() < bands {
        states.resize_with(bands, S::default);
    }
    let states = &mut states[..bands];
    if h == 0 || w == 0 || per_band < 8 * r || r >= h {
        two_pass(src, kernel, tmp, dst);
        if (field.is_some() || finish.is_some()) && w > 0 && h > 0 {
            let finish = &finish;
            let pieces = dst.data_mut().par_chunks_mut(per_band * w);
            pieces
                .zip(states.par_iter_mut())
                .enumerate()
                .for_each(|(b, (out, state))| {
                    for (i, o) in out.chunks_mut(w).enumerate() {
                        let y = b * per_band + i;
                        if let Some((mask, spans)) = field {
                            keep_outside_row(
                                mask.row(y),
                                src.row(y),
                                spans.row(y),
                                spans.gaps(y),
                                o,
                            );
                        }
                        if let Some(f) = finish {
                            f(state, y, 0, o);
                        }
                    }
                });
        }
        return;
    }
    // columns per strip: the ring of one strip stays within about half of an L1 cache (a
    // multiple of 64 columns)
    let strip = (L1_RING_BYTES / (4 * ring) / 64 * 64).max(256).min(w);
    tmp.reshape(strip, ring * bands);
    dst.data_mut()
        .par_chunks_mut(per_band * w)
        .zip(tmp.data_mut().par_chunks_mut(ring * strip))
        .zip(states.par_iter_mut())
        .enumerate()
        .for_each(|(b, ((out, rows), state))| {
            let y0 = b * per_band;
            // ring slot of logical row p (may be outside 0..h: reflected at the borders)
            let slot = |p: isize| p.rem_euclid(ring as isize) as usize;
            for x0 in (0..w).step_by(strip) {
                let sw = strip.min(w - x0);
                // the strip's columns (strip-relative) that output rows `ys` need
                let cols = |ys: std::ops::RangeInclusive<isize>| -> (usize, usize) {
                    let Some((_, spans)) = field else {
                        return (0, sw);
                    };
                    match spans.union(ys) {
                        Some((a, b)) if a < x0 + sw && b > x0 => {
                            (a.max(x0) - x0, b.min(x0 + sw) - x0)
                        }
                        _ => (0, 0),
                    }
                };
                let fill = |rows: &mut [f32], p: isize| {
                    // ring row p serves output rows p - r ..= p + r
                    let (ca, cb) = cols(p - r as isize..=p + r as isize);
                    if ca < cb {
                        let s = slot(p);
                        horizontal_span(
                            src.row(reflect101(p, h)),
                            kernel,
                            x0 + ca,
                            &mut rows[s * sw + ca..s * sw + cb],
                        );
                    }
                };
                for p in y0 as isize - r as isize..(y0 + r) as isize {
                    fill(rows, p);
                }
                let mut outs = out.chunks_mut(w).peekable();
                let mut y = y0 as isize;
                while let Some(o) = outs.next() {
                    // the strip's next source and output rows, while this one is filtered
                    let next = src.row(reflect101(y + r as isize + 1, h));
                    crate::prefetch::prefetch(&next[x0.saturating_sub(r)..(x0 + sw + r).min(w)]);
                    if let Some(n) = outs.peek() {
                        crate::prefetch::prefetch(&n[x0..x0 + sw]);
                    }
                    fill(rows, y + r as isize);
                    let (ca, cb) = cols(y..=y);
                    if ca < cb {
                        // the ring from column ca on: every slot keeps its stride sw
                        vertical_ring(&rows[ca..], sw, y, kernel, &mut o[x0 + ca..x0 + cb]);
                    }
                    if let Some((mask, spans)) = field {
                        let cut = x0..x0 + sw;
                        keep_outside_row(
                            &mask.row(y as usize)[cut.clone()],
                            &src.row(y as usize)[cut.clone()],
                            (ca, cb),
                            spans.gaps(y as usize),
                            &mut o[cut],
                        );
                    }
                    if let Some(f) = &finish {
                        f(state, y as usize, x0, &mut o[x0..x0 + sw]);
                    }
                    y += 1;
                }
            }
        });
}

/// Bytes the vertical pass's ring of rows may take: about half of a 32-48 KB L1 data
/// cache, so the `2r + 1` loads per output pixel hit L1 (at 1024 wide, a 13-row ring of
/// whole rows is 52 KB and the blur took 1.5x as long per tap).
const L1_RING_BYTES: usize = 24 * 1024;

/// The plain separable blur: every row filtered horizontally into `tmp`, then vertically.
fn two_pass(src: &Frame<f32>, kernel: &[f32], tmp: &mut Frame<f32>, dst: &mut Frame<f32>) {
    let (w, h) = src.size();
    tmp.reshape(w, h);
    dst.reshape(w, h);
    tmp.data_mut()
        .par_chunks_mut(w.max(1))
        .enumerate()
        .for_each(|(y, out)| horizontal_row(src.row(y), kernel, out));
    let tmp = &*tmp;
    dst.data_mut()
        .par_chunks_mut(w.max(1))
        .enumerate()
        .for_each(|(y, out)| {
            vertical(tmp, y, h, kernel, out);
        });
}

/// One row filtered horizontally (reflect-101 borders).
fn horizontal_row(row: &[f32], kernel: &[f32], out: &mut [f32]) {
    horizontal_span(row, kernel, 0, out);
}

/// Outputs `x0 .. x0 + out.len()` of a row filtered horizontally (reflect-101 borders),
/// each with the same sum as [`horizontal_row`] gives it. For wide kernels the `r` pixels
/// at each end are filtered like the interior, on a short copy of the row's end with the
/// reflection laid out (on the stack), so wide kernels on small frames do not pay for an
/// index reflection per tap.
fn horizontal_span(row: &[f32], kernel: &[f32], x0: usize, out: &mut [f32]) {
    const PAD: usize = 128;
    let w = row.len();
    let x1 = x0 + out.len();
    let r = kernel.len() / 2;
    let tap = |x: usize| -> f32 {
        kernel
            .iter()
            .enumerate()
            .map(|(i, &k)| k * row[reflect101(x as isize + i as isize - r as isize, w)])
            .sum()
    };
    if w <= 2 * r || r > PAD {
        for (x, o) in (x0..x1).zip(out.iter_mut()) {
            *o = tap(x);
        }
        return;
    }
    let (xa, xb) = (x0.max(r), x1.min(w - r));
    if xa < xb {
        horizontal_interior(&row[xa - r..xb + r], kernel, &mut out[xa - x0..xb - x0]);
    }
    let left = x0..xa.min(x1);
    let right = xb.max(x0)..x1;
    if r < 8 {
        // narrow kernels: the few reflected taps cost less than the copies
        for x in left.chain(right) {
            out[x - x0] = tap(x);
        }
        return;
    }
    let mut ends = [0f32; 3 * PAD];
    let ends = &mut ends[..3 * r];
    let mut edge = [0f32; PAD];
    let edge = &mut edge[..r];
    if !left.is_empty() {
        // left end: source positions -r .. 2r, outputs 0 .. r
        for (j, e) in ends.iter_mut().enumerate() {
            *e = row[reflect101(j as isize - r as isize, w)];
        }
        horizontal_interior(ends, kernel, edge);
        out[..left.len()].copy_from_slice(&edge[left]);
    }
    if !right.is_empty() {
        // right end: source positions w - 2r .. w + r, outputs w - r .. w
        for (j, e) in ends.iter_mut().enumerate() {
            *e = row[reflect101((w - 2 * r + j) as isize, w)];
        }
        horizontal_interior(ends, kernel, edge);
        let e = w - r;
        out[right.start - x0..].copy_from_slice(&edge[right.start - e..right.end - e]);
    }
}

/// The symmetric filter's inner loop shared by the passes: `out[x] = k[r] src[c + x] +
/// sum_i k[r + i] (src[a_i + x] + src[b_i + x])` with `(a_i, b_i) = pair(i)`, in blocks of
/// 64 outputs held in registers while the taps stream (one store per output instead of one
/// per tap). The sum runs in the same order for every pixel, block or tail.
///
/// A row whose length is not a multiple of the block ends with one more whole block that
/// overlaps the one before it (those outputs are computed twice, to the same bits): the
/// run-time-length tail loop, loading and storing its sums for every tap, took half of
/// the horizontal pass's time on 500-column strips. Only rows shorter than a block use it.
#[inline(always)]
fn symmetric_taps(
    src: &[f32],
    c: usize,
    pair: impl Fn(usize) -> (usize, usize),
    kernel: &[f32],
    out: &mut [f32],
) {
    let r = kernel.len() / 2;
    let n = out.len();
    let mut x = 0;
    while x + B <= n {
        taps_block(src, c, &pair, kernel, x, out);
        x += B;
    }
    if x == n {
        return;
    }
    if n >= B {
        taps_block(src, c, &pair, kernel, n - B, out);
        return;
    }
    // a row shorter than one block: the block's loop at a run-time length (one body for
    // both, the accumulator as a slice, was measured 2.6x slower: the fixed-size block is
    // what keeps the sums in registers)
    for (o, &v) in out.iter_mut().zip(&src[c..c + n]) {
        *o = kernel[r] * v;
    }
    for i in 1..=r {
        let k = kernel[r + i];
        let (pa, pb) = pair(i);
        let (a, b) = (&src[pa..pa + n], &src[pb..pb + n]);
        for ((o, &u), &v) in out.iter_mut().zip(a).zip(b) {
            *o += k * (u + v);
        }
    }
}

/// Outputs of [`symmetric_taps`] per block, held in registers.
const B: usize = 64;

/// One block of [`symmetric_taps`]: outputs `x .. x + B`.
#[inline(always)]
fn taps_block(
    src: &[f32],
    c: usize,
    pair: &impl Fn(usize) -> (usize, usize),
    kernel: &[f32],
    x: usize,
    out: &mut [f32],
) {
    let r = kernel.len() / 2;
    let mut acc = [0f32; B];
    for (o, &v) in acc.iter_mut().zip(&src[c + x..c + x + B]) {
        *o = kernel[r] * v;
    }
    for i in 1..=r {
        let k = kernel[r + i];
        let (pa, pb) = pair(i);
        let (a, b) = (&src[pa + x..pa + x + B], &src[pb + x..pb + x + B]);
        for ((o, &u), &v) in acc.iter_mut().zip(a).zip(b) {
            *o += k * (u + v);
        }
    }
    out[x..x + B].copy_from_slice(&acc);
}

/// Interior of a row: `out[x] = sum_i k[i] row[x + i]`, symmetric taps paired.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn horizontal_interior(row: &[f32], kernel: &[f32], out: &mut [f32]) {
    let r = kernel.len() / 2;
    symmetric_taps(row, r, |i| (r - i, r + i), kernel, out);
}

/// One output row of the vertical pass: whole rows accumulated, symmetric taps paired.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn vertical(tmp: &Frame<f32>, y: usize, h: usize, kernel: &[f32], out: &mut [f32]) {
    let w = tmp.width();
    let row = |p: isize| reflect101(p, h) * w;
    let y = y as isize;
    symmetric_taps(
        tmp.data(),
        row(y),
        |i| (row(y - i as isize), row(y + i as isize)),
        kernel,
        out,
    );
}

/// [`vertical`] on a ring of `2r + 1` horizontally filtered rows of width `w`, the
/// logical row `p` in slot `p mod (2r + 1)`; output row `y`.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn vertical_ring(rows: &[f32], w: usize, y: isize, kernel: &[f32], out: &mut [f32]) {
    let n = kernel.len();
    let s = y.rem_euclid(n as isize) as usize;
    // slots of y - i and y + i without a division per tap
    let pair = |i: usize| {
        let below = if s >= i { s - i } else { s + n - i };
        let above = if s + i < n { s + i } else { s + i - n };
        (below * w, above * w)
    };
    symmetric_taps(rows, s * w, pair, kernel, out);
}

#[cfg(test)]
pub(crate) mod tests;
