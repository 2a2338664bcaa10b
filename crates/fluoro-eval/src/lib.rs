//! Scoring a result folder (`fluoro process --out`) against a ground-truth folder
//! (`fluoro synth --truth`), both in the contract's layout.

use fluoro_core::record::{FrameRecord, SafetyState, VillRecord, signed_distance_to_line};
use serde::Serialize;

pub mod agreement;
pub mod plan;
mod table;
use std::path::{Path, PathBuf};
pub use table::table;

/// Errors reading the folders.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {detail}")]
pub struct EvalError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub detail: String,
}

fn eerr(path: &Path, e: impl std::fmt::Display) -> EvalError {
    EvalError {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// Reads `frames.jsonl`.
pub fn read_records(dir: &Path) -> Result<Vec<FrameRecord>, EvalError> {
    let p = dir.join("frames.jsonl");
    let text = std::fs::read_to_string(&p).map_err(|e| eerr(&p, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| eerr(&p, format!("line {}: {e}", i + 1))))
        .collect()
}

/// Median, 95th percentile and count of a sample.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Dist {
    /// Number of values.
    pub n: usize,
    /// Median (`null` when empty).
    pub median: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
}

impl Dist {
    fn of(v: &[f64]) -> Self {
        if v.is_empty() {
            return Self::default();
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let q = |p: f64| s[((p * (s.len() - 1) as f64).round() as usize).min(s.len() - 1)];
        Self {
            n: s.len(),
            median: Some(q(0.5)),
            p95: Some(q(0.95)),
            mean: Some(s.iter().sum::<f64>() / s.len() as f64),
        }
    }
}

/// All scores of one result.
#[derive(Clone, Debug, Serialize)]
pub struct Scores {
    /// Frames compared.
    pub frames: usize,
    /// Millimetres per pixel used for `_mm` values.
    pub mm_per_px: Option<f64>,
    /// Frames where the truth has the tip in view.
    pub truth_visible: usize,
    /// Of those, frames where the result detected it.
    pub detected_when_visible: usize,
    /// Detection recall where visible.
    pub detection_recall: Option<f64>,
    /// Frames where the truth has no tip in view.
    pub truth_empty: usize,
    /// Of those, frames where the result claimed a detection.
    pub false_positives: usize,
    /// False positives / empty frames.
    pub false_positive_rate: Option<f64>,
    /// Tip error, px.
    pub tip_error_px: Dist,
    /// Tip error, mm.
    pub tip_error_mm: Dist,
    /// Axis angle error, degrees (lines, 0-90).
    pub axis_error_deg: Dist,
    /// Mean distance of the truth VILL points from the result's VILL line, mm.
    pub vill_distance_mm: Dist,
    /// VILL angle error, degrees.
    pub vill_angle_deg: Dist,
    /// Frames with a truth VILL and no result VILL.
    pub vill_missed: usize,
    /// Signed error of the tip-to-VILL distance, result minus truth, mm, on frames where
    /// both give one. Positive: the result puts the tip further from crossing than it is
    /// (the unsafe side); negative: closer (the cautious side).
    pub depth_error_mm: Dist,
    /// The part of `depth_error_mm` due to the tip: the result tip's signed distance from the
    /// truth VILL minus the truth tip's, mm.
    pub depth_error_tip_mm: Dist,
    /// The part due to the line: the truth tip's signed distance from the result VILL minus
    /// its distance from the truth VILL, mm.
    pub depth_error_line_mm: Dist,
    /// Each VILL end point's error (result minus truth, mm) in the instrument's frame, `[p0,
    /// p1]`: where the line's error comes from, corner by corner.
    pub vill_end_error_mm: [EndError; 2],
    /// Confusion matrix, rows = truth, columns = result, order safe/caution/stop/unknown.
    pub state_confusion: [[usize; 4]; 4],
    /// Frames where the truth is stop and the result said safe: the worst error.
    pub missed_stops: usize,
    /// Frames where the truth is stop and the result said anything but stop.
    pub stop_not_flagged: usize,
    /// Fraction of frames with the same state.
    pub state_accuracy: Option<f64>,
    /// Dice per label (lamina, ligamentum flavum, contrast, instrument); `null` when the
    /// label is absent from both.
    pub dice: [Option<f64>; 4],
    /// The plan against the truth, when the result had one (`null` otherwise and when
    /// pooled).
    pub plan: Option<plan::PlanScore>,
    /// The per-frame values behind the distributions (for pooling several studies).
    #[serde(skip)]
    pub raw: Raw,
}

/// One VILL end point's error, mm, split along the truth instrument's axis (`ventral`: > 0
/// the result's corner lies ventral of the truth's, which moves the line the unsafe way) and
/// across it (`into_window`: > 0 towards the other end point's side of the axis).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct EndError {
    /// Along the instrument axis, > 0 ventral.
    pub ventral: Dist,
    /// Across the axis, > 0 towards the interlaminar window.
    pub into_window: Dist,
}

/// Per-frame values and pixel counts, kept so several studies can be pooled.
#[derive(Clone, Debug, Default)]
pub struct Raw {
    /// Tip errors, px.
    pub tip_px: Vec<f64>,
    /// Tip errors, mm.
    pub tip_mm: Vec<f64>,
    /// Axis errors, degrees.
    pub axis_deg: Vec<f64>,
    /// VILL distances, mm.
    pub vill_mm: Vec<f64>,
    /// VILL angle errors, degrees.
    pub vill_deg: Vec<f64>,
    /// Signed tip-to-VILL errors and their tip and line parts, mm.
    pub depth_mm: [Vec<f64>; 3],
    /// VILL end point errors, `[p0, p1]` x `[ventral, into_window]`, mm.
    pub vill_end_mm: [[Vec<f64>; 2]; 2],
    /// Dice intersections and size sums per label.
    pub dice_counts: [(u64, u64); 4],
}

impl Scores {
    /// Fills the rates, distributions, state accuracy and Dice from the counts and
    /// `self.raw`: the one place both a study's scores and pooled scores get them.
    fn derive(&mut self) {
        self.detection_recall = (self.truth_visible > 0)
            .then(|| self.detected_when_visible as f64 / self.truth_visible as f64);
        self.false_positive_rate =
            (self.truth_empty > 0).then(|| self.false_positives as f64 / self.truth_empty as f64);
        let raw = &self.raw;
        self.tip_error_px = Dist::of(&raw.tip_px);
        self.tip_error_mm = Dist::of(&raw.tip_mm);
        self.axis_error_deg = Dist::of(&raw.axis_deg);
        self.vill_distance_mm = Dist::of(&raw.vill_mm);
        self.vill_angle_deg = Dist::of(&raw.vill_deg);
        self.depth_error_mm = Dist::of(&raw.depth_mm[0]);
        self.depth_error_tip_mm = Dist::of(&raw.depth_mm[1]);
        self.depth_error_line_mm = Dist::of(&raw.depth_mm[2]);
        self.vill_end_error_mm = std::array::from_fn(|k| EndError {
            ventral: Dist::of(&raw.vill_end_mm[k][0]),
            into_window: Dist::of(&raw.vill_end_mm[k][1]),
        });
        let agree: usize = (0..4).map(|i| self.state_confusion[i][i]).sum();
        self.state_accuracy = (self.frames > 0).then(|| agree as f64 / self.frames as f64);
        let counts = raw.dice_counts;
        self.dice = std::array::from_fn(|k| {
            (counts[k].1 > 0).then(|| 2.0 * counts[k].0 as f64 / counts[k].1 as f64)
        });
    }

    /// Scores of nothing: zero counts, empty distributions.
    pub fn empty() -> Self {
        Self {
            frames: 0,
            mm_per_px: None,
            truth_visible: 0,
            detected_when_visible: 0,
            detection_recall: None,
            truth_empty: 0,
            false_positives: 0,
            false_positive_rate: None,
            tip_error_px: Dist::default(),
            tip_error_mm: Dist::default(),
            axis_error_deg: Dist::default(),
            vill_distance_mm: Dist::default(),
            vill_angle_deg: Dist::default(),
            vill_missed: 0,
            depth_error_mm: Dist::default(),
            depth_error_tip_mm: Dist::default(),
            depth_error_line_mm: Dist::default(),
            vill_end_error_mm: Default::default(),
            state_confusion: [[0; 4]; 4],
            missed_stops: 0,
            stop_not_flagged: 0,
            state_accuracy: None,
            dice: [None; 4],
            plan: None,
            raw: Raw::default(),
        }
    }
}

/// Pools several studies' scores: counts add up, distributions are recomputed from all frames.
pub fn pool(all: &[Scores]) -> Scores {
    let mut raw = Raw::default();
    let mut s = Scores::empty();
    for x in all {
        s.frames += x.frames;
        s.truth_visible += x.truth_visible;
        s.detected_when_visible += x.detected_when_visible;
        s.truth_empty += x.truth_empty;
        s.false_positives += x.false_positives;
        s.vill_missed += x.vill_missed;
        s.missed_stops += x.missed_stops;
        s.stop_not_flagged += x.stop_not_flagged;
        for i in 0..4 {
            for j in 0..4 {
                s.state_confusion[i][j] += x.state_confusion[i][j];
            }
            raw.dice_counts[i].0 += x.raw.dice_counts[i].0;
            raw.dice_counts[i].1 += x.raw.dice_counts[i].1;
        }
        raw.tip_px.extend(&x.raw.tip_px);
        raw.tip_mm.extend(&x.raw.tip_mm);
        raw.axis_deg.extend(&x.raw.axis_deg);
        raw.vill_mm.extend(&x.raw.vill_mm);
        raw.vill_deg.extend(&x.raw.vill_deg);
        for (all, one) in raw.depth_mm.iter_mut().zip(&x.raw.depth_mm) {
            all.extend(one);
        }
        for (all, one) in raw.vill_end_mm.iter_mut().zip(&x.raw.vill_end_mm) {
            for (all, one) in all.iter_mut().zip(one) {
                all.extend(one);
            }
        }
    }
    s.raw = raw;
    s.derive();
    s
}

fn dist2(a: [f64; 2], b: [f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

fn line_angle(a: [f64; 2], b: [f64; 2]) -> f64 {
    (b[1] - a[1]).atan2(b[0] - a[0]).to_degrees()
}

fn undirected_diff(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(180.0);
    d.min(180.0 - d)
}

fn point_line(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let l = (dx * dx + dy * dy).sqrt().max(1e-9);
    ((p[0] - a[0]) * dy - (p[1] - a[1]) * dx).abs() / l
}

/// The signed tip-to-VILL error of one frame (result minus truth) and its tip and line
/// parts, mm; `None` unless both give a tip, a rear end and a VILL and the scale is known.
/// Both parts use the truth's rear end for the side, so they add up to the whole error
/// unless the result's rear end is on the other side of its own line.
fn depth_error(truth: &FrameRecord, result: &FrameRecord, mm: Option<f64>) -> Option<[f64; 3]> {
    let mm = mm?;
    let (tt, tr, tv) = (truth.tool.tip?, truth.tool.rear?, truth.vill?);
    let (rt, rr, rv) = (result.tool.tip?, result.tool.rear?, result.vill?);
    let d = |tip, rear, v: VillRecord| signed_distance_to_line(tip, rear, v.p0, v.p1);
    let truth_d = d(tt, tr, tv)?;
    let whole = d(rt, rr, rv)? - truth_d;
    let tip = d(rt, tr, tv)? - truth_d;
    let line = d(tt, tr, rv)? - truth_d;
    Some([whole * mm, tip * mm, line * mm])
}

/// Each VILL end point's error (result minus truth) in mm along the truth instrument's axis
/// (> 0 ventral) and across it (> 0 towards the other end point's side), `[p0, p1]`.
/// The result's end points are matched to the truth's by the pairing with the smaller total
/// distance, so an order swap is not counted as an error. `None` unless both give a VILL,
/// the truth gives a tip and a rear end, and the scale is known.
fn vill_end_errors(
    truth: &FrameRecord,
    result: &FrameRecord,
    mm: Option<f64>,
) -> Option<[[f64; 2]; 2]> {
    let mm = mm?;
    let (tip, rear, tv, rv) = (truth.tool.tip?, truth.tool.rear?, truth.vill?, result.vill?);
    let (dx, dy) = (tip[0] - rear[0], tip[1] - rear[1]);
    let len = dx.hypot(dy);
    if len <= 0.0 {
        return None;
    }
    let along = [dx / len, dy / len];
    let across = [-along[1], along[0]];
    let t = [tv.p0, tv.p1];
    let r =
        if dist2(rv.p0, tv.p0) + dist2(rv.p1, tv.p1) <= dist2(rv.p1, tv.p0) + dist2(rv.p0, tv.p1) {
            [rv.p0, rv.p1]
        } else {
            [rv.p1, rv.p0]
        };
    let dot = |a: [f64; 2], b: [f64; 2]| a[0] * b[0] + a[1] * b[1];
    Some(std::array::from_fn(|k| {
        let e = [r[k][0] - t[k][0], r[k][1] - t[k][1]];
        let other = t[1 - k];
        let to_other = [other[0] - t[k][0], other[1] - t[k][1]];
        let side = if dot(to_other, across) >= 0.0 {
            1.0
        } else {
            -1.0
        };
        [dot(e, along) * mm, side * dot(e, across) * mm]
    }))
}

fn state_index(s: SafetyState) -> usize {
    SafetyState::ALL.iter().position(|x| *x == s).unwrap_or(3)
}

/// The scale to use: `scene.json`'s `mm_per_px` in the truth, else the result's summary.
pub fn mm_per_px(truth: &Path, result: &Path) -> Option<f64> {
    let read = |p: PathBuf| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    };
    read(truth.join("scene.json"))
        .and_then(|v| v["mm_per_px"].as_f64())
        .or_else(|| read(result.join("summary.json")).and_then(|v| v["mm_per_px"].as_f64()))
}

/// Scores `result` against `truth`.
pub fn evaluate(truth: &Path, result: &Path) -> Result<Scores, EvalError> {
    let t = read_records(truth)?;
    let r = read_records(result)?;
    if t.len() != r.len() {
        return Err(eerr(
            &result.join("frames.jsonl"),
            format!("{} frames but the truth has {}", r.len(), t.len()),
        ));
    }
    let mm = mm_per_px(truth, result);
    let mut s = Scores::empty();
    s.frames = t.len();
    s.mm_per_px = mm;
    let (mut tip_px, mut axis, mut vd, mut va) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut depth: [Vec<f64>; 3] = Default::default();
    let mut ends: [[Vec<f64>; 2]; 2] = Default::default();
    for (a, b) in t.iter().zip(&r) {
        if let Some(e) = vill_end_errors(a, b, mm) {
            for (v, e) in ends.iter_mut().zip(e) {
                v[0].push(e[0]);
                v[1].push(e[1]);
            }
        }
        if let Some(parts) = depth_error(a, b, mm) {
            for (v, p) in depth.iter_mut().zip(parts) {
                v.push(p);
            }
        }
        if a.tool.detected {
            s.truth_visible += 1;
            if b.tool.detected {
                s.detected_when_visible += 1;
                if let (Some(p), Some(q)) = (a.tool.tip, b.tool.tip) {
                    tip_px.push(dist2(p, q));
                }
                if let (Some(x), Some(y)) = (a.tool.axis_deg, b.tool.axis_deg) {
                    axis.push(undirected_diff(x, y));
                }
            }
        } else {
            s.truth_empty += 1;
            s.false_positives += usize::from(b.tool.detected);
        }
        if let Some(tv) = a.vill {
            match b.vill {
                Some(rv) => {
                    let d =
                        (point_line(tv.p0, rv.p0, rv.p1) + point_line(tv.p1, rv.p0, rv.p1)) / 2.0;
                    vd.push(d * mm.unwrap_or(1.0));
                    va.push(undirected_diff(
                        line_angle(tv.p0, tv.p1),
                        line_angle(rv.p0, rv.p1),
                    ));
                }
                None => s.vill_missed += 1,
            }
        }
        let (ti, ri) = (state_index(a.guidance.state), state_index(b.guidance.state));
        s.state_confusion[ti][ri] += 1;
        if a.guidance.state == SafetyState::Stop {
            s.missed_stops += usize::from(b.guidance.state == SafetyState::Safe);
            s.stop_not_flagged += usize::from(b.guidance.state != SafetyState::Stop);
        }
    }
    s.raw = Raw {
        tip_mm: tip_px
            .iter()
            .map(|v| v * mm.unwrap_or(f64::NAN))
            .filter(|v| v.is_finite())
            .collect(),
        tip_px,
        axis_deg: axis,
        vill_mm: vd,
        vill_deg: va,
        depth_mm: depth,
        vill_end_mm: ends,
        dice_counts: dice_counts(truth, result, t.len())?,
    };
    s.plan = plan::score(&t, result, mm);
    s.derive();
    Ok(s)
}

/// Per label, the intersection and the sum of sizes over all frames (Dice = 2 I / S).
fn dice_counts(truth: &Path, result: &Path, frames: usize) -> Result<[(u64, u64); 4], EvalError> {
    let mut inter = [0u64; 4];
    let mut sum = [0u64; 4];
    for i in 0..frames {
        let name = format!("{i:06}.png");
        let (pt, pr) = (
            truth.join("labels").join(&name),
            result.join("labels").join(&name),
        );
        let a = image::open(&pt).map_err(|e| eerr(&pt, e))?.to_luma8();
        let b = image::open(&pr).map_err(|e| eerr(&pr, e))?.to_luma8();
        if a.dimensions() != b.dimensions() {
            return Err(eerr(
                &pr,
                format!(
                    "size {:?} differs from the truth's {:?}",
                    b.dimensions(),
                    a.dimensions()
                ),
            ));
        }
        for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
            for l in 1..=4u8 {
                let (ix, iy) = (*x == l, *y == l);
                sum[l as usize - 1] += u64::from(ix) + u64::from(iy);
                inter[l as usize - 1] += u64::from(ix && iy);
            }
        }
    }
    Ok(std::array::from_fn(|k| (inter[k], sum[k])))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use fluoro_core::record::{GuidanceRecord, ToolRecord};

    pub(crate) fn record(tip: [f64; 2], line_x: f64) -> FrameRecord {
        FrameRecord {
            frame: 0,
            time_ms: 0.0,
            tool: ToolRecord {
                detected: true,
                tip: Some(tip),
                rear: Some([0.0, 50.0]),
                ..Default::default()
            },
            vill: Some(VillRecord {
                p0: [line_x, 0.0],
                p1: [line_x, 100.0],
            }),
            guidance: GuidanceRecord::default(),
            timing: None,
        }
    }

    /// The instrument comes from the left towards a vertical VILL; the truth tip is 10 px
    /// dorsal of it. A result tip 1 px further ahead and a result line 2 px further dorsal
    /// put the tip 3 px closer: -3 px in all, -1 from the tip, -2 from the line.
    #[test]
    fn depth_error_splits_into_tip_and_line_parts_with_the_contract_sign() {
        let truth = record([40.0, 50.0], 50.0);
        let result = record([41.0, 50.0], 48.0);
        let [whole, tip, line] = depth_error(&truth, &result, Some(0.5)).expect("all present");
        assert!((whole + 1.5).abs() < 1e-9, "{whole}");
        assert!((tip + 0.5).abs() < 1e-9, "{tip}");
        assert!((line + 1.0).abs() < 1e-9, "{line}");
        // a result tip behind the truth and a line further ventral are the unsafe side
        let late = record([38.0, 50.0], 53.0);
        let [whole, _, _] = depth_error(&truth, &late, Some(0.5)).expect("all present");
        assert!((whole - 2.5).abs() < 1e-9, "{whole}");
        // no scale, or no result line: nothing to score
        assert!(depth_error(&truth, &result, None).is_none());
        let no_line = FrameRecord {
            vill: None,
            ..result.clone()
        };
        assert!(depth_error(&truth, &no_line, Some(0.5)).is_none());
    }

    /// The instrument points +x (ventral) at a vertical VILL from (50, 0) to (50, 100). A
    /// result p0 2 px ventral and 4 px towards p1 (+y), and a result p1 1 px dorsal and 3 px
    /// towards p0 (-y), at 0.5 mm/px; listing the result's points in the other order changes
    /// nothing.
    #[test]
    fn vill_end_errors_are_split_ventral_and_into_the_window() {
        let truth = record([40.0, 50.0], 50.0);
        let mut result = record([40.0, 50.0], 50.0);
        result.vill = Some(VillRecord {
            p0: [52.0, 4.0],
            p1: [49.0, 97.0],
        });
        let want = [[1.0, 2.0], [-0.5, 1.5]];
        let got = vill_end_errors(&truth, &result, Some(0.5)).expect("all present");
        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
            assert!((g - w).abs() < 1e-9, "{got:?}");
        }
        let v = result.vill.expect("set");
        result.vill = Some(VillRecord { p0: v.p1, p1: v.p0 });
        assert_eq!(vill_end_errors(&truth, &result, Some(0.5)), Some(got));
        assert!(vill_end_errors(&truth, &result, None).is_none());
    }
}
