//! The per-frame loop: enhance, analyse, overlay. One instance per study; `fluoro process`,
//! `fluoro bench` and the viewer all drive frames through it.

use crate::overlay::{self, OverlayOptions};
use fluoro_analysis::{Analysis, AnalysisParams, Analyzer, Plan};
use fluoro_core::Frame;
use fluoro_enhance::display::Window;
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

impl PipelineParams {
    /// Applies a `--plan` choice: a given plan, or planning from the landmarks.
    pub fn set_plan_choice(&mut self, choice: Option<fluoro_analysis::PlanChoice>) {
        use fluoro_analysis::PlanChoice;
        self.plan = match choice {
            Some(PlanChoice::Given(p)) => Some(p),
            _ => None,
        };
        self.analysis.plan_from_landmarks = choice == Some(PlanChoice::Landmarks);
    }
}

/// Per-stage milliseconds of one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FrameTimes {
    /// Enhancement (all stages; on the CPU the display half, CLAHE and detail, and the
    /// display window run beside the analysis and are counted here).
    pub enhance_ms: f64,
    /// Analysis.
    pub analyse_ms: f64,
    /// Analysis by part.
    pub analysis: fluoro_analysis::AnalysisTimes,
    /// Display mapping and overlay drawing.
    pub overlay_ms: f64,
    /// The frame's wall time: less than the sum of the above where stages overlap.
    pub total_ms: f64,
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// `f()` and the milliseconds it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let v = f();
    (v, ms_since(t))
}

/// Which compute backend runs the enhancement chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// rayon + SIMD on the CPU.
    Cpu,
    /// wgpu compute on whatever adapter exists (a software one included).
    Gpu,
    /// A hardware GPU when there is one, else the CPU.
    Auto,
}

/// The enhancement chain on one backend.
enum Chain {
    Cpu(Box<Enhancer>),
    Gpu(Box<fluoro_gpu::chain::GpuEnhancer>),
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Chain::Cpu(_) => f.write_str("Chain::Cpu"),
            Chain::Gpu(_) => f.write_str("Chain::Gpu"),
        }
    }
}

/// Errors building or running the loop.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// The GPU backend failed.
    #[error(transparent)]
    Gpu(#[from] fluoro_gpu::GpuError),
    /// [`FrameLoop::process_ahead`] was given a frame other than the one it announced.
    #[error("frame order broken: the frame given is not the one announced as next")]
    NotAnnounced,
    /// A frame with no pixels.
    #[error("empty frame: {width}x{height} pixels")]
    EmptyFrame {
        /// Its width.
        width: usize,
        /// Its height.
        height: usize,
    },
    /// The shutter mask (or the frame announced as next) is not the frame's size.
    #[error("{what} is {got:?} pixels, the frame {frame:?}")]
    SizeMismatch {
        /// `"the mask"` or `"the next frame"`.
        what: &'static str,
        /// Its size (width, height).
        got: (usize, usize),
        /// The frame's size.
        frame: (usize, usize),
    },
}

/// The frame, its mask and the frame announced as next fit together: pixels, one size.
fn check_sizes(
    input: &Frame<f32>,
    mask: &Frame<u8>,
    next: Option<&Frame<f32>>,
) -> Result<(), LoopError> {
    let frame = input.size();
    if frame.0 == 0 || frame.1 == 0 {
        return Err(LoopError::EmptyFrame {
            width: frame.0,
            height: frame.1,
        });
    }
    let others = [
        ("the mask", Some(mask.size())),
        ("the next frame", next.map(Frame::size)),
    ];
    for (what, got) in others {
        if let Some(got) = got.filter(|&g| g != frame) {
            return Err(LoopError::SizeMismatch { what, got, frame });
        }
    }
    Ok(())
}

/// The loop's state and buffers.
#[derive(Debug)]
pub struct FrameLoop {
    params: PipelineParams,
    enhancer: Chain,
    backend_name: String,
    analyzer: Analyzer,
    annotated: RgbImage,
    scratch: Vec<f32>,
    window: Option<Window>,
    window_adjust: (f32, f32),
    mask_seen: Vec<u8>,
    /// The stamp of the mask last compared with `mask_seen`.
    mask_stamp: u64,
    analysis_mask: Frame<u8>,
    /// Fingerprint of the frame queued ahead on the GPU by [`FrameLoop::process_ahead`].
    announced: Option<u64>,
}

/// A cheap fingerprint of a frame (its size and ~1k sampled values), to check that the
/// frame queued ahead is the one processed next.
fn fingerprint(f: &Frame<f32>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    f.size().hash(&mut h);
    let step = (f.data().len() / 1024).max(1);
    for v in f.data().iter().step_by(step) {
        v.to_bits().hash(&mut h);
    }
    h.finish()
}

impl FrameLoop {
    /// A loop with these parameters on the CPU.
    pub fn new(params: PipelineParams) -> Self {
        let chain = Chain::Cpu(Box::new(Enhancer::new(params.enhance.clone())));
        Self::build(params, chain, "cpu".into())
    }

    /// A loop on the requested backend; says which adapter it chose.
    pub fn with_backend(params: PipelineParams, backend: Backend) -> Result<Self, LoopError> {
        match backend {
            Backend::Cpu => Ok(Self::new(params)),
            Backend::Gpu | Backend::Auto => match fluoro_gpu::GpuContext::new() {
                Ok(ctx) if backend == Backend::Gpu || !ctx.is_software() => {
                    let name = format!("gpu: {}", ctx.describe());
                    let chain = Chain::Gpu(Box::new(fluoro_gpu::chain::GpuEnhancer::new(
                        ctx,
                        params.enhance.clone(),
                    )));
                    Ok(Self::build(params, chain, name))
                }
                Ok(ctx) => {
                    let mut me = Self::new(params);
                    me.backend_name =
                        format!("cpu (auto: only a software adapter, {})", ctx.describe());
                    Ok(me)
                }
                Err(e) if backend == Backend::Auto => {
                    let mut me = Self::new(params);
                    me.backend_name = format!("cpu (auto: {e})");
                    Ok(me)
                }
                Err(e) => Err(e.into()),
            },
        }
    }

    fn build(params: PipelineParams, enhancer: Chain, backend_name: String) -> Self {
        Self {
            enhancer,
            backend_name,
            analyzer: Analyzer::new(params.analysis.clone()),
            params,
            annotated: RgbImage::new(0, 0),
            scratch: Vec::new(),
            window: None,
            window_adjust: (0.0, 1.0),
            mask_seen: Vec::new(),
            mask_stamp: 0,
            analysis_mask: Frame::new(0, 0),
            announced: None,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &PipelineParams {
        &self.params
    }

    /// Sets or clears the plan, given or from the landmarks (takes effect on the next
    /// frame; choosing the landmarks again keeps the landmark plan already made).
    pub fn set_plan_choice(&mut self, choice: Option<fluoro_analysis::PlanChoice>) {
        self.params.set_plan_choice(choice);
        let landmarks = self.params.analysis.plan_from_landmarks;
        self.analyzer.set_plan_from_landmarks(landmarks);
    }

    /// Keeps the anatomy features of each frame the model scores
    /// ([`fluoro_analysis::Analyzer::set_keep_anatomy_features`]), for reading them from
    /// [`FrameLoop::analyzer`] (`fluoro train-data`).
    pub fn set_keep_anatomy_features(&mut self, on: bool) {
        self.analyzer.set_keep_anatomy_features(on);
    }

    /// Sets what the overlay draws (takes effect on the next frame).
    pub fn set_overlay(&mut self, overlay: OverlayOptions) {
        self.params.overlay = overlay;
    }

    /// Adjusts the display window relative to the automatic one: `level` shifts the centre
    /// by that fraction of the width, `contrast` multiplies the width (1 = automatic).
    pub fn set_window_adjust(&mut self, level: f32, contrast: f32) {
        self.window_adjust = (level, contrast.max(0.05));
    }

    /// The backend in use, with the adapter for the GPU.
    pub fn backend(&self) -> &str {
        &self.backend_name
    }

    /// Forgets temporal state (new study or view). A frame queued ahead is dropped.
    pub fn reset(&mut self) {
        match &mut self.enhancer {
            Chain::Cpu(e) => e.reset(),
            Chain::Gpu(g) => {
                // results of a frame queued ahead are not wanted any more
                while g.collect().unwrap_or(false) {}
                g.reset();
            }
        }
        self.announced = None;
        self.analyzer.reset();
        self.window = None;
    }

    /// Processes one frame (dense = low values) and returns its analysis and stage times.
    /// With `draw`, the annotated frame is rendered ([`FrameLoop::annotated`]). A frame
    /// without pixels, or a mask of another size, is refused ([`LoopError::EmptyFrame`],
    /// [`LoopError::SizeMismatch`]) and leaves the loop's state as it was.
    pub fn process(
        &mut self,
        input: &Frame<f32>,
        mask: &Frame<u8>,
        mm_per_px: Option<f64>,
        draw: bool,
    ) -> Result<(Analysis, FrameTimes), LoopError> {
        self.process_ahead(input, mask, None, mm_per_px, draw)
    }

    /// Like [`FrameLoop::process`], with the frame that comes next (same mask) when it is
    /// already known, e.g. from a recorded study. On the GPU backend that frame's
    /// enhancement is queued before this frame's results are read back, so the device
    /// works on it while the CPU analyses this one (upload, compute and read-back of
    /// consecutive frames overlap); the next call must then pass that frame as `input`
    /// ([`LoopError::NotAnnounced`] otherwise). The results are those of `process`. The CPU
    /// backend ignores `next`; GPU profiling runs frames one at a time.
    ///
    /// The frame is processed on a rayon worker thread: called from outside the pool, each
    /// of the frame's few dozen parallel loops would otherwise be handed over to sleeping
    /// workers while the caller waits, where a worker starts on its share at once
    /// (`fluoro bench` 1024, 2 threads: total 12.3-12.5 -> 11.3-12.8 ms, analyse 5.7-5.8
    /// -> 5.3-5.6 ms). Inside the pool already (e.g. studies processed in parallel) it
    /// runs in place.
    pub fn process_ahead(
        &mut self,
        input: &Frame<f32>,
        mask: &Frame<u8>,
        next: Option<&Frame<f32>>,
        mm_per_px: Option<f64>,
        draw: bool,
    ) -> Result<(Analysis, FrameTimes), LoopError> {
        check_sizes(input, mask, next)?;
        fluoro_enhance::par::in_pool(|| self.process_here(input, mask, next, mm_per_px, draw))
    }

    /// [`FrameLoop::process_ahead`] on the calling thread.
    fn process_here(
        &mut self,
        input: &Frame<f32>,
        mask: &Frame<u8>,
        next: Option<&Frame<f32>>,
        mm_per_px: Option<f64>,
        draw: bool,
    ) -> Result<(Analysis, FrameTimes), LoopError> {
        let t0 = Instant::now();
        match &mut self.enhancer {
            Chain::Cpu(e) => {
                e.denoise(input, mask);
            }
            Chain::Gpu(g) => {
                match self.announced.take().filter(|_| g.in_flight() > 0) {
                    Some(f) if f == fingerprint(input) => {}
                    queued => {
                        // nothing stale may be collected in this frame's place
                        while g.collect()? {}
                        if queued.is_some() {
                            return Err(LoopError::NotAnnounced);
                        }
                        g.submit(input, mask)?;
                    }
                }
                if let Some(n) = next.filter(|_| !g.profiling()) {
                    g.submit(n, mask)?;
                    self.announced = Some(fingerprint(n));
                }
                g.collect()?;
            }
        }
        let denoise_ms = ms_since(t0);
        // analysis looks a margin inside the field: the collimator's blurred edge is a thin
        // dark ring that would otherwise pass for an instrument entering the field
        // (the same mask frame, unchanged, is not compared again: see `Frame::stamp`)
        let stamp = mask.stamp();
        if self.mask_stamp != stamp
            && (self.mask_seen.as_slice() != mask.data()
                || self.analysis_mask.size() != mask.size())
        {
            self.mask_seen = mask.data().to_vec();
            let r = (mask.width().min(mask.height()) / 128).max(2);
            self.analysis_mask = fluoro_analysis::morphology::erode(mask, r);
        }
        self.mask_stamp = stamp;
        // analysis reads only the denoised frame, so the display half of the CPU chain
        // (CLAHE, detail) and the display window (a serial percentile selection) run beside
        // it, filling the cores the analysis' serial parts leave idle; without drawing the
        // display half is skipped
        let (analyzer, scratch, plan) = (&mut self.analyzer, &mut self.scratch, self.params.plan);
        let analysis_mask = &self.analysis_mask;
        let mut analyse = |denoised: &Frame<f32>| {
            timed(|| analyzer.analyse(denoised, analysis_mask, mm_per_px, plan))
        };
        // the display window from the enhanced frame's percentiles; on the CPU its samples
        // are taken as the detail stage writes the frame
        let ((analysis, analyse_ms), (window, display_ms)) = match &mut self.enhancer {
            Chain::Cpu(e) => {
                let (denoised, display) = e.display_stage();
                let window = || {
                    display.run_sampled(mask, scratch);
                    Window::from_samples(scratch, 0.5, 99.5)
                };
                rayon::join(|| analyse(denoised), || timed(|| draw.then(window)))
            }
            Chain::Gpu(g) => rayon::join(
                || analyse(g.denoised()),
                || {
                    let out = g.output();
                    timed(|| draw.then(|| Window::from_percentiles(out, mask, 0.5, 99.5, scratch)))
                },
            ),
        };
        let output = match &self.enhancer {
            Chain::Cpu(e) => e.output(),
            Chain::Gpu(g) => g.output(),
        };
        let t2 = Instant::now();
        if let Some(win) = window {
            let out = output;
            // smooth the window over time so brightness does not flicker
            let win = match self.window {
                Some(w) => Window {
                    center: 0.8 * w.center + 0.2 * win.center,
                    width: 0.8 * w.width + 0.2 * win.width,
                },
                None => win,
            };
            self.window = Some(win);
            let (level, contrast) = self.window_adjust;
            let shown = Window {
                center: win.center + level * win.width,
                width: win.width * contrast,
            };
            overlay::draw(
                overlay::Grey::Windowed(out, mask, shown),
                Some(self.analyzer.labels()),
                &analysis,
                analysis.plan,
                mm_per_px,
                &self.params.overlay,
                &mut self.annotated,
            );
        }
        let overlay_ms = ms_since(t2);
        let times = FrameTimes {
            enhance_ms: denoise_ms + display_ms,
            analyse_ms,
            analysis: self.analyzer.times(),
            overlay_ms,
            total_ms: ms_since(t0),
        };
        Ok((analysis, times))
    }

    /// The analyzer (its anatomy features, for `fluoro train-data`).
    pub fn analyzer(&self) -> &fluoro_analysis::Analyzer {
        &self.analyzer
    }

    /// The label map of the last frame.
    pub fn labels(&self) -> &Frame<u8> {
        self.analyzer.labels()
    }

    /// The annotated frame of the last `process(.., draw = true)`.
    pub fn annotated(&self) -> &RgbImage {
        &self.annotated
    }

    /// The CPU enhancer's per-stage times of the last frame (zeros on the GPU).
    pub fn enhance_times(&self) -> fluoro_enhance::StageTimes {
        match &self.enhancer {
            Chain::Cpu(e) => e.times(),
            Chain::Gpu(_) => Default::default(),
        }
    }

    /// Turns per-stage GPU timing on or off (GPU backend only; off by default).
    pub fn set_gpu_profiling(&mut self, on: bool) {
        if let Chain::Gpu(g) = &mut self.enhancer {
            g.set_profiling(on);
        }
    }

    /// CPU milliseconds per enhancement stage of the last frame, on the CPU backend.
    pub fn cpu_stage_ms(&self) -> Option<fluoro_enhance::StageTimes> {
        match &self.enhancer {
            Chain::Cpu(e) => Some(e.times()),
            Chain::Gpu(_) => None,
        }
    }

    /// GPU milliseconds per stage of the last frame (`fluoro_gpu::profile::STAGES`), on the
    /// GPU backend with profiling on and a device that records timestamps.
    pub fn gpu_stage_ms(&self) -> Option<[f64; 6]> {
        match &self.enhancer {
            Chain::Gpu(g) => g.stage_ms(),
            Chain::Cpu(_) => None,
        }
    }

    /// The GPU's measured copy bandwidth (GB/s, read plus write), on the GPU backend.
    pub fn gpu_copy_bandwidth_gbps(&self) -> Option<Result<f64, LoopError>> {
        match &self.enhancer {
            Chain::Gpu(g) => {
                Some(fluoro_gpu::profile::copy_bandwidth_gbps(g.context()).map_err(LoopError::from))
            }
            Chain::Cpu(_) => None,
        }
    }
}
