//! Intensity normalisation: to a log-intensity domain, with the shutter masked out.

use fluoro_core::Frame;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How stored (modality) values relate to X-ray intensity (Pixel Intensity Relationship).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Intensity {
    /// Already proportional to log intensity (LOG), or display-processed (DISP): kept.
    #[default]
    Log,
    /// Proportional to intensity (LIN): log-transformed, `1000 ln(max(v, 1))`.
    Linear,
}

/// Scale of the log transform of linear data.
pub const LOG_SCALE: f32 = 1000.0;

/// Normalises `src` into `dst`: log transform where the data is linear, and every pixel
/// outside `mask` replaced by the mean inside it, so no later filter sees the collimator.
/// Returns that mean.
pub fn normalize(
    src: &Frame<f32>,
    mask: &Frame<u8>,
    intensity: Intensity,
    dst: &mut Frame<f32>,
) -> f32 {
    let (w, h) = src.size();
    dst.reshape(w, h);
    dst.data_mut()
        .par_chunks_mut(w)
        .enumerate()
        .for_each(|(y, o)| {
            let s = src.row(y);
            match intensity {
                Intensity::Log => o.copy_from_slice(s),
                Intensity::Linear => o
                    .iter_mut()
                    .zip(s)
                    .for_each(|(o, &v)| *o = LOG_SCALE * v.max(1.0).ln()),
            }
        });
    let (sum, n) = dst
        .data()
        .par_chunks(w)
        .zip(mask.data().par_chunks(w))
        .map(|(r, m)| {
            r.iter()
                .zip(m)
                .filter(|(_, m)| **m != 0)
                .fold((0.0f64, 0usize), |(s, n), (v, _)| {
                    (s + f64::from(*v), n + 1)
                })
        })
        .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let mean = if n == 0 { 0.0 } else { (sum / n as f64) as f32 };
    if n < w * h {
        dst.data_mut()
            .par_chunks_mut(w)
            .zip(mask.data().par_chunks(w))
            .for_each(|(r, m)| {
                r.iter_mut()
                    .zip(m)
                    .filter(|(_, m)| **m == 0)
                    .for_each(|(v, _)| *v = mean);
            });
    }
    mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_pixels_take_the_inside_mean() {
        let src = Frame::from_vec(4, 1, vec![10.0, 20.0, 30.0, 9999.0]).unwrap();
        let mask = Frame::from_vec(4, 1, vec![1, 1, 1, 0]).unwrap();
        let mut dst = Frame::new(0, 0);
        assert_eq!(normalize(&src, &mask, Intensity::Log, &mut dst), 20.0);
        assert_eq!(dst.data(), &[10.0, 20.0, 30.0, 20.0]);
        normalize(&src, &mask, Intensity::Linear, &mut dst);
        assert!((dst.get(0, 0) - 1000.0 * 10f32.ln()).abs() < 1e-3);
    }
}
