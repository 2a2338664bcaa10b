//! One grid row of the anatomy features, computed a feature at a time over the row's
//! cells (loops the compiler vectorises) into per-feature planes, then interleaved into
//! the cell-major layout the perceptron reads. Each value is the same expression, in the
//! same order, as the per-cell definition (`tests::reference_cell`), so the bits are too.

use super::{N_FEATURES, SIGMAS};
use fluoro_core::Frame;

/// What a row's features are measured from besides the smoothed grids, fixed for the
/// frame.
#[derive(Clone, Copy, Debug)]
pub(super) struct RowInputs {
    /// The median of the visible cells (the intensity features' zero).
    pub median: f32,
    /// One over the frame's dynamic range.
    pub inv_range: f32,
    /// Full-resolution pixels per cell side.
    pub k: usize,
    /// Millimetres per pixel.
    pub mm: f64,
    /// The VILL's first point, its unit normal towards ventral, and its direction over its
    /// squared length.
    pub vill: Option<([f64; 2], [f64; 2], [f64; 2])>,
    /// The instrument's tip and unit axis.
    pub tool: Option<([f64; 2], [f64; 2])>,
}

fn clamp(v: f64, lim: f64) -> f32 {
    v.clamp(-lim, lim) as f32
}

/// The gradient magnitude and the two Hessian eigenvalues (larger first) of one cell from
/// its 3x3 neighbourhood `[above, centre row, below]` x `[left, centre, right]`, scaled
/// by `s` (the smoothing sigma) and `inv` (one over the range).
#[inline(always)]
fn hessian_cell(n: [[f32; 3]; 3], s: f32, inv: f32) -> [f32; 3] {
    let c = n[1][1];
    let gxv = (n[1][2] - n[1][0]) / 2.0;
    let gyv = (n[2][1] - n[0][1]) / 2.0;
    let grad = (gxv * gxv + gyv * gyv).sqrt() * s * inv;
    let lxx = n[1][2] - 2.0 * c + n[1][0];
    let lyy = n[2][1] - 2.0 * c + n[0][1];
    let lxy = (n[2][2] - n[2][0] - n[0][2] + n[0][0]) / 4.0;
    let mean = (lxx + lyy) / 2.0;
    let half_diff = (lxx - lyy) / 2.0;
    let disc = (half_diff * half_diff + lxy * lxy).sqrt();
    let s2 = s * s * inv;
    [grad, (mean + disc) * s2, (mean - disc) * s2]
}

/// `r`'s runs of `n` values starting at 0, 1 and 2: each interior cell's left, centre
/// and right neighbour.
fn shifted(r: &[f32], n: usize) -> [&[f32]; 3] {
    [&r[..n], &r[1..n + 1], &r[2..n + 2]]
}

/// The features of grid row `gy` (of `gh`) of the grid smoothed at each of [`SIGMAS`] (`b`)
/// into `out` (`N_FEATURES` per cell, cell after
/// cell, every one written; the features of a landmark not known are 0); `planes` is
/// scratch (`N_FEATURES` values per cell, feature after feature).
pub(super) fn feature_row(
    inp: &RowInputs,
    b: &[Frame<f32>; 5],
    gy: usize,
    gh: usize,
    planes: &mut Vec<f32>,
    out: &mut [f32],
) {
    let gw = b[0].width();
    if gw == 0 {
        return;
    }
    let (med, inv) = (inp.median, inp.inv_range);
    // every plane read below is written first (a landmark's only when it is known)
    planes.resize(N_FEATURES * gw, 0.0);
    {
        let mut chunks = planes.chunks_exact_mut(gw);
        let p: [&mut [f32]; N_FEATURES] =
            std::array::from_fn(|_| chunks.next().expect("N_FEATURES planes"));
        let [
            i0,
            i1,
            i2,
            i3,
            i4,
            d0,
            d1,
            d2,
            d3,
            g1,
            g2,
            e1a,
            e1b,
            e2a,
            e2b,
            vill_dist,
            vill_along,
            vill_on,
            tool_along,
            tool_across,
            tool_on,
        ] = p;
        // intensity at each scale, and the differences of neighbouring scales
        for (o, bi) in [i0, i1, i2, i3, i4].into_iter().zip(b) {
            for (o, &v) in o.iter_mut().zip(bi.row(gy)) {
                *o = (v - med) * inv;
            }
        }
        for (o, pair) in [d0, d1, d2, d3].into_iter().zip(b.windows(2)) {
            for ((o, &u), &v) in o.iter_mut().zip(pair[0].row(gy)).zip(pair[1].row(gy)) {
                *o = (u - v) * inv;
            }
        }
        // gradient and Hessian at SIGMAS[1] and [2], neighbours clamped at the grid's edges
        let (ym, yp) = (gy.saturating_sub(1), (gy + 1).min(gh - 1));
        for (j, [grad, ea, eb]) in [(1, [g1, e1a, e1b]), (2, [g2, e2a, e2b])] {
            let (s, g) = (SIGMAS[j], &b[j]);
            let rows = [g.row(ym), g.row(gy), g.row(yp)];
            let mut edge = |x: usize| {
                let cols = [x.saturating_sub(1), x, (x + 1).min(gw - 1)];
                let v = hessian_cell(rows.map(|r| cols.map(|c| r[c])), s, inv);
                (grad[x], ea[x], eb[x]) = (v[0], v[1], v[2]);
            };
            edge(0);
            edge(gw - 1);
            if gw >= 3 {
                // the interior: every neighbour a shifted slice, so the loop vectorises
                let n = gw - 2;
                let [above, centre, below] = rows.map(|r| shifted(r, n));
                let (grad, ea, eb) = (&mut grad[1..=n], &mut ea[1..=n], &mut eb[1..=n]);
                for i in 0..n {
                    let at = |r: [&[f32]; 3]| [r[0][i], r[1][i], r[2][i]];
                    let v = hessian_cell([at(above), at(centre), at(below)], s, inv);
                    (grad[i], ea[i], eb[i]) = (v[0], v[1], v[2]);
                }
            }
        }
        // the landmarks, from each cell's centre in full-resolution pixels
        let k = inp.k as f64;
        let centre = |c: usize| (c as f64 + 0.5) * k - 0.5;
        let py = centre(gy);
        if let Some((a, n, along)) = inp.vill {
            let cells = vill_dist.iter_mut().zip(vill_along.iter_mut()).zip(vill_on);
            for (gx, ((dist, al), on)) in cells.enumerate() {
                let q = [centre(gx) - a[0], py - a[1]];
                *dist = clamp((q[0] * n[0] + q[1] * n[1]) * inp.mm / 20.0, 3.0);
                *al = clamp((q[0] * along[0] + q[1] * along[1]) / 4.0, 1.0);
                *on = 1.0;
            }
        }
        if let Some((tip, dir)) = inp.tool {
            let cells = tool_along
                .iter_mut()
                .zip(tool_across.iter_mut())
                .zip(tool_on);
            for (gx, ((al, ac), on)) in cells.enumerate() {
                let q = [centre(gx) - tip[0], py - tip[1]];
                *al = clamp((q[0] * dir[0] + q[1] * dir[1]) * inp.mm / 30.0, 3.0);
                *ac = clamp((q[0] * dir[1] - q[1] * dir[0]).abs() * inp.mm / 30.0, 3.0);
                *on = 1.0;
            }
        }
    }
    // feature after feature -> cell after cell, a plane at a time (fixed-size cells: the
    // index check leaves the inner loop); an unknown landmark's features are 0
    let (cells, _) = out.as_chunks_mut::<N_FEATURES>();
    let known = |i: usize| match i {
        0..15 => true,
        15..18 => inp.vill.is_some(),
        _ => inp.tool.is_some(),
    };
    for (i, plane) in planes.chunks_exact(gw).enumerate() {
        if known(i) {
            for (o, &v) in cells.iter_mut().zip(plane) {
                o[i] = v;
            }
        } else {
            for o in cells.iter_mut() {
                o[i] = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The features of cell `(gx, gy)`, one at a time, as written for clarity: the
    /// definition [`feature_row`] must reproduce bit for bit.
    fn reference_cell(
        inp: &RowInputs,
        b: &[Frame<f32>; 5],
        gx: usize,
        gy: usize,
        gh: usize,
    ) -> [f32; N_FEATURES] {
        let gw = b[0].width();
        let (med, inv) = (inp.median, inp.inv_range);
        let mut o = [0f32; N_FEATURES];
        let (xm, xp) = (gx.saturating_sub(1), (gx + 1).min(gw - 1));
        let (ym, yp) = (gy.saturating_sub(1), (gy + 1).min(gh - 1));
        for (i, bi) in b.iter().enumerate() {
            o[i] = (bi.get(gx, gy) - med) * inv;
        }
        for i in 0..4 {
            o[5 + i] = (b[i].get(gx, gy) - b[i + 1].get(gx, gy)) * inv;
        }
        for (j, s) in [(1usize, SIGMAS[1]), (2, SIGMAS[2])] {
            let g = &b[j];
            let c = g.get(gx, gy);
            let gxv = (g.get(xp, gy) - g.get(xm, gy)) / 2.0;
            let gyv = (g.get(gx, yp) - g.get(gx, ym)) / 2.0;
            o[9 + (j - 1)] = (gxv * gxv + gyv * gyv).sqrt() * s * inv;
            let lxx = g.get(xp, gy) - 2.0 * c + g.get(xm, gy);
            let lyy = g.get(gx, yp) - 2.0 * c + g.get(gx, ym);
            let lxy = (g.get(xp, yp) - g.get(xm, yp) - g.get(xp, ym) + g.get(xm, ym)) / 4.0;
            let mean = (lxx + lyy) / 2.0;
            let disc = (((lxx - lyy) / 2.0).powi(2) + lxy * lxy).sqrt();
            let s2 = s * s * inv;
            o[11 + 2 * (j - 1)] = (mean + disc) * s2;
            o[12 + 2 * (j - 1)] = (mean - disc) * s2;
        }
        let k = inp.k as f64;
        let p = [(gx as f64 + 0.5) * k - 0.5, (gy as f64 + 0.5) * k - 0.5];
        if let Some((a, n, along)) = inp.vill {
            let q = [p[0] - a[0], p[1] - a[1]];
            o[15] = clamp((q[0] * n[0] + q[1] * n[1]) * inp.mm / 20.0, 3.0);
            o[16] = clamp((q[0] * along[0] + q[1] * along[1]) / 4.0, 1.0);
            o[17] = 1.0;
        }
        if let Some((tip, dir)) = inp.tool {
            let q = [p[0] - tip[0], p[1] - tip[1]];
            o[18] = clamp((q[0] * dir[0] + q[1] * dir[1]) * inp.mm / 30.0, 3.0);
            o[19] = clamp((q[0] * dir[1] - q[1] * dir[0]).abs() * inp.mm / 30.0, 3.0);
            o[20] = 1.0;
        }
        o
    }

    /// Every cell of every row, on grids 1 to 37 cells wide (the edge cells alone, and
    /// around the vector widths), with both landmarks (some cells beyond the clamps), none
    /// or one, has exactly the reference's bits.
    #[test]
    fn rows_equal_the_per_cell_definition_bit_for_bit() {
        let mut seed = 0x2545_f491_u32;
        let mut noise = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed % 10_000) as f32 / 7.0
        };
        let mut planes = Vec::new();
        for (gw, gh) in [(1, 1), (2, 3), (3, 2), (8, 5), (17, 4), (37, 6)] {
            let blurred: [Frame<f32>; 5] =
                std::array::from_fn(|_| Frame::from_fn(gw, gh, |_, _| noise()));
            // both landmarks, none, each alone: the planes left from the case before, as
            // between frames
            for (vill, tool) in [(true, true), (false, false), (true, false), (false, true)] {
                let inp = RowInputs {
                    median: 700.0,
                    inv_range: 1.0 / 311.0,
                    k: 8,
                    mm: 0.9,
                    vill: vill.then_some(([40.0, 13.5], [0.6, -0.8], [0.02, 0.03])),
                    tool: tool.then_some(([101.0, 20.0], [-0.8, 0.6])),
                };
                let mut out = vec![f32::NAN; gw * N_FEATURES];
                for gy in 0..gh {
                    // the caller's row all NaN: each feature must be written, an unknown
                    // landmark's as 0
                    out.fill(f32::NAN);
                    feature_row(&inp, &blurred, gy, gh, &mut planes, &mut out);
                    for gx in 0..gw {
                        let want = reference_cell(&inp, &blurred, gx, gy, gh);
                        let got = &out[gx * N_FEATURES..(gx + 1) * N_FEATURES];
                        let same = got
                            .iter()
                            .zip(&want)
                            .all(|(g, w)| g.to_bits() == w.to_bits());
                        assert!(
                            same,
                            "{gw}x{gh}, VILL {vill}, tool {tool}, cell {gx},{gy}:\n{got:?}\n{want:?}"
                        );
                    }
                }
            }
        }
    }
}
