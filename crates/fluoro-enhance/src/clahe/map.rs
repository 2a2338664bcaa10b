//! CLAHE's second pass: every pixel mapped through the four surrounding tile mappings and
//! blended bilinearly.
//!
//! A tile row's mappings are interleaved by bin (`[bin][tile]`, plus one copy of the last
//! tile), so the two horizontally adjacent values a pixel needs are one 8-byte load: with
//! AVX-512 a block of 16 pixels takes four 8-lane 64-bit gathers instead of four 16-lane
//! 32-bit ones (half the loads).

/// What a row maps through: the tile rows above and below it, laid out `[bin][tile]` with
/// `stride` (tiles + 1) entries per bin, the vertical weight, and the value-to-bin
/// transform `(v - lo) * scale`.
pub struct TileRowLuts<'a> {
    /// The tile row above (or at) the pixel row.
    pub top: &'a [f32],
    /// The tile row below (or at) the pixel row.
    pub bottom: &'a [f32],
    /// Entries per bin: tiles across + 1 (the last tile repeated).
    pub stride: usize,
    /// Weight of `bottom`.
    pub ya: f32,
    /// Value of bin 0's lower edge.
    pub lo: f32,
    /// Bins per value unit.
    pub scale: f32,
}

impl TileRowLuts<'_> {
    fn bins(&self) -> usize {
        self.top.len() / self.stride.max(1)
    }
}

/// A run of columns `start..end` that all blend tile `tile` with `tile + 1` (the same for
/// every row, so found once per frame, not per row).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    /// First column.
    pub start: usize,
    /// One past the last column.
    pub end: usize,
    /// The left tile.
    pub tile: usize,
}

/// Maps one row: pixel `x` of span `s` blends tiles `s.tile` and `s.tile + 1` with weight
/// `col_weight[x]` on the second (0 where the field's edge clamps both to one tile). The
/// spans cover the row in order. Each span goes through the AVX-512 gathers ([`gather`])
/// in 16-pixel blocks where the CPU has them, the scalar loop the rest; both give the
/// same bits.
pub fn map_row(m: &TileRowLuts, row: &[f32], spans: &[Span], col_weight: &[f32], out: &mut [f32]) {
    for s in spans {
        let (x, end) = (s.start, s.end.min(row.len()));
        if x >= end {
            continue;
        }
        let (r, wgt, o) = (&row[x..end], &col_weight[x..end], &mut out[x..end]);
        #[cfg(target_arch = "x86_64")]
        let done = gather::map_span(m, s.tile, r, wgt, o);
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        map_span_scalar(m, s.tile, &r[done..], &wgt[done..], &mut o[done..]);
    }
}

/// The scalar definition of a span's mapping (all pixels between tiles `tile` and
/// `tile + 1`).
fn map_span_scalar(m: &TileRowLuts, tile: usize, row: &[f32], col_weight: &[f32], out: &mut [f32]) {
    let bins = m.bins();
    let maxb = (bins - 1) as f32;
    let (lo, scale, ya, s) = (m.lo, m.scale, m.ya, m.stride);
    for ((o, &v), &xa) in out.iter_mut().zip(row).zip(col_weight) {
        let b = (((v - lo) * scale).max(0.0).min(maxb) as usize).min(bins - 1);
        let i = b * s + tile;
        let (tl, tr, bl, br) = (m.top[i], m.top[i + 1], m.bottom[i], m.bottom[i + 1]);
        let t = tl + xa * (tr - tl);
        let u = bl + xa * (br - bl);
        *o = t + ya * (u - t);
    }
}

/// AVX-512 gathers for the lookups: each pixel's (left, right) pair is one 64-bit element.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod gather {
    use super::TileRowLuts;
    use std::arch::x86_64::*;

    /// Maps the whole 16-pixel blocks of the span where the CPU has AVX-512F (checked
    /// once, cached by std); returns how many pixels it did (0 without AVX-512F).
    pub fn map_span(
        m: &TileRowLuts,
        tile: usize,
        row: &[f32],
        col_weight: &[f32],
        out: &mut [f32],
    ) -> usize {
        let n = row.len().min(col_weight.len()).min(out.len()) / 16 * 16;
        let bins = m.bins();
        if !is_x86_feature_detected!("avx512f")
            || bins == 0
            || bins > 1 << 24
            || m.stride < 2
            || tile + 1 >= m.stride
            || m.top.len() != bins * m.stride
            || m.bottom.len() != m.top.len()
            || m.top.len() >= 1 << 31
        {
            return 0;
        }
        // SAFETY: AVX-512F was detected above; see `blocks` for the memory.
        unsafe { blocks(m, tile, &row[..n], &col_weight[..n], &mut out[..n]) };
        n
    }

    /// # Safety
    /// The CPU must have AVX-512F. `top` and `bottom` hold `bins * stride` (< 2^31)
    /// entries and `tile + 1 < stride`; the bin is clamped to `[0, bins - 1]` in float
    /// before truncation (exact below 2^24; NaN -> 0 as in the scalar loop: `max` returns
    /// its second operand for NaN), so every 8-byte load at `bin * stride + tile` lies
    /// inside its slice. Slices have a multiple of 16 elements.
    #[target_feature(enable = "avx512f")]
    unsafe fn blocks(
        m: &TileRowLuts,
        tile: usize,
        row: &[f32],
        col_weight: &[f32],
        out: &mut [f32],
    ) {
        let maxb = _mm512_set1_ps((m.bins() - 1) as f32);
        let (vlo, vscale, vya, zero) = (
            _mm512_set1_ps(m.lo),
            _mm512_set1_ps(m.scale),
            _mm512_set1_ps(m.ya),
            _mm512_setzero_ps(),
        );
        let (vstride, vtile) = (
            _mm512_set1_epi32(m.stride as i32),
            _mm512_set1_epi32(tile as i32),
        );
        // even / odd elements of two interleaved registers: the left / right tile values
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let (top, bottom) = (m.top.as_ptr(), m.bottom.as_ptr());
        for ((v, xa), o) in row
            .chunks_exact(16)
            .zip(col_weight.chunks_exact(16))
            .zip(out.chunks_exact_mut(16))
        {
            // SAFETY: 16-element chunks; loads within the slices (see above).
            unsafe {
                let v = _mm512_loadu_ps(v.as_ptr());
                let xa = _mm512_loadu_ps(xa.as_ptr());
                let f = _mm512_mul_ps(_mm512_sub_ps(v, vlo), vscale);
                let f = _mm512_min_ps(_mm512_max_ps(f, zero), maxb);
                let b = _mm512_cvttps_epi32(f);
                let idx = _mm512_add_epi32(_mm512_mullo_epi32(b, vstride), vtile);
                let (i0, i1) = (
                    _mm512_castsi512_si256(idx),
                    _mm512_extracti64x4_epi64::<1>(idx),
                );
                let pairs = |base: *const f32| {
                    let a = _mm512_i32gather_epi64::<4>(i0, base.cast());
                    let b = _mm512_i32gather_epi64::<4>(i1, base.cast());
                    let (a, b) = (_mm512_castsi512_ps(a), _mm512_castsi512_ps(b));
                    (
                        _mm512_permutex2var_ps(a, even, b),
                        _mm512_permutex2var_ps(a, odd, b),
                    )
                };
                let (tl, tr) = pairs(top);
                let (bl, br) = pairs(bottom);
                let t = _mm512_add_ps(tl, _mm512_mul_ps(xa, _mm512_sub_ps(tr, tl)));
                let u = _mm512_add_ps(bl, _mm512_mul_ps(xa, _mm512_sub_ps(br, bl)));
                let r = _mm512_add_ps(t, _mm512_mul_ps(vya, _mm512_sub_ps(u, t)));
                _mm512_storeu_ps(o.as_mut_ptr(), r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian::tests::random_frame;

    /// The gathering mapper gives the scalar loop's bits, out-of-range and NaN inputs,
    /// every tile pair and the clamped last tile included (it runs only where the CPU has
    /// AVX-512F; elsewhere this checks the scalar path against itself).
    #[test]
    fn mapping_paths_agree() {
        let (bins, tiles) = (4096, 5);
        let stride = tiles + 1;
        let lut = |seed: f32| -> Vec<f32> {
            (0..bins * stride)
                .map(|i| {
                    ((i / stride) as f32 * (1.0 + (i % stride).min(tiles - 1) as f32 * seed)).sqrt()
                })
                .collect()
        };
        let (top, bottom) = (lut(0.3), lut(0.7));
        let m = TileRowLuts {
            top: &top,
            bottom: &bottom,
            stride,
            ya: 0.3,
            lo: 10.0,
            scale: 1.1,
        };
        let n = 16 * 9 + 5;
        let mut row: Vec<f32> = random_frame(n, 1, 9).data().to_vec();
        row[3] = f32::NAN;
        row[20] = -50.0;
        row[40] = 1e9;
        let weights: Vec<f32> = (0..n).map(|i| i as f32 / n as f32).collect();
        for tile in 0..tiles {
            let span = Span {
                start: 0,
                end: n,
                tile,
            };
            let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
            map_row(&m, &row, &[span], &weights, &mut a);
            map_span_scalar(&m, tile, &row, &weights, &mut b);
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert_eq!(
                    x.to_bits(),
                    y.to_bits(),
                    "tile {tile} pixel {i}: {x} vs {y}"
                );
            }
        }
    }
}
