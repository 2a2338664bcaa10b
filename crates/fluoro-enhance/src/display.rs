//! Display mapping to 8 bits with window/level.

use crate::fastmath::small_int_bits;
use fluoro_core::Frame;
use rayon::prelude::*;

/// A window: values `center - width/2 .. center + width/2` map to 0..255.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// Centre.
    pub center: f32,
    /// Width (> 0).
    pub width: f32,
}

impl Window {
    /// The window spanning the `lo_pct`..`hi_pct` percentiles of the pixels inside `mask`,
    /// estimated from every [`sample_step`]-th pixel.
    pub fn from_percentiles(
        f: &Frame<f32>,
        mask: &Frame<u8>,
        lo_pct: f32,
        hi_pct: f32,
        scratch: &mut Vec<f32>,
    ) -> Self {
        samples(f, mask, scratch);
        Self::from_samples(scratch, lo_pct, hi_pct)
    }

    /// The window spanning the `lo_pct`..`hi_pct` percentiles of `samples` (reordered; in
    /// any order, the same window), e.g. those a stage took as it wrote the frame
    /// ([`crate::detail::enhance_detail_sampled`]); `0.5 +- 0.5` when there are none.
    pub fn from_samples(samples: &mut [f32], lo_pct: f32, hi_pct: f32) -> Self {
        if samples.is_empty() {
            return Self {
                center: 0.5,
                width: 1.0,
            };
        }
        let n = samples.len();
        let at = |q: f32| ((q / 100.0) * (n - 1) as f32).round() as usize;
        let (ilo, ihi) = (at(lo_pct), at(hi_pct));
        let (lo, hi) = crate::select::tail_ranks(samples, ilo, ihi);
        Self {
            center: (lo + hi) / 2.0,
            width: (hi - lo).max(1e-3),
        }
    }
}

/// Every [`sample_step`]-th pixel of `f` inside `mask`, into `out` (cleared first): what
/// [`Window::from_percentiles`] selects from.
pub fn samples(f: &Frame<f32>, mask: &Frame<u8>, out: &mut Vec<f32>) {
    out.clear();
    out.extend(
        f.data()
            .iter()
            .zip(mask.data())
            .step_by(sample_step(f.data().len()))
            .filter(|(_, m)| **m != 0)
            .map(|(v, _)| *v),
    );
}

/// The step between the pixels [`Window::from_percentiles`] samples in a frame of `len`
/// pixels: about 40 000 samples, plenty for the 0.5th and 99.5th percentiles (200 in each
/// tail), which keeps the selection O(1) in the frame size.
pub fn sample_step(len: usize) -> usize {
    (len / 40_000).max(1)
}

/// Maps `src` to 8 bits through `window`; pixels outside `mask` become 0.
pub fn to_u8(src: &Frame<f32>, mask: &Frame<u8>, window: Window, dst: &mut Frame<u8>) {
    let (w, h) = src.size();
    dst.reshape(w, h);
    dst.data_mut()
        .par_chunks_mut(w.max(1))
        .enumerate()
        .for_each(|(y, o)| to_u8_row(src.row(y), mask.row(y), window, o));
}

/// [`to_u8`] for one row (or any run of pixels): where a consumer reads the 8-bit values
/// once, e.g. the overlay spreading them to RGB, it maps each row as it goes and the
/// frame of 8-bit values is never written.
pub fn to_u8_row(src: &[f32], mask: &[u8], window: Window, out: &mut [u8]) {
    let lo = window.center - window.width / 2.0;
    let k = 255.0 / window.width;
    window_row(src, mask, lo, k, out);
}

/// One row of [`to_u8`]: `(v - lo) * k + 0.5` clamped to 0..255 and truncated, 0 outside
/// the mask. Branch-free (the mask selects by bitwise and) so that it vectorises; 32
/// pixels at a time through 16-bit lanes, which compile to saturating packs: eight at a
/// time through 32-bit lanes compiled to a byte extract and insert per pixel, 2.2 times
/// slower on data in cache.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn window_row(src: &[f32], mask: &[u8], lo: f32, k: f32, out: &mut [u8]) {
    const L: usize = 32;
    let n = out.len().min(src.len()).min(mask.len());
    let (src, mask, out) = (&src[..n], &mask[..n], &mut out[..n]);
    let blocks = out
        .chunks_exact_mut(L)
        .zip(src.chunks_exact(L).zip(mask.chunks_exact(L)));
    for (o, (s, m)) in blocks {
        let s: &[f32; L] = s.try_into().expect("32 values");
        let mut g = [0u16; L];
        for (g, &v) in g.iter_mut().zip(s) {
            *g = window_level(v, lo, k) as u16 & 0xff;
        }
        for ((o, &g), &m) in o.iter_mut().zip(&g).zip(m) {
            *o = g as u8 & 0u8.wrapping_sub(u8::from(m != 0));
        }
    }
    let done = n / L * L;
    for ((o, &v), &m) in out[done..].iter_mut().zip(&src[done..]).zip(&mask[done..]) {
        *o = window_level(v, lo, k) as u8 & 0u8.wrapping_sub(u8::from(m != 0));
    }
}

/// `(v - lo) * k + 0.5` clamped to 0..255 and truncated, in the low byte: truncation
/// through the mantissa (NaN gives 0, as `as u8` would); the saturating `as u8` cast
/// compiled to one scalar conversion per pixel.
#[inline(always)]
fn window_level(v: f32, lo: f32, k: f32) -> u32 {
    small_int_bits(((v - lo) * k + 0.5).clamp(0.0, 255.0).trunc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_maps_ends_and_middle() {
        let f = Frame::from_vec(4, 1, vec![0.0, 100.0, 200.0, 50.0]).unwrap();
        let m = Frame::from_vec(4, 1, vec![1, 1, 1, 0]).unwrap();
        let mut d = Frame::new(0, 0);
        to_u8(
            &f,
            &m,
            Window {
                center: 100.0,
                width: 200.0,
            },
            &mut d,
        );
        assert_eq!(d.data(), &[0, 128, 255, 0]);
        let w = Window::from_percentiles(&f, &m, 0.0, 100.0, &mut Vec::new());
        assert_eq!((w.center, w.width), (100.0, 200.0));
    }

    /// The vectorised conversion gives what `as u8` gives: every step of 1/64 across and
    /// beyond the window, values next to each integer, and NaN and the infinities; 0
    /// outside the mask.
    #[test]
    fn conversion_equals_the_saturating_cast() {
        let mut vals: Vec<f32> = (-2000..20000).map(|i| i as f32 / 64.0 - 10.0).collect();
        for n in 0..=256 {
            let x = n as f32 - 0.5;
            vals.extend([x.next_down(), x, x.next_up()]);
        }
        vals.extend([
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e30,
            -1e30,
        ]);
        // outside the mask (every 7th pixel, in 32-pixel blocks and the tail) 0
        let mask: Vec<u8> = (0..vals.len()).map(|i| u8::from(i % 7 != 3)).collect();
        assert!(!vals.len().is_multiple_of(32));
        let mut out = vec![7u8; vals.len()];
        window_row(&vals, &mask, 0.0, 1.0, &mut out);
        for ((v, o), m) in vals.iter().zip(&out).zip(&mask) {
            let want = if *m == 0 {
                0
            } else {
                (v + 0.5).clamp(0.0, 255.0) as u8
            };
            assert_eq!(*o, want, "{v}");
        }
    }
}
