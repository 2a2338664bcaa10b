//! The plan a result was measured against (`summary.json`: the given `options.plan` or the
//! `landmark_plan`), scored against the simulated truth: the instrument's true path and the
//! middle of the true VILL, where the simulated instrument heads.

use fluoro_core::record::FrameRecord;
use serde::Serialize;
use std::path::Path;

/// How a plan compares with the truth.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanScore {
    /// Where the plan came from: `given` or `landmarks`.
    pub source: String,
    /// Angle between the plan (entry to target) and the instrument's true path (rear to
    /// tip) on the last frame with both the instrument and the VILL, degrees.
    pub angle_to_true_path_deg: f64,
    /// Distance from the plan's target to the true VILL's middle on that frame, mm (px when
    /// the scale is unknown).
    pub target_to_vill_middle_mm: f64,
}

fn point(v: &serde_json::Value) -> Option<[f64; 2]> {
    Some([v.get(0)?.as_f64()?, v.get(1)?.as_f64()?])
}

/// The plan of `result`'s summary scored against the `truth` frames; `None` without a
/// plan, a summary, or a truth frame with both the instrument and the VILL.
pub fn score(truth: &[FrameRecord], result: &Path, mm_per_px: Option<f64>) -> Option<PlanScore> {
    let text = std::fs::read_to_string(result.join("summary.json")).ok()?;
    let summary: serde_json::Value = serde_json::from_str(&text).ok()?;
    let (source, plan) = if summary["options"]["plan"].is_object() {
        ("given", &summary["options"]["plan"])
    } else {
        ("landmarks", &summary["landmark_plan"])
    };
    let (entry, target) = (point(&plan["entry"])?, point(&plan["target"])?);
    let last = truth
        .iter()
        .rev()
        .find(|r| r.vill.is_some() && r.tool.tip.is_some() && r.tool.rear.is_some())?;
    let (tip, rear, vill) = (last.tool.tip?, last.tool.rear?, last.vill?);
    let a = (tip[1] - rear[1]).atan2(tip[0] - rear[0]);
    let b = (target[1] - entry[1]).atan2(target[0] - entry[0]);
    let mut d = (a - b).to_degrees().abs() % 360.0;
    if d > 180.0 {
        d = 360.0 - d;
    }
    let mid = [
        (vill.p0[0] + vill.p1[0]) / 2.0,
        (vill.p0[1] + vill.p1[1]) / 2.0,
    ];
    let off = (target[0] - mid[0]).hypot(target[1] - mid[1]) * mm_per_px.unwrap_or(1.0);
    Some(PlanScore {
        source: source.into(),
        angle_to_true_path_deg: d,
        target_to_vill_middle_mm: off,
    })
}
