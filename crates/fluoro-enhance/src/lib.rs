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
pub mod gaussian;
pub mod normalize;
pub mod quality;
pub mod temporal;

use fluoro_core::Frame;
use serde::{Deserialize, Serialize};
use std::time::Instant;

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

/// The chain with its state (the recursive filter's history) and buffers.
#[derive(Debug, Default)]
pub struct Enhancer {
    params: EnhanceParams,
    a: Frame<f32>,
    b: Frame<f32>,
    recursive: temporal::RecursiveFilter,
    bilateral: bilateral::BilateralScratch,
    clahe: clahe::ClaheScratch,
    detail: detail::DetailScratch,
    noise_scratch: Vec<f32>,
    noise_sigma: f32,
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

    /// Noise sigma estimated on the last input frame (after normalisation).
    pub fn noise_sigma(&self) -> f32 {
        self.noise_sigma
    }

    /// Enhances one frame; the result stays valid until the next call.
    pub fn process(&mut self, input: &Frame<f32>, mask: &Frame<u8>) -> &Frame<f32> {
        let Self {
            params,
            a,
            b,
            recursive,
            bilateral,
            clahe,
            detail,
            noise_scratch,
            noise_sigma,
            times,
        } = self;
        let t = Instant::now();
        normalize::normalize(input, mask, params.intensity, a);
        times.normalize_ms = ms(t);
        let t = Instant::now();
        // `cur` is where the latest result lives; stages write into whichever buffer is free
        let mut cur: &mut Frame<f32> = a;
        let mut free: &mut Frame<f32> = b;
        let mut from_history = false;
        if let Some(p) = params.temporal {
            *noise_sigma = temporal::estimate_noise_sigma(cur, mask, noise_scratch);
            recursive.filter(cur, mask, *noise_sigma, &p);
            from_history = true;
        }
        times.temporal_ms = ms(t);
        let t = Instant::now();
        if let Some(p) = params.spatial {
            let src: &Frame<f32> = if from_history {
                recursive.output()
            } else {
                cur
            };
            bilateral::bilateral(src, &p, bilateral, free);
            std::mem::swap(&mut cur, &mut free);
            from_history = false;
        }
        times.spatial_ms = ms(t);
        let t = Instant::now();
        if let Some(p) = params.clahe {
            let src: &Frame<f32> = if from_history {
                recursive.output()
            } else {
                cur
            };
            clahe::clahe(src, mask, params.range, &p, clahe, free);
            std::mem::swap(&mut cur, &mut free);
            from_history = false;
        }
        times.clahe_ms = ms(t);
        let t = Instant::now();
        if let Some(p) = params.detail {
            let src: &Frame<f32> = if from_history {
                recursive.output()
            } else {
                cur
            };
            detail::enhance_detail(src, &p, detail, free);
            std::mem::swap(&mut cur, &mut free);
            from_history = false;
        }
        times.detail_ms = ms(t);
        if from_history {
            let r = recursive.output();
            cur.reshape(r.width(), r.height());
            cur.data_mut().copy_from_slice(r.data());
        }
        cur
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

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
