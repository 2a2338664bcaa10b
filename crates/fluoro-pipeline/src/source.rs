//! Frames from a DICOM study as processing input: stored values through the modality LUT,
//! MONOCHROME1 inverted, so that dense structures are always low values.

use fluoro_analysis::morphology::{dilate, erode};
use fluoro_core::Frame;
use fluoro_dicom::{ModalityLut, Study};
use fluoro_enhance::normalize::{Intensity, LOG_SCALE};

/// How a study's frames are turned into processing input.
#[derive(Debug)]
pub struct StudyInput {
    lut: ModalityLut,
    invert: Option<f32>,
    /// Intensity model for normalisation (LIN data is log-transformed).
    pub intensity: Intensity,
    /// Value range of the normalised data (for CLAHE).
    pub range: (f32, f32),
}

impl StudyInput {
    /// Derives the input mapping from the study's attributes.
    pub fn new(study: &Study) -> Self {
        let info = study.info();
        let f = &info.pixel_format;
        let lut = study.modality_lut(0);
        let bits = u32::from(f.bits_stored.min(31));
        let (smin, smax) = if f.signed {
            (
                -(2f64.powi(bits as i32 - 1)),
                2f64.powi(bits as i32 - 1) - 1.0,
            )
        } else {
            (0.0, 2f64.powi(bits as i32) - 1.0)
        };
        let (a, b) = (lut.apply(smin), lut.apply(smax));
        let (lo, hi) = (a.min(b) as f32, a.max(b) as f32);
        let invert = f.is_monochrome1().then_some(lo + hi);
        let intensity = match info.pixel_intensity_relationship.as_deref() {
            Some("LIN") => Intensity::Linear,
            _ => Intensity::Log,
        };
        let range = match intensity {
            Intensity::Linear => (0.0, LOG_SCALE * hi.max(2.0).ln()),
            Intensity::Log => (lo, hi),
        };
        Self {
            lut,
            invert,
            intensity,
            range,
        }
    }

    /// Reads frame `i` into `out`.
    pub fn read(&self, study: &Study, i: usize, out: &mut Frame<f32>) -> fluoro_dicom::Result<()> {
        study.frame_f32(i, out)?;
        if !matches!(self.lut, ModalityLut::Identity) || self.invert.is_some() {
            let inv = self.invert;
            for v in out.data_mut() {
                let m = self.lut.apply(f64::from(*v)) as f32;
                *v = match inv {
                    Some(s) => s - m,
                    None => m,
                };
            }
        }
        Ok(())
    }
}

/// Estimates the collimator (shutter) mask of a frame that came without shutter attributes
/// (e.g. from a raw stream): pixels far darker than the field (below 15% of the way from the
/// darkest values to the median) that connect to the image border are outside; the rest is
/// the visible field (1). Returns all-visible when nothing qualifies.
pub fn estimate_shutter_mask(f: &Frame<f32>) -> Frame<u8> {
    let (w, h) = f.size();
    let mut mask = Frame::filled(w, h, 1u8);
    if w < 3 || h < 3 {
        return mask;
    }
    let mut v: Vec<f32> = f
        .data()
        .iter()
        .step_by(((w * h) / 50_000).max(1))
        .copied()
        .collect();
    let n = v.len();
    let lo = *v.select_nth_unstable_by(n / 200, f32::total_cmp).1;
    let med = *v.select_nth_unstable_by(n / 2, f32::total_cmp).1;
    if med - lo <= 0.0 {
        return mask;
    }
    let thr = lo + 0.15 * (med - lo);
    // dark pixels, opened (eroded then, after the flood fill, dilated) so that thin dark
    // structures touching the border, like an instrument entering the field, are not taken
    // for the collimator
    let r = (w.min(h) / 50).max(1);
    let dark =
        Frame::from_vec(w, h, f.data().iter().map(|&v| u8::from(v < thr)).collect()).expect("size");
    let eroded = erode(&dark, r);
    let mut outside = Frame::filled(w, h, 0u8);
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for x in 0..w {
        stack.push((x, 0));
        stack.push((x, h - 1));
    }
    for y in 0..h {
        stack.push((0, y));
        stack.push((w - 1, y));
    }
    while let Some((x, y)) = stack.pop() {
        if outside.get(x, y) == 1 || eroded.get(x, y) == 0 {
            continue;
        }
        outside.set(x, y, 1);
        if x > 0 {
            stack.push((x - 1, y));
        }
        if x + 1 < w {
            stack.push((x + 1, y));
        }
        if y > 0 {
            stack.push((x, y - 1));
        }
        if y + 1 < h {
            stack.push((x, y + 1));
        }
    }
    let outside = dilate(&outside, r);
    for (m, (&o, &d)) in mask
        .data_mut()
        .iter_mut()
        .zip(outside.data().iter().zip(dark.data()))
    {
        *m = u8::from(!(o == 1 && d == 1));
    }
    // a shutter never covers most of the image: if it would, the frame is just dark
    let n_out = mask.data().iter().filter(|&&m| m == 0).count();
    if n_out * 10 > w * h * 7 {
        return Frame::filled(w, h, 1);
    }
    if n_out == 0 {
        return mask;
    }
    // keep a margin inside the collimator edge, whose blurred transition is neither field
    // nor collimator (shutter attributes are inset the same way)
    erode(&mask, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thin_dark_rod_from_the_edge_is_not_collimator() {
        let f = Frame::from_fn(200, 200, |x, y| {
            let d = ((x as f32 - 100.0).powi(2) + (y as f32 - 100.0).powi(2)).sqrt();
            if d > 90.0 || ((y as i32 - 100).abs() <= 2 && x < 120) {
                20.0
            } else {
                2000.0 + (x % 7) as f32 * 30.0
            }
        });
        let m = estimate_shutter_mask(&f);
        assert_eq!(m.get(0, 0), 0);
        assert_eq!(
            m.get(60, 100),
            1,
            "the rod inside the field must stay visible"
        );
    }

    #[test]
    fn finds_a_circular_collimator() {
        let f = Frame::from_fn(100, 100, |x, y| {
            let d = ((x as f32 - 50.0).powi(2) + (y as f32 - 50.0).powi(2)).sqrt();
            if d > 45.0 {
                20.0
            } else {
                2000.0 + (x % 7) as f32 * 30.0
            }
        });
        let m = estimate_shutter_mask(&f);
        assert_eq!(m.get(0, 0), 0);
        assert_eq!(m.get(50, 50), 1);
        assert_eq!(m.get(50, 9), 1); // inside the circle near the top, past the margin
        let inside = m.data().iter().filter(|&&v| v == 1).count();
        // the field minus a 2 px margin
        assert!(
            (inside as f32 - std::f32::consts::PI * 43.0 * 43.0).abs() < 400.0,
            "{inside}"
        );
    }
}
