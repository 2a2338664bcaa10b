//! Median milliseconds per enhancement stage on a simulated frame, as JSON, for
//! `benches/opencv_compare.py` (which times OpenCV on the same frame in the same run).
//!
//! `cargo run --release -p fluoro-enhance --example stage_times -- SIZE ITERS [DUMP.npy]`
//! (DUMP.npy: the frame as u16; its shutter mask goes beside it as `DUMP_mask.npy`)

use fluoro_core::Frame;
use fluoro_enhance::*;
use std::io::Write;
use std::time::Instant;

fn median_ms(iters: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..iters)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let iters: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50);
    let cfg = fluoro_synth::SynthConfig {
        size,
        frames: 14,
        ..Default::default()
    };
    let s = fluoro_synth::generate(&cfg);
    if let Some(path) = args.get(3) {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create dump"));
        fluoro_dicom::npy::write_header(&mut f, "<u2", &[size, size]).expect("write header");
        for x in &s.frames[13] {
            f.write_all(&x.to_le_bytes()).expect("write");
        }
        f.flush().expect("flush");
        // the shutter mask beside it (`*_mask.npy`), for OpenCV's normalisation counterpart
        let mask = s.shutter.mask(size, size);
        let mask_path = path.replace(".npy", "_mask.npy");
        let mut f = std::io::BufWriter::new(std::fs::File::create(mask_path).expect("create mask"));
        fluoro_dicom::npy::write_header(&mut f, "|u1", &[size, size]).expect("write header");
        f.write_all(mask.data()).expect("write");
        f.flush().expect("flush");
    }
    let to_f32 = |v: &Vec<u16>| {
        Frame::from_vec(size, size, v.iter().map(|&x| f32::from(x)).collect()).unwrap()
    };
    let (f0, f1) = (to_f32(&s.frames[12]), to_f32(&s.frames[13]));
    let mask = s.shutter.mask(size, size);
    let mut out = Frame::new(0, 0);
    let mut tmp = Frame::new(0, 0);
    let mut rf = temporal::RecursiveFilter::default();
    let tp = temporal::TemporalParams::default();
    rf.apply(&f0, &mask, 20.0, &tp, &mut out);
    let mut bs = bilateral::BilateralScratch::default();
    let mut cs = clahe::ClaheScratch::default();
    let mut ds = detail::DetailScratch::default();
    let k = gaussian::kernel(2.0);
    let mut e = Enhancer::new(EnhanceParams::default());
    let mut flip = false;
    let stages = [
        (
            "normalize",
            median_ms(iters, || {
                // linear data: the log transform and the shutter fill
                normalize::normalize(&f1, &mask, normalize::Intensity::Linear, &mut out);
            }),
        ),
        (
            "temporal",
            median_ms(iters, || {
                rf.filter(&f1, &mask, 20.0, &tp);
            }),
        ),
        (
            "bilateral_d5",
            median_ms(iters, || {
                bilateral::bilateral(
                    &f1,
                    &bilateral::BilateralParams::default(),
                    &mut bs,
                    &mut out,
                )
            }),
        ),
        (
            // the chain's form: each row only across the field, the outside kept
            "bilateral_in_field",
            median_ms(iters, || {
                bilateral::bilateral_in_field(
                    &f1,
                    &mask,
                    &bilateral::BilateralParams::default(),
                    &mut bs,
                    &mut out,
                )
            }),
        ),
        (
            "gaussian_s2",
            median_ms(iters, || gaussian::blur(&f1, &k, &mut tmp, &mut out)),
        ),
        (
            "clahe_8x8",
            median_ms(iters, || {
                clahe::clahe(
                    &f1,
                    &mask,
                    (0.0, 4095.0),
                    &clahe::ClaheParams::default(),
                    &mut cs,
                    &mut out,
                )
            }),
        ),
        (
            "detail",
            median_ms(iters, || {
                detail::enhance_detail(&f1, &detail::DetailParams::default(), &mut ds, &mut out)
            }),
        ),
        (
            "chain",
            median_ms(iters, || {
                flip = !flip;
                e.process(if flip { &f1 } else { &f0 }, &mask);
            }),
        ),
    ];
    let body: Vec<String> = stages
        .iter()
        .map(|(n, v)| format!("\"{n}\": {v:.4}"))
        .collect();
    println!(
        "{{\"size\": {size}, \"threads\": {}, \"simd\": \"{}\", \"stages_ms\": {{{}}}}}",
        rayon::current_num_threads(),
        simd_level(),
        body.join(", ")
    );
}
