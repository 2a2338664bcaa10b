//! The whole per-frame chain (enhance, analyse, overlay) through `FrameLoop`, the loop that
//! `fluoro process`, `fluoro bench` and the viewer use, at 512, 1024 and 1536 on a simulated
//! study with an instrument and contrast: on the CPU, and on a hardware GPU when there is
//! one (`Backend::Auto`; set `FLUORO_BENCH_GPU=1` to time a software adapter too), one frame
//! at a time and with the next frame queued ahead.
//! Run: `cargo bench -p fluoro-pipeline --bench frame_loop`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fluoro_core::Frame;
use fluoro_pipeline::{Backend, FrameLoop, PipelineParams};
use std::hint::black_box;

/// A short study's frames as the loop takes them, its mask and scale.
fn study(size: usize) -> (Vec<Frame<f32>>, Frame<u8>, f64) {
    let cfg = fluoro_synth::SynthConfig {
        size,
        frames: 16,
        contrast: true,
        scenario: fluoro_synth::Scenario::Touch,
        ..Default::default()
    };
    let s = fluoro_synth::generate(&cfg);
    let frames = s
        .frames
        .iter()
        .map(|raw| {
            Frame::from_vec(size, size, raw.iter().map(|&v| f32::from(v)).collect())
                .expect("frame size")
        })
        .collect();
    (frames, s.shutter.mask(size, size), s.carm.mm_per_px())
}

fn bench(c: &mut Criterion) {
    let software_too = std::env::var_os("FLUORO_BENCH_GPU").is_some();
    for size in [512usize, 1024, 1536] {
        let (frames, mask, mm) = study(size);
        let mut g = c.benchmark_group(format!("frame-loop-{size}"));
        g.sample_size(if size > 1024 { 10 } else { 20 });
        let mut loops = vec![("cpu", FrameLoop::new(PipelineParams::default()))];
        let gpu = FrameLoop::with_backend(
            PipelineParams::default(),
            if software_too {
                Backend::Gpu
            } else {
                Backend::Auto
            },
        );
        if let Ok(fl) = gpu
            && fl.backend().starts_with("gpu")
        {
            loops.push(("gpu", fl));
        }
        for (name, mut fl) in loops {
            let mut i = 0;
            g.bench_function(BenchmarkId::new(name, size), |b| {
                b.iter(|| {
                    i += 1;
                    let f = &frames[i % frames.len()];
                    black_box(fl.process(f, &mask, Some(mm), true).expect("frame").0)
                })
            });
            if name == "gpu" {
                // the device enhances frame n + 1 while the CPU analyses frame n; a cycle of
                // the study starts afresh so the frame queued ahead is always the next one
                fl.reset();
                g.bench_function(BenchmarkId::new("gpu-ahead", size), |b| {
                    b.iter_custom(|iters| {
                        let t = std::time::Instant::now();
                        for k in 0..iters as usize {
                            let n = frames.len();
                            let next = (k + 1 < iters as usize).then(|| &frames[(k + 1) % n]);
                            let a = fl.process_ahead(&frames[k % n], &mask, next, Some(mm), true);
                            black_box(a.expect("frame"));
                        }
                        fl.reset();
                        t.elapsed()
                    })
                });
            }
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
