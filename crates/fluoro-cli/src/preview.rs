//! Side-by-side PNG of a synthetic frame and its ground truth (for docs and eyeballing).

use anyhow::{Context, Result};
use fluoro_synth::SynthStudy;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_circle_mut, draw_line_segment_mut};
use std::path::Path;

const TINTS: [[u8; 3]; 5] = [
    [0, 0, 0],
    [80, 140, 255],
    [255, 200, 0],
    [0, 230, 120],
    [255, 60, 60],
];

/// Writes the last frame (windowed as the file says) beside the same frame with the label
/// map tinted, the VILL and the tip drawn.
pub fn write_truth_preview(study: &SynthStudy, path: &Path) -> Result<()> {
    let n = study.frames.len() - 1;
    let (w, h) = (study.config.size as u32, study.config.size as u32);
    let (offset, scale) = study.detector.log_mapping();
    let (lo, hi) = (offset - scale * 7.0, offset - scale * 2.0);
    let gray = |v: u16| (((f64::from(v) - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0) as u8;
    let mut img = RgbImage::new(2 * w, h);
    let labels = &study.labels[n];
    for y in 0..h {
        for x in 0..w {
            let g = gray(study.frames[n][(y * w + x) as usize]);
            img.put_pixel(x, y, Rgb([g, g, g]));
            let l = labels.get(x as usize, y as usize) as usize;
            let t = TINTS[l];
            let a = if l == 0 { 0.0 } else { 0.45 };
            let mix = |c: u8| (f64::from(g) * (1.0 - a) + f64::from(c) * a) as u8;
            img.put_pixel(w + x, y, Rgb([mix(t[0]), mix(t[1]), mix(t[2])]));
        }
    }
    let r = &study.records[n];
    if let Some(v) = r.vill {
        // extend the VILL across the image for visibility
        let (dx, dy) = (v.p1[0] - v.p0[0], v.p1[1] - v.p0[1]);
        let k = f64::from(w) / (dx * dx + dy * dy).sqrt().max(1e-6);
        let a = (
            w as f32 + (v.p0[0] - dx * k) as f32,
            (v.p0[1] - dy * k) as f32,
        );
        let b = (
            w as f32 + (v.p0[0] + dx * k) as f32,
            (v.p0[1] + dy * k) as f32,
        );
        draw_line_segment_mut(&mut img, a, b, Rgb([255, 0, 255]));
    }
    if let (Some(tip), Some(rear)) = (r.tool.tip, r.tool.rear) {
        draw_line_segment_mut(
            &mut img,
            (w as f32 + rear[0] as f32, rear[1] as f32),
            (w as f32 + tip[0] as f32, tip[1] as f32),
            Rgb([255, 255, 0]),
        );
        draw_filled_circle_mut(
            &mut img,
            (w as i32 + tip[0].round() as i32, tip[1].round() as i32),
            3,
            Rgb([255, 0, 0]),
        );
    }
    img.save(path)
        .with_context(|| format!("{}: cannot write PNG", path.display()))
}
