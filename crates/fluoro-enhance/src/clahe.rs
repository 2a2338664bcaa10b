//! Contrast-limited adaptive histogram equalisation for 12-16-bit data.
//!
//! Tiles, a clip limit relative to the mean bin height (OpenCV's convention: `clip *
//! tile_pixels / bins`), uniform redistribution of the clipped excess, and bilinear
//! interpolation between the four nearest tile mappings. Pixels outside the shutter mask
//! never enter a histogram.

use crate::par::{par_chunks_with, zeroed};
use fluoro_core::Frame;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// CLAHE parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaheParams {
    /// Tiles across.
    pub tiles_x: usize,
    /// Tiles down.
    pub tiles_y: usize,
    /// Clip limit, in multiples of the mean bin height (OpenCV's `clipLimit`).
    pub clip_limit: f32,
    /// Histogram bins over the value range (4096 resolves 12-bit data exactly).
    pub bins: usize,
}

impl Default for ClaheParams {
    fn default() -> Self {
        Self {
            tiles_x: 8,
            tiles_y: 8,
            clip_limit: 1.5,
            bins: 4096,
        }
    }
}

/// Reusable buffers: one mapping per tile, and per-column interpolation tables.
#[derive(Debug, Default)]
pub struct ClaheScratch {
    luts: Vec<f32>,
    tile_hists: Vec<(Vec<u32>, Vec<f32>)>,
    col_tiles: Vec<(u32, u32)>,
    col_weight: Vec<f32>,
}

#[inline]
fn bin_of(v: f32, lo: f32, scale: f32, bins: usize) -> usize {
    (((v - lo) * scale) as isize).clamp(0, bins as isize - 1) as usize
}

/// Equalises `src` (values in `[lo, hi]`) into `dst` (same range).
pub fn clahe(
    src: &Frame<f32>,
    mask: &Frame<u8>,
    range: (f32, f32),
    p: &ClaheParams,
    scratch: &mut ClaheScratch,
    dst: &mut Frame<f32>,
) {
    let (w, h) = src.size();
    dst.reshape(w, h);
    let (lo, hi) = (range.0, range.1.max(range.0 + 1e-3));
    let bins = p.bins.max(2);
    let (tx, ty) = (p.tiles_x.clamp(1, w.max(1)), p.tiles_y.clamp(1, h.max(1)));
    let (tw, th) = (w.div_ceil(tx), h.div_ceil(ty));
    let scale = bins as f32 / (hi - lo);
    scratch.luts.resize(tx * ty * bins, 0.0);
    let ClaheScratch {
        luts, tile_hists, ..
    } = scratch;
    par_chunks_with(
        luts,
        bins,
        tile_hists,
        |t, lut, (hist, fhist): &mut (Vec<u32>, Vec<f32>)| {
            let hist = zeroed(hist, bins);
            let fhist = zeroed(fhist, bins);
            let (bx, by) = (t % tx, t / tx);
            let mut count = 0u32;
            for y in by * th..((by + 1) * th).min(h) {
                let (row, m) = (src.row(y), mask.row(y));
                for x in bx * tw..((bx + 1) * tw).min(w) {
                    if m[x] != 0 {
                        hist[bin_of(row[x], lo, scale, bins)] += 1;
                        count += 1;
                    }
                }
            }
            if count == 0 {
                for (i, l) in lut.iter_mut().enumerate() {
                    *l = lo + (i as f32 + 0.5) / scale;
                }
                return;
            }
            for (f, &c) in fhist.iter_mut().zip(hist.iter()) {
                *f = c as f32;
            }
            clip_histogram(fhist, (p.clip_limit * count as f32 / bins as f32).max(1.0));
            let k = (hi - lo) / count as f32;
            let mut sum = 0f32;
            for (l, &c) in lut.iter_mut().zip(fhist.iter()) {
                sum += c;
                *l = lo + sum * k;
            }
        },
    );
    // per-column tile pair and weight, computed once per frame (O(width))
    scratch.col_tiles.clear();
    scratch.col_weight.clear();
    for x in 0..w {
        let fx = x as f32 / tw as f32 - 0.5;
        let x1 = fx.floor();
        scratch.col_tiles.push((
            (x1.max(0.0) as usize).min(tx - 1) as u32,
            ((x1 + 1.0).max(0.0) as usize).min(tx - 1) as u32,
        ));
        scratch.col_weight.push(fx - x1);
    }
    let (luts, col_tiles, col_weight) = (&scratch.luts, &scratch.col_tiles, &scratch.col_weight);
    dst.data_mut()
        .par_chunks_mut(w)
        .enumerate()
        .for_each(|(y, out)| {
            let fy = y as f32 / th as f32 - 0.5;
            let y1 = fy.floor();
            let ya = fy - y1;
            let ty1 = (y1.max(0.0) as usize).min(ty - 1);
            let ty2 = ((y1 + 1.0).max(0.0) as usize).min(ty - 1);
            let top = &luts[ty1 * tx * bins..(ty1 + 1) * tx * bins];
            let bottom = &luts[ty2 * tx * bins..(ty2 + 1) * tx * bins];
            map_row(
                src.row(y),
                top,
                bottom,
                ya,
                col_tiles,
                col_weight,
                lo,
                scale,
                bins,
                out,
            );
        });
}

/// Maps one row through the four surrounding tile LUTs (`top`/`bottom` hold one tile row).
#[allow(clippy::too_many_arguments)]
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn map_row(
    row: &[f32],
    top: &[f32],
    bottom: &[f32],
    ya: f32,
    col_tiles: &[(u32, u32)],
    col_weight: &[f32],
    lo: f32,
    scale: f32,
    bins: usize,
    out: &mut [f32],
) {
    let maxb = (bins - 1) as f32;
    for (((o, &v), &(t1, t2)), &xa) in out.iter_mut().zip(row).zip(col_tiles).zip(col_weight) {
        let b = ((v - lo) * scale).clamp(0.0, maxb) as usize;
        let (i1, i2) = (t1 as usize * bins + b, t2 as usize * bins + b);
        let t = top[i1] + xa * (top[i2] - top[i1]);
        let u = bottom[i1] + xa * (bottom[i2] - bottom[i1]);
        *o = t + ya * (u - t);
    }
}

/// Clips every bin to `limit` and spreads the excess uniformly over all bins. Counts are
/// fractional so the clip limit means the same for every tile size (OpenCV rounds it to
/// whole counts, so with many bins and small tiles every low limit acts as 1).
fn clip_histogram(hist: &mut [f32], limit: f32) {
    let mut excess = 0.0f32;
    for c in hist.iter_mut() {
        if *c > limit {
            excess += *c - limit;
            *c = limit;
        }
    }
    let each = excess / hist.len() as f32;
    for c in hist.iter_mut() {
        *c += each;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian::tests::random_frame;

    /// Float64 CLAHE written for clarity: one tile mapping per pixel neighbourhood, no reuse.
    fn reference(
        src: &Frame<f32>,
        mask: &Frame<u8>,
        lo: f64,
        hi: f64,
        p: &ClaheParams,
    ) -> Frame<f64> {
        let (w, h) = src.size();
        let (tx, ty) = (p.tiles_x, p.tiles_y);
        let (tw, th) = (w.div_ceil(tx), h.div_ceil(ty));
        let bins = p.bins;
        let bin = |v: f32| {
            (((f64::from(v) - lo) * bins as f64 / (hi - lo)).floor() as i64)
                .clamp(0, bins as i64 - 1) as usize
        };
        let mapping = |bx: usize, by: usize| -> Vec<f64> {
            let mut hist = vec![0f32; bins];
            let mut n = 0;
            for y in by * th..((by + 1) * th).min(h) {
                for x in bx * tw..((bx + 1) * tw).min(w) {
                    if mask.get(x, y) != 0 {
                        hist[bin(src.get(x, y))] += 1.0;
                        n += 1;
                    }
                }
            }
            clip_histogram(&mut hist, (p.clip_limit * n as f32 / bins as f32).max(1.0));
            let mut acc = 0.0;
            hist.iter()
                .map(|&c| {
                    acc += f64::from(c);
                    lo + acc * (hi - lo) / n as f64
                })
                .collect()
        };
        let maps: Vec<Vec<f64>> = (0..ty)
            .flat_map(|by| (0..tx).map(move |bx| (bx, by)))
            .map(|(bx, by)| mapping(bx, by))
            .collect();
        Frame::from_fn(w, h, |x, y| {
            let fx = x as f64 / tw as f64 - 0.5;
            let fy = y as f64 / th as f64 - 0.5;
            let (x1, y1) = (fx.floor(), fy.floor());
            let (xa, ya) = (fx - x1, fy - y1);
            let cx = |v: f64| (v.max(0.0) as usize).min(tx - 1);
            let cy = |v: f64| (v.max(0.0) as usize).min(ty - 1);
            let b = bin(src.get(x, y));
            let m = |yy: usize, xx: usize| maps[yy * tx + xx][b];
            let top = m(cy(y1), cx(x1)) * (1.0 - xa) + m(cy(y1), cx(x1 + 1.0)) * xa;
            let bot = m(cy(y1 + 1.0), cx(x1)) * (1.0 - xa) + m(cy(y1 + 1.0), cx(x1 + 1.0)) * xa;
            top * (1.0 - ya) + bot * ya
        })
    }

    #[test]
    fn matches_the_reference_with_a_mask() {
        let src = random_frame(67, 45, 4).map(|v| (v * 0.3).powf(0.9));
        let mask = Frame::from_fn(67, 45, |x, y| {
            u8::from((x as i32 - 33).pow(2) + (y as i32 - 22).pow(2) < 600)
        });
        let p = ClaheParams {
            tiles_x: 4,
            tiles_y: 3,
            clip_limit: 2.0,
            bins: 512,
        };
        let mut dst = Frame::new(0, 0);
        clahe(
            &src,
            &mask,
            (0.0, 1000.0),
            &p,
            &mut ClaheScratch::default(),
            &mut dst,
        );
        let r = reference(&src, &mask, 0.0, 1000.0, &p);
        for (a, b) in dst.data().iter().zip(r.data()) {
            assert!((f64::from(*a) - b).abs() < 0.05, "{a} vs {b}");
        }
    }

    #[test]
    fn stretches_a_low_contrast_region() {
        let src = Frame::from_fn(64, 64, |x, y| 2000.0 + ((x * 7 + y * 3) % 40) as f32);
        let mask = Frame::filled(64, 64, 1u8);
        let mut dst = Frame::new(0, 0);
        clahe(
            &src,
            &mask,
            (0.0, 4095.0),
            &ClaheParams {
                clip_limit: 40.0,
                ..Default::default()
            },
            &mut ClaheScratch::default(),
            &mut dst,
        );
        let (mn, mx) = dst
            .data()
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(mx - mn > 400.0, "range {}", mx - mn);
    }
}
