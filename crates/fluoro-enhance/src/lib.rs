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
pub mod large_blur;
pub mod normalize;
pub mod par;
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
        let Self {
            params,
            bufs,
            denoised,
            output,
            recursive,
            bilateral,
            clahe,
            detail,
            noise_scratch,
            times,
        } = self;
        let t = Instant::now();
        normalize::normalize(input, mask, params.intensity, &mut bufs[0]);
        times.normalize_ms = ms(t);
        let t = Instant::now();
        let mut cur = Slot::Buf0;
        if let Some(p) = params.temporal {
            let normalized = &bufs[0];
            recursive.filter_with(
                normalized,
                mask,
                || temporal::estimate_noise_sigma(normalized, mask, noise_scratch),
                &p,
            );
            cur = Slot::History;
        }
        times.temporal_ms = ms(t);
        let t = Instant::now();
        if let Some(p) = params.spatial {
            let (src, dst) = split(bufs, recursive, cur, 1);
            bilateral::bilateral(src, &p, bilateral, dst);
            cur = Slot::Buf1;
        }
        *denoised = cur;
        times.spatial_ms = ms(t);
        let t = Instant::now();
        if let Some(p) = params.clahe {
            let (src, dst) = split(bufs, recursive, cur, 2);
            clahe::clahe(src, mask, params.range, &p, clahe, dst);
            cur = Slot::Buf2;
        }
        times.clahe_ms = ms(t);
        let t = Instant::now();
        if let Some(p) = params.detail {
            let free = [0usize, 1, 2]
                .into_iter()
                .find(|&i| slot_index(cur) != Some(i) && slot_index(*denoised) != Some(i))
                .expect("a free buffer");
            let (src, dst) = split(bufs, recursive, cur, free);
            detail::enhance_detail(src, &p, detail, dst);
            cur = [Slot::Buf0, Slot::Buf1, Slot::Buf2][free];
        }
        *output = cur;
        times.detail_ms = ms(t);
        self.get(cur)
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
