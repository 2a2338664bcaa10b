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
        let t = Instant::now();
        normalize::normalize(input, mask, self.params.intensity, &mut self.a);
        self.times.normalize_ms = ms(t);
        let t = Instant::now();
        if let Some(p) = self.params.temporal {
            self.noise_sigma =
                temporal::estimate_noise_sigma(&self.a, mask, &mut self.noise_scratch);
            self.recursive
                .apply(&self.a, self.noise_sigma, &p, &mut self.b);
            std::mem::swap(&mut self.a, &mut self.b);
        }
        self.times.temporal_ms = ms(t);
        let t = Instant::now();
        if let Some(p) = self.params.spatial {
            bilateral::bilateral(&self.a, &p, &mut self.bilateral, &mut self.b);
            std::mem::swap(&mut self.a, &mut self.b);
        }
        self.times.spatial_ms = ms(t);
        let t = Instant::now();
        if let Some(p) = self.params.clahe {
            clahe::clahe(
                &self.a,
                mask,
                self.params.range,
                &p,
                &mut self.clahe,
                &mut self.b,
            );
            std::mem::swap(&mut self.a, &mut self.b);
        }
        self.times.clahe_ms = ms(t);
        let t = Instant::now();
        if let Some(p) = self.params.detail {
            detail::enhance_detail(&self.a, &p, &mut self.detail, &mut self.b);
            std::mem::swap(&mut self.a, &mut self.b);
        }
        self.times.detail_ms = ms(t);
        &self.a
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
