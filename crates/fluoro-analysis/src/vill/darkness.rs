//! The lamina darkness the VILL search reads: the wide background minus the smoothed
//! frame, made in a search disc's rectangle only, or for the whole frame on request.

use super::VillDetector;
use fluoro_core::Frame;
use fluoro_enhance::gaussian::blur;

impl VillDetector {
    /// The smoothing of the lamina search, px.
    pub(super) fn smooth_sigma(&self, mm: f64) -> f32 {
        (0.5 / mm).max(0.8) as f32
    }

    /// The lamina darkness (wide background minus the smoothed frame) in the rectangle at
    /// `(x0, y0)`, into `roi_dark`: the frame is smoothed over the rectangle plus the
    /// kernel's margin only, so the values equal a whole-frame smoothing's there.
    pub(super) fn darkness_in(
        &mut self,
        f: &Frame<f32>,
        x0: usize,
        y0: usize,
        rw: usize,
        rh: usize,
    ) {
        let (w, h) = f.size();
        let m = self.kern.len() / 2;
        let (cx0, cy0) = (x0.saturating_sub(m), y0.saturating_sub(m));
        let (cx1, cy1) = ((x0 + rw + m).min(w), (y0 + rh + m).min(h));
        self.crop.reshape(cx1 - cx0, cy1 - cy0);
        for y in cy0..cy1 {
            self.crop
                .row_mut(y - cy0)
                .copy_from_slice(&f.row(y)[cx0..cx1]);
        }
        blur(&self.crop, &self.kern, &mut self.tmp, &mut self.crop_smooth);
        self.large.sample_rect(x0, y0, rw, rh, &mut self.roi_bg);
        self.roi_dark.reshape(rw, rh);
        for yy in 0..rh {
            let sm = &self.crop_smooth.row(y0 + yy - cy0)[x0 - cx0..x0 - cx0 + rw];
            let bg = self.roi_bg.row(yy);
            for ((d, &b), &s) in self.roi_dark.row_mut(yy).iter_mut().zip(bg).zip(sm) {
                *d = b - s;
            }
        }
    }

    /// The whole frame's lamina-darkness maps (wide background, smoothed frame) once a
    /// search has run, for the rule-based labels (no anatomy model): a lamina pixel is
    /// darker than its background by a fraction of the range. Computed on request: the
    /// search itself needs them only in its discs.
    pub fn darkness_maps(
        &mut self,
        f: &Frame<f32>,
        mm_per_px: Option<f64>,
    ) -> Option<(&Frame<f32>, &Frame<f32>)> {
        if !self.searched {
            return None;
        }
        let mm = mm_per_px.unwrap_or(0.3);
        blur(f, &self.kern, &mut self.tmp, &mut self.smooth);
        fluoro_enhance::gaussian::blur_large(f, (6.0 / mm) as f32, &mut self.large, &mut self.bg);
        Some((&self.bg, &self.smooth))
    }
}
