//! Multiscale detail enhancement (two-band unsharp masking).
//!
//! `out = x + fine_gain * (x - G(s1) x) + coarse_gain * (G(s1) x - G(s2) x)`: the fine band
//! sharpens instrument edges, the coarse band lifts lamina contours, and the base is kept.

use crate::gaussian::{blur, kernel};
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
            fine_gain: 0.6,
            coarse_gain: 0.4,
        }
    }
}

/// Reusable buffers and kernels.
#[derive(Debug, Default)]
pub struct DetailScratch {
    fine: Frame<f32>,
    coarse: Frame<f32>,
    tmp: Frame<f32>,
    kernels: Option<(f32, f32, Vec<f32>, Vec<f32>)>,
}

/// Enhances `src` into `dst`.
pub fn enhance_detail(
    src: &Frame<f32>,
    p: &DetailParams,
    s: &mut DetailScratch,
    dst: &mut Frame<f32>,
) {
    let (w, h) = src.size();
    dst.reshape(w, h);
    if !matches!(&s.kernels, Some((a, b, _, _)) if *a == p.fine_sigma && *b == p.coarse_sigma) {
        s.kernels = Some((
            p.fine_sigma,
            p.coarse_sigma,
            kernel(p.fine_sigma),
            kernel(p.coarse_sigma),
        ));
    }
    let (_, _, kf, kc) = s.kernels.as_ref().expect("set above");
    blur(src, kf, &mut s.tmp, &mut s.fine);
    blur(&s.fine, kc, &mut s.tmp, &mut s.coarse);
    let (fine, coarse) = (&s.fine, &s.coarse);
    dst.data_mut()
        .par_chunks_mut(w)
        .enumerate()
        .for_each(|(y, o)| {
            for (((o, &x), &f), &c) in o
                .iter_mut()
                .zip(src.row(y))
                .zip(fine.row(y))
                .zip(coarse.row(y))
            {
                *o = x + p.fine_gain * (x - f) + p.coarse_gain * (f - c);
            }
        });
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
