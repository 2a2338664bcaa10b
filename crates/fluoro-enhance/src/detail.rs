//! Multiscale detail enhancement (two-band unsharp masking).
//!
//! `out = x + fine_gain * (x - G(s1) x) + coarse_gain * (G(s1) x - G(s2) x)`: the fine band
//! sharpens instrument edges, the coarse band lifts lamina contours, and the base is kept.

use crate::display::sample_step;
use crate::field::FieldSpans;
use crate::gaussian::{Finishing, blur, blur_finishing, kernel};
use crate::par::reused;
use fluoro_core::Frame;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Detail-enhancement parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetailParams {
    /// Fine scale sigma, px.
    pub fine_sigma: f32,
    /// Coarse scale sigma, px.
    pub coarse_sigma: f32,
    /// Gain of the fine band.
    pub fine_gain: f32,
    /// Gain of the coarse band.
    pub coarse_gain: f32,
}

impl Default for DetailParams {
    fn default() -> Self {
        Self {
            fine_sigma: 1.5,
            coarse_sigma: 6.0,
            fine_gain: 0.3,
            coarse_gain: 0.4,
        }
    }
}

/// Reusable buffers and kernels.
#[derive(Debug, Default)]
pub struct DetailScratch {
    /// The source's 2x2 means.
    half: Frame<f32>,
    /// Their 2x2 means: the source's 4x4 means, the coarse band's grid.
    quarter: Frame<f32>,
    quarter_blur: Frame<f32>,
    tmp: Frame<f32>,
    /// The quarter-resolution blur's own intermediate: sharing `tmp`, whose size differs,
    /// would zero-fill part of it every frame.
    quarter_tmp: Frame<f32>,
    kernels: Option<(f32, f32, Vec<f32>, Vec<f32>)>,
    rows: Vec<BandRows>,
    /// The field's row spans, for the fine blur.
    spans: FieldSpans,
    /// The stamp of the frame whose 4x4 means `quarter` holds, when a stage before made
    /// them ([`DetailScratch::means_from`]).
    quarter_of: Option<u64>,
}

impl DetailScratch {
    /// Lets the stage that makes this stage's source (CLAHE) write the source's 4x4 means
    /// ([`quarter_row`]) as it goes: `make(quarter)` must fill `quarter` with them and
    /// return the finished source's [`Frame::stamp`], so the detail stage skips its own
    /// pass only for that frame, unchanged.
    pub(crate) fn means_from(&mut self, make: impl FnOnce(&mut Frame<f32>) -> u64) {
        self.quarter_of = Some(make(&mut self.quarter));
    }
}

/// One band's buffers of the combination ([`combine_piece`]'s scratch and the display
/// window's samples of the band's rows).
#[derive(Debug, Default)]
struct BandRows {
    /// The coarse band's quarter-width and upsampled values of a piece of a row.
    coarse: Vec<f32>,
    /// The display window's samples of the band's rows.
    samples: Vec<f32>,
}

/// The sigma of the coarse band's quarter-resolution blur: the 4x4 mean (variance 15/12 px^2
/// per axis) and the 4x bilinear upsampling (11/4 px^2 on average over the four phases)
/// add 4 px^2 to it, so `sqrt(coarse^2 - 4) / 4` in quarter-resolution pixels (at least
/// 1/4).
pub fn coarse_quarter_sigma(p: &DetailParams) -> f32 {
    ((p.coarse_sigma.powi(2) - 4.0).max(1.0)).sqrt() / 4.0
}

/// Enhances `src` into `dst`.
///
/// The coarse band is computed at quarter resolution (4x4 mean of the source, blurred with
/// [`coarse_quarter_sigma`], bilinear back up): a sigma-6 Gaussian passes under 2e-5 of
/// its input at the quarter grid's Nyquist frequency, so the grid loses next to nothing;
/// the linear interpolation between its samples departs from the full-resolution low-pass
/// by at most 2% of an edge's height, where it bends around the edge (0.08% on average;
/// the band's gain of 0.4 makes the worst 0.8% of the output), against 0.8% at half
/// resolution, at a sixteenth of the pixels. At half resolution its blur took 4% of the
/// whole per-frame chain's CPU time. The bands are combined as each piece of the fine blur is
/// made ([`crate::gaussian`]'s finishing step), so the fine blur is never written out and
/// read back.
pub fn enhance_detail(
    src: &Frame<f32>,
    p: &DetailParams,
    s: &mut DetailScratch,
    dst: &mut Frame<f32>,
) {
    detail_with(src, None, p, s, dst, None);
}

/// [`enhance_detail`] with the fine blur made inside the field only
/// ([`crate::gaussian::blur_in_field`]): outside the shutter the fine band is 0. Inside,
/// every pixel gets [`enhance_detail`]'s value.
pub fn enhance_detail_in_field(
    src: &Frame<f32>,
    mask: &Frame<u8>,
    p: &DetailParams,
    s: &mut DetailScratch,
    dst: &mut Frame<f32>,
) {
    detail_with(src, Some(mask), p, s, dst, None);
}

/// [`enhance_detail_in_field`], also taking the display window's samples of the result
/// into `samples` (cleared first): the pixels that
/// [`crate::display::Window::from_percentiles`] would take from `dst` and `mask`, each
/// taken as its row is written, so the window costs no second read of the frame (about
/// 40 000 scattered reads at 1024, 1.5% of a frame's CPU time). Their order differs, which
/// changes no percentile. A mask of another size than `src` is sampled from `dst`
/// afterwards, as the window would be.
pub fn enhance_detail_sampled(
    src: &Frame<f32>,
    mask: &Frame<u8>,
    p: &DetailParams,
    s: &mut DetailScratch,
    samples: &mut Vec<f32>,
    dst: &mut Frame<f32>,
) {
    if mask.size() != src.size() {
        detail_with(src, Some(mask), p, s, dst, None);
        crate::display::samples(dst, mask, samples);
        return;
    }
    detail_with(src, Some(mask), p, s, dst, Some(samples));
}

/// The detail stage; with `samples`, the display window's samples of `dst` inside `mask`
/// (of `src`'s size) taken as each row is written. Its parallel loops are handed to the
/// pool once ([`crate::par::in_pool`]).
fn detail_with(
    src: &Frame<f32>,
    mask: Option<&Frame<u8>>,
    p: &DetailParams,
    s: &mut DetailScratch,
    dst: &mut Frame<f32>,
    samples: Option<&mut Vec<f32>>,
) {
    crate::par::in_pool(|| detail_here(src, mask, p, s, dst, samples));
}

/// [`detail_with`] on the calling thread.
fn detail_here(
    src: &Frame<f32>,
    mask: Option<&Frame<u8>>,
    p: &DetailParams,
    s: &mut DetailScratch,
    dst: &mut Frame<f32>,
    mut samples: Option<&mut Vec<f32>>,
) {
    let (w, h) = src.size();
    dst.reshape(w, h);
    if let Some(out) = samples.as_mut() {
        out.clear();
    }
    if w == 0 || h == 0 {
        return;
    }
    let quarter_sigma = coarse_quarter_sigma(p);
    if !matches!(&s.kernels, Some((a, b, _, _)) if *a == p.fine_sigma && *b == p.coarse_sigma) {
        s.kernels = Some((
            p.fine_sigma,
            p.coarse_sigma,
            kernel(p.fine_sigma),
            kernel(quarter_sigma),
        ));
    }
    let DetailScratch {
        half,
        quarter,
        quarter_blur,
        tmp,
        quarter_tmp,
        kernels,
        rows,
        spans,
        quarter_of,
    } = s;
    let (_, _, kf, kc) = kernels.as_ref().expect("set above");
    // the coarse band: the source's 4x4 means (unless made with it: the 2x2 means of its
    // 2x2 means), blurred at quarter resolution
    let (qw, qh) = (w.div_ceil(4), h.div_ceil(4));
    if quarter_of.take() != Some(src.stamp()) || quarter.size() != (qw, qh) {
        halve_into(src, half);
        halve_into(half, quarter);
    }
    blur(quarter, kc, quarter_tmp, quarter_blur);
    let coarse = &*quarter_blur;
    // the field (a mask of another size is ignored) and its spans, for the blur and the
    // samples
    let mask = mask.filter(|m| m.size() == (w, h));
    if let Some(m) = mask {
        spans.update(Some(m), w, h);
    }
    let spans = &*spans;
    let sampled = mask.filter(|_| samples.is_some());
    let step = sample_step(w * h);
    rows.iter_mut().for_each(|b| b.samples.clear());
    // each piece of the fine blur, once made, becomes the output
    let finish = |band: &mut BandRows, y: usize, x0: usize, piece: &mut [f32]| {
        // quarter-res sample centres sit at 4i + 1.5 in full-res coordinates
        let fy = ((y as f32 - 1.5) / 4.0).clamp(0.0, (qh - 1) as f32);
        let y0 = fy as usize;
        let y1 = (y0 + 1).min(qh - 1);
        let ay = fy - y0 as f32;
        let n = piece.len();
        let scratch = reused(&mut band.coarse, combine_scratch_len(n));
        let x = &src.row(y)[x0..x0 + n];
        combine_piece(
            x,
            x0,
            (coarse.row(y0), coarse.row(y1), ay),
            p,
            scratch,
            piece,
        );
        if let Some(m) = sampled {
            let (first, at) = (y * w + x0, &mut band.samples);
            field_samples(
                piece,
                (x0, first),
                spans.row(y),
                spans.gaps(y),
                m.row(y),
                step,
                at,
            );
        }
    };
    let finishing = Finishing {
        states: rows,
        step: finish,
        rows_multiple: 1,
    };
    blur_finishing(src, mask.map(|m| (m, spans)), kf, (tmp, dst), finishing);
    if let Some(out) = samples {
        for b in rows.iter() {
            out.extend_from_slice(&b.samples);
        }
    }
}

/// Appends the samples [`crate::display::samples`] takes from the piece of a field row
/// at column `x0` and frame index `first` (the pixels whose frame index is a multiple of
/// `step`, inside the field), from the row's span `(a, b)` of field pixels: only samples
/// between them are taken, and the mask row is read only where the span has gaps (a
/// round field's rows have none), so the mask is not streamed through the cache.
fn field_samples(
    piece: &[f32],
    (x0, first): (usize, usize),
    (a, b): (usize, usize),
    gaps: bool,
    mask: &[u8],
    step: usize,
    out: &mut Vec<f32>,
) {
    let (lo, hi) = (a.max(x0), b.min(x0 + piece.len()));
    if lo >= hi {
        return;
    }
    // the first column from `lo` on whose frame index is a multiple of `step`
    let at = first + (lo - x0);
    let from = lo + (step - at % step) % step;
    for x in (from..hi).step_by(step) {
        if !gaps || mask[x] != 0 {
            out.push(piece[x - x0]);
        }
    }
}

/// `dst` = the 2x2 means of `src` (a frame of `ceil(w / 2)` x `ceil(h / 2)`; an odd last
/// row or column pairs with itself), row-parallel.
fn halve_into(src: &Frame<f32>, dst: &mut Frame<f32>) {
    let (w, h) = src.size();
    let hw = w.div_ceil(2);
    dst.reshape(hw, h.div_ceil(2));
    dst.data_mut()
        .par_chunks_mut(hw)
        .enumerate()
        .for_each(|(y, o)| {
            let (r0, r1) = (src.row((2 * y).min(h - 1)), src.row((2 * y + 1).min(h - 1)));
            reduce_row(r0, r1, o);
        });
}

/// Columns of full rows [`quarter_row`] reduces at a time (its half rows on the stack; a
/// multiple of 4, so that only the row's last block has odd lengths).
const QUARTER_BLOCK: usize = 512;

/// One quarter-resolution row from the (one to four) full rows `rows` it covers: the 2x2
/// means of their 2x2 means, with the bits of two [`halve_into`] passes (a missing row or
/// column pairs with the one before, at each step), for CLAHE to make as it maps each
/// group of four rows ([`DetailScratch::means_from`]). `out` holds `ceil(w / 4)` values.
pub(crate) fn quarter_row(rows: &[&[f32]], out: &mut [f32]) {
    let n = rows.len();
    debug_assert!((1..=4).contains(&n));
    let r = |i: usize| rows[i.min(n - 1)];
    let w = rows[0].len();
    let (mut a, mut b) = ([0f32; QUARTER_BLOCK / 2], [0f32; QUARTER_BLOCK / 2]);
    for x0 in (0..w).step_by(QUARTER_BLOCK) {
        let x1 = (x0 + QUARTER_BLOCK).min(w);
        let hn = (x1 - x0).div_ceil(2);
        let (ha, hb) = (&mut a[..hn], &mut b[..hn]);
        reduce_row(&r(0)[x0..x1], &r(1)[x0..x1], ha);
        // the second half row is the first again when the rows stop at two
        let hb: &[f32] = if n > 2 {
            reduce_row(&r(2)[x0..x1], &r(3)[x0..x1], hb);
            hb
        } else {
            ha
        };
        reduce_row(ha, hb, &mut out[x0 / 4..x0 / 4 + hn.div_ceil(2)]);
    }
}

/// One half-resolution row: the 2x2 means of full rows `r0` and `r1` (an odd last column
/// pairs with itself). Pairs are taken with `chunks_exact`, which the compiler turns into
/// deinterleaving shuffles; indexing `2x` and `2x + 1` did not vectorise.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
pub(crate) fn reduce_row(r0: &[f32], r1: &[f32], out: &mut [f32]) {
    let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
    for (o, (a, b)) in out.iter_mut().zip(pairs) {
        *o = 0.25 * (a[0] + a[1] + b[0] + b[1]);
    }
    if r0.len() % 2 == 1 {
        let (a, b) = (r0[r0.len() - 1], r1[r1.len() - 1]);
        out[r0.len() / 2] = 0.25 * (a + a + b + b);
    }
}

/// The scratch [`combine_piece`] needs for a piece of `n` pixels.
fn combine_scratch_len(n: usize) -> usize {
    5 * (n / 4 + 3)
}

/// Columns `x0 .. x0 + out.len()` of one output row, `out` holding the fine blur there:
/// the coarse band is interpolated vertically between quarter-resolution rows `c0` and
/// `c1` (weight `ay` on `c1`) at the quarter-width columns the piece needs, then each
/// feeds four output pixels, with weights 5/8, 7/8, 7/8, 5/8 on it and the rest on its
/// left, left, right and right neighbour (exact bilinear for a 4x upsampling with centred
/// samples; the ends clamped), so the final combination is one straight, vectorised loop.
/// `scratch` holds at least [`combine_scratch_len`] floats. Every pixel's value is the
/// same whatever the piece it is in.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn combine_piece(
    x: &[f32],
    x0: usize,
    (c0, c1, ay): (&[f32], &[f32], f32),
    p: &DetailParams,
    scratch: &mut [f32],
    out: &mut [f32],
) {
    let n = out.len();
    if n == 0 {
        return;
    }
    let last = c0.len() - 1;
    // quarter-res columns i0 ..= i1 feed output quads (4i .. 4i + 4) covering the piece
    let (i0, i1) = (x0 / 4, (x0 + n - 1) / 4);
    let cols = i1 - i0 + 1;
    let (ext, up) = scratch.split_at_mut(cols + 2);
    // ext[j]: column i0 + j - 1, clamped to the row
    let vert = |k: usize| c0[k] + ay * (c1[k] - c0[k]);
    ext[0] = vert(i0.saturating_sub(1));
    ext[cols + 1] = vert((i1 + 1).min(last));
    for ((e, &a), &b) in ext[1..=cols].iter_mut().zip(&c0[i0..=i1]).zip(&c1[i0..=i1]) {
        *e = a + ay * (b - a);
    }
    let ext = &*ext;
    let up = &mut up[..4 * cols];
    for (quad, ((&l, &c), &r)) in up
        .chunks_exact_mut(4)
        .zip(ext.iter().zip(&ext[1..]).zip(&ext[2..]))
    {
        quad[0] = 0.625 * c + 0.375 * l;
        quad[1] = 0.875 * c + 0.125 * l;
        quad[2] = 0.875 * c + 0.125 * r;
        quad[3] = 0.625 * c + 0.375 * r;
    }
    let up = &up[x0 - 4 * i0..x0 - 4 * i0 + n];
    let (gf, gc) = (p.fine_gain, p.coarse_gain);
    for ((o, &x), &cc) in out.iter_mut().zip(x).zip(up) {
        let f = *o;
        *o = x + gf * (x - f) + gc * (f - cc);
    }
}

#[cfg(test)]
mod tests;
