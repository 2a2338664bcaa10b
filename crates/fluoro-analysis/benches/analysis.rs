//! Analysis timings at 512 and 1024 on enhanced simulated frames: the instrument detector,
//! the anatomy features and the model's grid scoring alone, and the whole per-frame
//! analysis (instrument, VILL, labels).
//! Run: `cargo bench -p fluoro-analysis --bench analysis`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fluoro_analysis::{AnalysisParams, Analyzer, anatomy, instrument};
use fluoro_core::Frame;
use fluoro_enhance::{EnhanceParams, Enhancer};
use std::hint::black_box;

/// The enhanced frames of a short simulated study (instrument in view), its mask and scale.
fn enhanced(size: usize) -> (Vec<Frame<f32>>, Frame<u8>, f64) {
    let cfg = fluoro_synth::SynthConfig {
        size,
        frames: 16,
        ..Default::default()
    };
    let s = fluoro_synth::generate(&cfg);
    let mask = s.shutter.mask(size, size);
    let mut e = Enhancer::new(EnhanceParams::default());
    let frames = s
        .frames
        .iter()
        .map(|raw| {
            let f = Frame::from_vec(size, size, raw.iter().map(|&v| f32::from(v)).collect())
                .expect("frame size");
            e.process(&f, &mask);
            e.denoised().clone()
        })
        .collect();
    (frames, mask, s.carm.mm_per_px())
}

fn bench(c: &mut Criterion) {
    for size in [512usize, 1024] {
        let (frames, mask, mm) = enhanced(size);
        let mut g = c.benchmark_group(format!("analysis-{size}"));
        g.sample_size(20);
        let mut a = Analyzer::new(AnalysisParams::default());
        for f in &frames {
            a.analyse(f, &mask, Some(mm), None);
        }
        let mut det = instrument::InstrumentDetector::new(Default::default());
        g.bench_function(BenchmarkId::new("instrument", size), |b| {
            b.iter(|| black_box(det.detect_scaled(&frames[8], &mask, 1000.0, Some(mm))))
        });
        let mut feats = anatomy::AnatomyFeatures::default();
        let lm = anatomy::Landmarks {
            vill: None,
            ventral: None,
            tool: None,
            mm_per_px: mm,
            range: 1000.0,
        };
        g.bench_function(BenchmarkId::new("anatomy-features", size), |b| {
            b.iter(|| {
                feats.compute(black_box(&frames[0]), &mask, &lm);
                black_box(feats.features()[0])
            })
        });
        // as on most frames of a procedure: the VILL and the instrument known
        let c = size as f64 / 2.0;
        let lm_known = anatomy::Landmarks {
            vill: Some([[c, c - 60.0], [c + 10.0, c + 60.0]]),
            ventral: Some([1.0, 0.0]),
            tool: Some(([c - 40.0, c], [0.9, 0.1])),
            ..lm
        };
        g.bench_function(BenchmarkId::new("anatomy-features-landmarks", size), |b| {
            b.iter(|| {
                feats.compute(black_box(&frames[0]), &mask, &lm_known);
                black_box(feats.features()[0])
            })
        });
        let model = anatomy::embedded_model().expect("the committed model parses");
        let (mut scratch, mut scores) = (anatomy::ScoreScratch::default(), Vec::new());
        // the features of the frame with both landmarks (the last computed above)
        g.bench_function(BenchmarkId::new("anatomy-score", size), |b| {
            b.iter(|| {
                anatomy::score_grid(&feats, model, &mut scratch, &mut scores);
                black_box(scores[0])
            })
        });
        // both in one pass over the grid rows, as the analyzer runs them
        let mut rows = anatomy::ScoredRowScratch::default();
        g.bench_function(BenchmarkId::new("anatomy-features-scored", size), |b| {
            b.iter(|| {
                let f = black_box(&frames[0]);
                feats.compute_scored(f, &mask, &lm_known, model, &mut rows, &mut scores);
                black_box(scores[0])
            })
        });
        let mut i = 0;
        g.bench_function(BenchmarkId::new("analyse", size), |b| {
            b.iter(|| {
                i = (i + 1) % frames.len();
                black_box(a.analyse(&frames[i], &mask, Some(mm), None).guidance.state)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
