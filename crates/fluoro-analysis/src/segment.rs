//! Label map (contract values) from the detections: a first, classical segmentation.
//!
//! - instrument: the detected shaft, rear to tip, at its measured width;
//! - contrast: thin, very dark elongated structures ventral to the VILL that are not the
//!   instrument (an epidurogram seen edge-on);
//! - lamina: regions darker than a wide (6 mm) background, not thin lines, on the dorsal
//!   side of the VILL (falling back to the instrument-scale response without a VILL search);
//! - ligamentum flavum: the interlaminar window between the VILL points, from the VILL to
//!   a typical ligament depth dorsally.
//!
//! This is a baseline to be measured by `fluoro eval`, not the final method.

use crate::instrument::Detection;
use fluoro_core::{Frame, labels};
use rayon::prelude::*;

/// Inputs the segmentation needs besides the frame.
pub struct SegmentInput<'a> {
    /// Dark-line response (instrument scale) of the frame.
    pub response: &'a Frame<f32>,
    /// Frame dynamic range inside the field.
    pub range: f32,
    /// Visible field.
    pub mask: &'a Frame<u8>,
    /// The instrument, if detected.
    pub tool: Option<&'a Detection>,
    /// The VILL, if found.
    pub vill: Option<[[f64; 2]; 2]>,
    /// Unit vector towards ventral in the image.
    pub ventral: Option<[f64; 2]>,
    /// Millimetres per pixel (0.3 assumed when unknown).
    pub mm_per_px: f64,
    /// Lamina darkness: (wide background, smoothed frame, threshold) from the VILL detector.
    pub darkness: Option<(&'a Frame<f32>, &'a Frame<f32>, f32)>,
}

fn seg_dist(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> (f64, f64) {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let l2 = (dx * dx + dy * dy).max(1e-9);
    let t = ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2;
    let tc = t.clamp(0.0, 1.0);
    let (qx, qy) = (a[0] + dx * tc, a[1] + dy * tc);
    (((p[0] - qx).powi(2) + (p[1] - qy).powi(2)).sqrt(), t)
}

/// Writes the label map into `out`.
pub fn segment(input: &SegmentInput, out: &mut Frame<u8>) {
    let (w, h) = input.mask.size();
    out.reshape(w, h);
    let mm = input.mm_per_px;
    let contrast_thr = 0.25 * input.range;
    let lamina_lo = 0.06 * input.range;
    let lf_depth_px = 6.0 / mm;
    out.data_mut()
        .par_chunks_mut(w)
        .enumerate()
        .for_each(|(y, row)| {
            for (x, o) in row.iter_mut().enumerate() {
                *o = labels::BACKGROUND;
                if input.mask.get(x, y) == 0 {
                    continue;
                }
                let p = [x as f64, y as f64];
                let r = input.response.get(x, y);
                let mut lab = labels::BACKGROUND;
                // signed ventral distance from the VILL (positive = ventral)
                let vd = match (input.vill, input.ventral) {
                    (Some([a, b]), Some(v)) => {
                        let n = [-(b[1] - a[1]), b[0] - a[0]];
                        let l = (n[0] * n[0] + n[1] * n[1]).sqrt().max(1e-9);
                        let n = if n[0] * v[0] + n[1] * v[1] < 0.0 {
                            [-n[0] / l, -n[1] / l]
                        } else {
                            [n[0] / l, n[1] / l]
                        };
                        Some((p[0] - a[0]) * n[0] + (p[1] - a[1]) * n[1])
                    }
                    _ => None,
                };
                if let Some(d) = vd {
                    let lamina = match input.darkness {
                        Some((bg, sm, t)) => {
                            bg.get(x, y) - sm.get(x, y) > 0.3 * t && r < contrast_thr
                        }
                        None => r > lamina_lo,
                    };
                    if d < 0.0 && d > -100.0 / mm && lamina {
                        lab = labels::LAMINA;
                    }
                    if let Some([a, b]) = input.vill {
                        let (_, t) = seg_dist(p, a, b);
                        if (0.0..=1.0).contains(&t) && d <= 1.0 && d >= -lf_depth_px {
                            lab = labels::LIGAMENTUM_FLAVUM;
                        }
                    }
                    if d > 0.0 && d < 12.0 / mm && r > contrast_thr {
                        lab = labels::CONTRAST;
                    }
                }
                if let Some(t) = input.tool {
                    let (dist, u) = seg_dist(p, t.rear, t.tip);
                    if dist <= t.half_width + 0.5 && (0.0..=1.0).contains(&u) {
                        lab = labels::INSTRUMENT;
                    }
                }
                *o = lab;
            }
        });
}
