//! Edge-preserving bilateral filter (square window of diameter `2 radius + 1`), float.
//!
//! Each band of rows keeps a ring of the `2 radius + 1` reflect-101 padded source rows its
//! current row needs, so the inner loops run over plain contiguous slices, one window
//! offset at a time across a whole row, with a vectorisable exponential for the range
//! weight. (A whole padded copy of the frame was 4 MB more for the chain's working set,
//! which at 1024 already exceeds a 32 MB L3.)

use crate::border::reflect101;
use crate::fastmath::exp2_neg;
use crate::field::{FieldSpans, keep_outside_row};
use crate::par::par_chunks_with;
use fluoro_core::Frame;
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
    half: Vec<(usize, usize, f32)>,
    bands: Vec<BandScratch>,
    call: u64,
    /// Each row's columns from its first to its last field pixel.
    spans: FieldSpans,
}

/// One band's buffers: rings of padded source rows and of pair-weight rows, and where a
/// row's streams start.
#[derive(Debug, Default)]
struct BandScratch {
    offsets: Vec<[usize; 4]>,
    /// Padded source rows: padded row `py` (source row `py - r`, reflected) in slot
    /// `py % (2r + 1)`, `pw` values each.
    padded: Vec<f32>,
    /// (call, output row) of the last row this band finished: when this call's next row
    /// follows it, both rings hold all but their newest row already.
    last_row: Option<(u64, usize)>,
    /// Pair weights of the last `r + 1` padded rows: `ring[(py % (r + 1)) * n * pw + k * pw + px]`
    /// is the weight between padded `(px, py)` and its neighbour at half-window offset `k`.
    ring: Vec<f32>,
}

/// Filters `src` into `dst`.
///
/// The weight of a pixel pair is symmetric (`w(p, q) = w(q, p)`), so it is computed once per
/// pair, for half of the window's offsets, and used for both pixels: half the exponentials
/// of the direct form. Each band of rows keeps the pair weights of the last `radius + 1`
/// rows, which is all a row's backward pairs need.
pub fn bilateral(
    src: &Frame<f32>,
    p: &BilateralParams,
    scratch: &mut BilateralScratch,
    dst: &mut Frame<f32>,
) {
    filter(src, None, p, scratch, dst);
}

/// [`bilateral`] inside the field only: pixels where `mask` is 0 keep their value, and
/// each row is filtered only from its first to its last field pixel (a round field
/// leaves about a quarter of the frame outside). Field pixels get exactly
/// [`bilateral`]'s values: their neighbours outside the field are read as they are.
/// A mask of another size than `src` is ignored (every pixel filtered).
pub fn bilateral_in_field(
    src: &Frame<f32>,
    mask: &Frame<u8>,
    p: &BilateralParams,
    scratch: &mut BilateralScratch,
    dst: &mut Frame<f32>,
) {
    let mask = (mask.size() == src.size()).then_some(mask);
    filter(src, mask, p, scratch, dst);
}

fn filter(
    src: &Frame<f32>,
    mask: Option<&Frame<u8>>,
    p: &BilateralParams,
    scratch: &mut BilateralScratch,
    dst: &mut Frame<f32>,
) {
    let (w, h) = src.size();
    dst.reshape(w, h);
    let r = p.radius;
    let pw = w + 2 * r;
    let inv_2s2 = 1.0 / (2.0 * p.sigma_space * p.sigma_space);
    // the range weight's exponent in base 2: exp(-d^2 / 2s^2) = 2^(d^2 range_c)
    let range_c = -std::f32::consts::LOG2_E / (2.0 * p.sigma_range * p.sigma_range);
    scratch.call += 1;
    let BilateralScratch {
        half,
        bands,
        call,
        spans,
    } = scratch;
    spans.update(mask, w, h);
    let spans = &*spans;
    // one of each offset pair (o, -o) of the round window: rows below, or right on the row
    half.clear();
    half.extend(
        (0..=r)
            .flat_map(|dy| (0..=2 * r).map(move |dx| (dy, dx)))
            .filter(|&(dy, dx)| dy > 0 || dx > r)
            .filter_map(|(dy, dx)| {
                let (fy, fx) = (dy as f32, dx as f32 - r as f32);
                let d2 = fx * fx + fy * fy;
                // OpenCV uses a round window of radius r
                (d2 <= (r * r) as f32 + 1e-3).then_some((dy, dx, (-d2 * inv_2s2).exp()))
            }),
    );
    let (half, call) = (&*half, *call);
    let ring_rows = 2 * r + 1;
    let n = half.len();
    par_chunks_with(
        dst.data_mut(),
        w,
        bands,
        |y, out, band: &mut BandScratch| {
            let ring_len = (r + 1) * n * pw;
            if band.ring.len() != ring_len || band.padded.len() != ring_rows * pw {
                band.ring.clear();
                band.ring.resize(ring_len, 0.0);
                band.padded.clear();
                band.padded.resize(ring_rows * pw, 0.0);
                band.last_row = None;
            }
            let follows = matches!(band.last_row, Some((c, last)) if c == call && last + 1 == y);
            // padded rows y .. y + 2r: the window of this row and its pairs' neighbours
            let first_padded = if follows { y + 2 * r } else { y };
            for py in first_padded..=y + 2 * r {
                let slot = (py % ring_rows) * pw;
                pad_row(
                    src.row(reflect101(py as isize - r as isize, h)),
                    r,
                    &mut band.padded[slot..slot + pw],
                );
            }
            let padded = &band.padded;
            // padded rows y .. y + r hold this row's pairs (backward ones start up to r above)
            let first_needed = if follows { y + r } else { y };
            for py in first_needed..=y + r {
                // padded row py's pairs serve output rows py - r ..= py, each at padded
                // columns from its first field pixel to 2r past its last
                let cols = spans
                    .union(py as isize - r as isize..=py as isize)
                    .map_or((pw, 0), |(a, b)| (a, b + 2 * r));
                let slot = (py % (r + 1)) * n * pw;
                pair_weights_row(
                    padded,
                    (pw, r, py),
                    cols,
                    half,
                    range_c,
                    &mut band.ring[slot..slot + n * pw],
                );
            }
            band.last_row = Some((call, y));
            // the source row the next output row pads, while this row is filtered
            crate::prefetch::prefetch(src.row(reflect101((y + r + 1) as isize, h)));
            let (a, b) = spans.row(y);
            if a < b {
                stream_offsets(pw, r, y, a, half, &mut band.offsets);
                let centre = ((y + r) % ring_rows) * pw + r + a;
                accumulate_row(padded, &band.ring, centre, &band.offsets, &mut out[a..b]);
            }
            // the pixels outside the field (around the span, and in it where the field is
            // not convex) keep their value
            if let Some(m) = mask {
                keep_outside_row(m.row(y), src.row(y), (a, b), spans.gaps(y), out);
            }
        },
    );
}

/// Source row `row` with `r` reflect-101 values at each end, into `out` (`row.len() + 2r`).
fn pad_row(row: &[f32], r: usize, out: &mut [f32]) {
    let w = row.len();
    out[r..r + w].copy_from_slice(row);
    for i in 0..r {
        out[i] = row[reflect101(i as isize - r as isize, w)];
        out[r + w + i] = row[reflect101((w + i) as isize, w)];
    }
}

/// Pair weights of padded row `py` with its neighbours at every half-window offset:
/// `out[k * pw + px] = ws_k * 2^((I(px, py) - I(px + dx_k - r, py + dy_k))^2 range_c)`,
/// computed as `2^(d^2 range_c + log2 ws_k)` (the spatial weight in the exponent: one
/// multiply-add instead of a multiply-add and a multiply); `padded` is the band's ring of
/// `2r + 1` padded rows.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn pair_weights_row(
    padded: &[f32],
    (pw, r, py): (usize, usize, usize),
    (col_lo, col_hi): (usize, usize),
    half: &[(usize, usize, f32)],
    range_c: f32,
    out: &mut [f32],
) {
    let rows = 2 * r + 1;
    let at = |p: usize| (p % rows) * pw;
    let row = &padded[at(py)..at(py) + pw];
    for (k, &(dy, dx, ws)) in half.iter().enumerate() {
        let o = &mut out[k * pw..(k + 1) * pw];
        // neighbour column px + dx - r: valid for px in lo..hi
        let (lo, hi) = (r.saturating_sub(dx), (pw + r).saturating_sub(dx).min(pw));
        let (lo, hi) = (lo.max(col_lo), hi.min(col_hi));
        if lo >= hi {
            continue;
        }
        let nrow = &padded[at(py + dy)..at(py + dy) + pw];
        let nb = &nrow[lo + dx - r..hi + dx - r];
        let lws = ws.log2();
        for ((wv, &c), &v) in o[lo..hi].iter_mut().zip(&row[lo..hi]).zip(nb) {
            let d = v - c;
            *wv = exp2_neg((d * d).mul_add(range_c, lws));
        }
    }
}

/// Output pixels per block of [`accumulate_row`] with AVX-512: its sums stay in
/// registers (four 512-bit vectors each) across all of the window's offsets.
const BLOCK: usize = 64;

/// [`BLOCK`] elsewhere: AVX2's sixteen registers hold four 256-bit vectors of each sum
/// (eight of each spilled to the stack on every offset).
const BLOCK_AVX2: usize = 32;

/// Where [`accumulate_row`] reads each half-window offset's four streams for one row:
/// forward weights (ring), forward neighbours (padded), backward weights (ring),
/// backward neighbours (padded), each the start of the run for the row's pixels from
/// column `x0` on.
fn stream_offsets(
    pw: usize,
    r: usize,
    y: usize,
    x0: usize,
    half: &[(usize, usize, f32)],
    out: &mut Vec<[usize; 4]>,
) {
    let n = half.len();
    let py = y + r;
    let ring_row = |row: usize, k: usize| (row % (r + 1)) * n * pw + k * pw;
    // padded rows are in a ring of 2r + 1 too
    let padded_row = |row: usize| (row % (2 * r + 1)) * pw;
    out.clear();
    out.extend(half.iter().enumerate().map(|(k, &(dy, dx, _))| {
        [
            // forward: weights at (x + r, py), neighbour at (x + dx, py + dy) in padded columns
            ring_row(py, k) + r + x0,
            padded_row(py + dy) + dx + x0,
            // backward: the pair starts at (x + 2r - dx, py - dy) and ends at this pixel
            ring_row(py - dy, k) + 2 * r - dx + x0,
            padded_row(py - dy) + 2 * r - dx + x0,
        ]
    }));
}

/// The `N` values of `s` from `at`.
#[inline(always)]
fn run<const N: usize>(s: &[f32], at: usize) -> &[f32; N] {
    s[at..at + N].try_into().expect("a run of N values")
}

/// One output row from the pair weights: for every half-window offset `o`, the forward pair
/// `(p, p + o)` (weights of this row) and the backward pair `(p - o, p)` (weights of the row
/// `dy` above, column `dx` to the left), then the normalisation. Pixels go in blocks of
/// [`BLOCK`] ([`BLOCK_AVX2`] without AVX-512) with the offsets inside, so the sums never
/// leave registers.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn accumulate_row(
    padded: &[f32],
    ring: &[f32],
    centre: usize,
    offsets: &[[usize; 4]],
    out: &mut [f32],
) {
    if multiversion::target::target_cfg_f!(target_feature = "avx512f") {
        accumulate_blocks::<BLOCK>(padded, ring, centre, offsets, out);
    } else {
        accumulate_blocks::<BLOCK_AVX2>(padded, ring, centre, offsets, out);
    }
}

/// [`accumulate_row`] in blocks of `B` pixels (each pixel's sums are the same whatever `B`).
#[inline(always)]
fn accumulate_blocks<const B: usize>(
    padded: &[f32],
    ring: &[f32],
    centre: usize,
    offsets: &[[usize; 4]],
    out: &mut [f32],
) {
    let w = out.len();
    let full = w - w % B;
    // a row's last partial block is done as a whole block overlapping the one before
    // (each pixel's sums are its own, so the overlap is computed again to the same bits);
    // only rows shorter than a block take the scalar loop
    let last = (full < w && w >= B).then(|| w - B);
    let scalar_from = if last.is_some() { w } else { full };
    for x0 in (0..full).step_by(B).chain(last) {
        let (mut num, mut den) = (*run::<B>(padded, centre + x0), [1.0f32; B]);
        for o in offsets {
            let (a, va) = (run::<B>(ring, o[0] + x0), run::<B>(padded, o[1] + x0));
            let (b, vb) = (run::<B>(ring, o[2] + x0), run::<B>(padded, o[3] + x0));
            for i in 0..B {
                num[i] += a[i] * va[i] + b[i] * vb[i];
                den[i] += a[i] + b[i];
            }
        }
        for (o, (n, d)) in out[x0..x0 + B].iter_mut().zip(num.iter().zip(&den)) {
            *o = n / d;
        }
    }
    for (x, o) in out.iter_mut().enumerate().skip(scalar_from) {
        let (mut num, mut den) = (padded[centre + x], 1.0f32);
        for of in offsets {
            let (a, b) = (ring[of[0] + x], ring[of[2] + x]);
            num += a * padded[of[1] + x] + b * padded[of[3] + x];
            den += a + b;
        }
        *o = num / den;
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
        // bands depend on the thread count: fix it, so that 40x31 then 40x64 has band 1 end
        // at row 7 and then start at row 8 (its last row looks like the one before by row)
        crate::gaussian::tests::on_two_threads(reference_cases);
    }

    /// A random test frame and parameters with this radius and spatial sigma.
    fn case(
        w: usize,
        h: usize,
        seed: u64,
        radius: usize,
        sigma_space: f32,
    ) -> (Frame<f32>, BilateralParams) {
        let p = BilateralParams {
            radius,
            sigma_space,
            sigma_range: 40.0,
        };
        (random_frame(w, h, seed).map(|v| v * 0.05), p)
    }

    fn reference_cases() {
        // one scratch across calls and sizes: bands must not use a stale ring
        let mut scratch = BilateralScratch::default();
        for (w, h, seed, radius) in [
            (40, 31, 9, 2),
            (40, 31, 10, 2),
            (40, 64, 15, 2),
            (3, 3, 11, 2),
            (57, 64, 12, 2),
            (33, 20, 13, 1),
            (33, 20, 14, 3),
        ] {
            let (src, p) = case(w, h, seed, radius, 1.5);
            let mut dst = Frame::new(0, 0);
            bilateral(&src, &p, &mut scratch, &mut dst);
            let r = reference(&src, &p);
            for (a, b) in dst.data().iter().zip(r.data()) {
                assert!(
                    (f64::from(*a) - b).abs() < 1e-3 * b.abs().max(1.0),
                    "{a} vs {b}"
                );
            }
        }
    }

    /// Inside the field, [`bilateral_in_field`] gives [`bilateral`]'s bits; outside, the
    /// source's. Round fields (one run a row), a field with a hole and a notch (rows with
    /// outside pixels between field pixels), rows with no field pixel, radii 1-3, two
    /// threads (bands start mid-frame) and one scratch across all of them.
    #[test]
    fn in_field_equals_the_whole_frame_filter_inside_and_keeps_the_outside() {
        crate::gaussian::tests::on_two_threads(|| {
            let mut scratch = BilateralScratch::default();
            let mut whole = Frame::new(0, 0);
            let mut part = Frame::new(0, 0);
            for (w, h, seed, radius) in [
                (64, 64, 3, 2),
                (97, 80, 4, 2),
                (50, 41, 5, 1),
                (50, 41, 6, 3),
            ] {
                let (src, p) = case(w, h, seed, radius, 2.0);
                let (cx, cy, rr) = (w as f32 / 2.0, h as f32 / 2.0, 0.4 * h as f32);
                let round = Frame::from_fn(w, h, |x, y| {
                    u8::from((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) < rr * rr)
                });
                let holed = Frame::from_fn(w, h, |x, y| {
                    let hole = (x as f32 - cx).abs() < 4.0 && (y as f32 - cy).abs() < 3.0;
                    let notch = x > w / 2 && y < h / 3;
                    u8::from(y > 2 && y + 3 < h && !hole && !notch)
                });
                bilateral(&src, &p, &mut scratch, &mut whole);
                for mask in [&round, &holed] {
                    bilateral_in_field(&src, mask, &p, &mut scratch, &mut part);
                    for i in 0..w * h {
                        let want = if mask.data()[i] != 0 {
                            whole.data()[i]
                        } else {
                            src.data()[i]
                        };
                        assert_eq!(
                            part.data()[i].to_bits(),
                            want.to_bits(),
                            "{w}x{h} r{radius} at {i}"
                        );
                    }
                }
                // a mask of another size filters every pixel
                bilateral_in_field(&src, &Frame::new(3, 3), &p, &mut scratch, &mut part);
                assert_eq!(part.data(), whole.data());
            }
        });
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
