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
use fluoro_enhance::par::{par_chunks_with, zeroed};
use rayon::prelude::*;
use serde::Deserialize;
use std::sync::OnceLock;

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

/// Feature computation with its buffers.
#[derive(Debug, Default)]
pub struct AnatomyFeatures {
    k: usize,
    gw: usize,
    gh: usize,
    small: Frame<f32>,
    grid_mask: Vec<u8>,
    blurred: [Frame<f32>; 5],
    tmp: Frame<f32>,
    kernels: Vec<Vec<f32>>,
    median_scratch: Vec<f32>,
    feats: Vec<f32>,
    /// Per-band column sums of a grid row (frame values, field pixels).
    row_sums: Vec<Vec<f32>>,
    row_counts: Vec<Vec<u16>>,
}

fn clamp(v: f64, lim: f64) -> f32 {
    v.clamp(-lim, lim) as f32
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

    /// Computes the features of `f` (denoised, dense = low) with its field `mask`.
    pub fn compute(&mut self, f: &Frame<f32>, mask: &Frame<u8>, lm: &Landmarks) {
        let (w, h) = f.size();
        let k = (w.min(h) as f64 / GRID as f64).round().max(1.0) as usize;
        let (gw, gh) = ((w / k).max(1), (h / k).max(1));
        (self.k, self.gw, self.gh) = (k, gw, gh);
        // box-average into the grid; a cell is visible when most of it is
        self.grid_mask.clear();
        self.grid_mask.resize(gw * gh, 0);
        // the grid's cells are whole blocks (gw = w / k); the field coverage is summed the
        // same way, column-wise per grid row
        box_average(f, k, (gw, gh), &mut self.row_sums, &mut self.small);
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
        self.feats.clear();
        self.feats.resize(gw * gh * N_FEATURES, 0.0);
        let b = &self.blurred;
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
        self.feats
            .par_chunks_mut(gw * N_FEATURES)
            .enumerate()
            .for_each(|(gy, row)| {
                let ym = gy.saturating_sub(1);
                let yp = (gy + 1).min(gh - 1);
                for gx in 0..gw {
                    let o = &mut row[gx * N_FEATURES..(gx + 1) * N_FEATURES];
                    let xm = gx.saturating_sub(1);
                    let xp = (gx + 1).min(gw - 1);
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
                        let lxy =
                            (g.get(xp, yp) - g.get(xm, yp) - g.get(xp, ym) + g.get(xm, ym)) / 4.0;
                        let mean = (lxx + lyy) / 2.0;
                        let disc = (((lxx - lyy) / 2.0).powi(2) + lxy * lxy).sqrt();
                        let s2 = s * s * inv;
                        o[11 + 2 * (j - 1)] = (mean + disc) * s2;
                        o[12 + 2 * (j - 1)] = (mean - disc) * s2;
                    }
                    // the cell centre in full-resolution pixels
                    let p = [
                        (gx as f64 + 0.5) * k as f64 - 0.5,
                        (gy as f64 + 0.5) * k as f64 - 0.5,
                    ];
                    if let Some((a, n, along)) = vill {
                        let q = [p[0] - a[0], p[1] - a[1]];
                        o[15] = clamp((q[0] * n[0] + q[1] * n[1]) * mm / 20.0, 3.0);
                        o[16] = clamp((q[0] * along[0] + q[1] * along[1]) / 4.0, 1.0);
                        o[17] = 1.0;
                    }
                    if let Some((tip, dir)) = lm.tool {
                        let q = [p[0] - tip[0], p[1] - tip[1]];
                        o[18] = clamp((q[0] * dir[0] + q[1] * dir[1]) * mm / 30.0, 3.0);
                        o[19] = clamp((q[0] * dir[1] - q[1] * dir[0]).abs() * mm / 30.0, 3.0);
                        o[20] = 1.0;
                    }
                }
            });
    }
}

/// The weights file as written by the trainer: `layers` are `(weights out x in, bias)`.
#[derive(Debug, Deserialize)]
struct MlpFile {
    mean: Vec<f32>,
    std: Vec<f32>,
    layers: Vec<(Vec<Vec<f32>>, Vec<f32>)>,
}

/// One dense layer, weights stored input-major (`w[i * out + o]`) so that the inner loop
/// runs over contiguous outputs and vectorises.
#[derive(Debug)]
struct Layer {
    inp: usize,
    out: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

/// A perceptron with standardised inputs and ReLU hidden layers.
#[derive(Debug)]
pub struct Mlp {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    layers: Vec<Layer>,
}

impl Mlp {
    /// Parses the weights file, checking the shapes.
    pub fn from_json(s: &str) -> Result<Self, String> {
        let m: MlpFile = serde_json::from_str(s).map_err(|e| e.to_string())?;
        let mut width = N_FEATURES;
        if m.mean.len() != width || m.std.len() != width || m.layers.is_empty() {
            return Err("feature count does not match".into());
        }
        let mut layers = Vec::new();
        for (w, b) in &m.layers {
            if w.is_empty() || w.len() != b.len() || w.iter().any(|r| r.len() != width) {
                return Err("layer shapes do not chain".into());
            }
            let (inp, out) = (width, w.len());
            let mut t = vec![0f32; inp * out];
            for (o, row) in w.iter().enumerate() {
                for (i, &v) in row.iter().enumerate() {
                    t[i * out + o] = v;
                }
            }
            layers.push(Layer {
                inp,
                out,
                w: t,
                b: b.clone(),
            });
            width = out;
        }
        if width != N_CLASSES {
            return Err(format!("{width} outputs, expected {N_CLASSES}"));
        }
        Ok(Self {
            inv_std: m.std.iter().map(|s| 1.0 / s.max(1e-12)).collect(),
            mean: m.mean,
            layers,
        })
    }

    /// Class scores (logits) of one feature vector; `a`, `b` are scratch buffers.
    pub fn forward(&self, x: &[f32], a: &mut Vec<f32>, b: &mut Vec<f32>, out: &mut [f32]) {
        a.clear();
        a.extend(
            x.iter()
                .zip(&self.mean)
                .zip(&self.inv_std)
                .map(|((v, m), s)| (v - m) * s),
        );
        let last = self.layers.len() - 1;
        for (li, l) in self.layers.iter().enumerate() {
            b.clear();
            b.extend_from_slice(&l.b);
            dense(&l.w, l.out, &a[..l.inp], b, li != last);
            std::mem::swap(a, b);
        }
        out.copy_from_slice(&a[..N_CLASSES]);
    }

    /// Class scores of `n = xs.len() / N_FEATURES` feature vectors into `outs` (`N_CLASSES`
    /// each), [`BLOCK`] vectors per pass through the layers, with the layer's outputs held
    /// in registers ([`dense_block`]); `a`, `b` are scratch buffers. Equal to
    /// [`Mlp::forward`] per vector (same sums in the same order).
    pub fn forward_many(&self, xs: &[f32], a: &mut Vec<f32>, b: &mut Vec<f32>, outs: &mut [f32]) {
        let n = xs.len() / N_FEATURES;
        let last = self.layers.len() - 1;
        for start in (0..n).step_by(BLOCK) {
            let m = BLOCK.min(n - start);
            a.clear();
            for x in xs[start * N_FEATURES..(start + m) * N_FEATURES].chunks_exact(N_FEATURES) {
                a.extend(
                    x.iter()
                        .zip(&self.mean)
                        .zip(&self.inv_std)
                        .map(|((v, m), s)| (v - m) * s),
                );
            }
            for (li, l) in self.layers.iter().enumerate() {
                b.clear();
                for _ in 0..m {
                    b.extend_from_slice(&l.b);
                }
                dense_block(&l.w, l.inp, l.out, &a[..m * l.inp], b, li != last);
                std::mem::swap(a, b);
            }
            outs[start * N_CLASSES..(start + m) * N_CLASSES].copy_from_slice(&a[..m * N_CLASSES]);
        }
    }
}

/// Cells per block of [`Mlp::forward_many`].
const BLOCK: usize = 8;

/// Vectors [`dense_block`] runs through the hidden width together.
const GROUP: usize = 4;

/// [`dense`] for several vectors (`x`: vectors of `inp`, `acc`: vectors of `out`, both
/// concatenated), with the outputs in registers while the inputs stream (64 at once for
/// the hidden width, else 16 at a time; [`dense`] loads and stores them for every input).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn dense_block(w: &[f32], inp: usize, out: usize, x: &[f32], acc: &mut [f32], relu: bool) {
    const L: usize = 16;
    // the hidden width and the class layer, GROUP vectors at once; the rest one by one
    let done = match out {
        64 => dense_group::<64>(w, inp, x, acc, relu),
        N_CLASSES => dense_group::<N_CLASSES>(w, inp, x, acc, relu),
        _ => 0,
    };
    let (x, acc) = (&x[done * inp..], &mut acc[done * out..]);
    for (xv, av) in x.chunks_exact(inp).zip(acc.chunks_exact_mut(out)) {
        let mut oc = 0;
        if out == 4 * L {
            // the hidden width: all 64 outputs in four registers, each input read once
            let mut r: [f32; 4 * L] = av[..].try_into().expect("64 outputs");
            for (i, &xi) in xv.iter().enumerate() {
                let wv: &[f32; 4 * L] = w[i * out..(i + 1) * out].try_into().expect("64 weights");
                for (a, &wl) in r.iter_mut().zip(wv) {
                    *a += wl * xi;
                }
            }
            av.copy_from_slice(&r);
            oc = out;
        }
        while oc + L <= out {
            let mut r: [f32; L] = av[oc..oc + L].try_into().expect("16 outputs");
            for (i, &xi) in xv.iter().enumerate() {
                let wv: &[f32; L] = w[i * out + oc..i * out + oc + L]
                    .try_into()
                    .expect("16 weights");
                for (a, &wl) in r.iter_mut().zip(wv) {
                    *a += wl * xi;
                }
            }
            av[oc..oc + L].copy_from_slice(&r);
            oc += L;
        }
        if out - oc == N_CLASSES {
            // the last layer's four classes: a fixed-size accumulator stays in a register
            let mut r: [f32; N_CLASSES] = av[oc..out].try_into().expect("classes");
            for (i, &xi) in xv.iter().enumerate() {
                let wv: &[f32; N_CLASSES] = w[i * out + oc..i * out + out]
                    .try_into()
                    .expect("class weights");
                for (a, &wl) in r.iter_mut().zip(wv) {
                    *a += wl * xi;
                }
            }
            av[oc..out].copy_from_slice(&r);
        } else if oc < out {
            // any other remainder of fewer than 16 outputs
            let len = out - oc;
            let mut r = [0f32; L];
            r[..len].copy_from_slice(&av[oc..out]);
            for (i, &xi) in xv.iter().enumerate() {
                for (a, &wl) in r[..len].iter_mut().zip(&w[i * out + oc..i * out + out]) {
                    *a += wl * xi;
                }
            }
            av[oc..out].copy_from_slice(&r[..len]);
        }
        if relu {
            av.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
}

/// [`dense_block`] for a layer of exactly `O` outputs, [`GROUP`] vectors at a time: the
/// `GROUP` sets of sums are independent chains, which hides the add latency (one vector's
/// four class sums were one 4-lane chain, 64 adds deep), and each weight load serves
/// every vector. Each sum runs in the same order as for one vector. Returns how many
/// vectors it did (whole groups only).
#[inline(always)]
fn dense_group<const O: usize>(
    w: &[f32],
    inp: usize,
    x: &[f32],
    acc: &mut [f32],
    relu: bool,
) -> usize {
    let whole = (x.len() / inp).min(acc.len() / O) / GROUP * GROUP;
    let groups = x[..whole * inp]
        .chunks_exact(GROUP * inp)
        .zip(acc[..whole * O].chunks_exact_mut(GROUP * O));
    for (xv, av) in groups {
        let mut r = [[0f32; O]; GROUP];
        for (rv, a) in r.iter_mut().zip(av.chunks_exact(O)) {
            rv.copy_from_slice(a);
        }
        for (i, wv) in w.chunks_exact(O).take(inp).enumerate() {
            let wv: &[f32; O] = wv.try_into().expect("O weights");
            for (g, rv) in r.iter_mut().enumerate() {
                let xi = xv[g * inp + i];
                for (a, &wl) in rv.iter_mut().zip(wv) {
                    *a += wl * xi;
                }
            }
        }
        for (rv, a) in r.iter().zip(av.chunks_exact_mut(O)) {
            a.copy_from_slice(rv);
            if relu {
                a.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
    }
    whole
}

/// `acc += W x` with `W` input-major (`w[i * out + o]`), then ReLU when asked. Compiled for
/// AVX-512 and AVX2+FMA with runtime dispatch.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn dense(w: &[f32], out: usize, x: &[f32], acc: &mut [f32], relu: bool) {
    for (i, &xi) in x.iter().enumerate() {
        if xi == 0.0 {
            continue;
        }
        for (a, &wv) in acc.iter_mut().zip(&w[i * out..(i + 1) * out]) {
            *a += wv * xi;
        }
    }
    if relu {
        acc.iter_mut().for_each(|v| *v = v.max(0.0));
    }
}

/// The committed model, or `None` when its file does not parse (then the rule-based labels
/// are used).
pub fn embedded_model() -> Option<&'static Mlp> {
    static MODEL: OnceLock<Option<Mlp>> = OnceLock::new();
    MODEL
        .get_or_init(|| Mlp::from_json(include_str!("anatomy_weights.json")).ok())
        .as_ref()
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
    fluoro_enhance::par::par_chunks_with(
        scores,
        gw * N_CLASSES,
        scratch,
        |gy, row, (a, b): &mut (Vec<f32>, Vec<f32>)| {
            // the row's span from its first to its last visible cell in blocks (a round
            // field leaves about a fifth of the grid outside), then the cells outside the
            // field, in the span or not, set to background
            let first = (0..gw).find(|&gx| feats.visible(gx, gy));
            if let Some(x0) = first {
                let x1 = (x0..gw)
                    .rev()
                    .find(|&gx| feats.visible(gx, gy))
                    .unwrap_or(x0)
                    + 1;
                let base = gy * gw * N_FEATURES;
                mlp.forward_many(
                    &fv[base + x0 * N_FEATURES..base + x1 * N_FEATURES],
                    a,
                    b,
                    &mut row[x0 * N_CLASSES..x1 * N_CLASSES],
                );
            }
            for gx in 0..gw {
                if !feats.visible(gx, gy) {
                    row[gx * N_CLASSES..(gx + 1) * N_CLASSES]
                        .copy_from_slice(&[10.0, 0.0, 0.0, 0.0]);
                }
            }
        },
    );
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
        let top = at(x0, y0, c) + ax * (at(x1, y0, c) - at(x0, y0, c));
        let bot = at(x0, y1, c) + ax * (at(x1, y1, c) - at(x0, y1, c));
        let v = top + ay * (bot - top);
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

    #[test]
    fn the_committed_model_parses_and_scores() {
        let m = embedded_model().expect("anatomy_weights.json parses");
        let (mut a, mut b, mut o) = (Vec::new(), Vec::new(), [0f32; N_CLASSES]);
        m.forward(&[0.0; N_FEATURES], &mut a, &mut b, &mut o);
        // the blocked path gives the same scores as one vector at a time, partial block too
        let xs: Vec<f32> = (0..7 * N_FEATURES)
            .map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * 3.0)
            .collect();
        blocked_matches_single(m, &xs, "committed model");
        assert!(o.iter().all(|v| v.is_finite()));
        assert!(Mlp::from_json("{}").is_err());
    }

    /// Hidden widths other than 64 (16-wide chunks, a remainder below 16) give the same
    /// scores through the blocked path as one vector at a time.
    #[test]
    fn other_layer_widths_score_alike_blocked_and_one_at_a_time() {
        let weights = |out: usize, inp: usize, seed: usize| -> Vec<Vec<f32>> {
            (0..out)
                .map(|o| {
                    (0..inp)
                        .map(|i| ((o * 31 + i * 17 + seed) % 23) as f32 / 23.0 - 0.5)
                        .collect()
                })
                .collect()
        };
        for hidden in [20usize, 5, 64] {
            let file = serde_json::json!({
                "mean": vec![0.1f32; N_FEATURES],
                "std": vec![2.0f32; N_FEATURES],
                "layers": [
                    [weights(hidden, N_FEATURES, 1), vec![0.05f32; hidden]],
                    [weights(hidden, hidden, 2), vec![-0.02f32; hidden]],
                    [weights(N_CLASSES, hidden, 3), vec![0.0f32; N_CLASSES]],
                ],
            });
            let m = Mlp::from_json(&file.to_string()).expect("a valid model");
            let xs: Vec<f32> = (0..6 * N_FEATURES)
                .map(|i| ((i * 13 % 29) as f32 / 7.0) - 2.0)
                .collect();
            blocked_matches_single(&m, &xs, &format!("hidden {hidden}"));
        }
    }

    /// `forward_many` on the feature vectors `xs` scores each like `forward`.
    fn blocked_matches_single(m: &Mlp, xs: &[f32], what: &str) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut many = vec![0f32; xs.len() / N_FEATURES * N_CLASSES];
        m.forward_many(xs, &mut a, &mut b, &mut many);
        for (x, got) in xs.chunks(N_FEATURES).zip(many.chunks(N_CLASSES)) {
            let mut one = [0f32; N_CLASSES];
            m.forward(x, &mut a, &mut b, &mut one);
            for (p, q) in one.iter().zip(got) {
                assert!(
                    (p - q).abs() <= 1e-5 * p.abs().max(1.0),
                    "{what}: {one:?} vs {got:?}"
                );
            }
        }
    }
}
