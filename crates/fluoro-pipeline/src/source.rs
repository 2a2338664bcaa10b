//! Frames from a DICOM study as processing input: stored values through the modality LUT,
//! MONOCHROME1 inverted, so that dense structures are always low values.

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
        let frame = study.frame(i)?;
        frame.write_f32(out);
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
