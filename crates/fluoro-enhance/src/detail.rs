//! Multiscale detail enhancement (two-band unsharp masking).
//!
//! `out = x + fine_gain * (x - G(s1) x) + coarse_gain * (G(s1) x - G(s2) x)`: the fine band
//! sharpens instrument edges, the coarse band lifts lamina contours, and the base is kept.

use crate::gaussian::{blur, kernel};
use crate::par::{par_chunks_with, zeroed};
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
    kernels: Option<(f32, f32, Vec<f32>, Vec<f32>)>,
    rows: Vec<Vec<f32>>,
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
    let (w, h) = src.size();
    dst.reshape(w, h);
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
    blur(src, kf, &mut s.tmp, &mut s.fine);
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
            for (x, o) in o.iter_mut().enumerate() {
                let (x0, x1) = ((2 * x).min(w - 1), (2 * x + 1).min(w - 1));
                *o = 0.25 * (r0[x0] + r0[x1] + r1[x0] + r1[x1]);
            }
        });
    blur(&s.half, kc, &mut s.tmp, &mut s.half_blur);
    let coarse = &s.half_blur;
    par_chunks_with(
        dst.data_mut(),
        w,
        &mut s.rows,
        |y, o, half: &mut Vec<f32>| {
            let half = zeroed(half, hw);
            // half-res sample centres sit at 2i + 0.5 in full-res coordinates
            let fy = ((y as f32 - 0.5) / 2.0).clamp(0.0, (hh - 1) as f32);
            let y0 = fy as usize;
            let y1 = (y0 + 1).min(hh - 1);
            let ay = fy - y0 as f32;
            let (c0, c1) = (coarse.row(y0), coarse.row(y1));
            combine_row(src.row(y), fine.row(y), c0, c1, ay, p, half, o);
        },
    );
}

/// One output row: the coarse band is interpolated vertically at half width, then each
/// half-res sample feeds two output pixels with weights 3/4 and 1/4 (exact bilinear for a
/// 2x upsampling with centred samples).
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
    half: &mut [f32],
    out: &mut [f32],
) {
    let hw = c0.len();
    for ((h, &a), &b) in half.iter_mut().zip(c0).zip(c1) {
        *h = a + ay * (b - a);
    }
    let w = out.len();
    let (gf, gc) = (p.fine_gain, p.coarse_gain);
    for i in 0..hw {
        let c = half[i];
        let left = half[i.saturating_sub(1)];
        let right = half[(i + 1).min(hw - 1)];
        let x0 = 2 * i;
        if x0 < w {
            let cc = 0.75 * c + 0.25 * left;
            out[x0] = x[x0] + gf * (x[x0] - f[x0]) + gc * (f[x0] - cc);
        }
        if x0 + 1 < w {
            let cc = 0.75 * c + 0.25 * right;
            out[x0 + 1] = x[x0 + 1] + gf * (x[x0 + 1] - f[x0 + 1]) + gc * (f[x0 + 1] - cc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
