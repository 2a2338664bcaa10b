//! GPU results equal the CPU path's within stated tolerances, on whatever adapter the
//! machine has (CI: Mesa lavapipe). Fails loudly when no adapter exists unless
//! `FLUORO_SKIP_GPU=1` says the machine truly has none.

use fluoro_core::Frame;
use fluoro_enhance::bilateral::{BilateralParams, BilateralScratch, bilateral};
use fluoro_enhance::gaussian::{blur, kernel};
use fluoro_gpu::{GpuContext, filters::GpuFilters};

/// The machine's adapter, or `None` (test skipped) where `FLUORO_SKIP_GPU=1` says it has none.
fn context() -> Option<GpuContext> {
    if std::env::var("FLUORO_SKIP_GPU").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: FLUORO_SKIP_GPU=1");
        return None;
    }
    let ctx = GpuContext::new()
        .unwrap_or_else(|e| panic!("{e} (set FLUORO_SKIP_GPU=1 on a machine without any adapter)"));
    eprintln!("GPU adapter: {}", ctx.describe());
    Some(ctx)
}

fn filters() -> Option<GpuFilters> {
    context().map(GpuFilters::new)
}

fn frame(w: usize, h: usize, seed: u32) -> Frame<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    Frame::from_fn(w, h, |x, y| {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        1500.0
            + 400.0 * ((x as f32) / 9.0).sin()
            + if (x + y) % 37 < 6 { -600.0 } else { 0.0 }
            + (s % 1000) as f32 * 0.05
    })
}

fn max_rel(a: &Frame<f32>, b: &Frame<f32>) -> f32 {
    a.data()
        .iter()
        .zip(b.data())
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

/// Tolerance: 1e-4 relative (float32 summation order and the CPU's polynomial exp).
const TOL: f32 = 1e-4;

#[test]
fn bilateral_matches_cpu() {
    let Some(mut g) = filters() else { return };
    for (w, h) in [(123, 77), (256, 256)] {
        let src = frame(w, h, 3);
        let p = BilateralParams::default();
        let mut cpu = Frame::new(0, 0);
        bilateral(&src, &p, &mut BilateralScratch::default(), &mut cpu);
        let mut gpu = Frame::new(0, 0);
        g.bilateral(&src, &p, &mut gpu).unwrap();
        let e = max_rel(&gpu, &cpu);
        assert!(e < TOL, "{w}x{h}: max relative difference {e}");
    }
}

#[test]
fn gaussian_matches_cpu() {
    let Some(mut g) = filters() else { return };
    for (w, h, sigma) in [(123, 77, 2.0), (300, 200, 1.0)] {
        let src = frame(w, h, 9);
        let k = kernel(sigma);
        let (mut tmp, mut cpu) = (Frame::new(0, 0), Frame::new(0, 0));
        blur(&src, &k, &mut tmp, &mut cpu);
        let mut gpu = Frame::new(0, 0);
        g.blur(&src, &k, &mut gpu).unwrap();
        let e = max_rel(&gpu, &cpu);
        assert!(
            e < TOL,
            "{w}x{h} sigma {sigma}: max relative difference {e}"
        );
    }
}

#[test]
fn every_shader_validates_with_naga() {
    for (name, src) in fluoro_gpu::shaders::ALL {
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
        let mut v = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        );
        v.validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
}

#[test]
fn whole_chain_matches_cpu_over_a_sequence() {
    let Some(ctx) = context() else {
        return;
    };
    let params = fluoro_enhance::EnhanceParams::default();
    let mut gpu = fluoro_gpu::chain::GpuEnhancer::new(ctx, params.clone());
    let mut cpu = fluoro_enhance::Enhancer::new(params);
    let (w, h) = (384, 320);
    let mask = Frame::from_fn(w, h, |x, y| {
        u8::from((x as i32 - 192).pow(2) + (y as i32 - 160).pow(2) < 150 * 150)
    });
    for n in 0..4 {
        // a moving dark bar over a noisy ramp
        let mut f = frame(w, h, n + 1);
        for y in 60..66 {
            for x in 20..(80 + 10 * n as usize) {
                f.set(x, y, 900.0);
            }
        }
        cpu.process(&f, &mask);
        gpu.process(&f, &mask).unwrap();
        let den = max_rel(gpu.denoised(), cpu.denoised());
        assert!(den < 1e-3, "frame {n}: denoised differs by {den}");
        // The output spans CLAHE's range (0..4095) and maps dark pixels near 0, so it is
        // compared in units of that range. A float difference of 1e-4 in the denoised frame
        // can move a pixel across a histogram bin, which moves its output by one mapping
        // step, about range / tile_pixels (48x40 tiles here: 0.05% of the range).
        // A pixel that crosses a bin changes its tile's mapping for every pixel of that bin
        // in the four tiles around it, so a few such crossings move 0.1% of the pixels by
        // two or three steps (lavapipe: 0.12% of the range at the 99.9th percentile with the
        // denoised frames 3e-6 apart).
        // Tolerance: 99.9% of pixels within 0.2% of the range, every pixel within 0.5%.
        let (o_gpu, o_cpu) = (gpu.output(), cpu.output());
        let range = 4095.0;
        let mut diff: Vec<f32> = o_gpu
            .data()
            .iter()
            .zip(o_cpu.data())
            .map(|(a, b)| (a - b).abs() / range)
            .collect();
        diff.sort_by(f32::total_cmp);
        let p999 = diff[diff.len() * 999 / 1000];
        let max = diff[diff.len() - 1];
        assert!(
            p999 < 2e-3,
            "frame {n}: 99.9th percentile difference {p999} of the range"
        );
        assert!(max < 5e-3, "frame {n}: max difference {max} of the range");
    }
}

/// Per-stage GPU times come from timestamp queries when the device has them (lavapipe
/// does): every stage that ran has a finite, non-negative time, the gate and temporal
/// stages are absent on the first frame (nothing to compare with yet), and the stages sum
/// to less than the frame's wall time. The copy bandwidth is positive.
#[test]
fn stage_times_and_copy_bandwidth() {
    let Some(ctx) = context() else {
        return;
    };
    let bw = fluoro_gpu::profile::copy_bandwidth_gbps(&ctx).unwrap();
    assert!(bw.is_finite() && bw > 0.0, "{bw}");
    let has_timestamps = ctx.timestamps;
    eprintln!(
        "{}: timestamps {has_timestamps}, copy {bw:.1} GB/s",
        ctx.describe()
    );
    let mut gpu =
        fluoro_gpu::chain::GpuEnhancer::new(ctx, fluoro_enhance::EnhanceParams::default());
    gpu.set_profiling(true);
    let (w, h) = (256, 256);
    let mask = Frame::filled(w, h, 1u8);
    for n in 0..3 {
        let f = frame(w, h, n + 1);
        let t = std::time::Instant::now();
        gpu.process(&f, &mask).unwrap();
        let wall_ms = t.elapsed().as_secs_f64() * 1000.0;
        let Some(ms) = gpu.stage_ms() else {
            assert!(!has_timestamps, "timestamps supported but no stage times");
            return;
        };
        assert!(ms.iter().all(|v| v.is_finite() && *v >= 0.0), "{ms:?}");
        assert!(
            ms[0] > 0.0 && ms[3] > 0.0 && ms[4] > 0.0 && ms[5] > 0.0,
            "{ms:?}"
        );
        if n == 0 {
            assert_eq!(
                (ms[1], ms[2]),
                (0.0, 0.0),
                "no temporal work on the first frame"
            );
        } else {
            assert!(ms[2] > 0.0, "{ms:?}");
        }
        assert!(
            ms.iter().sum::<f64>() <= wall_ms * 1.05 + 0.5,
            "{ms:?} vs {wall_ms} ms"
        );
    }
}

/// Frames submitted ahead (two in flight, read back one frame late) give the same bits as
/// frames processed one at a time: the queue keeps the recursive filter's order and each
/// frame's read-back slot.
#[test]
fn frames_queued_ahead_match_one_at_a_time() {
    let (Some(a), Some(b)) = (context(), context()) else {
        return;
    };
    let params = fluoro_enhance::EnhanceParams::default();
    let mut one = fluoro_gpu::chain::GpuEnhancer::new(a, params.clone());
    let mut ahead = fluoro_gpu::chain::GpuEnhancer::new(b, params);
    let (w, h) = (96, 80);
    let mask = Frame::filled(w, h, 1u8);
    let frames: Vec<Frame<f32>> = (0..5).map(|n| frame(w, h, 7 + n)).collect();
    ahead.submit(&frames[0], &mask).unwrap();
    for (i, f) in frames.iter().enumerate() {
        one.process(f, &mask).unwrap();
        if let Some(n) = frames.get(i + 1) {
            ahead.submit(n, &mask).unwrap();
            assert_eq!(ahead.in_flight(), 2);
        }
        assert!(ahead.collect().unwrap(), "frame {i} was in flight");
        let same = |a: &Frame<f32>, b: &Frame<f32>| {
            a.data()
                .iter()
                .zip(b.data())
                .all(|(x, y)| x.to_bits() == y.to_bits())
        };
        assert!(
            same(one.denoised(), ahead.denoised()),
            "denoised, frame {i}"
        );
        assert!(same(one.output(), ahead.output()), "output, frame {i}");
    }
    assert!(!ahead.collect().unwrap(), "nothing left in flight");
}
