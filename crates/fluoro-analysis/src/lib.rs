//! Guidance analysis of enhanced fluoroscopy frames: instrument detection and tracking
//! ([`instrument`], [`track`]), the VILL ([`vill`]), a label map ([`segment`]) and the
//! guidance numbers ([`guidance`]). [`Analyzer`] runs them on one frame with state carried
//! between frames; it allocates nothing per frame once sizes are set.

pub mod anatomy;
pub mod components;
pub mod corner;
pub mod guidance;
pub mod instrument;
pub mod morphology;
pub mod segment;
pub mod track;
pub mod vill;
mod vill_history;

use fluoro_core::Frame;
use fluoro_core::record::{GuidanceRecord, ToolRecord, VillRecord, axis_deg};
pub use guidance::{Plan, PlanChoice};
use serde::{Deserialize, Serialize};

/// Analysis options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisParams {
    /// Caution margin, mm.
    pub caution_mm: f64,
    /// Whether the view is one where the VILL is meaningful (CLO).
    pub vill_enabled: bool,
    /// Instrument detector.
    pub instrument: instrument::InstrumentParams,
    /// VILL detector.
    pub vill: vill::VillParams,
    /// Score the anatomy model on every n-th frame only (1 = every frame, as `fluoro
    /// process` does). The live loop uses more: anatomy barely changes between frames, and
    /// in between the label map reuses the last scores with the current instrument.
    #[serde(default = "one")]
    pub anatomy_every: usize,
    /// Without a given plan, plan from the landmarks ([`Plan::from_landmarks`]: from where
    /// the instrument enters the field to the middle of the VILL); the plan follows the
    /// VILL until the line is locked, then stays fixed for the study.
    #[serde(default)]
    pub plan_from_landmarks: bool,
}

fn one() -> usize {
    1
}

impl Default for AnalysisParams {
    fn default() -> Self {
        Self {
            caution_mm: fluoro_core::record::DEFAULT_CAUTION_MM,
            vill_enabled: true,
            instrument: Default::default(),
            vill: Default::default(),
            anatomy_every: 1,
            plan_from_landmarks: false,
        }
    }
}

/// The result for one frame (the label map stays in the analyzer: [`Analyzer::labels`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// The instrument.
    pub tool: ToolRecord,
    /// The VILL.
    pub vill: Option<VillRecord>,
    /// Guidance.
    pub guidance: GuidanceRecord,
    /// The plan the guidance was measured against: the one given, or the landmark plan
    /// ([`AnalysisParams::plan_from_landmarks`]) once there is one.
    pub plan: Option<Plan>,
}

/// Milliseconds spent in each part of the last [`Analyzer::analyse`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct AnalysisTimes {
    /// Dynamic range, dark-line response, components, tip and tracker.
    pub instrument_ms: f64,
    /// VILL (lamina corners).
    pub vill_ms: f64,
    /// Guidance and the label map.
    pub segment_ms: f64,
}

/// Per-study analysis state.
#[derive(Debug, Default)]
pub struct Analyzer {
    times: AnalysisTimes,
    anatomy: anatomy::AnatomyFeatures,
    anatomy_scores: Vec<f32>,
    anatomy_classes: Vec<u8>,
    anatomy_cols: Vec<(u32, u32, f32)>,
    frames_seen: u64,
    /// Whether the last frame scored the anatomy model (see [`Analyzer::anatomy_scored`]).
    anatomy_scored: bool,
    anatomy_rows: Vec<(u32, u32, f32)>,
    /// Runs of columns between the same two cells (`anatomy::cell_runs`).
    anatomy_runs: Vec<(u32, u32)>,
    /// The label rows' fill plans (`segment::RunPlans`) of the last scores.
    anatomy_plans: segment::RunPlans,
    anatomy_scratch: anatomy::ScoreScratch,
    /// Each band's feature row and layer buffers when features and scores are made
    /// together ([`anatomy::AnatomyFeatures::compute_scored`]).
    anatomy_row_scratch: anatomy::ScoredRowScratch,
    /// Keep the whole grid's features ([`Analyzer::set_keep_anatomy_features`]).
    keep_anatomy_features: bool,
    params: AnalysisParams,
    detector: instrument::InstrumentDetector,
    tracker: track::TipTracker,
    vill: vill::VillDetector,
    labels: Frame<u8>,
    scratch: Vec<f32>,
    last_detection: Option<instrument::Detection>,
    track_size: usize,
    /// The plan from the landmarks, and whether it is fixed (its VILL locked).
    landmark_plan: Option<(Plan, bool)>,
}

/// `p1 - p99`-style dynamic range of `f` inside `mask` (subsampled).
pub fn dynamic_range(f: &Frame<f32>, mask: &Frame<u8>, scratch: &mut Vec<f32>) -> f32 {
    scratch.clear();
    let step = ((f.data().len() / 40_000) as f64).sqrt().max(1.0) as usize;
    for y in (0..f.height()).step_by(step) {
        for x in (0..f.width()).step_by(step) {
            if mask.get(x, y) != 0 {
                scratch.push(f.get(x, y));
            }
        }
    }
    if scratch.len() < 10 {
        return 1.0;
    }
    let n = scratch.len();
    let (lo, hi) = fluoro_enhance::select::tail_ranks(scratch, n / 100, n * 99 / 100);
    (hi - lo).max(1e-3)
}

impl Analyzer {
    /// An analyzer with these options.
    pub fn new(params: AnalysisParams) -> Self {
        Self {
            detector: instrument::InstrumentDetector::new(params.instrument),
            vill: vill::VillDetector::new(params.vill),
            tracker: track::TipTracker::new(track::TrackParams::default()),
            params,
            ..Default::default()
        }
    }

    /// Turns the landmark plan on or off ([`AnalysisParams::plan_from_landmarks`]); turning
    /// it on starts a new one from the next frame's landmarks.
    pub fn set_plan_from_landmarks(&mut self, on: bool) {
        if on != self.params.plan_from_landmarks {
            self.landmark_plan = None;
        }
        self.params.plan_from_landmarks = on;
    }

    /// The options.
    pub fn params(&self) -> &AnalysisParams {
        &self.params
    }

    /// The label map of the last frame.
    pub fn labels(&self) -> &Frame<u8> {
        &self.labels
    }

    /// Keeps the anatomy features of each frame the model scores, for
    /// [`Analyzer::anatomy_features`] (`fluoro train-data`). Off (the default), each grid
    /// row's features are scored where they are made and not kept: the same scores without
    /// writing and reading back the whole grid's features.
    pub fn set_keep_anatomy_features(&mut self, on: bool) {
        self.keep_anatomy_features = on;
    }

    /// The anatomy features of the last frame (what the anatomy model is trained on): empty
    /// unless kept ([`Analyzer::set_keep_anatomy_features`]) or there is no model.
    pub fn anatomy_features(&self) -> &anatomy::AnatomyFeatures {
        &self.anatomy
    }

    /// Where the time of the last call went.
    pub fn times(&self) -> AnalysisTimes {
        self.times
    }

    /// Whether the last call scored the anatomy model (every call with
    /// `anatomy_every = 1`; every n-th otherwise, and whenever the frame size changes): the
    /// frames that pay for the perceptron, for benchmarks of the live configuration.
    pub fn anatomy_scored(&self) -> bool {
        self.anatomy_scored
    }

    /// Forgets all temporal state (new study).
    pub fn reset(&mut self) {
        self.tracker.reset();
        self.detector.reset();
        self.vill.reset();
        self.last_detection = None;
        self.landmark_plan = None;
        self.frames_seen = 0;
        self.anatomy_scores.clear();
    }

    /// Analyses one denoised frame (dense = low) with its visible-field mask.
    pub fn analyse(
        &mut self,
        f: &Frame<f32>,
        mask: &Frame<u8>,
        mm_per_px: Option<f64>,
        plan: Option<Plan>,
    ) -> Analysis {
        let t0 = std::time::Instant::now();
        let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1000.0;
        let range = dynamic_range(f, mask, &mut self.scratch);
        let size = f.width().min(f.height());
        if self.track_size != size {
            self.tracker = track::TipTracker::new(track::TrackParams::for_size(size));
            self.track_size = size;
        }
        let det = self.detector.detect_scaled(f, mask, range, mm_per_px);
        let tip = self
            .tracker
            .update_along(det.as_ref().map(|d| d.tip), det.as_ref().map(|d| d.dir));
        let det = match (det, tip) {
            (Some(mut d), Some(t)) => {
                d.tip = t;
                Some(d)
            }
            _ => None,
        };
        let ventral = det.as_ref().map(|d| d.dir);
        let shaft = det.as_ref().map(|d| vill::Shaft {
            rear: d.rear,
            tip: d.tip,
            half_width: d.half_width,
        });
        self.times.instrument_ms = ms(t0);
        let t1 = std::time::Instant::now();
        let vill = if self.params.vill_enabled {
            self.vill.detect_corners(
                f,
                mask,
                (self.detector.response(), 0.2 * range),
                range,
                shaft,
                mm_per_px,
            )
        } else {
            None
        };
        self.times.vill_ms = ms(t1);
        let t2 = std::time::Instant::now();
        let tool = match &det {
            Some(d) => ToolRecord {
                detected: true,
                tip: Some(d.tip),
                rear: Some(d.rear),
                axis_deg: Some(axis_deg(d.rear, d.tip)),
                confidence: Some(d.confidence),
            },
            None => ToolRecord::default(),
        };
        let ventral = ventral.or(self.last_detection.as_ref().map(|d| d.dir));
        let plan = match plan {
            Some(p) => Some(p),
            None if self.params.plan_from_landmarks => {
                let entry = det
                    .as_ref()
                    .or(self.last_detection.as_ref())
                    .map(|d| d.rear);
                self.landmark_plan(vill, entry)
            }
            None => None,
        };
        let guidance = guidance::guidance(
            det.as_ref().map(|d| (d.tip, d.rear)),
            vill,
            plan,
            mm_per_px,
            self.params.caution_mm,
        );
        let mm = mm_per_px.unwrap_or(0.3);
        let model = anatomy::embedded_model();
        let every = self.params.anatomy_every.max(1) as u64;
        let stale = self.anatomy_scores.is_empty()
            || self.anatomy_cols.len() != f.width()
            || self.anatomy_rows.len() != f.height();
        self.anatomy_scored = false;
        if model.is_none() || stale || self.frames_seen.is_multiple_of(every) {
            self.anatomy_scored = model.is_some();
            let lm = anatomy::Landmarks {
                vill,
                ventral,
                tool: det.as_ref().map(|d| (d.tip, d.dir)),
                mm_per_px: mm,
                range,
            };
            match model {
                Some(m) if !self.keep_anatomy_features => self.anatomy.compute_scored(
                    f,
                    mask,
                    &lm,
                    m,
                    &mut self.anatomy_row_scratch,
                    &mut self.anatomy_scores,
                ),
                _ => self.anatomy.compute(f, mask, &lm),
            }
            if let Some(m) = model {
                if self.keep_anatomy_features {
                    anatomy::score_grid(
                        &self.anatomy,
                        m,
                        &mut self.anatomy_scratch,
                        &mut self.anatomy_scores,
                    );
                }
                anatomy::cell_classes(&self.anatomy_scores, &mut self.anatomy_classes);
                // the pixel-to-cell tables depend on the frame size only
                if self.anatomy_cols.len() != f.width() || self.anatomy_rows.len() != f.height() {
                    let (gw, gh, k) = self.anatomy.grid();
                    anatomy::cell_table(f.width(), k, gw, &mut self.anatomy_cols);
                    anatomy::cell_table(f.height(), k, gh, &mut self.anatomy_rows);
                    anatomy::cell_runs(&self.anatomy_cols, &mut self.anatomy_runs);
                }
                self.anatomy_plans.build(
                    (&self.anatomy_scores, &self.anatomy_classes),
                    self.anatomy.grid().0,
                    &self.anatomy_cols,
                    &self.anatomy_runs,
                );
            }
        }
        self.frames_seen += 1;
        // the rule-based labels (no model) need the lamina darkness of the whole frame
        let lamina_t = self.params.vill.lamina_frac * range;
        let darkness = if model.is_none() {
            self.vill
                .darkness_maps(f, mm_per_px)
                .map(|(bg, sm)| (bg, sm, lamina_t))
        } else {
            None
        };
        segment::segment(
            &segment::SegmentInput {
                anatomy: model.is_some().then(|| segment::Anatomy {
                    rows: &self.anatomy_rows,
                    plans: &self.anatomy_plans,
                }),
                response: self.detector.response(),
                range,
                mask,
                tool: det.as_ref(),
                vill,
                ventral,
                mm_per_px: mm,
                darkness,
            },
            &mut self.labels,
        );
        if det.is_some() {
            self.last_detection = det;
        }
        self.times.segment_ms = ms(t2);
        Analysis {
            tool,
            vill: vill.map(|[p0, p1]| VillRecord { p0, p1 }),
            guidance,
            plan,
        }
    }

    /// The landmark plan ([`Plan::from_landmarks`], from the instrument's entry into the
    /// field): made again on each frame until the VILL is locked, then kept for the rest of
    /// the study.
    fn landmark_plan(&mut self, vill: Option<vill::Vill>, entry: Option<[f64; 2]>) -> Option<Plan> {
        if let Some((p, true)) = self.landmark_plan {
            return Some(p);
        }
        if let (Some(line), Some(entry)) = (vill, entry)
            && let Some(p) = Plan::from_landmarks(line, entry)
        {
            self.landmark_plan = Some((p, self.vill.locked()));
        }
        self.landmark_plan.map(|(p, _)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The range is the 99th minus the 1st percentile of every `step`-th pixel of every
    /// `step`-th row inside the mask, as a sort gives them (a 1200 x 1100 frame: step 5,
    /// about 40 000 samples, so the tails take the pilot's path).
    #[test]
    fn dynamic_range_is_the_sorted_samples_percentiles() {
        let (w, h) = (1200, 1100);
        let f = Frame::from_fn(w, h, |x, y| {
            ((x * 7919 + y * 104_729) % 100_003) as f32 * 0.01
        });
        let mask = Frame::from_fn(w, h, |x, y| u8::from((x + 2 * y) % 11 != 0 && x > 30));
        let step = 5;
        let mut v: Vec<f32> = (0..h)
            .step_by(step)
            .flat_map(|y| (0..w).step_by(step).map(move |x| (x, y)))
            .filter(|&(x, y)| mask.get(x, y) != 0)
            .map(|(x, y)| f.get(x, y))
            .collect();
        v.sort_by(f32::total_cmp);
        let n = v.len();
        let want = v[n * 99 / 100] - v[n / 100];
        assert_eq!(dynamic_range(&f, &mask, &mut Vec::new()), want);
    }

    /// Scoring the anatomy model on every 4th frame only (the live loop) gives the same
    /// labels on the frames it scores, and the instrument label still follows every frame.
    #[test]
    fn anatomy_every_n_frames_keeps_the_instrument_current() {
        let cfg = fluoro_synth::SynthConfig {
            size: 192,
            frames: 12,
            ..Default::default()
        };
        let s = fluoro_synth::generate(&cfg);
        let mask = s.shutter.mask(192, 192);
        let mm = Some(s.carm.mm_per_px());
        let every = AnalysisParams {
            anatomy_every: 4,
            ..Default::default()
        };
        let (mut a1, mut a4) = (
            Analyzer::new(AnalysisParams::default()),
            Analyzer::new(every),
        );
        let mut e = fluoro_enhance::Enhancer::new(fluoro_enhance::EnhanceParams::default());
        for (i, raw) in s.frames.iter().enumerate() {
            let f = Frame::from_vec(192, 192, raw.iter().map(|&v| f32::from(v)).collect()).unwrap();
            e.process(&f, &mask);
            a1.analyse(e.denoised(), &mask, mm, None);
            a4.analyse(e.denoised(), &mask, mm, None);
            let (l1, l4) = (a1.labels().data(), a4.labels().data());
            if i % 4 == 0 {
                assert!(l1 == l4, "frame {i}: a scored frame differs");
            }
            let tool = |l: &[u8]| -> Vec<usize> {
                (0..l.len())
                    .filter(|&k| l[k] == fluoro_core::labels::INSTRUMENT)
                    .collect()
            };
            assert_eq!(tool(l1), tool(l4), "frame {i}: instrument label");
        }
    }
}
