//! Contrast-limited adaptive histogram equalisation for 12-16-bit data.
//!
//! Tiles, a clip limit relative to the mean bin height (OpenCV's convention: `clip *
//! tile_pixels / bins`), uniform redistribution of the clipped excess, and bilinear
//! interpolation between the four nearest tile mappings. Pixels outside the shutter mask
//! never enter a histogram.

use crate::fastmath::small_int_bits;
use crate::par::{reused, zeroed};
use fluoro_core::Frame;
use rayon::prelude::*;

mod map;
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

/// Reusable buffers: the tile histograms and mappings, the tables `map::TileRowLuts`
/// reads, and per-column interpolation tables.
#[derive(Debug, Default)]
pub struct ClaheScratch {
    /// Per tile row, `[bin][tile]`: the 16-bit mappings of a tile (low half) and of the
    /// tile right of it (high half; the last tile stands in for the one past it).
    rows: Vec<u32>,
    /// The four mappings a pixel between two tile rows blends, one 64-bit entry per bin
    /// and left tile: `[pair of tile rows][bin][tile]`, the top row's `rows` entry in the
    /// low half, the bottom row's in the high half (see [`map::TileRowLuts`]).
    pairs: Vec<u64>,
    tile_rows: Vec<TileRowScratch>,
    col_spans: Vec<map::Span>,
    col_weight: Vec<f32>,
}

/// The most histogram bins (bin indices are converted exactly through f32 mantissas).
pub const MAX_BINS: usize = 1 << 22;

/// Steps of the value range a mapping is stored in (16 bits: 1/65535 of the range, far
/// below a display grey level, and half the table of f32 entries, so one 64-bit load
/// brings all four mappings a pixel blends).
const STEPS: f32 = 65535.0;

/// An empty range of bins, `(lowest, highest)`: what [`union`] starts from.
const NO_BINS: (u32, u32) = (u32::MAX, 0);

/// The smallest range of bins holding both.
fn union(a: (u32, u32), b: (u32, u32)) -> (u32, u32) {
    (a.0.min(b.0), a.1.max(b.1))
}

/// The bins `lowest..=highest` as indices (empty for [`NO_BINS`]).
fn span((lowest, highest): (u32, u32)) -> std::ops::Range<usize> {
    if lowest > highest {
        0..0
    } else {
        lowest as usize..highest as usize + 1
    }
}

/// One tile row's histograms and buffers (kept across frames).
#[derive(Debug, Default)]
struct TileRowScratch {
    /// The tile row's histograms, `[tile][bin]`.
    hists: Vec<u32>,
    /// The lowest and highest bin of any pixel of the tile row, masked or not.
    bin_range: (u32, u32),
    /// Each tile's bins [`tile_histogram`] wrote (its counts elsewhere are stale).
    taken: Vec<std::ops::Range<usize>>,
    /// Two interleaved count arrays of `bins + 1` (the last: pixels outside the mask).
    counts: Vec<u32>,
    /// Bin index of each pixel of the current tile row.
    idx: Vec<u32>,
    /// Packed prefix sums of [`tile_mapping`].
    prefix: Vec<u64>,
    /// One tile's mapping before it goes into its tile row's entries.
    lut: Vec<u16>,
}

/// Histogram of a tile given as `(values, mask)` row slices into `out` (`bins` long);
/// pixels outside the mask are not counted. Returns the lowest and highest bin of all its
/// pixels, masked or not: only those bins of `out` are written (every count outside them
/// is 0, and left for the caller to clear where it reads). Bin indices are
/// computed a row at a time in a vectorised loop (masked pixels sent to a spare bin, so
/// there is no branch), then counted into two arrays used alternately, so runs of equal
/// bins (flat regions) do not wait on one counter.
///
/// The two arrays (`counts`) are all zero between calls: only the bins the tile's
/// pixels took are merged into `out` and cleared, so a tile whose values span a few
/// hundred of 4096 bins does not pay for all of them three times.
fn tile_histogram<'a>(
    counts: &mut Vec<u32>,
    idx: &mut Vec<u32>,
    rows: impl Iterator<Item = (&'a [f32], &'a [u8])>,
    (lo, scale): (f32, f32),
    out: &mut [u32],
) -> (u32, u32) {
    let bins = out.len();
    let stride = bins + 1;
    if counts.len() != 2 * stride {
        // a new size: start from zeros (the arrays are kept zero from then on)
        zeroed(counts, 2 * stride);
    }
    let (c0, c1) = counts.split_at_mut(stride);
    let mut range = NO_BINS;
    let mut rows = rows.peekable();
    while let Some((row, m)) = rows.next() {
        // a tile's rows are short runs a page apart, which the hardware prefetcher does
        // not follow: the next one is fetched while this one is counted
        if let Some((next, next_mask)) = rows.peek() {
            crate::prefetch::prefetch(next);
            crate::prefetch::prefetch(next_mask);
        }
        let idx = reused(idx, row.len());
        let (a, b) = bin_row(row, m, lo, scale, bins, idx);
        range = union(range, (a, b));
        let mut pairs = idx.chunks_exact(2);
        for p in &mut pairs {
            c0[p[0] as usize] += 1;
            c1[p[1] as usize] += 1;
        }
        for &b in pairs.remainder() {
            c0[b as usize] += 1;
        }
    }
    // every count lies in the taken bins or the spare one
    let taken = span(range);
    let (t0, t1) = (&mut c0[taken.clone()], &mut c1[taken.clone()]);
    for ((o, a), b) in out[taken.clone()].iter_mut().zip(t0).zip(t1) {
        *o = *a + *b;
        (*a, *b) = (0, 0);
    }
    (c0[bins], c1[bins]) = (0, 0);
    range
}

/// The tile's mapping from its counts: every bin clipped at `clip_limit` times the mean
/// bin height (at least 1), the excess spread evenly over all bins, and the cumulative sum
/// scaled to [0, [`STEPS`]] and rounded, i.e. in 16-bit steps of the value range (no
/// pixels: the identity). Only the bins in `range` are written to `lut`: the frame's
/// pixels lie there, and every count outside it is 0, so the sums there are the whole
/// histogram's (the prefix below `range` is 0; `b + 1` is the absolute bin).
///
/// The sums are exact: a bin adds its integer count below the limit and `limit` above
/// it, so the running sum is `kept + limit * clipped + (b + 1) * each`. `kept` and
/// `clipped` are one integer prefix sum (packed in a u64: a one-cycle add per bin, where a
/// float running sum is a 3-4 cycle chain), and the rest is a vectorised f64 loop.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
fn tile_mapping(
    counts: &[u32],
    range: std::ops::Range<usize>,
    clip_limit: f32,
    prefix: &mut Vec<u64>,
    lut: &mut [u16],
) {
    let bins = counts.len();
    let b0 = range.start;
    let (counts, lut) = (&counts[range.clone()], &mut lut[range]);
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    if total == 0 {
        for (i, l) in (b0..).zip(lut.iter_mut()) {
            *l = to_steps(f64::from(STEPS) * (i as f64 + 0.5) / bins as f64);
        }
        return;
    }
    let limit = f64::from((clip_limit * total as f32 / bins as f32).max(1.0));
    // for an integer count, `c > limit` is `c > floor(limit)`
    let over_at = limit.floor() as u64;
    let (mut over_sum, mut over_n) = (0u64, 0u64);
    for &c in counts {
        let c = u64::from(c);
        let over = c > over_at;
        over_sum += if over { c } else { 0 };
        over_n += u64::from(over);
    }
    let each = (over_sum as f64 - limit * over_n as f64) / bins as f64;
    // low 32 bits: counts kept whole so far; high 32 bits: bins clipped so far (a tile
    // has fewer than 2^32 pixels and bins)
    prefix.clear();
    let mut acc = 0u64;
    prefix.extend(counts.iter().map(|&c| {
        let c = u64::from(c);
        acc += if c > over_at { 1 << 32 } else { c };
        acc
    }));
    let k = f64::from(STEPS) / total as f64;
    for (b, (l, &pk)) in (b0..).zip(lut.iter_mut().zip(prefix.iter())) {
        // both below 2^31 (tiles have fewer pixels): i32 conversions, which vectorise
        let (kept, clipped) = (f64::from(pk as u32 as i32), f64::from((pk >> 32) as i32));
        let sum = kept + limit * clipped + (b + 1) as f64 * each;
        *l = to_steps(sum * k);
    }
}

/// `v` (in [0, [`STEPS`]] up to rounding) rounded to the nearest step: added to 2^52,
/// whose mantissa's low bits are then the integer (a float conversion that vectorises).
#[inline(always)]
fn to_steps(v: f64) -> u16 {
    const MAGIC: f64 = 4_503_599_627_370_496.0; // 2^52
    (v.max(0.0).min(f64::from(STEPS)) + MAGIC).to_bits() as u16
}

/// Writes tile `t`'s mapping into its tile row's entries (`[bin][tile]`, `tiles` per
/// bin): the low half of its own, the high half of its left neighbour's, and both
/// halves of its own when it is the last. Tiles go left to right, so each entry's low
/// half is written (clearing the high one) before its high half.
fn spread_tile(lut: &[u16], t: usize, tiles: usize, row: &mut [u32]) {
    for (slot, &v) in row.chunks_exact_mut(tiles).zip(lut) {
        let v = u32::from(v);
        slot[t] = if t + 1 == tiles { v | v << 16 } else { v };
        if t > 0 {
            slot[t - 1] |= v << 16;
        }
    }
}

/// One pair of tile rows' table: the top row's entries in the low halves, the bottom
/// row's in the high halves.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn pack_pair(top: &[u32], bottom: &[u32], table: &mut [u64]) {
    for ((e, &t), &b) in table.iter_mut().zip(top).zip(bottom) {
        *e = u64::from(t) | u64::from(b) << 32;
    }
}

/// `idx[x]` = the bin of `row[x]` in `[0, bins)`, or `bins` outside the mask. Same bins as
/// the mapping's: `(v - lo) * scale` clamped in float, then truncated (NaN -> 0). Returns
/// the lowest and highest bin of the row's pixels, masked or not.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn bin_row(
    row: &[f32],
    mask: &[u8],
    lo: f32,
    scale: f32,
    bins: usize,
    idx: &mut [u32],
) -> (u32, u32) {
    let maxb = (bins - 1) as f32;
    let outside = bins as u32;
    let (mut first, mut last) = (u32::MAX, 0);
    for ((o, &v), &m) in idx.iter_mut().zip(row).zip(mask) {
        // bins are below 2^22 (MAX_BINS): an exact conversion that vectorises
        let b = small_int_bits(((v - lo) * scale).max(0.0).min(maxb).floor());
        (first, last) = (first.min(b), last.max(b));
        *o = if m != 0 { b } else { outside };
    }
    (first, last)
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
    // its histogram and mapping loops handed to the pool once
    crate::par::in_pool(|| clahe_with_means(src, mask, range, p, scratch, dst, None));
}

/// [`clahe`], also writing the 4x4 means of its result into `quarter` (the detail stage's
/// first step, [`crate::detail::DetailScratch::means_from`]) as each group of four rows is
/// mapped, while they are in cache.
pub(crate) fn clahe_with_means(
    src: &Frame<f32>,
    mask: &Frame<u8>,
    range: (f32, f32),
    p: &ClaheParams,
    scratch: &mut ClaheScratch,
    dst: &mut Frame<f32>,
    quarter: Option<&mut Frame<f32>>,
) {
    let (w, h) = src.size();
    dst.reshape(w, h);
    if w == 0 || h == 0 {
        return;
    }
    let (lo, hi) = (range.0, range.1.max(range.0 + 1e-3));
    let bins = p.bins.clamp(2, MAX_BINS);
    let (tx, ty) = (p.tiles_x.clamp(1, w.max(1)), p.tiles_y.clamp(1, h.max(1)));
    let (tw, th) = (w.div_ceil(tx), h.div_ceil(ty));
    let scale = bins as f32 / (hi - lo);
    let row_len = tx * bins;
    scratch.rows.resize(ty * row_len, 0);
    scratch.tile_rows.resize_with(ty, TileRowScratch::default);
    // one work item per tile row: its tiles' histograms, and the bins its pixels take
    scratch
        .tile_rows
        .par_iter_mut()
        .enumerate()
        .for_each(|(by, ts)| {
            let hists = reused(&mut ts.hists, tx * bins);
            ts.bin_range = NO_BINS;
            ts.taken.clear();
            for (bx, out) in hists.chunks_exact_mut(bins).enumerate() {
                // tiles past a narrow frame's right edge are empty
                let x1 = ((bx + 1) * tw).min(w);
                let x0 = (bx * tw).min(x1);
                let (a, b) = tile_histogram(
                    &mut ts.counts,
                    &mut ts.idx,
                    (by * th..((by + 1) * th).min(h))
                        .map(|y| (&src.row(y)[x0..x1], &mask.row(y)[x0..x1])),
                    (lo, scale),
                    out,
                );
                ts.bin_range = union(ts.bin_range, (a, b));
                ts.taken.push(span((a, b)));
            }
        });
    // the mappings are made, spread and packed only for the bins the frame's pixels take
    // (the mapping pass looks up no others): often under half of them
    let used = span(
        scratch
            .tile_rows
            .iter()
            .fold(NO_BINS, |r, t| union(r, t.bin_range)),
    );
    // the same bins in the spread `[bin][tile]` rows and packed pairs
    let used_entries = used.start * tx..used.end * tx;
    let ClaheScratch {
        rows, tile_rows, ..
    } = scratch;
    rows.par_chunks_mut(row_len)
        .zip(tile_rows.par_iter_mut())
        .for_each(|(row, ts)| {
            let lut = reused(&mut ts.lut, bins);
            let tiles = ts.hists[..tx * bins].chunks_exact_mut(bins).zip(&ts.taken);
            for (bx, (counts, taken)) in tiles.enumerate() {
                // the frame's bins this tile's histogram did not write are empty: cleared
                // here, where they are read, rather than all 4096 for every tile
                let (below, above) = (used.start..taken.start, taken.end..used.end);
                match taken.is_empty() {
                    true => counts[used.clone()].fill(0),
                    false => {
                        counts[below].fill(0);
                        counts[above].fill(0);
                    }
                }
                tile_mapping(counts, used.clone(), p.clip_limit, &mut ts.prefix, lut);
                spread_tile(&lut[used.clone()], bx, tx, &mut row[used_entries.clone()]);
            }
        });
    // pair k serves the rows between tile rows k - 1 and k (clamped at both ends)
    scratch.pairs.resize((ty + 1) * row_len, 0);
    let rows = &scratch.rows;
    scratch
        .pairs
        .par_chunks_mut(row_len)
        .enumerate()
        .for_each(|(k, table)| {
            let (top, bottom) = (k.saturating_sub(1).min(ty - 1), k.min(ty - 1));
            let tile_row = |r: usize| &rows[r * row_len..(r + 1) * row_len];
            pack_pair(
                &tile_row(top)[used_entries.clone()],
                &tile_row(bottom)[used_entries.clone()],
                &mut table[used_entries.clone()],
            );
        });
    // the runs of columns with the same left tile, and each column's weight of the right
    // one, computed once per frame (O(width)); at the field's left and right ends both
    // tiles are the same and the weight is 0
    scratch.col_spans.clear();
    scratch.col_weight.clear();
    for x in 0..w {
        let fx = x as f32 / tw as f32 - 0.5;
        let x1 = fx.floor();
        let left = (x1.max(0.0) as usize).min(tx - 1);
        let right = ((x1 + 1.0).max(0.0) as usize).min(tx - 1);
        match scratch.col_spans.last_mut() {
            Some(s) if s.tile == left => s.end = x + 1,
            _ => scratch.col_spans.push(map::Span {
                start: x,
                end: x + 1,
                tile: left,
            }),
        }
        scratch
            .col_weight
            .push(if left == right { 0.0 } else { fx - x1 });
    }
    let (pairs, col_spans, col_weight) = (&scratch.pairs, &scratch.col_spans, &scratch.col_weight);
    let map_row = |y: usize, out: &mut [f32]| {
        let fy = y as f32 / th as f32 - 0.5;
        let y1 = fy.floor();
        let ya = fy - y1;
        let k = ((y1 + 1.0).max(0.0) as usize).min(ty);
        let luts = map::TileRowLuts {
            pairs: &pairs[k * row_len..(k + 1) * row_len],
            tiles: tx,
            ya,
            lo,
            scale,
            step: (hi - lo) / STEPS,
        };
        map::map_row(&luts, src.row(y), col_spans, col_weight, out);
    };
    let Some(quarter) = quarter else {
        dst.data_mut()
            .par_chunks_mut(w)
            .enumerate()
            .for_each(|(y, out)| map_row(y, out));
        return;
    };
    // groups of four rows, each group's 4x4 means made as soon as it is mapped (the last
    // group may have fewer rows)
    quarter.reshape(w.div_ceil(4), h.div_ceil(4));
    dst.data_mut()
        .par_chunks_mut(4 * w)
        .zip(quarter.data_mut().par_chunks_mut(w.div_ceil(4)))
        .enumerate()
        .for_each(|(j, (out, quarter_row))| {
            for (i, row) in out.chunks_mut(w).enumerate() {
                map_row(4 * j + i, row);
            }
            let mut rows = [&[][..]; 4];
            let n = out.len() / w;
            for (slot, row) in rows.iter_mut().zip(out.chunks(w)) {
                *slot = row;
            }
            crate::detail::quarter_row(&rows[..n], quarter_row);
        });
}

#[cfg(test)]
mod tests;
