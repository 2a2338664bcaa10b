//! The ventral interlaminar line (VILL) in a contralateral oblique view.
//!
//! In CLO the instrument-side laminae appear as dark bands whose ventral faces are nearly
//! collinear; the VILL joins the two corners where those faces meet the interlaminar window
//! the instrument is heading into. The detector:
//! 1. takes edge pixels whose brightness rises towards the ventral side (the direction the
//!    instrument travels) with a broad dark region behind them — a lamina, not the thin
//!    epidural contrast line that lies just ventral to it;
//! 2. finds the dominant such straight edge near the tip with a Hough transform, refined by
//!    weighted least squares;
//! 3. walks along that line and takes the gap in the edge (the window) nearest the tip; its
//!    two ends are the VILL points;
//! 4. keeps the line stable over time with a running median, and rejects outliers.

use fluoro_core::Frame;
use fluoro_enhance::gaussian::{blur, kernel};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// VILL detector parameters (lengths as fractions of the frame size unless named `_mm`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VillParams {
    /// Radius of the search region around the tip (or the last VILL), fraction of size
    /// (edge method) .
    pub roi_frac: f32,
    /// Radius of the search region around the tip for the lamina corners, mm.
    pub roi_mm: f64,
    /// Lamina darkness threshold, fraction of the frame's dynamic range.
    pub lamina_frac: f32,
    /// Distance behind the edge over which a lamina must stay dark, mm.
    pub lamina_depth_mm: f64,
    /// Smallest and largest interlaminar gap along the line, mm.
    pub gap_mm: (f64, f64),
    /// Frames in the running median.
    pub history: usize,
    /// A new line further than this (mm) from the running one is an outlier.
    pub outlier_mm: f64,
}

impl Default for VillParams {
    fn default() -> Self {
        Self {
            roi_frac: 0.2,
            roi_mm: 16.0,
            lamina_frac: 0.05,
            lamina_depth_mm: 3.5,
            gap_mm: (3.0, 25.0),
            history: 9,
            outlier_mm: 3.0,
        }
    }
}

/// The detector with its buffers and temporal state.
#[derive(Debug, Default)]
pub struct VillDetector {
    params: VillParams,
    smooth: Frame<f32>,
    tmp: Frame<f32>,
    acc: Vec<f32>,
    kern: Vec<f32>,
    history: VecDeque<[[f64; 2]; 2]>,
    rejected: usize,
    ventral: Option<[f64; 2]>,
    bg: Frame<f32>,
    large: fluoro_enhance::gaussian::LargeBlurScratch,
    roi: Frame<u8>,
    labels: Vec<u32>,
    confident: bool,
}

/// The instrument as the VILL detector needs it: rear, tip and half-width (px).
#[derive(Clone, Copy, Debug)]
pub struct Shaft {
    /// Rear point.
    pub rear: [f64; 2],
    /// Tip.
    pub tip: [f64; 2],
    /// Half-width, px.
    pub half_width: f64,
}

/// A line through two points.
pub type Vill = [[f64; 2]; 2];

fn dist_point_line(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let l = (dx * dx + dy * dy).sqrt().max(1e-9);
    ((p[0] - a[0]) * dy - (p[1] - a[1]) * dx).abs() / l
}

impl VillDetector {
    /// A detector with these parameters.
    pub fn new(params: VillParams) -> Self {
        Self {
            params,
            history: VecDeque::new(),
            ..Default::default()
        }
    }

    /// Forgets the temporal state.
    pub fn reset(&mut self) {
        self.confident = false;
        self.history.clear();
        self.ventral = None;
        self.rejected = 0;
    }

    /// Detects the VILL from the two laminae that bound the window the instrument heads into:
    /// dark regions (relative to a wide background) on either side of the instrument axis,
    /// thin lines (contrast) and the shaft excluded; the VILL points are their window-facing
    /// ventral corners (the cranial lamina's ventral-caudal corner and the caudal lamina's
    /// ventral-cranial corner). The search runs in discs centred at the tip and at points
    /// ahead of it along the axis, and takes the nearest pair that straddles the axis.
    /// Without an instrument the last line is held.
    pub fn detect_corners(
        &mut self,
        f: &Frame<f32>,
        mask: &Frame<u8>,
        thin: (&Frame<f32>, f32),
        range: f32,
        shaft: Option<Shaft>,
        mm_per_px: Option<f64>,
    ) -> Option<Vill> {
        let mm = mm_per_px.unwrap_or(0.3);
        let Some(sh) = shaft else {
            return self.current();
        };
        let (w, h) = f.size();
        let (dx, dy) = (sh.tip[0] - sh.rear[0], sh.tip[1] - sh.rear[1]);
        let l = (dx * dx + dy * dy).sqrt().max(1e-9);
        let v = [dx / l, dy / l];
        self.ventral = Some(v);
        if self.kern.is_empty() || self.smooth.size() != (w, h) {
            self.kern = kernel((0.5 / mm).max(0.8) as f32);
        }
        blur(f, &self.kern, &mut self.tmp, &mut self.smooth);
        fluoro_enhance::gaussian::blur_large(f, (6.0 / mm) as f32, &mut self.large, &mut self.bg);
        let mut best: Option<(f64, Vill, bool)> = None;
        for ahead_mm in [0.0, 8.0, 16.0, 24.0, 32.0, 40.0] {
            let centre = [
                sh.tip[0] + v[0] * ahead_mm / mm,
                sh.tip[1] + v[1] * ahead_mm / mm,
            ];
            let (cx, cy) = (centre[0].round(), centre[1].round());
            if cx < 0.0
                || cy < 0.0
                || cx >= w as f64
                || cy >= h as f64
                || mask.get(cx as usize, cy as usize) == 0
            {
                break;
            }
            if let Some(pair) = self.corners_at(mask, thin, range, &sh, v, centre, mm) {
                let mid = [
                    (pair[0][0] + pair[1][0]) / 2.0,
                    (pair[0][1] + pair[1][1]) / 2.0,
                ];
                let along = (mid[0] - sh.tip[0]) * v[0] + (mid[1] - sh.tip[1]) * v[1];
                let across = ((mid[0] - sh.tip[0]) * v[1] - (mid[1] - sh.tip[1]) * v[0]).abs();
                // the window is ahead of the tip (or just behind it once crossed) and on the axis
                if along * mm > -10.0
                    && across * mm < 8.0
                    && best.as_ref().is_none_or(|(a, _, _)| along.abs() < *a)
                {
                    // found in the disc at the tip: the laminae next to the tip, the moment
                    // that matters; further discs only give an early, less certain line
                    best = Some((along.abs(), pair, ahead_mm == 0.0));
                }
                if best.is_some() {
                    break;
                }
            }
        }
        match best {
            Some((_, pair, confident)) => self.accept_with(pair, mm, confident),
            None => self.current(),
        }
    }

    /// Like `accept`, but a confident line first discards the less certain lines of the
    /// history (found far ahead of the tip) so they can neither outvote nor block it.
    fn accept_with(&mut self, line: Vill, mm: f64, confident: bool) -> Option<Vill> {
        if confident {
            if !self.confident {
                self.history.clear();
                self.rejected = 0;
            }
            self.confident = true;
        } else if self.confident {
            // an uncertain line never replaces confident ones
            return self.current();
        }
        self.accept(line, mm)
    }

    /// The corner pair found in the disc at `centre`, if both laminae are there.
    #[allow(clippy::too_many_arguments)]
    fn corners_at(
        &mut self,
        mask: &Frame<u8>,
        thin: (&Frame<f32>, f32),
        range: f32,
        sh: &Shaft,
        v: [f64; 2],
        centre: [f64; 2],
        mm: f64,
    ) -> Option<Vill> {
        let (w, h) = mask.size();
        let (dx, dy) = (sh.tip[0] - sh.rear[0], sh.tip[1] - sh.rear[1]);
        let l2 = (dx * dx + dy * dy).max(1e-9);
        // c points across the axis towards larger rows (caudal in the usual orientation)
        let mut c = [-v[1], v[0]];
        if c[1] < 0.0 {
            c = [-c[0], -c[1]];
        }
        let r = (self.params.roi_mm / mm).max(8.0);
        let (x0, y0) = (
            (centre[0] - r).max(0.0) as usize,
            (centre[1] - r).max(0.0) as usize,
        );
        let (x1, y1) = (
            ((centre[0] + r) as usize).min(w - 1),
            ((centre[1] + r) as usize).min(h - 1),
        );
        if x1 <= x0 + 2 || y1 <= y0 + 2 {
            return None;
        }
        let (rw, rh) = (x1 - x0 + 1, y1 - y0 + 1);
        let t = self.params.lamina_frac * range;
        let (thin_r, thin_limit) = thin;
        self.roi.reshape(rw, rh);
        for yy in 0..rh {
            for xx in 0..rw {
                let (x, y) = (x0 + xx, y0 + yy);
                let p = [x as f64, y as f64];
                let (ddx, ddy) = (p[0] - centre[0], p[1] - centre[1]);
                let inside = ddx * ddx + ddy * ddy <= r * r && mask.get(x, y) != 0;
                let dark = self.bg.get(x, y) - self.smooth.get(x, y) > t;
                let is_thin = thin_r.get(x, y) > thin_limit;
                let u =
                    (((p[0] - sh.rear[0]) * dx + (p[1] - sh.rear[1]) * dy) / l2).clamp(0.0, 1.0);
                let (qx, qy) = (sh.rear[0] + dx * u, sh.rear[1] + dy * u);
                let near_shaft =
                    ((p[0] - qx).powi(2) + (p[1] - qy).powi(2)).sqrt() <= sh.half_width + 2.0;
                self.roi
                    .set(xx, yy, u8::from(inside && dark && !is_thin && !near_shaft));
            }
        }
        let comps = crate::components::components(
            &self.roi,
            (4.0 / (mm * mm)).max(6.0) as usize,
            &mut self.labels,
        );
        let near = 10.0 / mm;
        // per side of the axis line, the component with the most pixels near the centre
        let mut best: [Option<(usize, usize)>; 2] = [None, None];
        for (ci, comp) in comps.iter().enumerate() {
            let (mut side_sum, mut n_near) = (0.0, 0usize);
            for &(xx, yy) in &comp.pixels {
                let p = [f64::from(xx) + x0 as f64, f64::from(yy) + y0 as f64];
                side_sum += (p[0] - sh.tip[0]) * c[0] + (p[1] - sh.tip[1]) * c[1];
                let (qx, qy) = (p[0] - centre[0], p[1] - centre[1]);
                n_near += usize::from(qx * qx + qy * qy <= near * near);
            }
            let side = usize::from(side_sum > 0.0);
            if n_near > 0 && best[side].is_none_or(|(_, n)| n_near > n) {
                best[side] = Some((ci, n_near));
            }
        }
        let (Some((ua, _)), Some((la, _))) = (best[0], best[1]) else {
            return None;
        };
        let corner = |comp: &crate::components::Component, sign: f64| -> [f64; 2] {
            let mut scored: Vec<(f64, [f64; 2])> = comp
                .pixels
                .iter()
                .map(|&(xx, yy)| {
                    let p = [f64::from(xx) + x0 as f64, f64::from(yy) + y0 as f64];
                    let (px, py) = (p[0] - centre[0], p[1] - centre[1]);
                    (px * v[0] + py * v[1] + sign * (px * c[0] + py * c[1]), p)
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            let k = (scored.len() / 100).clamp(1, 8);
            let (sx, sy) = scored[..k]
                .iter()
                .fold((0.0, 0.0), |(a, b), (_, p)| (a + p[0], b + p[1]));
            [sx / k as f64, sy / k as f64]
        };
        let p0 = corner(&comps[ua], 1.0);
        let p1 = corner(&comps[la], -1.0);
        Some(if p0[1] <= p1[1] { [p0, p1] } else { [p1, p0] })
    }

    /// Detects the VILL. `tip` and `ventral` (unit direction the instrument travels) guide
    /// the search when an instrument is seen; otherwise the last known line and direction
    /// are used. `mm_per_px` scales the gap limits (a typical 0.3 mm is assumed if unknown).
    /// `thin` is the instrument-scale dark-line response with the level above which a dark
    /// region counts as a thin line rather than a lamina.
    #[allow(clippy::too_many_arguments)]
    pub fn detect(
        &mut self,
        f: &Frame<f32>,
        mask: &Frame<u8>,
        thin: Option<(&Frame<f32>, f32)>,
        tip: Option<[f64; 2]>,
        ventral: Option<[f64; 2]>,
        mm_per_px: Option<f64>,
    ) -> Option<Vill> {
        if let Some(v) = ventral {
            self.ventral = Some(v);
        }
        let v = self.ventral?;
        let (w, h) = f.size();
        let size = w.min(h) as f64;
        let mm = mm_per_px.unwrap_or(0.3);
        if self.kern.is_empty() || self.smooth.size() != (w, h) {
            self.kern = kernel((size / 400.0).max(1.0) as f32);
        }
        blur(f, &self.kern, &mut self.tmp, &mut self.smooth);
        let centre = match (tip, self.current()) {
            (Some(t), _) => [t[0] + v[0] * size * 0.03, t[1] + v[1] * size * 0.03],
            (None, Some(l)) => [(l[0][0] + l[1][0]) / 2.0, (l[0][1] + l[1][1]) / 2.0],
            (None, None) => return None,
        };
        let found = self
            .find_line(thin, mask, centre, v, size, mm)
            .and_then(|(a, n)| self.find_gap(thin, mask, a, n, centre, size, mm));
        match found {
            Some(line) => self.accept(line, mm),
            None => self.current(),
        }
    }

    /// The lamina-darkness maps of the last call that searched (wide background, smoothed
    /// frame), if any: a lamina pixel is darker than its background by a fraction of the range.
    pub fn darkness_maps(&self) -> Option<(&Frame<f32>, &Frame<f32>)> {
        (self.bg.size() == self.smooth.size() && self.bg.width() > 0)
            .then_some((&self.bg, &self.smooth))
    }

    /// The current (temporally smoothed) VILL.
    pub fn current(&self) -> Option<Vill> {
        if self.history.is_empty() {
            return None;
        }
        let med = |sel: &dyn Fn(&Vill) -> f64| {
            let mut v: Vec<f64> = self.history.iter().map(sel).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        Some([
            [med(&|l| l[0][0]), med(&|l| l[0][1])],
            [med(&|l| l[1][0]), med(&|l| l[1][1])],
        ])
    }

    fn accept(&mut self, line: Vill, mm: f64) -> Option<Vill> {
        if let Some(cur) = self.current() {
            let d = dist_point_line(line[0], cur[0], cur[1])
                .max(dist_point_line(line[1], cur[0], cur[1]))
                * mm;
            let shift = ((line[0][1] + line[1][1]) - (cur[0][1] + cur[1][1])).abs() / 2.0 * mm;
            let outlier = d > self.params.outlier_mm || shift > 2.0 * self.params.outlier_mm;
            // The VILL is anatomy: within one view it moves only with breathing. Once
            // established from confident detections it is locked against jumps (a jump after
            // the tip enters the window would move the line and make the tip look safe); an
            // early, uncertain line may still be replaced after repeated disagreement.
            let locked = self.confident && self.history.len() >= self.params.history.min(5);
            if outlier && (locked || self.rejected < 5) {
                self.rejected += 1;
                return Some(cur);
            }
            if outlier {
                self.history.clear();
            }
        }
        self.rejected = 0;
        self.history.push_back(line);
        while self.history.len() > self.params.history {
            self.history.pop_front();
        }
        self.current()
    }

    /// How much a lamina-like dark region lies behind `p` looking along `n` (brightness must
    /// rise along `n`): the smallest rise from four depths behind the edge (a lamina is
    /// several mm thick), or 0 when the dark side is a thin line (epidural contrast, seen by
    /// the instrument-scale line response `thin`).
    fn lamina_edge(
        &self,
        thin: Option<(&Frame<f32>, f32)>,
        p: [f64; 2],
        n: [f64; 2],
        depth: f64,
    ) -> f32 {
        let s = |k: f64| {
            self.smooth
                .sample_bilinear((p[0] + n[0] * k) as f32, (p[1] + n[1] * k) as f32)
        };
        if let Some((r, limit)) = thin
            && r.sample_bilinear(
                (p[0] - n[0] * depth * 0.3) as f32,
                (p[1] - n[1] * depth * 0.3) as f32,
            ) > limit
        {
            return 0.0;
        }
        let front = s(depth * 0.35);
        let behind = [0.2, 0.45, 0.7, 1.0]
            .iter()
            .map(|k| s(-depth * k))
            .fold(f32::MIN, f32::max);
        (front - behind).max(0.0)
    }

    fn find_line(
        &mut self,
        thin: Option<(&Frame<f32>, f32)>,
        mask: &Frame<u8>,
        centre: [f64; 2],
        v: [f64; 2],
        size: f64,
        mm: f64,
    ) -> Option<([f64; 2], [f64; 2])> {
        let (w, h) = self.smooth.size();
        let r = f64::from(self.params.roi_frac) * size;
        let depth = (self.params.lamina_depth_mm / mm).max(3.0);
        let v_angle = v[1].atan2(v[0]);
        // the instrument approaches the VILL nearly head-on: +-40 degrees around the ventral
        // direction (this excludes the horizontal edges of vertebral bodies)
        let half_range = 40usize;
        let n_theta = 2 * half_range + 1;
        let rho_max = (w + h) as f64;
        let n_rho = (2.0 * rho_max) as usize + 1;
        self.acc.clear();
        self.acc.resize(n_theta * n_rho, 0.0);
        let (x0, x1) = (
            (centre[0] - r).max(2.0) as usize,
            ((centre[0] + r) as usize).min(w.saturating_sub(3)),
        );
        let (y0, y1) = (
            (centre[1] - r).max(2.0) as usize,
            ((centre[1] + r) as usize).min(h.saturating_sub(3)),
        );
        let mut points: Vec<([f64; 2], f32, f64)> = Vec::new();
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = (x as f64 - centre[0], y as f64 - centre[1]);
                if dx * dx + dy * dy > r * r || mask.get(x, y) == 0 {
                    continue;
                }
                let s = &self.smooth;
                let gx = s.get(x + 1, y) - s.get(x - 1, y);
                let gy = s.get(x, y + 1) - s.get(x, y - 1);
                let m = (gx * gx + gy * gy).sqrt();
                if m < 1e-3 {
                    continue;
                }
                let g = [f64::from(gx / m), f64::from(gy / m)];
                if g[0] * v[0] + g[1] * v[1] < 0.64 {
                    continue;
                }
                let wgt = self.lamina_edge(thin, [x as f64, y as f64], g, depth);
                if wgt <= 0.0 {
                    continue;
                }
                points.push(([x as f64, y as f64], wgt, g[1].atan2(g[0])));
            }
        }
        if points.len() < 10 {
            return None;
        }
        // keep the strongest edges (the top 40% by weight)
        let mut ws: Vec<f32> = points.iter().map(|p| p.1).collect();
        ws.sort_by(f32::total_cmp);
        let cut = ws[ws.len() * 6 / 10];
        for &(p, wgt, ga) in points.iter().filter(|p| p.1 >= cut) {
            for k in 0..n_theta {
                let theta = v_angle + (k as f64 - half_range as f64).to_radians();
                let mut da = (theta - ga).abs() % std::f64::consts::TAU;
                if da > std::f64::consts::PI {
                    da = std::f64::consts::TAU - da;
                }
                if da > 10f64.to_radians() {
                    continue;
                }
                let rho = p[0] * theta.cos() + p[1] * theta.sin();
                let bin = (rho + rho_max).round() as usize;
                if bin < n_rho {
                    self.acc[k * n_rho + bin] += wgt;
                }
            }
        }
        let (best, _) = self
            .acc
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))?;
        let (k, bin) = (best / n_rho, best % n_rho);
        let theta = v_angle + (k as f64 - half_range as f64).to_radians();
        let rho = bin as f64 - rho_max;
        let n = [theta.cos(), theta.sin()];
        // refine: weighted least squares of the edge points within 2 px of the line
        let near: Vec<&([f64; 2], f32, f64)> = points
            .iter()
            .filter(|p| (p.0[0] * n[0] + p.0[1] * n[1] - rho).abs() < 2.0)
            .collect();
        if near.len() < 5 {
            return None;
        }
        let sw: f64 = near.iter().map(|p| f64::from(p.1)).sum();
        let c = [
            near.iter().map(|p| f64::from(p.1) * p.0[0]).sum::<f64>() / sw,
            near.iter().map(|p| f64::from(p.1) * p.0[1]).sum::<f64>() / sw,
        ];
        let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
        for p in &near {
            let (dx, dy) = (p.0[0] - c[0], p.0[1] - c[1]);
            let wg = f64::from(p.1);
            sxx += wg * dx * dx;
            syy += wg * dy * dy;
            sxy += wg * dx * dy;
        }
        let along = 0.5 * (2.0 * sxy).atan2(sxx - syy);
        let mut normal = [-along.sin(), along.cos()];
        if normal[0] * n[0] + normal[1] * n[1] < 0.0 {
            normal = [-normal[0], -normal[1]];
        }
        Some((c, normal))
    }

    #[allow(clippy::too_many_arguments)]
    fn find_gap(
        &self,
        thin: Option<(&Frame<f32>, f32)>,
        mask: &Frame<u8>,
        a: [f64; 2],
        n: [f64; 2],
        centre: [f64; 2],
        size: f64,
        mm: f64,
    ) -> Option<Vill> {
        let along = [-n[1], n[0]];
        let depth = (self.params.lamina_depth_mm / mm).max(3.0);
        let r = f64::from(self.params.roi_frac) * size * 1.3;
        // parameter of the centre's projection
        let tc = (centre[0] - a[0]) * along[0] + (centre[1] - a[1]) * along[1];
        let step = 0.5;
        let ts: Vec<f64> = (0..((2.0 * r / step) as usize))
            .map(|i| tc - r + i as f64 * step)
            .collect();
        let on: Vec<f32> = ts
            .iter()
            .map(|&t| {
                let p = [a[0] + along[0] * t, a[1] + along[1] * t];
                if !(p[0] >= 1.0
                    && p[1] >= 1.0
                    && p[0] < mask.width() as f64 - 1.0
                    && p[1] < mask.height() as f64 - 1.0)
                    || mask.get(p[0] as usize, p[1] as usize) == 0
                {
                    return -1.0;
                }
                (-4..=4)
                    .map(|s| {
                        self.lamina_edge(
                            thin,
                            [
                                p[0] + n[0] * f64::from(s) * 0.5,
                                p[1] + n[1] * f64::from(s) * 0.5,
                            ],
                            n,
                            depth,
                        )
                    })
                    .fold(0.0, f32::max)
            })
            .collect();
        let max = on.iter().copied().fold(0.0, f32::max);
        if max <= 0.0 {
            return None;
        }
        let thr = 0.3 * max;
        // gaps: runs below threshold bounded by edge on both sides
        let mut best: Option<(f64, usize, usize)> = None;
        let mut i = 0;
        while i < on.len() {
            if on[i] >= thr || on[i] < 0.0 {
                i += 1;
                continue;
            }
            let start = i;
            while i < on.len() && on[i] >= 0.0 && on[i] < thr {
                i += 1;
            }
            let end = i; // first index after the gap
            if start == 0 || end >= on.len() || on[start - 1] < thr || on[end] < thr {
                continue;
            }
            let len_mm = (end - start) as f64 * step * mm;
            if len_mm < self.params.gap_mm.0 || len_mm > self.params.gap_mm.1 {
                continue;
            }
            let mid = (ts[start] + ts[end - 1]) / 2.0;
            let score = (mid - tc).abs();
            if best.is_none_or(|b| score < b.0) {
                best = Some((score, start, end));
            }
        }
        let (_, s, e) = best?;
        let p_s = [a[0] + along[0] * ts[s - 1], a[1] + along[1] * ts[s - 1]];
        let p_e = [a[0] + along[0] * ts[e], a[1] + along[1] * ts[e]];
        // p0 is the cranial point: smaller row
        Some(if p_s[1] <= p_e[1] {
            [p_s, p_e]
        } else {
            [p_e, p_s]
        })
    }
}
