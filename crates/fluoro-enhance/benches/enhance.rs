//! Per-stage and whole-chain timings at 512, 1024 and 1536 on simulated 12-bit frames.
//! Run: `cargo bench -p fluoro-enhance --bench enhance`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fluoro_core::Frame;
use fluoro_enhance::*;
use std::hint::black_box;

fn frames(size: usize) -> (Frame<f32>, Frame<f32>, Frame<u8>) {
    let cfg = fluoro_synth::SynthConfig {
        size,
        frames: 14,
        ..Default::default()
    };
    let s = fluoro_synth::generate(&cfg);
    let to_f32 = |v: &Vec<u16>| {
        Frame::from_vec(size, size, v.iter().map(|&x| f32::from(x)).collect()).unwrap()
    };
    (
        to_f32(&s.frames[12]),
        to_f32(&s.frames[13]),
        s.shutter.mask(size, size),
    )
}

fn bench(c: &mut Criterion) {
    for size in [512usize, 1024, 1536] {
        let (f0, f1, mask) = frames(size);
        let mut g = c.benchmark_group(format!("enhance-{size}"));
        g.sample_size(20);
        let mut out = Frame::new(0, 0);
        let mut tmp = Frame::new(0, 0);
        g.bench_function(BenchmarkId::new("normalize", size), |b| {
            b.iter(|| {
                normalize::normalize(black_box(&f1), &mask, normalize::Intensity::Log, &mut out)
            })
        });
        // linear data: the log transform too
        g.bench_function(BenchmarkId::new("normalize_linear", size), |b| {
            b.iter(|| {
                normalize::normalize(
                    black_box(&f1),
                    &mask,
                    normalize::Intensity::Linear,
                    &mut out,
                )
            })
        });
        let mut rf = temporal::RecursiveFilter::default();
        rf.apply(
            &f0,
            &mask,
            20.0,
            &temporal::TemporalParams::default(),
            &mut out,
        );
        g.bench_function(BenchmarkId::new("temporal", size), |b| {
            b.iter(|| {
                black_box(
                    rf.filter(
                        black_box(&f1),
                        &mask,
                        20.0,
                        &temporal::TemporalParams::default(),
                    )
                    .get(0, 0),
                )
            })
        });
        let mut bs = bilateral::BilateralScratch::default();
        g.bench_function(BenchmarkId::new("bilateral-d5", size), |b| {
            b.iter(|| {
                bilateral::bilateral(
                    black_box(&f1),
                    &bilateral::BilateralParams::default(),
                    &mut bs,
                    &mut out,
                )
            })
        });
        let k = gaussian::kernel(2.0);
        g.bench_function(BenchmarkId::new("gaussian-s2", size), |b| {
            b.iter(|| gaussian::blur(black_box(&f1), &k, &mut tmp, &mut out))
        });
        // the analysis's background estimate (instrument, VILL): sigma size / 40
        let mut ls = gaussian::LargeBlurScratch::default();
        let sigma = size as f32 / 40.0;
        g.bench_function(BenchmarkId::new("gaussian-large", size), |b| {
            b.iter(|| gaussian::blur_large(black_box(&f1), sigma, &mut ls, &mut out))
        });
        let mut cs = clahe::ClaheScratch::default();
        g.bench_function(BenchmarkId::new("clahe-8x8", size), |b| {
            b.iter(|| {
                clahe::clahe(
                    black_box(&f1),
                    &mask,
                    (0.0, 4095.0),
                    &clahe::ClaheParams::default(),
                    &mut cs,
                    &mut out,
                )
            })
        });
        let mut ds = detail::DetailScratch::default();
        g.bench_function(BenchmarkId::new("detail", size), |b| {
            b.iter(|| {
                detail::enhance_detail(
                    black_box(&f1),
                    &detail::DetailParams::default(),
                    &mut ds,
                    &mut out,
                )
            })
        });
        let mut e = Enhancer::new(EnhanceParams::default());
        e.process(&f0, &mask);
        let mut flip = false;
        g.bench_function(BenchmarkId::new("chain", size), |b| {
            b.iter(|| {
                flip = !flip;
                black_box(e.process(if flip { &f1 } else { &f0 }, &mask).get(0, 0))
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
