//! CLAHE's second pass: every pixel mapped through the four surrounding tile mappings and
//! blended bilinearly.
//!
//! The mappings are 16-bit steps of the value range, and the four a pixel blends (left
//! and right tile, in the tile rows above and below) are packed in one 64-bit entry of
//! its pair of tile rows' table, so a pixel needs one load: with AVX-512 a block of 16
//! pixels takes two 8-lane 64-bit gathers. Gathers are this pass's cost; four 8-lane
//! gathers of f32 pairs (one per tile row) made it a third slower.

/// What a row maps through: the table of the tile rows above and below it (`[bin][tile]`,
/// `tiles` entries per bin, each packing top-left, top-right, bottom-left and bottom-right
/// from the low bits), the vertical weight, the value-to-bin transform `(v - lo) * scale`
/// and the size of a mapping step.
pub struct TileRowLuts<'a> {
    /// The packed entries.
    pub pairs: &'a [u64],
    /// Tiles across (entries per bin).
    pub tiles: usize,
    /// Weight of the bottom tile row.
    pub ya: f32,
    /// Value of bin 0's lower edge, and of mapping step 0.
    pub lo: f32,
    /// Bins per value unit.
    pub scale: f32,
    /// Value units per mapping step.
    pub step: f32,
}

impl TileRowLuts<'_> {
    fn bins(&self) -> usize {
        self.pairs.len() / self.tiles.max(1)
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
/// `tile + 1`): the blend in steps, then scaled to values.
fn map_span_scalar(m: &TileRowLuts, tile: usize, row: &[f32], col_weight: &[f32], out: &mut [f32]) {
    let bins = m.bins();
    let maxb = (bins - 1) as f32;
    let (lo, scale, ya, step) = (m.lo, m.scale, m.ya, m.step);
    for ((o, &v), &xa) in out.iter_mut().zip(row).zip(col_weight) {
        let b = (((v - lo) * scale).max(0.0).min(maxb) as usize).min(bins - 1);
        let e = m.pairs[b * m.tiles + tile];
        let q = |k: u32| ((e >> (16 * k)) & 0xffff) as f32;
        let (tl, tr, bl, br) = (q(0), q(1), q(2), q(3));
        let t = tl + xa * (tr - tl);
        let u = bl + xa * (br - bl);
        *o = lo + step * (t + ya * (u - t));
    }
}

/// AVX-512 gathers for the lookups: each pixel's four mappings are one 64-bit element.
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
            || tile >= m.tiles
            || m.pairs.len() != bins * m.tiles
            || m.pairs.len() >= 1 << 31
        {
            return 0;
        }
        // SAFETY: AVX-512F was detected above; see `blocks` for the memory.
        unsafe { blocks(m, tile, &row[..n], &col_weight[..n], &mut out[..n]) };
        n
    }

    /// # Safety
    /// The CPU must have AVX-512F. `pairs` holds `bins * tiles` (< 2^31) entries and
    /// `tile < tiles`; the bin is clamped to `[0, bins - 1]` in float before truncation
    /// (exact below 2^24; NaN -> 0 as in the scalar loop: `max` returns its second operand
    /// for NaN), so every 8-byte load at `bin * tiles + tile` lies inside the slice.
    /// Slices have a multiple of 16 elements.
    #[target_feature(enable = "avx512f")]
    unsafe fn blocks(
        m: &TileRowLuts,
        tile: usize,
        row: &[f32],
        col_weight: &[f32],
        out: &mut [f32],
    ) {
        let maxb = _mm512_set1_ps((m.bins() - 1) as f32);
        let (vlo, vscale, vya, vstep, zero) = (
            _mm512_set1_ps(m.lo),
            _mm512_set1_ps(m.scale),
            _mm512_set1_ps(m.ya),
            _mm512_set1_ps(m.step),
            _mm512_setzero_ps(),
        );
        let (vtiles, vtile) = (
            _mm512_set1_epi32(m.tiles as i32),
            _mm512_set1_epi32(tile as i32),
        );
        let low16 = _mm512_set1_epi32(0xffff);
        // even / odd 32-bit halves of two registers of 64-bit entries: the top / bottom
        // tile row's (left, right) steps
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let base = m.pairs.as_ptr();
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
                let idx = _mm512_add_epi32(_mm512_mullo_epi32(b, vtiles), vtile);
                let a = _mm512_i32gather_epi64::<8>(_mm512_castsi512_si256(idx), base.cast());
                let c =
                    _mm512_i32gather_epi64::<8>(_mm512_extracti64x4_epi64::<1>(idx), base.cast());
                let top = _mm512_permutex2var_epi32(a, even, c);
                let bottom = _mm512_permutex2var_epi32(a, odd, c);
                let left = |x: __m512i| _mm512_cvtepi32_ps(_mm512_and_si512(x, low16));
                let right = |x: __m512i| _mm512_cvtepi32_ps(_mm512_srli_epi32::<16>(x));
                let (tl, tr) = (left(top), right(top));
                let (bl, br) = (left(bottom), right(bottom));
                let t = _mm512_add_ps(tl, _mm512_mul_ps(xa, _mm512_sub_ps(tr, tl)));
                let u = _mm512_add_ps(bl, _mm512_mul_ps(xa, _mm512_sub_ps(br, bl)));
                let r = _mm512_add_ps(t, _mm512_mul_ps(vya, _mm512_sub_ps(u, t)));
                let r = _mm512_add_ps(vlo, _mm512_mul_ps(vstep, r));
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
    /// every tile and all 16 bits of each packed step included (it runs only where the CPU
    /// has AVX-512F; elsewhere this checks the scalar path against itself).
    #[test]
    fn mapping_paths_agree() {
        let (bins, tiles) = (4096, 5);
        // scrambled entries: every bit of every field is set somewhere
        let pairs: Vec<u64> = (0..bins * tiles as u64)
            .map(|i| (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let m = TileRowLuts {
            pairs: &pairs,
            tiles: tiles as usize,
            ya: 0.3,
            lo: 10.0,
            scale: 1.1,
            step: 4095.0 / 65535.0,
        };
        let n = 16 * 9 + 5;
        let mut row: Vec<f32> = random_frame(n, 1, 9).data().to_vec();
        row[3] = f32::NAN;
        row[20] = -50.0;
        row[40] = 1e9;
        let weights: Vec<f32> = (0..n).map(|i| i as f32 / n as f32).collect();
        for tile in 0..tiles as usize {
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
