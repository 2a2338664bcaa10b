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
    /// The stamp of the frame whose 2x2 means `half` holds, when a stage before made them
    /// ([`DetailScratch::halve`]).
    half_of: Option<u64>,
}

impl DetailScratch {
    /// Lets the stage that makes this stage's source (CLAHE) write the source's 2x2 means
    /// as it goes: `make(half)` must fill `half` with them and return the finished source's
    /// [`Frame::stamp`], so the detail stage skips its own pass only for that frame,
    /// unchanged.
    pub(crate) fn halve(&mut self, make: impl FnOnce(&mut Frame<f32>) -> u64) {
        self.half_of = Some(make(&mut self.half));
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
/// (of `src`'s size) taken as each row is written.
fn detail_with(
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
        half_of,
    } = s;
    let (_, _, kf, kc) = kernels.as_ref().expect("set above");
    // the coarse band: the source's 2x2 means (unless made with it), their 2x2 means,
    // blurred at quarter resolution
    let (hw, hh) = (w.div_ceil(2), h.div_ceil(2));
    if half_of.take() != Some(src.stamp()) || half.size() != (hw, hh) {
        halve_into(src, half);
    }
    halve_into(half, quarter);
    let (qw, qh) = quarter.size();
    blur(quarter, kc, quarter_tmp, quarter_blur);
    let coarse = &*quarter_blur;
    // the field (a mask of another size is ignored) and its spans, for the blur and the
    // samples
    let mask = mask.filter(|m| m.size() == (w, h));
    if let Some(m) = mask {
        spans.update(Some(m), w, h);
    }
    let spans = &*spans;
    debug_assert_eq!(qw, w.div_ceil(4));
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
mod tests {
    use super::*;
    use crate::border::reflect101;
    use crate::gaussian::tests::random_frame;

    /// Separable blur in f64 with reflect-101 borders, written for clarity.
    fn blur64(src: &[f64], w: usize, h: usize, k: &[f32]) -> Vec<f64> {
        let r = (k.len() / 2) as isize;
        let pass = |get: &dyn Fn(isize, isize) -> f64, horizontal: bool| -> Vec<f64> {
            let mut out = vec![0.0; w * h];
            for y in 0..h as isize {
                for x in 0..w as isize {
                    out[y as usize * w + x as usize] = (-r..=r)
                        .map(|i| {
                            let (xx, yy) = if horizontal { (x + i, y) } else { (x, y + i) };
                            f64::from(k[(i + r) as usize]) * get(xx, yy)
                        })
                        .sum();
                }
            }
            out
        };
        let at = |v: &[f64], x: isize, y: isize| v[reflect101(y, h) * w + reflect101(x, w)];
        let tmp = pass(&|x, y| at(src, x, y), true);
        pass(&|x, y| at(&tmp, x, y), false)
    }

    /// The documented algorithm in f64: fine blur, 2x2 mean of the source's 2x2 means,
    /// quarter-resolution blur, bilinear upsampling at centred sample positions, then the
    /// two bands.
    #[test]
    fn matches_a_float64_reference() {
        let p = DetailParams::default();
        // (120, 400): tall enough for the blur's bands of rows (the others: whole passes)
        for (w, h) in [(45, 37), (64, 30), (1, 9), (120, 400)] {
            let src = random_frame(w, h, (w * h) as u64);
            let x: Vec<f64> = src.data().iter().map(|&v| f64::from(v)).collect();
            let fine = blur64(&x, w, h, &kernel(p.fine_sigma));
            // 2x2 means, an odd last row or column paired with itself
            let halve = |v: &[f64], w: usize, h: usize| {
                let (hw, hh) = (w.div_ceil(2), h.div_ceil(2));
                let mut half = vec![0.0; hw * hh];
                for y in 0..hh {
                    for xx in 0..hw {
                        let f = |a: usize, b: usize| v[b.min(h - 1) * w + a.min(w - 1)];
                        half[y * hw + xx] = 0.25
                            * (f(2 * xx, 2 * y)
                                + f(2 * xx + 1, 2 * y)
                                + f(2 * xx, 2 * y + 1)
                                + f(2 * xx + 1, 2 * y + 1));
                    }
                }
                (half, hw, hh)
            };
            let (half, hw, hh) = halve(&x, w, h);
            let (quarter, qw, qh) = halve(&half, hw, hh);
            let qs = ((p.coarse_sigma.powi(2) - 4.0).max(1.0)).sqrt() / 4.0;
            let coarse = blur64(&quarter, qw, qh, &kernel(qs));
            let sample = |fx: f64, fy: f64| {
                let fx = fx.clamp(0.0, (qw - 1) as f64);
                let fy = fy.clamp(0.0, (qh - 1) as f64);
                let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
                let (x1, y1) = ((x0 + 1).min(qw - 1), (y0 + 1).min(qh - 1));
                let (ax, ay) = (fx - x0 as f64, fy - y0 as f64);
                let c = |a: usize, b: usize| coarse[b * qw + a];
                let top = c(x0, y0) + ax * (c(x1, y0) - c(x0, y0));
                let bot = c(x0, y1) + ax * (c(x1, y1) - c(x0, y1));
                top + ay * (bot - top)
            };
            let mut out = Frame::new(0, 0);
            enhance_detail(&src, &p, &mut DetailScratch::default(), &mut out);
            for y in 0..h {
                for xx in 0..w {
                    let i = y * w + xx;
                    let c = sample((xx as f64 - 1.5) / 4.0, (y as f64 - 1.5) / 4.0);
                    let want = x[i]
                        + f64::from(p.fine_gain) * (x[i] - fine[i])
                        + f64::from(p.coarse_gain) * (fine[i] - c);
                    let got = f64::from(out.get(xx, y));
                    assert!(
                        (got - want).abs() < 2e-3,
                        "{w}x{h} ({xx}, {y}): {got} vs {want}"
                    );
                }
            }
        }
    }

    /// Inside the field the stage gives [`enhance_detail`]'s bits (the coarse band comes
    /// from the source, the fine blur is the whole frame's there); outside, the fine band is
    /// 0: `x + coarse_gain (x - coarse)`. Small and large frames (whole passes and bands of
    /// rows), a field with a hole.
    #[test]
    fn in_field_is_the_plain_stage_inside_and_coarse_only_outside() {
        let p = DetailParams::default();
        crate::gaussian::tests::on_two_threads(|| {
            for (w, h) in [(45, 37), (300, 700)] {
                let src = random_frame(w, h, (w + 5 * h) as u64);
                let (cx, cy, r) = (w as i64 / 2, h as i64 / 2, w.min(h) as i64 / 2);
                let mask = Frame::from_fn(w, h, |x, y| {
                    let d = (x as i64 - cx).pow(2) + (y as i64 - cy).pow(2);
                    u8::from(d < r * r && d > 9)
                });
                let (mut plain, mut field) = (Frame::new(0, 0), Frame::new(0, 0));
                enhance_detail(&src, &p, &mut DetailScratch::default(), &mut plain);
                enhance_detail_in_field(&src, &mask, &p, &mut DetailScratch::default(), &mut field);
                // the coarse band alone, from the plain stage run without its fine band
                let coarse_only = DetailParams {
                    fine_gain: 0.0,
                    ..p
                };
                let mut c = Frame::new(0, 0);
                enhance_detail(&src, &coarse_only, &mut DetailScratch::default(), &mut c);
                let mut fine = Frame::new(0, 0);
                let kf = kernel(p.fine_sigma);
                crate::gaussian::blur(&src, &kf, &mut Frame::new(0, 0), &mut fine);
                // the coarse band, from `c = x + gc (fine - coarse)`
                let coarse = |x, y| fine.get(x, y) - (c.get(x, y) - src.get(x, y)) / p.coarse_gain;
                let (mut inside, mut outside) = (0, 0);
                for y in 0..h {
                    for x in 0..w {
                        let got = field.get(x, y);
                        if mask.get(x, y) != 0 {
                            assert_eq!(got, plain.get(x, y), "{w}x{h} ({x}, {y})");
                            inside += 1;
                        } else {
                            // x + gc (x - coarse) against x + gc (fine - coarse), fine = x
                            let v = src.get(x, y);
                            let want = v + p.coarse_gain * (v - coarse(x, y));
                            assert!((got - want).abs() < 1e-2, "{w}x{h} ({x}, {y})");
                            outside += 1;
                        }
                    }
                }
                assert!(inside > 0 && outside > 0);
            }
        });
    }

    /// A row combined in pieces gives each pixel the bits of the whole row, wherever the
    /// pieces start (odd and even columns, the ends).
    #[test]
    fn pieces_give_the_whole_rows_values() {
        let p = DetailParams::default();
        for w in [1usize, 2, 5, 7, 64, 131] {
            let qw = w.div_ceil(4);
            let row = |seed: u64| random_frame(w, 1, seed).data().to_vec();
            let (x, fine) = (row(1), row(2));
            let quarter = |seed: u64| random_frame(qw, 1, seed).data().to_vec();
            let (c0, c1) = (quarter(3), quarter(4));
            let mut scratch = vec![0.0; combine_scratch_len(w)];
            let mut whole = fine.clone();
            combine_piece(&x, 0, (&c0, &c1, 0.3), &p, &mut scratch, &mut whole);
            for cut in [1usize, 2, 3, 5, 6] {
                let mut pieces = fine.clone();
                let mut at = 0;
                while at < w {
                    let end = (at + cut).min(w);
                    let s = &mut vec![0.0; combine_scratch_len(end - at)];
                    combine_piece(
                        &x[at..end],
                        at,
                        (&c0, &c1, 0.3),
                        &p,
                        s,
                        &mut pieces[at..end],
                    );
                    at = end;
                }
                assert_eq!(pieces, whole, "width {w}, pieces of {cut}");
            }
        }
    }

    /// The coarse band (quarter resolution, upsampled) is the full-resolution sigma-6 blur
    /// it stands for, on two crossing steps of 100 and 50: within 2.3 at worst (2.0 is
    /// measured, where the interpolation bends around an edge; 0.8 at half resolution) and
    /// 0.12 on average (0.08; the quarter blur's sigma left uncorrected for the means and
    /// the interpolation gives 0.24, corrected for the means only 0.20).
    #[test]
    fn coarse_band_is_the_full_resolution_low_pass() {
        let (w, h) = (240, 200);
        let src = Frame::from_fn(w, h, |x, y| {
            let a = if x > 101 { 100.0 } else { 0.0 };
            let b = if x as f32 * 0.6 + y as f32 > 150.0 {
                50.0
            } else {
                0.0
            };
            a + b
        });
        // with the fine band off and the coarse gain 1: out = x + fine - coarse
        let p = DetailParams {
            fine_gain: 0.0,
            coarse_gain: 1.0,
            ..DetailParams::default()
        };
        let mut out = Frame::new(0, 0);
        enhance_detail(&src, &p, &mut DetailScratch::default(), &mut out);
        let blurred = |sigma: f32| {
            let mut b = Frame::new(0, 0);
            crate::gaussian::blur(&src, &kernel(sigma), &mut Frame::new(0, 0), &mut b);
            b
        };
        let (fine, full) = (blurred(p.fine_sigma), blurred(p.coarse_sigma));
        let (mut worst, mut sum) = (0f32, 0f64);
        for y in 0..h {
            for x in 0..w {
                let coarse = fine.get(x, y) - (out.get(x, y) - src.get(x, y));
                let d = (coarse - full.get(x, y)).abs();
                worst = worst.max(d);
                sum += f64::from(d);
            }
        }
        let mean = sum / (w * h) as f64;
        assert!(worst < 2.3 && mean < 0.12, "worst {worst}, mean {mean}");
    }

    #[test]
    fn flat_stays_flat_and_edges_get_steeper() {
        let flat = Frame::filled(32, 32, 500.0f32);
        let mut out = Frame::new(0, 0);
        let mut s = DetailScratch::default();
        enhance_detail(&flat, &DetailParams::default(), &mut s, &mut out);
        assert!(out.data().iter().all(|v| (v - 500.0).abs() < 1e-3));
        let edge = Frame::from_fn(64, 8, |x, _| if x < 32 { 100.0 } else { 300.0 });
        enhance_detail(&edge, &DetailParams::default(), &mut s, &mut out);
        assert!(out.get(33, 4) - out.get(30, 4) > 200.0);
    }

    /// The samples taken as the rows are written are those the display window takes from
    /// the finished frame (the same multiset), and the frame is the unsampled stage's: one
    /// and several pixels per sample, bands on two threads, a mask of another size.
    #[test]
    fn samples_taken_in_the_pass_are_the_windows() {
        let p = DetailParams::default();
        crate::gaussian::tests::on_two_threads(|| {
            // (700, 420): bands of rows over two column strips
            for (w, h) in [(45, 37), (311, 263), (200, 500), (700, 420)] {
                let src = random_frame(w, h, (3 * w + h) as u64);
                let round = Frame::from_fn(w, h, |x, y| {
                    u8::from((x as i64 - 20).pow(2) + (y as i64 - 18).pow(2) < 30 * 30)
                });
                // rows with gaps: a hole, and a notch cut from the right half
                let holed = Frame::from_fn(w, h, |x, y| {
                    let hole = (x as i64 - w as i64 / 2).abs() < 9 && (y as i64 - 20).abs() < 6;
                    u8::from(!(hole || (x > w / 2 && y % 7 == 3)))
                });
                for mask in [round, holed, Frame::filled(2, 3, 1)] {
                    let (mut want, mut got) = (Frame::new(0, 0), Frame::new(0, 0));
                    let mut s = DetailScratch::default();
                    enhance_detail_in_field(&src, &mask, &p, &mut s, &mut want);
                    let (mut expected, mut taken) = (Vec::new(), vec![7.0]);
                    crate::display::samples(&want, &mask, &mut expected);
                    expected.sort_by(f32::total_cmp);
                    // twice on one scratch: no band keeps the last call's samples
                    for _ in 0..2 {
                        enhance_detail_sampled(&src, &mask, &p, &mut s, &mut taken, &mut got);
                        assert!(got == want, "{w}x{h}");
                        taken.sort_by(f32::total_cmp);
                        assert!(taken == expected, "{w}x{h}");
                    }
                    // (a mask of another size samples as the window would: a few pixels)
                    assert!(mask.size() != (w, h) || expected.len() > 100);
                }
            }
        });
    }
}
