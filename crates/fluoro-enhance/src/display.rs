//! Display mapping to 8 bits with window/level.

use fluoro_core::Frame;
use rayon::prelude::*;

/// A window: values `center - width/2 .. center + width/2` map to 0..255.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// Centre.
    pub center: f32,
    /// Width (> 0).
    pub width: f32,
}

impl Window {
    /// The window spanning the `lo_pct`..`hi_pct` percentiles of the pixels inside `mask`.
    pub fn from_percentiles(
        f: &Frame<f32>,
        mask: &Frame<u8>,
        lo_pct: f32,
        hi_pct: f32,
        scratch: &mut Vec<f32>,
    ) -> Self {
        scratch.clear();
        // ~40k samples are plenty for the 0.5th and 99.5th percentiles (200 in each tail)
        // and keep this O(1) in the frame size
        let step = (f.data().len() / 40_000).max(1);
        scratch.extend(
            f.data()
                .iter()
                .zip(mask.data())
                .step_by(step)
                .filter(|(_, m)| **m != 0)
                .map(|(v, _)| *v),
        );
        if scratch.is_empty() {
            return Self {
                center: 0.5,
                width: 1.0,
            };
        }
        let n = scratch.len();
        let at = |q: f32| ((q / 100.0) * (n - 1) as f32).round() as usize;
        let (ilo, ihi) = (at(lo_pct), at(hi_pct));
        let lo = *scratch.select_nth_unstable_by(ilo, f32::total_cmp).1;
        let hi = *scratch.select_nth_unstable_by(ihi, f32::total_cmp).1;
        Self {
            center: (lo + hi) / 2.0,
            width: (hi - lo).max(1e-3),
        }
    }
}

/// Maps `src` to 8 bits through `window`; pixels outside `mask` become 0.
pub fn to_u8(src: &Frame<f32>, mask: &Frame<u8>, window: Window, dst: &mut Frame<u8>) {
    let (w, h) = src.size();
    dst.reshape(w, h);
    let lo = window.center - window.width / 2.0;
    let k = 255.0 / window.width;
    dst.data_mut()
        .par_chunks_mut(w)
        .enumerate()
        .for_each(|(y, o)| {
            // branch-free so that the loop vectorises: the mask selects by bitwise and
            for ((o, &v), &m) in o.iter_mut().zip(src.row(y)).zip(mask.row(y)) {
                let g = ((v - lo) * k + 0.5).clamp(0.0, 255.0) as u8;
                *o = g & 0u8.wrapping_sub(u8::from(m != 0));
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_maps_ends_and_middle() {
        let f = Frame::from_vec(4, 1, vec![0.0, 100.0, 200.0, 50.0]).unwrap();
        let m = Frame::from_vec(4, 1, vec![1, 1, 1, 0]).unwrap();
        let mut d = Frame::new(0, 0);
        to_u8(
            &f,
            &m,
            Window {
                center: 100.0,
                width: 200.0,
            },
            &mut d,
        );
        assert_eq!(d.data(), &[0, 128, 255, 0]);
        let w = Window::from_percentiles(&f, &m, 0.0, 100.0, &mut Vec::new());
        assert_eq!((w.center, w.width), (100.0, 200.0));
    }
}
