//! How closely two results of the same study agree, frame by frame: the GPU backend against
//! the CPU one (issue: identical guidance on both), or any two runs a researcher wants to
//! compare. No truth is involved.

use crate::{EvalError, read_records};
use fluoro_core::record::{FrameRecord, VillRecord};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Frame-by-frame agreement of two results (`a` and `b`) of one study, or pooled over
/// studies by [`Agreement::add`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Agreement {
    /// Frames compared (both results have them).
    pub frames: usize,
    /// Frames only one of the two results has (a result cut short).
    pub unmatched_frames: usize,
    /// Frames whose safety state differs.
    pub state_differs: usize,
    /// Frames where one result detects the instrument and the other does not.
    pub detection_differs: usize,
    /// Frames where one result has a VILL and the other does not.
    pub vill_presence_differs: usize,
    /// Largest tip distance between the two, px (frames where both detect it).
    pub tip_max_px: f64,
    /// Largest distance between corresponding VILL end points, px (frames where both have
    /// a line).
    pub vill_max_px: f64,
    /// Largest difference of the signed tip-to-VILL distance, mm (frames where both give
    /// one).
    pub depth_max_mm: f64,
}

impl Agreement {
    /// Whether the guidance is the same: every state, detection and line presence equal,
    /// no frame unmatched, and the tip, line and depth within the given tolerances.
    pub fn identical_within(&self, tip_px: f64, vill_px: f64, depth_mm: f64) -> bool {
        self.unmatched_frames == 0
            && self.state_differs == 0
            && self.detection_differs == 0
            && self.vill_presence_differs == 0
            && self.tip_max_px <= tip_px
            && self.vill_max_px <= vill_px
            && self.depth_max_mm <= depth_mm
    }

    /// Pools another study's agreement into this one (counts add, maxima take the larger).
    pub fn add(&mut self, o: &Agreement) {
        self.frames += o.frames;
        self.unmatched_frames += o.unmatched_frames;
        self.state_differs += o.state_differs;
        self.detection_differs += o.detection_differs;
        self.vill_presence_differs += o.vill_presence_differs;
        self.tip_max_px = self.tip_max_px.max(o.tip_max_px);
        self.vill_max_px = self.vill_max_px.max(o.vill_max_px);
        self.depth_max_mm = self.depth_max_mm.max(o.depth_max_mm);
    }

    /// One line for people.
    pub fn summary(&self) -> String {
        format!(
            "{} frames: state differs {}, detection {}, VILL presence {}, unmatched {}; largest differences: tip {:.4} px, VILL end {:.4} px, tip-to-VILL {:.4} mm",
            self.frames,
            self.state_differs,
            self.detection_differs,
            self.vill_presence_differs,
            self.unmatched_frames,
            self.tip_max_px,
            self.vill_max_px,
            self.depth_max_mm
        )
    }
}

/// Compares two result folders of the same study (each with the contract's `frames.jsonl`),
/// matching frames by index.
pub fn agreement(a: &Path, b: &Path) -> Result<Agreement, EvalError> {
    let (ra, rb) = (read_records(a)?, read_records(b)?);
    let mut out = compare(&ra, &rb);
    out.unmatched_frames = ra.len().abs_diff(rb.len());
    Ok(out)
}

/// The result folders of a batch or suite run, by study name: every sub-folder of `dir`
/// with a `frames.jsonl` (`fluoro process` batch layout) or a `result/frames.jsonl`
/// (`fluoro suite` layout), sorted by name.
pub fn result_folders(dir: &Path) -> Result<Vec<(String, PathBuf)>, EvalError> {
    let err = |e: std::io::Error| EvalError {
        path: dir.to_path_buf(),
        detail: e.to_string(),
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let path = entry.map_err(err)?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let found = [path.clone(), path.join("result")]
            .into_iter()
            .find(|p| p.join("frames.jsonl").is_file());
        if let (Some(name), Some(found), true) = (name, found, path.is_dir()) {
            out.push((name, found));
        }
    }
    out.sort();
    Ok(out)
}

fn compare(ra: &[FrameRecord], rb: &[FrameRecord]) -> Agreement {
    let dist = |p: [f64; 2], q: [f64; 2]| (p[0] - q[0]).hypot(p[1] - q[1]);
    let ends = |v: &VillRecord, w: &VillRecord| dist(v.p0, w.p0).max(dist(v.p1, w.p1));
    let mut g = Agreement::default();
    for (x, y) in ra.iter().zip(rb) {
        g.frames += 1;
        g.state_differs += usize::from(x.guidance.state != y.guidance.state);
        g.detection_differs += usize::from(x.tool.detected != y.tool.detected);
        g.vill_presence_differs += usize::from(x.vill.is_some() != y.vill.is_some());
        if let (Some(p), Some(q)) = (x.tool.tip, y.tool.tip) {
            g.tip_max_px = g.tip_max_px.max(dist(p, q));
        }
        if let (Some(v), Some(w)) = (&x.vill, &y.vill) {
            g.vill_max_px = g.vill_max_px.max(ends(v, w));
        }
        if let (Some(d), Some(e)) = (x.guidance.tip_to_vill_mm, y.guidance.tip_to_vill_mm) {
            g.depth_max_mm = g.depth_max_mm.max((d - e).abs());
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::record;
    use fluoro_core::record::SafetyState;

    #[test]
    fn counts_and_maxima() {
        let a = vec![record([10.0, 20.0], 40.0), record([11.0, 20.0], 40.0)];
        let mut b = a.clone();
        assert!(compare(&a, &b).identical_within(0.0, 0.0, 0.0));
        b[0].tool.tip = Some([10.0, 20.5]);
        b[1].guidance.state = SafetyState::Stop;
        b[1].vill = None;
        let g = compare(&a, &b);
        assert_eq!(
            (g.frames, g.state_differs, g.vill_presence_differs),
            (2, 1, 1)
        );
        assert_eq!(g.detection_differs, 0);
        assert!((g.tip_max_px - 0.5).abs() < 1e-12);
        assert!(!g.identical_within(1.0, 1.0, 1.0));
        let mut pooled = Agreement::default();
        pooled.add(&g);
        pooled.add(&compare(&a, &a));
        assert_eq!((pooled.frames, pooled.state_differs), (4, 1));
        assert!((pooled.tip_max_px - 0.5).abs() < 1e-12);
    }
}
