//! Edge-preserving bilateral filter (square window of diameter `2 radius + 1`), float.
//!
//! The source is copied once per frame into a reflect-101 padded buffer so the inner loops
//! run over plain contiguous slices, one window offset at a time across a whole row, with a
//! vectorisable exponential for the range weight.

use crate::border::reflect101;
use crate::fastmath::exp_neg;
use crate::par::{par_chunks_with, zeroed};
use fluoro_core::Frame;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Bilateral parameters (OpenCV's `d = 2 radius + 1`, `sigmaColor`, `sigmaSpace`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BilateralParams {
    /// Window radius (2 gives OpenCV's d = 5).
    pub radius: usize,
    /// Spatial sigma, px.
    pub sigma_space: f32,
    /// Range sigma, in intensity units.
    pub sigma_range: f32,
}

impl Default for BilateralParams {
    fn default() -> Self {
        Self {
            radius: 2,
            sigma_space: 2.0,
            sigma_range: 60.0,
        }
    }
}

/// Reusable buffers for [`bilateral`].
#[derive(Debug, Default)]
pub struct BilateralScratch {
    padded: Vec<f32>,
    offsets: Vec<(usize, usize, f32)>,
    rows: Vec<(Vec<f32>, Vec<f32>)>,
}

/// Filters `src` into `dst`.
pub fn bilateral(
    src: &Frame<f32>,
    p: &BilateralParams,
    scratch: &mut BilateralScratch,
    dst: &mut Frame<f32>,
) {
    let (w, h) = src.size();
    dst.reshape(w, h);
    let r = p.radius;
    let pw = w + 2 * r;
    let ph = h + 2 * r;
    scratch.padded.resize(pw * ph, 0.0);
    scratch
        .padded
        .par_chunks_mut(pw)
        .enumerate()
        .for_each(|(py, prow)| {
            let row = src.row(reflect101(py as isize - r as isize, h));
            prow[r..r + w].copy_from_slice(row);
            for i in 0..r {
                prow[i] = row[reflect101(i as isize - r as isize, w)];
                prow[r + w + i] = row[reflect101((w + i) as isize, w)];
            }
        });
    let inv_2s2 = 1.0 / (2.0 * p.sigma_space * p.sigma_space);
    let range_c = 1.0 / (2.0 * p.sigma_range * p.sigma_range);
    let BilateralScratch {
        padded,
        offsets,
        rows,
    } = scratch;
    offsets.clear();
    offsets.extend(
        (0..=2 * r)
            .flat_map(|dy| (0..=2 * r).map(move |dx| (dy, dx)))
            .filter_map(|(dy, dx)| {
                let (fy, fx) = (dy as f32 - r as f32, dx as f32 - r as f32);
                let d2 = fx * fx + fy * fy;
                // OpenCV uses a round window of radius r
                (d2 <= (r * r) as f32 + 1e-3).then_some((dy, dx, (-d2 * inv_2s2).exp()))
            }),
    );
    let (padded, offsets) = (&*padded, &*offsets);
    par_chunks_with(
        dst.data_mut(),
        w,
        rows,
        |y, out, (num, den): &mut (Vec<f32>, Vec<f32>)| {
            let (num, den) = (zeroed(num, w), zeroed(den, w));
            bilateral_row(padded, pw, r, y, offsets, range_c, num, den, out)
        },
    );
}

/// One output row: accumulate every window offset across the whole row, then divide.
/// Compiled for AVX-512 and AVX2+FMA with runtime dispatch (multiversion), SSE2 otherwise.
#[allow(clippy::too_many_arguments)]
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn bilateral_row(
    padded: &[f32],
    pw: usize,
    r: usize,
    y: usize,
    offsets: &[(usize, usize, f32)],
    range_c: f32,
    num: &mut [f32],
    den: &mut [f32],
    out: &mut [f32],
) {
    let w = out.len();
    num.fill(0.0);
    den.fill(0.0);
    let centre = &padded[(y + r) * pw + r..(y + r) * pw + r + w];
    for &(dy, dx, ws) in offsets {
        let nb = &padded[(y + dy) * pw + dx..(y + dy) * pw + dx + w];
        for (((n, d), &v), &c) in num.iter_mut().zip(den.iter_mut()).zip(nb).zip(centre) {
            let diff = v - c;
            let wgt = ws * exp_neg(-diff * diff * range_c);
            *n += wgt * v;
            *d += wgt;
        }
    }
    for ((o, n), d) in out.iter_mut().zip(num.iter()).zip(den.iter()) {
        *o = n / d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian::tests::random_frame;

    fn reference(src: &Frame<f32>, p: &BilateralParams) -> Frame<f64> {
        let (w, h) = src.size();
        let r = p.radius as isize;
        Frame::from_fn(w, h, |x, y| {
            let c = f64::from(src.get(x, y));
            let (mut n, mut d) = (0.0, 0.0);
            for dy in -r..=r {
                for dx in -r..=r {
                    if dx * dx + dy * dy > r * r {
                        continue;
                    }
                    let v = f64::from(src.get(
                        reflect101(x as isize + dx, w),
                        reflect101(y as isize + dy, h),
                    ));
                    let ws = (-((dx * dx + dy * dy) as f64)
                        / (2.0 * f64::from(p.sigma_space).powi(2)))
                    .exp();
                    let wr = (-(v - c).powi(2) / (2.0 * f64::from(p.sigma_range).powi(2))).exp();
                    n += ws * wr * v;
                    d += ws * wr;
                }
            }
            n / d
        })
    }

    #[test]
    fn matches_the_reference() {
        for (w, h) in [(40, 31), (3, 3)] {
            let src = random_frame(w, h, 9).map(|v| v * 0.05);
            let p = BilateralParams {
                radius: 2,
                sigma_space: 1.5,
                sigma_range: 40.0,
            };
            let mut dst = Frame::new(0, 0);
            bilateral(&src, &p, &mut BilateralScratch::default(), &mut dst);
            let r = reference(&src, &p);
            for (a, b) in dst.data().iter().zip(r.data()) {
                assert!(
                    (f64::from(*a) - b).abs() < 1e-3 * b.abs().max(1.0),
                    "{a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn preserves_a_strong_edge() {
        let src = Frame::from_fn(20, 20, |x, _| if x < 10 { 0.0 } else { 1000.0 });
        let mut dst = Frame::new(0, 0);
        bilateral(
            &src,
            &BilateralParams::default(),
            &mut BilateralScratch::default(),
            &mut dst,
        );
        assert!(dst.get(9, 10) < 1.0 && dst.get(10, 10) > 999.0);
    }
}
