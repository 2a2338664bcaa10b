//! Order statistics of samples: the two tail ranks a display window or a dynamic range is
//! made of.

/// `x`'s place in [`f32::total_cmp`]'s order as an `i32` (the same transform): keys compare
/// as the values do, and equal keys are equal bits.
#[inline(always)]
fn key(x: f32) -> i32 {
    let b = x.to_bits() as i32;
    b ^ ((((b >> 31) as u32) >> 1) as i32)
}

/// The `lo`-th and the `hi`-th smallest of `v` (0-based ranks below `v.len()`; it panics
/// otherwise, as a selection does) in [`f32::total_cmp`]'s order: the bits two
/// `select_nth_unstable_by(.., f32::total_cmp)` calls return. `v` is reordered.
///
/// Ranks in the tails (the 1st and 99th percentiles of 40 000 samples, say) are found
/// from a pilot: every 16th value is selected at the two ranks' places in it, each moved
/// towards the middle by a margin, and those two values split `v` in one pass into the
/// values at or below the first, the middle, and those at or above the second; each rank
/// is then selected in its small tail. Should a tail miss its rank (a pilot far off), or
/// the ranks lie nearer the middle, be equal or reversed, or `v` hold under 1024 values,
/// the whole slice is selected, twice, as before.
pub fn tail_ranks(v: &mut [f32], lo: usize, hi: usize) -> (f32, f32) {
    let n = v.len();
    assert!(hi < n, "rank {hi} of {n} values");
    const STRIDE: usize = 16;
    let m = n / STRIDE;
    if lo < hi && m >= 64 && lo < n / 8 && n - hi <= n / 8 {
        // the pilot to the front; its ranks moved inwards by about three standard
        // deviations, so each tail holds its rank
        for i in 1..m {
            v.swap(i, i * STRIDE);
        }
        let margin = |r: usize| 3 * ((r * m / n) as f64).sqrt() as usize + 4;
        let plo = (lo * m / n + margin(lo)).min(m - 1);
        let phi = (hi * m / n).saturating_sub(margin(n - 1 - hi));
        let pilot = &mut v[..m];
        let t_lo = key(*pilot.select_nth_unstable_by(plo, f32::total_cmp).1);
        let t_hi = key(*pilot.select_nth_unstable_by(phi, f32::total_cmp).1);
        // the low tail is the sorted order's first `below` values and the high one its
        // last `above`: rank lo lies in the first when it holds more than lo values, and
        // rank hi in the second when it holds more than n - 1 - hi
        let (below, above) = split_tails(v, t_lo, t_hi);
        if below > lo && above > n - 1 - hi {
            let a = *v[..below].select_nth_unstable_by(lo, f32::total_cmp).1;
            let top = &mut v[n - above..];
            let b = *top
                .select_nth_unstable_by(hi - (n - above), f32::total_cmp)
                .1;
            return (a, b);
        }
    }
    let a = *v.select_nth_unstable_by(lo, f32::total_cmp).1;
    let b = *v.select_nth_unstable_by(hi, f32::total_cmp).1;
    (a, b)
}

/// Reorders `v` into the values whose keys are at most `t_lo`, then the middle, then the
/// others at least `t_hi`, in one pass; returns the two tails' lengths.
fn split_tails(v: &mut [f32], t_lo: i32, t_hi: i32) -> (usize, usize) {
    // v[..low] at most t_lo, v[high..] at least t_hi, v[low..i] the middle
    let (mut low, mut i, mut high) = (0, 0, v.len());
    while i < high {
        let k = key(v[i]);
        if k <= t_lo {
            v.swap(low, i);
            low += 1;
            i += 1;
        } else if k >= t_hi {
            high -= 1;
            v.swap(i, high);
        } else {
            i += 1;
        }
    }
    (low, v.len() - high)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ranks against a sort, and `v` still a permutation.
    fn check(order: &[f32], sorted: &[f32], lo: usize, hi: usize) {
        let want = (sorted[lo].to_bits(), sorted[hi].to_bits());
        let mut v = order.to_vec();
        let (a, b) = tail_ranks(&mut v, lo, hi);
        let n = v.len();
        assert_eq!((a.to_bits(), b.to_bits()), want, "n {n} ranks {lo} {hi}");
        v.sort_by(f32::total_cmp);
        let bits = |s: &[f32]| s.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&v), bits(sorted), "a permutation");
    }

    /// Both paths give the two selections' bits: values with ties, signed zeros, NaNs of
    /// both signs and infinities, in sorted, reversed and scrambled order, at tail ranks and
    /// at middle ones; and pilots that miss a tail's rank (the pilot's values all far below
    /// the rest, or all equal) fall back to the selections.
    #[test]
    fn tail_ranks_are_the_selections() {
        let n = 4096;
        let low_pilot: Vec<f32> = (0..n)
            .map(|i| match i % 16 {
                0 => -1000.0 - i as f32,
                _ => (i * 7919 % 1000) as f32,
            })
            .collect();
        let flat_pilot: Vec<f32> = (0..n)
            .map(|i| if i % 16 == 0 { 5.0 } else { (i % 613) as f32 })
            .collect();
        for order in [low_pilot, flat_pilot] {
            let mut sorted = order.clone();
            sorted.sort_by(f32::total_cmp);
            check(&order, &sorted, n / 100, n * 99 / 100);
        }
        let specials = [
            0.0,
            -0.0,
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        for n in [2usize, 3, 17, 100, 1000, 4001] {
            let base: Vec<f32> = (0..n)
                .map(|i| {
                    let h = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
                    if h.is_multiple_of(37) {
                        specials[(h % 6) as usize]
                    } else {
                        (h % 301) as f32 - 150.0
                    }
                })
                .collect();
            let mut sorted = base.clone();
            sorted.sort_by(f32::total_cmp);
            let mut reversed = sorted.clone();
            reversed.reverse();
            for order in [&base, &sorted, &reversed] {
                let ranks = [(0, n - 1), (n / 100, n * 99 / 100), (n / 3, n / 2), (1, 1)];
                for (lo, hi) in ranks {
                    check(order, &sorted, lo, hi);
                }
            }
        }
    }
}
