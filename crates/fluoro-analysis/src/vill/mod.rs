//! The ventral interlaminar line (VILL) in a contralateral oblique view.
//!
//! In CLO the instrument-side laminae appear as dark bands either side of the interlaminar
//! window the instrument is heading into; the VILL joins their window-facing ventral corners
//! (the cranial lamina's ventral-caudal corner, the caudal lamina's ventral-cranial corner).
//! The detector:
//! 1. marks pixels darker than a wide (6 mm) background, excluding thin lines (epidural
//!    contrast) and the shaft, in discs centred at the tip and at points ahead of it;
//! 2. takes, on each side of the instrument axis, the largest dark region in the disc and,
//!    among its pixels at least half as dark as its core (so fainter bone fused to it at
//!    the threshold cannot carry the point), the extreme point towards ventral and towards
//!    the window; that extreme point is then refined to where the lamina's ventral and
//!    window-facing faces meet, each face a line fitted to the region's boundary near it
//!    ([`crate::corner`]), since smoothing rounds the corner and the extreme point slides
//!    along a face that lies across the search direction; both corners are then sought
//!    again in the frame of the line they make (ventral across it, the window along it),
//!    whose faces are the anatomy's, not the approach's, unless that line turns more than
//!    20 degrees from the first: the two VILL points; a point on the disc's rim is where
//!    the disc cut the lamina, so that disc gives no line and the next one ahead is tried,
//!    and so does a pair closer than 9 mm or further apart than 30 mm, which cannot be two
//!    laminae bounding one window, and a pair whose corners do not lie either side of the
//!    instrument's axis, outside the shaft, which is not the window the instrument heads
//!    into, and, in the disc at the tip, a pair whose fainter lamina's core is under 0.6 of
//!    the darker one's (a faint structure taken for a lamina while the true corner lies
//!    outside the disc); when no disc gives a pair, the disc at the tip is searched again
//!    with the dark mask opened (strands under ~1.2 mm wide removed: the part of a
//!    contrast line the line filter missed, fused to a lamina, carries its extreme point
//!    to the rim); a line from that pass gives way to any line found without it;
//! 3. keeps the line stable over time with a running median; once established from
//!    detections next to the tip it is locked against jumps (anatomy moves only with
//!    breathing), so a line found after the tip has entered the window cannot replace it.

mod darkness;
mod disc;
mod frame;

use crate::vill_history::{Certainty, LineHistory};
use disc::{DiscRows, roi_row};
use fluoro_core::Frame;
use fluoro_enhance::gaussian::kernel;
use frame::{line_frame, turn_deg};
use serde::{Deserialize, Serialize};

/// VILL detector parameters (fields missing from a saved set take their defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VillParams {
    /// Radius of the search region around the tip for the lamina corners, mm.
    pub roi_mm: f64,
    /// Lamina darkness threshold, fraction of the frame's dynamic range.
    pub lamina_frac: f32,
    /// Frames in the running median.
    pub history: usize,
    /// A new line further than this (mm) from the running one is an outlier.
    pub outlier_mm: f64,
    /// Thin-line pixels are widened by this much (mm) before the lamina search, so that
    /// the fringe of a thin dark line is not taken for a lamina.
    pub thin_fringe_mm: f64,
    /// A lamina's corner is sought among its pixels at least this fraction as dark as the
    /// lamina's core (its 75th percentile of darkness): fainter bone fused to it at the
    /// darkness threshold (a facet or process seen through it) must not carry the corner.
    pub core_frac: f32,
    /// A corner within this distance (mm) of the search disc's rim is where the disc cut
    /// the lamina, not the lamina's corner: that disc gives no line (the next one ahead is
    /// tried).
    pub rim_mm: f64,
    /// The corner is refined to the meeting point of the lamina's ventral and window-facing
    /// faces, each fitted as a line to the boundary within this distance (mm) of the extreme
    /// point; 0 keeps the extreme point.
    pub face_fit_mm: f64,
    /// Shortest plausible VILL, mm: a corner pair closer than this is not two laminae
    /// bounding a window (windows are 9-18 mm high, interlaminar distances 12-18.5 mm;
    /// `DOMAIN.md`; the C-arm's rotation about the cranio-caudal axis does not shorten
    /// them, magnification only lengthens them), so the disc gives no line.
    pub min_len_mm: f64,
    /// Longest plausible VILL, mm (same sources, with room for oblique views).
    pub max_len_mm: f64,
    /// When no disc gives a pair, the disc at the tip is searched again with the dark mask
    /// opened by a square about this wide (mm; 0: no second pass): a lamina's dark region
    /// can run on into a thin dark strand (the part of a contrast line the line filter
    /// missed) that carries its extreme point to the disc's rim. Lines from this pass give
    /// way to any line found without it (`vill_history`).
    pub open_mm: f64,
    /// In the disc at the tip, the fainter corner's lamina core (its 75th percentile of
    /// darkness) must be at least this fraction of the darker one's: the laminae either
    /// side of one window are bone of like thickness, while a pair that takes a faint
    /// structure for one of them (a lamina seen en face, while the true corner lies
    /// outside the disc) is not the window's, and would lock a line dorsal of the true one
    /// (0: no test). On development draws no correct pair from that disc fell below 0.65;
    /// faint pairs that locked a line 6 mm dorsal were at 0.57. Discs ahead are not
    /// tested: correct pairs there go down to 0.59, and rejecting them let a disc further
    /// ahead give a line deeper than the true one, the unsafe side.
    pub min_darkness_ratio: f32,
    /// Seek each corner again in the frame of the line the first pair makes (across it
    /// for ventral, along it for the window) instead of the instrument's: the first search
    /// leans on the approach, and where a lamina's face lies along the 45 degree front that
    /// the approach sets, the extreme point slides along that face, up to 8 mm from the
    /// corner. The corners' median error went from 1.3 to 1.0 mm on development draws.
    pub line_frame: bool,
    /// The second pair is kept only if its line turns at most this much (degrees) from the
    /// first's: a first pair that is far off (one corner dragged along fused bone) sets a
    /// frame in which a corner can slide to the far end of a lamina.
    pub line_frame_max_turn_deg: f64,
}

impl Default for VillParams {
    fn default() -> Self {
        Self {
            roi_mm: 16.0,
            lamina_frac: 0.05,
            history: 9,
            outlier_mm: 3.0,
            thin_fringe_mm: 0.6,
            core_frac: 0.5,
            rim_mm: 2.0,
            face_fit_mm: 2.5,
            min_len_mm: 9.0,
            max_len_mm: 30.0,
            open_mm: 1.2,
            min_darkness_ratio: 0.6,
            line_frame: true,
            line_frame_max_turn_deg: 20.0,
        }
    }
}

/// How far ahead of the tip, in mm, the discs searched for the laminae lie: the window
/// can be up to about 40 mm ahead of a tip that has not reached it.
const DISCS_MM: [f64; 6] = [0.0, 8.0, 16.0, 24.0, 32.0, 40.0];

/// The detector with its buffers and temporal state.
#[derive(Debug, Default)]
pub struct VillDetector {
    params: VillParams,
    /// Whole-frame smoothing and background, made only on request for the rule-based
    /// labels ([`VillDetector::darkness_maps`]).
    smooth: Frame<f32>,
    bg: Frame<f32>,
    tmp: Frame<f32>,
    /// The smoothing kernel and the bits of its sigma.
    kern: Vec<f32>,
    kern_sigma: u32,
    /// The accepted lines over time.
    lines: LineHistory,
    /// The background at reduced resolution, prepared once per searched frame.
    large: fluoro_enhance::gaussian::LargeBlurScratch,
    /// The disc's frame rectangle with the smoothing kernel's margin, and its smoothing.
    crop: Frame<f32>,
    crop_smooth: Frame<f32>,
    /// The disc's wide background and darkness (background - smoothed), rectangle-sized.
    roi_bg: Frame<f32>,
    roi_dark: Frame<f32>,
    /// Whether a search ever ran (the lamina darkness is then meaningful).
    searched: bool,
    roi: Frame<u8>,
    opened: Frame<u8>,
    thin: Frame<u8>,
    thin_tmp: Frame<u8>,
    thin_wide: Frame<u8>,
    comps: crate::components::Components,
    scored: Vec<(f64, usize, [f64; 2])>,
    darkness: Vec<f32>,
    member: Frame<u8>,
    fit: crate::corner::CornerFit,
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

impl VillDetector {
    /// A detector with these parameters.
    pub fn new(params: VillParams) -> Self {
        Self {
            params,
            lines: LineHistory::new(params.history, params.outlier_mm),
            ..Default::default()
        }
    }

    /// Forgets the temporal state.
    pub fn reset(&mut self) {
        self.lines.reset();
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
            return self.lines.current();
        };
        let (w, h) = f.size();
        let (dx, dy) = (sh.tip[0] - sh.rear[0], sh.tip[1] - sh.rear[1]);
        let l = (dx * dx + dy * dy).sqrt().max(1e-9);
        let v = [dx / l, dy / l];
        let sigma = self.smooth_sigma(mm);
        if self.kern_sigma != sigma.to_bits() || self.kern.is_empty() {
            self.kern = kernel(sigma);
            self.kern_sigma = sigma.to_bits();
        }
        // the background at reduced resolution around the discs that may be searched; both
        // maps are then made only in the discs searched
        let area = self.discs_area(sh.tip, v, mm, (w, h));
        self.large.prepare_around(f, (6.0 / mm) as f32, area);
        self.searched = true;
        let mut best: Option<(f64, Vill, Certainty)> = None;
        // a second pass on opened dark masks only when no disc gave a pair (see `open_mm`)
        let passes: &[bool] = if self.params.open_mm > 0.0 {
            &[false, true]
        } else {
            &[false]
        };
        for &opened in passes {
            if best.is_some() {
                break;
            }
            // the second pass searches the disc at the tip only: a pair it finds further ahead
            // can be bone well ventral of the window (in a simulated CLO 35 deg study, 22 mm
            // ahead in the vertebral body: ten missed stops)
            let discs: &[f64] = if opened { &[0.0] } else { &DISCS_MM };
            for &ahead_mm in discs {
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
                // a pair in the disc at the tip would lock the line: there only, the laminae
                // must be of like darkness (see `min_darkness_ratio`)
                let min_ratio = if ahead_mm == 0.0 {
                    self.params.min_darkness_ratio
                } else {
                    0.0
                };
                let found =
                    self.corners_at(f, mask, thin, range, &sh, v, centre, mm, opened, min_ratio);
                if let Some(pair) = found {
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
                        let certainty = Certainty::of(ahead_mm == 0.0, opened);
                        best = Some((along.abs(), pair, certainty));
                    }
                    if best.is_some() {
                        break;
                    }
                }
            }
        }
        match best {
            Some((_, pair, certainty)) => self.lines.accept_with(pair, mm, certainty),
            None => self.lines.current(),
        }
    }

    /// The rectangle (`x0, y0, x1, y1`, ends excluded) holding every disc a search may
    /// look in: those of [`DISCS_MM`] ahead of the tip.
    fn discs_area(&self, tip: [f64; 2], v: [f64; 2], mm: f64, size: (usize, usize)) -> [usize; 4] {
        DISCS_MM
            .iter()
            .fold([usize::MAX, usize::MAX, 0, 0], |a, ahead| {
                let centre = [tip[0] + v[0] * ahead / mm, tip[1] + v[1] * ahead / mm];
                let (x0, y0, x1, y1) = self.disc_rect(centre, mm, size);
                [
                    a[0].min(x0),
                    a[1].min(y0),
                    a[2].max(x1 + 1),
                    a[3].max(y1 + 1),
                ]
            })
    }

    /// A search disc's radius, px.
    fn disc_radius(&self, mm: f64) -> f64 {
        (self.params.roi_mm / mm).max(8.0)
    }

    /// The disc at `centre`'s bounding box clipped to the frame (corners included).
    fn disc_rect(
        &self,
        centre: [f64; 2],
        mm: f64,
        (w, h): (usize, usize),
    ) -> (usize, usize, usize, usize) {
        let r = self.disc_radius(mm);
        let lo = |c: f64| (c - r).max(0.0) as usize;
        let hi = |c: f64, n: usize| ((c + r) as usize).min(n.saturating_sub(1));
        (
            lo(centre[0]),
            lo(centre[1]),
            hi(centre[0], w),
            hi(centre[1], h),
        )
    }

    /// The corner pair found in the disc at `centre`, if both laminae are there.
    #[allow(clippy::too_many_arguments)]
    fn corners_at(
        &mut self,
        f: &Frame<f32>,
        mask: &Frame<u8>,
        thin: (&Frame<f32>, f32),
        range: f32,
        sh: &Shaft,
        v: [f64; 2],
        centre: [f64; 2],
        mm: f64,
        opened: bool,
        min_ratio: f32,
    ) -> Option<Vill> {
        let (w, h) = mask.size();
        let (dx, dy) = (sh.tip[0] - sh.rear[0], sh.tip[1] - sh.rear[1]);
        let l2 = (dx * dx + dy * dy).max(1e-9);
        // c points across the axis towards larger rows (caudal in the usual orientation)
        let mut c = [-v[1], v[0]];
        if c[1] < 0.0 {
            c = [-c[0], -c[1]];
        }
        let r = self.disc_radius(mm);
        let (x0, y0, x1, y1) = self.disc_rect(centre, mm, (w, h));
        if x1 <= x0 + 2 || y1 <= y0 + 2 {
            return None;
        }
        let (rw, rh) = (x1 - x0 + 1, y1 - y0 + 1);
        self.darkness_in(f, x0, y0, rw, rh);
        let t = self.params.lamina_frac * range;
        let (thin_r, thin_limit) = thin;
        // thin lines (contrast, a lamina seen edge-on) with their blurred fringe: a thin
        // line's edges are dark but not thin themselves, and would pass for a lamina
        let fringe = (self.params.thin_fringe_mm / mm).round().max(0.0) as usize;
        self.thin.reshape(rw, rh);
        for yy in 0..rh {
            let src = &thin_r.row(y0 + yy)[x0..x0 + rw];
            for (o, &v) in self.thin.row_mut(yy).iter_mut().zip(src) {
                *o = u8::from(v > thin_limit);
            }
        }
        crate::morphology::dilate_into(&self.thin, fringe, &mut self.thin_tmp, &mut self.thin_wide);
        self.roi.reshape(rw, rh);
        let disc = DiscRows {
            centre,
            r,
            rear: sh.rear,
            d: [dx, dy],
            l2,
            reach: sh.half_width + 2.0,
            dark: t,
        };
        for yy in 0..rh {
            let y = y0 + yy;
            let rows = (
                &mask.row(y)[x0..x0 + rw],
                self.roi_dark.row(yy),
                self.thin_wide.row(yy),
            );
            roi_row(&disc, (x0, y), rows, self.roi.row_mut(yy));
        }
        if opened {
            let r = (self.params.open_mm / mm / 2.0).round().max(1.0) as usize;
            crate::morphology::open_into(
                &self.roi,
                r,
                &mut self.thin_tmp,
                &mut self.thin,
                &mut self.opened,
            );
            std::mem::swap(&mut self.roi, &mut self.opened);
        }
        self.comps
            .label(&self.roi, (4.0 / (mm * mm)).max(6.0) as usize);
        let comps = &self.comps;
        // per side of the axis line, the largest dark region in the disc (a window can be
        // 22 mm wide, so a lamina's nearest pixels may be far from the centre)
        let mut best: [Option<(usize, usize)>; 2] = [None, None];
        for (ci, comp) in comps.iter().enumerate() {
            let side_sum: f64 = comp
                .pixels
                .iter()
                .map(|&(xx, yy)| {
                    let p = [f64::from(xx) + x0 as f64, f64::from(yy) + y0 as f64];
                    (p[0] - sh.tip[0]) * c[0] + (p[1] - sh.tip[1]) * c[1]
                })
                .sum();
            let side = usize::from(side_sum > 0.0);
            let n = comp.pixels.len();
            if best[side].is_none_or(|(_, m)| n > m) {
                best[side] = Some((ci, n));
            }
        }
        let (Some((ua, _)), Some((la, _))) = (best[0], best[1]) else {
            return None;
        };
        let (scored, darkness) = (&mut self.scored, &mut self.darkness);
        let (member, fit) = (&mut self.member, &mut self.fit);
        member.reshape(rw, rh);
        let face_fit = self.params.face_fit_mm / mm;
        let roi_dark = &self.roi_dark;
        let core_frac = self.params.core_frac;
        // a corner on the disc's rim is where the disc cut the lamina, not its corner
        let rim = (r - self.params.rim_mm / mm).max(0.0);
        let dark_at = |xx: u32, yy: u32| roi_dark.get(xx as usize, yy as usize);
        // a lamina's core darkness: its 75th percentile
        let mut core_of = |comp: crate::components::Component<'_>| -> f32 {
            darkness.clear();
            darkness.extend(comp.pixels.iter().map(|&(xx, yy)| dark_at(xx, yy)));
            let n = darkness.len();
            *darkness.select_nth_unstable_by(n * 3 / 4, f32::total_cmp).1
        };
        let (core0, core1) = (core_of(comps.get(ua)), core_of(comps.get(la)));
        if core0.min(core1) < min_ratio * core0.max(core1) {
            return None;
        }
        // a lamina's corner (`core`: its core darkness), sought towards `ventral` and, with
        // `sign`, `across` (the window's side of the lamina)
        let mut corner = |comp: crate::components::Component<'_>,
                          sign: f64,
                          core: f32,
                          [ventral, across]: [[f64; 2]; 2]|
         -> Option<[f64; 2]> {
            let limit = core_frac * core;
            scored.clear();
            scored.extend(comp.pixels.iter().enumerate().filter_map(|(i, &(xx, yy))| {
                if dark_at(xx, yy) < limit {
                    return None;
                }
                let p = [f64::from(xx) + x0 as f64, f64::from(yy) + y0 as f64];
                let (px, py) = (p[0] - centre[0], p[1] - centre[1]);
                let towards = px * ventral[0] + py * ventral[1];
                Some((towards + sign * (px * across[0] + py * across[1]), i, p))
            }));
            // the k best, best first, ties in pixel order (as a stable sort of all would
            // give them; selecting them first spares sorting the whole region)
            let k = (scored.len() / 100).clamp(1, 8);
            let order = |a: &(f64, usize, [f64; 2]), b: &(f64, usize, [f64; 2])| {
                b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
            };
            if scored.len() > k {
                scored.select_nth_unstable_by(k - 1, order);
            }
            scored[..k].sort_by(order);
            let best = scored[0].2;
            if (best[0] - centre[0]).hypot(best[1] - centre[1]) > rim {
                return None;
            }
            let (sx, sy) = scored[..k]
                .iter()
                .fold((0.0, 0.0), |(a, b), (_, _, p)| (a + p[0], b + p[1]));
            let extreme = [sx / k as f64, sy / k as f64];
            if face_fit <= 0.0 {
                return Some(extreme);
            }
            member.data_mut().fill(0);
            for &(xx, yy) in comp.pixels {
                if dark_at(xx, yy) >= limit {
                    member.set(xx as usize, yy as usize, 1);
                }
            }
            let member = &*member;
            let is_member = |x: i64, y: i64| {
                x >= 0
                    && y >= 0
                    && (x as usize) < rw
                    && (y as usize) < rh
                    && member.get(x as usize, y as usize) != 0
            };
            let dark = |x: i64, y: i64| {
                dark_at(
                    x.clamp(0, rw as i64 - 1) as u32,
                    y.clamp(0, rh as i64 - 1) as u32,
                )
            };
            let local = [extreme[0] - x0 as f64, extreme[1] - y0 as f64];
            let pixels = comp
                .pixels
                .iter()
                .map(|&(xx, yy)| (i64::from(xx), i64::from(yy)))
                .filter(|&(x, y)| is_member(x, y));
            let normals = [ventral, [sign * across[0], sign * across[1]]];
            let vertex = fit.vertex(
                pixels,
                is_member,
                dark,
                local,
                normals,
                face_fit,
                (face_fit / 3.0).max(3.0),
            );
            Some(vertex.map_or(extreme, |p| [p[0] + x0 as f64, p[1] + y0 as f64]))
        };
        let p0 = corner(comps.get(ua), 1.0, core0, [v, c])?;
        let p1 = corner(comps.get(la), -1.0, core1, [v, c])?;
        // the corners again in the frame of the line they make (see `line_frame`); a
        // corner this search puts on the rim, or a line that turns too far, leaves the
        // first pair
        let max_turn = self.params.line_frame_max_turn_deg;
        let (p0, p1) = match line_frame(p0, p1, v, c) {
            Some(frame) if self.params.line_frame => {
                let q0 = corner(comps.get(ua), 1.0, core0, frame);
                let q1 = corner(comps.get(la), -1.0, core1, frame);
                match q0.zip(q1) {
                    Some((q0, q1)) if turn_deg([p0, p1], [q0, q1]) <= max_turn => (q0, q1),
                    _ => (p0, p1),
                }
            }
            _ => (p0, p1),
        };
        // the instrument heads into the window between the laminae: its axis passes between
        // the two corners, each on its lamina's side and outside the shaft; otherwise this is
        // not the window it heads into
        let across = |p: [f64; 2]| (p[0] - sh.tip[0]) * c[0] + (p[1] - sh.tip[1]) * c[1];
        if -across(p0) < sh.half_width || across(p1) < sh.half_width {
            return None;
        }
        let len_mm = (p0[0] - p1[0]).hypot(p0[1] - p1[1]) * mm;
        if len_mm < self.params.min_len_mm || len_mm > self.params.max_len_mm {
            return None;
        }
        Some(if p0[1] <= p1[1] { [p0, p1] } else { [p1, p0] })
    }

    /// The current (temporally smoothed) VILL.
    pub fn current(&self) -> Option<Vill> {
        self.lines.current()
    }

    /// Whether the current line is established from detections next to the tip and
    /// locked against jumps for the rest of the study.
    pub fn locked(&self) -> bool {
        self.lines.locked()
    }
}

#[cfg(test)]
mod tests;
