//! The enhancement quality table: noise, CNR, edge width and tip lag per stage and for the
//! chain, at two doses, on simulated CLO studies with ground truth.
//!
//! `cargo run --release -p fluoro-enhance --example quality [SIZE]`

use fluoro_core::{Frame, labels};
use fluoro_enhance::quality::*;
use fluoro_enhance::*;

fn configs() -> Vec<(&'static str, EnhanceParams)> {
    let none = EnhanceParams {
        temporal: None,
        spatial: None,
        clahe: None,
        detail: None,
        ..Default::default()
    };
    let full = EnhanceParams::default();
    vec![
        ("input", none.clone()),
        (
            "temporal",
            EnhanceParams {
                temporal: full.temporal,
                ..none.clone()
            },
        ),
        (
            "bilateral",
            EnhanceParams {
                spatial: full.spatial,
                ..none.clone()
            },
        ),
        (
            "clahe",
            EnhanceParams {
                clahe: full.clahe,
                ..none.clone()
            },
        ),
        (
            "detail",
            EnhanceParams {
                detail: full.detail,
                ..none.clone()
            },
        ),
        ("chain", full),
    ]
}

fn dilate(m: &Frame<u8>, r: usize) -> Frame<u8> {
    let (w, h) = m.size();
    Frame::from_fn(w, h, |x, y| {
        for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
            for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                if m.get(xx, yy) != 0 {
                    return 1;
                }
            }
        }
        0
    })
}

fn main() {
    let size: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    println!(
        "size {size}, CLO 45 deg, touch scenario with contrast, 40 frames; metrics on the last frame (tip at rest), lag over the advancing frames"
    );
    println!(
        "{:>6} {:<10} {:>9} {:>10} {:>11} {:>10} {:>9}",
        "dose", "stage", "noise_sd", "CNR_tool", "CNR_lamina", "edge_px", "lag_px"
    );
    for dose in [300.0, 1000.0] {
        let cfg = fluoro_synth::SynthConfig {
            size,
            frames: 40,
            dose,
            contrast: true,
            scenario: fluoro_synth::Scenario::Touch,
            seed: 21,
            ..Default::default()
        };
        let s = fluoro_synth::generate_with_clean(&cfg);
        let mask = s.shutter.mask(size, size);
        let to_f = |v: &[f32]| Frame::from_vec(size, size, v.to_vec()).unwrap();
        let noisy: Vec<Frame<f32>> = s
            .frames
            .iter()
            .map(|v| {
                Frame::from_vec(size, size, v.iter().map(|&x| f32::from(x)).collect()).unwrap()
            })
            .collect();
        let clean: Vec<Frame<f32>> = s.clean_frames.iter().map(|v| to_f(v)).collect();
        let n_last = cfg.frames - 1;
        let lab = &s.labels[n_last];
        let tool = lab.map(|v| u8::from(v == labels::INSTRUMENT));
        let lamina = lab.map(|v| u8::from(v == labels::LAMINA));
        let (tool_d2, tool_d8) = (dilate(&tool, 2), dilate(&tool, 8));
        let (lam_d3, lam_d1) = (dilate(&lamina, 3), dilate(&lamina, 1));
        let interior = dilate(&mask.map(|m| 1 - m), 6);
        let bg = |x: usize, y: usize| lab.get(x, y) == 0 && interior.get(x, y) == 0;
        let r = &s.records[n_last];
        let (tip, rear) = (r.tool.tip.unwrap(), r.tool.rear.unwrap());
        let len = ((tip[0] - rear[0]).powi(2) + (tip[1] - rear[1]).powi(2)).sqrt();
        let dir = [(tip[0] - rear[0]) / len, (tip[1] - rear[1]) / len];
        let across = [-dir[1], dir[0]];
        let shaft = [tip[0] - dir[0] * len * 0.3, tip[1] - dir[1] * len * 0.3];
        // frames where the tip advances
        let moving: Vec<usize> = (1..cfg.frames)
            .filter(|&n| match (s.path.depth_mm[n - 1], s.path.depth_mm[n]) {
                (Some(a), Some(b)) => (a - b) > 0.2 && s.records[n].tool.detected,
                _ => false,
            })
            .collect();
        for (name, params) in configs() {
            let mut en = Enhancer::new(params.clone());
            let mut ec = Enhancer::new(params.clone());
            let mut lag_max: f64 = 0.0;
            let mut lag_frames = 0;
            let mut out_n = Frame::new(0, 0);
            let mut out_c = Frame::new(0, 0);
            for n in 0..cfg.frames {
                out_n.clone_from(en.process(&noisy[n], &mask));
                out_c.clone_from(ec.process(&clean[n], &mask));
                if params.temporal.is_some() && moving.contains(&n) {
                    let rr = &s.records[n];
                    let (t, b) = (rr.tool.tip.unwrap(), rr.tool.rear.unwrap());
                    let l = ((t[0] - b[0]).powi(2) + (t[1] - b[1]).powi(2)).sqrt();
                    let d = [(t[0] - b[0]) / l, (t[1] - b[1]) / l];
                    let reference = dark_end_position(&profile(&clean[n], t, d, -12.0, 12.0, 0.1));
                    let filtered = dark_end_position(&profile(&out_c, t, d, -12.0, 12.0, 0.1));
                    if let (Some(a), Some(b)) = (reference, filtered) {
                        lag_max = lag_max.max(a - b);
                        lag_frames += 1;
                    }
                }
            }
            let noise = std_of_difference(&out_n, &out_c, bg);
            let cnr = |inside: &dyn Fn(usize, usize) -> bool,
                       ring: &dyn Fn(usize, usize) -> bool| {
                (mean_where(&out_c, ring) - mean_where(&out_c, inside)).abs() / noise
            };
            let cnr_tool = cnr(&|x, y| tool.get(x, y) != 0, &|x, y| {
                tool_d8.get(x, y) != 0 && tool_d2.get(x, y) == 0 && lab.get(x, y) == 0
            });
            let cnr_lam = cnr(&|x, y| lamina.get(x, y) != 0, &|x, y| {
                lam_d3.get(x, y) != 0 && lam_d1.get(x, y) == 0 && lab.get(x, y) == 0
            });
            let edge = dark_line_edge_width(&profile(&out_c, shaft, across, -15.0, 15.0, 0.1));
            let lag = if params.temporal.is_some() {
                format!("{lag_max:9.2} (max over {lag_frames} advancing frames)")
            } else {
                format!("{:>9}", "-")
            };
            println!(
                "{dose:>6} {name:<10} {noise:>9.2} {cnr_tool:>10.1} {cnr_lam:>11.2} {:>10} {lag}",
                edge.map(|e| format!("{e:.2}"))
                    .unwrap_or_else(|| "-".into())
            );
        }
    }
}
