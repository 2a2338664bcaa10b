//! Line integrals, label maps and the detector: X-ray physics of one frame.

use crate::carm::CArm;
use crate::instrument::is_lumen;
use crate::phantom::Part;
use crate::shape::V3;
use fluoro_core::{Frame, Shutter};
use rand::SeedableRng;
use rand_distr::{Distribution, Poisson};
use rand_pcg::Pcg64;
use rayon::prelude::*;
use serde::Serialize;

/// Projected row/column bounds of a part, for culling.
#[derive(Clone, Copy)]
struct Bounds {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

fn bounds(carm: &CArm, part: &Part, shift: &V3) -> Bounds {
    let mut b = Bounds {
        x0: f64::MAX,
        x1: f64::MIN,
        y0: f64::MAX,
        y1: f64::MIN,
    };
    for c in part.solid.bounding_corners() {
        match carm.project(&(c + shift)) {
            Some([x, y]) => {
                b.x0 = b.x0.min(x);
                b.x1 = b.x1.max(x);
                b.y0 = b.y0.min(y);
                b.y1 = b.y1.max(y);
            }
            None => {
                return Bounds {
                    x0: f64::MIN,
                    x1: f64::MAX,
                    y0: f64::MIN,
                    y1: f64::MAX,
                };
            }
        }
    }
    b
}

/// The noiseless projection of one frame.
pub struct Projection {
    /// Total line integral of attenuation per pixel (dimensionless).
    pub line_integral: Frame<f32>,
    /// Contract label per pixel (0 outside the shutter).
    pub labels: Frame<u8>,
}

/// Casts one ray per pixel through `parts` (shifted by `shift`, e.g. breathing) and sums
/// exact path lengths times attenuation; labels follow the contract's path thresholds.
pub fn project(carm: &CArm, parts: &[Part], shift: V3, shutter_mask: &Frame<u8>) -> Projection {
    let (w, h) = (carm.width, carm.height);
    let bnds: Vec<Bounds> = parts.iter().map(|p| bounds(carm, p, &shift)).collect();
    let origin = carm.source - shift;
    let mut li = Frame::<f32>::new(w, h);
    let mut labels = Frame::<u8>::new(w, h);
    li.data_mut()
        .par_chunks_mut(w)
        .zip(labels.data_mut().par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, (row, lrow))| {
            let yf = y as f64;
            let active: Vec<usize> = (0..parts.len())
                .filter(|&i| bnds[i].y0 - 1.0 <= yf && yf <= bnds[i].y1 + 1.0)
                .collect();
            for x in 0..w {
                if shutter_mask.get(x, y) == 0 {
                    // the collimator blocks the beam; attenuation outside is applied by the detector
                    row[x] = 0.0;
                    lrow[x] = 0;
                    continue;
                }
                let xf = x as f64;
                let d = carm.ray(xf, yf);
                let mut total = 0.0;
                let mut label_path = [0.0f64; 5];
                for &i in &active {
                    let b = &bnds[i];
                    if xf < b.x0 - 1.0 || xf > b.x1 + 1.0 {
                        continue;
                    }
                    let p = &parts[i];
                    let len = p.solid.path_length(&origin, &d);
                    if len <= 0.0 {
                        continue;
                    }
                    let sign = if is_lumen(p) { -1.0 } else { 1.0 };
                    total += sign * len * p.material.mu();
                    if let Some((label, _)) = p.material.label() {
                        label_path[label as usize] += sign * len;
                    }
                }
                row[x] = total as f32;
                let mut lab = 0u8;
                for (label, &path) in label_path.iter().enumerate().skip(1) {
                    let threshold = if label == 3 || label == 4 { 0.5 } else { 1.0 };
                    if path >= threshold {
                        lab = label as u8;
                    }
                }
                lrow[x] = lab;
            }
        });
    Projection {
        line_integral: li,
        labels,
    }
}

/// Detector and display-chain parameters.
#[derive(Clone, Debug, Serialize)]
pub struct Detector {
    /// Photons per pixel reaching the detector through the background (soft tissue only).
    pub dose_photons: f64,
    /// Scatter-to-primary ratio of the low-frequency scatter added before noise.
    pub scatter_fraction: f64,
    /// Gaussian blur of the scintillator, sigma in pixels, applied after quantum noise.
    pub blur_sigma_px: f64,
    /// Fraction of the beam the collimator lets through outside the shutter.
    pub collimator_leakage: f64,
    /// Bits stored in the output (12-16).
    pub bits_stored: u16,
}

impl Detector {
    /// The stored-value mapping: `stored = offset + scale * ln(counts / incident)`.
    pub fn log_mapping(&self) -> (f64, f64) {
        let max = f64::from((1u32 << self.bits_stored) - 1);
        let offset = max * 0.975;
        (offset, offset / 9.5)
    }

    /// The blur kernel (odd length, normalised).
    pub fn blur_kernel(&self) -> Vec<f64> {
        if self.blur_sigma_px <= 0.0 {
            return vec![1.0];
        }
        let r = (3.0 * self.blur_sigma_px).ceil() as i64;
        let k: Vec<f64> = (-r..=r)
            .map(|i| (-(i * i) as f64 / (2.0 * self.blur_sigma_px.powi(2))).exp())
            .collect();
        let s: f64 = k.iter().sum();
        k.into_iter().map(|v| v / s).collect()
    }

    /// Expected counts (primary plus scatter, collimator applied), before noise.
    pub fn expected_counts(
        &self,
        line_integral: &Frame<f32>,
        incident: f64,
        shutter_mask: &Frame<u8>,
    ) -> Frame<f32> {
        let (w, h) = line_integral.size();
        let primary = Frame::from_vec(
            w,
            h,
            line_integral
                .data()
                .iter()
                .zip(shutter_mask.data())
                .map(|(&l, &m)| {
                    let p = incident * (-f64::from(l)).exp();
                    (if m == 0 {
                        incident * self.collimator_leakage
                    } else {
                        p
                    }) as f32
                })
                .collect(),
        )
        .expect("same size");
        if self.scatter_fraction <= 0.0 {
            return primary;
        }
        let lowpass = block_lowpass(&primary, 32);
        Frame::from_vec(
            w,
            h,
            primary
                .data()
                .iter()
                .zip(lowpass.data())
                .zip(shutter_mask.data())
                .map(|((&p, &s), &m)| {
                    if m == 0 {
                        p
                    } else {
                        p + self.scatter_fraction as f32 * s
                    }
                })
                .collect(),
        )
        .expect("same size")
    }

    /// Poisson quantum noise then scintillator blur; deterministic for `seed`.
    pub fn noisy_counts(&self, expected: &Frame<f32>, seed: u64) -> Frame<f32> {
        let (w, h) = expected.size();
        let mut noisy = Frame::<f32>::new(w, h);
        noisy
            .data_mut()
            .par_chunks_mut(w)
            .enumerate()
            .for_each(|(y, row)| {
                let mut rng =
                    Pcg64::seed_from_u64(seed ^ (y as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                for (x, v) in row.iter_mut().enumerate() {
                    let lambda = f64::from(expected.get(x, y));
                    *v = if lambda <= 0.0 {
                        0.0
                    } else {
                        Poisson::new(lambda)
                            .map(|p| p.sample(&mut rng) as f32)
                            .unwrap_or(lambda as f32)
                    };
                }
            });
        separable_blur(&noisy, &self.blur_kernel())
    }

    /// The log mapping without rounding or clamping (the noiseless reference).
    pub fn to_log_f32(&self, counts: &Frame<f32>, incident: f64) -> Vec<f32> {
        let (offset, scale) = self.log_mapping();
        counts
            .data()
            .iter()
            .map(|&c| (offset + scale * (f64::from(c).max(0.5) / incident).ln()) as f32)
            .collect()
    }

    /// Log transform to stored values (dense = low = dark, MONOCHROME2).
    pub fn to_stored(&self, counts: &Frame<f32>, incident: f64) -> Vec<u16> {
        let (offset, scale) = self.log_mapping();
        let max = f64::from((1u32 << self.bits_stored) - 1);
        counts
            .data()
            .iter()
            .map(|&c| {
                (offset + scale * (f64::from(c).max(0.5) / incident).ln())
                    .round()
                    .clamp(0.0, max) as u16
            })
            .collect()
    }
}

/// Mean over `block x block` tiles, bilinearly interpolated back to full size: the
/// low-frequency shape of scatter.
fn block_lowpass(f: &Frame<f32>, block: usize) -> Frame<f32> {
    let (w, h) = f.size();
    let (bw, bh) = (w.div_ceil(block), h.div_ceil(block));
    let mut means = Frame::<f32>::new(bw, bh);
    for by in 0..bh {
        for bx in 0..bw {
            let (mut s, mut n) = (0.0f64, 0usize);
            for y in by * block..((by + 1) * block).min(h) {
                for x in bx * block..((bx + 1) * block).min(w) {
                    s += f64::from(f.get(x, y));
                    n += 1;
                }
            }
            means.set(bx, by, (s / n.max(1) as f64) as f32);
        }
    }
    Frame::from_fn(w, h, |x, y| {
        means.sample_bilinear(
            (x as f32 + 0.5) / block as f32 - 0.5,
            (y as f32 + 0.5) / block as f32 - 0.5,
        )
    })
}

/// Separable convolution with edge clamping.
fn separable_blur(f: &Frame<f32>, k: &[f64]) -> Frame<f32> {
    if k.len() == 1 {
        return f.clone();
    }
    let (w, h) = f.size();
    let r = (k.len() / 2) as i64;
    let mut tmp = Frame::<f32>::new(w, h);
    tmp.data_mut()
        .par_chunks_mut(w)
        .enumerate()
        .for_each(|(y, row)| {
            for (x, v) in row.iter_mut().enumerate() {
                let mut s = 0.0;
                for (i, &kw) in k.iter().enumerate() {
                    let xx = (x as i64 + i as i64 - r).clamp(0, w as i64 - 1) as usize;
                    s += kw * f64::from(f.get(xx, y));
                }
                *v = s as f32;
            }
        });
    let mut out = Frame::<f32>::new(w, h);
    out.data_mut()
        .par_chunks_mut(w)
        .enumerate()
        .for_each(|(y, row)| {
            for (x, v) in row.iter_mut().enumerate() {
                let mut s = 0.0;
                for (i, &kw) in k.iter().enumerate() {
                    let yy = (y as i64 + i as i64 - r).clamp(0, h as i64 - 1) as usize;
                    s += kw * f64::from(tmp.get(x, yy));
                }
                *v = s as f32;
            }
        });
    out
}

/// A circular collimator shutter inset 2% from the smaller image side.
pub fn default_shutter(width: usize, height: usize) -> Shutter {
    let r = 0.5 * width.min(height) as f64 - 0.02 * width.min(height) as f64;
    Shutter {
        circle: Some(([(width as f64 - 1.0) / 2.0, (height as f64 - 1.0) / 2.0], r)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(dose: f64) -> Detector {
        Detector {
            dose_photons: dose,
            scatter_fraction: 0.0,
            blur_sigma_px: 0.6,
            collimator_leakage: 0.02,
            bits_stored: 14,
        }
    }

    /// Flat regions follow the noise model: mean = lambda, variance = lambda * sum(w^2)
    /// after the blur, at two doses; and the stored-value variance follows by the delta method.
    #[test]
    fn flat_field_statistics_follow_the_noise_model() {
        for dose in [200.0, 3000.0] {
            let d = det(dose);
            let (w, h) = (256, 256);
            let li = Frame::filled(w, h, 1.5f32);
            let mask = Frame::filled(w, h, 1u8);
            let incident = dose * 1.5f64.exp();
            let expected = d.expected_counts(&li, incident, &mask);
            let noisy = d.noisy_counts(&expected, 42);
            // interior only (edges are clamped by the blur)
            let vals: Vec<f64> = (8..h - 8)
                .flat_map(|y| (8..w - 8).map(move |x| (x, y)))
                .map(|(x, y)| f64::from(noisy.get(x, y)))
                .collect();
            let n = vals.len() as f64;
            let mean = vals.iter().sum::<f64>() / n;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
            let k = d.blur_kernel();
            let s2: f64 = k.iter().map(|v| v * v).sum::<f64>().powi(2);
            assert!(
                (mean - dose).abs() < 4.0 * (dose * s2 / n).sqrt() + 1e-3 * dose,
                "dose {dose}: mean {mean}"
            );
            let expect_var = dose * s2;
            assert!(
                (var / expect_var - 1.0).abs() < 0.1,
                "dose {dose}: var {var} expected {expect_var}"
            );
            // stored values: var ~ scale^2 * var_c / lambda^2
            let stored = d.to_stored(&noisy, incident);
            let sv: Vec<f64> = (8..h - 8)
                .flat_map(|y| (8..w - 8).map(move |x| y * w + x))
                .map(|i| f64::from(stored[i]))
                .collect();
            let sm = sv.iter().sum::<f64>() / n;
            let svar = sv.iter().map(|v| (v - sm).powi(2)).sum::<f64>() / (n - 1.0);
            let (offset, scale) = d.log_mapping();
            assert!(
                (sm - (offset - scale * 1.5)).abs() < 2.0 + scale * 2.0 * s2 / dose,
                "dose {dose}: stored mean {sm}"
            );
            let sexp = scale * scale * s2 / dose + 1.0 / 12.0;
            assert!(
                (svar / sexp - 1.0).abs() < 0.15,
                "dose {dose}: stored var {svar} expected {sexp}"
            );
        }
    }
}
