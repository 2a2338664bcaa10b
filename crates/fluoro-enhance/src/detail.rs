//! Multiscale detail enhancement (two-band unsharp masking).
//!
//! `out = x + fine_gain * (x - G(s1) x) + coarse_gain * (G(s1) x - G(s2) x)`: the fine band
//! sharpens instrument edges, the coarse band lifts lamina contours, and the base is kept.

use crate::display::{row_samples, sample_step};
use crate::field::FieldSpans;
use crate::gaussian::{blur, blur_in_field, kernel};
use crate::par::{par_chunks_with, reused};
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
    fine: Frame<f32>,
    half: Frame<f32>,
    half_blur: Frame<f32>,
    tmp: Frame<f32>,
    /// The half-resolution blur's own intermediate: sharing `tmp`, whose size differs,
    /// zero-filled about 1 MB of it at 1024 every frame.
    half_tmp: Frame<f32>,
    kernels: Option<(f32, f32, Vec<f32>, Vec<f32>)>,
    rows: Vec<BandRows>,
    /// The field's row spans, for the fine blur.
    spans: FieldSpans,
}

/// One band's buffers of the combination pass.
#[derive(Debug, Default)]
struct BandRows {
    /// The half-width and upsampled coarse rows ([`combine_row`]'s scratch).
    half: Vec<f32>,
    /// The display window's samples of the band's rows.
    samples: Vec<f32>,
}

/// Enhances `src` into `dst`.
///
/// The coarse band is computed at half resolution (2x2 mean of the fine blur, blurred with
/// `sqrt(coarse^2 - fine^2) / 2`, bilinear back up): the same low-pass within a few percent
/// at a quarter of the cost of a full-resolution 37-tap blur.
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
/// only pixels whose half-resolution coarse band reaches outside the field differ from
/// [`enhance_detail`]'s (the rim, where the display shows the field's edge).
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
    let half_sigma = ((p.coarse_sigma.powi(2) - p.fine_sigma.powi(2)).max(0.25)).sqrt() / 2.0;
    if !matches!(&s.kernels, Some((a, b, _, _)) if *a == p.fine_sigma && *b == p.coarse_sigma) {
        s.kernels = Some((
            p.fine_sigma,
            p.coarse_sigma,
            kernel(p.fine_sigma),
            kernel(half_sigma),
        ));
    }
    let (_, _, kf, kc) = s.kernels.as_ref().expect("set above");
    match mask {
        Some(m) => blur_in_field(src, m, &mut s.spans, kf, &mut s.tmp, &mut s.fine),
        None => blur(src, kf, &mut s.tmp, &mut s.fine),
    }
    let (hw, hh) = (w.div_ceil(2), h.div_ceil(2));
    s.half.reshape(hw, hh);
    let fine = &s.fine;
    s.half
        .data_mut()
        .par_chunks_mut(hw)
        .enumerate()
        .for_each(|(y, o)| {
            let (r0, r1) = (
                fine.row((2 * y).min(h - 1)),
                fine.row((2 * y + 1).min(h - 1)),
            );
            reduce_row(r0, r1, o);
        });
    blur(&s.half, kc, &mut s.half_tmp, &mut s.half_blur);
    let coarse = &s.half_blur;
    let sampled = mask.filter(|_| samples.is_some());
    let step = sample_step(w * h);
    s.rows.iter_mut().for_each(|b| b.samples.clear());
    par_chunks_with(
        dst.data_mut(),
        w,
        &mut s.rows,
        |y, o, band: &mut BandRows| {
            let half = reused(&mut band.half, 3 * hw);
            // half-res sample centres sit at 2i + 0.5 in full-res coordinates
            let fy = ((y as f32 - 0.5) / 2.0).clamp(0.0, (hh - 1) as f32);
            let y0 = fy as usize;
            let y1 = (y0 + 1).min(hh - 1);
            let ay = fy - y0 as f32;
            let (c0, c1) = (coarse.row(y0), coarse.row(y1));
            combine_row(src.row(y), fine.row(y), c0, c1, ay, p, half, o);
            if let Some(m) = sampled {
                row_samples(o, m.row(y), y, step, &mut band.samples);
            }
        },
    );
    if let Some(out) = samples {
        for b in &s.rows {
            out.extend_from_slice(&b.samples);
        }
    }
}

/// One half-resolution row: the 2x2 means of full rows `r0` and `r1` (an odd last column
/// pairs with itself). Pairs are taken with `chunks_exact`, which the compiler turns into
/// deinterleaving shuffles; indexing `2x` and `2x + 1` did not vectorise.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn reduce_row(r0: &[f32], r1: &[f32], out: &mut [f32]) {
    let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
    for (o, (a, b)) in out.iter_mut().zip(pairs) {
        *o = 0.25 * (a[0] + a[1] + b[0] + b[1]);
    }
    if r0.len() % 2 == 1 {
        let (a, b) = (r0[r0.len() - 1], r1[r1.len() - 1]);
        out[r0.len() / 2] = 0.25 * (a + a + b + b);
    }
}

/// One output row: the coarse band is interpolated vertically at half width, then each
/// half-res sample feeds two output pixels with weights 3/4 and 1/4 (exact bilinear for a
/// 2x upsampling with centred samples). `scratch` holds `3 * c0.len()` floats: the
/// half-width row, then the upsampled one, so the final combination is one straight,
/// vectorised loop.
#[allow(clippy::too_many_arguments)]
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn combine_row(
    x: &[f32],
    f: &[f32],
    c0: &[f32],
    c1: &[f32],
    ay: f32,
    p: &DetailParams,
    scratch: &mut [f32],
    out: &mut [f32],
) {
    let hw = c0.len();
    let (half, up) = scratch.split_at_mut(hw);
    for ((h, &a), &b) in half.iter_mut().zip(c0).zip(c1) {
        *h = a + ay * (b - a);
    }
    let up = &mut up[..2 * hw];
    let half = &*half;
    let last = hw - 1;
    up[0] = 0.75 * half[0] + 0.25 * half[0];
    up[2 * last + 1] = 0.75 * half[last] + 0.25 * half[last];
    if hw > 1 {
        up[1] = 0.75 * half[0] + 0.25 * half[1];
        up[2 * last] = 0.75 * half[last] + 0.25 * half[last - 1];
        let inner = up[2..2 * last].chunks_exact_mut(2);
        for (pair, ((&l, &c), &r)) in inner.zip(half.iter().zip(&half[1..]).zip(&half[2..])) {
            pair[0] = 0.75 * c + 0.25 * l;
            pair[1] = 0.75 * c + 0.25 * r;
        }
    }
    let (gf, gc) = (p.fine_gain, p.coarse_gain);
    for (((o, &x), &f), &cc) in out.iter_mut().zip(x).zip(f).zip(up.iter()) {
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

    /// The documented algorithm in f64: fine blur, 2x2 mean, half-resolution blur,
    /// bilinear upsampling at centred sample positions, then the two bands.
    #[test]
    fn matches_a_float64_reference() {
        let p = DetailParams::default();
        for (w, h) in [(45, 37), (64, 30), (1, 9)] {
            let src = random_frame(w, h, (w * h) as u64);
            let x: Vec<f64> = src.data().iter().map(|&v| f64::from(v)).collect();
            let fine = blur64(&x, w, h, &kernel(p.fine_sigma));
            let (hw, hh) = (w.div_ceil(2), h.div_ceil(2));
            let mut half = vec![0.0; hw * hh];
            for y in 0..hh {
                for xx in 0..hw {
                    let f = |a: usize, b: usize| fine[b.min(h - 1) * w + a.min(w - 1)];
                    half[y * hw + xx] = 0.25
                        * (f(2 * xx, 2 * y)
                            + f(2 * xx + 1, 2 * y)
                            + f(2 * xx, 2 * y + 1)
                            + f(2 * xx + 1, 2 * y + 1));
                }
            }
            let hs = ((p.coarse_sigma.powi(2) - p.fine_sigma.powi(2)).max(0.25)).sqrt() / 2.0;
            let coarse = blur64(&half, hw, hh, &kernel(hs));
            let sample = |fx: f64, fy: f64| {
                let fx = fx.clamp(0.0, (hw - 1) as f64);
                let fy = fy.clamp(0.0, (hh - 1) as f64);
                let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
                let (x1, y1) = ((x0 + 1).min(hw - 1), (y0 + 1).min(hh - 1));
                let (ax, ay) = (fx - x0 as f64, fy - y0 as f64);
                let c = |a: usize, b: usize| coarse[b * hw + a];
                let top = c(x0, y0) + ax * (c(x1, y0) - c(x0, y0));
                let bot = c(x0, y1) + ax * (c(x1, y1) - c(x0, y1));
                top + ay * (bot - top)
            };
            let mut out = Frame::new(0, 0);
            enhance_detail(&src, &p, &mut DetailScratch::default(), &mut out);
            for y in 0..h {
                for xx in 0..w {
                    let i = y * w + xx;
                    let c = sample((xx as f64 - 0.5) / 2.0, (y as f64 - 0.5) / 2.0);
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
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            for (w, h) in [(45, 37), (311, 263)] {
                let src = random_frame(w, h, (3 * w + h) as u64);
                let round = Frame::from_fn(w, h, |x, y| {
                    u8::from((x as i64 - 20).pow(2) + (y as i64 - 18).pow(2) < 30 * 30)
                });
                for mask in [round, Frame::filled(2, 3, 1)] {
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
