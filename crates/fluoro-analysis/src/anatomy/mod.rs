//! Anatomy labels (lamina, ligamentum flavum, epidural contrast) from a small per-pixel
//! network on a ~128 px working grid.
//!
//! Each grid cell gets [`N_FEATURES`] rotation-invariant features of the denoised frame
//! (multi-scale smoothed intensity, differences of Gaussians, gradient magnitude, Hessian
//! eigenvalues, all relative to the frame's dynamic range) and of the landmarks (signed
//! distance to the VILL and position along it, position relative to the instrument tip
//! and axis). A two-hidden-layer perceptron, trained on simulated studies by
//! `scripts/train_anatomy.py` from `fluoro train-data` (seeds never used for evaluation),
//! scores the four classes; full-resolution labels take the arg-max of the bilinearly
//! interpolated scores. The weights (21-64-64-4, ~5.8k numbers) are committed in
//! `anatomy_weights.json`.

use fluoro_core::Frame;
use fluoro_enhance::gaussian::{blur, kernel};
use fluoro_enhance::large_blur::box_average;
use fluoro_enhance::par::{par_chunks_with, reused, zeroed};

mod mlp;
mod row;
pub use mlp::{Mlp, embedded_model};

/// Features per grid cell.
pub const N_FEATURES: usize = 21;
/// Classes scored: background, lamina, ligamentum flavum, contrast.
pub const N_CLASSES: usize = 4;
/// Target size of the working grid's short side, cells.
pub const GRID: usize = 128;
const SIGMAS: [f32; 5] = [0.7, 1.5, 3.0, 6.0, 12.0];

/// The landmarks the features are measured from.
#[derive(Clone, Copy, Debug, Default)]
pub struct Landmarks {
    /// The VILL, if found.
    pub vill: Option<[[f64; 2]; 2]>,
    /// Unit vector towards ventral (the instrument's direction), if known.
    pub ventral: Option<[f64; 2]>,
    /// Instrument tip and unit axis direction (rear to tip), if detected.
    pub tool: Option<([f64; 2], [f64; 2])>,
    /// Millimetres per pixel.
    pub mm_per_px: f64,
    /// The frame's dynamic range inside the field.
    pub range: f32,
}

/// One band's buffers of [`AnatomyFeatures::compute_scored`]: the feature planes, a row of
/// features, and the perceptron's two layer buffers.
pub type RowScratch = (Vec<f32>, Vec<f32>, (Vec<f32>, Vec<f32>));

/// Per-band scratch of [`AnatomyFeatures::compute_scored`], kept between frames.
pub type ScoredRowScratch = Vec<RowScratch>;

/// Feature computation with its buffers.
#[derive(Debug, Default)]
pub struct AnatomyFeatures {
    k: usize,
    gw: usize,
    gh: usize,
    small: Frame<f32>,
    grid_mask: Vec<u8>,
    /// The mask's stamp, size and the block size `grid_mask` was made for.
    grid_mask_from: Option<(u64, usize, usize, usize)>,
    blurred: [Frame<f32>; 5],
    tmp: Frame<f32>,
    kernels: Vec<Vec<f32>>,
    median_scratch: Vec<f32>,
    feats: Vec<f32>,
    /// Per-band column sums of a grid row (frame values, field pixels).
    row_sums: Vec<Vec<f32>>,
    row_counts: Vec<Vec<u16>>,
    /// Per-band scratch of the feature rows (a plane per feature).
    planes: Vec<Vec<f32>>,
}

impl AnatomyFeatures {
    /// Grid width, height and the block size (full-resolution pixels per cell side).
    pub fn grid(&self) -> (usize, usize, usize) {
        (self.gw, self.gh, self.k)
    }

    /// The features of the last call, cell-major (`N_FEATURES` per cell, row by row).
    pub fn features(&self) -> &[f32] {
        &self.feats
    }

    /// True when grid cell `(gx, gy)` is mostly inside the field.
    pub fn visible(&self, gx: usize, gy: usize) -> bool {
        self.grid_mask[gy * self.gw + gx] != 0
    }

    /// Sizes the grid for `f` and makes what each row's features are measured from: the
    /// visible cells, the smoothed grids (kept here), the median and the landmarks' frames.
    fn prepare(&mut self, f: &Frame<f32>, mask: &Frame<u8>, lm: &Landmarks) -> row::RowInputs {
        let (w, h) = f.size();
        let k = (w.min(h) as f64 / GRID as f64).round().max(1.0) as usize;
        let (gw, gh) = ((w / k).max(1), (h / k).max(1));
        (self.k, self.gw, self.gh) = (k, gw, gh);
        // the grid's cells are whole blocks (gw = w / k); a cell is visible when most of it
        // is in the field
        box_average(f, k, (gw, gh), &mut self.row_sums, &mut self.small);
        // the visible cells are kept while the mask is unchanged (a study's, frame after
        // frame), sparing a read of the whole mask
        let source = (mask.stamp(), w, h, k);
        if self.grid_mask_from != Some(source) {
            self.grid_mask_from = Some(source);
            self.make_grid_mask(mask, (w, h));
        }
        self.median_scratch.clear();
        for (v, &m) in self.small.data().iter().zip(&self.grid_mask) {
            if m != 0 {
                self.median_scratch.push(*v);
            }
        }
        let med = if self.median_scratch.is_empty() {
            0.0
        } else {
            let n = self.median_scratch.len();
            *self
                .median_scratch
                .select_nth_unstable_by(n / 2, f32::total_cmp)
                .1
        };
        let inv = 1.0 / lm.range.max(1e-3);
        if self.kernels.is_empty() {
            self.kernels = SIGMAS.iter().map(|&s| kernel(s)).collect();
        }
        for (b, kern) in self.blurred.iter_mut().zip(&self.kernels) {
            blur(&self.small, kern, &mut self.tmp, b);
        }
        let mm = lm.mm_per_px.max(1e-6);
        let vill = lm.vill.map(|[a, p1]| {
            let d = [p1[0] - a[0], p1[1] - a[1]];
            let l2 = (d[0] * d[0] + d[1] * d[1]).max(1e-9);
            let l = l2.sqrt();
            let mut n = [-d[1] / l, d[0] / l];
            if let Some(v) = lm.ventral
                && n[0] * v[0] + n[1] * v[1] < 0.0
            {
                n = [-n[0], -n[1]];
            }
            (a, n, [d[0] / l2, d[1] / l2])
        });
        row::RowInputs {
            median: med,
            inv_range: inv,
            k,
            mm,
            vill,
            tool: lm.tool,
        }
    }

    /// Computes the features of `f` (denoised, dense = low) with its field `mask`, all of
    /// them kept ([`AnatomyFeatures::features`]).
    pub fn compute(&mut self, f: &Frame<f32>, mask: &Frame<u8>, lm: &Landmarks) {
        let inputs = self.prepare(f, mask, lm);
        let (gw, gh) = (self.gw, self.gh);
        let (mut feats, mut planes) = (
            std::mem::take(&mut self.feats),
            std::mem::take(&mut self.planes),
        );
        feats.clear();
        feats.resize(gw * gh * N_FEATURES, 0.0);
        let blurred = &self.blurred;
        par_chunks_with(
            &mut feats,
            gw * N_FEATURES,
            &mut planes,
            |gy, row, planes| row::feature_row(&inputs, blurred, gy, gh, planes, row),
        );
        (self.feats, self.planes) = (feats, planes);
    }

    /// [`AnatomyFeatures::compute`] and [`score_grid`] in one pass over the grid rows: each
    /// row's features are made in the band's buffer and scored there, so the features of
    /// the whole grid (1.4 MB at 1024) are never written and read back. The same scores;
    /// [`AnatomyFeatures::features`] is empty afterwards.
    pub fn compute_scored(
        &mut self,
        f: &Frame<f32>,
        mask: &Frame<u8>,
        lm: &Landmarks,
        mlp: &Mlp,
        scratch: &mut ScoredRowScratch,
        scores: &mut Vec<f32>,
    ) {
        let inputs = self.prepare(f, mask, lm);
        self.feats.clear();
        let (gw, gh) = (self.gw, self.gh);
        scores.clear();
        scores.resize(gw * gh * N_CLASSES, 0.0);
        let this = &*self;
        par_chunks_with(
            scores,
            gw * N_CLASSES,
            scratch,
            |gy, row, (planes, feats, layers): &mut RowScratch| {
                let feats = reused(feats, gw * N_FEATURES);
                row::feature_row(&inputs, &this.blurred, gy, gh, planes, feats);
                score_row(this, gy, feats, mlp, layers, row);
            },
        );
    }

    /// Which grid cells of a `w` x `h` frame are mostly inside `mask` (the grid's size and
    /// block set already): the field coverage is summed column-wise per grid row.
    fn make_grid_mask(&mut self, mask: &Frame<u8>, (w, h): (usize, usize)) {
        let (k, gw, gh) = (self.k, self.gw, self.gh);
        self.grid_mask.clear();
        self.grid_mask.resize(gw * gh, 0);
        let cell = |gx: usize| gx * k..((gx + 1) * k).min(w);
        par_chunks_with(
            &mut self.grid_mask,
            gw,
            &mut self.row_counts,
            |gy, visible, cnt: &mut Vec<u16>| {
                let cnt = zeroed(cnt, w);
                for y in gy * k..((gy + 1) * k).min(h) {
                    for (c, &m) in cnt.iter_mut().zip(mask.row(y)) {
                        *c += u16::from(m != 0);
                    }
                }
                for (gx, o) in visible.iter_mut().enumerate() {
                    let n: usize = cnt[cell(gx)].iter().map(|&c| usize::from(c)).sum();
                    *o = u8::from(2 * n >= k * k);
                }
            },
        );
    }
}

/// Per-band scratch of [`score_grid`] (two layer buffers), kept between frames.
pub type ScoreScratch = Vec<(Vec<f32>, Vec<f32>)>;

/// Scores every grid cell of `feats` with `mlp` into `scores` (`N_CLASSES` per cell;
/// cells outside the field score background).
pub fn score_grid(
    feats: &AnatomyFeatures,
    mlp: &Mlp,
    scratch: &mut ScoreScratch,
    scores: &mut Vec<f32>,
) {
    let (gw, gh, _) = feats.grid();
    scores.clear();
    scores.resize(gw * gh * N_CLASSES, 0.0);
    let fv = feats.features();
    fluoro_enhance::par::par_chunks_with(scores, gw * N_CLASSES, scratch, |gy, row, layers| {
        let base = gy * gw * N_FEATURES;
        score_row(
            feats,
            gy,
            &fv[base..base + gw * N_FEATURES],
            mlp,
            layers,
            row,
        );
    });
}

/// Grid row `gy`'s scores (`row`, `N_CLASSES` per cell) from its features (`fv`,
/// `N_FEATURES` per cell): the row's span from its first to its last visible cell scored
/// in blocks (a round field leaves about a fifth of the grid outside), then the cells
/// outside the field, in the span or not, set to background.
fn score_row(
    feats: &AnatomyFeatures,
    gy: usize,
    fv: &[f32],
    mlp: &Mlp,
    (a, b): &mut (Vec<f32>, Vec<f32>),
    row: &mut [f32],
) {
    let gw = feats.gw;
    let first = (0..gw).find(|&gx| feats.visible(gx, gy));
    if let Some(x0) = first {
        let x1 = (x0..gw)
            .rev()
            .find(|&gx| feats.visible(gx, gy))
            .unwrap_or(x0)
            + 1;
        mlp.forward_many(
            &fv[x0 * N_FEATURES..x1 * N_FEATURES],
            a,
            b,
            &mut row[x0 * N_CLASSES..x1 * N_CLASSES],
        );
    }
    for gx in 0..gw {
        if !feats.visible(gx, gy) {
            row[gx * N_CLASSES..(gx + 1) * N_CLASSES].copy_from_slice(&[10.0, 0.0, 0.0, 0.0]);
        }
    }
}

/// The arg-max class of every grid cell, into `classes`.
pub fn cell_classes(scores: &[f32], classes: &mut Vec<u8>) {
    classes.clear();
    classes.extend(scores.chunks_exact(N_CLASSES).map(|c| {
        let mut best = 0;
        for k in 1..N_CLASSES {
            if c[k] > c[best] {
                best = k;
            }
        }
        best as u8
    }));
}

/// Maps full-resolution positions `0..len` to grid cells: the two neighbouring cell
/// centres and the weight of the second, into `out` (one entry per position).
pub fn cell_table(len: usize, k: usize, cells: usize, out: &mut Vec<(u32, u32, f32)>) {
    out.clear();
    out.extend((0..len).map(|p| {
        let v = ((p as f32 + 0.5) / k as f32 - 0.5).clamp(0.0, (cells - 1) as f32);
        let i = v as usize;
        (i as u32, (i + 1).min(cells - 1) as u32, v - i as f32)
    }));
}

/// The runs `(start, end)` of consecutive positions that map to the same two cells in a
/// [`cell_table`], so a row of labels can be filled a run at a time without comparing
/// every pixel's cells.
pub fn cell_runs(table: &[(u32, u32, f32)], out: &mut Vec<(u32, u32)>) {
    out.clear();
    let mut start = 0;
    for p in 1..=table.len() {
        let key = |i: usize| (table[i].0, table[i].1);
        if p == table.len() || key(p) != key(start) {
            out.push((start as u32, p as u32));
            start = p;
        }
    }
}

/// A class's score between four cells `[top-left, top-right, bottom-left, bottom-right]`
/// at weights `ax` (towards the right) and `ay` (towards the bottom): the label map's one
/// interpolation, shared by [`class_at`] and the label map's vectorised runs.
#[inline(always)]
pub fn bilinear([tl, tr, bl, br]: [f32; 4], ax: f32, ay: f32) -> f32 {
    let top = tl + ax * (tr - tl);
    let bot = bl + ax * (br - bl);
    top + ay * (bot - top)
}

/// The class (0 background, 1 lamina, 2 ligamentum flavum, 3 contrast) at a full-resolution
/// pixel whose column and row map to cells `cx` and `cy` (from [`cell_table`]): where the
/// four surrounding cells agree, their class; otherwise the arg-max of the bilinearly
/// interpolated cell scores.
#[inline]
pub fn class_at(
    scores: &[f32],
    classes: &[u8],
    gw: usize,
    (x0, x1, ax): (u32, u32, f32),
    (y0, y1, ay): (u32, u32, f32),
) -> usize {
    let (x0, x1, y0, y1) = (x0 as usize, x1 as usize, y0 as usize, y1 as usize);
    let c = classes[y0 * gw + x0];
    if c == classes[y0 * gw + x1] && c == classes[y1 * gw + x0] && c == classes[y1 * gw + x1] {
        return usize::from(c);
    }
    let at = |gx: usize, gy: usize, c: usize| scores[(gy * gw + gx) * N_CLASSES + c];
    let mut best = (0, f32::MIN);
    for c in 0..N_CLASSES {
        let cells = [at(x0, y0, c), at(x1, y0, c), at(x0, y1, c), at(x1, y1, c)];
        let v = bilinear(cells, ax, ay);
        if v > best.1 {
            best = (c, v);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_finite_and_geometry_follows_the_landmarks() {
        let f = Frame::from_fn(256, 256, |x, y| {
            1000.0 + (x as f32 * 0.1).sin() * 50.0 + y as f32
        });
        let mask = Frame::filled(256, 256, 1u8);
        let mut a = AnatomyFeatures::default();
        let lm = Landmarks {
            vill: Some([[128.0, 100.0], [128.0, 160.0]]),
            ventral: Some([1.0, 0.0]),
            tool: Some(([120.0, 130.0], [1.0, 0.0])),
            mm_per_px: 0.3,
            range: 300.0,
        };
        a.compute(&f, &mask, &lm);
        let (gw, gh, k) = a.grid();
        assert_eq!((gw, gh, k), (128, 128, 2));
        assert!(a.features().iter().all(|v| v.is_finite()));
        let cell =
            |gx: usize, gy: usize| &a.features()[(gy * gw + gx) * N_FEATURES..][..N_FEATURES];
        // ventral of the VILL is positive distance, dorsal negative
        assert!(cell(100, 64)[15] > 0.0 && cell(20, 64)[15] < 0.0);
        assert_eq!(cell(20, 64)[17], 1.0);
        // ahead of the tip is positive along the axis
        assert!(cell(100, 65)[18] > 0.0 && cell(10, 65)[18] < 0.0);
    }

    /// The grid's scores: each visible cell scored on its own, every cell outside a round
    /// field background (the span scoring skips them).
    #[test]
    fn grid_scores_are_per_cell_scores_inside_the_field_and_background_outside() {
        let f = Frame::from_fn(256, 256, |x, y| {
            1000.0 + (x as f32 * 0.1).sin() * 50.0 + y as f32
        });
        let mask = Frame::from_fn(256, 256, |x, y| {
            u8::from((x as f64 - 128.0).hypot(y as f64 - 120.0) < 110.0)
        });
        let mut a = AnatomyFeatures::default();
        let lm = Landmarks {
            vill: None,
            ventral: None,
            tool: None,
            mm_per_px: 0.3,
            range: 300.0,
        };
        a.compute(&f, &mask, &lm);
        let m = embedded_model().expect("model");
        let (mut scratch, mut scores) = (ScoreScratch::default(), Vec::new());
        score_grid(&a, m, &mut scratch, &mut scores);
        let (gw, gh, _) = a.grid();
        let (mut inside, mut outside) = (0, 0);
        let (mut s1, mut s2, mut one) = (Vec::new(), Vec::new(), [0f32; N_CLASSES]);
        for gy in 0..gh {
            for gx in 0..gw {
                let got = &scores[(gy * gw + gx) * N_CLASSES..][..N_CLASSES];
                if a.visible(gx, gy) {
                    let x = &a.features()[(gy * gw + gx) * N_FEATURES..][..N_FEATURES];
                    m.forward(x, &mut s1, &mut s2, &mut one);
                    assert_eq!(got, &one[..], "cell {gx},{gy}");
                    inside += 1;
                } else {
                    assert_eq!(got, &[10.0, 0.0, 0.0, 0.0], "cell {gx},{gy}");
                    outside += 1;
                }
            }
        }
        assert!(inside > 1000 && outside > 1000, "{inside} {outside}");
    }

    /// Features and scores made row by row together give [`score_grid`]'s scores of
    /// [`AnatomyFeatures::compute`]'s features, bit for bit: with and without landmarks,
    /// one scratch across frames and sizes (stale rows from the frame before).
    #[test]
    fn scored_rows_equal_features_then_scores() {
        let m = embedded_model().expect("model");
        let (mut whole, mut rows) = (AnatomyFeatures::default(), AnatomyFeatures::default());
        let (mut scratch, mut row_scratch) = (ScoreScratch::default(), ScoredRowScratch::default());
        let (mut want, mut got) = (Vec::new(), Vec::new());
        for (n, size) in [(0, 256), (1, 256), (2, 200), (3, 256)] {
            let f = Frame::from_fn(size, size, |x, y| {
                1000.0 + (x as f32 * 0.1 + n as f32).sin() * 50.0 + y as f32 * (1.0 + n as f32)
            });
            let mask = Frame::from_fn(size, size, |x, y| {
                u8::from((x as f64 - 128.0).hypot(y as f64 - 120.0) < 100.0)
            });
            let c = size as f64 / 2.0;
            let known = n % 2 == 0;
            let lm = Landmarks {
                vill: known.then_some([[c, c - 40.0], [c + 10.0, c + 40.0]]),
                ventral: known.then_some([1.0, 0.0]),
                tool: known.then_some(([c - 30.0, c], [0.9, 0.1])),
                mm_per_px: 0.3,
                range: 300.0,
            };
            whole.compute(&f, &mask, &lm);
            score_grid(&whole, m, &mut scratch, &mut want);
            rows.compute_scored(&f, &mask, &lm, m, &mut row_scratch, &mut got);
            assert_eq!(rows.grid(), whole.grid());
            assert!(rows.features().is_empty());
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(&got) == bits(&want), "frame {n}: scores differ");
        }
    }
}
