//! The VILL over time: a running median of accepted lines, outliers rejected, and a line
//! established next to the tip locked against jumps (anatomy moves only with breathing).

use crate::vill::Vill;
use std::collections::VecDeque;

/// Accepted lines, newest last, with the rejection count and whether they came from
/// detections next to the tip.
#[derive(Debug)]
pub(crate) struct LineHistory {
    /// Lines in the running median.
    len: usize,
    /// A new line further than this (mm) from the running one is an outlier.
    outlier_mm: f64,
    history: VecDeque<Vill>,
    rejected: usize,
    confident: bool,
}

fn dist_point_line(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let l = (dx * dx + dy * dy).sqrt().max(1e-9);
    ((p[0] - a[0]) * dy - (p[1] - a[1]) * dx).abs() / l
}

impl Default for LineHistory {
    /// The default detector's history.
    fn default() -> Self {
        let p = crate::vill::VillParams::default();
        Self::new(p.history, p.outlier_mm)
    }
}

impl LineHistory {
    /// An empty history keeping `len` lines, with outliers beyond `outlier_mm`.
    pub(crate) fn new(len: usize, outlier_mm: f64) -> Self {
        Self {
            len,
            outlier_mm,
            history: VecDeque::new(),
            rejected: 0,
            confident: false,
        }
    }

    /// Forgets every line.
    pub(crate) fn reset(&mut self) {
        self.confident = false;
        self.history.clear();
        self.rejected = 0;
    }

    /// Like `accept`, but a confident line first discards the less certain lines of the
    /// history (found far ahead of the tip) so they can neither outvote nor block it.
    pub(crate) fn accept_with(&mut self, line: Vill, mm: f64, confident: bool) -> Option<Vill> {
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

    /// The current (temporally smoothed) VILL.
    pub(crate) fn current(&self) -> Option<Vill> {
        if self.history.is_empty() {
            return None;
        }
        let med = |sel: &dyn Fn(&Vill) -> f64| {
            // the history is short (VillParams::history); a stack buffer avoids allocating
            let mut buf = [0f64; 64];
            let n = self.history.len().min(buf.len());
            for (b, l) in buf.iter_mut().zip(self.history.iter().rev()) {
                *b = sel(l);
            }
            let v = &mut buf[..n];
            v.sort_by(f64::total_cmp);
            v[n / 2]
        };
        Some([
            [med(&|l| l[0][0]), med(&|l| l[0][1])],
            [med(&|l| l[1][0]), med(&|l| l[1][1])],
        ])
    }

    /// Whether the line is established from detections next to the tip and locked
    /// against jumps.
    pub(crate) fn locked(&self) -> bool {
        self.confident && self.history.len() >= self.len.min(5)
    }

    fn accept(&mut self, line: Vill, mm: f64) -> Option<Vill> {
        if let Some(cur) = self.current() {
            let d = dist_point_line(line[0], cur[0], cur[1])
                .max(dist_point_line(line[1], cur[0], cur[1]))
                * mm;
            let shift = ((line[0][1] + line[1][1]) - (cur[0][1] + cur[1][1])).abs() / 2.0 * mm;
            let outlier = d > self.outlier_mm || shift > 2.0 * self.outlier_mm;
            // The VILL is anatomy: within one view it moves only with breathing. Once
            // established from confident detections it is locked against jumps (a jump after
            // the tip enters the window would move the line and make the tip look safe); an
            // early, uncertain line may still be replaced after repeated disagreement.
            let locked = self.locked();
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
        while self.history.len() > self.len {
            self.history.pop_front();
        }
        self.current()
    }
}
