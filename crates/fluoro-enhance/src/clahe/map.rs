//! CLAHE's second pass: every pixel mapped through the four surrounding tile mappings and
//! blended bilinearly.
//!
//! The mappings are 16-bit steps of the value range, and the four a pixel blends (left
//! and right tile, in the tile rows above and below) are packed in one 64-bit entry of
//! its pair of tile rows' table, so a pixel needs one load: with AVX-512 a block of 16
//! pixels takes two 8-lane 64-bit gathers; with AVX2 a block of 8 takes eight scalar
//! 64-bit loads (on AMD Zen 3, CLAHE took 5-20% longer with two 4-lane gathers). These
//! loads are this pass's cost; four 8-lane gathers of f32 pairs (one per tile row) made
//! it a third slower.

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
/// spans cover the row in order. Each span goes through the AVX-512 or AVX2 blocks
/// ([`gather`]) of 16 or 8 pixels where the CPU has them, the scalar loop the
/// rest; all give the same bits.
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

/// AVX-512 and AVX2 blocks for the lookups: each pixel's four mappings are one 64-bit
/// element.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod gather {
    use super::TileRowLuts;
    use std::arch::x86_64::*;

    /// Which vector path [`map_span`] takes.
    #[derive(Clone, Copy, PartialEq, Debug)]
    pub enum Path {
        /// 16-pixel blocks, two 8-lane gathers each.
        Avx512,
        /// 8-pixel blocks, eight scalar 64-bit loads each.
        Avx2,
    }

    /// The best path this CPU has (checked once, cached by std), or none.
    pub fn best() -> Option<Path> {
        if is_x86_feature_detected!("avx512f") {
            Some(Path::Avx512)
        } else if is_x86_feature_detected!("avx2") {
            Some(Path::Avx2)
        } else {
            None
        }
    }

    /// Maps the whole blocks of the span with the best path this CPU has; returns how
    /// many pixels it did (0 without AVX2).
    pub fn map_span(
        m: &TileRowLuts,
        tile: usize,
        row: &[f32],
        col_weight: &[f32],
        out: &mut [f32],
    ) -> usize {
        match best() {
            Some(p) => map_span_with(p, m, tile, row, col_weight, out),
            None => 0,
        }
    }

    /// Maps the whole blocks of the span with path `p`, which the caller found in
    /// [`best`] or below it (AVX-512F implies AVX2 on every CPU that has it); returns
    /// how many pixels it did.
    pub fn map_span_with(
        p: Path,
        m: &TileRowLuts,
        tile: usize,
        row: &[f32],
        col_weight: &[f32],
        out: &mut [f32],
    ) -> usize {
        let len = row.len().min(col_weight.len()).min(out.len());
        let bins = m.bins();
        let has = match p {
            Path::Avx512 => is_x86_feature_detected!("avx512f"),
            Path::Avx2 => is_x86_feature_detected!("avx2"),
        };
        if !has
            || bins == 0
            || bins > 1 << 24
            || tile >= m.tiles
            || m.pairs.len() != bins * m.tiles
            || m.pairs.len() >= 1 << 31
        {
            return 0;
        }
        match p {
            Path::Avx512 => {
                let n = len / 16 * 16;
                // SAFETY: AVX-512F was detected above; see `blocks16` for the memory.
                unsafe { blocks16(m, tile, &row[..n], &col_weight[..n], &mut out[..n]) };
                n
            }
            Path::Avx2 => {
                let n = len / 8 * 8;
                // SAFETY: AVX2 was detected above; see `blocks8` for the memory.
                unsafe { blocks8(m, tile, &row[..n], &col_weight[..n], &mut out[..n]) };
                n
            }
        }
    }

    /// # Safety
    /// The CPU must have AVX-512F. `pairs` holds `bins * tiles` (< 2^31) entries and
    /// `tile < tiles`; the bin is clamped to `[0, bins - 1]` in float before truncation
    /// (exact below 2^24; NaN -> 0 as in the scalar loop: `max` returns its second operand
    /// for NaN), so every 8-byte load at `bin * tiles + tile` lies inside the slice.
    /// Slices have a multiple of 16 elements.
    #[target_feature(enable = "avx512f")]
    unsafe fn blocks16(
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

    /// The AVX2 form of [`blocks16`]: 8 pixels a block, their entries fetched by scalar
    /// loads (faster than `vpgatherqq` on AMD Zen 3) into two registers, pixels 0 1 | 4 5
    /// and 2 3 | 6 7, so that their halves shuffle back into pixel order within each
    /// 128-bit lane.
    ///
    /// # Safety
    /// The CPU must have AVX2; the memory as in [`blocks16`]. Slices have a multiple of 8
    /// elements.
    #[target_feature(enable = "avx2")]
    unsafe fn blocks8(
        m: &TileRowLuts,
        tile: usize,
        row: &[f32],
        col_weight: &[f32],
        out: &mut [f32],
    ) {
        let maxb = _mm256_set1_ps((m.bins() - 1) as f32);
        let (vlo, vscale, vya, vstep, zero) = (
            _mm256_set1_ps(m.lo),
            _mm256_set1_ps(m.scale),
            _mm256_set1_ps(m.ya),
            _mm256_set1_ps(m.step),
            _mm256_setzero_ps(),
        );
        let (vtiles, vtile) = (
            _mm256_set1_epi32(m.tiles as i32),
            _mm256_set1_epi32(tile as i32),
        );
        let low16 = _mm256_set1_epi32(0xffff);
        let base = m.pairs.as_ptr();
        for ((v, xa), o) in row
            .chunks_exact(8)
            .zip(col_weight.chunks_exact(8))
            .zip(out.chunks_exact_mut(8))
        {
            // SAFETY: 8-element chunks; loads within the slices (see above).
            unsafe {
                let v = _mm256_loadu_ps(v.as_ptr());
                let xa = _mm256_loadu_ps(xa.as_ptr());
                let f = _mm256_mul_ps(_mm256_sub_ps(v, vlo), vscale);
                let f = _mm256_min_ps(_mm256_max_ps(f, zero), maxb);
                let b = _mm256_cvttps_epi32(f);
                let idx = _mm256_add_epi32(_mm256_mullo_epi32(b, vtiles), vtile);
                let mut at = [0u32; 8];
                _mm256_storeu_si256(at.as_mut_ptr().cast(), idx);
                let e = |k: usize| base.add(at[k] as usize).read() as i64;
                // a: pixels 0 1 | 4 5, c: pixels 2 3 | 6 7 (64-bit entries)
                let a = _mm256_set_epi64x(e(5), e(4), e(1), e(0));
                let c = _mm256_set_epi64x(e(7), e(6), e(3), e(2));
                let (a, c) = (_mm256_castsi256_ps(a), _mm256_castsi256_ps(c));
                // low / high 32 bits of each entry, pixels 0..8 in order
                let top = _mm256_castps_si256(_mm256_shuffle_ps::<0b10_00_10_00>(a, c));
                let bottom = _mm256_castps_si256(_mm256_shuffle_ps::<0b11_01_11_01>(a, c));
                let left = |x: __m256i| _mm256_cvtepi32_ps(_mm256_and_si256(x, low16));
                let right = |x: __m256i| _mm256_cvtepi32_ps(_mm256_srli_epi32::<16>(x));
                let (tl, tr) = (left(top), right(top));
                let (bl, br) = (left(bottom), right(bottom));
                let t = _mm256_add_ps(tl, _mm256_mul_ps(xa, _mm256_sub_ps(tr, tl)));
                let u = _mm256_add_ps(bl, _mm256_mul_ps(xa, _mm256_sub_ps(br, bl)));
                let r = _mm256_add_ps(t, _mm256_mul_ps(vya, _mm256_sub_ps(u, t)));
                let r = _mm256_add_ps(vlo, _mm256_mul_ps(vstep, r));
                _mm256_storeu_ps(o.as_mut_ptr(), r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian::tests::random_frame;

    /// Each gathering path this CPU has (AVX-512, AVX2) gives the scalar loop's bits,
    /// out-of-range and NaN inputs, every tile and all 16 bits of each packed step
    /// included; so does `map_row`, which picks the best. Without AVX2 this checks the
    /// scalar path against itself.
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
            let mut want = vec![0f32; n];
            map_span_scalar(&m, tile, &row, &weights, &mut want);
            let mut outs = vec![("map_row", vec![0f32; n])];
            map_row(&m, &row, &[span], &weights, &mut outs[0].1);
            #[cfg(target_arch = "x86_64")]
            for (name, p) in [
                ("avx512", gather::Path::Avx512),
                ("avx2", gather::Path::Avx2),
            ] {
                if gather::best().is_some_and(|b| b == p || b == gather::Path::Avx512) {
                    let mut o = vec![f32::NAN; n];
                    let done = gather::map_span_with(p, &m, tile, &row, &weights, &mut o);
                    assert!(done >= n - 15, "{name} did {done} of {n}");
                    map_span_scalar(&m, tile, &row[done..], &weights[done..], &mut o[done..]);
                    outs.push((name, o));
                }
            }
            for (name, got) in &outs {
                for (i, (x, y)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        x.to_bits(),
                        y.to_bits(),
                        "{name} tile {tile} pixel {i}: {x} vs {y}"
                    );
                }
            }
        }
    }
}
