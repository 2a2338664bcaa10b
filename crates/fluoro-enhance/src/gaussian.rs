//! Separable Gaussian blur, row-parallel, reflect-101 borders.

use crate::border::reflect101;
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
/// resized to the source size; no allocation once they have the right size).
pub fn blur(src: &Frame<f32>, kernel: &[f32], tmp: &mut Frame<f32>, dst: &mut Frame<f32>) {
    let (w, h) = src.size();
    tmp.reshape(w, h);
    dst.reshape(w, h);
    let r = kernel.len() / 2;
    tmp.data_mut()
        .par_chunks_mut(w)
        .enumerate()
        .for_each(|(y, out)| {
            let row = src.row(y);
            if w <= 2 * r {
                for (x, o) in out.iter_mut().enumerate() {
                    *o = kernel
                        .iter()
                        .enumerate()
                        .map(|(i, &k)| k * row[reflect101(x as isize + i as isize - r as isize, w)])
                        .sum();
                }
                return;
            }
            for x in (0..r).chain(w - r..w) {
                out[x] = kernel
                    .iter()
                    .enumerate()
                    .map(|(i, &k)| k * row[reflect101(x as isize + i as isize - r as isize, w)])
                    .sum();
            }
            horizontal_interior(row, kernel, &mut out[r..w - r]);
        });
    let tmp = &*tmp;
    dst.data_mut()
        .par_chunks_mut(w)
        .enumerate()
        .for_each(|(y, out)| {
            vertical(tmp, y, h, kernel, out);
        });
}

/// Interior of a row: `out[x] = sum_i k[i] row[x + i]`, symmetric taps paired.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn horizontal_interior(row: &[f32], kernel: &[f32], out: &mut [f32]) {
    let r = kernel.len() / 2;
    let n = out.len();
    let centre = &row[r..r + n];
    for (o, &c) in out.iter_mut().zip(centre) {
        *o = kernel[r] * c;
    }
    for i in 1..=r {
        let k = kernel[r + i];
        let (a, b) = (&row[r - i..r - i + n], &row[r + i..r + i + n]);
        for ((o, &x), &z) in out.iter_mut().zip(a).zip(b) {
            *o += k * (x + z);
        }
    }
}

/// One output row of the vertical pass: whole rows accumulated, symmetric taps paired.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn vertical(tmp: &Frame<f32>, y: usize, h: usize, kernel: &[f32], out: &mut [f32]) {
    let r = kernel.len() / 2;
    for (o, &c) in out.iter_mut().zip(tmp.row(y)) {
        *o = kernel[r] * c;
    }
    for i in 1..=r {
        let k = kernel[r + i];
        let a = tmp.row(reflect101(y as isize - i as isize, h));
        let b = tmp.row(reflect101(y as isize + i as isize, h));
        for ((o, &x), &z) in out.iter_mut().zip(a).zip(b) {
            *o += k * (x + z);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Straightforward float64 2D convolution with the outer-product kernel.
    pub fn reference(src: &Frame<f32>, sigma: f32) -> Frame<f64> {
        let k: Vec<f64> = kernel(sigma).iter().map(|&v| f64::from(v)).collect();
        let r = (k.len() / 2) as isize;
        let (w, h) = src.size();
        Frame::from_fn(w, h, |x, y| {
            let mut s = 0.0;
            for (j, kj) in k.iter().enumerate() {
                for (i, ki) in k.iter().enumerate() {
                    let xx = reflect101(x as isize + i as isize - r, w);
                    let yy = reflect101(y as isize + j as isize - r, h);
                    s += ki * kj * f64::from(src.get(xx, yy));
                }
            }
            s
        })
    }

    pub fn random_frame(w: usize, h: usize, seed: u64) -> Frame<f32> {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        Frame::from_fn(w, h, |_, _| rng.random::<f32>() * 4000.0)
    }

    #[test]
    fn matches_the_reference() {
        for (w, h, sigma) in [(37, 23, 2.0), (5, 4, 1.0), (64, 64, 0.8)] {
            let src = random_frame(w, h, 1);
            let (mut tmp, mut dst) = (Frame::new(0, 0), Frame::new(0, 0));
            blur(&src, &kernel(sigma), &mut tmp, &mut dst);
            let r = reference(&src, sigma);
            for (a, b) in dst.data().iter().zip(r.data()) {
                assert!((f64::from(*a) - b).abs() < 0.02, "{a} vs {b}");
            }
        }
    }
}
