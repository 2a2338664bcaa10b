//! Instrument detection: the straight, strongly attenuating metal shaft (portal and tool)
//! that enters the visible field from outside.
//!
//! 1. Dark-line response: a difference of Gaussians `G(bg) f - G(fine) f` (positive where the
//!    frame is darker than its surroundings at the shaft's scale).
//! 2. Threshold at a fraction of the frame's dynamic range (metal is several times darker
//!    than bone edges), components, and the most massive elongated one that reaches the
//!    edge of the visible field (instruments come from outside; contrast and laminae do not).
//!    A shaft that has reached a dark structure merges with it into a blob that is not
//!    elongated; then the strong pixels in a band around the previous frame's axis are
//!    judged alone, by the same tests (never without a previous detection).
//! 3. Axis by weighted PCA; the tip is the end away from the field edge, located to a
//!    fraction of a pixel by the half-level crossing of a profile along the axis.

use crate::components::{Component, Components};
use fluoro_core::Frame;
use fluoro_enhance::field::FieldSpans;
use fluoro_enhance::gaussian::{LargeBlurScratch, kernel};
use fluoro_enhance::quality::{dark_end_position, profile};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Detector parameters; sizes are fractions of the frame's smaller side so one set works
/// from 256 to 1536 pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstrumentParams {
    /// Background scale (sigma) as a fraction of the frame size.
    pub bg_sigma_frac: f32,
    /// Fine (noise) scale sigma, px.
    pub fine_sigma_px: f32,
    /// Strong response threshold (the shaft's core), fraction of the dynamic range.
    pub threshold_frac: f32,
    /// Weak threshold for growing the shaft from its core (hysteresis), same units.
    pub grow_frac: f32,
    /// Minimum shaft length as a fraction of the frame size.
    pub min_length_frac: f32,
    /// Minimum elongation (sd along / sd across).
    pub min_elongation: f32,
    /// How close (fraction of the frame size) the rear end must come to the field edge.
    pub edge_touch_frac: f32,
    /// Minimum mean response of the core, fraction of the dynamic range (metal is far
    /// darker than bone edges). Over six simulated suite draws, shafts measured at least
    /// 0.181 and the bone bands taken for one in AP views at most 0.168.
    pub min_core_frac: f32,
    /// Maximum shaft half-width, mm (a 6 G portal is 2.55 mm in radius).
    pub max_half_width_mm: f64,
}

impl Default for InstrumentParams {
    fn default() -> Self {
        Self {
            bg_sigma_frac: 1.0 / 40.0,
            fine_sigma_px: 1.0,
            threshold_frac: 0.12,
            grow_frac: 0.06,
            min_length_frac: 0.06,
            min_elongation: 4.0,
            edge_touch_frac: 0.05,
            min_core_frac: 0.175,
            max_half_width_mm: 5.0,
        }
    }
}

/// One detection in one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Distal end `[x, y]`, px.
    pub tip: [f64; 2],
    /// Where the shaft leaves the visible field (or ends), px.
    pub rear: [f64; 2],
    /// Unit direction rear -> tip.
    pub dir: [f64; 2],
    /// Shaft half-width estimate, px (for the label map).
    pub half_width: f64,
    /// In [0, 1]: how far above threshold and how line-like.
    pub confidence: f64,
}

/// The detector and its buffers (reused across frames).
#[derive(Debug, Default)]
pub struct InstrumentDetector {
    params: InstrumentParams,
    fine: Frame<f32>,
    tmp: Frame<f32>,
    response: Frame<f32>,
    binary: Frame<u8>,
    comps: Components,
    strong: Vec<(u32, u32)>,
    fine_kernel: Vec<f32>,
    large: LargeBlurScratch,
    /// The field's row spans, for the fine blur.
    spans: FieldSpans,
    mm_per_px: Option<f64>,
    /// The previous frame's detection: where the shaft was a moment ago.
    previous: Option<Detection>,
}

fn visible(mask: &Frame<u8>, p: [f64; 2]) -> bool {
    let (x, y) = (p[0].round(), p[1].round());
    x >= 0.0
        && y >= 0.0
        && (x as usize) < mask.width()
        && (y as usize) < mask.height()
        && mask.get(x as usize, y as usize) != 0
}

/// Distance (px) from `p` along `dir` to the edge of the visible field, in steps of 0.5 px;
/// the walk stops at the first step past `limit` (a value above `limit` then means only
/// "farther than that"), or at the frame's width + height.
fn distance_to_edge(mask: &Frame<u8>, p: [f64; 2], dir: [f64; 2], limit: f64) -> f64 {
    let mut t = 0.0;
    let limit = limit.min((mask.width() + mask.height()) as f64);
    while t <= limit && visible(mask, [p[0] + dir[0] * t, p[1] + dir[1] * t]) {
        t += 0.5;
    }
    t
}

/// The hysteresis mask's two response thresholds: a pixel above `grow` is in the mask, one
/// above `strong` also counts in a component's strong core.
#[derive(Clone, Copy, Debug)]
struct Hysteresis {
    grow: f32,
    strong: f32,
}

/// One row of [`InstrumentDetector::response_pass`]: the background blended from its two
/// reduced-blur rows minus the fine blur, clamped at 0; with `(mask, thresholds, b)`
/// also the hysteresis mask, whose pixels above `strong` are 2 (the others 1): a
/// component's strong pixels are then found from its bytes, not its responses. Compiled
/// for AVX-512 and AVX2 too, with runtime dispatch.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn response_row(
    (a_row, c_row, ay): (&[f32], &[f32], f32),
    fine: &[f32],
    r: &mut [f32],
    binary: Option<(&[u8], Hysteresis, &mut [u8])>,
) {
    let rows = r.iter_mut().zip(fine).zip(a_row.iter().zip(c_row));
    for ((r, &v), (&a, &c)) in rows {
        *r = ((a + ay * (c - a)) - v).max(0.0);
    }
    if let Some((mask, Hysteresis { grow, strong }, b)) = binary {
        // `&` rather than `&&`: no branch, so the loop vectorises
        for ((b, &r), &m) in b.iter_mut().zip(r.iter()).zip(mask) {
            let kept = u8::from(m != 0) & u8::from(r > grow);
            *b = kept + (kept & u8::from(r > strong));
        }
    }
}

impl InstrumentDetector {
    /// A detector with these parameters.
    pub fn new(params: InstrumentParams) -> Self {
        Self {
            params,
            ..Default::default()
        }
    }

    /// Forgets the previous frame's detection (new study).
    pub fn reset(&mut self) {
        self.previous = None;
    }

    /// The dark-line response of the last frame.
    pub fn response(&self) -> &Frame<f32> {
        &self.response
    }

    /// Computes the dark-line response of `f` into the internal buffer.
    pub fn compute_response(&mut self, f: &Frame<f32>) {
        self.response_pass(f, None);
    }

    /// The dark-line response `G(bg) f - G(fine) f` (clamped at 0) in one pass over the rows,
    /// the background blended from the reduced blur where it is used (never written at full
    /// resolution); with `(mask, thresholds)`, the hysteresis mask `response > grow` inside
    /// the field is made in the same pass, its pixels above `strong` marked 2.
    fn response_pass(&mut self, f: &Frame<f32>, binary: Option<(&Frame<u8>, Hysteresis)>) {
        let (w, h) = f.size();
        let size = w.min(h);
        if self.fine_kernel.is_empty() {
            self.fine_kernel = kernel(self.params.fine_sigma_px);
        }
        let bg_sigma = (self.params.bg_sigma_frac * size as f32).max(1.5);
        // with the field's mask, only the field is blurred (the outside kept as it is)
        // and the background's block means taken from the blur's rows as they are made
        self.large.blur_and_prepare_rows(
            f,
            binary.map(|(mask, _)| mask),
            &mut self.spans,
            &self.fine_kernel,
            (&mut self.tmp, &mut self.fine),
            bg_sigma,
        );
        self.response.reshape(w, h);
        self.binary.reshape(w, h);
        let (fine, large) = (&self.fine, &self.large);
        self.response
            .data_mut()
            .par_chunks_mut(w)
            .zip(self.binary.data_mut().par_chunks_mut(w))
            .enumerate()
            .for_each(|(y, (r, b))| {
                let (a_row, c_row, ay) = large.rows_at(y);
                let binary = binary.map(|(mask, t)| (mask.row(y), t, b));
                response_row((a_row, c_row, ay), fine.row(y), r, binary);
            });
    }

    /// Detects the instrument in `f` (denoised, dense = low); `range` is the frame's
    /// dynamic range inside the field (e.g. p99 - p1). `None` when no shaft qualifies.
    pub fn detect(&mut self, f: &Frame<f32>, mask: &Frame<u8>, range: f32) -> Option<Detection> {
        self.detect_scaled(f, mask, range, None)
    }

    /// Like [`InstrumentDetector::detect`], with the millimetre scale (enables the width limit).
    pub fn detect_scaled(
        &mut self,
        f: &Frame<f32>,
        mask: &Frame<u8>,
        range: f32,
        mm_per_px: Option<f64>,
    ) -> Option<Detection> {
        self.mm_per_px = mm_per_px;
        let (w, h) = f.size();
        let size = w.min(h) as f64;
        let p = self.params;
        let thr = p.threshold_frac * range.max(1e-3);
        let grow = p.grow_frac * range.max(1e-3);
        self.response_pass(f, Some((mask, Hysteresis { grow, strong: thr })));
        let min_len = p.min_length_frac as f64 * size;
        // buffers taken out for the loop and put back: no allocation per frame
        let (mut comps, mut strong) = (
            std::mem::take(&mut self.comps),
            std::mem::take(&mut self.strong),
        );
        comps.label(&self.binary, (min_len as usize).max(8));
        let mut best: Option<(f64, Detection)> = None;
        for c in comps.iter() {
            if let Some(d) = self.evaluate(c, f, mask, thr, min_len, size, &mut strong)
                && best.as_ref().is_none_or(|(m, _)| d.0 > *m)
            {
                best = Some(d);
            }
        }
        (self.comps, self.strong) = (comps, strong);
        self.previous = best.map(|(_, d)| d);
        self.previous.clone()
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &self,
        c: Component<'_>,
        f: &Frame<f32>,
        mask: &Frame<u8>,
        thr: f32,
        min_len: f64,
        size: f64,
        strong: &mut Vec<(u32, u32)>,
    ) -> Option<(f64, Detection)> {
        let r = &self.response;
        // the pixels above `thr`, marked 2 in the hysteresis mask by the response pass
        let marks = &self.binary;
        strong.clear();
        strong.extend(
            c.pixels
                .iter()
                .copied()
                .filter(|&(x, y)| marks.get(x as usize, y as usize) == 2),
        );
        if (strong.len() as f64) < min_len {
            return None;
        }
        // squared weights: the metal core dominates whatever weak structure the shaft touches
        let weight = |x: u32, y: u32| f64::from(r.get(x as usize, y as usize)).powi(2);
        let elongation = |a: &crate::components::Axis| a.sd_along / a.sd_across.max(0.3);
        let mut axis = Component { pixels: strong }.principal_axis(weight)?;
        if elongation(&axis) < f64::from(self.params.min_elongation) {
            // A shaft that has reached a dark structure (a contrast column, a lamina's edge)
            // merges with it into one blob. Where the shaft was in the previous frame, keep
            // the strong pixels in a band around that axis and judge them alone: they still
            // have to pass every test below. Without a previous detection: no instrument.
            let prev = self.previous.as_ref()?;
            let band = 2.0 * prev.half_width + 3.0;
            let (p, d) = (prev.tip, prev.dir);
            strong.retain(|&(x, y)| {
                let (dx, dy) = (f64::from(x) - p[0], f64::from(y) - p[1]);
                (dx * d[1] - dy * d[0]).abs() <= band
            });
            if (strong.len() as f64) < min_len {
                return None;
            }
            axis = Component { pixels: strong }.principal_axis(weight)?;
            if elongation(&axis) < f64::from(self.params.min_elongation) {
                return None;
            }
        }
        let core = Component { pixels: strong };
        let elong = elongation(&axis);
        let dir = axis.dir;
        let (mut tmin, mut tmax) = (f64::MAX, f64::MIN);
        for &(x, y) in core.pixels {
            let (dx, dy) = (f64::from(x) - axis.centre[0], f64::from(y) - axis.centre[1]);
            if (dx * dir[1] - dy * dir[0]).abs() > 3.0 * axis.sd_across.max(1.0) {
                continue;
            }
            let t = dx * dir[0] + dy * dir[1];
            tmin = tmin.min(t);
            tmax = tmax.max(t);
        }
        if tmax - tmin < min_len {
            return None;
        }
        let at = |t: f64| [axis.centre[0] + dir[0] * t, axis.centre[1] + dir[1] * t];
        let (a, b) = (at(tmin), at(tmax));
        // the rear end is the one at the field edge, within `touch` of it: both walks stop
        // just past `touch` (the far end's walk would cross the whole field), which keeps
        // the comparison exact where it matters (an end past `touch` is farther than one
        // within it) and rejects the component when neither end is within it
        let touch = f64::from(self.params.edge_touch_frac) * size;
        let da = distance_to_edge(mask, a, [-dir[0], -dir[1]], touch);
        let db = distance_to_edge(mask, b, dir, touch);
        let (rear_end, tip_end, d) = if da <= db {
            (a, b, dir)
        } else {
            (b, a, [-dir[0], -dir[1]])
        };
        let rear_gap = da.min(db);
        if rear_gap > touch {
            return None;
        }
        // an instrument enters the field: its tip lies well inside, away from the edge
        // (a structure running along a clipped field edge does not)
        let clearance = f64::from(self.params.edge_touch_frac.min(0.04)) * size;
        if (0..16).any(|k| {
            let a = f64::from(k) * std::f64::consts::TAU / 16.0;
            !visible(
                mask,
                [
                    tip_end[0] + a.cos() * clearance,
                    tip_end[1] + a.sin() * clearance,
                ],
            )
        }) {
            return None;
        }
        // rear: where the axis leaves the visible field
        let back = [-d[0], -d[1]];
        let out = distance_to_edge(mask, rear_end, back, f64::INFINITY);
        let rear = [
            rear_end[0] + back[0] * (out - 0.5).max(0.0),
            rear_end[1] + back[1] * (out - 0.5).max(0.0),
        ];
        // sub-pixel tip: half-level crossing of the frame along the axis
        let prof = profile(f, tip_end, d, -12.0, 12.0, 0.1);
        let t_cross = dark_end_position(&prof)
            .filter(|t| t.abs() < 6.0)
            .unwrap_or(0.0);
        let tip = [tip_end[0] + d[0] * t_cross, tip_end[1] + d[1] * t_cross];
        let mean_r: f64 = core
            .pixels
            .iter()
            .map(|&(x, y)| f64::from(r.get(x as usize, y as usize)))
            .sum::<f64>()
            / core.pixels.len() as f64;
        let mass = mean_r * (tmax - tmin);
        let confidence = ((mean_r / f64::from(thr) - 1.0).clamp(0.0, 1.0) * 0.5
            + (elong / 20.0).min(1.0) * 0.5)
            .clamp(0.0, 1.0);
        let half_width = (core.pixels.len() as f64 / (tmax - tmin).max(1.0) / 2.0).max(1.0);
        // metal is far darker than bone edges, and a shaft is narrow
        if mean_r
            < f64::from(self.params.min_core_frac) * f64::from(thr / self.params.threshold_frac)
        {
            return None;
        }
        if let Some(mm) = self.mm_per_px
            && half_width * mm > self.params.max_half_width_mm
        {
            return None;
        }
        Some((
            mass,
            Detection {
                tip,
                rear,
                dir: d,
                half_width,
                confidence,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_dark_rod_entering_from_the_edge() {
        let size = 200;
        let mask = Frame::filled(size, size, 1u8);
        // rod from (0, 40) to (120, 130), 3 px wide, 600 units darker than a 2000 background
        let (x0, y0, x1, y1) = (0.0f64, 40.0f64, 120.0f64, 130.0f64);
        let len = ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
        let f = Frame::from_fn(size, size, |x, y| {
            let (px, py) = (x as f64 - x0, y as f64 - y0);
            let t = (px * (x1 - x0) + py * (y1 - y0)) / len;
            let d = (px * (y1 - y0) - py * (x1 - x0)).abs() / len;
            if (0.0..=len).contains(&t) && d <= 1.5 {
                1400.0
            } else {
                2000.0 + ((x * 7 + y * 13) % 11) as f32
            }
        });
        let mut det = InstrumentDetector::new(InstrumentParams::default());
        let d = det.detect(&f, &mask, 700.0).expect("detected");
        assert!(
            (d.tip[0] - x1).abs() < 1.0 && (d.tip[1] - y1).abs() < 1.0,
            "{:?}",
            d.tip
        );
        assert!(d.rear[0] < 2.0, "{:?}", d.rear);
        // a dark rod that does not reach the edge (e.g. contrast) is not an instrument
        let g = Frame::from_fn(size, size, |x, y| {
            if (60..140).contains(&x) && (99..102).contains(&y) {
                1400.0
            } else {
                2000.0
            }
        });
        assert!(det.detect(&g, &mask, 700.0).is_none());
    }

    /// A horizontal rod from the left edge at row 100 and a dark vertical bar (a contrast
    /// column) at x = 120..128: once the rod reaches the bar the two are one blob.
    fn rod_and_bar(tip_x: usize) -> Frame<f32> {
        Frame::from_fn(200, 200, |x, y| {
            let rod = x <= tip_x && (99..=101).contains(&y);
            let bar = (120..128).contains(&x) && (20..180).contains(&y);
            if rod || bar {
                1400.0
            } else {
                2000.0 + ((x * 7 + y * 13) % 11) as f32
            }
        })
    }

    #[test]
    fn a_shaft_merged_with_a_dark_column_is_followed_from_the_previous_frame() {
        let mask = Frame::filled(200, 200, 1u8);
        let mut det = InstrumentDetector::new(InstrumentParams::default());
        let before = det.detect(&rod_and_bar(100), &mask, 700.0).expect("apart");
        assert!((before.tip[0] - 100.5).abs() < 1.5, "{:?}", before.tip);
        let merged = det
            .detect(&rod_and_bar(121), &mask, 700.0)
            .expect("followed");
        assert!((merged.tip[1] - 100.0).abs() < 1.5, "{:?}", merged.tip);
        assert!(
            merged.tip[0] > 115.0 && merged.tip[0] < 130.0,
            "{:?}",
            merged.tip
        );
        // without a previous detection the blob is not taken for an instrument
        let mut fresh = InstrumentDetector::new(InstrumentParams::default());
        assert!(fresh.detect(&rod_and_bar(121), &mask, 700.0).is_none());
        // nor after a reset
        det.reset();
        assert!(det.detect(&rod_and_bar(121), &mask, 700.0).is_none());
    }

    /// A band from the left edge, `depth` darker than the background, 9 px tall: its core's
    /// mean response is 1.40x the strong threshold at depth 290 (the simulator's transverse
    /// processes and lamina edges that were taken for a shaft: 1.34-1.40x) and 1.54x at
    /// depth 320 (the faintest real shaft over six suite draws: 1.51x).
    fn band(depth: f32) -> Frame<f32> {
        Frame::from_fn(200, 200, |x, y| {
            if x <= 120 && (96..=104).contains(&y) {
                2000.0 - depth
            } else {
                2000.0 + ((x * 7 + y * 13) % 11) as f32
            }
        })
    }

    #[test]
    fn a_band_too_faint_for_metal_is_not_an_instrument() {
        let mask = Frame::filled(200, 200, 1u8);
        let detect = |depth: f32, min_core_frac: f32| {
            let p = InstrumentParams {
                min_core_frac,
                ..Default::default()
            };
            InstrumentDetector::new(p).detect_scaled(&band(depth), &mask, 700.0, Some(0.3))
        };
        let default = InstrumentParams::default().min_core_frac;
        assert!(detect(290.0, default).is_none());
        assert!(detect(320.0, default).is_some());
        // the former limit (0.16, 1.33x) took the faint band
        assert!(detect(290.0, 0.16).is_some());
    }

    /// The response row and its hysteresis marks: 0 outside the field or at most `grow`,
    /// 1 above `grow`, 2 above `grow` and `strong` too, whichever threshold is the higher.
    #[test]
    fn hysteresis_marks_follow_both_thresholds() {
        let n = 37;
        let fine: Vec<f32> = (0..n).map(|i| ((i * 7) % 11) as f32).collect();
        let (a, c) = (vec![9.0f32; n], vec![13.0f32; n]);
        let mask: Vec<u8> = (0..n).map(|i| u8::from(i % 5 != 0)).collect();
        for (grow, strong) in [(2.0, 6.0), (6.0, 2.0), (4.0, 4.0)] {
            let (mut r, mut b) = (vec![0f32; n], vec![9u8; n]);
            let t = Hysteresis { grow, strong };
            response_row((&a, &c, 0.25), &fine, &mut r, Some((&mask, t, &mut b)));
            for i in 0..n {
                assert_eq!(r[i], (10.0 - fine[i]).max(0.0), "response {i}");
                let kept = mask[i] != 0 && r[i] > grow;
                let want = u8::from(kept) * (1 + u8::from(r[i] > strong));
                assert_eq!(b[i], want, "mark {i}, grow {grow}, strong {strong}");
            }
            // with `strong` the lower, every kept pixel is strong
            assert!(b.contains(&0) && b.contains(&2) && (grow >= strong || b.contains(&1)));
        }
    }
}
