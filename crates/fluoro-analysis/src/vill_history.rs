//! The VILL over time: a running median of accepted lines, outliers rejected, and a line
//! established next to the tip locked against jumps (anatomy moves only with breathing).

use crate::vill::Vill;
use std::collections::VecDeque;

/// How a line was found, from least to most certain: a line of a more certain kind
/// discards the history of less certain ones, and one of a less certain kind is ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Certainty {
    /// From the second pass, on the opened dark mask in the disc at the tip (no disc gave
    /// a pair on the first).
    #[default]
    Opened,
    /// From a disc ahead of the tip: an early line.
    Ahead,
    /// From the disc at the tip: the laminae next to the tip, the moment that matters.
    AtTip,
}

impl Certainty {
    /// The kind of a line found in the disc at the tip or ahead of it, on the first pass
    /// or on the opened mask.
    pub fn of(at_tip: bool, opened: bool) -> Self {
        match (opened, at_tip) {
            (true, _) => Certainty::Opened,
            (false, true) => Certainty::AtTip,
            (false, false) => Certainty::Ahead,
        }
    }
}

/// Accepted lines, newest last, with the rejection count and how certain they are.
#[derive(Debug)]
pub(crate) struct LineHistory {
    /// Lines in the running median.
    len: usize,
    /// A new line further than this (mm) from the running one is an outlier.
    outlier_mm: f64,
    history: VecDeque<Vill>,
    rejected: usize,
    certainty: Certainty,
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
            certainty: Certainty::Opened,
        }
    }

    /// Forgets every line.
    pub(crate) fn reset(&mut self) {
        self.certainty = Certainty::Opened;
        self.history.clear();
        self.rejected = 0;
    }

    /// Like `accept`, but a line more certain than the history's first discards them (lines
    /// found far ahead of the tip, or on opened masks) so they can neither outvote nor block
    /// it, and a less certain one is ignored.
    pub(crate) fn accept_with(
        &mut self,
        line: Vill,
        mm: f64,
        certainty: Certainty,
    ) -> Option<Vill> {
        if certainty > self.certainty {
            self.history.clear();
            self.rejected = 0;
            self.certainty = certainty;
        } else if certainty < self.certainty {
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
        matches!(self.certainty, Certainty::AtTip | Certainty::Opened)
            && self.history.len() >= self.len.min(5)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A more certain kind of line displaces the history at once (even far from it), a less
    /// certain one is ignored, and only lines from the tip's disc lock the line.
    #[test]
    fn more_certain_lines_displace_less_certain_ones() {
        let line = |x: f64| -> Vill { [[x, 0.0], [x, 40.0]] };
        let mut h = LineHistory::new(9, 3.0);
        assert_eq!(
            h.accept_with(line(10.0), 1.0, Certainty::Opened),
            Some(line(10.0))
        );
        // 20 mm away: an outlier among equals, but more certain, so it replaces them
        assert_eq!(
            h.accept_with(line(30.0), 1.0, Certainty::Ahead),
            Some(line(30.0))
        );
        assert_eq!(
            h.accept_with(line(12.0), 1.0, Certainty::Opened),
            Some(line(30.0))
        );
        for _ in 0..4 {
            assert_eq!(
                h.accept_with(line(50.0), 1.0, Certainty::AtTip),
                Some(line(50.0))
            );
            assert!(!h.locked());
        }
        h.accept_with(line(50.0), 1.0, Certainty::AtTip);
        assert!(h.locked());
        // locked: neither a less certain line nor a jump moves it
        assert_eq!(
            h.accept_with(line(30.0), 1.0, Certainty::Ahead),
            Some(line(50.0))
        );
        for _ in 0..8 {
            assert_eq!(
                h.accept_with(line(60.0), 1.0, Certainty::AtTip),
                Some(line(50.0))
            );
        }
        h.reset();
        assert_eq!(h.current(), None);
        // lines from the opened pass (found at the tip) lock too, against jumps of their
        // own kind, yet give way to any line found without opening
        for _ in 0..5 {
            h.accept_with(line(20.0), 1.0, Certainty::Opened);
        }
        assert!(h.locked());
        for _ in 0..8 {
            let held = h.accept_with(line(28.0), 1.0, Certainty::Opened);
            assert_eq!(held, Some(line(20.0)));
        }
        assert_eq!(
            h.accept_with(line(35.0), 1.0, Certainty::Ahead),
            Some(line(35.0))
        );
        assert!(!h.locked());
    }
}
