//! Intensity normalisation: to a log-intensity domain, with the shutter masked out.

use crate::fastmath::ln_pos;
use crate::field::FieldSpans;
use fluoro_core::Frame;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How stored (modality) values relate to X-ray intensity (Pixel Intensity Relationship).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Intensity {
    /// Already proportional to log intensity (LOG), or display-processed (DISP): kept.
    #[default]
    Log,
    /// Proportional to intensity (LIN): log-transformed, `1000 ln(max(v, 1))`.
    Linear,
}

/// Scale of the log transform of linear data.
pub const LOG_SCALE: f32 = 1000.0;

/// Normalises `src` into `dst`: log transform where the data is linear, and every pixel
/// outside `mask` replaced by the mean inside it, so no later filter sees the collimator.
/// Returns that mean.
pub fn normalize(
    src: &Frame<f32>,
    mask: &Frame<u8>,
    intensity: Intensity,
    dst: &mut Frame<f32>,
) -> f32 {
    let (w, h) = src.size();
    dst.reshape(w, h);
    // one pass: transform each row and sum its inside pixels
    let sums = dst
        .data_mut()
        .par_chunks_mut(w.max(1))
        .zip(mask.data().par_chunks(w.max(1)))
        .enumerate()
        .map(|(y, (o, m))| {
            let s = src.row(y);
            match intensity {
                Intensity::Log => o.copy_from_slice(s),
                Intensity::Linear => log_row(s, o),
            }
            masked_row_sum(o, m)
        });
    let (mean, n) = pooled_mean(sums);
    if n < w * h {
        dst.data_mut()
            .par_chunks_mut(w.max(1))
            .zip(mask.data().par_chunks(w.max(1)))
            .for_each(|(r, m)| fill_outside(r, m, mean));
    }
    mean
}

/// The mean of `src` inside `mask` (0 when no pixel is inside): the value
/// [`normalize`] fills the outside with for log-domain data ([`Intensity::Log`]), by the
/// same sums, without writing a frame.
pub fn inside_mean(src: &Frame<f32>, mask: &Frame<u8>) -> f32 {
    let w = src.width().max(1);
    let sums = src
        .data()
        .par_chunks(w)
        .zip(mask.data().par_chunks(w))
        .map(|(s, m)| masked_row_sum(s, m));
    pooled_mean(sums).0
}

/// [`inside_mean`] from the field's row spans (`spans`, made from `mask` here and kept
/// while it is unchanged), to the same bits: a row without gaps is summed from its span
/// alone and its mask is not read (the pixels outside a round field, a fifth of a square
/// frame, and the mask were a third of the traffic); a row with gaps is masked from the
/// 8-pixel block holding its span's start. Either way every pixel lands in the lane it
/// takes in [`inside_mean`]'s sums, and the blocks left out would add only zeros (f32
/// values of like scale sum exactly in f64 in any order anyway; the lanes keep the bits
/// for any data).
pub fn inside_mean_in(src: &Frame<f32>, mask: &Frame<u8>, spans: &mut FieldSpans) -> f32 {
    if mask.size() != src.size() {
        return inside_mean(src, mask);
    }
    let (w, h) = src.size();
    spans.update(Some(mask), w, h);
    let spans = &*spans;
    let sums = src
        .data()
        .par_chunks(w.max(1))
        .zip(mask.data().par_chunks(w.max(1)))
        .enumerate()
        .map(|(y, (s, m))| {
            let (a, b) = spans.row(y);
            if a >= b {
                (0.0, 0)
            } else if spans.gaps(y) {
                // from a's block on; the slice's remainder is the row's when it reaches
                // past the last whole block
                let (a8, full) = (a / SUM_LANES * SUM_LANES, w / SUM_LANES * SUM_LANES);
                let e = if b > full {
                    w
                } else {
                    b.div_ceil(SUM_LANES) * SUM_LANES
                };
                masked_row_sum(&s[a8..e], &m[a8..e])
            } else {
                span_row_sum(s, a, b)
            }
        });
    pooled_mean(sums).0
}

/// The mean of rows' `(sum, count)` inside the mask (0 with no pixel inside), and the count.
fn pooled_mean(rows: impl ParallelIterator<Item = (f64, usize)>) -> (f32, usize) {
    let (sum, n) = rows.reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let mean = if n == 0 { 0.0 } else { (sum / n as f64) as f32 };
    (mean, n)
}

/// `out = 1000 ln(max(v, 1))` ([`LOG_SCALE`]), through the vectorised [`ln_pos`].
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
#[allow(clippy::manual_clamp)] // `clamp` keeps NaN; `max` first makes it 1, as before
fn log_row(row: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(row) {
        // NaN.max(1.0) is 1; infinity is held to the largest finite value
        *o = LOG_SCALE * ln_pos(v.max(1.0).min(f32::MAX));
    }
}

/// Sum (in f64) and count of the row's pixels inside the mask, in 8 lanes so the loop
/// vectorises: each pixel is masked as an f32 (a bitwise and), then widened and added.
/// Masking the widened f64 lanes instead, in 32 lanes, spilled the sums to the stack and
/// was 2.1 times slower. Integer-valued data (stored values) sum exactly in f64, in any
/// order.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn masked_row_sum(row: &[f32], mask: &[u8]) -> (f64, usize) {
    const L: usize = SUM_LANES;
    let mut acc = [0f64; L];
    let mut cnt = [0u32; L];
    let (rc, mc) = (row.chunks_exact(L), mask.chunks_exact(L));
    let (rt, mt) = (rc.remainder(), mc.remainder());
    for (r, m) in rc.zip(mc) {
        let r: &[f32; L] = r.try_into().expect("8 values");
        let m: &[u8; L] = m.try_into().expect("8 mask bytes");
        let mut v = [0f32; L];
        for i in 0..L {
            let keep = 0u32.wrapping_sub(u32::from(m[i] != 0));
            v[i] = f32::from_bits(r[i].to_bits() & keep);
            cnt[i] += keep & 1;
        }
        for (a, &v) in acc.iter_mut().zip(&v) {
            *a += f64::from(v);
        }
    }
    let mut sum: f64 = acc.iter().sum();
    let mut n: usize = cnt.iter().map(|&c| c as usize).sum();
    for (&v, &m) in rt.iter().zip(mt) {
        if m != 0 {
            sum += f64::from(v);
            n += 1;
        }
    }
    (sum, n)
}

/// The lanes of [`masked_row_sum`] (and [`span_row_sum`]).
const SUM_LANES: usize = 8;

/// [`masked_row_sum`] of a whole row whose field pixels are exactly `a..b`, without its
/// mask: each pixel added to the lane it takes there, in the same order (the partial
/// blocks at the span's ends a pixel at a time, the whole blocks between as vectors), then
/// the remainder past the last whole block. The same sum and count, bit for bit (the
/// pixels left out would add only zeros).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn span_row_sum(row: &[f32], a: usize, b: usize) -> (f64, usize) {
    const L: usize = SUM_LANES;
    let full = row.len() / L * L;
    let end = b.min(full);
    let mut acc = [0f64; L];
    if a < end {
        let head_end = a.next_multiple_of(L).min(end);
        let body_end = (end / L * L).max(head_end);
        for x in a..head_end {
            acc[x % L] += f64::from(row[x]);
        }
        for r in row[head_end..body_end].chunks_exact(L) {
            for (a, &v) in acc.iter_mut().zip(r) {
                *a += f64::from(v);
            }
        }
        for x in body_end..end {
            acc[x % L] += f64::from(row[x]);
        }
    }
    let mut sum: f64 = acc.iter().sum();
    for &v in &row[full.max(a)..b.max(full)] {
        sum += f64::from(v);
    }
    (sum, b - a)
}

/// Every pixel of the row outside the mask set to `value`. The row goes in runs of 64
/// pixels, and a run whose mask is all inside (the field's interior: most of the frame)
/// is only checked, not rewritten; the others take a select, which vectorises.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn fill_outside(row: &mut [f32], mask: &[u8], value: f32) {
    const RUN: usize = 64;
    for (r, m) in row.chunks_mut(RUN).zip(mask.chunks(RUN)) {
        // the smallest mask byte of the run: a min reduction, no early exit, so it vectorises
        if m.iter().fold(u8::MAX, |a, &b| a.min(b)) != 0 {
            continue;
        }
        for (v, &m) in r.iter_mut().zip(m) {
            *v = if m == 0 { value } else { *v };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_pixels_take_the_inside_mean() {
        let src = Frame::from_vec(4, 1, vec![10.0, 20.0, 30.0, 9999.0]).unwrap();
        let mask = Frame::from_vec(4, 1, vec![1, 1, 1, 0]).unwrap();
        let mut dst = Frame::new(0, 0);
        assert_eq!(normalize(&src, &mask, Intensity::Log, &mut dst), 20.0);
        assert_eq!(dst.data(), &[10.0, 20.0, 30.0, 20.0]);
        normalize(&src, &mask, Intensity::Linear, &mut dst);
        assert!((dst.get(0, 0) - 1000.0 * 10f32.ln()).abs() < 1e-3);
    }

    #[test]
    fn matches_a_direct_computation_on_a_collimated_frame() {
        // small: every 64-pixel run of a row crosses the field's edge; large: most runs lie
        // inside and are skipped by the fill
        for (w, h, r) in [(61, 47, 20), (300, 210, 100)] {
            let src = crate::gaussian::tests::random_frame(w, h, 5).map(|v| v + 1.0);
            let (cx, cy) = (w as i32 / 2, h as i32 / 2);
            let mask = Frame::from_fn(w, h, |x, y| {
                u8::from((x as i32 - cx).pow(2) + (y as i32 - cy).pow(2) < r * r)
            });
            check_collimated(&src, &mask);
        }
    }

    /// The mean from the field's spans has [`inside_mean`]'s bits: round fields whose
    /// spans start and end anywhere in a block, rows with gaps (a hole, a notch), rows
    /// with none inside, widths with a remainder past the last block, no field at all,
    /// and a mask of another size.
    #[test]
    fn inside_mean_from_spans_has_the_same_bits() {
        for (w, h) in [(61, 47), (300, 210), (8, 5), (3, 4), (1024, 40)] {
            let src = crate::gaussian::tests::random_frame(w, h, (w * h) as u64);
            let (cx, cy) = (w as i64 / 2 + 1, h as i64 / 2);
            let r = (w.min(h) as i64 * 2) / 5 + 1;
            let round = Frame::from_fn(w, h, |x, y| {
                let d = (x as i64 - cx).pow(2) + (y as i64 - cy).pow(2);
                u8::from(d < r * r)
            });
            let holed = Frame::from_fn(w, h, |x, y| {
                let d = (x as i64 - cx).pow(2) + (y as i64 - cy).pow(2);
                u8::from(d < r * r && d > 4 && !(y % 3 == 0 && x > w / 2 && x < w / 2 + 5))
            });
            let right = Frame::from_fn(w, h, |x, _| u8::from(x >= w - w / 3));
            let none = Frame::filled(w, h, 0u8);
            let other = Frame::filled(w + 1, h, 1u8);
            for mask in [round, holed, right, none, Frame::filled(w, h, 1u8), other] {
                let want = inside_mean(&src, &mask);
                let mut spans = FieldSpans::default();
                for _ in 0..2 {
                    let got = inside_mean_in(&src, &mask, &mut spans);
                    assert_eq!(got.to_bits(), want.to_bits(), "{w}x{h}: {got} vs {want}");
                }
            }
        }
    }

    fn check_collimated(src: &Frame<f32>, mask: &Frame<u8>) {
        for intensity in [Intensity::Log, Intensity::Linear] {
            let t = |v: f32| match intensity {
                Intensity::Log => f64::from(v),
                Intensity::Linear => f64::from(LOG_SCALE) * f64::from(v.max(1.0)).ln(),
            };
            let inside: Vec<f64> = src
                .data()
                .iter()
                .zip(mask.data())
                .filter(|(_, m)| **m != 0)
                .map(|(v, _)| t(*v))
                .collect();
            let mean = inside.iter().sum::<f64>() / inside.len() as f64;
            let mut dst = Frame::new(0, 0);
            let got = normalize(src, mask, intensity, &mut dst);
            assert!(
                (f64::from(got) - mean).abs() < 1e-3 * mean.abs(),
                "{got} vs {mean}"
            );
            for ((o, v), m) in dst.data().iter().zip(src.data()).zip(mask.data()) {
                let want = if *m != 0 { t(*v) } else { f64::from(got) };
                assert!((f64::from(*o) - want).abs() < 1e-3 * want.abs().max(1.0));
            }
        }
    }
}
