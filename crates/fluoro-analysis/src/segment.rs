//! Label map (contract values) from the detections: a first, classical segmentation.
//!
//! - instrument: the detected shaft, rear to tip, at its measured width;
//! - contrast: thin, very dark elongated structures ventral to the VILL that are not the
//!   instrument (an epidurogram seen edge-on);
//! - lamina: regions darker than a wide (6 mm) background, not thin lines, on the dorsal
//!   side of the VILL (falling back to the instrument-scale response without a VILL search);
//! - ligamentum flavum: the interlaminar window between the VILL points, from the VILL to
//!   a typical ligament depth dorsally.
//!
//! This is a baseline to be measured by `fluoro eval`, not the final method.

use crate::anatomy::N_CLASSES;
use crate::instrument::Detection;
use fluoro_core::{Frame, labels};
use rayon::prelude::*;

/// The anatomy model's output for [`SegmentInput`]: the label rows' fill plans, made from
/// the grid's scores and classes ([`RunPlans::build`]), and each pixel row's grid rows.
pub struct Anatomy<'a> {
    /// The grid rows of each pixel row and the weight towards the lower one
    /// (`anatomy::cell_table`).
    pub rows: &'a [(u32, u32, f32)],
    /// How each pair of grid rows fills a row of labels.
    pub plans: &'a RunPlans,
}

/// A [`RunPlans`] segment needing the per-pixel scores (its four cells disagree).
const MIXED: u8 = u8::MAX;

/// The label rows' fill plans, one per pair of neighbouring grid rows: the columns in
/// segments, each either one label (consecutive runs whose four cells agree on it) or one
/// run whose cells disagree. The eight or so pixel rows between the same grid rows share
/// a plan, so the four class lookups per run are made once per grid row, not per pixel
/// row (they were 1.6% of a 1024 frame's CPU time).
#[derive(Debug, Default)]
pub struct RunPlans {
    /// Where grid row `y0`'s segments start in `segs` (one entry more than rows).
    starts: Vec<usize>,
    /// `(first column, end column, label or MIXED, index in terms of a MIXED segment)`.
    segs: Vec<(u32, u32, u8, u32)>,
    /// The MIXED segments' interpolation terms.
    terms: Vec<Terms>,
    /// Each column's weight towards its right cell (`cols`' third field), contiguous.
    ax: Vec<f32>,
}

/// A run's bilinear interpolation terms per class, `[tl, tr - tl, bl, br - bl]` of its four
/// cells' scores: [`crate::anatomy::bilinear`]'s differences, taken once per run.
type Terms = [[f32; 4]; N_CLASSES];

impl RunPlans {
    /// The plans of `classes` and their `scores` (a grid `gw` cells wide) for the
    /// pixel-to-cell `cols` and their `runs` (`anatomy::cell_table` and
    /// `anatomy::cell_runs`): grid row `y0` pairs with `y0 + 1`, the last with itself, as
    /// `anatomy::cell_table` pairs them.
    pub fn build(
        &mut self,
        (scores, classes): (&[f32], &[u8]),
        gw: usize,
        cols: &[(u32, u32, f32)],
        runs: &[(u32, u32)],
    ) {
        self.starts.clear();
        self.segs.clear();
        self.terms.clear();
        self.ax.clear();
        self.ax.extend(cols.iter().map(|c| c.2));
        let gh = classes.len() / gw.max(1);
        let at = |gx: usize, gy: usize, c: usize| scores[(gy * gw + gx) * N_CLASSES + c];
        for y0 in 0..gh {
            let first = self.segs.len();
            self.starts.push(first);
            let y1 = (y0 + 1).min(gh - 1);
            for &(x, end) in runs {
                let (x, end) = (x as usize, (end as usize).min(cols.len()));
                if x >= end {
                    break;
                }
                let (x0, x1) = (cols[x].0 as usize, cols[x].1 as usize);
                let c = classes[y0 * gw + x0];
                let agree = c == classes[y0 * gw + x1]
                    && c == classes[y1 * gw + x0]
                    && c == classes[y1 * gw + x1];
                if !agree {
                    self.segs
                        .push((x as u32, end as u32, MIXED, self.terms.len() as u32));
                    self.terms.push(std::array::from_fn(|c| {
                        let (tl, tr) = (at(x0, y0, c), at(x1, y0, c));
                        let (bl, br) = (at(x0, y1, c), at(x1, y1, c));
                        [tl, tr - tl, bl, br - bl]
                    }));
                    continue;
                }
                let label = ANATOMY_LABELS[usize::from(c)];
                // a run of the same label as the row's segment before: one longer fill
                match self.segs[first..].last_mut() {
                    Some(seg) if seg.2 == label => seg.1 = end as u32,
                    _ => self.segs.push((x as u32, end as u32, label, 0)),
                }
            }
        }
        self.starts.push(self.segs.len());
    }

    /// Grid row `y0`'s segments (none for a row the plans were not built for).
    fn row(&self, y0: usize) -> &[(u32, u32, u8, u32)] {
        match (self.starts.get(y0), self.starts.get(y0 + 1)) {
            (Some(&a), Some(&b)) => &self.segs[a..b],
            _ => &[],
        }
    }
}

/// Inputs the segmentation needs besides the frame.
pub struct SegmentInput<'a> {
    /// Dark-line response (instrument scale) of the frame.
    pub response: &'a Frame<f32>,
    /// Frame dynamic range inside the field.
    pub range: f32,
    /// Visible field.
    pub mask: &'a Frame<u8>,
    /// The instrument, if detected.
    pub tool: Option<&'a Detection>,
    /// The VILL, if found.
    pub vill: Option<[[f64; 2]; 2]>,
    /// Unit vector towards ventral in the image.
    pub ventral: Option<[f64; 2]>,
    /// Millimetres per pixel (0.3 assumed when unknown).
    pub mm_per_px: f64,
    /// Lamina darkness: (wide background, smoothed frame, threshold) from the VILL detector.
    pub darkness: Option<(&'a Frame<f32>, &'a Frame<f32>, f32)>,
    /// Anatomy class scores on the working grid (`crate::anatomy`): when present they give
    /// lamina, ligamentum flavum and contrast instead of the rules below.
    pub anatomy: Option<Anatomy<'a>>,
}

/// The VILL as linear functions of the pixel position: signed ventral distance `d` (px,
/// positive = ventral) and the position `t` along the segment (0 at p0, 1 at p1).
struct VillFrame {
    a: [f64; 2],
    n: [f64; 2],
    along: [f64; 2],
}

impl VillFrame {
    fn new([a, b]: [[f64; 2]; 2], ventral: [f64; 2]) -> Self {
        let n = [-(b[1] - a[1]), b[0] - a[0]];
        let l = (n[0] * n[0] + n[1] * n[1]).sqrt().max(1e-9);
        let s = if n[0] * ventral[0] + n[1] * ventral[1] < 0.0 {
            -1.0
        } else {
            1.0
        };
        let l2 = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).max(1e-9);
        Self {
            a,
            n: [s * n[0] / l, s * n[1] / l],
            along: [(b[0] - a[0]) / l2, (b[1] - a[1]) / l2],
        }
    }
}

/// The instrument as a segment: position along it `u` (0 rear, 1 tip) and distance across.
struct ToolFrame {
    rear: [f64; 2],
    along: [f64; 2],
    across: [f64; 2],
    reach: f64,
    rows: (usize, usize),
    cols: (usize, usize),
}

impl ToolFrame {
    fn new(t: &Detection) -> Self {
        let d = [t.tip[0] - t.rear[0], t.tip[1] - t.rear[1]];
        let len = (d[0] * d[0] + d[1] * d[1]).sqrt().max(1e-9);
        let reach = t.half_width + 0.5;
        let (y0, y1) = (
            t.rear[1].min(t.tip[1]) - reach,
            t.rear[1].max(t.tip[1]) + reach,
        );
        let (x0, x1) = (
            t.rear[0].min(t.tip[0]) - reach,
            t.rear[0].max(t.tip[0]) + reach,
        );
        Self {
            cols: (x0.floor().max(0.0) as usize, x1.ceil().max(0.0) as usize),
            rear: t.rear,
            along: [d[0] / (len * len), d[1] / (len * len)],
            across: [-d[1] / len, d[0] / len],
            reach,
            rows: (y0.floor().max(0.0) as usize, y1.ceil().max(0.0) as usize),
        }
    }
}

/// Class index (`crate::anatomy::class_at`) to contract label.
const ANATOMY_LABELS: [u8; 4] = [
    labels::BACKGROUND,
    labels::LAMINA,
    labels::LIGAMENTUM_FLAVUM,
    labels::CONTRAST,
];

/// Writes the label map into `out`. The line geometry is set up once per frame, so the
/// per-pixel work is a few multiply-adds; with the anatomy model, runs of pixels between
/// the same grid cells are filled at once where those cells agree.
pub fn segment(input: &SegmentInput, out: &mut Frame<u8>) {
    let (w, h) = input.mask.size();
    out.reshape(w, h);
    let vill = match (input.vill, input.ventral) {
        (Some(line), Some(v)) => Some(VillFrame::new(line, v)),
        _ => None,
    };
    let tool = input.tool.map(ToolFrame::new);
    out.data_mut()
        .par_chunks_mut(w)
        .enumerate()
        .for_each(|(y, row)| {
            let mrow = input.mask.row(y);
            if let Some(an) = &input.anatomy {
                anatomy_row(an, y, row);
            } else if let Some(v) = &vill {
                rule_row(input, v, y, row);
            } else {
                row.fill(labels::BACKGROUND);
            }
            // outside the field is background whatever the classes say
            for (o, &m) in row.iter_mut().zip(mrow) {
                *o = if m != 0 { *o } else { labels::BACKGROUND };
            }
            if let Some(t) = tool.as_ref().filter(|t| (t.rows.0..=t.rows.1).contains(&y)) {
                let py = y as f64;
                for x in t.cols.0..=t.cols.1.min(w - 1) {
                    let (qx, qy) = (x as f64 - t.rear[0], py - t.rear[1]);
                    let u = qx * t.along[0] + qy * t.along[1];
                    let across = (qx * t.across[0] + qy * t.across[1]).abs();
                    if mrow[x] != 0 && across <= t.reach && (0.0..=1.0).contains(&u) {
                        row[x] = labels::INSTRUMENT;
                    }
                }
            }
        });
}

/// One row of anatomy labels from the plan of its pair of grid rows ([`RunPlans`]): a
/// segment of one label is filled at once, a run whose four cells disagree is decided pixel
/// by pixel from the interpolated scores ([`mixed_run`], inlined here so that the dispatch
/// to the vector instruction set is made once per row, not per run).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn anatomy_row(an: &Anatomy, y: usize, row: &mut [u8]) {
    let (y0, _, ay) = an.rows[y];
    let plans = an.plans;
    let segs = plans.row(y0 as usize);
    if segs.is_empty() {
        // plans not built for these classes: background, never the last frame's labels
        row.fill(labels::BACKGROUND);
    }
    for &(a, b, kind, t) in segs {
        let (a, b) = (a as usize, (b as usize).min(row.len()));
        if kind != MIXED {
            row[a..b].fill(kind);
        } else {
            let ax = &plans.ax[a..b];
            mixed_run(&plans.terms[t as usize], ax, ay, &mut row[a..b]);
        }
    }
}

/// A run whose four cells disagree: [`crate::anatomy::class_at`]'s bilinear scores (the
/// same sums, from the run's `terms`) and arg-max for each pixel (ties to the lower
/// class), eight pixels at a time with the arg-max as selects of the label itself: the
/// per-pixel comparison branches mispredicted along class boundaries.
#[inline(always)]
fn mixed_run(terms: &Terms, ax: &[f32], ay: f32, out: &mut [u8]) {
    const L: usize = 8;
    for (o, ax) in out.chunks_mut(L).zip(ax.chunks(L)) {
        let mut x = [0f32; L];
        x[..ax.len()].copy_from_slice(ax);
        let (mut best, mut label) = ([f32::MIN; L], [u32::from(labels::BACKGROUND); L]);
        for (&[tl, dt, bl, db], &lab) in terms.iter().zip(&ANATOMY_LABELS) {
            for i in 0..L {
                let (top, bot) = (tl + x[i] * dt, bl + x[i] * db);
                let v = top + ay * (bot - top);
                let better = v > best[i];
                best[i] = if better { v } else { best[i] };
                label[i] = if better { u32::from(lab) } else { label[i] };
            }
        }
        for (o, &l) in o.iter_mut().zip(&label) {
            *o = l as u8;
        }
    }
}

/// One row of the rule-based labels (no anatomy model): lamina dorsal of the VILL,
/// ligamentum flavum in the window, contrast ventral of it.
fn rule_row(input: &SegmentInput, v: &VillFrame, y: usize, row: &mut [u8]) {
    let mm = input.mm_per_px;
    let contrast_thr = 0.25 * input.range;
    let lamina_lo = 0.06 * input.range;
    let lf_depth_px = 6.0 / mm;
    let (lamina_depth, contrast_depth) = (100.0 / mm, 12.0 / mm);
    let rrow = input.response.row(y);
    let dark = input
        .darkness
        .map(|(bg, sm, t)| (bg.row(y), sm.row(y), 0.3 * t));
    let py = y as f64;
    for (x, o) in row.iter_mut().enumerate() {
        let (px, r) = (x as f64, rrow[x]);
        let mut lab = labels::BACKGROUND;
        let (qx, qy) = (px - v.a[0], py - v.a[1]);
        let d = qx * v.n[0] + qy * v.n[1];
        let lamina = match dark {
            Some((bg, sm, t)) => bg[x] - sm[x] > t && r < contrast_thr,
            None => r > lamina_lo,
        };
        if d < 0.0 && d > -lamina_depth && lamina {
            lab = labels::LAMINA;
        }
        let t = qx * v.along[0] + qy * v.along[1];
        if (0.0..=1.0).contains(&t) && d <= 1.0 && d >= -lf_depth_px {
            lab = labels::LIGAMENTUM_FLAVUM;
        }
        if d > 0.0 && d < contrast_depth && r > contrast_thr {
            lab = labels::CONTRAST;
        }
        *o = lab;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anatomy::{N_CLASSES as N, cell_classes, cell_runs, cell_table, class_at};

    /// A model's grid over `w` x `h` frames with cells of `k` px: scores, their classes, and
    /// the pixel-to-cell tables and runs.
    struct Grid {
        gw: usize,
        scores: Vec<f32>,
        classes: Vec<u8>,
        cols: Vec<(u32, u32, f32)>,
        rows: Vec<(u32, u32, f32)>,
        runs: Vec<(u32, u32)>,
    }

    impl Grid {
        /// `score(gx, gy, class)` for every cell and class.
        fn new(w: usize, h: usize, k: usize, score: impl Fn(usize, usize, usize) -> f32) -> Self {
            let (gw, gh) = (w / k, h / k);
            let scores: Vec<f32> = (0..gw * gh * N)
                .map(|i| score(i / N % gw, i / N / gw, i % N))
                .collect();
            let mut g = Grid {
                gw,
                scores,
                classes: Vec::new(),
                cols: Vec::new(),
                rows: Vec::new(),
                runs: Vec::new(),
            };
            cell_classes(&g.scores, &mut g.classes);
            cell_table(w, k, gw, &mut g.cols);
            cell_table(h, k, gh, &mut g.rows);
            cell_runs(&g.cols, &mut g.runs);
            g
        }

        /// The plans of these classes.
        fn plans(&self) -> RunPlans {
            let mut plans = RunPlans::default();
            plans.build(
                (&self.scores, &self.classes),
                self.gw,
                &self.cols,
                &self.runs,
            );
            plans
        }

        /// The segmentation's input with these classes and `plans` (no VILL).
        fn input<'a>(
            &'a self,
            response: &'a Frame<f32>,
            mask: &'a Frame<u8>,
            tool: Option<&'a Detection>,
            plans: &'a RunPlans,
        ) -> SegmentInput<'a> {
            SegmentInput {
                response,
                range: 1.0,
                mask,
                tool,
                vill: None,
                ventral: None,
                mm_per_px: 0.3,
                darkness: None,
                anatomy: Some(Anatomy {
                    rows: &self.rows,
                    plans,
                }),
            }
        }
    }

    /// The run-filled anatomy labels and the clipped instrument scan give exactly the
    /// labels of the plain per-pixel definition.
    #[test]
    fn run_filling_matches_the_per_pixel_labels() {
        let (w, h, k) = (101usize, 83usize, 12usize);
        // smooth scores with a few class changes, so most runs agree and some do not
        let grid = Grid::new(w, h, k, |gx, gy, c| {
            ((gx as f32 * 0.9 + c as f32 * 1.7).sin() + (gy as f32 * 0.7 - c as f32).cos()) * 0.5
        });
        let Grid {
            gw,
            ref scores,
            ref classes,
            ref cols,
            ref rows,
            ..
        } = grid;
        let plans = grid.plans();
        let mask = Frame::from_fn(w, h, |x, y| u8::from((x + 2 * y) % 23 != 0 && x > 3));
        let response = Frame::filled(w, h, 0.0f32);
        let tool = Detection {
            tip: [60.3, 40.6],
            rear: [5.0, 75.2],
            dir: [0.0, 0.0],
            half_width: 2.2,
            confidence: 1.0,
        };
        let input = grid.input(&response, &mask, Some(&tool), &plans);
        let mut out = Frame::filled(1, 1, 0u8);
        segment(&input, &mut out);
        let t = ToolFrame::new(&tool);
        let (mut instrument, mut mixed) = (0, 0);
        for y in 0..h {
            for x in 0..w {
                let mut want = ANATOMY_LABELS[class_at(scores, classes, gw, cols[x], rows[y])];
                let (qx, qy) = (x as f64 - t.rear[0], y as f64 - t.rear[1]);
                let u = qx * t.along[0] + qy * t.along[1];
                let across = (qx * t.across[0] + qy * t.across[1]).abs();
                if across <= t.reach && (0.0..=1.0).contains(&u) {
                    want = labels::INSTRUMENT;
                    instrument += 1;
                }
                if mask.get(x, y) == 0 {
                    want = labels::BACKGROUND;
                }
                assert_eq!(out.get(x, y), want, "pixel ({x}, {y})");
            }
        }
        for y in 0..h - 1 {
            for x in 0..w - 1 {
                mixed += usize::from(out.get(x, y) != out.get(x + 1, y));
            }
        }
        assert!(instrument > 200, "the shaft is drawn: {instrument} px");
        assert!(
            mixed > 50,
            "the scores change class across the frame: {mixed}"
        );
    }

    /// Classes whose plans were not built give background, not whatever the label map
    /// held before.
    #[test]
    fn rows_without_a_plan_are_background() {
        let (w, h) = (20usize, 10usize);
        // lamina everywhere
        let grid = Grid::new(w, h, 5, |_, _, c| if c == 1 { 1.0 } else { 0.0 });
        let (mask, response) = (Frame::filled(w, h, 1u8), Frame::filled(w, h, 0.0f32));
        let (empty, built) = (RunPlans::default(), grid.plans());
        let mut out = Frame::filled(w, h, 7u8);
        segment(&grid.input(&response, &mask, None, &empty), &mut out);
        assert!(out.data().iter().all(|&v| v == labels::BACKGROUND));
        segment(&grid.input(&response, &mask, None, &built), &mut out);
        assert!(out.data().iter().all(|&v| v == labels::LAMINA));
    }
}
