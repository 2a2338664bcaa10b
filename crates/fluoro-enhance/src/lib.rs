//! The CPU enhancement chain for fluoroscopy frames.
//!
//! Each stage is a function usable alone ([`normalize`], [`temporal`], [`bilateral`],
//! [`clahe`], [`detail`], [`display`]); [`Enhancer`] composes them with buffers allocated
//! once, so processing a study allocates nothing per frame once the first frame has set the
//! sizes. Values stay in the input's intensity units through the chain (dense = low).

pub mod bilateral;
pub mod border;
pub mod clahe;
pub mod detail;
pub mod display;
pub mod fastmath;
pub mod field;
pub mod gaussian;
pub mod large_blur;
pub mod normalize;
pub mod par;
mod prefetch;
pub mod quality;
pub mod select;
pub mod temporal;

use fluoro_core::Frame;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The vector instruction set the CPU kernels run with on this machine, detected at run
/// time: `"avx512"` (AVX-512 F, BW and VL, with AVX2 and FMA), `"avx2"` (AVX2 and FMA),
/// `"sse2"` (other x86-64) or `"portable"` (other architectures). Timings differ by up to
/// 2x between the first two, so benchmark reports name it.
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        let has_avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        if has_avx2
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
        {
            "avx512"
        } else if has_avx2 {
            "avx2"
        } else {
            "sse2"
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        "portable"
    }
}

/// Parameters of the whole chain; a stage is skipped when its switch is off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnhanceParams {
    /// How stored values relate to intensity.
    pub intensity: normalize::Intensity,
    /// Value range of the (normalised) data, for CLAHE's histogram.
    pub range: (f32, f32),
    /// Recursive filter, if any.
    pub temporal: Option<temporal::TemporalParams>,
    /// Edge-preserving spatial filter, if any.
    pub spatial: Option<bilateral::BilateralParams>,
    /// CLAHE, if any.
    pub clahe: Option<clahe::ClaheParams>,
    /// Multiscale detail, if any.
    pub detail: Option<detail::DetailParams>,
}

impl Default for EnhanceParams {
    fn default() -> Self {
        Self {
            intensity: normalize::Intensity::Log,
            range: (0.0, 4095.0),
            temporal: Some(temporal::TemporalParams::default()),
            spatial: Some(bilateral::BilateralParams::default()),
            clahe: Some(clahe::ClaheParams::default()),
            detail: Some(detail::DetailParams::default()),
        }
    }
}

/// Milliseconds spent in each stage for one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct StageTimes {
    /// Normalisation and shutter masking.
    pub normalize_ms: f64,
    /// Recursive temporal filter.
    pub temporal_ms: f64,
    /// Spatial noise reduction.
    pub spatial_ms: f64,
    /// CLAHE.
    pub clahe_ms: f64,
    /// Multiscale detail.
    pub detail_ms: f64,
}

/// Where a stage's result lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Slot {
    /// One of the three work buffers.
    #[default]
    Buf0,
    Buf1,
    Buf2,
    /// The recursive filter's history.
    History,
}

/// The chain with its state (the recursive filter's history) and buffers.
#[derive(Debug, Default)]
pub struct Enhancer {
    params: EnhanceParams,
    bufs: [Frame<f32>; 3],
    denoised: Slot,
    output: Slot,
    recursive: temporal::RecursiveFilter,
    bilateral: bilateral::BilateralScratch,
    clahe: clahe::ClaheScratch,
    detail: detail::DetailScratch,
    noise_scratch: Vec<f32>,
    /// The field's row spans, for the inside mean.
    spans: field::FieldSpans,
    times: StageTimes,
}

impl Enhancer {
    /// A chain with these parameters.
    pub fn new(params: EnhanceParams) -> Self {
        Self {
            params,
            ..Default::default()
        }
    }

    /// The parameters.
    pub fn params(&self) -> &EnhanceParams {
        &self.params
    }

    /// Forgets temporal history (new study, new view).
    pub fn reset(&mut self) {
        self.recursive.reset();
    }

    /// Stage times of the last frame.
    pub fn times(&self) -> StageTimes {
        self.times
    }

    fn get(&self, slot: Slot) -> &Frame<f32> {
        match slot {
            Slot::Buf0 => &self.bufs[0],
            Slot::Buf1 => &self.bufs[1],
            Slot::Buf2 => &self.bufs[2],
            Slot::History => self.recursive.output(),
        }
    }

    /// The frame after the noise-reduction stages (temporal and spatial) of the last call:
    /// what detection and segmentation should look at (CLAHE and detail trade CNR for
    /// display contrast).
    pub fn denoised(&self) -> &Frame<f32> {
        self.get(self.denoised)
    }

    /// The fully enhanced frame of the last call (for display).
    pub fn output(&self) -> &Frame<f32> {
        self.get(self.output)
    }

    /// Enhances one frame and returns the display output ([`Enhancer::output`]); the
    /// denoised intermediate is [`Enhancer::denoised`]. Both stay valid until the next call.
    pub fn process(&mut self, input: &Frame<f32>, mask: &Frame<u8>) -> &Frame<f32> {
        // one hand-over to the pool for the whole chain's parallel loops
        par::in_pool(|| {
            self.denoise_here(input, mask);
            self.display_stage().1.run_here(mask, None)
        })
    }

    /// The noise-reduction half of [`Enhancer::process`] (normalisation, recursive and
    /// spatial filters): [`Enhancer::denoised`] is this frame's, [`Enhancer::output`] still
    /// the previous one's until [`Enhancer::display_stage`] runs. Analysis needs only this
    /// half, so the display half can run beside it. With the recursive filter on and
    /// log-domain data, the normalised frame is not written: the filter reads the input
    /// row by row with the shutter filled by the inside mean ([`temporal::Current`]).
    pub fn denoise(&mut self, input: &Frame<f32>, mask: &Frame<u8>) -> &Frame<f32> {
        par::in_pool(|| self.denoise_here(input, mask))
    }

    /// [`Enhancer::denoise`] on the calling thread.
    fn denoise_here(&mut self, input: &Frame<f32>, mask: &Frame<u8>) -> &Frame<f32> {
        let Self {
            params,
            bufs,
            denoised,
            recursive,
            bilateral,
            noise_scratch,
            spans,
            times,
            ..
        } = self;
        let t = Instant::now();
        // log-domain data into the recursive filter: the normalised frame is the input with
        // the outside filled by the inside mean, so the filter makes its rows as it reads
        // them and the frame is written only if the noise fallback needs it
        let fused = params.temporal.is_some()
            && params.intensity == normalize::Intensity::Log
            && mask.size() == input.size();
        let fill = if fused {
            normalize::inside_mean_in(input, mask, spans)
        } else {
            normalize::normalize(input, mask, params.intensity, &mut bufs[0])
        };
        times.normalize_ms = ms(t);
        let t = Instant::now();
        let mut cur = Slot::Buf0;
        if let Some(p) = params.temporal {
            if fused {
                let b0 = &mut bufs[0];
                let filled = temporal::Current::Filled {
                    src: input,
                    mask,
                    fill,
                };
                // the pixel noise is needed only when the gate could not measure its scale
                let noise = || {
                    normalize::normalize(input, mask, params.intensity, b0);
                    temporal::estimate_noise_sigma(b0, mask, noise_scratch)
                };
                recursive.filter_current(filled, mask, noise, &p);
            } else {
                let normalized = &bufs[0];
                let noise = || temporal::estimate_noise_sigma(normalized, mask, noise_scratch);
                recursive.filter_with(normalized, mask, noise, &p);
            }
            cur = Slot::History;
        }
        times.temporal_ms = ms(t);
        let t = Instant::now();
        if let Some(p) = params.spatial {
            let (src, dst) = split(bufs, recursive, cur, 1);
            bilateral::bilateral_in_field(src, mask, &p, bilateral, dst);
            cur = Slot::Buf1;
        }
        *denoised = cur;
        times.spatial_ms = ms(t);
        self.get(cur)
    }

    /// The denoised frame of the last [`Enhancer::denoise`], and the display half of the
    /// chain (CLAHE, detail) ready to run on it: the two borrow disjoint buffers, so the
    /// frame can be analysed while its display output is made.
    pub fn display_stage(&mut self) -> (&Frame<f32>, DisplayStage<'_>) {
        let Self {
            params,
            bufs,
            denoised,
            output,
            recursive,
            clahe,
            detail,
            times,
            ..
        } = self;
        let [b0, b1, b2] = bufs;
        // the denoised frame, and the two other work buffers with their slots
        let (src, free) = match *denoised {
            Slot::Buf0 => (&*b0, [(Slot::Buf1, b1), (Slot::Buf2, b2)]),
            Slot::Buf1 => (&*b1, [(Slot::Buf2, b2), (Slot::Buf0, b0)]),
            Slot::Buf2 => (&*b2, [(Slot::Buf0, b0), (Slot::Buf1, b1)]),
            Slot::History => (recursive.output(), [(Slot::Buf2, b2), (Slot::Buf0, b0)]),
        };
        let stage = DisplayStage {
            params,
            src,
            free,
            denoised: *denoised,
            output,
            clahe,
            detail,
            times,
        };
        (src, stage)
    }
}

/// The display half of [`Enhancer::process`], from [`Enhancer::display_stage`].
pub struct DisplayStage<'a> {
    params: &'a EnhanceParams,
    src: &'a Frame<f32>,
    free: [(Slot, &'a mut Frame<f32>); 2],
    denoised: Slot,
    output: &'a mut Slot,
    clahe: &'a mut clahe::ClaheScratch,
    detail: &'a mut detail::DetailScratch,
    times: &'a mut StageTimes,
}

impl<'a> DisplayStage<'a> {
    /// CLAHE and detail enhancement of the denoised frame; returns the display output
    /// (also [`Enhancer::output`] from now on).
    pub fn run(self, mask: &Frame<u8>) -> &'a Frame<f32> {
        par::in_pool(|| self.run_here(mask, None))
    }

    /// [`DisplayStage::run`], also taking the display window's samples of the output into
    /// `samples` (those [`display::Window::from_percentiles`] selects from, for
    /// [`display::Window::from_samples`]): with the detail stage on, each as its row is
    /// written ([`detail::enhance_detail_sampled`]), which spares a second, scattered read
    /// of the frame.
    pub fn run_sampled(self, mask: &Frame<u8>, samples: &mut Vec<f32>) -> &'a Frame<f32> {
        par::in_pool(|| self.run_here(mask, Some(samples)))
    }

    /// [`DisplayStage::run_sampled`] (or [`DisplayStage::run`], without `samples`) on the
    /// calling thread.
    fn run_here(self, mask: &Frame<u8>, mut samples: Option<&mut Vec<f32>>) -> &'a Frame<f32> {
        let Self {
            params,
            src,
            free,
            denoised,
            output,
            clahe,
            detail,
            times,
        } = self;
        let [(slot_a, a), (slot_b, b)] = free;
        let t = Instant::now();
        match (params.clahe, params.detail) {
            // CLAHE makes the detail stage's 4x4 means of its result as it goes
            (Some(p), Some(_)) => detail.means_from(|quarter| {
                clahe::clahe_with_means(src, mask, params.range, &p, clahe, a, Some(quarter));
                a.stamp()
            }),
            (Some(p), None) => clahe::clahe(src, mask, params.range, &p, clahe, a),
            (None, _) => {}
        }
        times.clahe_ms = ms(t);
        let t = Instant::now();
        // CLAHE's result (if any) is in `a`; detail writes the buffer that holds neither
        // it nor the denoised frame
        let mut detailed = |input: &Frame<f32>, p, out: &mut Frame<f32>, samples| match samples {
            Some(s) => detail::enhance_detail_sampled(input, mask, &p, detail, s, out),
            None => detail::enhance_detail_in_field(input, mask, &p, detail, out),
        };
        let (out, out_slot): (&'a Frame<f32>, Slot) = match (params.clahe, params.detail) {
            (Some(_), Some(p)) => {
                detailed(a, p, b, samples.take());
                (b, slot_b)
            }
            (Some(_), None) => (a, slot_a),
            (None, Some(p)) => {
                detailed(src, p, a, samples.take());
                (a, slot_a)
            }
            (None, None) => (src, denoised),
        };
        // without the detail stage, from the output
        if let Some(s) = samples {
            display::samples(out, mask, s);
        }
        times.detail_ms = ms(t);
        *output = out_slot;
        out
    }
}

fn slot_index(s: Slot) -> Option<usize> {
    match s {
        Slot::Buf0 => Some(0),
        Slot::Buf1 => Some(1),
        Slot::Buf2 => Some(2),
        Slot::History => None,
    }
}

/// Borrows the source slot and work buffer `dst` (which must differ) at once.
fn split<'a>(
    bufs: &'a mut [Frame<f32>; 3],
    hist: &'a temporal::RecursiveFilter,
    src: Slot,
    dst: usize,
) -> (&'a Frame<f32>, &'a mut Frame<f32>) {
    match slot_index(src) {
        None => (hist.output(), &mut bufs[dst]),
        Some(i) => {
            assert_ne!(i, dst, "source and destination buffers must differ");
            let (lo, hi) = bufs.split_at_mut(i.max(dst));
            if i < dst {
                (&lo[i], &mut hi[0])
            } else {
                (&hi[0], &mut lo[dst])
            }
        }
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of stages switched off: the chain's denoised frame and output are
    /// the stage functions composed by hand (so the buffers it picks never overlap), over
    /// three frames (the recursive filter's history in play).
    #[test]
    fn chain_equals_its_stages_composed_for_every_switch_setting() {
        // a large field, the same with a hole (rows with outside pixels inside their span),
        // and one too small for the recursive filter's gate to measure its scale (it falls
        // back on the pixel noise)
        let large = Frame::from_fn(48, 40, |x, y| u8::from(x + y > 6));
        let holed = Frame::from_fn(48, 40, |x, y| {
            u8::from(x + y > 6 && !((20..24).contains(&x) && (10..14).contains(&y)))
        });
        let small = Frame::from_fn(48, 40, |x, y| {
            u8::from((20..26).contains(&x) && (15..21).contains(&y))
        });
        for mask in [large, holed, small] {
            chain_cases(&mask);
        }
    }

    fn chain_cases(mask: &Frame<u8>) {
        // the shutter far from the field's values, so a fill missed anywhere shows
        let frames: Vec<Frame<f32>> = (0..3)
            .map(|n| {
                Frame::from_fn(48, 40, |x, y| {
                    if mask.get(x, y) != 0 {
                        1500.0 + ((x * 13 + y * 7 + n * 5) % 50) as f32
                    } else {
                        4000.0 - n as f32
                    }
                })
            })
            .collect();
        let mask = mask.clone();
        for (bits, intensity) in (0..16u32)
            .flat_map(|b| [normalize::Intensity::Log, normalize::Intensity::Linear].map(|i| (b, i)))
        {
            let on = |k: u32| bits & (1 << k) != 0;
            let d = EnhanceParams::default();
            let params = EnhanceParams {
                intensity,
                temporal: d.temporal.filter(|_| on(0)),
                spatial: d.spatial.filter(|_| on(1)),
                clahe: d.clahe.filter(|_| on(2)),
                detail: d.detail.filter(|_| on(3)),
                ..d
            };
            let mut e = Enhancer::new(params.clone());
            let mut rf = temporal::RecursiveFilter::default();
            for f in &frames {
                let out = e.process(f, &mask).clone();
                let mut x = Frame::new(0, 0);
                normalize::normalize(f, &mask, params.intensity, &mut x);
                if let Some(p) = params.temporal {
                    let sigma = temporal::estimate_noise_sigma(&x, &mask, &mut Vec::new());
                    x = rf.filter(&x, &mask, sigma, &p).clone();
                }
                if let Some(p) = params.spatial {
                    let mut y = Frame::new(0, 0);
                    bilateral::bilateral_in_field(&x, &mask, &p, &mut Default::default(), &mut y);
                    x = y;
                }
                assert_eq!(
                    e.denoised().data(),
                    x.data(),
                    "denoised, switches {bits:04b}"
                );
                if let Some(p) = params.clahe {
                    let mut y = Frame::new(0, 0);
                    clahe::clahe(&x, &mask, params.range, &p, &mut Default::default(), &mut y);
                    x = y;
                }
                if let Some(p) = params.detail {
                    let mut y = Frame::new(0, 0);
                    detail::enhance_detail_in_field(&x, &mask, &p, &mut Default::default(), &mut y);
                    x = y;
                }
                assert_eq!(out.data(), x.data(), "output, switches {bits:04b}");
                assert_eq!(e.output().data(), x.data());
            }
        }
    }

    /// The display half's samples give the window of its output's percentiles, with CLAHE
    /// and detail on or off (detail off: taken from the output afterwards).
    #[test]
    fn sampled_display_half_gives_the_outputs_window() {
        let mask = Frame::from_fn(50, 41, |x, y| u8::from(x + 2 * y > 9));
        let f = Frame::from_fn(50, 41, |x, y| 900.0 + ((x * 31 + y * 17) % 97) as f32);
        for bits in 0..4u32 {
            let d = EnhanceParams::default();
            let mut e = Enhancer::new(EnhanceParams {
                clahe: d.clahe.filter(|_| bits & 1 != 0),
                detail: d.detail.filter(|_| bits & 2 != 0),
                ..d
            });
            e.denoise(&f, &mask);
            let mut samples = Vec::new();
            let out = e.display_stage().1.run_sampled(&mask, &mut samples).clone();
            let got = display::Window::from_samples(&mut samples, 0.5, 99.5);
            let want = display::Window::from_percentiles(&out, &mask, 0.5, 99.5, &mut samples);
            assert_eq!(got, want, "switches {bits:02b}");
            assert_eq!(e.output().data(), out.data());
        }
    }

    /// Frames with no pixels (zero width, height or both) pass through every stage and the
    /// whole chain, every switch on, without a panic.
    #[test]
    fn empty_frames_pass_through_the_chain() {
        for (w, h) in [(0, 0), (0, 7), (7, 0)] {
            let (f, mask) = (Frame::<f32>::new(w, h), Frame::<u8>::new(w, h));
            for intensity in [normalize::Intensity::Log, normalize::Intensity::Linear] {
                let mut e = Enhancer::new(EnhanceParams {
                    intensity,
                    ..Default::default()
                });
                for _ in 0..2 {
                    assert_eq!(e.process(&f, &mask).size(), (w, h));
                    assert_eq!(e.denoised().size(), (w, h));
                }
            }
            let mut out = Frame::new(3, 3);
            let mut tmp = Frame::new(0, 0);
            gaussian::blur(&f, &gaussian::kernel(2.0), &mut tmp, &mut out);
            assert_eq!(out.size(), (w, h));
            let mut spans = field::FieldSpans::default();
            gaussian::blur_in_field(
                &f,
                &mask,
                &mut spans,
                &gaussian::kernel(2.0),
                &mut tmp,
                &mut out,
            );
            assert_eq!(out.size(), (w, h));
            let mut u8s = Frame::new(3, 3);
            display::to_u8(
                &f,
                &mask,
                display::Window {
                    center: 0.5,
                    width: 1.0,
                },
                &mut u8s,
            );
            assert_eq!(u8s.size(), (w, h));
        }
    }

    #[test]
    fn chain_runs_and_keeps_the_size() {
        let mut e = Enhancer::new(EnhanceParams::default());
        let mask = Frame::filled(48, 40, 1u8);
        for n in 0..3 {
            let f = Frame::from_fn(48, 40, |x, y| 1500.0 + ((x * 13 + y * 7 + n) % 50) as f32);
            let out = e.process(&f, &mask);
            assert_eq!(out.size(), (48, 40));
            assert!(out.data().iter().all(|v| v.is_finite()));
        }
    }
}
