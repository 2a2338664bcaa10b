//! The per-frame loop: enhance, analyse, overlay. One instance per study; `fluoro process`,
//! `fluoro bench` and the viewer all drive frames through it.

use crate::overlay::{self, OverlayOptions};
use fluoro_analysis::{Analysis, AnalysisParams, Analyzer, Plan};
use fluoro_core::Frame;
use fluoro_enhance::display::{Window, to_u8};
use fluoro_enhance::{EnhanceParams, Enhancer};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Everything that configures the loop.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineParams {
    /// Enhancement.
    pub enhance: EnhanceParams,
    /// Analysis.
    pub analysis: AnalysisParams,
    /// Overlay.
    pub overlay: OverlayOptions,
    /// Planned trajectory, if any.
    #[serde(skip)]
    pub plan: Option<Plan>,
}

/// Per-stage milliseconds of one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FrameTimes {
    /// Enhancement (all stages).
    pub enhance_ms: f64,
    /// Analysis.
    pub analyse_ms: f64,
    /// Display mapping and overlay drawing.
    pub overlay_ms: f64,
    /// Sum of the above.
    pub total_ms: f64,
}

/// The loop's state and buffers.
#[derive(Debug)]
pub struct FrameLoop {
    params: PipelineParams,
    enhancer: Enhancer,
    analyzer: Analyzer,
    display: Frame<u8>,
    annotated: RgbImage,
    scratch: Vec<f32>,
    window: Option<Window>,
}

impl FrameLoop {
    /// A loop with these parameters.
    pub fn new(params: PipelineParams) -> Self {
        Self {
            enhancer: Enhancer::new(params.enhance.clone()),
            analyzer: Analyzer::new(params.analysis.clone()),
            params,
            display: Frame::new(0, 0),
            annotated: RgbImage::new(0, 0),
            scratch: Vec::new(),
            window: None,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &PipelineParams {
        &self.params
    }

    /// Sets or clears the plan (takes effect on the next frame).
    pub fn set_plan(&mut self, plan: Option<Plan>) {
        self.params.plan = plan;
    }

    /// Forgets temporal state (new study or view).
    pub fn reset(&mut self) {
        self.enhancer.reset();
        self.analyzer.reset();
        self.window = None;
    }

    /// Processes one frame (dense = low values) and returns its analysis and stage times.
    /// With `draw`, the annotated frame is rendered ([`FrameLoop::annotated`]).
    pub fn process(
        &mut self,
        input: &Frame<f32>,
        mask: &Frame<u8>,
        mm_per_px: Option<f64>,
        draw: bool,
    ) -> (Analysis, FrameTimes) {
        let t0 = Instant::now();
        self.enhancer.process(input, mask);
        let enhance_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let t1 = Instant::now();
        let analysis =
            self.analyzer
                .analyse(self.enhancer.denoised(), mask, mm_per_px, self.params.plan);
        let analyse_ms = t1.elapsed().as_secs_f64() * 1000.0;
        let t2 = Instant::now();
        if draw {
            let out = self.enhancer.output();
            let win = Window::from_percentiles(out, mask, 0.5, 99.5, &mut self.scratch);
            // smooth the window over time so brightness does not flicker
            let win = match self.window {
                Some(w) => Window {
                    center: 0.8 * w.center + 0.2 * win.center,
                    width: 0.8 * w.width + 0.2 * win.width,
                },
                None => win,
            };
            self.window = Some(win);
            to_u8(out, mask, win, &mut self.display);
            overlay::draw(
                &self.display,
                Some(self.analyzer.labels()),
                &analysis,
                self.params.plan,
                mm_per_px,
                &self.params.overlay,
                &mut self.annotated,
            );
        }
        let overlay_ms = t2.elapsed().as_secs_f64() * 1000.0;
        let times = FrameTimes {
            enhance_ms,
            analyse_ms,
            overlay_ms,
            total_ms: enhance_ms + analyse_ms + overlay_ms,
        };
        (analysis, times)
    }

    /// The label map of the last frame.
    pub fn labels(&self) -> &Frame<u8> {
        self.analyzer.labels()
    }

    /// The annotated frame of the last `process(.., draw = true)`.
    pub fn annotated(&self) -> &RgbImage {
        &self.annotated
    }

    /// The enhancer's per-stage times of the last frame.
    pub fn enhance_times(&self) -> fluoro_enhance::StageTimes {
        self.enhancer.times()
    }
}
