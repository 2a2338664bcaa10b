//! C-arm geometry and the millimetre scale of the isocentre plane.

use serde::{Deserialize, Serialize};

/// Where `mm_per_px` came from, in the order of preference fixed by the output contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MmSource {
    /// `ImagerPixelSpacing * DistanceSourceToPatient / DistanceSourceToDetector`.
    ImagerSpacingAndDistances,
    /// `PixelSpacing` (0028,0030), calibrated to the patient plane.
    PixelSpacing,
    /// `ImagerPixelSpacing` (0018,1164) alone, at the detector: overestimates sizes.
    ImagerPixelSpacing,
    /// None of the above: every `_mm` output is `null`.
    Unknown,
}

impl MmSource {
    /// A short human-readable description.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ImagerSpacingAndDistances => "ImagerPixelSpacing x SOD / SID (isocentre plane)",
            Self::PixelSpacing => "PixelSpacing",
            Self::ImagerPixelSpacing => {
                "ImagerPixelSpacing (detector plane, not corrected for magnification)"
            }
            Self::Unknown => "unknown",
        }
    }
}

/// The acquisition geometry as recorded in the study; every field is optional because
/// real files omit any of them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    /// Positioner Primary Angle (0018,1510), degrees; +90 = LAO, -90 = RAO.
    pub primary_angle_deg: Option<f64>,
    /// Positioner Secondary Angle (0018,1511), degrees; + = cranial.
    pub secondary_angle_deg: Option<f64>,
    /// Distance Source to Detector (0018,1110), mm.
    pub source_to_detector_mm: Option<f64>,
    /// Distance Source to Patient (0018,1111), mm (isocentre for XA).
    pub source_to_patient_mm: Option<f64>,
    /// Imager Pixel Spacing (0018,1164), `[row, column]` mm, at the detector.
    pub imager_pixel_spacing_mm: Option<[f64; 2]>,
    /// Pixel Spacing (0028,0030), `[row, column]` mm, in the patient plane.
    pub pixel_spacing_mm: Option<[f64; 2]>,
    /// Estimated Radiographic Magnification Factor (0018,1114).
    pub magnification_factor: Option<f64>,
}

impl Geometry {
    /// The isocentre-plane scale and its source, exactly as the output contract orders them.
    ///
    /// The Estimated Radiographic Magnification Factor is deliberately not in this chain (the
    /// contract does not name it); see [`Geometry::magnification_corrected_mm_per_px`].
    ///
    /// Spacing is taken as the mean of the row and column spacing (they are equal on every
    /// flat-panel C-arm; a mean keeps anisotropic files usable).
    pub fn mm_per_px(&self) -> (Option<f64>, MmSource) {
        let mean = |s: [f64; 2]| (s[0] + s[1]) / 2.0;
        let valid = |v: f64| v.is_finite() && v > 0.0;
        let imager = self.imager_pixel_spacing_mm.map(mean).filter(|&v| valid(v));
        if let (Some(ips), Some(sod), Some(sid)) = (
            imager,
            self.source_to_patient_mm,
            self.source_to_detector_mm,
        ) && valid(sod)
            && valid(sid)
        {
            return (Some(ips * sod / sid), MmSource::ImagerSpacingAndDistances);
        }
        if let Some(ps) = self.pixel_spacing_mm.map(mean).filter(|&v| valid(v)) {
            return (Some(ps), MmSource::PixelSpacing);
        }
        match imager {
            Some(ips) => (Some(ips), MmSource::ImagerPixelSpacing),
            None => (None, MmSource::Unknown),
        }
    }

    /// `ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor`, reported beside the
    /// contract's value so a researcher can correct detector-plane spacing when distances are absent.
    pub fn magnification_corrected_mm_per_px(&self) -> Option<f64> {
        let ips = self.imager_pixel_spacing_mm.map(|s| (s[0] + s[1]) / 2.0)?;
        let m = self
            .magnification_factor
            .filter(|m| m.is_finite() && *m > 0.0)?;
        (ips.is_finite() && ips > 0.0).then_some(ips / m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_order_of_sources() {
        let mut g = Geometry {
            imager_pixel_spacing_mm: Some([0.2, 0.2]),
            source_to_detector_mm: Some(1000.0),
            source_to_patient_mm: Some(600.0),
            pixel_spacing_mm: Some([0.15, 0.15]),
            magnification_factor: Some(1.5),
            ..Default::default()
        };
        let (mm, src) = g.mm_per_px();
        assert!((mm.unwrap() - 0.12).abs() < 1e-12);
        assert_eq!(src, MmSource::ImagerSpacingAndDistances);
        g.source_to_patient_mm = None;
        assert_eq!(g.mm_per_px(), (Some(0.15), MmSource::PixelSpacing));
        g.pixel_spacing_mm = None;
        assert_eq!(g.mm_per_px(), (Some(0.2), MmSource::ImagerPixelSpacing));
        assert!((g.magnification_corrected_mm_per_px().unwrap() - 0.2 / 1.5).abs() < 1e-12);
        g.magnification_factor = None;
        assert_eq!(g.mm_per_px(), (Some(0.2), MmSource::ImagerPixelSpacing));
        g.imager_pixel_spacing_mm = None;
        assert_eq!(g.mm_per_px(), (None, MmSource::Unknown));
    }

    #[test]
    fn rejects_nonsense_distances() {
        let g = Geometry {
            imager_pixel_spacing_mm: Some([0.2, 0.2]),
            source_to_detector_mm: Some(0.0),
            source_to_patient_mm: Some(600.0),
            ..Default::default()
        };
        assert_eq!(g.mm_per_px(), (Some(0.2), MmSource::ImagerPixelSpacing));
    }
}
