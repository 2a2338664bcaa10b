//! The C-arm: point source, flat detector, positioner angles; pinhole projection.
//!
//! Patient frame (mm): +x patient left, +y cranial, +z dorsal (posterior); the isocentre is
//! the origin. The patient lies prone. At primary and secondary angle 0 the beam runs from
//! the under-table source upwards, +z (posterior-anterior view, "AP" in the procedure's
//! language). The primary angle rotates the beam about the patient's long axis (+ towards
//! the patient's left = LAO), the secondary angle tilts it cranially (+) or caudally.
//! Image rows grow towards the patient's feet; columns grow towards the patient's right
//! in the 0-degree view.

use crate::shape::{V3, rot_x, rot_y};
use serde::Serialize;

/// Geometry of one C-arm view.
#[derive(Clone, Debug, Serialize)]
pub struct CArm {
    /// Positioner Primary Angle, degrees.
    pub primary_deg: f64,
    /// Positioner Secondary Angle, degrees.
    pub secondary_deg: f64,
    /// Source to detector distance (SID), mm.
    pub sid_mm: f64,
    /// Source to isocentre distance (SOD), mm.
    pub sod_mm: f64,
    /// Detector pixel pitch, mm.
    pub pixel_mm: f64,
    /// Detector columns.
    pub width: usize,
    /// Detector rows.
    pub height: usize,
    /// Source position, mm.
    pub source: V3,
    /// Unit beam direction (source -> detector centre).
    pub beam: V3,
    /// Unit vector along image columns (increasing x).
    pub col_dir: V3,
    /// Unit vector along image rows (increasing y).
    pub row_dir: V3,
}

impl CArm {
    /// A view with the given angles and detector.
    pub fn new(
        primary_deg: f64,
        secondary_deg: f64,
        sid_mm: f64,
        sod_mm: f64,
        pixel_mm: f64,
        width: usize,
        height: usize,
    ) -> Self {
        // rotate the 0-degree beam (+z) about y (primary, sign so + goes to patient left)
        // and then about x (secondary, + cranial)
        let r = rot_x(-secondary_deg) * rot_y(primary_deg);
        let beam = r * V3::z();
        let row_dir = r * (-V3::y());
        let col_dir = row_dir.cross(&beam).normalize();
        let source = -beam * sod_mm;
        Self {
            primary_deg,
            secondary_deg,
            sid_mm,
            sod_mm,
            pixel_mm,
            width,
            height,
            source,
            beam,
            col_dir,
            row_dir,
        }
    }

    /// Isocentre-plane millimetres per pixel: `pixel * SOD / SID`.
    pub fn mm_per_px(&self) -> f64 {
        self.pixel_mm * self.sod_mm / self.sid_mm
    }

    /// The detector point at the centre of pixel `(x, y)`.
    pub fn pixel_point(&self, x: f64, y: f64) -> V3 {
        let centre = self.source + self.beam * self.sid_mm;
        centre
            + self.col_dir * ((x - (self.width as f64 - 1.0) / 2.0) * self.pixel_mm)
            + self.row_dir * ((y - (self.height as f64 - 1.0) / 2.0) * self.pixel_mm)
    }

    /// Unit ray direction from the source through pixel `(x, y)`.
    pub fn ray(&self, x: f64, y: f64) -> V3 {
        (self.pixel_point(x, y) - self.source).normalize()
    }

    /// Projects a 3D point to pixel coordinates `[x, y]` (pinhole model); `None` behind the source.
    pub fn project(&self, p: &V3) -> Option<[f64; 2]> {
        let rel = p - self.source;
        let depth = rel.dot(&self.beam);
        if depth <= 1e-9 {
            return None;
        }
        let on_det = rel * (self.sid_mm / depth) - self.beam * self.sid_mm;
        Some([
            on_det.dot(&self.col_dir) / self.pixel_mm + (self.width as f64 - 1.0) / 2.0,
            on_det.dot(&self.row_dir) / self.pixel_mm + (self.height as f64 - 1.0) / 2.0,
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isocentre_projects_to_the_image_centre() {
        let c = CArm::new(45.0, 10.0, 1020.0, 650.0, 0.3, 512, 400);
        let p = c.project(&V3::zeros()).unwrap();
        assert!((p[0] - 255.5).abs() < 1e-9 && (p[1] - 199.5).abs() < 1e-9);
    }

    #[test]
    fn pinhole_magnification() {
        // a point 10 mm from the isocentre across the beam lands 10 * SID/SOD mm away on the detector
        let c = CArm::new(0.0, 0.0, 1000.0, 500.0, 0.2, 1000, 1000);
        let p = c.project(&V3::new(0.0, 10.0, 0.0)).unwrap();
        assert!((p[1] - (499.5 - 10.0 * 2.0 / 0.2)).abs() < 1e-9, "{p:?}");
        assert!((c.mm_per_px() - 0.1).abs() < 1e-12);
        // and a point nearer the source is magnified more
        let q = c.project(&V3::new(0.0, 10.0, -250.0)).unwrap();
        assert!(
            (q[1] - (499.5 - 10.0 * 1000.0 / 250.0 / 0.2)).abs() < 1e-9,
            "{q:?}"
        );
    }

    #[test]
    fn rays_pass_through_their_pixels() {
        let c = CArm::new(-40.0, 5.0, 1020.0, 650.0, 0.25, 300, 300);
        let d = c.ray(12.0, 250.0);
        let p = c.source + d * 700.0;
        let back = c.project(&p).unwrap();
        assert!((back[0] - 12.0).abs() < 1e-6 && (back[1] - 250.0).abs() < 1e-6);
    }
}
